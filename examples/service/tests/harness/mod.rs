//! The service as a real process on a free port, and what the tests read
//! from it.
#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running `sqlreg-service`; killed when dropped if still running.
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the service printed it.
    pub base: String,
    /// Everything the service printed on stdout after its address.
    stdout: Arc<Mutex<String>>,
    /// The thread copying stdout; done once the process has exited.
    reader: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Writes `yaml` as the config (`{dir}` in it becomes a temporary
    /// directory), starts the built binary on port 0 and waits for the
    /// address it prints.
    pub fn start(yaml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let yaml = yaml.replace("{dir}", &dir.path().display().to_string());
        let config = dir.path().join("service.yaml");
        std::fs::write(&config, yaml).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sqlreg-service"))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the sqlreg-service binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("the service exited before listening: {:?}", child.wait()));
        let base = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        let stdout = Arc::new(Mutex::new(String::new()));
        let rest = Arc::clone(&stdout);
        let reader = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut rest = rest.lock().unwrap();
                rest.push_str(&line);
                rest.push('\n');
            }
        });
        Self {
            child,
            base,
            stdout,
            reader: Some(reader),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The temporary directory `{dir}` in the config stood for.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Sends SIGTERM and waits (at most 15 s) for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal_terminate();
        self.wait_for_exit()
    }

    /// Sends SIGTERM.
    pub fn signal_terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM {}", self.child.id());
    }

    /// Waits (at most 15 s) for the process to exit.
    pub fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Some(reader) = self.reader.take() {
                    reader.join().unwrap();
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the service did not exit within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the service printed after its address line so far.
    pub fn printed(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The values of every sample of the series `name` in Prometheus text.
pub fn samples(metrics: &str, name: &str) -> Vec<f64> {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse().ok())
        .collect()
}

/// A SQLite file config with a pool of at most `pool_size + max_overflow`.
pub fn sqlite_yaml(pool_size: u32, max_overflow: u32) -> String {
    format!(
        "core_lib:
  db:
    session:
      pool_size: {pool_size}
      max_overflow: {max_overflow}
    url: sqlite:///{{dir}}/users.db
"
    )
}

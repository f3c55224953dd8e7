//! What the run ran on: CPU, memory, kernel, toolchain and server versions.

use std::process::Command;

/// The machine and software a run measured.
pub struct Machine {
    cpu: String,
    cores: usize,
    memory_gib: f64,
    kernel: String,
    versions: Vec<String>,
}

impl Machine {
    /// Reads `/proc` and asks the tools for their versions.
    pub fn probe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split(':').nth(1))
            })
            .unwrap_or("unknown CPU")
            .trim()
            .to_owned();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let pg_bin = std::env::var("SQLREG_TEST_PG_BIN").unwrap_or_default();
        let versions = [
            version("rustc", &["--version"]),
            version(&format!("{pg_bin}/postgres"), &["--version"]),
            version("mariadbd", &["--version"]),
            std::env::var("SQLREG_BENCH_CORELIB").ok(),
        ];
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: kib / 1024.0 / 1024.0,
            kernel: version("uname", &["-sr"]).unwrap_or_default(),
            versions: versions.into_iter().flatten().collect(),
        }
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        format!(
            "machine: {}, {} cores, {:.0} GiB, {}; {}",
            self.cpu,
            self.cores,
            self.memory_gib,
            self.kernel,
            self.versions.join("; ")
        )
    }
}

/// Today's date and the time, UTC (`date`'s words; `unknown` without it).
pub fn today() -> String {
    version("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(|| "unknown".into())
}

/// The first line a tool prints for `args`, if it runs.
fn version(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    Some(text.lines().next()?.trim().to_owned()).filter(|s| !s.is_empty())
}

//! Real faults on this run's servers, through the control scripts and pid
//! files `scripts/db-servers.sh` exports — never by process name.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Kind;

/// The value of the PostgreSQL or MariaDB variant of an exported variable.
fn env(kind: Kind, postgres: &str, mariadb: &str) -> String {
    let name = if kind == Kind::Postgres {
        postgres
    } else {
        mariadb
    };
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set: run through scripts/test.sh"))
}

/// Runs the server's control script with `action`; whether it succeeded.
fn control_blocking(kind: Kind, action: &str) -> bool {
    let script = env(
        kind,
        "SQLREG_TEST_PG_RESTART",
        "SQLREG_TEST_MARIADB_RESTART",
    );
    Command::new(script)
        .arg(action)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs `action` off the async threads, asserts it worked, returns how long it took.
pub async fn control(kind: Kind, action: &'static str) -> Duration {
    let started = Instant::now();
    let ok = tokio::task::spawn_blocking(move || control_blocking(kind, action))
        .await
        .unwrap();
    assert!(ok, "`{action}` of the {kind:?} server failed");
    started.elapsed()
}

/// The server's main process: the postmaster, or mariadbd.
pub fn server_pid(kind: Kind) -> u32 {
    let file = env(
        kind,
        "SQLREG_TEST_PG_PIDFILE",
        "SQLREG_TEST_MARIADB_PIDFILE",
    );
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let first = text.lines().next().unwrap_or_default().trim();
    first.parse().unwrap_or_else(|_| panic!("{file}: no pid"))
}

/// Restarts the server and checks that it really is a new process.
/// Returns how long the restart took.
pub async fn restart(kind: Kind) -> Duration {
    let before = server_pid(kind);
    let took = control(kind, "restart").await;
    assert_ne!(
        server_pid(kind),
        before,
        "the {kind:?} server was restarted"
    );
    took
}

/// A stopped server; started again when dropped, whatever happened.
pub struct Stopped {
    kind: Kind,
    running: bool,
}

/// Stops the server cleanly (`stop`).
pub async fn stop(kind: Kind) -> Stopped {
    control(kind, "stop").await;
    Stopped {
        kind,
        running: false,
    }
}

impl Stopped {
    /// Starts the server again and waits until it accepts connections.
    pub async fn start(mut self) {
        control(self.kind, "start").await;
        self.running = true;
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if !self.running {
            control_blocking(self.kind, "start");
        }
    }
}

/// A server whose processes are stopped with SIGSTOP; resumed with SIGCONT
/// when dropped, also on panic or cancellation.
pub struct Frozen {
    pids: Vec<u32>,
}

fn signal(signal: &str, pids: &[u32]) -> bool {
    Command::new("kill")
        .arg(signal)
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Freezes the server: mariadbd, or the postmaster and all its children
/// (the postmaster first, so it cannot fork a child that escapes).
pub fn freeze(kind: Kind) -> Frozen {
    let main = server_pid(kind);
    let mut frozen = Frozen { pids: vec![main] };
    assert!(signal("-STOP", &[main]), "SIGSTOP {main}");
    if kind == Kind::Postgres {
        let children = children_of(main);
        assert!(!children.is_empty(), "the postmaster has children");
        frozen.pids.extend(&children);
        assert!(signal("-STOP", &children), "SIGSTOP {children:?}");
    }
    frozen
}

impl Drop for Frozen {
    /// One `kill` per process, so one that is gone cannot keep the others frozen.
    fn drop(&mut self) {
        for &pid in &self.pids {
            if !signal("-CONT", &[pid]) && Path::new(&format!("/proc/{pid}")).exists() {
                eprintln!("SIGCONT {pid} failed");
            }
        }
    }
}

/// The processes whose parent is `parent`, from `/proc/*/stat`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …"; comm may hold spaces and parentheses.
        let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ppid = after_comm.split_whitespace().nth(1);
        if ppid.and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            children.push(pid);
        }
    }
    children
}

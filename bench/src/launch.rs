//! Without the servers' environment the binary hands itself to
//! `scripts/bench.sh`, which starts PostgreSQL and MariaDB (through
//! `scripts/db-servers.sh`), prepares core-lib, runs it again, and stops them.

use std::process::{Command, ExitCode};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/bench.sh");

/// Re-runs this binary with `args` under `scripts/bench.sh`.
pub fn under_bench_script(args: &[String]) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => {
            eprintln!("sqlreg-bench: cannot find my own executable: {err}");
            return ExitCode::FAILURE;
        }
    };
    let profile = if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    };
    let command = format!("cargo run -p sqlreg-bench{profile} -- {}", args.join(" "));
    let status = Command::new("bash")
        .arg(SCRIPT)
        .args(args)
        .env("SQLREG_BENCH_BIN", exe)
        .env("SQLREG_BENCH_COMMAND", command.trim_end())
        .status();
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("sqlreg-bench: scripts/bench.sh exited with {status}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("sqlreg-bench: cannot run bash {SCRIPT}: {err}");
            ExitCode::FAILURE
        }
    }
}

//! The `sqlreg` command-line tool. Its subcommands (`check`, `exec`, `init`)
//! are not written yet; until then it says so instead of pretending.

fn main() -> std::process::ExitCode {
    eprintln!(
        "sqlreg {}: the command-line tool has no subcommands yet; use the library (see README.md)",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}

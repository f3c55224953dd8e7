//! Counting a stretch of the bench's own execution in instructions with
//! callgrind (Debian's `valgrind`): the same figure on every run of the same
//! build, where wall-clock time on a shared machine varies by ±10–20 %.
//!
//! The bench runs itself under `valgrind --tool=callgrind` with
//! `--zero-before` naming [`zero_here`] and `--dump-before` naming
//! [`dump_here`]. On entering the first, callgrind zeroes the counts of
//! every thread; on entering the second, it writes every thread's counts
//! since then into the next numbered dump and zeroes them. So a dump holds
//! exactly what the whole process executed in between: the caller's task,
//! tokio's workers, the tasks a pool spawns, sqlx's SQLite worker threads
//! (and with them SQLite itself, as rusqlite runs it in the caller's
//! thread). The servers are other processes: not counted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::runner::Result;

/// Set in the environment of the bench run under callgrind: the directory
/// its dumps go to.
pub const DIR_VAR: &str = "SQLREG_BENCH_CALLGRIND_DIR";

/// Callgrind zeroes every count when this function is entered.
#[inline(never)]
pub fn zero_here() {
    std::hint::black_box(0x2e_u8);
}

/// Callgrind dumps every count (then zeroes them) when this function is entered.
#[inline(never)]
pub fn dump_here() {
    std::hint::black_box(0xd0_u16);
}

/// The dumps of the callgrind run this process is (`None`: not under callgrind).
pub struct Dumps {
    dir: PathBuf,
    taken: AtomicUsize,
}

impl Dumps {
    /// The dumps of this process, if the parent bench started it under callgrind.
    pub fn of_this_process() -> Option<Self> {
        let dir = PathBuf::from(std::env::var_os(DIR_VAR)?);
        Some(Self {
            dir,
            taken: AtomicUsize::new(0),
        })
    }

    /// Where the bench run under callgrind writes what it counted.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Instructions executed since the last [`zero_here`]: dumps them and
    /// reads the dump back.
    ///
    /// # Errors
    ///
    /// The dump is missing or has no totals (the process is not under
    /// callgrind with the marks, or another dump came in between).
    pub fn take(&self) -> Result<u64> {
        dump_here();
        let n = self.taken.fetch_add(1, Ordering::SeqCst) + 1;
        let path = self.dir.join(format!("{OUT}.{n}"));
        let text = std::fs::read_to_string(&path)
            .map_err(|err| format!("callgrind dump {}: {err}", path.display()))?;
        totals(&text).ok_or_else(|| format!("no totals in {}", path.display()).into())
    }
}

/// The dumps' file name (`callgrind.out.N`, N counting from 1).
const OUT: &str = "callgrind.out";

/// Runs this binary with `args` under callgrind, its dumps in `dir`, and
/// waits for it.
///
/// # Errors
///
/// valgrind is missing or the run failed.
pub fn run_self(args: &[String], dir: &Path) -> Result<()> {
    let exe = std::env::current_exe()?;
    let status = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--quiet",
            "--fair-sched=yes",
            "--zero-before=*callgrind::zero_here*",
            "--dump-before=*callgrind::dump_here*",
        ])
        .arg(format!("--callgrind-out-file={}", dir.join(OUT).display()))
        .arg(exe)
        .args(args)
        .env(DIR_VAR, dir)
        .status()
        .map_err(|err| format!("cannot run valgrind (Debian's `valgrind` package): {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the bench under callgrind exited with {status}").into())
    }
}

/// The `totals:` line of a callgrind dump: the instructions it lists.
/// (Not `summary:`, which in the first dump after a zeroing still holds
/// what ran before it.)
fn totals(dump: &str) -> Option<u64> {
    dump.lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_instruction_total_of_a_dump() {
        let dump = "version: 1\ncreator: callgrind-3.19.0\npart: 1\nevents: Ir\n\
                    summary: 42046155\nfn=(1) main\n0 12\ntotals: 13105609\n";
        assert_eq!(totals(dump), Some(13_105_609));
        assert_eq!(totals("events: Ir\nsummary: 77\n"), None);
    }
}

//! Scratch database names that say which process owns them, so a later run
//! can tell the leftovers of a killed run (owner gone) from the databases of
//! a suite running beside it (owner alive).
//!
//! A name is `sqlreg_t_<host>_<pid>_<start>_<n>`: `<host>` a short hash of
//! the host name (other machines' databases on a shared server are never
//! touched), `<pid>` and `<start>` the owning process and its start time in
//! clock ticks since boot (`/proc/<pid>/stat`), so a reused pid does not
//! keep a dead run's database alive, `<n>` a counter within the process.

use std::sync::atomic::{AtomicU32, Ordering};

/// The process this one is, as `/proc` tells it.
struct Process {
    pid: u32,
    start: u64,
}

/// The name prefix of this host's scratch databases.
pub(crate) fn host_prefix() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let hash = host.trim().bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("sqlreg_t_{:06x}_", hash & 0x00ff_ffff)
}

/// A name no other scratch database of this or any other process has.
pub(crate) fn fresh_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    let start = start_time(pid).unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}{pid}_{start}_{n}", host_prefix())
}

/// Whether the process that created scratch database `name` (one of this
/// host's) has ended. `false` when it cannot be told: only databases
/// certainly left behind are removed.
pub(crate) fn owner_is_gone(name: &str) -> bool {
    let Some(owner) = owner(name) else {
        return false;
    };
    if start_time(std::process::id()).is_none() {
        return false; // no /proc here: nothing can be told
    }
    start_time(owner.pid) != Some(owner.start)
}

fn owner(name: &str) -> Option<Process> {
    let rest = name.strip_prefix(&host_prefix())?;
    let mut fields = rest.split('_');
    let pid = fields.next()?.parse().ok()?;
    let start = fields.next()?.parse().ok()?;
    fields.next()?.parse::<u32>().ok()?;
    Some(Process { pid, start })
}

/// Field 22 of `/proc/<pid>/stat`: when the process started.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past its last `)`.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_names_have_a_live_owner_and_other_shapes_are_left_alone() {
        let mine = fresh_name();
        assert!(mine.starts_with(&host_prefix()));
        assert!(!owner_is_gone(&mine), "{mine}");
        let reused_pid = format!("{}{}_1_0", host_prefix(), std::process::id());
        assert!(
            owner_is_gone(&reused_pid),
            "another start time: another process"
        );
        assert!(!owner_is_gone("sqlreg_t_000000_1_1_0"), "another host");
        assert!(
            !owner_is_gone(&format!("{}app", host_prefix())),
            "not our shape"
        );
    }
}

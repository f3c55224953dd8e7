//! Runs the groups: connect every contender, warm up, verify what each sends,
//! then interleaved measured runs (the order rotates every round).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::callgrind::Dumps;
use crate::contenders::{self, Family, Replay};
use crate::results::{GroupResult, Row};
use crate::runner::{Contender, Load, Mark, Sample};
use crate::stats::Spread;
use crate::targets::{Servers, Target};
use crate::verify::{self, StatementLog};
use crate::workloads::Group;
use crate::{hops, instructions};

struct Entry {
    row: Row,
    contender: Option<Box<dyn Contender>>,
}

/// Runs every group with `runs` measured rounds each; under callgrind
/// (`dumps`), counts each contender's instructions per session instead.
pub async fn run_all(
    servers: &Servers,
    groups: Vec<Group>,
    runs: usize,
    dumps: Option<&Dumps>,
) -> Vec<GroupResult> {
    let steps: usize = groups.iter().map(|g| g.families.len() * (runs + 2)).sum();
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:32} {pos}/{len} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut results = Vec::new();
    for group in groups {
        let before = load_average();
        let replay = Replay::default();
        let rows = run_group(servers, &group, runs, &replay, &bar, dumps).await;
        let replayed = group
            .families
            .contains(&Family::SqlxSame)
            .then(|| replay.get().cloned())
            .flatten();
        results.push(GroupResult {
            group,
            rows,
            load_avg: (before, load_average()),
            replayed,
        });
    }
    bar.finish_and_clear();
    results
}

async fn run_group(
    servers: &Servers,
    group: &Group,
    runs: usize,
    replay: &Replay,
    bar: &ProgressBar,
    dumps: Option<&Dumps>,
) -> Vec<Row> {
    let target = group.setup.target;
    let title = format!("{} / {}", group.workload.title(), target.label());
    let mut log = match StatementLog::open(servers, target).await {
        Ok(log) => log,
        Err(err) => {
            bar.println(format!("{title}: cannot open the statement log: {err}"));
            None
        }
    };
    enable(&mut log, true, bar).await;
    let mut entries = Vec::new();
    for &family in &group.families {
        bar.set_message(format!("{title}: connecting {}", family.label(target)));
        let built = contenders::build(family, servers, group.setup, replay).await;
        let (contender, error) = match built {
            Ok(c) => (Some(c), None),
            Err(err) => (None, Some(format!("unavailable: {err}"))),
        };
        let row = Row {
            family,
            runs: Vec::new(),
            statements: None,
            instructions: None,
            error,
        };
        entries.push(Entry { row, contender });
    }
    // Each contender is warmed up and verified before the next, sqlreg
    // first, so that its statements are known when the sqlx pool replaying
    // them warms up.
    entries.sort_by_key(|e| e.row.family != Family::SqlregRaw);
    for entry in &mut entries {
        let label = entry.row.family.label(target);
        bar.set_message(format!("{title}: warming up {label}"));
        let _ = measure(entry, warm(group.load), None).await;
        bar.inc(1);
        bar.set_message(format!("{title}: verifying {label}"));
        if entry.contender.is_some() {
            let counted = match &log {
                Some(log) => count_statements(entry, log, probe(group.load), group, replay).await,
                // The traced contender's own subscriber hides the hops.
                None if target.dialect() == crate::data::Dialect::Sqlite
                    && entry.row.family.in_process()
                    && entry.row.family != Family::SqlregTraced =>
                {
                    count_hops(entry, probe(group.load)).await
                }
                None => None,
            };
            entry.row.statements = counted;
        }
        bar.inc(1);
    }
    enable(&mut log, false, bar).await;
    entries.sort_by_key(|e| group.families.iter().position(|&f| f == e.row.family));
    if let Some(dumps) = dumps {
        for entry in &mut entries {
            let label = entry.row.family.label(target);
            bar.set_message(format!("{title}: counting {label}'s instructions"));
            entry.row.instructions = count_instructions(entry, group.load, dumps, bar).await;
        }
    }
    let n = entries.len();
    for round in 0..runs {
        for i in 0..n {
            let entry = &mut entries[(i + round) % n];
            bar.set_message(format!(
                "{title}: run {} of {runs}, {}",
                round + 1,
                entry.row.family.label(target)
            ));
            if let Some(sample) = measure(entry, group.load, None).await {
                entry.row.runs.push(sample);
            }
            bar.inc(1);
        }
    }
    entries.into_iter().map(|e| e.row).collect()
}

/// One run; an error retires the contender and is kept for the report.
async fn measure(entry: &mut Entry, load: Load, mark: Option<Mark<'_>>) -> Option<Sample> {
    let contender = entry.contender.as_ref()?;
    match contender
        .run(load, mark.unwrap_or_else(|| Box::new(|| ())))
        .await
    {
        Ok(sample) => Some(sample),
        Err(err) => {
            entry.row.error = Some(format!("failed: {err}"));
            entry.contender = None;
            None
        }
    }
}

/// Statements per op during one short run, counted from where it was
/// marked; sqlreg's (sqlx body) are kept for the pool that replays them.
async fn count_statements(
    entry: &mut Entry,
    log: &StatementLog,
    load: Load,
    group: &Group,
    replay: &Replay,
) -> Option<f64> {
    let current = log.offset_reader();
    let offset = Arc::new(AtomicU64::new(current()));
    let mark_offset = Arc::clone(&offset);
    let mark: Mark<'_> = Box::new(move || mark_offset.store(current(), Ordering::SeqCst));
    let sample = measure(entry, load, Some(mark)).await?;
    let logged = log
        .statements_since(offset.load(Ordering::SeqCst))
        .await
        .ok()?;
    let per_op = logged.len() as f64 / sample.ops.max(1) as f64;
    if entry.row.family == Family::SqlregRaw {
        let per_session = per_op.round() as usize;
        if let Some(session) = verify::one_session(&logged, per_session) {
            let target: Target = group.setup.target;
            let steps = contenders::steps_from_log(&session, target.dialect(), group.setup.op);
            let _ = replay.set(steps);
        }
    }
    Some(per_op)
}

/// Instructions per session of an in-process contender on a sequential load.
async fn count_instructions(
    entry: &mut Entry,
    load: Load,
    dumps: &Dumps,
    bar: &ProgressBar,
) -> Option<Spread> {
    let Load::Sequential { op, .. } = load else {
        return None;
    };
    let contender = entry.contender.as_deref()?;
    if !entry.row.family.in_process() {
        return None;
    }
    match instructions::per_session(contender, op, dumps).await {
        Ok(count) => Some(count),
        Err(err) => {
            bar.println(format!("{}: {err}", entry.row.family.key()));
            None
        }
    }
}

/// Hops to sqlx's SQLite worker threads per op during one short run.
async fn count_hops(entry: &mut Entry, load: Load) -> Option<f64> {
    let at_mark = Arc::new(AtomicU64::new(0));
    let mark_at = Arc::clone(&at_mark);
    let mark: Mark<'_> = Box::new(move || mark_at.store(hops::start(), Ordering::SeqCst));
    let sample = measure(entry, load, Some(mark)).await;
    // sqlx's pool hands a connection back in a task of its own: let the last one finish.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let hops = hops::stop().saturating_sub(at_mark.load(Ordering::SeqCst));
    Some(hops as f64 / sample?.ops.max(1) as f64)
}

async fn enable(log: &mut Option<StatementLog>, on: bool, bar: &ProgressBar) {
    if let Some(l) = log
        && let Err(err) = l.enable(on).await
    {
        bar.println(format!("statement log: {err}"));
        *log = None;
    }
}

/// A shorter version of `load` for warming up.
fn warm(load: Load) -> Load {
    match load {
        Load::Sequential { op, ops } => Load::Sequential {
            op,
            ops: (ops / 5).max(5),
        },
        Load::Crowd {
            op,
            tasks,
            writers,
            duration,
        } => Load::Crowd {
            op,
            tasks,
            writers,
            duration: duration / 4,
        },
        Load::HotRow { tasks, duration } => Load::HotRow {
            tasks,
            duration: duration / 4,
        },
    }
}

/// A small run whose statements are counted.
fn probe(load: Load) -> Load {
    match load {
        Load::Sequential { op, .. } => Load::Sequential { op, ops: 20 },
        Load::Crowd {
            op, tasks, writers, ..
        } => Load::Crowd {
            op,
            tasks,
            writers,
            duration: Duration::from_millis(300),
        },
        Load::HotRow { tasks, .. } => Load::HotRow {
            tasks,
            duration: Duration::from_millis(300),
        },
    }
}

/// The 1-minute load average (0 where /proc is missing).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

//! `sqlreg-bench`: sqlreg side by side with the raw drivers, sqlx, sea-orm,
//! core-lib and pgbench on the same databases, in one run. See `BENCHMARKS.md`.

mod args;
mod callgrind;
mod chart;
mod contenders;
mod data;
mod entity;
mod goals;
mod harness;
mod hops;
mod hot_row;
mod instructions;
mod launch;
mod machine;
mod pgbouncer;
mod ratios;
mod recycle;
mod report;
mod results;
mod routing;
mod runner;
mod seed;
mod stats;
mod table;
mod targets;
mod verify;
mod workloads;

use std::process::ExitCode;

use args::{Options, USAGE};
use targets::Servers;

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(raw.clone()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let Some(servers) = Servers::from_env() else {
        return launch::under_bench_script(&raw);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    match runtime
        .map_err(Into::into)
        .and_then(|rt| rt.block_on(bench(&servers, &options, &raw)))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sqlreg-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(servers: &Servers, options: &Options, args: &[String]) -> runner::Result<()> {
    if options.recycle {
        return recycle::run(servers, options.quick).await;
    }
    hops::install()?;
    let load_before = harness::load_average();
    seed::shared(servers).await?;
    let budget = options.budget();
    let mut groups: Vec<_> = if options.goals {
        workloads::goal_plan(budget)
    } else {
        options
            .workloads
            .iter()
            .flat_map(|&w| workloads::plan(w, budget))
            .collect()
    };
    if let Some(targets) = &options.targets {
        groups.retain(|g| targets.contains(&g.setup.target));
    }
    if let Some(only) = &options.only {
        for group in &mut groups {
            group.families.retain(|f| only.contains(f));
        }
    }
    if let Some(dumps) = callgrind::Dumps::of_this_process() {
        // The run `instructions::count` started under callgrind.
        groups.retain(workloads::Group::counted);
        let results = harness::run_all(servers, groups, 0, Some(&dumps)).await;
        return instructions::hand_back(&results, &dumps);
    }
    let mut results = harness::run_all(servers, groups, options.runs, None).await;
    if !options.quick && results.iter().any(|r| r.group.counted()) {
        println!("counting instructions per session under callgrind (a few minutes)");
        if let Err(err) = instructions::count(args, &mut results) {
            eprintln!("sqlreg-bench: instructions not counted: {err}");
        }
    }
    let machine = machine::Machine::probe();
    let command = std::env::var("SQLREG_BENCH_COMMAND").unwrap_or_else(|_| "sqlreg-bench".into());
    let run = report::Run {
        results: &results,
        machine: &machine,
        command: &command,
        runs: options.runs,
        load_avg: (load_before, harness::load_average()),
    };
    println!("{}", report::tables(&run));
    println!(
        "load average (1 min) before / after: {:.2} / {:.2}",
        run.load_avg.0, run.load_avg.1
    );
    std::fs::create_dir_all(&options.out)?;
    let chart_name = "benchmarks.svg";
    chart::draw(&results, &options.out.join(chart_name))?;
    std::fs::write(
        options.out.join("BENCHMARKS.md"),
        report::document(&run, chart_name),
    )?;
    println!("wrote {}", options.out.join("BENCHMARKS.md").display());
    if options.quick {
        broken(&results)?;
    }
    Ok(())
}

/// In `--quick` (CI) a contender that failed or could not be set up is an
/// error, except core-lib, whose virtualenv `--quick` does not install; so
/// is a lost update in sqlreg's retrying form (W6), which must lose none.
fn broken(results: &[results::GroupResult]) -> runner::Result<()> {
    let failures: Vec<String> = results
        .iter()
        .flat_map(|result| {
            let title = result.group.workload.title();
            let target = result.group.setup.target;
            result.rows.iter().filter_map(move |row| {
                let lost: i64 = row.runs.iter().map(|s| s.lost).sum();
                if lost != 0 && row.family == contenders::Family::SqlregEntity {
                    let label = row.family.label(target);
                    return Some(format!(
                        "{title} / {}: {label} lost {lost} updates",
                        target.label()
                    ));
                }
                let error = row.error.as_deref()?;
                let optional = row.family == contenders::Family::CoreLib && row.runs.is_empty();
                (!optional).then(|| {
                    format!(
                        "{title} / {}: {} {error}",
                        target.label(),
                        row.family.label(target)
                    )
                })
            })
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("contenders failed:\n  {}", failures.join("\n  ")).into())
    }
}

//! `switchyard-bench`: what a node adds over the least any gateway does, measured in one run on
//! loopback.
//!
//! Three paths to the same mock provider, each measured non-streaming at 1 and 32 keep-alive
//! connections, interleaved (direct, floor, node for 1 connection, then again for 32) so drift
//! on a shared machine hits all three alike:
//!
//! - **direct**: client to the mock;
//! - **floor**: client to a minimal hyper proxy (this binary, re-executed as
//!   `switchyard-bench floor`) that parses the request JSON, looks the key up in a map,
//!   re-serialises and forwards;
//! - **node**: client to `switchyard serve` with one key, one provider and one route.
//!
//! With budgets on (the default), each connection count also measures the node a second time
//! with a key that has a budget (**node+budget**), so budgets off and on are compared in the
//! same run.
//!
//! The mock, the floor and the node each run in their own process, so their CPU time and RSS
//! read from `/proc` are their own. Absolute figures drift between runs on a shared machine;
//! the node-to-floor and budgets-on-to-off ratios from the same run are the figures to compare.
//!
//! `switchyard-bench settle` measures something else: how many spend entries per second a
//! 3-voter Raft cluster of the control plane commits, by batch size, in this process.
//!
//! # Layout
//! - `floor`: the floor proxy (the `floor` subcommand).
//! - `fleet`: starting, probing and stopping the mock, floor and node processes.
//! - `load`: the closed-loop load generator and one-shot probes.
//! - `procfs`: CPU time and memory of a process from `/proc`.
//! - `report`: the measurements, the table, the JSON and the ratios.
//! - `settle`: the settlement throughput benchmark (the `settle` subcommand).

#![expect(
    clippy::disallowed_methods,
    reason = "a dev tool outside the node's seams: it binds, connects, spawns and reads the wall clock directly"
)]
#![expect(clippy::print_stdout, reason = "the benchmark's report is its output")]

mod fleet;
mod floor;
mod load;
mod procfs;
mod report;
mod settle;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::fleet::{BudgetKey, Fleet, Process};
use crate::report::{Report, Row, Sample, Target};

/// Measures what a Switchyard node adds over a direct call and over a minimal floor proxy.
#[derive(Parser)]
#[command(
    name = "switchyard-bench",
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the floor proxy (started by the benchmark itself; exits when its stdin closes).
    #[command(hide = true)]
    Floor(floor::FloorArgs),
    /// Settlement throughput of a 3-voter control-plane cluster in this process, by batch size.
    Settle(settle::SettleArgs),
}

/// Arguments of a benchmark run.
#[derive(Args)]
struct RunArgs {
    /// The `switchyard` binary (default: next to this one, else target/release or target/debug).
    #[arg(long)]
    switchyard: Option<PathBuf>,
    /// Measured seconds per (target, connections) cell.
    #[arg(long, default_value_t = 5)]
    duration_s: u64,
    /// Warm-up seconds per cell, sent but not measured.
    #[arg(long, default_value_t = 1)]
    warmup_s: u64,
    /// Connection counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    conns: Vec<usize>,
    /// Also measure the node with a key that has a budget (budgets on), next to the plain key
    /// (budgets off); `--budgets false` skips it.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    budgets: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// More connections than this measures the load generator's machine, not the gateway.
const MAX_CONNS: usize = 1024;
/// One cell longer than this is a typo, and the whole run must stay bounded.
const MAX_DURATION_S: u64 = 600;
/// A pause between cells so the previous cell's connections are closed and its CPU is spent.
const SETTLE: Duration = Duration::from_millis(300);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            report_error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Floor(args)) => floor::run(args).await,
            Some(Command::Settle(args)) => settle::run(args).await,
            None => run(cli.run).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report_error(&format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

#[expect(
    clippy::print_stderr,
    reason = "the one place the tool reports a fatal error to its user"
)]
fn report_error(msg: &str) {
    eprintln!("switchyard-bench: {msg}");
}

/// Starts the fleet, measures every cell, prints the report and stops the fleet.
async fn run(args: RunArgs) -> anyhow::Result<()> {
    if args.duration_s == 0 || args.duration_s > MAX_DURATION_S {
        bail!("--duration-s must be between 1 and {MAX_DURATION_S}");
    }
    if args.warmup_s > MAX_DURATION_S {
        bail!("--warmup-s must be at most {MAX_DURATION_S}");
    }
    if args.conns.is_empty() || args.conns.iter().any(|&c| c == 0 || c > MAX_CONNS) {
        bail!("--conns must list counts between 1 and {MAX_CONNS}");
    }
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let switchyard = match args.switchyard.clone() {
        Some(p) => p,
        None => default_switchyard(&exe)?,
    };
    if !switchyard.is_file() {
        bail!(
            "{} not found; build it with `cargo build --release -p switchyard`",
            switchyard.display()
        );
    }
    let work_dir = work_dir(&exe).join(format!("switchyard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    let clock = procfs::clock_ticks_per_second().await;

    let mut fleet = Fleet::start(&switchyard, &exe, &work_dir).await?;
    let outcome = tokio::select! {
        r = measure_all(&args, &mut fleet, clock.ticks_per_s) => r,
        r = tokio::signal::ctrl_c() => match r {
            Ok(()) => Err(anyhow::anyhow!("interrupted")),
            Err(e) => Err(anyhow::anyhow!("cannot listen for Ctrl-C: {e}")),
        },
    };
    let logs = fleet.stop().await;
    let (rows, budget) = outcome?;

    let report = Report::new(
        rows,
        report::Context {
            nproc: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            clk_tck: clock.ticks_per_s,
            clk_tck_assumed: clock.assumed,
            duration_s: args.duration_s,
            warmup_s: args.warmup_s,
            switchyard: switchyard.display().to_string(),
            debug_build: switchyard.components().any(|c| c.as_os_str() == "debug"),
            logs,
            budget,
        },
    );
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    if report.context.logs.iter().all(|l| l.lines == 0) {
        // Nothing worth keeping: the config and empty logs.
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    Ok(())
}

/// With budgets on, creates the budgeted key first; then measures every cell, and reads the
/// budget back at the end.
async fn measure_all(
    args: &RunArgs,
    fleet: &mut Fleet,
    clk_tck: u64,
) -> anyhow::Result<(Vec<Row>, Option<fleet::BudgetState>)> {
    let budget_key = if args.budgets {
        Some(fleet.create_budget_key().await?)
    } else {
        None
    };
    let rows = measure(args, fleet, budget_key.as_ref(), clk_tck).await?;
    let budget = match &budget_key {
        Some(key) => Some(fleet.budget_state(key).await?),
        None => None,
    };
    Ok((rows, budget))
}

/// Every cell in order: all targets at the first connection count, then at the next.
async fn measure(
    args: &RunArgs,
    fleet: &mut Fleet,
    budget_key: Option<&BudgetKey>,
    clk_tck: u64,
) -> anyhow::Result<Vec<Row>> {
    let warmup = Duration::from_secs(args.warmup_s);
    let duration = Duration::from_secs(args.duration_s);
    let plain_key: Arc<str> = Arc::from(load::KEY);
    let targets: &[Target] = match budget_key {
        Some(_) => &Target::ALL_WITH_BUDGETS,
        None => &Target::ALL,
    };
    let mut rows = Vec::new();
    for &conns in &args.conns {
        for &target in targets {
            let proxy = match target {
                Target::Direct => None,
                Target::Floor => Some(&fleet.floor),
                Target::Node | Target::NodeBudget => Some(&fleet.node),
            };
            let key = match (target, budget_key) {
                (Target::NodeBudget, Some(b)) => &b.secret,
                _ => &plain_key,
            };
            let addr = proxy.map_or(fleet.mock.addr, |p| p.addr);
            let rss_before = proxy.map(Process::memory).transpose()?;
            let plan = load::Plan::starting_now(warmup, duration);
            let workers = load::start(addr, key, conns, &plan);
            tokio::time::sleep_until(plan.warmup_end.into()).await;
            let mock_before = procfs::cpu_ticks(fleet.mock.pid)?;
            let proxy_before = proxy.map(|p| procfs::cpu_ticks(p.pid)).transpose()?;
            let result = load::finish(workers, &plan).await?;
            let mock_after = procfs::cpu_ticks(fleet.mock.pid)?;
            let proxy_after = proxy.map(|p| procfs::cpu_ticks(p.pid)).transpose()?;
            let memory_after = proxy.map(Process::memory).transpose()?;
            rows.push(Row::new(Sample {
                target,
                conns,
                load: &result,
                clk_tck,
                mock_ticks: mock_after.saturating_sub(mock_before),
                proxy_ticks: proxy_before
                    .zip(proxy_after)
                    .map(|(b, a)| a.saturating_sub(b)),
                rss_before_kib: rss_before.map(|m| m.rss_kib),
                hwm_after_kib: memory_after.map(|m| m.hwm_kib),
            }));
            fleet.check_alive()?;
            tokio::time::sleep(SETTLE).await;
        }
    }
    Ok(rows)
}

/// `switchyard` next to this executable, else in target/release, else in target/debug.
fn default_switchyard(exe: &Path) -> anyhow::Result<PathBuf> {
    let dir = exe.parent().context("this executable has no directory")?;
    let candidates = [
        dir.join("switchyard"),
        dir.join("../release/switchyard"),
        dir.join("../debug/switchyard"),
    ];
    Ok(candidates
        .iter()
        .find(|p| p.is_file())
        .unwrap_or(&candidates[0])
        .clone())
}

/// `target/tmp` when this executable is in `target/<profile>/`, else the system temp dir.
fn work_dir(exe: &Path) -> PathBuf {
    exe.parent()
        .and_then(Path::parent)
        .filter(|t| t.join("CACHEDIR.TAG").is_file())
        .map_or_else(std::env::temp_dir, |t| t.join("tmp"))
}

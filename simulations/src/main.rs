//! `routing-study`: what each routing strategy costs, how often it succeeds and how fast it
//! answers, on one seeded workload through a fleet of mock providers with different prices,
//! latencies and failure episodes.
//!
//! Each contender (a strategy on `model: "auto"`, or a baseline: always the premium model, or
//! round-robin) replays the same seeded workload against a fresh in-process 3-node cluster on
//! loopback. Cost is what the mocks' ledgers billed (the independent oracle), cross-checked
//! request by request with the gateway's `x-switchyard-cost-micros`; success is the share of
//! 200 answers; latency is measured at the client. The study has a hard overall timeout.
//!
//! ```text
//! cargo run --release -p switchyard-simulations --bin routing-study -- --seed 42
//! ```
//!
//! # Layout
//! - `workload`: the seeded tasks and their arrival times, each labelled with the tier it needs.
//! - `fleet`: the mock providers, their prices and latencies, and the tiered routes.
//! - `pass`: the contenders, the failure episodes, and one pass of one contender.
//! - `summary`: the figures of one pass, and the billing cross-check.
//! - `report`: markdown tables from the summaries.
//! - `document`: `docs/routing-study.md`, written with `--out`.

#![expect(
    clippy::disallowed_methods,
    reason = "a dev tool outside the node's seams: it measures client latency on the wall clock"
)]
#![expect(clippy::print_stdout, reason = "the study's report is its output")]
#![expect(clippy::print_stderr, reason = "progress lines go to stderr")]

mod document;
mod fleet;
mod pass;
mod report;
mod summary;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::fleet::OutageMode;
use crate::report::Params;

/// Routes one seeded workload through every strategy and two baselines, and reports cost,
/// success and p95 latency.
#[derive(Parser, Debug)]
#[command(name = "routing-study", about)]
struct Cli {
    /// Seed of the workload (task mix, prompts, arrival times).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Requests per pass.
    #[arg(long, default_value_t = DEFAULT_REQUESTS)]
    requests: usize,
    /// Mean arrival rate, requests per second (Poisson arrivals, open loop). The default makes
    /// a pass of 600 requests last 12 s, so the outage (a quarter of the pass) outlasts the
    /// breaker's 2 s open time and its probes meet the dead provider.
    #[arg(long, default_value_t = DEFAULT_RATE_PER_S)]
    rate: f64,
    /// How the outage provider fails.
    #[arg(long, value_enum, default_value_t = OutageMode::Status500)]
    outage: OutageMode,
    /// Run only the contenders whose name contains one of these (always-premium always runs,
    /// as the cost reference).
    #[arg(long)]
    only: Vec<String>,
    /// Rerun always-premium and the gateway strategies with this seed too, and add a table of
    /// cost and success by seed (repeatable; each seed adds about a minute).
    #[arg(long)]
    also_seed: Vec<u64>,
    /// Hard limit on the whole study, seconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_S)]
    timeout_s: u64,
    /// Also write the study as markdown to this file (e.g. docs/routing-study.md).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write every request's outcome, one CSV file per pass, into this directory.
    #[arg(long)]
    dump: Option<PathBuf>,
}

/// Lowest accepted arrival rate: below it a default pass would take minutes.
const MIN_RATE_PER_S: f64 = 1.0;
/// See `--rate`.
const DEFAULT_RATE_PER_S: f64 = 50.0;
/// See `--timeout-s`: more than twice what the default study takes.
const DEFAULT_TIMEOUT_S: u64 = 300;
/// See `--requests`.
const DEFAULT_REQUESTS: usize = 600;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    anyhow::ensure!(cli.requests >= 12, "--requests must be at least 12");
    anyhow::ensure!(
        cli.rate.is_finite() && cli.rate >= MIN_RATE_PER_S,
        "--rate must be at least {MIN_RATE_PER_S} requests per second"
    );
    let limit = Duration::from_secs(cli.timeout_s);
    tokio::time::timeout(limit, study(&cli))
        .await
        .map_err(|_| anyhow::anyhow!("the study did not finish within {} s", cli.timeout_s))?
}

async fn study(cli: &Cli) -> anyhow::Result<()> {
    let episodes = pass::episodes(cli.requests, cli.outage);
    let contenders: Vec<pass::Contender> = pass::CONTENDERS
        .iter()
        .filter(|c| {
            cli.only.is_empty()
                || c.name == "always-premium"
                || cli.only.iter().any(|o| c.name.contains(o.as_str()))
        })
        .copied()
        .collect();
    let tasks = workload::generate(cli.seed, cli.requests, cli.rate);
    let params = Params {
        seed: cli.seed,
        requests: cli.requests,
        rate_per_s: cli.rate,
        outage: cli.outage,
        episodes: episodes.clone(),
        mix: workload::TaskKind::ALL
            .iter()
            .map(|k| (*k, tasks.iter().filter(|t| t.kind == *k).count()))
            .collect(),
        span: tasks.last().map_or(Duration::ZERO, |t| t.at),
    };
    let rows = Box::pin(passes(cli, cli.seed, &contenders, &tasks, &episodes)).await?;
    // Other seeds rerun the reference and the gateway strategies only: the baselines' figures
    // do not depend on timing, and the study stays within its time limit.
    let mut by_seed = vec![(cli.seed, rows.clone())];
    let rerun: Vec<pass::Contender> = contenders
        .iter()
        .filter(|c| !c.baseline || c.name == "always-premium")
        .copied()
        .collect();
    for seed in &cli.also_seed {
        let tasks = workload::generate(*seed, cli.requests, cli.rate);
        let rows = Box::pin(passes(cli, *seed, &rerun, &tasks, &episodes)).await?;
        by_seed.push((*seed, rows));
    }
    println!("{}", document::stdout_report(&rows, &by_seed, &params));
    if let Some(path) = &cli.out {
        let doc = document::markdown(&rows, &by_seed, &params, &reproduce_command(cli));
        std::fs::write(path, doc).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Runs one pass per contender over `tasks` and summarises each.
async fn passes(
    cli: &Cli,
    seed: u64,
    contenders: &[pass::Contender],
    tasks: &[workload::Task],
    episodes: &[pass::Episode],
) -> anyhow::Result<Vec<summary::Summary>> {
    let mut rows = Vec::with_capacity(contenders.len());
    for (i, c) in contenders.iter().enumerate() {
        eprintln!(
            "seed {seed}, pass {}/{}: {} …",
            i + 1,
            contenders.len(),
            c.name
        );
        let result = Box::pin(pass::run(i, *c, tasks, episodes))
            .await
            .with_context(|| format!("seed {seed}, pass {:?}", c.name))?;
        let row = summary::summarise(i, &result, episodes)?;
        if let Some(dir) = &cli.dump {
            let path = dir.join(format!("seed-{seed}-pass-{i}.csv"));
            std::fs::create_dir_all(dir)?;
            std::fs::write(&path, summary::outcomes_csv(&result))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        eprintln!(
            "seed {seed}, pass {}/{}: {} done in {:.1} s: {} µ$, {}/{} ok",
            i + 1,
            contenders.len(),
            c.name,
            row.elapsed.as_secs_f64(),
            row.ledger.0,
            row.ok,
            row.requests
        );
        rows.push(row);
    }
    Ok(rows)
}

/// Logs go to stderr, errors only unless `RUST_LOG` says otherwise: the node's warnings
/// (breakers opening, Raft elections) are expected here and would bury the report. Installed
/// before the test kit's own subscriber, which then stands aside.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The command that reproduces this run.
fn reproduce_command(cli: &Cli) -> String {
    let mut cmd = format!(
        "cargo run --release -p switchyard-simulations --bin routing-study -- --seed {}",
        cli.seed
    );
    if cli.requests != DEFAULT_REQUESTS {
        cmd.push_str(&format!(" --requests {}", cli.requests));
    }
    if (cli.rate - DEFAULT_RATE_PER_S).abs() > f64::EPSILON {
        cmd.push_str(&format!(" --rate {}", cli.rate));
    }
    if cli.outage != OutageMode::Status500 {
        cmd.push_str(" --outage refuse");
    }
    for seed in &cli.also_seed {
        cmd.push_str(&format!(" --also-seed {seed}"));
    }
    if cli.timeout_s != DEFAULT_TIMEOUT_S {
        cmd.push_str(&format!(" --timeout-s {}", cli.timeout_s));
    }
    for o in &cli.only {
        cmd.push_str(&format!(" --only {o:?}"));
    }
    if let Some(out) = &cli.out {
        cmd.push_str(&format!(" --out {}", out.display()));
    }
    cmd
}

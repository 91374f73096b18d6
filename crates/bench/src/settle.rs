//! `switchyard-bench settle`: how many spend entries per second the control plane commits, by
//! the number of entries each `Op::Settle` command carries.
//!
//! Each cell gets a fresh 3-voter cluster of [`Control`]s in this process, each member with its
//! sled directory under `target/tmp/switchyard-bench-settle-PID/` and its Raft gRPC service on
//! its own 127.0.0.1:0 listener (TCP_NODELAY, as the node serves it). Through the leader, the
//! cell creates one key, gives it a budget far larger than the cell spends and reserves one
//! allowance (`Op::Reserve`). Then `--writers` tasks each submit `Op::Settle` commands of B
//! entries (unique request ids, cost 1 micro-dollar, charged to the allowance) back to back
//! through `Control::write`, for the warm-up and then `--seconds`, and count what the leader
//! applied. Writes go either through a follower, which forwards each one to the leader over the
//! `Propose` RPC as a node does, or through the leader itself, which shows what forwarding
//! costs.
//!
//! A fresh cluster per cell, so that no cell pays for the state (deduplication set, log,
//! snapshots) an earlier one left; the last second of a cell against its first shows what the
//! growing state costs within a cell.
//!
//! Everything shares the process: CPU per entry is the whole process's (three voters, both ends
//! of every gRPC call, and the writers).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use switchyard_control::{
    Command, Control, ControlConfig, KeyRecord, KeyStatus, NodeInfo, Op, Period, Response, Scope,
    SpendEntry, raft_service,
};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tonic::transport::server::TcpIncoming;

use crate::load::Plan;
use crate::procfs;

/// Arguments of `settle`.
#[derive(clap::Args)]
pub struct SettleArgs {
    /// Measured seconds per cell.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Warm-up seconds per cell, written but not measured.
    #[arg(long, default_value_t = 1)]
    warmup_s: u64,
    /// Entries per `Op::Settle` command, comma-separated; 1 is the unbatched baseline.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    batches: Vec<usize>,
    /// Concurrent writer tasks, each waiting for its command to commit before the next.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Print one JSON object instead of the tables.
    #[arg(long)]
    json: bool,
}

/// Which member the writers write through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// A follower: every command is forwarded to the leader, as a node's settlements are.
    Follower,
    /// The leader: no forwarding hop.
    Leader,
}

/// One member: its control plane and its gRPC server.
struct Member {
    control: Control,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

/// A running cluster of [`VOTERS`] members.
struct Cluster {
    members: Vec<Member>,
}

/// What one writer saw.
struct WriterTally {
    latency_us: Histogram<u64>,
    commands: u64,
    entries: u64,
    duplicates: u64,
    errors: u64,
    first_error: Option<String>,
    /// Entries applied per measured second, by the second their command was answered in.
    per_second: Vec<u64>,
    last_answer: Option<Instant>,
}

/// One (via, batch) cell, summarised.
struct Cell {
    via: Via,
    batch: usize,
    commands: u64,
    entries: u64,
    duplicates: u64,
    errors: u64,
    first_error: Option<String>,
    entries_per_s: f64,
    commands_per_s: f64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    first_second: Option<u64>,
    last_second: Option<u64>,
    /// Whole-process CPU per applied entry.
    cpu_us_per_entry: Option<f64>,
    /// Whole-process CPU as a share of all cores over the measured window.
    cpu_share: Option<f64>,
    /// The leader's last applied log index at the end.
    applied_index: u64,
    /// The leader's last snapshot's log index at the end.
    snapshot_index: Option<u64>,
    /// Settled request ids the leader's state holds for deduplication at the end.
    dedup_ids: usize,
    /// Bytes on disk under the three members' directories at the end.
    disk_bytes: u64,
    /// Set when the leader changed during the cell.
    leader_changed: bool,
}

/// Members per cluster.
const VOTERS: u64 = 3;
/// More writers than this measures the scheduler, not Raft.
const MAX_WRITERS: usize = 256;
/// One command's entries; the gRPC limit (64 MiB) allows far more, but a larger batch than this
/// is not a settlement a node would send.
const MAX_BATCH: usize = 65_536;
/// Bound on one cell's measured seconds.
const MAX_SECONDS: u64 = 600;
/// Bound on the first election.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after a cell's end the writers may take to finish (a write is bounded by the
/// control plane's 5 s write timeout).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a member's gRPC server may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest latency the histogram holds (60 s).
const MAX_LATENCY_US: u64 = 60_000_000;
/// The key every entry spends from.
const KEY_ID: &str = "key_bench_settle_0001";
/// The budget: far more than any cell spends at 1 micro-dollar per entry.
const BUDGET_MICROS: u64 = 1_000_000_000_000_000;
/// The allowance reserved from it.
const ALLOWANCE_MICROS: u64 = 100_000_000_000_000;
/// The allowance outlives any cell.
const ALLOWANCE_TTL_MS: u64 = 3_600_000;

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Follower => "follower",
            Via::Leader => "leader",
        }
    }
}

/// Runs every cell and prints the report.
///
/// # Errors
/// Invalid arguments, or a cluster that could not be started or set up.
pub async fn run(args: SettleArgs) -> anyhow::Result<()> {
    if args.seconds == 0 || args.seconds > MAX_SECONDS {
        bail!("--seconds must be between 1 and {MAX_SECONDS}");
    }
    if args.warmup_s > MAX_SECONDS {
        bail!("--warmup-s must be at most {MAX_SECONDS}");
    }
    if args.batches.is_empty() || args.batches.iter().any(|&b| b == 0 || b > MAX_BATCH) {
        bail!("--batches must list sizes between 1 and {MAX_BATCH}");
    }
    if args.writers == 0 || args.writers > MAX_WRITERS {
        bail!("--writers must be between 1 and {MAX_WRITERS}");
    }
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let work_dir =
        crate::work_dir(&exe).join(format!("switchyard-bench-settle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work_dir);
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    let clock = procfs::clock_ticks_per_second().await;

    let outcome = tokio::select! {
        r = all_cells(&args, &work_dir, clock.ticks_per_s) => r,
        r = tokio::signal::ctrl_c() => match r {
            Ok(()) => Err(anyhow::anyhow!("interrupted")),
            Err(e) => Err(anyhow::anyhow!("cannot listen for Ctrl-C: {e}")),
        },
    };
    let _ = std::fs::remove_dir_all(&work_dir);
    let cells = outcome?;
    let nproc = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    if args.json {
        println!("{}", json_report(&args, &cells, nproc, clock.ticks_per_s));
    } else {
        print!("{}", table(&args, &cells, nproc, clock.ticks_per_s));
    }
    Ok(())
}

/// Every batch size through a follower, then through the leader.
async fn all_cells(args: &SettleArgs, work_dir: &Path, clk_tck: u64) -> anyhow::Result<Vec<Cell>> {
    let mut cells = Vec::new();
    for (i, &batch) in args.batches.iter().enumerate() {
        for via in [Via::Follower, Via::Leader] {
            let dir = work_dir.join(format!("cell-{i}-{}", via.name()));
            let cluster = Cluster::start(&dir).await?;
            let measured = measure_cell(&cluster, args, via, batch, &dir, clk_tck).await;
            cluster.stop().await;
            let _ = std::fs::remove_dir_all(&dir);
            cells.push(measured?);
        }
    }
    Ok(cells)
}

impl Cluster {
    /// Starts [`VOTERS`] members under `dir`, forms the cluster on the first, and waits until
    /// every member knows the same leader.
    async fn start(dir: &Path) -> anyhow::Result<Self> {
        let mut cluster = Cluster {
            members: Vec::new(),
        };
        match cluster.form(dir).await {
            Ok(()) => Ok(cluster),
            Err(e) => {
                cluster.stop().await;
                Err(e)
            }
        }
    }

    async fn form(&mut self, dir: &Path) -> anyhow::Result<()> {
        for id in 1..=VOTERS {
            self.members
                .push(Member::start(id, &dir.join(format!("node-{id}"))).await?);
        }
        let voters: BTreeMap<u64, NodeInfo> = self
            .members
            .iter()
            .map(|m| (m.control.node_id(), m.control.info().clone()))
            .collect();
        self.members[0]
            .control
            .initialize(voters)
            .await
            .context("cannot initialise the cluster")?;
        let deadline = Instant::now() + ELECTION_TIMEOUT;
        loop {
            let leaders: Vec<Option<u64>> = self
                .members
                .iter()
                .map(|m| m.control.metrics().current_leader)
                .collect();
            if leaders[0].is_some() && leaders.iter().all(|l| *l == leaders[0]) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("the members did not agree on a leader within {ELECTION_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn leader(&self) -> anyhow::Result<&Member> {
        let id = self.members[0]
            .control
            .metrics()
            .current_leader
            .context("no leader")?;
        self.members
            .iter()
            .find(|m| m.control.node_id() == id)
            .context("the leader is not a member")
    }

    fn follower(&self) -> anyhow::Result<&Member> {
        let leader = self.leader()?.control.node_id();
        self.members
            .iter()
            .find(|m| m.control.node_id() != leader)
            .context("no follower")
    }

    /// Stops every gRPC server and every Raft, and flushes sled.
    async fn stop(self) {
        let mut servers = Vec::new();
        for m in self.members {
            let _ = m.stop.send(());
            let _ = m.control.shutdown().await;
            servers.push(m.server);
        }
        for mut server in servers {
            if tokio::time::timeout(STOP_TIMEOUT, &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }
}

impl Member {
    async fn start(id: u64, dir: &Path) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("cannot bind a loopback port")?;
        let addr = listener.local_addr()?;
        let info = NodeInfo {
            http: format!("http://{addr}"),
            grpc: format!("http://{addr}"),
        };
        let control = Control::open(id, info, dir, ControlConfig::default())
            .await
            .with_context(|| format!("cannot open member {id} in {}", dir.display()))?;
        let service = raft_service(&control);
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stopped.await;
                }),
        );
        Ok(Member {
            control,
            stop,
            server,
        })
    }
}

/// Sets up the key, budget and allowance, runs the writers through `via`, and summarises.
async fn measure_cell(
    cluster: &Cluster,
    args: &SettleArgs,
    via: Via,
    batch: usize,
    dir: &Path,
    clk_tck: u64,
) -> anyhow::Result<Cell> {
    let leader = cluster.leader()?;
    let leader_id = leader.control.node_id();
    let writer = match via {
        Via::Follower => cluster.follower()?,
        Via::Leader => leader,
    };
    let lease = set_up(&leader.control, writer.control.node_id()).await?;

    let plan = Plan::starting_now(
        Duration::from_secs(args.warmup_s),
        Duration::from_secs(args.seconds),
    );
    let mut set = JoinSet::new();
    for index in 0..args.writers {
        set.spawn(write_settlements(
            writer.control.clone(),
            index,
            batch,
            lease,
            plan,
            args.seconds,
        ));
    }
    tokio::time::sleep_until(plan.warmup_end.into()).await;
    let pid = std::process::id();
    let cpu_before = procfs::cpu_ticks(pid)?;
    let mut tallies = Vec::new();
    let deadline = tokio::time::Instant::from_std(plan.end + DRAIN_TIMEOUT);
    while let Some(joined) = tokio::time::timeout_at(deadline, set.join_next())
        .await
        .context("the writers did not finish in time")?
    {
        tallies.push(joined.context("a writer failed")??);
    }
    let cpu_ticks = procfs::cpu_ticks(pid)?.saturating_sub(cpu_before);
    let cpu_window = Instant::now().saturating_duration_since(plan.warmup_end);

    let metrics = leader.control.metrics();
    let dedup_ids = match leader.control.state().read() {
        Ok(s) => s.settled.len(),
        Err(p) => p.into_inner().settled.len(),
    };
    let mut cell = summarise(via, batch, tallies, &plan, args.seconds)?;
    cell.applied_index = metrics.last_applied.map_or(0, |l| l.index);
    cell.snapshot_index = metrics.snapshot.map(|l| l.index);
    cell.dedup_ids = dedup_ids;
    cell.disk_bytes = disk_usage(dir);
    cell.leader_changed = metrics.current_leader != Some(leader_id);
    let nproc = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let cpu_us = cpu_ticks as f64 * 1e6 / clk_tck as f64;
    cell.cpu_us_per_entry = (cell.entries > 0).then(|| cpu_us / cell.entries as f64);
    let window_us = cpu_window.as_secs_f64() * 1e6;
    cell.cpu_share = (window_us > 0.0).then(|| cpu_us / window_us / nproc as f64);
    Ok(cell)
}

/// Creates the key and its budget and reserves one allowance for `node`, through the leader;
/// returns the lease.
async fn set_up(leader: &Control, node: u64) -> anyhow::Result<u64> {
    let key = KeyRecord {
        id: KEY_ID.to_owned(),
        digest_hex: "00".repeat(32),
        prefix: "sk-sy-bench".to_owned(),
        name: "bench-settle".to_owned(),
        owner: None,
        team: None,
        models: Vec::new(),
        rpm: 0,
        tpm: 0,
        expires_at_ms: None,
        tags: BTreeMap::new(),
        status: KeyStatus::Active,
        created_at_ms: unix_ms(),
        strategy: None,
        limits: switchyard_control::RoutingLimits::default(),
    };
    let scope = Scope::Key(KEY_ID.to_owned());
    let ops = [
        Op::CreateKey(key),
        Op::SetBudget {
            scope: scope.clone(),
            limit_micros: BUDGET_MICROS,
            period: Period::Total,
            alert_thresholds_pct: Vec::new(),
        },
        Op::Reserve {
            node,
            scope,
            want_micros: ALLOWANCE_MICROS,
            ttl_ms: ALLOWANCE_TTL_MS,
        },
    ];
    let mut lease = None;
    for op in ops {
        let summary = op.summary();
        let cmd = Command {
            at_ms: unix_ms(),
            actor: Some("bench".to_owned()),
            op,
        };
        match leader.write(cmd).await {
            Ok(Response::Rejected(why)) => bail!("set-up step {summary:?} refused: {why:?}"),
            Ok(Response::Reserved { lease: l, .. }) if l != 0 => lease = Some(l),
            Ok(Response::Reserved { .. }) => bail!("the allowance was not granted"),
            Ok(_) => {}
            Err(e) => bail!("set-up step {summary:?} failed: {e}"),
        }
    }
    lease.context("no allowance was reserved")
}

/// One writer: `Op::Settle` commands of `batch` entries back to back until the plan ends.
async fn write_settlements(
    control: Control,
    index: usize,
    batch: usize,
    lease: u64,
    plan: Plan,
    seconds: u64,
) -> anyhow::Result<WriterTally> {
    let node = control.node_id();
    let mut tally = WriterTally {
        latency_us: new_histogram()?,
        commands: 0,
        entries: 0,
        duplicates: 0,
        errors: 0,
        first_error: None,
        per_second: vec![0; usize::try_from(seconds)?],
        last_answer: None,
    };
    let mut seq: u64 = 0;
    while Instant::now() < plan.end {
        let entries: Vec<SpendEntry> = (0..batch)
            .map(|_| {
                seq += 1;
                SpendEntry {
                    // Shaped like a node's request ids (`sy-NODE-SALT-SEQ`).
                    request_id: format!("sy-{node}-bench{index:03}-{seq}"),
                    key_id: KEY_ID.to_owned(),
                    team: None,
                    model: "gpt-4o-mini".to_owned(),
                    tags: Vec::new(),
                    cost_micros: 1,
                    leases: vec![lease],
                }
            })
            .collect();
        let cmd = Command {
            at_ms: unix_ms(),
            actor: None,
            op: Op::Settle {
                node,
                entries,
                release: Vec::new(),
            },
        };
        let sent = Instant::now();
        let outcome = control.write(cmd).await;
        let answered = Instant::now();
        if sent < plan.warmup_end {
            continue;
        }
        match outcome {
            Ok(Response::Settled {
                applied,
                duplicates,
            }) => {
                let micros =
                    u64::try_from(answered.duration_since(sent).as_micros()).unwrap_or(u64::MAX);
                tally.latency_us.saturating_record(micros.max(1));
                tally.commands += 1;
                tally.entries += u64::from(applied);
                tally.duplicates += u64::from(duplicates);
                tally.last_answer = Some(answered);
                let second = answered
                    .saturating_duration_since(plan.warmup_end)
                    .as_secs();
                if let Some(slot) = usize::try_from(second)
                    .ok()
                    .and_then(|s| tally.per_second.get_mut(s))
                {
                    *slot += u64::from(applied);
                }
            }
            Ok(other) => tally.fail(format!("unexpected reply: {other:?}")),
            Err(e) => tally.fail(e.to_string()),
        }
    }
    Ok(tally)
}

impl WriterTally {
    fn fail(&mut self, why: String) {
        self.errors += 1;
        self.first_error.get_or_insert(why);
    }
}

fn summarise(
    via: Via,
    batch: usize,
    tallies: Vec<WriterTally>,
    plan: &Plan,
    seconds: u64,
) -> anyhow::Result<Cell> {
    let mut latency = new_histogram()?;
    let mut per_second = vec![0_u64; usize::try_from(seconds)?];
    let (mut commands, mut entries, mut duplicates, mut errors) = (0, 0, 0, 0);
    let mut first_error = None;
    let mut last_answer = plan.warmup_end;
    for t in tallies {
        latency
            .add(&t.latency_us)
            .context("cannot merge histograms")?;
        commands += t.commands;
        entries += t.entries;
        duplicates += t.duplicates;
        errors += t.errors;
        first_error = first_error.or(t.first_error);
        last_answer = last_answer.max(t.last_answer.unwrap_or(plan.warmup_end));
        for (sum, n) in per_second.iter_mut().zip(&t.per_second) {
            *sum += n;
        }
    }
    let secs = last_answer
        .saturating_duration_since(plan.warmup_end)
        .as_secs_f64();
    let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    Ok(Cell {
        via,
        batch,
        commands,
        entries,
        duplicates,
        errors,
        first_error,
        entries_per_s: rate(entries),
        commands_per_s: rate(commands),
        p50_us: latency.value_at_quantile(0.50),
        p99_us: latency.value_at_quantile(0.99),
        max_us: latency.max(),
        first_second: per_second.first().copied(),
        last_second: per_second.last().copied(),
        cpu_us_per_entry: None,
        cpu_share: None,
        applied_index: 0,
        snapshot_index: None,
        dedup_ids: 0,
        disk_bytes: 0,
        leader_changed: false,
    })
}

/// entries/s of `cell` over the baseline (batch 1 if measured, else the smallest batch) through
/// the same member.
fn speedup(cells: &[Cell], cell: &Cell) -> Option<f64> {
    let base = cells
        .iter()
        .filter(|c| c.via == cell.via)
        .min_by_key(|c| c.batch)?;
    (base.entries_per_s > 0.0).then(|| cell.entries_per_s / base.entries_per_s)
}

fn baseline_batch(cells: &[Cell]) -> usize {
    cells.iter().map(|c| c.batch).min().unwrap_or(1)
}

fn find(cells: &[Cell], via: Via, batch: usize) -> Option<&Cell> {
    cells.iter().find(|c| c.via == via && c.batch == batch)
}

fn table(args: &SettleArgs, cells: &[Cell], nproc: usize, clk_tck: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "switchyard-bench settle: nproc {nproc}, CLK_TCK {clk_tck}, {VOTERS} voters in this process \
         on loopback (openraft on sled, tonic gRPC), {} writers, {} s warm-up + {} s measured per \
         cell, a fresh cluster per cell",
        args.writers, args.warmup_s, args.seconds
    );
    let _ = writeln!(
        out,
        "Each command is one Op::Settle of `batch` entries (cost 1 micro-dollar each, one \
         allowance), written with Control::write and counted once the leader applied it.\n"
    );
    let base = baseline_batch(cells);
    let _ = writeln!(
        out,
        "{:<10}{:>7}{:>11}{:>9}{:>9}{:>9}{:>9}{:>8}{:>11}{:>11}{:>10}{:>7}{:>8}",
        "writes on",
        "batch",
        "entries/s",
        "cmds/s",
        "p50 µs",
        "p99 µs",
        "max µs",
        format!("x B={base}"),
        "1st s e/s",
        "last s e/s",
        "CPU µs/e",
        "CPU %",
        "errors"
    );
    for c in cells {
        let _ = writeln!(
            out,
            "{:<10}{:>7}{:>11.0}{:>9.0}{:>9}{:>9}{:>9}{:>8}{:>11}{:>11}{:>10}{:>7}{:>8}",
            c.via.name(),
            c.batch,
            c.entries_per_s,
            c.commands_per_s,
            c.p50_us,
            c.p99_us,
            c.max_us,
            speedup(cells, c).map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}x")),
            c.first_second
                .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            c.last_second
                .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            c.cpu_us_per_entry
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.1}")),
            c.cpu_share
                .map_or_else(|| "-".to_owned(), |v| format!("{:.0}", v * 100.0)),
            c.errors
        );
    }
    let _ = writeln!(
        out,
        "  p50/p99/max: commit latency of one command as its writer saw it; x B={base}: entries/s \
         over batch {base} through the same member;\n  1st s / last s e/s: entries applied in the \
         first and in the last measured second; CPU: the whole process (3 voters, both ends of \
         gRPC, writers), per entry and as a share of all cores.\n"
    );

    let mut batches: Vec<usize> = cells.iter().map(|c| c.batch).collect();
    batches.dedup();
    let _ = writeln!(out, "forwarding (writes on a follower vs on the leader)");
    let _ = writeln!(
        out,
        "  {:>7}{:>18}{:>18}{:>18}",
        "batch", "entries/s f/l", "p50 f-l µs", "p99 f-l µs"
    );
    for &b in &batches {
        let (Some(f), Some(l)) = (find(cells, Via::Follower, b), find(cells, Via::Leader, b))
        else {
            continue;
        };
        let ratio = if l.entries_per_s > 0.0 {
            format!("{:.2}x", f.entries_per_s / l.entries_per_s)
        } else {
            "n/a".to_owned()
        };
        let _ = writeln!(
            out,
            "  {b:>7}{ratio:>18}{:>18}{:>18}",
            signed(f.p50_us) - signed(l.p50_us),
            signed(f.p99_us) - signed(l.p99_us)
        );
    }

    let _ = writeln!(out, "\nstate at the end of each cell (on the leader)");
    let _ = writeln!(
        out,
        "  {:<10}{:>7}{:>10}{:>12}{:>12}{:>12}{:>11}",
        "writes on", "batch", "commands", "log index", "snapshot@", "dedup ids", "disk MiB"
    );
    for c in cells {
        let _ = writeln!(
            out,
            "  {:<10}{:>7}{:>10}{:>12}{:>12}{:>12}{:>11.1}",
            c.via.name(),
            c.batch,
            c.commands,
            c.applied_index,
            c.snapshot_index
                .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            c.dedup_ids,
            c.disk_bytes as f64 / (1024.0 * 1024.0)
        );
    }
    for c in cells.iter().filter(|c| c.errors > 0 || c.duplicates > 0) {
        let _ = writeln!(
            out,
            "\nerrors: {} batch {}: {} failed writes, {} entries reported as duplicates (first: {})",
            c.via.name(),
            c.batch,
            c.errors,
            c.duplicates,
            c.first_error.as_deref().unwrap_or("-")
        );
    }
    for c in cells.iter().filter(|c| c.leader_changed) {
        let _ = writeln!(
            out,
            "\nnote: the leader changed during {} batch {}; its figures include an election",
            c.via.name(),
            c.batch
        );
    }
    out
}

fn json_report(args: &SettleArgs, cells: &[Cell], nproc: usize, clk_tck: u64) -> Value {
    let rows: Vec<Value> = cells
        .iter()
        .map(|c| {
            json!({
                "writes_on": c.via.name(),
                "batch": c.batch,
                "commands": c.commands,
                "entries": c.entries,
                "duplicates": c.duplicates,
                "errors": c.errors,
                "first_error": c.first_error,
                "entries_per_s": c.entries_per_s,
                "commands_per_s": c.commands_per_s,
                "p50_us": c.p50_us,
                "p99_us": c.p99_us,
                "max_us": c.max_us,
                "speedup_over_baseline": speedup(cells, c),
                "first_second_entries": c.first_second,
                "last_second_entries": c.last_second,
                "cpu_us_per_entry": c.cpu_us_per_entry,
                "cpu_share": c.cpu_share,
                "applied_index": c.applied_index,
                "snapshot_index": c.snapshot_index,
                "dedup_ids": c.dedup_ids,
                "disk_bytes": c.disk_bytes,
                "leader_changed": c.leader_changed,
            })
        })
        .collect();
    json!({
        "nproc": nproc,
        "clk_tck": clk_tck,
        "voters": VOTERS,
        "writers": args.writers,
        "warmup_s": args.warmup_s,
        "seconds": args.seconds,
        "baseline_batch": baseline_batch(cells),
        "cells": rows,
    })
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).context("cannot create a histogram")
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Bytes in the files under `dir`, recursively (0 for what cannot be read).
fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speedup_is_over_the_smallest_batch_through_the_same_member() {
        let plan = Plan::starting_now(Duration::ZERO, Duration::from_secs(1));
        let mut cells = Vec::new();
        for (via, batch, rate) in [
            (Via::Follower, 1, 100.0),
            (Via::Follower, 16, 800.0),
            (Via::Leader, 1, 200.0),
            (Via::Leader, 16, 1000.0),
        ] {
            let mut c = summarise(via, batch, Vec::new(), &plan, 1).unwrap();
            c.entries_per_s = rate;
            cells.push(c);
        }
        assert_eq!(speedup(&cells, &cells[1]), Some(8.0));
        assert_eq!(speedup(&cells, &cells[3]), Some(5.0));
    }
}

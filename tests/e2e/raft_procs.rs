//! The Raft control plane under real process failures: `switchyard serve` child processes
//! (testkit's `ProcessCluster`) killed with `kill -9` and restarted on the same data directory
//! and ports, driven with `switchyard ctl --json` and plain HTTP on loopback. Each test prints
//! the figures it measured (failover time, acknowledged writes, overspend, refusals).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use serde_json::{Value, json};
use switchyard_proto::pb;
use switchyard_proto::pb::admin_service_client::AdminServiceClient;
use switchyard_testkit::procs::ProcessCluster;
use switchyard_testkit::{Reply, eventually, post_json};
use tokio::time::Instant;

/// Bound on a test's scenario (the cluster's start has its own 30 s bound); the cluster's
/// directory and log tails are kept on failure (`ProcessCluster::run`).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);
/// A new leader must be reported this soon after the old one is killed (DESIGN: 3 s failover).
const FAILOVER_TARGET: Duration = Duration::from_secs(3);
/// How long a restarted node may take to catch up.
const CATCH_UP: Duration = Duration::from_secs(10);
/// The capped key's budget: $0.002.
const CAP_MICROS: u64 = 2_000;
/// Concurrent clients spending from the capped key.
const CLIENTS: usize = 64;
/// How long the clients may run before they give up.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

/// A mutex's guard, also after a panic elsewhere poisoned it (the data is counters).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn chat_body() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 16})
}

/// `POST /v1/chat/completions` with `key` on `http`, retrying only transport errors (a pooled
/// connection to a process that has been killed since) for up to 5 s; the first HTTP answer.
async fn chat(http: &str, key: &str) -> anyhow::Result<Reply> {
    let url = format!("{http}/v1/chat/completions");
    let auth = format!("Bearer {key}");
    let (url, auth) = (&url, &auth);
    eventually(
        Duration::from_secs(5),
        &format!("an HTTP answer from {url}"),
        move || async move {
            post_json(url, &[("authorization", auth)], &chat_body())
                .await
                .ok()
        },
    )
    .await
}

fn id_of(created: &Value) -> anyhow::Result<String> {
    created["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("keys create printed no id: {created}"))
}

/// 1. Three nodes; find the leader; create a key through ctl.
/// 2. `kill -9` the leader. A survivor reports a different leader within 3 s (printed).
/// 3. A second key created through a surviving follower is acknowledged.
/// 4. The old leader restarts on its data directory: within 10 s it lists both keys, and the
///    demo key gets a 200 chat answered by it.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_leader_new_leader_within_3s_writes_continue_and_old_leader_catches_up()
-> anyhow::Result<()> {
    let cluster = ProcessCluster::start(3).await?;
    cluster
        .run(SCENARIO_TIMEOUT, async |c| {
            // 1.
            let old = c.wait_leader(Duration::from_secs(10)).await?;
            let k1 = id_of(
                &c.ctl(&["keys", "create", "--name", "before-failover"])
                    .await?,
            )?;

            // 2.
            let killed_at = Instant::now();
            c.kill9(old).await?;
            let new = c.wait_leader(Duration::from_secs(10)).await?;
            let failover = killed_at.elapsed();
            println!("failover: node {old} killed, node {new} reported leader after {failover:?}");
            anyhow::ensure!(new != old, "the killed node {old} is still the leader");
            anyhow::ensure!(
                failover < FAILOVER_TARGET,
                "new leader after {failover:?}, over the {FAILOVER_TARGET:?} target"
            );

            // 3.
            let survivor = c
                .live_ids()
                .into_iter()
                .find(|id| *id != new)
                .context("no surviving follower")?;
            let k2 = id_of(
                &c.ctl_via(survivor, &["keys", "create", "--name", "after-failover"])
                    .await?,
            )?;

            // 4.
            c.restart(old).await?;
            let (c_ref, k1_ref, k2_ref) = (&*c, &k1, &k2);
            eventually(
                CATCH_UP,
                &format!("restarted node {old} lists {k1} and {k2}"),
                move || async move {
                    let ids = c_ref.key_ids_via(old).await.ok()?;
                    (ids.contains(k1_ref) && ids.contains(k2_ref)).then_some(())
                },
            )
            .await?;
            let r = chat(&c.http(old), c.demo_key()).await?;
            anyhow::ensure!(
                r.status == 200,
                "demo key on the restarted node {old}: {} {}",
                r.status,
                r.text()
            );
            anyhow::ensure!(
                r.header("x-switchyard-node") == Some(old.to_string()),
                "answered by {:?}, not the restarted node {old}",
                r.header("x-switchyard-node")
            );
            Ok(())
        })
        .await
}

/// 1. Three nodes; three writers create keys through ctl, each rotating over the nodes, and
///    record every key id ctl acknowledged (exit 0 with an id).
/// 2. After 2 s and at least 10 acknowledged writes, all three nodes get `kill -9` in one
///    command; the writers stop.
/// 3. All three restart on their data directories and elect a leader.
/// 4. Within 10 s every node lists every acknowledged key (count printed).
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_all_three_under_write_load_and_restart_keeps_every_acknowledged_write()
-> anyhow::Result<()> {
    let cluster = ProcessCluster::start(3).await?;
    cluster
        .run(SCENARIO_TIMEOUT, async |c| {
            // 1.
            c.wait_leader(Duration::from_secs(10)).await?;
            let ctl = c.ctl_handle();
            let endpoints: Arc<Vec<String>> =
                Arc::new(c.ids().iter().map(|id| c.grpc(*id)).collect());
            let acked = Arc::new(Mutex::new(Vec::<String>::new()));
            let attempts = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let mut writers = Vec::new();
            for w in 0..3usize {
                let (ctl, endpoints, acked, attempts, stop) = (
                    ctl.clone(),
                    Arc::clone(&endpoints),
                    Arc::clone(&acked),
                    Arc::clone(&attempts),
                    Arc::clone(&stop),
                );
                writers.push(tokio::spawn(async move {
                    let mut i = w;
                    while !stop.load(Ordering::Acquire) {
                        let name = format!("load-{w}-{i}");
                        attempts.fetch_add(1, Ordering::Relaxed);
                        let ep = &endpoints[i % endpoints.len()];
                        if let Ok(v) = ctl.run(ep, &["keys", "create", "--name", &name]).await
                            && let Some(id) = v["id"].as_str()
                        {
                            lock(&acked).push(id.to_owned());
                        }
                        i += 1;
                    }
                }));
            }

            // 2.
            let started = Instant::now();
            let acked_ref = &acked;
            eventually(
                Duration::from_secs(20),
                "2 s of writes with at least 10 acknowledged",
                move || async move {
                    (started.elapsed() >= Duration::from_secs(2) && lock(acked_ref).len() >= 10)
                        .then_some(())
                },
            )
            .await?;
            c.kill9_all(&c.ids()).await?;
            stop.store(true, Ordering::Release);
            for w in writers {
                w.await?;
            }
            let acked: BTreeSet<String> = lock(&acked).iter().cloned().collect();
            println!(
                "acknowledged writes before kill -9 of all three: {} of {} attempts",
                acked.len(),
                attempts.load(Ordering::Relaxed)
            );

            // 3.
            for id in c.ids() {
                c.restart(id).await?;
            }
            c.wait_leader(Duration::from_secs(15)).await?;

            // 4.
            for id in c.ids() {
                let (c_ref, acked_ref) = (&*c, &acked);
                eventually(
                    CATCH_UP,
                    &format!("node {id} lists all {} acknowledged keys", acked.len()),
                    move || async move {
                        let ids = c_ref.key_ids_via(id).await.ok()?;
                        acked_ref.is_subset(&ids).then_some(())
                    },
                )
                .await
                .map_err(|e| {
                    anyhow::anyhow!("{e:#} (node {id} is missing some acknowledged writes)")
                })?;
            }
            Ok(())
        })
        .await
}

/// What the capped key's clients saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    /// Sum of `x-switchyard-cost-micros` of the 200s.
    cost: AtomicU64,
    /// The same by answering node (`x-switchyard-node`).
    cost_by_node: Mutex<BTreeMap<u64, u64>>,
    /// 429 `insufficient_quota` with `x-should-retry: false`: the budget refused.
    quota_refusals: AtomicU64,
    /// 503 `unavailable`: a node could not reserve budget (no quorum in reach).
    unavailable: AtomicU64,
    /// Transport errors (a killed node): not refusals; the client moves on.
    transport_errors: AtomicU64,
    /// Clients that hit the deadline without a quota refusal.
    timed_out: AtomicU64,
    /// Anything else, described.
    unexpected: Mutex<Vec<String>>,
}

/// One client: chat requests with `key`, starting on node `first` of `urls` and moving to the
/// next node after a transport error or a 503, until its first 429 (or the deadline).
async fn spend_until_refused(
    urls: Arc<Vec<String>>,
    first: usize,
    key: String,
    deadline: Instant,
    tally: Arc<Tally>,
) {
    let auth = format!("Bearer {key}");
    let mut at = first;
    loop {
        if Instant::now() >= deadline {
            tally.timed_out.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let url = format!("{}/v1/chat/completions", urls[at % urls.len()]);
        let r = match post_json(&url, &[("authorization", &auth)], &chat_body()).await {
            Ok(r) => r,
            Err(_) => {
                tally.transport_errors.fetch_add(1, Ordering::Relaxed);
                at += 1;
                continue;
            }
        };
        let body = r.json();
        let code = body["error"]["code"].as_str().unwrap_or_default();
        let retry = r.header("x-should-retry").unwrap_or_default();
        match r.status {
            200 => {
                tally.ok.fetch_add(1, Ordering::Relaxed);
                let cost: u64 = r
                    .header("x-switchyard-cost-micros")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or_default();
                tally.cost.fetch_add(cost, Ordering::Relaxed);
                let node: u64 = r
                    .header("x-switchyard-node")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_default();
                *lock(&tally.cost_by_node).entry(node).or_default() += cost;
            }
            429 => {
                if code == "insufficient_quota" && retry == "false" {
                    tally.quota_refusals.fetch_add(1, Ordering::Relaxed);
                } else {
                    lock(&tally.unexpected).push(format!(
                        "429 with code {code:?}, x-should-retry {retry:?}: {}",
                        r.text()
                    ));
                }
                return;
            }
            503 if code == "unavailable" => {
                tally.unavailable.fetch_add(1, Ordering::Relaxed);
                at += 1;
            }
            s => {
                lock(&tally.unexpected).push(format!("{s}: {}", r.text()));
                at += 1;
            }
        }
    }
}

/// Creates a key with a $0.002 budget and waits until every live node has its budget.
async fn capped_key(c: &ProcessCluster) -> anyhow::Result<(String, String)> {
    let created = c
        .ctl(&[
            "keys",
            "create",
            "--name",
            "capped",
            "--budget-usd",
            "0.002",
        ])
        .await?;
    let id = id_of(&created)?;
    let secret = created["key"]
        .as_str()
        .context("keys create printed no secret")?
        .to_owned();
    for node in c.live_ids() {
        let id = &id;
        eventually(
            Duration::from_secs(5),
            &format!("node {node} has the capped key's budget"),
            move || async move {
                let b = c
                    .ctl_via(node, &["budgets", "show", "--key", id])
                    .await
                    .ok()?;
                (b["limit_micros"].as_u64() == Some(CAP_MICROS)).then_some(())
            },
        )
        .await?;
    }
    Ok((id, secret))
}

/// The budget's accounts as a live node reports them: (budget spent, reserved, settled spend
/// of the key from the spend report, charges for expired allowances).
async fn accounts(c: &ProcessCluster, id: &str) -> anyhow::Result<(u64, u64, u64, u64)> {
    // The spend report first: settlement only moves reserved to spent, so a budget read after
    // it covers at least what the report shows.
    let s = c.ctl(&["spend", "--key", id]).await?;
    let b = c.ctl(&["budgets", "show", "--key", id]).await?;
    let n = |v: &Value, k: &str| v[k].as_u64().with_context(|| format!("no {k} in {v}"));
    Ok((
        n(&b, "spent_micros")?,
        n(&b, "reserved_micros")?,
        n(&s, "spent_micros")?,
        n(&s, "expired_charges_micros")?,
    ))
}

/// The outcome of one capped run: the mock's bill and the clients' tally.
struct CappedRun {
    ledger_total: u64,
    ledger_entries: usize,
    tally: Arc<Tally>,
    killed: Option<u64>,
}

/// Runs [`CLIENTS`] clients over every live node with the capped key; with `kill_leader`,
/// `kill -9`s the leader once about half the budget has been spent (or after 1 s).
#[expect(
    clippy::print_stdout,
    reason = "the test prints the figures it measured"
)]
async fn capped_run(
    c: &mut ProcessCluster,
    secret: &str,
    kill_leader: bool,
) -> anyhow::Result<CappedRun> {
    let urls: Arc<Vec<String>> = Arc::new(c.live_ids().iter().map(|id| c.http(*id)).collect());
    let tally = Arc::new(Tally::default());
    let deadline = Instant::now() + CLIENT_DEADLINE;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(spend_until_refused(
                Arc::clone(&urls),
                i,
                secret.to_owned(),
                deadline,
                Arc::clone(&tally),
            ))
        })
        .collect();
    let mut killed = None;
    if kill_leader {
        let leader = c.wait_leader(Duration::from_secs(5)).await?;
        let t = &tally;
        // Half the budget, or 1 s: whichever comes first.
        let _ = eventually(
            Duration::from_secs(1),
            "half the budget spent",
            move || async move { (t.cost.load(Ordering::Relaxed) >= CAP_MICROS / 2).then_some(()) },
        )
        .await;
        println!(
            "killing leader {leader} after {} requests costing {} µ$",
            tally.ok.load(Ordering::Relaxed),
            tally.cost.load(Ordering::Relaxed)
        );
        c.kill9(leader).await?;
        killed = Some(leader);
    }
    for client in clients {
        client.await?;
    }
    let ledger = c.mock_ledger().await?;
    Ok(CappedRun {
        ledger_total: ledger["total_billed_micros"]
            .as_u64()
            .with_context(|| format!("ledger without total: {ledger}"))?,
        ledger_entries: ledger["entries"].as_array().map_or(0, Vec::len),
        tally,
        killed,
    })
}

/// Prints and checks what every capped run must show: the mock billed at most the budget
/// (overspend 0), every client ended on a quota refusal, nothing unexpected came back.
#[expect(
    clippy::print_stdout,
    reason = "the test prints the figures it measured"
)]
fn check_capped_run(run: &CappedRun, allow_unavailable: bool) -> anyhow::Result<()> {
    let t = &run.tally;
    let overspend = run.ledger_total.saturating_sub(CAP_MICROS);
    println!(
        "hard cap{}: ledger billed {} µ$ over {} requests (cap {CAP_MICROS}, overspend {overspend}); \
         clients saw {} × 200 costing {} µ$, {} × 429 insufficient_quota, {} × 503 unavailable, \
         {} transport errors, {} timed out, {} unexpected",
        run.killed
            .map(|l| format!(" with leader {l} killed"))
            .unwrap_or_default(),
        run.ledger_total,
        run.ledger_entries,
        t.ok.load(Ordering::Relaxed),
        t.cost.load(Ordering::Relaxed),
        t.quota_refusals.load(Ordering::Relaxed),
        t.unavailable.load(Ordering::Relaxed),
        t.transport_errors.load(Ordering::Relaxed),
        t.timed_out.load(Ordering::Relaxed),
        lock(&t.unexpected).len(),
    );
    anyhow::ensure!(
        overspend == 0,
        "the mock billed {} µ$ for a {CAP_MICROS} µ$ budget",
        run.ledger_total
    );
    let unexpected = lock(&t.unexpected);
    anyhow::ensure!(
        unexpected.is_empty(),
        "unexpected answers: {:?}",
        &unexpected[..unexpected.len().min(5)]
    );
    anyhow::ensure!(
        allow_unavailable || t.unavailable.load(Ordering::Relaxed) == 0,
        "503 unavailable without any node failure"
    );
    anyhow::ensure!(
        t.timed_out.load(Ordering::Relaxed) == 0,
        "clients still had no quota refusal after {CLIENT_DEADLINE:?}"
    );
    anyhow::ensure!(
        t.quota_refusals.load(Ordering::Relaxed) == CLIENTS as u64,
        "every client should end on a 429 insufficient_quota"
    );
    anyhow::ensure!(
        t.cost.load(Ordering::Relaxed) <= run.ledger_total,
        "clients were told of more cost than the mock billed"
    );
    Ok(())
}

/// Waits until the settled spend the cluster reports reaches `settled_at_least` (settlement is
/// batched every 100 ms), checking on every look that the budget never shows more than its
/// limit; then checks that the budget (settled spend plus what outstanding allowances still
/// hold: a killed node's unsettled allowance stays reserved until it expires and is then
/// charged in full) covers everything the mock billed. Prints the accounts.
#[expect(
    clippy::print_stdout,
    reason = "the test prints the figures it measured"
)]
async fn budget_accounts_for_the_bill(
    c: &ProcessCluster,
    id: &str,
    settled_at_least: u64,
    ledger_total: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let (spent, reserved, settled, expired) = loop {
        let (spent, reserved, settled, expired) = accounts(c, id).await?;
        anyhow::ensure!(
            spent + reserved <= CAP_MICROS,
            "budget shows spent {spent} + reserved {reserved} over its {CAP_MICROS} µ$ limit"
        );
        if settled >= settled_at_least {
            break (spent, reserved, settled, expired);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "after {timeout:?} the cluster reports {settled} µ$ settled, short of the \
             {settled_at_least} µ$ its live nodes answered with"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "budget: spent {spent} µ$ (spend report: settled {settled}, expired allowances {expired}), \
         reserved {reserved}, mock ledger {ledger_total}"
    );
    anyhow::ensure!(
        spent + reserved >= ledger_total,
        "the budget (spent {spent} + reserved {reserved}) does not cover the {ledger_total} µ$ \
         the mock billed"
    );
    anyhow::ensure!(
        settled + expired + reserved >= ledger_total,
        "settled {settled} + expired {expired} + reserved {reserved} does not cover the \
         {ledger_total} µ$ the mock billed"
    );
    Ok(())
}

/// 1. Three nodes; a key with a $0.002 budget (2000 µ$).
/// 2. 64 clients spread over the three nodes send chats with it until each gets a 429.
/// 3. The mock billed at most 2000 µ$ (overspend 0, printed); every refusal was a 429
///    `insufficient_quota` with `x-should-retry: false`; no 503.
/// 4. Within 5 s of the last answer the spend the cluster reports covers the whole bill, and
///    the budget never shows more than its limit.
#[tokio::test(flavor = "multi_thread")]
async fn hard_cap_holds_under_64_concurrent_clients() -> anyhow::Result<()> {
    let cluster = ProcessCluster::start(3).await?;
    cluster
        .run(SCENARIO_TIMEOUT, async |c| {
            // 1.
            let (id, secret) = capped_key(c).await?;
            // 2.
            let run = capped_run(c, &secret, false).await?;
            // 3.
            check_capped_run(&run, false)?;
            // 4.
            budget_accounts_for_the_bill(
                c,
                &id,
                run.ledger_total,
                run.ledger_total,
                Duration::from_secs(5),
            )
            .await
        })
        .await
}

/// 1. Three nodes; a key with a $0.002 budget (2000 µ$).
/// 2. 64 clients spread over the three nodes send chats with it until each gets a 429; a
///    client whose node dies moves to the next one (a transport error is not a refusal).
/// 3. Once about half the budget is spent (or after 1 s) the leader gets `kill -9`.
/// 4. The mock billed at most 2000 µ$ (overspend 0, printed); refusals were 429
///    `insufficient_quota` with `x-should-retry: false`, or 503 `unavailable` while a node could
///    not reach a leader (counted apart, printed).
/// 5. The killed node restarts; within 10 s every request the surviving nodes answered is
///    settled, the budget (settled spend plus what outstanding allowances, the killed node's
///    included, still hold) covers the whole bill, and it never shows more than its limit.
/// 6. Once no allowance is outstanding (the killed leader's expire after 30 s and are charged in
///    full), the spend `ctl spend --key` reports covers the whole bill.
#[tokio::test(flavor = "multi_thread")]
async fn hard_cap_holds_with_the_leader_killed_halfway() -> anyhow::Result<()> {
    let cluster = ProcessCluster::start(3).await?;
    cluster
        .run(SCENARIO_TIMEOUT, async |c| {
            // 1.
            let (id, secret) = capped_key(c).await?;
            // 2. and 3.
            let run = capped_run(c, &secret, true).await?;
            // 4.
            check_capped_run(&run, true)?;
            // 5.
            let killed = run.killed.context("no node was killed")?;
            c.restart(killed).await?;
            c.wait_leader(Duration::from_secs(10)).await?;
            let answered_by_survivors: u64 = lock(&run.tally.cost_by_node)
                .iter()
                .filter(|(node, _)| **node != killed)
                .map(|(_, cost)| cost)
                .sum();
            budget_accounts_for_the_bill(
                &*c,
                &id,
                answered_by_survivors,
                run.ledger_total,
                CATCH_UP,
            )
            .await?;
            // 6.
            spend_report_covers_the_bill_once_allowances_end(&*c, &id, run.ledger_total).await
        })
        .await
}

/// Once every allowance has ended (released by its holder, or expired and charged in full by
/// the leader: the killed leader's unsettled ones after their 30 s lifetime), the spend `ctl`
/// reports for the key covers everything the mock billed, and stays within the budget.
#[expect(
    clippy::print_stdout,
    reason = "the test prints the figures it measured"
)]
async fn spend_report_covers_the_bill_once_allowances_end(
    c: &ProcessCluster,
    id: &str,
    ledger_total: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    eventually(
        Duration::from_secs(45),
        "every allowance released or expired",
        || async {
            let (_, reserved, _, _) = accounts(c, id).await.ok()?;
            (reserved == 0).then_some(())
        },
    )
    .await?;
    // Read again: `accounts` reads the spend report before the budget, so the read that saw
    // nothing reserved may hold a report from just before the last expiry.
    let (spent, _, settled, expired) = accounts(c, id).await?;
    println!(
        "after {:?} no allowance is outstanding: the spend report shows {settled} µ$ settled + {expired} µ$ charged for expired allowances (budget spent {spent}), mock ledger {ledger_total} µ$",
        started.elapsed()
    );
    anyhow::ensure!(
        settled + expired >= ledger_total,
        "the spend ctl reports ({settled} + {expired} expired) is short of the {ledger_total} µ$ the mock billed"
    );
    anyhow::ensure!(spent >= ledger_total && spent <= CAP_MICROS);
    Ok(())
}

/// The highest index a node's log says it purged up to (openraft at info:
/// `purge_log ... purge_upto=Some(T1-N1-505)`).
fn purged_upto(log: &str) -> Option<u64> {
    log.lines()
        .filter(|l| l.contains("purge_log"))
        .filter_map(|l| {
            let (_, rest) = l.split_once("purge_upto=Some(")?;
            let (log_id, _) = rest.split_once(')')?;
            log_id.rsplit('-').next()?.parse().ok()
        })
        .max()
}

/// Keys created straight through the admin gRPC API (ctl per key would take a process each).
const SNAPSHOT_KEYS: usize = 1_200;

/// 1. Three nodes; 1200 keys created through the admin gRPC API on the leader, more than the
///    1000 entries after which a snapshot is built (500 entries are kept behind it, so the
///    first ~700 are purged from the log).
/// 2. A fourth process starts without bootstrapping, listing all four nodes as members, and is
///    added with `ctl cluster add-node` sent to a follower (forwarded to the leader); the
///    replicated audit log shows the change.
/// 3. Within 30 s it lists every key. The leader's log shows it purged the early entries
///    before the node was added, so the node can only have caught up by snapshot; its own log
///    shows the snapshot arriving in many chunks (the harness sets 16 KiB pieces) and its
///    install.
#[tokio::test(flavor = "multi_thread")]
async fn node_added_later_catches_up_by_snapshot() -> anyhow::Result<()> {
    let cluster = ProcessCluster::start(3).await?;
    cluster
        .run(SCENARIO_TIMEOUT, async |c| {
            // 1.
            let leader = c.wait_leader(Duration::from_secs(10)).await?;
            let channel = tonic::transport::Channel::from_shared(c.grpc(leader))?
                .connect()
                .await?;
            let client = AdminServiceClient::new(channel);
            let bearer: tonic::metadata::MetadataValue<_> =
                format!("Bearer {}", c.admin_token()).parse()?;
            let created_at = Instant::now();
            // A write that fails (say, a leader change on a loaded machine) is tried again
            // under a new name; only acknowledged keys count.
            let created: Vec<Result<String, Vec<String>>> = futures::stream::iter(0..SNAPSHOT_KEYS)
                .map(|i| {
                    let (client, bearer) = (client.clone(), bearer.clone());
                    async move {
                        let mut errors = Vec::new();
                        for attempt in 0..3 {
                            let mut req = tonic::Request::new(pb::CreateKeyRequest {
                                name: format!("snap-{i}-{attempt}"),
                                ..Default::default()
                            });
                            req.metadata_mut().insert("authorization", bearer.clone());
                            match client.clone().create_key(req).await {
                                Ok(r) => return Ok(r.into_inner().id),
                                Err(e) => errors.push(format!("{}: {}", e.code(), e.message())),
                            }
                        }
                        Err(errors)
                    }
                })
                .buffer_unordered(16)
                .collect()
                .await;
            let failed: Vec<&Vec<String>> =
                created.iter().filter_map(|r| r.as_ref().err()).collect();
            anyhow::ensure!(
                failed.is_empty(),
                "{} keys could not be created in 3 attempts; first: {:?}",
                failed.len(),
                failed.first()
            );
            let created: BTreeSet<String> = created.into_iter().filter_map(Result::ok).collect();
            let leader = c.wait_leader(Duration::from_secs(10)).await?;
            let status = c.status_via(leader).await?;
            println!(
                "created {} keys in {:?}; leader {leader} applied index {}",
                created.len(),
                created_at.elapsed(),
                status["applied_index"]
            );

            // The leader has built its snapshot and purged the log behind it (openraft logs
            // `purge_log ... purge_upto=Some(T<term>-N<node>-<index>)` at info).
            let c_ref = &*c;
            let purged_upto = eventually(
                Duration::from_secs(10),
                &format!("leader {leader} purges its log behind a snapshot"),
                move || async move { purged_upto(&c_ref.log_text(leader)) },
            )
            .await?;
            println!("leader {leader} purged its log up to index {purged_upto}");
            anyhow::ensure!(
                purged_upto > 1,
                "only the log up to {purged_upto} was purged"
            );

            // 2.
            let new = c.start_joiner().await?;
            let (id, http, grpc) = (new.to_string(), c.http(new), c.grpc(new));
            let add = [
                "cluster", "add-node", "--id", &id, "--http", &http, "--grpc", &grpc,
            ];
            let (add, c_ref) = (&add, &*c);
            // Sent to a follower, which asks the leader on the caller's behalf; adding the same
            // node again does nothing, so a retry after a leader change is harmless.
            let added = eventually(
                Duration::from_secs(10),
                &format!("a follower has node {new} added"),
                move || async move {
                    let leader = c_ref.wait_leader(Duration::from_secs(5)).await.ok()?;
                    let follower = c_ref
                        .live_ids()
                        .into_iter()
                        .find(|n| *n != leader && *n != new)?;
                    c_ref.ctl_via(follower, add).await.ok()
                },
            )
            .await?;
            let audit = c.ctl(&["audit"]).await?;
            anyhow::ensure!(
                audit.to_string().contains(&format!("add node {new}")),
                "the audit log does not show the membership change: {audit}"
            );
            anyhow::ensure!(
                added["members"]
                    .as_array()
                    .is_some_and(|ms| ms.iter().any(|m| m["id"] == new)),
                "add-node answered without node {new} among the members: {added}"
            );

            // 3.
            let joined_at = Instant::now();
            let (c_ref, created_ref) = (&*c, &created);
            eventually(
                Duration::from_secs(30),
                &format!("node {new} lists all {SNAPSHOT_KEYS} keys"),
                move || async move {
                    let ids = c_ref.key_ids_via(new).await.ok()?;
                    created_ref.is_subset(&ids).then_some(ids.len())
                },
            )
            .await?;
            println!("node {new} caught up in {:?}", joined_at.elapsed());
            let installed = c
                .log_text(new)
                .lines()
                .any(|l| l.contains("install complete snapshot"));
            anyhow::ensure!(
                installed,
                "node {new} caught up, but its log does not show a snapshot install"
            );
            // Pieces of at most SNAPSHOT_CHUNK_BYTES (16 KiB) for some hundred kB of state.
            let chunks = c
                .log_text(new)
                .lines()
                .filter(|l| l.contains("Done received snapshot chunk"))
                .count();
            println!("node {new} received the snapshot in {chunks} chunks");
            anyhow::ensure!(chunks > 1, "the snapshot arrived in {chunks} chunk(s)");
            Ok(())
        })
        .await
}

/// A node cut off from the quorum (the other two frozen with SIGSTOP):
/// 1. Three nodes; a key with a $1 budget gets a few answers on node X, which then holds an
///    allowance; the leader and the third node are frozen.
/// 2. X keeps answering the budgeted key within what it holds, then refuses it with 503
///    `unavailable` and a message naming the lost quorum, before the leader would charge its
///    allowance in full (30 s). Each refusal comes promptly (not queued
///    behind other requests' 2 s reservation timeouts), and an unbudgeted key keeps working:
///    only budgeted work needs the quorum.
/// 3. The others resume: X answers the budgeted key again, and everything X answered while cut
///    off is settled (the spend covers every cost it reported; nothing accepted is lost).
#[tokio::test(flavor = "multi_thread")]
async fn cut_off_node_serves_within_its_allowance_then_refuses_budgeted_work() -> anyhow::Result<()>
{
    /// The allowance's local lifetime (20 s from its reservation) plus one 2 s reservation
    /// attempt, with a margin for a loaded machine; under the replicated lifetime (30 s), after
    /// which the leader charges an unsettled allowance in full.
    const REFUSED_WITHIN: Duration = Duration::from_secs(28);
    let cluster = ProcessCluster::start(3).await?;
    cluster
        .run(SCENARIO_TIMEOUT, async |c| {
            // 1.
            let leader = c.wait_leader(Duration::from_secs(10)).await?;
            let created = c
                .ctl(&["keys", "create", "--name", "cutoff", "--budget-usd", "1"])
                .await?;
            let id = id_of(&created)?;
            let secret = created["key"].as_str().context("no secret")?.to_owned();
            let x = *c
                .live_ids()
                .iter()
                .find(|n| **n != leader)
                .context("no follower")?;
            let others: Vec<u64> = c.live_ids().into_iter().filter(|n| *n != x).collect();
            let mut reported_micros = 0u64;
            let cost = |r: &Reply| -> u64 {
                r.header("x-switchyard-cost-micros")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_default()
            };
            eventually(Duration::from_secs(5), "budget known on X", || async {
                let r = chat(&c.http(x), &secret).await.ok()?;
                (r.status == 200).then_some(())
            })
            .await?;
            for _ in 0..3 {
                let r = chat(&c.http(x), &secret).await?;
                anyhow::ensure!(r.status == 200, "before the freeze: {}", r.text());
                reported_micros += cost(&r);
            }
            c.pause(&others)?;
            let frozen_at = Instant::now();
            // 2.
            let mut served_cut_off = 0u32;
            let refusal = loop {
                anyhow::ensure!(
                    frozen_at.elapsed() < REFUSED_WITHIN,
                    "still admitting budgeted work {REFUSED_WITHIN:?} after losing the quorum"
                );
                let sent = Instant::now();
                let r = chat(&c.http(x), &secret).await?;
                match r.status {
                    200 => {
                        served_cut_off += 1;
                        reported_micros += cost(&r);
                    }
                    503 => {
                        anyhow::ensure!(
                            sent.elapsed() < Duration::from_secs(3),
                            "refusal took {:?}",
                            sent.elapsed()
                        );
                        break r;
                    }
                    other => anyhow::bail!("unexpected {other} while cut off: {}", r.text()),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            let refused_after = frozen_at.elapsed();
            let body = refusal.json();
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("quorum"), "{message}");
            // Refusals stay prompt while cut off, and unbudgeted work goes on.
            for _ in 0..5 {
                let sent = Instant::now();
                let r = chat(&c.http(x), &secret).await?;
                assert_eq!(r.status, 503);
                assert!(sent.elapsed() < Duration::from_secs(3), "{:?}", sent.elapsed());
            }
            let unbudgeted = chat(&c.http(x), c.demo_key()).await?;
            assert_eq!(unbudgeted.status, 200, "{}", unbudgeted.text());
            println!(
                "cut off: {served_cut_off} budgeted answers from the allowance held, then 503 after {refused_after:?}"
            );
            assert!(served_cut_off > 0, "nothing served from the allowance held");
            // 3.
            c.resume(&others)?;
            eventually(Duration::from_secs(15), "X admits the budgeted key again", || async {
                let r = chat(&c.http(x), &secret).await.ok()?;
                (r.status == 200).then(|| cost(&r))
            })
            .await
            .map(|micros| reported_micros += micros)?;
            let (c, id) = (&*c, &id);
            eventually(
                Duration::from_secs(15),
                "everything X answered is settled",
                move || async move {
                    let b = c.ctl(&["budgets", "show", "--key", id]).await.ok()?;
                    (b["spent_micros"].as_u64()? >= reported_micros).then_some(())
                },
            )
            .await?;
            Ok(())
        })
        .await
}

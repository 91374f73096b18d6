//! One pass of the study: one contender (a strategy, or a baseline) replays the whole workload
//! against a fresh cluster, through the same failure episodes, and the pass collects what each
//! request got and what each mock billed.
//!
//! 1. Start a fresh fleet and cluster ([`crate::fleet::start`]).
//! 2. Send each task at its arrival time (open loop), to node `k mod 3`, with its own
//!    `x-request-id` so the mocks' ledgers can be matched to it request by request.
//! 3. At the episode boundaries, install and clear faults through the mocks' `/_mock` API,
//!    before the request at that boundary is sent.
//! 4. Wait for every request, read every ledger, shut the cluster down.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_testkit::TestCluster;
use switchyard_testkit::cluster::TEST_KEY;
use tokio::task::JoinSet;

use crate::fleet::{self, OutageMode};
use crate::workload::{Task, TaskKind, Tier};

/// What a contender asks for.
#[derive(Clone, Copy, Debug)]
pub enum Ask {
    /// `model: "auto"`: the gateway classifies the prompt and picks the cheapest fitting tier.
    Auto,
    /// Always this public model.
    Model(&'static str),
    /// The public models in turn, blind to the task (request `k` asks for model `k mod 3`).
    RotateModels,
}

/// One row of the study.
#[derive(Clone, Copy, Debug)]
pub struct Contender {
    /// Row name.
    pub name: &'static str,
    /// The model it asks for.
    pub ask: Ask,
    /// The strategy it sends in `x-switchyard-strategy`.
    pub strategy: &'static str,
    /// Whether it is a baseline rather than a gateway strategy.
    pub baseline: bool,
}

/// The contenders, baselines first; the first is the reference the others' cost is compared
/// to.
pub const CONTENDERS: &[Contender] = &[
    Contender {
        name: "always-premium",
        ask: Ask::Model(fleet::PREMIUM),
        strategy: "priority",
        baseline: true,
    },
    Contender {
        name: "round-robin (models)",
        ask: Ask::RotateModels,
        strategy: "weighted",
        baseline: true,
    },
    Contender {
        name: "round-robin (premium providers)",
        ask: Ask::Model(fleet::PREMIUM),
        strategy: "weighted",
        baseline: true,
    },
    Contender {
        name: "auto + cost",
        ask: Ask::Auto,
        strategy: "cost",
        baseline: false,
    },
    Contender {
        name: "auto + latency",
        ask: Ask::Auto,
        strategy: "latency",
        baseline: false,
    },
    Contender {
        name: "auto + balanced",
        ask: Ask::Auto,
        strategy: "balanced",
        baseline: false,
    },
    Contender {
        name: "auto + least-busy",
        ask: Ask::Auto,
        strategy: "least-busy",
        baseline: false,
    },
    Contender {
        name: "auto + priority",
        ask: Ask::Auto,
        strategy: "priority",
        baseline: false,
    },
];

/// A stretch of the pass during which a fault is installed on one mock: from the request with
/// index `start` (inclusive) to `end` (exclusive).
#[derive(Clone, Debug)]
pub struct Episode {
    /// Report name.
    pub name: &'static str,
    /// The mock.
    pub mock: &'static str,
    /// The `/_mock/faults` body.
    pub faults: Value,
    /// First request index inside the episode.
    pub start: usize,
    /// First request index after it.
    pub end: usize,
}

/// The episodes of a pass of `n` requests: the outage from 1/3 to 7/12 of the pass, then the
/// latency spike from 7/12 to 5/6. They do not overlap, so each episode's latency column shows
/// that episode alone, and a stretch of normal traffic follows each to show the recovery.
pub fn episodes(n: usize, outage: OutageMode) -> Vec<Episode> {
    vec![
        Episode {
            name: "outage",
            mock: fleet::OUTAGE_PROVIDER,
            faults: outage.faults(),
            start: n / 3,
            end: n * 7 / 12,
        },
        Episode {
            name: "latency spike",
            mock: fleet::SPIKE_PROVIDER,
            faults: serde_json::json!({ "latency_ms": fleet::SPIKE_MS }),
            start: n * 7 / 12,
            end: n * 5 / 6,
        },
    ]
}

/// What one request got.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The task's index in the workload.
    pub index: usize,
    /// Its kind.
    pub kind: TaskKind,
    /// The tier it needs.
    pub needs: Tier,
    /// Its scheduled arrival, from the start of the pass.
    pub at: Duration,
    /// HTTP status (0: transport error or timeout).
    pub status: u16,
    /// Time from send to the whole body, client-side.
    pub latency: Duration,
    /// `x-switchyard-provider`.
    pub provider: Option<String>,
    /// `x-switchyard-model`.
    pub model: Option<String>,
    /// `x-switchyard-attempts`.
    pub attempts: Option<u32>,
    /// `x-switchyard-cost-micros`.
    pub cost_header_micros: Option<u64>,
    /// The error code of a failed request (`upstream_error`, `unavailable`, …).
    pub error: Option<String>,
    /// The error message of a failed request.
    pub error_message: Option<String>,
}

/// One ledger entry of one mock.
#[derive(Clone, Debug)]
pub struct Billed {
    /// The mock that billed it.
    pub mock: String,
    /// The model billed.
    pub model: String,
    /// Micro-dollars.
    pub micros: u64,
}

/// Everything one pass produced.
#[derive(Debug)]
pub struct PassResult {
    /// Who ran it.
    pub contender: Contender,
    /// One outcome per task, in task order.
    pub outcomes: Vec<Outcome>,
    /// Ledger entries by request id.
    pub billed: HashMap<String, Vec<Billed>>,
    /// Sum of every mock's `total_billed_micros`.
    pub ledger_total_micros: u64,
    /// API requests each mock received (faulted ones included; refused connections are not).
    pub mock_requests: Vec<(String, u64)>,
    /// Wall time of the pass, from the first send to the last answer.
    pub elapsed: Duration,
}

/// The request id of task `index` in pass `pass`.
pub fn request_id(pass: usize, index: usize) -> String {
    format!("study-{pass}-{index}")
}

/// Runs one pass.
///
/// # Errors
/// When the cluster does not start or a mock's control API does not answer. Failed chat
/// requests are outcomes, not errors.
pub async fn run(
    pass: usize,
    contender: Contender,
    tasks: &[Task],
    episodes: &[Episode],
) -> anyhow::Result<PassResult> {
    let cluster = Box::pin(fleet::start()).await?;
    let urls: Vec<String> = (0..fleet::NODES)
        .map(|i| format!("{}/v1/chat/completions", cluster.url(i)))
        .collect();
    let mut inflight: JoinSet<Outcome> = JoinSet::new();
    let started = Instant::now();
    for (k, task) in tasks.iter().enumerate() {
        if let Some(wait) = task.at.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        for e in episodes {
            if k == e.start {
                cluster.fault(e.mock, &e.faults).await?;
            }
            if k == e.end {
                cluster.clear_faults(e.mock).await?;
            }
        }
        let mut body = task.body.clone();
        let model = match contender.ask {
            Ask::Auto => "auto",
            Ask::Model(m) => m,
            Ask::RotateModels => fleet::ROUTES[k % fleet::ROUTES.len()].model,
        };
        if let Some(map) = body.as_object_mut() {
            map.insert("model".into(), Value::from(model));
        }
        let url = urls[k % urls.len()].clone();
        let rid = request_id(pass, k);
        let (kind, needs, at) = (task.kind, task.needs, task.at);
        inflight.spawn(async move {
            let mut out = send(&url, &rid, contender.strategy, &body).await;
            (out.index, out.kind, out.needs, out.at) = (k, kind, needs, at);
            out
        });
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    while let Some(joined) = inflight.join_next().await {
        outcomes.push(joined?);
    }
    let elapsed = started.elapsed();
    outcomes.sort_by_key(|o| o.index);
    for e in episodes {
        // An episode that would end after the last request is cleared here, so every pass
        // ends with the fleet as healthy as it started.
        if e.end >= tasks.len() {
            cluster.clear_faults(e.mock).await?;
        }
    }
    let (billed, ledger_total_micros, mock_requests) = ledgers(&cluster).await?;
    cluster.shutdown().await;
    Ok(PassResult {
        contender,
        outcomes,
        billed,
        ledger_total_micros,
        mock_requests,
        elapsed,
    })
}

/// Sends one chat request and reads what came back; the caller fills in which task it was.
async fn send(url: &str, rid: &str, strategy: &str, body: &Value) -> Outcome {
    let auth = format!("Bearer {TEST_KEY}");
    let headers = [
        ("authorization", auth.as_str()),
        ("x-switchyard-strategy", strategy),
        ("x-request-id", rid),
    ];
    let sent = Instant::now();
    let reply = switchyard_testkit::post_json(url, &headers, body).await;
    let latency = sent.elapsed();
    let mut out = Outcome {
        index: 0,
        kind: TaskKind::Chat,
        needs: Tier::Small,
        at: Duration::ZERO,
        status: 0,
        latency,
        provider: None,
        model: None,
        attempts: None,
        cost_header_micros: None,
        error: None,
        error_message: None,
    };
    match reply {
        Ok(r) => {
            out.status = r.status;
            out.provider = r.header("x-switchyard-provider");
            out.model = r.header("x-switchyard-model");
            out.attempts = r
                .header("x-switchyard-attempts")
                .and_then(|a| a.parse().ok());
            out.cost_header_micros = r
                .header("x-switchyard-cost-micros")
                .and_then(|c| c.parse().ok());
            if r.status != 200 {
                let json = r.json();
                out.error = Some(
                    json.pointer("/error/code")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| r.text().chars().take(120).collect()),
                );
                out.error_message = json
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
        }
        Err(e) => out.error = Some(e.to_string()),
    }
    out
}

/// Ledger entries by request id, the sum of the ledgers' totals, and each mock's request
/// count.
async fn ledgers(
    cluster: &TestCluster,
) -> anyhow::Result<(HashMap<String, Vec<Billed>>, u64, Vec<(String, u64)>)> {
    let mut billed: HashMap<String, Vec<Billed>> = HashMap::new();
    let mut total = 0_u64;
    let mut requests = Vec::new();
    for p in fleet::PROVIDERS {
        let ledger = cluster.ledger(p.name).await?;
        total += ledger
            .get("total_billed_micros")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow::anyhow!("ledger of {} has no total: {ledger}", p.name))?;
        for entry in ledger
            .get("entries")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let rid = entry
                .get("request_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            billed.entry(rid).or_default().push(Billed {
                mock: p.name.to_owned(),
                model: entry
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                micros: entry
                    .get("billed_micros")
                    .and_then(Value::as_u64)
                    .unwrap_or_default(),
            });
        }
        requests.push((p.name.to_owned(), cluster.mock_requests(p.name).await?));
    }
    Ok((billed, total, requests))
}

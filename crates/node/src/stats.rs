//! The cluster-wide stats exchange. About once a second every node collects what each of its
//! provider actors saw in the interval (per-model counts, tokens, retries and latency
//! histograms, plus in-flight, breaker and demand gauges), merges it into its own view, and
//! pushes it to every peer over gRPC. Each node merges all reports into one sliding-window
//! [`ClusterView`], so every node routes as if it saw the whole cluster's traffic. Peers come from
//! the Raft membership; a silent peer ages out of the view and the node routes on what it has.
//!
//! The request path reads a [`ViewSnapshot`] rebuilt after every merge (an `Arc` swap), never the
//! view itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use switchyard_core::BreakerPhase;
use switchyard_core::stats::{ClassCounts, PairDelta, ProviderReport, StatsReport};
use switchyard_proto::pb;
use switchyard_router::view::{ClusterView, ViewSummary};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::node::App;

/// How often a node reports: the view's slot width.
pub const EXCHANGE_EVERY: Duration = Duration::from_secs(1);
/// Window slots (one per second): quantiles and rates cover the last minute.
const WINDOW_SLOTS: usize = 60;
/// A peer not heard from for this long is dropped from the view's gauges.
const SILENT_AFTER_MS: u64 = 5_000;
/// Bound on one push to one peer; a slow peer must not delay the others.
const PUSH_TIMEOUT: Duration = Duration::from_millis(800);
/// Retries allowed per provider, as a share of its requests over the window (Envoy's retry
/// budget idea): a failing provider never multiplies load by more than this.
pub const RETRY_BUDGET_RATIO: f64 = 0.2;

/// What routing reads: the summaries of the merged view, and the providers whose cluster-wide
/// retry budget is spent.
#[derive(Default)]
pub struct ViewSnapshot {
    /// Per-provider and per-pair summaries.
    pub summary: ViewSummary,
    /// Providers whose cluster-wide retry budget is spent.
    pub retry_exhausted: std::collections::HashSet<String>,
}

/// The node's side of the exchange.
pub struct Stats {
    node_id: u64,
    /// The merged view; locked only by the exchange task and the gRPC receiver.
    view: Mutex<ClusterView>,
    /// Rebuilt after every merge; read by requests.
    snapshot: RwLock<Arc<ViewSnapshot>>,
    seq: AtomicU64,
    /// Peer gRPC URL → channel (lazy, reconnecting).
    peers: Mutex<HashMap<String, Channel>>,
    tls: Option<ClientTlsConfig>,
}

impl Stats {
    /// A fresh view for `node_id`.
    pub fn new(node_id: u64, tls: Option<ClientTlsConfig>) -> Self {
        Self {
            node_id,
            view: Mutex::new(ClusterView::new(
                WINDOW_SLOTS,
                EXCHANGE_EVERY.as_millis() as u64,
                SILENT_AFTER_MS,
            )),
            snapshot: RwLock::new(Arc::new(ViewSnapshot::default())),
            seq: AtomicU64::new(0),
            peers: Mutex::new(HashMap::new()),
            tls,
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<ViewSnapshot> {
        match self.snapshot.read() {
            Ok(s) => Arc::clone(&s),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Merges a report (ours or a peer's) and republishes the snapshot.
    pub fn apply(&self, report: &StatsReport, now_ms: u64) {
        let mut view = match self.view.lock() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        };
        view.apply(report, now_ms);
        view.age_out(now_ms);
        let summary = view.summary(now_ms);
        let retry_exhausted = summary
            .providers
            .keys()
            .filter(|p| !view.retry_budget_ok(p, now_ms, RETRY_BUDGET_RATIO))
            .cloned()
            .collect();
        let snap = ViewSnapshot {
            summary,
            retry_exhausted,
        };
        drop(view);
        let mut slot = match self.snapshot.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        *slot = Arc::new(snap);
    }

    /// This node's share of a provider's quota (see `switchyard_router::view::quota`).
    fn quota_share(&self, provider: &str, quota: u64, now_ms: u64) -> u64 {
        let view = match self.view.lock() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        };
        view.quota_share_for(provider, self.node_id, quota, now_ms)
    }

    fn channel(&self, grpc: &str) -> Option<Channel> {
        let mut peers = match self.peers.lock() {
            Ok(p) => p,
            Err(p) => p.into_inner(),
        };
        if let Some(c) = peers.get(grpc) {
            return Some(c.clone());
        }
        let mut endpoint = Endpoint::from_shared(grpc.to_owned())
            .ok()?
            .connect_timeout(PUSH_TIMEOUT)
            .timeout(PUSH_TIMEOUT);
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).ok()?;
        }
        let channel = endpoint.connect_lazy();
        peers.insert(grpc.to_owned(), channel.clone());
        Some(channel)
    }
}

/// One exchange round: collect, merge, share quotas, push.
async fn round(app: &App) {
    let stats = &app.stats;
    let now_ms = app.clock.unix_ms();
    let routing = app.routing();
    let mut report = StatsReport {
        node: stats.node_id,
        seq: stats.seq.fetch_add(1, Ordering::Relaxed) + 1,
        at_ms: now_ms,
        pairs: Vec::new(),
        providers: Vec::new(),
    };
    for p in routing.providers.iter() {
        if let Some((pairs, gauges)) = p.take_delta().await {
            report.pairs.extend(pairs);
            report.providers.push(gauges);
        }
    }
    stats.apply(&report, now_ms);
    // Each node takes a share of a provider's limits in proportion to its demand, so the cluster
    // as a whole stays within them (see `quota_share`).
    for p in routing.providers.iter() {
        let (rpm, tpm) = p.gate.limits();
        if rpm == 0 && tpm == 0 {
            continue;
        }
        let name = p.name().as_str();
        p.set_share(
            stats.quota_share(name, rpm, now_ms),
            stats.quota_share(name, tpm, now_ms),
        );
    }
    let msg = to_pb(&report);
    let peers: Vec<String> = app
        .control
        .members()
        .into_iter()
        .filter(|(id, _, _)| *id != stats.node_id)
        .map(|(_, info, _)| info.grpc)
        .collect();
    // Peers accept a report only with the cluster's peer token.
    let token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> = app
        .control
        .peer_token()
        .and_then(|t| t.expose().parse().ok());
    let pushes = peers
        .iter()
        .filter_map(|grpc| stats.channel(grpc))
        .map(|ch| {
            let mut request = tonic::Request::new(msg.clone());
            if let Some(value) = token.clone() {
                request
                    .metadata_mut()
                    .insert(switchyard_core::PeerToken::HEADER, value);
            }
            async move {
                let mut client = pb::stats_service_client::StatsServiceClient::new(ch);
                let _ = tokio::time::timeout(PUSH_TIMEOUT, client.push(request)).await;
            }
        });
    futures::future::join_all(pushes).await;
}

/// Runs the exchange until `cancel`.
pub async fn run(app: Arc<App>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(EXCHANGE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => round(&app).await,
        }
    }
}

/// The gRPC receiver of peers' reports.
pub struct StatsApi {
    app: Arc<App>,
}

impl StatsApi {
    /// The service for `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl pb::stats_service_server::StatsService for StatsApi {
    async fn push(
        &self,
        req: tonic::Request<pb::StatsReport>,
    ) -> Result<tonic::Response<pb::StatsAck>, tonic::Status> {
        // A report steers every node's routing: only members (who hold the peer token) send one.
        switchyard_control::authorize_peer(self.app.control.peer_token(), req.metadata())?;
        let report = from_pb(req.into_inner()).map_err(tonic::Status::invalid_argument)?;
        // Only members report: anything else is ignored rather than merged.
        if self
            .app
            .control
            .members()
            .iter()
            .any(|(id, _, _)| *id == report.node)
            && report.node != self.app.stats.node_id
        {
            self.app.stats.apply(&report, self.app.clock.unix_ms());
        }
        Ok(tonic::Response::new(pb::StatsAck {}))
    }
}

fn breaker_name(b: BreakerPhase) -> &'static str {
    b.as_str()
}

fn breaker_from(s: &str) -> BreakerPhase {
    match s {
        "open" => BreakerPhase::Open,
        "half_open" => BreakerPhase::HalfOpen,
        _ => BreakerPhase::Closed,
    }
}

/// Core report → protobuf.
pub fn to_pb(r: &StatsReport) -> pb::StatsReport {
    pb::StatsReport {
        node: r.node,
        seq: r.seq,
        at_ms: r.at_ms,
        pairs: r
            .pairs
            .iter()
            .map(|p| pb::PairDelta {
                provider: p.provider.clone(),
                model: p.model.clone(),
                counts: p.counts.0.to_vec(),
                retries: p.retries,
                tokens: p.tokens,
                ttft_hist: p.ttft_hist.clone(),
                total_hist: p.total_hist.clone(),
            })
            .collect(),
        providers: r
            .providers
            .iter()
            .map(|p| pb::ProviderReport {
                provider: p.provider.clone(),
                in_flight: p.in_flight,
                breaker: breaker_name(p.breaker).to_owned(),
                demand_per_min: p.demand_per_min,
            })
            .collect(),
    }
}

/// Protobuf → core report.
///
/// # Errors
/// A message when counts do not have the six classes.
pub fn from_pb(r: pb::StatsReport) -> Result<StatsReport, String> {
    let mut pairs = Vec::with_capacity(r.pairs.len());
    for p in r.pairs {
        let counts: [u64; 6] = p
            .counts
            .try_into()
            .map_err(|_| "pair counts must have 6 classes".to_owned())?;
        pairs.push(PairDelta {
            provider: p.provider,
            model: p.model,
            counts: ClassCounts(counts),
            retries: p.retries,
            tokens: p.tokens,
            ttft_hist: p.ttft_hist,
            total_hist: p.total_hist,
        });
    }
    let providers = r
        .providers
        .into_iter()
        .map(|p| ProviderReport {
            provider: p.provider,
            in_flight: p.in_flight,
            breaker: breaker_from(&p.breaker),
            demand_per_min: p.demand_per_min,
        })
        .collect();
    Ok(StatsReport {
        node: r.node,
        seq: r.seq,
        at_ms: r.at_ms,
        pairs,
        providers,
    })
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The `ctl stats` reply: the cluster-wide view per provider and model, with this node's
/// configured limits and prices.
pub fn admin_reply(app: &App) -> pb::StatsReply {
    let snap = app.stats.snapshot();
    let routing = app.routing();
    let mut providers = Vec::new();
    for handle in routing.providers.iter() {
        let name = handle.name().as_str();
        let summary = snap
            .summary
            .providers
            .get(name)
            .cloned()
            .unwrap_or_default();
        let w = &summary.stats;
        let worst = w.breakers.iter().map(|(_, b)| *b).max_by_key(|b| match b {
            BreakerPhase::Closed => 0,
            BreakerPhase::HalfOpen => 1,
            BreakerPhase::Open => 2,
        });
        let models = snap
            .summary
            .pairs
            .iter()
            .filter(|((p, _), _)| p == name)
            .map(|((_, model), pair)| {
                let price = routing
                    .accounting
                    .get(handle.name(), model)
                    .and_then(|a| a.price)
                    .unwrap_or_default();
                pb::ModelStats {
                    model: model.clone(),
                    requests: pair.stats.requests,
                    errors: pair.stats.requests
                        - pair.stats.counts.get(switchyard_core::OutcomeClass::Ok),
                    p50_ms: ms(pair.stats.total.p50_us),
                    p95_ms: ms(pair.stats.total.p95_us),
                    ttft_p50_ms: ms(pair.stats.ttft.p50_us),
                    input_micros_per_mtok: price.input_micros_per_mtok,
                    output_micros_per_mtok: price.output_micros_per_mtok,
                }
            })
            .collect();
        providers.push(pb::ProviderStats {
            name: name.to_owned(),
            requests: w.requests,
            errors: w.requests - w.counts.get(switchyard_core::OutcomeClass::Ok),
            error_pct: f64::from(w.error_rate_pct),
            p50_ms: ms(w.total.p50_us),
            p95_ms: ms(w.total.p95_us),
            p99_ms: ms(w.total.p99_us),
            in_flight: w.in_flight,
            breaker: worst.unwrap_or(handle.gate.phase()).as_str().to_owned(),
            breakers: w
                .breakers
                .iter()
                .map(|(n, b)| (*n, b.as_str().to_owned()))
                .collect(),
            health: w.health.as_str().to_owned(),
            rpm_used: summary.demand_per_min,
            rpm_limit: handle.gate.limits().0,
            retries: w.retries,
            models,
        });
    }
    pb::StatsReply {
        node: app.stats.node_id,
        at_ms: app.clock.unix_ms(),
        providers,
    }
}

//! One actor per configured provider. It owns the provider's breaker, latency windows and
//! counters; it refills the rate buckets and mirrors the breaker phase into the [`Gate`]; it
//! probes the upstream while the breaker is open; and it publishes a [`ProviderSnapshot`].
//! The request path never waits on it: admission reads the gate, outcomes arrive by `cast`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use switchyard_core::clock::SharedClock;
use switchyard_core::stats::{ClassCounts, HIST_HIGH_US, HIST_LOW_US, PairDelta, ProviderReport};
use switchyard_core::{OutcomeClass, Transport};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::breaker::BreakerState;
use crate::config::{ProviderConfig, ProviderKind};
use crate::gate::Gate;
use crate::snapshot::{LatencyWindow, OutcomeCounts, ProviderSnapshot};
use crate::upstream::Upstream;

/// How often rate buckets refill and windows are considered for rotation.
const TICK: Duration = Duration::from_secs(1);
/// Latency window slot: quantiles cover the last 30 to 60 seconds.
const WINDOW_SLOT: Duration = Duration::from_secs(30);
/// Longest wait for an active probe's answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One finished upstream attempt, as reported by the request path.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The upstream model the attempt used (stats are kept per (provider, model)).
    pub model: Arc<str>,
    /// Whether the attempt was a retry (not the request's first attempt).
    pub retry: bool,
    /// How it ended.
    pub class: OutcomeClass,
    /// Time to first byte (non-stream: response headers; stream: first event).
    pub ttft: Option<Duration>,
    /// Time to the end.
    pub total: Duration,
    /// Prompt plus completion tokens actually used.
    pub tokens: u64,
    /// Tokens reserved from the TPM bucket at admission.
    pub reserved_tokens: u64,
    /// The upstream's `Retry-After` on a 429.
    pub retry_after: Option<Duration>,
    /// Whether the attempt was a half-open probe.
    pub probe: bool,
}

/// Messages a provider actor handles.
pub enum ProviderMsg {
    /// An attempt finished.
    Outcome(Outcome),
    /// Periodic: refill rate tokens, rotate windows, publish.
    Tick,
    /// The inbox filled up: take what it holds.
    Drain,
    /// The open period may be over: probe the upstream.
    ProbeDue,
    /// An active probe's verdict.
    ProbeResult(bool),
    /// Tests and admin only: the current snapshot.
    GetSnapshot(RpcReplyPort<ProviderSnapshot>),
    /// The stats exchange: what happened since the last call, per model, and the provider's
    /// gauges; the interval's accumulators start over.
    TakeDelta(RpcReplyPort<(Vec<PairDelta>, ProviderReport)>),
    /// This node's share of the provider's RPM and TPM (divided among nodes by demand).
    SetShare {
        /// Requests per minute this node may send.
        rpm: u64,
        /// Tokens per minute this node may send.
        tpm: u64,
    },
}

/// Per-model accumulators of the current stats interval.
struct PairAcc {
    counts: ClassCounts,
    retries: u64,
    tokens: u64,
    ttft: hdrhistogram::Histogram<u64>,
    total: hdrhistogram::Histogram<u64>,
}

impl PairAcc {
    fn new() -> Self {
        Self {
            counts: ClassCounts::default(),
            retries: 0,
            tokens: 0,
            ttft: crate::snapshot::new_histogram(),
            total: crate::snapshot::new_histogram(),
        }
    }
}

/// Seconds of demand history kept for the per-minute demand figure.
const DEMAND_SLOTS: usize = 60;

/// The actor type; stateless, as ractor intends.
pub struct ProviderActor<T: Transport>(std::marker::PhantomData<T>);

impl<T: Transport> Default for ProviderActor<T> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// What a provider actor starts from. Cloned by the supervisor for every (re)start, so the gate
/// and the snapshot channel outlive any one actor incarnation.
#[derive(Clone)]
pub struct ProviderArgs<T: Transport> {
    /// The provider's configuration.
    pub config: Arc<ProviderConfig>,
    /// Admission state shared with the request path.
    pub gate: Arc<Gate>,
    /// Where snapshots go; readers hold receivers.
    pub snapshot_tx: Arc<watch::Sender<ProviderSnapshot>>,
    /// For active probes.
    pub upstream: Upstream<T>,
    /// The clock seam.
    pub clock: SharedClock,
    /// Probes run as tasks on the node's tracker, so shutdown waits for them.
    pub tracker: TaskTracker,
    /// How many times this provider's actor was restarted before this start.
    pub restarts: u32,
    /// Successful outcomes the request path left without waking the actor; it survives
    /// restarts with the rest of the arguments.
    pub inbox: Arc<Inbox>,
}

/// Outcomes that change no decision right away (successes that are not half-open probes): the
/// request path appends them here instead of casting a message, which would wake the actor's
/// task (often on the other core) once per request. The actor takes the lot before it handles
/// any other outcome (so a failure is never judged without the successes before it), on every
/// tick, and before it reports stats or a snapshot. Pushing is one short, uncontended lock.
#[derive(Debug, Default)]
pub struct Inbox {
    /// Outcomes not yet taken; the actor swaps the vector out.
    outcomes: std::sync::Mutex<Vec<Outcome>>,
}

/// Outcomes an inbox holds before the request path wakes the actor anyway (a few kB at most,
/// and one wake per this many requests under load).
const INBOX_WAKE_AT: usize = 1024;

impl Inbox {
    /// Adds one outcome; `true` when the actor should be woken to take them.
    pub(crate) fn push(&self, o: Outcome) -> bool {
        let mut v = match self.outcomes.lock() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        };
        v.push(o);
        v.len() >= INBOX_WAKE_AT
    }

    fn take(&self) -> Vec<Outcome> {
        let mut v = match self.outcomes.lock() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        };
        std::mem::take(&mut *v)
    }
}

/// Sends an outcome to `actor`: quietly through `inbox` when it changes no decision right away,
/// else as a message. Lost if the actor is restarting (one sample, never a request).
pub(crate) fn report_outcome(actor: Option<&ActorRef<ProviderMsg>>, inbox: &Inbox, o: Outcome) {
    let Some(actor) = actor else { return };
    if o.class == OutcomeClass::Ok && !o.probe {
        if inbox.push(o) {
            let _ = actor.cast(ProviderMsg::Drain);
        }
    } else {
        let _ = actor.cast(ProviderMsg::Outcome(o));
    }
}

/// All of the actor's mutable state. Nothing outside `handle` touches it.
pub struct ProviderState<T: Transport> {
    args: ProviderArgs<T>,
    breaker: BreakerState,
    ttft: LatencyWindow,
    total: LatencyWindow,
    counts: OutcomeCounts,
    window_requests: u64,
    window_failures: u64,
    tokens: u64,
    last_rotate: Instant,
    /// An active probe is running.
    probing: bool,
    /// Stats-interval accumulators by upstream model.
    deltas: std::collections::HashMap<Arc<str>, PairAcc>,
    /// Admission attempts per second over the last minute (ring), for this node's demand.
    demand: std::collections::VecDeque<u64>,
    /// Something changed since the last publish.
    dirty: bool,
}

impl<T: Transport> Actor for ProviderActor<T> {
    type Msg = ProviderMsg;
    type State = ProviderState<T>;
    type Arguments = ProviderArgs<T>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        // A restarted actor starts closed: its predecessor's open breaker died with it, and the
        // gate must not keep refusing traffic that no one will ever re-admit.
        args.gate
            .set_phase(switchyard_core::BreakerPhase::Closed, 0);
        myself.send_interval(TICK, || ProviderMsg::Tick);
        let now = args.clock.now();
        let state = ProviderState {
            breaker: BreakerState::default(),
            ttft: LatencyWindow::new(),
            total: LatencyWindow::new(),
            counts: OutcomeCounts::default(),
            window_requests: 0,
            window_failures: 0,
            tokens: 0,
            last_rotate: now,
            probing: false,
            deltas: std::collections::HashMap::new(),
            demand: std::collections::VecDeque::with_capacity(DEMAND_SLOTS),
            dirty: true,
            args,
        };
        state.publish();
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Outcomes in the inbox happened before this message was sent or alongside it: account
        // for them first, so every decision below sees them.
        for o in state.args.inbox.take() {
            state.on_outcome(&myself, o);
        }
        match msg {
            ProviderMsg::Outcome(o) => state.on_outcome(&myself, o),
            ProviderMsg::Drain => {}
            ProviderMsg::Tick => state.on_tick(&myself),
            ProviderMsg::ProbeDue => state.maybe_probe(&myself),
            ProviderMsg::ProbeResult(healthy) => state.on_probe_result(&myself, healthy),
            ProviderMsg::GetSnapshot(reply) => {
                let _ = reply.send(state.snapshot());
            }
            ProviderMsg::TakeDelta(reply) => {
                let _ = reply.send(state.take_delta());
            }
            ProviderMsg::SetShare { rpm, tpm } => state.args.gate.set_share(rpm, tpm),
        }
        Ok(())
    }
}

impl<T: Transport> ProviderState<T> {
    fn cfg(&self) -> &ProviderConfig {
        &self.args.config
    }

    fn on_outcome(&mut self, myself: &ActorRef<ProviderMsg>, o: Outcome) {
        let now = self.args.clock.now();
        let acc = self
            .deltas
            .entry(Arc::clone(&o.model))
            .or_insert_with(PairAcc::new);
        acc.counts.add(o.class);
        acc.tokens += o.tokens;
        if o.retry {
            acc.retries += 1;
        }
        if o.class == OutcomeClass::Ok {
            let us = |d: Duration| {
                u64::try_from(d.as_micros())
                    .unwrap_or(u64::MAX)
                    .clamp(HIST_LOW_US, HIST_HIGH_US)
            };
            if let Some(t) = o.ttft {
                let _ = acc.ttft.record(us(t));
            }
            let _ = acc.total.record(us(o.total));
        }
        self.counts.add(o.class);
        self.window_requests += 1;
        self.tokens += o.tokens;
        self.args.gate.settle_tokens(o.reserved_tokens, o.tokens);
        let failure = o.class.is_provider_failure();
        if failure {
            self.window_failures += 1;
        }
        if o.class == OutcomeClass::Ok {
            if let Some(t) = o.ttft {
                self.ttft.record(t);
            }
            self.total.record(o.total);
        }
        if let (OutcomeClass::RateLimited, Some(d)) = (o.class, o.retry_after) {
            self.args.gate.pause(now, d);
        }
        // While half-open only the probes decide; a straggler admitted earlier must not close
        // (or reopen) the breaker on behalf of a probe still in flight.
        let counts_for_breaker = !matches!(self.breaker, BreakerState::HalfOpen { .. }) || o.probe;
        if counts_for_breaker {
            let before = self.breaker;
            self.breaker = self.breaker.on_outcome(failure, &self.cfg().breaker, now);
            self.on_breaker_change(myself, before, now);
        }
        self.dirty = true;
    }

    fn on_breaker_change(
        &mut self,
        myself: &ActorRef<ProviderMsg>,
        before: BreakerState,
        now: Instant,
    ) {
        if before.phase() == self.breaker.phase() && before == self.breaker {
            return;
        }
        self.args
            .gate
            .set_phase(self.breaker.phase(), self.cfg().breaker.half_open_probes);
        if let BreakerState::Open { until, .. } = self.breaker {
            tracing::warn!(provider = %self.cfg().name, open_for_ms = until.saturating_duration_since(now).as_millis() as u64, "breaker opened");
            myself.send_after(until.saturating_duration_since(now), || {
                ProviderMsg::ProbeDue
            });
        } else if before.phase() != self.breaker.phase() {
            tracing::info!(provider = %self.cfg().name, phase = self.breaker.phase().as_str(), "breaker changed phase");
        }
        self.dirty = true;
        self.publish();
    }

    fn on_tick(&mut self, myself: &ActorRef<ProviderMsg>) {
        let now = self.args.clock.now();
        self.args.gate.refill_one_second();
        if self.demand.len() == DEMAND_SLOTS {
            self.demand.pop_front();
        }
        self.demand.push_back(self.args.gate.take_wanted());
        if now.saturating_duration_since(self.last_rotate) >= WINDOW_SLOT {
            self.ttft.rotate();
            self.total.rotate();
            self.window_requests = 0;
            self.window_failures = 0;
            self.last_rotate = now;
            self.dirty = true;
        }
        // A probe slot taken by a request that vanished without an outcome would leave the
        // breaker half-open forever; offer the slots again once nothing is in flight.
        if matches!(self.breaker, BreakerState::HalfOpen { .. }) && self.args.gate.in_flight() == 0
        {
            self.args
                .gate
                .set_phase(self.breaker.phase(), self.cfg().breaker.half_open_probes);
        }
        // Safety net for a lost ProbeDue.
        if self.breaker.probe_due(now) {
            self.maybe_probe(myself);
        }
        if self.dirty {
            self.publish();
        }
    }

    fn maybe_probe(&mut self, myself: &ActorRef<ProviderMsg>) {
        let now = self.args.clock.now();
        if self.probing || !self.breaker.probe_due(now) {
            return;
        }
        self.probing = true;
        let upstream = self.args.upstream.clone();
        let uri = probe_uri(self.cfg());
        let me = myself.clone();
        self.args.tracker.spawn(async move {
            let healthy = probe(&upstream, &uri).await;
            let _ = me.cast(ProviderMsg::ProbeResult(healthy));
        });
    }

    fn on_probe_result(&mut self, myself: &ActorRef<ProviderMsg>, healthy: bool) {
        self.probing = false;
        let now = self.args.clock.now();
        let before = self.breaker;
        self.breaker = self.breaker.on_probe(healthy, &self.cfg().breaker, now);
        self.on_breaker_change(myself, before, now);
    }

    fn snapshot(&self) -> ProviderSnapshot {
        ProviderSnapshot {
            phase: self.breaker.phase(),
            counts: self.counts,
            ttft_us: self.ttft.quantiles(),
            total_us: self.total.quantiles(),
            window_requests: self.window_requests,
            window_failures: self.window_failures,
            tokens: self.tokens,
            restarts: self.args.restarts,
        }
    }

    /// The interval's per-model deltas (histograms V2+deflate) and the provider's gauges; the
    /// accumulators start over.
    fn take_delta(&mut self) -> (Vec<PairDelta>, ProviderReport) {
        let encode = |h: &hdrhistogram::Histogram<u64>| {
            let mut out = Vec::new();
            if !h.is_empty() {
                let _ = hdrhistogram::serialization::Serializer::serialize(
                    &mut hdrhistogram::serialization::V2DeflateSerializer::new(),
                    h,
                    &mut out,
                );
            }
            out
        };
        let pairs = self
            .deltas
            .drain()
            .map(|(model, acc)| PairDelta {
                provider: self.args.config.name.to_string(),
                model: model.to_string(),
                counts: acc.counts,
                retries: acc.retries,
                tokens: acc.tokens,
                ttft_hist: encode(&acc.ttft),
                total_hist: encode(&acc.total),
            })
            .collect();
        let report = ProviderReport {
            provider: self.args.config.name.to_string(),
            in_flight: self.args.gate.in_flight(),
            breaker: self.breaker.phase(),
            demand_per_min: self.demand.iter().sum(),
        };
        (pairs, report)
    }

    fn publish(&self) {
        self.args.snapshot_tx.send_replace(self.snapshot());
    }
}

/// The URL an active probe reads: the models list, which every supported API has and which
/// costs nothing.
fn probe_uri(cfg: &ProviderConfig) -> String {
    match &cfg.kind {
        ProviderKind::Azure { api_version } => format!(
            "{}{}/openai/models?api-version={api_version}",
            cfg.base.origin(),
            cfg.base.path
        ),
        ProviderKind::OpenAi | ProviderKind::Anthropic => {
            format!("{}{}/models", cfg.base.origin(), cfg.base.path)
        }
    }
}

/// One active probe: healthy when the upstream answers in time with anything but 5xx or 429.
/// Auth is not sent: a 401 proves the server is up, and a probe never spends tokens.
async fn probe<T: Transport>(upstream: &Upstream<T>, uri: &str) -> bool {
    let Ok(req) = http::Request::get(uri).body(Full::new(Bytes::new())) else {
        return false;
    };
    match tokio::time::timeout(PROBE_TIMEOUT, upstream.client.request(req)).await {
        Ok(Ok(resp)) => {
            let s = resp.status().as_u16();
            s < 500 && s != 429
        }
        _ => false,
    }
}

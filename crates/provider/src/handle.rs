//! [`ProviderHandle`]: what the node holds per provider, and [`ProviderSet`]: all of them plus
//! their supervisor. The handle admits requests through the gate, runs one upstream attempt
//! ([`ProviderHandle::call`]) and reports its outcome to the actor by `cast`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use ractor::{Actor, ActorRef};
use serde_json::{Map, Value};
use switchyard_core::clock::SharedClock;
use switchyard_core::{OutcomeClass, ProviderName, TcpTransport, Transport};
use switchyard_wire::Usage;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::actor::{Inbox, Outcome, ProviderArgs, ProviderMsg, report_outcome};
use crate::adapter;
use crate::call::{CallError, CallOk, CallRequest, Endpoint, StreamEnd};
use crate::config::ProviderConfig;
use crate::gate::{Gate, Permit, Refusal};
use crate::snapshot::ProviderSnapshot;
use crate::stream::{StreamParts, UpstreamStream};
use crate::supervisor::{ActorSlot, Child, ProviderSupervisor, SupervisorMsg};
use crate::upstream::Upstream;

/// Largest upstream error body we read (to quote its message).
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Largest complete upstream body we accept; a batch of embeddings is the big case.
const MAX_RESPONSE_BODY_BYTES: usize = 64 * 1024 * 1024;

/// One provider as the request path sees it.
pub struct ProviderHandle<T: Transport = TcpTransport> {
    /// Validated configuration.
    pub config: Arc<ProviderConfig>,
    /// Admission state (shared with the actor, which is its only writer but for permits).
    pub gate: Arc<Gate>,
    /// Latest published snapshot.
    snapshot: watch::Receiver<ProviderSnapshot>,
    /// The actor's current incarnation, kept current by the supervisor.
    actor: ActorSlot,
    /// Where successes go without waking the actor (see [`Inbox`]); the actor holds the same.
    inbox: Arc<Inbox>,
    upstream: Upstream<T>,
    clock: SharedClock,
}

impl<T: Transport> ProviderHandle<T> {
    /// The provider's name.
    pub fn name(&self) -> &ProviderName {
        &self.config.name
    }

    /// The latest snapshot (cheap clone of small numbers).
    pub fn snapshot(&self) -> ProviderSnapshot {
        self.snapshot.borrow().clone()
    }

    /// Admits a request expected to use `est_tokens`, without waiting.
    ///
    /// # Errors
    /// A [`Refusal`] saying why the provider cannot take it now.
    pub fn try_admit(&self, est_tokens: u64) -> Result<Permit, Refusal> {
        self.gate.try_admit(self.clock.now(), est_tokens)
    }

    /// Sends an outcome to the actor. Fire and forget: if the actor is restarting, the outcome
    /// is lost, which costs one sample, never a request.
    pub fn report(&self, outcome: Outcome) {
        let actor = self.actor.read().ok().and_then(|g| g.clone());
        report_outcome(actor.as_ref(), &self.inbox, outcome);
    }

    /// Asks the actor for its snapshot (tests and admin only; never on the request path).
    pub async fn fresh_snapshot(&self) -> Option<ProviderSnapshot> {
        let actor = self.actor.read().ok().and_then(|g| g.clone())?;
        ractor::call_t!(actor, ProviderMsg::GetSnapshot, 1_000).ok()
    }

    /// The stats exchange's interval delta (per model) and gauges; `None` while the actor is
    /// restarting. Never on the request path.
    pub async fn take_delta(
        &self,
    ) -> Option<(
        Vec<switchyard_core::stats::PairDelta>,
        switchyard_core::stats::ProviderReport,
    )> {
        let actor = self.actor.read().ok().and_then(|g| g.clone())?;
        ractor::call_t!(actor, ProviderMsg::TakeDelta, 1_000).ok()
    }

    /// Sets this node's share of the provider's RPM and TPM.
    pub fn set_share(&self, rpm: u64, tpm: u64) {
        let actor = self.actor.read().ok().and_then(|g| g.clone());
        if let Some(a) = actor {
            let _ = a.cast(ProviderMsg::SetShare { rpm, tpm });
        }
    }

    /// The actor currently serving this provider (tests use it to crash one on purpose).
    pub fn actor(&self) -> Option<ActorRef<ProviderMsg>> {
        self.actor.read().ok().and_then(|g| g.clone())
    }

    /// Runs one upstream attempt. `body` is the client's parsed JSON, edited in place for
    /// same-format upstreams (see [`adapter::encode_body`]).
    ///
    /// # Errors
    /// [`CallError`] with the outcome class; the outcome has already been reported.
    pub async fn call(
        &self,
        permit: Permit,
        req: CallRequest<'_>,
        body: &mut Map<String, Value>,
    ) -> Result<CallOk, CallError> {
        let cfg = &self.config;
        let started = self.clock.now();
        let model: Arc<str> = Arc::from(req.upstream_model);
        let retry = req.retry;
        let deadline = started + cfg.total_timeout;
        let fail = |e: CallError, permit: &Permit, ttft: Option<Duration>| {
            self.report(Outcome {
                model: Arc::clone(&model),
                retry,
                class: e.class,
                ttft,
                total: self.clock.now().saturating_duration_since(started),
                tokens: 0,
                reserved_tokens: permit.reserved_tokens,
                retry_after: e.retry_after,
                probe: permit.probe,
            });
            e
        };
        let encoded = adapter::encode_body(
            cfg,
            req.endpoint,
            body,
            req.upstream_model,
            req.stream,
            req.default_max_tokens,
        );
        let request = encoded.and_then(|b| {
            adapter::build_request(cfg, req.endpoint, req.upstream_model, req.request_id, b)
        });
        let request = match request {
            Ok(r) => r,
            // Our inability to express the request is not the provider's failure: no report.
            Err(e) => return Err(e),
        };
        let sent = tokio::time::timeout(
            cfg.first_byte_timeout,
            self.upstream.client.request(request),
        )
        .await;
        let resp = match sent {
            Err(_) => {
                return Err(fail(
                    CallError::timeout(format!(
                        "upstream {} sent no response headers in time",
                        cfg.name
                    )),
                    &permit,
                    None,
                ));
            }
            Ok(Err(e)) => {
                let what = if e.is_connect() {
                    "could not connect to"
                } else {
                    "lost the connection to"
                };
                return Err(fail(
                    CallError::connect(format!("{what} upstream {}", cfg.name)),
                    &permit,
                    None,
                ));
            }
            Ok(Ok(r)) => r,
        };
        let ttft = self.clock.now().saturating_duration_since(started);
        let status = resp.status();
        if !status.is_success() {
            let retry_after = retry_after(resp.headers());
            let body = read_limited(resp.into_body(), MAX_ERROR_BODY_BYTES, deadline)
                .await
                .unwrap_or_default();
            let message = adapter::upstream_error_message(&body)
                .unwrap_or_else(|| format!("upstream answered {}", status.as_u16()));
            let e = match status.as_u16() {
                429 => CallError::rate_limited(retry_after, message),
                408 => CallError::timeout(message),
                s if s >= 500 => CallError::server(Some(s), message),
                s => CallError::client(s, message),
            };
            return Err(fail(e, &permit, Some(ttft)));
        }
        let created = self.clock.unix_s();
        if req.stream {
            let me_actor = Arc::clone(&self.actor);
            let inbox = Arc::clone(&self.inbox);
            let stream_model = Arc::clone(&model);
            let (reserved, probe) = (permit.reserved_tokens, permit.probe);
            let hook = Box::new(move |end: StreamEnd| {
                let actor = me_actor.read().ok().and_then(|g| g.clone());
                let outcome = Outcome {
                    model: Arc::clone(&stream_model),
                    retry,
                    class: end.class,
                    ttft: end.ttft,
                    total: end.total,
                    tokens: end.usage.prompt_tokens + end.usage.completion_tokens,
                    reserved_tokens: reserved,
                    retry_after: None,
                    probe,
                };
                report_outcome(actor.as_ref(), &inbox, outcome);
            });
            let mut stream = UpstreamStream::new(StreamParts {
                body: resp.into_body(),
                client_format: req.endpoint.client_format(),
                upstream_format: adapter::upstream_format(&cfg.kind),
                public_model: req.public_model.to_owned(),
                client_include_usage: req.client_include_usage,
                created,
                request_id: req.request_id.to_owned(),
                clock: Arc::clone(&self.clock),
                started,
                deadline,
                prompt_estimate_tokens: req.prompt_estimate_tokens,
                hook,
                permit,
            });
            let left = deadline.saturating_duration_since(self.clock.now());
            stream.first_frame(cfg.first_byte_timeout.min(left)).await?;
            return Ok(CallOk::Stream(Box::new(stream)));
        }
        let body = match read_limited(resp.into_body(), MAX_RESPONSE_BODY_BYTES, deadline).await {
            Ok(b) => b,
            Err(e) => return Err(fail(e, &permit, Some(ttft))),
        };
        let (body, usage) =
            match adapter::decode_body(cfg, req.endpoint, body, req.public_model, created) {
                Ok(x) => x,
                Err(e) => return Err(fail(e, &permit, Some(ttft))),
            };
        let usage = usage.unwrap_or(Usage {
            prompt_tokens: req.prompt_estimate_tokens,
            completion_tokens: 0,
        });
        self.report(Outcome {
            model,
            retry,
            class: OutcomeClass::Ok,
            ttft: Some(ttft),
            total: self.clock.now().saturating_duration_since(started),
            tokens: usage.prompt_tokens + usage.completion_tokens,
            reserved_tokens: permit.reserved_tokens,
            retry_after: None,
            probe: permit.probe,
        });
        Ok(CallOk::Complete { body, usage })
    }

    /// Whether this provider can serve `endpoint` at all.
    pub fn supports(&self, endpoint: Endpoint) -> bool {
        adapter::supports(&self.config.kind, endpoint)
    }
}

/// Reads a body up to `limit` bytes before `deadline`.
async fn read_limited(
    body: hyper::body::Incoming,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<Bytes, CallError> {
    match tokio::time::timeout_at(deadline, Limited::new(body, limit).collect()).await {
        Err(_) => Err(CallError::timeout(
            "upstream body did not arrive before the total timeout".into(),
        )),
        Ok(Err(e)) => Err(CallError::server(
            None,
            format!("upstream body could not be read: {e}"),
        )),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

/// `Retry-After` in seconds (or `retry-after-ms`, which OpenAI also sends), capped at an hour.
fn retry_after(h: &http::HeaderMap) -> Option<Duration> {
    /// Longest pause an upstream can impose on us with one header.
    const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
    let ms = h
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .map(|ms| Duration::from_millis(ms.max(0.0) as u64));
    let s = || {
        h.get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    };
    ms.or_else(s).map(|d| d.min(MAX_RETRY_AFTER))
}

/// All providers of a node, and the supervisor that keeps their actors alive.
pub struct ProviderSet<T: Transport = TcpTransport> {
    handles: Vec<Arc<ProviderHandle<T>>>,
    by_name: HashMap<ProviderName, usize>,
    supervisor: ActorRef<SupervisorMsg>,
}

impl<T: Transport> ProviderSet<T> {
    /// Starts one supervised actor per provider.
    ///
    /// A provider of `previous` (the set this one replaces) whose limits are unchanged keeps its
    /// [`Gate`]: its rate windows (what it used in the last minute), pause and in-flight count
    /// carry over, so changing an unrelated route or provider neither frees a fresh minute of
    /// quota nor forgets requests still running. Its breaker starts closed with the new actor.
    ///
    /// # Errors
    /// When the upstream client or an actor cannot be started.
    pub async fn start(
        configs: Vec<ProviderConfig>,
        previous: Option<&Self>,
        transport: T,
        clock: SharedClock,
        tracker: TaskTracker,
    ) -> Result<Self, std::io::Error> {
        let internal: HashSet<String> = configs
            .iter()
            .filter(|c| c.internal)
            .map(|c| format!("{}:{}", c.base.host, c.base.port))
            .collect();
        let connect_timeout = configs
            .iter()
            .map(|c| c.connect_timeout)
            .max()
            .unwrap_or(Duration::from_secs(3));
        let upstream = Upstream::new(transport, internal, connect_timeout)?;
        let epoch = clock.now();
        let mut handles = Vec::new();
        let mut children = Vec::new();
        let mut by_name = HashMap::new();
        for (i, cfg) in configs.into_iter().enumerate() {
            let cfg = Arc::new(cfg);
            let gate = previous
                .and_then(|p| p.get(&cfg.name))
                .filter(|old| {
                    (old.config.rpm, old.config.tpm, old.config.max_in_flight)
                        == (cfg.rpm, cfg.tpm, cfg.max_in_flight)
                })
                .map_or_else(
                    || Arc::new(Gate::new(epoch, cfg.rpm, cfg.tpm, cfg.max_in_flight)),
                    |old| Arc::clone(&old.gate),
                );
            let (tx, rx) = watch::channel(ProviderSnapshot::default());
            let slot: ActorSlot = Arc::new(RwLock::new(None));
            let inbox = Arc::new(Inbox::default());
            children.push(Child {
                args: ProviderArgs {
                    config: Arc::clone(&cfg),
                    gate: Arc::clone(&gate),
                    snapshot_tx: Arc::new(tx),
                    upstream: upstream.clone(),
                    clock: Arc::clone(&clock),
                    tracker: tracker.clone(),
                    restarts: 0,
                    inbox: Arc::clone(&inbox),
                },
                slot: Arc::clone(&slot),
            });
            by_name.insert(cfg.name.clone(), i);
            handles.push(Arc::new(ProviderHandle {
                config: cfg,
                gate,
                snapshot: rx,
                actor: slot,
                inbox,
                upstream: upstream.clone(),
                clock: Arc::clone(&clock),
            }));
        }
        let (supervisor, _) = Actor::spawn(None, ProviderSupervisor::<T>::default(), children)
            .await
            .map_err(|e| {
                std::io::Error::other(format!("provider supervisor failed to start: {e}"))
            })?;
        Ok(Self {
            handles,
            by_name,
            supervisor,
        })
    }

    /// A provider by name.
    pub fn get(&self, name: &ProviderName) -> Option<&Arc<ProviderHandle<T>>> {
        self.by_name.get(name).and_then(|&i| self.handles.get(i))
    }

    /// A provider by name, from a string.
    pub fn get_str(&self, name: &str) -> Option<&Arc<ProviderHandle<T>>> {
        self.get(&ProviderName::new(name))
    }

    /// Every provider, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ProviderHandle<T>>> {
        self.handles.iter()
    }

    /// Stops the supervisor and every provider actor, and waits for them.
    pub async fn shutdown(&self) {
        let _ = self
            .supervisor
            .stop_and_wait(
                Some("node shutting down".into()),
                Some(Duration::from_secs(5)),
            )
            .await;
    }
}

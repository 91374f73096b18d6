//! Starting and stopping a node. [`Node::start`] binds every listener first (through the
//! transport seam, so port 0 works and the real address is known), then starts the provider
//! actors and serves. [`NodeHandle`] exposes the bound addresses and the shutdown sequence.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::serve::ListenerExt;
use http::HeaderValue;
use switchyard_core::clock::SharedClock;
use switchyard_core::{SystemClock, TcpTransport, Transport};
use switchyard_provider::ProviderSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounting::Accounting;
use crate::config::Config;
use crate::keys::KeyStore;
use crate::metrics::Metrics;

/// Everything a request handler reads. Immutable but for atomics inside.
pub struct App {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Keys by digest.
    pub keys: KeyStore,
    /// Providers and their actors.
    pub providers: ProviderSet<TcpTransport>,
    /// Price and counters per (provider, model).
    pub accounting: Accounting,
    /// Edge metrics.
    pub metrics: Metrics,
    /// The clock seam.
    pub clock: SharedClock,
    /// `x-switchyard-node` value, built once.
    pub node_header: HeaderValue,
    /// False until serving, and again once shutdown begins (`/readyz`).
    pub ready: AtomicBool,
    /// Prefix of generated request ids: node id and a per-process random part, so ids are
    /// unique across nodes and restarts without coordination.
    pub request_id_prefix: String,
    /// Counter for generated request ids.
    pub request_seq: AtomicU64,
}

impl App {
    /// A new request id, `sy-<node>-<random>-<seq>`.
    pub fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("{}{n:x}", self.request_id_prefix)
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Providers could not be started.
    #[error("cannot start providers: {0}")]
    Providers(std::io::Error),
}

/// Entry point.
pub struct Node;

impl Node {
    /// Starts a node with production seams (tokio sockets, system clock).
    ///
    /// # Errors
    /// [`StartError`] when a listener cannot be bound or providers cannot start.
    pub async fn start(config: Config) -> Result<NodeHandle, StartError> {
        Self::start_with(config, TcpTransport, Arc::new(SystemClock), &|k| {
            std::env::var(k).ok()
        })
        .await
    }

    /// Starts a node with the given seams and environment lookup.
    ///
    /// # Errors
    /// [`StartError`] when a listener cannot be bound or providers cannot start.
    pub async fn start_with(
        config: Config,
        transport: TcpTransport,
        clock: SharedClock,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<NodeHandle, StartError> {
        let listener =
            transport
                .bind(config.listen_http)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen_http,
                    source,
                })?;
        let http_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen_http,
            source,
        })?;
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let providers = ProviderSet::start(
            config.providers.clone(),
            transport,
            Arc::clone(&clock),
            tracker.clone(),
        )
        .await
        .map_err(StartError::Providers)?;
        let keys = KeyStore::from_config(&config.cluster_secret, &config.keys, env);
        let accounting = Accounting::build(&config.routes, &config.providers, &config.pricing);
        let node_header = HeaderValue::from(config.node_id.0);
        let salt: u32 = rand::random();
        let app = Arc::new(App {
            request_id_prefix: format!("sy-{}-{salt:08x}-", config.node_id.0),
            config: Arc::new(config),
            keys,
            providers,
            accounting,
            metrics: Metrics::default(),
            clock,
            node_header,
            ready: AtomicBool::new(false),
            request_seq: AtomicU64::new(0),
        });
        let router = crate::edge::router(Arc::clone(&app));
        // TCP_NODELAY on every accepted socket: without it each small response waits for the
        // client's delayed ACK (about 44 ms on loopback).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let shutdown = cancel.clone();
        tracker.spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "http server stopped with an error");
            }
        });
        app.ready.store(true, Ordering::Release);
        tracing::info!(node_id = app.config.node_id.0, %http_addr, providers = app.config.providers.len(), "node serving");
        Ok(NodeHandle {
            app,
            http_addr,
            cancel,
            tracker,
        })
    }
}

/// A running node.
pub struct NodeHandle {
    /// Shared state (tests read metrics and snapshots through it).
    pub app: Arc<App>,
    /// The bound HTTP address.
    pub http_addr: SocketAddr,
    /// Cancelled to begin shutdown; every task selects on it.
    cancel: CancellationToken,
    /// Every task the node spawned.
    tracker: TaskTracker,
}

impl NodeHandle {
    /// `http://addr` of the HTTP edge.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Stops the node.
    ///
    /// 1. `/readyz` turns not-ready and the HTTP edge stops accepting (graceful shutdown).
    /// 2. In-flight requests drain until the grace period ends; then the remaining tasks are
    ///    abandoned (their streams end when the runtime drops them) and that is logged.
    /// 3. Provider actors stop (the supervisor stops and waits for them).
    pub async fn shutdown(self) {
        self.app.ready.store(false, Ordering::Release);
        self.cancel.cancel();
        self.tracker.close();
        let grace = self.app.config.shutdown_grace;
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_s = grace.as_secs(),
                tasks = self.tracker.len(),
                "shutdown grace period over; abandoning remaining tasks"
            );
        }
        self.app.providers.shutdown().await;
        tracing::info!(node_id = self.app.config.node_id.0, "node stopped");
    }

    /// A token that is cancelled when shutdown begins.
    pub fn cancelled(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

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
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use switchyard_control::{Command, Control, NodeInfo, Op, Role};
use switchyard_core::KeyDigester;
use tonic::transport::server::TcpIncoming;

use switchyard_control::sealing::Keyring;

use crate::admin::AdminApi;
use crate::config::Config;
use crate::guard::Guard;
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::routing::{BuildParts, Routing};

/// Everything a request handler reads. Immutable but for atomics inside.
pub struct App {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Keys by digest, read from the replicated state.
    pub keys: KeyStore,
    /// The control plane (Raft) handle.
    pub control: Control,
    /// Budget admission.
    pub guard: Arc<Guard>,
    /// Cluster-wide per-key rate limits.
    pub rates: crate::rates::RateGuard,
    /// The cluster-wide view of providers, merged from every node's reports.
    pub stats: crate::stats::Stats,
    /// This node's addresses as members see them.
    pub info: NodeInfo,
    /// Providers, routes and accounting as of the last replicated version; swapped whole when
    /// providers or routes change (see [`crate::routing`]).
    routing: std::sync::RwLock<Arc<Routing>>,
    /// Opens provider credentials sealed in the replicated state, and seals new ones.
    pub keyring: Keyring,
    /// TLS for calls this node makes to peers' gRPC (mutual, with this node's certificate).
    pub client_tls: Option<tonic::transport::ClientTlsConfig>,
    /// The transport seam, for provider sets built later.
    transport: TcpTransport,
    /// Every task the node spawned (provider actors' probes included).
    tracker: TaskTracker,
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
    /// The current routing set (providers, routes, accounting).
    pub fn routing(&self) -> Arc<Routing> {
        match self.routing.read() {
            Ok(r) => Arc::clone(&r),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Builds a routing set for `version` and swaps it in; returns the one it replaced.
    ///
    /// # Errors
    /// When the new set's provider actors cannot start.
    pub async fn rebuild_routing(
        &self,
        version: u64,
        providers: &std::collections::BTreeMap<String, switchyard_control::ProviderSpec>,
        routes: &std::collections::BTreeMap<String, switchyard_control::RouteSpec>,
    ) -> std::io::Result<Arc<Routing>> {
        let parts = BuildParts {
            keyring: &self.keyring,
            catalog: &self.config.pricing,
            transport: self.transport,
            clock: Arc::clone(&self.clock),
            tracker: self.tracker.clone(),
            nodes: u64::try_from(self.control.members().len()).unwrap_or(1),
            previous: Some(self.routing()),
        };
        let new = Arc::new(crate::routing::build(version, providers, routes, parts).await?);
        let mut slot = match self.routing.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        Ok(std::mem::replace(&mut *slot, new))
    }

    /// A new request id, `sy-<node>-<random>-<seq>`.
    pub fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("{}{n:x}", self.request_id_prefix)
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The control plane could not start.
    #[error("cannot start the control plane: {0}")]
    Control(String),
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
        mut config: Config,
        transport: TcpTransport,
        clock: SharedClock,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<NodeHandle, StartError> {
        // 1. Bind every listener first, so port 0 works and the real addresses are known.
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
        let grpc_listener = transport
            .bind(config.control.listen_grpc)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.control.listen_grpc,
                source,
            })?;
        let grpc_addr = grpc_listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                addr: config.control.listen_grpc,
                source,
            })?;
        if config.cluster_secret.expose().is_empty() {
            config.cluster_secret = crate::config::local_cluster_secret(&config.control.data_dir)
                .map_err(|e| {
                StartError::Control(format!(
                    "cluster secret in {}: {e}",
                    config.control.data_dir.display()
                ))
            })?;
        }
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        // 2. The control plane: Raft log and state from the data directory.
        let tls = config.control.tls.as_ref().map(|t| {
            let identity = tonic::transport::Identity::from_pem(&t.cert, t.key.expose());
            let ca = tonic::transport::Certificate::from_pem(&t.ca);
            (
                tonic::transport::ServerTlsConfig::new()
                    .identity(identity.clone())
                    .client_ca_root(ca.clone()),
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(ca)
                    .identity(identity),
            )
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let info = NodeInfo {
            http: format!("http://{http_addr}"),
            grpc: format!("{scheme}://{grpc_addr}"),
        };
        let control_config = switchyard_control::ControlConfig {
            client_tls: tls.as_ref().map(|t| t.1.clone()),
            peer_token: Some(switchyard_core::PeerToken::derive(&config.cluster_secret)),
            snapshot_chunk_bytes: config.control.snapshot_chunk_bytes,
            ..Default::default()
        };
        let control = Control::open(
            config.node_id.0,
            info.clone(),
            &config.control.data_dir,
            control_config,
        )
        .await
        .map_err(|e| StartError::Control(e.to_string()))?;
        // 3. Providers, routes and their actors, from the replicated state as it is now (empty
        // on a new cluster until the seed is applied; the watcher rebuilds on every change).
        let keyring =
            Keyring::parse(&config.master_key).map_err(|e| StartError::Control(e.to_string()))?;
        let routing = {
            let (version, providers, routes) = {
                let s = match control.state().read() {
                    Ok(s) => s,
                    Err(p) => p.into_inner(),
                };
                (s.routing_version, s.providers.clone(), s.routes.clone())
            };
            let parts = BuildParts {
                keyring: &keyring,
                catalog: &config.pricing,
                transport,
                clock: Arc::clone(&clock),
                tracker: tracker.clone(),
                nodes: u64::try_from(control.members().len().max(config.control.members.len()))
                    .unwrap_or(1),
                previous: None,
            };
            crate::routing::build(version, &providers, &routes, parts)
                .await
                .map_err(StartError::Providers)?
        };
        let digester = KeyDigester::new(&config.cluster_secret);
        let keys = KeyStore::new(digester, Arc::clone(control.state()));
        let node_header = HeaderValue::from(config.node_id.0);
        let salt: u32 = rand::random();
        let stats = crate::stats::Stats::new(config.node_id.0, tls.as_ref().map(|t| t.1.clone()));
        let rates =
            crate::rates::RateGuard::new(control.clone(), config.node_id.0, Arc::clone(&clock));
        let guard = Arc::new(Guard::new(
            control.clone(),
            config.node_id.0,
            Arc::clone(&clock),
        ));
        let app = Arc::new(App {
            request_id_prefix: format!("sy-{}-{salt:08x}-", config.node_id.0),
            config: Arc::new(config),
            keys,
            control,
            guard: Arc::clone(&guard),
            rates,
            stats,
            info,
            routing: std::sync::RwLock::new(Arc::new(routing)),
            keyring,
            client_tls: tls.as_ref().map(|t| t.1.clone()),
            transport,
            tracker: tracker.clone(),
            metrics: Metrics::default(),
            clock,
            node_header,
            ready: AtomicBool::new(false),
            request_seq: AtomicU64::new(0),
        });
        // 4. Serve HTTP, and gRPC (Raft between nodes, admin for ctl).
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
        let mut server = tonic::transport::Server::builder();
        if let Some((server_tls, _)) = &tls {
            server = server
                .tls_config(server_tls.clone())
                .map_err(|e| StartError::Control(format!("tls: {e}")))?;
        }
        let grpc = server
            .add_service(switchyard_control::raft_service(&app.control))
            .add_service(
                switchyard_proto::pb::stats_service_server::StatsServiceServer::new(
                    crate::stats::StatsApi::new(Arc::clone(&app)),
                ),
            )
            .add_service(
                switchyard_proto::pb::admin_service_server::AdminServiceServer::new(AdminApi::new(
                    Arc::clone(&app),
                )),
            );
        let shutdown = cancel.clone();
        let incoming = TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
        tracker.spawn(async move {
            if let Err(e) = grpc
                .serve_with_incoming_shutdown(incoming, async move { shutdown.cancelled().await })
                .await
            {
                tracing::error!(error = %e, "grpc server stopped with an error");
            }
        });
        // 5. Background duties: settlement batches, and (while leader) allowance expiry.
        tracker.spawn(crate::guard::run_flusher(guard, cancel.clone()));
        tracker.spawn(crate::duties::run(Arc::clone(&app), cancel.clone()));
        tracker.spawn(crate::routing::watch(Arc::clone(&app), cancel.clone()));
        tracker.spawn(crate::stats::run(Arc::clone(&app), cancel.clone()));
        let handle = NodeHandle {
            app,
            http_addr,
            grpc_addr,
            cancel,
            tracker,
        };
        // 6. First bootstrap: initialise the cluster and seed it from configuration.
        if handle.app.config.control.bootstrap {
            let mut members = handle.app.config.control.members.clone();
            if members.is_empty() {
                members.insert(handle.app.config.node_id.0, handle.app.info.clone());
            }
            handle.bootstrap(members, env).await?;
        }
        handle.app.ready.store(true, Ordering::Release);
        tracing::info!(node_id = handle.app.config.node_id.0, %http_addr, %grpc_addr, providers = handle.app.routing().providers.iter().count(), "node serving");
        Ok(handle)
    }
}

/// A running node.
pub struct NodeHandle {
    /// Shared state (tests read metrics and snapshots through it).
    pub app: Arc<App>,
    /// The bound HTTP address.
    pub http_addr: SocketAddr,
    /// The bound gRPC address (Raft and admin).
    pub grpc_addr: SocketAddr,
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
        self.app.routing().providers.shutdown().await;
        if let Err(e) = self.app.control.shutdown().await {
            tracing::warn!(error = %e, "control plane did not shut down cleanly");
        }
        tracing::info!(node_id = self.app.config.node_id.0, "node stopped");
    }

    /// Initialises the cluster with `members` (a no-op if it already is) and, if the replicated
    /// state is still empty, seeds it from configuration: the configured keys and admin token.
    /// Runs in the background until a leader accepts the seed, so a bootstrapping node does not
    /// wait for its peers to start.
    ///
    /// # Errors
    /// When the local Raft refuses to initialise.
    pub async fn bootstrap(
        &self,
        members: std::collections::BTreeMap<u64, NodeInfo>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), StartError> {
        self.app
            .control
            .initialize(members)
            .await
            .map_err(|e| StartError::Control(e.to_string()))?;
        let app = Arc::clone(&self.app);
        let mut ops = app
            .keys
            .seed_ops(&app.config.keys, env, app.clock.unix_ms());
        if let Some(token) = &app.config.control.admin_token {
            let digest_hex = KeyDigester::new(&app.config.cluster_secret)
                .digest(token.expose())
                .to_hex();
            ops.push(Op::PutAdminToken {
                name: "bootstrap".into(),
                digest_hex,
                role: Role::Admin,
            });
        }
        let routing_ops = crate::routing::seed_ops(
            &app.config.providers_toml,
            &app.config.routes_toml,
            &app.keyring,
            env,
        )
        .map_err(|e| StartError::Control(format!("cannot seed providers: {e}")))?;
        ops.extend(routing_ops);
        let seed = Op::Seed(ops);
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            loop {
                if cancel.is_cancelled() {
                    return;
                }
                let cmd = Command {
                    at_ms: app.clock.unix_ms(),
                    actor: Some("bootstrap".into()),
                    op: seed.clone(),
                };
                match app.control.write(cmd).await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "seeding waits for a leader");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(())
    }

    /// Waits until the configuration seed is applied on this node and its routing set is built
    /// from it (tests and tools).
    pub async fn wait_seeded(&self, timeout: std::time::Duration) -> bool {
        tokio::time::timeout(timeout, async {
            loop {
                let (seeded, version) = {
                    let s = match self.app.control.state().read() {
                        Ok(s) => s,
                        Err(p) => p.into_inner(),
                    };
                    (s.seeded, s.routing_version)
                };
                if seeded && self.app.routing().version == version {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok()
    }

    /// URL of the gRPC server (`https://` under TLS).
    pub fn grpc_url(&self) -> String {
        self.app.info.grpc.clone()
    }

    /// A token that is cancelled when shutdown begins.
    pub fn cancelled(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

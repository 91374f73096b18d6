//! Raft traffic between nodes over tonic: the client side ([`client`], openraft's
//! `RaftNetwork`) and the server side ([`server`], the `RaftService` the node mounts on its gRPC
//! router). Each payload is one serde_json document in a `RaftPayload` (see `raft.proto`).
//!
//! Connections go through the transport seam: every channel is built with
//! `connect_with_connector_lazy` and a connector that dials with
//! [`TcpTransport`], so a simulation can swap the dialer without
//! touching this code. One channel per peer address is cached and shared by the Raft
//! replication streams and by write forwarding; tonic reconnects it after a peer restarts.

pub mod client;
pub mod server;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use openraft::RaftNetworkFactory;
use switchyard_core::{PeerToken, TcpTransport, Transport};
use switchyard_proto::pb::RaftPayload;
use switchyard_proto::pb::raft_service_client::RaftServiceClient;
use tonic::codegen::Service;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

pub use client::PeerClient;
pub use server::{RaftServer, authorize_peer, raft_service};

use crate::type_config::{NodeInfo, TypeConfig};

/// Largest raft message either side accepts or sends. A snapshot travels in chunks of
/// openraft's `snapshot_max_chunk_size` (3 MiB by default), and an append batch of
/// `max_payload_entries` commands is far smaller, so 64 MiB only bounds a misbehaving peer.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How often an idle or busy peer connection is pinged.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a ping may go unanswered before the connection is dropped and redialled.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens raft clients to peers, one [`PeerClient`] per target.
#[derive(Clone, Debug)]
pub struct NetworkFactory {
    /// This node's id (reported in timeout errors).
    node_id: u64,
    /// The channel cache, shared with [`Control`](crate::Control) for forwarding writes.
    peers: Peers,
}

/// A cache of lazily connected channels, keyed by gRPC address. Cloning shares the cache.
#[derive(Clone, Debug)]
pub(crate) struct Peers {
    /// Address → channel. Entries are never removed: a channel is a cheap handle that
    /// reconnects by itself, and a cluster has a handful of members.
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// Bound on establishing a TCP connection to a peer.
    connect_timeout: Duration,
    /// TLS for peer connections (mutual: it carries this node's certificate), or plaintext.
    tls: Option<ClientTlsConfig>,
    /// Sent with every RPC so the peer knows a member is calling.
    token: Option<PeerToken>,
}

/// Dials peers through the transport seam.
#[derive(Clone, Copy, Debug, Default)]
struct PeerConnector;

impl NetworkFactory {
    /// A factory for node `node_id` using the shared channel cache.
    pub(crate) fn new(node_id: u64, peers: Peers) -> Self {
        NetworkFactory { node_id, peers }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &NodeInfo) -> PeerClient {
        PeerClient::new(self.node_id, target, node.clone(), self.peers.clone())
    }
}

impl Peers {
    /// An empty cache whose channels give up connecting after `connect_timeout`.
    pub(crate) fn new(
        connect_timeout: Duration,
        tls: Option<ClientTlsConfig>,
        token: Option<PeerToken>,
    ) -> Self {
        Peers {
            channels: Arc::default(),
            connect_timeout,
            tls,
            token,
        }
    }

    /// A request carrying `data`, this member's token and the deadline `ttl` (which travels to
    /// the server as grpc-timeout).
    pub(crate) fn request(&self, data: Vec<u8>, ttl: Duration) -> tonic::Request<RaftPayload> {
        let mut request = tonic::Request::new(RaftPayload { data });
        request.set_timeout(ttl);
        if let Some(token) = &self.token
            && let Ok(value) = token.expose().parse()
        {
            request.metadata_mut().insert(PeerToken::HEADER, value);
        }
        request
    }

    /// The channel to `grpc` (`http://host:port`), created on first use. Creating one does no
    /// I/O; the connection is made by the first call and remade after failures.
    pub(crate) fn channel(&self, grpc: &str) -> Result<Channel, tonic::transport::Error> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = channels.get(grpc) {
            return Ok(channel.clone());
        }
        let mut endpoint = Endpoint::from_shared(grpc.to_owned())?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone())?;
        }
        let channel = endpoint
            .connect_timeout(self.connect_timeout)
            // A peer that vanished without closing (killed host, partition) is noticed within
            // a few seconds and the channel reconnects, instead of every RPC timing out on a
            // dead connection.
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .connect_with_connector_lazy(PeerConnector);
        channels.insert(grpc.to_owned(), channel.clone());
        Ok(channel)
    }

    /// A raft client to `grpc` with the message size limits set.
    pub(crate) fn client(
        &self,
        grpc: &str,
    ) -> Result<RaftServiceClient<Channel>, tonic::transport::Error> {
        Ok(RaftServiceClient::new(self.channel(grpc)?)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }
}

impl Service<Uri> for PeerConnector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("no host in {uri}"))
            })?;
            let port = uri.port_u16().unwrap_or(80);
            // Peers are cluster members on internal addresses by design, so private and
            // loopback addresses are allowed here (they are refused only for providers).
            let stream = TcpTransport.connect(host, port, true).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

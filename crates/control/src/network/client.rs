//! openraft's `RaftNetwork` over tonic: one [`PeerClient`] per target, sending serde_json
//! payloads on the shared channel. Failures are classified the way openraft's replication
//! expects: a peer that cannot be reached is `Unreachable` (openraft backs off), a deadline is
//! `Timeout`, an error the peer's Raft returned is `RemoteError`, anything else is `Network`
//! (retried at once).
//!
//! The same channels carry `Propose`, a follower forwarding a write to the leader
//! (`Peers::propose`); its outcome says whether retrying is safe.

use std::time::Duration;

use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
    Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{RPCTypes, RaftNetwork};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Peers;
use crate::command::{Command, Response};
use crate::error::ControlError;
use crate::type_config::{NodeInfo, TypeConfig};

/// Pause between attempts to reach an unreachable peer. openraft's default is 500 ms; a
/// shorter pause lets a restarted node catch up sooner at the cost of a few more refused
/// connects per second while it is down.
const UNREACHABLE_BACKOFF: Duration = Duration::from_millis(250);

/// A raft client for one target node.
#[derive(Clone, Debug)]
pub struct PeerClient {
    /// This node's id.
    node_id: u64,
    /// The target's id.
    target: u64,
    /// The target's addresses; RPCs go to `node.grpc`.
    node: NodeInfo,
    /// The shared channel cache.
    peers: Peers,
}

type RpcError<E> = RPCError<u64, NodeInfo, RaftError<u64, E>>;

/// What forwarding a write to the leader came to.
pub(crate) enum Forwarded {
    /// The leader applied it at this log index (boxed: a reply can carry a whole key record).
    Applied(u64, Box<Response>),
    /// It was not proposed (no leader there, or the leader could not be reached): try again.
    Retry,
    /// It failed in a way a retry would not fix, or it may have been proposed.
    Failed(ControlError),
}

impl PeerClient {
    pub(crate) fn new(node_id: u64, target: u64, node: NodeInfo, peers: Peers) -> Self {
        PeerClient {
            node_id,
            target,
            node,
            peers,
        }
    }

    /// Sends one request and decodes `Result<Resp, RaftError<E>>`, bounded by `ttl`.
    async fn call<Req, Resp, E>(
        &self,
        action: RPCTypes,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RpcError<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let data = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut client = self
            .peers
            .client(&self.node.grpc)
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        // The deadline travels to the server as grpc-timeout, and bounds the wait here too.
        let request = self.peers.request(data, ttl);
        let call = async {
            match action {
                RPCTypes::AppendEntries => client.append_entries(request).await,
                RPCTypes::InstallSnapshot => client.install_snapshot(request).await,
                RPCTypes::Vote => client.vote(request).await,
            }
        };
        let reply = match tokio::time::timeout(ttl, call).await {
            Ok(Ok(reply)) => reply.into_inner().data,
            Ok(Err(status)) => return Err(status_error(&status)),
            Err(_) => {
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: self.node_id,
                    target: self.target,
                    timeout: ttl,
                }));
            }
        };
        let result: Result<Resp, RaftError<u64, E>> =
            serde_json::from_slice(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }
}

impl Peers {
    /// Sends `cmd` to `leader`'s raft service, which proposes it there, with deadline `ttl`.
    pub(crate) async fn propose(
        &self,
        leader: &NodeInfo,
        cmd: &Command,
        ttl: Duration,
    ) -> Forwarded {
        let data = match serde_json::to_vec(cmd) {
            Ok(data) => data,
            Err(e) => return Forwarded::Failed(e.into()),
        };
        let Ok(mut client) = self.client(&leader.grpc) else {
            return Forwarded::Failed(ControlError::InvalidAddress {
                grpc: leader.grpc.clone(),
            });
        };
        let request = self.request(data, ttl);
        let reply = match client.propose(request).await {
            Ok(reply) => reply.into_inner().data,
            // tonic reports a refused or failed connect as Unavailable: nothing was proposed.
            Err(status) if status.code() == tonic::Code::Unavailable => return Forwarded::Retry,
            Err(status) => {
                return Forwarded::Failed(ControlError::Network {
                    grpc: leader.grpc.clone(),
                    source: Box::new(status),
                });
            }
        };
        type Reply = Result<(u64, Response), RaftError<u64, ClientWriteError<u64, NodeInfo>>>;
        match serde_json::from_slice::<Reply>(&reply) {
            Ok(Ok((index, response))) => Forwarded::Applied(index, Box::new(response)),
            // Leadership moved before the leader saw it: it was not proposed.
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Forwarded::Retry,
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                Forwarded::Failed(ControlError::Membership(Box::new(e)))
            }
            Ok(Err(RaftError::Fatal(_))) => Forwarded::Failed(ControlError::Unavailable {
                what: "the raft leader stopped while proposing the write",
            }),
            Err(e) => Forwarded::Failed(e.into()),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcError<openraft::error::Infallible>> {
        self.call(RPCTypes::AppendEntries, &rpc, option.hard_ttl())
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcError<InstallSnapshotError>> {
        self.call(RPCTypes::InstallSnapshot, &rpc, option.hard_ttl())
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcError<openraft::error::Infallible>> {
        self.call(RPCTypes::Vote, &rpc, option.hard_ttl()).await
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(UNREACHABLE_BACKOFF))
    }
}

/// Classifies a gRPC failure. `Unavailable` is what tonic reports when it cannot connect (or
/// the peer's server is gone), so openraft should back off; other codes are retried at once.
fn status_error<E: std::error::Error>(status: &tonic::Status) -> RpcError<E> {
    match status.code() {
        tonic::Code::Unavailable => RPCError::Unreachable(Unreachable::new(status)),
        _ => RPCError::Network(NetworkError::new(status)),
    }
}

//! The server side of the Raft transport: [`RaftServer`] implements the generated
//! `RaftService` by decoding each serde_json payload, handing it to the local `Raft`, and
//! encoding openraft's `Result` back. The node mounts it with [`raft_service`] on its own tonic
//! router (served with `serve_with_incoming` on a listener from the transport seam); this crate
//! never binds a socket.

use serde::Serialize;
use serde::de::DeserializeOwned;
use switchyard_core::PeerToken;
use switchyard_proto::pb::RaftPayload;
use switchyard_proto::pb::raft_service_server::{RaftService, RaftServiceServer};

use super::MAX_MESSAGE_BYTES;
use crate::command::Command;
use crate::control::Control;
use crate::type_config::Raft;

/// The raft gRPC service of one node.
#[derive(Clone)]
pub struct RaftServer {
    /// The local Raft; requests go straight to it. Holding it does not keep the node's
    /// storage open: after `Control::shutdown` every call answers with a `Fatal` error.
    raft: Raft,
    /// The token every caller must present (`None`: no check).
    token: Option<PeerToken>,
}

/// The raft service of `control`, with message size limits set, ready for
/// `tonic::transport::Server::builder().add_service(..)`.
pub fn raft_service(control: &Control) -> RaftServiceServer<RaftServer> {
    RaftServiceServer::new(RaftServer {
        raft: control.raft().clone(),
        token: control.peer_token().cloned(),
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

#[tonic::async_trait]
impl RaftService for RaftServer {
    async fn append_entries(
        &self,
        request: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        let rpc = self.decode(&request)?;
        encode(&self.raft.append_entries(rpc).await)
    }

    async fn vote(
        &self,
        request: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        let rpc = self.decode(&request)?;
        encode(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        let rpc = self.decode(&request)?;
        encode(&self.raft.install_snapshot(rpc).await)
    }

    /// A follower forwarding a write. On a node that is not the leader this answers with a
    /// `ForwardToLeader` error (as data), and the caller retries where it points.
    async fn propose(
        &self,
        request: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        let cmd: Command = self.decode(&request)?;
        // The log index travels back so the proposer can wait until it applied the entry too.
        let result = self
            .raft
            .client_write(cmd)
            .await
            .map(|r| (r.log_id.index, r.data));
        encode(&result)
    }
}

impl RaftServer {
    /// Decodes a request from a member; anyone else is refused before the payload is read.
    fn decode<T: DeserializeOwned>(
        &self,
        request: &tonic::Request<RaftPayload>,
    ) -> Result<T, tonic::Status> {
        authorize_peer(self.token.as_ref(), request.metadata())?;
        serde_json::from_slice(&request.get_ref().data)
            .map_err(|e| tonic::Status::invalid_argument(format!("undecodable raft payload: {e}")))
    }
}

/// Checks that a call carries the cluster's peer token (when one is set).
///
/// # Errors
/// `Unauthenticated` when the token is missing or wrong.
pub fn authorize_peer(
    token: Option<&PeerToken>,
    metadata: &tonic::metadata::MetadataMap,
) -> Result<(), tonic::Status> {
    let Some(token) = token else { return Ok(()) };
    match metadata.get(PeerToken::HEADER) {
        Some(v) if token.matches(v.as_bytes()) => Ok(()),
        Some(_) => Err(tonic::Status::unauthenticated(
            "cluster peer token is wrong: only members of this cluster may call this service",
        )),
        None => Err(tonic::Status::unauthenticated(
            "cluster peer token missing: only members of this cluster may call this service",
        )),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
    let data = serde_json::to_vec(value)
        .map_err(|e| tonic::Status::internal(format!("unencodable raft reply: {e}")))?;
    Ok(tonic::Response::new(RaftPayload { data }))
}

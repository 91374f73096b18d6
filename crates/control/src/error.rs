//! The control plane's one error type, [`ControlError`], and its one mapping to a gRPC status.
//! Expected outcomes of a command (a duplicate key, an unknown id) are not errors here: they come
//! back as [`Response::Rejected`](crate::Response::Rejected) data, and the admin layer decides
//! what they mean to a caller.

use crate::command::Rejection;
use crate::type_config::{NodeInfo, StorageError};

/// Metadata key carrying the leader's gRPC address on a `NotLeader` status, so a client (or the
/// node on a client's behalf) can retry there.
pub const LEADER_GRPC_METADATA: &str = "x-switchyard-leader-grpc";

/// What went wrong in the control plane.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The operation must run on the leader and this node is not it. `leader` is the leader this
    /// node knows of, if any.
    #[error("this node is not the raft leader (leader: {})", leader.as_ref().map_or("unknown", |l| l.grpc.as_str()))]
    NotLeader {
        /// The current leader's addresses, when known.
        leader: Option<NodeInfo>,
    },
    /// No leader with a quorum answered in time: an election is running, or this node is cut off
    /// from the majority. A write that ends here may still be applied later.
    #[error("raft unavailable: {what}")]
    Unavailable {
        /// What did not happen in time.
        what: &'static str,
    },
    /// The log or state-machine store failed (sled I/O, corrupt record).
    #[error("raft storage failed: {0}")]
    Storage(#[source] Box<StorageError>),
    /// A command was refused when applied. `write` returns rejections as
    /// [`Response::Rejected`](crate::Response::Rejected); this variant is for callers that turn
    /// one into an error.
    #[error("command rejected: {0:?}")]
    Rejected(Rejection),
    /// A peer could not be reached or answered with a transport error.
    #[error("raft rpc to {grpc} failed: {source}")]
    Network {
        /// The peer's gRPC address.
        grpc: String,
        /// The gRPC status.
        #[source]
        source: Box<tonic::Status>,
    },
    /// A peer address is not a valid gRPC endpoint URL.
    #[error("invalid peer address {grpc}")]
    InvalidAddress {
        /// The address as configured.
        grpc: String,
    },
    /// A raft message could not be encoded or decoded.
    #[error("raft message codec: {0}")]
    Codec(#[from] serde_json::Error),
    /// A membership change was refused (another change in progress, unknown learner, empty).
    #[error("membership change refused: {0}")]
    Membership(#[source] Box<openraft::error::ChangeMembershipError<u64>>),
    /// `initialize` was called with members that do not include this node.
    #[error("initial members do not include this node ({node_id})")]
    NotInMembers {
        /// This node's id.
        node_id: u64,
    },
    /// The raft configuration is invalid (for example an election timeout not above the
    /// heartbeat interval).
    #[error("invalid raft configuration: {0}")]
    Config(#[source] Box<openraft::ConfigError>),
    /// Raft stopped: shut down, a storage error, or a panic in its core task.
    #[error("raft stopped: {0}")]
    Fatal(#[source] Box<openraft::error::Fatal<u64>>),
}

impl ControlError {
    /// A short, stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ControlError::NotLeader { .. } => "not_leader",
            ControlError::Unavailable { .. } => "unavailable",
            ControlError::Storage(_) => "storage",
            ControlError::Rejected(_) => "rejected",
            ControlError::Network { .. } => "network",
            ControlError::InvalidAddress { .. } => "invalid_address",
            ControlError::Codec(_) => "codec",
            ControlError::Membership(_) => "membership",
            ControlError::NotInMembers { .. } => "not_in_members",
            ControlError::Config(_) => "config",
            ControlError::Fatal(_) => "fatal",
        }
    }
}

impl From<StorageError> for ControlError {
    fn from(e: StorageError) -> Self {
        ControlError::Storage(Box::new(e))
    }
}

impl From<openraft::error::Fatal<u64>> for ControlError {
    fn from(e: openraft::error::Fatal<u64>) -> Self {
        ControlError::Fatal(Box::new(e))
    }
}

impl From<openraft::ConfigError> for ControlError {
    fn from(e: openraft::ConfigError) -> Self {
        ControlError::Config(Box::new(e))
    }
}

impl From<ControlError> for tonic::Status {
    /// The one mapping from control errors to gRPC statuses (STYLE §2.4.5). Retryable
    /// conditions are `Unavailable`; `NotLeader` also names the leader in metadata.
    fn from(e: ControlError) -> Self {
        let message = e.to_string();
        match e {
            ControlError::NotLeader { leader } => {
                let mut status = tonic::Status::unavailable(message);
                if let Some(value) = leader.and_then(|l| l.grpc.parse().ok()) {
                    status.metadata_mut().insert(LEADER_GRPC_METADATA, value);
                }
                status
            }
            ControlError::Unavailable { .. } | ControlError::Network { .. } => {
                tonic::Status::unavailable(message)
            }
            ControlError::Rejected(Rejection::NotFound(_)) => tonic::Status::not_found(message),
            ControlError::Rejected(Rejection::AlreadyExists(_)) => {
                tonic::Status::already_exists(message)
            }
            ControlError::Rejected(Rejection::FailedPrecondition(_))
            | ControlError::Membership(_) => tonic::Status::failed_precondition(message),
            ControlError::InvalidAddress { .. }
            | ControlError::NotInMembers { .. }
            | ControlError::Config(_) => tonic::Status::invalid_argument(message),
            // Our own or the disk's failure: the caller cannot fix it by changing the request.
            ControlError::Storage(_) | ControlError::Codec(_) | ControlError::Fatal(_) => {
                tonic::Status::internal(message)
            }
        }
    }
}

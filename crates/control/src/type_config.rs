//! The openraft type configuration: what a log entry carries ([`Command`]), what applying one
//! returns ([`Response`]), and what a member is ([`NodeInfo`]). Kept in one module so the port
//! to openraft 0.10 stays small.

use std::fmt;
use std::io::Cursor;

use crate::command::{Command, Response};

openraft::declare_raft_types!(
    /// Switchyard's Raft types.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A cluster member's addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    /// `http://host:port` of the node's HTTP edge.
    pub http: String,
    /// `http://host:port` of the node's gRPC server (Raft and admin).
    pub grpc: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{http: {}, grpc: {}}}", self.http, self.grpc)
    }
}

/// The Raft handle type.
pub type Raft = openraft::Raft<TypeConfig>;
/// Log id.
pub type LogId = openraft::LogId<u64>;
/// Storage error.
pub type StorageError = openraft::StorageError<u64>;

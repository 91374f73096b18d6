//! Switchyard's control plane: keys, teams, budgets, allowances, spend and admin tokens,
//! replicated with openraft (log and state on sled) over tonic.
//!
//! The hot path never waits for consensus: it reads the replicated [`State`] through
//! [`Control::state`] and only writes (admin changes, allowance grants, settlements) go
//! through Raft, with [`Control::write`], from any node.
//!
//! # Layout
//! - [`command`]: what the log carries ([`Command`], [`Op`]) and what applying returns.
//! - [`state`]: the replicated [`State`] and its pure transition function.
//! - [`type_config`]: openraft's type configuration.
//! - [`store`]: the sled log store and state-machine store (durability rules live there).
//! - [`network`]: the Raft transport over tonic, client ([`network::client`]) and server
//!   ([`raft_service`]).
//! - [`control`]: the [`Control`] handle: open, initialise, write (forwarded to the leader),
//!   membership, status, shutdown.
//! - [`error`]: [`ControlError`] and its gRPC status mapping.
//! - [`sealing`]: AEAD sealing of provider credentials before they enter the log.
//!
//! This crate binds no socket: the node serves [`raft_service`] on its own gRPC listener.

#[expect(
    clippy::large_enum_variant,
    reason = "Response::Key carries a whole KeyRecord; responses are built once per applied \
              command, off the request path, so the size is not worth an API change here"
)]
pub mod command;
pub mod control;
pub mod error;
pub mod network;
pub mod sealing;
pub mod state;
pub mod store;
pub mod type_config;

pub use command::{
    Command, KeyRecord, KeyStatus, Op, Period, ProviderSpec, Rejection, Response, Role, RouteSpec,
    RoutingLimits, Scope, SpendEntry,
};
pub use control::{Control, ControlConfig, DEFAULT_SNAPSHOT_CHUNK_BYTES, MemberRole};
pub use error::{ControlError, LEADER_GRPC_METADATA};
pub use network::{RaftServer, authorize_peer, raft_service};
pub use state::State;
pub use type_config::{NodeInfo, TypeConfig};

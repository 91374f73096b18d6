//! Switchyard's control plane: keys, teams, budgets, allowances, spend and admin tokens,
//! replicated with openraft (log and state on sled) over tonic.
//!
//! # Layout
//! - [`command`]: what the log carries ([`Command`], [`Op`]) and what applying returns.
//! - [`state`]: the replicated [`State`] and its pure transition function.
//! - [`type_config`]: openraft's type configuration.

pub mod command;
pub mod state;
pub mod type_config;

pub use command::{
    Command, KeyRecord, KeyStatus, Op, Period, Rejection, Response, Role, Scope, SpendEntry,
};
pub use state::State;
pub use type_config::{NodeInfo, TypeConfig};

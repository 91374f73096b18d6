//! One Switchyard node: configuration, the HTTP edge, dispatch and shutdown.
//!
//! Hot path: edge → auth → guard → router → provider actor → upstream.
//!
//! # Layout
//! - [`config`]: the TOML file, composed from each crate's section, and its validation.
//! - [`keys`]: virtual keys by digest.
//! - [`edge`]: axum routes and handlers; [`edge::error`] is the one error → HTTP table.
//! - [`dispatch`]: runs the router's plan against the providers within the retry budget.
//! - [`accounting`]: price and counters per (provider, model); [`metrics`]: Prometheus.
//! - [`guard`]: budget admission from node-local allowances reserved through Raft.
//! - [`admin`]: the admin gRPC service; [`cluster_view`]: cluster status; [`duties`]: leader work.
//! - [`node`]: [`Node::start`] and [`NodeHandle`] with the shutdown sequence.
//!
//! The node does not implement wire formats (`switchyard-wire`), routing rules
//! (`switchyard-router`) or upstream calls (`switchyard-provider`); it composes them.

pub mod accounting;
pub mod admin;
pub mod cluster_view;
pub mod config;
pub mod dispatch;
pub mod duties;
pub mod edge;
pub mod guard;
pub mod keys;
pub mod metrics;
pub mod node;
pub mod rates;
pub mod routing;
pub mod stats;
pub mod transfer;

pub use config::{Config, ConfigError, ConfigToml};
pub use node::{App, Node, NodeHandle, StartError};

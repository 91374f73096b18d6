//! Test harness for Switchyard: real nodes and mock providers on loopback sockets (port 0),
//! plain HTTP clients, bounded waiting, and the Python SDK virtualenv. Dev-only.
//!
//! # Layout
//! - [`cluster`]: [`TestCluster`], in-process nodes over an in-process mock fleet.
//! - [`http`]: a small HTTP/1.1 client (JSON and SSE) on hyper.
//! - [`eventually`]: bounded retry instead of sleeps.
//! - [`python`]: the virtualenv with the official `openai` and `anthropic` packages.

#![expect(
    clippy::disallowed_methods,
    reason = "the test kit binds mock listeners and spawns tasks directly"
)]

pub mod cluster;
pub mod eventually;
pub mod http;
pub mod procs;
pub mod python;
pub mod tls;

pub use cluster::{MockSpec, TestCluster};
pub use eventually::eventually;
pub use http::{Reply, delete, get, post_json, post_raw};

/// Installs a tracing subscriber once per process (quiet unless `RUST_LOG` is set).
pub fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

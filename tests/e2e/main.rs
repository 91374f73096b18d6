//! End-to-end tests: real nodes and mock providers on loopback sockets, driven over HTTP (and,
//! in `sdk`, by the official Python SDKs). One test binary, one module per area.

#![expect(
    clippy::disallowed_methods,
    reason = "tests spawn tasks and read time directly"
)]

mod bad_input;
mod breaker;
mod chat;
mod cluster_up;
mod control;
mod cost;
mod messages;
mod providers;
mod raft_procs;
mod rate_limit;
mod sdk;
mod streaming;
mod tls;
mod tools;
mod view;

use std::time::Duration;

/// Bound on any one test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a test body under [`TEST_TIMEOUT`], so a hang fails instead of stalling CI.
pub async fn bounded<F: std::future::Future<Output = anyhow::Result<()>>>(
    f: F,
) -> anyhow::Result<()> {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .map_err(|_| anyhow::anyhow!("test exceeded {TEST_TIMEOUT:?}"))?
}

//! Bounded waiting: retry a check until it holds or a deadline passes (never a bare sleep).

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 20 ms until it returns `Some`, or fails after `timeout`.
///
/// # Errors
/// When the deadline passes; the message names `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

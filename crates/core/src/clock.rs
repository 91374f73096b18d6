//! The clock seam. Every read of monotonic or wall-clock time goes through [`Clock`], so that
//! tests can pause tokio time and a deterministic simulation can drive the real node code. The
//! monotonic side is tokio's `Instant`, which `#[tokio::test(start_paused = true)]` controls.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio::time::Instant;

/// A source of time.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic now, for durations, timeouts and windows.
    fn now(&self) -> Instant;
    /// Wall-clock milliseconds since the Unix epoch, for timestamps in responses and records.
    fn unix_ms(&self) -> u64;
    /// Wall-clock seconds since the Unix epoch (`created` fields).
    fn unix_s(&self) -> u64 {
        self.unix_ms() / 1000
    }
}

/// The production clock: tokio's monotonic clock and the system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(clippy::disallowed_methods, reason = "this is the clock seam itself")]
    fn now(&self) -> Instant {
        Instant::now()
    }

    #[expect(clippy::disallowed_methods, reason = "this is the clock seam itself")]
    fn unix_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis()
            .try_into()
            .unwrap_or(u64::MAX)
    }
}

/// A shared clock handle, as held by long-lived components.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn monotonic_time_follows_paused_tokio_time() {
        let c = SystemClock;
        let t0 = c.now();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(c.now() - t0, Duration::from_secs(5));
        assert!(c.unix_ms() > 1_600_000_000_000);
    }
}

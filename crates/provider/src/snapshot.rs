//! What a provider actor publishes for readers that must not wait on it: the router (latency
//! for lowest-latency routing), `/metrics`, `/v1/models` and operators. Published through a
//! `watch` channel at most a few times a second, and at once when the breaker changes phase.
//! Admission-critical state (breaker phase, in-flight, rate tokens) is in the
//! [`Gate`](crate::Gate) instead, where it is current to the atomic operation.

use std::time::Duration;

use hdrhistogram::Histogram;
use switchyard_core::{BreakerPhase, OutcomeClass};

/// A provider's published state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProviderSnapshot {
    /// Breaker phase when published.
    pub phase: BreakerPhase,
    /// Outcomes counted since start, by class.
    pub counts: OutcomeCounts,
    /// Time-to-first-token quantiles over the recent window, microseconds.
    pub ttft_us: Quantiles,
    /// Total-latency quantiles over the recent window, microseconds.
    pub total_us: Quantiles,
    /// Outcomes in the recent window.
    pub window_requests: u64,
    /// Provider failures in the recent window.
    pub window_failures: u64,
    /// Prompt plus completion tokens since start.
    pub tokens: u64,
    /// How many times the supervisor restarted the actor.
    pub restarts: u32,
}

/// Outcome counters by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// 2xx.
    pub ok: u64,
    /// 4xx other than 429.
    pub client_error: u64,
    /// 429.
    pub rate_limited: u64,
    /// 5xx and cut streams.
    pub server_error: u64,
    /// Timeouts.
    pub timeout: u64,
    /// Connect errors.
    pub connect: u64,
}

impl OutcomeCounts {
    /// Counts one outcome.
    pub fn add(&mut self, class: OutcomeClass) {
        let slot = match class {
            OutcomeClass::Ok => &mut self.ok,
            OutcomeClass::ClientError => &mut self.client_error,
            OutcomeClass::RateLimited => &mut self.rate_limited,
            OutcomeClass::ServerError => &mut self.server_error,
            OutcomeClass::Timeout => &mut self.timeout,
            OutcomeClass::Connect => &mut self.connect,
        };
        *slot += 1;
    }

    /// All outcomes.
    pub fn total(&self) -> u64 {
        self.ok
            + self.client_error
            + self.rate_limited
            + self.server_error
            + self.timeout
            + self.connect
    }

    /// Outcomes that are not 2xx.
    pub fn errors(&self) -> u64 {
        self.total() - self.ok
    }
}

/// Latency quantiles in microseconds (0 when there is no sample).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quantiles {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
}

/// Histogram bounds shared by every node, so histograms can be merged across the cluster:
/// 1 µs to 10 minutes at 3 significant figures.
pub const HIST_LOW_US: u64 = 1;
/// Upper bound, microseconds.
pub const HIST_HIGH_US: u64 = 600_000_000;
/// Significant figures.
pub const HIST_SIGFIG: u8 = 3;

/// A sliding latency window made of two histograms: the current slot and the previous one.
/// Rotating every `slot` keeps between one and two slots of history.
pub struct LatencyWindow {
    current: Histogram<u64>,
    previous: Histogram<u64>,
}

impl LatencyWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self {
            current: new_histogram(),
            previous: new_histogram(),
        }
    }

    /// Records one duration (clamped to the bounds).
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(HIST_LOW_US, HIST_HIGH_US);
        let _ = self.current.record(us);
    }

    /// Starts a new slot, forgetting the oldest.
    pub fn rotate(&mut self) {
        std::mem::swap(&mut self.current, &mut self.previous);
        self.current.reset();
    }

    /// Samples in the window.
    pub fn len(&self) -> u64 {
        self.current.len() + self.previous.len()
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Quantiles over both slots.
    pub fn quantiles(&self) -> Quantiles {
        if self.is_empty() {
            return Quantiles::default();
        }
        let mut merged = self.current.clone();
        let _ = merged.add(&self.previous);
        Quantiles {
            p50: merged.value_at_quantile(0.50),
            p95: merged.value_at_quantile(0.95),
            p99: merged.value_at_quantile(0.99),
        }
    }
}

impl Default for LatencyWindow {
    fn default() -> Self {
        Self::new()
    }
}

/// A histogram with the shared bounds.
#[expect(
    clippy::expect_used,
    reason = "the bounds are constants that hdrhistogram accepts (low >= 1, high >= 2 * low, sigfig <= 5)"
)]
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, HIST_SIGFIG)
        .expect("valid histogram bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_quantiles_cover_two_slots_then_forget() {
        let mut w = LatencyWindow::new();
        for ms in 1..=100 {
            w.record(Duration::from_millis(ms));
        }
        let q = w.quantiles();
        assert!((49_000..=51_000).contains(&q.p50), "{q:?}");
        assert!((94_000..=96_000).contains(&q.p95), "{q:?}");
        w.rotate();
        assert_eq!(w.len(), 100);
        w.rotate();
        assert!(w.is_empty());
        assert_eq!(w.quantiles(), Quantiles::default());
    }
}

//! The vocabulary of the cluster-wide stats exchange: what one node reports about one
//! (provider, model) pair for one interval, and the outcome classes it counts. Nodes push these
//! deltas to each other about once a second; each node merges every node's deltas (its own
//! included) into a sliding-window view that routing reads. Latency histograms travel as
//! hdrhistogram V2+deflate bytes with the same bounds everywhere, so they merge exactly.

use crate::health::{BreakerPhase, OutcomeClass};

/// Histogram bounds shared by every node: 1 µs to 10 minutes at 3 significant figures.
pub const HIST_LOW_US: u64 = 1;
/// Upper bound, microseconds.
pub const HIST_HIGH_US: u64 = 600_000_000;
/// Significant figures.
pub const HIST_SIGFIG: u8 = 3;

/// Outcome counts by class, in [`OutcomeClass`] order: ok, 4xx, 429, 5xx, timeout, connect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCounts(pub [u64; 6]);

impl ClassCounts {
    /// The slot of a class.
    pub fn index(class: OutcomeClass) -> usize {
        match class {
            OutcomeClass::Ok => 0,
            OutcomeClass::ClientError => 1,
            OutcomeClass::RateLimited => 2,
            OutcomeClass::ServerError => 3,
            OutcomeClass::Timeout => 4,
            OutcomeClass::Connect => 5,
        }
    }

    /// Counts one outcome.
    pub fn add(&mut self, class: OutcomeClass) {
        self.0[Self::index(class)] += 1;
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &ClassCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// All outcomes.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Outcomes that count against the provider's health (5xx, timeout, connect).
    pub fn provider_failures(&self) -> u64 {
        self.0[3] + self.0[4] + self.0[5]
    }

    /// The count of one class.
    pub fn get(&self, class: OutcomeClass) -> u64 {
        self.0[Self::index(class)]
    }
}

/// One node's report about one (provider, upstream model) pair for one interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PairDelta {
    /// Provider name.
    pub provider: String,
    /// Upstream model name.
    pub model: String,
    /// Outcomes in the interval.
    pub counts: ClassCounts,
    /// Retries sent to this pair in the interval (attempts after a request's first).
    pub retries: u64,
    /// Prompt plus completion tokens in the interval.
    pub tokens: u64,
    /// Time-to-first-token histogram of the interval's successes, V2+deflate (empty: none).
    pub ttft_hist: Vec<u8>,
    /// Total-latency histogram, V2+deflate (empty: none).
    pub total_hist: Vec<u8>,
}

/// One node's report about one provider (all models) at the end of an interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProviderReport {
    /// Provider name.
    pub provider: String,
    /// Requests in flight at the end of the interval.
    pub in_flight: u64,
    /// Breaker phase at the end of the interval.
    pub breaker: BreakerPhase,
    /// Requests this node wanted to send in the last minute (admitted or refused by the rate
    /// gate): its demand, for sharing the provider's quota in proportion.
    pub demand_per_min: u64,
}

/// Everything one node pushes in one round.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatsReport {
    /// The reporting node.
    pub node: u64,
    /// Increases by one per report, so a receiver can ignore duplicates and stale reorderings.
    pub seq: u64,
    /// The reporter's wall clock when the interval ended, Unix ms.
    pub at_ms: u64,
    /// Per-pair deltas.
    pub pairs: Vec<PairDelta>,
    /// Per-provider gauges.
    pub providers: Vec<ProviderReport>,
}

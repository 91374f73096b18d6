//! What the cluster view answers: per-pair and per-provider summaries of the window, and the
//! health verdict routing uses to avoid a provider that is failing on other nodes before it
//! fails here.

use std::collections::BTreeMap;

use switchyard_core::stats::ClassCounts;
use switchyard_core::{BreakerPhase, OutcomeClass, Price};

use crate::plan::{TargetState, TargetView};
use crate::route::Target;

/// The cluster's verdict on a provider or pair. Ordered from best to worst, so the worse of two
/// verdicts is their `max`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Health {
    /// Too few recent failures to matter (or no recent traffic at all).
    #[default]
    Healthy,
    /// Failing often enough to rank lower, not often enough to avoid.
    Degraded,
    /// Failing cluster-wide: planned behind every target that is not.
    Failing,
}

impl Health {
    /// Label for metrics, headers and `ctl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Failing => "failing",
        }
    }
}

/// How far back the health verdict looks. Shorter than the window, so a provider that recovered
/// half a minute ago is not still judged on its outage: ten exchange rounds.
pub const HEALTH_RECENT_MS: u64 = 10_000;
/// Fewest recent judged outcomes (4xx excluded) before a failure rate says anything: with fewer,
/// one unlucky request would mark a provider failing on every node.
pub const HEALTH_MIN_SAMPLES: u64 = 5;
/// Recent failure rate at or above which a provider is [`Health::Failing`]: half of all attempts
/// failing is an outage, not noise.
pub const FAILING_FAILURE_PCT: u64 = 50;
/// Recent failure rate at or above which a provider is [`Health::Degraded`].
pub const DEGRADED_FAILURE_PCT: u64 = 10;
/// Recent 429 share at or above which a provider is [`Health::Degraded`]: it is out of quota for
/// most callers, which says nothing of its health but much of its usefulness.
pub const DEGRADED_RATE_LIMITED_PCT: u64 = 50;

/// Latency quantiles in microseconds; all zero when there are no samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyQuantiles {
    /// Median.
    pub p50_us: u64,
    /// 95th percentile.
    pub p95_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Samples behind them.
    pub samples: u64,
}

/// Breaker phases by reporting node (only nodes heard from within the silence limit).
pub type Breakers = Vec<(u64, BreakerPhase)>;

/// The window's measures for one pair or one provider, merged over every live node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowSummary {
    /// Outcomes counted (every attempt, retries included).
    pub requests: u64,
    /// Outcomes by class.
    pub counts: ClassCounts,
    /// Provider failures (5xx, timeout, connect) per hundred outcomes, rounded to nearest.
    pub error_rate_pct: u32,
    /// 429s per hundred outcomes, rounded to nearest.
    pub rate_limited_pct: u32,
    /// Time to first token of successes.
    pub ttft: LatencyQuantiles,
    /// Total latency.
    pub total: LatencyQuantiles,
    /// Requests in flight at the provider, summed over live nodes (a provider-wide gauge, also
    /// on pair summaries).
    pub in_flight: u64,
    /// Breaker phase per live node that reports the provider.
    pub breakers: Breakers,
    /// Prompt plus completion tokens.
    pub tokens: u64,
    /// Retries sent (attempts after a request's first).
    pub retries: u64,
    /// Outcomes in the last [`HEALTH_RECENT_MS`] only, which the verdict is made from.
    pub recent: ClassCounts,
    /// The verdict.
    pub health: Health,
}

/// One (provider, upstream model) pair over the window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PairSummary {
    /// Provider name.
    pub provider: String,
    /// Upstream model name.
    pub model: String,
    /// The measures.
    pub stats: WindowSummary,
}

/// One provider, all its models, over the window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderSummary {
    /// Provider name.
    pub provider: String,
    /// Models seen in the window.
    pub models: Vec<String>,
    /// Requests per minute wanted by all live nodes together (quota sharing).
    pub demand_per_min: u64,
    /// The measures.
    pub stats: WindowSummary,
}

/// Every summary at one instant: what a node computes once per exchange round and publishes
/// for the hot path, so routing reads a map instead of merging windows per request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewSummary {
    /// The instant summarised, Unix ms.
    pub at_ms: u64,
    /// By provider name.
    pub providers: BTreeMap<String, ProviderSummary>,
    /// By (provider, upstream model).
    pub pairs: BTreeMap<(String, String), PairSummary>,
}

/// The verdict, in order:
///
/// 1. **Failing** when a strict majority of the nodes reporting the provider have its breaker
///    open, or when at least [`HEALTH_MIN_SAMPLES`] judged outcomes arrived in the last
///    [`HEALTH_RECENT_MS`] and at least [`FAILING_FAILURE_PCT`]% of them are provider failures.
/// 2. **Degraded** when any reporting node's breaker is not closed, or (with the same minimum
///    sample count) failures reach [`DEGRADED_FAILURE_PCT`]% or 429s reach
///    [`DEGRADED_RATE_LIMITED_PCT`]%.
/// 3. **Healthy** otherwise, including when nothing recent is known.
///
/// Judged outcomes exclude 4xx: a client sending bad requests says nothing of the provider.
/// Failures are counted cluster-wide, so one node's outage evidence moves every node.
pub fn judge(recent: &ClassCounts, breakers: &[(u64, BreakerPhase)]) -> Health {
    let open = breakers
        .iter()
        .filter(|(_, b)| *b == BreakerPhase::Open)
        .count();
    let not_closed = breakers
        .iter()
        .filter(|(_, b)| *b != BreakerPhase::Closed)
        .count();
    let judged = recent
        .total()
        .saturating_sub(recent.get(OutcomeClass::ClientError));
    let enough = judged >= HEALTH_MIN_SAMPLES;
    let at_least = |n: u64, pct: u64| enough && n.saturating_mul(100) >= pct.saturating_mul(judged);
    let failures = recent.provider_failures();
    if open * 2 > breakers.len() || at_least(failures, FAILING_FAILURE_PCT) {
        Health::Failing
    } else if not_closed > 0
        || at_least(failures, DEGRADED_FAILURE_PCT)
        || at_least(
            recent.get(OutcomeClass::RateLimited),
            DEGRADED_RATE_LIMITED_PCT,
        )
    {
        Health::Degraded
    } else {
        Health::Healthy
    }
}

/// `part` per hundred of `whole`, rounded to nearest; 0 when `whole` is 0.
pub(crate) fn pct(part: u64, whole: u64) -> u32 {
    if whole == 0 {
        return 0;
    }
    let p = (u128::from(part) * 100 + u128::from(whole) / 2) / u128::from(whole);
    u32::try_from(p).unwrap_or(u32::MAX)
}

/// Quantiles of sparse buckets `(highest equivalent value, count)`, in any order, by the same
/// rule as `Histogram::value_at_quantile`: the first bucket at which the running count reaches
/// `ceil(q × total)` (at least 1).
pub(crate) fn quantiles(mut buckets: Vec<(u64, u64)>) -> LatencyQuantiles {
    buckets.sort_unstable_by_key(|(v, _)| *v);
    let samples: u64 = buckets.iter().map(|(_, c)| *c).sum();
    if samples == 0 {
        return LatencyQuantiles::default();
    }
    let at = |per_mille: u128| {
        let target = (u128::from(samples) * per_mille).div_ceil(1000).max(1);
        let mut running: u128 = 0;
        for &(v, c) in &buckets {
            running += u128::from(c);
            if running >= target {
                return v;
            }
        }
        buckets.last().map_or(0, |(v, _)| *v)
    };
    LatencyQuantiles {
        p50_us: at(500),
        p95_us: at(950),
        p99_us: at(990),
        samples,
    }
}

// === impl ViewSummary ===

impl ViewSummary {
    /// What the router should know of `target`: this node's own gauges (`local`: availability,
    /// support, its in-flight count) combined with the cluster's window for the pair and the
    /// provider, the catalog price and the provider's region.
    ///
    /// 1. Latency (p50, p95, samples) and error rate come from the pair's cluster window when
    ///    it has samples; otherwise the local figures stand.
    /// 2. Health is the worse of the pair's and the provider's verdicts, so a provider failing
    ///    on one model ranks lower for all of them.
    /// 3. `cluster_in_flight` is the provider's in-flight count summed over live nodes.
    pub fn target_state(
        &self,
        target: &Target,
        local: TargetView,
        price: Option<Price>,
        region: &str,
    ) -> TargetState {
        let provider = self.providers.get(target.provider.as_str());
        let pair = self.pairs.get(&(
            target.provider.as_str().to_owned(),
            target.upstream_model.clone(),
        ));
        let mut state = TargetState::from(local);
        state.price_micros_per_mtok =
            price.map(|p| (p.input_micros_per_mtok, p.output_micros_per_mtok));
        region.clone_into(&mut state.region);
        if let Some(p) = pair
            && p.stats.total.samples > 0
        {
            state.latency_p50_us = p.stats.total.p50_us;
            state.p95_us = p.stats.total.p95_us;
            state.latency_samples = p.stats.total.samples;
        }
        if let Some(p) = pair {
            state.error_rate_pct = p.stats.error_rate_pct;
            state.health = p.stats.health;
        }
        if let Some(p) = provider {
            state.health = state.health.max(p.stats.health);
            state.cluster_in_flight = p.stats.in_flight;
        }
        state
    }
}

/// Cost per thousand tokens, micro-dollars, rounded up: (input, output). The catalog quotes per
/// million; dashboards and `ctl` read per thousand.
pub fn price_per_ktok_micros(price: Price) -> (u64, u64) {
    (
        price.input_micros_per_mtok.div_ceil(1000),
        price.output_micros_per_mtok.div_ceil(1000),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(ok: u64, c4xx: u64, c429: u64, c5xx: u64) -> ClassCounts {
        ClassCounts([ok, c4xx, c429, c5xx, 0, 0])
    }

    #[test]
    fn health_needs_enough_samples_and_ignores_client_errors() {
        assert_eq!(judge(&counts(0, 0, 0, 4), &[]), Health::Healthy);
        assert_eq!(judge(&counts(0, 0, 0, 5), &[]), Health::Failing);
        assert_eq!(judge(&counts(5, 0, 0, 5), &[]), Health::Failing);
        assert_eq!(judge(&counts(6, 0, 0, 5), &[]), Health::Degraded);
        assert_eq!(judge(&counts(81, 0, 0, 9), &[]), Health::Degraded);
        assert_eq!(judge(&counts(91, 0, 0, 9), &[]), Health::Healthy);
        assert_eq!(judge(&counts(10, 1000, 0, 0), &[]), Health::Healthy);
        assert_eq!(judge(&counts(5, 0, 5, 0), &[]), Health::Degraded);
    }

    #[test]
    fn health_follows_a_majority_of_open_breakers() {
        let quiet = ClassCounts::default();
        let b = |phases: &[BreakerPhase]| -> Breakers {
            phases
                .iter()
                .enumerate()
                .map(|(i, p)| (i as u64, *p))
                .collect()
        };
        use BreakerPhase::*;
        assert_eq!(judge(&quiet, &b(&[Open, Open, Closed])), Health::Failing);
        assert_eq!(judge(&quiet, &b(&[Open, Closed])), Health::Degraded);
        assert_eq!(
            judge(&quiet, &b(&[HalfOpen, Closed, Closed])),
            Health::Degraded
        );
        assert_eq!(judge(&quiet, &b(&[Closed, Closed])), Health::Healthy);
    }

    #[test]
    fn quantiles_match_hdrhistogram() {
        let samples: Vec<u64> = (1..=1000).map(|i| i * 37).collect();
        let h = crate::view::codec::histogram_of(&samples);
        let buckets: Vec<_> = h
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        let q = quantiles(buckets);
        assert_eq!(q.samples, 1000);
        assert_eq!(q.p50_us, h.value_at_quantile(0.5));
        assert_eq!(q.p95_us, h.value_at_quantile(0.95));
        assert_eq!(q.p99_us, h.value_at_quantile(0.99));
        assert_eq!(quantiles(vec![]), LatencyQuantiles::default());
    }
}

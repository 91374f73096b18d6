//! The retry budget and backoff. Upstream attempts per client request never exceed
//! `1 + max_retries` (DESIGN §2.6), whatever mix of targets and fallbacks the plan holds, and
//! retries to one provider stay within a cluster-wide share of its traffic ([`RetryBudget`]), so
//! a failing provider never multiplies the load on it.

use std::time::Duration;

/// How many attempts a request may make and how long to wait between rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Wait before the first retry that goes back to an already-tried target.
    pub backoff_base: Duration,
    /// Upper bound for that wait.
    pub backoff_max: Duration,
}

/// Two retries: enough to step over one failed provider and one blip, few enough that a
/// failing fleet does not triple its load.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// 25 ms: short next to an LLM call, long enough to let a transient error pass.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(25);
/// One second at most between retries, so a client is not held for long.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(1);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
        }
    }
}

impl RetryPolicy {
    /// Attempts allowed in all.
    pub fn max_attempts(&self) -> u32 {
        self.max_retries.saturating_add(1)
    }

    /// The wait before attempt number `attempt` (0-based) when it goes to a target that was
    /// already tried: exponential from `backoff_base`, capped. Moving on to a fresh target needs
    /// no wait, since that provider has not failed.
    pub fn backoff(&self, round: u32) -> Duration {
        self.backoff_base
            .saturating_mul(1u32.checked_shl(round.min(16)).unwrap_or(u32::MAX))
            .min(self.backoff_max)
    }
}

/// The cluster-wide retry budget of one provider: retries sent to it over the view's window may
/// be at most `ratio_pct`% of all attempts it received there (retries included), with a floor so
/// a quiet provider can still be retried.
///
/// Counting retries among the attempts bounds amplification: with `r = ratio_pct / 100`,
/// attempts ≤ first attempts / (1 − r), that is at most 1.25× the offered load at the default
/// 20%, however badly the provider fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryBudget {
    /// Retries allowed per hundred attempts over the window.
    pub ratio_pct: u32,
    /// Retries allowed over the window whatever the traffic.
    pub min_retries: u64,
}

/// 20%: one request in five may be retried, enough to step over a blip, too little for a
/// retry storm to outgrow the traffic that caused it.
pub const DEFAULT_RETRY_RATIO_PCT: u32 = 20;
/// Three retries per window cluster-wide, so a provider that sees a handful of requests a minute
/// can still be retried; small enough that a quiet, dead provider gets three extra attempts a
/// window at most (plus what nodes send before they see each other's, one exchange round).
pub const DEFAULT_MIN_RETRIES_PER_WINDOW: u64 = 3;

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            ratio_pct: DEFAULT_RETRY_RATIO_PCT,
            min_retries: DEFAULT_MIN_RETRIES_PER_WINDOW,
        }
    }
}

impl RetryBudget {
    /// Retries the window may hold, given the attempts it counted.
    pub fn cap(&self, attempts: u64) -> u64 {
        let by_ratio = u128::from(attempts) * u128::from(self.ratio_pct) / 100;
        u64::try_from(by_ratio)
            .unwrap_or(u64::MAX)
            .max(self.min_retries)
    }

    /// Whether one more retry fits: the window's `retries` are below the cap for its `attempts`.
    pub fn allows(&self, attempts: u64, retries: u64) -> bool {
        retries < self.cap(attempts)
    }
}

impl RetryPolicy {
    /// Whether a request that has made `attempts_made` attempts (≥ 1) may make another:
    /// it is under `1 + max_retries`, and the next target's provider has room in its
    /// cluster-wide retry budget (`budget_ok`, from the cluster view).
    pub fn may_retry(&self, attempts_made: u32, budget_ok: bool) -> bool {
        budget_ok && attempts_made < self.max_attempts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 3);
        assert_eq!(p.backoff(0), Duration::from_millis(25));
        assert_eq!(p.backoff(1), Duration::from_millis(50));
        assert_eq!(p.backoff(10), Duration::from_secs(1));
    }

    #[test]
    fn budget_refuses_past_its_ratio_but_keeps_a_floor() {
        let b = RetryBudget::default();
        assert!(b.allows(100, 19));
        assert!(!b.allows(100, 20));
        assert!(b.allows(0, 2), "a quiet provider can still be retried");
        assert!(!b.allows(0, 3));
    }

    proptest! {
        /// Attempts per request never exceed 1 + max_retries, whatever the budget answers.
        #[test]
        fn attempts_never_exceed_one_plus_retries(
            max_retries in 0u32..6,
            answers in proptest::collection::vec(any::<bool>(), 0..20),
        ) {
            let p = RetryPolicy { max_retries, ..RetryPolicy::default() };
            let mut attempts = 1u32;
            for ok in answers {
                if p.may_retry(attempts, ok) {
                    attempts += 1;
                }
            }
            prop_assert!(attempts <= 1 + max_retries);
        }

        /// Cluster-wide, retries admitted by the budget never pass its cap, however requests
        /// and retries interleave.
        #[test]
        fn retries_admitted_stay_within_the_cap(
            ratio_pct in 0u32..100,
            steps in proptest::collection::vec(any::<bool>(), 0..400),
        ) {
            let b = RetryBudget { ratio_pct, min_retries: DEFAULT_MIN_RETRIES_PER_WINDOW };
            let (mut attempts, mut retries) = (0u64, 0u64);
            for wants_retry in steps {
                if wants_retry {
                    if b.allows(attempts, retries) {
                        retries += 1;
                        attempts += 1;
                    }
                } else {
                    attempts += 1;
                }
                prop_assert!(retries <= b.cap(attempts));
            }
        }
    }
}

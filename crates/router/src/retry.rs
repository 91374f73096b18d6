//! The retry budget and backoff. Upstream attempts per client request never exceed
//! `1 + max_retries` (DESIGN §2.6), whatever mix of targets and fallbacks the plan holds.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 3);
        assert_eq!(p.backoff(0), Duration::from_millis(25));
        assert_eq!(p.backoff(1), Duration::from_millis(50));
        assert_eq!(p.backoff(10), Duration::from_secs(1));
    }
}

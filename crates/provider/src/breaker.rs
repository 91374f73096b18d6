//! The circuit breaker as data: an explicit three-phase state with pure transitions, so every
//! rule is unit-testable without a runtime (the same phases as linkerd's consecutive-failures
//! breaker). The provider actor owns one and mirrors its phase into the [`Gate`](crate::Gate)
//! that the request path reads.
//!
//! 1. **Closed**: traffic flows; consecutive provider failures are counted, a success resets them.
//! 2. **Open**: reached at the failure threshold; no traffic. When the open period ends, the
//!    actor sends one active probe to the upstream.
//! 3. **Half-open**: reached when the active probe answers; a few real requests pass. The first
//!    success closes the breaker; a failure reopens it with a doubled period (capped).

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{BreakerConfig, MAX_OPEN};

/// The breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Traffic flows.
    Closed {
        /// Provider failures in a row since the last success.
        consecutive_failures: u32,
    },
    /// No traffic until `until`, then an active probe.
    Open {
        /// When the open period ends.
        until: Instant,
        /// How many times it reopened without closing; doubles the open period.
        round: u32,
    },
    /// Probes pass; the next real outcome decides.
    HalfOpen {
        /// Carried into the next open period if a probe fails.
        round: u32,
    },
}

impl Default for BreakerState {
    fn default() -> Self {
        BreakerState::Closed {
            consecutive_failures: 0,
        }
    }
}

/// How long the breaker stays open in `round` (0-based): the configured period doubled each
/// round, capped at [`MAX_OPEN`].
pub fn open_period(cfg: &BreakerConfig, round: u32) -> Duration {
    let factor = 1u32.checked_shl(round.min(16)).unwrap_or(u32::MAX);
    cfg.open.saturating_mul(factor).min(MAX_OPEN)
}

impl BreakerState {
    /// The state after one real request's outcome (`failure` = a provider failure: 5xx,
    /// timeout or connect error; a 4xx or 429 is not the provider being down).
    #[must_use]
    pub fn on_outcome(self, failure: bool, cfg: &BreakerConfig, now: Instant) -> Self {
        match (self, failure) {
            (BreakerState::Closed { .. }, false) => BreakerState::Closed {
                consecutive_failures: 0,
            },
            (
                BreakerState::Closed {
                    consecutive_failures,
                },
                true,
            ) => {
                let n = consecutive_failures.saturating_add(1);
                if n >= cfg.failure_threshold {
                    BreakerState::Open {
                        until: now + open_period(cfg, 0),
                        round: 0,
                    }
                } else {
                    BreakerState::Closed {
                        consecutive_failures: n,
                    }
                }
            }
            // Stragglers admitted before the breaker opened do not change an open breaker.
            (open @ BreakerState::Open { .. }, _) => open,
            (BreakerState::HalfOpen { .. }, false) => BreakerState::Closed {
                consecutive_failures: 0,
            },
            (BreakerState::HalfOpen { round }, true) => {
                let round = round.saturating_add(1);
                BreakerState::Open {
                    until: now + open_period(cfg, round),
                    round,
                }
            }
        }
    }

    /// Whether an open breaker's period is over, so the actor should probe.
    pub fn probe_due(&self, now: Instant) -> bool {
        matches!(self, BreakerState::Open { until, .. } if now >= *until)
    }

    /// The state after an active probe: healthy moves to half-open, otherwise stays open for a
    /// longer period.
    #[must_use]
    pub fn on_probe(self, healthy: bool, cfg: &BreakerConfig, now: Instant) -> Self {
        match self {
            BreakerState::Open { round, .. } if healthy => BreakerState::HalfOpen { round },
            BreakerState::Open { round, .. } => {
                let round = round.saturating_add(1);
                BreakerState::Open {
                    until: now + open_period(cfg, round),
                    round,
                }
            }
            other => other,
        }
    }

    /// The phase published to the router and operators.
    pub fn phase(&self) -> switchyard_core::BreakerPhase {
        match self {
            BreakerState::Closed { .. } => switchyard_core::BreakerPhase::Closed,
            BreakerState::Open { .. } => switchyard_core::BreakerPhase::Open,
            BreakerState::HalfOpen { .. } => switchyard_core::BreakerPhase::HalfOpen,
        }
    }
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "tests read paused tokio time directly"
)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            failure_threshold: 3,
            open: Duration::from_secs(2),
            half_open_probes: 1,
        }
    }

    #[test]
    fn breaker_opens_after_threshold_then_half_opens_on_healthy_probe_and_closes_on_success() {
        let now = Instant::now();
        let c = cfg();
        let mut s = BreakerState::default();
        s = s.on_outcome(true, &c, now);
        s = s.on_outcome(true, &c, now);
        assert_eq!(
            s,
            BreakerState::Closed {
                consecutive_failures: 2
            }
        );
        s = s.on_outcome(true, &c, now);
        assert_eq!(
            s,
            BreakerState::Open {
                until: now + Duration::from_secs(2),
                round: 0
            }
        );
        assert!(!s.probe_due(now + Duration::from_secs(1)));
        assert!(s.probe_due(now + Duration::from_secs(2)));
        s = s.on_probe(true, &c, now);
        assert_eq!(s, BreakerState::HalfOpen { round: 0 });
        s = s.on_outcome(false, &c, now);
        assert_eq!(
            s,
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let now = Instant::now();
        let s = BreakerState::default()
            .on_outcome(true, &cfg(), now)
            .on_outcome(true, &cfg(), now)
            .on_outcome(false, &cfg(), now);
        assert_eq!(
            s,
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
    }

    #[test]
    fn failed_probes_double_the_open_period_up_to_the_cap() {
        let now = Instant::now();
        let c = cfg();
        let s = BreakerState::Open {
            until: now,
            round: 0,
        }
        .on_probe(false, &c, now);
        assert_eq!(
            s,
            BreakerState::Open {
                until: now + Duration::from_secs(4),
                round: 1
            }
        );
        let s = BreakerState::HalfOpen { round: 1 }.on_outcome(true, &c, now);
        assert_eq!(
            s,
            BreakerState::Open {
                until: now + Duration::from_secs(8),
                round: 2
            }
        );
        assert_eq!(open_period(&c, 30), MAX_OPEN);
    }

    #[test]
    fn stragglers_do_not_move_an_open_breaker() {
        let now = Instant::now();
        let open = BreakerState::Open {
            until: now,
            round: 0,
        };
        assert_eq!(open.on_outcome(false, &cfg(), now), open);
        assert_eq!(open.on_outcome(true, &cfg(), now), open);
    }
}

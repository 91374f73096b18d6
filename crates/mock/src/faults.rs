//! Injected faults and the per-request decision of which ones apply.
//!
//! `POST /_mock/faults` replaces the whole set; `DELETE` clears it. For every
//! API request the mock asks [`Faults::decide`]:
//!
//! 1. `refuse` and `latency_ms` apply to every API request.
//! 2. `rate` (default 1.0) picks which requests get the failure faults
//!    `drop`, `status` and `cut_after_tokens` (in that order of precedence
//!    when several are set). The pick is deterministic: of the first `n`
//!    requests since the set was installed, exactly `ceil(n * rate)` are
//!    picked, the first request included whenever `rate > 0`. Tests can then
//!    count on "every other request fails" at 0.5, which a random draw would
//!    not give them.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::StatusCode;
use serde::{Deserialize, Serialize};

/// The fault set, as posted to and returned by `/_mock/faults`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    /// Answer with this status and an error body in the endpoint's format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<u16>,
    /// Fraction of requests the failure faults apply to (default 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rate: Option<f64>,
    /// Seconds for a `retry-after` header on `status` answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retry_after_s: Option<u64>,
    /// Extra delay before every API answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) latency_ms: Option<u64>,
    /// Close the connection after reading the request, without answering.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) drop: bool,
    /// End streams abruptly after this many content tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cut_after_tokens: Option<u64>,
    /// Reset API connections; `/_mock` keeps working.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) refuse: bool,
}

/// The failure picked for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Close the connection without an answer.
    Drop,
    /// Answer with an error status.
    Status {
        /// The status to answer.
        status: StatusCode,
        /// Seconds for `retry-after`.
        retry_after_s: Option<u64>,
    },
    /// Cut a stream after this many content tokens.
    Cut(u64),
}

/// What applies to one API request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Delay before answering.
    pub(crate) latency: Duration,
    /// The failure fault picked for this request, if any.
    pub(crate) failure: Option<Failure>,
}

/// Why a posted fault set was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FaultError {
    /// `status` is not an error status.
    #[error("fault status {0} is not an HTTP error status (400..=599)")]
    Status(u16),
    /// `rate` is not a probability.
    #[error("fault rate {0} is not within 0.0..=1.0")]
    Rate(f64),
}

/// The installed fault set and its pick counter.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Guarded by a std mutex: only short, non-async critical sections.
    inner: Mutex<Installed>,
}

#[derive(Debug, Default)]
struct Installed {
    spec: FaultSpec,
    /// `rate` in parts per million, so picking is exact integer arithmetic.
    rate_ppm: u64,
    /// Requests seen since `spec` was installed.
    seen: u64,
}

/// Parts per million in 1.0.
const PPM: u64 = 1_000_000;

fn is_false(value: &bool) -> bool {
    !*value
}

// === impl Faults ===

impl Faults {
    /// Replaces the fault set, restarting the pick sequence.
    ///
    /// # Errors
    ///
    /// Refuses a `status` outside 400..=599 or a `rate` outside 0..=1.
    pub(crate) fn install(&self, mut spec: FaultSpec) -> Result<FaultSpec, FaultError> {
        if let Some(status) = spec.status
            && !(400..=599).contains(&status)
        {
            return Err(FaultError::Status(status));
        }
        let rate = spec.rate.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&rate) {
            return Err(FaultError::Rate(rate));
        }
        spec.rate = Some(rate);
        // In range by the check above, so the cast neither truncates nor wraps.
        let rate_ppm = (rate * PPM as f64).round() as u64;
        *self.lock() = Installed {
            spec: spec.clone(),
            rate_ppm,
            seen: 0,
        };
        Ok(spec)
    }

    /// Clears every fault.
    pub(crate) fn clear(&self) -> FaultSpec {
        *self.lock() = Installed::default();
        FaultSpec::default()
    }

    /// The installed set.
    pub(crate) fn spec(&self) -> FaultSpec {
        self.lock().spec.clone()
    }

    /// Whether API connections are refused right now.
    pub(crate) fn refusing(&self) -> bool {
        self.lock().spec.refuse
    }

    /// Decides the faults of one API request, advancing the pick sequence.
    pub(crate) fn decide(&self) -> Decision {
        let mut installed = self.lock();
        let spec = &installed.spec;
        let latency = Duration::from_millis(spec.latency_ms.unwrap_or(0));
        let failure = if spec.drop {
            Some(Failure::Drop)
        } else if let Some(status) = spec.status.and_then(|s| StatusCode::from_u16(s).ok()) {
            Some(Failure::Status {
                status,
                retry_after_s: spec.retry_after_s,
            })
        } else {
            spec.cut_after_tokens.map(Failure::Cut)
        };
        let Some(failure) = failure else {
            return Decision {
                latency,
                failure: None,
            };
        };
        let seen = installed.seen;
        installed.seen += 1;
        let picked = picks(seen + 1, installed.rate_ppm) > picks(seen, installed.rate_ppm);
        Decision {
            latency,
            failure: picked.then_some(failure),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Installed> {
        // Every write replaces the whole value, so a poisoned lock still
        // guards a consistent fault set.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How many of the first `n` requests are picked at `rate_ppm`.
fn picks(n: u64, rate_ppm: u64) -> u128 {
    (u128::from(n) * u128::from(rate_ppm)).div_ceil(u128::from(PPM))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(rate: f64, n: usize) -> Vec<bool> {
        let faults = Faults::default();
        faults
            .install(FaultSpec {
                status: Some(500),
                rate: Some(rate),
                ..FaultSpec::default()
            })
            .unwrap();
        (0..n).map(|_| faults.decide().failure.is_some()).collect()
    }

    #[test]
    fn rate_picks_a_deterministic_share() {
        assert_eq!(pattern(1.0, 3), [true, true, true]);
        assert_eq!(pattern(0.0, 3), [false, false, false]);
        assert_eq!(pattern(0.5, 4), [true, false, true, false]);
        assert_eq!(pattern(0.25, 8).iter().filter(|p| **p).count(), 2);
    }

    #[test]
    fn drop_takes_precedence_and_latency_always_applies() {
        let faults = Faults::default();
        faults
            .install(FaultSpec {
                status: Some(429),
                drop: true,
                latency_ms: Some(7),
                rate: Some(0.0),
                ..FaultSpec::default()
            })
            .unwrap();
        let decision = faults.decide();
        assert_eq!(decision.latency, Duration::from_millis(7));
        assert_eq!(decision.failure, None);
        faults
            .install(FaultSpec {
                drop: true,
                status: Some(429),
                ..FaultSpec::default()
            })
            .unwrap();
        assert_eq!(faults.decide().failure, Some(Failure::Drop));
    }

    #[test]
    fn bad_specs_are_refused() {
        let faults = Faults::default();
        let bad_status = FaultSpec {
            status: Some(200),
            ..FaultSpec::default()
        };
        assert!(faults.install(bad_status).is_err());
        let bad_rate = FaultSpec {
            rate: Some(1.5),
            ..FaultSpec::default()
        };
        assert!(faults.install(bad_rate).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<FaultSpec>(r#"{"retry_after": 2}"#).is_err());
    }

    #[test]
    fn installed_spec_reports_the_default_rate() {
        let faults = Faults::default();
        let spec = faults
            .install(FaultSpec {
                status: Some(503),
                ..FaultSpec::default()
            })
            .unwrap();
        assert_eq!(spec.rate, Some(1.0));
        assert_eq!(faults.clear(), FaultSpec::default());
        assert_eq!(faults.decide(), Decision::default());
    }
}

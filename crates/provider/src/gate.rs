//! The admission gate: the part of a provider's state that the request path touches, as atomics,
//! so admitting a request costs a few atomic operations and no message round trip (DESIGN §1).
//!
//! The provider actor is the only writer of the breaker phase, probe slots, pause deadline and
//! rate-token refills. The request path only *takes* permits (in-flight slot, rate tokens, a
//! probe slot when half-open) with non-blocking compare-and-swap, and gives the in-flight slot
//! back when its [`Permit`] drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use switchyard_core::BreakerPhase;
use tokio::time::Instant;

/// Why a provider would not take a request right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The breaker is open, or half-open with every probe slot taken.
    BreakerOpen,
    /// Paused by an upstream 429 with `Retry-After`.
    Paused {
        /// Time left in the pause.
        remaining: Duration,
    },
    /// The provider's RPM or TPM tokens are used up for now.
    RateLimited,
    /// At its concurrency limit.
    Busy,
}

impl Refusal {
    /// Label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::BreakerOpen => "breaker_open",
            Refusal::Paused { .. } => "paused",
            Refusal::RateLimited => "rate_limited",
            Refusal::Busy => "busy",
        }
    }
}

/// Shared admission state of one provider.
#[derive(Debug)]
pub struct Gate {
    /// Origin for the millisecond offsets below (monotonic, from the clock seam).
    epoch: Instant,
    /// [`BreakerPhase`] as u8; written by the actor.
    phase: AtomicU8,
    /// Requests that may still pass while half-open; set by the actor on entering half-open.
    probe_slots: AtomicU32,
    /// Milliseconds after `epoch` until which the provider is paused (0 = not paused).
    paused_until_ms: AtomicU64,
    /// Requests admitted and not yet finished.
    in_flight: AtomicU64,
    /// Concurrency limit (0 = unlimited).
    max_in_flight: u64,
    /// Requests that may start now; refilled by the actor each second. Unused when `rpm == 0`.
    rpm_tokens: AtomicI64,
    /// Tokens that may be spent now; refilled by the actor. Unused when `tpm == 0`.
    tpm_tokens: AtomicI64,
    /// Requests per minute configured for the provider (0 = unlimited).
    rpm: u64,
    /// Tokens per minute configured for the provider (0 = unlimited).
    tpm: u64,
    /// This node's share of `rpm`, set by the stats exchange from the nodes' demand; equal to
    /// `rpm` until a share arrives. Refills and the bucket size follow it.
    rpm_share: AtomicU64,
    /// This node's share of `tpm`.
    tpm_share: AtomicU64,
    /// Admission attempts since the actor last looked (this node's demand).
    wanted: AtomicU64,
}

fn phase_to_u8(p: BreakerPhase) -> u8 {
    match p {
        BreakerPhase::Closed => 0,
        BreakerPhase::Open => 1,
        BreakerPhase::HalfOpen => 2,
    }
}

fn phase_from_u8(v: u8) -> BreakerPhase {
    match v {
        1 => BreakerPhase::Open,
        2 => BreakerPhase::HalfOpen,
        _ => BreakerPhase::Closed,
    }
}

/// A granted admission. Dropping it frees the in-flight slot.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<Gate>,
    /// Whether this request is a half-open probe.
    pub probe: bool,
    /// Tokens taken from the TPM bucket at admission, corrected when the outcome is known.
    pub reserved_tokens: u64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Takes `n` from a token bucket if at least one token is there (a request may overdraw TPM by
/// its own size, which the next refills pay back: one large request is never starved forever).
fn take(bucket: &AtomicI64, n: i64) -> bool {
    bucket
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            (v > 0).then(|| v - n)
        })
        .is_ok()
}

impl Gate {
    /// A gate with full buckets and a closed breaker.
    pub fn new(epoch: Instant, rpm: u64, tpm: u64, max_in_flight: u64) -> Self {
        Self {
            epoch,
            phase: AtomicU8::new(0),
            probe_slots: AtomicU32::new(0),
            paused_until_ms: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight,
            rpm_tokens: AtomicI64::new(i64::try_from(rpm).unwrap_or(i64::MAX)),
            tpm_tokens: AtomicI64::new(i64::try_from(tpm).unwrap_or(i64::MAX)),
            rpm,
            tpm,
            rpm_share: AtomicU64::new(rpm),
            tpm_share: AtomicU64::new(tpm),
            wanted: AtomicU64::new(0),
        }
    }

    fn ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Admits one request expected to use about `est_tokens`, or says why not.
    ///
    /// Checks, cheapest and most decisive first: breaker, pause, concurrency, then rate tokens.
    /// Any token taken before a later check fails is given back.
    pub fn try_admit(self: &Arc<Self>, now: Instant, est_tokens: u64) -> Result<Permit, Refusal> {
        self.wanted.fetch_add(1, Ordering::Relaxed);
        let mut probe = false;
        match self.phase() {
            BreakerPhase::Closed => {}
            BreakerPhase::Open => return Err(Refusal::BreakerOpen),
            BreakerPhase::HalfOpen => {
                let took = self
                    .probe_slots
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1))
                    .is_ok();
                if !took {
                    return Err(Refusal::BreakerOpen);
                }
                probe = true;
            }
        }
        let paused = self.paused_until_ms.load(Ordering::Acquire);
        let now_ms = self.ms(now);
        if paused > now_ms {
            self.give_back_probe(probe);
            return Err(Refusal::Paused {
                remaining: Duration::from_millis(paused - now_ms),
            });
        }
        let prev = self.in_flight.fetch_add(1, Ordering::AcqRel);
        // From here on the permit exists, so its drop returns the in-flight slot.
        let mut permit = Permit {
            gate: Arc::clone(self),
            probe,
            reserved_tokens: 0,
        };
        if self.max_in_flight > 0 && prev >= self.max_in_flight {
            self.give_back_probe(probe);
            return Err(Refusal::Busy);
        }
        if self.rpm > 0 && !take(&self.rpm_tokens, 1) {
            self.give_back_probe(probe);
            return Err(Refusal::RateLimited);
        }
        if self.tpm > 0 {
            let n = i64::try_from(est_tokens).unwrap_or(i64::MAX);
            if !take(&self.tpm_tokens, n) {
                if self.rpm > 0 {
                    self.rpm_tokens.fetch_add(1, Ordering::AcqRel);
                }
                self.give_back_probe(probe);
                return Err(Refusal::RateLimited);
            }
            permit.reserved_tokens = est_tokens;
        }
        Ok(permit)
    }

    fn give_back_probe(&self, probe: bool) {
        if probe {
            self.probe_slots.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The breaker phase as last published by the actor.
    pub fn phase(&self) -> BreakerPhase {
        phase_from_u8(self.phase.load(Ordering::Acquire))
    }

    /// Requests admitted and not finished.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Whether the provider is paused at `now`.
    pub fn paused(&self, now: Instant) -> bool {
        self.paused_until_ms.load(Ordering::Acquire) > self.ms(now)
    }

    /// Whether a request would likely be admitted now (for routing order; admission itself is
    /// decided by [`Gate::try_admit`]).
    pub fn looks_available(&self, now: Instant) -> bool {
        let phase_ok = match self.phase() {
            BreakerPhase::Closed => true,
            BreakerPhase::Open => false,
            BreakerPhase::HalfOpen => self.probe_slots.load(Ordering::Acquire) > 0,
        };
        phase_ok
            && !self.paused(now)
            && (self.max_in_flight == 0 || self.in_flight() < self.max_in_flight)
            && (self.rpm == 0 || self.rpm_tokens.load(Ordering::Acquire) > 0)
            && (self.tpm == 0 || self.tpm_tokens.load(Ordering::Acquire) > 0)
    }

    // --- written by the actor only ---

    /// Publishes a breaker phase; entering half-open opens `probes` slots.
    pub(crate) fn set_phase(&self, phase: BreakerPhase, probes: u32) {
        if phase == BreakerPhase::HalfOpen {
            self.probe_slots.store(probes, Ordering::Release);
        } else {
            self.probe_slots.store(0, Ordering::Release);
        }
        self.phase.store(phase_to_u8(phase), Ordering::Release);
    }

    /// Pauses until `now + d` (extends, never shortens, a running pause).
    pub(crate) fn pause(&self, now: Instant, d: Duration) {
        let until = self
            .ms(now)
            .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.paused_until_ms.fetch_max(until, Ordering::AcqRel);
    }

    /// Adds one second's worth of rate tokens at this node's share, capped at one minute's
    /// worth of the share (the bucket size).
    pub(crate) fn refill_one_second(&self) {
        let rpm = if self.rpm == 0 {
            0
        } else {
            self.rpm_share.load(Ordering::Acquire).max(1)
        };
        let tpm = if self.tpm == 0 {
            0
        } else {
            self.tpm_share.load(Ordering::Acquire).max(1)
        };
        for (bucket, per_min) in [(&self.rpm_tokens, rpm), (&self.tpm_tokens, tpm)] {
            if per_min == 0 {
                continue;
            }
            let cap = i64::try_from(per_min).unwrap_or(i64::MAX);
            let add = i64::try_from(per_min.div_ceil(60)).unwrap_or(i64::MAX);
            let _ = bucket.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_add(add).min(cap))
            });
        }
    }

    /// Sets this node's share of the provider's limits (capped at the configured limits); the
    /// buckets shrink at once if the new share is smaller than what they hold.
    pub(crate) fn set_share(&self, rpm: u64, tpm: u64) {
        let rpm = rpm.min(self.rpm);
        let tpm = tpm.min(self.tpm);
        self.rpm_share.store(rpm, Ordering::Release);
        self.tpm_share.store(tpm, Ordering::Release);
        for (bucket, cap, limited) in [
            (&self.rpm_tokens, rpm, self.rpm > 0),
            (&self.tpm_tokens, tpm, self.tpm > 0),
        ] {
            if limited {
                let cap = i64::try_from(cap).unwrap_or(i64::MAX);
                let _ =
                    bucket.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.min(cap)));
            }
        }
    }

    /// Admission attempts since the last call (the actor's demand sample).
    pub(crate) fn take_wanted(&self) -> u64 {
        self.wanted.swap(0, Ordering::AcqRel)
    }

    /// The configured RPM and TPM (0 = unlimited).
    pub fn limits(&self) -> (u64, u64) {
        (self.rpm, self.tpm)
    }

    /// This node's current share of RPM and TPM.
    pub fn share(&self) -> (u64, u64) {
        (
            self.rpm_share.load(Ordering::Acquire),
            self.tpm_share.load(Ordering::Acquire),
        )
    }

    /// Corrects the TPM bucket once a request's real token count is known.
    pub(crate) fn settle_tokens(&self, reserved: u64, actual: u64) {
        if self.tpm == 0 {
            return;
        }
        let diff =
            i64::try_from(reserved).unwrap_or(i64::MAX) - i64::try_from(actual).unwrap_or(i64::MAX);
        let cap = i64::try_from(self.tpm_share.load(Ordering::Acquire)).unwrap_or(i64::MAX);
        let _ = self
            .tpm_tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_add(diff).min(cap))
            });
    }
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "tests read paused tokio time directly"
)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn in_flight_slots_are_returned_on_drop() {
        let g = Arc::new(Gate::new(Instant::now(), 0, 0, 2));
        let a = g.try_admit(Instant::now(), 1).unwrap();
        let _b = g.try_admit(Instant::now(), 1).unwrap();
        assert_eq!(g.try_admit(Instant::now(), 1).unwrap_err(), Refusal::Busy);
        assert_eq!(g.in_flight(), 2);
        drop(a);
        assert!(g.try_admit(Instant::now(), 1).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn rpm_tokens_run_out_and_refill_each_second() {
        let g = Arc::new(Gate::new(Instant::now(), 120, 0, 0));
        for _ in 0..120 {
            drop(g.try_admit(Instant::now(), 1).unwrap());
        }
        assert_eq!(
            g.try_admit(Instant::now(), 1).unwrap_err(),
            Refusal::RateLimited
        );
        g.refill_one_second();
        drop(g.try_admit(Instant::now(), 1).unwrap());
        drop(g.try_admit(Instant::now(), 1).unwrap());
        assert_eq!(
            g.try_admit(Instant::now(), 1).unwrap_err(),
            Refusal::RateLimited
        );
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_only_the_probe_slots() {
        let g = Arc::new(Gate::new(Instant::now(), 0, 0, 0));
        g.set_phase(BreakerPhase::Open, 0);
        assert_eq!(
            g.try_admit(Instant::now(), 1).unwrap_err(),
            Refusal::BreakerOpen
        );
        g.set_phase(BreakerPhase::HalfOpen, 1);
        let p = g.try_admit(Instant::now(), 1).unwrap();
        assert!(p.probe);
        assert_eq!(
            g.try_admit(Instant::now(), 1).unwrap_err(),
            Refusal::BreakerOpen
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_refuses_until_it_ends() {
        let g = Arc::new(Gate::new(Instant::now(), 0, 0, 0));
        g.pause(Instant::now(), Duration::from_secs(2));
        assert!(matches!(
            g.try_admit(Instant::now(), 1),
            Err(Refusal::Paused { .. })
        ));
        tokio::time::advance(Duration::from_millis(2001)).await;
        assert!(g.try_admit(Instant::now(), 1).is_ok());
    }
}

//! The admission gate: the part of a provider's state that the request path touches, as atomics,
//! so admitting a request costs a few atomic operations and no message round trip (DESIGN §1).
//!
//! The provider actor is the only writer of the breaker phase, probe slots, pause deadline and
//! rate-token refills. The request path only *takes* permits (in-flight slot, rate tokens, a
//! probe slot when half-open) with non-blocking compare-and-swap, and gives the in-flight slot
//! back when its [`Permit`] drops.
//!
//! # Rate limits are a sliding minute
//!
//! RPM and TPM are kept as a bucket whose tokens come back exactly one minute after they were
//! spent, not as a bucket refilled at a constant rate. A refilled bucket that holds a minute's
//! worth admits up to twice the limit in a minute that starts full, and rounding a small limit's
//! per-second refill up (5 RPM as 1 a second) admits far more; a provider counts its limits per
//! minute, so that is what the gate holds: in any 60 one-second ticks this node takes at most
//! its share, and the shares of the nodes sum to at most the configured limit (see the stats
//! exchange for the tolerance while shares move).

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Requests that may start now: this node's RPM share minus what it used in the last minute.
    /// The request path takes from it; only the actor gives back (through `windows`). Unused
    /// when `rpm == 0`.
    rpm_tokens: AtomicI64,
    /// Tokens that may be spent now, kept like `rpm_tokens`. Unused when `tpm == 0`.
    tpm_tokens: AtomicI64,
    /// What each bucket used per second over the last minute, so the actor can give tokens back
    /// when they leave the window. Locked only by the actor (tick and share changes), never on
    /// the request path, so it is never contended.
    windows: Mutex<[RateWindow; 2]>,
    /// Requests per minute configured for the provider (0 = unlimited).
    rpm: u64,
    /// Tokens per minute configured for the provider (0 = unlimited).
    tpm: u64,
    /// This node's share of `rpm`, set by the stats exchange from the nodes' demand; equal to
    /// `rpm` until a share arrives. The bucket holds at most this.
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

/// Seconds in a rate window.
const WINDOW_SECONDS: usize = 60;

/// One bucket's last minute, as the actor sees it: the bucket's level is the share minus the
/// sum of `used`, and a second's use comes back when it leaves the window.
#[derive(Debug)]
struct RateWindow {
    /// Net use of each of the last 60 seconds (refunds of over-estimated tokens make it
    /// smaller); the slot after `next` is the oldest, the one the next tick gives back.
    used: [i64; WINDOW_SECONDS],
    /// Index into `used` where the next tick records the second it ends.
    next: usize,
    /// The bucket's level right after the actor last wrote it; the difference to its level now
    /// is what the request path took since.
    level: i64,
    /// Use seen at share changes since the last tick, counted into the current second.
    pending: i64,
}

impl RateWindow {
    fn new(level: i64) -> Self {
        Self {
            used: [0; WINDOW_SECONDS],
            next: 0,
            level,
            pending: 0,
        }
    }

    /// Changes `bucket` by `f` in one atomic step, noting what the request path took since the
    /// actor's last write.
    fn write(&mut self, bucket: &AtomicI64, f: impl Fn(i64) -> i64) {
        let prev = match bucket.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(f(v))) {
            Ok(v) | Err(v) => v,
        };
        self.pending = self.pending.saturating_add(self.level.saturating_sub(prev));
        self.level = f(prev);
    }

    /// One second passed: the second that is now 60 seconds old gives its use back (never
    /// above `cap`, so a refund for a request older than the window cannot lift the bucket over
    /// the share), and the second just ended is recorded in the slot after it.
    fn tick(&mut self, bucket: &AtomicI64, cap: i64) {
        let back = self.used[(self.next + 1) % WINDOW_SECONDS];
        self.write(bucket, |v| v.saturating_add(back).min(cap));
        self.used[self.next] = std::mem::take(&mut self.pending);
        self.next = (self.next + 1) % WINDOW_SECONDS;
    }

    /// The share moved by `delta`: the bucket moves with it (below zero if this node already used
    /// more than its new share; it then waits for its use to leave the window).
    fn reshare(&mut self, bucket: &AtomicI64, delta: i64) {
        self.write(bucket, |v| v.saturating_add(delta));
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
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
            rpm_tokens: AtomicI64::new(to_i64(rpm)),
            tpm_tokens: AtomicI64::new(to_i64(tpm)),
            windows: Mutex::new([RateWindow::new(to_i64(rpm)), RateWindow::new(to_i64(tpm))]),
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

    /// [`Gate::looks_available`] for planning a request: when only the rate limit stands in the
    /// way, the request still counts as demand for this provider. Without this, a node whose
    /// share is used up would stop asking for it (its requests go straight to the next target),
    /// and the quota would drift towards the nodes that need it least.
    pub fn available_for_plan(&self, now: Instant) -> bool {
        if self.looks_available(now) {
            return true;
        }
        let rate_only = self.phase() == BreakerPhase::Closed
            && !self.paused(now)
            && (self.max_in_flight == 0 || self.in_flight() < self.max_in_flight);
        if rate_only {
            self.wanted.fetch_add(1, Ordering::Relaxed);
        }
        false
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

    /// One second passed: gives back to the rate buckets what was used a minute ago.
    pub(crate) fn refill_one_second(&self) {
        let mut windows = match self.windows.lock() {
            Ok(w) => w,
            Err(p) => p.into_inner(),
        };
        let [rpm_window, tpm_window] = &mut *windows;
        if self.rpm > 0 {
            let cap = to_i64(self.rpm_share.load(Ordering::Acquire));
            rpm_window.tick(&self.rpm_tokens, cap);
        }
        if self.tpm > 0 {
            let cap = to_i64(self.tpm_share.load(Ordering::Acquire));
            tpm_window.tick(&self.tpm_tokens, cap);
        }
    }

    /// Sets this node's share of the provider's limits (capped at the configured limits). The
    /// buckets move by the change at once, so a smaller share takes effect before the next
    /// request and a larger one frees tokens at once.
    pub fn set_share(&self, rpm: u64, tpm: u64) {
        let rpm = rpm.min(self.rpm);
        let tpm = tpm.min(self.tpm);
        let mut windows = match self.windows.lock() {
            Ok(w) => w,
            Err(p) => p.into_inner(),
        };
        let [rpm_window, tpm_window] = &mut *windows;
        let old_rpm = self.rpm_share.swap(rpm, Ordering::AcqRel);
        let old_tpm = self.tpm_share.swap(tpm, Ordering::AcqRel);
        if self.rpm > 0 {
            rpm_window.reshare(&self.rpm_tokens, to_i64(rpm) - to_i64(old_rpm));
        }
        if self.tpm > 0 {
            tpm_window.reshare(&self.tpm_tokens, to_i64(tpm) - to_i64(old_tpm));
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

    /// Takes as many requests as the gate admits, up to `want`.
    fn take_up_to(g: &Arc<Gate>, want: u64) -> u64 {
        (0..want)
            .take_while(|_| g.try_admit(Instant::now(), 1).is_ok())
            .count() as u64
    }

    #[tokio::test(start_paused = true)]
    async fn rpm_is_a_sliding_minute_not_a_refill_rate() {
        let g = Arc::new(Gate::new(Instant::now(), 5, 0, 0));
        assert_eq!(take_up_to(&g, 100), 5);
        // A small limit gets nothing back before its use is a minute old (a per-second refill
        // rounded up would give one a second: 60 a minute).
        for _ in 0..59 {
            g.refill_one_second();
            assert_eq!(take_up_to(&g, 100), 0);
        }
        g.refill_one_second();
        assert_eq!(take_up_to(&g, 100), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_smaller_share_applies_at_once_and_a_larger_one_frees_tokens() {
        let g = Arc::new(Gate::new(Instant::now(), 600, 0, 0));
        g.set_share(200, 0);
        assert_eq!(take_up_to(&g, 1000), 200);
        // Demand moved here: the share grows, and the difference is free at once.
        g.set_share(500, 0);
        assert_eq!(take_up_to(&g, 1000), 300);
        // It shrinks below what was used: nothing until enough use leaves the window.
        g.set_share(100, 0);
        for _ in 0..59 {
            g.refill_one_second();
            assert_eq!(take_up_to(&g, 1000), 0);
        }
        g.refill_one_second();
        assert_eq!(take_up_to(&g, 1000), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn over_estimated_tokens_come_back_at_once() {
        let g = Arc::new(Gate::new(Instant::now(), 0, 1000, 0));
        let p = g.try_admit(Instant::now(), 800).unwrap();
        g.settle_tokens(p.reserved_tokens, 300);
        drop(p);
        // 1000 - 300 used: a 700-token request fits (a bucket with at least one token admits).
        assert!(g.try_admit(Instant::now(), 700).is_ok());
        assert_eq!(
            g.try_admit(Instant::now(), 1).unwrap_err(),
            Refusal::RateLimited
        );
    }

    proptest::proptest! {
        /// Whatever the demand each second, no 60 consecutive ticks admit more than the share.
        #[test]
        fn no_minute_admits_more_than_the_share(
            share in 1u64..300,
            demand in proptest::collection::vec(0u64..400, 60..200),
        ) {
            let g = Arc::new(Gate::new(Instant::now(), share, 0, 0));
            let admitted: Vec<u64> = demand
                .iter()
                .map(|d| {
                    let n = take_up_to(&g, *d);
                    g.refill_one_second();
                    n
                })
                .collect();
            for w in admitted.windows(60) {
                let sum: u64 = w.iter().sum();
                proptest::prop_assert!(sum <= share, "{sum} > {share}");
            }
        }
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

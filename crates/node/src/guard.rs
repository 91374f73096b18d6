//! The budget guard: admits a request only after debiting an upper bound of its cost from a
//! node-local allowance that was reserved from the budget through Raft, settles the actual cost
//! afterwards in batches, and returns what it does not use (DESIGN §2.1).
//!
//! 1. `admit` finds, for every budget the request spends from (the key's and the team's), a
//!    live local allowance with room for the bound and debits it. The request path only takes a
//!    short mutex; it waits on Raft only when no allowance has room, to reserve a new one, and
//!    that wait is bounded.
//! 2. `finish` replaces the bound with the actual cost and queues a spend entry.
//! 3. A background flusher settles queued entries through Raft every [`FLUSH_EVERY`] (request
//!    ids make a retried settlement harmless) and releases allowances that are retired and idle.
//!    It also renews, ahead of need, an allowance that is half used or near the end of its
//!    local lifetime, so under steady traffic requests find a fresh allowance waiting and the
//!    request path does not wait on consensus (only a key's first request, or demand faster
//!    than one renewal a flush, does).
//! 4. An allowance is used only until [`LOCAL_TTL`] after it was requested, shorter than the
//!    replicated TTL, so a node cut off from the quorum stops spending before the leader charges
//!    the allowance in full; it then refuses budgeted work with a clear error. After a
//!    reservation fails for want of a quorum, requests that need one are refused at once for
//!    [`CUT_OFF_HOLD`] instead of each waiting out its own timeout in turn.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_control::{Command, Control, Op, Response, Scope, SpendEntry};
use switchyard_core::clock::SharedClock;
use tokio::time::Instant;

/// Replicated allowance lifetime: long enough to be renewed many times before it matters.
pub const ALLOWANCE_TTL: Duration = Duration::from_secs(30);
/// Local lifetime: the replicated TTL minus a margin for clock skew and settlement delay.
pub const LOCAL_TTL: Duration = Duration::from_secs(20);
/// Settlement batching interval.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Longest a request waits for a new allowance before it is refused.
const RESERVE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a failed reservation (no quorum) makes later ones fail at once: long enough that a
/// burst of requests on a cut-off node is refused promptly rather than queued 2 s apiece, short
/// enough that a leader election (about a second here) costs little.
const CUT_OFF_HOLD: Duration = Duration::from_secs(1);
/// An allowance in use is renewed ahead of need once it has less than this much local lifetime
/// left (or once half of it is used).
const RENEW_BEFORE_END: Duration = Duration::from_secs(5);
/// Allowances are sized as a share of the budget so that several nodes can hold one each
/// without stranding much of it: one 16th of the limit (or the request's own bound if larger).
const ALLOWANCE_SHARE_DIVISOR: u64 = 16;

/// Why the guard refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardError {
    /// The budget has nothing left this period.
    Exhausted {
        /// The scope (`key:…` / `team:…`).
        scope: String,
    },
    /// No allowance could be reserved (no quorum reachable in time).
    CutOff {
        /// What failed.
        reason: String,
    },
}

/// One allowance this node holds.
#[derive(Debug)]
struct Held {
    /// The budget this allowance is from (to renew it).
    scope: Scope,
    lease: u64,
    granted: u64,
    /// Bounds of in-flight requests plus actual costs of finished ones.
    used: u64,
    /// Requests admitted against it and not finished.
    in_flight: u32,
    /// Local use ends here.
    usable_until: Instant,
    /// Replaced by a newer allowance; release once idle and settled.
    retired: bool,
    /// The flusher already tried to renew it (once is enough: a budget that granted nothing
    /// will not grant more before this one is used up, and the request path reserves then).
    renewal_tried: bool,
}

/// A request's debits, to be finished exactly once.
#[derive(Debug)]
pub struct Admission {
    /// (scope, lease, bound) per budget debited.
    debits: Vec<(String, u64, u64)>,
}

impl Admission {
    /// Whether the request is under any budget.
    pub fn is_empty(&self) -> bool {
        self.debits.is_empty()
    }
}

#[derive(Default)]
struct Inner {
    /// scope → allowances (newest last).
    held: HashMap<String, Vec<Held>>,
    /// Spend entries to settle, each naming the leases it was admitted on.
    pending: Vec<SpendEntry>,
    /// Leases to release (after the pending entries are charged).
    release: Vec<u64>,
}

/// The guard of one node.
pub struct Guard {
    control: Control,
    node_id: u64,
    clock: SharedClock,
    inner: Mutex<Inner>,
    /// Serialises reservations so concurrent requests share one new allowance instead of each
    /// reserving its own.
    reserving: tokio::sync::Mutex<()>,
    /// When a reservation last failed for want of a quorum, and why (see [`CUT_OFF_HOLD`]).
    cut_off: Mutex<Option<(Instant, String)>>,
    /// Allowances granted to a waiting request, and renewed ahead of need (for `/metrics`).
    reserved_on_request: AtomicU64,
    /// See `reserved_on_request`.
    reserved_ahead: AtomicU64,
}

impl Guard {
    /// A guard spending through `control`.
    pub fn new(control: Control, node_id: u64, clock: SharedClock) -> Self {
        Self {
            control,
            node_id,
            clock,
            inner: Mutex::new(Inner::default()),
            reserving: tokio::sync::Mutex::new(()),
            cut_off: Mutex::new(None),
            reserved_on_request: AtomicU64::new(0),
            reserved_ahead: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Debits `bound_micros` from an allowance of every scope in `scopes` (those without a
    /// budget are skipped).
    ///
    /// # Errors
    /// [`GuardError`] when a budget is exhausted or no allowance can be reserved; debits already
    /// made for other scopes are returned.
    pub async fn admit(
        &self,
        scopes: &[Scope],
        bound_micros: u64,
    ) -> Result<Admission, GuardError> {
        let mut adm = Admission {
            debits: Vec::with_capacity(scopes.len()),
        };
        for scope in scopes {
            let key = scope.to_string();
            let Some(limit) = self.limit(&key) else {
                continue;
            };
            match self.debit(&key, bound_micros) {
                Some(lease) => adm.debits.push((key, lease, bound_micros)),
                None => match self
                    .reserve_and_debit(scope, &key, bound_micros, limit)
                    .await
                {
                    Ok(lease) => adm.debits.push((key, lease, bound_micros)),
                    Err(e) => {
                        self.undo(&adm);
                        return Err(e);
                    }
                },
            }
        }
        Ok(adm)
    }

    /// The limit of the budget `key` (`key:…` / `team:…`) names, if it has one.
    fn limit(&self, key: &str) -> Option<u64> {
        let state = match self.control.state().read() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        state.budgets.get(key).map(|b| b.limit_micros)
    }

    /// Debits from a live allowance with room, if any.
    fn debit(&self, key: &str, bound: u64) -> Option<u64> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let list = inner.held.get_mut(key)?;
        let h = list.iter_mut().rev().find(|h| {
            !h.retired && now < h.usable_until && h.granted.saturating_sub(h.used) >= bound
        })?;
        h.used += bound;
        h.in_flight += 1;
        Some(h.lease)
    }

    async fn reserve_and_debit(
        &self,
        scope: &Scope,
        key: &str,
        bound: u64,
        limit: u64,
    ) -> Result<u64, GuardError> {
        if let Some(reason) = self.recently_cut_off() {
            return Err(GuardError::CutOff { reason });
        }
        let _one_at_a_time = match self.reserving.try_lock() {
            Ok(g) => g,
            // While the last reservation failed, one request at a time finds out whether the
            // quorum is back; the others are refused at once rather than queued behind it.
            Err(_) => match self.last_failure() {
                Some(reason) => return Err(GuardError::CutOff { reason }),
                None => self.reserving.lock().await,
            },
        };
        // Another request (or the flusher's renewal) may have reserved while this one waited.
        if let Some(lease) = self.debit(key, bound) {
            return Ok(lease);
        }
        if let Some(reason) = self.recently_cut_off() {
            return Err(GuardError::CutOff { reason });
        }
        let requested_at = self.clock.now();
        let (lease, granted) = self
            .reserve(scope, bound.max(limit / ALLOWANCE_SHARE_DIVISOR))
            .await?;
        self.reserved_on_request.fetch_add(1, Ordering::Relaxed);
        let fits = granted > 0 && granted >= bound;
        let first_debit = if fits { bound } else { 0 };
        self.install(scope, key, lease, granted, requested_at, first_debit);
        if fits {
            Ok(lease)
        } else {
            // Nothing left, or what is left of the budget is smaller than this request's bound.
            Err(GuardError::Exhausted {
                scope: key.to_owned(),
            })
        }
    }

    /// The reason of a reservation that failed for want of a quorum less than
    /// [`CUT_OFF_HOLD`] ago.
    fn recently_cut_off(&self) -> Option<String> {
        let cut_off = match self.cut_off.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (at, reason) = cut_off.as_ref()?;
        (self.clock.now().saturating_duration_since(*at) < CUT_OFF_HOLD).then(|| reason.clone())
    }

    /// Why the last reservation failed, if it did (cleared by the next one that succeeds).
    fn last_failure(&self) -> Option<String> {
        let cut_off = match self.cut_off.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        cut_off.as_ref().map(|(_, reason)| reason.clone())
    }

    /// Reserves an allowance of `want` from `scope`'s budget through Raft, within
    /// [`RESERVE_TIMEOUT`]. Returns the lease and what was granted (0: exhausted).
    async fn reserve(&self, scope: &Scope, want: u64) -> Result<(u64, u64), GuardError> {
        let cmd = Command {
            at_ms: self.clock.unix_ms(),
            actor: None,
            op: Op::Reserve {
                node: self.node_id,
                scope: scope.clone(),
                want_micros: want,
                ttl_ms: ALLOWANCE_TTL.as_millis() as u64,
            },
        };
        let resp = tokio::time::timeout(RESERVE_TIMEOUT, self.control.write(cmd)).await;
        let reason = match resp {
            Ok(Ok(Response::Reserved {
                lease,
                granted_micros,
                ..
            })) => {
                let mut cut_off = match self.cut_off.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                *cut_off = None;
                return Ok((lease, granted_micros));
            }
            Ok(Ok(other)) => format!("unexpected reply to a reservation: {other:?}"),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no quorum answered within 2 s".to_owned(),
        };
        let mut cut_off = match self.cut_off.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *cut_off = Some((self.clock.now(), reason.clone()));
        Err(GuardError::CutOff { reason })
    }

    /// Installs a granted allowance as the one new requests use (older ones are retired and
    /// released once idle), with `first_debit` already taken from it.
    fn install(
        &self,
        scope: &Scope,
        key: &str,
        lease: u64,
        granted: u64,
        requested_at: Instant,
        first_debit: u64,
    ) {
        let mut inner = self.lock();
        let list = inner.held.entry(key.to_owned()).or_default();
        for old in list.iter_mut() {
            old.retired = true;
        }
        if granted == 0 {
            // Nothing to hold; lease 0 names no allowance.
            return;
        }
        list.push(Held {
            scope: scope.clone(),
            lease,
            granted,
            used: first_debit,
            in_flight: u32::from(first_debit > 0),
            usable_until: requested_at + LOCAL_TTL,
            retired: false,
            renewal_tried: false,
        });
    }

    /// Renews, ahead of need, every allowance in use that is half spent or near the end of its
    /// local lifetime (one reservation per such scope), so the requests after it find a fresh
    /// one instead of waiting for Raft. Skipped while cut off: the request path reports that.
    async fn renew_ahead(&self) {
        if self.recently_cut_off().is_some() {
            return;
        }
        let now = self.clock.now();
        let due: Vec<(String, Scope)> = {
            let mut inner = self.lock();
            inner
                .held
                .iter_mut()
                .filter_map(|(key, list)| {
                    let h = list
                        .iter_mut()
                        .rev()
                        .find(|h| !h.retired && now < h.usable_until)?;
                    let half_used = h.used.saturating_mul(2) >= h.granted;
                    let ending = h.used > 0
                        && h.usable_until.saturating_duration_since(now) < RENEW_BEFORE_END;
                    if h.renewal_tried || !(half_used || ending) {
                        return None;
                    }
                    h.renewal_tried = true;
                    Some((key.clone(), h.scope.clone()))
                })
                .collect()
        };
        for (key, scope) in due {
            let Some(limit) = self.limit(&key) else {
                continue;
            };
            let _one_at_a_time = self.reserving.lock().await;
            let requested_at = self.clock.now();
            match self.reserve(&scope, limit / ALLOWANCE_SHARE_DIVISOR).await {
                // An exhausted budget grants nothing: keep using what is held until it runs out.
                Ok((_, 0)) => {}
                Ok((lease, granted)) => {
                    self.reserved_ahead.fetch_add(1, Ordering::Relaxed);
                    self.install(&scope, &key, lease, granted, requested_at, 0);
                }
                Err(_) => return,
            }
        }
    }

    fn undo(&self, adm: &Admission) {
        let mut inner = self.lock();
        for (key, lease, bound) in &adm.debits {
            if let Some(h) = inner
                .held
                .get_mut(key)
                .and_then(|l| l.iter_mut().find(|h| h.lease == *lease))
            {
                h.used = h.used.saturating_sub(*bound);
                h.in_flight = h.in_flight.saturating_sub(1);
            }
        }
    }

    /// Replaces the bounds with the actual cost and queues the spend for settlement, charged to
    /// every allowance the request was admitted on. A cost above the bound (which the bound's
    /// construction rules out) is still settled in full: the budget then shows it.
    pub fn finish(&self, adm: Admission, mut entry: SpendEntry) {
        let mut inner = self.lock();
        entry.leases.clear();
        for (key, lease, bound) in &adm.debits {
            if let Some(h) = inner
                .held
                .get_mut(key)
                .and_then(|l| l.iter_mut().find(|h| h.lease == *lease))
            {
                h.used = h
                    .used
                    .saturating_sub(*bound)
                    .saturating_add(entry.cost_micros);
                h.in_flight = h.in_flight.saturating_sub(1);
            }
            entry.leases.push(*lease);
        }
        if !entry.leases.is_empty() {
            inner.pending.push(entry);
        }
    }

    /// One settlement round: charges queued entries and releases retired or expired allowances
    /// that are idle, in one command. On failure everything stays queued for the next round
    /// (request ids make the retry harmless).
    pub async fn flush(&self) {
        let now = self.clock.now();
        let (entries, release) = {
            let mut inner = self.lock();
            let mut idle = Vec::new();
            for list in inner.held.values_mut() {
                list.retain(|h| {
                    let done = (h.retired || now >= h.usable_until) && h.in_flight == 0;
                    if done {
                        idle.push(h.lease);
                    }
                    !done
                });
            }
            inner.release.extend(idle);
            (
                std::mem::take(&mut inner.pending),
                std::mem::take(&mut inner.release),
            )
        };
        if entries.is_empty() && release.is_empty() {
            return;
        }
        let cmd = Command {
            at_ms: self.clock.unix_ms(),
            actor: None,
            op: Op::Settle {
                node: self.node_id,
                entries: entries.clone(),
                release: release.clone(),
            },
        };
        let ok = matches!(
            tokio::time::timeout(RESERVE_TIMEOUT, self.control.write(cmd)).await,
            Ok(Ok(_))
        );
        if !ok {
            tracing::debug!(entries = entries.len(), "settlement failed; will retry");
            let mut inner = self.lock();
            inner.pending.extend(entries);
            inner.release.extend(release);
        }
    }

    /// Reservations made so far: (while a request waited, ahead of need).
    pub fn reservations(&self) -> (u64, u64) {
        (
            self.reserved_on_request.load(Ordering::Relaxed),
            self.reserved_ahead.load(Ordering::Relaxed),
        )
    }

    /// Spend entries queued and not yet settled (tests and shutdown).
    pub fn pending_entries(&self) -> usize {
        self.lock().pending.len()
    }
}

/// Runs the flusher until `cancel`; a last flush runs at shutdown.
pub async fn run_flusher(guard: Arc<Guard>, cancel: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {
                guard.flush().await;
                guard.renew_ahead().await;
            }
        }
    }
    guard.flush().await;
}

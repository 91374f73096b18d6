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
//! 4. An allowance is used only until [`LOCAL_TTL`] after it was requested, shorter than the
//!    replicated TTL, so a node cut off from the quorum stops spending before the leader charges
//!    the allowance in full; it then refuses budgeted work with a clear error.

use std::collections::HashMap;
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
            let limit = {
                let state = match self.control.state().read() {
                    Ok(s) => s,
                    Err(p) => p.into_inner(),
                };
                state.budgets.get(&key).map(|b| b.limit_micros)
            };
            let Some(limit) = limit else { continue };
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
        let _one_at_a_time = self.reserving.lock().await;
        // Another request may have reserved while this one waited.
        if let Some(lease) = self.debit(key, bound) {
            return Ok(lease);
        }
        let want = bound.max(limit / ALLOWANCE_SHARE_DIVISOR);
        let requested_at = self.clock.now();
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
        let (lease, granted) = match resp {
            Ok(Ok(Response::Reserved {
                lease,
                granted_micros,
                ..
            })) => (lease, granted_micros),
            Ok(Ok(other)) => {
                return Err(GuardError::CutOff {
                    reason: format!("unexpected reply to a reservation: {other:?}"),
                });
            }
            Ok(Err(e)) => {
                return Err(GuardError::CutOff {
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                return Err(GuardError::CutOff {
                    reason: "no quorum answered within 2 s".into(),
                });
            }
        };
        let mut inner = self.lock();
        let list = inner.held.entry(key.to_owned()).or_default();
        // Older allowances stop taking new requests; they are released once idle.
        for old in list.iter_mut() {
            old.retired = true;
        }
        if granted == 0 {
            return Err(GuardError::Exhausted {
                scope: key.to_owned(),
            });
        }
        let fits = granted >= bound;
        list.push(Held {
            lease,
            granted,
            used: if fits { bound } else { 0 },
            in_flight: u32::from(fits),
            usable_until: requested_at + LOCAL_TTL,
            retired: false,
        });
        if fits {
            Ok(lease)
        } else {
            // What is left of the budget is smaller than this request's bound.
            Err(GuardError::Exhausted {
                scope: key.to_owned(),
            })
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
            _ = tick.tick() => guard.flush().await,
        }
    }
    guard.flush().await;
}

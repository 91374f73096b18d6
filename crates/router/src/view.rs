//! The cluster view: every node's stats reports (its own included) merged into a sliding window
//! per provider and per (provider, model), so routing on any node sees what the whole cluster
//! sees (DESIGN §4). It is plain data: the caller passes the time of every call and feeds it
//! reports; nothing here reads a clock or a socket.
//!
//! - **Window.** `slots` slots of `slot_ms` each (for example 60 × 1 s). A report lands in the
//!   slot of its `at_ms`, clamped to no later than the receiver's `now_ms` (a peer whose clock
//!   runs ahead is read as "now"); a report older than the whole window only refreshes gauges.
//! - **Nodes.** Data is kept per reporting node, so a node that falls silent for longer than
//!   `silent_after_ms` drops out of every answer at once, and a node that keeps only its own
//!   reports routes on its own view. Raft membership decides who is a peer at all
//!   ([`ClusterView::retain_members`]).
//! - **Duplicates.** A report is identified by (node, seq). Seqs up to 64 behind the newest are
//!   accepted once each (reordering); further behind is stale. A seq at or below the newest
//!   but with a later `at_ms` is a restarted node counting from the start again: its window of
//!   seqs starts over.
//!
//! Answering merges the window on each call. A node should compute [`ClusterView::summary`]
//! once per exchange round and publish it for the hot path.

pub mod codec;
pub mod quota;
pub mod summary;
mod window;

use std::collections::{BTreeMap, BTreeSet};

use switchyard_core::stats::{ClassCounts, StatsReport};
use switchyard_core::{BreakerPhase, OutcomeClass};

use crate::retry::RetryBudget;
use codec::decode_histogram;
use summary::{HEALTH_RECENT_MS, judge, pct, quantiles};
use window::{Buckets, Ring};

pub use codec::{CodecError, encode_histogram, histogram_of, new_histogram};
pub use quota::quota_share;
pub use summary::{
    Health, LatencyQuantiles, PairSummary, ProviderSummary, ViewSummary, WindowSummary,
};

/// The merged sliding-window view of every live node's reports.
#[derive(Clone, Debug)]
pub struct ClusterView {
    /// Slots in the window (at least 1).
    slots: u64,
    /// Length of one slot (at least 1 ms).
    slot_ms: u64,
    /// A node not heard from for longer than this is left out of every answer and forgotten by
    /// [`ClusterView::age_out`].
    silent_after_ms: u64,
    /// By node id.
    nodes: BTreeMap<u64, NodeState>,
    /// Histograms that did not decode (wrong format or precision), for a metric; their reports'
    /// counts were still merged.
    rejected_histograms: u64,
}

/// What a report did to the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Gauges and deltas merged.
    Merged,
    /// Gauges refreshed; the deltas are older than the whole window and were dropped.
    OutsideWindow,
    /// Already applied (same node and seq), or too far behind that node's newest: ignored.
    Duplicate,
}

/// One reporting node's part of the view.
#[derive(Clone, Debug, Default)]
struct NodeState {
    /// Which of its seqs were applied.
    seqs: SeqWindow,
    /// Receiver time of its latest accepted report.
    last_heard_ms: u64,
    /// Latest per-provider gauges.
    gauges: BTreeMap<String, Gauge>,
    /// Windows by (provider, model).
    pairs: BTreeMap<(String, String), Ring>,
}

/// One node's latest gauges for one provider.
#[derive(Clone, Copy, Debug, Default)]
struct Gauge {
    in_flight: u64,
    breaker: BreakerPhase,
    demand_per_min: u64,
    /// Receiver time they arrived.
    arrived_ms: u64,
}

/// Seqs already applied for one node: the newest, and a bitmap of the 64 before it.
#[derive(Clone, Copy, Debug, Default)]
struct SeqWindow {
    started: bool,
    newest: u64,
    /// Bit `i` set: seq `newest - i` was applied (bit 0 is `newest` itself).
    seen: u64,
    /// `at_ms` of the newest, to tell a restart from a stale report.
    newest_at_ms: u64,
}

/// How far behind the newest seq a report may arrive and still be applied once.
const SEQ_REORDER_WINDOW: u64 = 64;

/// Running sums while merging windows.
#[derive(Default)]
struct Acc {
    counts: ClassCounts,
    recent: ClassCounts,
    retries: u64,
    tokens: u64,
    ttft: Vec<(u64, u64)>,
    total: Vec<(u64, u64)>,
}

// === impl SeqWindow ===

impl SeqWindow {
    /// Records `seq` if it is new; false for a duplicate or a stale reordering.
    fn accept(&mut self, seq: u64, at_ms: u64) -> bool {
        if !self.started || seq > self.newest {
            let shift = if self.started { seq - self.newest } else { 64 };
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.started = true;
            self.newest = seq;
            self.newest_at_ms = at_ms;
            return true;
        }
        if at_ms > self.newest_at_ms {
            // Not above the newest seq, yet newer in the node's own time: the node restarted
            // and counts from the start again. (A true duplicate carries the same `at_ms`; a
            // late reordering an older one.)
            *self = SeqWindow::default();
            return self.accept(seq, at_ms);
        }
        let behind = self.newest - seq;
        if behind >= SEQ_REORDER_WINDOW {
            return false;
        }
        let bit = 1u64 << behind;
        if self.seen & bit != 0 {
            return false;
        }
        self.seen |= bit;
        true
    }
}

// === impl Acc ===

impl Acc {
    fn merge(&mut self, other: &Acc) {
        self.counts.merge(&other.counts);
        self.recent.merge(&other.recent);
        self.retries = self.retries.saturating_add(other.retries);
        self.tokens = self.tokens.saturating_add(other.tokens);
        self.ttft.extend_from_slice(&other.ttft);
        self.total.extend_from_slice(&other.total);
    }

    fn finish(self, in_flight: u64, breakers: summary::Breakers) -> WindowSummary {
        let requests = self.counts.total();
        let health = judge(&self.recent, &breakers);
        WindowSummary {
            requests,
            counts: self.counts,
            error_rate_pct: pct(self.counts.provider_failures(), requests),
            rate_limited_pct: pct(self.counts.get(OutcomeClass::RateLimited), requests),
            ttft: quantiles(self.ttft),
            total: quantiles(self.total),
            in_flight,
            breakers,
            tokens: self.tokens,
            retries: self.retries,
            recent: self.recent,
            health,
        }
    }
}

// === impl ClusterView ===

impl ClusterView {
    /// An empty view of `slots` slots of `slot_ms` each, leaving out nodes silent for longer
    /// than `silent_after_ms`. Zero slots or a zero slot length are taken as 1.
    pub fn new(slots: usize, slot_ms: u64, silent_after_ms: u64) -> Self {
        Self {
            slots: u64::try_from(slots).unwrap_or(u64::MAX).max(1),
            slot_ms: slot_ms.max(1),
            silent_after_ms,
            nodes: BTreeMap::new(),
            rejected_histograms: 0,
        }
    }

    /// The window's length, ms.
    pub fn window_ms(&self) -> u64 {
        self.slots.saturating_mul(self.slot_ms)
    }

    /// Histograms from peers that did not decode since the view was made.
    pub fn rejected_histograms(&self) -> u64 {
        self.rejected_histograms
    }

    /// Merges one node's report, received at `now_ms`.
    ///
    /// 1. Drop it if (node, seq) was applied already ([`Applied::Duplicate`]).
    /// 2. Mark the node heard from at `now_ms` and replace its per-provider gauges.
    /// 3. Add each pair delta (counts, retries, tokens, both histograms) into the node's slot
    ///    for `min(at_ms, now_ms)`, unless that slot is already outside the window. A histogram
    ///    that does not decode is skipped and counted; the pair's counts still merge.
    pub fn apply(&mut self, report: &StatsReport, now_ms: u64) -> Applied {
        let first_slot = self.first_slot(now_ms);
        let slot = report.at_ms.min(now_ms) / self.slot_ms;
        let node = self.nodes.entry(report.node).or_default();
        if !node.seqs.accept(report.seq, report.at_ms) {
            return Applied::Duplicate;
        }
        node.last_heard_ms = node.last_heard_ms.max(now_ms);
        for g in &report.providers {
            node.gauges.insert(
                g.provider.clone(),
                Gauge {
                    in_flight: g.in_flight,
                    breaker: g.breaker,
                    demand_per_min: g.demand_per_min,
                    arrived_ms: now_ms,
                },
            );
        }
        if slot < first_slot {
            return Applied::OutsideWindow;
        }
        let mut rejected = 0;
        for d in &report.pairs {
            let ring = node
                .pairs
                .entry((d.provider.clone(), d.model.clone()))
                .or_default();
            ring.evict_before(first_slot);
            let s = ring.slot_mut(slot);
            s.counts.merge(&d.counts);
            s.retries = s.retries.saturating_add(d.retries);
            s.tokens = s.tokens.saturating_add(d.tokens);
            for (bytes, into) in [(&d.ttft_hist, &mut s.ttft), (&d.total_hist, &mut s.total)] {
                match decode_histogram(bytes) {
                    Ok(Some(h)) => into.add_histogram(&h),
                    Ok(None) => {}
                    Err(_) => rejected += 1,
                }
            }
        }
        self.rejected_histograms = self.rejected_histograms.saturating_add(rejected);
        Applied::Merged
    }

    /// Forgets nodes silent for longer than the limit, slots older than the window and gauges
    /// older than the silence limit. Answers already leave these out; this frees their memory.
    pub fn age_out(&mut self, now_ms: u64) {
        let first_slot = self.first_slot(now_ms);
        let silent = self.silent_after_ms;
        self.nodes
            .retain(|_, n| now_ms.saturating_sub(n.last_heard_ms) <= silent);
        for n in self.nodes.values_mut() {
            n.gauges
                .retain(|_, g| now_ms.saturating_sub(g.arrived_ms) <= silent);
            n.pairs.retain(|_, ring| {
                ring.evict_before(first_slot);
                !ring.is_empty()
            });
        }
    }

    /// Forgets nodes that are no longer Raft members (removed from the cluster).
    pub fn retain_members(&mut self, members: &BTreeSet<u64>) {
        self.nodes.retain(|id, _| members.contains(id));
    }

    /// Nodes heard from within the silence limit.
    pub fn live_nodes(&self, now_ms: u64) -> Vec<u64> {
        self.live(now_ms).map(|(id, _)| *id).collect()
    }

    /// One (provider, model) pair over the window, merged over live nodes; all zero when
    /// nothing is known of it.
    pub fn pair(&self, provider: &str, model: &str, now_ms: u64) -> PairSummary {
        let acc = self.accumulate(now_ms, |p, m| p == provider && m == model);
        let (in_flight, breakers, _) = self.gauges(provider, now_ms);
        PairSummary {
            provider: provider.to_owned(),
            model: model.to_owned(),
            stats: acc.finish(in_flight, breakers),
        }
    }

    /// One provider, all its models, over the window, merged over live nodes.
    pub fn provider(&self, provider: &str, now_ms: u64) -> ProviderSummary {
        let acc = self.accumulate(now_ms, |p, _| p == provider);
        let (in_flight, breakers, demand_per_min) = self.gauges(provider, now_ms);
        let models: BTreeSet<&str> = self
            .live(now_ms)
            .flat_map(|(_, n)| n.pairs.keys())
            .filter(|(p, _)| p == provider)
            .map(|(_, m)| m.as_str())
            .collect();
        ProviderSummary {
            provider: provider.to_owned(),
            models: models.into_iter().map(str::to_owned).collect(),
            demand_per_min,
            stats: acc.finish(in_flight, breakers),
        }
    }

    /// Every pair of `provider` seen in the window, by model.
    pub fn pairs_of(&self, provider: &str, now_ms: u64) -> Vec<PairSummary> {
        let models: BTreeSet<&str> = self
            .live(now_ms)
            .flat_map(|(_, n)| n.pairs.keys())
            .filter(|(p, _)| p == provider)
            .map(|(_, m)| m.as_str())
            .collect();
        models
            .into_iter()
            .map(|m| self.pair(provider, m, now_ms))
            .collect()
    }

    /// Every provider any live node reports (gauges or deltas), by name.
    pub fn providers(&self, now_ms: u64) -> Vec<ProviderSummary> {
        self.provider_names(now_ms)
            .into_iter()
            .map(|p| self.provider(&p, now_ms))
            .collect()
    }

    /// Every provider and pair summary at `now_ms`, merged in one pass over the window.
    pub fn summary(&self, now_ms: u64) -> ViewSummary {
        let mut pair_accs: BTreeMap<(String, String), Acc> = BTreeMap::new();
        let (from, to) = (self.first_slot(now_ms), now_ms / self.slot_ms);
        let recent_from = self.recent_first_slot(now_ms);
        for (_, n) in self.live(now_ms) {
            for (key, ring) in &n.pairs {
                let acc = pair_accs.entry(key.clone()).or_default();
                add_ring(acc, ring, from, to, recent_from);
            }
        }
        let mut out = ViewSummary {
            at_ms: now_ms,
            ..ViewSummary::default()
        };
        let mut provider_accs: BTreeMap<String, (Acc, Vec<String>)> = self
            .provider_names(now_ms)
            .into_iter()
            .map(|p| (p, (Acc::default(), Vec::new())))
            .collect();
        for ((p, m), acc) in pair_accs {
            let (in_flight, breakers, _) = self.gauges(&p, now_ms);
            if let Some((pacc, models)) = provider_accs.get_mut(&p) {
                pacc.merge(&acc);
                models.push(m.clone());
            }
            out.pairs.insert(
                (p.clone(), m.clone()),
                PairSummary {
                    provider: p,
                    model: m,
                    stats: acc.finish(in_flight, breakers),
                },
            );
        }
        for (p, (acc, models)) in provider_accs {
            let (in_flight, breakers, demand_per_min) = self.gauges(&p, now_ms);
            out.providers.insert(
                p.clone(),
                ProviderSummary {
                    provider: p,
                    models,
                    demand_per_min,
                    stats: acc.finish(in_flight, breakers),
                },
            );
        }
        out
    }

    /// `(this node's demand, every live node's demand)` for `provider`, requests per minute,
    /// for [`quota_share`].
    pub fn demand_share(&self, provider: &str, node: u64, now_ms: u64) -> (u64, u64) {
        let mut mine = 0;
        let mut total = 0u64;
        for (id, n) in self.live(now_ms) {
            if let Some(g) = self.live_gauge(n, provider, now_ms) {
                total = total.saturating_add(g.demand_per_min);
                if *id == node {
                    mine = g.demand_per_min;
                }
            }
        }
        (mine, total)
    }

    /// This node's share of a provider's `quota_per_min` (requests or tokens), split among the
    /// live nodes reporting the provider (this one always counted) by demand. See
    /// [`quota`] for the rule and its tolerance.
    pub fn quota_share_for(
        &self,
        provider: &str,
        node: u64,
        quota_per_min: u64,
        now_ms: u64,
    ) -> u64 {
        let (mine, total) = self.demand_share(provider, node, now_ms);
        let mut nodes: BTreeSet<u64> = self
            .live(now_ms)
            .filter(|(_, n)| self.live_gauge(n, provider, now_ms).is_some())
            .map(|(id, _)| *id)
            .collect();
        nodes.insert(node);
        let count = u64::try_from(nodes.len()).unwrap_or(u64::MAX);
        quota_share(quota_per_min, mine, total, count)
    }

    /// Whether one more retry may go to `provider`: its retries over the window are below
    /// `ratio` (0.2 for 20%, clamped to 0..=1, rounded to whole per cent) of its attempts there,
    /// with the floor of [`RetryBudget::default`] (see [`RetryBudget`]).
    pub fn retry_budget_ok(&self, provider: &str, now_ms: u64, ratio: f64) -> bool {
        // NaN clamps to NaN, which casts to 0: no retries beyond the floor.
        let ratio_pct = (ratio.clamp(0.0, 1.0) * 100.0).round() as u32;
        let budget = RetryBudget {
            ratio_pct,
            ..RetryBudget::default()
        };
        self.retry_budget_allows(provider, now_ms, budget)
    }

    /// [`ClusterView::retry_budget_ok`] with an explicit budget.
    pub fn retry_budget_allows(&self, provider: &str, now_ms: u64, budget: RetryBudget) -> bool {
        let acc = self.accumulate(now_ms, |p, _| p == provider);
        budget.allows(acc.counts.total(), acc.retries)
    }

    // --- private helpers ---

    /// Oldest slot number inside the window at `now_ms`.
    fn first_slot(&self, now_ms: u64) -> u64 {
        (now_ms / self.slot_ms + 1).saturating_sub(self.slots)
    }

    /// Oldest slot number the health verdict reads.
    fn recent_first_slot(&self, now_ms: u64) -> u64 {
        let recent_slots = HEALTH_RECENT_MS.div_ceil(self.slot_ms).clamp(1, self.slots);
        (now_ms / self.slot_ms + 1).saturating_sub(recent_slots)
    }

    fn live(&self, now_ms: u64) -> impl Iterator<Item = (&u64, &NodeState)> {
        let silent = self.silent_after_ms;
        self.nodes
            .iter()
            .filter(move |(_, n)| now_ms.saturating_sub(n.last_heard_ms) <= silent)
    }

    fn live_gauge<'a>(&self, n: &'a NodeState, provider: &str, now_ms: u64) -> Option<&'a Gauge> {
        n.gauges
            .get(provider)
            .filter(|g| now_ms.saturating_sub(g.arrived_ms) <= self.silent_after_ms)
    }

    /// (in-flight sum, breaker per node, demand sum) over live nodes' fresh gauges.
    fn gauges(&self, provider: &str, now_ms: u64) -> (u64, summary::Breakers, u64) {
        let mut in_flight = 0u64;
        let mut demand = 0u64;
        let mut breakers = Vec::new();
        for (id, n) in self.live(now_ms) {
            if let Some(g) = self.live_gauge(n, provider, now_ms) {
                in_flight = in_flight.saturating_add(g.in_flight);
                demand = demand.saturating_add(g.demand_per_min);
                breakers.push((*id, g.breaker));
            }
        }
        (in_flight, breakers, demand)
    }

    fn provider_names(&self, now_ms: u64) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (_, n) in self.live(now_ms) {
            names.extend(n.pairs.keys().map(|(p, _)| p.clone()));
            for (p, g) in &n.gauges {
                if now_ms.saturating_sub(g.arrived_ms) <= self.silent_after_ms {
                    names.insert(p.clone());
                }
            }
        }
        names
    }

    fn accumulate(&self, now_ms: u64, want: impl Fn(&str, &str) -> bool) -> Acc {
        let mut acc = Acc::default();
        let (from, to) = (self.first_slot(now_ms), now_ms / self.slot_ms);
        let recent_from = self.recent_first_slot(now_ms);
        for (_, n) in self.live(now_ms) {
            for ((p, m), ring) in &n.pairs {
                if want(p, m) {
                    add_ring(&mut acc, ring, from, to, recent_from);
                }
            }
        }
        acc
    }
}

/// Adds a ring's slots numbered `from..=to` into `acc`; those from `recent_from` on also count
/// towards the health verdict.
fn add_ring(acc: &mut Acc, ring: &Ring, from: u64, to: u64, recent_from: u64) {
    for s in ring.range(from, to) {
        acc.counts.merge(&s.counts);
        if s.number >= recent_from {
            acc.recent.merge(&s.counts);
        }
        acc.retries = acc.retries.saturating_add(s.retries);
        acc.tokens = acc.tokens.saturating_add(s.tokens);
        extend(&mut acc.ttft, &s.ttft);
        extend(&mut acc.total, &s.total);
    }
}

fn extend(into: &mut Vec<(u64, u64)>, b: &Buckets) {
    into.extend_from_slice(b.as_slice());
}

#[cfg(test)]
mod tests;

//! One node's sliding window for one (provider, model) pair: a ring of fixed-length time slots,
//! each holding the outcome counts, retries, tokens and latency buckets reported for it.
//!
//! Latency buckets are kept sparse, as (bucket value, count) pairs sorted by value, instead of as
//! dense hdrhistograms. A dense histogram at the shared bounds is about 170 KB, and a window of
//! 60 slots × 2 histograms × pairs × nodes would cost hundreds of megabytes; a slot's recorded
//! buckets are usually a few dozen. The merge stays exact: every node uses the same precision,
//! and a bucket's highest equivalent value lands in the same bucket when recorded again.

use std::collections::VecDeque;

use hdrhistogram::Histogram;
use switchyard_core::stats::ClassCounts;

/// Recorded buckets of a latency histogram: (highest equivalent value in µs, count), sorted by
/// value, no zero counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Buckets(Vec<(u64, u64)>);

impl Buckets {
    /// Adds every recorded bucket of `h` (the sparse form of `Histogram::add`).
    pub(crate) fn add_histogram(&mut self, h: &Histogram<u64>) {
        let incoming: Vec<(u64, u64)> = h
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        self.add_sorted(&incoming);
    }

    /// Merges sorted `(value, count)` pairs into this set.
    fn add_sorted(&mut self, incoming: &[(u64, u64)]) {
        if incoming.is_empty() {
            return;
        }
        if self.0.is_empty() {
            self.0.extend_from_slice(incoming);
            return;
        }
        let mut merged = Vec::with_capacity(self.0.len() + incoming.len());
        let (mut a, mut b) = (self.0.iter().peekable(), incoming.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(va, ca)), Some(&&(vb, cb))) => {
                    if va == vb {
                        merged.push((va, ca.saturating_add(cb)));
                        a.next();
                        b.next();
                    } else if va < vb {
                        merged.push((va, ca));
                        a.next();
                    } else {
                        merged.push((vb, cb));
                        b.next();
                    }
                }
                (Some(&&x), None) => {
                    merged.push(x);
                    a.next();
                }
                (None, Some(&&y)) => {
                    merged.push(y);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.0 = merged;
    }

    /// The buckets, sorted by value.
    pub(crate) fn as_slice(&self) -> &[(u64, u64)] {
        &self.0
    }
}

/// What one slot holds.
#[derive(Clone, Debug, Default)]
pub(crate) struct Slot {
    /// Absolute slot number: `at_ms / slot_ms`.
    pub(crate) number: u64,
    /// Outcomes by class.
    pub(crate) counts: ClassCounts,
    /// Retries sent to the pair.
    pub(crate) retries: u64,
    /// Prompt plus completion tokens.
    pub(crate) tokens: u64,
    /// Time to first token of successes.
    pub(crate) ttft: Buckets,
    /// Total latency.
    pub(crate) total: Buckets,
}

/// Slots in ascending number order, at most `capacity` of them, none older than the window.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ring {
    slots: VecDeque<Slot>,
}

impl Ring {
    /// The slot numbered `number`, created in order if missing.
    pub(crate) fn slot_mut(&mut self, number: u64) -> &mut Slot {
        // Reports arrive roughly in time order, so the slot is almost always the last one.
        let pos = self.slots.iter().rposition(|s| s.number <= number);
        let at = match pos {
            Some(p) if self.slots.get(p).is_some_and(|s| s.number == number) => p,
            Some(p) => {
                self.slots.insert(
                    p + 1,
                    Slot {
                        number,
                        ..Slot::default()
                    },
                );
                p + 1
            }
            None => {
                self.slots.push_front(Slot {
                    number,
                    ..Slot::default()
                });
                0
            }
        };
        &mut self.slots[at]
    }

    /// Drops slots numbered below `first_kept`.
    pub(crate) fn evict_before(&mut self, first_kept: u64) {
        while self.slots.front().is_some_and(|s| s.number < first_kept) {
            self.slots.pop_front();
        }
    }

    /// Slots numbered `from..=to`.
    pub(crate) fn range(&self, from: u64, to: u64) -> impl Iterator<Item = &Slot> {
        self.slots
            .iter()
            .filter(move |s| s.number >= from && s.number <= to)
    }

    /// Whether no slot is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::codec::histogram_of;

    #[test]
    fn sparse_merge_equals_dense_add() {
        let a = histogram_of(&[5, 5, 90, 1_500, 70_000]);
        let b = histogram_of(&[5, 91, 2_000_000]);
        let mut dense = a.clone();
        dense.add(&b).unwrap();
        let mut sparse = Buckets::default();
        sparse.add_histogram(&a);
        sparse.add_histogram(&b);
        let dense_buckets: Vec<_> = dense
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        assert_eq!(sparse.as_slice(), dense_buckets.as_slice());
    }

    #[test]
    fn ring_keeps_slots_in_order_and_evicts_old_ones() {
        let mut r = Ring::default();
        r.slot_mut(10).retries = 1;
        r.slot_mut(8).retries = 2;
        r.slot_mut(12).retries = 3;
        r.slot_mut(10).retries += 1;
        let numbers: Vec<_> = r
            .range(0, u64::MAX)
            .map(|s| (s.number, s.retries))
            .collect();
        assert_eq!(numbers, vec![(8, 2), (10, 2), (12, 3)]);
        r.evict_before(10);
        assert_eq!(r.range(0, u64::MAX).count(), 2);
        assert_eq!(r.range(11, 12).count(), 1);
    }
}

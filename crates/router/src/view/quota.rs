//! Sharing a provider's configured quota (requests or tokens per minute) among the nodes, in
//! proportion to what each node wants. Every node computes its own share from its own view of
//! everyone's demand, with no coordination on the hot path.
//!
//! # Tolerance
//!
//! - **Views agree** (every node has applied the same reports): the shares sum to at most the
//!   quota; flooring leaves at most one unit per node unused.
//! - **Views lag** (a demand shift not yet seen everywhere; one exchange round, about 1 s,
//!   plus delivery): a node may compute its share against a stale total. Each share is still
//!   at most the quota, so over a lag of `L` the cluster can admit at most
//!   `nodes × quota × L / 60 s` beyond the quota: with 3 nodes and a 2 s lag, 10% of one
//!   minute's quota, and only while demand is moving.
//! - **A silent peer** drops out of the total after the view's silence limit, so its share goes
//!   back to the nodes still heard from.

/// Per cent of the quota split evenly among live nodes before the rest is split by demand, so a
/// node whose demand is still zero in everyone's view can admit its first requests.
pub const QUOTA_RESERVE_PCT: u64 = 10;

/// This node's share of `quota_per_min`.
///
/// 1. Reserve [`QUOTA_RESERVE_PCT`]% of the quota, split evenly among `live_nodes` (at least
///    one).
/// 2. Split the rest in proportion to `my_demand / total_demand`; with no demand anywhere, split
///    it evenly too.
/// 3. Round each part down, so shares computed from one view never sum above the quota.
pub fn quota_share(quota_per_min: u64, my_demand: u64, total_demand: u64, live_nodes: u64) -> u64 {
    let nodes = u128::from(live_nodes.max(1));
    let quota = u128::from(quota_per_min);
    let reserve = quota * u128::from(QUOTA_RESERVE_PCT) / 100 / nodes;
    let pool = quota - reserve * nodes;
    // A node's own demand is fresher than its view of the total; never let it exceed the total.
    let total = u128::from(total_demand.max(my_demand));
    let proportional = (pool * u128::from(my_demand))
        .checked_div(total)
        .unwrap_or(pool / nodes);
    u64::try_from(reserve + proportional).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shares_follow_demand_with_a_small_even_reserve() {
        // 600 rpm, 3 nodes: 20 reserved each, 540 by demand 1:1:4.
        assert_eq!(quota_share(600, 100, 600, 3), 20 + 90);
        assert_eq!(quota_share(600, 400, 600, 3), 20 + 360);
        // Nobody wants anything yet: even split.
        assert_eq!(quota_share(600, 0, 0, 3), 200);
        // A node nobody has heard demand from still gets its reserve.
        assert_eq!(quota_share(600, 0, 600, 3), 20);
    }

    proptest! {
        #[test]
        fn shares_from_one_view_never_sum_above_the_quota(
            quota in 0u64..10_000_000,
            demands in proptest::collection::vec(0u64..1_000_000, 1..8),
        ) {
            let total: u64 = demands.iter().sum();
            let n = demands.len() as u64;
            let sum: u64 = demands.iter().map(|d| quota_share(quota, *d, total, n)).sum();
            prop_assert!(sum <= quota);
            // Rounding loses at most two units per node (reserve and proportional part).
            prop_assert!(quota - sum <= 2 * n, "quota {quota} sum {sum}");
        }
    }
}

//! Cluster view tests: merging, dedupe, ageing, health, retry budget and quota shares.

use super::*;
use switchyard_core::stats::{PairDelta, ProviderReport};

/// 60 one-second slots; a node silent for 5 s drops out.
fn view() -> ClusterView {
    ClusterView::new(60, 1_000, 5_000)
}

fn delta(provider: &str, model: &str, ok: u64, failed_5xx: u64, latencies_us: &[u64]) -> PairDelta {
    let mut counts = ClassCounts::default();
    for _ in 0..ok {
        counts.add(OutcomeClass::Ok);
    }
    for _ in 0..failed_5xx {
        counts.add(OutcomeClass::ServerError);
    }
    PairDelta {
        provider: provider.into(),
        model: model.into(),
        counts,
        retries: 0,
        tokens: 10 * ok,
        ttft_hist: encode_histogram(&histogram_of(
            &latencies_us.iter().map(|l| l / 2).collect::<Vec<_>>(),
        )),
        total_hist: encode_histogram(&histogram_of(latencies_us)),
    }
}

fn gauge(provider: &str, in_flight: u64, breaker: BreakerPhase, demand: u64) -> ProviderReport {
    ProviderReport {
        provider: provider.into(),
        in_flight,
        breaker,
        demand_per_min: demand,
    }
}

fn report(
    node: u64,
    seq: u64,
    at_ms: u64,
    pairs: Vec<PairDelta>,
    providers: Vec<ProviderReport>,
) -> StatsReport {
    StatsReport {
        node,
        seq,
        at_ms,
        pairs,
        providers,
    }
}

#[test]
fn two_nodes_deltas_merge_into_exact_quantiles_and_counts() {
    let mut v = view();
    // Node 1 saw 50 fast requests, node 2 saw 50 slow ones and 2 failures.
    let fast: Vec<u64> = (1..=50).map(|i| i * 10).collect(); // 10..500 µs
    let slow: Vec<u64> = (1..=50).map(|i| 1_000 + i * 10).collect(); // 1010..1500 µs
    let a = report(
        1,
        1,
        10_000,
        vec![delta("p", "m", 50, 0, &fast)],
        vec![gauge("p", 3, BreakerPhase::Closed, 100)],
    );
    let b = report(
        2,
        1,
        10_200,
        vec![delta("p", "m", 50, 2, &slow)],
        vec![gauge("p", 4, BreakerPhase::Closed, 300)],
    );
    assert_eq!(v.apply(&a, 10_500), Applied::Merged);
    assert_eq!(v.apply(&b, 10_500), Applied::Merged);

    let s = v.pair("p", "m", 11_000).stats;
    assert_eq!(s.requests, 102);
    assert_eq!(s.counts.get(OutcomeClass::Ok), 100);
    assert_eq!(s.counts.provider_failures(), 2);
    assert_eq!(s.error_rate_pct, 2);
    assert_eq!(s.tokens, 1_000);
    assert_eq!(s.total.samples, 100);
    // Every sample is below 2048 µs, where the shared precision is exact.
    assert_eq!(
        s.total.p50_us, 500,
        "the 50th of 100 samples is node 1's slowest"
    );
    assert_eq!(s.total.p95_us, 1_450);
    assert_eq!(s.total.p99_us, 1_490);
    assert_eq!(s.ttft.p50_us, 250);
    assert_eq!(s.in_flight, 7);
    assert_eq!(
        s.breakers,
        vec![(1, BreakerPhase::Closed), (2, BreakerPhase::Closed)]
    );
    assert_eq!(s.health, Health::Healthy);

    // The one-pass summary agrees with the per-pair and per-provider answers.
    let all = v.summary(11_000);
    assert_eq!(
        all.pairs[&("p".to_owned(), "m".to_owned())],
        v.pair("p", "m", 11_000)
    );
    assert_eq!(all.providers["p"], v.provider("p", 11_000));
    assert_eq!(all.providers["p"].models, vec!["m".to_owned()]);
    assert_eq!(all.providers["p"].demand_per_min, 400);
}

#[test]
fn provider_summary_merges_its_models() {
    let mut v = view();
    let r = report(
        1,
        1,
        1_000,
        vec![
            delta("p", "m1", 3, 0, &[100, 100, 100]),
            delta("p", "m2", 1, 1, &[900]),
            delta("q", "m1", 7, 0, &[]),
        ],
        vec![],
    );
    v.apply(&r, 1_000);
    let p = v.provider("p", 1_000);
    assert_eq!(p.models, vec!["m1".to_owned(), "m2".to_owned()]);
    assert_eq!(p.stats.requests, 5);
    assert_eq!(p.stats.total.samples, 4);
    assert_eq!(p.stats.total.p99_us, 900);
    let names: Vec<_> = v.providers(1_000).into_iter().map(|p| p.provider).collect();
    assert_eq!(names, vec!["p".to_owned(), "q".to_owned()]);
    let pairs: Vec<_> = v
        .pairs_of("p", 1_000)
        .into_iter()
        .map(|p| p.model)
        .collect();
    assert_eq!(pairs, vec!["m1".to_owned(), "m2".to_owned()]);
}

#[test]
fn duplicates_are_ignored_reorderings_and_restarts_are_not() {
    let mut v = view();
    let r = |seq, at| report(1, seq, at, vec![delta("p", "m", 1, 0, &[])], vec![]);
    assert_eq!(v.apply(&r(5, 5_000), 5_000), Applied::Merged);
    assert_eq!(v.apply(&r(5, 5_000), 5_100), Applied::Duplicate);
    assert_eq!(
        v.apply(&r(4, 4_000), 5_100),
        Applied::Merged,
        "late but new"
    );
    assert_eq!(v.apply(&r(4, 4_000), 5_200), Applied::Duplicate);
    assert_eq!(v.pair("p", "m", 5_200).stats.requests, 2);
    assert_eq!(v.apply(&r(200, 6_000), 6_000), Applied::Merged);
    // A report far behind by seq and older by time is stale.
    assert_eq!(v.apply(&r(100, 5_500), 6_100), Applied::Duplicate);
    // The node restarts and counts from 1 again, later in time: accepted.
    assert_eq!(v.apply(&r(1, 7_000), 7_000), Applied::Merged);
    assert_eq!(v.apply(&r(2, 8_000), 8_000), Applied::Merged);
    assert_eq!(v.pair("p", "m", 8_100).stats.requests, 5);
    // A restart soon after start reuses seqs still in the reorder window: accepted too.
    let mut w = view();
    for seq in 1..=3 {
        assert_eq!(w.apply(&r(seq, seq * 1_000), seq * 1_000), Applied::Merged);
    }
    assert_eq!(w.apply(&r(1, 9_000), 9_000), Applied::Merged);
    assert_eq!(w.apply(&r(1, 9_000), 9_100), Applied::Duplicate);
    assert_eq!(w.apply(&r(2, 10_000), 10_000), Applied::Merged);
}

#[test]
fn a_silent_node_ages_out_and_the_view_falls_back_to_what_is_left() {
    let mut v = view();
    v.apply(
        &report(
            1,
            1,
            1_000,
            vec![delta("p", "m", 10, 0, &[100])],
            vec![gauge("p", 2, BreakerPhase::Closed, 60)],
        ),
        1_000,
    );
    v.apply(
        &report(
            2,
            1,
            1_000,
            vec![delta("p", "m", 20, 0, &[200])],
            vec![gauge("p", 5, BreakerPhase::Closed, 120)],
        ),
        1_000,
    );
    assert_eq!(v.pair("p", "m", 1_000).stats.requests, 30);
    // Node 1 keeps reporting; node 2 falls silent.
    for (seq, t) in (2..).zip((2_000..=7_000).step_by(1_000)) {
        v.apply(
            &report(
                1,
                seq,
                t,
                vec![],
                vec![gauge("p", 2, BreakerPhase::Closed, 60)],
            ),
            t,
        );
    }
    assert_eq!(v.live_nodes(7_000), vec![1]);
    let s = v.pair("p", "m", 7_000).stats;
    assert_eq!(s.requests, 10, "node 2's deltas leave with it");
    assert_eq!(s.in_flight, 2);
    assert_eq!(v.demand_share("p", 1, 7_000), (60, 60));
    v.age_out(7_000);
    assert_eq!(v.nodes.len(), 1);
    // Node 2 comes back and is counted again.
    v.apply(
        &report(
            2,
            2,
            8_000,
            vec![],
            vec![gauge("p", 1, BreakerPhase::Closed, 30)],
        ),
        8_000,
    );
    assert_eq!(v.live_nodes(8_000), vec![1, 2]);
}

#[test]
fn slots_leave_the_window_after_its_length() {
    let mut v = view();
    v.apply(
        &report(1, 1, 1_000, vec![delta("p", "m", 4, 0, &[100])], vec![]),
        1_000,
    );
    for (seq, t) in (2..).zip((2_000..=60_000).step_by(1_000)) {
        v.apply(
            &report(1, seq, t, vec![delta("p", "m", 1, 0, &[])], vec![]),
            t,
        );
    }
    // At 60.9 s the window is slots 1..=60: the first report (slot 1) is still in.
    assert_eq!(v.pair("p", "m", 60_900).stats.requests, 4 + 59);
    // At 61 s slot 1 has left.
    v.apply(
        &report(1, 61, 61_000, vec![delta("p", "m", 1, 0, &[])], vec![]),
        61_000,
    );
    assert_eq!(v.pair("p", "m", 61_000).stats.requests, 60);
    assert_eq!(v.pair("p", "m", 61_000).stats.total.samples, 0);
    // A report from before the window only refreshes gauges.
    assert_eq!(
        v.apply(
            &report(1, 100, 500, vec![delta("p", "m", 9, 0, &[])], vec![]),
            61_000
        ),
        Applied::OutsideWindow
    );
    assert_eq!(v.pair("p", "m", 61_000).stats.requests, 60);
}

#[test]
fn a_clock_ahead_of_ours_is_read_as_now() {
    let mut v = view();
    v.apply(
        &report(1, 1, 99_000, vec![delta("p", "m", 1, 0, &[])], vec![]),
        10_000,
    );
    assert_eq!(v.pair("p", "m", 10_000).stats.requests, 1);
}

#[test]
fn health_turns_failing_from_another_nodes_failures_alone() {
    let mut v = view();
    // This node (1) has sent nothing to p; node 2 sees it fail 6 times out of 8.
    v.apply(
        &report(
            1,
            1,
            20_000,
            vec![],
            vec![gauge("p", 0, BreakerPhase::Closed, 0)],
        ),
        20_000,
    );
    v.apply(
        &report(
            2,
            1,
            20_000,
            vec![delta("p", "m", 2, 6, &[])],
            vec![gauge("p", 0, BreakerPhase::Closed, 10)],
        ),
        20_000,
    );
    assert_eq!(v.provider("p", 20_500).stats.health, Health::Failing);
    assert_eq!(v.pair("p", "m", 20_500).stats.health, Health::Failing);
    // Ten seconds on, the failures are outside the recent span: healthy again, though the
    // window still counts them.
    v.apply(
        &report(
            1,
            2,
            30_000,
            vec![],
            vec![gauge("p", 0, BreakerPhase::Closed, 0)],
        ),
        30_000,
    );
    v.apply(
        &report(
            2,
            2,
            30_000,
            vec![],
            vec![gauge("p", 0, BreakerPhase::Closed, 10)],
        ),
        30_000,
    );
    let s = v.provider("p", 30_000).stats;
    assert_eq!(s.health, Health::Healthy);
    assert_eq!(s.counts.provider_failures(), 6);
}

#[test]
fn a_majority_of_open_breakers_is_failing_without_traffic() {
    let mut v = view();
    for (node, phase) in [
        (1, BreakerPhase::Open),
        (2, BreakerPhase::Open),
        (3, BreakerPhase::Closed),
    ] {
        v.apply(
            &report(node, 1, 1_000, vec![], vec![gauge("p", 0, phase, 0)]),
            1_000,
        );
    }
    assert_eq!(v.provider("p", 1_000).stats.health, Health::Failing);
}

#[test]
fn retry_budget_refuses_past_twenty_percent() {
    let mut v = view();
    let mut d = delta("p", "m", 100, 0, &[]);
    d.retries = 19;
    v.apply(&report(1, 1, 1_000, vec![d], vec![]), 1_000);
    assert!(
        v.retry_budget_ok("p", 1_000, 0.2),
        "19 of 100 leaves room for one"
    );
    let mut d = delta("p", "m", 0, 0, &[]);
    d.retries = 1;
    v.apply(&report(2, 1, 1_000, vec![d], vec![]), 1_000);
    assert!(
        !v.retry_budget_ok("p", 1_000, 0.2),
        "20 of 100 is the cap, counted cluster-wide"
    );
    // A provider nobody has sent anything to can still be retried.
    assert!(v.retry_budget_ok("quiet", 1_000, 0.2));
}

#[test]
fn demand_share_splits_the_quota_by_demand() {
    let mut v = view();
    v.apply(
        &report(
            1,
            1,
            1_000,
            vec![],
            vec![gauge("p", 0, BreakerPhase::Closed, 100)],
        ),
        1_000,
    );
    v.apply(
        &report(
            2,
            1,
            1_000,
            vec![],
            vec![gauge("p", 0, BreakerPhase::Closed, 300)],
        ),
        1_000,
    );
    assert_eq!(v.demand_share("p", 1, 1_000), (100, 400));
    assert_eq!(v.demand_share("p", 3, 1_000), (0, 400));
    // 1000 rpm: 50 reserved per node, 900 by demand 1:3.
    assert_eq!(v.quota_share_for("p", 1, 1_000, 1_000), 50 + 225);
    assert_eq!(v.quota_share_for("p", 2, 1_000, 1_000), 50 + 675);
}

#[test]
fn a_histogram_that_does_not_decode_is_counted_and_the_counts_still_merge() {
    let mut v = view();
    let mut d = delta("p", "m", 3, 0, &[100]);
    d.total_hist = b"garbage".to_vec();
    v.apply(&report(1, 1, 1_000, vec![d], vec![]), 1_000);
    assert_eq!(v.rejected_histograms(), 1);
    let s = v.pair("p", "m", 1_000).stats;
    assert_eq!(s.requests, 3);
    assert_eq!(s.total.samples, 0);
    assert_eq!(s.ttft.samples, 1);
}

#[test]
fn removed_members_are_forgotten() {
    let mut v = view();
    v.apply(
        &report(1, 1, 1_000, vec![delta("p", "m", 1, 0, &[])], vec![]),
        1_000,
    );
    v.apply(
        &report(2, 1, 1_000, vec![delta("p", "m", 1, 0, &[])], vec![]),
        1_000,
    );
    v.retain_members(&BTreeSet::from([1]));
    assert_eq!(v.pair("p", "m", 1_000).stats.requests, 1);
}

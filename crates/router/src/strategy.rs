//! Routing strategies: how the targets of one route are put in order. The first target in the
//! order is tried first; the rest are the fallbacks within the route.

use rand::Rng;

use crate::plan::TargetView;
use crate::route::Target;

/// How to order a route's targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// 1. Keep the configured order. The first healthy target takes all traffic; later ones
    ///    are fallbacks.
    #[default]
    Priority,
    /// 1. Draw targets at random in proportion to their weights, without replacement, so
    ///    traffic splits by weight and the remaining targets are fallbacks in weighted order.
    Weighted,
    /// 1. Order by requests in flight on this node, fewest first.
    /// 2. Ties keep the configured order.
    LeastBusy,
    /// 1. Order by median total latency over the recent window, lowest first.
    /// 2. A target with no samples yet goes first, so it is measured at least once.
    /// 3. Ties keep the configured order.
    LowestLatency,
}

impl Strategy {
    /// Parses a strategy name as used in config and the `x-switchyard-strategy` header.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "priority" | "fallback" => Some(Strategy::Priority),
            "weighted" | "simple-shuffle" => Some(Strategy::Weighted),
            "least-busy" | "least_busy" => Some(Strategy::LeastBusy),
            "lowest-latency" | "latency" | "lowest_latency" => Some(Strategy::LowestLatency),
            _ => None,
        }
    }

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Priority => "priority",
            Strategy::Weighted => "weighted",
            Strategy::LeastBusy => "least-busy",
            Strategy::LowestLatency => "lowest-latency",
        }
    }

    /// Orders `targets` (indices into the route's target list) in place.
    pub fn order<R: Rng>(self, targets: &mut [(usize, &Target, TargetView)], rng: &mut R) {
        match self {
            Strategy::Priority => {}
            Strategy::LeastBusy => targets.sort_by_key(|(i, _, v)| (v.in_flight, *i)),
            Strategy::LowestLatency => {
                targets.sort_by_key(|(i, _, v)| (v.latency_samples > 0, v.latency_p50_us, *i));
            }
            Strategy::Weighted => {
                // Weighted sampling without replacement: repeatedly draw one of the remaining
                // targets with probability weight / remaining weight.
                for start in 0..targets.len() {
                    let rest = &targets[start..];
                    let total: u64 = rest.iter().map(|(_, t, _)| u64::from(t.weight)).sum();
                    if total == 0 {
                        break;
                    }
                    let mut pick = rng.random_range(0..total);
                    let mut chosen = start;
                    for (k, (_, t, _)) in rest.iter().enumerate() {
                        let w = u64::from(t.weight);
                        if pick < w {
                            chosen = start + k;
                            break;
                        }
                        pick -= w;
                    }
                    targets.swap(start, chosen);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use switchyard_core::ProviderName;

    fn t(p: &str, w: u32) -> Target {
        Target {
            provider: ProviderName::new(p),
            upstream_model: "m".into(),
            weight: w,
        }
    }

    #[test]
    fn weighted_splits_traffic_by_weight() {
        let a = t("a", 3);
        let b = t("b", 1);
        let mut rng = StdRng::seed_from_u64(7);
        let mut first_a = 0;
        for _ in 0..4000 {
            let mut v = vec![
                (0, &a, TargetView::default()),
                (1, &b, TargetView::default()),
            ];
            Strategy::Weighted.order(&mut v, &mut rng);
            if v[0].0 == 0 {
                first_a += 1;
            }
        }
        assert!((2800..3200).contains(&first_a), "{first_a}");
    }

    #[test]
    fn least_busy_and_lowest_latency_order_by_their_measure() {
        let a = t("a", 1);
        let b = t("b", 1);
        let busy = TargetView {
            in_flight: 5,
            latency_p50_us: 100,
            latency_samples: 10,
            ..TargetView::default()
        };
        let idle = TargetView {
            in_flight: 1,
            latency_p50_us: 900,
            latency_samples: 10,
            ..TargetView::default()
        };
        let mut rng = StdRng::seed_from_u64(1);
        let mut v = vec![(0, &a, busy), (1, &b, idle)];
        Strategy::LeastBusy.order(&mut v, &mut rng);
        assert_eq!(v[0].0, 1);
        Strategy::LowestLatency.order(&mut v, &mut rng);
        assert_eq!(v[0].0, 0);
        let unmeasured = TargetView {
            latency_samples: 0,
            ..TargetView::default()
        };
        let mut v = vec![(0, &a, busy), (1, &b, unmeasured)];
        Strategy::LowestLatency.order(&mut v, &mut rng);
        assert_eq!(v[0].0, 1, "an unmeasured target is explored first");
    }
}

//! Routing strategies: how the targets of one route are put in order. The first target in the
//! order is tried first; the rest are the fallbacks within the route.

use rand::Rng;

use crate::plan::TargetState;
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
    /// 1. Order by load, fewest requests in flight first. Load is the larger of this node's
    ///    count and the cluster's sum ([`TargetState::load`]): the sum includes this node's
    ///    last report, so the larger is never below what this node knows now.
    /// 2. Ties keep the configured order.
    LeastBusy,
    /// 1. Order by total latency over the window, lowest first: the cluster's p95 when the
    ///    view has one, else the median ([`TargetState::latency_us`]).
    /// 2. A target with no samples yet goes first, so it is measured at least once.
    /// 3. Ties keep the configured order.
    Latency,
    /// The same as [`Strategy::Latency`]; `lowest-latency` names it too.
    LowestLatency,
    /// 1. Order by blended price ([`crate::constraint::blended_micros_per_mtok`]), cheapest
    ///    first; targets of unknown price go last.
    /// 2. Ties keep the configured order.
    ///
    /// With the plan's constraints this is "the cheapest target that meets them"; failing and
    /// unavailable targets are moved behind the rest by the plan, not here.
    Cost,
    /// 1. Score each target, lower is better:
    ///    `35 × price + 30 × latency + 15 × load + 20 × error rate`, where price (blended),
    ///    latency (as for [`Strategy::Latency`]) and load are each divided by the largest among
    ///    the route's targets (so 0..1), and the error rate is the share of provider failures
    ///    (0..1, absolute: 2% against 1% is a small difference, not the whole scale).
    /// 2. An unknown price scores as the most expensive; an unmeasured latency as 0, so new
    ///    targets are explored.
    /// 3. Ties keep the configured order.
    Balanced,
}

/// Balanced weights, per hundred. Price and latency lead because they are what a client
/// notices; errors weigh more than load because a failed attempt costs a retry, while load only
/// costs queueing.
pub const BALANCED_WEIGHT_PRICE: u64 = 35;
/// Weight of normalised latency.
pub const BALANCED_WEIGHT_LATENCY: u64 = 30;
/// Weight of normalised load.
pub const BALANCED_WEIGHT_LOAD: u64 = 15;
/// Weight of the error rate.
pub const BALANCED_WEIGHT_ERRORS: u64 = 20;

/// Fixed-point scale of the balanced score's parts (1.0 = one million), so scores order exactly
/// without floating point.
const SCALE: u64 = 1_000_000;

impl Strategy {
    /// Parses a strategy name as used in config and the `x-switchyard-strategy` header.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "priority" | "fallback" => Some(Strategy::Priority),
            "weighted" | "simple-shuffle" => Some(Strategy::Weighted),
            "least-busy" | "least_busy" => Some(Strategy::LeastBusy),
            "latency" | "lowest-latency" | "lowest_latency" => Some(Strategy::Latency),
            "cost" | "cheapest" => Some(Strategy::Cost),
            "balanced" => Some(Strategy::Balanced),
            _ => None,
        }
    }

    /// Every canonical name, for error messages.
    pub const NAMES: &'static str = "priority, weighted, least-busy, latency, cost or balanced";

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Priority => "priority",
            Strategy::Weighted => "weighted",
            Strategy::LeastBusy => "least-busy",
            Strategy::Latency | Strategy::LowestLatency => "latency",
            Strategy::Cost => "cost",
            Strategy::Balanced => "balanced",
        }
    }

    /// Orders `targets` (indices into the route's target list) in place.
    pub fn order<R: Rng>(self, targets: &mut [(usize, &Target, TargetState)], rng: &mut R) {
        match self {
            Strategy::Priority => {}
            Strategy::LeastBusy => targets.sort_by_key(|(i, _, v)| (v.load(), *i)),
            Strategy::Latency | Strategy::LowestLatency => {
                targets.sort_by_key(|(i, _, v)| (v.latency_samples > 0, v.latency_us(), *i));
            }
            Strategy::Cost => targets.sort_by_key(|(i, _, v)| {
                let price = v.blended_price();
                (price.is_none(), price.unwrap_or(u64::MAX), *i)
            }),
            Strategy::Balanced => {
                let states: Vec<&TargetState> = targets.iter().map(|(_, _, v)| v).collect();
                let scores = balanced_scores(&states);
                let mut keyed: Vec<(u64, usize)> = targets
                    .iter()
                    .zip(scores)
                    .map(|((i, _, _), s)| (s, *i))
                    .collect();
                keyed.sort_unstable();
                targets.sort_by_key(|(i, _, _)| keyed.iter().position(|(_, k)| k == i));
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

/// The [`Strategy::Balanced`] score of each state, in order, in millionths of a point (the weights sum to
/// 100 points, so the worst possible score is 100 000 000).
pub fn balanced_scores(states: &[&TargetState]) -> Vec<u64> {
    let max_price = states.iter().filter_map(|v| v.blended_price()).max();
    let max_latency = states.iter().map(|v| v.latency_us()).max().unwrap_or(0);
    let max_load = states.iter().map(|v| v.load()).max().unwrap_or(0);
    states
        .iter()
        .map(|v| {
            let price = match (v.blended_price(), max_price) {
                (Some(p), Some(m)) => ratio(p, m),
                _ => SCALE,
            };
            let latency = if v.latency_samples > 0 {
                ratio(v.latency_us(), max_latency)
            } else {
                0
            };
            let load = ratio(v.load(), max_load);
            let errors = u64::from(v.error_rate_pct.min(100)) * (SCALE / 100);
            BALANCED_WEIGHT_PRICE * price
                + BALANCED_WEIGHT_LATENCY * latency
                + BALANCED_WEIGHT_LOAD * load
                + BALANCED_WEIGHT_ERRORS * errors
        })
        .collect()
}

/// `x / max` scaled to `0..=SCALE`; 0 when `max` is 0.
fn ratio(x: u64, max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let r = u128::from(x.min(max)) * u128::from(SCALE) / u128::from(max);
    u64::try_from(r).unwrap_or(SCALE)
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
                (0, &a, TargetState::default()),
                (1, &b, TargetState::default()),
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
        let busy = TargetState {
            in_flight: 5,
            latency_p50_us: 100,
            latency_samples: 10,
            ..TargetState::default()
        };
        let idle = TargetState {
            in_flight: 1,
            latency_p50_us: 900,
            latency_samples: 10,
            ..TargetState::default()
        };
        let mut rng = StdRng::seed_from_u64(1);
        let mut v = vec![(0, &a, busy.clone()), (1, &b, idle)];
        Strategy::LeastBusy.order(&mut v, &mut rng);
        assert_eq!(v[0].0, 1);
        Strategy::LowestLatency.order(&mut v, &mut rng);
        assert_eq!(v[0].0, 0);
        let unmeasured = TargetState {
            latency_samples: 0,
            ..TargetState::default()
        };
        let mut v = vec![(0, &a, busy), (1, &b, unmeasured)];
        Strategy::LowestLatency.order(&mut v, &mut rng);
        assert_eq!(v[0].0, 1, "an unmeasured target is explored first");
    }

    fn priced(price: u64, p95_us: u64, in_flight: u64, error_rate_pct: u32) -> TargetState {
        TargetState {
            available: true,
            supports: true,
            price_micros_per_mtok: Some((price, price)),
            p95_us,
            latency_samples: u64::from(p95_us > 0),
            cluster_in_flight: in_flight,
            error_rate_pct,
            ..TargetState::default()
        }
    }

    #[test]
    fn cost_orders_by_blended_price_with_unknown_prices_last() {
        let (a, b, c) = (t("a", 1), t("b", 1), t("c", 1));
        let unknown = TargetState {
            price_micros_per_mtok: None,
            ..priced(0, 0, 0, 0)
        };
        let mut v = vec![
            (0, &a, unknown),
            (1, &b, priced(500, 0, 0, 0)),
            (2, &c, priced(100, 0, 0, 0)),
        ];
        Strategy::Cost.order(&mut v, &mut StdRng::seed_from_u64(0));
        let order: Vec<_> = v.iter().map(|(i, _, _)| *i).collect();
        assert_eq!(order, vec![2, 1, 0]);
    }

    #[test]
    fn balanced_weighs_price_latency_load_and_errors() {
        let (a, b, c) = (t("a", 1), t("b", 1), t("c", 1));
        // a: cheapest but slow and busy; b: mid-priced, fast, idle; c: cheap, fast, erroring.
        let sa = priced(100, 2_000_000, 40, 0);
        let sb = priced(300, 200_000, 0, 0);
        let sc = priced(150, 200_000, 0, 60);
        let scores = balanced_scores(&[&sa, &sb, &sc]);
        // a: 35×0.333 + 30×1 + 15×1 + 0     = 56.7
        // b: 35×1     + 30×0.1 + 0 + 0      = 38
        // c: 35×0.5   + 30×0.1 + 0 + 20×0.6 = 32.5
        assert!(scores[2] < scores[1] && scores[1] < scores[0], "{scores:?}");
        let mut v = vec![(0, &a, sa), (1, &b, sb), (2, &c, sc)];
        Strategy::Balanced.order(&mut v, &mut StdRng::seed_from_u64(0));
        let order: Vec<_> = v.iter().map(|(i, _, _)| *i).collect();
        assert_eq!(order, vec![2, 1, 0]);
        // Equal targets keep the configured order.
        let same = priced(100, 1_000, 1, 1);
        let mut v = vec![(0, &a, same.clone()), (1, &b, same)];
        Strategy::Balanced.order(&mut v, &mut StdRng::seed_from_u64(0));
        assert_eq!(v[0].0, 0);
    }

    #[test]
    fn names_parse_to_their_strategies() {
        for (name, s) in [
            ("cost", Strategy::Cost),
            ("latency", Strategy::Latency),
            ("lowest-latency", Strategy::Latency),
            ("least-busy", Strategy::LeastBusy),
            ("weighted", Strategy::Weighted),
            ("balanced", Strategy::Balanced),
            ("priority", Strategy::Priority),
        ] {
            assert_eq!(Strategy::parse(name), Some(s), "{name}");
        }
        assert_eq!(Strategy::parse("fastest"), None);
        assert_eq!(Strategy::LowestLatency.as_str(), "latency");
    }
}

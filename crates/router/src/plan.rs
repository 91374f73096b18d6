//! The attempt plan: the ordered candidates for one request, across the route's targets and
//! then its fallback models, with unavailable targets moved behind available ones.

use rand::Rng;

use crate::route::{RouteTable, Target};
use crate::strategy::Strategy;

/// What the router knows of one target when it plans.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetView {
    /// The provider would likely admit a request now (breaker, pause, limits).
    pub available: bool,
    /// The provider can serve this kind of request at all (e.g. embeddings).
    pub supports: bool,
    /// Requests in flight on this node.
    pub in_flight: u64,
    /// Median total latency over the recent window, microseconds.
    pub latency_p50_us: u64,
    /// Samples behind that median.
    pub latency_samples: u64,
}

/// One planned attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The target.
    pub target: Target,
    /// The public model this candidate serves (differs from the request's for fallbacks).
    pub public_model: String,
    /// Whether the target looked available when planned.
    pub available: bool,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// No route for the model.
    #[error("model {0:?} does not exist")]
    UnknownModel(String),
    /// The route exists but no target can serve this kind of request.
    #[error("model {0:?} cannot serve this endpoint")]
    Unsupported(String),
}

/// Longest chain of fallback models followed, so a cycle in configuration cannot loop.
const MAX_FALLBACK_DEPTH: usize = 4;

/// Plans the attempts for `model`.
///
/// 1. Take the route's targets that can serve the request, ordered by `strategy` (the route's
///    own when `None`).
/// 2. Append the targets of each fallback model, each ordered by its own route's strategy,
///    skipping (provider, upstream model) pairs already planned.
/// 3. Move targets that look unavailable (breaker open, paused, at a limit) behind the available
///    ones, keeping relative order, so they are tried only when nothing else is left.
///
/// # Errors
/// [`PlanError`] when the model is unknown or nothing can serve the endpoint.
pub fn plan<R: Rng>(
    table: &RouteTable,
    model: &str,
    strategy: Option<Strategy>,
    view: &dyn Fn(&Target) -> TargetView,
    rng: &mut R,
) -> Result<Vec<Candidate>, PlanError> {
    let route = table
        .get(model)
        .ok_or_else(|| PlanError::UnknownModel(model.to_owned()))?;
    let mut out: Vec<Candidate> = Vec::with_capacity(route.targets.len());
    let mut chain = vec![route];
    let mut i = 0;
    while let Some(r) = chain.get(i).copied() {
        let mut views: Vec<(usize, &Target, TargetView)> = r
            .targets
            .iter()
            .enumerate()
            .map(|(k, t)| (k, t, view(t)))
            .filter(|(_, _, v)| v.supports)
            .collect();
        let s = if i == 0 {
            strategy.unwrap_or(r.strategy)
        } else {
            r.strategy
        };
        s.order(&mut views, rng);
        for (_, t, v) in views {
            if !out.iter().any(|c| {
                c.target.provider == t.provider && c.target.upstream_model == t.upstream_model
            }) {
                out.push(Candidate {
                    target: t.clone(),
                    public_model: r.model.clone(),
                    available: v.available,
                });
            }
        }
        if chain.len() <= MAX_FALLBACK_DEPTH {
            for f in &r.fallbacks {
                if let Some(fr) = table.get(f)
                    && !chain.iter().any(|c| c.model == fr.model)
                {
                    chain.push(fr);
                }
            }
        }
        i += 1;
    }
    if out.is_empty() {
        return Err(PlanError::Unsupported(model.to_owned()));
    }
    // Stable partition: available first.
    out.sort_by_key(|c| !c.available);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{RouteConfigToml, TargetToml};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn table() -> RouteTable {
        let t = |p: &str, m: &str| TargetToml {
            provider: p.into(),
            model: Some(m.into()),
            weight: None,
        };
        let raw = vec![
            RouteConfigToml {
                model: "small".into(),
                strategy: None,
                targets: vec![t("a", "s-a"), t("b", "s-b")],
                fallbacks: vec!["big".into()],
            },
            RouteConfigToml {
                model: "big".into(),
                strategy: None,
                targets: vec![t("c", "b-c"), t("a", "s-a")],
                fallbacks: vec!["small".into()],
            },
        ];
        let mut errors = vec![];
        let table = RouteTable::build(raw, &|_| true, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        table
    }

    fn all_up(_: &Target) -> TargetView {
        TargetView {
            available: true,
            supports: true,
            ..TargetView::default()
        }
    }

    #[test]
    fn plan_follows_priority_then_fallback_models_without_duplicates_or_cycles() {
        let mut rng = StdRng::seed_from_u64(0);
        let p = plan(&table(), "small", None, &all_up, &mut rng).unwrap();
        let names: Vec<_> = p
            .iter()
            .map(|c| {
                (
                    c.target.provider.as_str().to_owned(),
                    c.public_model.clone(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("a".into(), "small".into()),
                ("b".into(), "small".into()),
                ("c".into(), "big".into())
            ]
        );
    }

    #[test]
    fn unavailable_targets_go_last() {
        let mut rng = StdRng::seed_from_u64(0);
        let view = |t: &Target| TargetView {
            available: t.provider.as_str() != "a",
            supports: true,
            ..TargetView::default()
        };
        let p = plan(&table(), "small", None, &view, &mut rng).unwrap();
        assert_eq!(p[0].target.provider.as_str(), "b");
        assert_eq!(p.last().unwrap().target.provider.as_str(), "a");
        assert!(!p.last().unwrap().available);
    }

    #[test]
    fn unknown_and_unsupported_models_are_errors() {
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(
            plan(&table(), "nope", None, &all_up, &mut rng),
            Err(PlanError::UnknownModel("nope".into()))
        );
        let none = |_: &Target| TargetView::default();
        assert_eq!(
            plan(&table(), "small", None, &none, &mut rng),
            Err(PlanError::Unsupported("small".into()))
        );
    }

    #[test]
    fn route_validation_names_every_problem() {
        let raw = vec![RouteConfigToml {
            model: "m".into(),
            strategy: Some("fastest".into()),
            targets: vec![TargetToml {
                provider: "ghost".into(),
                model: None,
                weight: Some(0),
            }],
            fallbacks: vec!["missing".into()],
        }];
        let mut errors = vec![];
        RouteTable::build(raw, &|p| p != "ghost", &mut errors);
        let all = errors.join("\n");
        for needle in [
            "routes[0].strategy",
            "routes[0].targets[0].provider",
            "routes[0].targets[0].weight",
            "routes[0].fallbacks[0]",
        ] {
            assert!(all.contains(needle), "{needle} not in {all}");
        }
    }
}

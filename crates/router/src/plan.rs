//! The attempt plan: the ordered candidates for one request, across the route's targets and
//! then its fallback models. Constraints drop targets; unavailable and cluster-failing targets
//! move behind the rest; with non-strict regions, targets in the preferred regions go first.

use rand::Rng;

use crate::classify::{RequestFacts, Tier, classify};
use crate::constraint::{Constraints, Exclusions, blended_micros_per_mtok};
use crate::route::{Route, RouteTable, Target};
use crate::strategy::Strategy;
use crate::view::Health;

/// What this node alone knows of one target: the input of [`plan`]. [`TargetState`] adds the
/// cluster view, price and region for [`plan_with`].
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

/// Everything the router knows of one target when it plans: this node's gauges, the cluster
/// view's window, the catalog price and the provider's region. `Default` is an unknown target
/// that does not serve; [`crate::view::summary::ViewSummary::target_state`] builds one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetState {
    /// The provider would likely admit a request now (breaker, pause, limits).
    pub available: bool,
    /// The provider can serve this kind of request at all (e.g. embeddings).
    pub supports: bool,
    /// Requests in flight on this node.
    pub in_flight: u64,
    /// Median total latency over the window, microseconds.
    pub latency_p50_us: u64,
    /// Samples behind the latency figures (0: unmeasured).
    pub latency_samples: u64,
    /// Price from the catalog, micro-dollars per million tokens: (input, output).
    pub price_micros_per_mtok: Option<(u64, u64)>,
    /// The provider's region (empty: unknown, outside every region list).
    pub region: String,
    /// p95 total latency over the cluster window, microseconds (0: none).
    pub p95_us: u64,
    /// Provider failures per hundred outcomes over the cluster window.
    pub error_rate_pct: u32,
    /// The cluster's verdict.
    pub health: Health,
    /// Requests in flight at the provider summed over live nodes.
    pub cluster_in_flight: u64,
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
    /// The cluster's verdict when planned.
    pub health: Health,
}

/// Why [`plan`] could make no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// No route for the model.
    #[error("model {0:?} does not exist")]
    UnknownModel(String),
    /// The route exists but no target can serve this kind of request.
    #[error("model {0:?} cannot serve this endpoint")]
    Unsupported(String),
}

/// Why [`plan_with`] or [`plan_auto`] could make no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    /// No route for the model (for `auto`: no route has a tier).
    #[error("model {0:?} does not exist")]
    UnknownModel(String),
    /// The route exists but no target can serve this kind of request.
    #[error("model {0:?} cannot serve this endpoint")]
    Unsupported(String),
    /// Targets could serve, but none meets the constraints (strict residency, price or latency
    /// cap). Retrying cannot help; the caller's constraints or configuration must change.
    #[error("no target for model {model:?} meets the request's constraints: {why}")]
    NoAllowedTarget {
        /// The requested model.
        model: String,
        /// What was left out and under which constraints.
        why: Box<Exclusions>,
    },
}

/// Plan options: the strategy and the constraints of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Strategy for the requested route (its own when `None`; fallback routes use their own).
    pub strategy: Option<Strategy>,
    /// The request's constraints: they override the route's defaults field by field.
    pub constraints: Constraints,
    /// The key's policy: it tightens the result, and a request can never loosen it.
    pub policy: Constraints,
}

/// What [`plan_auto`] chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoPlan {
    /// The tier the request was classified into.
    pub tier: Tier,
    /// The public model of the chosen route, to name in the response.
    pub model: String,
    /// The attempts.
    pub candidates: Vec<Candidate>,
}

/// The public model name that asks for classification.
pub const AUTO_MODEL: &str = "auto";

/// Longest chain of fallback models followed, so a cycle in configuration cannot loop.
const MAX_FALLBACK_DEPTH: usize = 4;

// === impl TargetState ===

impl From<TargetView> for TargetState {
    fn from(v: TargetView) -> Self {
        Self {
            available: v.available,
            supports: v.supports,
            in_flight: v.in_flight,
            latency_p50_us: v.latency_p50_us,
            latency_samples: v.latency_samples,
            ..TargetState::default()
        }
    }
}

impl TargetState {
    /// Requests in flight: the larger of this node's count and the cluster's sum.
    pub fn load(&self) -> u64 {
        self.in_flight.max(self.cluster_in_flight)
    }

    /// The blended price ([`blended_micros_per_mtok`]), when the price is known.
    pub fn blended_price(&self) -> Option<u64> {
        self.price_micros_per_mtok
            .map(|(i, o)| blended_micros_per_mtok(i, o))
    }

    /// The latency strategies compare: p95 when the cluster view gives one, else the median.
    pub fn latency_us(&self) -> u64 {
        if self.p95_us > 0 {
            self.p95_us
        } else {
            self.latency_p50_us
        }
    }
}

// === impl errors ===

impl PlanError {
    /// Label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PlanError::UnknownModel(_) => "unknown_model",
            PlanError::Unsupported(_) => "unsupported",
        }
    }
}

impl RoutingError {
    /// Label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RoutingError::UnknownModel(_) => "unknown_model",
            RoutingError::Unsupported(_) => "unsupported",
            RoutingError::NoAllowedTarget { .. } => "no_allowed_target",
        }
    }
}

/// Plans the attempts for `model` with this node's view alone and no constraints: the same as
/// [`plan_with`] with default options but a `strategy`.
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
    let opts = PlanOptions {
        strategy,
        ..PlanOptions::default()
    };
    let state = |t: &Target| TargetState::from(view(t));
    plan_with(table, model, &opts, &state, rng).map_err(|e| match e {
        RoutingError::UnknownModel(m) => PlanError::UnknownModel(m),
        // Route defaults may carry constraints; a caller of the old form sees "cannot serve".
        RoutingError::Unsupported(m) | RoutingError::NoAllowedTarget { model: m, .. } => {
            PlanError::Unsupported(m)
        }
    })
}

/// Plans the attempts for `model`.
///
/// 1. Resolve the constraints: the route's defaults, overridden by `opts.constraints`,
///    tightened by `opts.policy`. They hold for the whole plan, fallbacks included.
/// 2. Take the route's targets that can serve the request and meet the constraints (strict
///    residency, price cap, latency cap), ordered by the strategy (`opts.strategy`, else the
///    route's own).
/// 3. Append the targets of each fallback model the same way, each ordered by its own route's
///    strategy, skipping (provider, upstream model) pairs already planned.
/// 4. Stable-partition, keeping relative order within each group: available before
///    unavailable (breaker open, paused, at a limit); then healthy or degraded before
///    cluster-failing; then, with non-strict regions, targets in the listed regions first.
///
/// # Errors
/// [`RoutingError::UnknownModel`] for an unknown model; [`RoutingError::Unsupported`] when no
/// target serves the endpoint; [`RoutingError::NoAllowedTarget`] when targets serve but the
/// constraints leave none (under strict residency this is never relaxed).
pub fn plan_with<R: Rng>(
    table: &RouteTable,
    model: &str,
    opts: &PlanOptions,
    view: &dyn Fn(&Target) -> TargetState,
    rng: &mut R,
) -> Result<Vec<Candidate>, RoutingError> {
    let route = table
        .get(model)
        .ok_or_else(|| RoutingError::UnknownModel(model.to_owned()))?;
    let constraints = route
        .constraints
        .overlay(&opts.constraints)
        .tighten(&opts.policy);
    let mut planned: Vec<(Candidate, bool)> = Vec::with_capacity(route.targets.len());
    let mut excluded: Vec<&Target> = Vec::new();
    let mut why = Exclusions {
        constraints,
        ..Exclusions::default()
    };
    let mut chain = vec![route];
    let mut i = 0;
    while let Some(r) = chain.get(i).copied() {
        let mut kept: Vec<(usize, &Target, TargetState)> = Vec::with_capacity(r.targets.len());
        let mut preferred: Vec<(usize, bool)> = Vec::with_capacity(r.targets.len());
        for (k, t) in r.targets.iter().enumerate() {
            let state = view(t);
            if !state.supports {
                continue;
            }
            match why.constraints.check(&state) {
                Ok(pref) => {
                    preferred.push((k, pref));
                    kept.push((k, t, state));
                }
                Err(e) => {
                    if !excluded.iter().any(|x| same_pair(x, t)) {
                        excluded.push(t);
                        why.count(e);
                    }
                }
            }
        }
        let s = if i == 0 {
            opts.strategy.unwrap_or(r.strategy)
        } else {
            r.strategy
        };
        s.order(&mut kept, rng);
        for (k, t, v) in kept {
            if !planned.iter().any(|(c, _)| same_pair(&c.target, t)) {
                let pref = preferred.iter().any(|(j, p)| *j == k && *p);
                planned.push((
                    Candidate {
                        target: t.clone(),
                        public_model: r.model.clone(),
                        available: v.available,
                        health: v.health,
                    },
                    pref,
                ));
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
    if planned.is_empty() {
        return Err(if excluded.is_empty() {
            RoutingError::Unsupported(model.to_owned())
        } else {
            RoutingError::NoAllowedTarget {
                model: model.to_owned(),
                why: Box::new(why),
            }
        });
    }
    planned.sort_by_key(|(c, pref)| (!c.available, c.health == Health::Failing, !*pref));
    Ok(planned.into_iter().map(|(c, _)| c).collect())
}

/// Plans a `model: "auto"` request. A route literally named `auto` is an ordinary route; the
/// caller plans it with [`plan_with`] instead.
///
/// 1. Classify the request into a tier ([`classify`]).
/// 2. Take the routes with a tier at least that high. If there are none, take the routes of the
///    highest tier configured: a heuristic classification should not fail a request that a
///    smaller model can attempt.
/// 3. Rank them by the blended price of each route's first target as the view reports it
///    (unknown price last), then by tier (lower first), then configuration order.
/// 4. Return the plan ([`plan_with`]) of the first route that yields one; its candidates name
///    that route's model, as does [`AutoPlan::model`].
///
/// # Errors
/// [`RoutingError::UnknownModel`] for `auto` when no route has a tier; otherwise the error of
/// the cheapest route, preferring a [`RoutingError::NoAllowedTarget`] when any route had one.
pub fn plan_auto<R: Rng>(
    table: &RouteTable,
    facts: &RequestFacts,
    opts: &PlanOptions,
    view: &dyn Fn(&Target) -> TargetState,
    rng: &mut R,
) -> Result<AutoPlan, RoutingError> {
    let tier = classify(facts);
    let tiered: Vec<(Tier, &Route)> = table
        .iter()
        .filter_map(|r| r.tier.map(|t| (t, r)))
        .collect();
    let Some(highest) = tiered.iter().map(|(t, _)| *t).max() else {
        return Err(RoutingError::UnknownModel(AUTO_MODEL.to_owned()));
    };
    let floor = tier.min(highest);
    let mut ranked: Vec<(bool, u64, Tier, usize, &Route)> = tiered
        .iter()
        .enumerate()
        .filter(|(_, (t, _))| *t >= floor)
        .map(|(order, (t, r))| {
            let price = r.targets.first().and_then(|f| view(f).blended_price());
            (price.is_none(), price.unwrap_or(u64::MAX), *t, order, *r)
        })
        .collect();
    ranked.sort_by_key(|(unknown, price, t, order, _)| (*unknown, *price, *t, *order));
    let mut first_err: Option<RoutingError> = None;
    for (_, _, _, _, r) in ranked {
        match plan_with(table, &r.model, opts, view, rng) {
            Ok(candidates) => {
                return Ok(AutoPlan {
                    tier,
                    model: r.model.clone(),
                    candidates,
                });
            }
            Err(e) => {
                let replace = match (&first_err, &e) {
                    (None, _) => true,
                    (Some(RoutingError::NoAllowedTarget { .. }), _) => false,
                    (Some(_), RoutingError::NoAllowedTarget { .. }) => true,
                    (Some(_), _) => false,
                };
                if replace {
                    first_err = Some(e);
                }
            }
        }
    }
    Err(first_err.unwrap_or_else(|| RoutingError::UnknownModel(AUTO_MODEL.to_owned())))
}

fn same_pair(a: &Target, b: &Target) -> bool {
    a.provider == b.provider && a.upstream_model == b.upstream_model
}

#[cfg(test)]
mod tests;

//! Routes: a public model name (alias) maps to ordered, weighted (provider, upstream model)
//! targets, a default strategy, and fallback models tried when every target of the route fails.
//! A route may also have a tier (so `model: "auto"` can choose it) and default constraints;
//! those are set after [`RouteTable::build`] by whoever holds the route's replicated spec
//! ([`RouteTable::set_tier`], [`RouteTable::set_constraints`]), so the raw section keeps its
//! shape.

use std::collections::HashMap;

use switchyard_core::ProviderName;

use crate::classify::Tier;
use crate::constraint::Constraints;
use crate::strategy::Strategy;

/// The raw `[[routes]]` section.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfigToml {
    /// Public model name clients ask for.
    pub model: String,
    /// `priority` (default), `weighted`, `least-busy`, `latency` (or `lowest-latency`), `cost`
    /// or `balanced`.
    pub strategy: Option<String>,
    /// Targets in priority order.
    pub targets: Vec<TargetToml>,
    /// Other public models to try, in order, when every target here fails.
    pub fallbacks: Vec<String>,
    /// Tier for `model: "auto"` (`small`, `medium`, `large`); untiered routes are never picked
    /// by `auto`.
    pub tier: Option<String>,
    /// Default constraints (`max_price_micros_per_mtok`, `max_p95_ms`, `regions`,
    /// `strict_residency`); a request overrides them field by field.
    pub constraints: Constraints,
}

/// The raw form of one target.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetToml {
    /// Provider name.
    pub provider: String,
    /// Model name at that provider (defaults to the public name).
    pub model: Option<String>,
    /// Relative weight for the weighted strategy (default 1).
    pub weight: Option<u32>,
}

/// One place a route can send a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The provider.
    pub provider: ProviderName,
    /// The model name the provider knows.
    pub upstream_model: String,
    /// Relative weight.
    pub weight: u32,
}

/// A validated route.
#[derive(Clone, Debug)]
pub struct Route {
    /// Public model name.
    pub model: String,
    /// Default strategy.
    pub strategy: Strategy,
    /// Targets in configured order.
    pub targets: Vec<Target>,
    /// Fallback public models.
    pub fallbacks: Vec<String>,
    /// The tier this route serves for `model: "auto"`; `None` keeps it out of `auto`.
    pub tier: Option<Tier>,
    /// Default constraints; a request overrides them field by field.
    pub constraints: Constraints,
}

/// All routes by public model name.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: HashMap<String, Route>,
    /// Public names in configuration order, for listing.
    order: Vec<String>,
}

impl RouteTable {
    /// Validates the raw routes against the known provider names, appending each problem with
    /// its TOML path to `errors`.
    pub fn build(
        raw: Vec<RouteConfigToml>,
        provider_exists: &dyn Fn(&str) -> bool,
        errors: &mut Vec<String>,
    ) -> Self {
        let mut table = RouteTable::default();
        for (i, r) in raw.iter().enumerate() {
            let path = format!("routes[{i}]");
            if r.model.is_empty() {
                errors.push(format!("{path}.model: must not be empty"));
                continue;
            }
            if table.routes.contains_key(&r.model) {
                errors.push(format!("{path}.model: duplicate route for {:?}", r.model));
                continue;
            }
            let strategy = match r.strategy.as_deref() {
                None => Strategy::default(),
                Some(s) => Strategy::parse(s).unwrap_or_else(|| {
                    errors.push(format!(
                        "{path}.strategy: unknown strategy {s:?} (expected {})",
                        Strategy::NAMES
                    ));
                    Strategy::default()
                }),
            };
            if r.targets.is_empty() {
                errors.push(format!("{path}.targets: a route needs at least one target"));
            }
            let mut targets = Vec::new();
            for (j, t) in r.targets.iter().enumerate() {
                if !provider_exists(&t.provider) {
                    errors.push(format!(
                        "{path}.targets[{j}].provider: no provider named {:?}",
                        t.provider
                    ));
                }
                if t.weight == Some(0) {
                    errors.push(format!(
                        "{path}.targets[{j}].weight: must be greater than 0"
                    ));
                }
                targets.push(Target {
                    provider: ProviderName::new(&t.provider),
                    upstream_model: t.model.clone().unwrap_or_else(|| r.model.clone()),
                    weight: t.weight.unwrap_or(1),
                });
            }
            let tier = match r.tier.as_deref() {
                None => None,
                Some(t) => match crate::classify::Tier::parse(t) {
                    Some(t) => Some(t),
                    None => {
                        errors.push(format!(
                            "{path}.tier: unknown tier {t:?} (expected small, medium or large)"
                        ));
                        None
                    }
                },
            };
            table.order.push(r.model.clone());
            table.routes.insert(
                r.model.clone(),
                Route {
                    model: r.model.clone(),
                    strategy,
                    targets,
                    fallbacks: r.fallbacks.clone(),
                    tier,
                    constraints: r.constraints.clone(),
                },
            );
        }
        for (i, r) in raw.iter().enumerate() {
            for (j, f) in r.fallbacks.iter().enumerate() {
                if !table.routes.contains_key(f) {
                    errors.push(format!("routes[{i}].fallbacks[{j}]: no route named {f:?}"));
                }
            }
        }
        table
    }

    /// The route for a public model name.
    pub fn get(&self, model: &str) -> Option<&Route> {
        self.routes.get(model)
    }

    /// Sets the tier `model`'s route serves for `model: "auto"` (`None`: not part of `auto`).
    /// Returns false when there is no such route.
    pub fn set_tier(&mut self, model: &str, tier: Option<Tier>) -> bool {
        self.routes.get_mut(model).map(|r| r.tier = tier).is_some()
    }

    /// Sets the default constraints of `model`'s route. Returns false when there is no such
    /// route.
    pub fn set_constraints(&mut self, model: &str, constraints: Constraints) -> bool {
        self.routes
            .get_mut(model)
            .map(|r| r.constraints = constraints)
            .is_some()
    }

    /// Every route in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.order.iter().filter_map(|m| self.routes.get(m))
    }
}

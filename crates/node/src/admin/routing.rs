//! Admin calls for providers and routes. Provider keys arrive in the clear over the admin
//! channel (TLS in production), are sealed here with the master key before they are proposed,
//! and are never returned: listings show only whether a key is set and which master key version
//! sealed it.

use switchyard_control::{ProviderSpec, RouteSpec, RoutingLimits};
use switchyard_core::Secret;
use switchyard_proto::pb;
use tonic::Status;

use crate::node::App;

/// Provider kinds the gateway speaks.
const KINDS: [&str; 3] = ["openai", "azure", "anthropic"];

/// The operator's view of a provider (no secret).
pub fn provider_info(p: &ProviderSpec) -> pb::ProviderInfo {
    pb::ProviderInfo {
        name: p.name.clone(),
        kind: p.kind.clone(),
        base_url: p.base_url.clone(),
        has_api_key: p.api_key.is_some(),
        key_version: p.api_key.as_ref().map(|k| k.key_version).unwrap_or(0),
        api_version: p.api_version.clone().unwrap_or_default(),
        internal: p.internal,
        region: p.region.clone().unwrap_or_default(),
        rpm: p.rpm,
        tpm: p.tpm,
        max_in_flight: p.max_in_flight,
        prices: p
            .prices
            .iter()
            .map(|(m, (i, o))| pb::ModelPrice {
                model: m.clone(),
                input_micros_per_mtok: *i,
                output_micros_per_mtok: *o,
            })
            .collect(),
        tuning: p.tuning.clone().into_iter().collect(),
    }
}

/// A route as shown.
pub fn route_info(r: &RouteSpec) -> pb::RouteInfo {
    pb::RouteInfo {
        model: r.model.clone(),
        strategy: r.strategy.clone().unwrap_or_default(),
        targets: r
            .targets
            .iter()
            .map(|(p, m, w)| pb::RouteTarget {
                provider: p.clone(),
                model: m.clone(),
                weight: *w,
            })
            .collect(),
        fallbacks: r.fallbacks.clone(),
        tier: r.tier.clone().unwrap_or_default(),
        limits: Some(limits_info(&r.limits)),
    }
}

/// Routing limits as shown and sent (0 = no cap).
pub fn limits_info(l: &RoutingLimits) -> pb::RoutingLimits {
    pb::RoutingLimits {
        max_price_micros_per_mtok: l.max_price_micros_per_mtok.unwrap_or(0),
        max_p95_ms: l.max_p95_ms.unwrap_or(0),
        regions: l.regions.clone(),
        strict_residency: l.strict_residency,
    }
}

/// Validates routing limits from an admin call (absent: none).
///
/// # Errors
/// `InvalidArgument` for an empty region name, or strict residency without regions (it would
/// allow nothing).
pub fn routing_limits(l: Option<pb::RoutingLimits>) -> Result<RoutingLimits, Status> {
    let Some(l) = l else {
        return Ok(RoutingLimits::default());
    };
    let regions: Vec<String> = l.regions.iter().map(|r| r.trim().to_owned()).collect();
    if regions.iter().any(String::is_empty) {
        return Err(Status::invalid_argument(
            "limits.regions must not contain empty names",
        ));
    }
    if l.strict_residency && regions.is_empty() {
        return Err(Status::invalid_argument(
            "limits.strict_residency needs at least one region (it would allow no provider)",
        ));
    }
    Ok(RoutingLimits {
        max_price_micros_per_mtok: (l.max_price_micros_per_mtok > 0)
            .then_some(l.max_price_micros_per_mtok),
        max_p95_ms: (l.max_p95_ms > 0).then_some(l.max_p95_ms),
        regions,
        strict_residency: l.strict_residency,
    })
}

/// Checks a strategy name from an admin call (empty: none).
///
/// # Errors
/// `InvalidArgument` for a name the router does not know.
pub fn strategy_name(s: &str) -> Result<Option<String>, Status> {
    if s.is_empty() {
        return Ok(None);
    }
    if switchyard_router::Strategy::parse(s).is_none() {
        return Err(Status::invalid_argument(format!(
            "unknown strategy {s:?} (expected priority, weighted, least-busy, latency, cost or balanced)"
        )));
    }
    Ok(Some(s.to_owned()))
}

/// Validates a put request and builds the spec to propose, sealing a new key or keeping the
/// current one. Validation goes through the same rules as the configuration file, so a
/// provider accepted here can be built on every node that has the master key.
///
/// # Errors
/// `InvalidArgument` naming every problem; `FailedPrecondition` when a key must be sealed and
/// this node has no master key.
pub fn provider_spec(
    app: &App,
    req: pb::PutProviderRequest,
    current: Option<&ProviderSpec>,
) -> Result<ProviderSpec, Status> {
    let p = req
        .provider
        .ok_or_else(|| Status::invalid_argument("provider is required"))?;
    if !KINDS.contains(&p.kind.as_str()) {
        return Err(Status::invalid_argument(format!(
            "kind {:?} is not one of openai, azure, anthropic",
            p.kind
        )));
    }
    let api_key = if req.clear_api_key {
        None
    } else if !req.api_key.is_empty() {
        Some(
            app.keyring
                .seal(&p.name, &Secret::new(req.api_key))
                .map_err(|e| Status::failed_precondition(e.to_string()))?,
        )
    } else {
        current.and_then(|c| c.api_key.clone())
    };
    let spec = ProviderSpec {
        name: p.name,
        kind: p.kind,
        base_url: p.base_url,
        api_key,
        api_version: (!p.api_version.is_empty()).then_some(p.api_version),
        internal: p.internal,
        region: (!p.region.is_empty()).then_some(p.region),
        rpm: p.rpm,
        tpm: p.tpm,
        max_in_flight: p.max_in_flight,
        prices: p
            .prices
            .into_iter()
            .map(|m| (m.model, (m.input_micros_per_mtok, m.output_micros_per_mtok)))
            .collect(),
        tuning: p.tuning.into_iter().collect(),
    };
    if let Some(unknown) = spec
        .tuning
        .keys()
        .find(|k| !crate::routing::TUNING_FIELDS.contains(&k.as_str()))
    {
        return Err(Status::invalid_argument(format!(
            "unknown tuning field {unknown:?}"
        )));
    }
    let mut errors = Vec::new();
    let toml = crate::routing::toml_from_spec(&spec, &app.keyring)
        .map_err(|e| Status::failed_precondition(e.to_string()))?;
    if toml.validate("provider", &|_| None, &mut errors).is_none() {
        return Err(Status::invalid_argument(errors.join("; ")));
    }
    Ok(spec)
}

/// Validates a route and builds its spec (targets' providers are checked when it is applied).
///
/// # Errors
/// `InvalidArgument` for an empty model, no targets, a target without provider or an unknown
/// strategy.
pub fn route_spec(r: pb::RouteInfo) -> Result<RouteSpec, Status> {
    if r.model.trim().is_empty() {
        return Err(Status::invalid_argument("model is required"));
    }
    if r.targets.is_empty() {
        return Err(Status::invalid_argument(
            "a route needs at least one target",
        ));
    }
    if !r.tier.is_empty() && switchyard_router::Tier::parse(&r.tier).is_none() {
        return Err(Status::invalid_argument(format!(
            "unknown tier {:?} (expected small, medium or large)",
            r.tier
        )));
    }
    let strategy = strategy_name(&r.strategy)?;
    let limits = routing_limits(r.limits)?;
    let mut targets = Vec::new();
    for t in r.targets {
        if t.provider.is_empty() {
            return Err(Status::invalid_argument("every target needs a provider"));
        }
        let model = if t.model.is_empty() {
            r.model.clone()
        } else {
            t.model
        };
        targets.push((t.provider, model, t.weight.max(1)));
    }
    Ok(RouteSpec {
        model: r.model,
        strategy,
        targets,
        fallbacks: r.fallbacks,
        tier: (!r.tier.is_empty()).then_some(r.tier),
        limits,
    })
}

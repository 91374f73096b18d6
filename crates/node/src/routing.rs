//! The node's routing set: providers (with their actors), routes and per-pair accounting, built
//! from the replicated state. The configuration file seeds providers and routes at the
//! cluster's first bootstrap only; afterwards the replicated state is the truth, and every node
//! rebuilds its routing set when `routing_version` changes (checked every
//! [`WATCH_EVERY`]). Requests hold the set they started with (`Arc`), so a swap never
//! disturbs a request in flight.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_control::sealing::{Keyring, SealError};
use switchyard_control::{Op, ProviderSpec, RouteSpec, RoutingLimits};
use switchyard_core::clock::SharedClock;
use switchyard_core::{PricingCatalog, TcpTransport};
use switchyard_provider::config::ModelPriceToml;
use switchyard_provider::{ProviderConfigToml, ProviderSet};
use switchyard_router::route::TargetToml;
use switchyard_router::{Constraints, RouteConfigToml, RouteTable};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounting::Accounting;
use crate::node::App;

/// How often a node checks for provider or route changes: well inside the 1 s propagation goal.
pub const WATCH_EVERY: Duration = Duration::from_millis(100);

/// Providers, routes and accounting of one version of the replicated configuration.
pub struct Routing {
    /// The replicated `routing_version` this set was built from.
    pub version: u64,
    /// Providers and their actors.
    pub providers: ProviderSet<TcpTransport>,
    /// Routes by public model.
    pub routes: RouteTable,
    /// Price and counters per (provider, model).
    pub accounting: Accounting,
}

/// The optional tuning fields of a provider, by name, as carried in [`ProviderSpec::tuning`].
pub const TUNING_FIELDS: [&str; 6] = [
    "connect_timeout_ms",
    "first_byte_timeout_ms",
    "total_timeout_ms",
    "failure_threshold",
    "open_ms",
    "half_open_probes",
];

/// The replicated form of a configured provider; its key (from `api_key_env`) is sealed.
///
/// # Errors
/// [`SealError`] when the provider has a key and no master key is configured.
pub fn spec_from_toml(
    p: &ProviderConfigToml,
    keyring: &Keyring,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ProviderSpec, SealError> {
    let api_key = match p.api_key_env.as_deref().and_then(env) {
        Some(k) => Some(keyring.seal(&p.name, &switchyard_core::Secret::new(k))?),
        None => None,
    };
    let mut tuning = BTreeMap::new();
    let values = [
        p.connect_timeout_ms,
        p.first_byte_timeout_ms,
        p.total_timeout_ms,
        p.failure_threshold.map(u64::from),
        p.open_ms,
        p.half_open_probes.map(u64::from),
    ];
    for (field, v) in TUNING_FIELDS.iter().zip(values) {
        if let Some(v) = v {
            tuning.insert((*field).to_owned(), v);
        }
    }
    Ok(ProviderSpec {
        name: p.name.clone(),
        kind: p.kind.clone(),
        base_url: p.base_url.clone(),
        api_key,
        api_version: p.api_version.clone(),
        internal: p.internal,
        region: p.region.clone(),
        rpm: p.rpm,
        tpm: p.tpm,
        max_in_flight: p.max_in_flight,
        prices: p
            .models
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    (m.input_micros_per_mtok, m.output_micros_per_mtok),
                )
            })
            .collect(),
        tuning,
    })
}

/// The replicated form of a configured route.
pub fn route_spec_from_toml(r: &RouteConfigToml) -> RouteSpec {
    RouteSpec {
        model: r.model.clone(),
        strategy: r.strategy.clone(),
        targets: r
            .targets
            .iter()
            .map(|t| {
                (
                    t.provider.clone(),
                    t.model.clone().unwrap_or_else(|| r.model.clone()),
                    t.weight.unwrap_or(1),
                )
            })
            .collect(),
        fallbacks: r.fallbacks.clone(),
        tier: r.tier.clone(),
        limits: limits_of(&r.constraints),
    }
}

/// Replicated routing limits from the router's constraints.
pub fn limits_of(c: &Constraints) -> RoutingLimits {
    RoutingLimits {
        max_price_micros_per_mtok: c.max_price_micros_per_mtok,
        max_p95_ms: c.max_p95_ms,
        regions: c.regions.clone(),
        strict_residency: c.strict_residency,
    }
}

/// The router's constraints from replicated routing limits.
pub fn constraints_of(l: &RoutingLimits) -> Constraints {
    Constraints {
        max_price_micros_per_mtok: l.max_price_micros_per_mtok,
        max_p95_ms: l.max_p95_ms,
        regions: l.regions.clone(),
        strict_residency: l.strict_residency,
    }
}

/// The configuration section a replicated provider stands for, with its key unsealed.
///
/// # Errors
/// [`SealError`] when the key cannot be opened here.
pub fn toml_from_spec(
    s: &ProviderSpec,
    keyring: &Keyring,
) -> Result<ProviderConfigToml, SealError> {
    let api_key_value = match &s.api_key {
        Some(sealed) => Some(keyring.open(&s.name, sealed)?),
        None => None,
    };
    let tuning = |f: &str| s.tuning.get(f).copied();
    let small = |f: &str| tuning(f).and_then(|v| u32::try_from(v).ok());
    Ok(ProviderConfigToml {
        name: s.name.clone(),
        kind: s.kind.clone(),
        base_url: s.base_url.clone(),
        api_key_env: None,
        api_version: s.api_version.clone(),
        internal: s.internal,
        region: s.region.clone(),
        rpm: s.rpm,
        tpm: s.tpm,
        max_in_flight: s.max_in_flight,
        connect_timeout_ms: tuning("connect_timeout_ms"),
        first_byte_timeout_ms: tuning("first_byte_timeout_ms"),
        total_timeout_ms: tuning("total_timeout_ms"),
        failure_threshold: small("failure_threshold"),
        open_ms: tuning("open_ms"),
        half_open_probes: small("half_open_probes"),
        models: s
            .prices
            .iter()
            .map(|(m, (i, o))| ModelPriceToml {
                name: m.clone(),
                input_micros_per_mtok: *i,
                output_micros_per_mtok: *o,
            })
            .collect(),
        api_key_value,
    })
}

fn route_toml(r: &RouteSpec) -> RouteConfigToml {
    RouteConfigToml {
        model: r.model.clone(),
        strategy: r.strategy.clone(),
        targets: r
            .targets
            .iter()
            .map(|(p, m, w)| TargetToml {
                provider: p.clone(),
                model: Some(m.clone()),
                weight: Some(*w),
            })
            .collect(),
        fallbacks: r.fallbacks.clone(),
        tier: r.tier.clone(),
        constraints: constraints_of(&r.limits),
    }
}

/// What building needs besides the specs.
pub struct BuildParts<'a> {
    /// Opens sealed keys.
    pub keyring: &'a Keyring,
    /// Prices for models without an override.
    pub catalog: &'a PricingCatalog,
    /// The transport seam.
    pub transport: TcpTransport,
    /// The clock seam.
    pub clock: SharedClock,
    /// Where provider actors' tasks run.
    pub tracker: TaskTracker,
    /// The set being replaced, whose unchanged providers keep their gates (`None` at start).
    pub previous: Option<Arc<Routing>>,
    /// How many nodes share each provider's RPM/TPM until the stats exchange computes shares
    /// from demand (at least 1): each new gate starts with an even split, so nodes that start
    /// together cannot each take the whole limit before their first exchange.
    pub nodes: u64,
}

/// Builds a routing set from replicated specs. A provider that cannot be built (bad spec, a key
/// this node cannot open) is left out with an error in the log, and routes simply lose that
/// target; the rest of the set works.
///
/// # Errors
/// When the providers' actors cannot start.
pub async fn build(
    version: u64,
    providers: &BTreeMap<String, ProviderSpec>,
    routes: &BTreeMap<String, RouteSpec>,
    parts: BuildParts<'_>,
) -> std::io::Result<Routing> {
    let mut configs = Vec::new();
    for spec in providers.values() {
        let mut errors = Vec::new();
        let built = toml_from_spec(spec, parts.keyring)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                t.validate(&format!("providers.{}", spec.name), &|_| None, &mut errors)
                    .ok_or_else(|| errors.join("; "))
            });
        match built {
            Ok(c) => configs.push(c),
            Err(e) => {
                tracing::error!(provider = %spec.name, error = %e, "replicated provider left out of routing")
            }
        }
    }
    let known: std::collections::HashSet<String> =
        configs.iter().map(|c| c.name.to_string()).collect();
    let mut errors = Vec::new();
    let table = RouteTable::build(
        routes.values().map(route_toml).collect(),
        &|p| known.contains(p),
        &mut errors,
    );
    for e in errors {
        tracing::warn!(error = %e, "replicated route problem");
    }
    let accounting = Accounting::build(&table, &configs, parts.catalog);
    let previous = parts.previous.as_ref().map(|r| &r.providers);
    let providers = ProviderSet::start(
        configs,
        previous,
        parts.transport,
        parts.clock,
        parts.tracker,
    )
    .await?;
    let nodes = parts.nodes.max(1);
    for p in providers.iter() {
        // A gate carried over from the previous set keeps its share; a new one starts even.
        let carried = previous
            .and_then(|old| old.get(p.name()))
            .is_some_and(|old| Arc::ptr_eq(&old.gate, &p.gate));
        if !carried {
            let (rpm, tpm) = p.gate.limits();
            p.gate.set_share(rpm / nodes, tpm / nodes);
        }
    }
    Ok(Routing {
        version,
        providers,
        routes: table,
        accounting,
    })
}

/// The seed operations for providers and routes from configuration (first bootstrap only).
///
/// # Errors
/// When a provider key must be sealed and no master key is configured.
pub fn seed_ops(
    providers: &[ProviderConfigToml],
    routes: &[RouteConfigToml],
    keyring: &Keyring,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Op>, SealError> {
    let mut ops = Vec::new();
    for p in providers {
        ops.push(Op::PutProvider(spec_from_toml(p, keyring, env)?));
    }
    ops.extend(routes.iter().map(|r| Op::PutRoute(route_spec_from_toml(r))));
    Ok(ops)
}

/// Rebuilds the node's routing set whenever the replicated `routing_version` moves, until
/// `cancel`. The replaced set's actors are stopped once it is swapped out.
pub async fn watch(app: Arc<App>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (version, providers, routes) = {
            let s = match app.control.state().read() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            if s.routing_version == app.routing().version {
                continue;
            }
            (s.routing_version, s.providers.clone(), s.routes.clone())
        };
        match app.rebuild_routing(version, &providers, &routes).await {
            Ok(old) => {
                tracing::info!(
                    version,
                    providers = providers.len(),
                    routes = routes.len(),
                    "routing rebuilt from the replicated state"
                );
                old.providers.shutdown().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "routing could not be rebuilt; keeping the previous one")
            }
        }
    }
}

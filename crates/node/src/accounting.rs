//! Per-(provider, upstream model) price and counters, built once at start from the routes, so
//! the request path finds both with two hash lookups and no allocation, and counts with atomics.
//! `/metrics` renders these counters.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use switchyard_core::{Micros, Price, PricingCatalog, ProviderName};
use switchyard_provider::ProviderConfig;
use switchyard_router::RouteTable;
use switchyard_wire::Usage;

/// One (provider, upstream model) pair.
#[derive(Debug, Default)]
pub struct TargetAccount {
    /// What the pair costs; `None` when neither the provider nor the catalog prices the model
    /// (cost is then reported as 0 and a warning is logged at start).
    pub price: Option<Price>,
    /// Successful requests.
    pub ok: AtomicU64,
    /// Failed attempts.
    pub failed: AtomicU64,
    /// Prompt tokens.
    pub prompt_tokens: AtomicU64,
    /// Completion tokens.
    pub completion_tokens: AtomicU64,
    /// Cost in micro-dollars.
    pub cost_micros: AtomicU64,
}

impl TargetAccount {
    /// The cost of `usage` at this pair's price.
    pub fn cost(&self, usage: Usage) -> Micros {
        self.price
            .map(|p| p.cost(usage.prompt_tokens, usage.completion_tokens))
            .unwrap_or_default()
    }

    /// Counts a served request.
    pub fn record_ok(&self, usage: Usage, cost: Micros) {
        self.ok.fetch_add(1, Ordering::Relaxed);
        self.prompt_tokens
            .fetch_add(usage.prompt_tokens, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(usage.completion_tokens, Ordering::Relaxed);
        self.cost_micros.fetch_add(cost.0, Ordering::Relaxed);
    }

    /// Counts a failed attempt (with what it cost, e.g. a cut stream's partial output).
    pub fn record_failed(&self, usage: Usage, cost: Micros) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.prompt_tokens
            .fetch_add(usage.prompt_tokens, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(usage.completion_tokens, Ordering::Relaxed);
        self.cost_micros.fetch_add(cost.0, Ordering::Relaxed);
    }
}

/// All pairs.
#[derive(Debug, Default)]
pub struct Accounting {
    pairs: HashMap<ProviderName, HashMap<String, Arc<TargetAccount>>>,
}

impl Accounting {
    /// Builds one account per (provider, upstream model) named by a route. Prices come from the
    /// provider's overrides first, then the catalog.
    pub fn build(
        routes: &RouteTable,
        providers: &[ProviderConfig],
        catalog: &PricingCatalog,
    ) -> Self {
        let mut pairs: HashMap<ProviderName, HashMap<String, Arc<TargetAccount>>> = HashMap::new();
        for route in routes.iter() {
            for t in &route.targets {
                let override_price = providers
                    .iter()
                    .find(|p| p.name == t.provider)
                    .and_then(|p| p.prices.get(&t.upstream_model).copied());
                let price = override_price.or_else(|| catalog.lookup(&t.upstream_model));
                if price.is_none() {
                    tracing::warn!(provider = %t.provider, model = %t.upstream_model, "no price for model; its cost is reported as 0");
                }
                pairs
                    .entry(t.provider.clone())
                    .or_default()
                    .entry(t.upstream_model.clone())
                    .or_insert_with(|| {
                        Arc::new(TargetAccount {
                            price,
                            ..TargetAccount::default()
                        })
                    });
            }
        }
        Self { pairs }
    }

    /// The account of a pair (always present for pairs named by a route).
    pub fn get(&self, provider: &ProviderName, model: &str) -> Option<&Arc<TargetAccount>> {
        self.pairs.get(provider).and_then(|m| m.get(model))
    }

    /// Every pair, for rendering.
    pub fn iter(&self) -> impl Iterator<Item = (&ProviderName, &str, &TargetAccount)> {
        self.pairs.iter().flat_map(|(p, m)| {
            m.iter()
                .map(move |(model, a)| (p, model.as_str(), a.as_ref()))
        })
    }
}

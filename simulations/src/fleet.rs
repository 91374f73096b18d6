//! The fleet under study: five mock providers with list-price-like prices and different
//! latencies, and three tiered routes over them. Each pass starts a fresh 3-node cluster over a
//! fresh fleet, so no breaker, latency window or retry budget carries over between strategies.

use serde_json::{Value, json};
use switchyard_testkit::{MockSpec, TestCluster};

use crate::workload::Tier;

/// Nodes in the cluster; requests are spread over all of them.
pub const NODES: usize = 3;

/// The premium model (`gpt-4o`-like).
pub const PREMIUM: &str = "gpt-4o";
/// The mid model (`gpt-4o-mini`-like).
pub const MID: &str = "gpt-4o-mini";
/// The small model (`llama-3.1-8b`-like).
pub const SMALL: &str = "llama-3.1-8b";

/// One mock provider: its name, its models with their prices (micro-dollars per million
/// input and output tokens), and its timing.
pub struct Provider {
    /// Provider (and mock) name.
    pub name: &'static str,
    /// `(model, input µ$/Mtok, output µ$/Mtok)`.
    pub models: &'static [(&'static str, u64, u64)],
    /// Time to first token, ms.
    pub ttft_ms: u64,
    /// Time per output token, ms (answers are at most 16 tokens).
    pub per_token_ms: u64,
    /// What the provider stands for, for the report.
    pub note: &'static str,
}

/// The fleet. Prices are list prices of the models these stand for (2024–25), in µ$ per million
/// tokens; the Azure-like provider charges the 10% regional markup. Latencies are scaled down
/// (tens of ms instead of seconds) so a pass takes seconds, but keep their order: the small
/// model on fast hardware answers first, the premium model last.
pub const PROVIDERS: &[Provider] = &[
    Provider {
        name: "openai",
        models: &[(PREMIUM, 2_500_000, 10_000_000), (MID, 150_000, 600_000)],
        ttft_ms: 30,
        per_token_ms: 2,
        note: "first-party premium and mid models",
    },
    Provider {
        name: "azure",
        models: &[(PREMIUM, 2_750_000, 11_000_000), (MID, 165_000, 660_000)],
        ttft_ms: 20,
        per_token_ms: 2,
        note: "the same models, 10% dearer, a little faster",
    },
    Provider {
        name: "groq",
        models: &[(SMALL, 50_000, 80_000)],
        ttft_ms: 5,
        per_token_ms: 0,
        note: "small model on fast hardware",
    },
    Provider {
        name: "deepinfra",
        models: &[(SMALL, 30_000, 50_000)],
        ttft_ms: 35,
        per_token_ms: 1,
        note: "small model, cheapest and slowest",
    },
    Provider {
        name: "together",
        models: &[(SMALL, 180_000, 180_000)],
        ttft_ms: 12,
        per_token_ms: 1,
        note: "small model, dearest",
    },
];

/// A route of the fleet: public model, tier, targets in configured order, fallback models.
pub struct RouteDef {
    /// Public model name (also the upstream name at every target).
    pub model: &'static str,
    /// Tier for `model: "auto"`.
    pub tier: Tier,
    /// Providers in configured (priority) order.
    pub targets: &'static [&'static str],
    /// Fallback models, tried when every target fails.
    pub fallbacks: &'static [&'static str],
}

/// The routes. Every route has at least two providers, and a fallback model on other
/// hardware or a higher tier, so one provider's outage is survivable.
pub const ROUTES: &[RouteDef] = &[
    RouteDef {
        model: PREMIUM,
        tier: Tier::Large,
        targets: &["openai", "azure"],
        fallbacks: &[MID],
    },
    RouteDef {
        model: MID,
        tier: Tier::Medium,
        targets: &["openai", "azure"],
        fallbacks: &[PREMIUM],
    },
    RouteDef {
        model: SMALL,
        tier: Tier::Small,
        targets: &["groq", "deepinfra", "together"],
        fallbacks: &[MID],
    },
];

/// The provider that goes down during the outage episode: it serves both the premium and the
/// mid model, so every strategy that prefers it must fail over.
pub const OUTAGE_PROVIDER: &str = "openai";
/// The provider whose latency spikes: the fastest small-model host.
pub const SPIKE_PROVIDER: &str = "groq";
/// Latency added during the spike.
pub const SPIKE_MS: u64 = 200;

/// How the outage provider fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutageMode {
    /// Every API request answers HTTP 500.
    Status500,
    /// Every API connection is reset.
    Refuse,
}

impl OutageMode {
    /// The `/_mock/faults` body.
    pub fn faults(self) -> Value {
        match self {
            OutageMode::Status500 => json!({"status": 500, "rate": 1.0}),
            OutageMode::Refuse => json!({"refuse": true}),
        }
    }

    /// How the report names it.
    pub fn describe(self) -> &'static str {
        match self {
            OutageMode::Status500 => "every request answers HTTP 500",
            OutageMode::Refuse => "every connection is reset",
        }
    }
}

/// The tier of a served upstream model.
pub fn model_tier(model: &str) -> Option<Tier> {
    ROUTES.iter().find(|r| r.model == model).map(|r| r.tier)
}

/// Starts the mocks and a [`NODES`]-node cluster over them.
///
/// # Errors
/// When a listener cannot be bound or a node does not start.
pub async fn start() -> anyhow::Result<TestCluster> {
    let mut b = TestCluster::builder().nodes(NODES);
    for p in PROVIDERS {
        let mut spec = MockSpec::openai(p.name, &[], 0, 0).timing(p.ttft_ms, p.per_token_ms);
        spec.prices = p
            .models
            .iter()
            .map(|(m, i, o)| ((*m).to_owned(), *i, *o))
            .collect();
        b = b.mock(spec);
    }
    for r in ROUTES {
        let targets: Vec<(&str, &str)> = r.targets.iter().map(|p| (*p, r.model)).collect();
        b = b
            .route(r.model, "priority", &targets, r.fallbacks)
            .tier(r.tier.as_str());
    }
    b.start().await
}

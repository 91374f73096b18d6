//! Plan tests: ordering, fallbacks, constraints, residency and `auto`.
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
            tier: None,
            constraints: Default::default(),
        },
        RouteConfigToml {
            model: "big".into(),
            strategy: None,
            targets: vec![t("c", "b-c"), t("a", "s-a")],
            fallbacks: vec!["small".into()],
            tier: None,
            constraints: Default::default(),
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
        tier: None,
        constraints: Default::default(),
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

// --- plan_with: strategies on the view, constraints, residency, health ---

/// Three providers for one model: cheap in the US, mid-priced in the EU, dear in the EU.
fn regional_table() -> RouteTable {
    let t = |p: &str| TargetToml {
        provider: p.into(),
        model: Some("m".into()),
        weight: None,
    };
    let raw = vec![RouteConfigToml {
        model: "chat".into(),
        strategy: None,
        targets: vec![t("dear-eu"), t("cheap-us"), t("mid-eu")],
        fallbacks: vec![],
        tier: None,
        constraints: Default::default(),
    }];
    let mut errors = vec![];
    let table = RouteTable::build(raw, &|_| true, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    table
}

fn state(region: &str, price: u64) -> TargetState {
    TargetState {
        available: true,
        supports: true,
        region: region.into(),
        price_micros_per_mtok: Some((price, price)),
        ..TargetState::default()
    }
}

fn regional(t: &Target) -> TargetState {
    match t.provider.as_str() {
        "dear-eu" => state("eu-west", 900),
        "cheap-us" => state("us-east", 100),
        _ => state("eu-central", 500),
    }
}

fn providers(p: &[Candidate]) -> Vec<&str> {
    p.iter().map(|c| c.target.provider.as_str()).collect()
}

fn with(strategy: Strategy, constraints: Constraints) -> PlanOptions {
    PlanOptions {
        strategy: Some(strategy),
        constraints,
        ..PlanOptions::default()
    }
}

#[test]
fn cost_picks_the_cheapest_healthy_target() {
    let mut rng = StdRng::seed_from_u64(0);
    let opts = with(Strategy::Cost, Constraints::default());
    let p = plan_with(&regional_table(), "chat", &opts, &regional, &mut rng).unwrap();
    assert_eq!(providers(&p), vec!["cheap-us", "mid-eu", "dear-eu"]);
    // The cheapest is failing on other nodes: it goes behind the healthy ones.
    let failing = |t: &Target| {
        let mut s = regional(t);
        if t.provider.as_str() == "cheap-us" {
            s.health = Health::Failing;
        }
        s
    };
    let p = plan_with(&regional_table(), "chat", &opts, &failing, &mut rng).unwrap();
    assert_eq!(providers(&p), vec!["mid-eu", "dear-eu", "cheap-us"]);
    assert_eq!(p[2].health, Health::Failing);
}

#[test]
fn strict_residency_never_plans_outside_and_fails_clearly_when_nothing_is_left() {
    let mut rng = StdRng::seed_from_u64(0);
    let eu = Constraints {
        regions: vec!["eu-west".into(), "eu-central".into()],
        strict_residency: true,
        ..Constraints::default()
    };
    let p = plan_with(
        &regional_table(),
        "chat",
        &with(Strategy::Cost, eu.clone()),
        &regional,
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        providers(&p),
        vec!["mid-eu", "dear-eu"],
        "cheap-us is never planned"
    );

    let apac = Constraints {
        regions: vec!["ap-south".into()],
        strict_residency: true,
        ..Constraints::default()
    };
    let err = plan_with(
        &regional_table(),
        "chat",
        &with(Strategy::Cost, apac),
        &regional,
        &mut rng,
    )
    .unwrap_err();
    assert_eq!(err.kind(), "no_allowed_target");
    assert_eq!(
        err.to_string(),
        "no target for model \"chat\" meets the request's constraints: targets excluded: 3 outside the allowed regions [ap-south] (strict residency)"
    );
}

#[test]
fn preferred_regions_go_first_but_others_stay_as_fallbacks() {
    let mut rng = StdRng::seed_from_u64(0);
    let prefer_eu = Constraints {
        regions: vec!["eu-central".into()],
        ..Constraints::default()
    };
    let p = plan_with(
        &regional_table(),
        "chat",
        &with(Strategy::Cost, prefer_eu),
        &regional,
        &mut rng,
    )
    .unwrap();
    assert_eq!(providers(&p), vec!["mid-eu", "cheap-us", "dear-eu"]);
}

#[test]
fn price_and_latency_caps_drop_targets() {
    let mut rng = StdRng::seed_from_u64(0);
    let cap = Constraints {
        max_price_micros_per_mtok: Some(500),
        ..Constraints::default()
    };
    let p = plan_with(
        &regional_table(),
        "chat",
        &with(Strategy::Priority, cap),
        &regional,
        &mut rng,
    )
    .unwrap();
    assert_eq!(providers(&p), vec!["cheap-us", "mid-eu"]);

    let slow_eu = |t: &Target| {
        let mut s = regional(t);
        if t.provider.as_str().ends_with("-eu") {
            s.p95_us = 3_000_000;
            s.latency_samples = 100;
        }
        s
    };
    let fast = Constraints {
        max_p95_ms: Some(2_000),
        ..Constraints::default()
    };
    let p = plan_with(
        &regional_table(),
        "chat",
        &with(Strategy::Priority, fast),
        &slow_eu,
        &mut rng,
    )
    .unwrap();
    assert_eq!(providers(&p), vec!["cheap-us"]);
}

#[test]
fn a_key_policy_cannot_be_loosened_by_the_request() {
    let mut rng = StdRng::seed_from_u64(0);
    let opts = PlanOptions {
        strategy: Some(Strategy::Cost),
        constraints: Constraints {
            regions: vec!["us-east".into()],
            ..Constraints::default()
        },
        policy: Constraints {
            regions: vec!["eu-west".into()],
            strict_residency: true,
            ..Constraints::default()
        },
    };
    let p = plan_with(&regional_table(), "chat", &opts, &regional, &mut rng).unwrap();
    assert_eq!(providers(&p), vec!["dear-eu"]);
}

#[test]
fn route_default_constraints_apply_and_requests_override_them() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut table = regional_table();
    assert!(table.set_constraints(
        "chat",
        Constraints {
            max_price_micros_per_mtok: Some(200),
            ..Constraints::default()
        }
    ));
    let p = plan_with(&table, "chat", &PlanOptions::default(), &regional, &mut rng).unwrap();
    assert_eq!(providers(&p), vec!["cheap-us"]);
    let looser = with(
        Strategy::Priority,
        Constraints {
            max_price_micros_per_mtok: Some(1_000),
            ..Constraints::default()
        },
    );
    let p = plan_with(&table, "chat", &looser, &regional, &mut rng).unwrap();
    assert_eq!(p.len(), 3);
}

#[test]
fn the_old_plan_form_still_plans_from_node_local_views() {
    let mut rng = StdRng::seed_from_u64(0);
    let view = |t: &Target| TargetView {
        available: true,
        supports: true,
        in_flight: if t.provider.as_str() == "a" { 9 } else { 0 },
        ..TargetView::default()
    };
    let p = plan(
        &table(),
        "small",
        Some(Strategy::LeastBusy),
        &view,
        &mut rng,
    )
    .unwrap();
    assert_eq!(p[0].target.provider.as_str(), "b");
}

// --- auto ---

/// Three tiered routes (small and large cheap-ish, medium dearer than large) and an untiered one.
fn tiered_table() -> RouteTable {
    let t = |p: &str, m: &str| TargetToml {
        provider: p.into(),
        model: Some(m.into()),
        weight: None,
    };
    let route = |model: &str, p: &str| RouteConfigToml {
        model: model.into(),
        strategy: None,
        targets: vec![t(p, model)],
        fallbacks: vec![],
        tier: None,
        constraints: Default::default(),
    };
    let raw = vec![
        route("mini", "a"),
        route("mid", "b"),
        route("big", "c"),
        route("other", "d"),
    ];
    let mut errors = vec![];
    let mut table = RouteTable::build(raw, &|_| true, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(table.set_tier("mini", Tier::parse("small")));
    assert!(table.set_tier("mid", Some(Tier::Medium)));
    assert!(table.set_tier("big", Some(Tier::Large)));
    assert!(!table.set_tier("nope", Some(Tier::Large)));
    table
}

fn tier_prices(t: &Target) -> TargetState {
    let price = match t.provider.as_str() {
        "a" => 100,
        "b" => 800,
        "c" => 600,
        _ => 1,
    };
    state("", price)
}

#[test]
fn auto_routes_to_the_cheapest_route_of_a_fitting_tier() {
    let mut rng = StdRng::seed_from_u64(0);
    let opts = PlanOptions::default();
    let small = RequestFacts::from_prompt("Say hi.", false, None);
    let p = plan_auto(&tiered_table(), &small, &opts, &tier_prices, &mut rng).unwrap();
    assert_eq!((p.tier, p.model.as_str()), (Tier::Small, "mini"));
    assert_eq!(p.candidates[0].public_model, "mini");

    // Tools need Medium; the large route is cheaper than the medium one, and fits.
    let tools = RequestFacts::from_prompt("What's the weather in Oslo?", true, None);
    let p = plan_auto(&tiered_table(), &tools, &opts, &tier_prices, &mut rng).unwrap();
    assert_eq!((p.tier, p.model.as_str()), (Tier::Medium, "big"));

    let proof = RequestFacts::from_prompt("Prove there are infinitely many primes.", false, None);
    let p = plan_auto(&tiered_table(), &proof, &opts, &tier_prices, &mut rng).unwrap();
    assert_eq!((p.tier, p.model.as_str()), (Tier::Large, "big"));
    assert_eq!(p.candidates[0].target.provider.as_str(), "c");
}

#[test]
fn auto_moves_on_when_constraints_rule_the_cheapest_route_out() {
    let mut rng = StdRng::seed_from_u64(0);
    let view = |t: &Target| {
        let mut s = tier_prices(t);
        s.region = if t.provider.as_str() == "a" {
            "us"
        } else {
            "eu"
        }
        .into();
        s
    };
    let opts = with(
        Strategy::Cost,
        Constraints {
            regions: vec!["eu".into()],
            strict_residency: true,
            ..Constraints::default()
        },
    );
    let small = RequestFacts::from_prompt("Say hi.", false, None);
    let p = plan_auto(&tiered_table(), &small, &opts, &view, &mut rng).unwrap();
    assert_eq!(
        p.model, "big",
        "mini is outside the region; big is the next cheapest"
    );
}

#[test]
fn auto_without_tiered_routes_is_an_unknown_model() {
    let mut rng = StdRng::seed_from_u64(0);
    let facts = RequestFacts::default();
    assert_eq!(
        plan_auto(
            &table(),
            &facts,
            &PlanOptions::default(),
            &|t| TargetState::from(all_up(t)),
            &mut rng
        ),
        Err(RoutingError::UnknownModel("auto".into()))
    );
}

// --- properties ---

mod properties {
    use super::*;
    use proptest::prelude::*;

    const REGIONS: [&str; 4] = ["eu", "us", "ap", ""];

    proptest! {
        /// Whatever the targets' regions, health, availability and the strategy, a plan under
        /// strict residency holds only targets in the allowed regions, fallbacks included; and
        /// it errors only when no serving target is in them.
        #[test]
        fn plan_never_returns_a_target_violating_strict_residency(
            regions in proptest::collection::vec(0usize..4, 5),
            healthy in proptest::collection::vec(any::<bool>(), 5),
            available in proptest::collection::vec(any::<bool>(), 5),
            allowed in proptest::collection::vec(0usize..3, 0..3),
            strategy in 0usize..6,
            seed in any::<u64>(),
        ) {
            let providers = ["p0", "p1", "p2", "p3", "p4"];
            let t = |p: &str| TargetToml { provider: p.into(), model: None, weight: Some(2) };
            let raw = vec![
                RouteConfigToml { model: "x".into(), strategy: None, targets: vec![t("p0"), t("p1"), t("p2")], fallbacks: vec!["y".into()], tier: None, constraints: Default::default() },
                RouteConfigToml { model: "y".into(), strategy: Some("balanced".into()), targets: vec![t("p3"), t("p4"), t("p0")], fallbacks: vec!["x".into()], tier: None, constraints: Default::default() },
            ];
            let table = RouteTable::build(raw, &|_| true, &mut vec![]);
            let view = |tg: &Target| {
                let k = providers.iter().position(|p| *p == tg.provider.as_str()).unwrap_or(0);
                TargetState {
                    available: available[k],
                    supports: true,
                    region: REGIONS[regions[k]].into(),
                    health: if healthy[k] { Health::Healthy } else { Health::Failing },
                    price_micros_per_mtok: Some((k as u64 * 10, 5)),
                    ..TargetState::default()
                }
            };
            let allowed: Vec<String> = allowed.iter().map(|i| REGIONS[*i].to_owned()).collect();
            use crate::strategy::Strategy as S;
            let strategies = [S::Priority, S::Weighted, S::LeastBusy, S::Latency, S::Cost, S::Balanced];
            let opts = with(strategies[strategy], Constraints { regions: allowed.clone(), strict_residency: true, ..Constraints::default() });
            let mut rng = StdRng::seed_from_u64(seed);
            let any_allowed = providers.iter().enumerate().any(|(k, _)| !REGIONS[regions[k]].is_empty() && allowed.iter().any(|a| a == REGIONS[regions[k]]));
            match plan_with(&table, "x", &opts, &view, &mut rng) {
                Ok(p) => {
                    prop_assert!(!p.is_empty());
                    for c in &p {
                        let r = view(&c.target).region;
                        prop_assert!(!r.is_empty() && allowed.contains(&r), "{} in {r:?} planned outside {allowed:?}", c.target.provider.as_str());
                    }
                }
                Err(e) => {
                    prop_assert!(!any_allowed, "an allowed target existed but planning failed: {e}");
                    prop_assert_eq!(e.kind(), "no_allowed_target");
                }
            }
        }
    }
}

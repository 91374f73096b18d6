//! Pure routing: from a request's model, the route table, a strategy, constraints and a view of
//! each target's state (this node's and the cluster's), to an ordered list of attempts. No I/O
//! and no clock, so every rule is testable with plain values (DESIGN §4: "the router is a pure
//! function"). Callers pass the time into the cluster view.
//!
//! # Layout
//! - [`route`]: route configuration (aliases, weighted targets, fallback models, tiers), raw and
//!   validated.
//! - [`strategy`]: how targets are ordered: priority, weighted, least-busy, latency, cost,
//!   balanced.
//! - [`constraint`]: price and latency caps and data residency, layered route → request → key.
//! - [`mod@classify`]: `model: "auto"`: request facts to a tier.
//! - [`mod@plan`]: the ordered attempt list across a route and its fallbacks ([`plan_with`],
//!   [`plan_auto`]; [`plan()`] is the constraint-free form).
//! - [`retry`]: the per-request retry limit, the cluster-wide retry budget and backoff.
//! - [`view`]: the cluster view: every node's stats deltas merged into a sliding window, with
//!   summaries, health verdicts, retry budgets and quota shares.

pub mod classify;
pub mod constraint;
pub mod plan;
pub mod retry;
pub mod route;
pub mod strategy;
pub mod view;

pub use classify::{RequestFacts, Tier, classify};
pub use constraint::{Constraints, Exclusions};
pub use plan::{
    AUTO_MODEL, AutoPlan, Candidate, PlanError, PlanOptions, RoutingError, TargetState, TargetView,
    plan, plan_auto, plan_with,
};
pub use retry::{RetryBudget, RetryPolicy};
pub use route::{Route, RouteConfigToml, RouteTable, Target};
pub use strategy::Strategy;
pub use view::{
    Applied, ClusterView, Health, PairSummary, ProviderSummary, ViewSummary, encode_histogram,
};

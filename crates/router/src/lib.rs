//! Pure routing: from a request's model, the route table, a strategy and a view of each target's
//! state, to an ordered list of attempts. No I/O and no clock, so every rule is testable with
//! plain values (DESIGN §4: "the router is a pure function").
//!
//! # Layout
//! - [`route`]: route configuration (aliases, weighted targets, fallback models), raw and validated.
//! - [`strategy`]: how targets are ordered: priority, weighted, least-busy, lowest-latency.
//! - [`plan`]: the ordered attempt list across a route and its fallbacks.
//! - [`retry`]: the retry budget and backoff.

pub mod plan;
pub mod retry;
pub mod route;
pub mod strategy;

pub use plan::{Candidate, PlanError, TargetView, plan};
pub use retry::RetryPolicy;
pub use route::{Route, RouteConfigToml, RouteTable, Target};
pub use strategy::Strategy;

//! `/healthz` (the process is up), `/readyz` (it serves traffic), `/metrics` (Prometheus), and
//! the 404 for unknown paths in OpenAI's error format.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use switchyard_core::BreakerPhase;

use crate::metrics::ProviderLine;
use crate::node::App;

/// Always 200 while the process runs.
pub async fn healthz() -> &'static str {
    "ok"
}

/// 200 once serving with a known Raft leader and a routing set built from the replicated
/// configuration; 503 while starting, stopping, or cut off from the quorum (a load balancer
/// should then prefer other nodes).
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let routing_current = {
        let s = match app.control.state().read() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        s.seeded && s.routing_version == app.routing().version
    };
    if app.ready.load(Ordering::Acquire) && app.control.leader().is_some() && routing_current {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

/// Prometheus text format.
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let routing = app.routing();
    let lines: Vec<ProviderLine> = routing
        .providers
        .iter()
        .map(|p| {
            let s = p.snapshot();
            ProviderLine {
                name: p.name().to_string(),
                in_flight: p.gate.in_flight(),
                breaker_value: match p.gate.phase() {
                    BreakerPhase::Closed => 0.0,
                    BreakerPhase::HalfOpen => 0.5,
                    BreakerPhase::Open => 1.0,
                },
                p50_us: s.total_us.p50,
                p95_us: s.total_us.p95,
                p99_us: s.total_us.p99,
                ttft_p50_us: s.ttft_us.p50,
                ttft_p95_us: s.ttft_us.p95,
            }
        })
        .collect();
    let mut body = app.metrics.render(&routing.accounting, &lines);
    let (on_request, ahead) = app.guard.reservations();
    body.push_str(&format!(
        "# HELP switchyard_budget_reservations_total Allowances reserved through Raft, by who waited: a request (path=\"request\") or nobody (renewed ahead of need by the flusher, path=\"ahead\").\n# TYPE switchyard_budget_reservations_total counter\nswitchyard_budget_reservations_total{{path=\"request\"}} {on_request}\nswitchyard_budget_reservations_total{{path=\"ahead\"}} {ahead}\n"
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Unknown path.
pub async fn not_found() -> Response {
    let body = switchyard_wire::openai::error_body(
        "unknown path",
        "invalid_request_error",
        Some("not_found"),
    );
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

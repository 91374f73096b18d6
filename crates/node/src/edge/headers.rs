//! The `x-switchyard-*` response headers and the request id.

use http::{HeaderMap, HeaderValue};
use switchyard_core::RequestId;

use crate::node::App;

/// The client's `x-request-id` when usable, otherwise a fresh one.
pub fn request_id(app: &App, headers: &HeaderMap) -> RequestId {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::from_client)
        .unwrap_or_else(|| RequestId::generated(app.next_request_id()))
}

/// What the response headers report.
pub struct Served<'a> {
    /// Request id.
    pub request_id: &'a str,
    /// Provider name.
    pub provider: &'a str,
    /// Upstream model.
    pub model: &'a str,
    /// Attempts made.
    pub attempts: u32,
    /// Cost in micro-dollars, when known at header time (not for streams).
    pub cost_micros: Option<u64>,
}

/// Inserts the common headers.
pub fn insert(h: &mut HeaderMap, app: &App, s: &Served<'_>) {
    if let Ok(v) = HeaderValue::from_str(s.request_id) {
        h.insert("x-request-id", v);
    }
    h.insert("x-switchyard-node", app.node_header.clone());
    if let Ok(v) = HeaderValue::from_str(s.provider) {
        h.insert("x-switchyard-provider", v);
    }
    if let Ok(v) = HeaderValue::from_str(s.model) {
        h.insert("x-switchyard-model", v);
    }
    h.insert("x-switchyard-attempts", HeaderValue::from(s.attempts));
    if let Some(c) = s.cost_micros {
        h.insert("x-switchyard-cost-micros", HeaderValue::from(c));
    }
}

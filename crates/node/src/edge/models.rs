//! `GET /v1/models`: the public model names this node routes, in OpenAI's list format, each
//! with the providers that can serve it now (an extra field the SDKs ignore).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, header};
use serde_json::json;

use crate::edge::auth::authenticate;
use crate::edge::headers::request_id;
use crate::node::App;

/// Lists models the key may use.
pub async fn list(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let rid = request_id(&app, &headers);
    let key = match authenticate(&app, &headers) {
        Ok(k) => k,
        Err(e) => {
            return e.into_response(
                switchyard_provider::Format::OpenAi,
                rid.as_str(),
                &app.node_header,
            );
        }
    };
    let now = app.clock.now();
    let routing = app.routing();
    let data: Vec<_> = routing
        .routes
        .iter()
        .filter(|r| crate::keys::allows(&key, &r.model))
        .map(|r| {
            let available: Vec<&str> = r
                .targets
                .iter()
                .filter(|t| routing.providers.get(&t.provider).is_some_and(|p| p.gate.looks_available(now)))
                .map(|t| t.provider.as_str())
                .collect();
            json!({"id": r.model, "object": "model", "created": 0, "owned_by": "switchyard", "providers": available})
        })
        .collect();
    let body = json!({"object": "list", "data": data}).to_string();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

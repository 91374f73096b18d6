//! The HTTP edge (axum): routes, and the request prelude every inference endpoint shares
//! (request id, auth, bounded body read, JSON parse, refusal of client-supplied upstreams).
//!
//! Hot path: edge → auth → guard → router → provider actor → upstream.

pub mod auth;
pub mod error;
pub mod headers;
pub mod health;
pub mod inference;
pub mod models;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::node::App;

/// Builds the axum router for a node.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(inference::chat))
        .route("/v1/embeddings", post(inference::embeddings))
        .route("/v1/messages", post(inference::messages))
        .route("/v1/models", get(models::list))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(health::not_found)
        .with_state(app)
}

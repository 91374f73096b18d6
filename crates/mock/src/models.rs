//! Model listing (`GET /v1/models`, `GET /v1/models/{id}`).
//!
//! OpenAI and Anthropic share the path but not the shape; a request that
//! carries `anthropic-version` (as the Anthropic SDK always does) gets
//! Anthropic's, anything else gets OpenAI's.

use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::api_error::{ApiError, ApiFormat};
use crate::body::{MockBody, json_response};
use crate::route::Reply;
use crate::state::Shared;

/// A fixed creation time for every model (2023-11-14), so listings are
/// byte-for-byte stable.
const CREATED_S: u64 = 1_700_000_000;

/// The same instant in Anthropic's RFC 3339 form.
const CREATED_RFC3339: &str = "2023-11-14T22:13:20Z";

/// The list of models in `format`.
pub(crate) fn list(shared: &Shared, format: ApiFormat) -> Reply {
    let data: Vec<Value> = shared
        .models
        .iter()
        .map(|id| model(shared, format, id))
        .collect();
    let body = match format {
        ApiFormat::OpenAi => json!({"object": "list", "data": data}),
        ApiFormat::Anthropic => json!({
            "data": data,
            "has_more": false,
            "first_id": shared.models.first(),
            "last_id": shared.models.last(),
        }),
    };
    reply(json_response(StatusCode::OK, &body))
}

/// One model in `format`, or 404 if it is not listed.
pub(crate) fn retrieve(shared: &Shared, format: ApiFormat, id: &str) -> Result<Reply, ApiError> {
    if !shared.models.iter().any(|m| m == id) {
        return Err(ApiError {
            code: Some("model_not_found"),
            ..ApiError::new(
                StatusCode::NOT_FOUND,
                format!("the model '{id}' does not exist"),
            )
        });
    }
    Ok(reply(json_response(
        StatusCode::OK,
        &model(shared, format, id),
    )))
}

fn model(shared: &Shared, format: ApiFormat, id: &str) -> Value {
    match format {
        ApiFormat::OpenAi => json!({
            "id": id,
            "object": "model",
            "created": CREATED_S,
            "owned_by": shared.config.name,
        }),
        ApiFormat::Anthropic => json!({
            "type": "model",
            "id": id,
            "display_name": id,
            "created_at": CREATED_RFC3339,
        }),
    }
}

fn reply(response: Response<MockBody>) -> Reply {
    Reply {
        response,
        delay: std::time::Duration::ZERO,
        bill: None,
    }
}

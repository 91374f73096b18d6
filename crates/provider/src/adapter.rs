//! Provider adapters: how a client request becomes an upstream HTTP request for each provider
//! kind, and how the upstream's answer becomes the client's format again. Same-format traffic is
//! passed through with only `model` rewritten; cross-format traffic goes through the pure
//! translators in `switchyard-wire`.
//!
//! The URL and auth rules per kind live in [`adapter::openai`](openai) and
//! [`adapter::anthropic`](anthropic).

pub mod anthropic;
pub mod openai;

use bytes::Bytes;
use http::{HeaderValue, Request, header};
use http_body_util::Full;
use serde_json::{Map, Value};
use switchyard_wire::{Usage, WireError, translate};

use crate::call::{CallError, Endpoint, Format};
use crate::config::{ProviderConfig, ProviderKind};

/// The wire format a provider kind speaks.
pub fn upstream_format(kind: &ProviderKind) -> Format {
    match kind {
        ProviderKind::OpenAi | ProviderKind::Azure { .. } => Format::OpenAi,
        ProviderKind::Anthropic => Format::Anthropic,
    }
}

/// Whether a provider kind can serve an endpoint at all (Anthropic has no embeddings).
pub fn supports(kind: &ProviderKind, endpoint: Endpoint) -> bool {
    !(matches!(kind, ProviderKind::Anthropic) && endpoint == Endpoint::Embeddings)
}

/// Builds the upstream request body in the provider's format. `body` is the client's parsed
/// JSON; for same-format calls it is edited in place (model, stream usage), which is idempotent,
/// so a retry on another target can reuse it.
///
/// # Errors
/// [`CallError`] of class `ClientError` when the request cannot be expressed in the upstream's
/// format (for example tool arguments that are not JSON).
pub fn encode_body(
    cfg: &ProviderConfig,
    endpoint: Endpoint,
    body: &mut Map<String, Value>,
    upstream_model: &str,
    stream: bool,
    default_max_tokens: u64,
) -> Result<Bytes, CallError> {
    let client_format = endpoint.client_format();
    let value = match (client_format, upstream_format(&cfg.kind)) {
        (Format::OpenAi, Format::OpenAi) | (Format::Anthropic, Format::Anthropic) => {
            body.insert("model".into(), Value::String(upstream_model.to_owned()));
            if stream && client_format == Format::OpenAi {
                // Usage arrives only if asked for; we need it for cost, and strip the extra
                // chunk again if the client did not ask (see `stream`).
                let opts = body
                    .entry("stream_options")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(o) = opts {
                    o.insert("include_usage".into(), Value::Bool(true));
                }
            }
            return serde_json::to_vec(body)
                .map(Bytes::from)
                .map_err(|e| CallError::internal(e.to_string()));
        }
        (Format::OpenAi, Format::Anthropic) => {
            translate::openai_to_anthropic_request(body, upstream_model, default_max_tokens)
        }
        (Format::Anthropic, Format::OpenAi) => {
            translate::anthropic_to_openai_request(body, upstream_model)
        }
    }
    .map_err(CallError::untranslatable)?;
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| CallError::internal(e.to_string()))
}

/// Builds the whole upstream HTTP request.
///
/// # Errors
/// When the URI or a header cannot be formed from the configuration.
pub fn build_request(
    cfg: &ProviderConfig,
    endpoint: Endpoint,
    upstream_model: &str,
    request_id: &str,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, CallError> {
    let uri = match &cfg.kind {
        ProviderKind::OpenAi => openai::uri(cfg, endpoint),
        ProviderKind::Azure { api_version } => {
            openai::azure_uri(cfg, endpoint, upstream_model, api_version)
        }
        ProviderKind::Anthropic => anthropic::uri(cfg),
    };
    let mut req = Request::builder()
        .method(http::Method::POST)
        .uri(uri)
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
        .header(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        req = req.header("x-request-id", v);
    }
    let req = match &cfg.kind {
        ProviderKind::OpenAi => openai::auth(req, cfg),
        ProviderKind::Azure { .. } => openai::azure_auth(req, cfg),
        ProviderKind::Anthropic => anthropic::auth(req, cfg),
    };
    req.body(Full::new(body))
        .map_err(|e| CallError::internal(format!("cannot build upstream request: {e}")))
}

/// Converts a complete (non-stream) upstream body into the client's format and reads its usage.
///
/// # Errors
/// [`CallError`] of class `ServerError` when the upstream sent something unreadable.
pub fn decode_body(
    cfg: &ProviderConfig,
    endpoint: Endpoint,
    body: Bytes,
    public_model: &str,
    created: u64,
) -> Result<(Bytes, Option<Usage>), CallError> {
    match (endpoint.client_format(), upstream_format(&cfg.kind)) {
        (Format::OpenAi, Format::OpenAi) => {
            let usage = switchyard_wire::openai::usage_of(&body);
            Ok((body, usage))
        }
        (Format::Anthropic, Format::Anthropic) => {
            let usage = switchyard_wire::anthropic::usage_of(&body);
            Ok((body, usage))
        }
        (Format::OpenAi, Format::Anthropic) => {
            translate::anthropic_response_to_openai(&body, public_model, created)
                .map(|(b, u)| (b, Some(u)))
                .map_err(CallError::unreadable)
        }
        (Format::Anthropic, Format::OpenAi) => {
            translate::openai_response_to_anthropic(&body, public_model)
                .map(|(b, u)| (b, Some(u)))
                .map_err(CallError::unreadable)
        }
    }
}

/// Reads `error.message` from an upstream error body in either format, bounded in length so a
/// hostile upstream cannot make us log megabytes.
pub fn upstream_error_message(body: &[u8]) -> Option<String> {
    /// Longest upstream error message we keep.
    const MAX_MESSAGE_CHARS: usize = 500;
    let v: Value = serde_json::from_slice(body).ok()?;
    let msg = v.get("error")?.get("message")?.as_str()?;
    Some(msg.chars().take(MAX_MESSAGE_CHARS).collect())
}

impl CallError {
    fn untranslatable(e: WireError) -> Self {
        CallError::client(400, e.to_string())
    }

    fn unreadable(e: WireError) -> Self {
        CallError::server(None, e.to_string())
    }
}

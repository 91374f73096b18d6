//! Every edge error becomes an HTTP response here and nowhere else. One exhaustive table
//! ([`EdgeError::class`], no catch-all arm) gives status, OpenAI `type`/`code` and whether a
//! retry can help; two renderers share it: OpenAI's body on `/v1/*`, Anthropic's on
//! `/v1/messages`. A 5xx says "internal error" plus the request id; details go to the log once.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use switchyard_provider::Format;

/// Why the edge refused or failed a request.
#[derive(Debug, Clone)]
pub enum EdgeError {
    /// The body is not JSON (or not an object).
    BadJson(String),
    /// A field is missing or wrong.
    Invalid(String),
    /// The client named an upstream URL or key, which only configuration may do.
    ForbiddenField(&'static str),
    /// No key presented.
    MissingKey,
    /// The key is not known, revoked or expired.
    InvalidKey(&'static str),
    /// The key may not use this model.
    ModelNotAllowed(String),
    /// No route for the model.
    UnknownModel(String),
    /// The model exists but cannot serve this endpoint.
    Unsupported(String),
    /// No target meets the request's constraints (strict residency, price or latency cap).
    NoAllowedTarget(String),
    /// The body exceeds the limit.
    BodyTooLarge(usize),
    /// The upstream rejected the request itself (4xx); retrying cannot help.
    UpstreamRejected {
        /// Upstream status.
        status: u16,
        /// Upstream message (already bounded).
        message: String,
    },
    /// Every attempt failed upstream.
    UpstreamFailed {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        message: String,
    },
    /// The last attempt timed out.
    UpstreamTimeout {
        /// Attempts made.
        attempts: u32,
    },
    /// No provider would take the request (breakers open, paused, at limits).
    NoProvider {
        /// When one may be available again, if known.
        retry_after: Option<Duration>,
    },
    /// The key's cluster-wide RPM or TPM for this minute is used up.
    KeyRateLimited {
        /// Seconds until the next minute window.
        retry_after_s: u64,
    },
    /// The key's or team's budget has nothing left for this request.
    BudgetExhausted {
        /// `key:…` or `team:…`.
        scope: String,
    },
    /// Budgeted work refused: no allowance could be reserved (cut off from the quorum).
    CutOff {
        /// What failed.
        reason: String,
    },
    /// The node is starting or stopping.
    NotReady,
    /// Our own bug.
    Internal(String),
}

/// What the table says about one error.
pub struct ErrorClass {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI `error.type`.
    pub openai_type: &'static str,
    /// OpenAI `error.code`.
    pub code: Option<&'static str>,
    /// Whether the client should retry (`x-should-retry`).
    pub should_retry: bool,
}

impl EdgeError {
    /// The one table (STYLE §2.4).
    pub fn class(&self) -> ErrorClass {
        let c = |status, openai_type, code, should_retry| ErrorClass {
            status,
            openai_type,
            code,
            should_retry,
        };
        match self {
            EdgeError::BadJson(_)
            | EdgeError::Invalid(_)
            | EdgeError::ForbiddenField(_)
            | EdgeError::Unsupported(_) => c(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                false,
            ),
            EdgeError::MissingKey | EdgeError::InvalidKey(_) => c(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                Some("invalid_api_key"),
                false,
            ),
            EdgeError::ModelNotAllowed(_) => c(
                StatusCode::FORBIDDEN,
                "permission_error",
                Some("model_not_allowed"),
                false,
            ),
            EdgeError::NoAllowedTarget(_) => c(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("no_allowed_target"),
                false,
            ),
            EdgeError::UnknownModel(_) => c(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("model_not_found"),
                false,
            ),
            EdgeError::BodyTooLarge(_) => c(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                Some("request_too_large"),
                false,
            ),
            // The upstream judged the request itself; the same request fails anywhere.
            EdgeError::UpstreamRejected { status, .. } => c(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                "invalid_request_error",
                Some("upstream_rejected"),
                false,
            ),
            EdgeError::UpstreamFailed { .. } => c(
                StatusCode::BAD_GATEWAY,
                "api_error",
                Some("upstream_error"),
                true,
            ),
            EdgeError::UpstreamTimeout { .. } => c(
                StatusCode::GATEWAY_TIMEOUT,
                "api_error",
                Some("timeout"),
                true,
            ),
            // Retrying helps once the window turns; Retry-After says when.
            EdgeError::KeyRateLimited { .. } => c(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
                true,
            ),
            // Retrying cannot help until an operator raises the budget or the period resets.
            EdgeError::BudgetExhausted { .. } => c(
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                Some("insufficient_quota"),
                false,
            ),
            EdgeError::NoProvider { .. } | EdgeError::NotReady | EdgeError::CutOff { .. } => c(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                Some("unavailable"),
                true,
            ),
            EdgeError::Internal(_) => c(StatusCode::INTERNAL_SERVER_ERROR, "api_error", None, true),
        }
    }

    /// Label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            EdgeError::BadJson(_) => "bad_json",
            EdgeError::Invalid(_) => "invalid",
            EdgeError::ForbiddenField(_) => "forbidden_field",
            EdgeError::MissingKey => "missing_key",
            EdgeError::InvalidKey(_) => "invalid_key",
            EdgeError::ModelNotAllowed(_) => "model_not_allowed",
            EdgeError::UnknownModel(_) => "unknown_model",
            EdgeError::NoAllowedTarget(_) => "no_allowed_target",
            EdgeError::Unsupported(_) => "unsupported",
            EdgeError::BodyTooLarge(_) => "body_too_large",
            EdgeError::UpstreamRejected { .. } => "upstream_rejected",
            EdgeError::UpstreamFailed { .. } => "upstream_failed",
            EdgeError::UpstreamTimeout { .. } => "upstream_timeout",
            EdgeError::NoProvider { .. } => "no_provider",
            EdgeError::NotReady => "not_ready",
            EdgeError::BudgetExhausted { .. } => "budget_exhausted",
            EdgeError::KeyRateLimited { .. } => "key_rate_limited",
            EdgeError::CutOff { .. } => "cut_off",
            EdgeError::Internal(_) => "internal",
        }
    }

    /// The message the client sees (never a secret, never internals of a 5xx of ours).
    pub fn message(&self, request_id: &str) -> String {
        match self {
            EdgeError::BadJson(m) => format!("could not parse the JSON body of your request: {m}"),
            EdgeError::Invalid(m) => m.clone(),
            EdgeError::ForbiddenField(f) => format!(
                "field {f:?} is not allowed: upstream URLs and keys are set by the gateway's configuration, not by clients"
            ),
            EdgeError::MissingKey => {
                "missing API key: send it as 'Authorization: Bearer <key>'".into()
            }
            EdgeError::InvalidKey(why) => format!("invalid API key ({why})"),
            EdgeError::ModelNotAllowed(m) => format!("this key is not allowed to use model {m:?}"),
            EdgeError::NoAllowedTarget(why) => why.clone(),
            EdgeError::UnknownModel(m) => format!("the model {m:?} does not exist"),
            EdgeError::Unsupported(m) => format!("the model {m:?} cannot serve this endpoint"),
            EdgeError::BodyTooLarge(limit) => {
                format!("request body is larger than the limit of {limit} bytes")
            }
            EdgeError::UpstreamRejected { message, .. } => message.clone(),
            EdgeError::UpstreamFailed { attempts, message } => format!(
                "every upstream attempt failed ({attempts} attempts; last: {message}); request id {request_id}"
            ),
            EdgeError::UpstreamTimeout { attempts } => format!(
                "the upstream did not answer in time ({attempts} attempts); request id {request_id}"
            ),
            EdgeError::NoProvider { .. } => format!(
                "no provider is available for this model right now; request id {request_id}"
            ),
            EdgeError::NotReady => "this node is not ready to serve".into(),
            EdgeError::KeyRateLimited { retry_after_s } => {
                format!("rate limit reached for this key; retry after {retry_after_s} s")
            }
            EdgeError::BudgetExhausted { scope } => format!(
                "budget exhausted for {scope}: you exceeded your current quota; raise the budget or wait for its period to reset"
            ),
            EdgeError::CutOff { reason } => format!(
                "budgeted requests are paused: this node cannot reach the cluster's quorum to reserve budget ({reason}); request id {request_id}"
            ),
            EdgeError::Internal(_) => format!("internal error; request id {request_id}"),
        }
    }

    /// Renders the response in the endpoint's format, with the common headers.
    pub fn into_response(self, format: Format, request_id: &str, node: &HeaderValue) -> Response {
        let class = self.class();
        if class.status.is_server_error() {
            tracing::warn!(request_id, kind = self.kind(), error = ?self, "request failed");
        } else {
            tracing::debug!(request_id, kind = self.kind(), "request refused");
        }
        let message = self.message(request_id);
        let body: Bytes = match format {
            Format::OpenAi => {
                switchyard_wire::openai::error_body(&message, class.openai_type, class.code)
            }
            Format::Anthropic => {
                switchyard_wire::anthropic::error_body(anthropic_type(class.status), &message)
            }
        };
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = class.status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            "x-should-retry",
            HeaderValue::from_static(if class.should_retry { "true" } else { "false" }),
        );
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert("x-request-id", v);
        }
        h.insert("x-switchyard-node", node.clone());
        match &self {
            EdgeError::NoProvider {
                retry_after: Some(d),
            } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(d.as_secs().max(1)));
            }
            EdgeError::KeyRateLimited { retry_after_s } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            _ => {}
        }
        resp
    }
}

/// Anthropic's `error.type` for a status.
fn anthropic_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

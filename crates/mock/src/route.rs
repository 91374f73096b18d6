//! One request, from arrival to answer.
//!
//! Control requests (`/_mock…`) go straight to `control.rs`. API requests go
//! through these steps, in this order:
//!
//! 1. `refuse` resets the connection (the request is not counted: a refused
//!    connection never reaches a real provider).
//! 2. The request is counted for `/_mock/stats` and its body is read whole.
//! 3. Faults are decided and `latency_ms` is slept.
//! 4. A picked `drop` closes the connection; a picked `status` answers that
//!    error. Neither is billed.
//! 5. The key is checked (401), then the path (404) and method (405).
//! 6. The endpoint answers; a non-streamed answer waits out its timing and is
//!    billed when sent, a stream bills itself as it plays.
//!
//! Every API answer carries `x-request-id`: the request's own, or one the
//! mock generated, which is also the ledger key.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use crate::api_error::{ApiError, ApiFormat};
use crate::body::MockBody;
use crate::error::MockError;
use crate::faults::Failure;
use crate::ledger::Charge;
use crate::socket::ResetHandle;
use crate::state::Shared;
use crate::{anthropic, control, embeddings, models, openai};

/// What an endpoint sees of a request.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    /// Server state.
    pub(crate) shared: &'a Arc<Shared>,
    /// The ledger key of this request.
    pub(crate) request_id: &'a str,
    /// The whole request body.
    pub(crate) body: &'a Bytes,
    /// Set when the `cut_after_tokens` fault picked this request.
    pub(crate) cut_after: Option<u64>,
}

/// An endpoint's answer, with what remains to do before sending it.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The response.
    pub(crate) response: Response<MockBody>,
    /// Time to wait before sending it (non-streamed answers).
    pub(crate) delay: Duration,
    /// What to bill when it is sent, with its completion tokens (non-streamed
    /// answers; streams bill themselves).
    pub(crate) bill: Option<(Charge, u64)>,
}

/// The API endpoints the mock serves.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    /// OpenAI chat; `Some(deployment)` on the Azure path.
    Chat(Option<String>),
    /// OpenAI embeddings; `Some(deployment)` on the Azure path.
    Embeddings(Option<String>),
    /// Model list (OpenAI, or Anthropic's when `anthropic-version` is sent).
    Models,
    /// One model.
    Model(String),
    /// Anthropic messages.
    Messages,
}

/// Path prefix of the control API.
const CONTROL_PREFIX: &str = "/_mock";

/// Largest request body read; far above any test's, small enough that a
/// runaway client cannot exhaust memory.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The request id header, read from requests and echoed on answers.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Anthropic's own request id header, also set on Anthropic answers.
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");

// === impl Call ===

impl Call<'_> {
    /// The body as JSON.
    pub(crate) fn json(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(self.body).map_err(|err| ApiError::bad_json(&err))
    }

    /// What this request will be billed for `model` and `prompt_tokens`.
    pub(crate) fn charge(&self, model: &str, prompt_tokens: u64) -> Charge {
        Charge {
            request_id: self.request_id.to_owned(),
            model: model.to_owned(),
            price: self.shared.config.price_for(model),
            prompt_tokens,
        }
    }
}

// === impl Endpoint ===

impl Endpoint {
    fn classify(path: &str) -> Option<Self> {
        let path = path.trim_end_matches('/');
        match path {
            "/v1/chat/completions" => return Some(Self::Chat(None)),
            "/v1/embeddings" => return Some(Self::Embeddings(None)),
            "/v1/models" => return Some(Self::Models),
            "/v1/messages" => return Some(Self::Messages),
            _ => {}
        }
        if let Some(id) = path.strip_prefix("/v1/models/") {
            return Some(Self::Model(id.to_owned()));
        }
        let (deployment, rest) = path.strip_prefix("/openai/deployments/")?.split_once('/')?;
        match rest {
            "chat/completions" => Some(Self::Chat(Some(deployment.to_owned()))),
            "embeddings" => Some(Self::Embeddings(Some(deployment.to_owned()))),
            _ => None,
        }
    }

    fn method(&self) -> Method {
        match self {
            Self::Models | Self::Model(_) => Method::GET,
            Self::Chat(_) | Self::Embeddings(_) | Self::Messages => Method::POST,
        }
    }
}

/// Answers one request on a connection whose socket `reset` can reset.
///
/// # Errors
///
/// Returns an error, which makes hyper close the connection without an
/// answer, for the `drop` and `refuse` faults and for a body that could not
/// be read.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    reset: ResetHandle,
    request: Request<Incoming>,
) -> Result<Response<MockBody>, MockError> {
    let path = request.uri().path();
    if path == CONTROL_PREFIX || path.starts_with("/_mock/") {
        return Ok(control::handle(&shared, request).await);
    }
    if shared.faults.refusing() {
        reset.reset();
        return Err(abandon(&shared, MockError::Refused));
    }
    shared.count_request();
    let (parts, body) = request.into_parts();
    let endpoint = Endpoint::classify(parts.uri.path());
    let format = match endpoint {
        Some(Endpoint::Messages) => ApiFormat::Anthropic,
        _ if parts.headers.contains_key("anthropic-version") => ApiFormat::Anthropic,
        _ => ApiFormat::OpenAi,
    };
    let request_id = match parts.headers.get(&X_REQUEST_ID).map(HeaderValue::to_str) {
        Some(Ok(id)) if !id.is_empty() => id.to_owned(),
        _ => format!("{}-req-{}", shared.config.name, shared.next_sequence()),
    };
    tracing::debug!(mock = %shared.config.name, %request_id, path = parts.uri.path(), "mock request");
    let mut response = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => {
            let body = collected.to_bytes();
            shared.remember(parts.uri.path(), &parts.headers, &body);
            answer(&shared, &parts, endpoint, format, &request_id, &body).await?
        }
        Err(err) if err.is::<LengthLimitError>() => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
                .into_response(format)
        }
        Err(err) => return Err(abandon(&shared, MockError::ReadBody(err))),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        if format == ApiFormat::Anthropic {
            response.headers_mut().insert(REQUEST_ID, value.clone());
        }
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    Ok(response)
}

/// Steps 3 to 6 for a request whose body has been read.
async fn answer(
    shared: &Arc<Shared>,
    parts: &Parts,
    endpoint: Option<Endpoint>,
    format: ApiFormat,
    request_id: &str,
    body: &Bytes,
) -> Result<Response<MockBody>, MockError> {
    let decision = shared.faults.decide();
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    let cut_after = match decision.failure {
        Some(Failure::Drop) => return Err(abandon(shared, MockError::Dropped)),
        Some(Failure::Status {
            status,
            retry_after_s,
        }) => {
            return Ok(ApiError::fault(status, retry_after_s).into_response(format));
        }
        Some(Failure::Cut(tokens)) => Some(tokens),
        None => None,
    };
    if !authorized(shared.config.api_key.as_deref(), &parts.headers) {
        return Ok(ApiError::unauthorized().into_response(format));
    }
    let Some(endpoint) = endpoint else {
        let message = format!("invalid URL ({} {})", parts.method, parts.uri.path());
        return Ok(ApiError::new(StatusCode::NOT_FOUND, message).into_response(format));
    };
    if parts.method != endpoint.method() {
        let message = format!(
            "method {} not allowed on {}",
            parts.method,
            parts.uri.path()
        );
        return Ok(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, message).into_response(format));
    }
    let call = Call {
        shared,
        request_id,
        body,
        cut_after,
    };
    let reply = match &endpoint {
        Endpoint::Chat(deployment) => openai::chat(&call, deployment.as_deref()),
        Endpoint::Embeddings(deployment) => embeddings::embed(&call, deployment.as_deref()),
        Endpoint::Models => Ok(models::list(shared, format)),
        Endpoint::Model(id) => models::retrieve(shared, format, id),
        Endpoint::Messages => anthropic::messages(&call),
    };
    let reply = match reply {
        Ok(reply) => reply,
        Err(err) => return Ok(err.into_response(format)),
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if let Some((charge, completion_tokens)) = reply.bill {
        shared.ledger.record(charge, completion_tokens);
    }
    Ok(reply.response)
}

/// Logs why a request gets no answer, and passes the error on to hyper.
fn abandon(shared: &Shared, err: MockError) -> MockError {
    tracing::debug!(mock = %shared.config.name, kind = err.kind(), "mock abandons connection");
    err
}

/// Whether `headers` carry `expected` (always true when no key is configured).
fn authorized(expected: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let plain = ["x-api-key", "api-key"]
        .into_iter()
        .filter_map(|name| headers.get(name)?.to_str().ok());
    bearer.into_iter().chain(plain).any(|key| key == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_classify_into_endpoints() {
        assert_eq!(
            Endpoint::classify("/v1/chat/completions"),
            Some(Endpoint::Chat(None))
        );
        assert_eq!(
            Endpoint::classify("/openai/deployments/gpt-4o/chat/completions"),
            Some(Endpoint::Chat(Some("gpt-4o".to_owned())))
        );
        assert_eq!(
            Endpoint::classify("/openai/deployments/emb/embeddings"),
            Some(Endpoint::Embeddings(Some("emb".to_owned())))
        );
        assert_eq!(Endpoint::classify("/v1/models/"), Some(Endpoint::Models));
        assert_eq!(
            Endpoint::classify("/v1/models/m"),
            Some(Endpoint::Model("m".to_owned()))
        );
        assert_eq!(Endpoint::classify("/v1/messages"), Some(Endpoint::Messages));
        assert_eq!(Endpoint::classify("/v2/other"), None);
    }

    #[test]
    fn any_of_the_three_key_headers_authorizes() {
        let mut headers = HeaderMap::new();
        assert!(authorized(None, &headers));
        assert!(!authorized(Some("k"), &headers));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer k"));
        assert!(authorized(Some("k"), &headers));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("k"));
        assert!(authorized(Some("k"), &headers));
        let mut headers = HeaderMap::new();
        headers.insert("api-key", HeaderValue::from_static("wrong"));
        assert!(!authorized(Some("k"), &headers));
    }
}

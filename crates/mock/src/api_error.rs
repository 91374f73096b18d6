//! Error answers in each provider's own body shape.
//!
//! OpenAI answers `{"error":{"message","type","param","code"}}`; Anthropic
//! answers `{"type":"error","error":{"type","message"}}`. The `type` strings
//! follow each provider's documented status table, because the official SDKs
//! map them to exception classes and the gateway maps them to retry decisions.

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

use crate::body::{MockBody, json_response};

/// Which provider's wire format an endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ApiFormat {
    /// OpenAI (and Azure OpenAI).
    OpenAi,
    /// Anthropic Messages API.
    Anthropic,
}

/// An error answer, rendered in the endpoint's format only when sent.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// HTTP status of the answer.
    pub(crate) status: StatusCode,
    /// Human-readable message.
    pub(crate) message: String,
    /// OpenAI `param`: the request field at fault, if any.
    pub(crate) param: Option<&'static str>,
    /// OpenAI `code`, if the real API sends one for this case.
    pub(crate) code: Option<&'static str>,
    /// Seconds for a `retry-after` header.
    pub(crate) retry_after_s: Option<u64>,
}

impl ApiError {
    /// An error with `status` and `message` and nothing else.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
            code: None,
            retry_after_s: None,
        }
    }

    /// A 400 about the request field `param`.
    pub(crate) fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        Self {
            param: Some(param),
            ..Self::new(StatusCode::BAD_REQUEST, message)
        }
    }

    /// A 400 for a body that is not JSON.
    pub(crate) fn bad_json(err: &serde_json::Error) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("we could not parse the JSON body of your request: {err}"),
        )
    }

    /// A 401 for a missing or wrong key.
    pub(crate) fn unauthorized() -> Self {
        Self {
            code: Some("invalid_api_key"),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "incorrect API key provided to the mock provider",
            )
        }
    }

    /// The answer of a `status` fault.
    pub(crate) fn fault(status: StatusCode, retry_after_s: Option<u64>) -> Self {
        let code = (status == StatusCode::TOO_MANY_REQUESTS).then_some("rate_limit_exceeded");
        Self {
            code,
            retry_after_s,
            ..Self::new(
                status,
                format!("mock provider fault: status {}", status.as_u16()),
            )
        }
    }

    /// Renders the answer in `format`.
    pub(crate) fn into_response(self, format: ApiFormat) -> Response<MockBody> {
        let body = match format {
            ApiFormat::OpenAi => json!({
                "error": {
                    "message": self.message,
                    "type": openai_type(self.status),
                    "param": self.param,
                    "code": self.code,
                }
            }),
            ApiFormat::Anthropic => json!({
                "type": "error",
                "error": {
                    "type": anthropic_type(self.status),
                    "message": self.message,
                }
            }),
        };
        let mut response = json_response(self.status, &body);
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// OpenAI's `error.type` for a status.
fn openai_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        403 => "permission_error",
        429 => "rate_limit_error",
        500..=599 => "server_error",
        // OpenAI reports 400, 401, 404, 413 and 422 all as invalid requests;
        // the `code` field tells them apart.
        _ => "invalid_request_error",
    }
}

/// Anthropic's `error.type` for a status (from its errors documentation).
fn anthropic_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_types_follow_each_provider() {
        let cases = [
            (429, "rate_limit_error", "rate_limit_error"),
            (500, "server_error", "api_error"),
            (503, "server_error", "api_error"),
            (529, "server_error", "overloaded_error"),
            (401, "invalid_request_error", "authentication_error"),
            (400, "invalid_request_error", "invalid_request_error"),
        ];
        for (code, openai, anthropic) in cases {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(openai_type(status), openai, "{code}");
            assert_eq!(anthropic_type(status), anthropic, "{code}");
        }
    }

    #[test]
    fn fault_carries_retry_after() {
        let response = ApiError::fault(StatusCode::TOO_MANY_REQUESTS, Some(2))
            .into_response(ApiFormat::Anthropic);
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }
}

//! Error `type` values in each format's words, for errors relayed mid-stream.
//!
//! An error event from the upstream is re-rendered in the client's format;
//! the type decides whether the client's SDK treats it as its own fault, a
//! rate limit or a server problem.

/// Anthropic `error.type` -> OpenAI `(type, code)`.
pub(crate) fn to_openai(anthropic_type: &str) -> (&'static str, Option<&'static str>) {
    match anthropic_type {
        "invalid_request_error" | "request_too_large" => ("invalid_request_error", None),
        "authentication_error" => ("authentication_error", None),
        "permission_error" => ("permission_error", None),
        "not_found_error" => ("invalid_request_error", Some("not_found")),
        "rate_limit_error" => ("rate_limit_error", None),
        "overloaded_error" => ("api_error", Some("overloaded")),
        "billing_error" => ("insufficient_quota", None),
        _ => ("api_error", None),
    }
}

/// OpenAI `error.type` -> Anthropic `error.type`.
pub(crate) fn to_anthropic(openai_type: &str) -> &'static str {
    match openai_type {
        "invalid_request_error" => "invalid_request_error",
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "not_found_error" => "not_found_error",
        "rate_limit_error" | "insufficient_quota" => "rate_limit_error",
        _ => "api_error",
    }
}

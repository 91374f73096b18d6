//! OpenAI-shaped error bodies, whole and as a stream event.
//!
//! The OpenAI SDKs read `error.message`, `error.type` and `error.code` from
//! the body of a non-2xx response, and raise on a stream event whose data has
//! an `error` member; both shapes come from [`error_value`].

use bytes::Bytes;
use serde_json::{Value, json};

use crate::sse;

/// `{"error":{"message","type","param":null,"code"}}`.
pub fn error_body(message: &str, error_type: &str, code: Option<&str>) -> Bytes {
    Bytes::from(error_value(message, error_type, code).to_string())
}

/// `data: {"error":{...}}\n\n`. It is never followed by `data: [DONE]`: a
/// stream that ends with an error must not look finished to the client.
pub fn stream_error_frame(message: &str, error_type: &str, code: Option<&str>) -> Bytes {
    sse::data_frame(&error_value(message, error_type, code).to_string())
}

/// The error object both shapes share.
fn error_value(message: &str, error_type: &str, code: Option<&str>) -> Value {
    json!({
        "error": {
            "message": message,
            "type": error_type,
            "param": null,
            "code": code,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_all_four_fields() {
        let body = error_body(
            "no such model",
            "invalid_request_error",
            Some("model_not_found"),
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"error": {"message": "no such model", "type": "invalid_request_error", "param": null, "code": "model_not_found"}})
        );
    }

    #[test]
    fn stream_frame_is_one_data_event() {
        let frame = stream_error_frame("cut", "api_error", None);
        assert!(frame.starts_with(b"data: {\"error\":"));
        assert!(frame.ends_with(b"}\n\n"));
    }
}

//! Anthropic-shaped error bodies, whole and as a stream event.
//!
//! The Anthropic SDKs read `error.type` and `error.message`; on a stream they
//! raise on an `error` event, which (like every Anthropic frame) needs both
//! the `event:` line and a matching `"type"` in its data.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::anthropic::frame;

/// `{"type":"error","error":{"type","message"}}`.
pub fn error_body(error_type: &str, message: &str) -> Bytes {
    Bytes::from(error_value(error_type, message).to_string())
}

/// `event: error\ndata: {"type":"error","error":{...}}\n\n`.
pub fn stream_error_frame(error_type: &str, message: &str) -> Bytes {
    frame("error", error_value(error_type, message))
}

fn error_value(error_type: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_matches_the_documented_shape() {
        let v: Value = serde_json::from_slice(&error_body("not_found_error", "no model")).unwrap();
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": "not_found_error", "message": "no model"}})
        );
    }

    #[test]
    fn stream_frame_names_the_event_twice() {
        let f = stream_error_frame("overloaded_error", "Overloaded");
        assert!(f.starts_with(b"event: error\ndata: {"));
        assert!(f.ends_with(b"\n\n"));
    }
}

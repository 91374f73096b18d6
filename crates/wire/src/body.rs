//! Parsing a client's request body into the JSON object every reader here takes.
//!
//! Both APIs take a JSON object; anything else (bad JSON, an array, a bare
//! string) is refused with [`WireError::Json`] before any field is read, so
//! the edge renders one 400 shape for every malformed body.

use serde_json::{Map, Value};

use crate::WireError;

/// Parses `body` as a JSON object.
///
/// # Errors
///
/// [`WireError::Json`] when `body` is not JSON or not an object; the message
/// carries serde's line and column.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, WireError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(WireError::Json(format!(
            "expected a JSON object, got {}",
            crate::field::describe(&other)
        ))),
        Err(e) => Err(WireError::Json(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_parse_and_everything_else_is_a_json_error() {
        assert_eq!(parse_object(br#"{"model":"m"}"#).unwrap().len(), 1);
        for bad in [&b"[1]"[..], b"\"text\"", b"{\"model\":", b""] {
            let err = parse_object(bad).unwrap_err();
            assert_eq!(err.kind(), "invalid_json", "{bad:?}");
        }
    }
}

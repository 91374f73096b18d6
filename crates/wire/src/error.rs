//! The error type of the wire crate.
//!
//! Three classes matter to the caller, because each becomes a different
//! response: a client body that is not JSON (400), a client body with a bad
//! field (400, naming the field), and an upstream body we cannot read (502).

/// What went wrong while reading or translating a body.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The client's JSON is not an object / not JSON: the message says what.
    #[error("invalid JSON body: {0}")]
    Json(String),
    /// A field is missing or has the wrong type/value. `field` is its JSON
    /// path, e.g. `messages` or `messages[2].role`.
    #[error("invalid request: {field}: {reason}")]
    Invalid {
        /// JSON path of the offending field, e.g. `messages[2].role`.
        field: String,
        /// What is wrong with it, in lowercase words.
        reason: String,
    },
    /// The upstream sent something we cannot interpret (bad JSON, unexpected shape).
    #[error("upstream response could not be read: {0}")]
    Upstream(String),
}

impl WireError {
    /// A short stable label for metrics; low cardinality by construction.
    pub fn kind(&self) -> &'static str {
        match self {
            WireError::Json(_) => "invalid_json",
            WireError::Invalid { .. } => "invalid_request",
            WireError::Upstream(_) => "upstream_unreadable",
        }
    }

    /// The `param` an OpenAI error body should name, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            WireError::Invalid { field, .. } => Some(field),
            WireError::Json(_) | WireError::Upstream(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_the_field_in_its_message() {
        let e = WireError::Invalid {
            field: "messages[2].role".into(),
            reason: "must be a string".into(),
        };
        assert_eq!(
            e.to_string(),
            "invalid request: messages[2].role: must be a string"
        );
        assert_eq!(e.kind(), "invalid_request");
        assert_eq!(e.field(), Some("messages[2].role"));
    }
}

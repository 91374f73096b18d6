//! Typed reads of client JSON fields that name the failing field on error.
//!
//! Both formats validate requests field by field, and a 400 is only useful
//! when it says which field is wrong (`messages[2].role`). [`Path`] carries
//! that location on the stack and renders it only when an error is built, so
//! validating a good request (every request) allocates nothing for paths.

use std::fmt;

use serde_json::{Map, Value};

use crate::WireError;

/// A JSON path to a value, built by borrowing its parent; rendered lazily.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Path<'a> {
    /// The request object itself.
    Root,
    /// A member of an object.
    Key(&'a Path<'a>, &'a str),
    /// An element of an array.
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    /// The path of member `key` of the object at `self`.
    pub(crate) fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    /// The path of element `i` of the array at `self`.
    pub(crate) fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }

    /// An `Invalid` error about the value at this path.
    pub(crate) fn invalid(&self, reason: impl Into<String>) -> WireError {
        WireError::Invalid {
            field: self.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// How a value is described in error reasons ("got a number").
pub(crate) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The member `key`, treating an explicit `null` as absent: both APIs accept
/// `null` for every optional field, and the SDKs send it.
pub(crate) fn present<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// `v` as an object, or an error naming `at`.
pub(crate) fn object<'v>(v: &'v Value, at: Path<'_>) -> Result<&'v Map<String, Value>, WireError> {
    v.as_object()
        .ok_or_else(|| at.invalid(format!("must be an object, got {}", describe(v))))
}

/// A required, non-empty string member.
pub(crate) fn required_str<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    at: Path<'_>,
) -> Result<&'v str, WireError> {
    match present(obj, key) {
        None => Err(at.key(key).invalid("is required")),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(at.key(key).invalid("must not be empty")),
        Some(v) => Err(at
            .key(key)
            .invalid(format!("must be a string, got {}", describe(v)))),
    }
}

/// An optional string member (empty allowed).
pub(crate) fn opt_str<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    at: Path<'_>,
) -> Result<Option<&'v str>, WireError> {
    match present(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(at
            .key(key)
            .invalid(format!("must be a string, got {}", describe(v)))),
    }
}

/// An optional boolean member.
pub(crate) fn opt_bool(
    obj: &Map<String, Value>,
    key: &str,
    at: Path<'_>,
) -> Result<Option<bool>, WireError> {
    match present(obj, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(at
            .key(key)
            .invalid(format!("must be a boolean, got {}", describe(v)))),
    }
}

/// An optional integer member that must be at least 1.
pub(crate) fn opt_positive_int(
    obj: &Map<String, Value>,
    key: &str,
    at: Path<'_>,
) -> Result<Option<u64>, WireError> {
    match present(obj, key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(at
                .key(key)
                .invalid(format!("must be a positive integer, got {v}"))),
        },
    }
}

/// An optional number member within `min..=max`.
pub(crate) fn opt_number_in(
    obj: &Map<String, Value>,
    key: &str,
    at: Path<'_>,
    min: f64,
    max: f64,
) -> Result<Option<f64>, WireError> {
    match present(obj, key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if (min..=max).contains(&x) => Ok(Some(x)),
            Some(_) => Err(at
                .key(key)
                .invalid(format!("must be between {min} and {max}, got {v}"))),
            None => Err(at
                .key(key)
                .invalid(format!("must be a number, got {}", describe(v)))),
        },
    }
}

/// An optional array member.
pub(crate) fn opt_array<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    at: Path<'_>,
) -> Result<Option<&'v [Value]>, WireError> {
    match present(obj, key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(v) => Err(at
            .key(key)
            .invalid(format!("must be an array, got {}", describe(v)))),
    }
}

/// A required array member with at least one element.
pub(crate) fn required_non_empty_array<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    at: Path<'_>,
) -> Result<&'v [Value], WireError> {
    match opt_array(obj, key, at)? {
        None => Err(at.key(key).invalid("is required")),
        Some([]) => Err(at.key(key).invalid("must not be empty")),
        Some(a) => Ok(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_render_as_json_paths() {
        let root = Path::Root;
        let messages = root.key("messages");
        let second = messages.index(2);
        assert_eq!(second.key("role").to_string(), "messages[2].role");
        let content = second.key("content");
        let part = content.index(0);
        assert_eq!(
            part.key("image_url").key("url").to_string(),
            "messages[2].content[0].image_url.url"
        );
    }

    #[test]
    fn null_counts_as_absent_for_optional_fields() {
        let obj = json!({"stream": null, "n": 0});
        let obj = obj.as_object().unwrap();
        assert_eq!(opt_bool(obj, "stream", Path::Root).unwrap(), None);
        let err = opt_positive_int(obj, "n", Path::Root).unwrap_err();
        assert_eq!(err.field(), Some("n"));
    }
}

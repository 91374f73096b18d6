//! Validation of an OpenAI embeddings request and the facts admission needs.
//!
//! The input count matters to admission: the prompt-token bound of an
//! embeddings request grows with the number of inputs.

use serde_json::{Map, Value};

use crate::WireError;
use crate::field::{self, Path, describe};

/// What the gateway needs to know about an embeddings request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingsFacts {
    /// The requested model name, as the client wrote it.
    pub model: String,
    /// How many inputs are embedded (1 for a single string or token array).
    pub inputs: u64,
}

/// Validates an embeddings request: `model` a non-empty string, `input` a
/// non-empty string, a non-empty array of strings, a non-empty array of
/// token ids, or a non-empty array of non-empty token-id arrays.
///
/// # Errors
///
/// [`WireError::Invalid`] naming `model`, `input` or `input[i]`.
pub fn embeddings_facts(req: &Map<String, Value>) -> Result<EmbeddingsFacts, WireError> {
    let root = Path::Root;
    let model = field::required_str(req, "model", root)?.to_owned();
    let at = root.key("input");
    let inputs = match field::present(req, "input") {
        None => return Err(at.invalid("is required")),
        Some(Value::String(s)) if s.is_empty() => return Err(at.invalid("must not be empty")),
        Some(Value::String(_)) => 1,
        Some(Value::Array(items)) => count_array(items, at)?,
        Some(v) => {
            return Err(at.invalid(format!("must be a string or an array, got {}", describe(v))));
        }
    };
    Ok(EmbeddingsFacts { model, inputs })
}

/// Inputs in an array input, whose first element decides its kind.
fn count_array(items: &[Value], at: Path<'_>) -> Result<u64, WireError> {
    let Some(first) = items.first() else {
        return Err(at.invalid("must not be empty"));
    };
    let len = u64::try_from(items.len()).unwrap_or(u64::MAX);
    match first {
        Value::String(_) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if !s.is_empty() => {}
                    Value::String(_) => return Err(at.index(i).invalid("must not be empty")),
                    v => {
                        return Err(at
                            .index(i)
                            .invalid(format!("must be a string, got {}", describe(v))));
                    }
                }
            }
            Ok(len)
        }
        Value::Number(_) => {
            check_tokens(items, at)?;
            Ok(1)
        }
        Value::Array(_) => {
            for (i, item) in items.iter().enumerate() {
                let item_at = at.index(i);
                match item {
                    Value::Array(tokens) if tokens.is_empty() => {
                        return Err(item_at.invalid("must not be empty"));
                    }
                    Value::Array(tokens) => check_tokens(tokens, item_at)?,
                    v => {
                        return Err(item_at.invalid(format!(
                            "must be an array of token ids, got {}",
                            describe(v)
                        )));
                    }
                }
            }
            Ok(len)
        }
        v => Err(at.index(0).invalid(format!(
            "must be a string, a token id or an array of token ids, got {}",
            describe(v)
        ))),
    }
}

/// Every element is a non-negative integer token id.
fn check_tokens(tokens: &[Value], at: Path<'_>) -> Result<(), WireError> {
    match tokens.iter().position(|t| t.as_u64().is_none()) {
        None => Ok(()),
        Some(i) => Err(at
            .index(i)
            .invalid("must be a non-negative integer token id")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn facts(input: Value) -> Result<EmbeddingsFacts, WireError> {
        let req = json!({"model": "text-embedding-3-small", "input": input});
        embeddings_facts(req.as_object().unwrap())
    }

    fn bad_field(input: Value) -> String {
        match facts(input) {
            Err(WireError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn counts_each_input_shape() {
        assert_eq!(facts(json!("The food was delicious")).unwrap().inputs, 1);
        assert_eq!(facts(json!(["a", "b", "c"])).unwrap().inputs, 3);
        assert_eq!(facts(json!([1, 2, 3])).unwrap().inputs, 1);
        assert_eq!(facts(json!([[1, 2], [3]])).unwrap().inputs, 2);
    }

    #[test]
    fn empty_or_mistyped_inputs_are_refused() {
        assert_eq!(bad_field(Value::Null), "input");
        assert_eq!(bad_field(json!("")), "input");
        assert_eq!(bad_field(json!([])), "input");
        assert_eq!(bad_field(json!(7)), "input");
        assert_eq!(bad_field(json!(["a", 1])), "input[1]");
        assert_eq!(bad_field(json!([1, -2])), "input[1]");
        assert_eq!(bad_field(json!([[1], []])), "input[1]");
        assert_eq!(bad_field(json!([[1], [2, "x"]])), "input[1][1]");
        assert_eq!(bad_field(json!([{}])), "input[0]");
    }

    #[test]
    fn model_is_required() {
        let req = json!({"input": "x"});
        let err = embeddings_facts(req.as_object().unwrap()).unwrap_err();
        assert_eq!(err.field(), Some("model"));
    }
}

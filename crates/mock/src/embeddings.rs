//! OpenAI embeddings (`/v1/embeddings` and the Azure deployment path).
//!
//! Each input gets a unit vector derived from a hash of the input, so equal
//! inputs embed equally. Inputs may be a string, an array of strings, an array
//! of token ids or an array of such arrays, as the API allows. A string
//! counts `ceil(bytes / 4)` tokens and a token array its length; the total is
//! bounded by the body's bytes. Embeddings are billed at the input price with
//! no completion tokens.

use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::base64;
use crate::body::json_response;
use crate::content::{fnv1a, hash_bytes, mix, text_tokens};
use crate::route::{Call, Reply};

/// Vector length when the request does not ask for one: short, to keep
/// answers small.
const DEFAULT_DIMENSIONS: u64 = 16;

/// Longest vector served (OpenAI's largest model has 3072 dimensions).
const MAX_DIMENSIONS: u64 = 4096;

/// Answers an embeddings request; `deployment` is set on Azure paths and
/// names the model.
pub(crate) fn embed(call: &Call<'_>, deployment: Option<&str>) -> Result<Reply, ApiError> {
    let request = call.json()?;
    let model = match deployment {
        Some(deployment) => deployment.to_owned(),
        None => request
            .get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid("model", "you must provide a model parameter"))?
            .to_owned(),
    };
    let inputs = inputs(request.get("input"))?;
    let dimensions = match request.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(value) => value
            .as_u64()
            .filter(|d| (1..=MAX_DIMENSIONS).contains(d))
            .ok_or_else(|| {
                ApiError::invalid("dimensions", "dimensions must be an integer from 1 to 4096")
            })?,
    };
    let base64 = match request.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "encoding_format",
                "encoding_format must be 'float' or 'base64'",
            ));
        }
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let vector = vector(input.seed, dimensions);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::encode(&bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens = inputs
        .iter()
        .map(|input| input.tokens)
        .sum::<u64>()
        .min(call.body.len() as u64);
    let body = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    let charge = call.charge(&model, tokens);
    Ok(Reply {
        response: json_response(http::StatusCode::OK, &body),
        delay: call.shared.timing().ttft,
        bill: Some((charge, 0)),
    })
}

/// One input: its seed and token count.
#[derive(Debug, PartialEq, Eq)]
struct Input {
    seed: u64,
    tokens: u64,
}

/// Parses `input` in any of its four forms.
fn inputs(input: Option<&Value>) -> Result<Vec<Input>, ApiError> {
    let invalid = || {
        ApiError::invalid(
            "input",
            "input must be a string, an array of strings, an array of tokens or an array of token arrays",
        )
    };
    let text = |text: &str| Input {
        seed: mix(hash_bytes(text.as_bytes())),
        tokens: text_tokens(text),
    };
    let token_ids = |ids: &[Value]| -> Option<Input> {
        let mut seed = hash_bytes(&[]);
        for id in ids {
            seed = fnv1a(seed, &id.as_u64()?.to_le_bytes());
        }
        Some(Input {
            seed: mix(seed),
            tokens: ids.len() as u64,
        })
    };
    match input {
        Some(Value::String(single)) => Ok(vec![text(single)]),
        Some(Value::Array(items)) if !items.is_empty() => {
            if items.iter().all(Value::is_number) {
                return Ok(vec![token_ids(items).ok_or_else(invalid)?]);
            }
            items
                .iter()
                .map(|item| match item {
                    Value::String(single) => Some(text(single)),
                    Value::Array(ids) => token_ids(ids),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(invalid)
        }
        _ => Err(invalid()),
    }
}

/// A unit vector of `dimensions` components derived from `seed`.
fn vector(seed: u64, dimensions: u64) -> Vec<f32> {
    // 53 random bits mapped onto [-1, 1).
    let raw: Vec<f64> = (0..dimensions)
        .map(|i| (mix(seed ^ i) >> 11) as f64 / (1_u64 << 53) as f64 * 2.0 - 1.0)
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    raw.iter()
        .map(|x| if norm > 0.0 { (x / norm) as f32 } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_form_parses() {
        assert_eq!(inputs(Some(&json!("abcdefgh"))).unwrap()[0].tokens, 2);
        assert_eq!(inputs(Some(&json!(["a", "bb"]))).unwrap().len(), 2);
        assert_eq!(inputs(Some(&json!([1, 2, 3]))).unwrap()[0].tokens, 3);
        assert_eq!(inputs(Some(&json!([[1, 2], [3]]))).unwrap()[1].tokens, 1);
        assert!(inputs(Some(&json!([]))).is_err());
        assert!(inputs(Some(&json!([{"a": 1}]))).is_err());
        assert!(inputs(None).is_err());
    }

    #[test]
    fn equal_inputs_embed_equally_as_unit_vectors() {
        let a = inputs(Some(&json!(["same", "same", "other"]))).unwrap();
        assert_eq!(a[0], a[1]);
        let v = vector(a[0].seed, 16);
        assert_eq!(v, vector(a[1].seed, 16));
        assert_ne!(v, vector(a[2].seed, 16));
        let norm: f32 = v.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}

//! Forced tool calls: arguments built from the tool's JSON schema.
//!
//! When a request forces a tool, the answer is a call of it whose arguments
//! satisfy the schema's shape, so SDK code that parses them (and gateway code
//! that translates them between formats) has something real to chew on:
//!
//! 1. `enum` (first value) or `const` wins over `type`.
//! 2. By type: string → a word, integer/number → 1, boolean → true,
//!    null → null, array → one item built from `items`, object → every
//!    property of `properties`, recursively.
//! 3. No type: an object if it has `properties`, the first branch of
//!    `anyOf`/`oneOf`, else a word. The top level is always an object.
//!
//! The arguments are compact JSON; they stream in as many fragments as the
//! call has completion tokens (`ceil(bytes / 4)`, at least 1, at most
//! `max_tokens`), so the count billed is the count of fragments sent.

use serde_json::{Map, Value};

use crate::content::{hash_bytes, id_chars, mix, word};

/// A tool call the mock answers with.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ToolCall {
    /// The forced tool's name.
    pub(crate) name: String,
    /// The arguments as a JSON value (Anthropic `input`).
    pub(crate) input: Value,
    /// The arguments as compact JSON text (OpenAI `arguments`).
    pub(crate) arguments: String,
    /// `arguments` split into one piece per completion token.
    pub(crate) fragments: Vec<String>,
    /// Seed for the call's id.
    pub(crate) id_seed: u64,
}

/// Deepest nesting followed in a schema; deeper levels become `null`, so a
/// recursive schema cannot make an unbounded answer.
const MAX_DEPTH: u32 = 8;

/// Bytes of arguments per completion token.
const BYTES_PER_TOKEN: usize = 4;

/// The call of `name` for a prompt with `seed`, built from `schema`.
pub(crate) fn tool_call(
    seed: u64,
    name: &str,
    schema: &Value,
    max_tokens: Option<u64>,
) -> ToolCall {
    let seed = mix(seed ^ hash_bytes(name.as_bytes()));
    // Tool parameters are always an object, even when the schema is missing
    // or leaves out `type`.
    let input = object_for(schema, seed, 0);
    // Serialising a `Value` cannot fail: its map keys are always strings.
    let arguments = serde_json::to_string(&input).unwrap_or_else(|_| "{}".to_owned());
    let chars: Vec<char> = arguments.chars().collect();
    let wanted = chars.len().div_ceil(BYTES_PER_TOKEN).max(1);
    let limit = max_tokens.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
    let fragments = split(&chars, wanted.min(limit).max(1));
    ToolCall {
        name: name.to_owned(),
        input,
        arguments,
        fragments,
        id_seed: seed,
    }
}

impl ToolCall {
    /// Completion tokens: one per fragment.
    pub(crate) fn tokens(&self) -> u64 {
        self.fragments.len() as u64
    }

    /// An id with `prefix` (`call_` for OpenAI, `toolu_` for Anthropic).
    pub(crate) fn id(&self, prefix: &str) -> String {
        format!("{prefix}{}", id_chars(self.id_seed, 24))
    }
}

/// Splits `chars` into `parts` non-empty pieces of near-equal length.
///
/// `parts` never exceeds `chars.len()` for non-empty input (it is at most
/// `ceil(len / 4)`), so every piece has at least one character.
fn split(chars: &[char], parts: usize) -> Vec<String> {
    let len = chars.len();
    (0..parts)
        .map(|i| {
            let start = i * len / parts;
            let end = (i + 1) * len / parts;
            chars.get(start..end).unwrap_or_default().iter().collect()
        })
        .collect()
}

/// A value that fits `schema` (rules 1 to 3).
fn value_for(schema: &Value, seed: u64, depth: u32) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|values| values.first())
    {
        return first.clone();
    }
    if let Some(constant) = schema.get("const") {
        return constant.clone();
    }
    match schema_type(schema) {
        Some("string") => Value::String(word(seed).to_owned()),
        Some("integer" | "number") => Value::from(1),
        Some("boolean") => Value::Bool(true),
        Some("null") => Value::Null,
        Some("array") => {
            let items = schema.get("items").unwrap_or(&Value::Null);
            Value::Array(vec![value_for(items, mix(seed), depth + 1)])
        }
        Some("object") => object_for(schema, seed, depth),
        _ => {
            let branch = ["anyOf", "oneOf"]
                .iter()
                .find_map(|key| schema.get(*key)?.as_array()?.first());
            match branch {
                Some(branch) => value_for(branch, seed, depth + 1),
                None if schema.get("properties").is_some() => object_for(schema, seed, depth),
                None => Value::String(word(seed).to_owned()),
            }
        }
    }
}

/// The `type` of `schema`; for a list of types, the first that is not "null".
fn schema_type(schema: &Value) -> Option<&str> {
    match schema.get("type")? {
        Value::String(ty) => Some(ty),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|ty| *ty != "null")
            .or(Some("null")),
        _ => None,
    }
}

/// An object with every property of `schema`.
fn object_for(schema: &Value, seed: u64, depth: u32) -> Value {
    let mut object = Map::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (key, property) in properties {
            let seed = mix(seed ^ hash_bytes(key.as_bytes()));
            object.insert(key.clone(), value_for(property, seed, depth + 1));
        }
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn weather_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
                "detailed": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "coords": {"type": "object", "properties": {"lat": {"type": "number"}}},
                "note": {"type": ["null", "string"]}
            },
            "required": ["location", "unit"]
        })
    }

    #[test]
    fn arguments_follow_the_schema() {
        let call = tool_call(42, "get_weather", &weather_schema(), None);
        let args: Value = serde_json::from_str(&call.arguments).unwrap();
        assert_eq!(args, call.input);
        assert!(args["location"].is_string());
        assert_eq!(args["unit"], "celsius");
        assert_eq!(args["days"], 1);
        assert_eq!(args["detailed"], true);
        assert_eq!(args["tags"].as_array().unwrap().len(), 1);
        assert_eq!(args["coords"]["lat"], 1);
        assert!(args["note"].is_string());
    }

    #[test]
    fn fragments_rebuild_the_arguments_one_per_token() {
        let call = tool_call(42, "get_weather", &weather_schema(), None);
        assert_eq!(call.fragments.concat(), call.arguments);
        assert_eq!(call.tokens(), call.arguments.len().div_ceil(4) as u64);
        assert!(call.fragments.iter().all(|f| !f.is_empty()));
    }

    #[test]
    fn max_tokens_bounds_the_fragments_not_the_arguments() {
        let call = tool_call(42, "get_weather", &weather_schema(), Some(3));
        assert_eq!(call.tokens(), 3);
        assert_eq!(call.fragments.concat(), call.arguments);
    }

    #[test]
    fn empty_schema_gives_an_empty_object_in_one_token() {
        let call = tool_call(1, "noop", &json!({"type": "object"}), None);
        assert_eq!(call.arguments, "{}");
        assert_eq!(call.tokens(), 1);
    }

    #[test]
    fn recursive_schemas_stop() {
        let mut schema = json!({"type": "string"});
        for _ in 0..20 {
            schema = json!({"type": "array", "items": schema});
        }
        let call = tool_call(1, "deep", &json!({"properties": {"nested": schema}}), None);
        assert!(call.arguments.contains("null"));
        assert!(call.arguments.matches('[').count() <= MAX_DEPTH as usize);
    }
}

//! Anthropic Messages request -> OpenAI chat request.
//!
//! The inverse of [`super::to_anthropic`]: the top-level system prompt
//! becomes the first message, `tool_result` blocks become `tool` messages
//! (placed before the rest of their user turn, as OpenAI wants each result
//! right after the assistant message that asked for it), and `tool_use`
//! blocks become assistant `tool_calls` with their input serialized to a
//! JSON string.

use serde_json::{Map, Value, json};

use crate::WireError;
use crate::field::{self, Path, describe};

mod content;
mod tools;

use content::{assistant_message, text_content, user_messages};

/// Anthropic Messages request -> OpenAI chat request for `upstream_model`.
///
/// The inverse mapping: `tool_result` blocks become role `tool` messages,
/// `tool_use` blocks become assistant `tool_calls` with `arguments` the
/// input as a JSON string, `stop_sequences` becomes `stop`, and a streaming
/// request gets `stream_options.include_usage = true` so usage is known.
///
/// `max_tokens` is sent as `max_completion_tokens`, the field OpenAI's
/// current models accept. `top_k`, `thinking`, cache controls and the
/// `is_error` flag of tool results have no OpenAI meaning and are dropped.
///
/// # Errors
///
/// [`WireError::Invalid`] for blocks with no OpenAI form (server tools,
/// images inside tool results, unknown block types) and for malformed fields
/// the translation reads.
pub fn anthropic_to_openai_request(
    req: &Map<String, Value>,
    upstream_model: &str,
) -> Result<Value, WireError> {
    let root = Path::Root;
    let mut messages = Vec::new();
    if let Some(system) = field::present(req, "system") {
        let content = text_content(system, root.key("system"), "system")?;
        messages.push(json!({"role": "system", "content": content}));
    }
    let messages_at = root.key("messages");
    for (i, m) in field::required_non_empty_array(req, "messages", root)?
        .iter()
        .enumerate()
    {
        let at = messages_at.index(i);
        let obj = field::object(m, at)?;
        let content_at = at.key("content");
        let content =
            field::present(obj, "content").ok_or_else(|| content_at.invalid("is required"))?;
        match field::required_str(obj, "role", at)? {
            "user" => user_messages(content, content_at, &mut messages)?,
            "assistant" => messages.push(assistant_message(content, content_at)?),
            other => {
                return Err(at.key("role").invalid(format!(
                    "unknown role '{other}', expected user or assistant"
                )));
            }
        }
    }

    let mut out = Map::new();
    out.insert("model".into(), upstream_model.into());
    out.insert("messages".into(), Value::Array(messages));
    if let Some(max) = field::opt_positive_int(req, "max_tokens", root)? {
        out.insert("max_completion_tokens".into(), max.into());
    }
    if let Some(t) = field::opt_number_in(req, "temperature", root, 0.0, 1.0)? {
        out.insert("temperature".into(), t.into());
    }
    if let Some(p) = field::opt_number_in(req, "top_p", root, 0.0, 1.0)? {
        out.insert("top_p".into(), p.into());
    }
    if let Some(stop) = field::opt_array(req, "stop_sequences", root)? {
        let stop_at = root.key("stop_sequences");
        if let Some(i) = stop.iter().position(|s| !s.is_string()) {
            return Err(stop_at.index(i).invalid("must be a string"));
        }
        if !stop.is_empty() {
            out.insert("stop".into(), Value::Array(stop.to_vec()));
        }
    }
    if let Some(stream) = field::opt_bool(req, "stream", root)? {
        out.insert("stream".into(), stream.into());
        if stream {
            // Without this an OpenAI stream carries no usage at all, and a
            // translated stream could not be billed.
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    if let Some(metadata) = field::present(req, "metadata") {
        let at = root.key("metadata");
        if let Some(user) = field::opt_str(field::object(metadata, at)?, "user_id", at)? {
            out.insert("user".into(), user.into());
        }
    }
    tools::tools(req, &mut out)?;
    Ok(Value::Object(out))
}

/// Text of a string or an array of text blocks, as OpenAI content: the
/// string itself, the one block's text, or an array of text parts.
fn text_parts(blocks: &[Value], at: Path<'_>, what: &str) -> Result<Value, WireError> {
    let mut parts = Vec::with_capacity(blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let block_at = at.index(i);
        let obj = field::object(block, block_at)?;
        match field::required_str(obj, "type", block_at)? {
            "text" => {
                let text = field::opt_str(obj, "text", block_at)?.unwrap_or_default();
                parts.push(json!({"type": "text", "text": text}));
            }
            other => {
                return Err(block_at.key("type").invalid(format!(
                    "{what} block type '{other}' cannot be sent to an OpenAI model, only text"
                )));
            }
        }
    }
    Ok(simplify(parts))
}

/// A single text part as a plain string (every OpenAI-compatible server
/// accepts that); several parts as the array.
fn simplify(mut parts: Vec<Value>) -> Value {
    if parts.len() == 1
        && parts[0].get("type").and_then(Value::as_str) == Some("text")
        && let Some(Value::String(text)) = parts[0].get_mut("text").map(Value::take)
    {
        return Value::String(text);
    }
    Value::Array(parts)
}

fn not_string_or_array(v: &Value) -> String {
    format!(
        "must be a string or an array of content blocks, got {}",
        describe(v)
    )
}

#[cfg(test)]
#[path = "to_openai/tests.rs"]
mod tests;

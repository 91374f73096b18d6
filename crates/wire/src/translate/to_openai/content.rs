//! Message content, Anthropic blocks -> OpenAI messages and parts.
//!
//! One Anthropic user turn can become several OpenAI messages (one `tool`
//! message per `tool_result`, then a user message for the rest), while an
//! assistant turn stays one message whose `tool_use` blocks become
//! `tool_calls`.

use serde_json::{Map, Value, json};

use super::{not_string_or_array, simplify, text_parts};
use crate::WireError;
use crate::field::{self, Path};

/// System prompt or tool result content: a string, or text blocks.
/// `what` names the content in errors ("system", "tool_result content").
pub(super) fn text_content(content: &Value, at: Path<'_>, what: &str) -> Result<Value, WireError> {
    match content {
        Value::String(s) => Ok(Value::String(s.clone())),
        Value::Array(blocks) => text_parts(blocks, at, what),
        v => Err(at.invalid(not_string_or_array(v))),
    }
}

/// The OpenAI messages for one Anthropic user turn, appended to `out`.
pub(super) fn user_messages(
    content: &Value,
    at: Path<'_>,
    out: &mut Vec<Value>,
) -> Result<(), WireError> {
    let blocks = match content {
        Value::String(s) => {
            out.push(json!({"role": "user", "content": s}));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        v => return Err(at.invalid(not_string_or_array(v))),
    };
    let mut parts = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let block_at = at.index(i);
        let obj = field::object(block, block_at)?;
        match field::required_str(obj, "type", block_at)? {
            "text" => {
                let text = field::opt_str(obj, "text", block_at)?.unwrap_or_default();
                parts.push(json!({"type": "text", "text": text}));
            }
            "image" => {
                let url = source_url(obj, block_at)?;
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            "document" => parts.push(document_part(obj, block_at)?),
            "tool_result" => {
                let id = field::required_str(obj, "tool_use_id", block_at)?;
                let content = match field::present(obj, "content") {
                    None => Value::String(String::new()),
                    Some(c) => text_content(c, block_at.key("content"), "tool_result content")?,
                };
                out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
            other => {
                return Err(block_at.key("type").invalid(format!(
                    "content block type '{other}' cannot be sent to an OpenAI model"
                )));
            }
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": simplify(parts)}));
    }
    Ok(())
}

/// One assistant message: text blocks joined, tool_use blocks as tool_calls.
pub(super) fn assistant_message(content: &Value, at: Path<'_>) -> Result<Value, WireError> {
    let blocks = match content {
        Value::String(s) => return Ok(json!({"role": "assistant", "content": s})),
        Value::Array(blocks) => blocks,
        v => return Err(at.invalid(not_string_or_array(v))),
    };
    let mut text = String::new();
    let mut calls = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let block_at = at.index(i);
        let obj = field::object(block, block_at)?;
        match field::required_str(obj, "type", block_at)? {
            "text" => text.push_str(field::opt_str(obj, "text", block_at)?.unwrap_or_default()),
            "tool_use" => {
                let id = field::required_str(obj, "id", block_at)?;
                let name = field::required_str(obj, "name", block_at)?;
                let input = field::present(obj, "input")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}
                }));
            }
            // Extended-thinking blocks are the model's scratch work, signed
            // for Anthropic only; another provider can neither read nor
            // verify them.
            "thinking" | "redacted_thinking" => {}
            other => {
                return Err(block_at.key("type").invalid(format!(
                    "content block type '{other}' cannot be sent to an OpenAI model"
                )));
            }
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    message.insert("content".into(), content);
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(Value::Object(message))
}

/// An image source as an OpenAI image URL (a `data:` URL for base64).
fn source_url(block: &Map<String, Value>, at: Path<'_>) -> Result<String, WireError> {
    let source_at = at.key("source");
    let source = field::present(block, "source").ok_or_else(|| source_at.invalid("is required"))?;
    let source = field::object(source, source_at)?;
    match field::required_str(source, "type", source_at)? {
        "base64" => {
            let media_type = field::required_str(source, "media_type", source_at)?;
            let data = field::required_str(source, "data", source_at)?;
            Ok(format!("data:{media_type};base64,{data}"))
        }
        "url" => Ok(field::required_str(source, "url", source_at)?.to_owned()),
        other => Err(source_at.key("type").invalid(format!(
            "source type '{other}' cannot be sent to an OpenAI model"
        ))),
    }
}

/// A document block as an OpenAI part: base64 PDFs as `file` parts with
/// inline data, plain-text documents as text.
fn document_part(block: &Map<String, Value>, at: Path<'_>) -> Result<Value, WireError> {
    let source_at = at.key("source");
    let source = field::present(block, "source").ok_or_else(|| source_at.invalid("is required"))?;
    let source = field::object(source, source_at)?;
    match field::required_str(source, "type", source_at)? {
        "text" => {
            let data = field::required_str(source, "data", source_at)?;
            Ok(json!({"type": "text", "text": data}))
        }
        "base64" => {
            let url = source_url(block, at)?;
            let title = field::opt_str(block, "title", at)?.unwrap_or("document.pdf");
            Ok(json!({"type": "file", "file": {"filename": title, "file_data": url}}))
        }
        other => Err(source_at.key("type").invalid(format!(
            "document source type '{other}' cannot be sent to an OpenAI model"
        ))),
    }
}

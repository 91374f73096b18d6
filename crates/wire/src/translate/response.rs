//! Non-stream responses, translated back into the client's format.
//!
//! The client's SDK parses these bodies, so every field it requires is
//! present with the type it expects, and ids keep each format's prefix
//! (`chatcmpl-`, `msg_`) because some clients check them.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::translate::stop_reason;
use crate::{Usage, WireError, anthropic, openai};

/// Anthropic non-stream response body -> OpenAI `chat.completion`; returns
/// the body and its usage.
///
/// - `id` is `chatcmpl-` + the upstream id, `created` the caller's clock,
///   `model` the `public_model` the client asked for.
/// - `choices[0].message` has `role`, `content` (text blocks joined, or
///   `null` when the answer is only tool calls) and `tool_calls`.
/// - `finish_reason`: `end_turn` / `stop_sequence` -> `stop`, `max_tokens`
///   -> `length`, `tool_use` -> `tool_calls`, `refusal` -> `content_filter`.
/// - `usage` has `prompt_tokens` (cache tokens included),
///   `completion_tokens` and `total_tokens`.
///
/// Thinking blocks are dropped; cache-read tokens also appear as
/// `usage.prompt_tokens_details.cached_tokens`.
///
/// # Errors
///
/// [`WireError::Upstream`] when the body is not an Anthropic message.
pub fn anthropic_response_to_openai(
    body: &[u8],
    public_model: &str,
    created: u64,
) -> Result<(Bytes, Usage), WireError> {
    #[derive(Deserialize)]
    struct Message {
        id: String,
        content: Vec<Block>,
        stop_reason: Option<String>,
        #[serde(default)]
        usage: anthropic::RawUsage,
    }
    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Block {
        Text {
            text: String,
        },
        ToolUse {
            id: String,
            name: String,
            input: Value,
        },
        #[serde(other)]
        Other,
    }

    let message: Message = serde_json::from_slice(body)
        .map_err(|e| WireError::Upstream(format!("anthropic message body: {e}")))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in message.content {
        match block {
            Block::Text { text: t } => text.push_str(&t),
            Block::ToolUse { id, name, input } => calls.push(json!({
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": input.to_string()}
            })),
            Block::Other => {}
        }
    }
    let mut reply = Map::new();
    reply.insert("role".into(), "assistant".into());
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    reply.insert("content".into(), content);
    reply.insert("refusal".into(), Value::Null);
    if !calls.is_empty() {
        reply.insert("tool_calls".into(), Value::Array(calls));
    }
    let finish_reason =
        stop_reason::to_openai(message.stop_reason.as_deref().unwrap_or("end_turn"));
    let usage = message.usage.into_usage();
    let mut usage_json = json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens(),
    });
    if let (Some(cached), Some(obj)) = (
        message.usage.cache_read_input_tokens,
        usage_json.as_object_mut(),
    ) {
        obj.insert(
            "prompt_tokens_details".into(),
            json!({"cached_tokens": cached}),
        );
    }
    let out = json!({
        "id": format!("chatcmpl-{}", message.id),
        "object": "chat.completion",
        "created": created,
        "model": public_model,
        "choices": [{
            "index": 0,
            "message": reply,
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": usage_json,
    });
    Ok((Bytes::from(out.to_string()), usage))
}

/// OpenAI `chat.completion` body -> Anthropic `message`; returns the body
/// and its usage.
///
/// - `type: message`, `role: assistant`, `model` the `public_model`.
/// - `content`: a text block (content, then refusal) and one `tool_use`
///   block per tool call, its `input` parsed from `arguments`.
/// - `stop_reason`: `stop` -> `end_turn`, `length` -> `max_tokens`,
///   `tool_calls` -> `tool_use`, `content_filter` -> `refusal`.
/// - `usage`: `input_tokens`, `output_tokens`.
///
/// The id is `msg_` + the upstream id without its `chatcmpl-` prefix.
/// `content_filter` maps to Anthropic's `refusal`. Only `choices[0]` is
/// read (translated requests never ask for more). A missing `usage` reads
/// as zero tokens.
///
/// # Errors
///
/// [`WireError::Upstream`] when the body is not a chat completion, has no
/// choices, or a tool call's arguments are not a JSON object (unless the
/// answer was cut by `length`, where the truncated call becomes `{}`).
pub fn openai_response_to_anthropic(
    body: &[u8],
    public_model: &str,
) -> Result<(Bytes, Usage), WireError> {
    #[derive(Deserialize)]
    struct Completion {
        id: String,
        choices: Vec<Choice>,
        usage: Option<openai::RawUsage>,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: Message,
        finish_reason: Option<String>,
    }
    #[derive(Deserialize)]
    struct Message {
        content: Option<Value>,
        refusal: Option<String>,
        tool_calls: Option<Vec<ToolCall>>,
    }
    #[derive(Deserialize)]
    struct ToolCall {
        id: String,
        function: Function,
    }
    #[derive(Deserialize)]
    struct Function {
        name: String,
        arguments: String,
    }

    let completion: Completion = serde_json::from_slice(body)
        .map_err(|e| WireError::Upstream(format!("openai chat completion body: {e}")))?;
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| WireError::Upstream("openai chat completion has no choices".into()))?;
    let finish_reason = choice.finish_reason.as_deref().unwrap_or("stop");
    let mut blocks = Vec::new();
    let text = match choice.message.content {
        Some(Value::String(s)) => s,
        // Some OpenAI-compatible servers answer with an array of text parts.
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    };
    for t in [text, choice.message.refusal.unwrap_or_default()] {
        if !t.is_empty() {
            blocks.push(json!({"type": "text", "text": t}));
        }
    }
    for call in choice.message.tool_calls.unwrap_or_default() {
        let input = match serde_json::from_str::<Value>(&call.function.arguments) {
            Ok(v @ Value::Object(_)) => v,
            _ if call.function.arguments.trim().is_empty() || finish_reason == "length" => {
                json!({})
            }
            _ => {
                return Err(WireError::Upstream(format!(
                    "tool call {} arguments are not a JSON object",
                    call.id
                )));
            }
        };
        blocks.push(json!({
            "type": "tool_use",
            "id": call.id,
            "name": call.function.name,
            "input": input,
        }));
    }
    let usage = completion
        .usage
        .map(openai::RawUsage::into_usage)
        .unwrap_or_default();
    let id = completion
        .id
        .strip_prefix("chatcmpl-")
        .unwrap_or(&completion.id);
    let out = json!({
        "id": format!("msg_{id}"),
        "type": "message",
        "role": "assistant",
        "model": public_model,
        "content": blocks,
        "stop_reason": stop_reason::to_anthropic(finish_reason),
        "stop_sequence": null,
        "usage": {
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
        },
    });
    Ok((Bytes::from(out.to_string()), usage))
}

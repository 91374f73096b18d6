//! Anthropic messages (`/v1/messages`), non-streamed here and streamed in
//! `anthropic/stream.rs`.
//!
//! Validation follows the real API where the gateway's translation could go
//! wrong: `model`, `max_tokens` (at least 1) and a non-empty `messages` are
//! required, and errors come back in Anthropic's error shape.

mod stream;

use std::time::Duration;

use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::body::{json_response, sse_response};
use crate::content::{Answer, Prompt, text_answer};
use crate::ledger::StreamBilling;
use crate::route::{Call, Reply};
use crate::tool::tool_call;

/// Fields of the message object shared by both forms of the answer.
#[derive(Debug)]
pub(crate) struct Message {
    /// `msg_…` id.
    pub(crate) id: String,
    /// Model as requested.
    pub(crate) model: String,
    /// Input tokens.
    pub(crate) input_tokens: u64,
}

/// Answers a messages request.
pub(crate) fn messages(call: &Call<'_>) -> Result<Reply, ApiError> {
    let request = call.json()?;
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("model", "model: Field required"))?
        .to_owned();
    let max_tokens = match request.get("max_tokens") {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(
                "max_tokens",
                "max_tokens: Field required",
            ));
        }
        Some(value) => value.as_u64().filter(|limit| *limit >= 1).ok_or_else(|| {
            ApiError::invalid("max_tokens", "max_tokens: must be an integer of at least 1")
        })?,
    };
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .filter(|messages| !messages.is_empty())
        .ok_or_else(|| {
            ApiError::invalid("messages", "messages: Field required and must be non-empty")
        })?;
    let mut prompt = Prompt::new();
    match request.get("system") {
        None | Some(Value::Null) => {}
        Some(system) => {
            prompt.begin_message();
            add_content(&mut prompt, system);
        }
    }
    for message in messages {
        prompt.begin_message();
        add_content(&mut prompt, message.get("content").unwrap_or(&Value::Null));
    }
    let seed = prompt.seed();
    let answer = match forced_tool(&request)? {
        Some((name, schema)) => Answer::Tool(tool_call(seed, name, schema, Some(max_tokens))),
        None => Answer::Text(text_answer(seed, Some(max_tokens))),
    };
    let message = Message {
        id: format!(
            "msg_{}-{:08}",
            call.shared.config.name,
            call.shared.next_sequence()
        ),
        model,
        input_tokens: prompt.tokens(call.body.len()),
    };
    let charge = call.charge(&message.model, message.input_tokens);
    let timing = call.shared.timing();
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        let script = stream::script(&message, &answer, timing, call.cut_after);
        let billing = StreamBilling::new(call.shared.ledger.clone(), charge);
        return Ok(Reply {
            response: sse_response(script, billing),
            delay: Duration::ZERO,
            bill: None,
        });
    }
    let output_tokens = answer.tokens();
    let content = match &answer {
        Answer::Text(text) => json!([{"type": "text", "text": text.text()}]),
        Answer::Tool(call) => json!([{
            "type": "tool_use",
            "id": call.id("toolu_"),
            "name": call.name,
            "input": call.input,
        }]),
    };
    let body = json!({
        "id": message.id,
        "type": "message",
        "role": "assistant",
        "model": message.model,
        "content": content,
        "stop_reason": stop_reason(&answer),
        "stop_sequence": null,
        "usage": usage(message.input_tokens, output_tokens),
    });
    let per_token = u32::try_from(output_tokens).unwrap_or(u32::MAX);
    Ok(Reply {
        response: json_response(http::StatusCode::OK, &body),
        delay: timing.ttft + timing.per_token.saturating_mul(per_token),
        bill: Some((charge, output_tokens)),
    })
}

/// `stop_reason` of an answer.
pub(crate) fn stop_reason(answer: &Answer) -> &'static str {
    match answer {
        Answer::Tool(_) => "tool_use",
        Answer::Text(text) if text.truncated => "max_tokens",
        Answer::Text(_) => "end_turn",
    }
}

/// The `usage` object.
pub(crate) fn usage(input_tokens: u64, output_tokens: u64) -> Value {
    json!({
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    })
}

/// Adds the text of `content`: a string, or blocks whose text counts
/// (`text` blocks, and the content of `tool_result` blocks).
fn add_content(prompt: &mut Prompt, content: &Value) {
    match content {
        Value::String(text) => prompt.text(text),
        Value::Array(blocks) => {
            for block in blocks {
                if let Some(text) = block.get("text").and_then(Value::as_str) {
                    prompt.text(text);
                } else if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                    add_content(prompt, block.get("content").unwrap_or(&Value::Null));
                }
            }
        }
        _ => {}
    }
}

/// The tool a request forces, with its input schema: `{"type":"tool","name"}`
/// names it, `{"type":"any"}` means the first tool.
fn forced_tool(request: &Value) -> Result<Option<(&str, &Value)>, ApiError> {
    let choice = request.get("tool_choice");
    let wanted = match choice.and_then(|c| c.get("type")).and_then(Value::as_str) {
        Some("tool") => choice.and_then(|c| c.get("name")).and_then(Value::as_str),
        Some("any") => None,
        _ => return Ok(None),
    };
    let tools = request
        .get("tools")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let found = tools.iter().find(|tool| {
        wanted.is_none_or(|wanted| tool.get("name").and_then(Value::as_str) == Some(wanted))
    });
    let Some(tool) = found else {
        return Err(ApiError::invalid(
            "tool_choice",
            "tool_choice names a tool that is not in tools",
        ));
    };
    let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
    let schema = tool.get("input_schema").unwrap_or(&Value::Null);
    Ok(Some((name, schema)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_blocks_and_tool_results_count_as_text() {
        let mut with_blocks = Prompt::new();
        with_blocks.begin_message();
        add_content(&mut with_blocks, &json!([{"type": "text", "text": "abcd"}]));
        with_blocks.begin_message();
        add_content(
            &mut with_blocks,
            &json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "efgh"}]}]),
        );
        let mut plain = Prompt::new();
        plain.begin_message();
        plain.text("abcd");
        plain.begin_message();
        plain.text("efgh");
        assert_eq!(with_blocks.tokens(usize::MAX), plain.tokens(usize::MAX));
        assert_eq!(with_blocks.seed(), plain.seed());
    }

    #[test]
    fn tool_choice_forces_named_or_first_tool() {
        let tools = json!([{"name": "a", "input_schema": {"type": "object"}}, {"name": "b", "input_schema": {}}]);
        let named = json!({"tools": tools, "tool_choice": {"type": "tool", "name": "b"}});
        assert_eq!(forced_tool(&named).unwrap().unwrap().0, "b");
        let any = json!({"tools": tools, "tool_choice": {"type": "any"}});
        assert_eq!(forced_tool(&any).unwrap().unwrap().0, "a");
        let auto = json!({"tools": tools, "tool_choice": {"type": "auto"}});
        assert!(forced_tool(&auto).unwrap().is_none());
        let missing = json!({"tools": tools, "tool_choice": {"type": "tool", "name": "z"}});
        assert!(forced_tool(&missing).is_err());
    }
}

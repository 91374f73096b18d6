//! OpenAI chat completions (`/v1/chat/completions` and the Azure deployment
//! path), non-streamed here and streamed in `openai/stream.rs`.
//!
//! The answer's JSON follows OpenAI's documented `chat.completion` object,
//! including the fields an SDK expects even when empty (`refusal`,
//! `annotations`, `logprobs`, the usage details).

mod stream;

use std::time::Duration;

use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::body::{json_response, sse_response};
use crate::content::{Answer, Prompt, text_answer};
use crate::ledger::StreamBilling;
use crate::route::{Call, Reply};
use crate::state::unix_now_s;
use crate::tool::tool_call;

/// Fields every chunk and completion of one answer share.
#[derive(Debug)]
pub(crate) struct Completion {
    /// `chatcmpl-…` id.
    pub(crate) id: String,
    /// Unix seconds.
    pub(crate) created: u64,
    /// Model as requested (the deployment on Azure paths).
    pub(crate) model: String,
    /// `fp_<mock name>`.
    pub(crate) fingerprint: String,
}

/// Answers a chat completion request; `deployment` is set on Azure paths
/// and names the model.
pub(crate) fn chat(call: &Call<'_>, deployment: Option<&str>) -> Result<Reply, ApiError> {
    let request = call.json()?;
    let model = match deployment {
        Some(deployment) => deployment.to_owned(),
        None => request
            .get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid("model", "you must provide a model parameter"))?
            .to_owned(),
    };
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .filter(|messages| !messages.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "messages",
                "'messages' must be a non-empty array of messages",
            )
        })?;
    let mut prompt = Prompt::new();
    for message in messages {
        prompt.begin_message();
        add_content(&mut prompt, message.get("content"));
    }
    let max_tokens = max_tokens(&request)?;
    let seed = prompt.seed();
    let answer = match forced_tool(&request)? {
        Some((name, schema)) => Answer::Tool(tool_call(seed, name, schema, max_tokens)),
        None => Answer::Text(text_answer(seed, max_tokens)),
    };
    let prompt_tokens = prompt.tokens(call.body.len());
    let name = &call.shared.config.name;
    let completion = Completion {
        id: format!("chatcmpl-{name}-{:08}", call.shared.next_sequence()),
        created: unix_now_s(),
        model,
        fingerprint: format!("fp_{name}"),
    };
    let charge = call.charge(&completion.model, prompt_tokens);
    let timing = call.shared.timing();
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
        let script = stream::script(
            &completion,
            &answer,
            prompt_tokens,
            include_usage,
            timing,
            call.cut_after,
        );
        let billing = StreamBilling::new(call.shared.ledger.clone(), charge);
        return Ok(Reply {
            response: sse_response(script, billing),
            delay: Duration::ZERO,
            bill: None,
        });
    }
    let completion_tokens = answer.tokens();
    let body = json!({
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [{
            "index": 0,
            "message": message(&answer),
            "logprobs": null,
            "finish_reason": finish_reason(&answer),
        }],
        "usage": usage(prompt_tokens, completion_tokens),
        "service_tier": "default",
        "system_fingerprint": completion.fingerprint,
    });
    let per_token = u32::try_from(completion_tokens).unwrap_or(u32::MAX);
    Ok(Reply {
        response: json_response(http::StatusCode::OK, &body),
        delay: timing.ttft + timing.per_token.saturating_mul(per_token),
        bill: Some((charge, completion_tokens)),
    })
}

/// The assistant message of a non-streamed answer.
fn message(answer: &Answer) -> Value {
    match answer {
        Answer::Text(text) => json!({
            "role": "assistant",
            "content": text.text(),
            "refusal": null,
            "annotations": [],
        }),
        Answer::Tool(call) => json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": call.id("call_"),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }],
            "refusal": null,
            "annotations": [],
        }),
    }
}

/// `finish_reason` of an answer.
pub(crate) fn finish_reason(answer: &Answer) -> &'static str {
    match answer {
        Answer::Tool(_) => "tool_calls",
        Answer::Text(text) if text.truncated => "length",
        Answer::Text(_) => "stop",
    }
}

/// The `usage` object.
pub(crate) fn usage(prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    })
}

/// Adds a message's text (a string, or the `text` of its content parts).
fn add_content(prompt: &mut Prompt, content: Option<&Value>) {
    match content {
        Some(Value::String(text)) => prompt.text(text),
        Some(Value::Array(parts)) => {
            for text in parts.iter().filter_map(|part| part.get("text")?.as_str()) {
                prompt.text(text);
            }
        }
        _ => {}
    }
}

/// The completion limit: `max_completion_tokens`, else `max_tokens`.
fn max_tokens(request: &Value) -> Result<Option<u64>, ApiError> {
    for field in ["max_completion_tokens", "max_tokens"] {
        match request.get(field) {
            None | Some(Value::Null) => {}
            Some(value) => {
                return match value.as_u64() {
                    Some(limit) if limit >= 1 => Ok(Some(limit)),
                    _ => Err(ApiError::invalid(
                        field,
                        format!("{field} must be an integer of at least 1"),
                    )),
                };
            }
        }
    }
    Ok(None)
}

/// The tool a request forces, with its parameter schema: a named function
/// in `tool_choice`, or the first tool for `"required"`.
fn forced_tool(request: &Value) -> Result<Option<(&str, &Value)>, ApiError> {
    let wanted = match request.get("tool_choice") {
        Some(Value::String(choice)) if choice == "required" => None,
        Some(choice @ Value::Object(_)) => {
            match choice.pointer("/function/name").and_then(Value::as_str) {
                Some(name) => Some(name),
                None => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    let tools = request
        .get("tools")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let found = tools
        .iter()
        .filter_map(|tool| tool.get("function"))
        .find(|function| {
            wanted.is_none_or(|wanted| function.get("name").and_then(Value::as_str) == Some(wanted))
        });
    let Some(function) = found else {
        return Err(ApiError::invalid(
            "tool_choice",
            "tool_choice names a tool that is not in 'tools'",
        ));
    };
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let schema = function.get("parameters").unwrap_or(&Value::Null);
    Ok(Some((name, schema)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_completion_tokens_wins_and_zero_is_refused() {
        let request = json!({"max_tokens": 9, "max_completion_tokens": 4});
        assert_eq!(max_tokens(&request).unwrap(), Some(4));
        assert_eq!(max_tokens(&json!({"max_tokens": null})).unwrap(), None);
        assert!(max_tokens(&json!({"max_tokens": 0})).is_err());
        assert!(max_tokens(&json!({"max_tokens": "5"})).is_err());
    }

    #[test]
    fn tool_choice_forces_named_or_first_tool() {
        let tools = json!([
            {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
            {"type": "function", "function": {"name": "b"}}
        ]);
        let named =
            json!({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "b"}}});
        assert_eq!(forced_tool(&named).unwrap().unwrap().0, "b");
        let required = json!({"tools": tools, "tool_choice": "required"});
        assert_eq!(forced_tool(&required).unwrap().unwrap().0, "a");
        let auto = json!({"tools": tools, "tool_choice": "auto"});
        assert!(forced_tool(&auto).unwrap().is_none());
        let missing =
            json!({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "z"}}});
        assert!(forced_tool(&missing).is_err());
    }
}

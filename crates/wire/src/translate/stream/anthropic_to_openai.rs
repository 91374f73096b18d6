//! Anthropic Messages stream -> OpenAI chat completion chunks.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::anthropic::{self, RawUsage};
use crate::sse::{self, SseEvent};
use crate::translate::{error_type, stop_reason};
use crate::{Usage, WireError, openai};

/// Translates an Anthropic stream into OpenAI `chat.completion.chunk`s.
///
/// 1. `message_start` -> the first chunk, `delta: {role: "assistant", content: ""}`.
/// 2. A text block's `text_delta`s -> `delta.content` chunks.
/// 3. A `tool_use` block start -> a `tool_calls` delta with index, id, type,
///    name and `arguments: ""`; its `input_json_delta`s -> argument fragments.
///    OpenAI tool indexes count tool blocks only (0, 1, …), whatever their
///    Anthropic block index.
/// 4. `message_delta` -> a chunk with `delta: {}` and the mapped `finish_reason`.
/// 5. `message_stop` -> the usage chunk (`choices: []`) when the client asked
///    for `include_usage`, then `data: [DONE]`.
/// 6. An upstream `error` event -> an OpenAI error frame, and the stream ends
///    there: no `[DONE]`, so the client cannot take it for a finished answer.
///
/// `ping` and unknown events (thinking deltas included) produce nothing.
#[derive(Debug)]
pub struct AnthropicToOpenAiStream {
    /// `model` of every chunk: the name the client asked for.
    public_model: String,
    /// The client set `stream_options.include_usage`: every chunk carries
    /// `usage: null` and a usage chunk precedes `[DONE]`.
    include_usage: bool,
    /// `created` of every chunk, from the caller's clock.
    created: u64,
    /// `chatcmpl-` + the upstream message id, known from `message_start`.
    id: String,
    /// The Anthropic block being streamed, to route deltas.
    block: Block,
    /// Tool blocks started so far: the next OpenAI tool call index.
    tool_calls: u64,
    /// Prompt tokens reported; `None` until `message_start`.
    prompt_tokens: Option<u64>,
    /// Latest cumulative output tokens reported.
    completion_tokens: u64,
    /// `content_block_delta` events seen, the estimate for a cut stream.
    tokens_seen: u64,
    /// `[DONE]` has been sent.
    done: bool,
    /// An error frame has been sent; later events are ignored.
    failed: bool,
}

/// The kind of the Anthropic content block currently open.
#[derive(Clone, Copy, Debug)]
enum Block {
    None,
    Text,
    /// A tool_use block and the OpenAI tool call index it became.
    Tool(u64),
    /// Thinking and other blocks with no OpenAI form.
    Other,
}

#[derive(Deserialize)]
struct Event {
    message: Option<StartMessage>,
    content_block: Option<ContentBlock>,
    delta: Option<Delta>,
    usage: Option<RawUsage>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    id: String,
    #[serde(default)]
    usage: RawUsage,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    partial_json: Option<String>,
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

impl AnthropicToOpenAiStream {
    /// A translator for one stream; `created` is the caller's clock reading.
    pub fn new(public_model: &str, include_usage: bool, created: u64) -> Self {
        Self {
            public_model: public_model.to_owned(),
            include_usage,
            created,
            id: "chatcmpl-".to_owned(),
            block: Block::None,
            tool_calls: 0,
            prompt_tokens: None,
            completion_tokens: 0,
            tokens_seen: 0,
            done: false,
            failed: false,
        }
    }

    /// Translates one upstream event, appending the frames to send to `out`
    /// (the steps are on the type). Events after `[DONE]` or an error are
    /// ignored.
    ///
    /// # Errors
    ///
    /// [`WireError::Upstream`] when the event's data is not the JSON its type
    /// calls for; the caller should end the stream with an error frame.
    pub fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<Bytes>) -> Result<(), WireError> {
        if self.done || self.failed {
            return Ok(());
        }
        let kind = anthropic::event_type(ev)
            .ok_or_else(|| WireError::Upstream("anthropic stream event without a type".into()))?;
        if kind == "ping" {
            return Ok(());
        }
        let event: Event = serde_json::from_str(&ev.data)
            .map_err(|e| WireError::Upstream(format!("anthropic {kind} event: {e}")))?;
        match kind.as_ref() {
            "message_start" => {
                let message = event.message.ok_or_else(|| missing(&kind, "message"))?;
                self.id = format!("chatcmpl-{}", message.id);
                self.record(message.usage);
                out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
            }
            "content_block_start" => {
                let block = event
                    .content_block
                    .ok_or_else(|| missing(&kind, "content_block"))?;
                self.block = match block.kind.as_str() {
                    "text" => {
                        if !block.text.is_empty() {
                            out.push(self.chunk(json!({"content": block.text}), None));
                        }
                        Block::Text
                    }
                    "tool_use" => {
                        let index = self.tool_calls;
                        self.tool_calls += 1;
                        let call = json!({
                            "index": index,
                            "id": block.id,
                            "type": "function",
                            "function": {"name": block.name, "arguments": ""}
                        });
                        out.push(self.chunk(json!({"tool_calls": [call]}), None));
                        Block::Tool(index)
                    }
                    _ => Block::Other,
                };
            }
            "content_block_delta" => {
                let delta = event.delta.ok_or_else(|| missing(&kind, "delta"))?;
                self.tokens_seen = self.tokens_seen.saturating_add(1);
                self.on_delta(delta, out);
            }
            "content_block_stop" => self.block = Block::None,
            "message_delta" => {
                if let Some(usage) = event.usage {
                    self.record(usage);
                }
                let reason = event.delta.and_then(|d| d.stop_reason);
                let finish = stop_reason::to_openai(reason.as_deref().unwrap_or("end_turn"));
                out.push(self.chunk(json!({}), Some(finish)));
            }
            "message_stop" => {
                if self.include_usage {
                    out.push(self.usage_chunk());
                }
                out.push(sse::data_frame("[DONE]"));
                self.done = true;
            }
            "error" => {
                let error = event.error.unwrap_or(ErrorBody {
                    kind: String::new(),
                    message: String::new(),
                });
                let (error_type, code) = error_type::to_openai(&error.kind);
                out.push(openai::stream_error_frame(&error.message, error_type, code));
                self.failed = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn on_delta(&mut self, delta: Delta, out: &mut Vec<Bytes>) {
        match (delta.kind.as_deref(), self.block) {
            (Some("text_delta"), _) => {
                if let Some(text) = delta.text.filter(|t| !t.is_empty()) {
                    out.push(self.chunk(json!({"content": text}), None));
                }
            }
            (Some("input_json_delta"), Block::Tool(index)) => {
                // Anthropic opens each tool input with an empty fragment;
                // the opening chunk already carried `arguments: ""`.
                if let Some(args) = delta.partial_json.filter(|a| !a.is_empty()) {
                    let call = json!({"index": index, "function": {"arguments": args}});
                    out.push(self.chunk(json!({"tool_calls": [call]}), None));
                }
            }
            _ => {}
        }
    }

    fn record(&mut self, usage: RawUsage) {
        if let Some(p) = usage.prompt_tokens() {
            self.prompt_tokens = Some(p);
        }
        if let Some(o) = usage.output_tokens {
            self.completion_tokens = o;
        }
    }

    /// One chunk with a single choice.
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Bytes {
        let choice = json!({
            "index": 0,
            "delta": delta,
            "logprobs": null,
            "finish_reason": finish_reason,
        });
        self.frame(vec![choice], Value::Null)
    }

    /// The include_usage chunk: no choices, the whole request's usage.
    fn usage_chunk(&self) -> Bytes {
        let usage = self.usage().unwrap_or_default();
        let usage = json!({
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens(),
        });
        self.frame(Vec::new(), usage)
    }

    fn frame(&self, choices: Vec<Value>, usage: Value) -> Bytes {
        let mut chunk = Map::new();
        chunk.insert("id".into(), self.id.as_str().into());
        chunk.insert("object".into(), "chat.completion.chunk".into());
        chunk.insert("created".into(), self.created.into());
        chunk.insert("model".into(), self.public_model.as_str().into());
        chunk.insert("choices".into(), Value::Array(choices));
        // With include_usage every chunk carries `usage`, null until the last.
        if self.include_usage {
            chunk.insert("usage".into(), usage);
        }
        sse::data_frame(&Value::Object(chunk).to_string())
    }

    /// Usage reported so far: input from `message_start`, output from the
    /// latest `message_delta`. `None` before `message_start`; on a cut
    /// stream prefer `max(completion_tokens, tokens_seen())`.
    pub fn usage(&self) -> Option<Usage> {
        self.prompt_tokens.map(|prompt_tokens| Usage {
            prompt_tokens,
            completion_tokens: self.completion_tokens,
        })
    }

    /// `content_block_delta` events seen so far.
    pub fn tokens_seen(&self) -> u64 {
        self.tokens_seen
    }

    /// Whether `[DONE]` has been emitted (the upstream sent `message_stop`).
    pub fn done(&self) -> bool {
        self.done
    }
}

fn missing(kind: &str, member: &str) -> WireError {
    WireError::Upstream(format!("anthropic {kind} event has no {member}"))
}

#[cfg(test)]
#[path = "anthropic_to_openai/tests.rs"]
mod tests;

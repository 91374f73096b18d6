//! OpenAI chat completion chunks -> Anthropic Messages stream events.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::anthropic::frame;
use crate::openai::RawUsage;
use crate::sse::SseEvent;
use crate::translate::{error_type, stop_reason};
use crate::{Usage, WireError, anthropic};

/// Translates an OpenAI chunk stream into Anthropic stream events.
///
/// 1. The first chunk -> `message_start` (input tokens 0: OpenAI reports
///    usage only at the end; the real count follows in `message_delta`).
/// 2. Content (or refusal) deltas -> `content_block_start` of a text block
///    once, then `text_delta`s.
/// 3. A tool call delta with a new index -> `content_block_stop` of the open
///    block, `content_block_start` of a `tool_use` block (id, name,
///    `input: {}`), then its argument fragments as `input_json_delta`s.
/// 4. `finish_reason` and the usage chunk are remembered.
/// 5. `[DONE]` -> `content_block_stop` of the open block, `message_delta`
///    with the mapped stop reason and usage, `message_stop`.
/// 6. A `{"error": …}` payload -> an Anthropic `error` event; the stream ends
///    there, without `message_stop`.
///
/// Anthropic blocks are sequential, so a tool call cannot be resumed once
/// another block has started; OpenAI never interleaves them, and a stream
/// that does is reported as unreadable rather than mangled.
#[derive(Debug)]
pub struct OpenAiToAnthropicStream {
    /// `model` of `message_start`: the name the client asked for.
    public_model: String,
    /// `id` of `message_start`, chosen by the caller.
    message_id: String,
    /// `message_start` has been sent.
    started: bool,
    /// The Anthropic block currently open, if any.
    open: Option<Open>,
    /// Index the next Anthropic content block gets.
    next_block: u64,
    /// Highest OpenAI tool call index opened so far, to detect resumption.
    last_tool: Option<u64>,
    /// The mapped stop reason from the chunk that carried `finish_reason`.
    stop_reason: Option<&'static str>,
    /// From the usage chunk (`stream_options.include_usage`).
    usage: Option<Usage>,
    /// Non-empty content and argument fragments seen.
    tokens_seen: u64,
    /// `message_stop` has been sent.
    done: bool,
    /// An error event has been sent; later events are ignored.
    failed: bool,
}

/// An open Anthropic content block and its index.
#[derive(Clone, Copy, Debug)]
enum Open {
    Text { block: u64 },
    Tool { block: u64, call: u64 },
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<RawUsage>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Default, Deserialize)]
struct Delta {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: u64,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl OpenAiToAnthropicStream {
    /// A translator for one stream; `message_id` is the `msg_…` id to report.
    pub fn new(public_model: &str, message_id: &str) -> Self {
        Self {
            public_model: public_model.to_owned(),
            message_id: message_id.to_owned(),
            started: false,
            open: None,
            next_block: 0,
            last_tool: None,
            stop_reason: None,
            usage: None,
            tokens_seen: 0,
            done: false,
            failed: false,
        }
    }

    /// Translates one upstream event, appending the frames to send to `out`
    /// (the steps are on the type). Events after `message_stop` or an error
    /// are ignored.
    ///
    /// # Errors
    ///
    /// [`WireError::Upstream`] when a payload is not chunk JSON or a tool
    /// call resumes after another block began.
    pub fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<Bytes>) -> Result<(), WireError> {
        if self.done || self.failed {
            return Ok(());
        }
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.finish(out);
            return Ok(());
        }
        // Some OpenAI-compatible servers send empty `data:` lines as
        // keep-alives; they carry nothing to translate.
        if data.is_empty() {
            return Ok(());
        }
        let chunk: Chunk = serde_json::from_str(data)
            .map_err(|e| WireError::Upstream(format!("openai stream chunk: {e}")))?;
        if let Some(error) = chunk.error {
            let kind = error_type::to_anthropic(error.kind.as_deref().unwrap_or("api_error"));
            out.push(anthropic::stream_error_frame(kind, &error.message));
            self.failed = true;
            return Ok(());
        }
        self.start(out);
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into_usage());
        }
        // Translated requests never ask for n > 1; other choices are ignored.
        let Some(choice) = chunk.choices.into_iter().next() else {
            return Ok(());
        };
        for text in [choice.delta.content, choice.delta.refusal]
            .into_iter()
            .flatten()
        {
            if !text.is_empty() {
                self.text(&text, out);
            }
        }
        for call in choice.delta.tool_calls.unwrap_or_default() {
            self.tool_call(call, out)?;
        }
        if let Some(reason) = choice.finish_reason {
            self.stop_reason = Some(stop_reason::to_anthropic(&reason));
        }
        Ok(())
    }

    fn start(&mut self, out: &mut Vec<Bytes>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        out.push(frame(
            "message_start",
            json!({"message": {
                "id": self.message_id,
                "type": "message",
                "role": "assistant",
                "model": self.public_model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }}),
        ));
    }

    fn text(&mut self, text: &str, out: &mut Vec<Bytes>) {
        self.tokens_seen = self.tokens_seen.saturating_add(1);
        let block = match self.open {
            Some(Open::Text { block }) => block,
            _ => self.open_block(
                Open::Text { block: 0 },
                json!({"type": "text", "text": ""}),
                out,
            ),
        };
        out.push(frame(
            "content_block_delta",
            json!({"index": block, "delta": {"type": "text_delta", "text": text}}),
        ));
    }

    fn tool_call(&mut self, call: ToolCallDelta, out: &mut Vec<Bytes>) -> Result<(), WireError> {
        let function = call.function.unwrap_or(FunctionDelta {
            name: None,
            arguments: None,
        });
        let block = match self.open {
            Some(Open::Tool { block, call: open }) if open == call.index => block,
            _ => {
                if self.last_tool.is_some_and(|last| call.index <= last) {
                    return Err(WireError::Upstream(format!(
                        "openai stream resumed tool call {} after a later block began",
                        call.index
                    )));
                }
                self.last_tool = Some(call.index);
                let content_block = json!({
                    "type": "tool_use",
                    "id": call.id.unwrap_or_default(),
                    "name": function.name.unwrap_or_default(),
                    "input": {},
                });
                self.open_block(
                    Open::Tool {
                        block: 0,
                        call: call.index,
                    },
                    content_block,
                    out,
                )
            }
        };
        if let Some(args) = function.arguments.filter(|a| !a.is_empty()) {
            self.tokens_seen = self.tokens_seen.saturating_add(1);
            out.push(frame(
                "content_block_delta",
                json!({"index": block, "delta": {"type": "input_json_delta", "partial_json": args}}),
            ));
        }
        Ok(())
    }

    /// Closes the open block and starts `open` at the next index; returns it.
    fn open_block(&mut self, open: Open, content_block: Value, out: &mut Vec<Bytes>) -> u64 {
        self.close_block(out);
        let block = self.next_block;
        self.next_block += 1;
        self.open = Some(match open {
            Open::Text { .. } => Open::Text { block },
            Open::Tool { call, .. } => Open::Tool { block, call },
        });
        out.push(frame(
            "content_block_start",
            json!({"index": block, "content_block": content_block}),
        ));
        block
    }

    fn close_block(&mut self, out: &mut Vec<Bytes>) {
        let index = match self.open.take() {
            Some(Open::Text { block } | Open::Tool { block, .. }) => block,
            None => return,
        };
        out.push(frame("content_block_stop", json!({"index": index})));
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) {
        self.start(out);
        self.close_block(out);
        let mut usage = json!({
            "output_tokens": self.usage.map_or(self.tokens_seen, |u| u.completion_tokens),
        });
        if let (Some(u), Some(obj)) = (self.usage, usage.as_object_mut()) {
            // message_start had to say 0; this is where the real prompt
            // count reaches the client (the SDKs take it from here).
            obj.insert("input_tokens".into(), u.prompt_tokens.into());
        }
        out.push(frame(
            "message_delta",
            json!({
                "delta": {
                    "stop_reason": self.stop_reason.unwrap_or("end_turn"),
                    "stop_sequence": null,
                },
                "usage": usage,
            }),
        ));
        out.push(frame("message_stop", json!({})));
        self.done = true;
    }

    /// Usage from the upstream's usage chunk, once seen.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Non-empty content and argument fragments seen so far.
    pub fn tokens_seen(&self) -> u64 {
        self.tokens_seen
    }

    /// Whether `message_stop` has been emitted (the upstream sent `[DONE]`).
    pub fn done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
#[path = "openai_to_anthropic/tests.rs"]
mod tests;

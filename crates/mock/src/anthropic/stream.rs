//! The streamed messages answer: Anthropic's named events.
//!
//! The sequence is the documented one:
//!
//! 1. after the time to first token: `message_start` (the message with empty
//!    `content`, `input_tokens` and `output_tokens: 1`), `content_block_start`
//!    (an empty text block, or the `tool_use` block with `input: {}`) and
//!    `ping`;
//! 2. one `content_block_delta` per token (`text_delta`, or an
//!    `input_json_delta` with a `partial_json` fragment), the first at once
//!    and the others `per_token` apart;
//! 3. `content_block_stop`, `message_delta` (`stop_reason` and the final
//!    `usage.output_tokens`) and `message_stop`.
//!
//! A cut (`cut_after_tokens`) stops inside step 2, so step 3 never comes.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Message, stop_reason, usage};
use crate::content::Answer;
use crate::sse::{self, Script, ScriptBuilder};
use crate::state::Timing;

/// `output_tokens` reported by `message_start`, as the real API does.
const START_OUTPUT_TOKENS: u64 = 1;

/// The script of a streamed answer.
pub(super) fn script(
    message: &Message,
    answer: &Answer,
    timing: Timing,
    cut_after: Option<u64>,
) -> Script {
    let mut builder = ScriptBuilder::new(cut_after);
    let start = json!({
        "type": "message_start",
        "message": {
            "id": message.id,
            "type": "message",
            "role": "assistant",
            "model": message.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage(message.input_tokens, START_OUTPUT_TOKENS),
        },
    });
    builder.frame(timing.ttft, sse::event("message_start", &start));
    let (block, deltas): (Value, Vec<Value>) = match answer {
        Answer::Text(text) => (
            json!({"type": "text", "text": ""}),
            text.pieces
                .iter()
                .map(|piece| json!({"type": "text_delta", "text": piece}))
                .collect(),
        ),
        Answer::Tool(call) => (
            json!({"type": "tool_use", "id": call.id("toolu_"), "name": call.name, "input": {}}),
            call.fragments
                .iter()
                .map(|fragment| json!({"type": "input_json_delta", "partial_json": fragment}))
                .collect(),
        ),
    };
    let block_start = json!({"type": "content_block_start", "index": 0, "content_block": block});
    builder.frame(
        Duration::ZERO,
        sse::event("content_block_start", &block_start),
    );
    builder.frame(Duration::ZERO, sse::event("ping", &json!({"type": "ping"})));
    for (i, delta) in deltas.into_iter().enumerate() {
        let delay = if i == 0 {
            Duration::ZERO
        } else {
            timing.per_token
        };
        let event = json!({"type": "content_block_delta", "index": 0, "delta": delta});
        builder.token(delay, sse::event("content_block_delta", &event));
    }
    builder.end_of_tokens();
    let stop = json!({"type": "content_block_stop", "index": 0});
    builder.frame(Duration::ZERO, sse::event("content_block_stop", &stop));
    let message_delta = json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(answer), "stop_sequence": null},
        "usage": {"output_tokens": answer.tokens()},
    });
    builder.frame(Duration::ZERO, sse::event("message_delta", &message_delta));
    builder.frame(
        Duration::ZERO,
        sse::event("message_stop", &json!({"type": "message_stop"})),
    );
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::text_answer;

    fn names(script: &Script) -> Vec<String> {
        script
            .steps
            .iter()
            .map(|step| {
                let text = String::from_utf8(step.data.to_vec()).unwrap();
                text.lines()
                    .next()
                    .unwrap()
                    .trim_start_matches("event: ")
                    .to_owned()
            })
            .collect()
    }

    const NO_DELAY: Timing = Timing {
        ttft: Duration::ZERO,
        per_token: Duration::ZERO,
    };

    fn message() -> Message {
        Message {
            id: "msg_x".to_owned(),
            model: "m".to_owned(),
            input_tokens: 9,
        }
    }

    #[test]
    fn events_come_in_the_documented_order() {
        let answer = Answer::Text(text_answer(1, Some(2)));
        let script = script(&message(), &answer, NO_DELAY, None);
        assert_eq!(
            names(&script),
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
    }

    #[test]
    fn cut_stream_never_stops_the_message() {
        let answer = Answer::Text(text_answer(1, None));
        let script = script(&message(), &answer, NO_DELAY, Some(3));
        assert!(script.cut);
        let names = names(&script);
        assert_eq!(
            names.iter().filter(|n| *n == "content_block_delta").count(),
            3
        );
        assert!(
            !names
                .iter()
                .any(|n| n == "message_stop" || n == "message_delta")
        );
    }
}

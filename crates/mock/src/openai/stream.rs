//! The streamed chat answer: `chat.completion.chunk` events, then `[DONE]`.
//!
//! The sequence is OpenAI's:
//!
//! 1. a first chunk with `delta.role = "assistant"` (and `content: ""`, or for
//!    a tool call the call's index, id, type, name and empty `arguments`),
//!    sent after the time to first token;
//! 2. one chunk per token (`delta.content`, or an `arguments` fragment), the
//!    first at once and the others `per_token` apart;
//! 3. a chunk with an empty delta and the `finish_reason`;
//! 4. with `stream_options.include_usage`, a chunk with `choices: []` and the
//!    `usage` (every earlier chunk then carries `"usage": null`);
//! 5. `data: [DONE]`.
//!
//! A cut (`cut_after_tokens`) stops inside step 2, so steps 3 to 5 never come.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Completion, finish_reason, usage};
use crate::content::Answer;
use crate::sse::{self, DONE, Script, ScriptBuilder};
use crate::state::Timing;

/// The script of a streamed answer.
pub(super) fn script(
    completion: &Completion,
    answer: &Answer,
    prompt_tokens: u64,
    include_usage: bool,
    timing: Timing,
    cut_after: Option<u64>,
) -> Script {
    let chunk = |delta: Value, finish: Option<&str>| {
        let mut chunk = json!({
            "id": completion.id,
            "object": "chat.completion.chunk",
            "created": completion.created,
            "model": completion.model,
            "service_tier": "default",
            "system_fingerprint": completion.fingerprint,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        sse::data(&chunk)
    };
    let mut builder = ScriptBuilder::new(cut_after);
    let (first, tokens) = match answer {
        Answer::Text(text) => (
            json!({"role": "assistant", "content": "", "refusal": null}),
            text.pieces.iter().map(|piece| json!({"content": piece})).collect::<Vec<_>>(),
        ),
        Answer::Tool(call) => (
            json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "index": 0,
                    "id": call.id("call_"),
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }],
                "refusal": null,
            }),
            call.fragments
                .iter()
                .map(|fragment| json!({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}))
                .collect(),
        ),
    };
    builder.frame(timing.ttft, chunk(first, None));
    for (i, delta) in tokens.into_iter().enumerate() {
        let delay = if i == 0 {
            Duration::ZERO
        } else {
            timing.per_token
        };
        builder.token(delay, chunk(delta, None));
    }
    builder.end_of_tokens();
    builder.frame(
        Duration::ZERO,
        chunk(json!({}), Some(finish_reason(answer))),
    );
    if include_usage {
        let last = json!({
            "id": completion.id,
            "object": "chat.completion.chunk",
            "created": completion.created,
            "model": completion.model,
            "service_tier": "default",
            "system_fingerprint": completion.fingerprint,
            "choices": [],
            "usage": usage(prompt_tokens, answer.tokens()),
        });
        builder.frame(Duration::ZERO, sse::data(&last));
    }
    builder.frame(Duration::ZERO, Bytes::from_static(DONE));
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::text_answer;
    use crate::tool::tool_call;

    fn completion() -> Completion {
        Completion {
            id: "chatcmpl-x".to_owned(),
            created: 1,
            model: "m".to_owned(),
            fingerprint: "fp_x".to_owned(),
        }
    }

    const NO_DELAY: Timing = Timing {
        ttft: Duration::ZERO,
        per_token: Duration::ZERO,
    };

    fn events(script: &Script) -> Vec<String> {
        script
            .steps
            .iter()
            .map(|step| String::from_utf8(step.data.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn text_stream_has_role_tokens_finish_usage_done() {
        let answer = Answer::Text(text_answer(3, Some(4)));
        let script = script(&completion(), &answer, 7, true, NO_DELAY, None);
        let events = events(&script);
        assert_eq!(events.len(), 1 + 4 + 1 + 1 + 1);
        assert!(events[0].contains(r#""role":"assistant""#));
        assert!(events[5].contains(r#""finish_reason":"length""#));
        assert!(
            events[6].contains(r#""choices":[]"#) && events[6].contains(r#""total_tokens":11"#)
        );
        assert_eq!(events[7], "data: [DONE]\n\n");
        assert!(!script.cut);
    }

    #[test]
    fn tool_stream_sends_fragments_then_tool_calls_finish() {
        let call = tool_call(
            3,
            "f",
            &json!({"properties": {"city": {"type": "string"}}}),
            None,
        );
        let fragments = call.fragments.len();
        let answer = Answer::Tool(call);
        let events = events(&script(&completion(), &answer, 7, false, NO_DELAY, None));
        assert_eq!(events.len(), 1 + fragments + 1 + 1);
        assert!(events[0].contains(r#""arguments":"""#) && events[0].contains(r#""name":"f""#));
        assert!(events[fragments + 1].contains(r#""finish_reason":"tool_calls""#));
        assert!(!events[1].contains("usage"));
    }

    #[test]
    fn cut_stream_has_no_finish_and_no_done() {
        let answer = Answer::Text(text_answer(3, None));
        let script = script(&completion(), &answer, 7, true, NO_DELAY, Some(5));
        assert!(script.cut);
        let events = events(&script);
        assert_eq!(events.len(), 6);
        assert!(
            events
                .iter()
                .all(|e| !e.contains("finish_reason\":\"") && !e.contains("[DONE]"))
        );
    }
}

//! Edge cases of the Anthropic -> OpenAI stream beyond the golden transcripts.

use serde_json::{Value, json};

use super::*;

fn feed(t: &mut AnthropicToOpenAiStream, events: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for e in events {
        let ev = SseEvent {
            event: Some(e["type"].as_str().unwrap().to_owned()),
            data: e.to_string(),
        };
        t.on_event(&ev, &mut out).unwrap();
    }
    out.iter()
        .map(|f| {
            let text = std::str::from_utf8(f).unwrap();
            let data = text.strip_prefix("data: ").unwrap().trim_end();
            serde_json::from_str(data).unwrap_or(Value::String(data.to_owned()))
        })
        .collect()
}

fn start() -> Value {
    json!({"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3, "cache_read_input_tokens": 4, "output_tokens": 1}}})
}

#[test]
fn thinking_blocks_are_skipped_but_counted() {
    let mut t = AnthropicToOpenAiStream::new("gpt-4o", false, 1);
    let out = feed(
        &mut t,
        &[
            start(),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "abc"}}),
            json!({"type": "content_block_stop", "index": 0}),
        ],
    );
    assert_eq!(out.len(), 1, "only the role chunk: {out:?}");
    assert_eq!(t.tokens_seen(), 2);
    assert_eq!(
        t.usage(),
        Some(Usage {
            prompt_tokens: 7,
            completion_tokens: 1
        })
    );
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    for (stop, finish) in [
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("refusal", "content_filter"),
    ] {
        let mut t = AnthropicToOpenAiStream::new("gpt-4o", false, 1);
        let out = feed(
            &mut t,
            &[
                start(),
                json!({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 9}}),
            ],
        );
        assert_eq!(out[1]["choices"][0]["finish_reason"], json!(finish));
        assert_eq!(t.usage().map(|u| u.completion_tokens), Some(9));
        assert!(!t.done());
    }
}

#[test]
fn second_tool_block_gets_the_next_tool_index() {
    let mut t = AnthropicToOpenAiStream::new("gpt-4o", false, 1);
    let tool = |i: u64, id: &str| json!({"type": "content_block_start", "index": i, "content_block": {"type": "tool_use", "id": id, "name": "f", "input": {}}});
    let out = feed(
        &mut t,
        &[
            start(),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_stop", "index": 0}),
            tool(1, "toolu_a"),
            json!({"type": "content_block_stop", "index": 1}),
            tool(2, "toolu_b"),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
        ],
    );
    let calls: Vec<&Value> = out
        .iter()
        .skip(1)
        .map(|c| &c["choices"][0]["delta"]["tool_calls"][0])
        .collect();
    assert_eq!(calls[0]["index"], json!(0));
    assert_eq!(calls[1]["index"], json!(1));
    assert_eq!(calls[1]["id"], json!("toolu_b"));
    assert_eq!(
        *calls[2],
        json!({"index": 1, "function": {"arguments": "{}"}})
    );
}

#[test]
fn error_event_stops_the_translation() {
    let mut t = AnthropicToOpenAiStream::new("gpt-4o", true, 1);
    let out = feed(
        &mut t,
        &[
            start(),
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
            json!({"type": "message_stop"}),
        ],
    );
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[1],
        json!({"error": {"message": "slow down", "type": "rate_limit_error", "param": null, "code": null}})
    );
    assert!(!t.done());
}

//! Edge cases of the OpenAI -> Anthropic stream beyond the golden transcripts.

use serde_json::{Value, json};

use super::*;

fn feed(t: &mut OpenAiToAnthropicStream, data: &[&str]) -> Result<Vec<(String, Value)>, WireError> {
    let mut out = Vec::new();
    for d in data {
        let ev = SseEvent {
            event: None,
            data: (*d).to_owned(),
        };
        t.on_event(&ev, &mut out)?;
    }
    Ok(out
        .iter()
        .map(|f| {
            let text = std::str::from_utf8(f).unwrap();
            let (event, data) = text.trim_end().split_once('\n').unwrap();
            let event = event.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], json!(event));
            (event, data)
        })
        .collect())
}

fn names(frames: &[(String, Value)]) -> Vec<&str> {
    frames.iter().map(|(e, _)| e.as_str()).collect()
}

#[test]
fn done_without_chunks_still_makes_a_complete_message() {
    let mut t = OpenAiToAnthropicStream::new("claude", "msg_1");
    let frames = feed(&mut t, &["", "[DONE]"]).unwrap();
    assert_eq!(
        names(&frames),
        ["message_start", "message_delta", "message_stop"]
    );
    assert_eq!(frames[1].1["delta"]["stop_reason"], json!("end_turn"));
    assert!(t.done());
}

#[test]
fn text_then_tool_closes_the_text_block_first() {
    let mut t = OpenAiToAnthropicStream::new("claude", "msg_1");
    let frames = feed(
        &mut t,
        &[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Let me look."}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
            "[DONE]",
        ],
    )
    .unwrap();
    assert_eq!(
        names(&frames),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(frames[4].1["index"], json!(1));
    assert_eq!(frames[4].1["content_block"]["id"], json!("call_1"));
    assert_eq!(frames[7].1["delta"]["stop_reason"], json!("max_tokens"));
}

#[test]
fn refusal_deltas_arrive_as_text() {
    let mut t = OpenAiToAnthropicStream::new("claude", "msg_1");
    let frames = feed(
        &mut t,
        &[r#"{"choices":[{"index":0,"delta":{"refusal":"I can't help with that."}}]}"#],
    )
    .unwrap();
    assert_eq!(
        frames[2].1["delta"]["text"],
        json!("I can't help with that.")
    );
}

#[test]
fn a_resumed_tool_call_is_an_upstream_error() {
    let mut t = OpenAiToAnthropicStream::new("claude", "msg_1");
    let err = feed(
        &mut t,
        &[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#,
        ],
    )
    .unwrap_err();
    assert!(matches!(err, WireError::Upstream(_)));
}

#[test]
fn error_type_maps_and_nothing_follows() {
    let mut t = OpenAiToAnthropicStream::new("claude", "msg_1");
    let frames = feed(
        &mut t,
        &[
            r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}"#,
            "[DONE]",
        ],
    )
    .unwrap();
    assert_eq!(names(&frames), ["error"]);
    assert_eq!(frames[0].1["error"]["type"], json!("rate_limit_error"));
    assert!(!t.done());
}

//! Golden tests for translation between the OpenAI and Anthropic formats.
//!
//! Each case is an input fixture modelled on a provider's documented example
//! and the expected output in the other format, compared as
//! `serde_json::Value`. Stream cases compare the decoded frame sequence:
//! `{"event": name-or-null, "data": JSON-or-string}` per frame.
//!
//! Run with `UPDATE_GOLDENS=1` to rewrite the expected files, then read the
//! diff before committing it.

// Marks the whole file as test code for clippy's allow-*-in-tests, which
// otherwise does not cover helper functions of an integration test crate.
#![cfg(test)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{Value, json};
use switchyard_wire::sse::{SseDecoder, SseEvent};
use switchyard_wire::translate::{
    AnthropicToOpenAiStream, OpenAiToAnthropicStream, anthropic_response_to_openai,
    anthropic_to_openai_request, openai_response_to_anthropic, openai_to_anthropic_request,
};
use switchyard_wire::{Usage, WireError, anthropic, openai};

/// `created` stamped on translated OpenAI output.
const CREATED: u64 = 1_700_000_000;
/// `max_tokens` used when an OpenAI request sets none.
const DEFAULT_MAX_TOKENS: u64 = 4096;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn read_json(name: &str) -> Value {
    serde_json::from_slice(&read(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Compares `actual` with the expected fixture, or rewrites it when
/// `UPDATE_GOLDENS=1`.
fn golden(name: &str, actual: &Value) {
    if std::env::var("UPDATE_GOLDENS").is_ok_and(|v| v == "1") {
        let mut text = serde_json::to_string_pretty(actual).unwrap();
        text.push('\n');
        std::fs::write(fixture_path(name), text).unwrap();
        return;
    }
    let expected = read_json(name);
    assert_eq!(
        actual,
        &expected,
        "{name} differs; actual:\n{}",
        serde_json::to_string_pretty(actual).unwrap()
    );
}

fn object(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("expected an object, got {other}"),
    }
}

/// Decodes a transcript as the gateway would receive it: in small, uneven
/// chunks, so the translators see exactly what a real read loop hands them.
fn events(bytes: &[u8]) -> Vec<SseEvent> {
    let mut decoder = SseDecoder::new();
    let mut out = Vec::new();
    for chunk in bytes.chunks(13) {
        decoder.push(chunk);
        while let Some(ev) = decoder.next_event() {
            out.push(ev);
        }
    }
    out
}

/// Emitted frames as JSON for comparison; checks on the way that every
/// Anthropic frame names its event in both the `event:` line and `"type"`.
fn frames_value(frames: &[Bytes]) -> Value {
    let bytes: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
    let decoded = events(&bytes);
    assert_eq!(decoded.len(), frames.len(), "one event per frame");
    Value::Array(
        decoded
            .into_iter()
            .map(|ev| {
                let data = serde_json::from_str(&ev.data).unwrap_or(Value::String(ev.data));
                if let Some(name) = &ev.event {
                    assert_eq!(data["type"], json!(name), "event line and type agree");
                }
                json!({"event": ev.event, "data": data})
            })
            .collect(),
    )
}

// === requests ===

#[test]
fn openai_requests_translate_to_anthropic() {
    for case in ["system_prompt", "tool_round_trip", "forced_tool"] {
        let input = object(read_json(&format!(
            "openai_to_anthropic_request/{case}.input.json"
        )));
        let actual =
            openai_to_anthropic_request(&input, "claude-sonnet-4-5-20250929", DEFAULT_MAX_TOKENS)
                .unwrap();
        golden(
            &format!("openai_to_anthropic_request/{case}.expected.json"),
            &actual,
        );
    }
}

#[test]
fn anthropic_requests_translate_to_openai() {
    for case in ["system_prompt", "tool_round_trip", "forced_tool"] {
        let input = object(read_json(&format!(
            "anthropic_to_openai_request/{case}.input.json"
        )));
        let actual = anthropic_to_openai_request(&input, "gpt-4o").unwrap();
        golden(
            &format!("anthropic_to_openai_request/{case}.expected.json"),
            &actual,
        );
    }
}

// === non-stream responses ===

#[test]
fn anthropic_responses_translate_to_openai() {
    for (case, usage) in [("text", (12, 6)), ("tool_use", (512, 56))] {
        let body = read(&format!("anthropic_to_openai_response/{case}.input.json"));
        let (out, got) = anthropic_response_to_openai(&body, "gpt-4o", CREATED).unwrap();
        assert_eq!(
            got,
            Usage {
                prompt_tokens: usage.0,
                completion_tokens: usage.1
            }
        );
        assert_eq!(
            openai::usage_of(&out),
            Some(got),
            "usage readable from the output"
        );
        let actual: Value = serde_json::from_slice(&out).unwrap();
        golden(
            &format!("anthropic_to_openai_response/{case}.expected.json"),
            &actual,
        );
    }
}

#[test]
fn openai_responses_translate_to_anthropic() {
    for (case, usage) in [("text", (19, 10)), ("tool_calls", (82, 17))] {
        let body = read(&format!("openai_to_anthropic_response/{case}.input.json"));
        let (out, got) = openai_response_to_anthropic(&body, "claude-sonnet-4-5").unwrap();
        assert_eq!(
            got,
            Usage {
                prompt_tokens: usage.0,
                completion_tokens: usage.1
            }
        );
        assert_eq!(
            anthropic::usage_of(&out),
            Some(got),
            "usage readable from the output"
        );
        let actual: Value = serde_json::from_slice(&out).unwrap();
        golden(
            &format!("openai_to_anthropic_response/{case}.expected.json"),
            &actual,
        );
    }
}

#[test]
fn unreadable_upstream_bodies_are_upstream_errors() {
    let err = anthropic_response_to_openai(b"<html>502</html>", "gpt-4o", CREATED).unwrap_err();
    assert!(matches!(err, WireError::Upstream(_)));
    let err = openai_response_to_anthropic(br#"{"id":"x","choices":[]}"#, "claude").unwrap_err();
    assert!(matches!(err, WireError::Upstream(_)));
}

// === streams ===

fn anthropic_stream(case: &str, include_usage: bool) -> (AnthropicToOpenAiStream, Vec<Bytes>) {
    let input = read(&format!("anthropic_to_openai_stream/{case}.input.sse"));
    let mut translator = AnthropicToOpenAiStream::new("gpt-4o", include_usage, CREATED);
    let mut out = Vec::new();
    for ev in events(&input) {
        translator.on_event(&ev, &mut out).unwrap();
    }
    golden(
        &format!("anthropic_to_openai_stream/{case}.expected.json"),
        &frames_value(&out),
    );
    (translator, out)
}

fn openai_stream(case: &str) -> (OpenAiToAnthropicStream, Vec<Bytes>) {
    let input = read(&format!("openai_to_anthropic_stream/{case}.input.sse"));
    let mut translator = OpenAiToAnthropicStream::new("claude-sonnet-4-5", "msg_sy_0001");
    let mut out = Vec::new();
    for ev in events(&input) {
        translator.on_event(&ev, &mut out).unwrap();
    }
    golden(
        &format!("openai_to_anthropic_stream/{case}.expected.json"),
        &frames_value(&out),
    );
    (translator, out)
}

#[test]
fn anthropic_text_stream_becomes_openai_chunks_without_usage() {
    let (t, out) = anthropic_stream("text", false);
    assert!(t.done());
    assert_eq!(t.tokens_seen(), 2);
    assert_eq!(
        t.usage(),
        Some(Usage {
            prompt_tokens: 25,
            completion_tokens: 15
        })
    );
    assert_eq!(out.last().map(|f| &f[..]), Some(&b"data: [DONE]\n\n"[..]));
}

#[test]
fn anthropic_tool_stream_becomes_openai_tool_call_chunks_with_usage() {
    let (t, _) = anthropic_stream("tool_use", true);
    assert!(t.done());
    assert_eq!(
        t.usage(),
        Some(Usage {
            prompt_tokens: 472,
            completion_tokens: 89
        })
    );
}

#[test]
fn anthropic_error_event_ends_the_openai_stream_without_done() {
    let (t, out) = anthropic_stream("error", true);
    assert!(!t.done());
    assert!(out.iter().all(|f| !f.starts_with(b"data: [DONE]")));
    assert_eq!(t.tokens_seen(), 1);
}

#[test]
fn openai_text_stream_with_usage_becomes_anthropic_events() {
    let (t, _) = openai_stream("text_with_usage");
    assert!(t.done());
    assert_eq!(t.tokens_seen(), 2);
    assert_eq!(
        t.usage(),
        Some(Usage {
            prompt_tokens: 9,
            completion_tokens: 2
        })
    );
}

#[test]
fn openai_tool_call_stream_becomes_anthropic_tool_use_blocks() {
    let (t, _) = openai_stream("tool_calls");
    assert!(t.done());
    // No usage chunk: output falls back to the fragments counted.
    assert_eq!(t.usage(), None);
    assert_eq!(t.tokens_seen(), 5);
}

#[test]
fn openai_error_payload_ends_the_anthropic_stream_without_message_stop() {
    let (t, out) = openai_stream("error");
    assert!(!t.done());
    assert!(out.iter().all(|f| !f.starts_with(b"event: message_stop")));
}

#[test]
fn events_after_the_end_produce_nothing() {
    let (mut t, _) = anthropic_stream("text", false);
    let mut out = Vec::new();
    let late = SseEvent {
        event: Some("message_stop".into()),
        data: r#"{"type":"message_stop"}"#.into(),
    };
    t.on_event(&late, &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn malformed_stream_data_is_an_upstream_error() {
    let mut t = OpenAiToAnthropicStream::new("claude", "msg_1");
    let ev = SseEvent {
        event: None,
        data: "{not json".into(),
    };
    assert!(matches!(
        t.on_event(&ev, &mut Vec::new()),
        Err(WireError::Upstream(_))
    ));
    let mut t = AnthropicToOpenAiStream::new("gpt-4o", false, CREATED);
    let ev = SseEvent {
        event: Some("content_block_delta".into()),
        data: "[]".into(),
    };
    assert!(matches!(
        t.on_event(&ev, &mut Vec::new()),
        Err(WireError::Upstream(_))
    ));
}

// === error bodies ===

#[test]
fn error_bodies_match_the_documented_shapes() {
    let body = openai::error_body(
        "The model `gpt-5-turbo` does not exist or you do not have access to it.",
        "invalid_request_error",
        Some("model_not_found"),
    );
    golden(
        "errors/openai_error_body.expected.json",
        &serde_json::from_slice(&body).unwrap(),
    );

    let frame = openai::stream_error_frame(
        "upstream stream ended early",
        "api_error",
        Some("stream_cut"),
    );
    golden(
        "errors/openai_stream_error.expected.json",
        &frames_value(&[frame]),
    );

    let body = anthropic::error_body("not_found_error", "model: claude-unknown");
    golden(
        "errors/anthropic_error_body.expected.json",
        &serde_json::from_slice(&body).unwrap(),
    );

    let frame = anthropic::stream_error_frame("overloaded_error", "Overloaded");
    golden(
        "errors/anthropic_stream_error.expected.json",
        &frames_value(&[frame]),
    );
}

/// A conversation sent OpenAI -> Anthropic -> OpenAI keeps what the model
/// needs: the system prompt, each tool call's id and arguments (as JSON),
/// and each tool result paired with its call.
#[test]
fn tool_conversation_survives_a_round_trip() {
    let original = object(read_json(
        "openai_to_anthropic_request/tool_round_trip.input.json",
    ));
    let anthropic_req =
        openai_to_anthropic_request(&original, "claude", DEFAULT_MAX_TOKENS).unwrap();
    let back = anthropic_to_openai_request(&object(anthropic_req), "gpt-4o").unwrap();
    let messages = back["messages"].as_array().unwrap();

    assert_eq!(
        messages[0],
        json!({"role": "system", "content": "You are a weather bot."})
    );
    let calls = messages[2]["tool_calls"].as_array().unwrap();
    let original_calls = original["messages"][2]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), original_calls.len());
    for (got, want) in calls.iter().zip(original_calls) {
        assert_eq!(got["id"], want["id"]);
        let parse = |v: &Value| -> Value {
            serde_json::from_str(v["function"]["arguments"].as_str().unwrap()).unwrap()
        };
        assert_eq!(parse(got), parse(want));
    }
    assert_eq!(messages[3]["role"], "tool");
    assert_eq!(messages[3]["tool_call_id"], "call_12345xyz");
    assert_eq!(messages[4]["tool_call_id"], "call_67890abc");
    assert_eq!(back["max_completion_tokens"], json!(1024));
}

//! Requests that cannot be expressed for Anthropic are refused naming the
//! field; the smaller mapping rules each get a check.

use serde_json::{Value, json};

use super::*;

fn translate(v: Value) -> Result<Value, WireError> {
    openai_to_anthropic_request(v.as_object().unwrap(), "claude-x", 4096)
}

fn bad_field(v: Value) -> String {
    match translate(v) {
        Err(WireError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn user(content: Value) -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]})
}

#[test]
fn unmappable_requests_are_refused_with_the_field() {
    let mut v = user(json!("hi"));
    v["n"] = json!(2);
    assert_eq!(bad_field(v), "n");
    assert_eq!(
        bad_field(user(
            json!([{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}])
        )),
        "messages[0].content[0].type"
    );
    assert_eq!(
        bad_field(user(
            json!([{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}])
        )),
        "messages[0].content[0].image_url.url"
    );
    assert_eq!(
        bad_field(user(
            json!([{"type": "file", "file": {"file_id": "file-abc"}}])
        )),
        "messages[0].content[0].file.file_data"
    );
    let mut v = user(json!("hi"));
    v["tools"] = json!([{"type": "custom", "custom": {"name": "x"}}]);
    assert_eq!(bad_field(v), "tools[0].type");
    let v =
        json!({"model": "m", "messages": [{"role": "system", "content": "only a system prompt"}]});
    assert_eq!(bad_field(v), "messages");
}

#[test]
fn tool_arguments_must_be_a_json_object() {
    let call = |args: &str| {
        json!({"model": "m", "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": args}}]}
        ]})
    };
    assert_eq!(
        bad_field(call("{not json")),
        "messages[1].tool_calls[0].function.arguments"
    );
    assert_eq!(
        bad_field(call("[1,2]")),
        "messages[1].tool_calls[0].function.arguments"
    );
    let ok = translate(call("")).unwrap();
    assert_eq!(ok["messages"][1]["content"][0]["input"], json!({}));
}

#[test]
fn file_parts_with_inline_pdf_become_documents() {
    let out = translate(user(json!([
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
    ])))
    .unwrap();
    assert_eq!(
        out["messages"][0]["content"][0],
        json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}})
    );
}

#[test]
fn legacy_function_call_and_result_pair_up() {
    let out = translate(json!({"model": "m", "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "function_call": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
        {"role": "function", "name": "get_weather", "content": "sunny"}
    ], "functions": [{"name": "get_weather", "parameters": {"type": "object"}}], "function_call": {"name": "get_weather"}}))
    .unwrap();
    let id = &out["messages"][1]["content"][0]["id"];
    assert_eq!(out["messages"][2]["content"][0]["tool_use_id"], *id);
    assert_eq!(
        out["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
    assert_eq!(out["tools"][0]["input_schema"], json!({"type": "object"}));
}

#[test]
fn tool_choice_words_map_and_parallel_flag_rides_on_auto() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    for (choice, expected) in [
        (json!("auto"), json!({"type": "auto"})),
        (json!("required"), json!({"type": "any"})),
        (json!("none"), json!({"type": "none"})),
    ] {
        let mut v = user(json!("hi"));
        v["tools"] = tools.clone();
        v["tool_choice"] = choice;
        assert_eq!(translate(v).unwrap()["tool_choice"], expected);
    }
    let mut v = user(json!("hi"));
    v["tools"] = tools;
    v["parallel_tool_calls"] = json!(false);
    let out = translate(v).unwrap();
    assert_eq!(
        out["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        out["tools"][0]["input_schema"],
        json!({"type": "object", "properties": {}})
    );
}

#[test]
fn tool_choice_without_tools_is_dropped() {
    let mut v = user(json!("hi"));
    v["tool_choice"] = json!("none");
    let out = translate(v).unwrap();
    assert!(out.get("tool_choice").is_none() && out.get("tools").is_none());
}

#[test]
fn several_system_messages_become_system_blocks() {
    let out = translate(json!({"model": "m", "messages": [
        {"role": "system", "content": "one"},
        {"role": "developer", "content": [{"type": "text", "text": "two"}]},
        {"role": "user", "content": "hi"}
    ], "max_tokens": 7, "temperature": 0.3, "stop": ["a", "b"]}))
    .unwrap();
    assert_eq!(
        out["system"],
        json!([{"type": "text", "text": "one"}, {"type": "text", "text": "two"}])
    );
    assert_eq!(out["max_tokens"], json!(7));
    assert_eq!(out["temperature"], json!(0.3));
    assert_eq!(out["stop_sequences"], json!(["a", "b"]));
}

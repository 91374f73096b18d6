//! Each class of bad chat request is refused naming the right field; good
//! requests yield the facts admission relies on.

use serde_json::{Value, json};

use super::*;

fn facts(v: Value) -> Result<ChatFacts, WireError> {
    chat_facts(v.as_object().unwrap())
}

fn bad_field(v: Value) -> String {
    match facts(v) {
        Err(WireError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn base() -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}]})
}

fn with(key: &str, value: Value) -> Value {
    let mut v = base();
    v.as_object_mut().unwrap().insert(key.into(), value);
    v
}

#[test]
fn minimal_request_has_default_facts() {
    assert_eq!(
        facts(base()).unwrap(),
        ChatFacts {
            model: "gpt-4o".into(),
            stream: false,
            include_usage: false,
            max_tokens: None,
            n: 1,
            has_tools: false,
            forced_tool: false,
        }
    );
}

#[test]
fn streaming_tool_request_reports_everything() {
    let req = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
        ],
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_tokens": 50,
        "max_completion_tokens": 100,
        "n": 2,
        "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "look"}}
    });
    let f = facts(req).unwrap();
    assert!(f.stream && f.include_usage && f.has_tools && f.forced_tool);
    assert_eq!(f.max_tokens, Some(100));
    assert_eq!(f.n, 2);
}

#[test]
fn include_usage_without_stream_is_not_reported() {
    let f = facts(with("stream_options", json!({"include_usage": true}))).unwrap();
    assert!(!f.include_usage);
}

#[test]
fn required_tool_choice_is_forced() {
    let mut v = with(
        "tools",
        json!([{"type": "function", "function": {"name": "f"}}]),
    );
    v["tool_choice"] = json!("required");
    assert!(facts(v).unwrap().forced_tool);
}

#[test]
fn model_must_be_a_non_empty_string() {
    let mut no_model = base();
    no_model.as_object_mut().unwrap().remove("model");
    assert_eq!(bad_field(no_model), "model");
    assert_eq!(bad_field(with("model", json!(""))), "model");
    assert_eq!(bad_field(with("model", json!(4))), "model");
}

#[test]
fn messages_must_be_a_non_empty_array_of_objects() {
    assert_eq!(bad_field(with("messages", json!([]))), "messages");
    assert_eq!(bad_field(with("messages", json!("hi"))), "messages");
    assert_eq!(bad_field(with("messages", json!(["hi"]))), "messages[0]");
}

#[test]
fn roles_are_checked() {
    let v = with(
        "messages",
        json!([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]),
    );
    assert_eq!(bad_field(v), "messages[1].role");
    assert_eq!(
        bad_field(with("messages", json!([{"content": "b"}]))),
        "messages[0].role"
    );
    assert_eq!(
        bad_field(with("messages", json!([{"role": 1, "content": "b"}]))),
        "messages[0].role"
    );
}

#[test]
fn content_types_are_checked_per_role() {
    assert_eq!(
        bad_field(with("messages", json!([{"role": "user"}]))),
        "messages[0].content"
    );
    assert_eq!(
        bad_field(with("messages", json!([{"role": "user", "content": 5}]))),
        "messages[0].content"
    );
    assert_eq!(
        bad_field(with(
            "messages",
            json!([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])
        )),
        "messages[0].content[0].type"
    );
    assert_eq!(
        bad_field(with(
            "messages",
            json!([{"role": "user", "content": [{"type": "text"}]}])
        )),
        "messages[0].content[0].text"
    );
    assert_eq!(
        bad_field(with(
            "messages",
            json!([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])
        )),
        "messages[0].content[0].image_url.url"
    );
    assert_eq!(
        bad_field(with("messages", json!([{"role": "assistant"}]))),
        "messages[0].content"
    );
}

#[test]
fn tool_messages_need_their_call_id() {
    let v = with("messages", json!([{"role": "tool", "content": "42"}]));
    assert_eq!(bad_field(v), "messages[0].tool_call_id");
}

#[test]
fn assistant_tool_calls_are_checked() {
    let v = with(
        "messages",
        json!([{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]}]),
    );
    assert_eq!(bad_field(v), "messages[0].tool_calls[0].function.arguments");
}

#[test]
fn scalar_options_are_checked() {
    assert_eq!(bad_field(with("stream", json!("yes"))), "stream");
    assert_eq!(bad_field(with("max_tokens", json!(0))), "max_tokens");
    assert_eq!(bad_field(with("max_tokens", json!(1.5))), "max_tokens");
    assert_eq!(
        bad_field(with("max_completion_tokens", json!(-3))),
        "max_completion_tokens"
    );
    assert_eq!(bad_field(with("n", json!(0))), "n");
    assert_eq!(bad_field(with("temperature", json!("hot"))), "temperature");
    assert_eq!(bad_field(with("temperature", json!(2.5))), "temperature");
    assert_eq!(
        bad_field(with("stream_options", json!(true))),
        "stream_options"
    );
    assert_eq!(
        bad_field(with("stream_options", json!({"include_usage": "yes"}))),
        "stream_options.include_usage"
    );
}

#[test]
fn tools_are_checked() {
    assert_eq!(bad_field(with("tools", json!({}))), "tools");
    assert_eq!(
        bad_field(with("tools", json!([{"type": "function"}]))),
        "tools[0].function"
    );
    assert_eq!(
        bad_field(with(
            "tools",
            json!([{"type": "function", "function": {"name": "f", "parameters": 3}}])
        )),
        "tools[0].function.parameters"
    );
    assert_eq!(
        bad_field(with("tool_choice", json!("always"))),
        "tool_choice"
    );
}

#[test]
fn null_optional_fields_are_accepted() {
    let mut v = base();
    for key in [
        "stream",
        "max_tokens",
        "n",
        "temperature",
        "tools",
        "tool_choice",
        "stream_options",
    ] {
        v.as_object_mut().unwrap().insert(key.into(), Value::Null);
    }
    assert!(facts(v).is_ok());
}

//! Anthropic requests that cannot be expressed for OpenAI are refused naming
//! the field; the smaller mapping rules each get a check.

use serde_json::{Value, json};

use super::*;

fn translate(v: Value) -> Result<Value, WireError> {
    anthropic_to_openai_request(v.as_object().unwrap(), "gpt-x")
}

fn bad_field(v: Value) -> String {
    match translate(v) {
        Err(WireError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn user(content: Value) -> Value {
    json!({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": content}]})
}

#[test]
fn unmappable_requests_are_refused_with_the_field() {
    let mut v = user(json!("hi"));
    v["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
    assert_eq!(bad_field(v), "tools[0].type");
    assert_eq!(
        bad_field(user(json!([{"type": "search_result", "source": "x"}]))),
        "messages[0].content[0].type"
    );
    assert_eq!(
        bad_field(user(
            json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {}}]}])
        )),
        "messages[0].content[0].content[0].type"
    );
    assert_eq!(
        bad_field(user(
            json!([{"type": "image", "source": {"type": "file", "file_id": "f"}}])
        )),
        "messages[0].content[0].source.type"
    );
    let v = json!({"model": "c", "messages": [{"role": "system", "content": "x"}]});
    assert_eq!(bad_field(v), "messages[0].role");
}

#[test]
fn assistant_with_only_tools_has_null_content_and_string_arguments() {
    let out = translate(json!({"model": "c", "max_tokens": 5, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, 2]}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "done"}]}]}
    ]}))
    .unwrap();
    let assistant = &out["messages"][1];
    assert_eq!(assistant["content"], Value::Null);
    let args = assistant["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"a": [1, 2]})
    );
    assert_eq!(
        out["messages"][2],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "done"})
    );
    assert_eq!(out.as_object().unwrap().len(), 3, "no stream fields: {out}");
}

#[test]
fn tool_choice_words_map() {
    let tools = json!([{"name": "f", "input_schema": {"type": "object"}}]);
    for (choice, expected) in [
        (json!({"type": "auto"}), json!("auto")),
        (json!({"type": "any"}), json!("required")),
        (json!({"type": "none"}), json!("none")),
    ] {
        let mut v = user(json!("hi"));
        v["tools"] = tools.clone();
        v["tool_choice"] = choice;
        let out = translate(v).unwrap();
        assert_eq!(out["tool_choice"], expected);
        assert!(out.get("parallel_tool_calls").is_none());
    }
}

#[test]
fn documents_become_file_or_text_parts() {
    let out = translate(user(json!([
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}}
    ])))
    .unwrap();
    assert_eq!(
        out["messages"][0]["content"],
        json!([
            {"type": "file", "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
            {"type": "text", "text": "plain words"}
        ])
    );
}

#[test]
fn stream_false_adds_no_stream_options() {
    let mut v = user(json!("hi"));
    v["stream"] = json!(false);
    let out = translate(v).unwrap();
    assert_eq!(out["stream"], json!(false));
    assert!(out.get("stream_options").is_none());
}

//! Validation of an Anthropic Messages request and the facts admission needs.
//!
//! Anthropic requires `max_tokens`, so unlike OpenAI the output bound is
//! always known here; a request without it is refused before any upstream
//! attempt, as Anthropic itself would refuse it.

use serde_json::{Map, Value};

use crate::WireError;
use crate::field::{self, Path, describe};

/// What the gateway needs to know about a Messages request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessagesFacts {
    /// The requested model name, as the client wrote it.
    pub model: String,
    /// `stream: true` was asked for.
    pub stream: bool,
    /// The required output bound.
    pub max_tokens: u64,
    /// The request offers at least one tool.
    pub has_tools: bool,
    /// `tool_choice` forces a call (`{"type":"any"}` or `{"type":"tool"}`).
    pub forced_tool: bool,
}

/// Validates a parsed Messages request: `model` a non-empty string,
/// `max_tokens` a positive integer, `messages` a non-empty array of objects
/// with role `user` or `assistant` and content a string or an array of typed
/// blocks, `system` a string or an array of text blocks, `stream` a boolean,
/// `tools` an array, `tool_choice` an object with a `type`.
///
/// # Errors
///
/// [`WireError::Invalid`] naming the first offending field by JSON path.
pub fn messages_facts(req: &Map<String, Value>) -> Result<MessagesFacts, WireError> {
    let root = Path::Root;
    let model = field::required_str(req, "model", root)?.to_owned();
    let max_tokens = field::opt_positive_int(req, "max_tokens", root)?
        .ok_or_else(|| root.key("max_tokens").invalid("is required"))?;

    let messages_at = root.key("messages");
    for (i, m) in field::required_non_empty_array(req, "messages", root)?
        .iter()
        .enumerate()
    {
        check_message(m, messages_at.index(i))?;
    }
    if let Some(system) = field::present(req, "system") {
        check_system(system, root.key("system"))?;
    }

    let stream = field::opt_bool(req, "stream", root)?.unwrap_or(false);
    field::opt_number_in(req, "temperature", root, 0.0, 1.0)?;
    field::opt_number_in(req, "top_p", root, 0.0, 1.0)?;
    let tools = field::opt_array(req, "tools", root)?.unwrap_or_default();
    let tools_at = root.key("tools");
    for (i, tool) in tools.iter().enumerate() {
        let at = tools_at.index(i);
        field::required_str(field::object(tool, at)?, "name", at)?;
    }
    let forced_tool = match field::present(req, "tool_choice") {
        None => false,
        Some(v) => {
            let at = root.key("tool_choice");
            let kind = field::required_str(field::object(v, at)?, "type", at)?;
            kind == "any" || kind == "tool"
        }
    };

    Ok(MessagesFacts {
        model,
        stream,
        max_tokens,
        has_tools: !tools.is_empty(),
        forced_tool,
    })
}

fn check_message(m: &Value, at: Path<'_>) -> Result<(), WireError> {
    let obj = field::object(m, at)?;
    match field::required_str(obj, "role", at)? {
        "user" | "assistant" => {}
        other => {
            return Err(at.key("role").invalid(format!(
                "unknown role '{other}', expected user or assistant (system goes in the top-level system field)"
            )));
        }
    }
    let content_at = at.key("content");
    match field::present(obj, "content") {
        None => Err(content_at.invalid("is required")),
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(blocks)) => {
            for (i, block) in blocks.iter().enumerate() {
                let block_at = content_at.index(i);
                let block = field::object(block, block_at)?;
                if field::required_str(block, "type", block_at)? == "text" {
                    check_text(block, block_at)?;
                }
            }
            Ok(())
        }
        Some(v) => Err(content_at.invalid(format!(
            "must be a string or an array of content blocks, got {}",
            describe(v)
        ))),
    }
}

fn check_system(system: &Value, at: Path<'_>) -> Result<(), WireError> {
    match system {
        Value::String(_) => Ok(()),
        Value::Array(blocks) => {
            for (i, block) in blocks.iter().enumerate() {
                let block_at = at.index(i);
                let block = field::object(block, block_at)?;
                match field::required_str(block, "type", block_at)? {
                    "text" => check_text(block, block_at)?,
                    other => {
                        return Err(block_at
                            .key("type")
                            .invalid(format!("system blocks must be text, got '{other}'")));
                    }
                }
            }
            Ok(())
        }
        v => Err(at.invalid(format!(
            "must be a string or an array of text blocks, got {}",
            describe(v)
        ))),
    }
}

fn check_text(block: &Map<String, Value>, at: Path<'_>) -> Result<(), WireError> {
    match field::opt_str(block, "text", at)? {
        Some(_) => Ok(()),
        None => Err(at.key("text").invalid("is required")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn base() -> Value {
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": "Hello, world"}]
        })
    }

    fn with(key: &str, value: Value) -> Value {
        let mut v = base();
        v.as_object_mut().unwrap().insert(key.into(), value);
        v
    }

    fn bad_field(v: Value) -> String {
        match messages_facts(v.as_object().unwrap()) {
            Err(WireError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn good_request_yields_facts() {
        let mut v = with(
            "tools",
            json!([{"name": "get_weather", "input_schema": {"type": "object"}}]),
        );
        v["tool_choice"] = json!({"type": "tool", "name": "get_weather"});
        v["stream"] = json!(true);
        v["system"] = json!([{"type": "text", "text": "Be brief."}]);
        let f = messages_facts(v.as_object().unwrap()).unwrap();
        assert_eq!(
            f,
            MessagesFacts {
                model: "claude-sonnet-4-5".into(),
                stream: true,
                max_tokens: 1024,
                has_tools: true,
                forced_tool: true,
            }
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut no_max = base();
        no_max.as_object_mut().unwrap().remove("max_tokens");
        assert_eq!(bad_field(no_max), "max_tokens");
        assert_eq!(bad_field(with("max_tokens", json!(0))), "max_tokens");
        assert_eq!(bad_field(with("model", json!(""))), "model");
        assert_eq!(bad_field(with("messages", json!([]))), "messages");
        assert_eq!(
            bad_field(with(
                "messages",
                json!([{"role": "system", "content": "x"}])
            )),
            "messages[0].role"
        );
        assert_eq!(
            bad_field(with("messages", json!([{"role": "user", "content": 3}]))),
            "messages[0].content"
        );
        assert_eq!(
            bad_field(with(
                "messages",
                json!([{"role": "user", "content": [{"text": "x"}]}])
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
        assert_eq!(bad_field(with("system", json!(5))), "system");
        assert_eq!(
            bad_field(with("system", json!([{"type": "image"}]))),
            "system[0].type"
        );
        assert_eq!(bad_field(with("stream", json!(1))), "stream");
        assert_eq!(bad_field(with("temperature", json!(1.5))), "temperature");
        assert_eq!(bad_field(with("tools", json!([{}]))), "tools[0].name");
        assert_eq!(bad_field(with("tool_choice", json!("any"))), "tool_choice");
    }
}

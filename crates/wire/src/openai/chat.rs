//! Validation of an OpenAI chat completions request and the facts admission needs.
//!
//! The edge runs this on every `/v1/chat/completions` request before any
//! upstream is chosen, so a malformed request is refused with a 400 naming
//! the field instead of costing an upstream attempt (and a breaker strike).

use serde_json::{Map, Value};

use crate::WireError;
use crate::field::{self, Path, describe};

/// What the gateway needs to know about a chat request to admit and route it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatFacts {
    /// The requested model name, as the client wrote it.
    pub model: String,
    /// `stream: true` was asked for.
    pub stream: bool,
    /// `stream_options.include_usage: true` on a streaming request: the
    /// client expects the final usage chunk.
    pub include_usage: bool,
    /// `max_completion_tokens`, else `max_tokens`; `None` when the client
    /// set neither and the gateway must clamp the output bound itself.
    pub max_tokens: Option<u64>,
    /// Number of choices asked for (`n`, default 1); output cost scales with it.
    pub n: u64,
    /// The request offers at least one tool (`tools` or legacy `functions`).
    pub has_tools: bool,
    /// `tool_choice` forces a tool call (`"required"` or a named function).
    pub forced_tool: bool,
}

/// Roles OpenAI accepts, in the order the error message lists them.
const ROLES: &str = "system, developer, user, assistant, tool, function";

/// Validates a parsed chat request and reads its facts.
///
/// `model` is a non-empty string; `messages` a non-empty array of objects,
/// each with a role among system, developer, user, assistant, tool and
/// function and content of a type that role allows; `stream` a boolean;
/// `max_tokens` / `max_completion_tokens` / `n` positive integers;
/// `temperature` a number in 0..2; `tools` an array of tool definitions.
/// `null` counts as absent for every optional field.
///
/// # Errors
///
/// [`WireError::Invalid`] naming the first offending field by JSON path.
pub fn chat_facts(req: &Map<String, Value>) -> Result<ChatFacts, WireError> {
    let root = Path::Root;
    let model = field::required_str(req, "model", root)?.to_owned();

    let messages_at = root.key("messages");
    for (i, m) in field::required_non_empty_array(req, "messages", root)?
        .iter()
        .enumerate()
    {
        check_message(m, messages_at.index(i))?;
    }

    let stream = field::opt_bool(req, "stream", root)?.unwrap_or(false);
    let include_usage = match field::present(req, "stream_options") {
        None => false,
        Some(v) => {
            let at = root.key("stream_options");
            let opts = field::object(v, at)?;
            field::opt_bool(opts, "include_usage", at)?.unwrap_or(false)
        }
    };
    let max_tokens = field::opt_positive_int(req, "max_tokens", root)?;
    let max_completion_tokens = field::opt_positive_int(req, "max_completion_tokens", root)?;
    let n = field::opt_positive_int(req, "n", root)?.unwrap_or(1);
    field::opt_number_in(req, "temperature", root, 0.0, 2.0)?;
    field::opt_number_in(req, "top_p", root, 0.0, 1.0)?;

    let tools = field::opt_array(req, "tools", root)?.unwrap_or_default();
    let tools_at = root.key("tools");
    for (i, tool) in tools.iter().enumerate() {
        check_tool(tool, tools_at.index(i))?;
    }
    let functions = field::opt_array(req, "functions", root)?.unwrap_or_default();
    let forced_tool = forced_tool(req)?;

    Ok(ChatFacts {
        model,
        stream,
        include_usage: stream && include_usage,
        max_tokens: max_completion_tokens.or(max_tokens),
        n,
        has_tools: !tools.is_empty() || !functions.is_empty(),
        forced_tool,
    })
}

/// One message: a known role and content of a type that role allows.
fn check_message(m: &Value, at: Path<'_>) -> Result<(), WireError> {
    let obj = field::object(m, at)?;
    let role = match field::present(obj, "role") {
        Some(Value::String(r)) => r.as_str(),
        Some(v) => {
            return Err(at
                .key("role")
                .invalid(format!("must be a string, got {}", describe(v))));
        }
        None => return Err(at.key("role").invalid("is required")),
    };
    let content_at = at.key("content");
    match role {
        "system" | "developer" => check_content(required_content(obj, at)?, content_at, &["text"]),
        "user" => check_content(
            required_content(obj, at)?,
            content_at,
            &["text", "image_url", "input_audio", "file"],
        ),
        "assistant" => {
            let calls = field::opt_array(obj, "tool_calls", at)?;
            if let Some(calls) = calls {
                let calls_at = at.key("tool_calls");
                for (i, call) in calls.iter().enumerate() {
                    check_tool_call(call, calls_at.index(i))?;
                }
            }
            match field::present(obj, "content") {
                Some(content) => check_content(content, content_at, &["text", "refusal"]),
                None if calls.is_some_and(|c| !c.is_empty())
                    || field::present(obj, "function_call").is_some() =>
                {
                    Ok(())
                }
                None => Err(content_at.invalid("is required unless tool_calls is given")),
            }
        }
        "tool" => {
            field::required_str(obj, "tool_call_id", at)?;
            check_content(required_content(obj, at)?, content_at, &["text"])
        }
        "function" => {
            field::required_str(obj, "name", at)?;
            field::opt_str(obj, "content", at).map(|_| ())
        }
        other => Err(at
            .key("role")
            .invalid(format!("unknown role '{other}', expected one of {ROLES}"))),
    }
}

fn required_content<'v>(obj: &'v Map<String, Value>, at: Path<'_>) -> Result<&'v Value, WireError> {
    field::present(obj, "content").ok_or_else(|| at.key("content").invalid("is required"))
}

/// Content is a string, or an array of parts whose `type` is in `allowed`.
fn check_content(content: &Value, at: Path<'_>, allowed: &[&str]) -> Result<(), WireError> {
    let parts = match content {
        Value::String(_) => return Ok(()),
        Value::Array(parts) => parts,
        v => {
            return Err(at.invalid(format!(
                "must be a string or an array of content parts, got {}",
                describe(v)
            )));
        }
    };
    for (i, part) in parts.iter().enumerate() {
        let part_at = at.index(i);
        let obj = field::object(part, part_at)?;
        let kind = field::required_str(obj, "type", part_at)?;
        if !allowed.contains(&kind) {
            return Err(part_at.key("type").invalid(format!(
                "content part type '{kind}' is not allowed here, expected one of {}",
                allowed.join(", ")
            )));
        }
        match kind {
            "text" => check_string(obj, "text", part_at)?,
            "refusal" => check_string(obj, "refusal", part_at)?,
            "image_url" => {
                let image_at = part_at.key("image_url");
                let image = field::present(obj, "image_url")
                    .ok_or_else(|| image_at.invalid("is required"))?;
                field::required_str(field::object(image, image_at)?, "url", image_at)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A string member that must be present (empty allowed).
fn check_string(obj: &Map<String, Value>, key: &str, at: Path<'_>) -> Result<(), WireError> {
    match field::opt_str(obj, key, at)? {
        Some(_) => Ok(()),
        None => Err(at.key(key).invalid("is required")),
    }
}

/// An assistant tool call: `{id, type: "function", function: {name, arguments}}`.
fn check_tool_call(call: &Value, at: Path<'_>) -> Result<(), WireError> {
    let obj = field::object(call, at)?;
    field::required_str(obj, "id", at)?;
    let fn_at = at.key("function");
    let function = field::present(obj, "function").ok_or_else(|| fn_at.invalid("is required"))?;
    let function = field::object(function, fn_at)?;
    field::required_str(function, "name", fn_at)?;
    check_string(function, "arguments", fn_at)
}

/// A tool definition; function tools need a name and an object schema.
fn check_tool(tool: &Value, at: Path<'_>) -> Result<(), WireError> {
    let obj = field::object(tool, at)?;
    if field::required_str(obj, "type", at)? != "function" {
        // Other tool types (e.g. "custom") pass through to OpenAI upstreams
        // untouched; translation refuses them with its own error.
        return Ok(());
    }
    let fn_at = at.key("function");
    let function = field::present(obj, "function").ok_or_else(|| fn_at.invalid("is required"))?;
    let function = field::object(function, fn_at)?;
    field::required_str(function, "name", fn_at)?;
    if let Some(params) = field::present(function, "parameters") {
        field::object(params, fn_at.key("parameters"))?;
    }
    Ok(())
}

/// Whether `tool_choice` (or legacy `function_call`) forces a call.
fn forced_tool(req: &Map<String, Value>) -> Result<bool, WireError> {
    let root = Path::Root;
    let forced = match field::present(req, "tool_choice") {
        None => false,
        Some(Value::String(s)) => match s.as_str() {
            "none" | "auto" => false,
            "required" => true,
            other => {
                return Err(root.key("tool_choice").invalid(format!(
                    "unknown tool_choice '{other}', expected none, auto, required or an object"
                )));
            }
        },
        Some(v) => {
            let at = root.key("tool_choice");
            let kind = field::required_str(field::object(v, at)?, "type", at)?;
            kind == "function" || kind == "custom"
        }
    };
    let legacy = matches!(field::present(req, "function_call"), Some(Value::Object(_)));
    Ok(forced || legacy)
}

#[cfg(test)]
#[path = "chat/tests.rs"]
mod tests;

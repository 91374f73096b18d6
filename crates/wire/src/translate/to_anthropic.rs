//! OpenAI chat request -> Anthropic Messages request.
//!
//! The shapes differ in three ways that matter: Anthropic keeps the system
//! prompt out of `messages`, wants strictly alternating user/assistant turns
//! (so consecutive same-role messages are merged), and carries tool results
//! as `tool_result` blocks inside a user turn instead of `tool` messages.

use serde_json::{Map, Value, json};

use crate::WireError;
use crate::field::{self, Path, describe};

mod content;
mod tools;

use content::{text_block, texts, user_content};

/// OpenAI chat request -> Anthropic Messages request for `upstream_model`.
///
/// - `system` / `developer` messages -> top-level `system` (a string, or
///   text blocks when there are several); consecutive same-role messages
///   are merged, as Anthropic requires alternating turns.
/// - User parts: `text`; `image_url` with a `data:` URL -> base64 image
///   block, with an http(s) URL -> url image source; `file` with inline
///   `file_data` -> `document` block.
/// - Assistant `tool_calls` -> `tool_use` blocks, `arguments` parsed to a
///   JSON object; role `tool` -> a user turn with a `tool_result` block
///   (`tool_use_id` = `tool_call_id`). Legacy `function_call` / role
///   `function` messages become the same pair.
/// - `tools` (`{type: function, function: {name, description, parameters}}`)
///   -> `{name, description, input_schema}`; `tool_choice` `auto` / `required`
///   / `none` / named function -> `auto` / `any` / `none` / `tool`;
///   `parallel_tool_calls: false` -> `disable_parallel_tool_use`.
/// - `stop` -> `stop_sequences`; `max_completion_tokens`, else `max_tokens`,
///   else `default_max_tokens`; `temperature` clamped to 0..1; `top_p` and
///   `stream` copied; `safety_identifier` or `user` -> `metadata.user_id`.
/// - Fields with no Anthropic meaning are dropped.
///
/// # Errors
///
/// [`WireError::Invalid`] when the request cannot be expressed for Anthropic
/// without changing its meaning: `n` > 1, audio or file-id parts, non-function
/// tools, tool arguments that are not a JSON object, and any malformed field
/// the translation reads.
pub fn openai_to_anthropic_request(
    req: &Map<String, Value>,
    upstream_model: &str,
    default_max_tokens: u64,
) -> Result<Value, WireError> {
    let root = Path::Root;
    if field::opt_positive_int(req, "n", root)?.is_some_and(|n| n > 1) {
        return Err(root
            .key("n")
            .invalid("only n = 1 can be served by an Anthropic model"));
    }
    let (system, turns) = conversation(req)?;

    let mut out = Map::new();
    out.insert("model".into(), upstream_model.into());
    out.insert(
        "messages".into(),
        turns.into_iter().map(Turn::into_value).collect(),
    );
    match system.as_slice() {
        [] => {}
        [only] => {
            out.insert("system".into(), only.as_str().into());
        }
        many => {
            let blocks = many.iter().map(|t| text_block(t)).collect();
            out.insert("system".into(), Value::Array(blocks));
        }
    }
    let max_tokens = field::opt_positive_int(req, "max_tokens", root)?;
    let max_completion = field::opt_positive_int(req, "max_completion_tokens", root)?;
    out.insert(
        "max_tokens".into(),
        max_completion
            .or(max_tokens)
            .unwrap_or(default_max_tokens)
            .into(),
    );
    if let Some(stop) = stop_sequences(req)? {
        out.insert("stop_sequences".into(), stop);
    }
    // OpenAI's range is 0..2 and Anthropic's 0..1; clamping keeps "as hot as
    // allowed" rather than failing a request the client wrote correctly.
    if let Some(t) = field::opt_number_in(req, "temperature", root, 0.0, 2.0)? {
        out.insert("temperature".into(), t.clamp(0.0, 1.0).into());
    }
    if let Some(p) = field::opt_number_in(req, "top_p", root, 0.0, 1.0)? {
        out.insert("top_p".into(), p.into());
    }
    if let Some(stream) = field::opt_bool(req, "stream", root)? {
        out.insert("stream".into(), stream.into());
    }
    // `safety_identifier` is OpenAI's newer name for the end-user id `user`
    // carried; both mean what Anthropic's `metadata.user_id` means.
    let safety_id = field::opt_str(req, "safety_identifier", root)?;
    if let Some(user) = safety_id.or(field::opt_str(req, "user", root)?) {
        out.insert("metadata".into(), json!({ "user_id": user }));
    }
    tools::tools(req, &mut out)?;
    Ok(Value::Object(out))
}

/// Content of one Anthropic message being built.
enum Content {
    /// Plain string content, kept as a string when nothing merges into it.
    Text(String),
    Blocks(Vec<Value>),
}

/// One Anthropic message being built.
struct Turn {
    role: &'static str,
    content: Content,
}

impl Content {
    fn into_blocks(self) -> Vec<Value> {
        match self {
            // Anthropic refuses empty text blocks.
            Content::Text(s) if s.is_empty() => Vec::new(),
            Content::Text(s) => vec![text_block(&s)],
            Content::Blocks(b) => b,
        }
    }
}

impl Turn {
    fn into_value(self) -> Value {
        let content = match self.content {
            Content::Text(s) => Value::String(s),
            Content::Blocks(b) => Value::Array(b),
        };
        json!({ "role": self.role, "content": content })
    }
}

/// Appends a turn, merging it into the previous one when the role repeats.
fn push(turns: &mut Vec<Turn>, role: &'static str, content: Content) {
    if let Some(last) = turns.last_mut()
        && last.role == role
    {
        let previous = std::mem::replace(&mut last.content, Content::Blocks(Vec::new()));
        let mut blocks = previous.into_blocks();
        blocks.extend(content.into_blocks());
        last.content = Content::Blocks(blocks);
        return;
    }
    turns.push(Turn { role, content });
}

/// The system texts and the alternating turns of the conversation.
fn conversation(req: &Map<String, Value>) -> Result<(Vec<String>, Vec<Turn>), WireError> {
    let root = Path::Root;
    let messages_at = root.key("messages");
    let mut system = Vec::new();
    let mut turns = Vec::new();
    // Legacy function calls carry no id; the call and its result are paired
    // by order, through an id made from the call's message index.
    let mut legacy_call: Option<String> = None;
    for (i, m) in field::required_non_empty_array(req, "messages", root)?
        .iter()
        .enumerate()
    {
        let at = messages_at.index(i);
        let obj = field::object(m, at)?;
        let content_at = at.key("content");
        let content = field::present(obj, "content");
        match field::required_str(obj, "role", at)? {
            "system" | "developer" => {
                let content = content.ok_or_else(|| content_at.invalid("is required"))?;
                system.extend(
                    texts(content, content_at)?
                        .into_iter()
                        .filter(|t| !t.is_empty()),
                );
            }
            "user" => {
                let content = content.ok_or_else(|| content_at.invalid("is required"))?;
                push(&mut turns, "user", user_content(content, content_at)?);
            }
            "assistant" => {
                let content = assistant_content(obj, at, i, &mut legacy_call)?;
                if let Some(content) = content {
                    push(&mut turns, "assistant", content);
                }
            }
            "tool" => {
                let id = field::required_str(obj, "tool_call_id", at)?;
                let result = tool_result(id, content, content_at)?;
                push(&mut turns, "user", Content::Blocks(vec![result]));
            }
            "function" => {
                let name = field::required_str(obj, "name", at)?;
                let id = legacy_call.take().unwrap_or_else(|| format!("call_{name}"));
                let result = tool_result(&id, content, content_at)?;
                push(&mut turns, "user", Content::Blocks(vec![result]));
            }
            other => {
                return Err(at.key("role").invalid(format!("unknown role '{other}'")));
            }
        }
    }
    if turns.is_empty() {
        return Err(messages_at.invalid("must contain a user or assistant message"));
    }
    Ok((system, turns))
}

/// An assistant turn: its text, then one tool_use block per tool call.
/// `None` when the message has nothing Anthropic would accept.
fn assistant_content(
    obj: &Map<String, Value>,
    at: Path<'_>,
    index: usize,
    legacy_call: &mut Option<String>,
) -> Result<Option<Content>, WireError> {
    let content_at = at.key("content");
    let calls = field::opt_array(obj, "tool_calls", at)?.unwrap_or_default();
    let function_call = field::present(obj, "function_call");
    let content = field::present(obj, "content");
    if let (Some(Value::String(s)), [], None) = (content, calls, function_call) {
        return Ok((!s.is_empty()).then(|| Content::Text(s.clone())));
    }
    let mut blocks = Vec::new();
    if let Some(content) = content {
        for text in texts(content, content_at)? {
            if !text.is_empty() {
                blocks.push(text_block(&text));
            }
        }
    }
    let calls_at = at.key("tool_calls");
    for (j, call) in calls.iter().enumerate() {
        let call_at = calls_at.index(j);
        let call = field::object(call, call_at)?;
        let id = field::required_str(call, "id", call_at)?;
        blocks.push(tool_use(id, call, call_at)?);
    }
    if let Some(call) = function_call {
        let id = format!("call_{index}");
        let call_at = at.key("function_call");
        let mut wrapped = Map::new();
        wrapped.insert("function".into(), call.clone());
        blocks.push(tool_use(&id, &wrapped, call_at)?);
        *legacy_call = Some(id);
    }
    Ok((!blocks.is_empty()).then_some(Content::Blocks(blocks)))
}

/// A tool_use block from `{function: {name, arguments}}`.
fn tool_use(id: &str, call: &Map<String, Value>, at: Path<'_>) -> Result<Value, WireError> {
    let fn_at = at.key("function");
    let function = field::present(call, "function").ok_or_else(|| fn_at.invalid("is required"))?;
    let function = field::object(function, fn_at)?;
    let name = field::required_str(function, "name", fn_at)?;
    let arguments = field::opt_str(function, "arguments", fn_at)?.unwrap_or_default();
    // Some clients send "" for a call without arguments; that means {}.
    let input = if arguments.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str::<Value>(arguments) {
            Ok(v @ Value::Object(_)) => v,
            Ok(v) => {
                return Err(fn_at
                    .key("arguments")
                    .invalid(format!("must encode a JSON object, got {}", describe(&v))));
            }
            Err(e) => {
                return Err(fn_at
                    .key("arguments")
                    .invalid(format!("is not valid JSON: {e}")));
            }
        }
    };
    Ok(json!({"type": "tool_use", "id": id, "name": name, "input": input}))
}

/// A tool_result block for tool message content (string or text parts).
fn tool_result(id: &str, content: Option<&Value>, at: Path<'_>) -> Result<Value, WireError> {
    let content = match content {
        None => Value::String(String::new()),
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(c) => {
            let blocks = texts(c, at)?;
            Value::Array(
                blocks
                    .iter()
                    .filter(|t| !t.is_empty())
                    .map(|t| text_block(t))
                    .collect(),
            )
        }
    };
    Ok(json!({"type": "tool_result", "tool_use_id": id, "content": content}))
}

/// `stop` (a string or an array of strings) as `stop_sequences`.
fn stop_sequences(req: &Map<String, Value>) -> Result<Option<Value>, WireError> {
    let root = Path::Root;
    let stop_at = root.key("stop");
    let sequences = match field::present(req, "stop") {
        None => return Ok(None),
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_string() {
                    return Err(stop_at.index(i).invalid("must be a string"));
                }
            }
            items.clone()
        }
        Some(v) => {
            return Err(stop_at.invalid(format!(
                "must be a string or an array of strings, got {}",
                describe(v)
            )));
        }
    };
    Ok((!sequences.is_empty()).then_some(Value::Array(sequences)))
}

#[cfg(test)]
#[path = "to_anthropic/tests.rs"]
mod tests;

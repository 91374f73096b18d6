//! Tool definitions and tool choice, OpenAI -> Anthropic.
//!
//! Function tools map one to one (`parameters` becomes `input_schema`);
//! OpenAI's `parallel_tool_calls: false` lives inside Anthropic's
//! `tool_choice` as `disable_parallel_tool_use`.

use serde_json::{Map, Value, json};

use crate::WireError;
use crate::field::{self, Path, describe};

/// `tools`, `tool_choice` and `parallel_tool_calls` (or the legacy
/// `functions` / `function_call`) into `out`.
pub(super) fn tools(
    req: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), WireError> {
    let root = Path::Root;
    let mut defs = Vec::new();
    let tools_at = root.key("tools");
    for (i, tool) in field::opt_array(req, "tools", root)?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = tools_at.index(i);
        let obj = field::object(tool, at)?;
        let kind = field::required_str(obj, "type", at)?;
        if kind != "function" {
            return Err(at.key("type").invalid(format!(
                "tool type '{kind}' cannot be sent to an Anthropic model, only function"
            )));
        }
        let fn_at = at.key("function");
        let function =
            field::present(obj, "function").ok_or_else(|| fn_at.invalid("is required"))?;
        defs.push(tool_def(field::object(function, fn_at)?, fn_at)?);
    }
    let functions_at = root.key("functions");
    for (i, function) in field::opt_array(req, "functions", root)?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = functions_at.index(i);
        defs.push(tool_def(field::object(function, at)?, at)?);
    }
    if defs.is_empty() {
        // A tool_choice without tools is refused by Anthropic; with no tools
        // offered it cannot mean anything anyway.
        return Ok(());
    }

    let mut choice = match field::present(req, "tool_choice") {
        Some(c) => Some(tool_choice(c, root.key("tool_choice"), "function")?),
        None => match field::present(req, "function_call") {
            Some(c) => Some(tool_choice(c, root.key("function_call"), "")?),
            None => None,
        },
    };
    if field::opt_bool(req, "parallel_tool_calls", root)? == Some(false) {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c.get("type").and_then(Value::as_str) != Some("none")
            && let Some(obj) = c.as_object_mut()
        {
            obj.insert("disable_parallel_tool_use".into(), true.into());
        }
    }
    out.insert("tools".into(), Value::Array(defs));
    if let Some(choice) = choice {
        out.insert("tool_choice".into(), choice);
    }
    Ok(())
}

/// `{name, description, parameters}` -> `{name, description, input_schema}`.
fn tool_def(function: &Map<String, Value>, at: Path<'_>) -> Result<Value, WireError> {
    let mut def = Map::new();
    def.insert(
        "name".into(),
        field::required_str(function, "name", at)?.into(),
    );
    if let Some(d) = field::opt_str(function, "description", at)? {
        def.insert("description".into(), d.into());
    }
    // Anthropic requires a schema; OpenAI lets a function omit it.
    let schema = match field::present(function, "parameters") {
        Some(p) => Value::Object(field::object(p, at.key("parameters"))?.clone()),
        None => json!({"type": "object", "properties": {}}),
    };
    def.insert("input_schema".into(), schema);
    Ok(Value::Object(def))
}

/// One `tool_choice` value. `object_type` is the `type` a named choice must
/// carry (`"function"`), or `""` for legacy `function_call: {name}`.
fn tool_choice(choice: &Value, at: Path<'_>, object_type: &str) -> Result<Value, WireError> {
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(json!({"type": "auto"})),
            "required" => Ok(json!({"type": "any"})),
            "none" => Ok(json!({"type": "none"})),
            other => Err(at.invalid(format!("unknown tool_choice '{other}'"))),
        },
        Value::Object(obj) if object_type.is_empty() => {
            let name = field::required_str(obj, "name", at)?;
            Ok(json!({"type": "tool", "name": name}))
        }
        Value::Object(obj) => {
            let kind = field::required_str(obj, "type", at)?;
            if kind != object_type {
                return Err(at.key("type").invalid(format!(
                    "tool_choice type '{kind}' cannot be sent to an Anthropic model"
                )));
            }
            let fn_at = at.key("function");
            let f = field::present(obj, "function").ok_or_else(|| fn_at.invalid("is required"))?;
            let name = field::required_str(field::object(f, fn_at)?, "name", fn_at)?;
            Ok(json!({"type": "tool", "name": name}))
        }
        v => Err(at.invalid(format!(
            "must be a string or an object, got {}",
            describe(v)
        ))),
    }
}

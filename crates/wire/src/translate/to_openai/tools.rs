//! Tool definitions and tool choice, Anthropic -> OpenAI.
//!
//! Only client tools (no `type`, or `type: "custom"`) have an OpenAI form;
//! Anthropic's server tools (web search, code execution, …) run inside
//! Anthropic and are refused rather than offered to a model that cannot
//! run them.

use serde_json::{Map, Value, json};

use crate::WireError;
use crate::field::{self, Path, describe};

/// `tools` and `tool_choice` (with `disable_parallel_tool_use`) into `out`.
pub(super) fn tools(
    req: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), WireError> {
    let root = Path::Root;
    let tools_at = root.key("tools");
    let mut defs = Vec::new();
    for (i, tool) in field::opt_array(req, "tools", root)?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = tools_at.index(i);
        let obj = field::object(tool, at)?;
        if let Some(kind) = field::opt_str(obj, "type", at)?
            && kind != "custom"
        {
            return Err(at.key("type").invalid(format!(
                "server tool '{kind}' cannot be sent to an OpenAI model"
            )));
        }
        let mut function = Map::new();
        function.insert("name".into(), field::required_str(obj, "name", at)?.into());
        if let Some(d) = field::opt_str(obj, "description", at)? {
            function.insert("description".into(), d.into());
        }
        let schema = match field::present(obj, "input_schema") {
            Some(s) => Value::Object(field::object(s, at.key("input_schema"))?.clone()),
            None => json!({"type": "object", "properties": {}}),
        };
        function.insert("parameters".into(), schema);
        defs.push(json!({"type": "function", "function": function}));
    }
    if defs.is_empty() {
        // OpenAI refuses tool_choice and parallel_tool_calls without tools.
        return Ok(());
    }
    out.insert("tools".into(), Value::Array(defs));

    let Some(choice) = field::present(req, "tool_choice") else {
        return Ok(());
    };
    let at = root.key("tool_choice");
    let obj = field::object(choice, at)?;
    let mapped = match field::required_str(obj, "type", at)? {
        "auto" => json!("auto"),
        "any" => json!("required"),
        "none" => json!("none"),
        "tool" => {
            let name = field::required_str(obj, "name", at)?;
            json!({"type": "function", "function": {"name": name}})
        }
        other => {
            return Err(at
                .key("type")
                .invalid(format!("unknown tool_choice type '{other}'")));
        }
    };
    out.insert("tool_choice".into(), mapped);
    match field::present(obj, "disable_parallel_tool_use") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            out.insert("parallel_tool_calls".into(), false.into());
        }
        Some(v) => {
            return Err(at
                .key("disable_parallel_tool_use")
                .invalid(format!("must be a boolean, got {}", describe(v))));
        }
    }
    Ok(())
}

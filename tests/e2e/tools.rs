//! Forced tool calls come back in the client's own format with JSON arguments, through both
//! upstream formats, streamed and not.

use serde_json::{Value, json};
use switchyard_testkit::{MockSpec, TestCluster};

use crate::bounded;

fn fleet() -> switchyard_testkit::cluster::Builder {
    TestCluster::builder()
        .mock(MockSpec::anthropic(
            "mock-c",
            &["claude-3-5-haiku"],
            800_000,
            4_000_000,
        ))
        .mock(MockSpec::openai(
            "mock-a",
            &["gpt-4o-mini"],
            150_000,
            600_000,
        ))
        .route(
            "via-anthropic",
            "priority",
            &[("mock-c", "claude-3-5-haiku")],
            &[],
        )
        .route("via-openai", "priority", &[("mock-a", "gpt-4o-mini")], &[])
}

fn schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city", "days"]})
}

/// OpenAI client, `tool_choice` forcing `get_weather`, through each upstream format, stream and not.
#[tokio::test]
async fn openai_client_gets_forced_tool_call_through_both_formats() -> anyhow::Result<()> {
    bounded(async {
        let c = fleet().start().await?;
        for model in ["via-openai", "via-anthropic"] {
            let body = json!({
                "model": model,
                "messages": [{"role": "user", "content": "weather in Paris for 3 days?"}],
                "tools": [{"type": "function", "function": {"name": "get_weather", "description": "weather", "parameters": schema()}}],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
            });
            let r = c.chat(0, &body).await?;
            assert_eq!(r.status, 200, "{model}: {}", r.text());
            let v = r.json();
            assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{model}: {v}");
            let call = &v["choices"][0]["message"]["tool_calls"][0];
            assert_eq!(call["function"]["name"], "get_weather");
            let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or("null"))?;
            assert!(args.get("city").is_some() && args.get("days").is_some(), "{model}: {args}");

            let mut sbody = body.clone();
            sbody["stream"] = json!(true);
            let s = c.chat(0, &sbody).await?;
            let mut name = String::new();
            let mut arguments = String::new();
            let mut finish = String::new();
            for d in s.sse_data().iter().filter(|d| d.starts_with('{')) {
                let chunk: Value = serde_json::from_str(d)?;
                let choice = &chunk["choices"][0];
                if let Some(tc) = choice["delta"]["tool_calls"].get(0) {
                    name.push_str(tc["function"]["name"].as_str().unwrap_or_default());
                    arguments.push_str(tc["function"]["arguments"].as_str().unwrap_or_default());
                }
                if let Some(f) = choice["finish_reason"].as_str() {
                    finish = f.to_owned();
                }
            }
            assert_eq!(name, "get_weather", "{model}");
            assert_eq!(finish, "tool_calls", "{model}");
            let args: Value = serde_json::from_str(&arguments)?;
            assert!(args.get("city").is_some() && args.get("days").is_some(), "{model}: {args}");
        }
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// Anthropic client, `tool_choice: {type: tool}`, through each upstream format, stream and not.
#[tokio::test]
async fn anthropic_client_gets_forced_tool_use_through_both_formats() -> anyhow::Result<()> {
    bounded(async {
        let c = fleet().start().await?;
        for model in ["via-anthropic", "via-openai"] {
            let body = json!({
                "model": model,
                "max_tokens": 200,
                "messages": [{"role": "user", "content": "weather in Paris for 3 days?"}],
                "tools": [{"name": "get_weather", "description": "weather", "input_schema": schema()}],
                "tool_choice": {"type": "tool", "name": "get_weather"}
            });
            let r = c.messages(0, &body).await?;
            assert_eq!(r.status, 200, "{model}: {}", r.text());
            let v = r.json();
            assert_eq!(v["stop_reason"], "tool_use", "{model}: {v}");
            let block = v["content"].as_array().and_then(|b| b.iter().find(|b| b["type"] == "tool_use")).cloned().unwrap_or_default();
            assert_eq!(block["name"], "get_weather");
            assert!(block["input"].get("city").is_some() && block["input"].get("days").is_some(), "{model}: {block}");

            let mut sbody = body.clone();
            sbody["stream"] = json!(true);
            let s = c.messages(0, &sbody).await?;
            let mut partial = String::new();
            let mut saw_tool_start = false;
            let mut stop_reason = String::new();
            for d in s.sse_data() {
                let ev: Value = serde_json::from_str(&d)?;
                match ev["type"].as_str() {
                    Some("content_block_start") if ev["content_block"]["type"] == "tool_use" => {
                        saw_tool_start = ev["content_block"]["name"] == "get_weather";
                    }
                    Some("content_block_delta") if ev["delta"]["type"] == "input_json_delta" => {
                        partial.push_str(ev["delta"]["partial_json"].as_str().unwrap_or_default());
                    }
                    Some("message_delta") => stop_reason = ev["delta"]["stop_reason"].as_str().unwrap_or_default().to_owned(),
                    _ => {}
                }
            }
            assert!(saw_tool_start, "{model}: {}", s.text());
            assert_eq!(stop_reason, "tool_use", "{model}");
            let input: Value = serde_json::from_str(&partial)?;
            assert!(input.get("city").is_some() && input.get("days").is_some(), "{model}: {input}");
        }
        c.shutdown().await;
        Ok(())
    })
    .await
}

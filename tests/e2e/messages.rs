//! The Anthropic Messages API, and translation in both directions.

use serde_json::json;
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
            "claude-native",
            "priority",
            &[("mock-c", "claude-3-5-haiku")],
            &[],
        )
        .route(
            "claude-via-openai",
            "priority",
            &[("mock-a", "gpt-4o-mini")],
            &[],
        )
        .route(
            "gpt-via-anthropic",
            "priority",
            &[("mock-c", "claude-3-5-haiku")],
            &[],
        )
}

/// `/v1/messages` to an Anthropic upstream, non-stream and stream, with the real event order.
#[tokio::test]
async fn messages_to_anthropic_upstream_stream_and_not() -> anyhow::Result<()> {
    bounded(async {
        let c = fleet().start().await?;
        let body = json!({"model": "claude-native", "max_tokens": 20, "system": "Be brief.", "messages": [{"role": "user", "content": "hi"}]});
        let r = c.messages(0, &body).await?;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["type"], "message");
        assert_eq!(v["content"][0]["type"], "text");
        assert!(v["usage"]["output_tokens"].as_u64().unwrap_or(0) > 0);
        let mut sbody = body.clone();
        sbody["stream"] = json!(true);
        let s = c.messages(0, &sbody).await?;
        let events = s.sse_events();
        assert_eq!(events.first().map(String::as_str), Some("message_start"));
        assert_eq!(events.last().map(String::as_str), Some("message_stop"));
        for e in ["content_block_start", "content_block_delta", "content_block_stop", "message_delta"] {
            assert!(events.iter().any(|x| x == e), "{e} missing from {events:?}");
        }
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// An Anthropic client served by an OpenAI-format upstream gets Anthropic's shapes back,
/// streamed event by event, with usage and a stop reason.
#[tokio::test]
async fn messages_translated_to_openai_upstream_and_back() -> anyhow::Result<()> {
    bounded(async {
        let c = fleet().start().await?;
        let body = json!({"model": "claude-via-openai", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
        let r = c.messages(0, &body).await?;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["type"], "message");
        assert_eq!(v["role"], "assistant");
        assert_eq!(v["stop_reason"], "max_tokens");
        assert_eq!(v["usage"]["output_tokens"], 5);
        assert_eq!(r.header("x-switchyard-provider").as_deref(), Some("mock-a"));
        let mut sbody = body.clone();
        sbody["stream"] = json!(true);
        let s = c.messages(0, &sbody).await?;
        let events = s.sse_events();
        assert_eq!(events.first().map(String::as_str), Some("message_start"), "{}", s.text());
        assert_eq!(events.last().map(String::as_str), Some("message_stop"));
        let deltas = events.iter().filter(|e| *e == "content_block_delta").count();
        assert_eq!(deltas, 5, "{events:?}");
        let ledger = c.ledger("mock-a").await?;
        assert_eq!(ledger["entries"].as_array().map(Vec::len), Some(2));
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// An OpenAI client served by an Anthropic upstream gets `chat.completion` shapes back, streamed
/// chunk by chunk, ending with `[DONE]`.
#[tokio::test]
async fn chat_translated_to_anthropic_upstream_and_back() -> anyhow::Result<()> {
    bounded(async {
        let c = fleet().start().await?;
        let body = json!({"model": "gpt-via-anthropic", "max_tokens": 4, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]});
        let r = c.chat(0, &body).await?;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["completion_tokens"], 4);
        let mut sbody = body.clone();
        sbody["stream"] = json!(true);
        sbody["stream_options"] = json!({"include_usage": true});
        let s = c.chat(0, &sbody).await?;
        let data = s.sse_data();
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
        let usage: serde_json::Value = serde_json::from_str(&data[data.len() - 2])?;
        assert_eq!(usage["usage"]["completion_tokens"], 4, "{data:?}");
        c.shutdown().await;
        Ok(())
    })
    .await
}

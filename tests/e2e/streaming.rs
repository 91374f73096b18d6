//! Streams: pass-through, usage, and honest ends when the upstream cuts a stream.

use serde_json::json;
use switchyard_testkit::{MockSpec, TestCluster};

use crate::bounded;

fn two_openai() -> switchyard_testkit::cluster::Builder {
    TestCluster::builder()
        .mock(MockSpec::openai(
            "mock-a",
            &["gpt-4o-mini"],
            150_000,
            600_000,
        ))
        .mock(MockSpec::openai(
            "mock-b",
            &["gpt-4o-mini"],
            120_000,
            480_000,
        ))
        .route(
            "gpt-4o-mini",
            "priority",
            &[("mock-a", "gpt-4o-mini"), ("mock-b", "gpt-4o-mini")],
            &[],
        )
}

/// An OpenAI stream passes through chunk by chunk and ends with `[DONE]`; the usage chunk the
/// gateway asks for internally reaches the client only if the client asked for it.
#[tokio::test]
async fn stream_ends_with_done_and_usage_only_when_asked() -> anyhow::Result<()> {
    bounded(async {
        let c = two_openai().start().await?;
        let plain = c.chat(0, &json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await?;
        assert_eq!(plain.status, 200);
        assert_eq!(plain.header("content-type").as_deref(), Some("text/event-stream"));
        let data = plain.sse_data();
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
        assert!(!data.iter().any(|d| d.contains("\"choices\":[]")), "usage chunk leaked: {data:?}");
        let with_usage = c.chat(0, &json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]})).await?;
        let data = with_usage.sse_data();
        let usage_chunk: serde_json::Value = serde_json::from_str(&data[data.len() - 2])?;
        assert!(usage_chunk["usage"]["completion_tokens"].as_u64().unwrap_or(0) > 0, "{data:?}");
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// 1. The first provider cuts the stream after 3 tokens.
/// 2. The client gets those tokens and then an explicit error event, never `[DONE]`.
/// 3. Nothing is retried once bytes reached the client: the second provider sees no request.
/// 4. The partial stream is billed by the mock (prompt + 3 tokens).
#[tokio::test]
async fn stream_cut_ends_with_error_event_not_done_and_is_not_retried() -> anyhow::Result<()> {
    bounded(async {
        let c = two_openai().start().await?;
        c.fault("mock-a", &json!({"cut_after_tokens": 3})).await?;
        let r = c.chat(0, &json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "tell me a story"}]})).await?;
        assert_eq!(r.status, 200);
        let data = r.sse_data();
        assert!(!data.iter().any(|d| d == "[DONE]"), "a cut stream must not end cleanly: {data:?}");
        let last: serde_json::Value = serde_json::from_str(data.last().expect("frames"))?;
        assert!(last["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{last}");
        let tokens = data.iter().filter(|d| d.contains("\"content\":\"") && !d.contains("\"content\":\"\"")).count();
        assert_eq!(tokens, 3, "{data:?}");
        assert_eq!(c.mock_requests("mock-b").await?, 0);
        let ledger = c.ledger("mock-a").await?;
        assert_eq!(ledger["entries"][0]["completion_tokens"], 3, "{ledger}");
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// The same cut seen by an Anthropic client of an Anthropic upstream: an `error` event, never
/// `message_stop`.
#[tokio::test]
async fn anthropic_stream_cut_ends_with_error_event_not_message_stop() -> anyhow::Result<()> {
    bounded(async {
        let c = TestCluster::builder()
            .mock(MockSpec::anthropic("mock-c", &["claude-3-5-haiku"], 800_000, 4_000_000))
            .route("claude-3-5-haiku", "priority", &[("mock-c", "claude-3-5-haiku")], &[])
            .start()
            .await?;
        c.fault("mock-c", &json!({"cut_after_tokens": 2})).await?;
        let r = c.messages(0, &json!({"model": "claude-3-5-haiku", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await?;
        assert_eq!(r.status, 200);
        let events = r.sse_events();
        assert_eq!(events.first().map(String::as_str), Some("message_start"));
        assert_eq!(events.last().map(String::as_str), Some("error"), "{events:?}");
        assert!(!events.iter().any(|e| e == "message_stop"));
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// A stream that breaks before its first event is still retryable: the client never saw a
/// byte, so the next provider answers.
#[tokio::test]
async fn stream_failing_before_first_event_is_retried_elsewhere() -> anyhow::Result<()> {
    bounded(async {
        let c = two_openai().start().await?;
        c.fault("mock-a", &json!({"cut_after_tokens": 0})).await?;
        let r = c.chat(0, &json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await?;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-switchyard-provider").as_deref(), Some("mock-b"));
        assert_eq!(r.header("x-switchyard-attempts").as_deref(), Some("2"));
        assert_eq!(r.sse_data().last().map(String::as_str), Some("[DONE]"));
        c.shutdown().await;
        Ok(())
    })
    .await
}

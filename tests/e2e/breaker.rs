//! Provider failure: traffic moves to another provider, the breaker opens, admits only probes
//! while open, and closes once the provider recovers. Supervision restarts a crashed actor.

use std::time::Duration;

use serde_json::json;
use switchyard_testkit::{MockSpec, TestCluster, eventually};

use crate::bounded;

fn fleet() -> switchyard_testkit::cluster::Builder {
    TestCluster::builder()
        .mock(
            MockSpec::openai("mock-a", &["gpt-4o-mini"], 150_000, 600_000)
                .extra("failure_threshold = 3\nopen_ms = 300"),
        )
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

fn body() -> serde_json::Value {
    json!({"model": "gpt-4o-mini", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
}

/// 1. mock-a answers every request with 500.
/// 2. Every client request still succeeds, through mock-b.
/// 3. After the threshold (3) mock-a's breaker opens: over the next stretch of traffic it sees
///    only probes (an active probe and at most one half-open request per open period).
/// 4. The fault is cleared: the breaker closes and mock-a takes traffic again.
#[tokio::test]
async fn breaker_opens_after_threshold_admits_only_probes_and_closes_after_recovery()
-> anyhow::Result<()> {
    bounded(async {
        let c = fleet().start().await?;
        c.fault("mock-a", &json!({"status": 500, "rate": 1.0}))
            .await?;
        for _ in 0..10 {
            let r = c.chat(0, &body()).await?;
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.header("x-switchyard-provider").as_deref(), Some("mock-b"));
        }
        let after_open = c.mock_requests("mock-a").await?;
        assert_eq!(
            after_open, 3,
            "mock-a should see exactly the threshold before opening"
        );
        let provider = c.nodes[0]
            .app
            .routing()
            .providers
            .get_str("mock-a")
            .expect("mock-a")
            .clone();
        assert_eq!(provider.gate.phase(), switchyard_core::BreakerPhase::Open);

        // About 1.2 s of traffic while the fault persists: open periods of 300, 600, 1200 ms
        // allow at most three probe rounds, each an active probe plus one half-open request.
        let stretch = std::time::Instant::now();
        let mut served = 0;
        while stretch.elapsed() < Duration::from_millis(1200) {
            let r = c.chat(0, &body()).await?;
            assert_eq!(r.status, 200);
            served += 1;
        }
        let probes = c.mock_requests("mock-a").await? - after_open;
        assert!(served > 20, "too little traffic to judge: {served}");
        assert!(
            probes <= 6,
            "mock-a received {probes} requests while its breaker was open"
        );

        c.clear_faults("mock-a").await?;
        eventually(
            Duration::from_secs(10),
            "breaker closes and mock-a serves again",
            || async {
                let r = c.chat(0, &body()).await.ok()?;
                (r.header("x-switchyard-provider").as_deref() == Some("mock-a")).then_some(())
            },
        )
        .await?;
        assert_eq!(provider.gate.phase(), switchyard_core::BreakerPhase::Closed);
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// A provider that refuses every connection: requests still succeed through the other one;
/// after the threshold (3) its breaker opens and requests stop trying it first (one attempt
/// each); once it accepts connections again the breaker closes and it serves again.
#[tokio::test]
async fn refused_connections_fail_over_open_the_breaker_and_recover() -> anyhow::Result<()> {
    bounded(async {
        let c = fleet().start().await?;
        c.fault("mock-a", &json!({"refuse": true})).await?;
        let mut attempts = Vec::new();
        for _ in 0..8 {
            let r = c.chat(0, &body()).await?;
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.header("x-switchyard-provider").as_deref(), Some("mock-b"));
            attempts.push(r.header("x-switchyard-attempts").unwrap_or_default());
        }
        assert_eq!(&attempts[..3], ["2", "2", "2"], "{attempts:?}");
        assert!(attempts[3..].iter().all(|a| a == "1"), "{attempts:?}");
        let provider = c.nodes[0]
            .app
            .routing()
            .providers
            .get_str("mock-a")
            .expect("mock-a")
            .clone();
        assert_eq!(provider.gate.phase(), switchyard_core::BreakerPhase::Open);
        c.clear_faults("mock-a").await?;
        eventually(
            Duration::from_secs(10),
            "breaker closes and mock-a serves again",
            || async {
                let r = c.chat(0, &body()).await.ok()?;
                (r.header("x-switchyard-provider").as_deref() == Some("mock-a")).then_some(())
            },
        )
        .await?;
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// Every target failing: 502 with the OpenAI error body, attempts bounded by the retry budget
/// (1 + 2), and the node keeps serving once a provider recovers.
#[tokio::test]
async fn all_targets_failing_gives_502_within_the_retry_budget() -> anyhow::Result<()> {
    bounded(async {
        let c = fleet().start().await?;
        c.fault("mock-a", &json!({"status": 503})).await?;
        c.fault("mock-b", &json!({"status": 502})).await?;
        let r = c.chat(0, &body()).await?;
        assert_eq!(r.status, 502, "{}", r.text());
        assert_eq!(r.json()["error"]["type"], "api_error");
        assert_eq!(r.header("x-should-retry").as_deref(), Some("true"));
        let attempts = c.mock_requests("mock-a").await? + c.mock_requests("mock-b").await?;
        assert!(
            attempts <= 3,
            "{attempts} upstream attempts for one request"
        );
        c.clear_faults("mock-b").await?;
        assert_eq!(c.chat(0, &body()).await?.status, 200);
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// A provider actor that dies is restarted by its supervisor and the node keeps serving.
#[tokio::test]
async fn crashed_provider_actor_is_restarted_and_node_keeps_serving() -> anyhow::Result<()> {
    bounded(async {
        let c = fleet().start().await?;
        let provider = c.nodes[0]
            .app
            .routing()
            .providers
            .get_str("mock-a")
            .expect("mock-a")
            .clone();
        let first = provider.actor().expect("actor running");
        let first_id = first.get_id();
        first.kill();
        let restarted = eventually(Duration::from_secs(5), "a new mock-a actor", || async {
            provider.actor().filter(|a| a.get_id() != first_id)
        })
        .await?;
        assert_eq!(c.chat(0, &body()).await?.status, 200);
        let snap = eventually(
            Duration::from_secs(5),
            "the new actor counts the outcome",
            || async { provider.fresh_snapshot().await.filter(|s| s.counts.ok >= 1) },
        )
        .await?;
        assert_eq!(snap.restarts, 1);
        assert!(restarted.get_id() != first_id);
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// Upstream deadlines: a provider slower than its first-byte timeout is abandoned after that
/// timeout and the request is answered by the next one; a route with nothing else answers 504
/// `timeout` (retryable) as soon as the deadline passes, not when the slow upstream answers; a
/// stream that outlives the total timeout ends with an explicit error event, never `[DONE]`.
#[tokio::test]
async fn upstream_timeouts_fail_over_then_answer_504_and_cut_streams_honestly() -> anyhow::Result<()>
{
    bounded(async {
        let c = TestCluster::builder()
            .mock(
                MockSpec::openai("slow", &["m"], 150_000, 600_000)
                    .extra("first_byte_timeout_ms = 300\ntotal_timeout_ms = 1500"),
            )
            .mock(MockSpec::openai("fast", &["m"], 150_000, 600_000))
            .route("m", "priority", &[("slow", "m"), ("fast", "m")], &[])
            .route("slow-only", "priority", &[("slow", "m")], &[])
            .start()
            .await?;
        // 1. First byte 2 s away: abandoned at 300 ms, answered by `fast`.
        c.fault("slow", &json!({"latency_ms": 2000})).await?;
        let sent = std::time::Instant::now();
        let r = c.chat(0, &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})).await?;
        let took = sent.elapsed();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-switchyard-provider").as_deref(), Some("fast"));
        assert_eq!(r.header("x-switchyard-attempts").as_deref(), Some("2"));
        assert!(took < Duration::from_millis(1500), "failover took {took:?}");
        // 2. Nothing else to try: 504 once the deadline passes.
        let sent = std::time::Instant::now();
        let r = c
            .chat(0, &json!({"model": "slow-only", "messages": [{"role": "user", "content": "hi"}]}))
            .await?;
        let took = sent.elapsed();
        assert_eq!(r.status, 504, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], "timeout", "{}", r.text());
        assert_eq!(r.header("x-should-retry").as_deref(), Some("true"));
        assert!(took < Duration::from_millis(1900), "504 after {took:?}");
        // 3. A stream that starts at once but would take 40 × 100 ms: cut at 1.5 s.
        c.clear_faults("slow").await?;
        switchyard_testkit::post_json(
            &format!("{}/_mock/config", c.mock_url("slow")),
            &[],
            &json!({"ttft_ms": 0, "per_token_ms": 100}),
        )
        .await?;
        let sent = std::time::Instant::now();
        let r = c
            .chat(0, &json!({"model": "slow-only", "stream": true, "max_tokens": 40, "messages": [{"role": "user", "content": "tell me a long story please"}]}))
            .await?;
        let took = sent.elapsed();
        assert_eq!(r.status, 200);
        let data = r.sse_data();
        assert!(!data.iter().any(|d| d == "[DONE]"), "{data:?}");
        let last: serde_json::Value = serde_json::from_str(data.last().expect("frames"))?;
        assert!(last["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{last}");
        assert!(took < Duration::from_millis(3000), "stream cut after {took:?}");
        c.shutdown().await;
        Ok(())
    })
    .await
}

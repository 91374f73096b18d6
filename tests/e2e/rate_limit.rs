//! Upstream rate limits: a 429 with `Retry-After` pauses that provider and traffic shifts; a
//! provider's configured RPM is honoured locally.

use std::time::Duration;

use serde_json::json;
use switchyard_testkit::{MockSpec, TestCluster, eventually};

use crate::bounded;

fn body() -> serde_json::Value {
    json!({"model": "gpt-4o-mini", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
}

/// 1. mock-a answers 429 with `Retry-After: 2`.
/// 2. The first request is retried on mock-b (2 attempts) and succeeds.
/// 3. mock-a recovers at once, but stays paused: the next requests go straight to mock-b and
///    mock-a sees no request.
/// 4. Once the pause is over, mock-a takes traffic again.
#[tokio::test]
async fn upstream_429_pauses_provider_for_retry_after_and_traffic_shifts() -> anyhow::Result<()> {
    bounded(async {
        let c = TestCluster::builder()
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
            .start()
            .await?;
        c.fault("mock-a", &json!({"status": 429, "retry_after_s": 2}))
            .await?;
        let first = c.chat(0, &body()).await?;
        let paused_at = std::time::Instant::now();
        assert_eq!(first.status, 200);
        assert_eq!(
            first.header("x-switchyard-provider").as_deref(),
            Some("mock-b")
        );
        assert_eq!(first.header("x-switchyard-attempts").as_deref(), Some("2"));
        c.clear_faults("mock-a").await?;
        let seen_by_a = c.mock_requests("mock-a").await?;
        for _ in 0..5 {
            let r = c.chat(0, &body()).await?;
            assert_eq!(r.header("x-switchyard-provider").as_deref(), Some("mock-b"));
            assert_eq!(r.header("x-switchyard-attempts").as_deref(), Some("1"));
        }
        assert!(
            paused_at.elapsed() < Duration::from_millis(1800),
            "the checks above took too long to prove the pause"
        );
        assert_eq!(
            c.mock_requests("mock-a").await?,
            seen_by_a,
            "a paused provider received traffic"
        );
        eventually(
            Duration::from_secs(5),
            "mock-a serves again after the pause",
            || async {
                let r = c.chat(0, &body()).await.ok()?;
                (r.header("x-switchyard-provider").as_deref() == Some("mock-a")).then_some(())
            },
        )
        .await?;
        assert!(
            paused_at.elapsed() >= Duration::from_millis(1900),
            "pause ended early: {:?}",
            paused_at.elapsed()
        );
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// mock-a limited to 5 requests per minute, then mock-b with no limit, for gpt-4o-mini.
fn five_rpm_then_spare() -> switchyard_testkit::cluster::Builder {
    TestCluster::builder()
        .mock(MockSpec::openai("mock-a", &["gpt-4o-mini"], 150_000, 600_000).extra("rpm = 5"))
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

/// A provider limited to 5 requests per minute takes 5; the rest go to the next target.
#[tokio::test]
async fn provider_rpm_limit_moves_excess_to_the_next_target() -> anyhow::Result<()> {
    bounded(async {
        let c = five_rpm_then_spare().start().await?;
        for _ in 0..12 {
            assert_eq!(c.chat(0, &body()).await?.status, 200);
        }
        // The limit is a sliding minute: nothing comes back within the loop.
        let a = c.mock_requests("mock-a").await?;
        assert_eq!(a, 5, "mock-a served {a} of 12 with rpm = 5");
        assert_eq!(c.mock_requests("mock-b").await?, 12 - a);
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// A route change rebuilds the node's providers, but one whose limits did not change keeps its
/// rate window: the 5 requests it took this minute still count after the rebuild, so an
/// unrelated admin change never hands out a fresh minute of quota.
#[tokio::test]
async fn provider_rate_window_survives_an_unrelated_route_change() -> anyhow::Result<()> {
    bounded(async {
        let c = five_rpm_then_spare().start().await?;
        for _ in 0..5 {
            assert_eq!(c.chat(0, &body()).await?.status, 200);
        }
        assert_eq!(c.mock_requests("mock-a").await?, 5);
        let before = c.nodes[0].app.routing().version;
        c.admin(0)
            .await?
            .put_route(switchyard_proto::pb::RouteInfo {
                model: "other".into(),
                targets: vec![switchyard_proto::pb::RouteTarget {
                    provider: "mock-b".into(),
                    model: "gpt-4o-mini".into(),
                    weight: 1,
                }],
                ..Default::default()
            })
            .await?;
        switchyard_testkit::eventually(Duration::from_secs(3), "routing rebuilt", || async {
            (c.nodes[0].app.routing().version != before).then_some(())
        })
        .await?;
        for _ in 0..5 {
            let r = c.chat(0, &body()).await?;
            assert_eq!(r.status, 200);
            assert_eq!(r.header("x-switchyard-provider").as_deref(), Some("mock-b"));
        }
        assert_eq!(c.mock_requests("mock-a").await?, 5, "a rebuild freed quota");
        c.shutdown().await;
        Ok(())
    })
    .await
}

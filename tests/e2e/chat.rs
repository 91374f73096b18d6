//! Chat completions and embeddings through a node, non-streaming.

use serde_json::json;
use switchyard_testkit::cluster::TEST_KEY;
use switchyard_testkit::{MockSpec, TestCluster, get, post_json};

use crate::bounded;

fn one_provider() -> switchyard_testkit::cluster::Builder {
    TestCluster::builder()
        .mock(MockSpec::openai(
            "mock-a",
            &["gpt-4o-mini", "text-embedding-3-small"],
            150_000,
            600_000,
        ))
        .route("gpt-4o-mini", "priority", &[("mock-a", "gpt-4o-mini")], &[])
        .route(
            "text-embedding-3-small",
            "priority",
            &[("mock-a", "text-embedding-3-small")],
            &[],
        )
}

/// A plain chat request comes back with the upstream's answer and every `x-switchyard-*` header.
#[tokio::test]
async fn chat_answers_with_upstream_body_and_switchyard_headers() -> anyhow::Result<()> {
    bounded(async {
        let c = one_provider().start().await?;
        let r = c.chat(0, &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})).await?;
        assert_eq!(r.status, 200, "{}", r.text());
        let body = r.json();
        assert_eq!(body["object"], "chat.completion");
        assert!(!body["choices"][0]["message"]["content"].as_str().unwrap_or_default().is_empty());
        assert_eq!(r.header("x-switchyard-node").as_deref(), Some("1"));
        assert_eq!(r.header("x-switchyard-provider").as_deref(), Some("mock-a"));
        assert_eq!(r.header("x-switchyard-model").as_deref(), Some("gpt-4o-mini"));
        assert_eq!(r.header("x-switchyard-attempts").as_deref(), Some("1"));
        assert!(r.header("x-switchyard-cost-micros").is_some());
        assert!(r.header("x-request-id").is_some_and(|id| id.starts_with("sy-1-")));
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// The client's `x-request-id` is echoed and forwarded upstream, so the mock's ledger and the
/// gateway's records can be matched.
#[tokio::test]
async fn client_request_id_reaches_the_upstream_ledger() -> anyhow::Result<()> {
    bounded(async {
        let c = one_provider().start().await?;
        let url = format!("{}/v1/chat/completions", c.url(0));
        let auth = format!("Bearer {TEST_KEY}");
        let r = post_json(
            &url,
            &[
                ("authorization", &auth),
                ("x-request-id", "req-from-client-42"),
            ],
            &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await?;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("x-request-id").as_deref(),
            Some("req-from-client-42")
        );
        let ledger = c.ledger("mock-a").await?;
        assert_eq!(
            ledger["entries"][0]["request_id"], "req-from-client-42",
            "{ledger}"
        );
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// Embeddings pass through; `/v1/models` lists the routes with the providers that can serve them.
#[tokio::test]
async fn embeddings_and_models_list() -> anyhow::Result<()> {
    bounded(async {
        let c = one_provider().start().await?;
        let auth = format!("Bearer {TEST_KEY}");
        let r = post_json(
            &format!("{}/v1/embeddings", c.url(0)),
            &[("authorization", &auth)],
            &json!({"model": "text-embedding-3-small", "input": ["a", "b"]}),
        )
        .await?;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["data"].as_array().map(Vec::len), Some(2));
        let m = get(
            &format!("{}/v1/models", c.url(0)),
            &[("authorization", &auth)],
        )
        .await?;
        assert_eq!(m.status, 200);
        let ids: Vec<String> = m.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, vec!["gpt-4o-mini", "text-embedding-3-small"]);
        assert_eq!(m.json()["data"][0]["providers"][0], "mock-a");
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// Small requests in a sequential loop must not wait for delayed ACKs: every accepted and
/// upstream socket has TCP_NODELAY. Without it each request takes about 44 ms on loopback; the
/// bound below is ten times looser than a healthy debug build and four times tighter than that.
#[tokio::test]
async fn sequential_small_requests_do_not_wait_for_delayed_acks() -> anyhow::Result<()> {
    bounded(async {
        let c = one_provider().start().await?;
        let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1});
        c.chat(0, &body).await?;
        let started = std::time::Instant::now();
        const N: u32 = 20;
        for _ in 0..N {
            assert_eq!(c.chat(0, &body).await?.status, 200);
        }
        let per_request = started.elapsed() / N;
        assert!(per_request < std::time::Duration::from_millis(12), "{per_request:?} per request: a socket is missing TCP_NODELAY");
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// `/healthz`, `/readyz` and `/metrics` answer without a key.
#[tokio::test]
async fn health_readiness_and_metrics() -> anyhow::Result<()> {
    bounded(async {
        let c = one_provider().start().await?;
        c.chat(0, &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})).await?;
        assert_eq!(get(&format!("{}/healthz", c.url(0)), &[]).await?.status, 200);
        assert_eq!(get(&format!("{}/readyz", c.url(0)), &[]).await?.status, 200);
        let m = get(&format!("{}/metrics", c.url(0)), &[]).await?.text();
        assert!(m.contains("switchyard_requests_total{endpoint=\"chat\",result=\"ok\"} 1"), "{m}");
        assert!(m.contains("switchyard_upstream_requests_total{provider=\"mock-a\",model=\"gpt-4o-mini\",result=\"ok\"} 1"), "{m}");
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// What reaches an OpenAI-format upstream: the client's body with only `model` changed (unknown
/// and newer OpenAI fields pass through untouched) and the request id; never the client's
/// credentials, cookies or proxy headers, nor the routing hints. (That a provider's own key is
/// sent, sealed and all, is `providers::provider_and_route_added_at_runtime_…`.)
#[tokio::test]
async fn unknown_fields_pass_through_and_client_credentials_do_not() -> anyhow::Result<()> {
    bounded(async {
        let c = one_provider().start().await?;
        let body = json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hello"}],
            "seed": 7,
            "user": "end-user-42",
            "logit_bias": {"50256": -100},
            "a_field_from_next_year": {"nested": [1, 2, 3]},
            "switchyard": {"tags": "team=search"},
        });
        let auth = format!("Bearer {TEST_KEY}");
        let r = post_json(
            &format!("{}/v1/chat/completions", c.url(0)),
            &[
                ("authorization", auth.as_str()),
                ("x-api-key", "client-side-secret"),
                ("cookie", "session=abc"),
                ("proxy-authorization", "Basic Zm9vOmJhcg=="),
                ("x-switchyard-strategy", "cost"),
                ("x-request-id", "client-chosen-id-1"),
            ],
            &body,
        )
        .await?;
        assert_eq!(r.status, 200, "{}", r.text());
        let seen =
            switchyard_testkit::get(&format!("{}/_mock/last_request", c.mock_url("mock-a")), &[])
                .await?
                .json();
        assert_eq!(seen["path"], "/v1/chat/completions");
        let sent = &seen["body"];
        for field in [
            "seed",
            "user",
            "logit_bias",
            "a_field_from_next_year",
            "messages",
        ] {
            assert_eq!(sent[field], body[field], "{field} in {sent}");
        }
        assert_eq!(sent["model"], "gpt-4o-mini");
        assert!(
            sent.get("switchyard").is_none(),
            "routing hints leaked: {sent}"
        );
        let headers = seen["headers"].as_object().expect("headers");
        assert_eq!(headers["x-request-id"], "client-chosen-id-1");
        // This provider has no credential configured: no Authorization at all goes upstream (the
        // client's virtual key stays at the edge).
        for h in [
            "authorization",
            "x-api-key",
            "cookie",
            "proxy-authorization",
            "x-switchyard-strategy",
        ] {
            assert!(
                !headers.contains_key(h),
                "{h} forwarded upstream: {headers:?}"
            );
        }
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// An Azure OpenAI provider is reached on its deployment URL form with the API version, for
/// chat (streamed and not) and embeddings, and answers in the OpenAI format.
#[tokio::test]
async fn azure_provider_is_called_on_its_deployment_url() -> anyhow::Result<()> {
    bounded(async {
        let c = TestCluster::builder()
            .mock(MockSpec::azure(
                "azure-east",
                &["gpt-4o-mini", "text-embedding-3-small"],
                165_000,
                660_000,
            ))
            .route("gpt-4o-mini", "priority", &[("azure-east", "gpt-4o-mini")], &[])
            .route(
                "text-embedding-3-small",
                "priority",
                &[("azure-east", "text-embedding-3-small")],
                &[],
            )
            .start()
            .await?;
        let last = || async {
            anyhow::Ok(
                get(&format!("{}/_mock/last_request", c.mock_url("azure-east")), &[])
                    .await?
                    .json(),
            )
        };
        let r = c.chat(0, &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})).await?;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["object"], "chat.completion");
        assert_eq!(
            last().await?["path"],
            "/openai/deployments/gpt-4o-mini/chat/completions"
        );
        let r = c.chat(0, &json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "hello"}]})).await?;
        assert_eq!(r.status, 200);
        assert_eq!(r.sse_data().last().map(String::as_str), Some("[DONE]"));
        let auth = format!("Bearer {TEST_KEY}");
        let r = post_json(
            &format!("{}/v1/embeddings", c.url(0)),
            &[("authorization", auth.as_str())],
            &json!({"model": "text-embedding-3-small", "input": "hello"}),
        )
        .await?;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            last().await?["path"],
            "/openai/deployments/text-embedding-3-small/embeddings"
        );
        assert_eq!(c.mock_requests("azure-east").await?, 3);
        c.shutdown().await;
        Ok(())
    })
    .await
}

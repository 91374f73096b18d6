//! Bad input gets the right status and an error body in the endpoint's own format, with
//! `x-should-retry: false`, and the node keeps serving.

use serde_json::json;
use switchyard_testkit::cluster::TEST_KEY;
use switchyard_testkit::{MockSpec, TestCluster, post_json, post_raw};

use crate::bounded;

/// Every class of bad request, one after another on one node, then a good one.
#[tokio::test]
async fn bad_requests_get_clear_errors_and_the_node_keeps_serving() -> anyhow::Result<()> {
    bounded(async {
        let c = TestCluster::builder()
            .node_toml("[limits]\nmax_body_bytes = 4096")
            .mock(MockSpec::openai("mock-a", &["gpt-4o-mini", "gpt-4o"], 150_000, 600_000))
            .route("gpt-4o-mini", "priority", &[("mock-a", "gpt-4o-mini")], &[])
            .route("gpt-4o", "priority", &[("mock-a", "gpt-4o")], &[])
            .key("limited", "sk-sy-limited-0123456789abcdef", &["gpt-4o-mini"])
            .start()
            .await?;
        let url = format!("{}/v1/chat/completions", c.url(0));
        let auth = format!("Bearer {TEST_KEY}");
        let h = [("authorization", auth.as_str()), ("content-type", "application/json")];
        let msgs = json!([{"role": "user", "content": "hi"}]);

        // (name, status, openai type, code, request)
        let cases: Vec<(&str, u16, &str, Option<&str>, reqwestless::Req)> = vec![
            ("invalid JSON", 400, "invalid_request_error", None, reqwestless::raw("{\"model\": ")),
            ("not an object", 400, "invalid_request_error", None, reqwestless::raw("[1,2]")),
            ("messages of the wrong type", 400, "invalid_request_error", None, reqwestless::json(json!({"model": "gpt-4o-mini", "messages": "hi"}))),
            ("no messages", 400, "invalid_request_error", None, reqwestless::json(json!({"model": "gpt-4o-mini", "messages": []}))),
            ("model of the wrong type", 400, "invalid_request_error", None, reqwestless::json(json!({"model": 7, "messages": msgs}))),
            ("unknown model", 404, "invalid_request_error", Some("model_not_found"), reqwestless::json(json!({"model": "gpt-9", "messages": msgs}))),
            ("api_base in the body", 400, "invalid_request_error", None, reqwestless::json(json!({"model": "gpt-4o-mini", "messages": msgs, "api_base": "http://evil.example"}))),
            ("api_key in the body", 400, "invalid_request_error", None, reqwestless::json(json!({"model": "gpt-4o-mini", "messages": msgs, "api_key": "sk-upstream"}))),
            ("oversized body", 413, "invalid_request_error", Some("request_too_large"), reqwestless::json(json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x".repeat(5000)}]}))),
            ("max_tokens above the cap", 400, "invalid_request_error", None, reqwestless::json(json!({"model": "gpt-4o-mini", "messages": msgs, "max_tokens": 10_000_000}))),
        ];
        for (name, status, ty, code, req) in cases {
            let r = match req {
                reqwestless::Req::Raw(b) => post_raw(&url, &h, b).await?,
                reqwestless::Req::Json(v) => post_json(&url, &h[..1], &v).await?,
            };
            assert_eq!(r.status, status, "{name}: {}", r.text());
            let v = r.json();
            assert_eq!(v["error"]["type"], ty, "{name}: {v}");
            assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}: {v}");
            if let Some(code) = code {
                assert_eq!(v["error"]["code"], code, "{name}: {v}");
            }
            assert_eq!(r.header("x-should-retry").as_deref(), Some("false"), "{name}");
            assert!(r.header("x-request-id").is_some(), "{name}");
        }

        let good = json!({"model": "gpt-4o-mini", "messages": msgs});
        let missing = post_json(&url, &[], &good).await?;
        assert_eq!(missing.status, 401);
        assert_eq!(missing.json()["error"]["code"], "invalid_api_key");
        let wrong = post_json(&url, &[("authorization", "Bearer sk-sy-not-a-key-at-all")], &good).await?;
        assert_eq!(wrong.status, 401);
        assert_eq!(wrong.header("x-should-retry").as_deref(), Some("false"));
        let limited = post_json(&url, &[("authorization", "Bearer sk-sy-limited-0123456789abcdef")], &json!({"model": "gpt-4o", "messages": msgs})).await?;
        assert_eq!(limited.status, 403, "{}", limited.text());
        assert_eq!(limited.json()["error"]["type"], "permission_error");

        // The same refusals on /v1/messages come in Anthropic's error format.
        let m = post_json(&format!("{}/v1/messages", c.url(0)), &[("x-api-key", TEST_KEY)], &json!({"model": "gpt-4o-mini", "messages": msgs})).await?;
        assert_eq!(m.status, 400, "{}", m.text());
        assert_eq!(m.json()["type"], "error");
        assert_eq!(m.json()["error"]["type"], "invalid_request_error");
        let m = post_json(&format!("{}/v1/messages", c.url(0)), &[("x-api-key", "sk-sy-wrong-key-000000")], &json!({"model": "gpt-4o-mini", "max_tokens": 5, "messages": msgs})).await?;
        assert_eq!(m.status, 401);
        assert_eq!(m.json()["error"]["type"], "authentication_error");

        // Still serving, and nothing bad reached the upstream.
        assert_eq!(c.mock_requests("mock-a").await?, 0);
        let ok = post_json(&url, &h[..1], &good).await?;
        assert_eq!(ok.status, 200, "{}", ok.text());
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// Two request shapes for the table above.
mod reqwestless {
    pub enum Req {
        Raw(&'static str),
        Json(serde_json::Value),
    }
    pub fn raw(s: &'static str) -> Req {
        Req::Raw(s)
    }
    pub fn json(v: serde_json::Value) -> Req {
        Req::Json(v)
    }
}

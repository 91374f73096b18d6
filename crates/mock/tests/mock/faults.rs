//! Faults, ledger and timing: status with rate and retry-after, cut streams,
//! latency, drop, refuse, client disconnects, runtime timing and shutdown.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use switchyard_mock::billed_micros;
use tokio::time::timeout;

use super::{LIMIT, Mock, PRICE, chat, parse_events};

/// A status fault at rate 0.5 fails every other request with the provider's
/// error shape and `retry-after`; failed requests are counted, not billed;
/// clearing the faults restores service.
#[tokio::test]
async fn status_fault_follows_rate_and_retry_after_until_cleared() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        let set = mock
            .control(Method::POST, "/_mock/faults", Some(json!({"status": 429, "rate": 0.5, "retry_after_s": 2})))
            .await;
        assert_eq!(set["rate"], 0.5);
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let answer = mock.post("/v1/chat/completions", &[], chat(Some(2), false)).await;
            if answer.status == StatusCode::TOO_MANY_REQUESTS {
                assert_eq!(answer.headers["retry-after"], "2");
                assert_eq!(answer.json()["error"]["type"], "rate_limit_error");
            }
            statuses.push(answer.status.as_u16());
        }
        assert_eq!(statuses, [429, 200, 429, 200]);
        assert_eq!(mock.ledger().await["entries"].as_array().unwrap().len(), 2);
        assert_eq!(mock.control(Method::GET, "/_mock/stats", None).await["requests"], 4);

        mock.control(Method::POST, "/_mock/faults", Some(json!({"status": 529}))).await;
        let overloaded = mock.post("/v1/messages", &[], json!({"model": "c", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]})).await;
        assert_eq!(overloaded.status.as_u16(), 529);
        assert_eq!(overloaded.json()["error"]["type"], "overloaded_error");
        assert!(overloaded.headers.get("retry-after").is_none());

        mock.control(Method::DELETE, "/_mock/faults", None).await;
        assert_eq!(mock.post("/v1/chat/completions", &[], chat(Some(2), false)).await.status, StatusCode::OK);
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// `cut_after_tokens` ends a stream abruptly after N tokens: the tokens
/// before the cut arrive whole, then the body fails without `[DONE]` or the
/// chunked terminator, and the ledger bills exactly the N tokens sent.
#[tokio::test]
async fn cut_after_tokens_aborts_the_stream_without_done() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        mock.control(Method::POST, "/_mock/faults", Some(json!({"cut_after_tokens": 3}))).await;
        let answer = mock.post("/v1/chat/completions", &[("x-request-id", "cut-1")], chat(None, true)).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(answer.body.is_err(), "a cut stream must end with a body error");
        let entry = &mock.ledger().await["entries"][0];
        assert_eq!(entry["request_id"], "cut-1");
        assert_eq!(entry["completion_tokens"], 3);
        let prompt = entry["prompt_tokens"].as_u64().unwrap();
        assert_eq!(entry["billed_micros"], billed_micros(PRICE, prompt, 3));

        let body = chat(None, true).to_string();
        let raw = mock
            .raw(&format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ))
            .await;
        let raw = String::from_utf8(raw).unwrap();
        assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
        assert!(!raw.contains("[DONE]") && !raw.ends_with("0\r\n\r\n"), "{raw}");
        let chunks: Vec<serde_json::Value> = raw
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .map(|data| serde_json::from_str(data).unwrap())
            .collect();
        assert_eq!(chunks.len(), 1 + 3, "role chunk and 3 token chunks: {raw}");
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert!(chunks[1..].iter().all(|c| c["choices"][0]["delta"]["content"].as_str().is_some_and(|t| !t.is_empty())));

        mock.control(Method::DELETE, "/_mock/faults", None).await;
        let clean = mock.post("/v1/chat/completions", &[], chat(None, true)).await;
        assert_eq!(clean.events().last().unwrap().1, "[DONE]");
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// A cut Anthropic stream never sends `message_stop`.
#[tokio::test]
async fn cut_anthropic_stream_never_stops_the_message() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        mock.control(Method::POST, "/_mock/faults", Some(json!({"cut_after_tokens": 2}))).await;
        let request = json!({"model": "c", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "x"}]});
        let answer = mock.post("/v1/messages", &[], request).await;
        assert!(answer.body.is_err());
        assert_eq!(mock.ledger().await["entries"][0]["completion_tokens"], 2);
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// `latency_ms` delays API answers.
#[tokio::test]
async fn latency_fault_delays_answers() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        mock.control(
            Method::POST,
            "/_mock/faults",
            Some(json!({"latency_ms": 300})),
        )
        .await;
        let started = Instant::now();
        let answer = mock
            .post("/v1/chat/completions", &[], chat(Some(1), false))
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// Timing set through `/_mock/config` spaces a stream's tokens: the first
/// after `ttft_ms`, the rest `per_token_ms` apart.
#[tokio::test]
async fn config_timing_spaces_streamed_tokens() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        let timing = mock
            .control(
                Method::POST,
                "/_mock/config",
                Some(json!({"ttft_ms": 100, "per_token_ms": 20})),
            )
            .await;
        assert_eq!(timing, json!({"ttft_ms": 100, "per_token_ms": 20}));
        let started = Instant::now();
        let answer = mock
            .post("/v1/chat/completions", &[], chat(Some(4), true))
            .await;
        assert_eq!(answer.events().last().unwrap().1, "[DONE]");
        assert!(
            started.elapsed() >= Duration::from_millis(100 + 3 * 20),
            "{:?}",
            started.elapsed()
        );
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// `drop` closes the connection without an answer; the request is counted
/// but not billed.
#[tokio::test]
async fn drop_fault_closes_without_answer() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        mock.control(Method::POST, "/_mock/faults", Some(json!({"drop": true})))
            .await;
        let failed = mock
            .send(
                Method::POST,
                "/v1/chat/completions",
                &[],
                Some(chat(Some(1), false)),
            )
            .await;
        assert!(failed.is_err(), "a dropped request must get no answer");
        assert_eq!(
            mock.control(Method::GET, "/_mock/stats", None).await["requests"],
            1
        );
        assert_eq!(mock.ledger().await["entries"], json!([]));
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// `refuse` resets API connections while the control API keeps working, so
/// the fault can be cleared.
#[tokio::test]
async fn refuse_resets_api_connections_but_not_control() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        // A kept-alive connection made before the fault is reset too.
        assert_eq!(
            mock.post("/v1/chat/completions", &[], chat(Some(1), false))
                .await
                .status,
            StatusCode::OK
        );
        mock.control(Method::POST, "/_mock/faults", Some(json!({"refuse": true})))
            .await;
        let refused = mock
            .send(
                Method::POST,
                "/v1/chat/completions",
                &[],
                Some(chat(Some(1), false)),
            )
            .await;
        assert!(refused.is_err(), "a refused request must fail");
        let raw = mock
            .raw("GET /v1/models HTTP/1.1\r\nhost: mock\r\n\r\n")
            .await;
        assert!(raw.is_empty(), "a refused connection answers nothing");
        assert_eq!(
            mock.control(Method::GET, "/_mock/stats", None).await["requests"],
            1
        );
        mock.control(Method::DELETE, "/_mock/faults", None).await;
        assert_eq!(
            mock.post("/v1/chat/completions", &[], chat(Some(1), false))
                .await
                .status,
            StatusCode::OK
        );
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// A client that hangs up mid-stream is billed the tokens produced until
/// the mock noticed, fewer than the whole answer.
#[tokio::test]
async fn client_disconnect_bills_tokens_produced() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        mock.control(
            Method::POST,
            "/_mock/config",
            Some(json!({"per_token_ms": 50})),
        )
        .await;
        let request = http::Request::post(format!("http://{}/v1/chat/completions", mock.addr))
            .header("x-request-id", "gone-1")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                chat(None, true).to_string(),
            )))
            .unwrap();
        let response = mock.client.request(request).await.unwrap();
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        let events = parse_events(std::str::from_utf8(&first).unwrap());
        assert!(!events.is_empty());
        drop(body);
        // The mock notices the hang-up only when its next write fails, so
        // poll the ledger (eventually-style, bounded by LIMIT).
        let entry = loop {
            let ledger = mock.ledger().await;
            if let Some(entry) = ledger["entries"].as_array().unwrap().first() {
                break entry.clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(entry["request_id"], "gone-1");
        let tokens = entry["completion_tokens"].as_u64().unwrap();
        assert!((1..16).contains(&tokens), "billed {tokens} tokens");
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// Shutdown returns promptly even with an idle kept-alive connection open.
#[tokio::test]
async fn shutdown_returns_with_idle_connections() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        assert_eq!(
            mock.post("/v1/chat/completions", &[], chat(Some(1), false))
                .await
                .status,
            StatusCode::OK
        );
        let started = Instant::now();
        mock.shutdown().await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    })
    .await
    .unwrap();
}

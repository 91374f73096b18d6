//! The wire formats: OpenAI chat, embeddings and models (with the Azure
//! paths), Anthropic messages, forced tools, auth and bad input.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use switchyard_mock::{MockConfig, billed_micros};
use tokio::time::timeout;

use super::{LIMIT, Mock, PRICE, assert_has_required_keys, chat, weather_tool_schema};

/// A non-streamed chat answer's usage is what the ledger billed, at the
/// model's own price, under the caller's request id.
#[tokio::test]
async fn chat_usage_and_ledger_agree_with_billed_micros() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        let answer = mock
            .post(
                "/v1/chat/completions",
                &[("x-request-id", "req-1")],
                chat(Some(5), false),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers["x-request-id"], "req-1");
        let body = answer.json();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["choices"][0]["finish_reason"], "length");
        assert_eq!(
            body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .split(' ')
                .count(),
            5
        );
        let usage = &body["usage"];
        let (prompt, completion) = (
            usage["prompt_tokens"].as_u64().unwrap(),
            usage["completion_tokens"].as_u64().unwrap(),
        );
        // 14 + 28 bytes of text -> 4 + 7 tokens, plus 3 per message.
        assert_eq!((prompt, completion), (4 + 7 + 6, 5));
        assert_eq!(usage["total_tokens"], prompt + completion);

        let ledger = mock.ledger().await;
        let entry = &ledger["entries"][0];
        assert_eq!(entry["request_id"], "req-1");
        assert_eq!(entry["model"], "gpt-test");
        assert_eq!(entry["prompt_tokens"], prompt);
        assert_eq!(entry["completion_tokens"], completion);
        assert_eq!(
            entry["billed_micros"],
            billed_micros(PRICE, prompt, completion)
        );
        assert_eq!(
            ledger["total_billed_micros"],
            billed_micros(PRICE, prompt, completion)
        );

        let again = mock
            .post("/v1/chat/completions", &[], chat(None, false))
            .await
            .json();
        assert_eq!(again["choices"][0]["finish_reason"], "stop");
        assert_eq!(again["usage"]["completion_tokens"], 16);
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// A stream with `include_usage` sends the role, one chunk per token, the
/// finish chunk, the usage chunk with no choices, then `[DONE]`; its text is
/// the non-streamed text and its usage is what the ledger billed.
#[tokio::test]
async fn stream_with_include_usage_ends_with_usage_chunk_then_done() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        let answer = mock
            .post(
                "/v1/chat/completions",
                &[("x-request-id", "s-1")],
                chat(None, true),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(
            answer.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let events = answer.events();
        assert_eq!(events.last().unwrap().1, "[DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|(_, d)| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk")
        );
        let usage_chunk = chunks.last().unwrap();
        assert_eq!(usage_chunk["choices"], json!([]));
        let finish = &chunks[chunks.len() - 2];
        assert_eq!(finish["choices"][0]["finish_reason"], "stop");
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        let tokens = chunks
            .iter()
            .filter(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty())
            })
            .count();
        assert_eq!(tokens, 16);
        assert_eq!(usage_chunk["usage"]["completion_tokens"], 16);

        let whole = mock
            .post("/v1/chat/completions", &[], chat(None, false))
            .await
            .json();
        assert_eq!(whole["choices"][0]["message"]["content"], text);
        let entry = &mock.ledger().await["entries"][0];
        assert_eq!(entry["request_id"], "s-1");
        assert_eq!(
            entry["completion_tokens"],
            usage_chunk["usage"]["completion_tokens"]
        );
        assert_eq!(
            entry["prompt_tokens"],
            usage_chunk["usage"]["prompt_tokens"]
        );
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// Anthropic streams come as the documented named events in order, and a
/// request without `max_tokens` is refused in Anthropic's error shape.
#[tokio::test]
async fn anthropic_stream_events_come_in_order() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        let request = json!({
            "model": "claude-test",
            "max_tokens": 3,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [{"role": "user", "content": "Hello"}],
            "stream": true,
        });
        let answer = mock
            .post(
                "/v1/messages",
                &[("anthropic-version", "2023-06-01")],
                request.clone(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        let events = answer.events();
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let start: Value = serde_json::from_str(&events[0].1).unwrap();
        assert_eq!(start["message"]["usage"]["output_tokens"], 1);
        assert_eq!(start["message"]["content"], json!([]));
        let delta: Value = serde_json::from_str(&events[7].1).unwrap();
        assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
        assert_eq!(delta["usage"]["output_tokens"], 3);

        let mut whole = request.clone();
        whole["stream"] = json!(false);
        let message = mock.post("/v1/messages", &[], whole).await.json();
        assert_eq!(message["type"], "message");
        assert_eq!(message["stop_reason"], "max_tokens");
        assert_eq!(
            message["usage"]["input_tokens"],
            start["message"]["usage"]["input_tokens"]
        );

        let mut missing = request;
        missing.as_object_mut().unwrap().remove("max_tokens");
        let refused = mock.post("/v1/messages", &[], missing).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        let error = refused.json();
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// A forced OpenAI tool gets a call whose arguments, whole or streamed, are
/// JSON with the schema's required keys.
#[tokio::test]
async fn forced_openai_tool_call_has_schema_arguments() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        let mut request = chat(None, false);
        request["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "parameters": weather_tool_schema()}}]);
        request["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
        let body = mock.post("/v1/chat/completions", &[], request.clone()).await.json();
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert!(choice["message"]["content"].is_null());
        let call = &choice["message"]["tool_calls"][0];
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(call["function"]["name"], "get_weather");
        let arguments = call["function"]["arguments"].as_str().unwrap();
        assert_has_required_keys(&serde_json::from_str(arguments).unwrap());
        assert_eq!(body["usage"]["completion_tokens"], arguments.len().div_ceil(4) as u64);

        request["stream"] = json!(true);
        request["tool_choice"] = json!("required");
        let events = mock.post("/v1/chat/completions", &[], request).await.events();
        let chunks: Vec<Value> = events.iter().filter(|(_, d)| d != "[DONE]").map(|(_, d)| serde_json::from_str(d).unwrap()).collect();
        let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!((first["index"].as_u64(), first["type"].as_str()), (Some(0), Some("function")));
        assert_eq!(first["function"]["arguments"], "");
        let streamed: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
            .collect();
        assert_eq!(streamed, arguments);
        assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// A forced Anthropic tool gets a `tool_use` block, whole or streamed as
/// `input_json_delta` fragments.
#[tokio::test]
async fn forced_anthropic_tool_call_has_schema_input() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        let mut request = json!({
            "model": "claude-test",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"name": "get_weather", "input_schema": weather_tool_schema()}],
            "tool_choice": {"type": "tool", "name": "get_weather"},
        });
        let body = mock.post("/v1/messages", &[], request.clone()).await.json();
        assert_eq!(body["stop_reason"], "tool_use");
        let block = &body["content"][0];
        assert_eq!(block["type"], "tool_use");
        assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
        assert_has_required_keys(&block["input"]);

        request["stream"] = json!(true);
        request["tool_choice"] = json!({"type": "any"});
        let events = mock.post("/v1/messages", &[], request).await.events();
        let data: Vec<Value> = events
            .iter()
            .map(|(_, d)| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(data[1]["content_block"]["type"], "tool_use");
        assert_eq!(data[1]["content_block"]["input"], json!({}));
        let partial: String = data
            .iter()
            .filter(|d| d["delta"]["type"] == "input_json_delta")
            .map(|d| d["delta"]["partial_json"].as_str().unwrap())
            .collect();
        let input: Value = serde_json::from_str(&partial).unwrap();
        assert_eq!(input, block["input"]);
        assert!(data.iter().any(|d| d["delta"]["stop_reason"] == "tool_use"));
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// Embeddings (OpenAI and Azure paths, float and base64) are deterministic,
/// sized by `dimensions`, and billed at the input price; models are listed
/// in each provider's shape.
#[tokio::test]
async fn embeddings_and_models_follow_the_openai_shapes() {
    timeout(LIMIT, async {
        let mock = Mock::start(MockConfig {
            models: vec!["gpt-test".to_owned()],
            prices: [("text-embed".to_owned(), PRICE)].into(),
            ..MockConfig::default()
        })
        .await;
        let request = json!({"model": "text-embed", "input": ["abcdefgh", "abcdefgh", "other"], "dimensions": 8});
        let body = mock.post("/v1/embeddings", &[("x-request-id", "e-1")], request).await.json();
        assert_eq!(body["object"], "list");
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 3);
        assert_eq!(data[0]["object"], "embedding");
        assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 8);
        assert_eq!(data[0]["embedding"], data[1]["embedding"]);
        assert_ne!(data[0]["embedding"], data[2]["embedding"]);
        assert_eq!(body["usage"], json!({"prompt_tokens": 2 + 2 + 2, "total_tokens": 6}));
        let entry = &mock.ledger().await["entries"][0];
        assert_eq!((entry["completion_tokens"].as_u64(), entry["billed_micros"].as_u64()), (Some(0), Some(billed_micros(PRICE, 6, 0))));

        let azure = mock
            .post("/openai/deployments/text-embed/embeddings?api-version=2024-10-21", &[], json!({"input": "abcdefgh", "encoding_format": "base64"}))
            .await
            .json();
        assert_eq!(azure["model"], "text-embed");
        // 16 little-endian f32s are 64 bytes, 88 base64 characters.
        assert_eq!(azure["data"][0]["embedding"].as_str().unwrap().len(), 88);

        let models = mock.send(Method::GET, "/v1/models", &[], None).await.unwrap().json();
        assert_eq!(models["object"], "list");
        let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["gpt-test", "text-embed"]);
        assert_eq!(models["data"][0]["object"], "model");
        let anthropic = mock.send(Method::GET, "/v1/models", &[("anthropic-version", "2023-06-01")], None).await.unwrap().json();
        assert_eq!(anthropic["data"][0]["type"], "model");
        assert_eq!(anthropic["has_more"], false);
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// The Azure chat path answers like OpenAI's, the deployment naming the model.
#[tokio::test]
async fn azure_chat_path_uses_the_deployment_as_model() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        let mut request = chat(Some(2), false);
        request.as_object_mut().unwrap().remove("model");
        let body = mock
            .post(
                "/openai/deployments/gpt-test/chat/completions?api-version=2024-10-21",
                &[],
                request,
            )
            .await
            .json();
        assert_eq!(body["model"], "gpt-test");
        assert_eq!(mock.ledger().await["entries"][0]["model"], "gpt-test");
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// With a key configured, each of the three key headers is accepted and a
/// missing key gets a 401 in the endpoint's format; the control API needs no key.
#[tokio::test]
async fn api_key_is_checked_in_each_header_and_format() {
    timeout(LIMIT, async {
        let mock = Mock::start(MockConfig {
            api_key: Some("sk-mock".to_owned()),
            ..MockConfig::default()
        })
        .await;
        let messages =
            json!({"model": "c", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]});
        let denied = mock
            .post("/v1/chat/completions", &[], chat(Some(1), false))
            .await;
        assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
        assert_eq!(denied.json()["error"]["code"], "invalid_api_key");
        let denied = mock
            .post("/v1/messages", &[("x-api-key", "wrong")], messages.clone())
            .await;
        assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
        assert_eq!(denied.json()["error"]["type"], "authentication_error");

        let bearer = mock
            .post(
                "/v1/chat/completions",
                &[("authorization", "Bearer sk-mock")],
                chat(Some(1), false),
            )
            .await;
        assert_eq!(bearer.status, StatusCode::OK);
        let x_api_key = mock
            .post("/v1/messages", &[("x-api-key", "sk-mock")], messages)
            .await;
        assert_eq!(x_api_key.status, StatusCode::OK);
        let azure = mock
            .post(
                "/openai/deployments/d/chat/completions",
                &[("api-key", "sk-mock")],
                chat(Some(1), false),
            )
            .await;
        assert_eq!(azure.status, StatusCode::OK);
        assert_eq!(mock.ledger().await["entries"].as_array().unwrap().len(), 3);
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

/// Bad input gets a 400 in the endpoint's own error shape and is not billed.
#[tokio::test]
async fn invalid_json_and_missing_fields_are_400s() {
    timeout(LIMIT, async {
        let mock = Mock::priced().await;
        let answer = mock
            .send(Method::POST, "/v1/chat/completions", &[], None)
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        let error = answer.json();
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert!(error["error"]["param"].is_null() && error["error"]["message"].is_string());

        let no_messages = mock
            .post("/v1/chat/completions", &[], json!({"model": "gpt-test"}))
            .await;
        assert_eq!(no_messages.status, StatusCode::BAD_REQUEST);
        assert_eq!(no_messages.json()["error"]["param"], "messages");

        let not_object = mock
            .post(
                "/v1/messages",
                &[],
                Value::String("not an object".to_owned()),
            )
            .await;
        assert_eq!(not_object.status, StatusCode::BAD_REQUEST);
        assert_eq!(not_object.json()["type"], "error");
        assert_eq!(mock.ledger().await["total_billed_micros"], 0);
        mock.shutdown().await;
    })
    .await
    .unwrap();
}

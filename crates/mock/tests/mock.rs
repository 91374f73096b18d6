//! The mock over real HTTP on loopback: each test binds 127.0.0.1:0, serves a
//! mock, and talks to it the way the gateway and the test kit do, through
//! hyper's client (or a raw socket where the bytes on the wire matter).
//! Every test is bounded by [`LIMIT`].
//!
//! This file holds the harness; the scenarios are in `mock/api.rs` (the wire
//! formats) and `mock/faults.rs` (faults, ledger and timing).
#![expect(
    clippy::disallowed_methods,
    reason = "tests of the fixture bind sockets, spawn, connect and time directly"
)]
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "harness helpers are test code: a failed step must fail the test"
)]

#[path = "mock/api.rs"]
mod api;
#[path = "mock/faults.rs"]
mod faults;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use switchyard_mock::{MockConfig, Price, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Wall-clock bound of every test.
const LIMIT: Duration = Duration::from_secs(10);

const PRICE: Price = Price {
    input_micros_per_mtok: 2_500_000,
    output_micros_per_mtok: 10_000_000,
};

/// Price of `gpt-test` in the mocks tests start.
/// A running mock and a client for it.
struct Mock {
    addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

/// An answer: status, headers and the body, or the error that ended it.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Result<Bytes, String>,
}

impl Mock {
    async fn start(config: MockConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, config, async move {
            let _ = stopped.await;
        }));
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self {
            addr,
            client,
            stop: Some(stop),
            task,
        }
    }

    async fn priced() -> Self {
        Self::start(MockConfig {
            name: "mock-t".to_owned(),
            prices: BTreeMap::from([("gpt-test".to_owned(), PRICE)]),
            ..MockConfig::default()
        })
        .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Answer, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let response = self
            .client
            .request(request.body(Full::new(body)).unwrap())
            .await
            .map_err(|err| format!("{err:?}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|err| format!("{err:?}"));
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: Value) -> Answer {
        self.send(Method::POST, path, headers, Some(body))
            .await
            .unwrap()
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let answer = self.send(method, path, &[], body).await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "control {path}");
        serde_json::from_slice(&answer.body.unwrap()).unwrap()
    }

    /// Sends `request` on a fresh socket and returns every byte read until
    /// the server closes or resets it.
    async fn raw(&self, request: &str) -> Vec<u8> {
        let mut socket = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        let mut buf = [0_u8; 4096];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return received,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    }

    async fn ledger(&self) -> Value {
        self.control(Method::GET, "/_mock/ledger", None).await
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        timeout(Duration::from_secs(3), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(self.body.as_ref().unwrap()).unwrap()
    }

    /// The SSE events of the body read so far: `(event name, data)`.
    fn events(&self) -> Vec<(Option<String>, String)> {
        let text = match &self.body {
            Ok(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
            Err(_) => panic!("body ended with an error"),
        };
        parse_events(&text)
    }
}

fn parse_events(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (name, data)
        })
        .collect()
}

fn chat(max_tokens: Option<u64>, stream: bool) -> Value {
    let mut body = json!({
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say something deterministic."}
        ],
        "stream": stream,
    });
    if let Some(max) = max_tokens {
        body["max_tokens"] = json!(max);
    }
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn weather_tool_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"}
        },
        "required": ["location", "unit", "days"]
    })
}

fn assert_has_required_keys(args: &Value) {
    for key in ["location", "unit", "days"] {
        assert!(args.get(key).is_some(), "missing {key} in {args}");
    }
    assert_eq!(args["unit"], "celsius");
}

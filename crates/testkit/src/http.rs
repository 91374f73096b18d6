//! A small HTTP/1.1 client for tests: JSON in, status + headers + body out, and SSE bodies
//! collected whole (with a bound), on hyper's pooled client.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// Body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// `data:` payloads of an SSE body, in order.
    pub fn sse_data(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.trim_start().to_owned())
            .collect()
    }

    /// `event:` names of an SSE body, in order.
    pub fn sse_events(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter_map(|l| l.strip_prefix("event:"))
            .map(|d| d.trim().to_owned())
            .collect()
    }
}

/// Longest any single test request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn client() -> &'static Client<HttpConnector, Full<Bytes>> {
    static C: OnceLock<Client<HttpConnector, Full<Bytes>>> = OnceLock::new();
    C.get_or_init(|| {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        Client::builder(TokioExecutor::new()).build(conn)
    })
}

/// Sends a request with a raw body.
///
/// # Errors
/// Transport errors and the timeout.
pub async fn post_raw(
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> anyhow::Result<Reply> {
    send("POST", url, headers, body.into()).await
}

/// Sends JSON.
///
/// # Errors
/// Transport errors and the timeout.
pub async fn post_json(
    url: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> anyhow::Result<Reply> {
    let mut h: Vec<(&str, &str)> = headers.to_vec();
    h.push(("content-type", "application/json"));
    send("POST", url, &h, Bytes::from(serde_json::to_vec(body)?)).await
}

/// GET.
///
/// # Errors
/// Transport errors and the timeout.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> anyhow::Result<Reply> {
    send("GET", url, headers, Bytes::new()).await
}

/// DELETE.
///
/// # Errors
/// Transport errors and the timeout.
pub async fn delete(url: &str) -> anyhow::Result<Reply> {
    send("DELETE", url, &[], Bytes::new()).await
}

async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> anyhow::Result<Reply> {
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(body))?;
    let fut = async {
        let resp = client().request(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        anyhow::Ok(Reply {
            status,
            headers,
            body,
        })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow::anyhow!("{method} {url} timed out"))?
}

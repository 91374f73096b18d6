//! The floor: the least any gateway does. A hyper 1 HTTP/1.1 server (keep-alive, TCP_NODELAY on
//! accepted sockets) on a multi-thread runtime, like the node, that for
//! `POST /v1/chat/completions` reads the body, parses it as JSON, looks the bearer key up in a
//! map, serialises the JSON again, forwards it on a pooled client (TCP_NODELAY) and answers
//! with the upstream's status and whole body. Nothing else: no routing, limits, accounting,
//! logging or metrics.
//!
//! It exits when its stdin closes, so it never outlives the benchmark that started it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;

use crate::load::{CHAT_PATH, KEY};

/// Arguments of `floor`.
#[derive(clap::Args)]
pub struct FloorArgs {
    /// Address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// Upstream base URL including the version segment, e.g. http://127.0.0.1:7001/v1.
    #[arg(long)]
    upstream: String,
}

struct Floor {
    client: Client<HttpConnector, Full<Bytes>>,
    /// Bearer key to key name: the one lookup every gateway does.
    keys: HashMap<String, String>,
    upstream: Uri,
}

/// Serves until stdin closes.
///
/// # Errors
/// Cannot listen, or the upstream URL is malformed.
pub async fn run(args: FloorArgs) -> anyhow::Result<()> {
    let upstream: Uri = format!("{}/chat/completions", args.upstream.trim_end_matches('/'))
        .parse()
        .context("--upstream: not a URL")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let floor = Arc::new(Floor {
        client: Client::builder(TokioExecutor::new()).build(connector),
        keys: HashMap::from([(KEY.to_owned(), "bench".to_owned())]),
        upstream,
    });
    tokio::select! {
        r = accept(listener, floor) => r,
        () = stdin_closed() => Ok(()),
    }
}

async fn accept(listener: tokio::net::TcpListener, floor: Arc<Floor>) -> anyhow::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            // Out of descriptors or a reset before accept: keep serving the others.
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let floor = floor.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(floor.clone(), req));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0_u8; 64];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

async fn handle(
    floor: Arc<Floor>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match forward(&floor, req).await {
        Ok(r) => r,
        Err(e) => plain(StatusCode::BAD_GATEWAY, format!("floor: {e:#}")),
    })
}

async fn forward(floor: &Floor, req: Request<Incoming>) -> anyhow::Result<Response<Full<Bytes>>> {
    if req.method() != Method::POST || req.uri().path() != CHAT_PATH {
        return Ok(plain(StatusCode::NOT_FOUND, "not found".into()));
    }
    let key = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|k| floor.keys.get(k));
    if key.is_none() {
        return Ok(plain(StatusCode::UNAUTHORIZED, "unknown key".into()));
    }
    let body = req.into_body().collect().await?.to_bytes();
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Ok(plain(StatusCode::BAD_REQUEST, "bad JSON".into()));
    };
    let outgoing = Request::post(floor.upstream.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(&json)?)))?;
    let (parts, body) = floor.client.request(outgoing).await?.into_parts();
    let body = body.collect().await?.to_bytes();
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = parts.status;
    if let Some(ct) = parts.headers.get(CONTENT_TYPE) {
        response.headers_mut().insert(CONTENT_TYPE, ct.clone());
    }
    Ok(response)
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}

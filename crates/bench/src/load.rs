//! The closed-loop load generator: `conns` tasks, each on its own keep-alive HTTP/1.1
//! connection, each sending the same non-streaming chat request as soon as the previous answer
//! is read. Latency is recorded in microseconds for requests started after the warm-up.
//! Closed loop means a slow answer delays the next request (coordinated omission), so tails
//! under saturation are understated alike for every target.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;

/// The virtual key the node is configured with (no budget) and the floor's map holds.
pub const KEY: &str = "sk-sy-bench-0123456789abcdef";
/// The request every connection sends.
pub const BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32,"temperature":0}"#;
/// The path every target serves.
pub const CHAT_PATH: &str = "/v1/chat/completions";

/// One cell's timeline.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Requests started from here on are measured.
    pub warmup_end: Instant,
    /// No request is started after this.
    pub end: Instant,
}

/// What one cell measured.
#[derive(Debug)]
pub struct LoadResult {
    /// Latency of measured successful requests, microseconds.
    pub latency_us: Histogram<u64>,
    /// Measured requests answered 200.
    pub ok: u64,
    /// Measured requests that failed: other status, transport error or timeout.
    pub errors: u64,
    /// Connections found closed by the server and opened again (any time in the cell).
    pub reconnects: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// From the end of the warm-up to the last measured answer.
    pub elapsed: Duration,
}

/// A request that takes longer than this has hung; it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after its end a cell's workers may take to finish before they are abandoned.
const DRAIN_TIMEOUT: Duration = REQUEST_TIMEOUT.saturating_add(Duration::from_secs(5));
/// Largest latency the histogram holds (60 s); anything above saturates.
const MAX_LATENCY_US: u64 = 60_000_000;
/// Pause before reconnecting after a failed connect, so a dead target is not spun on.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

impl Plan {
    /// Warm-up from now, then the measured duration.
    pub fn starting_now(warmup: Duration, duration: Duration) -> Self {
        let warmup_end = Instant::now() + warmup;
        Self {
            warmup_end,
            end: warmup_end + duration,
        }
    }
}

/// One worker's tally.
pub struct Tally {
    latency_us: Histogram<u64>,
    ok: u64,
    errors: u64,
    reconnects: u64,
    first_error: Option<String>,
    last_answer: Option<Instant>,
}

/// Starts `conns` workers against `addr`, each sending `key` as its bearer key.
pub fn start(
    addr: SocketAddr,
    key: &Arc<str>,
    conns: usize,
    plan: &Plan,
) -> JoinSet<anyhow::Result<Tally>> {
    let mut set = JoinSet::new();
    for _ in 0..conns {
        set.spawn(worker(addr, Arc::clone(key), *plan));
    }
    set
}

/// Waits for the workers (bounded) and merges their tallies.
///
/// # Errors
/// A worker could not build its histogram or request, or the workers did not finish in time.
pub async fn finish(
    mut set: JoinSet<anyhow::Result<Tally>>,
    plan: &Plan,
) -> anyhow::Result<LoadResult> {
    let mut latency_us = new_histogram()?;
    let (mut ok, mut errors, mut reconnects) = (0, 0, 0);
    let mut first_error = None;
    let mut last_answer = plan.warmup_end;
    let deadline = tokio::time::Instant::from_std(plan.end + DRAIN_TIMEOUT);
    while let Some(joined) = tokio::time::timeout_at(deadline, set.join_next())
        .await
        .context("the load generator's workers did not finish in time")?
    {
        let tally = joined.context("a load generator worker failed")??;
        latency_us
            .add(&tally.latency_us)
            .context("cannot merge histograms")?;
        ok += tally.ok;
        errors += tally.errors;
        reconnects += tally.reconnects;
        first_error = first_error.or(tally.first_error);
        last_answer = last_answer.max(tally.last_answer.unwrap_or(plan.warmup_end));
    }
    Ok(LoadResult {
        latency_us,
        ok,
        errors,
        reconnects,
        first_error,
        elapsed: last_answer.saturating_duration_since(plan.warmup_end),
    })
}

/// Sends one request with bearer `key` on a fresh connection and returns the answer's status
/// and body.
///
/// # Errors
/// Connect, transport or timeout.
pub async fn once(
    addr: SocketAddr,
    key: &str,
    method: Method,
    path: &str,
    body: Option<&'static str>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let mut sender = connect(addr).await?;
    let request = request(addr, key, method, path, body)?;
    tokio::time::timeout(REQUEST_TIMEOUT, exchange(&mut sender, request))
        .await
        .context("timed out")?
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).context("cannot create a histogram")
}

async fn worker(addr: SocketAddr, key: Arc<str>, plan: Plan) -> anyhow::Result<Tally> {
    let mut tally = Tally {
        latency_us: new_histogram()?,
        ok: 0,
        errors: 0,
        reconnects: 0,
        first_error: None,
        last_answer: None,
    };
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    let mut opened_once = false;
    while Instant::now() < plan.end {
        let sender = match conn.as_mut() {
            Some(s) if !s.is_closed() => s,
            _ => match connect(addr).await {
                Ok(s) => {
                    tally.reconnects += u64::from(opened_once);
                    opened_once = true;
                    conn.insert(s)
                }
                Err(e) => {
                    conn = None;
                    tally.fail(Instant::now() >= plan.warmup_end, format!("connect: {e:#}"));
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        if sender.ready().await.is_err() {
            // Closed between requests: not a failed request, just a reconnect.
            conn = None;
            continue;
        }
        let request = request(addr, &key, Method::POST, CHAT_PATH, Some(BODY))?;
        let sent = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, exchange(sender, request)).await;
        let answered = Instant::now();
        let measured = sent >= plan.warmup_end;
        match outcome {
            Ok(Ok((StatusCode::OK, _))) => {
                if measured {
                    let micros = u64::try_from(answered.duration_since(sent).as_micros())
                        .unwrap_or(u64::MAX);
                    tally.latency_us.saturating_record(micros.max(1));
                    tally.ok += 1;
                    tally.last_answer = Some(answered);
                }
            }
            Ok(Ok((status, body))) => {
                let snippet = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                tally.fail(measured, format!("HTTP {status}: {snippet}"));
            }
            Ok(Err(e)) => {
                conn = None;
                tally.fail(measured, format!("transport: {e:#}"));
            }
            Err(_) => {
                conn = None;
                tally.fail(measured, format!("no answer in {REQUEST_TIMEOUT:?}"));
            }
        }
    }
    Ok(tally)
}

impl Tally {
    fn fail(&mut self, measured: bool, why: String) {
        if measured {
            self.errors += 1;
            self.first_error.get_or_insert(why);
        }
    }
}

/// Opens a keep-alive HTTP/1.1 connection with TCP_NODELAY.
async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    // Runs until the sender is dropped or the server closes.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn request(
    addr: SocketAddr,
    key: &str,
    method: Method,
    path: &str,
    body: Option<&'static str>,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string())
        .header(AUTHORIZATION, format!("Bearer {key}"));
    let request = match body {
        Some(b) => builder
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_static(b.as_bytes()))),
        None => builder.body(Full::new(Bytes::new())),
    };
    request.context("cannot build the request")
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

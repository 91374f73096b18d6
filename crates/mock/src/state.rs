//! Everything a request handler can see: configuration, timing, faults,
//! ledger and counters, shared by every connection of one server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::MockConfig;
use crate::faults::Faults;
use crate::ledger::Ledger;

/// State shared by every connection of one server (behind an `Arc`).
#[derive(Debug)]
pub(crate) struct Shared {
    /// Start-up configuration; its timing fields are only the initial values
    /// of `ttft_ms` and `per_token_ms` below.
    pub(crate) config: MockConfig,
    /// Models `GET /v1/models` lists, computed once.
    pub(crate) models: Vec<String>,
    /// Current time to first token, changed by `POST /_mock/config`.
    ttft_ms: AtomicU64,
    /// Current delay between streamed tokens, changed by `POST /_mock/config`.
    per_token_ms: AtomicU64,
    /// Installed faults.
    pub(crate) faults: Faults,
    /// Billed requests; streams hold their own `Arc` so they can bill after
    /// the handler has returned.
    pub(crate) ledger: Arc<Ledger>,
    /// API requests received (`GET /_mock/stats`).
    requests: AtomicU64,
    /// Sequence for response ids and generated request ids.
    sequence: AtomicU64,
    /// The last API request received: path, headers and body, as it arrived (`GET
    /// /_mock/last_request`), so a test can see what a gateway forwarded.
    last_request: std::sync::Mutex<Option<(String, http::HeaderMap, bytes::Bytes)>>,
}

/// Base timing of answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timing {
    /// Time to first token.
    pub(crate) ttft: Duration,
    /// Delay between tokens.
    pub(crate) per_token: Duration,
}

impl Shared {
    /// State for a server with `config`.
    pub(crate) fn new(config: MockConfig) -> Self {
        Self {
            models: config.listed_models(),
            ttft_ms: AtomicU64::new(config.ttft_ms),
            per_token_ms: AtomicU64::new(config.per_token_ms),
            config,
            faults: Faults::default(),
            ledger: Arc::new(Ledger::default()),
            requests: AtomicU64::new(0),
            sequence: AtomicU64::new(0),
            last_request: std::sync::Mutex::new(None),
        }
    }

    /// Keeps `path`, `headers` and `body` as the last request received.
    pub(crate) fn remember(&self, path: &str, headers: &http::HeaderMap, body: &bytes::Bytes) {
        let mut last = match self.last_request.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        *last = Some((path.to_owned(), headers.clone(), body.clone()));
    }

    /// The last request received as JSON: `{"path", "headers": {name: value}, "body"}`, the
    /// body parsed when it is JSON. Credentials are shown as `"***"`: a test only needs to see
    /// that one was sent, and the control API is open to anyone who can reach the mock.
    pub(crate) fn last_request(&self) -> serde_json::Value {
        let last = match self.last_request.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        let Some((path, headers, body)) = last.as_ref() else {
            return serde_json::Value::Null;
        };
        let mut shown = serde_json::Map::new();
        for (name, value) in headers {
            let value = if matches!(name.as_str(), "authorization" | "x-api-key" | "api-key") {
                "***".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            shown.insert(name.as_str().to_owned(), serde_json::Value::String(value));
        }
        let body = serde_json::from_slice(body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into()));
        serde_json::json!({"path": path, "headers": shown, "body": body})
    }

    /// The current timing.
    pub(crate) fn timing(&self) -> Timing {
        Timing {
            ttft: Duration::from_millis(self.ttft_ms.load(Ordering::Relaxed)),
            per_token: Duration::from_millis(self.per_token_ms.load(Ordering::Relaxed)),
        }
    }

    /// Changes the timing fields that are `Some`.
    pub(crate) fn set_timing(&self, ttft_ms: Option<u64>, per_token_ms: Option<u64>) {
        if let Some(ms) = ttft_ms {
            self.ttft_ms.store(ms, Ordering::Relaxed);
        }
        if let Some(ms) = per_token_ms {
            self.per_token_ms.store(ms, Ordering::Relaxed);
        }
    }

    /// Counts one API request.
    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// API requests counted so far.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Resets the request counter.
    pub(crate) fn reset_requests(&self) {
        self.requests.store(0, Ordering::Relaxed);
    }

    /// The next number in this server's sequence (starting at 1).
    pub(crate) fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn unix_now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

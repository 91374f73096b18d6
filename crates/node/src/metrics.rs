//! Prometheus metrics, rendered by hand from atomics (the request path never takes a lock or
//! builds a label set). Names follow `switchyard_<subsystem>_<name>_<unit>`; labels are
//! low-cardinality (endpoint, provider, model, kind), never key ids.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchyard_provider::Endpoint;

use crate::accounting::Accounting;

/// Upper bounds (seconds) of the gateway request-duration histogram buckets.
const DURATION_BUCKETS_S: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// Per-endpoint request counters and a duration histogram.
#[derive(Debug, Default)]
pub struct EndpointMetrics {
    /// Requests answered with a 2xx.
    pub ok: AtomicU64,
    /// Requests answered with an error.
    pub errors: AtomicU64,
    /// Bucket counts (cumulative at render time).
    buckets: [AtomicU64; DURATION_BUCKETS_S.len()],
    /// Sum of durations, microseconds.
    sum_us: AtomicU64,
}

/// Node-wide metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    chat: EndpointMetrics,
    embeddings: EndpointMetrics,
    messages: EndpointMetrics,
    /// Errors by kind; a small fixed set of keys, so the lock is short and uncontended.
    errors_by_kind: Mutex<Vec<(&'static str, u64)>>,
}

impl Metrics {
    fn endpoint(&self, e: Endpoint) -> &EndpointMetrics {
        match e {
            Endpoint::Chat => &self.chat,
            Endpoint::Embeddings => &self.embeddings,
            Endpoint::Messages => &self.messages,
        }
    }

    /// Counts a request answered (time to response headers for streams).
    pub fn observe(&self, e: Endpoint, ok: bool, took: Duration) {
        let m = self.endpoint(e);
        if ok {
            m.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            m.errors.fetch_add(1, Ordering::Relaxed);
        }
        let s = took.as_secs_f64();
        if let Some(i) = DURATION_BUCKETS_S.iter().position(|b| s <= *b) {
            m.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        m.sum_us.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Counts an edge error by kind.
    pub fn error_kind(&self, kind: &'static str) {
        let mut g = match self.errors_by_kind.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match g.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => g.push((kind, 1)),
        }
    }

    /// Renders the Prometheus text format.
    pub fn render(&self, accounting: &Accounting, providers: &[ProviderLine]) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP switchyard_requests_total Requests answered by this node.\n# TYPE switchyard_requests_total counter"
        );
        for (name, e) in [
            ("chat", &self.chat),
            ("embeddings", &self.embeddings),
            ("messages", &self.messages),
        ] {
            let _ = writeln!(
                out,
                "switchyard_requests_total{{endpoint=\"{name}\",result=\"ok\"}} {}",
                e.ok.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                out,
                "switchyard_requests_total{{endpoint=\"{name}\",result=\"error\"}} {}",
                e.errors.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_request_duration_seconds Time to response headers.\n# TYPE switchyard_request_duration_seconds histogram"
        );
        for (name, e) in [
            ("chat", &self.chat),
            ("embeddings", &self.embeddings),
            ("messages", &self.messages),
        ] {
            let mut cum = 0;
            for (i, b) in DURATION_BUCKETS_S.iter().enumerate() {
                cum += e.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "switchyard_request_duration_seconds_bucket{{endpoint=\"{name}\",le=\"{b}\"}} {cum}"
                );
            }
            let count = e.ok.load(Ordering::Relaxed) + e.errors.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "switchyard_request_duration_seconds_bucket{{endpoint=\"{name}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "switchyard_request_duration_seconds_sum{{endpoint=\"{name}\"}} {}",
                e.sum_us.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "switchyard_request_duration_seconds_count{{endpoint=\"{name}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_edge_errors_total Requests refused or failed, by kind.\n# TYPE switchyard_edge_errors_total counter"
        );
        if let Ok(g) = self.errors_by_kind.lock() {
            for (k, n) in g.iter() {
                let _ = writeln!(out, "switchyard_edge_errors_total{{kind=\"{k}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_upstream_requests_total Upstream attempts by provider and model.\n# TYPE switchyard_upstream_requests_total counter"
        );
        for (p, m, a) in accounting.iter() {
            let m = escape(m);
            let _ = writeln!(
                out,
                "switchyard_upstream_requests_total{{provider=\"{p}\",model=\"{m}\",result=\"ok\"}} {}",
                a.ok.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                out,
                "switchyard_upstream_requests_total{{provider=\"{p}\",model=\"{m}\",result=\"error\"}} {}",
                a.failed.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_upstream_tokens_total Tokens by provider, model and kind.\n# TYPE switchyard_upstream_tokens_total counter"
        );
        for (p, m, a) in accounting.iter() {
            let m = escape(m);
            let _ = writeln!(
                out,
                "switchyard_upstream_tokens_total{{provider=\"{p}\",model=\"{m}\",kind=\"prompt\"}} {}",
                a.prompt_tokens.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                out,
                "switchyard_upstream_tokens_total{{provider=\"{p}\",model=\"{m}\",kind=\"completion\"}} {}",
                a.completion_tokens.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_cost_micros_total Cost in micro-dollars by provider and model.\n# TYPE switchyard_cost_micros_total counter"
        );
        for (p, m, a) in accounting.iter() {
            let _ = writeln!(
                out,
                "switchyard_cost_micros_total{{provider=\"{p}\",model=\"{}\"}} {}",
                escape(m),
                a.cost_micros.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_provider_in_flight Upstream requests in flight.\n# TYPE switchyard_provider_in_flight gauge"
        );
        for l in providers {
            let _ = writeln!(
                out,
                "switchyard_provider_in_flight{{provider=\"{}\"}} {}",
                l.name, l.in_flight
            );
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_provider_breaker_open Whether the breaker is open (1), half-open (0.5) or closed (0).\n# TYPE switchyard_provider_breaker_open gauge"
        );
        for l in providers {
            let _ = writeln!(
                out,
                "switchyard_provider_breaker_open{{provider=\"{}\"}} {}",
                l.name, l.breaker_value
            );
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_upstream_latency_seconds Upstream total latency quantiles over the recent window.\n# TYPE switchyard_upstream_latency_seconds gauge"
        );
        for l in providers {
            for (q, v) in [("0.5", l.p50_us), ("0.95", l.p95_us), ("0.99", l.p99_us)] {
                let _ = writeln!(
                    out,
                    "switchyard_upstream_latency_seconds{{provider=\"{}\",quantile=\"{q}\"}} {}",
                    l.name,
                    v as f64 / 1e6
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_upstream_ttft_seconds Upstream time to first token quantiles over the recent window.\n# TYPE switchyard_upstream_ttft_seconds gauge"
        );
        for l in providers {
            for (q, v) in [("0.5", l.ttft_p50_us), ("0.95", l.ttft_p95_us)] {
                let _ = writeln!(
                    out,
                    "switchyard_upstream_ttft_seconds{{provider=\"{}\",quantile=\"{q}\"}} {}",
                    l.name,
                    v as f64 / 1e6
                );
            }
        }
        out
    }
}

/// One provider's line of gauges.
pub struct ProviderLine {
    /// Provider name.
    pub name: String,
    /// In flight now.
    pub in_flight: u64,
    /// 1 open, 0.5 half-open, 0 closed.
    pub breaker_value: f64,
    /// Total latency p50, µs.
    pub p50_us: u64,
    /// p95, µs.
    pub p95_us: u64,
    /// p99, µs.
    pub p99_us: u64,
    /// TTFT p50, µs.
    pub ttft_p50_us: u64,
    /// TTFT p95, µs.
    pub ttft_p95_us: u64,
}

/// Escapes a label value.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

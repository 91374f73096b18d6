//! One upstream attempt: the request the node hands a provider, and what comes back. A call
//! either completes (a whole body in the client's format, with usage), starts a stream (whose
//! first frame has already arrived, so a failure before any byte is still retryable), or fails
//! with a [`CallError`] whose class decides whether the node may retry elsewhere.

use std::time::Duration;

use bytes::Bytes;
use switchyard_core::OutcomeClass;
use switchyard_wire::Usage;

use crate::stream::UpstreamStream;

/// Which API the client called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// OpenAI `/v1/chat/completions`.
    Chat,
    /// OpenAI `/v1/embeddings`.
    Embeddings,
    /// Anthropic `/v1/messages`.
    Messages,
}

impl Endpoint {
    /// The wire format the client speaks on this endpoint.
    pub fn client_format(self) -> Format {
        match self {
            Endpoint::Chat | Endpoint::Embeddings => Format::OpenAi,
            Endpoint::Messages => Format::Anthropic,
        }
    }

    /// Label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Messages => "messages",
        }
    }
}

/// A wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// OpenAI's.
    OpenAi,
    /// Anthropic's.
    Anthropic,
}

/// What the node asks of one attempt.
#[derive(Clone, Copy, Debug)]
pub struct CallRequest<'a> {
    /// Forwarded upstream as `x-request-id` so both sides' records match.
    pub request_id: &'a str,
    /// The client's endpoint.
    pub endpoint: Endpoint,
    /// Model name the upstream knows (or the Azure deployment).
    pub upstream_model: &'a str,
    /// Model name the client asked for, used in translated responses.
    pub public_model: &'a str,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether an OpenAI client asked for the usage chunk itself.
    pub client_include_usage: bool,
    /// `max_tokens` to send to upstreams that require it when the client gave none.
    pub default_max_tokens: u64,
    /// Prompt tokens assumed when a stream is cut before the upstream reported usage.
    pub prompt_estimate_tokens: u64,
    /// Whether this attempt is a retry (counted against the cluster-wide retry budget).
    pub retry: bool,
}

/// A successful start of a call.
pub enum CallOk {
    /// The whole response, already in the client's format.
    Complete {
        /// Response body for the client.
        body: Bytes,
        /// Usage as the upstream reported it (or estimated when it reported none).
        usage: Usage,
    },
    /// A stream whose first frames have arrived (boxed: the stream state is large and moves
    /// through the dispatch result).
    Stream(Box<UpstreamStream>),
}

/// Why an attempt failed. Expected outcomes (an upstream 500) are data the actor counts; this
/// becomes an edge error only when the node gives up.
#[derive(Clone, Debug)]
pub struct CallError {
    /// The outcome class (decides breaker counting and retry).
    pub class: OutcomeClass,
    /// The upstream's HTTP status, when it answered.
    pub status: Option<u16>,
    /// The upstream's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    /// What happened, without secrets; for logs and for the client on 4xx.
    pub message: String,
    /// Whether the fault is ours, not the upstream's (never retried, reported as 500).
    pub internal: bool,
}

impl CallError {
    /// The upstream rejected the request itself (4xx other than 429): retrying elsewhere would
    /// fail the same way.
    pub fn client(status: u16, message: String) -> Self {
        Self {
            class: OutcomeClass::ClientError,
            status: Some(status),
            retry_after: None,
            message,
            internal: false,
        }
    }

    /// The upstream failed (5xx, broken or unreadable answer).
    pub fn server(status: Option<u16>, message: String) -> Self {
        Self {
            class: OutcomeClass::ServerError,
            status,
            retry_after: None,
            message,
            internal: false,
        }
    }

    /// The upstream said 429.
    pub fn rate_limited(retry_after: Option<Duration>, message: String) -> Self {
        Self {
            class: OutcomeClass::RateLimited,
            status: Some(429),
            retry_after,
            message,
            internal: false,
        }
    }

    /// No answer in time.
    pub fn timeout(message: String) -> Self {
        Self {
            class: OutcomeClass::Timeout,
            status: None,
            retry_after: None,
            message,
            internal: false,
        }
    }

    /// Could not connect, or the connection broke before an answer.
    pub fn connect(message: String) -> Self {
        Self {
            class: OutcomeClass::Connect,
            status: None,
            retry_after: None,
            message,
            internal: false,
        }
    }

    /// Our own bug or limit; not counted against the provider.
    pub fn internal(message: String) -> Self {
        Self {
            class: OutcomeClass::ClientError,
            status: Some(500),
            retry_after: None,
            message,
            internal: true,
        }
    }

    /// Whether another attempt (here or elsewhere) could succeed.
    pub fn retryable(&self) -> bool {
        !self.internal
            && matches!(
                self.class,
                OutcomeClass::RateLimited
                    | OutcomeClass::ServerError
                    | OutcomeClass::Timeout
                    | OutcomeClass::Connect
            )
    }
}

/// How a stream ended, for the node's accounting hook.
#[derive(Clone, Copy, Debug)]
pub struct StreamEnd {
    /// `Ok` for a clean finish or a client disconnect; the failure class for a cut.
    pub class: OutcomeClass,
    /// Usage reported upstream, or estimated from what was seen when the stream was cut.
    pub usage: Usage,
    /// Whether the upstream reported the usage (false = estimated).
    pub usage_reported: bool,
    /// The client went away before the end.
    pub client_gone: bool,
    /// Time to the first frame.
    pub ttft: Option<Duration>,
    /// Time to the end.
    pub total: Duration,
}

/// Called exactly once when a stream ends, however it ends.
pub type StreamHook = Box<dyn FnOnce(StreamEnd) + Send + Sync>;

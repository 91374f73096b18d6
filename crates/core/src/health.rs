//! Provider health vocabulary shared by the provider actors (which decide it), the router (which
//! reads it) and the edge (which reports it).

/// How an upstream attempt ended, as counted by the breaker and the stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutcomeClass {
    /// 2xx and a complete body or stream.
    Ok,
    /// 4xx other than 429: the request's fault, not the provider's; never trips the breaker.
    ClientError,
    /// 429 from the upstream.
    RateLimited,
    /// 5xx from the upstream, or a stream cut mid-way.
    ServerError,
    /// No answer in time (connect, first byte or total).
    Timeout,
    /// Could not connect, or the connection broke before a response.
    Connect,
}

impl OutcomeClass {
    /// Label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeClass::Ok => "ok",
            OutcomeClass::ClientError => "4xx",
            OutcomeClass::RateLimited => "429",
            OutcomeClass::ServerError => "5xx",
            OutcomeClass::Timeout => "timeout",
            OutcomeClass::Connect => "connect",
        }
    }

    /// Whether this outcome counts against the provider's health.
    pub fn is_provider_failure(self) -> bool {
        matches!(
            self,
            OutcomeClass::ServerError | OutcomeClass::Timeout | OutcomeClass::Connect
        )
    }
}

/// The circuit breaker's phase, as published in snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BreakerPhase {
    /// Traffic flows.
    #[default]
    Closed,
    /// No traffic until the open period ends.
    Open,
    /// A limited number of probe requests may pass.
    HalfOpen,
}

impl BreakerPhase {
    /// Label for metrics, headers and `ctl`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerPhase::Closed => "closed",
            BreakerPhase::Open => "open",
            BreakerPhase::HalfOpen => "half_open",
        }
    }
}

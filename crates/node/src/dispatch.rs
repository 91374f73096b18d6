//! The dispatch loop: runs the router's plan against the providers, within the retry budget.
//!
//! 1. Walk the candidates in plan order. A provider whose gate refuses (breaker open, paused,
//!    at a limit) is skipped without spending an attempt.
//! 2. Each admitted call is one attempt. A retryable failure (connect, timeout, 5xx, 429, a
//!    stream that broke before its first event) moves on to the next candidate; any other
//!    failure (the upstream rejected the request) ends the request at once.
//! 3. When the candidates run out while attempts remain, go round again after a backoff, since
//!    a transient failure may have passed; stop when a round admits nothing.
//! 4. Attempts never exceed `1 + max_retries` (DESIGN invariant 6), and going back to a provider
//!    this request already tried is skipped when that provider's cluster-wide retry budget (20%
//!    of its requests over the window) is spent; failing over to a fresh provider is not.
//! 5. Once a stream has handed its first token to the client, nothing is retried (the stream
//!    ends honestly instead).

use std::time::Duration;

use serde_json::{Map, Value};
use switchyard_core::{OutcomeClass, ProviderName};
use switchyard_provider::{CallError, CallOk, CallRequest, Endpoint, Refusal};
use switchyard_router::Candidate;

use crate::edge::error::EdgeError;
use crate::node::App;
use crate::routing::Routing;

/// A request that found its provider.
pub struct Served {
    /// The provider that answered.
    pub provider: ProviderName,
    /// Its model name.
    pub upstream_model: String,
    /// The public model served (differs from the request's after a model fallback).
    pub public_model: String,
    /// Attempts made, this one included.
    pub attempts: u32,
    /// The answer.
    pub result: CallOk,
}

/// What dispatch needs to know about the request.
pub struct DispatchRequest<'a> {
    /// Request id.
    pub request_id: &'a str,
    /// Endpoint.
    pub endpoint: Endpoint,
    /// Stream requested.
    pub stream: bool,
    /// OpenAI client asked for the usage chunk.
    pub client_include_usage: bool,
    /// Tokens this request may use, for TPM admission.
    pub est_tokens: u64,
    /// Prompt tokens assumed when a stream is cut before usage arrives.
    pub prompt_estimate_tokens: u64,
}

/// Runs the plan.
///
/// # Errors
/// [`EdgeError`] for the client when nothing served the request.
pub async fn dispatch(
    routing: &Routing,
    app: &App,
    req: &DispatchRequest<'_>,
    candidates: &[Candidate],
    body: &mut Map<String, Value>,
) -> Result<Served, EdgeError> {
    let policy = app.config.retry;
    let max_attempts = policy.max_attempts();
    let mut attempts: u32 = 0;
    let mut last_error: Option<CallError> = None;
    let mut shortest_pause: Option<Duration> = None;
    let mut round: u32 = 0;
    let retry_budget = app.stats.snapshot();
    let mut tried: Vec<ProviderName> = Vec::with_capacity(2);
    'rounds: loop {
        let mut admitted_this_round = false;
        for cand in candidates {
            if attempts >= max_attempts {
                break 'rounds;
            }
            let Some(provider) = routing.providers.get(&cand.target.provider) else {
                continue;
            };
            // A retry goes only to a provider whose cluster-wide retry budget has room, so a
            // failing provider never multiplies the load on it.
            // Failing over to a provider this request has not tried is not a retry of that
            // provider: the budget limits only going back to one that already failed.
            if tried.contains(&cand.target.provider)
                && retry_budget
                    .retry_exhausted
                    .contains(cand.target.provider.as_str())
            {
                continue;
            }
            let permit = match provider.try_admit(req.est_tokens) {
                Ok(p) => p,
                Err(refusal) => {
                    if let Refusal::Paused { remaining } = refusal {
                        shortest_pause =
                            Some(shortest_pause.map_or(remaining, |p| p.min(remaining)));
                    }
                    continue;
                }
            };
            if round > 0 {
                tokio::time::sleep(policy.backoff(round - 1)).await;
            }
            admitted_this_round = true;
            attempts += 1;
            if !tried.contains(&cand.target.provider) {
                tried.push(cand.target.provider.clone());
            }
            let call = CallRequest {
                request_id: req.request_id,
                endpoint: req.endpoint,
                upstream_model: &cand.target.upstream_model,
                public_model: &cand.public_model,
                stream: req.stream,
                client_include_usage: req.client_include_usage,
                default_max_tokens: app.config.limits.default_max_tokens,
                prompt_estimate_tokens: req.prompt_estimate_tokens,
                retry: attempts > 1,
            };
            match provider.call(permit, call, body).await {
                Ok(result) => {
                    return Ok(Served {
                        provider: cand.target.provider.clone(),
                        upstream_model: cand.target.upstream_model.clone(),
                        public_model: cand.public_model.clone(),
                        attempts,
                        result,
                    });
                }
                Err(e) => {
                    if let Some(acct) = routing
                        .accounting
                        .get(&cand.target.provider, &cand.target.upstream_model)
                    {
                        acct.record_failed(Default::default(), Default::default());
                    }
                    tracing::debug!(request_id = req.request_id, provider = %cand.target.provider, attempt = attempts, class = e.class.as_str(), error = %e.message, "attempt failed");
                    if e.internal {
                        return Err(EdgeError::Internal(e.message));
                    }
                    if !e.retryable() {
                        return Err(EdgeError::UpstreamRejected {
                            status: e.status.unwrap_or(400),
                            message: e.message,
                        });
                    }
                    last_error = Some(e);
                }
            }
        }
        if !admitted_this_round {
            break;
        }
        round += 1;
    }
    Err(match last_error {
        None => EdgeError::NoProvider {
            retry_after: shortest_pause,
        },
        Some(e) if e.class == OutcomeClass::Timeout => EdgeError::UpstreamTimeout { attempts },
        Some(e) => EdgeError::UpstreamFailed {
            attempts,
            message: e.message,
        },
    })
}

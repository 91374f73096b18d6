//! The inference endpoints: `/v1/chat/completions`, `/v1/embeddings` (OpenAI) and
//! `/v1/messages` (Anthropic). They share one path:
//!
//! 1. request id, readiness, key (auth);
//! 2. the body, read up to the limit, parsed once into a JSON map (unknown fields are kept and
//!    passed to same-format upstreams untouched);
//! 3. refusal of client-supplied upstream URLs or keys, and of the gateway's own hint field
//!    before anything is forwarded;
//! 4. validation of the endpoint's fields, limits, and the key's model allow-list;
//! 5. the router's plan, then dispatch; then the response with the `x-switchyard-*` headers and
//!    the cost (for streams, the cost is counted when the stream ends).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde_json::{Map, Value};
use switchyard_core::OutcomeClass;
use switchyard_provider::{CallOk, Endpoint, StreamEnd};
use switchyard_router::{
    Constraints, PlanOptions, RequestFacts, RoutingError, Strategy, TargetState, TargetView,
    plan_auto, plan_with,
};

use switchyard_control::{Scope, SpendEntry};

use crate::dispatch::{DispatchRequest, dispatch};
use crate::edge::auth::authenticate;
use crate::edge::error::EdgeError;
use crate::edge::headers::{self, request_id};
use crate::guard::GuardError;
use crate::keys::KeyInfo;
use crate::node::App;
use crate::rates::RateError;

/// Body fields that would let a client pick an upstream or credential; only configuration may.
const FORBIDDEN_FIELDS: [&str; 8] = [
    "api_base",
    "base_url",
    "api_key",
    "api_url",
    "upstream_url",
    "azure_endpoint",
    "custom_llm_provider",
    "api_version",
];
/// The public model name that asks the gateway to choose (see `switchyard_router::classify`).
const AUTO_MODEL: &str = "auto";
/// The extra body field carrying routing hints; removed before forwarding.
const HINT_FIELD: &str = "switchyard";
/// Rough bytes per token for estimates (tokenizers average about 4 bytes of English per token;
/// estimates only size rate-token reservations and bill cut streams that reported no usage).
const BYTES_PER_TOKEN_ESTIMATE: u64 = 4;

/// `POST /v1/chat/completions`.
pub async fn chat(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    handle(app, Endpoint::Chat, headers, body).await
}

/// `POST /v1/embeddings`.
pub async fn embeddings(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    handle(app, Endpoint::Embeddings, headers, body).await
}

/// `POST /v1/messages`.
pub async fn messages(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    handle(app, Endpoint::Messages, headers, body).await
}

async fn handle(app: Arc<App>, endpoint: Endpoint, headers: HeaderMap, body: Body) -> Response {
    let started = app.clock.now();
    let rid = request_id(&app, &headers);
    let result = serve(&app, endpoint, &headers, body, rid.as_str()).await;
    let took = app.clock.now().saturating_duration_since(started);
    match result {
        Ok(resp) => {
            app.metrics.observe(endpoint, true, took);
            resp
        }
        Err(e) => {
            app.metrics.observe(endpoint, false, took);
            app.metrics.error_kind(e.kind());
            e.into_response(endpoint.client_format(), rid.as_str(), &app.node_header)
        }
    }
}

/// What validation learned about the request.
struct Facts {
    model: String,
    stream: bool,
    include_usage: bool,
    max_tokens: Option<u64>,
}

async fn serve(
    app: &Arc<App>,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: Body,
    rid: &str,
) -> Result<Response, EdgeError> {
    if !app.ready.load(Ordering::Acquire) {
        return Err(EdgeError::NotReady);
    }
    let key = authenticate(app, headers)?;
    let limits = app.config.limits;
    let bytes = read_body(body, limits.max_body_bytes).await?;
    let mut map: Map<String, Value> = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(EdgeError::BadJson("the body must be a JSON object".into())),
        Err(e) => return Err(EdgeError::BadJson(e.to_string())),
    };
    if let Some(f) = FORBIDDEN_FIELDS.iter().find(|f| map.contains_key(**f)) {
        return Err(EdgeError::ForbiddenField(f));
    }
    let hints = map.remove(HINT_FIELD);
    let facts = facts(endpoint, &map)?;
    if let Some(m) = facts.max_tokens
        && m > limits.max_tokens_cap
    {
        return Err(EdgeError::Invalid(format!(
            "max_tokens: {m} is above this gateway's limit of {}",
            limits.max_tokens_cap
        )));
    }
    if let Some(n) = map.get("n").and_then(Value::as_u64)
        && n > limits.max_n
    {
        return Err(EdgeError::Invalid(format!(
            "n: {n} is above this gateway's limit of {}",
            limits.max_n
        )));
    }
    if facts.model != AUTO_MODEL && !crate::keys::allows(&key, &facts.model) {
        return Err(EdgeError::ModelNotAllowed(facts.model));
    }
    // The request's strategy, else the key's default, else (in the plan) the route's.
    let strategy = strategy_hint(headers, hints.as_ref())?
        .or_else(|| key.strategy.as_deref().and_then(Strategy::parse));
    // The routing set this request uses from start to end, even if it is swapped meanwhile.
    let routing = app.routing();
    let now = app.clock.now();
    let options = PlanOptions {
        strategy,
        constraints: constraint_hints(headers, hints.as_ref())?,
        // The key's limits: a request can tighten them, never loosen them.
        policy: crate::routing::constraints_of(&key.limits),
    };
    // The cluster-wide view (every node's reports merged), read as one snapshot.
    let cluster = app.stats.snapshot();
    let view = |t: &switchyard_router::Target| match routing.providers.get(&t.provider) {
        Some(p) => {
            let snap = p.snapshot();
            let local = TargetView {
                available: p.gate.available_for_plan(now),
                supports: p.supports(endpoint),
                in_flight: p.gate.in_flight(),
                latency_p50_us: snap.total_us.p50,
                latency_samples: snap.window_requests,
            };
            let price = routing
                .accounting
                .get(&t.provider, &t.upstream_model)
                .and_then(|a| a.price);
            cluster
                .summary
                .target_state(t, local, price, &p.config.region)
        }
        None => TargetState::default(),
    };
    let planned = if facts.model == AUTO_MODEL {
        // `auto`: classify the request into a tier and take the cheapest route that fits.
        let request = RequestFacts::from_prompt(
            &prompt_text(&map),
            map.get("tools").is_some_and(|t| !t.is_null()),
            facts.max_tokens,
        );
        plan_auto(&routing.routes, &request, &options, &view, &mut rand::rng()).and_then(|auto| {
            if crate::keys::allows(&key, &auto.model) {
                Ok(auto.candidates)
            } else {
                Err(RoutingError::UnknownModel(auto.model))
            }
        })
    } else {
        plan_with(
            &routing.routes,
            &facts.model,
            &options,
            &view,
            &mut rand::rng(),
        )
    };
    let candidates = planned.map_err(|e| match e {
        RoutingError::UnknownModel(m) => EdgeError::UnknownModel(m),
        RoutingError::Unsupported(m) => EdgeError::Unsupported(m),
        other @ RoutingError::NoAllowedTarget { .. } => {
            EdgeError::NoAllowedTarget(other.to_string())
        }
    })?;
    let body_len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let prompt_estimate_tokens = body_len.div_ceil(BYTES_PER_TOKEN_ESTIMATE);
    let req = DispatchRequest {
        request_id: rid,
        endpoint,
        stream: facts.stream,
        client_include_usage: facts.include_usage,
        est_tokens: prompt_estimate_tokens + facts.max_tokens.unwrap_or(limits.default_max_tokens),
        prompt_estimate_tokens,
    };
    // Cluster-wide key limits, counted with the request's token upper bound.
    let token_bound =
        body_len.saturating_add(facts.max_tokens.unwrap_or(limits.default_max_tokens));
    let rate_hold = app
        .rates
        .admit(&key, token_bound)
        .await
        .map_err(|e| match e {
            RateError::Limited { retry_after_s } => EdgeError::KeyRateLimited { retry_after_s },
            RateError::CutOff { reason } => EdgeError::CutOff { reason },
        })?;
    // The guard: debit an upper bound of this request's cost from the budgets it spends from.
    let scopes = budget_scopes(app, &key);
    let admission = if scopes.is_empty() {
        None
    } else {
        if endpoint == Endpoint::Chat
            && !map.contains_key("max_tokens")
            && !map.contains_key("max_completion_tokens")
        {
            // The output bound needs a cap the upstream honours.
            map.insert("max_tokens".into(), Value::from(limits.default_max_tokens));
        }
        let n = map.get("n").and_then(Value::as_u64).unwrap_or(1).max(1);
        let completion_bound = facts
            .max_tokens
            .unwrap_or(limits.default_max_tokens)
            .saturating_mul(n);
        let bound = cost_bound(&routing, &candidates, body_len, completion_bound);
        Some(app.guard.admit(&scopes, bound).await.map_err(|e| match e {
            GuardError::Exhausted { scope } => EdgeError::BudgetExhausted { scope },
            GuardError::CutOff { reason } => EdgeError::CutOff { reason },
        })?)
    };
    let request_tags = tags(headers, hints.as_ref());
    let spend = |cost: u64, model: &str| SpendEntry {
        request_id: rid.to_owned(),
        key_id: key.id.clone(),
        team: key.team.clone(),
        model: model.to_owned(),
        tags: request_tags.clone(),
        cost_micros: cost,
        leases: Vec::new(),
    };
    let served = match dispatch(&routing, app, &req, &candidates, &mut map).await {
        Ok(s) => s,
        Err(e) => {
            if let Some(adm) = admission {
                app.guard.finish(adm, spend(0, &facts.model));
            }
            if let Some(hold) = &rate_hold {
                app.rates.refund_tokens(hold, 0);
            }
            return Err(e);
        }
    };
    let account = routing
        .accounting
        .get(&served.provider, &served.upstream_model)
        .cloned();
    match served.result {
        CallOk::Complete { body, usage } => {
            let cost = account.as_ref().map(|a| a.cost(usage)).unwrap_or_default();
            if let Some(a) = &account {
                a.record_ok(usage, cost);
            }
            if let Some(adm) = admission {
                app.guard.finish(adm, spend(cost.0, &served.public_model));
            }
            if let Some(hold) = &rate_hold {
                app.rates
                    .refund_tokens(hold, usage.prompt_tokens + usage.completion_tokens);
            }
            let mut resp = Response::new(Body::from(body));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers::insert(
                h,
                app,
                &headers::Served {
                    request_id: rid,
                    provider: served.provider.as_str(),
                    model: &served.upstream_model,
                    attempts: served.attempts,
                    cost_micros: Some(cost.0),
                },
            );
            Ok(resp)
        }
        CallOk::Stream(mut stream) => {
            let request_id = rid.to_owned();
            let guard = Arc::clone(&app.guard);
            let entry = admission.map(|adm| (adm, spend(0, &served.public_model)));
            let rates = rate_hold.map(|hold| (Arc::clone(app), hold));
            stream.on_end(Box::new(move |end: StreamEnd| {
                if let Some((app, hold)) = &rates {
                    app.rates
                        .refund_tokens(hold, end.usage.prompt_tokens + end.usage.completion_tokens);
                }
                let cost = account
                    .as_ref()
                    .map(|a| a.cost(end.usage))
                    .unwrap_or_default();
                if let Some((adm, mut e)) = entry {
                    e.cost_micros = cost.0;
                    guard.finish(adm, e);
                }
                if let Some(a) = account {
                    if end.class == OutcomeClass::Ok {
                        a.record_ok(end.usage, cost);
                    } else {
                        a.record_failed(end.usage, cost);
                    }
                    tracing::debug!(
                        request_id,
                        cost_micros = cost.0,
                        class = end.class.as_str(),
                        client_gone = end.client_gone,
                        "stream ended"
                    );
                }
            }));
            let mut resp = Response::new(Body::from_stream(*stream));
            *resp.status_mut() = StatusCode::OK;
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            headers::insert(
                h,
                app,
                &headers::Served {
                    request_id: rid,
                    provider: served.provider.as_str(),
                    model: &served.upstream_model,
                    attempts: served.attempts,
                    cost_micros: None,
                },
            );
            Ok(resp)
        }
    }
}

/// The budgets a key spends from: its own and its team's, when set.
fn budget_scopes(app: &App, key: &KeyInfo) -> Vec<Scope> {
    let state = match app.control.state().read() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    };
    let mut scopes = Vec::new();
    let own = Scope::Key(key.id.clone());
    if state.budgets.contains_key(&own.to_string()) {
        scopes.push(own);
    }
    if let Some(t) = &key.team {
        let team = Scope::Team(t.clone());
        if state.budgets.contains_key(&team.to_string()) {
            scopes.push(team);
        }
    }
    scopes
}

/// An upper bound of what the request can cost on any of its candidates: prompt tokens are
/// bounded by the body's bytes (no tokenizer yields more than one token per byte), completion
/// tokens by `max_tokens × n`, each at the highest price among the candidates.
fn cost_bound(
    routing: &crate::routing::Routing,
    candidates: &[switchyard_router::Candidate],
    body_bytes: u64,
    completion_tokens: u64,
) -> u64 {
    let mut price = switchyard_core::Price::default();
    for c in candidates {
        if let Some(p) = routing
            .accounting
            .get(&c.target.provider, &c.target.upstream_model)
            .and_then(|a| a.price)
        {
            price.input_micros_per_mtok = price.input_micros_per_mtok.max(p.input_micros_per_mtok);
            price.output_micros_per_mtok =
                price.output_micros_per_mtok.max(p.output_micros_per_mtok);
        }
    }
    price.cost(body_bytes, completion_tokens).0
}

/// Metadata tags from `x-switchyard-tags: k=v,k2=v2` or the body's `switchyard.tags`.
fn tags(headers: &HeaderMap, hints: Option<&Value>) -> Vec<String> {
    /// At most this many tags per request, so a client cannot bloat the spend report.
    const MAX_TAGS: usize = 16;
    let mut out: Vec<String> = Vec::new();
    if let Some(h) = headers
        .get("x-switchyard-tags")
        .and_then(|v| v.to_str().ok())
    {
        out.extend(
            h.split(',')
                .map(str::trim)
                .filter(|t| t.contains('='))
                .map(str::to_owned),
        );
    }
    match hints.and_then(|h| h.get("tags")) {
        Some(Value::Object(m)) => out.extend(m.iter().map(|(k, v)| {
            format!(
                "{k}={}",
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            )
        })),
        Some(Value::String(s)) => out.extend(
            s.split(',')
                .map(str::trim)
                .filter(|t| t.contains('='))
                .map(str::to_owned),
        ),
        _ => {}
    }
    out.truncate(MAX_TAGS);
    out
}

/// Reads the body up to `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, EdgeError> {
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(EdgeError::BodyTooLarge(limit)),
        Err(e) => Err(EdgeError::BadJson(format!("could not read the body: {e}"))),
    }
}

fn facts(endpoint: Endpoint, map: &Map<String, Value>) -> Result<Facts, EdgeError> {
    let invalid = |e: switchyard_wire::WireError| match e {
        switchyard_wire::WireError::Json(m) => EdgeError::BadJson(m),
        other => EdgeError::Invalid(other.to_string()),
    };
    Ok(match endpoint {
        Endpoint::Chat => {
            let f = switchyard_wire::openai::chat_facts(map).map_err(invalid)?;
            Facts {
                model: f.model,
                stream: f.stream,
                include_usage: f.include_usage,
                max_tokens: f.max_tokens,
            }
        }
        Endpoint::Embeddings => {
            let f = switchyard_wire::openai::embeddings_facts(map).map_err(invalid)?;
            Facts {
                model: f.model,
                stream: false,
                include_usage: false,
                max_tokens: Some(0),
            }
        }
        Endpoint::Messages => {
            let f = switchyard_wire::anthropic::messages_facts(map).map_err(invalid)?;
            Facts {
                model: f.model,
                stream: f.stream,
                include_usage: false,
                max_tokens: Some(f.max_tokens),
            }
        }
    })
}

/// The request's prompt text (system and message contents, text parts only), for `auto`.
fn prompt_text(map: &Map<String, Value>) -> String {
    fn push(out: &mut String, v: &Value) {
        match v {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Array(parts) => {
                for p in parts {
                    if let Some(t) = p.get("text") {
                        push(out, t);
                    } else if p.is_string() {
                        push(out, p);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    if let Some(system) = map.get("system") {
        push(&mut out, system);
    }
    for m in map
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(c) = m.get("content") {
            push(&mut out, c);
        }
    }
    out
}

/// Routing constraints from `x-switchyard-*` headers (max price, max p95, regions, residency)
/// or the same names (with `_` or `-`) under the body's `switchyard` field.
fn constraint_hints(headers: &HeaderMap, hints: Option<&Value>) -> Result<Constraints, EdgeError> {
    let mut c = Constraints::default();
    for (name, value) in headers {
        if name.as_str().starts_with("x-switchyard-")
            && let Ok(v) = value.to_str()
        {
            c.apply_hint(name.as_str(), v)
                .map_err(|e| EdgeError::Invalid(e.to_string()))?;
        }
    }
    if let Some(Value::Object(m)) = hints {
        for (k, v) in m {
            if k == "strategy" || k == "tags" {
                continue;
            }
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            let header = format!("x-switchyard-{}", k.replace('_', "-"));
            let known = c
                .apply_hint(&header, &value)
                .map_err(|e| EdgeError::Invalid(e.to_string()))?;
            if !known {
                return Err(EdgeError::Invalid(format!(
                    "switchyard.{k}: unknown routing hint"
                )));
            }
        }
    }
    Ok(c)
}

/// The strategy asked for in `x-switchyard-strategy` or the body's `switchyard.strategy`.
fn strategy_hint(
    headers: &HeaderMap,
    hints: Option<&Value>,
) -> Result<Option<Strategy>, EdgeError> {
    let raw = headers
        .get("x-switchyard-strategy")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            hints
                .and_then(|h| h.get("strategy"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    match raw {
        None => Ok(None),
        Some(s) => Strategy::parse(&s)
            .map(Some)
            .ok_or_else(|| EdgeError::Invalid(format!("unknown routing strategy {s:?} (expected priority, weighted, least-busy, latency, cost or balanced)"))),
    }
}

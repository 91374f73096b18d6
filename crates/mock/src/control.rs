//! The control API under `/_mock`: faults, timing, ledger and stats.
//!
//! Tests and `switchyard cluster up` drive the mock through this API over
//! real HTTP, the same way users do. It needs no key, is never faulted, and
//! keeps working while `refuse` resets API connections, so a test can always
//! undo what it set.
//!
//! | method and path | does |
//! | --- | --- |
//! | `GET /_mock/faults` | the installed fault set |
//! | `POST /_mock/faults` | replaces the fault set, returns it |
//! | `DELETE /_mock/faults` | clears all faults, returns the empty set |
//! | `GET`, `POST /_mock/config` | reads or changes `ttft_ms` / `per_token_ms` |
//! | `GET /_mock/ledger` | `{"total_billed_micros", "entries": [...]}` |
//! | `DELETE /_mock/ledger` | clears the ledger |
//! | `GET /_mock/stats` | `{"requests": N}`, API requests received |
//! | `DELETE /_mock/stats` | resets the count |
//! | `GET /_mock/last_request` | `{"path", "headers", "body"}` of the last API request (credentials shown as `***`) |

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::body::{MockBody, json_response};
use crate::faults::FaultSpec;
use crate::state::Shared;

/// The body of `POST /_mock/config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimingUpdate {
    ttft_ms: Option<u64>,
    per_token_ms: Option<u64>,
}

/// Largest control request body; control bodies are a few fields.
const MAX_CONTROL_BODY_BYTES: usize = 64 * 1024;

/// Answers one control request.
pub(crate) async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<MockBody> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_CONTROL_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("reading body failed: {err}"),
            );
        }
    };
    let path = parts.uri.path().trim_end_matches('/');
    match (&parts.method, path) {
        (&Method::GET, "/_mock/faults") => ok(&shared.faults.spec()),
        (&Method::POST, "/_mock/faults") => match parse::<FaultSpec>(&body) {
            Ok(spec) => match shared.faults.install(spec) {
                Ok(installed) => {
                    tracing::info!(mock = %shared.config.name, faults = ?installed, "mock faults set");
                    ok(&installed)
                }
                Err(err) => error(StatusCode::BAD_REQUEST, &err.to_string()),
            },
            Err(message) => error(StatusCode::BAD_REQUEST, &message),
        },
        (&Method::DELETE, "/_mock/faults") => {
            tracing::info!(mock = %shared.config.name, "mock faults cleared");
            ok(&shared.faults.clear())
        }
        (&Method::GET, "/_mock/config") => timing(shared),
        (&Method::POST, "/_mock/config") => match parse::<TimingUpdate>(&body) {
            Ok(update) => {
                shared.set_timing(update.ttft_ms, update.per_token_ms);
                timing(shared)
            }
            Err(message) => error(StatusCode::BAD_REQUEST, &message),
        },
        (&Method::GET, "/_mock/ledger") => ok(&shared.ledger.view()),
        (&Method::GET, "/_mock/last_request") => ok(&shared.last_request()),
        (&Method::DELETE, "/_mock/ledger") => {
            shared.ledger.clear();
            ok(&shared.ledger.view())
        }
        (&Method::GET, "/_mock/stats") => {
            json_response(StatusCode::OK, &json!({"requests": shared.requests()}))
        }
        (&Method::DELETE, "/_mock/stats") => {
            shared.reset_requests();
            json_response(StatusCode::OK, &json!({"requests": shared.requests()}))
        }
        _ => error(
            StatusCode::NOT_FOUND,
            &format!("no control route {} {}", parts.method, parts.uri.path()),
        ),
    }
}

/// Parses a JSON control body; an empty body is the type's default.
fn parse<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|err| format!("invalid control body: {err}"))
}

fn timing(shared: &Shared) -> Response<MockBody> {
    let timing = shared.timing();
    json_response(
        StatusCode::OK,
        &json!({
            "ttft_ms": timing.ttft.as_millis(),
            "per_token_ms": timing.per_token.as_millis(),
        }),
    )
}

fn ok(value: &impl serde::Serialize) -> Response<MockBody> {
    match serde_json::to_value(value) {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    }
}

/// A control error, in OpenAI's error shape like most of the mock's answers.
fn error(status: StatusCode, message: &str) -> Response<MockBody> {
    let body: Value = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}});
    json_response(status, &body)
}

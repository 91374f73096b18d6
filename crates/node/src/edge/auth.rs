//! Reading the presented virtual key: `Authorization: Bearer <key>` (OpenAI clients) or
//! `x-api-key: <key>` (Anthropic clients). The key is only ever digested, never logged.

use http::HeaderMap;

use crate::edge::error::EdgeError;
use crate::keys::{AuthError, KeyInfo};
use crate::node::App;

/// The key's rules, or why it was refused.
///
/// # Errors
/// [`EdgeError::MissingKey`] or [`EdgeError::InvalidKey`].
pub fn authenticate(app: &App, headers: &HeaderMap) -> Result<KeyInfo, EdgeError> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let presented = bearer.or_else(|| {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    });
    app.keys
        .authenticate(presented, app.clock.unix_s())
        .map_err(|e| match e {
            AuthError::Missing => EdgeError::MissingKey,
            AuthError::Unknown => EdgeError::InvalidKey("unknown key"),
            AuthError::Revoked => EdgeError::InvalidKey("key revoked"),
            AuthError::Expired => EdgeError::InvalidKey("key expired"),
        })
}

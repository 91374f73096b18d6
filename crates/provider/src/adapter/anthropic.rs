//! URL and auth for Anthropic's native Messages API.

use http::HeaderValue;
use http::request::Builder;

use crate::config::ProviderConfig;

/// The API version we speak; the Messages API has been stable under it since 2023.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// `{base}/messages`.
pub fn uri(cfg: &ProviderConfig) -> String {
    format!("{}{}/messages", cfg.base.origin(), cfg.base.path)
}

/// `x-api-key` (when configured) and `anthropic-version`.
pub fn auth(req: Builder, cfg: &ProviderConfig) -> Builder {
    let req = req.header(
        "anthropic-version",
        HeaderValue::from_static(ANTHROPIC_VERSION),
    );
    match cfg
        .api_key
        .as_ref()
        .and_then(|k| HeaderValue::from_str(k.expose()).ok())
    {
        Some(mut v) => {
            v.set_sensitive(true);
            req.header("x-api-key", v)
        }
        None => req,
    }
}

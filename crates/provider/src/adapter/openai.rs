//! URLs and auth for OpenAI-compatible upstreams (OpenAI, Groq, Together, Mistral, vLLM,
//! Ollama) and for Azure OpenAI's deployment URL form.

use http::request::Builder;
use http::{HeaderValue, header};

use crate::call::Endpoint;
use crate::config::ProviderConfig;

fn path_for(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Chat | Endpoint::Messages => "/chat/completions",
        Endpoint::Embeddings => "/embeddings",
    }
}

/// `{base}/chat/completions` or `{base}/embeddings`.
pub fn uri(cfg: &ProviderConfig, endpoint: Endpoint) -> String {
    format!(
        "{}{}{}",
        cfg.base.origin(),
        cfg.base.path,
        path_for(endpoint)
    )
}

/// `{base}/openai/deployments/{deployment}/chat/completions?api-version=…`. The deployment is
/// the route's upstream model name; it is percent-encoded conservatively.
pub fn azure_uri(
    cfg: &ProviderConfig,
    endpoint: Endpoint,
    deployment: &str,
    api_version: &str,
) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "{}{}/openai/deployments/{}{}?api-version={}",
        cfg.base.origin(),
        cfg.base.path,
        enc(deployment),
        path_for(endpoint),
        enc(api_version)
    )
}

/// `Authorization: Bearer …` when a key is configured (local servers often need none).
pub fn auth(req: Builder, cfg: &ProviderConfig) -> Builder {
    match cfg
        .api_key
        .as_ref()
        .and_then(|k| HeaderValue::from_str(&format!("Bearer {}", k.expose())).ok())
    {
        Some(mut v) => {
            v.set_sensitive(true);
            req.header(header::AUTHORIZATION, v)
        }
        None => req,
    }
}

/// Azure's `api-key` header.
pub fn azure_auth(req: Builder, cfg: &ProviderConfig) -> Builder {
    match cfg
        .api_key
        .as_ref()
        .and_then(|k| HeaderValue::from_str(k.expose()).ok())
    {
        Some(mut v) => {
            v.set_sensitive(true);
            req.header("api-key", v)
        }
        None => req,
    }
}

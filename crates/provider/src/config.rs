//! A provider's configuration: the raw TOML section ([`ProviderConfigToml`]) and the validated
//! form ([`ProviderConfig`]) the actor and adapters use. Validation reports every problem with
//! its TOML path, not just the first.

use std::collections::BTreeMap;
use std::time::Duration;

use switchyard_core::{Price, ProviderName, Secret};

/// Which wire format and URL scheme the upstream speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    /// Anything on the OpenAI wire format: OpenAI, Groq, Together, Mistral, vLLM, Ollama.
    /// Paths are `{base_url}/chat/completions` etc., where `base_url` ends in `/v1` by convention.
    OpenAi,
    /// Azure OpenAI: `{base_url}/openai/deployments/{model}/chat/completions?api-version=…`,
    /// authenticated with an `api-key` header.
    Azure {
        /// The `api-version` query value.
        api_version: String,
    },
    /// Anthropic's native Messages API: `{base_url}/messages`, `x-api-key` and `anthropic-version`.
    Anthropic,
}

/// The raw `[[providers]]` section.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfigToml {
    /// Unique name, used in routes, headers and metrics.
    pub name: String,
    /// `openai` (any OpenAI-compatible API), `azure` or `anthropic`.
    pub kind: String,
    /// Base URL including the version segment, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Name of the environment variable holding the API key (never the key itself).
    pub api_key_env: Option<String>,
    /// Azure only: the `api-version` query value.
    pub api_version: Option<String>,
    /// Allows loopback and private addresses (self-hosted models, the mock fleet).
    pub internal: bool,
    /// Region label for residency constraints.
    pub region: Option<String>,
    /// Requests per minute the provider allows this node (0 = unlimited).
    pub rpm: u64,
    /// Tokens per minute the provider allows this node (0 = unlimited).
    pub tpm: u64,
    /// Concurrent requests at most (0 = unlimited).
    pub max_in_flight: u64,
    /// Timeout to establish a connection.
    pub connect_timeout_ms: Option<u64>,
    /// Timeout from sending the request to the first byte of the response (for streams: the
    /// first event).
    pub first_byte_timeout_ms: Option<u64>,
    /// Timeout for the whole call.
    pub total_timeout_ms: Option<u64>,
    /// Consecutive provider failures that open the breaker.
    pub failure_threshold: Option<u32>,
    /// How long the breaker stays open before probing.
    pub open_ms: Option<u64>,
    /// Requests admitted while half-open.
    pub half_open_probes: Option<u32>,
    /// Per-model price overrides, in micro-dollars per million tokens.
    pub models: Vec<ModelPriceToml>,
    /// The API key itself, when it comes from the replicated state (unsealed) rather than from
    /// `api_key_env`. Never read from TOML.
    #[serde(skip)]
    pub api_key_value: Option<Secret<String>>,
}

/// A per-model price override.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPriceToml {
    /// The upstream model name.
    pub name: String,
    /// Micro-dollars per million input tokens.
    pub input_micros_per_mtok: u64,
    /// Micro-dollars per million output tokens.
    pub output_micros_per_mtok: u64,
}

/// A validated provider.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// Unique name.
    pub name: ProviderName,
    /// Wire format and URL scheme.
    pub kind: ProviderKind,
    /// Parsed base URL.
    pub base: BaseUrl,
    /// The key sent upstream, when the provider needs one.
    pub api_key: Option<Secret<String>>,
    /// Loopback and private addresses allowed.
    pub internal: bool,
    /// Region label.
    pub region: String,
    /// Requests per minute allowed (0 = unlimited).
    pub rpm: u64,
    /// Tokens per minute allowed (0 = unlimited).
    pub tpm: u64,
    /// Concurrency limit (0 = unlimited).
    pub max_in_flight: u64,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// First-byte timeout.
    pub first_byte_timeout: Duration,
    /// Whole-call timeout.
    pub total_timeout: Duration,
    /// Breaker settings.
    pub breaker: BreakerConfig,
    /// Per-model price overrides.
    pub prices: BTreeMap<String, Price>,
}

/// Circuit-breaker settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive provider failures that open the breaker.
    pub failure_threshold: u32,
    /// First open period; doubled after each failed half-open round, up to [`MAX_OPEN`].
    pub open: Duration,
    /// Probes admitted while half-open.
    pub half_open_probes: u32,
}

/// Five consecutive failures: enough to ignore a single blip, few enough that a dead provider
/// costs a handful of failed attempts (each of which is retried elsewhere).
const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
/// Two seconds open before the first probe: long enough to stop hammering, short enough that a
/// recovered provider returns quickly.
const DEFAULT_OPEN_MS: u64 = 2_000;
/// One probe at a time while half-open: the least load on a provider that may still be down.
const DEFAULT_HALF_OPEN_PROBES: u32 = 1;
/// Upper bound for the doubled open period.
pub const MAX_OPEN: Duration = Duration::from_secs(60);
/// Connecting should take a round trip or two; 3 s covers a slow TLS handshake far away.
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3_000;
/// Large models can take tens of seconds to the first token under load.
const DEFAULT_FIRST_BYTE_TIMEOUT_MS: u64 = 60_000;
/// Long generations stream for minutes.
const DEFAULT_TOTAL_TIMEOUT_MS: u64 = 600_000;

/// A base URL split into the parts the upstream client needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    /// `http` or `https`.
    pub https: bool,
    /// Host name or IP literal.
    pub host: String,
    /// Port (default by scheme).
    pub port: u16,
    /// Path prefix without a trailing slash, e.g. `/v1`.
    pub path: String,
}

impl BaseUrl {
    /// Parses `http(s)://host[:port][/path]`. Userinfo, queries and fragments are refused.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (https, rest) = if let Some(r) = raw.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = raw.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("must start with http:// or https://".into());
        };
        if rest.contains(['?', '#', '@']) {
            return Err("must not contain userinfo, a query or a fragment".into());
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            // IPv6 literal: [::1]:8080
            let (h, after) = h.split_once(']').ok_or("unclosed [ in host")?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| "invalid port")?,
                None => default_port,
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| "invalid port")?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err("has no host".into());
        }
        Ok(Self {
            https,
            host,
            port,
            path: path.to_owned(),
        })
    }

    /// `scheme://host:port`, for building request URIs.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl ProviderConfigToml {
    /// Validates this section, appending each problem (prefixed with `path`) to `errors`.
    /// `env` looks up environment variables, so tests need not touch the real environment.
    pub fn validate(
        self,
        path: &str,
        env: &dyn Fn(&str) -> Option<String>,
        errors: &mut Vec<String>,
    ) -> Option<ProviderConfig> {
        let start = errors.len();
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            errors.push(format!(
                "{path}.name: must be non-empty and made of letters, digits, '-', '_' or '.'"
            ));
        }
        let kind = match self.kind.as_str() {
            "openai" => ProviderKind::OpenAi,
            "anthropic" => ProviderKind::Anthropic,
            "azure" => match self.api_version {
                Some(v) if !v.is_empty() => ProviderKind::Azure { api_version: v },
                _ => {
                    errors.push(format!("{path}.api_version: required for kind = \"azure\""));
                    ProviderKind::OpenAi
                }
            },
            other => {
                errors.push(format!(
                    "{path}.kind: unknown kind {other:?} (expected openai, azure or anthropic)"
                ));
                ProviderKind::OpenAi
            }
        };
        let base = BaseUrl::parse(&self.base_url)
            .map_err(|e| errors.push(format!("{path}.base_url: {e}")))
            .ok();
        let api_key = match (&self.api_key_value, &self.api_key_env) {
            (Some(v), _) => Some(v.clone()),
            (None, None) => None,
            (None, Some(var)) => match env(var) {
                Some(v) if !v.is_empty() => Some(Secret::new(v)),
                _ => {
                    errors.push(format!(
                        "{path}.api_key_env: environment variable {var} is not set"
                    ));
                    None
                }
            },
        };
        let positive = |v: Option<u64>, d: u64, field: &str, errors: &mut Vec<String>| match v {
            Some(0) => {
                errors.push(format!("{path}.{field}: must be greater than 0"));
                d
            }
            Some(v) => v,
            None => d,
        };
        let connect_ms = positive(
            self.connect_timeout_ms,
            DEFAULT_CONNECT_TIMEOUT_MS,
            "connect_timeout_ms",
            errors,
        );
        let first_ms = positive(
            self.first_byte_timeout_ms,
            DEFAULT_FIRST_BYTE_TIMEOUT_MS,
            "first_byte_timeout_ms",
            errors,
        );
        let total_ms = positive(
            self.total_timeout_ms,
            DEFAULT_TOTAL_TIMEOUT_MS,
            "total_timeout_ms",
            errors,
        );
        let threshold = positive(
            self.failure_threshold.map(u64::from),
            u64::from(DEFAULT_FAILURE_THRESHOLD),
            "failure_threshold",
            errors,
        );
        let open_ms = positive(self.open_ms, DEFAULT_OPEN_MS, "open_ms", errors);
        let probes = positive(
            self.half_open_probes.map(u64::from),
            u64::from(DEFAULT_HALF_OPEN_PROBES),
            "half_open_probes",
            errors,
        );
        let mut prices = BTreeMap::new();
        for (i, m) in self.models.into_iter().enumerate() {
            if m.name.is_empty() {
                errors.push(format!("{path}.models[{i}].name: must not be empty"));
            }
            prices.insert(
                m.name,
                Price {
                    input_micros_per_mtok: m.input_micros_per_mtok,
                    output_micros_per_mtok: m.output_micros_per_mtok,
                },
            );
        }
        if errors.len() > start {
            return None;
        }
        Some(ProviderConfig {
            name: ProviderName::new(&self.name),
            kind,
            base: base?,
            api_key,
            internal: self.internal,
            region: self.region.unwrap_or_else(|| "default".to_owned()),
            rpm: self.rpm,
            tpm: self.tpm,
            max_in_flight: self.max_in_flight,
            connect_timeout: Duration::from_millis(connect_ms),
            first_byte_timeout: Duration::from_millis(first_ms),
            total_timeout: Duration::from_millis(total_ms),
            breaker: BreakerConfig {
                failure_threshold: u32::try_from(threshold).unwrap_or(u32::MAX),
                open: Duration::from_millis(open_ms),
                half_open_probes: u32::try_from(probes).unwrap_or(u32::MAX),
            },
            prices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_parse() {
        let b = BaseUrl::parse("https://api.openai.com/v1/").unwrap();
        assert_eq!(
            (b.https, b.host.as_str(), b.port, b.path.as_str()),
            (true, "api.openai.com", 443, "/v1")
        );
        let b = BaseUrl::parse("http://127.0.0.1:7001").unwrap();
        assert_eq!((b.port, b.path.as_str()), (7001, ""));
        let b = BaseUrl::parse("http://[::1]:9/v1").unwrap();
        assert_eq!(b.origin(), "http://[::1]:9");
        for bad in [
            "ftp://x",
            "http://",
            "http://u:p@host",
            "http://h/?q",
            "http://h:notaport",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let raw = ProviderConfigToml {
            name: "bad name".into(),
            kind: "azure".into(),
            base_url: "nope".into(),
            api_key_env: Some("NOT_SET_ANYWHERE".into()),
            open_ms: Some(0),
            ..Default::default()
        };
        let mut errors = vec![];
        assert!(
            raw.validate("providers[0]", &|_| None, &mut errors)
                .is_none()
        );
        let joined = errors.join("\n");
        for needle in [
            "providers[0].name",
            "providers[0].api_version",
            "providers[0].base_url",
            "providers[0].api_key_env",
            "providers[0].open_ms",
        ] {
            assert!(joined.contains(needle), "{needle} missing from {joined}");
        }
    }
}

//! Node configuration: the TOML file (`switchyard serve --config FILE`), composed from the
//! sections each crate owns, and its validated form. Every problem is reported with its TOML
//! path, all at once. The commented example is `deploy/switchyard.example.toml`, parsed by a
//! test so it never rots.

use std::net::SocketAddr;
use std::time::Duration;

use switchyard_core::{NodeId, PricingCatalog, Secret};
use switchyard_provider::ProviderConfigToml;
use switchyard_router::{RetryPolicy, RouteConfigToml, RouteTable};

use crate::keys::{KeyConfigToml, KeyStore};

/// The whole file, as written.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigToml {
    /// This node.
    pub node: NodeToml,
    /// Request limits.
    pub limits: LimitsToml,
    /// Retry budget.
    pub retry: RetryToml,
    /// Virtual keys (seeded from configuration at this stage).
    pub keys: Vec<KeyConfigToml>,
    /// Upstream providers.
    pub providers: Vec<ProviderConfigToml>,
    /// Routes (public model names).
    pub routes: Vec<RouteConfigToml>,
    /// The control plane (Raft) of this node.
    pub control: ControlToml,
}

/// `[control]`: this node's Raft membership and storage.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlToml {
    /// Where the Raft log, state and the generated cluster secret live (default
    /// `.switchyard/node-<id>`).
    pub data_dir: Option<String>,
    /// gRPC listen address for Raft and admin (default 127.0.0.1:9080).
    pub listen_grpc: Option<String>,
    /// Initialise the cluster with `members` if it has never been initialised (default: true
    /// when `members` is empty, i.e. a single-node cluster).
    pub bootstrap: Option<bool>,
    /// Initial voters (including this node); empty for a single-node cluster.
    pub members: Vec<MemberToml>,
    /// Environment variable holding an admin token seeded (role admin) at first bootstrap.
    pub admin_token_env: Option<String>,
    /// Mutual TLS for gRPC (Raft between nodes and admin); absent means plaintext.
    pub tls: Option<TlsToml>,
    /// Largest piece a snapshot is sent in to a lagging member (default 3 MiB: well under the
    /// gRPC message limit, and each piece is sent within the install-snapshot deadline).
    pub snapshot_chunk_bytes: Option<u64>,
}

/// `[control.tls]`: PEM files. Every node and every `ctl` presents a certificate signed by the
/// cluster's CA, and verifies the other side against it; a node therefore accepts Raft traffic
/// only from holders of a cluster certificate.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsToml {
    /// This node's certificate chain (server and client).
    pub cert_file: String,
    /// Its private key.
    pub key_file: String,
    /// The cluster CA that signs node and admin certificates.
    pub ca_file: String,
}

/// One initial voter.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberToml {
    /// Node id.
    pub id: u64,
    /// Its HTTP URL.
    pub http: String,
    /// Its gRPC URL.
    pub grpc: String,
}

/// `[node]`.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeToml {
    /// Node id, unique in the cluster (default 1).
    pub id: Option<u64>,
    /// HTTP listen address (default 127.0.0.1:8080).
    pub listen_http: Option<String>,
    /// Region label of this node.
    pub region: Option<String>,
    /// Environment variable holding the master key that seals provider credentials
    /// (`VERSION:HEX64[,…]`; default `SWITCHYARD_MASTER_KEY`).
    pub master_key_env: Option<String>,
    /// File holding the master key (outside the data directory), instead of the environment.
    pub master_key_file: Option<String>,
    /// Environment variable holding the cluster secret that keys are digested under.
    pub cluster_secret_env: Option<String>,
    /// Seconds to drain in-flight requests at shutdown.
    pub shutdown_grace_s: Option<u64>,
}

/// `[limits]`.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsToml {
    /// Largest request body accepted.
    pub max_body_bytes: Option<usize>,
    /// `max_tokens` sent when a client gives none and the upstream requires one.
    pub default_max_tokens: Option<u64>,
    /// Largest `max_tokens` a client may ask for.
    pub max_tokens_cap: Option<u64>,
    /// Largest `n` a client may ask for.
    pub max_n: Option<u64>,
}

/// `[retry]`.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryToml {
    /// Retries after the first attempt.
    pub max_retries: Option<u32>,
    /// First backoff.
    pub backoff_base_ms: Option<u64>,
    /// Backoff cap.
    pub backoff_max_ms: Option<u64>,
}

/// 4 MiB: a long multi-turn chat with tools is well under 1 MiB; images belong in URLs.
const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Anthropic requires `max_tokens`; 4096 is the common ceiling of current models' defaults.
const DEFAULT_MAX_TOKENS: u64 = 4096;
/// The largest output any current model produces in one call.
const DEFAULT_MAX_TOKENS_CAP: u64 = 128_000;
/// More than 8 choices per request is almost always a mistake that multiplies cost.
const DEFAULT_MAX_N: u64 = 8;
/// Ten seconds lets short calls finish; long streams are cut with an explicit error event.
const DEFAULT_SHUTDOWN_GRACE_S: u64 = 10;
/// Loopback by default: a node is exposed on purpose, not by accident.
const DEFAULT_LISTEN_HTTP: &str = "127.0.0.1:8080";
/// Loopback by default, like the HTTP edge.
const DEFAULT_LISTEN_GRPC: &str = "127.0.0.1:9080";

/// The validated configuration, immutable after start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Node id.
    pub node_id: NodeId,
    /// HTTP listen address.
    pub listen_http: SocketAddr,
    /// Region label.
    pub region: String,
    /// Secret keys are digested under; empty until start when the node keeps its own (see
    /// [`local_cluster_secret`]).
    pub cluster_secret: Secret<String>,
    /// Drain time at shutdown.
    pub shutdown_grace: Duration,
    /// Request limits.
    pub limits: Limits,
    /// Retry budget.
    pub retry: RetryPolicy,
    /// Keys as configured.
    pub keys: Vec<KeyConfigToml>,
    /// Pricing catalog with provider overrides applied per provider at lookup time.
    pub pricing: PricingCatalog,
    /// Control plane settings.
    pub control: ControlConfig,
    /// Providers as configured: seeded into a new cluster, then the replicated state rules.
    pub providers_toml: Vec<ProviderConfigToml>,
    /// Routes as configured: seeded into a new cluster likewise.
    pub routes_toml: Vec<RouteConfigToml>,
    /// Master key setting for sealing provider credentials (empty when none is configured).
    pub master_key: Secret<String>,
}

/// Validated `[control]`.
#[derive(Clone, Debug)]
pub struct ControlConfig {
    /// Data directory.
    pub data_dir: std::path::PathBuf,
    /// gRPC listen address.
    pub listen_grpc: SocketAddr,
    /// Initialise the cluster if needed.
    pub bootstrap: bool,
    /// Initial voters; empty means this node alone.
    pub members: std::collections::BTreeMap<u64, switchyard_control::NodeInfo>,
    /// Admin token seeded at first bootstrap.
    pub admin_token: Option<Secret<String>>,
    /// PEM contents for mutual TLS, read at validation.
    pub tls: Option<TlsPem>,
    /// Largest snapshot piece sent to a member.
    pub snapshot_chunk_bytes: u64,
}

/// The PEM contents of `[control.tls]`.
#[derive(Clone, Debug)]
pub struct TlsPem {
    /// Certificate chain.
    pub cert: Vec<u8>,
    /// Private key (secret: never logged; `Debug` prints its length only through `Secret`).
    pub key: Secret<Vec<u8>>,
    /// CA certificate.
    pub ca: Vec<u8>,
}

/// Validated request limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// `max_tokens` when absent.
    pub default_max_tokens: u64,
    /// Largest `max_tokens`.
    pub max_tokens_cap: u64,
    /// Largest `n`.
    pub max_n: u64,
}

/// Why configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable file.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or unknown fields.
    #[error("invalid configuration: {0}")]
    Toml(String),
    /// Every validation problem, one per line.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

impl ConfigToml {
    /// Parses TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Toml`] with the parser's message (which names the line).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))
    }

    /// Validates everything. `env` reads environment variables (injected for tests).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] listing every problem.
    pub fn validate(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let listen_http = self
            .node
            .listen_http
            .as_deref()
            .unwrap_or(DEFAULT_LISTEN_HTTP)
            .parse::<SocketAddr>()
            .unwrap_or_else(|_| {
                errors.push("node.listen_http: expected host:port, e.g. 127.0.0.1:8080".into());
                SocketAddr::from(([127, 0, 0, 1], 0))
            });
        if self.node.id == Some(0) {
            errors.push("node.id: must be greater than 0".into());
        }
        let node_id = self.node.id.unwrap_or(1);
        let data_dir = std::path::PathBuf::from(
            self.control
                .data_dir
                .clone()
                .unwrap_or_else(|| format!(".switchyard/node-{node_id}")),
        );
        let cluster_secret = match &self.node.cluster_secret_env {
            Some(var) => match env(var) {
                Some(v) if v.len() >= 16 => Secret::new(v),
                _ => {
                    errors.push(format!(
                        "node.cluster_secret_env: {var} must be set to at least 16 characters"
                    ));
                    Secret::new(String::new())
                }
            },
            // A single node may keep its own secret, generated once beside its data so digests
            // stay valid across restarts (resolved at start, so validation writes nothing). A
            // multi-node cluster must share one.
            None if self.control.members.len() > 1 => {
                errors.push("node.cluster_secret_env: required when control.members lists several nodes (every node digests keys under the same secret)".into());
                Secret::new(String::new())
            }
            None => Secret::new(String::new()),
        };
        let listen_grpc = self
            .control
            .listen_grpc
            .as_deref()
            .unwrap_or(DEFAULT_LISTEN_GRPC)
            .parse::<SocketAddr>()
            .unwrap_or_else(|_| {
                errors.push("control.listen_grpc: expected host:port, e.g. 127.0.0.1:9080".into());
                SocketAddr::from(([127, 0, 0, 1], 0))
            });
        let mut members = std::collections::BTreeMap::new();
        for (i, m) in self.control.members.iter().enumerate() {
            if m.id == 0 || m.http.is_empty() || m.grpc.is_empty() {
                errors.push(format!(
                    "control.members[{i}]: id (> 0), http and grpc are required"
                ));
            }
            if members
                .insert(
                    m.id,
                    switchyard_control::NodeInfo {
                        http: m.http.clone(),
                        grpc: m.grpc.clone(),
                    },
                )
                .is_some()
            {
                errors.push(format!("control.members[{i}].id: duplicate id {}", m.id));
            }
        }
        if !members.is_empty() && !members.contains_key(&node_id) {
            errors.push(format!(
                "control.members: does not list this node (id {node_id})"
            ));
        }
        let admin_token = match &self.control.admin_token_env {
            Some(var) => match env(var) {
                Some(v) if v.len() >= 16 => Some(Secret::new(v)),
                _ => {
                    errors.push(format!(
                        "control.admin_token_env: {var} must be set to at least 16 characters"
                    ));
                    None
                }
            },
            None => None,
        };
        let tls = self.control.tls.as_ref().and_then(|t| {
            let mut read = |field: &str, path: &str| match std::fs::read(path) {
                Ok(b) => Some(b),
                Err(e) => {
                    errors.push(format!("control.tls.{field}: cannot read {path}: {e}"));
                    None
                }
            };
            let cert = read("cert_file", &t.cert_file);
            let key = read("key_file", &t.key_file);
            let ca = read("ca_file", &t.ca_file);
            Some(TlsPem {
                cert: cert?,
                key: Secret::new(key?),
                ca: ca?,
            })
        });
        let control = ControlConfig {
            data_dir,
            listen_grpc,
            bootstrap: self
                .control
                .bootstrap
                .unwrap_or(self.control.members.is_empty()),
            members,
            admin_token,
            tls,
            snapshot_chunk_bytes: positive(
                self.control.snapshot_chunk_bytes,
                switchyard_control::DEFAULT_SNAPSHOT_CHUNK_BYTES,
                "control.snapshot_chunk_bytes",
                &mut errors,
            ),
        };
        let limits = Limits {
            max_body_bytes: positive_usize(
                self.limits.max_body_bytes,
                DEFAULT_MAX_BODY_BYTES,
                "limits.max_body_bytes",
                &mut errors,
            ),
            default_max_tokens: positive(
                self.limits.default_max_tokens,
                DEFAULT_MAX_TOKENS,
                "limits.default_max_tokens",
                &mut errors,
            ),
            max_tokens_cap: positive(
                self.limits.max_tokens_cap,
                DEFAULT_MAX_TOKENS_CAP,
                "limits.max_tokens_cap",
                &mut errors,
            ),
            max_n: positive(
                self.limits.max_n,
                DEFAULT_MAX_N,
                "limits.max_n",
                &mut errors,
            ),
        };
        let d = RetryPolicy::default();
        let retry = RetryPolicy {
            max_retries: self.retry.max_retries.unwrap_or(d.max_retries),
            backoff_base: self
                .retry
                .backoff_base_ms
                .map(Duration::from_millis)
                .unwrap_or(d.backoff_base),
            backoff_max: self
                .retry
                .backoff_max_ms
                .map(Duration::from_millis)
                .unwrap_or(d.backoff_max),
        };
        let providers_toml = self.providers.clone();
        let routes_toml = self.routes.clone();
        let master_key = match (
            &self.node.master_key_file,
            self.node
                .master_key_env
                .as_deref()
                .unwrap_or("SWITCHYARD_MASTER_KEY"),
        ) {
            (Some(file), _) => match std::fs::read_to_string(file) {
                Ok(k) => Secret::new(k.trim().to_owned()),
                Err(e) => {
                    errors.push(format!("node.master_key_file: cannot read {file}: {e}"));
                    Secret::new(String::new())
                }
            },
            (None, var) => Secret::new(env(var).unwrap_or_default()),
        };
        if let Err(e) = switchyard_control::sealing::Keyring::parse(&master_key) {
            errors.push(format!("node master key: {e}"));
        }
        // Providers and routes are validated here (so a bad file fails at start), but the node
        // routes on the replicated forms built in `crate::routing`; only the raw sections are
        // kept, for the first bootstrap's seed.
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.providers.into_iter().enumerate() {
            if !names.insert(p.name.clone()) {
                errors.push(format!(
                    "providers[{i}].name: duplicate provider {:?}",
                    p.name
                ));
            }
            let _ = p.validate(&format!("providers[{i}]"), env, &mut errors);
        }
        let _ = RouteTable::build(self.routes, &|p| names.contains(p), &mut errors);
        KeyStore::check(&self.keys, env, &mut errors);
        let pricing = PricingCatalog::builtin()
            .map_err(|e| ConfigError::Invalid(vec![format!("pricing catalog: {e}")]))?;
        if !errors.is_empty() {
            return Err(ConfigError::Invalid(errors));
        }
        Ok(Config {
            node_id: NodeId(node_id),
            listen_http,
            region: self.node.region.unwrap_or_else(|| "default".into()),
            cluster_secret,
            shutdown_grace: Duration::from_secs(
                self.node
                    .shutdown_grace_s
                    .unwrap_or(DEFAULT_SHUTDOWN_GRACE_S),
            ),
            limits,
            retry,
            keys: self.keys,
            pricing,
            control,
            providers_toml,
            routes_toml,
            master_key,
        })
    }
}

impl Config {
    /// Reads and validates a file, with environment variables from the process.
    ///
    /// # Errors
    /// [`ConfigError`] saying what is wrong and where.
    pub fn load(path: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        ConfigToml::parse(&text)?.validate(&|k| std::env::var(k).ok())
    }
}

/// Reads `data_dir/cluster.secret`, creating it (owner-only) with a fresh secret if absent.
pub fn local_cluster_secret(dir: &std::path::Path) -> std::io::Result<Secret<String>> {
    let path = dir.join("cluster.secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(Secret::new(s.trim().to_owned()));
    }
    std::fs::create_dir_all(dir)?;
    let secret = switchyard_core::secret::random_hex(32);
    std::fs::write(&path, &secret)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(Secret::new(secret))
}

fn positive(v: Option<u64>, d: u64, path: &str, errors: &mut Vec<String>) -> u64 {
    match v {
        Some(0) => {
            errors.push(format!("{path}: must be greater than 0"));
            d
        }
        Some(v) => v,
        None => d,
    }
}

fn positive_usize(v: Option<usize>, d: usize, path: &str, errors: &mut Vec<String>) -> usize {
    match v {
        Some(0) => {
            errors.push(format!("{path}: must be greater than 0"));
            d
        }
        Some(v) => v,
        None => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deploy_example_parses_and_validates() {
        let text = include_str!("../../../deploy/switchyard.example.toml");
        let cfg = ConfigToml::parse(text).unwrap();
        let env = |k: &str| match k {
            "OPENAI_API_KEY" | "ANTHROPIC_API_KEY" => Some("sk-test".to_owned()),
            "SWITCHYARD_CLUSTER_SECRET" => Some("0123456789abcdef0123".to_owned()),
            "SWITCHYARD_DEMO_KEY" => Some("sk-sy-demo-0123456789".to_owned()),
            "SWITCHYARD_ADMIN_TOKEN" => Some("sy-admin-0123456789abcdef".to_owned()),
            _ => None,
        };
        let cfg = cfg.validate(&env).unwrap();
        assert!(!cfg.providers_toml.is_empty());
        assert!(cfg.routes_toml.iter().any(|r| r.model == "gpt-4o-mini"));
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = r#"
            [node]
            listen_http = "nowhere"
            [limits]
            max_n = 0
            [[routes]]
            model = "m"
            targets = [{ provider = "ghost" }]
        "#;
        let err = ConfigToml::parse(text)
            .unwrap()
            .validate(&|_| None)
            .unwrap_err()
            .to_string();
        for needle in [
            "node.listen_http",
            "limits.max_n",
            "routes[0].targets[0].provider",
        ] {
            assert!(err.contains(needle), "{needle} not in {err}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(ConfigToml::parse("[node]\nlisten = \"x\"").is_err());
    }
}

//! Virtual keys as the edge sees them. The keys live in the replicated state (by HMAC digest);
//! the presented secret is digested under the cluster secret and looked up locally, never
//! stored, compared in the clear or logged. `[[keys]]` in the configuration seed the state at
//! the cluster's first bootstrap only.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use switchyard_control::{KeyRecord, KeyStatus, Op, State};
use switchyard_core::KeyDigester;

/// A `[[keys]]` entry.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfigToml {
    /// Stable id (default: the name).
    pub id: Option<String>,
    /// Human name.
    pub name: String,
    /// The key itself. Development only; prefer `key_env`.
    pub key: Option<String>,
    /// Environment variable holding the key.
    pub key_env: Option<String>,
    /// Team the key belongs to.
    pub team: Option<String>,
    /// Public models the key may use (empty = all).
    pub models: Vec<String>,
    /// Unix seconds after which the key is refused.
    pub expires_unix_s: Option<u64>,
}

/// Why a key was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No key presented.
    Missing,
    /// Not a key we know.
    Unknown,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
}

/// The key a request presented, as replicated.
pub type KeyInfo = KeyRecord;

/// Whether a key may use `model`.
pub fn allows(k: &KeyRecord, model: &str) -> bool {
    k.models.is_empty() || k.models.iter().any(|m| m == model)
}

/// Looks presented keys up in the replicated state.
pub struct KeyStore {
    digester: KeyDigester,
    state: Arc<RwLock<State>>,
}

fn key_value(k: &KeyConfigToml, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    match (&k.key, &k.key_env) {
        (Some(v), _) => Some(v.clone()),
        (None, Some(var)) => env(var),
        (None, None) => None,
    }
}

/// Shortest key accepted in configuration; shorter ones are guessable.
const MIN_KEY_CHARS: usize = 16;

impl KeyStore {
    /// A store reading `state`.
    pub fn new(digester: KeyDigester, state: Arc<RwLock<State>>) -> Self {
        Self { digester, state }
    }

    /// Checks `[[keys]]` entries, appending problems with their paths.
    pub fn check(
        keys: &[KeyConfigToml],
        env: &dyn Fn(&str) -> Option<String>,
        errors: &mut Vec<String>,
    ) {
        for (i, k) in keys.iter().enumerate() {
            if k.name.is_empty() {
                errors.push(format!("keys[{i}].name: must not be empty"));
            }
            match key_value(k, env) {
                Some(v) if v.len() >= MIN_KEY_CHARS => {}
                Some(_) => errors.push(format!(
                    "keys[{i}]: key must be at least {MIN_KEY_CHARS} characters"
                )),
                None if k.key_env.is_some() => errors.push(format!(
                    "keys[{i}].key_env: environment variable is not set"
                )),
                None => errors.push(format!("keys[{i}]: set key_env (or key, for development)")),
            }
        }
    }

    /// The commands that seed configured keys into a new cluster.
    pub fn seed_ops(
        &self,
        keys: &[KeyConfigToml],
        env: &dyn Fn(&str) -> Option<String>,
        now_ms: u64,
    ) -> Vec<Op> {
        keys.iter()
            .filter_map(|k| {
                let secret = key_value(k, env)?;
                Some(Op::CreateKey(KeyRecord {
                    id: k.id.clone().unwrap_or_else(|| k.name.clone()),
                    digest_hex: self.digester.digest(&secret).to_hex(),
                    prefix: format!("{}…", secret.chars().take(12).collect::<String>()),
                    name: k.name.clone(),
                    owner: None,
                    team: k.team.clone(),
                    models: k.models.clone(),
                    rpm: 0,
                    tpm: 0,
                    expires_at_ms: k.expires_unix_s.map(|s| s.saturating_mul(1000)),
                    tags: BTreeMap::new(),
                    status: KeyStatus::Active,
                    created_at_ms: now_ms,
                    strategy: None,
                    limits: switchyard_control::RoutingLimits::default(),
                }))
            })
            .collect()
    }

    /// Looks a presented key up.
    ///
    /// # Errors
    /// [`AuthError`] when it is missing, unknown, revoked or expired.
    pub fn authenticate(&self, presented: Option<&str>, now_ms: u64) -> Result<KeyInfo, AuthError> {
        let presented = presented
            .filter(|p| !p.is_empty())
            .ok_or(AuthError::Missing)?;
        let digest = self.digester.digest(presented).to_hex();
        let state = match self.state.read() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let k = state.key_by_digest(&digest).ok_or(AuthError::Unknown)?;
        if k.status == KeyStatus::Revoked {
            return Err(AuthError::Revoked);
        }
        if k.expires_at_ms.is_some_and(|e| now_ms >= e) {
            return Err(AuthError::Expired);
        }
        Ok(k.clone())
    }
}

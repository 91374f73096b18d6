//! Virtual keys as the edge sees them: a map from key digest to the key's rules. Keys are
//! seeded from configuration at this stage; the control plane will replace the source, not the
//! shape. The presented secret is digested (HMAC-SHA-256 under the cluster secret) and looked
//! up; it is never stored, compared in the clear, or logged.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use switchyard_core::{KeyDigest, KeyDigester, Secret};

/// A `[[keys]]` entry.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfigToml {
    /// Stable id shown to operators (default: the name).
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
    /// Marks the key revoked.
    pub revoked: bool,
    /// Unix seconds after which the key is refused.
    pub expires_unix_s: Option<u64>,
}

/// A key's rules.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    /// Stable id (safe to log).
    pub id: Arc<str>,
    /// Team, if any.
    pub team: Option<Arc<str>>,
    /// Allowed public models; `None` allows all.
    pub models: Option<HashSet<String>>,
    /// Revoked keys are refused.
    pub revoked: bool,
    /// Refused after this Unix second.
    pub expires_unix_s: Option<u64>,
}

impl KeyInfo {
    /// Whether the key may use `model`.
    pub fn allows(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|m| m.contains(model))
    }
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

/// Digest → key rules.
pub struct KeyStore {
    digester: KeyDigester,
    by_digest: HashMap<KeyDigest, Arc<KeyInfo>>,
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

    /// Builds the store from configured keys.
    pub fn from_config(
        cluster_secret: &Secret<String>,
        keys: &[KeyConfigToml],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let digester = KeyDigester::new(cluster_secret);
        let mut by_digest = HashMap::new();
        for k in keys {
            let Some(secret) = key_value(k, env) else {
                continue;
            };
            let info = KeyInfo {
                id: Arc::from(k.id.clone().unwrap_or_else(|| k.name.clone())),
                team: k.team.as_deref().map(Arc::from),
                models: (!k.models.is_empty()).then(|| k.models.iter().cloned().collect()),
                revoked: k.revoked,
                expires_unix_s: k.expires_unix_s,
            };
            by_digest.insert(digester.digest(&secret), Arc::new(info));
        }
        Self {
            digester,
            by_digest,
        }
    }

    /// Looks a presented key up.
    ///
    /// # Errors
    /// [`AuthError`] when it is missing, unknown, revoked or expired.
    pub fn authenticate(
        &self,
        presented: Option<&str>,
        now_unix_s: u64,
    ) -> Result<Arc<KeyInfo>, AuthError> {
        let presented = presented
            .filter(|p| !p.is_empty())
            .ok_or(AuthError::Missing)?;
        let info = self
            .by_digest
            .get(&self.digester.digest(presented))
            .ok_or(AuthError::Unknown)?;
        if info.revoked {
            return Err(AuthError::Revoked);
        }
        if info.expires_unix_s.is_some_and(|e| now_unix_s >= e) {
            return Err(AuthError::Expired);
        }
        Ok(Arc::clone(info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_authenticate_by_digest_with_their_rules() {
        let keys = vec![
            KeyConfigToml {
                name: "a".into(),
                key: Some("sk-sy-aaaaaaaaaaaaaaaa".into()),
                models: vec!["m1".into()],
                ..Default::default()
            },
            KeyConfigToml {
                name: "r".into(),
                key: Some("sk-sy-rrrrrrrrrrrrrrrr".into()),
                revoked: true,
                ..Default::default()
            },
            KeyConfigToml {
                name: "e".into(),
                key: Some("sk-sy-eeeeeeeeeeeeeeee".into()),
                expires_unix_s: Some(100),
                ..Default::default()
            },
        ];
        let s = KeyStore::from_config(&Secret::new("cluster-secret-123456".into()), &keys, &|_| {
            None
        });
        let a = s.authenticate(Some("sk-sy-aaaaaaaaaaaaaaaa"), 0).unwrap();
        assert!(a.allows("m1") && !a.allows("m2"));
        assert_eq!(s.authenticate(None, 0).unwrap_err(), AuthError::Missing);
        assert_eq!(
            s.authenticate(Some("sk-sy-nope"), 0).unwrap_err(),
            AuthError::Unknown
        );
        assert_eq!(
            s.authenticate(Some("sk-sy-rrrrrrrrrrrrrrrr"), 0)
                .unwrap_err(),
            AuthError::Revoked
        );
        assert!(s.authenticate(Some("sk-sy-eeeeeeeeeeeeeeee"), 99).is_ok());
        assert_eq!(
            s.authenticate(Some("sk-sy-eeeeeeeeeeeeeeee"), 100)
                .unwrap_err(),
            AuthError::Expired
        );
    }
}

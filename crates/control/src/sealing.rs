//! Sealing provider credentials before they enter the Raft log (DESIGN §6): ChaCha20-Poly1305
//! from `ring` under a master key that lives outside the data directory (environment or a file),
//! tagged with the key's version so the master key can rotate. Neither the log, snapshots nor
//! sled's files ever hold a provider key in the clear. The provider's name is the AEAD's
//! associated data, so a sealed key cannot be moved to another provider.

use std::collections::BTreeMap;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use switchyard_core::Secret;

/// A sealed secret as replicated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Which master key sealed it.
    pub key_version: u32,
    /// 96-bit nonce, hex.
    pub nonce_hex: String,
    /// Ciphertext and tag, hex.
    pub ciphertext_hex: String,
}

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The master key setting is malformed.
    #[error("invalid master key setting: {0}")]
    Config(String),
    /// No master key is configured on this node.
    #[error("no master key is configured (set SWITCHYARD_MASTER_KEY or node.master_key_file)")]
    NoKey,
    /// The sealed value names a key version this node does not have.
    #[error("sealed with master key version {0}, which this node does not have")]
    UnknownVersion(u32),
    /// Tampered, or sealed for another provider.
    #[error("sealed value does not open (wrong key, wrong provider or tampered)")]
    Open,
}

/// The master keys of a node, by version; the highest seals.
pub struct Keyring {
    keys: BTreeMap<u32, LessSafeKey>,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Keyring {
    /// Parses `VERSION:HEX64[,VERSION:HEX64…]` (or a bare `HEX64`, version 1). An empty setting
    /// gives an empty keyring (sealing then fails with [`SealError::NoKey`]).
    ///
    /// # Errors
    /// [`SealError::Config`] naming what is wrong (never the key).
    pub fn parse(setting: &Secret<String>) -> Result<Self, SealError> {
        let mut keys = BTreeMap::new();
        for part in setting
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (version, key_hex) = match part.split_once(':') {
                Some((v, k)) => (
                    v.parse::<u32>()
                        .map_err(|_| SealError::Config("key version must be a number".into()))?,
                    k,
                ),
                None => (1, part),
            };
            let bytes = unhex(key_hex).filter(|b| b.len() == 32).ok_or_else(|| {
                SealError::Config(format!("key version {version} must be 64 hex digits"))
            })?;
            let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
                .map_err(|_| SealError::Config("key rejected".into()))?;
            keys.insert(version, LessSafeKey::new(unbound));
        }
        Ok(Self { keys })
    }

    /// Whether any key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Seals `plaintext` for provider `name` with the newest key.
    ///
    /// # Errors
    /// [`SealError::NoKey`] without a master key.
    pub fn seal(&self, name: &str, plaintext: &Secret<String>) -> Result<Sealed, SealError> {
        let (version, key) = self.keys.iter().next_back().ok_or(SealError::NoKey)?;
        let nonce_bytes: [u8; 12] = rand::random();
        let mut buf = plaintext.expose().as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(name.as_bytes()),
            &mut buf,
        )
        .map_err(|_| SealError::Open)?;
        Ok(Sealed {
            key_version: *version,
            nonce_hex: hex(&nonce_bytes),
            ciphertext_hex: hex(&buf),
        })
    }

    /// Opens a sealed value for provider `name`.
    ///
    /// # Errors
    /// [`SealError`] when the version is unknown or the value does not open.
    pub fn open(&self, name: &str, sealed: &Sealed) -> Result<Secret<String>, SealError> {
        let key = self
            .keys
            .get(&sealed.key_version)
            .ok_or(SealError::UnknownVersion(sealed.key_version))?;
        let nonce: [u8; 12] = unhex(&sealed.nonce_hex)
            .and_then(|n| n.try_into().ok())
            .ok_or(SealError::Open)?;
        let mut buf = unhex(&sealed.ciphertext_hex).ok_or(SealError::Open)?;
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain.to_vec())
            .map(Secret::new)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "0000000000000000000000000000000000000000000000000000000000000001";
    const K2: &str = "0000000000000000000000000000000000000000000000000000000000000002";

    #[test]
    fn seals_open_only_for_the_same_provider_and_rotate_by_version() {
        let old = Keyring::parse(&Secret::new(format!("1:{K1}"))).unwrap();
        let sealed = old
            .seal("openai", &Secret::new("sk-live-abc".into()))
            .unwrap();
        assert!(!sealed.ciphertext_hex.contains(&hex(b"sk-live")));
        assert_eq!(old.open("openai", &sealed).unwrap().expose(), "sk-live-abc");
        assert!(matches!(
            old.open("anthropic", &sealed),
            Err(SealError::Open)
        ));
        let rotated = Keyring::parse(&Secret::new(format!("1:{K1},2:{K2}"))).unwrap();
        assert_eq!(
            rotated.open("openai", &sealed).unwrap().expose(),
            "sk-live-abc"
        );
        let resealed = rotated
            .seal("openai", &Secret::new("sk-live-abc".into()))
            .unwrap();
        assert_eq!(resealed.key_version, 2);
        assert!(matches!(
            old.open("openai", &resealed),
            Err(SealError::UnknownVersion(2))
        ));
    }

    #[test]
    fn bad_settings_are_refused_and_empty_means_no_key() {
        assert!(Keyring::parse(&Secret::new("1:abcd".into())).is_err());
        assert!(Keyring::parse(&Secret::new("x:".to_owned() + K1)).is_err());
        let empty = Keyring::parse(&Secret::new(String::new())).unwrap();
        assert!(matches!(
            empty.seal("p", &Secret::new("s".into())),
            Err(SealError::NoKey)
        ));
    }
}

//! Secrets (virtual keys, provider keys, admin tokens) live in [`Secret`], whose `Debug` and
//! `Display` print `***` and which has no `Serialize`, so a secret cannot reach a log line or a
//! JSON body by accident. Virtual keys are compared by [`KeyDigest`], an HMAC-SHA-256 under a
//! cluster secret, so only digests are ever stored or replicated.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A value that must never be printed. Read it with [`Secret::expose`], on purpose.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself. Call sites are the few places that must send or hash it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// HMAC-SHA-256 of a virtual key under the cluster secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest(pub [u8; 32]);

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first bytes are enough to tell digests apart in a debug dump.
        write!(
            f,
            "KeyDigest({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

impl KeyDigest {
    /// Lowercase hex, the form stored and replicated.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        s
    }
}

/// Hex digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Random bytes as lowercase hex (ids, tokens).
pub fn random_hex(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes * 2);
    for _ in 0..bytes {
        let b: u8 = rand::random();
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Computes key digests under one cluster secret. The HMAC key schedule is done once here, so
/// each request pays for two SHA-256 compressions over a short key, not for key setup.
#[derive(Clone)]
pub struct KeyDigester {
    mac: Hmac<Sha256>,
}

impl KeyDigester {
    /// Prepares the HMAC for `cluster_secret`.
    pub fn new(cluster_secret: &Secret<String>) -> Self {
        // HMAC accepts keys of any length, so construction cannot fail; the fallback is an
        // unreachable branch kept only because the API is fallible in type.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(cluster_secret.expose().as_bytes())
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        Self { mac }
    }

    /// The digest of one presented key.
    pub fn digest(&self, key: &str) -> KeyDigest {
        let mut mac = self.mac.clone();
        mac.update(key.as_bytes());
        KeyDigest(mac.finalize().into_bytes().into())
    }
}

/// The credential cluster members present to each other on Raft and stats RPCs, derived from
/// the cluster secret (every member has it; clients and admin tools do not). Without it, anyone
/// who can reach a node's gRPC port could append log entries, vote, or propose any command
/// (an admin token, a budget) past the admin service's roles.
///
/// It is an HMAC of a fixed label under the cluster secret, so it differs from every key digest
/// (virtual keys start with `sk-`) and reveals nothing about the secret.
#[derive(Clone)]
pub struct PeerToken(Secret<String>);

impl PeerToken {
    /// The gRPC metadata key that carries the token.
    pub const HEADER: &'static str = "x-switchyard-peer";

    /// The token of the cluster whose secret is `cluster_secret`.
    pub fn derive(cluster_secret: &Secret<String>) -> Self {
        let digest = KeyDigester::new(cluster_secret).digest("\0switchyard peer token v1");
        Self(Secret::new(digest.to_hex()))
    }

    /// The value to send.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// Whether `presented` is this token, compared in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let mine = self.0.expose().as_bytes();
        mine.len() == presented.len()
            && mine
                .iter()
                .zip(presented)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl fmt::Debug for PeerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerToken(***)")
    }
}

/// Makes a new high-entropy virtual key: `sk-sy-` and 32 random bytes in lowercase hex.
pub fn generate_virtual_key() -> Secret<String> {
    Secret::new(format!("sk-sy-{}", random_hex(32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sk-live-123".to_owned());
        assert_eq!(format!("{s} {s:?}"), "*** ***");
    }

    #[test]
    fn digests_depend_on_key_and_cluster_secret() {
        let a = KeyDigester::new(&Secret::new("cluster-a".into()));
        let b = KeyDigester::new(&Secret::new("cluster-b".into()));
        assert_eq!(a.digest("k1"), a.digest("k1"));
        assert_ne!(a.digest("k1"), a.digest("k2"));
        assert_ne!(a.digest("k1"), b.digest("k1"));
    }

    #[test]
    fn peer_tokens_match_only_their_own_cluster() {
        let a = PeerToken::derive(&Secret::new("cluster-a".into()));
        let b = PeerToken::derive(&Secret::new("cluster-b".into()));
        assert!(a.matches(a.expose().as_bytes()));
        assert!(!a.matches(b.expose().as_bytes()));
        assert!(!a.matches(b""));
        assert_eq!(format!("{a:?}"), "PeerToken(***)");
    }

    #[test]
    fn generated_keys_are_long_and_distinct() {
        let k1 = generate_virtual_key();
        let k2 = generate_virtual_key();
        assert_eq!(k1.expose().len(), 70);
        assert!(k1.expose().starts_with("sk-sy-"));
        assert_ne!(k1, k2);
    }
}

//! Identifier newtypes. They keep a provider name from being passed where a model name is
//! expected, and they are cheap to clone on the request path (`Arc<str>` inside).

use std::fmt;
use std::sync::Arc;

/// A node's id in the cluster (also its Raft id in the control plane).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The configured name of an upstream provider, e.g. `mock-a` or `openai`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderName(Arc<str>);

impl ProviderName {
    /// Wraps a name. Validation (charset, uniqueness) belongs to config.
    pub fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id that ties a client request, its upstream attempts, the mock's ledger and the spend
/// record together. Generated at the edge unless the client sent a usable `x-request-id`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

/// Longest client-supplied request id we accept; longer ones are replaced, so a client cannot
/// make us store or forward arbitrarily large headers.
const MAX_CLIENT_REQUEST_ID_BYTES: usize = 128;

impl RequestId {
    /// Accepts a client-supplied id when it is short and made of visible ASCII without spaces.
    pub fn from_client(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_CLIENT_REQUEST_ID_BYTES
            && raw.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(Arc::from(raw)))
    }

    /// Wraps an id the gateway generated itself.
    pub fn generated(id: String) -> Self {
        Self(Arc::from(id))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_request_ids_are_bounded_and_printable() {
        assert!(RequestId::from_client("req-123").is_some());
        assert!(RequestId::from_client("").is_none());
        assert!(RequestId::from_client("has space").is_none());
        assert!(RequestId::from_client(&"x".repeat(129)).is_none());
    }
}

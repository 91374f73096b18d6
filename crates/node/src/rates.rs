//! Cluster-wide per-key rate limits (RPM and TPM). A key's limits hold for the whole cluster,
//! not per node: each node admits requests from a *slice* of the key's per-minute allowance
//! that it reserved through Raft, and the replicated state never grants more slices in one
//! minute than the limit.
//!
//! Windows are calendar minutes (Unix ms / 60 000) by the admitting node's clock; a slice is
//! used only in the minute it was granted for. Tolerance, as tested:
//! - per minute window, requests admitted cluster-wide never exceed the RPM (0 over);
//! - a sliding 60 s interval that straddles two windows can see up to twice the limit, and
//!   clock skew between nodes only shifts which window a request falls in;
//! - slices a node did not use before its window ended are lost, so a cluster can admit fewer
//!   than the limit, by at most one slice per node per minute;
//! - TPM takes each request's upper bound of tokens (prompt bytes plus `max_tokens`) at
//!   admission and gives back what the request did not use once its usage is known (to this
//!   node's slice, in the same window), so actual tokens per minute stay under the TPM while
//!   a key can still use most of it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use switchyard_control::{Command, Control, Op, Response};
use switchyard_core::clock::SharedClock;

use crate::keys::KeyInfo;

/// Milliseconds per window.
const WINDOW_MS: u64 = 60_000;
/// Longest a request waits for a slice before it is refused as cut off.
const RESERVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the rate guard refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateError {
    /// The key's limit for this minute is used up.
    Limited {
        /// Seconds until the next window.
        retry_after_s: u64,
    },
    /// No slice could be reserved (no quorum in time).
    CutOff {
        /// What failed.
        reason: String,
    },
}

/// Tokens a request took from its key's TPM slice, to give back what it did not use.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The key.
    key_id: String,
    /// The window it was admitted in.
    window: u64,
    /// The upper bound it took.
    tokens: u64,
}

/// What this node may still admit for one key in one window.
#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    window: u64,
    requests: u64,
    tokens: u64,
    /// The cluster granted nothing more in this window.
    exhausted: bool,
}

/// The per-key rate guard of one node.
pub struct RateGuard {
    control: Control,
    node_id: u64,
    clock: SharedClock,
    slots: Mutex<HashMap<String, Slot>>,
    /// Serialises reservations so concurrent requests share one slice.
    reserving: tokio::sync::Mutex<()>,
}

impl RateGuard {
    /// A guard reserving through `control`.
    pub fn new(control: Control, node_id: u64, clock: SharedClock) -> Self {
        Self {
            control,
            node_id,
            clock,
            slots: Mutex::new(HashMap::new()),
            reserving: tokio::sync::Mutex::new(()),
        }
    }

    fn take(&self, key: &KeyInfo, window: u64, tokens: u64) -> Result<bool, RateError> {
        let mut slots = match self.slots.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let slot = slots.entry(key.id.clone()).or_default();
        if slot.window != window {
            *slot = Slot {
                window,
                ..Slot::default()
            };
        }
        let has_request = key.rpm == 0 || slot.requests >= 1;
        let has_tokens = key.tpm == 0 || slot.tokens >= tokens;
        if has_request && has_tokens {
            if key.rpm > 0 {
                slot.requests -= 1;
            }
            if key.tpm > 0 {
                slot.tokens -= tokens;
            }
            return Ok(true);
        }
        if slot.exhausted {
            return Err(self.limited());
        }
        Ok(false)
    }

    fn limited(&self) -> RateError {
        let now = self.clock.unix_ms();
        RateError::Limited {
            retry_after_s: (WINDOW_MS - now % WINDOW_MS).div_ceil(1000).max(1),
        }
    }

    /// Gives back `unused` tokens of a request admitted in `window` (see [`Admitted`]), if that
    /// window is still this node's current one for the key; a later window starts afresh.
    pub fn refund_tokens(&self, admitted: &Admitted, used: u64) {
        let unused = admitted.tokens.saturating_sub(used);
        if unused == 0 {
            return;
        }
        let mut slots = match self.slots.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(slot) = slots.get_mut(&admitted.key_id)
            && slot.window == admitted.window
        {
            slot.tokens = slot.tokens.saturating_add(unused);
        }
    }

    /// Admits one request expected to use at most `tokens`. Returns what to refund once the
    /// request's usage is known, when the key has a TPM limit.
    ///
    /// # Errors
    /// [`RateError::Limited`] when the key's cluster-wide limit for this minute is used up;
    /// [`RateError::CutOff`] when no slice could be reserved in time.
    pub async fn admit(&self, key: &KeyInfo, tokens: u64) -> Result<Option<Admitted>, RateError> {
        if key.rpm == 0 && key.tpm == 0 {
            return Ok(None);
        }
        let window = self.clock.unix_ms() / WINDOW_MS;
        let admitted = || {
            (key.tpm > 0).then(|| Admitted {
                key_id: key.id.clone(),
                window,
                tokens,
            })
        };
        if self.take(key, window, tokens)? {
            return Ok(admitted());
        }
        let _one_at_a_time = self.reserving.lock().await;
        if self.take(key, window, tokens)? {
            return Ok(admitted());
        }
        // A slice sized so that every member can hold one at a time with room to spare.
        let members = u64::try_from(self.control.members().len())
            .unwrap_or(1)
            .max(1);
        let want_requests = if key.rpm > 0 {
            (key.rpm / (2 * members)).max(1)
        } else {
            0
        };
        let want_tokens = if key.tpm > 0 {
            (key.tpm / (2 * members)).max(tokens)
        } else {
            0
        };
        let cmd = Command {
            at_ms: self.clock.unix_ms(),
            actor: None,
            op: Op::ReserveRate {
                node: self.node_id,
                key_id: key.id.clone(),
                window,
                requests: want_requests,
                tokens: want_tokens,
            },
        };
        let (requests, granted_tokens) =
            match tokio::time::timeout(RESERVE_TIMEOUT, self.control.write(cmd)).await {
                Ok(Ok(Response::RateGranted { requests, tokens })) => (requests, tokens),
                Ok(Ok(other)) => {
                    return Err(RateError::CutOff {
                        reason: format!("unexpected reply to a rate reservation: {other:?}"),
                    });
                }
                Ok(Err(e)) => {
                    return Err(RateError::CutOff {
                        reason: e.to_string(),
                    });
                }
                Err(_) => {
                    return Err(RateError::CutOff {
                        reason: "no quorum answered within 2 s".into(),
                    });
                }
            };
        {
            let mut slots = match self.slots.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let slot = slots.entry(key.id.clone()).or_default();
            if slot.window != window {
                *slot = Slot {
                    window,
                    ..Slot::default()
                };
            }
            slot.requests += requests;
            slot.tokens += granted_tokens;
            if (key.rpm > 0 && requests == 0) || (key.tpm > 0 && granted_tokens == 0) {
                slot.exhausted = true;
            }
        }
        if self.take(key, window, tokens)? {
            Ok(admitted())
        } else {
            Err(self.limited())
        }
    }
}

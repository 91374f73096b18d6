//! The ledger: what the mock billed, request by request.
//!
//! It is the oracle of the gateway's spend tests, so every entry is exact: a
//! non-streamed answer is recorded when it is sent, and a stream is recorded
//! once, with the tokens it actually handed to the connection, when it ends
//! (cleanly, by a cut fault, or because the client went away and hyper dropped
//! the body). Failed requests (faults, 4xx) are never recorded.

use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::price::{Price, billed_micros};

/// One billed request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct LedgerEntry {
    /// The request's `x-request-id`, or the id the mock generated.
    pub(crate) request_id: String,
    /// Model as named by the request (the deployment for Azure paths).
    pub(crate) model: String,
    /// Prompt (input) tokens billed.
    pub(crate) prompt_tokens: u64,
    /// Completion (output) tokens billed.
    pub(crate) completion_tokens: u64,
    /// Cost in micro-dollars, from [`billed_micros`].
    pub(crate) billed_micros: u64,
}

/// The list of billed requests, in the order they were recorded.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Guarded by a std mutex: every critical section is a push or a copy,
    /// never held across an `.await`.
    entries: Mutex<Vec<LedgerEntry>>,
}

/// The ledger as `GET /_mock/ledger` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct LedgerView {
    /// Sum of `billed_micros` over `entries`.
    pub(crate) total_billed_micros: u64,
    /// Every entry, oldest first.
    pub(crate) entries: Vec<LedgerEntry>,
}

/// What a request will be billed once its token counts are final.
#[derive(Clone, Debug)]
pub(crate) struct Charge {
    /// Request id the entry is keyed by.
    pub(crate) request_id: String,
    /// Model the entry names.
    pub(crate) model: String,
    /// Price applied to the tokens.
    pub(crate) price: Price,
    /// Prompt tokens (known before the answer starts).
    pub(crate) prompt_tokens: u64,
}

/// Bills a stream exactly once, when it finishes or is dropped.
///
/// The body that plays the stream owns this; hyper drops the body when the
/// client disconnects, so `Drop` is what bills a stream abandoned midway.
#[derive(Debug)]
pub(crate) struct StreamBilling {
    /// Shared with the server state, which serves `GET /_mock/ledger`.
    ledger: Arc<Ledger>,
    /// `None` once recorded, so the entry is written at most once.
    charge: Option<Charge>,
    /// Content tokens handed to the connection so far.
    completion_tokens: u64,
}

// === impl Ledger ===

impl Ledger {
    /// Records `charge` with `completion_tokens` and returns the entry.
    pub(crate) fn record(&self, charge: Charge, completion_tokens: u64) -> LedgerEntry {
        let entry = LedgerEntry {
            billed_micros: billed_micros(charge.price, charge.prompt_tokens, completion_tokens),
            request_id: charge.request_id,
            model: charge.model,
            prompt_tokens: charge.prompt_tokens,
            completion_tokens,
        };
        tracing::debug!(
            request_id = %entry.request_id,
            model = %entry.model,
            prompt_tokens = entry.prompt_tokens,
            completion_tokens = entry.completion_tokens,
            billed_micros = entry.billed_micros,
            "mock billed request"
        );
        self.lock().push(entry.clone());
        entry
    }

    /// A copy of the ledger with its total.
    pub(crate) fn view(&self) -> LedgerView {
        let entries = self.lock().clone();
        let total_billed_micros = entries
            .iter()
            .fold(0_u64, |sum, e| sum.saturating_add(e.billed_micros));
        LedgerView {
            total_billed_micros,
            entries,
        }
    }

    /// Forgets every entry.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<LedgerEntry>> {
        // A panic while holding the lock cannot leave a half-pushed Vec, so
        // the data behind a poisoned lock is still sound.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// === impl StreamBilling ===

impl StreamBilling {
    /// Starts billing a stream for `charge`, with no tokens sent yet.
    pub(crate) fn new(ledger: Arc<Ledger>, charge: Charge) -> Self {
        Self {
            ledger,
            charge: Some(charge),
            completion_tokens: 0,
        }
    }

    /// Counts `tokens` more content tokens as sent.
    pub(crate) fn add_tokens(&mut self, tokens: u64) {
        self.completion_tokens = self.completion_tokens.saturating_add(tokens);
    }

    /// Content tokens sent so far.
    pub(crate) fn tokens(&self) -> u64 {
        self.completion_tokens
    }

    /// Writes the entry now, if not written yet.
    pub(crate) fn finish(&mut self) {
        if let Some(charge) = self.charge.take() {
            self.ledger.record(charge, self.completion_tokens);
        }
    }
}

impl Drop for StreamBilling {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(id: &str) -> Charge {
        Charge {
            request_id: id.to_owned(),
            model: "m".to_owned(),
            price: Price {
                input_micros_per_mtok: 1_000_000,
                output_micros_per_mtok: 2_000_000,
            },
            prompt_tokens: 10,
        }
    }

    #[test]
    fn stream_billing_records_once_with_tokens_sent() {
        let ledger = Arc::new(Ledger::default());
        let mut billing = StreamBilling::new(ledger.clone(), charge("r1"));
        billing.add_tokens(3);
        billing.finish();
        billing.add_tokens(5);
        drop(billing);
        let view = ledger.view();
        assert_eq!(view.entries.len(), 1);
        assert_eq!(view.entries[0].completion_tokens, 3);
        assert_eq!(view.total_billed_micros, 10 + 6);
    }

    #[test]
    fn dropped_stream_is_billed() {
        let ledger = Arc::new(Ledger::default());
        let mut billing = StreamBilling::new(ledger.clone(), charge("r2"));
        billing.add_tokens(2);
        drop(billing);
        assert_eq!(ledger.view().entries[0].completion_tokens, 2);
        ledger.clear();
        assert_eq!(ledger.view().total_billed_micros, 0);
    }
}

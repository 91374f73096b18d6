//! The mock's start-up configuration.
//!
//! Only timing can change afterwards (through `POST /_mock/config`); names,
//! prices, models and the key are fixed for the life of a server, so a test
//! that reads them once can trust them.

use std::collections::BTreeMap;

use crate::price::Price;

/// Configuration of one mock provider.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Name of this mock, e.g. "mock-a"; appears in `system_fingerprint`/ids and logs.
    pub name: String,
    /// Price for models not listed in `prices`.
    pub default_price: Price,
    /// Per-model prices (model name as it arrives in the request body).
    pub prices: BTreeMap<String, Price>,
    /// Base time to first token (non-streaming: added before the whole answer).
    pub ttft_ms: u64,
    /// Delay between streamed tokens (non-streaming: multiplied by completion tokens and added).
    pub per_token_ms: u64,
    /// Models listed by GET /v1/models (also every key of `prices`).
    pub models: Vec<String>,
    /// When Some, API requests must carry `Authorization: Bearer <it>` or `x-api-key: <it>` or `api-key: <it>`; otherwise 401 in the format of the endpoint.
    pub api_key: Option<String>,
}

/// Name used when none is given.
const DEFAULT_NAME: &str = "mock";

/// Default price: that of a small, cheap model ($0.15 in, $0.60 out per
/// million tokens), so costs in tests are non-zero but small.
const DEFAULT_PRICE: Price = Price {
    input_micros_per_mtok: 150_000,
    output_micros_per_mtok: 600_000,
};

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            name: DEFAULT_NAME.to_owned(),
            default_price: DEFAULT_PRICE,
            prices: BTreeMap::new(),
            ttft_ms: 0,
            per_token_ms: 0,
            models: Vec::new(),
            api_key: None,
        }
    }
}

impl MockConfig {
    /// The price of `model`: its own entry, else the default.
    pub(crate) fn price_for(&self, model: &str) -> Price {
        self.prices
            .get(model)
            .copied()
            .unwrap_or(self.default_price)
    }

    /// Models to list: `models` in order, then price keys not already listed.
    pub(crate) fn listed_models(&self) -> Vec<String> {
        let mut listed = Vec::with_capacity(self.models.len() + self.prices.len());
        for model in self.models.iter().chain(self.prices.keys()) {
            if !listed.contains(model) {
                listed.push(model.clone());
            }
        }
        listed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_models_are_models_then_priced_ones_without_duplicates() {
        let price = Price {
            input_micros_per_mtok: 1,
            output_micros_per_mtok: 2,
        };
        let config = MockConfig {
            models: vec!["b".to_owned(), "a".to_owned()],
            prices: [("a".to_owned(), price), ("c".to_owned(), price)].into(),
            ..MockConfig::default()
        };
        assert_eq!(config.listed_models(), ["b", "a", "c"]);
        assert_eq!(config.price_for("c"), price);
        assert_eq!(config.price_for("zzz"), DEFAULT_PRICE);
    }
}

//! The pricing catalog and the one cost function. Cost is integer micro-dollars computed from
//! the upstream's reported `usage`; prices are micro-dollars per million tokens. The catalog is
//! the shipped `data/pricing.toml`, overridable per provider in configuration.

use std::collections::BTreeMap;

use crate::money::{Micros, MoneyError};

/// A model's price: micro-dollars per million input and output tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Price {
    /// Micro-dollars per million prompt tokens.
    pub input_micros_per_mtok: u64,
    /// Micro-dollars per million completion tokens.
    pub output_micros_per_mtok: u64,
}

/// Tokens per million, the unit prices are quoted in.
const TOKENS_PER_PRICE_UNIT: u128 = 1_000_000;

impl Price {
    /// The cost of one call: `ceil((prompt × input + completion × output) / 1e6)` micro-dollars.
    ///
    /// Rounding up means a sum of many small calls never undercounts what the provider bills,
    /// and the arithmetic in `u128` cannot overflow for any `u64` inputs.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> Micros {
        let total = u128::from(prompt_tokens) * u128::from(self.input_micros_per_mtok)
            + u128::from(completion_tokens) * u128::from(self.output_micros_per_mtok);
        let micros = total.div_ceil(TOKENS_PER_PRICE_UNIT);
        Micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

/// Why the catalog could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    /// The TOML did not parse.
    #[error("pricing catalog is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    /// An amount is not an exact decimal.
    #[error("pricing catalog entry {model}: {source}")]
    Amount {
        /// The model whose entry is wrong.
        model: String,
        /// What was wrong with the amount.
        source: MoneyError,
    },
}

/// Model name to price, with longest-prefix lookup for dated snapshots.
#[derive(Clone, Debug, Default)]
pub struct PricingCatalog {
    models: BTreeMap<String, Price>,
}

/// The catalog shipped in the binary.
const BUILTIN_CATALOG: &str = include_str!("../data/pricing.toml");

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogToml {
    models: BTreeMap<String, EntryToml>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryToml {
    input_usd_per_mtok: String,
    output_usd_per_mtok: String,
}

impl PricingCatalog {
    /// The catalog shipped with Switchyard.
    ///
    /// # Errors
    /// Only if the shipped file is broken, which a unit test rules out.
    pub fn builtin() -> Result<Self, PricingError> {
        Self::parse(BUILTIN_CATALOG)
    }

    /// Reads a catalog in the shipped file's format.
    ///
    /// # Errors
    /// [`PricingError`] naming the first bad entry.
    pub fn parse(text: &str) -> Result<Self, PricingError> {
        let raw: CatalogToml = toml::from_str(text)?;
        let mut models = BTreeMap::new();
        for (model, e) in raw.models {
            let read = |s: &str| {
                Micros::parse_usd(s).map_err(|source| PricingError::Amount {
                    model: model.clone(),
                    source,
                })
            };
            let price = Price {
                input_micros_per_mtok: read(&e.input_usd_per_mtok)?.0,
                output_micros_per_mtok: read(&e.output_usd_per_mtok)?.0,
            };
            models.insert(model, price);
        }
        Ok(Self { models })
    }

    /// Adds or replaces one entry (provider overrides).
    pub fn insert(&mut self, model: &str, price: Price) {
        self.models.insert(model.to_owned(), price);
    }

    /// The price of `model`: exact name first, then the longest catalog name that prefixes it.
    pub fn lookup(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.models.get(model) {
            return Some(*p);
        }
        self.models
            .range::<str, _>((std::ops::Bound::Unbounded, std::ops::Bound::Excluded(model)))
            .rev()
            .take_while(|(name, _)| name.as_bytes().first() == model.as_bytes().first())
            .filter(|(name, _)| model.starts_with(name.as_str()))
            .map(|(name, p)| (name.len(), *p))
            .max_by_key(|(len, _)| *len)
            .map(|(_, p)| p)
    }

    /// Every entry, for listing.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Price)> {
        self.models.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn builtin_catalog_parses_and_has_the_demo_models() {
        let c = PricingCatalog::builtin().unwrap();
        let mini = c.lookup("gpt-4o-mini").unwrap();
        assert_eq!(
            mini,
            Price {
                input_micros_per_mtok: 150_000,
                output_micros_per_mtok: 600_000
            }
        );
        assert!(c.lookup("claude-3-5-haiku").is_some());
        assert!(c.lookup("text-embedding-3-small").is_some());
        assert!(c.lookup("gemini-2.5-flash").is_some());
        assert!(c.lookup("mistral-small-latest").is_some());
    }

    #[test]
    fn dated_snapshots_take_the_longest_prefix() {
        let c = PricingCatalog::builtin().unwrap();
        assert_eq!(c.lookup("gpt-4o-mini-2024-07-18"), c.lookup("gpt-4o-mini"));
        assert_eq!(c.lookup("gpt-4o-2024-08-06"), c.lookup("gpt-4o"));
        assert_eq!(
            c.lookup("claude-3-5-haiku-20241022"),
            c.lookup("claude-3-5-haiku")
        );
        assert_eq!(c.lookup("unknown-model"), None);
    }

    #[test]
    fn cost_rounds_up_to_the_next_micro_dollar() {
        let p = Price {
            input_micros_per_mtok: 150_000,
            output_micros_per_mtok: 600_000,
        };
        // 10 × 0.15 + 16 × 0.6 = 11.1 micro-dollars → 12.
        assert_eq!(p.cost(10, 16), Micros(12));
        assert_eq!(p.cost(0, 0), Micros(0));
        assert_eq!(p.cost(1_000_000, 0), Micros(150_000));
    }

    proptest! {
        #[test]
        fn cost_is_monotonic_and_never_below_exact(pt in 0u64..10_000_000, ct in 0u64..10_000_000, i in 0u64..100_000_000, o in 0u64..100_000_000) {
            let p = Price { input_micros_per_mtok: i, output_micros_per_mtok: o };
            let c = p.cost(pt, ct).0 as u128;
            let exact_times_1e6 = pt as u128 * i as u128 + ct as u128 * o as u128;
            prop_assert!(c * 1_000_000 >= exact_times_1e6);
            prop_assert!(c * 1_000_000 < exact_times_1e6 + 1_000_000);
            prop_assert!(p.cost(pt + 1, ct) >= p.cost(pt, ct));
        }
    }
}

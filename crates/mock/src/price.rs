//! Prices and the mock's cost rule.
//!
//! The rule is deliberately written here and nowhere else: the gateway has its
//! own cost function, and the ledger is only a useful oracle if the two are
//! computed independently.

/// A model's price in integer micro-dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    /// Micro-dollars per million prompt (input) tokens.
    pub input_micros_per_mtok: u64,
    /// Micro-dollars per million completion (output) tokens.
    pub output_micros_per_mtok: u64,
}

/// Tokens per unit of a per-million price.
const TOKENS_PER_MTOK: u128 = 1_000_000;

/// The cost of one request in micro-dollars: `ceil((prompt_tokens * input +
/// completion_tokens * output) / 1_000_000)`.
///
/// The sum is computed in `u128`, so no realistic price or token count can
/// overflow it; a result beyond `u64::MAX` saturates.
pub fn billed_micros(price: Price, prompt_tokens: u64, completion_tokens: u64) -> u64 {
    let input = u128::from(prompt_tokens) * u128::from(price.input_micros_per_mtok);
    let output = u128::from(completion_tokens) * u128::from(price.output_micros_per_mtok);
    let micros = input.saturating_add(output).div_ceil(TOKENS_PER_MTOK);
    u64::try_from(micros).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICE: Price = Price {
        input_micros_per_mtok: 150_000,
        output_micros_per_mtok: 600_000,
    };

    #[test]
    fn cost_rounds_up_to_the_next_micro() {
        // 10 * 0.15 + 16 * 0.6 = 11.1 micros -> 12.
        assert_eq!(billed_micros(PRICE, 10, 16), 12);
    }

    #[test]
    fn exact_multiples_are_not_rounded() {
        assert_eq!(billed_micros(PRICE, 1_000_000, 0), 150_000);
        assert_eq!(billed_micros(PRICE, 0, 2_000_000), 1_200_000);
    }

    #[test]
    fn zero_tokens_cost_nothing() {
        assert_eq!(billed_micros(PRICE, 0, 0), 0);
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let price = Price {
            input_micros_per_mtok: u64::MAX,
            output_micros_per_mtok: u64::MAX,
        };
        assert_eq!(billed_micros(price, u64::MAX, u64::MAX), u64::MAX);
    }
}

//! Money is integer micro-dollars everywhere: in state, on the wire and in tests. Floating point
//! never touches a price or a balance, so sums are exact and budgets can be hard caps.

use std::fmt;

/// An amount of money in micro-dollars (1 USD = 1,000,000).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Micros(pub u64);

/// Micro-dollars in one dollar.
pub const MICROS_PER_USD: u64 = 1_000_000;

/// Why a dollar amount could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not of the form `123`, `123.45` or `.5` (at most six decimals, no sign).
    #[error("invalid dollar amount {0:?}: expected digits with at most six decimals, e.g. 12.50")]
    Format(String),
    /// More than `u64::MAX` micro-dollars.
    #[error("dollar amount {0:?} is too large")]
    Overflow(String),
}

impl Micros {
    /// Zero dollars.
    pub const ZERO: Micros = Micros(0);

    /// Parses a decimal dollar string (`"12.50"`) exactly, without going through `f64`.
    ///
    /// # Errors
    /// [`MoneyError::Format`] for signs, exponents, more than six decimals or stray characters;
    /// [`MoneyError::Overflow`] when the amount does not fit in `u64` micro-dollars.
    pub fn parse_usd(raw: &str) -> Result<Self, MoneyError> {
        let s = raw.trim();
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s, ""),
        };
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty())
            || !digits(whole)
            || !digits(frac)
            || frac.len() > 6
        {
            return Err(MoneyError::Format(raw.to_owned()));
        }
        let overflow = || MoneyError::Overflow(raw.to_owned());
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| overflow())?
        };
        let mut frac_micros: u64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            frac_micros += u64::from(b - b'0') * 10u64.pow(5 - i as u32);
        }
        whole
            .checked_mul(MICROS_PER_USD)
            .and_then(|m| m.checked_add(frac_micros))
            .map(Micros)
            .ok_or_else(overflow)
    }

    /// Adds, saturating at `u64::MAX` (a balance that large is already unbounded).
    pub fn saturating_add(self, other: Micros) -> Micros {
        Micros(self.0.saturating_add(other.0))
    }

    /// Subtracts, stopping at zero.
    pub fn saturating_sub(self, other: Micros) -> Micros {
        Micros(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Micros {
    /// Prints dollars with six decimals, e.g. `$0.000150`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "${}.{:06}",
            self.0 / MICROS_PER_USD,
            self.0 % MICROS_PER_USD
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_dollars_exactly() {
        assert_eq!(Micros::parse_usd("12.50"), Ok(Micros(12_500_000)));
        assert_eq!(Micros::parse_usd("0.000001"), Ok(Micros(1)));
        assert_eq!(Micros::parse_usd(".5"), Ok(Micros(500_000)));
        assert_eq!(Micros::parse_usd("3"), Ok(Micros(3_000_000)));
        assert_eq!(Micros::parse_usd("0.1"), Ok(Micros(100_000)));
    }

    #[test]
    fn rejects_what_is_not_a_plain_amount() {
        for bad in [
            "",
            ".",
            "-1",
            "+1",
            "1e3",
            "1.0000001",
            "1,5",
            "abc",
            "1.2.3",
        ] {
            assert!(Micros::parse_usd(bad).is_err(), "{bad} accepted");
        }
        assert!(matches!(
            Micros::parse_usd("99999999999999999999"),
            Err(MoneyError::Overflow(_))
        ));
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(m in 0u64..u64::MAX / 2) {
            let shown = Micros(m).to_string();
            prop_assert_eq!(Micros::parse_usd(shown.trim_start_matches('$')), Ok(Micros(m)));
        }
    }
}

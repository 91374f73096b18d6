//! Constraints a plan must meet: a price cap, a latency cap and the regions a request may be
//! served from (data residency). They come in layers: a route's defaults, overridden field by
//! field by the request (header or the `switchyard` body field), then tightened by the key's
//! policy, which a request can never loosen:
//!
//! `effective = route.overlay(request).tighten(key)`

use std::fmt;

use crate::plan::TargetState;

/// Limits on which targets a request may use. The `Default` constrains nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Constraints {
    /// Highest blended price ([`blended_micros_per_mtok`]) a target may have, micro-dollars per
    /// million tokens. A target whose price is unknown cannot be shown to meet it, so it is
    /// dropped.
    pub max_price_micros_per_mtok: Option<u64>,
    /// Highest p95 total latency a measured target may have, ms. Unmeasured targets are kept:
    /// nothing says they are slow, and they are measured only if tried.
    pub max_p95_ms: Option<u64>,
    /// Regions to serve from, compared case-insensitively with each provider's region. Empty:
    /// anywhere (unless `strict_residency`).
    pub regions: Vec<String>,
    /// `true`: never plan a target outside `regions`, not even as a fallback; a provider with no
    /// region is outside every list, and strict residency with no regions allows nothing (it
    /// fails closed). `false`: `regions` is a preference; targets in them go first.
    pub strict_residency: bool,
}

/// Why one target was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exclusion {
    /// Outside the allowed regions under strict residency.
    Region,
    /// Above the price cap, or of unknown price.
    Price,
    /// Measured p95 above the latency cap.
    Latency,
}

/// What was left out of a plan and under which constraints: the `why` of
/// [`crate::RoutingError::NoAllowedTarget`]. Kept as data; it is formatted only when rendered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exclusions {
    /// Targets outside the allowed regions.
    pub outside_regions: usize,
    /// Targets above the price cap or of unknown price.
    pub over_price: usize,
    /// Targets above the latency cap.
    pub over_latency: usize,
    /// The constraints applied.
    pub constraints: Constraints,
}

/// Why a hint could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// The value does not parse for that hint.
    #[error("routing hint {name}: {value:?} is not {expected}")]
    Invalid {
        /// The hint's name.
        name: String,
        /// The value given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

impl ConstraintError {
    /// Label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ConstraintError::Invalid { .. } => "invalid_hint",
        }
    }
}

/// Weight of input tokens in the blended price, against one for output: most chat traffic sends
/// about three prompt tokens per completion token, the mix commonly used to quote one price per
/// model.
pub const BLEND_INPUT_PER_OUTPUT: u64 = 3;

/// One price per model for comparing and capping: `(3 × input + output) / 4`, rounded up,
/// micro-dollars per million tokens (see [`BLEND_INPUT_PER_OUTPUT`]).
pub fn blended_micros_per_mtok(input: u64, output: u64) -> u64 {
    let sum = u128::from(input) * u128::from(BLEND_INPUT_PER_OUTPUT) + u128::from(output);
    u64::try_from(sum.div_ceil(u128::from(BLEND_INPUT_PER_OUTPUT + 1))).unwrap_or(u64::MAX)
}

/// Header names of the per-request hints (the `switchyard` body field uses the [`Constraints`]
/// field names instead).
pub const HINT_MAX_PRICE: &str = "x-switchyard-max-price-micros-per-mtok";
/// Latency cap hint, ms.
pub const HINT_MAX_P95_MS: &str = "x-switchyard-max-p95-ms";
/// Comma-separated regions hint.
pub const HINT_REGIONS: &str = "x-switchyard-regions";
/// `strict` or `prefer`.
pub const HINT_RESIDENCY: &str = "x-switchyard-residency";

// === impl Constraints ===

impl Constraints {
    /// Whether `region` is one of the listed regions.
    pub fn lists_region(&self, region: &str) -> bool {
        !region.is_empty() && self.regions.iter().any(|r| r.eq_ignore_ascii_case(region))
    }

    /// Checks one target: `Ok(preferred)` when it may be planned, where `preferred` says it is
    /// in the listed regions (or none are listed); `Err` names the first constraint it breaks.
    ///
    /// # Errors
    /// The [`Exclusion`] that rules the target out.
    pub fn check(&self, s: &TargetState) -> Result<bool, Exclusion> {
        let in_region = self.lists_region(&s.region);
        if self.strict_residency && !in_region {
            return Err(Exclusion::Region);
        }
        if let Some(max) = self.max_price_micros_per_mtok {
            match s.blended_price() {
                Some(p) if p <= max => {}
                _ => return Err(Exclusion::Price),
            }
        }
        if let Some(max_ms) = self.max_p95_ms
            && s.latency_samples > 0
            && s.p95_us > max_ms.saturating_mul(1000)
        {
            return Err(Exclusion::Latency);
        }
        Ok(self.regions.is_empty() || in_region)
    }

    /// These defaults with every field `over` sets replacing them: a cap that is `Some`, a
    /// non-empty region list (with its strictness), or `strict_residency` alone (making these
    /// regions strict).
    pub fn overlay(&self, over: &Constraints) -> Constraints {
        let mut out = self.clone();
        if over.max_price_micros_per_mtok.is_some() {
            out.max_price_micros_per_mtok = over.max_price_micros_per_mtok;
        }
        if over.max_p95_ms.is_some() {
            out.max_p95_ms = over.max_p95_ms;
        }
        if !over.regions.is_empty() {
            out.regions.clone_from(&over.regions);
            out.strict_residency = over.strict_residency;
        } else if over.strict_residency {
            out.strict_residency = true;
        }
        out
    }

    /// These constraints made at least as strict as `policy` (a key's): caps take the lower
    /// value; strict regions intersect; a strict side beats a preference; with no strict side
    /// the more specific preference (these, if any) stands. The result never allows a target
    /// `policy` forbids.
    pub fn tighten(&self, policy: &Constraints) -> Constraints {
        let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        let (regions, strict_residency) = match (self.strict_residency, policy.strict_residency) {
            (true, true) => (
                self.regions
                    .iter()
                    .filter(|r| policy.lists_region(r))
                    .cloned()
                    .collect(),
                true,
            ),
            (false, true) => (policy.regions.clone(), true),
            (true, false) => (self.regions.clone(), true),
            (false, false) if self.regions.is_empty() => (policy.regions.clone(), false),
            (false, false) => (self.regions.clone(), false),
        };
        Constraints {
            max_price_micros_per_mtok: min(
                self.max_price_micros_per_mtok,
                policy.max_price_micros_per_mtok,
            ),
            max_p95_ms: min(self.max_p95_ms, policy.max_p95_ms),
            regions,
            strict_residency,
        }
    }

    /// Reads one request header into these constraints; `Ok(false)` when `name` is not a
    /// constraint hint. Names compare case-insensitively.
    ///
    /// # Errors
    /// [`ConstraintError::Invalid`] when the value does not parse.
    pub fn apply_hint(&mut self, name: &str, value: &str) -> Result<bool, ConstraintError> {
        let invalid = |expected| ConstraintError::Invalid {
            name: name.to_ascii_lowercase(),
            value: value.to_owned(),
            expected,
        };
        let number = || {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| invalid("a whole number"))
        };
        if name.eq_ignore_ascii_case(HINT_MAX_PRICE) {
            self.max_price_micros_per_mtok = Some(number()?);
        } else if name.eq_ignore_ascii_case(HINT_MAX_P95_MS) {
            self.max_p95_ms = Some(number()?);
        } else if name.eq_ignore_ascii_case(HINT_REGIONS) {
            self.regions = value
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect();
        } else if name.eq_ignore_ascii_case(HINT_RESIDENCY) {
            self.strict_residency = match value.trim().to_ascii_lowercase().as_str() {
                "strict" => true,
                "prefer" | "preferred" => false,
                _ => return Err(invalid("strict or prefer")),
            };
        } else {
            return Ok(false);
        }
        Ok(true)
    }
}

// === impl Exclusions ===

impl Exclusions {
    /// Counts one excluded target.
    pub(crate) fn count(&mut self, e: Exclusion) {
        match e {
            Exclusion::Region => self.outside_regions += 1,
            Exclusion::Price => self.over_price += 1,
            Exclusion::Latency => self.over_latency += 1,
        }
    }
}

impl fmt::Display for Exclusions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.constraints;
        let mut parts = Vec::new();
        if self.outside_regions > 0 {
            parts.push(format!(
                "{} outside the allowed regions [{}] (strict residency)",
                self.outside_regions,
                c.regions.join(", ")
            ));
        }
        if self.over_price > 0 {
            parts.push(format!(
                "{} above the price cap of {} micro-dollars per million tokens or unpriced",
                self.over_price,
                c.max_price_micros_per_mtok.unwrap_or(0)
            ));
        }
        if self.over_latency > 0 {
            parts.push(format!(
                "{} above the p95 latency cap of {} ms",
                self.over_latency,
                c.max_p95_ms.unwrap_or(0)
            ));
        }
        if parts.is_empty() {
            f.write_str("no target is left")
        } else {
            write!(f, "targets excluded: {}", parts.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(region: &str, price: Option<(u64, u64)>, p95_us: u64) -> TargetState {
        TargetState {
            available: true,
            supports: true,
            region: region.into(),
            price_micros_per_mtok: price,
            p95_us,
            latency_samples: u64::from(p95_us > 0),
            ..TargetState::default()
        }
    }

    #[test]
    fn blended_price_weighs_input_three_to_one() {
        assert_eq!(blended_micros_per_mtok(150_000, 600_000), 262_500);
        assert_eq!(blended_micros_per_mtok(1, 0), 1);
        assert_eq!(blended_micros_per_mtok(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn check_applies_each_constraint() {
        let c = Constraints {
            max_price_micros_per_mtok: Some(300_000),
            max_p95_ms: Some(2_000),
            regions: vec!["EU-west".into()],
            strict_residency: true,
        };
        let ok = Some((150_000, 600_000));
        assert_eq!(c.check(&target("eu-west", ok, 1_000_000)), Ok(true));
        assert_eq!(c.check(&target("us-east", ok, 0)), Err(Exclusion::Region));
        assert_eq!(c.check(&target("", ok, 0)), Err(Exclusion::Region));
        assert_eq!(c.check(&target("eu-west", None, 0)), Err(Exclusion::Price));
        assert_eq!(
            c.check(&target("eu-west", Some((1_000_000, 1_000_000)), 0)),
            Err(Exclusion::Price)
        );
        assert_eq!(
            c.check(&target("eu-west", ok, 2_000_001)),
            Err(Exclusion::Latency)
        );
        let prefer = Constraints {
            regions: vec!["eu-west".into()],
            ..Constraints::default()
        };
        assert_eq!(prefer.check(&target("us-east", ok, 0)), Ok(false));
        let nowhere = Constraints {
            strict_residency: true,
            ..Constraints::default()
        };
        assert_eq!(
            nowhere.check(&target("eu-west", ok, 0)),
            Err(Exclusion::Region)
        );
    }

    #[test]
    fn requests_override_route_defaults_but_never_loosen_a_key() {
        let route = Constraints {
            max_p95_ms: Some(5_000),
            regions: vec!["us-east".into()],
            ..Constraints::default()
        };
        let request = Constraints {
            max_p95_ms: Some(9_000),
            regions: vec!["eu-west".into(), "us-east".into()],
            strict_residency: true,
            ..Constraints::default()
        };
        let key = Constraints {
            max_price_micros_per_mtok: Some(1_000),
            regions: vec!["eu-west".into(), "eu-central".into()],
            strict_residency: true,
            ..Constraints::default()
        };
        let eff = route.overlay(&request).tighten(&key);
        assert_eq!(
            eff.max_p95_ms,
            Some(9_000),
            "the request overrides the route"
        );
        assert_eq!(eff.max_price_micros_per_mtok, Some(1_000));
        assert_eq!(eff.regions, vec!["eu-west".to_owned()]);
        assert!(eff.strict_residency);
        // A request preferring somewhere else cannot escape the key's strict regions.
        let escape = Constraints {
            regions: vec!["us-east".into()],
            ..Constraints::default()
        };
        let eff = Constraints::default().overlay(&escape).tighten(&key);
        assert!(eff.strict_residency);
        assert!(!eff.lists_region("us-east"));
    }

    #[test]
    fn hints_parse_from_headers() {
        let mut c = Constraints::default();
        assert_eq!(c.apply_hint("X-Switchyard-Max-P95-Ms", "1500"), Ok(true));
        assert_eq!(c.apply_hint(HINT_REGIONS, "eu-west, eu-central"), Ok(true));
        assert_eq!(c.apply_hint(HINT_RESIDENCY, "strict"), Ok(true));
        assert_eq!(c.apply_hint("x-switchyard-tags", "a=b"), Ok(false));
        assert_eq!(c.max_p95_ms, Some(1500));
        assert_eq!(c.regions.len(), 2);
        assert!(c.strict_residency);
        let err = c.apply_hint(HINT_MAX_PRICE, "cheap").unwrap_err();
        assert_eq!(
            err.to_string(),
            "routing hint x-switchyard-max-price-micros-per-mtok: \"cheap\" is not a whole number"
        );
    }
}

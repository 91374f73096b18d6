//! `model: "auto"`: a request's shape decides the tier of model it needs, and the plan takes the
//! cheapest route of at least that tier (see [`crate::plan::plan_auto`]). The rules are cheap
//! heuristics on facts the edge already has; they never read a model's answer.

/// How capable a model a request needs. Ordered: a route of a higher tier can serve a request
/// of a lower one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Short chat, extraction, classification.
    #[default]
    Small,
    /// Code, tool use, long context.
    Medium,
    /// Multi-step reasoning, proofs, mathematics, very long context.
    Large,
}

impl Tier {
    /// Parses `small`, `medium` or `large` (route configuration).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "small" => Some(Tier::Small),
            "medium" => Some(Tier::Medium),
            "large" => Some(Tier::Large),
            _ => None,
        }
    }

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Small => "small",
            Tier::Medium => "medium",
            Tier::Large => "large",
        }
    }
}

/// What the classifier looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestFacts {
    /// Characters of prompt text (all messages and the system prompt).
    pub prompt_chars: u64,
    /// The prompt contains code (see [`scan_prompt`]).
    pub has_code: bool,
    /// The request declares tools.
    pub has_tools: bool,
    /// Distinct reasoning markers in the prompt (see [`REASONING_MARKERS`]).
    pub reasoning_markers: u32,
    /// The requested `max_tokens`, when given.
    pub max_tokens: Option<u64>,
}

/// What [`scan_prompt`] finds in prompt text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PromptScan {
    /// Characters scanned.
    pub chars: u64,
    /// Whether it looks like it contains code.
    pub has_code: bool,
    /// Distinct reasoning markers found.
    pub reasoning_markers: u32,
}

/// Prompts at least this long (≈ 1,000 tokens) need at least [`Tier::Medium`]: small models lose
/// track of long context first.
pub const MEDIUM_PROMPT_CHARS: u64 = 4_000;
/// Prompts at least this long (≈ 8,000 tokens) need [`Tier::Large`].
pub const LARGE_PROMPT_CHARS: u64 = 32_000;
/// Asking for this many output tokens or more needs at least [`Tier::Medium`]: long answers from
/// small models drift.
pub const MEDIUM_MAX_TOKENS: u64 = 2_048;

/// Phrases that mark a request for multi-step reasoning or mathematics, matched
/// case-insensitively. Each is specific enough that ordinary chat rarely contains it ("think"
/// alone is not a marker: "what do you think" is small talk).
pub const REASONING_MARKERS: &[&str] = &[
    "step by step",
    "step-by-step",
    "prove",
    "proof",
    "derive",
    "derivation",
    "theorem",
    "lemma",
    "think carefully",
    "think through",
    "think hard",
    "reason through",
    "chain of thought",
    "integral",
    "differential equation",
    "solve for",
    "\\frac",
    "\\int",
    "\\sum",
];

/// Signs of code; a fence alone is enough, otherwise two different signs.
pub const CODE_SIGNS: &[&str] = &[
    "def ",
    "fn ",
    "function ",
    "#include",
    "import ",
    "public static",
    "=>",
    "};",
    "();",
    "console.log",
    "return ",
    " == ",
    " != ",
];

/// Classifies a request.
///
/// 1. **Large** when the prompt has any reasoning marker, or is at least
///    [`LARGE_PROMPT_CHARS`] long.
/// 2. **Medium** when the request declares tools, the prompt contains code, the prompt is at
///    least [`MEDIUM_PROMPT_CHARS`] long, or `max_tokens` is at least [`MEDIUM_MAX_TOKENS`].
/// 3. **Small** otherwise.
pub fn classify(facts: &RequestFacts) -> Tier {
    if facts.reasoning_markers > 0 || facts.prompt_chars >= LARGE_PROMPT_CHARS {
        Tier::Large
    } else if facts.has_tools
        || facts.has_code
        || facts.prompt_chars >= MEDIUM_PROMPT_CHARS
        || facts.max_tokens.is_some_and(|m| m >= MEDIUM_MAX_TOKENS)
    {
        Tier::Medium
    } else {
        Tier::Small
    }
}

/// Scans prompt text for the facts [`classify`] needs: its length, code (a ``` fence, or two
/// different [`CODE_SIGNS`]) and distinct [`REASONING_MARKERS`]. Signs and markers match only
/// at the start of a word, so "improve" is not "prove" and "dilemma" is not "lemma".
pub fn scan_prompt(text: &str) -> PromptScan {
    let lower = text.to_lowercase();
    let code_signs = CODE_SIGNS
        .iter()
        .filter(|s| contains_at_word_start(&lower, s))
        .count();
    let markers = REASONING_MARKERS
        .iter()
        .filter(|m| contains_at_word_start(&lower, m))
        .count();
    PromptScan {
        chars: u64::try_from(text.chars().count()).unwrap_or(u64::MAX),
        has_code: lower.contains("```") || code_signs >= 2,
        reasoning_markers: u32::try_from(markers).unwrap_or(u32::MAX),
    }
}

/// Whether `needle` occurs in `hay` where the preceding character is not alphanumeric.
fn contains_at_word_start(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(at, _)| {
        hay[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric())
    })
}

impl RequestFacts {
    /// Facts from prompt text plus what the request body says directly.
    pub fn from_prompt(text: &str, has_tools: bool, max_tokens: Option<u64>) -> Self {
        let scan = scan_prompt(text);
        Self {
            prompt_chars: scan.chars,
            has_code: scan.has_code,
            has_tools,
            reasoning_markers: scan.reasoning_markers,
            max_tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(text: &str) -> Tier {
        classify(&RequestFacts::from_prompt(text, false, None))
    }

    #[test]
    fn everyday_prompts_are_small() {
        assert_eq!(tier("Translate 'good morning' into French."), Tier::Small);
        assert_eq!(tier("What do you think of this title?"), Tier::Small);
        assert_eq!(tier("How can I improve this dilemma essay?"), Tier::Small);
        assert_eq!(tier(""), Tier::Small);
    }

    #[test]
    fn code_tools_length_and_long_answers_are_medium() {
        assert_eq!(
            tier("Why does this fail?\n```rust\nfn main() { let x: u8 = 300; }\n```"),
            Tier::Medium
        );
        assert_eq!(
            tier("def add(a, b):\n    return a + b\nwhat is wrong?"),
            Tier::Medium
        );
        assert_eq!(
            classify(&RequestFacts::from_prompt(
                "What's the weather?",
                true,
                None
            )),
            Tier::Medium
        );
        assert_eq!(tier(&"lorem ipsum ".repeat(400)), Tier::Medium);
        assert_eq!(
            classify(&RequestFacts::from_prompt(
                "Write a story.",
                false,
                Some(4_000)
            )),
            Tier::Medium
        );
    }

    #[test]
    fn reasoning_markers_and_very_long_prompts_are_large() {
        assert_eq!(
            tier("Prove that the square root of 2 is irrational."),
            Tier::Large
        );
        assert_eq!(
            tier("A train leaves at 3pm... Solve it step by step."),
            Tier::Large
        );
        assert_eq!(tier("Evaluate $\\int_0^1 x^2 dx$"), Tier::Large);
        assert_eq!(tier(&"lorem ipsum ".repeat(3_000)), Tier::Large);
    }

    #[test]
    fn tiers_parse_and_order() {
        assert_eq!(Tier::parse("Large"), Some(Tier::Large));
        assert_eq!(Tier::parse("huge"), None);
        assert!(Tier::Small < Tier::Medium && Tier::Medium < Tier::Large);
    }
}

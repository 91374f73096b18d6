//! Deterministic content and token counts, derived from the request alone.
//!
//! The same conversation always gets the same words, ids and usage, so a test
//! can predict an answer and two runs can be compared. The rules:
//!
//! 1. Prompt tokens are `ceil(text bytes / 4) + 3` per message, where a system
//!    prompt counts as a message, and never more than the request body's
//!    bytes (a real tokenizer never exceeds one token per byte, and the
//!    gateway bounds a request's cost by that).
//! 2. A text answer has `min(max_tokens, 16)` words, 16 when no limit is given;
//!    each word is one token. It was cut by the limit when `max_tokens < 16`.
//! 3. Words are picked by a hash of the message texts (not of roles or JSON
//!    layout, so translating a request between formats keeps the seed).

use crate::tool::ToolCall;

/// Words an answer is made of.
const WORDS: [&str; 32] = [
    "alpha", "bravo", "cobalt", "delta", "ember", "falcon", "garnet", "harbor", "indigo",
    "juniper", "kestrel", "lantern", "meadow", "nickel", "orchid", "pepper", "quartz", "raven",
    "saffron", "timber", "umber", "velvet", "willow", "xenon", "yarrow", "zephyr", "amber",
    "basil", "cedar", "dune", "fern", "grove",
];

/// Longest answer, in tokens: long enough to stream, short enough to be fast.
pub(crate) const MAX_ANSWER_TOKENS: u64 = 16;

/// Tokens added per message for the role and framing, as real chat formats do.
const TOKENS_PER_MESSAGE: u64 = 3;

/// Bytes per token for text, the usual rule of thumb for English.
const BYTES_PER_TOKEN: u64 = 4;

/// FNV-1a offset basis: the seed of an empty prompt.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a prime.
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// Accumulates a prompt's messages into a seed and a token count.
#[derive(Clone, Debug)]
pub(crate) struct Prompt {
    seed: u64,
    text_bytes: u64,
    messages: u64,
}

/// What the assistant answers: text, or a call of a forced tool.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Answer {
    /// Words.
    Text(TextAnswer),
    /// A forced tool call.
    Tool(ToolCall),
}

/// A text answer: its words as streamed (the first bare, the rest prefixed
/// with a space, so that joining them gives the full text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TextAnswer {
    /// One piece per token.
    pub(crate) pieces: Vec<String>,
    /// True when `max_tokens` stopped the answer early.
    pub(crate) truncated: bool,
}

// === impl Prompt ===

impl Prompt {
    /// An empty prompt.
    pub(crate) fn new() -> Self {
        Self {
            seed: FNV_OFFSET,
            text_bytes: 0,
            messages: 0,
        }
    }

    /// Starts a new message (a separator in the seed, framing in the count).
    pub(crate) fn begin_message(&mut self) {
        self.messages += 1;
        self.seed = fnv1a(self.seed, &[0xff]);
    }

    /// Adds text to the current message.
    pub(crate) fn text(&mut self, text: &str) {
        self.text_bytes += text.len() as u64;
        self.seed = fnv1a(self.seed, text.as_bytes());
    }

    /// The seed for everything derived from this prompt.
    pub(crate) fn seed(&self) -> u64 {
        mix(self.seed)
    }

    /// Prompt tokens (rule 1), bounded by the body's length in bytes.
    pub(crate) fn tokens(&self, body_bytes: usize) -> u64 {
        let tokens = self.text_bytes.div_ceil(BYTES_PER_TOKEN) + TOKENS_PER_MESSAGE * self.messages;
        tokens.min(body_bytes as u64)
    }
}

/// Tokens for a piece of embedding input text (rule 1 without framing).
pub(crate) fn text_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(BYTES_PER_TOKEN)
}

/// The text answer for `seed` under `max_tokens` (rule 2).
pub(crate) fn text_answer(seed: u64, max_tokens: Option<u64>) -> TextAnswer {
    let count = max_tokens.map_or(MAX_ANSWER_TOKENS, |m| m.min(MAX_ANSWER_TOKENS));
    let pieces = (0..count)
        .map(|i| {
            let word = word(mix(seed ^ i));
            if i == 0 {
                word.to_owned()
            } else {
                format!(" {word}")
            }
        })
        .collect();
    TextAnswer {
        pieces,
        truncated: count < MAX_ANSWER_TOKENS,
    }
}

impl Answer {
    /// Completion tokens of the whole answer.
    pub(crate) fn tokens(&self) -> u64 {
        match self {
            Self::Text(text) => text.tokens(),
            Self::Tool(call) => call.tokens(),
        }
    }
}

impl TextAnswer {
    /// The full text.
    pub(crate) fn text(&self) -> String {
        self.pieces.concat()
    }

    /// Completion tokens: one per piece.
    pub(crate) fn tokens(&self) -> u64 {
        self.pieces.len() as u64
    }
}

/// A word chosen by `hash`.
pub(crate) fn word(hash: u64) -> &'static str {
    let index = usize::try_from(hash % WORDS.len() as u64).unwrap_or(0);
    WORDS.get(index).copied().unwrap_or("alpha")
}

/// `len` alphanumeric characters derived from `seed`, for ids.
pub(crate) fn id_chars(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len as u64)
        .map(|i| {
            let index = usize::try_from(mix(seed ^ i) % ALPHABET.len() as u64).unwrap_or(0);
            char::from(ALPHABET.get(index).copied().unwrap_or(b'A'))
        })
        .collect()
}

/// FNV-1a of `bytes`, continuing from `hash`.
pub(crate) fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// FNV-1a of `bytes` from the standard offset.
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    fnv1a(FNV_OFFSET, bytes)
}

/// SplitMix64's finaliser: spreads nearby inputs over the whole range.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(messages: &[&str]) -> Prompt {
        let mut prompt = Prompt::new();
        for text in messages {
            prompt.begin_message();
            prompt.text(text);
        }
        prompt
    }

    #[test]
    fn prompt_tokens_follow_the_rule() {
        // 5 bytes -> 2 tokens, 8 bytes -> 2 tokens, plus 3 per message.
        assert_eq!(prompt(&["hello", "12345678"]).tokens(usize::MAX), 2 + 2 + 6);
    }

    #[test]
    fn prompt_tokens_never_exceed_body_bytes() {
        assert_eq!(prompt(&["", "", ""]).tokens(5), 5);
    }

    #[test]
    fn answers_are_deterministic_and_depend_on_the_prompt() {
        let a = text_answer(prompt(&["hi"]).seed(), None);
        assert_eq!(a, text_answer(prompt(&["hi"]).seed(), None));
        assert_ne!(a, text_answer(prompt(&["ho"]).seed(), None));
        assert_ne!(
            text_answer(prompt(&["a", "b"]).seed(), None),
            text_answer(prompt(&["ab"]).seed(), None)
        );
    }

    #[test]
    fn answer_length_follows_max_tokens() {
        let full = text_answer(1, None);
        assert_eq!((full.tokens(), full.truncated), (16, false));
        let exact = text_answer(1, Some(16));
        assert_eq!((exact.tokens(), exact.truncated), (16, false));
        let short = text_answer(1, Some(5));
        assert_eq!((short.tokens(), short.truncated), (5, true));
        assert!(short.text().split(' ').count() == 5);
    }

    #[test]
    fn ids_are_alphanumeric_of_the_asked_length() {
        let id = id_chars(7, 24);
        assert_eq!(id.len(), 24);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}

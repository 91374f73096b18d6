//! Reading `usage` from an Anthropic message body or stream event.
//!
//! Anthropic reports cache-creation and cache-read tokens apart from
//! `input_tokens`; they are still prompt tokens the provider bills, so they
//! are summed into [`Usage::prompt_tokens`], matching OpenAI's meaning.

use serde::Deserialize;

use crate::Usage;

/// Reads `usage.input_tokens` / `usage.output_tokens` (plus cache tokens into
/// the prompt count) from a non-stream Messages response body.
///
/// Returns `None` when the body is not JSON or has no `usage` object.
pub fn usage_of(body: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Body {
        usage: Option<RawUsage>,
    }
    let body: Body = serde_json::from_slice(body).ok()?;
    body.usage.map(|u| u.into_usage())
}

/// Anthropic's `usage` object; every field optional because `message_delta`
/// events carry only some of them.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub(crate) struct RawUsage {
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) cache_creation_input_tokens: Option<u64>,
    pub(crate) cache_read_input_tokens: Option<u64>,
}

impl RawUsage {
    /// All prompt tokens, if any prompt count is present.
    pub(crate) fn prompt_tokens(&self) -> Option<u64> {
        let parts = [
            self.input_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        ];
        parts.iter().any(Option::is_some).then(|| {
            parts
                .iter()
                .flatten()
                .fold(0u64, |a, b| a.saturating_add(*b))
        })
    }

    /// The counts, missing ones as 0.
    pub(crate) fn into_usage(self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens().unwrap_or(0),
            completion_tokens: self.output_tokens.unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_usage_with_cache_tokens_in_the_prompt() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Hi"}],"usage":{"input_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":7}}"#;
        assert_eq!(
            usage_of(body),
            Some(Usage {
                prompt_tokens: 115,
                completion_tokens: 7
            })
        );
    }

    #[test]
    fn missing_usage_is_none() {
        assert_eq!(usage_of(br#"{"type":"message"}"#), None);
        assert_eq!(usage_of(b"{"), None);
    }
}

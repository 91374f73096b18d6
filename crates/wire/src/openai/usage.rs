//! Reading `usage` from an OpenAI chat or embeddings response body.
//!
//! This runs on every non-stream response, so it deserializes into a struct
//! with one field: serde skips everything else without building values.

use serde::Deserialize;

use crate::Usage;

/// Reads only `usage` from a non-stream chat or embeddings response body.
///
/// Returns `None` when the body is not JSON or has no `usage` object.
/// Embeddings usage has no `completion_tokens`; it reads as 0.
pub fn usage_of(body: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Body {
        usage: Option<RawUsage>,
    }
    let body: Body = serde_json::from_slice(body).ok()?;
    body.usage.map(RawUsage::into_usage)
}

/// OpenAI's `usage` object as sent; fields are optional because
/// OpenAI-compatible upstreams disagree on which ones they fill.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

impl RawUsage {
    /// The counts, missing ones as 0.
    pub(crate) fn into_usage(self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.unwrap_or(0),
            completion_tokens: self.completion_tokens.unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chat_usage_and_ignores_the_rest() {
        let body = br#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#;
        assert_eq!(
            usage_of(body),
            Some(Usage {
                prompt_tokens: 9,
                completion_tokens: 12
            })
        );
    }

    #[test]
    fn embeddings_usage_has_no_completion_tokens() {
        let body = br#"{"object":"list","data":[],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        assert_eq!(
            usage_of(body),
            Some(Usage {
                prompt_tokens: 8,
                completion_tokens: 0
            })
        );
    }

    #[test]
    fn missing_or_unreadable_usage_is_none() {
        assert_eq!(usage_of(br#"{"id":"x"}"#), None);
        assert_eq!(usage_of(br#"{"usage":null}"#), None);
        assert_eq!(usage_of(b"not json"), None);
    }
}

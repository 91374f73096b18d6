//! Watching a pass-through OpenAI stream for billing.
//!
//! Same-format streams are forwarded byte for byte; the gateway still needs
//! the usage (from the final usage chunk), an estimate of output when the
//! stream is cut before that chunk, and whether `[DONE]` arrived. This runs
//! on every event of every stream, so it scans bytes and parses JSON only for
//! a chunk that carries a `usage` object.

use serde::Deserialize;

use crate::Usage;
use crate::openai::RawUsage;
use crate::sse::SseEvent;

/// Billing view of a pass-through OpenAI chat stream.
#[derive(Debug, Default)]
pub struct StreamObserver {
    /// Usage from the last chunk that carried a `usage` object.
    usage: Option<Usage>,
    /// Content, refusal and tool-argument deltas seen: one per fragment, a
    /// fallback estimate of completion tokens when the usage chunk never
    /// comes.
    tokens_seen: u64,
    /// `data: [DONE]` arrived: the only clean end of an OpenAI stream.
    done: bool,
}

impl StreamObserver {
    /// A fresh observer for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts for one upstream event.
    pub fn observe(&mut self, ev: &SseEvent) {
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return;
        }
        self.tokens_seen = self.tokens_seen.saturating_add(count_deltas(data));
        if carries_usage(data) {
            #[derive(Deserialize)]
            struct Chunk {
                usage: Option<RawUsage>,
            }
            if let Ok(Chunk { usage: Some(u) }) = serde_json::from_str::<Chunk>(data) {
                self.usage = Some(u.into_usage());
            }
        }
    }

    /// Usage reported by the upstream, once its usage chunk has been seen.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Non-empty content and argument deltas seen so far.
    pub fn tokens_seen(&self) -> u64 {
        self.tokens_seen
    }

    /// Whether the stream finished cleanly with `data: [DONE]`.
    pub fn done(&self) -> bool {
        self.done
    }
}

/// Keys whose non-empty string value is one generated fragment. The leading
/// quote is left off `content` so `reasoning_content` (billed as output by
/// the providers that send it) counts too.
const DELTA_KEYS: [&[u8]; 3] = [b"content\"", b"\"arguments\"", b"\"refusal\""];

/// Non-empty string values under a delta key, found by a byte scan.
pub(crate) fn count_deltas(data: &str) -> u64 {
    let bytes = data.as_bytes();
    DELTA_KEYS
        .iter()
        .map(|key| {
            let mut count = 0;
            let mut from = 0;
            while let Some(at) = find(&bytes[from..], key) {
                let after = from + at + key.len();
                if starts_non_empty_string(&bytes[after..]) {
                    count += 1;
                }
                from = after;
            }
            count
        })
        .sum()
}

/// Whether `data` has a `"usage"` key whose value is an object (not `null`,
/// which every chunk of an `include_usage` stream carries).
pub(crate) fn carries_usage(data: &str) -> bool {
    let bytes = data.as_bytes();
    let key = b"\"usage\"";
    let mut from = 0;
    while let Some(at) = find(&bytes[from..], key) {
        let after = from + at + key.len();
        if let Some(rest) = after_colon(&bytes[after..])
            && rest.first() == Some(&b'{')
        {
            return true;
        }
        from = after;
    }
    false
}

/// `rest` begins with `: "x` (whitespace allowed), a non-empty string value.
fn starts_non_empty_string(rest: &[u8]) -> bool {
    match after_colon(rest) {
        Some([b'"', next, ..]) => *next != b'"',
        _ => false,
    }
}

/// The bytes after `\s*:\s*`, if `rest` starts that way.
fn after_colon(rest: &[u8]) -> Option<&[u8]> {
    let rest = rest.trim_ascii_start().strip_prefix(b":")?;
    Some(rest.trim_ascii_start())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(d: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: d.to_owned(),
        }
    }

    #[test]
    fn counts_content_and_argument_fragments_then_reads_usage() {
        let mut obs = StreamObserver::new();
        for d in [
            r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}}]}}],"usage":null}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"reasoning_content": "hm"}}]}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#,
            r#"{"id":"c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#,
        ] {
            obs.observe(&data(d));
            assert!(!obs.done());
        }
        assert_eq!(obs.tokens_seen(), 3);
        assert_eq!(
            obs.usage(),
            Some(Usage {
                prompt_tokens: 9,
                completion_tokens: 3
            })
        );
        obs.observe(&data("[DONE]"));
        assert!(obs.done());
    }

    #[test]
    fn a_cut_stream_is_not_done_and_has_no_usage() {
        let mut obs = StreamObserver::new();
        obs.observe(&data(r#"{"choices":[{"delta":{"content":"Hi"}}]}"#));
        assert!(!obs.done());
        assert_eq!(obs.usage(), None);
        assert_eq!(obs.tokens_seen(), 1);
    }

    #[test]
    fn usage_scan_ignores_null_and_escaped_mentions() {
        assert!(!carries_usage(r#"{"usage":null}"#));
        assert!(!carries_usage(r#"{"content":"the \"usage\" word"}"#));
        assert!(carries_usage(r#"{"usage" : {"prompt_tokens":1}}"#));
    }
}

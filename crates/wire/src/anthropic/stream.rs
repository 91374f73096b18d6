//! Watching a pass-through Anthropic stream for billing, and Anthropic framing.
//!
//! Anthropic reports input tokens in `message_start` and cumulative output
//! tokens in `message_delta`; `message_stop` is the only clean end. The
//! observer reads those and counts `content_block_delta` events as the
//! fallback estimate for a stream cut before `message_delta`.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use crate::Usage;
use crate::anthropic::RawUsage;
use crate::sse::{self, SseEvent};

/// Billing view of a pass-through Anthropic Messages stream.
#[derive(Debug, Default)]
pub struct StreamObserver {
    /// Prompt tokens from `message_start` (updated if `message_delta`
    /// reports them again); `None` until the upstream has said anything.
    prompt_tokens: Option<u64>,
    /// Latest cumulative `output_tokens`. The value in `message_start` is a
    /// placeholder, so on a cut stream prefer `max(this, tokens_seen)`.
    completion_tokens: u64,
    /// `content_block_delta` events seen.
    tokens_seen: u64,
    /// `message_stop` arrived.
    done: bool,
}

impl StreamObserver {
    /// A fresh observer for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts for one upstream event. Only `message_start` and
    /// `message_delta` are parsed; deltas are counted by name.
    pub fn observe(&mut self, ev: &SseEvent) {
        match event_type(ev).as_deref() {
            Some("content_block_delta") => self.tokens_seen = self.tokens_seen.saturating_add(1),
            Some("message_start") => {
                #[derive(Deserialize)]
                struct Start {
                    message: Message,
                }
                #[derive(Deserialize)]
                struct Message {
                    #[serde(default)]
                    usage: RawUsage,
                }
                if let Ok(start) = serde_json::from_str::<Start>(&ev.data) {
                    self.record(start.message.usage);
                }
            }
            Some("message_delta") => {
                #[derive(Deserialize)]
                struct Delta {
                    #[serde(default)]
                    usage: RawUsage,
                }
                if let Ok(delta) = serde_json::from_str::<Delta>(&ev.data) {
                    self.record(delta.usage);
                }
            }
            Some("message_stop") => self.done = true,
            _ => {}
        }
    }

    fn record(&mut self, usage: RawUsage) {
        if let Some(p) = usage.prompt_tokens() {
            self.prompt_tokens = Some(p);
        } else if self.prompt_tokens.is_none() {
            self.prompt_tokens = Some(0);
        }
        if let Some(o) = usage.output_tokens {
            self.completion_tokens = o;
        }
    }

    /// Usage reported so far: input from `message_start`, output from the
    /// latest `message_delta`. `None` before `message_start`.
    pub fn usage(&self) -> Option<Usage> {
        self.prompt_tokens.map(|prompt_tokens| Usage {
            prompt_tokens,
            completion_tokens: self.completion_tokens,
        })
    }

    /// `content_block_delta` events seen so far.
    pub fn tokens_seen(&self) -> u64 {
        self.tokens_seen
    }

    /// Whether `message_stop` arrived.
    pub fn done(&self) -> bool {
        self.done
    }
}

/// The event's type: its `event:` name, else the `"type"` in its data
/// (parsed only for streams that omit the name, which Anthropic never does).
pub(crate) fn event_type(ev: &SseEvent) -> Option<std::borrow::Cow<'_, str>> {
    if let Some(name) = ev.event.as_deref() {
        return Some(name.into());
    }
    #[derive(Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Typed>(&ev.data)
        .ok()
        .map(|t| t.kind.into())
}

/// An Anthropic frame: `event: {event_type}` and the payload with
/// `"type": event_type` added, since the SDKs dispatch on both.
pub(crate) fn frame(event_type: &str, mut payload: Value) -> Bytes {
    if let Value::Object(map) = &mut payload {
        map.insert("type".to_owned(), Value::String(event_type.to_owned()));
    }
    sse::event_frame(event_type, &payload.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, data: &str) -> SseEvent {
        SseEvent {
            event: Some(name.to_owned()),
            data: data.to_owned(),
        }
    }

    #[test]
    fn reads_usage_from_start_and_delta_and_counts_deltas() {
        let mut obs = StreamObserver::new();
        assert_eq!(obs.usage(), None);
        obs.observe(&ev(
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}"#,
        ));
        obs.observe(&ev("ping", r#"{"type": "ping"}"#));
        for _ in 0..3 {
            obs.observe(&ev(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
            ));
        }
        assert_eq!(
            obs.usage(),
            Some(Usage {
                prompt_tokens: 25,
                completion_tokens: 1
            })
        );
        obs.observe(&ev(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
        ));
        assert!(!obs.done());
        obs.observe(&ev("message_stop", r#"{"type":"message_stop"}"#));
        assert!(obs.done());
        assert_eq!(obs.tokens_seen(), 3);
        assert_eq!(
            obs.usage(),
            Some(Usage {
                prompt_tokens: 25,
                completion_tokens: 15
            })
        );
    }

    #[test]
    fn events_without_a_name_are_typed_from_their_data() {
        let mut obs = StreamObserver::new();
        obs.observe(&SseEvent {
            event: None,
            data: r#"{"type":"message_stop"}"#.into(),
        });
        assert!(obs.done());
    }

    #[test]
    fn frames_carry_the_type_in_both_places() {
        let f = frame("ping", serde_json::json!({}));
        assert_eq!(&f[..], b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
    }
}

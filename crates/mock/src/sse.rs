//! Server-sent events framing and the script of a streamed answer.
//!
//! A streamed answer is computed in full before its first byte is sent: a list
//! of frames, each with the delay that precedes it and the number of content
//! tokens it carries. Computing it up front keeps the format code free of
//! timing and lets the `cut_after_tokens` fault truncate any stream at the same
//! place, whatever its format.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

/// One `data:` event (OpenAI style, no event name).
pub(crate) fn data(json: &Value) -> Bytes {
    Bytes::from(format!("data: {json}\n\n"))
}

/// One named event (Anthropic style: `event:` line, then `data:`).
pub(crate) fn event(name: &str, json: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

/// OpenAI's end-of-stream sentinel.
pub(crate) const DONE: &[u8] = b"data: [DONE]\n\n";

/// One frame of a script.
#[derive(Debug)]
pub(crate) struct Step {
    /// Time to wait before sending the frame.
    pub(crate) delay: Duration,
    /// The frame's bytes (one or more whole SSE events).
    pub(crate) data: Bytes,
    /// Content tokens the frame carries (billed once it is sent).
    pub(crate) tokens: u64,
}

/// A finished script: frames, and whether it ends with a cut.
#[derive(Debug)]
pub(crate) struct Script {
    /// Frames in order.
    pub(crate) steps: Vec<Step>,
    /// True when the body must end with an error after the last frame
    /// instead of ending cleanly.
    pub(crate) cut: bool,
}

/// Builds a [`Script`], dropping everything after a cut point.
///
/// With `cut_after` set, the script ends abruptly after that many content
/// tokens, or after the last content token if the answer is shorter: the
/// closing frames (finish chunk, usage, `[DONE]`, `message_stop`) are never
/// sent, so a cut stream can never look complete.
#[derive(Debug)]
pub(crate) struct ScriptBuilder {
    steps: Vec<Step>,
    cut_after: Option<u64>,
    tokens: u64,
    cut: bool,
}

impl ScriptBuilder {
    /// An empty script, cut after `cut_after` tokens when set.
    pub(crate) fn new(cut_after: Option<u64>) -> Self {
        Self {
            steps: Vec::new(),
            cut_after,
            tokens: 0,
            cut: false,
        }
    }

    /// Adds a frame that carries no content tokens.
    pub(crate) fn frame(&mut self, delay: Duration, data: Bytes) {
        if !self.cut {
            self.steps.push(Step {
                delay,
                data,
                tokens: 0,
            });
        }
    }

    /// Adds a frame carrying one content token, unless the cut point is reached.
    pub(crate) fn token(&mut self, delay: Duration, data: Bytes) {
        if self.cut_after.is_some_and(|limit| self.tokens >= limit) {
            self.cut = true;
        }
        if !self.cut {
            self.tokens += 1;
            self.steps.push(Step {
                delay,
                data,
                tokens: 1,
            });
        }
    }

    /// Marks the end of the content tokens; a script with a cut point is cut here.
    pub(crate) fn end_of_tokens(&mut self) {
        if self.cut_after.is_some() {
            self.cut = true;
        }
    }

    /// The finished script.
    pub(crate) fn build(self) -> Script {
        Script {
            steps: self.steps,
            cut: self.cut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(cut_after: Option<u64>) -> Script {
        let mut builder = ScriptBuilder::new(cut_after);
        builder.frame(Duration::ZERO, Bytes::from_static(b"start"));
        for _ in 0..4 {
            builder.token(Duration::ZERO, Bytes::from_static(b"tok"));
        }
        builder.end_of_tokens();
        builder.frame(Duration::ZERO, Bytes::from_static(b"end"));
        builder.build()
    }

    #[test]
    fn uncut_script_keeps_every_frame() {
        let script = script(None);
        assert!(!script.cut);
        assert_eq!(script.steps.len(), 6);
    }

    #[test]
    fn cut_script_stops_after_n_tokens() {
        let script = script(Some(2));
        assert!(script.cut);
        assert_eq!(script.steps.len(), 3);
        assert_eq!(script.steps.iter().map(|s| s.tokens).sum::<u64>(), 2);
    }

    #[test]
    fn cut_beyond_the_answer_still_drops_the_closing_frames() {
        let script = script(Some(10));
        assert!(script.cut);
        assert_eq!(script.steps.len(), 5);
    }

    #[test]
    fn named_events_have_event_and_data_lines() {
        let frame = event("ping", &serde_json::json!({"type": "ping"}));
        assert_eq!(&frame[..], b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
    }
}

//! Server-Sent Events: an incremental decoder and the two frame shapes we send.
//!
//! Upstream streams arrive in arbitrary chunks: a line, an event or even a
//! UTF-8 character may be split across reads. [`SseDecoder`] accepts bytes as
//! they come and hands out whole events, following the WHATWG event-stream
//! rules that matter for LLM APIs: `\n`, `\r\n` and `\r` line endings,
//! several `data:` lines joined with `\n`, `:` comments ignored, the `event:`
//! name kept (Anthropic's framing needs it), `id:` and `retry:` ignored.

use bytes::Bytes;

/// One decoded event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if the event had one (Anthropic streams always do).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental SSE decoder: [`push`](Self::push) bytes in any chunking, then
/// drain [`next_event`](Self::next_event) until it returns `None`.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes received and not yet consumed as whole lines. Everything before
    /// `pos` is consumed; `push` drops that prefix so the buffer stays about
    /// one partial line long between reads.
    buf: Vec<u8>,
    /// Start of the first unconsumed line in `buf`.
    pos: usize,
    /// Offset in `buf` up to which the unconsumed bytes are known to hold no
    /// line terminator, so a long line split over many chunks is scanned once.
    scanned: usize,
    /// Whether a leading UTF-8 byte order mark has been looked for; the spec
    /// strips one at the very start of the stream only.
    bom_checked: bool,
    /// Fields of the event being assembled, reset at each blank line.
    pending: Pending,
}

/// Fields gathered since the last blank line.
#[derive(Debug, Default)]
struct Pending {
    event: Option<String>,
    data: String,
    /// Distinguishes `data:` with an empty value (dispatches an event with
    /// empty data) from no data line at all (dispatches nothing).
    has_data: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseDecoder {
    /// An empty decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.scanned = self.scanned.saturating_sub(self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, or `None` until more bytes are pushed.
    ///
    /// An event is complete at the blank line that ends it; an event still
    /// open when the stream ends is never returned, as the spec requires, so
    /// a cut stream cannot pass for a finished one.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        if !self.bom_checked {
            let head = &self.buf[self.pos..];
            if head.len() < BOM.len() && BOM.starts_with(head) {
                // Could still become a BOM: wait for more bytes.
                return None;
            }
            if head.starts_with(BOM) {
                self.pos += BOM.len();
                self.scanned = self.pos;
            }
            self.bom_checked = true;
        }
        loop {
            let (end, next) = self.next_line()?;
            let line = &self.buf[self.pos..end];
            let event = self.pending.take_line(line);
            self.pos = next;
            self.scanned = next;
            if event.is_some() {
                return event;
            }
        }
    }

    /// The end of the first whole line and the start of the one after it.
    fn next_line(&mut self) -> Option<(usize, usize)> {
        let from = self.scanned.max(self.pos);
        let rel = self.buf[from..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r');
        let Some(rel) = rel else {
            self.scanned = self.buf.len();
            return None;
        };
        let end = from + rel;
        if self.buf[end] == b'\n' {
            return Some((end, end + 1));
        }
        // A `\r` ends the line, but may be the first half of `\r\n`; if the
        // next byte has not arrived yet we cannot know how much to consume.
        match self.buf.get(end + 1) {
            None => {
                self.scanned = end;
                None
            }
            Some(b'\n') => Some((end, end + 2)),
            Some(_) => Some((end, end + 1)),
        }
    }
}

impl Pending {
    /// Applies one line; returns an event when the line is the blank line
    /// that dispatches it.
    fn take_line(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
            if !std::mem::take(&mut self.has_data) {
                return None;
            }
            return Some(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
        if line[0] == b':' {
            return None;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        // Lines never split a UTF-8 sequence (terminators are ASCII), so
        // lossy decoding only replaces bytes that were invalid to begin with.
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"event" => {
                self.event =
                    (!value.is_empty()).then(|| String::from_utf8_lossy(value).into_owned());
            }
            _ => {}
        }
        None
    }
}

/// `data: {data}\n\n`. A newline inside `data` starts another `data:` line,
/// so the receiver joins them back into the same text.
pub fn data_frame(data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 8);
    push_data(&mut out, data);
    out.push('\n');
    Bytes::from(out)
}

/// `event: {event}\ndata: {data}\n\n`, the framing Anthropic streams use.
pub fn event_frame(event: &str, data: &str) -> Bytes {
    let mut out = String::with_capacity(event.len() + data.len() + 16);
    out.push_str("event: ");
    out.push_str(event);
    out.push('\n');
    push_data(&mut out, data);
    out.push('\n');
    Bytes::from(out)
}

/// Appends one `data:` line per line of `data`, each ended with `\n`.
fn push_data(out: &mut String, data: &str) {
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
}

#[cfg(test)]
#[path = "sse/tests.rs"]
mod tests;

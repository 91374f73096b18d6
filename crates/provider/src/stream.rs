//! A streamed upstream response, translated frame by frame into the client's format as it
//! arrives (never buffered whole). It watches usage and completion, and guarantees an honest end:
//! a stream cut upstream (body error, early EOF, total timeout) ends with an explicit error event
//! in the client's format, never with `[DONE]` or `message_stop`. However it ends — finish, cut
//! or the client dropping it — its end hook runs exactly once.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http_body::Body;
use hyper::body::Incoming;
use switchyard_core::OutcomeClass;
use switchyard_core::clock::SharedClock;
use switchyard_wire::sse::{SseDecoder, SseEvent, data_frame, event_frame};
use switchyard_wire::translate::{AnthropicToOpenAiStream, OpenAiToAnthropicStream};
use switchyard_wire::{Usage, anthropic, openai};
use tokio::time::{Instant, Sleep};

use crate::call::{CallError, Format, StreamEnd, StreamHook};
use crate::gate::Permit;

/// How frames are produced from upstream events.
enum Mode {
    /// OpenAI in, OpenAI out. `strip_usage` drops the usage-only chunk the client did not ask for.
    OpenAiPass {
        obs: openai::StreamObserver,
        strip_usage: bool,
    },
    /// Anthropic in, Anthropic out.
    AnthropicPass { obs: anthropic::StreamObserver },
    /// Anthropic upstream, OpenAI client.
    AnthropicToOpenAi(AnthropicToOpenAiStream),
    /// OpenAI upstream, Anthropic client.
    OpenAiToAnthropic(OpenAiToAnthropicStream),
}

impl Mode {
    fn usage(&self) -> Option<Usage> {
        match self {
            Mode::OpenAiPass { obs, .. } => obs.usage(),
            Mode::AnthropicPass { obs } => obs.usage(),
            Mode::AnthropicToOpenAi(t) => t.usage(),
            Mode::OpenAiToAnthropic(t) => t.usage(),
        }
    }

    fn tokens_seen(&self) -> u64 {
        match self {
            Mode::OpenAiPass { obs, .. } => obs.tokens_seen(),
            Mode::AnthropicPass { obs } => obs.tokens_seen(),
            Mode::AnthropicToOpenAi(t) => t.tokens_seen(),
            Mode::OpenAiToAnthropic(t) => t.tokens_seen(),
        }
    }

    fn done(&self) -> bool {
        match self {
            Mode::OpenAiPass { obs, .. } => obs.done(),
            Mode::AnthropicPass { obs } => obs.done(),
            Mode::AnthropicToOpenAi(t) => t.done(),
            Mode::OpenAiToAnthropic(t) => t.done(),
        }
    }
}

/// The client-facing stream of an upstream SSE response.
pub struct UpstreamStream {
    /// The upstream body; dropping it closes the upstream connection, which stops generation.
    body: Incoming,
    decoder: SseDecoder,
    mode: Mode,
    client_format: Format,
    /// Frames ready for the client.
    pending: VecDeque<Bytes>,
    /// Fires at the call's total deadline; the stream is then cut as a timeout.
    deadline: Pin<Box<Sleep>>,
    clock: SharedClock,
    started: Instant,
    ttft: Option<Duration>,
    prompt_estimate_tokens: u64,
    /// Set once the stream has ended (cleanly or not); later polls return `None`.
    ended: bool,
    /// How the stream ended (meaningful once `ended`).
    end_class: OutcomeClass,
    /// The provider's own outcome report; runs once at the end, `None` afterwards.
    hook: Option<StreamHook>,
    /// The node's accounting hook, installed once the stream is handed to the client; runs once
    /// at the end, after `hook`.
    node_hook: Option<StreamHook>,
    /// Holds the provider's in-flight slot for as long as the stream lives.
    _permit: Permit,
}

/// Everything needed to start a stream.
pub(crate) struct StreamParts {
    pub body: Incoming,
    pub client_format: Format,
    pub upstream_format: Format,
    pub public_model: String,
    pub client_include_usage: bool,
    pub created: u64,
    pub request_id: String,
    pub clock: SharedClock,
    pub started: Instant,
    pub deadline: Instant,
    pub prompt_estimate_tokens: u64,
    pub hook: StreamHook,
    pub permit: Permit,
}

impl UpstreamStream {
    pub(crate) fn new(p: StreamParts) -> Self {
        let mode = match (p.upstream_format, p.client_format) {
            (Format::OpenAi, Format::OpenAi) => Mode::OpenAiPass {
                obs: openai::StreamObserver::new(),
                strip_usage: !p.client_include_usage,
            },
            (Format::Anthropic, Format::Anthropic) => Mode::AnthropicPass {
                obs: anthropic::StreamObserver::new(),
            },
            (Format::Anthropic, Format::OpenAi) => Mode::AnthropicToOpenAi(
                AnthropicToOpenAiStream::new(&p.public_model, p.client_include_usage, p.created),
            ),
            (Format::OpenAi, Format::Anthropic) => Mode::OpenAiToAnthropic(
                OpenAiToAnthropicStream::new(&p.public_model, &format!("msg_{}", p.request_id)),
            ),
        };
        Self {
            body: p.body,
            decoder: SseDecoder::new(),
            mode,
            client_format: p.client_format,
            pending: VecDeque::new(),
            deadline: Box::pin(tokio::time::sleep_until(p.deadline)),
            clock: p.clock,
            started: p.started,
            ttft: None,
            prompt_estimate_tokens: p.prompt_estimate_tokens,
            ended: false,
            end_class: OutcomeClass::Ok,
            hook: Some(p.hook),
            node_hook: None,
            _permit: p.permit,
        }
    }

    /// Waits until the first client frame is ready (or `timeout` passes). Until then nothing has
    /// reached the client, so a failure here is still retryable on another target.
    ///
    /// # Errors
    /// [`CallError`] when the stream ends, breaks or stays silent before its first frame. The
    /// end hook has then already run with the failure class.
    ///
    /// # Cancel safety
    /// Not cancel safe: frames read so far stay buffered in `self`, which is fine because a
    /// cancelled first read drops the whole stream.
    pub async fn first_frame(&mut self, timeout: Duration) -> Result<(), CallError> {
        // Wait for the first *token* (not just the role or message_start frame): until then the
        // client has nothing of substance, and a stream that dies between the two is retryable.
        let wait = futures::future::poll_fn(|cx| self.fill_while(cx, |s| s.ttft.is_none()));
        match tokio::time::timeout(timeout, wait).await {
            // Something from upstream is ready for the client.
            Ok(()) if self.ttft.is_some() => Ok(()),
            // Ended (cut) before any upstream frame: nothing reached the client, so drop our own
            // error frame and let the node retry elsewhere.
            Ok(()) => {
                self.pending.clear();
                Err(CallError::server(
                    Some(200),
                    "upstream stream ended before its first event".into(),
                ))
            }
            Err(_) => {
                self.finish(OutcomeClass::Timeout, false);
                Err(CallError::timeout(
                    "upstream stream sent no event before the first-byte timeout".into(),
                ))
            }
        }
    }

    /// Polls upstream until at least one frame is pending or the stream has ended.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.fill_while(cx, |s| s.pending.is_empty())
    }

    /// Polls upstream while `more` holds and the stream has not ended.
    fn fill_while(&mut self, cx: &mut Context<'_>, more: fn(&Self) -> bool) -> Poll<()> {
        while more(self) && !self.ended {
            if self.deadline.as_mut().poll(cx).is_ready() {
                self.cut(
                    OutcomeClass::Timeout,
                    "upstream stream exceeded the total timeout",
                );
                break;
            }
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.decoder.push(&data);
                        while let Some(ev) = self.decoder.next_event() {
                            self.on_event(&ev);
                            if self.ended {
                                break;
                            }
                        }
                    }
                }
                Poll::Ready(Some(Err(_))) => {
                    self.cut(OutcomeClass::ServerError, "upstream stream broke mid-way")
                }
                Poll::Ready(None) => {
                    if self.mode.done() {
                        self.finish(OutcomeClass::Ok, false);
                    } else {
                        self.cut(
                            OutcomeClass::ServerError,
                            "upstream stream ended before completion",
                        );
                    }
                }
            }
        }
        Poll::Ready(())
    }

    fn on_event(&mut self, ev: &SseEvent) {
        let before = self.pending.len();
        match &mut self.mode {
            Mode::OpenAiPass { obs, strip_usage } => {
                obs.observe(ev);
                let usage_only =
                    *strip_usage && ev.data.starts_with('{') && ev.data.contains("\"choices\":[]");
                if !usage_only {
                    self.pending.push_back(data_frame(&ev.data));
                }
            }
            Mode::AnthropicPass { obs } => {
                obs.observe(ev);
                self.pending.push_back(match &ev.event {
                    Some(name) => event_frame(name, &ev.data),
                    None => data_frame(&ev.data),
                });
            }
            Mode::AnthropicToOpenAi(t) => {
                let mut out = Vec::new();
                if t.on_event(ev, &mut out).is_err() {
                    self.cut(
                        OutcomeClass::ServerError,
                        "upstream stream sent an unreadable event",
                    );
                    return;
                }
                self.pending.extend(out);
            }
            Mode::OpenAiToAnthropic(t) => {
                let mut out = Vec::new();
                if t.on_event(ev, &mut out).is_err() {
                    self.cut(
                        OutcomeClass::ServerError,
                        "upstream stream sent an unreadable event",
                    );
                    return;
                }
                self.pending.extend(out);
            }
        }
        if self.ttft.is_none()
            && self.pending.len() > before
            && (self.mode.tokens_seen() > 0 || self.mode.done())
        {
            self.ttft = Some(self.clock.now().saturating_duration_since(self.started));
        }
        if self.mode.done() {
            self.finish(OutcomeClass::Ok, false);
        }
    }

    /// Ends a broken stream with an explicit error event in the client's format.
    fn cut(&mut self, class: OutcomeClass, message: &str) {
        if self.ended {
            return;
        }
        let frame = match self.client_format {
            Format::OpenAi => {
                openai::stream_error_frame(message, "api_error", Some("upstream_stream_error"))
            }
            Format::Anthropic => anthropic::stream_error_frame("api_error", message),
        };
        self.pending.push_back(frame);
        self.finish(class, false);
    }

    /// The usage to account for a stream that ended with `class`, and whether the upstream
    /// reported it. A clean end carries the upstream's own figures. A cut or abandoned stream is
    /// billed at least what was seen: Anthropic reports prompt tokens up front but completion
    /// tokens only at the end, OpenAI reports nothing until the end, so the completion count is
    /// the larger of the reported and the observed, and a missing prompt count is estimated
    /// from the request size (an over-estimate, which keeps budgets safe).
    fn usage_at_end(&self, class: OutcomeClass) -> (Usage, bool) {
        let seen = self.mode.tokens_seen();
        match self.mode.usage() {
            Some(u) if class == OutcomeClass::Ok && self.mode.done() => (u, true),
            Some(u) => (
                Usage {
                    prompt_tokens: u.prompt_tokens.max(1),
                    completion_tokens: u.completion_tokens.max(seen),
                },
                false,
            ),
            None => (
                Usage {
                    prompt_tokens: self.prompt_estimate_tokens,
                    completion_tokens: seen,
                },
                false,
            ),
        }
    }

    /// Marks the end and runs the hook once.
    fn finish(&mut self, class: OutcomeClass, client_gone: bool) {
        self.ended = true;
        if self.hook.is_some() {
            self.end_class = class;
        }
        if let Some(hook) = self.hook.take() {
            let (usage, reported) = self.usage_at_end(class);
            let total = self.clock.now().saturating_duration_since(self.started);
            let end = StreamEnd {
                class,
                usage,
                usage_reported: reported,
                client_gone,
                ttft: self.ttft,
                total,
            };
            hook(end);
            if let Some(node_hook) = self.node_hook.take() {
                node_hook(end);
            }
        }
    }

    /// Installs the node's accounting hook, which runs once when the stream ends. If the stream
    /// already ended (a very short stream fully read by [`first_frame`](Self::first_frame)), the
    /// hook is kept and runs with the recorded end when the stream is dropped or polled out.
    pub fn on_end(&mut self, hook: StreamHook) {
        if self.hook.is_none() {
            // Already ended: run it now with what the end looked like.
            let (usage, usage_reported) = self.usage_at_end(self.end_class);
            let total = self.clock.now().saturating_duration_since(self.started);
            hook(StreamEnd {
                class: self.end_class,
                usage,
                usage_reported,
                client_gone: false,
                ttft: self.ttft,
                total,
            });
        } else {
            self.node_hook = Some(hook);
        }
    }
}

impl Stream for UpstreamStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(b) = this.pending.pop_front() {
            return Poll::Ready(Some(Ok(b)));
        }
        match this.fill(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(this.pending.pop_front().map(Ok)),
        }
    }
}

impl Drop for UpstreamStream {
    fn drop(&mut self) {
        // The client went away (or the node stopped) before the end: the upstream connection
        // closes with `body`, generation stops, and what was produced is billed.
        if !self.ended {
            self.finish(OutcomeClass::Ok, true);
        }
    }
}

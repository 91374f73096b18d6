//! Response bodies: a whole JSON document, or a timed script of SSE frames.
//!
//! The script body is where streaming time passes. It sleeps before each
//! frame that has a delay, sends runs of undelayed frames as one chunk (so a
//! zero-delay stream costs one write), bills the tokens it hands to hyper, and
//! ends a cut script with a body error so hyper aborts the connection instead
//! of finishing the chunked body.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use serde_json::Value;
use tokio::time::Sleep;

use crate::error::MockError;
use crate::ledger::StreamBilling;
use crate::sse::{Script, Step};

/// The body of every response the mock sends.
#[derive(Debug)]
pub(crate) enum MockBody {
    /// A complete body; `None` once sent.
    Full(Option<Bytes>),
    /// A streamed answer.
    Script(Box<ScriptBody>),
}

/// Plays a [`Script`], billing what it sends.
#[derive(Debug)]
pub(crate) struct ScriptBody {
    /// Frames not yet sent.
    steps: VecDeque<Step>,
    /// End with an error instead of cleanly.
    cut: bool,
    /// The delay of the front step, while it runs.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The front step's delay has elapsed.
    waited: bool,
    /// A cut returns `Pending` once before its error, so hyper flushes the
    /// frames already written; without it hyper drops its write buffer with
    /// the connection and the client never sees tokens the ledger billed.
    flushed_before_cut: bool,
    /// Bills on the last frame, on the cut, or on drop (client went away).
    billing: StreamBilling,
}

/// Content type of every JSON answer.
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Content type of every streamed answer.
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream; charset=utf-8");

/// A JSON response with `status`.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<MockBody> {
    let mut response = Response::new(MockBody::Full(Some(Bytes::from(body.to_string()))));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

/// A 200 event-stream response that plays `script`.
pub(crate) fn sse_response(script: Script, billing: StreamBilling) -> Response<MockBody> {
    let body = ScriptBody {
        steps: script.steps.into(),
        cut: script.cut,
        sleep: None,
        waited: false,
        flushed_before_cut: false,
        billing,
    };
    let mut response = Response::new(MockBody::Script(Box::new(body)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, EVENT_STREAM);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = MockError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, MockError>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Script(script) => script.poll_step(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Script(_) => SizeHint::default(),
        }
    }
}

impl ScriptBody {
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, MockError>>> {
        loop {
            if let Some(sleep) = self.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                self.sleep = None;
                self.waited = true;
            }
            let Some(front) = self.steps.front() else {
                return self.poll_end(cx);
            };
            if !front.delay.is_zero() && !self.waited {
                self.sleep = Some(Box::pin(tokio::time::sleep(front.delay)));
                continue;
            }
            self.waited = false;
            let chunk = self.take_undelayed_run();
            if self.steps.is_empty() && !self.cut {
                // Bill before the last bytes go out, so a client that has read
                // the whole stream always finds its entry in the ledger.
                self.billing.finish();
            }
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
    }

    /// Pops the front step and every following step without a delay, as one chunk.
    fn take_undelayed_run(&mut self) -> Bytes {
        let mut run = BytesMut::new();
        let mut tokens = 0;
        while let Some(step) = self.steps.pop_front() {
            run.extend_from_slice(&step.data);
            tokens += step.tokens;
            if self.steps.front().is_none_or(|next| !next.delay.is_zero()) {
                break;
            }
        }
        self.billing.add_tokens(tokens);
        run.freeze()
    }

    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, MockError>>> {
        if !self.cut {
            return Poll::Ready(None);
        }
        if !self.flushed_before_cut {
            self.flushed_before_cut = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.billing.finish();
        Poll::Ready(Some(Err(MockError::StreamCut {
            tokens: self.billing.tokens(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use http_body_util::BodyExt;

    use super::*;
    use crate::ledger::{Charge, Ledger};
    use crate::price::Price;
    use crate::sse::ScriptBuilder;

    fn billing(ledger: &Arc<Ledger>) -> StreamBilling {
        let charge = Charge {
            request_id: "r".to_owned(),
            model: "m".to_owned(),
            price: Price {
                input_micros_per_mtok: 0,
                output_micros_per_mtok: 1_000_000,
            },
            prompt_tokens: 0,
        };
        StreamBilling::new(ledger.clone(), charge)
    }

    fn script(cut_after: Option<u64>, delay: Duration) -> Script {
        let mut builder = ScriptBuilder::new(cut_after);
        builder.frame(Duration::ZERO, Bytes::from_static(b"a"));
        for _ in 0..3 {
            builder.token(delay, Bytes::from_static(b"t"));
        }
        builder.end_of_tokens();
        builder.frame(Duration::ZERO, Bytes::from_static(b"z"));
        builder.build()
    }

    #[tokio::test]
    async fn zero_delay_script_is_one_chunk_and_billed() {
        let ledger = Arc::new(Ledger::default());
        let response = sse_response(script(None, Duration::ZERO), billing(&ledger));
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"atttz");
        assert_eq!(ledger.view().entries[0].completion_tokens, 3);
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn delays_separate_frames() {
        let ledger = Arc::new(Ledger::default());
        let response = sse_response(script(None, Duration::from_millis(5)), billing(&ledger));
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"atttz");
    }

    #[tokio::test]
    async fn cut_script_ends_with_an_error_and_bills_what_was_sent() {
        let ledger = Arc::new(Ledger::default());
        let response = sse_response(script(Some(2), Duration::ZERO), billing(&ledger));
        let err = response.into_body().collect().await.unwrap_err();
        assert!(matches!(err, MockError::StreamCut { tokens: 2 }));
        assert_eq!(ledger.view().total_billed_micros, 2);
    }
}

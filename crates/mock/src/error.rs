//! Errors that end a connection or a body instead of producing a response.
//!
//! Everything the mock can answer is an HTTP response (see `api_error.rs`).
//! These are the cases where the point is *not* to answer: hyper turns a
//! service error into a closed connection without a response, and a body
//! error into an aborted body, which is exactly what the `drop`, `refuse` and
//! `cut_after_tokens` faults must look like to a client.

/// Why the mock abandoned a connection or a response body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MockError {
    /// The `cut_after_tokens` fault ended a stream early.
    #[error("stream cut by fault after {tokens} tokens")]
    StreamCut {
        /// Content tokens sent before the cut.
        tokens: u64,
    },
    /// The `drop` fault closed the connection after reading the request.
    #[error("connection dropped by fault")]
    Dropped,
    /// The `refuse` fault reset the connection.
    #[error("connection refused by fault")]
    Refused,
    /// The request body could not be read (the client went away mid-body).
    #[error("reading request body failed")]
    ReadBody(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl MockError {
    /// A short label for logs.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::StreamCut { .. } => "stream_cut",
            Self::Dropped => "dropped",
            Self::Refused => "refused",
            Self::ReadBody(_) => "read_body",
        }
    }
}

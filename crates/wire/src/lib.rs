//! The OpenAI and Anthropic wire formats as Switchyard speaks them.
//!
//! The gateway accepts OpenAI `/v1/chat/completions` (and `/v1/embeddings`)
//! and Anthropic `/v1/messages` requests, and sends them to upstreams that
//! speak either format. This crate owns everything about those bytes that
//! does not need a socket: reading the facts admission needs from a request,
//! reading `usage` back from a response or a stream, both error body shapes,
//! Server-Sent Events framing, and translation between the two formats in
//! both directions, streams included.
//!
//! It is deliberately pure. There is no async runtime, no I/O and no clock:
//! timestamps and ids are parameters, so every function here is a plain
//! function of its input and can be tested with fixtures alone. Routing,
//! HTTP, retries and pricing belong to other crates.
//!
//! # Layout
//!
//! - [`sse`]: incremental SSE decoder ([`sse::SseDecoder`]) and frame builders.
//! - [`openai`]: request facts ([`openai::chat_facts`],
//!   [`openai::embeddings_facts`]), [`openai::usage_of`], error bodies, and the
//!   pass-through [`openai::StreamObserver`].
//! - [`anthropic`]: the same for the Messages API.
//! - [`translate`]: request, response and stream translation between the two.
//! - [`parse_object`]: a request body to the JSON object the readers take.
//! - [`WireError`]: the one error type; [`Usage`]: token counts read back.

mod body;
mod error;
mod field;
mod usage;

pub mod anthropic;
pub mod openai;
pub mod sse;
pub mod translate;

pub use body::parse_object;
pub use error::WireError;
pub use usage::Usage;

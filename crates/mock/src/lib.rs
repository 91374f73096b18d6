//! The mock LLM provider: a real HTTP/1.1 server that speaks the OpenAI and
//! Anthropic wire formats, with deterministic content and usage, injectable
//! faults and a ledger of what it billed.
//!
//! It is the independent oracle of Switchyard's tests, so it depends on none of
//! the gateway's crates: its token counts, prices, JSON shapes and cost rule are
//! its own, written from the providers' documented examples. A bug in the
//! gateway's cost or translation code then shows up as a disagreement with this
//! crate's ledger instead of being repeated by it.
//!
//! It is also a test fixture rather than part of the gateway, so it binds,
//! spawns and reads the clock directly instead of through the gateway's seams.
//!
//! # Layout
//!
//! - [`serve`] (`server.rs`) accepts connections until its shutdown future
//!   resolves; `socket.rs` is the accepted socket, which can be reset.
//! - `route.rs` classifies each request, applies auth and faults, and hands it
//!   to an endpoint: `openai.rs` (chat, with `openai/stream.rs`),
//!   `embeddings.rs` (with `base64.rs`), `models.rs` and `anthropic.rs`
//!   (messages, with `anthropic/stream.rs`). `api_error.rs` renders error
//!   answers in each provider's shape; `error.rs` holds the errors that end a
//!   connection or body instead of answering.
//! - `content.rs` derives words and token counts from the request; `tool.rs`
//!   builds forced tool calls from a JSON schema.
//! - `sse.rs` frames events; `body.rs` plays a timed script of frames and can
//!   end it abruptly.
//! - `faults.rs`, `ledger.rs` and `control.rs` are the `/_mock` control API and
//!   the state it reads and writes; `state.rs` holds everything a request sees.
//! - [`MockConfig`] (`config.rs`), [`Price`] and [`billed_micros`] (`price.rs`)
//!   are the public configuration and cost rule.
#![expect(
    clippy::disallowed_methods,
    reason = "the mock is an independent fixture and does not use the gateway's seams"
)]

mod anthropic;
mod api_error;
mod base64;
mod body;
mod config;
mod content;
mod control;
mod embeddings;
mod error;
mod faults;
mod ledger;
mod models;
mod openai;
mod price;
mod route;
mod server;
mod socket;
mod sse;
mod state;
mod tool;

pub use config::MockConfig;
pub use price::{Price, billed_micros};
pub use server::serve;

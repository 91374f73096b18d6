//! The OpenAI wire format as the edge and the provider adapters need it.
//!
//! Requests stay `serde_json::Map`s end to end (pass-through traffic is
//! forwarded nearly untouched, so there is no point in a typed round trip);
//! this module reads from them only the facts admission needs, and reads
//! `usage` back from responses and streams.

mod chat;
mod embeddings;
mod error;
mod stream;
mod usage;

pub use chat::{ChatFacts, chat_facts};
pub use embeddings::{EmbeddingsFacts, embeddings_facts};
pub use error::{error_body, stream_error_frame};
pub use stream::StreamObserver;
pub use usage::usage_of;

pub(crate) use usage::RawUsage;

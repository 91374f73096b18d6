//! The Anthropic Messages wire format as the edge and the provider adapters need it.
//!
//! As on the OpenAI side, requests stay `serde_json::Map`s; this module reads
//! the facts admission needs, reads `usage` back, and builds Anthropic's error
//! bodies and stream frames.

mod error;
mod messages;
mod stream;
mod usage;

pub use error::{error_body, stream_error_frame};
pub use messages::{MessagesFacts, messages_facts};
pub use stream::StreamObserver;
pub use usage::usage_of;

pub(crate) use stream::{event_type, frame};
pub(crate) use usage::RawUsage;

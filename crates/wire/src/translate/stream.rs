//! Stream translators: state machines fed one upstream SSE event at a time.
//!
//! Each translator turns an upstream event into zero or more ready-to-send
//! frames in the client's format at once, so the client sees tokens as the
//! upstream produces them; nothing is buffered beyond the state needed to
//! keep block indexes and the final stop reason straight. Each also keeps
//! the billing view (usage, fragments seen, clean end) the gateway settles
//! from, the same one the pass-through observers give.

mod anthropic_to_openai;
mod openai_to_anthropic;

pub use anthropic_to_openai::AnthropicToOpenAiStream;
pub use openai_to_anthropic::OpenAiToAnthropicStream;

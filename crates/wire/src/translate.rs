//! Translation between the OpenAI chat and Anthropic Messages formats.
//!
//! Cross-format traffic is translated both ways: the client's request into
//! the upstream's format, and the upstream's response (or stream, event by
//! event, never buffered whole) back into the client's. System prompts,
//! tool calls with their JSON arguments, and stop reasons survive the trip;
//! fields one side has no meaning for are dropped, except where dropping
//! would silently change the answer (then the request is refused).

mod error_type;
mod response;
mod stop_reason;
mod stream;
mod to_anthropic;
mod to_openai;

pub use response::{anthropic_response_to_openai, openai_response_to_anthropic};
pub use stream::{AnthropicToOpenAiStream, OpenAiToAnthropicStream};
pub use to_anthropic::openai_to_anthropic_request;
pub use to_openai::anthropic_to_openai_request;

//! Token counts read back from an upstream, in one shape for both formats.
//!
//! Billing settles on these two numbers whatever format the upstream spoke,
//! so both formats' readers and the translators hand back this type.

/// Tokens an upstream reports for one request.
///
/// For Anthropic upstreams `prompt_tokens` includes cache-creation and
/// cache-read tokens, as OpenAI's `prompt_tokens` does, so the number means
/// the same thing whichever provider served the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens in the prompt (OpenAI `prompt_tokens`, Anthropic input tokens).
    pub prompt_tokens: u64,
    /// Tokens generated (OpenAI `completion_tokens`, Anthropic `output_tokens`).
    pub completion_tokens: u64,
}

impl Usage {
    /// Prompt plus completion tokens, as OpenAI's `total_tokens`.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

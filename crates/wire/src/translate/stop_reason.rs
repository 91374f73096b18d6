//! Why generation stopped, in each format's words.
//!
//! Clients act on these values (a `tool_calls` finish means "run the tools
//! and call again"), so the mapping must keep that meaning both ways.

/// Anthropic `stop_reason` -> OpenAI `finish_reason`.
pub(crate) fn to_openai(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence and pause_turn all mean the turn ended
        // normally; OpenAI has one word for that. Unknown future reasons
        // fall here too rather than failing a finished response.
        _ => "stop",
    }
}

/// OpenAI `finish_reason` -> Anthropic `stop_reason`.
pub(crate) fn to_anthropic(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        // Anthropic's own word for a filtered answer; the SDKs accept it.
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_and_length_stops_keep_their_meaning_both_ways() {
        for (anthropic, openai) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            assert_eq!(to_openai(anthropic), openai);
            assert_eq!(to_anthropic(openai), anthropic);
        }
        assert_eq!(to_openai("stop_sequence"), "stop");
    }
}

//! Decoder behaviour on the stream shapes both providers send, and the
//! chunk-boundary property: any split of the bytes decodes to the same events.

use proptest::prelude::*;

use super::*;

fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(ev) = decoder.next_event() {
            events.push(ev);
        }
    }
    events
}

fn ev(event: Option<&str>, data: &str) -> SseEvent {
    SseEvent {
        event: event.map(str::to_owned),
        data: data.to_owned(),
    }
}

#[test]
fn anthropic_frames_keep_their_event_name() {
    let stream = b"event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n";
    assert_eq!(
        decode_all(&[stream]),
        vec![
            ev(Some("message_start"), "{\"type\":\"message_start\"}"),
            ev(Some("ping"), "{\"type\": \"ping\"}"),
        ]
    );
}

#[test]
fn crlf_and_bare_cr_line_endings_are_accepted() {
    let stream = b"data: a\r\n\r\ndata: b\r\rdata: c\n\n";
    assert_eq!(
        decode_all(&[stream]),
        vec![ev(None, "a"), ev(None, "b"), ev(None, "c")]
    );
}

#[test]
fn multi_line_data_is_joined_with_newline_and_comments_are_ignored() {
    let stream = b": keep-alive\ndata: first\ndata:second\nid: 7\nretry: 10\n\n";
    assert_eq!(decode_all(&[stream]), vec![ev(None, "first\nsecond")]);
}

#[test]
fn blank_lines_without_data_dispatch_nothing_and_reset_the_name() {
    let stream = b"event: lonely\n\ndata: x\n\ndata:\n\n";
    assert_eq!(decode_all(&[stream]), vec![ev(None, "x"), ev(None, "")]);
}

#[test]
fn an_unterminated_event_is_not_returned() {
    assert_eq!(decode_all(&[b"data: [DONE]\n"]), vec![]);
}

#[test]
fn leading_bom_is_stripped_even_when_split() {
    let events = decode_all(&[b"\xEF", b"\xBB", b"\xBFdata: x\n\n"]);
    assert_eq!(events, vec![ev(None, "x")]);
}

#[test]
fn cr_at_chunk_end_waits_for_a_possible_lf() {
    let events = decode_all(&[b"data: a\r", b"\n\r", b"\n"]);
    assert_eq!(events, vec![ev(None, "a")]);
}

#[test]
fn frames_round_trip_through_the_decoder() {
    let frame = event_frame("content_block_delta", "{\"a\":1}");
    assert_eq!(
        &frame[..],
        b"event: content_block_delta\ndata: {\"a\":1}\n\n"
    );
    assert_eq!(&data_frame("[DONE]")[..], b"data: [DONE]\n\n");
    let multi = data_frame("one\ntwo");
    assert_eq!(decode_all(&[&multi]), vec![ev(None, "one\ntwo")]);
}

/// Renders events as a provider would, choosing line endings per line.
fn encode(events: &[(Option<String>, Vec<String>)], crlf: &[bool]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut eol = |out: &mut Vec<u8>| {
        let use_crlf = crlf.get(i % crlf.len().max(1)).copied().unwrap_or(false);
        i += 1;
        out.extend_from_slice(if use_crlf { b"\r\n" } else { b"\n" });
    };
    for (event, lines) in events {
        out.extend_from_slice(b": comment");
        eol(&mut out);
        if let Some(name) = event {
            out.extend_from_slice(format!("event: {name}").as_bytes());
            eol(&mut out);
        }
        for line in lines {
            out.extend_from_slice(format!("data: {line}").as_bytes());
            eol(&mut out);
        }
        eol(&mut out);
    }
    out
}

fn events_strategy() -> impl Strategy<Value = Vec<(Option<String>, Vec<String>)>> {
    let line = "[ a-zA-Z0-9{}\":,é€\\[\\]]{0,12}";
    let event = (
        proptest::option::of("[a-z_]{1,10}"),
        proptest::collection::vec(line, 1..4),
    );
    proptest::collection::vec(event, 0..6)
}

proptest! {
    #[test]
    fn any_chunking_decodes_to_the_same_events(
        events in events_strategy(),
        crlf in proptest::collection::vec(any::<bool>(), 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let bytes = encode(&events, &crlf);
        let whole = decode_all(&[&bytes]);

        let expected: Vec<SseEvent> = events
            .iter()
            .map(|(name, lines)| SseEvent { event: name.clone(), data: lines.join("\n") })
            .collect();
        prop_assert_eq!(&whole, &expected);

        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut start = 0;
        for p in points {
            chunks.push(&bytes[start..p]);
            start = p;
        }
        chunks.push(&bytes[start..]);
        prop_assert_eq!(decode_all(&chunks), whole);
    }

    #[test]
    fn byte_at_a_time_decodes_to_the_same_events(events in events_strategy()) {
        let bytes = encode(&events, &[true, false]);
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(decode_all(&singles), decode_all(&[&bytes]));
    }
}

//! Quote stripping on any input: no panic, the new text of a top-posted reply is a prefix of
//! the input, an interleaved one is made of the input's lines in order, and the HTML cut is
//! inside the HTML at a character boundary.
#![no_main]

use klachtd::domain::quote::{CutReason, html_quote_start, new_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let reply = new_text(&text);
    if reply.reason == CutReason::Interleaved {
        let mut input = text.split('\n').map(|l| l.trim_end_matches('\r'));
        for line in reply.text.split('\n').map(|l| l.trim_end_matches('\r')) {
            assert!(
                input.any(|l| l == line),
                "line {line:?} not in the input in order"
            );
        }
    } else {
        assert!(text.starts_with(reply.text.as_ref()), "not a prefix");
    }
    assert!(text.ends_with(reply.rest));
    if let Some((at, _)) = html_quote_start(&text) {
        assert!(at <= text.len() && text.is_char_boundary(at));
    }
});

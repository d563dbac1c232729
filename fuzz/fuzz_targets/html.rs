//! HTML to text on any input: no panic, the text bounded, and no slow input: html2text past
//! its deadline (klachtd then strips the document) is a crash here, so that it is found.
#![no_main]

use klachtd::mail::html::{Converter, Limit, MAX_TEXT_BYTES, TRUNCATED, html_to_text_with, strip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    let (text, converter) = html_to_text_with(&html);
    assert_ne!(
        converter,
        Converter::Strip(Limit::Time),
        "html2text ran past its deadline"
    );
    assert!(text.len() <= MAX_TEXT_BYTES + TRUNCATED.len());
    // The stripper is the fallback for the inputs too large to fuzz: run it on every input.
    let _ = strip(&html);
});

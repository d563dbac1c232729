//! Reading an inline forward on any input: no panic, every line of the original's text and
//! of the forwarder's note is in the input (a quoted forward's lines without their `>`), both
//! trimmed, and the date, subject and display name are one non-empty line without controls.
//! The written date is read without panic, on the field and on the raw input.
#![no_main]

use klachtd::domain::forward::{forwarded_original, parse_written_date};
use klachtd::domain::text::is_unsafe_char;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_written_date(&text, chrono_tz::Europe::Amsterdam);
    let Some(f) = forwarded_original(&text) else {
        return;
    };
    if let Some(d) = &f.date {
        let _ = parse_written_date(d, chrono_tz::Europe::Amsterdam);
    }
    for part in [&f.text, &f.note] {
        assert_eq!(part.trim(), part.as_str(), "not trimmed");
        for line in part.lines().filter(|l| !l.trim().is_empty()) {
            assert!(text.contains(line), "line {line:?} not in the input");
        }
    }
    for value in [&f.from_name, &f.date, &f.subject].into_iter().flatten() {
        assert!(!value.is_empty(), "empty field");
        assert!(!value.chars().any(is_unsafe_char), "control in {value:?}");
    }
});

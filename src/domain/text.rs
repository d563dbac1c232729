//! Text from a mail made safe for one line of a header or the register: what a sender writes
//! in a display name or a subject must never become a header break (CR, LF), a NUL that a
//! library refuses, a terminal escape, or a bidi override that hides what a name says.

/// RFC 5322 section 2.1.1: a line is at most 998 characters. A subject (or any header value we
/// keep) is bounded by it; the raw mail keeps all of it.
pub const MAX_HEADER_CHARS: usize = 998;

/// A display name longer than this is cut: nobody's name is, and it is copied into every mail.
pub const MAX_NAME_CHARS: usize = 200;

/// Characters that must not reach a header or a terminal: every control character (C0, DEL,
/// C1) and the invisible direction controls (U+200E/F, U+202A..E, U+2066..9).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// One line of plain text: unsafe characters become spaces, runs of whitespace one space,
/// trimmed, at most `max_chars` characters (cut at a character boundary, never inside one).
pub fn single_line(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut chars = 0;
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() || is_unsafe_char(c) {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            if chars + 1 >= max_chars {
                break;
            }
            out.push(' ');
            chars += 1;
            pending_space = false;
        }
        if chars >= max_chars {
            break;
        }
        out.push(c);
        chars += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_breaks_and_escapes_become_spaces() {
        assert_eq!(
            single_line("Jan\nBcc: x@evil.example", 200),
            "Jan Bcc: x@evil.example"
        );
        assert_eq!(single_line("Jan\r", 200), "Jan");
        assert_eq!(single_line("a\u{0}b", 200), "a b");
        assert_eq!(single_line("\u{1b}[1A\u{1b}[2KJan", 200), "[1A [2KJan");
        assert_eq!(single_line("evil\u{202e}gpj.exe", 200), "evil gpj.exe");
        assert_eq!(single_line("  Jan   Jansen \t", 200), "Jan Jansen");
        assert_eq!(single_line("", 200), "");
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        let long = "é".repeat(5000);
        let cut = single_line(&long, MAX_HEADER_CHARS);
        assert_eq!(cut.chars().count(), MAX_HEADER_CHARS);
        assert_eq!(single_line("ab cd", 3), "ab");
    }

    proptest! {
        #[test]
        fn output_is_one_safe_bounded_line(s in any::<String>(), max in 1usize..50) {
            let out = single_line(&s, max);
            prop_assert!(out.chars().count() <= max);
            prop_assert!(!out.chars().any(is_unsafe_char));
            prop_assert!(!out.contains("  "));
            prop_assert_eq!(out.trim(), out.as_str());
        }
    }
}

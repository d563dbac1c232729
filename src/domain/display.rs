//! Text from mail (names, subjects, attachment names, reasons) shown on the admin's terminal.
//! A terminal obeys control characters: `ESC[1A ESC[2K` in a subject rewrites the lines above
//! it in `klachtd list`, an OSC sequence sets the window title, a NUL or a bidi override
//! (U+202E) makes a name read as something else. Every table and text output of the command
//! line passes such text through [`escape`], which shows each of these characters as a Rust
//! style escape (`\u{1b}`, `\u{202e}`), and a backslash as `\\`, so the output is
//! unambiguous. JSON output needs none of this: serde escapes C0 controls and the reader is a
//! program.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters a terminal or a bidi-aware renderer acts on instead of printing: C0 (U+0000 to
/// U+001F, tab and newline too: one row stays one line), DEL, C1 (U+0080 to U+009F, which
/// some terminals take as CSI and OSC), and the bidi controls (embeddings and overrides
/// U+202A to U+202E, isolates U+2066 to U+2069, the marks U+200E and U+200F; Unicode
/// Standard Annex #9).
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{200e}' | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

/// `s` with every [`is_unsafe`] character written as `\u{hex}` and every backslash doubled.
/// Text without either comes back borrowed.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if is_unsafe(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`escape`], then cut to `n` characters with `…` (the escapes count as what is shown).
pub fn escape_truncated(s: &str, n: usize) -> String {
    let e = escape(s);
    if e.chars().count() <= n {
        e.into_owned()
    } else {
        let mut out: String = e.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_text_is_unchanged_and_borrowed() {
        let s = "Klacht over de les — café Zuidoost ✓";
        assert!(matches!(escape(s), Cow::Borrowed(_)));
        assert_eq!(escape(s), s);
    }

    #[test]
    fn csi_and_osc_sequences_are_shown_not_obeyed() {
        assert_eq!(
            escape("a\u{1b}[1A\u{1b}[2K\u{1b}[32mOK"),
            "a\\u{1b}[1A\\u{1b}[2K\\u{1b}[32mOK"
        );
        assert_eq!(
            escape("\u{1b}]0;pwned\u{7}title"),
            "\\u{1b}]0;pwned\\u{7}title"
        );
        // C1 CSI (U+009B) is an escape on its own for some terminals.
        assert_eq!(escape("x\u{9b}2Jy"), "x\\u{9b}2Jy");
    }

    #[test]
    fn nul_newline_tab_del_and_bidi_controls() {
        assert_eq!(escape("a\0b"), "a\\u{0}b");
        assert_eq!(escape("line1\r\nline2\t."), "line1\\u{d}\\u{a}line2\\u{9}.");
        assert_eq!(escape("\u{7f}"), "\\u{7f}");
        assert_eq!(escape("invoice\u{202e}fdp.exe"), "invoice\\u{202e}fdp.exe");
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{2066}', '\u{2069}',
        ] {
            assert!(!escape(&c.to_string()).contains(c), "{c:?}");
        }
        assert_eq!(escape("\u{200e}\u{200f}"), "\\u{200e}\\u{200f}");
    }

    #[test]
    fn backslash_is_doubled_so_escapes_cannot_be_forged() {
        // A subject that spells an escape literally is not shown like a real control char.
        assert_eq!(escape("\\u{1b}"), "\\\\u{1b}");
        assert_ne!(escape("\\u{1b}"), escape("\u{1b}"));
    }

    #[test]
    fn neighbours_of_the_ranges_are_kept() {
        for c in [
            ' ', '~', '\u{a0}', '\u{200d}', '\u{2029}', '\u{202f}', '\u{206a}',
        ] {
            assert_eq!(escape(&c.to_string()), c.to_string(), "{c:?}");
        }
    }

    #[test]
    fn truncation_counts_shown_characters() {
        assert_eq!(escape_truncated("abc", 3), "abc");
        assert_eq!(escape_truncated("abcd", 3), "ab…");
        assert_eq!(escape_truncated("\u{1b}abc", 5), "\\u{1…");
    }

    proptest! {
        #[test]
        fn output_never_contains_an_unsafe_character(s in any::<String>()) {
            let e = escape(&s);
            prop_assert!(!e.chars().any(is_unsafe), "{:?} -> {:?}", s, e);
            let t = escape_truncated(&s, 30);
            prop_assert!(!t.chars().any(is_unsafe));
        }

        #[test]
        fn safe_text_round_trips(s in "[^\\\\\\p{Cc}\u{200e}\u{200f}\u{202a}-\u{202e}\u{2066}-\u{2069}]*") {
            prop_assert_eq!(escape(&s), s.as_str());
        }

        #[test]
        fn escaping_is_injective(a in any::<String>(), b in any::<String>()) {
            if a != b {
                prop_assert_ne!(escape(&a), escape(&b));
            }
        }
    }
}

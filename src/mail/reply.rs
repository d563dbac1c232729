//! The new part of a received reply (issue #10): [`crate::domain::quote`] on the decoded text,
//! with the client markers of the HTML part (`divRplyFwdMsg`, `gmail_quote`,
//! `moz-cite-prefix`, `<blockquote type="cite">`...) as the other source of where the quote
//! starts. The whole mail is always kept by the caller; this only picks the text that commands
//! and the reply's text are read from.
//!
//! - HTML only (the text is the HTML converted): the HTML is cut at its first marker and only
//!   the part above it is converted, so link targets html2text lists at the end of the text
//!   belong to the new part, and the quoted mail is never read. The converted part is cut
//!   again as text (signatures, footers, a header block the client left unmarked).
//! - A text part: the text decides; the HTML markers are used only when the text shows no
//!   quote at all (a client language whose header block the text rules do not know).

use crate::domain::quote::{CutReason, HtmlMarker, html_quote_start, new_text};
use crate::mail::html::html_to_text;
use crate::mail::parse::ParsedMail;

/// The new text of a reply and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyText {
    pub text: String,
    /// Why the text ends where it does. With [`ReplyText::html_marker`] set: the cut in the
    /// text converted from the cut HTML (often [`CutReason::None`]).
    pub reason: CutReason,
    /// The HTML marker the HTML was cut at before it was converted.
    pub html_marker: Option<HtmlMarker>,
}

/// The new part of a reply from its decoded text, its HTML part, and whether the text is that
/// HTML converted (as [`ParsedMail::text`], [`ParsedMail::html`], [`ParsedMail::text_from_html`]).
pub fn reply_text(text: &str, html: Option<&str>, text_from_html: bool) -> ReplyText {
    let marker = html.and_then(|h| html_quote_start(h).map(|(at, m)| (h, at, m)));
    if text_from_html && let Some((html, at, marker)) = marker {
        return from_html(html, at, marker);
    }
    let r = new_text(text);
    if r.reason == CutReason::None
        && let Some((html, at, marker)) = marker
    {
        return from_html(html, at, marker);
    }
    ReplyText {
        text: r.text.into_owned(),
        reason: r.reason,
        html_marker: None,
    }
}

fn from_html(html: &str, at: usize, marker: HtmlMarker) -> ReplyText {
    let converted = html_to_text(&html[..at]);
    let cut = new_text(&converted);
    ReplyText {
        text: cut.text.into_owned(),
        reason: cut.reason,
        html_marker: Some(marker),
    }
}

/// [`reply_text`] of a parsed mail.
pub fn reply_of(mail: &ParsedMail) -> ReplyText {
    reply_text(&mail.text, mail.html.as_deref(), mail.text_from_html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_part_cut_wins_over_html() {
        let r = reply_text(
            "Ja.\n\nOp 2 dec. 2026 om 10:15 schreef X <x@example.nl>:\n> oud",
            Some("<p>Ja, anders.</p><div class=\"gmail_quote\">oud</div>"),
            false,
        );
        assert_eq!(r.text, "Ja.");
        assert_eq!(r.reason, CutReason::AttributionLine);
        assert_eq!(r.html_marker, None);
    }

    #[test]
    fn html_marker_cuts_when_the_text_shows_no_quote() {
        let html = "<html><body><p>Akkoord, #oplossing</p><div id=\"appendonsend\"></div><hr><div id=\"divRplyFwdMsg\"><b>Objet :</b> x</div><p>#behandelaar oud</p></body></html>";
        let r = reply_text(
            "Akkoord, #oplossing\n\nObjet : x\n\n#behandelaar oud",
            Some(html),
            false,
        );
        assert_eq!(r.text, "Akkoord, #oplossing");
        assert_eq!(r.html_marker, Some(HtmlMarker::AppendOnSend));
    }

    #[test]
    fn html_only_is_cut_before_it_is_converted() {
        // The link of the new part keeps its target; the quoted link's target is gone.
        let html = "<p>Zie <a href=\"https://example.nl/foto\">de foto</a>.</p><div class=\"gmail_quote\">Op 1 dec. schreef <a href=\"mailto:x@example.nl\">X</a>:<blockquote>oud</blockquote></div>";
        let text = html_to_text(html);
        let r = reply_text(&text, Some(html), true);
        assert_eq!(r.html_marker, Some(HtmlMarker::GmailQuote));
        assert!(r.text.contains("https://example.nl/foto"), "{}", r.text);
        assert!(!r.text.contains("mailto:"), "{}", r.text);
        assert!(!r.text.contains("oud"), "{}", r.text);
    }

    #[test]
    fn no_marker_anywhere_keeps_the_text() {
        let r = reply_text("Hallo\n\n", Some("<p>Hallo</p>"), true);
        assert_eq!(
            (r.text.as_str(), r.reason, r.html_marker),
            ("Hallo", CutReason::None, None)
        );
    }
}

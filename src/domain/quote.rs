//! The new part of a reply: commands and the text of a staff or complainant reply come only
//! from what the sender wrote now, never from the mail they quote (issue #10). The whole mail
//! is kept elsewhere; this only decides where the new part ends.
//!
//! Mail clients mark the start of the quoted mail in a few ways, and the first one found cuts:
//! Outlook's header block (`Van:`/`Verzonden:`/`Aan:`/`Onderwerp:`, English `From:`/`Sent:`...)
//! often after a line of underscores, `-----Oorspronkelijk bericht-----`, an attribution line
//! (Gmail `Op ... schreef ...:`, Apple `Op ... heeft ... het volgende geschreven:`,
//! Thunderbird, Android, English `On ... wrote:`), `>` quoting (RFC 3676 4.5), the signature
//! separator `-- ` (RFC 3676 4.3) and the footers of mobile apps. A reply written below or
//! between `>` quotes keeps its unquoted lines. A forward's header is reported apart
//! ([`CutReason::ForwardMarker`]), with the forwarded mail in [`Reply::rest`].
//!
//! Linear time on any input: each line is read a bounded number of times (the header-block
//! look-ahead is at most [`HEADER_WINDOW`] lines) and only its first [`MAX_INSPECT_BYTES`]
//! bytes are ever compared, so no input is slow.
//!
//! For HTML, [`html_quote_start`] finds the markers the clients leave in the markup
//! (`divRplyFwdMsg`, `gmail_quote`, `moz-cite-prefix`, `<blockquote type="cite">`...), so the
//! HTML can be cut before it is converted to text.

use std::borrow::Cow;

/// Bytes of a line compared at most: every marker line is far shorter.
pub const MAX_INSPECT_BYTES: usize = 512;
/// An attribution line (or two wrapped lines) is at most this long, normalised.
const MAX_ATTRIBUTION_BYTES: usize = 400;
/// Lines after `Van:`/`From:` in which the rest of Outlook's header block must appear.
pub const HEADER_WINDOW: usize = 8;
/// Blank lines allowed between an attribution line and the first `>` line.
const QUOTE_LOOKAHEAD: usize = 3;
/// A mobile footer is a short line.
const MAX_FOOTER_BYTES: usize = 100;
/// The first of two lines of a wrapped attribution is long (Gmail wraps at about 78 columns).
const MIN_WRAPPED_FIRST_BYTES: usize = 40;

/// Why the new part ends where it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutReason {
    /// Nothing quoted found: the whole text is new.
    None,
    /// Outlook's header block: `Van:`/`From:` followed within a few lines by a date header
    /// (`Verzonden:`/`Sent:`/`Datum:`/`Date:`) and an addressee or subject header.
    OutlookHeaderBlock,
    /// Outlook's line of underscores above the header block.
    UnderscoreSeparator,
    /// `-----Original Message-----`, `-----Oorspronkelijk bericht-----` (Outlook, and Samsung
    /// and other Android apps with `-------- ... --------`).
    OriginalMessage,
    /// `Op ... schreef ...:`, `Op ... heeft ... het volgende geschreven:`, `On ... wrote:`, also
    /// wrapped over two lines.
    AttributionLine,
    /// `---------- Doorgestuurd bericht ---------`, `Begin forwarded message:`: what follows is
    /// a forwarded mail, in [`Reply::rest`].
    ForwardMarker,
    /// A block of `>` lines with nothing new below it.
    QuoteMarker,
    /// The sender wrote below or between `>` quotes: the text is the unquoted lines.
    Interleaved,
    /// The signature separator `-- ` (RFC 3676 4.3), or `--` alone.
    Signature,
    /// `Verzonden vanaf mijn iPhone`, `Sent from my Galaxy`, `Get Outlook for Android`...
    MobileFooter,
}

/// The new part of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    /// What the sender wrote now, without trailing blank lines. Borrowed: a prefix of the
    /// input. Owned only for [`CutReason::Interleaved`]: the unquoted lines, in order.
    pub text: Cow<'a, str>,
    pub reason: CutReason,
    /// The input from the line where the cut is (the quoted or forwarded mail, the signature);
    /// empty for [`CutReason::None`].
    pub rest: &'a str,
}

/// One line of the input: `start..end` is its text without the line end, `next` the start of
/// the following line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

pub(crate) fn split_lines(text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    while start < bytes.len() {
        let (end, next) = match memchr_lf(&bytes[start..]) {
            Some(i) => (start + i, start + i + 1),
            None => (bytes.len(), bytes.len()),
        };
        // CRLF (RFC 5322 2.3) or LF: the CR is not part of the line.
        let content_end = if end < bytes.len() && end > start && bytes[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        lines.push(Line {
            start,
            end: content_end,
        });
        start = next;
    }
    lines
}

fn memchr_lf(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// What a line is, as far as quoting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Blank,
    /// A `>` line.
    Quoted,
    /// `[1]: https://...`: html2text lists the targets of all links at the end of the text,
    /// below the quote when the mail was HTML.
    LinkFootnote,
    /// An attribution taking this many lines (1 or 2).
    Attribution(usize),
    /// Any other cut.
    Cut(CutReason),
}

struct Scanner<'a> {
    text: &'a str,
    lines: Vec<Line>,
    /// The normalised form of each line, computed once.
    norm: Vec<String>,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        let lines = split_lines(text);
        let norm = lines
            .iter()
            .map(|l| normalise(&text[l.start..l.end]))
            .collect();
        Scanner { text, lines, norm }
    }

    fn raw(&self, i: usize) -> &'a str {
        let l = self.lines[i];
        &self.text[l.start..l.end]
    }

    fn is_blank(&self, i: usize) -> bool {
        self.raw(i).trim().is_empty()
    }

    fn is_quoted(&self, i: usize) -> bool {
        self.raw(i).trim_start_matches(' ').starts_with('>')
    }

    /// Whether a `>` line follows line `i`, with at most a few blank lines between.
    fn quote_follows(&self, i: usize) -> bool {
        let mut j = i + 1;
        let mut blanks = 0;
        while j < self.lines.len() {
            if self.is_quoted(j) {
                return true;
            }
            if !self.is_blank(j) || blanks == QUOTE_LOOKAHEAD {
                return false;
            }
            blanks += 1;
            j += 1;
        }
        false
    }

    fn kind(&self, i: usize) -> Kind {
        if self.is_blank(i) {
            return Kind::Blank;
        }
        let raw = self.raw(i);
        if raw.trim_end() == "--" {
            return Kind::Cut(CutReason::Signature);
        }
        if self.is_quoted(i) {
            return Kind::Quoted;
        }
        if is_link_footnote(raw) {
            return Kind::LinkFootnote;
        }
        let n = self.norm[i].as_str();
        if is_underscore_line(n) {
            return Kind::Cut(CutReason::UnderscoreSeparator);
        }
        if let Some(reason) = dashed_marker(n) {
            return Kind::Cut(reason);
        }
        if is_forward_intro(n) {
            return Kind::Cut(CutReason::ForwardMarker);
        }
        if is_mobile_footer(n) {
            return Kind::Cut(CutReason::MobileFooter);
        }
        if header_name(n) == Some(Header::From) && self.header_block_follows(i) {
            return Kind::Cut(CutReason::OutlookHeaderBlock);
        }
        if is_attribution(n) && (is_strong_attribution(n) || self.quote_follows(i)) {
            return Kind::Attribution(1);
        }
        if let Some(joined) = self.wrapped_pair(i)
            && is_attribution(&joined)
            && (is_strong_attribution(&joined) || self.quote_follows(i + 1))
        {
            return Kind::Attribution(2);
        }
        Kind::Text
    }

    /// Lines `i` and `i + 1` joined, when they may be one attribution wrapped in two.
    fn wrapped_pair(&self, i: usize) -> Option<String> {
        let first = self.norm[i].as_str();
        if i + 1 >= self.lines.len()
            || first.len() < MIN_WRAPPED_FIRST_BYTES
            || first.ends_with(['.', '!', '?', ':'])
            || self.is_blank(i + 1)
            || self.is_quoted(i + 1)
        {
            return None;
        }
        let second = self.norm[i + 1].as_str();
        if first.len() + second.len() + 1 > MAX_ATTRIBUTION_BYTES {
            return None;
        }
        // Gmail breaks inside `<jan@example.nl>` too: no space after an open `<`.
        let sep = if first.ends_with('<') { "" } else { " " };
        Some(format!("{first}{sep}{second}"))
    }

    /// Outlook's block: after `Van:` a date header and an addressee or subject header, before
    /// a blank line and within [`HEADER_WINDOW`] lines (a long `Aan:` may wrap).
    fn header_block_follows(&self, i: usize) -> bool {
        let mut date = false;
        let mut other = false;
        let last = (i + HEADER_WINDOW).min(self.lines.len() - 1);
        for j in i + 1..=last {
            if self.is_blank(j) {
                break;
            }
            match header_name(&self.norm[j]) {
                Some(Header::Date) => date = true,
                Some(Header::Other) => other = true,
                _ => {}
            }
            if date && other {
                return true;
            }
        }
        false
    }

    /// Whether unquoted new text follows the quote that starts at line `i` (an attribution of
    /// `skip` lines, or the first `>` line).
    /// An attribution counts only with `>` lines below it: after one from HTML converted to
    /// text the quoted mail may follow unmarked.
    fn text_below_quote(&self, i: usize, skip: usize) -> bool {
        let mut j = i + skip;
        let mut quoted = false;
        while j < self.lines.len() && (self.is_blank(j) || self.is_quoted(j)) {
            quoted |= self.is_quoted(j);
            j += 1;
        }
        if !quoted {
            return false;
        }
        // Link footnotes and blank lines below the quote are no new text.
        while j < self.lines.len() && matches!(self.kind(j), Kind::Blank | Kind::LinkFootnote) {
            j += 1;
        }
        j < self.lines.len() && self.kind(j) == Kind::Text
    }
}

/// The new part of a reply's decoded text (the text part, or the HTML part converted to text).
pub fn new_text(text: &str) -> Reply<'_> {
    let s = Scanner::new(text);
    let n = s.lines.len();
    let mut i = 0;
    while i < n {
        match s.kind(i) {
            Kind::Text | Kind::Blank | Kind::LinkFootnote => i += 1,
            Kind::Cut(reason) => return prefix(&s, i, reason),
            Kind::Attribution(skip) => {
                if s.text_below_quote(i, skip) {
                    return interleaved(&s, i);
                }
                return prefix(&s, i, CutReason::AttributionLine);
            }
            Kind::Quoted => {
                if s.text_below_quote(i, 0) {
                    return interleaved(&s, i);
                }
                return prefix(&s, i, CutReason::QuoteMarker);
            }
        }
    }
    Reply {
        text: Cow::Borrowed(&text[..kept_end(&s, n)]),
        reason: CutReason::None,
        rest: "",
    }
}

/// A line that only draws a rule (Outlook's `<hr>` as html2text renders it, dashes, underscores).
pub(crate) fn is_rule_line(raw: &str) -> bool {
    let t = raw.trim();
    t.chars().count() >= 3 && t.chars().all(|c| matches!(c, '_' | '-' | '─' | '━' | '='))
}

/// The end of the text kept before line `cut`: blank lines and rules just above the cut
/// belong to the quote, not to the new text.
fn kept_end(s: &Scanner<'_>, cut: usize) -> usize {
    let at_cut = cut < s.lines.len();
    let mut k = cut;
    while k > 0 && (s.is_blank(k - 1) || (at_cut && is_rule_line(s.raw(k - 1)))) {
        k -= 1;
    }
    if k == 0 { 0 } else { s.lines[k - 1].end }
}

fn prefix<'a>(s: &Scanner<'a>, cut: usize, reason: CutReason) -> Reply<'a> {
    Reply {
        text: Cow::Borrowed(&s.text[..kept_end(s, cut)]),
        reason,
        rest: &s.text[s.lines[cut].start..],
    }
}

/// The unquoted lines from the start until a signature, footer or other quoted mail: the
/// attribution lines and `>` lines are left out, runs of blank lines become one.
fn interleaved<'a>(s: &Scanner<'a>, first_quote: usize) -> Reply<'a> {
    let mut kept: Vec<&str> = Vec::new();
    let push = |line: &'a str, blank: bool, kept: &mut Vec<&'a str>| {
        if blank && kept.last().is_none_or(|l: &&str| l.trim().is_empty()) {
            return;
        }
        kept.push(line);
    };
    for i in 0..first_quote {
        push(s.raw(i), s.is_blank(i), &mut kept);
    }
    let mut i = first_quote;
    while i < s.lines.len() {
        match s.kind(i) {
            Kind::Text => push(s.raw(i), false, &mut kept),
            Kind::Blank => push(s.raw(i), true, &mut kept),
            Kind::Quoted | Kind::LinkFootnote => {}
            Kind::Attribution(skip) => {
                i += skip;
                continue;
            }
            Kind::Cut(_) => break,
        }
        i += 1;
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    Reply {
        text: Cow::Owned(kept.join("\n")),
        reason: CutReason::Interleaved,
        rest: &s.text[s.lines[first_quote].start..],
    }
}

/// The form a line is compared in: the first [`MAX_INSPECT_BYTES`] bytes, lower case, without
/// the `*` of bold (`*Van:*` in Outlook's text of HTML, `**From:**` from html2text) and the `[`
/// of a rendered link, no-break spaces as spaces, runs of spaces as one, trimmed.
pub(crate) fn normalise(raw: &str) -> String {
    let mut cut = raw.len().min(MAX_INSPECT_BYTES);
    while !raw.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut);
    let mut space = false;
    for c in raw[..cut].chars() {
        let c = match c {
            '*' | '[' | ']' => continue,
            // NBSP (Gmail before `om`), narrow NBSP (Gmail before `AM`), figure space.
            '\u{a0}' | '\u{202f}' | '\u{2007}' | '\t' => ' ',
            c => c,
        };
        if c == ' ' {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    From,
    Date,
    Other,
}

/// The header a line of Outlook's block starts with (Dutch, English, German).
fn header_name(n: &str) -> Option<Header> {
    Some(match header_field(n)? {
        Field::From => Header::From,
        Field::Date => Header::Date,
        Field::To | Field::Cc | Field::Subject => Header::Other,
    })
}

/// A header of a quoted or forwarded mail's header block, by its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    From,
    Date,
    To,
    Cc,
    Subject,
}

/// The header a normalised line starts with (`van:`, `from:`, `verzonden:`...): Dutch,
/// English, German.
pub(crate) fn header_field(n: &str) -> Option<Field> {
    let (name, _) = n.split_once(':')?;
    if name.len() > 12 {
        return None;
    }
    match name.trim_end() {
        "van" | "from" | "von" => Some(Field::From),
        "verzonden" | "sent" | "datum" | "date" | "gesendet" | "verstuurd" => Some(Field::Date),
        "aan" | "to" | "an" => Some(Field::To),
        "cc" => Some(Field::Cc),
        "onderwerp" | "subject" | "betreft" | "betreff" => Some(Field::Subject),
        _ => None,
    }
}

/// html2text's list of link targets: `[12]: mailto:x@example.nl`.
fn is_link_footnote(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix('[') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && digits < 6 && rest[digits..].starts_with("]: ")
}

pub(crate) fn is_underscore_line(n: &str) -> bool {
    n.len() >= 10 && n.bytes().all(|b| b == b'_')
}

/// `-----Original Message-----` and forward headers between dashes.
pub(crate) fn dashed_marker(n: &str) -> Option<CutReason> {
    if !n.starts_with("---") {
        return None;
    }
    let inner = n.trim_matches(|c: char| c == '-' || c == ' ');
    match inner {
        "original message"
        | "oorspronkelijk bericht"
        | "oorspronkelijke bericht"
        | "origineel bericht"
        | "originele bericht"
        | "ursprüngliche nachricht"
        | "message d'origine" => Some(CutReason::OriginalMessage),
        "forwarded message"
        | "doorgestuurd bericht"
        | "doorgestuurde bericht"
        | "weitergeleitete nachricht"
        | "message transféré" => Some(CutReason::ForwardMarker),
        _ => None,
    }
}

/// Apple Mail's forward: `Begin doorgestuurd bericht:`.
pub(crate) fn is_forward_intro(n: &str) -> bool {
    matches!(
        n,
        "begin forwarded message:" | "begin doorgestuurd bericht:" | "begin doorgestuurde bericht:"
    )
}

const DEVICE_FOOTERS: &[&str] = &[
    "verzonden vanaf mijn ",
    "verstuurd vanaf mijn ",
    "verzonden van mijn ",
    "verstuurd van mijn ",
    "sent from my ",
    "gesendet von meinem ",
    "envoyé de mon ",
];
const APP_FOOTERS: &[&str] = &[
    "verzonden met ",
    "verstuurd met ",
    "verzonden vanuit ",
    "verstuurd vanuit ",
    "verzonden via ",
    "verstuurd via ",
    "sent from ",
    "sent with ",
    "sent via ",
    "get ",
    "download ",
    "outlook voor ",
    "outlook for ",
];
const APP_NAMES: &[&str] = &[
    "outlook",
    "iphone",
    "ipad",
    "android",
    "samsung",
    "galaxy",
    "mail voor windows",
    "mail for windows",
    "blackberry",
    "proton",
    "yahoo",
    "gmail",
    "huawei",
    "smartphone",
    "telefoon",
    "mobiel",
];

/// The line a mobile app adds below what was typed.
fn is_mobile_footer(n: &str) -> bool {
    if n.len() > MAX_FOOTER_BYTES {
        return false;
    }
    DEVICE_FOOTERS.iter().any(|p| n.starts_with(p))
        || (APP_FOOTERS.iter().any(|p| n.starts_with(p)) && APP_NAMES.iter().any(|a| n.contains(a)))
}

/// The shape of an attribution line, normalised: Dutch, English, German, French.
pub(crate) fn is_attribution(n: &str) -> bool {
    if n.len() > MAX_ATTRIBUTION_BYTES || !n.ends_with(':') {
        return false;
    }
    (n.starts_with("op ") && (n.contains(" schreef") || n.ends_with(" geschreven:")))
        || (n.starts_with("on ") && n.ends_with(" wrote:"))
        || n.contains(" schreef op ")
        || n.ends_with(" schreef:")
        || n.ends_with(" wrote:")
        || (n.starts_with("am ") && n.contains(" schrieb"))
        || (n.starts_with("le ") && n.ends_with(" a écrit :"))
}

/// An attribution with a time or an address in it is one even without `>` lines below
/// (HTML converted to text): prose like `Op 3 mei schreef ik u al:` has neither.
pub(crate) fn is_strong_attribution(n: &str) -> bool {
    n.contains('@') || has_time(n)
}

/// `10:15` somewhere in the line.
fn has_time(n: &str) -> bool {
    n.as_bytes().windows(4).any(|w| {
        w[0].is_ascii_digit() && w[1] == b':' && w[2].is_ascii_digit() && w[3].is_ascii_digit()
    })
}

/// Which client marker [`html_quote_start`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HtmlMarker {
    /// Outlook (new) and Outlook on the web: `<div id="appendonsend">`.
    AppendOnSend,
    /// Outlook: `<div id="divRplyFwdMsg">` (with the `<hr>` above it).
    DivRplyFwdMsg,
    /// Gmail: `<div class="gmail_quote">`.
    GmailQuote,
    /// Thunderbird: `<div class="moz-cite-prefix">`.
    MozCitePrefix,
    /// Apple Mail, iOS, Thunderbird: `<blockquote type="cite">`.
    BlockquoteCite,
    /// Yahoo: `<div class="yahoo_quoted">`.
    YahooQuoted,
}

/// Where the quoted mail starts in a reply's HTML: the byte offset of the tag with the
/// earliest client marker, so that `&html[..offset]` is the new part (unclosed tags are left
/// for the converter). Linear: one lower-cased copy and one search per marker.
pub fn html_quote_start(html: &str) -> Option<(usize, HtmlMarker)> {
    // ASCII lower case keeps every byte offset.
    let lower = html.to_ascii_lowercase();
    let markers: [(&str, HtmlMarker); 8] = [
        ("id=\"appendonsend\"", HtmlMarker::AppendOnSend),
        ("id=\"divrplyfwdmsg\"", HtmlMarker::DivRplyFwdMsg),
        ("id=divrplyfwdmsg", HtmlMarker::DivRplyFwdMsg),
        ("class=\"gmail_quote", HtmlMarker::GmailQuote),
        ("class=\"moz-cite-prefix\"", HtmlMarker::MozCitePrefix),
        ("<blockquote type=\"cite\"", HtmlMarker::BlockquoteCite),
        ("<blockquote type=cite", HtmlMarker::BlockquoteCite),
        ("class=\"yahoo_quoted\"", HtmlMarker::YahooQuoted),
    ];
    let (at, marker) = markers
        .iter()
        .filter_map(|(needle, m)| lower.find(needle).map(|i| (i, *m)))
        .min_by_key(|(i, _)| *i)?;
    let mut start = tag_start(&lower, at);
    if marker == HtmlMarker::DivRplyFwdMsg {
        start = rule_above(&lower, start);
    }
    Some((start, marker))
}

/// The `<` of the tag that contains byte `at` (at most [`MAX_INSPECT_BYTES`] back).
fn tag_start(lower: &str, at: usize) -> usize {
    let from = at.saturating_sub(MAX_INSPECT_BYTES);
    let b = lower.as_bytes();
    (from..=at).rev().find(|&i| b[i] == b'<').unwrap_or(at)
}

/// Outlook draws an `<hr>` just above `divRplyFwdMsg`: the cut moves above it when only tags
/// and white space lie between.
fn rule_above(lower: &str, start: usize) -> usize {
    let mut from = start.saturating_sub(MAX_INSPECT_BYTES);
    while !lower.is_char_boundary(from) {
        from += 1;
    }
    let Some(hr) = lower[from..start].rfind("<hr") else {
        return start;
    };
    let hr = from + hr;
    let between = &lower[hr..start];
    let mut in_tag = false;
    for c in between.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag && !c.is_whitespace() => return start,
            _ => {}
        }
    }
    hr
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(text: &str) -> (String, CutReason) {
        let r = new_text(text);
        (r.text.into_owned(), r.reason)
    }

    #[test]
    fn no_quote_keeps_all_but_trailing_blank_lines() {
        assert_eq!(
            cut("Hallo,\n\nDe bus kwam niet.\n\n\n"),
            ("Hallo,\n\nDe bus kwam niet.".into(), CutReason::None)
        );
        assert_eq!(cut(""), (String::new(), CutReason::None));
    }

    #[test]
    fn outlook_header_block_nl_and_en() {
        let nl = "#oplossing\nWe hebben de vergoeding overgemaakt.\n\nVan: Jan de Vries <jan@example.nl>\nVerzonden: woensdag 2 december 2026 10:15\nAan: Klachten <klachten@example.nl>\nOnderwerp: Re: klacht\n\n#behandelaar ik\n";
        assert_eq!(
            cut(nl),
            (
                "#oplossing\nWe hebben de vergoeding overgemaakt.".into(),
                CutReason::OutlookHeaderBlock
            )
        );
        let en = "Done.\r\n\r\n*From:* Jan <jan@example.nl>\r\n*Sent:* Wednesday, December 2, 2026 10:15 AM\r\n*To:* Complaints\r\n*Subject:* RE: x\r\n";
        assert_eq!(cut(en), ("Done.".into(), CutReason::OutlookHeaderBlock));
        let md = "Ok\n\n**From:** Jan\n**Date:** 2 Dec\n**Subject:** x\n";
        assert_eq!(cut(md), ("Ok".into(), CutReason::OutlookHeaderBlock));
    }

    #[test]
    fn van_in_prose_does_not_cut() {
        let t = "Van: de gemeente kreeg ik geen antwoord.\nDat is vervelend.\n\nGroet, Piet";
        assert_eq!(cut(t), (t.into(), CutReason::None));
        // A date header without an addressee or subject is not the block either.
        let t = "Van: mij\nDatum: gisteren\n\nDank";
        assert_eq!(cut(t).1, CutReason::None);
    }

    #[test]
    fn underscore_separator_and_rule_above_cut() {
        let t = "Prima.\n\n________________________________\nVan: X\nVerzonden: nu\nAan: Y\n";
        assert_eq!(cut(t), ("Prima.".into(), CutReason::UnderscoreSeparator));
        let t = "Prima.\n\n──────────────────\n**Van:** X\n**Verzonden:** nu\n**Aan:** Y\n";
        assert_eq!(cut(t), ("Prima.".into(), CutReason::OutlookHeaderBlock));
    }

    #[test]
    fn original_message_and_forward_markers() {
        let t = "Zie onder.\n\n-----Oorspronkelijk bericht-----\nVan: X\n";
        assert_eq!(cut(t), ("Zie onder.".into(), CutReason::OriginalMessage));
        let t = "Ok\n-------- Original message --------\nFrom: X\n";
        assert_eq!(cut(t), ("Ok".into(), CutReason::OriginalMessage));
        let t = "Namens mijn moeder:\n\n---------- Doorgestuurd bericht ---------\nVan: Ma\nDate: 1\nSubject: x\n\nDe bus!";
        let r = new_text(t);
        assert_eq!(r.reason, CutReason::ForwardMarker);
        assert_eq!(r.text, "Namens mijn moeder:");
        assert!(r.rest.starts_with("---------- Doorgestuurd"));
        assert!(r.rest.ends_with("De bus!"));
        assert_eq!(
            cut("Kijk:\n\nBegin doorgestuurd bericht:\n\n").1,
            CutReason::ForwardMarker
        );
    }

    #[test]
    fn gmail_attribution_nl_with_nbsp_and_wrapped() {
        let t = "Dank u.\n\nOp wo 2 dec. 2026\u{a0}om 10:15 schreef Jan de Vries <jan@example.nl>:\n\n> #oplossing\n> oud\n";
        assert_eq!(cut(t), ("Dank u.".into(), CutReason::AttributionLine));
        let t = "Dank u.\n\nOp wo 2 dec. 2026 om 10:15 schreef Jan de Vries <\njan@example.nl>:\n\n> oud\n";
        assert_eq!(cut(t), ("Dank u.".into(), CutReason::AttributionLine));
        let t = "Thanks.\n\nOn Wed, Dec 2, 2026 at 10:15\u{202f}AM Jan de Vries <jan@example.nl>\nwrote:\n\n> old\n";
        assert_eq!(cut(t), ("Thanks.".into(), CutReason::AttributionLine));
    }

    #[test]
    fn apple_and_thunderbird_attributions() {
        let t = "Ja.\n\nOp 2 dec. 2026, om 10:15 heeft Jan <jan@example.nl> het volgende geschreven:\n\n> oud";
        assert_eq!(cut(t), ("Ja.".into(), CutReason::AttributionLine));
        let t = "Ja.\n\nOp 02-12-2026 om 10:15 schreef Jan de Vries:\n> oud";
        assert_eq!(cut(t), ("Ja.".into(), CutReason::AttributionLine));
        let t = "Yes.\n\nOn 12/2/26 10:15 AM, Jan de Vries wrote:\n> old";
        assert_eq!(cut(t), ("Yes.".into(), CutReason::AttributionLine));
    }

    #[test]
    fn attribution_shape_in_prose_does_not_cut() {
        let t = "Op 3 mei schreef ik u al:\n- de bus\n- de tram\n";
        assert_eq!(cut(t).1, CutReason::None);
        // A long sentence followed by a line ending in `wrote:` is no wrapped attribution.
        let t = "On Monday the bus did not come again and I was late.\nThen my boss wrote:\nyou are fired\n";
        assert_eq!(cut(t).1, CutReason::None);
    }

    #[test]
    fn quote_marker_and_interleaved() {
        let t = "Klopt.\n\n> oud\n> #oplossing\n";
        assert_eq!(cut(t), ("Klopt.".into(), CutReason::QuoteMarker));
        let t = "Op 2 dec. 2026 om 10:15 schreef Jan <jan@example.nl>:\n> Vraag 1?\n\nAntwoord 1.\n\n> Vraag 2?\n> #oplossing\n\nAntwoord 2.\n#behandelaar ik\n\n-- \nPiet\n";
        assert_eq!(
            cut(t),
            (
                "Antwoord 1.\n\nAntwoord 2.\n#behandelaar ik".into(),
                CutReason::Interleaved
            )
        );
    }

    #[test]
    fn link_footnotes_below_a_quote_are_no_new_text() {
        // html2text of a Gmail HTML reply: the quoted mail's link target at the very end.
        let t = "Ja.\n\nOp di 1 dec. 2026 om 16:02 schreef X <[x@example.nl][1]>:\n\n> oud\n\n[1]: mailto:x@example.nl";
        assert_eq!(cut(t), ("Ja.".into(), CutReason::AttributionLine));
        let t = "> vraag\n\nantwoord\n\n[1]: https://example.nl\n[2]: mailto:x@example.nl";
        assert_eq!(cut(t), ("antwoord".into(), CutReason::Interleaved));
        // `[1]:` without a space, or no digits, is text.
        assert_eq!(cut("> v\n\n[]: x").1, CutReason::Interleaved);
    }

    #[test]
    fn signatures_and_mobile_footers() {
        assert_eq!(cut("Ok\n-- \nPiet\n"), ("Ok".into(), CutReason::Signature));
        assert_eq!(cut("Ok\n--\nPiet\n"), ("Ok".into(), CutReason::Signature));
        // `---` and `-- x` are text.
        assert_eq!(cut("Ok\n-- x\n").1, CutReason::None);
        for f in [
            "Verzonden vanaf mijn iPhone",
            "Verstuurd vanaf mijn iPhone",
            "Sent from my iPhone",
            "Sent from my Galaxy",
            "Verzonden met Outlook voor Android",
            "Get Outlook for iOS",
            "Download Outlook voor iOS",
            "Outlook voor Android downloaden",
            "Verzonden vanuit Mail voor Windows",
        ] {
            assert_eq!(
                cut(&format!("Goed zo\n\n{f}\n\n> oud")),
                ("Goed zo".into(), CutReason::MobileFooter),
                "{f}"
            );
        }
        // Prose that starts like a footer.
        assert_eq!(cut("Verzonden met de post op 3 mei.\n").1, CutReason::None);
    }

    #[test]
    fn command_lines_are_kept_in_the_new_text() {
        let t = "#behandelaar ik\n#oplossing\nVergoeding van 25 euro\nis overgemaakt.\n\nOp 2 dec. 2026 om 10:15 schreef X <x@example.nl>:\n> #oplossing nee\n";
        assert_eq!(
            cut(t).0,
            "#behandelaar ik\n#oplossing\nVergoeding van 25 euro\nis overgemaakt."
        );
    }

    #[test]
    fn html_markers() {
        let h = "<div>Prima</div><div id=\"appendonsend\"></div><hr><div id=\"divRplyFwdMsg\">Van:";
        assert_eq!(html_quote_start(h), Some((16, HtmlMarker::AppendOnSend)));
        let h =
            "<p>Ok</p>\n<hr style=\"x\" tabindex=\"-1\">\n<div id=\"divRplyFwdMsg\" dir=\"ltr\">";
        assert_eq!(html_quote_start(h), Some((10, HtmlMarker::DivRplyFwdMsg)));
        // Text between the rule and the block: the rule is the sender's.
        let h = "<hr>nieuw<DIV ID=\"divRplyFwdMsg\">";
        assert_eq!(html_quote_start(h), Some((9, HtmlMarker::DivRplyFwdMsg)));
        let h = "<div dir=\"ltr\">Ja</div><br><div class=\"gmail_quote gmail_quote_container\">";
        assert_eq!(html_quote_start(h), Some((27, HtmlMarker::GmailQuote)));
        let h = "Ja<div class=\"moz-cite-prefix\">Op</div><blockquote type=\"cite\">";
        assert_eq!(html_quote_start(h), Some((2, HtmlMarker::MozCitePrefix)));
        let h = "Ja<br><blockquote type=\"cite\">";
        assert_eq!(html_quote_start(h), Some((6, HtmlMarker::BlockquoteCite)));
        assert_eq!(html_quote_start("<p>geen quote</p><blockquote>x"), None);
    }

    #[test]
    fn long_and_odd_lines_are_handled() {
        let long = "Van: ".to_string() + &"é".repeat(10_000);
        assert_eq!(cut(&long).1, CutReason::None);
        let many = "Van: x\n".repeat(50_000);
        assert_eq!(cut(&many).1, CutReason::None);
        assert_eq!(cut("\r\n\r\n").0, "");
        assert_eq!(cut("a\rb\r\n").0, "a\rb");
        let _ = html_quote_start(&"<".repeat(100_000));
        let _ = html_quote_start(&format!("{}<hr>id=\"divrplyfwdmsg\"", "é".repeat(300)));
    }

    /// Lines without their line end; the last piece has none (the output ends without one).
    /// Inputs built to make a line-by-line scanner look back or ahead again and again: each
    /// must take linear time (a quadratic scan of 200,000 lines would not finish in time).
    #[test]
    fn adversarial_inputs_are_linear() {
        let started = std::time::Instant::now();
        let patterns = [
            "Van: x\nAan: y\n",
            "> a\nb\n",
            "Op 2 dec. 2026 om 10:15 schreef een heel lange naam die doorloopt\n",
            "Op 3 mei schreef ik:\n\n\n",
            "[1]: x\n> q\n",
            "\n",
        ];
        for p in patterns {
            let text = p.repeat(200_000 / p.lines().count().max(1));
            let _ = new_text(&text);
            let _ = html_quote_start(&text);
        }
        let text = "> q\nantwoord\n".repeat(100_000);
        assert_eq!(new_text(&text).reason, CutReason::Interleaved);
        assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    }

    fn lines_of(s: &str) -> Vec<&str> {
        let pieces: Vec<&str> = s.split('\n').collect();
        let last = pieces.len() - 1;
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                if i < last {
                    l.strip_suffix('\r').unwrap_or(l)
                } else {
                    l
                }
            })
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn output_is_made_of_input_lines(
            parts in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::Just("Van: Jan <j@x.nl>".to_string()),
                proptest::prelude::Just("Verzonden: nu".to_string()),
                proptest::prelude::Just("Aan: Y".to_string()),
                proptest::prelude::Just("> oud".to_string()),
                proptest::prelude::Just("-- ".to_string()),
                proptest::prelude::Just("".to_string()),
                proptest::prelude::Just("#oplossing".to_string()),
                proptest::prelude::Just("Op 2 dec. 2026 om 10:15 schreef Jan de Vries <".to_string()),
                proptest::prelude::Just("jan@example.nl>:".to_string()),
                proptest::prelude::Just("________________________________".to_string()),
                proptest::prelude::Just("Sent from my iPhone".to_string()),
                "[ -~\u{a0}é>*_\r-]{0,30}",
                proptest::prelude::any::<String>(),
            ], 0..30),
            crlf in proptest::prelude::any::<bool>(),
        ) {
            let input = parts.join(if crlf { "\r\n" } else { "\n" });
            let r = new_text(&input);
            let input_lines = lines_of(&input);
            let out = lines_of(&r.text);
            if r.text.is_empty() {
                return Ok(());
            }
            if r.reason == CutReason::Interleaved {
                // A subsequence of the input's lines, each unchanged (a CR that ends a line
                // is a line end once the lines are joined with LF).
                let mut it = input_lines.iter().map(|l| l.trim_end_matches('\r'));
                for l in &out {
                    let l = l.trim_end_matches('\r');
                    proptest::prop_assert!(it.any(|x| x == l), "line {l:?} not in order in input");
                }
            } else {
                // A prefix of the input, line for line.
                proptest::prop_assert!(input.starts_with(r.text.as_ref()));
                proptest::prop_assert!(out.len() <= input_lines.len());
                for (a, b) in out.iter().zip(&input_lines) {
                    proptest::prop_assert_eq!(a, b);
                }
                proptest::prop_assert!(!out.last().is_some_and(|l| l.trim().is_empty()));
            }
            if r.reason == CutReason::None {
                proptest::prop_assert!(r.rest.is_empty());
            } else {
                proptest::prop_assert!(input.ends_with(r.rest));
            }
        }

        #[test]
        fn html_cut_is_a_char_boundary(s in "[<>a-z\"= é]{0,200}(id=\"divRplyFwdMsg\")?[<>a-z ]{0,20}") {
            if let Some((i, _)) = html_quote_start(&s) {
                proptest::prop_assert!(s.is_char_boundary(i));
            }
        }
    }
}

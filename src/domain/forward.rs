//! The original of an inline forward: when staff forward a complaint to the service mailbox
//! to register it for the person who wrote it, the complaint's sender, date, subject and text
//! are those of the forwarded mail, not of the forward.
//!
//! Read from the decoded plain text of the forward (the text part, or the HTML part converted
//! to text). The forward starts at the first of:
//! - a forward or original-message marker between dashes: Gmail `---------- Forwarded
//!   message ---------` / `---------- Doorgestuurd bericht ---------`, Thunderbird `--------
//!   Forwarded Message --------`, Outlook `-----Original Message-----` /
//!   `-----Oorspronkelijk bericht-----`; or Apple's `Begin forwarded message:` /
//!   `Begin doorgestuurd bericht:`. The header block below it is read when there is one;
//! - Outlook's line of underscores with a header block below it;
//! - Outlook's header block alone (HTML converted to text has no separator line): `Van:`/
//!   `From:` followed by a date header and an addressee or subject header.
//!
//! Outlook writes the same separator and header block above a quoted reply, so a reply from
//! Outlook reads as a forward here: whether a mail is a forward is the caller's to know (who
//! sent it, to which address). A reply with an attribution line (`Op ... schreef ...:`,
//! `On ... wrote:`) above the first marker is never a forward.
//!
//! Labels may be bold (`*Van:*`, `**From:**`), values may wrap onto the next lines, and the
//! forward may be `>`-quoted (iOS Mail quotes the header block and text below its marker,
//! HTML `<blockquote>` converted to text is quoted). Only the first forward counts: the
//! original's text is everything below its header block, a forward inside it included.
//!
//! The label and marker patterns are those of [`crate::domain::quote`], which cuts replies at
//! the same lines. Linear time on any input: every line is split and normalised once, a
//! candidate header block is read at most [`MAX_BLOCK_LINES`] lines far, and the scan ends at
//! the first forward.

use crate::domain::quote::{self, Field, Line};
use crate::domain::text::{MAX_HEADER_CHARS, MAX_NAME_CHARS, single_line};
use crate::domain::types::EmailAddress;

/// Blank lines allowed between Outlook's underscore line and its header block.
const SEPARATOR_GAP: usize = 3;
/// Lines a header block takes at most, wrapped values included (Outlook's has up to eight
/// fields, a long `Aan:` wraps).
pub const MAX_BLOCK_LINES: usize = 24;
/// Lines one header value may wrap onto.
const MAX_CONTINUATIONS: usize = 3;
/// Bytes of one header value read at most: RFC 5322 2.1.1's 998 characters and more.
const MAX_VALUE_BYTES: usize = 4 * 1024;
/// A line is wrapped onto the next only when the next line's first word did not fit: clients
/// wrap at 72 (Thunderbird) to 78 (html2text) columns, so a short line followed by one more
/// is the end of the header block (HTML converted to text may leave no blank line there).
const MIN_WRAP_COLUMNS: usize = 70;

/// The original mail of an inline forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The display name of the original sender (`Jansen, Jan`; Exchange may give only this).
    pub from_name: Option<String>,
    pub from: Option<EmailAddress>,
    /// The date as the forwarding client wrote it (`dinsdag 1 december 2026 21:14`), one line.
    pub date: Option<String>,
    pub subject: Option<String>,
    /// The original's text, trimmed; `>` quoting of a quoted forward removed.
    pub text: String,
    /// What the forwarder wrote above the forward, trimmed.
    pub note: String,
}

/// The original of the first inline forward in a mail's decoded text; `None` when the text
/// has no forward marker or forwarded header block.
pub fn forwarded_original(text: &str) -> Option<Forwarded> {
    let v = View::new(text);
    for i in 0..v.len() {
        if v.blank[i] {
            continue;
        }
        let n = v.norm[i].as_str();
        if quote::dashed_marker(n).is_some() || quote::is_forward_intro(n) {
            // A marker says what follows is the forwarded mail, header block or not.
            let block = v
                .next_non_blank(i + 1, usize::MAX)
                .map(|b| read_block(&v, b));
            return Some(v.forwarded(i, block));
        }
        if quote::is_underscore_line(n) {
            if let Some(b) = v.next_non_blank(i + 1, SEPARATOR_GAP) {
                let block = read_block(&v, b);
                if block.is_outlook_block() {
                    return Some(v.forwarded(i, Some(block)));
                }
            }
            continue;
        }
        if quote::header_field(n) == Some(Field::From) {
            let block = read_block(&v, i);
            if block.is_outlook_block() {
                return Some(v.forwarded(i, Some(block)));
            }
            continue;
        }
        // A reply: what it quotes is not a forward to register.
        if quote::is_attribution(n) && quote::is_strong_attribution(n) {
            return None;
        }
    }
    None
}

/// The lines of the input with their `>` quoting taken off.
struct View<'a> {
    text: &'a str,
    lines: Vec<Line>,
    /// The `>` levels of each line.
    depth: Vec<usize>,
    /// Where each line's text starts after its `>` levels and one space.
    content: Vec<usize>,
    /// Whether the line's text is empty or white space.
    blank: Vec<bool>,
    /// The line's text as [`quote`] compares it.
    norm: Vec<String>,
}

impl<'a> View<'a> {
    fn new(text: &'a str) -> Self {
        let lines = quote::split_lines(text);
        let mut depth = Vec::with_capacity(lines.len());
        let mut content = Vec::with_capacity(lines.len());
        let mut blank = Vec::with_capacity(lines.len());
        let mut norm = Vec::with_capacity(lines.len());
        for l in &lines {
            let raw = &text[l.start..l.end];
            let (d, at) = quote_prefix(raw, usize::MAX);
            let c = &raw[at..];
            depth.push(d);
            content.push(l.start + at);
            blank.push(c.trim().is_empty());
            norm.push(quote::normalise(c));
        }
        View {
            text,
            lines,
            depth,
            content,
            blank,
            norm,
        }
    }

    fn len(&self) -> usize {
        self.lines.len()
    }

    /// Line `i` as it is in the input.
    fn line(&self, i: usize) -> &'a str {
        &self.text[self.lines[i].start..self.lines[i].end]
    }

    /// Line `i` without its `>` levels.
    fn content(&self, i: usize) -> &'a str {
        &self.text[self.content[i]..self.lines[i].end]
    }

    /// The first non-blank line from `from`, with at most `max_blanks` blank lines before it.
    fn next_non_blank(&self, from: usize, max_blanks: usize) -> Option<usize> {
        for (blanks, j) in (from..self.len()).enumerate() {
            if !self.blank[j] {
                return Some(j);
            }
            if blanks == max_blanks {
                return None;
            }
        }
        None
    }

    /// The forward that starts at line `start` (its marker, separator or header block), with
    /// the header block read below it.
    fn forwarded(&self, start: usize, block: Option<Block>) -> Forwarded {
        let note = self.note_before(start);
        let (body, depth, fields) = match block {
            Some(b) => (b.end, self.depth[b.start], b.fields),
            None => (self.len(), self.depth[start], Fields::default()),
        };
        let (from_name, from) = match fields.from {
            Some(v) => sender(&v),
            None => (None, None),
        };
        Forwarded {
            from_name,
            from,
            date: fields.date.map(|d| single_line(&d, MAX_HEADER_CHARS)),
            subject: fields.subject.map(|s| single_line(&s, MAX_HEADER_CHARS)),
            text: self.body_from(body, depth),
            note,
        }
        .without_empty_fields()
    }

    /// The text above line `start`, without the blank lines and rules just above it.
    fn note_before(&self, start: usize) -> String {
        let mut k = start;
        while k > 0 && (self.blank[k - 1] || quote::is_rule_line(self.content(k - 1))) {
            k -= 1;
        }
        if k == 0 {
            return String::new();
        }
        trim(&self.text[..self.lines[k - 1].end]).to_string()
    }

    /// The original's text from line `from`: the rest of the input when the forward is not
    /// quoted; else its lines quoted `depth` levels or more, without those levels, up to the
    /// first line quoted less (the forwarder writing below the forward).
    fn body_from(&self, from: usize, depth: usize) -> String {
        if from >= self.len() {
            return String::new();
        }
        if depth == 0 {
            return trim(&self.text[self.lines[from].start..]).to_string();
        }
        let mut out = String::new();
        for j in from..self.len() {
            if !self.blank[j] && self.depth[j] < depth {
                break;
            }
            let line = &self.text[self.lines[j].start..self.lines[j].end];
            let line = if self.depth[j] < depth {
                ""
            } else {
                &line[quote_prefix(line, depth).1..]
            };
            out.push_str(line);
            out.push('\n');
        }
        trim(&out).to_string()
    }
}

/// The `>` levels that start a line (at most `max`), `> > ` and `>>` alike (RFC 3676 4.5),
/// and the byte offset after them and one space.
fn quote_prefix(line: &str, max: usize) -> (usize, usize) {
    let b = line.as_bytes();
    let (mut depth, mut at) = (0, 0);
    while depth < max {
        let mut j = at;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if j < b.len() && b[j] == b'>' {
            depth += 1;
            at = j + 1;
        } else {
            break;
        }
    }
    if depth > 0 && b.get(at) == Some(&b' ') {
        at += 1;
    }
    (depth, at)
}

/// Trimmed of white space and the byte order mark iOS leaves at the start of a text.
fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

/// The raw values of the fields a forward is read for.
#[derive(Debug, Default)]
struct Fields {
    from: Option<String>,
    date: Option<String>,
    subject: Option<String>,
}

/// A header block as read from its first line.
#[derive(Debug)]
struct Block {
    start: usize,
    /// The first line below the block.
    end: usize,
    fields: Fields,
    first: Option<Field>,
    date: bool,
    /// An addressee or subject header.
    other: bool,
}

impl Block {
    /// Outlook's block, as [`quote`] recognises it: `Van:`/`From:` first, then a date header
    /// and an addressee or subject header.
    fn is_outlook_block(&self) -> bool {
        self.first == Some(Field::From) && self.date && self.other
    }
}

/// Which value a continuation line adds to.
#[derive(Debug, Clone, Copy)]
enum Slot {
    From,
    Date,
    Subject,
    /// A field not read, or one seen before: its continuation lines are skipped.
    Skipped,
}

/// Labels of a header block that are not read but belong to it (Outlook's `Bijlagen:` and
/// `Urgentie:`, Apple's `Antwoord aan:` and `Kopie:`...).
fn is_other_label(n: &str) -> bool {
    let Some((name, _)) = n.split_once(':') else {
        return false;
    };
    matches!(
        name.trim_end(),
        "bcc"
            | "kopie"
            | "reply-to"
            | "antwoord aan"
            | "beantwoorden aan"
            | "bijlagen"
            | "bijlage"
            | "attachments"
            | "attachment"
            | "urgentie"
            | "prioriteit"
            | "importance"
            | "priority"
    )
}

/// The header block that starts at line `start` (possibly none: then `end == start`). It ends
/// at a blank line, a change of quoting, or a line that is neither a header nor the wrapped
/// continuation of one.
fn read_block(v: &View<'_>, start: usize) -> Block {
    let depth = v.depth[start];
    let mut block = Block {
        start,
        end: start,
        fields: Fields::default(),
        first: None,
        date: false,
        other: false,
    };
    let mut slot: Option<Slot> = None;
    let mut continuations = 0;
    let last = start.saturating_add(MAX_BLOCK_LINES).min(v.len());
    let mut j = start;
    while j < last && !v.blank[j] && v.depth[j] == depth {
        let n = v.norm[j].as_str();
        if is_table_rule(v.content(j)) {
            j += 1;
            continue;
        }
        if let Some(field) = quote::header_field(n) {
            block.first.get_or_insert(field);
            let value = value_of(v.content(j));
            let (target, s) = match field {
                Field::From => (&mut block.fields.from, Slot::From),
                Field::Date => {
                    block.date = true;
                    (&mut block.fields.date, Slot::Date)
                }
                Field::Subject => {
                    block.other = true;
                    (&mut block.fields.subject, Slot::Subject)
                }
                Field::To | Field::Cc => {
                    block.other = true;
                    slot = Some(Slot::Skipped);
                    continuations = 0;
                    j += 1;
                    continue;
                }
            };
            slot = Some(if target.is_none() {
                *target = Some(value.to_string());
                s
            } else {
                Slot::Skipped
            });
            continuations = 0;
        } else if is_other_label(n) && block.first.is_some() {
            slot = Some(Slot::Skipped);
            continuations = 0;
        } else if let Some(s) = slot
            && continuations < MAX_CONTINUATIONS
            && (is_wrapped(v.line(j - 1), v.content(j)) || is_cell_continuation(v.content(j)))
        {
            continuations += 1;
            let target = match s {
                Slot::From => block.fields.from.as_mut(),
                Slot::Date => block.fields.date.as_mut(),
                Slot::Subject => block.fields.subject.as_mut(),
                Slot::Skipped => None,
            };
            if let Some(value) = target {
                append_wrapped(value, v.content(j));
            }
        } else {
            break;
        }
        j += 1;
    }
    block.end = j;
    block
}

/// Whether `next` may be the rest of line `line`, wrapped: the line and the first word of
/// `next` are wider than any client wraps at (counted up to that width).
fn is_wrapped(line: &str, next: &str) -> bool {
    let width = line.chars().take(MIN_WRAP_COLUMNS + 1).count();
    let word = next
        .trim_start()
        .chars()
        .take_while(|c| !c.is_whitespace())
        .take(MIN_WRAP_COLUMNS + 1)
        .count();
    width + 1 + word > MIN_WRAP_COLUMNS
}

/// html2text draws Thunderbird's header table (`moz-email-headers-table`) with box rules
/// between the rows: `──────────┼──────`.
fn is_table_rule(content: &str) -> bool {
    let t = content.trim();
    t.starts_with(['─', '━', '┌', '├', '└'])
        && t.chars().all(|c| {
            matches!(
                c,
                '─' | '━'
                    | '┬'
                    | '┼'
                    | '┴'
                    | '┌'
                    | '┐'
                    | '├'
                    | '┤'
                    | '└'
                    | '┘'
                    | '│'
                    | ' '
            )
        })
}

/// A value cell of that table wrapped onto the next line: `          │<kees@example.nl>`.
fn is_cell_continuation(content: &str) -> bool {
    content.starts_with(' ') && content.trim_start().starts_with('│')
}

/// Around a value: white space, and the cell border of html2text's tables.
fn is_value_edge(c: char) -> bool {
    c.is_whitespace() || c == '│'
}

/// A wrapped piece of a header value joined to it, the value bounded.
fn append_wrapped(value: &mut String, piece: &str) {
    let piece = piece.trim_matches(is_value_edge);
    if value.len() + piece.len() + 1 > MAX_VALUE_BYTES {
        return;
    }
    // Gmail wraps inside `<jan@example.nl>` too: no space after an open `<`.
    if !value.is_empty() && !value.ends_with('<') {
        value.push(' ');
    }
    value.push_str(piece);
}

/// The value of a header line: after the label's colon, without the `*` of a bold label.
fn value_of(content: &str) -> &str {
    let value = content.split_once(':').map_or("", |(_, v)| v);
    let mut cut = value.len().min(MAX_VALUE_BYTES);
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    let value = value[..cut]
        .trim_start_matches(|c: char| is_value_edge(c) || c == '*')
        .trim_end_matches(is_value_edge);
    // html2text 0.17 closes a bold label's `**` after the value (`**Subject: **Text**`): a
    // lone closing `**` belongs to the label, not to the value.
    match value.strip_suffix("**") {
        Some(rest) if !rest.contains("**") => rest.trim_end_matches(is_value_edge),
        _ => value,
    }
}

/// The display name and address of a From value as clients write it: `Jan Jansen
/// <jan@example.nl>`, `Jansen, Jan <jan@example.nl>`, `jan@example.nl`, `Jan
/// <mailto:jan@example.nl>`, `Jan Jansen [mailto:jan@example.nl]`, Outlook's text of HTML
/// `jan@example.nl<mailto:jan@example.nl>`, html2text's `**Jan** <[jan@example.nl][1]>`, or
/// a name alone (Exchange's own senders).
fn sender(value: &str) -> (Option<String>, Option<EmailAddress>) {
    let address = value
        .split(|c: char| c.is_whitespace() || "<>[]()\"',;".contains(c))
        .filter(|t| t.contains('@'))
        .map(|t| match t.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("mailto:") => &t[7..],
            _ => t,
        })
        .find_map(|t| EmailAddress::parse(t).ok());
    let before = value.find(['<', '[']).map_or(value, |i| &value[..i]);
    let name = before.trim_matches(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '*'));
    let name = single_line(name, MAX_NAME_CHARS);
    let is_address = EmailAddress::parse(&name).is_ok();
    let name = (!name.is_empty() && !is_address).then_some(name);
    (name, address)
}

impl Forwarded {
    fn without_empty_fields(mut self) -> Self {
        self.date = self.date.filter(|d| !d.is_empty());
        self.subject = self.subject.filter(|s| !s.is_empty());
        self
    }
}

/// Month names and their common abbreviations, Dutch and English (lower case, no dot).
const MONTHS: &[(&str, u32)] = &[
    ("januari", 1),
    ("january", 1),
    ("jan", 1),
    ("februari", 2),
    ("february", 2),
    ("feb", 2),
    ("maart", 3),
    ("march", 3),
    ("mrt", 3),
    ("mar", 3),
    ("april", 4),
    ("apr", 4),
    ("mei", 5),
    ("may", 5),
    ("juni", 6),
    ("june", 6),
    ("jun", 6),
    ("juli", 7),
    ("july", 7),
    ("jul", 7),
    ("augustus", 8),
    ("august", 8),
    ("aug", 8),
    ("september", 9),
    ("sept", 9),
    ("sep", 9),
    ("oktober", 10),
    ("october", 10),
    ("okt", 10),
    ("oct", 10),
    ("november", 11),
    ("nov", 11),
    ("december", 12),
    ("dec", 12),
];

/// The date of a forwarded original as a mail client writes it in the header block, read in
/// the organisation's time zone `tz` when it names none: RFC 5322 (`Mon, 23 Nov 2026 10:01:00
/// +0100`), Outlook (`maandag 23 november 2026 10:01`, `Monday, November 23, 2026 10:01 AM`),
/// Gmail (`ma 23 nov. 2026 om 10:01`, `Mon, Nov 23, 2026 at 10:01 AM`), Apple (`23 november
/// 2026 om 10:01:00 CET`), Thunderbird (`23-11-2026 10:01`). `None` when day, month and year
/// cannot all be read for sure; then the caller keeps the time the forward arrived.
pub fn parse_written_date(text: &str, tz: chrono_tz::Tz) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
    let text = text.trim();
    if text.len() > 200 {
        return None;
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc2822(text) {
        return Some(d.with_timezone(&Utc));
    }
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let (mut day, mut month, mut year, mut time) = (None, None, None, None);
    let mut pm = None;
    for w in &words {
        let w = w.trim_end_matches('.');
        if let Some((_, m)) = MONTHS.iter().find(|(name, _)| *name == w) {
            month = month.or(Some(*m));
        } else if w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()) {
            year = year.or(w.parse::<i32>().ok());
        } else if (1..=2).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_digit()) {
            day = day.or(w.parse::<u32>().ok());
        } else if w.contains(':') {
            let t = w.trim_end_matches(|c: char| !c.is_ascii_digit());
            time = time.or_else(|| {
                NaiveTime::parse_from_str(t, "%H:%M:%S")
                    .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M"))
                    .ok()
            });
        } else if w == "am" || w == "pm" {
            pm = Some(w == "pm");
        } else if let Some((d, rest)) = w.split_once(['-', '/'])
            && let Some((m, y)) = rest.split_once(['-', '/'])
            && y.len() == 4
        {
            // 23-11-2026 (day first, as Dutch clients write it).
            day = day.or(d.parse().ok());
            month = month.or(m.parse().ok());
            year = year.or(y.parse().ok());
        }
    }
    let date = NaiveDate::from_ymd_opt(year?, month?, day?)?;
    let mut time = time.unwrap_or(NaiveTime::MIN);
    if let Some(pm) = pm {
        use chrono::Timelike;
        let h = time.hour() % 12 + if pm { 12 } else { 0 };
        time = time.with_hour(h)?;
    }
    tz.from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {

    #[test]
    fn written_dates_of_the_clients_are_read_in_the_organisations_zone() {
        let tz = chrono_tz::Europe::Amsterdam;
        let want = "2026-11-23T09:01:00+00:00";
        for written in [
            "maandag 23 november 2026 10:01",
            "Monday, November 23, 2026 10:01 AM",
            "ma 23 nov. 2026 om 10:01",
            "Mon, Nov 23, 2026 at 10:01 AM",
            "23 november 2026 om 10:01:00 CET",
            "23-11-2026 10:01",
            "Mon, 23 Nov 2026 10:01:00 +0100",
        ] {
            let got = parse_written_date(written, tz).map(|d| d.to_rfc3339());
            assert_eq!(got.as_deref(), Some(want), "{written}");
        }
        assert_eq!(
            parse_written_date("Monday, November 23, 2026 1:05 PM", tz).map(|d| d.to_rfc3339()),
            Some("2026-11-23T12:05:00+00:00".to_string())
        );
        // Not sure of day, month and year: not guessed.
        assert_eq!(parse_written_date("gisteren om 10:01", tz), None);
        assert_eq!(parse_written_date("23 november 10:01", tz), None);
        assert_eq!(parse_written_date("31 februari 2026", tz), None);
    }
    use super::*;

    fn fwd(text: &str) -> Forwarded {
        forwarded_original(text).unwrap_or_else(|| panic!("no forward found in {text:?}"))
    }

    fn addr(s: &str) -> Option<EmailAddress> {
        Some(EmailAddress::parse(s).unwrap())
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn outlook_desktop_nl_underscore_block() {
        let t = "Graag registreren, mevrouw belde hierover.\r\n\r\nMet vriendelijke groet,\r\nPiet Klaassen\r\n\r\n________________________________\r\nVan: Jansen, Jan <jan.jansen@example.nl>\r\nVerzonden: dinsdag 1 december 2026 21:14\r\nAan: Klachten <klachten@zuidbroek.example.nl>\r\nCC: Piet Klaassen <p.klaassen@zuidbroek.example.nl>\r\nOnderwerp: Lantaarnpaal Beukenlaan\r\n\r\nGeachte heer/mevrouw,\r\n\r\nDe lantaarnpaal is kapot.\r\n";
        let f = fwd(t);
        assert_eq!(f.from_name, some("Jansen, Jan"));
        assert_eq!(f.from, addr("jan.jansen@example.nl"));
        assert_eq!(f.date, some("dinsdag 1 december 2026 21:14"));
        assert_eq!(f.subject, some("Lantaarnpaal Beukenlaan"));
        assert_eq!(
            f.text,
            "Geachte heer/mevrouw,\r\n\r\nDe lantaarnpaal is kapot."
        );
        assert_eq!(
            f.note,
            "Graag registreren, mevrouw belde hierover.\r\n\r\nMet vriendelijke groet,\r\nPiet Klaassen"
        );
    }

    #[test]
    fn outlook_desktop_en_underscore_block_with_mailto() {
        let t = "FYI\n\n________________________________\nFrom: Jan <mailto:jan@example.nl>\nSent: Tuesday, December 1, 2026 9:14 PM\nTo: Complaints <complaints@example.org>\nSubject: Street light\nImportance: High\n\nThe street light is broken.";
        let f = fwd(t);
        assert_eq!(f.from_name, some("Jan"));
        assert_eq!(f.from, addr("jan@example.nl"));
        assert_eq!(f.date, some("Tuesday, December 1, 2026 9:14 PM"));
        assert_eq!(f.subject, some("Street light"));
        assert_eq!(f.text, "The street light is broken.");
        assert_eq!(f.note, "FYI");
    }

    #[test]
    fn outlook_original_message_nl_and_en() {
        let nl = "-----Oorspronkelijk bericht-----\nVan: Jan Jansen [mailto:jan@example.nl]\nVerzonden: dinsdag 1 december 2026 21:14\nAan: Klachten\nOnderwerp: Bankje\n\nHet bankje is stuk.\n";
        let f = fwd(nl);
        assert_eq!(f.from_name, some("Jan Jansen"));
        assert_eq!(f.from, addr("jan@example.nl"));
        assert_eq!(f.subject, some("Bankje"));
        assert_eq!(f.text, "Het bankje is stuk.");
        assert_eq!(f.note, "");
        let en = "See below.\n\n-----Original Message-----\nFrom: jan@example.nl [mailto:jan@example.nl]\nSent: Tuesday, December 1, 2026 9:14 PM\nTo: complaints@example.org\nSubject: Bench\n\nThe bench is broken.";
        let f = fwd(en);
        assert_eq!(f.from_name, None);
        assert_eq!(f.from, addr("jan@example.nl"));
        assert_eq!(f.date, some("Tuesday, December 1, 2026 9:14 PM"));
        assert_eq!(f.text, "The bench is broken.");
        assert_eq!(f.note, "See below.");
    }

    #[test]
    fn gmail_nl_and_en() {
        let nl = "Namens mevrouw De Boer.\n\n---------- Doorgestuurd bericht ---------\nVan: Ria de Boer <ria.deboer@example.nl>\nDate: di 1 dec. 2026 om 21:14\nSubject: Lantaarnpaal\nTo: Jeroen Smit <jeroen@example.nl>\n\n\nHoi Jeroen,\n\nDe lantaarnpaal is kapot.\n\nRia\n";
        let f = fwd(nl);
        assert_eq!(f.from_name, some("Ria de Boer"));
        assert_eq!(f.from, addr("ria.deboer@example.nl"));
        assert_eq!(f.date, some("di 1 dec. 2026 om 21:14"));
        assert_eq!(f.subject, some("Lantaarnpaal"));
        assert_eq!(f.text, "Hoi Jeroen,\n\nDe lantaarnpaal is kapot.\n\nRia");
        assert_eq!(f.note, "Namens mevrouw De Boer.");
        let en = "---------- Forwarded message ---------\nFrom: <ria@example.nl>\nDate: Tue, Dec 1, 2026 at 9:14\u{202f}PM\nSubject: Street light\nTo: <jeroen@example.nl>\n\n\nIt is broken.";
        let f = fwd(en);
        assert_eq!(f.from_name, None);
        assert_eq!(f.from, addr("ria@example.nl"));
        assert_eq!(f.date, some("Tue, Dec 1, 2026 at 9:14 PM"));
        assert_eq!(f.text, "It is broken.");
    }

    #[test]
    fn apple_mail_nl_and_en() {
        let nl = "Zie hieronder.\n\nBegin doorgestuurd bericht:\n\nVan: Anneke Bakker <a.bakker@example.nl>\nOnderwerp: Container\nDatum: 1 december 2026 om 20:44:12 CET\nAan: Wijkteam Noord <wijkteam@example.nl>\nAntwoord aan: Anneke <anneke@example.nl>\n\nOnze container wordt niet geleegd.";
        let f = fwd(nl);
        assert_eq!(f.from_name, some("Anneke Bakker"));
        assert_eq!(f.from, addr("a.bakker@example.nl"));
        assert_eq!(f.date, some("1 december 2026 om 20:44:12 CET"));
        assert_eq!(f.subject, some("Container"));
        assert_eq!(f.text, "Onze container wordt niet geleegd.");
        assert_eq!(f.note, "Zie hieronder.");
        let en = "Begin forwarded message:\n\nFrom: \"Bakker, Anneke\" <a.bakker@example.nl>\nSubject: Bin\nDate: 1 December 2026 at 20:44:12 CET\nTo: Team <team@example.nl>\n\nOur bin was not emptied.";
        let f = fwd(en);
        assert_eq!(f.from_name, some("Bakker, Anneke"));
        assert_eq!(f.subject, some("Bin"));
        assert_eq!(f.text, "Our bin was not emptied.");
    }

    #[test]
    fn thunderbird_nl_and_en_with_tabs() {
        let nl = "Doorgestuurd ter registratie.\n\n\n-------- Doorgestuurd bericht --------\nOnderwerp: \tStoep Dorpsstraat\nDatum: \tTue, 1 Dec 2026 21:14:00 +0100\nVan: \tKees de Wit <kees@example.nl>\nAan: \tWijkteam <wijkteam@example.nl>\n\n\n\nDe stoep ligt open.\n";
        let f = fwd(nl);
        assert_eq!(f.from_name, some("Kees de Wit"));
        assert_eq!(f.from, addr("kees@example.nl"));
        assert_eq!(f.date, some("Tue, 1 Dec 2026 21:14:00 +0100"));
        assert_eq!(f.subject, some("Stoep Dorpsstraat"));
        assert_eq!(f.text, "De stoep ligt open.");
        assert_eq!(f.note, "Doorgestuurd ter registratie.");
        let en = "-------- Forwarded Message --------\nSubject: \tPavement\nDate: \tTue, 1 Dec 2026 21:14:00 +0100\nFrom: \tkees@example.nl\nTo: \tteam@example.nl\n\nThe pavement is open.";
        let f = fwd(en);
        assert_eq!(f.from_name, None);
        assert_eq!(f.from, addr("kees@example.nl"));
        assert_eq!(f.subject, some("Pavement"));
        assert_eq!(f.text, "The pavement is open.");
    }

    #[test]
    fn html_converted_with_bold_labels() {
        // html2text of Outlook's HTML (a rule for `<hr>`, `**Van:**`, linked addresses).
        let t = "Graag oppakken.\n\n──────────────────────────────\n**Van:** Jan Jansen <[jan@example.nl][1]>\n**Verzonden:** dinsdag 1 december 2026 21:14\n**Aan:** Klachten <[klachten@example.nl][2]>\n**Onderwerp:** Bankje\n\nHet bankje is stuk.\n\n[1]: mailto:jan@example.nl\n[2]: mailto:klachten@example.nl";
        let f = fwd(t);
        assert_eq!(f.from_name, some("Jan Jansen"));
        assert_eq!(f.from, addr("jan@example.nl"));
        assert_eq!(f.subject, some("Bankje"));
        assert!(f.text.starts_with("Het bankje is stuk."), "{:?}", f.text);
        assert_eq!(f.note, "Graag oppakken.");
        // Outlook's own text of HTML: `*Van:*`, `text<mailto:...>`.
        let t = "*Van:* jan@example.nl<mailto:jan@example.nl>\n*Verzonden:* 1 december 2026\n*Aan:* klachten@example.nl<mailto:klachten@example.nl>\n*Onderwerp:* Bankje\n\nStuk.";
        let f = fwd(t);
        assert_eq!(f.from_name, None);
        assert_eq!(f.from, addr("jan@example.nl"));
        assert_eq!(f.text, "Stuk.");
        // Thunderbird's header table as html2text draws it.
        let t = "Ter registratie.\n\n-------- Doorgestuurd bericht --------\n──────────┬─────────────────────────────────\nOnderwerp:│Stoep Dorpsstraat                \n──────────┼─────────────────────────────────\nDatum:    │Wed, 2 Dec 2026 22:48:31 +0100   \n──────────┼─────────────────────────────────\nVan:      │Kees de Wit                      \n          │[<kees@example.nl>][1]           \n──────────┼─────────────────────────────────\nAan:      │[g@example.nl][2]                \n──────────┴─────────────────────────────────\n\n\n\nGeachte heer Mulder,\n\nDe stoep.\n\n[1]: mailto:kees@example.nl";
        let f = fwd(t);
        assert_eq!(f.from_name, some("Kees de Wit"));
        assert_eq!(f.from, addr("kees@example.nl"));
        assert_eq!(f.subject, some("Stoep Dorpsstraat"));
        assert_eq!(f.date, some("Wed, 2 Dec 2026 22:48:31 +0100"));
        assert!(
            f.text.starts_with("Geachte heer Mulder,\n\nDe stoep."),
            "{:?}",
            f.text
        );
        // Gmail's HTML: the name in bold.
        let t = "---------- Forwarded message ---------\nFrom: **Ria de Boer** <[ria@example.nl][1]>\nDate: Tue, Dec 1, 2026\nSubject: Light\n\nBroken.";
        assert_eq!(fwd(t).from_name, some("Ria de Boer"));
    }

    #[test]
    fn wrapped_header_values() {
        let t = "---------- Doorgestuurd bericht ---------\nVan: Maria van der Heijden-Bos namens Stichting Buurtbelangen <\nmaria.vanderheijden@example.nl>\nDate: di 1 dec. 2026 om 21:14\nSubject: Overlast van de bouwplaats aan de Kerkstraat, al weken elke\nochtend vanaf zes uur\nTo: Klachten <klachten@example.nl>, Wijkteam <wijkteam@example.nl>,\nPiet <piet@example.nl>\n\nElke ochtend lawaai.";
        let f = fwd(t);
        assert_eq!(
            f.from_name,
            some("Maria van der Heijden-Bos namens Stichting Buurtbelangen")
        );
        assert_eq!(f.from, addr("maria.vanderheijden@example.nl"));
        assert_eq!(
            f.subject,
            some(
                "Overlast van de bouwplaats aan de Kerkstraat, al weken elke ochtend vanaf zes uur"
            )
        );
        assert_eq!(f.text, "Elke ochtend lawaai.");
        // No blank line below the block (HTML converted): a short last line is not wrapped.
        let t = "From: Grace <grace@example.com>\nSent: Thursday, December 3, 2026 18:47\nTo: Sevda Yilmaz <s.yilmaz@zuidbroek.example.nl>; Public Transport Desk\n<ov-loket@zuidbroek.example.nl>\nSubject: Bus 73 skipped our stop again\nHello,\n\nFor the third time.";
        let f = fwd(t);
        assert_eq!(f.subject, some("Bus 73 skipped our stop again"));
        assert_eq!(f.text, "Hello,\n\nFor the third time.");
        // A long subject and a long first line of the text: still no wrap.
        let t = "---------- Forwarded message ---------\nFrom: a@example.nl\nSubject: Overlast van de bouwplaats aan de Kerkstraat\nGeachte heer/mevrouw, al weken is het elke ochtend vanaf zes uur raak.";
        assert_eq!(
            fwd(t).subject,
            some("Overlast van de bouwplaats aan de Kerkstraat")
        );
    }

    #[test]
    fn quoted_forwards() {
        // The whole forward behind `> `, the forwarder writing above and below it.
        let t = "Zie onder.\n\n> ---------- Forwarded message ---------\n> From: Ria <ria@example.nl>\n> Date: Tue, Dec 1, 2026\n> Subject: Light\n>\n> It is broken.\n> > an older quote\n\nThanks, Piet";
        let f = fwd(t);
        assert_eq!(f.from, addr("ria@example.nl"));
        assert_eq!(f.subject, some("Light"));
        assert_eq!(f.text, "It is broken.\n> an older quote");
        assert_eq!(f.note, "Zie onder.");
        // iOS Mail: the marker unquoted, the header block and text quoted.
        let t = "Graag registreren\n\nVerstuurd vanaf mijn iPhone\n\nBegin doorgestuurd bericht:\n\n> Van: Anneke Bakker <a.bakker@example.nl>\n> Datum: 1 december 2026 om 20:44:12 CET\n> Aan: Wijkteam <wijkteam@example.nl>\n> Onderwerp: Container\n> \n> \u{feff}Onze container\n> wordt niet geleegd.\n";
        let f = fwd(t);
        assert_eq!(f.from_name, some("Anneke Bakker"));
        assert_eq!(f.subject, some("Container"));
        assert_eq!(f.text, "Onze container\nwordt niet geleegd.");
        assert_eq!(f.note, "Graag registreren\n\nVerstuurd vanaf mijn iPhone");
    }

    #[test]
    fn note_above_and_only_the_first_forward() {
        let t = "Dit is de tweede keer dat zij mailt.\n#urgent\n\n---------- Forwarded message ---------\nFrom: Ria <ria@example.nl>\nDate: Wed, Dec 2, 2026\nSubject: Fwd: Light\n\nStill broken!\n\n---------- Forwarded message ---------\nFrom: Ria <ria@example.nl>\nDate: Tue, Dec 1, 2026\nSubject: Light\n\nIt is broken.";
        let f = fwd(t);
        assert_eq!(f.note, "Dit is de tweede keer dat zij mailt.\n#urgent");
        assert_eq!(f.subject, some("Fwd: Light"));
        assert_eq!(f.date, some("Wed, Dec 2, 2026"));
        assert!(
            f.text
                .starts_with("Still broken!\n\n---------- Forwarded message")
        );
        assert!(f.text.ends_with("Subject: Light\n\nIt is broken."));
    }

    #[test]
    fn exchange_sender_without_address_and_a_marker_without_headers() {
        let t = "________________________________\nVan: Jansen, Jan\nVerzonden: dinsdag 1 december 2026 21:14\nAan: Klachten\nOnderwerp: Bankje\n\nStuk.";
        let f = fwd(t);
        assert_eq!(f.from_name, some("Jansen, Jan"));
        assert_eq!(f.from, None);
        // A marker is a forward even when no header block follows it.
        let f = fwd("Kijk:\n\nBegin forwarded message:\n\nThe text alone.");
        assert_eq!((f.from, f.subject, f.date), (None, None, None));
        assert_eq!(f.text, "The text alone.");
        assert_eq!(f.note, "Kijk:");
        assert_eq!(fwd("-----Original Message-----").text, "");
    }

    #[test]
    fn a_reply_is_not_a_forward() {
        let t = "Dank u wel.\n\nOp di 1 dec. 2026 om 21:14 schreef Ria de Boer <ria@example.nl>:\n\n> De lantaarnpaal is kapot.\n> ---------- Doorgestuurd bericht ---------\n> Van: X <x@example.nl>\n";
        assert_eq!(forwarded_original(t), None);
        let t = "Thanks.\n\nOn Tue, Dec 1, 2026 at 9:14 PM Ria <ria@example.nl> wrote:\n> It is broken.";
        assert_eq!(forwarded_original(t), None);
    }

    #[test]
    fn text_without_a_forward_is_none() {
        assert_eq!(forwarded_original(""), None);
        assert_eq!(
            forwarded_original("Geachte heer,\n\nDe bus kwam niet.\n\nGroet, Piet"),
            None
        );
        // `Van:` in prose, a header block without a date, and a lone rule are no forward.
        let t = "Van: de gemeente kreeg ik geen antwoord.\nDat is vervelend.\n\nVan: mij\nAan: u\nOnderwerp: x\n\n________________________________\n\nGroet";
        assert_eq!(forwarded_original(t), None);
        // An attribution without a time or address is prose: the forward below counts.
        let t =
            "Op 3 mei schreef ik u al:\n\nBegin doorgestuurd bericht:\n\nVan: a@example.nl\n\nx";
        assert_eq!(fwd(t).from, addr("a@example.nl"));
    }

    #[test]
    fn adversarial_inputs_are_linear() {
        let started = std::time::Instant::now();
        let patterns = [
            "Van: x\nVerzonden: nu\nBijlagen: a\n",
            "________________________________\n\n\n",
            "Van: x\ny\ny\ny\ny\n",
            "> > > > > > > > > > > > > > > > > > > > > > > > > > > > > > > >\n",
            "\n",
        ];
        for p in patterns {
            let text = p.repeat(200_000 / p.lines().count().max(1));
            assert_eq!(forwarded_original(&text), None, "{p:?}");
        }
        let deep = format!(
            "{}Begin forwarded message:\n{}",
            ">".repeat(1_000_000),
            "> x\n".repeat(100_000)
        );
        assert!(forwarded_original(&deep).is_some());
        let long = format!(
            "-----Original Message-----\nFrom: {}\nSent: x\nSubject: y\n\nz",
            "a@b.nl ".repeat(200_000)
        );
        assert_eq!(fwd(&long).text, "z");
        assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    }

    fn assert_lines_in_input(
        out: &str,
        input: &str,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        for line in out.lines().filter(|l| !l.trim().is_empty()) {
            proptest::prop_assert!(input.contains(line), "line {:?} not in the input", line);
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn any_input_gives_lines_of_the_input(
            parts in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::Just("---------- Forwarded message ---------".to_string()),
                proptest::prelude::Just("Begin doorgestuurd bericht:".to_string()),
                proptest::prelude::Just("________________________________".to_string()),
                proptest::prelude::Just("Van: Jan <j@x.nl>".to_string()),
                proptest::prelude::Just("*From:* j@x.nl [mailto:j@x.nl]".to_string()),
                proptest::prelude::Just("Verzonden: nu".to_string()),
                proptest::prelude::Just("Onderwerp: x".to_string()),
                proptest::prelude::Just("> Aan: Y".to_string()),
                proptest::prelude::Just("> ".to_string()),
                proptest::prelude::Just("".to_string()),
                proptest::prelude::Just("Op 2 dec. 2026 om 10:15 schreef Jan <j@x.nl>:".to_string()),
                "[ -~\u{a0}\u{feff}é>*_\r\t-]{0,30}",
                proptest::prelude::any::<String>(),
            ], 0..30),
            crlf in proptest::prelude::any::<bool>(),
        ) {
            let input = parts.join(if crlf { "\r\n" } else { "\n" });
            if let Some(f) = forwarded_original(&input) {
                assert_lines_in_input(&f.text, &input)?;
                assert_lines_in_input(&f.note, &input)?;
                proptest::prop_assert_eq!(f.text.trim(), f.text.as_str());
                proptest::prop_assert_eq!(f.note.trim(), f.note.as_str());
                for v in [&f.from_name, &f.date, &f.subject].into_iter().flatten() {
                    proptest::prop_assert!(!v.is_empty());
                    proptest::prop_assert!(!v.chars().any(crate::domain::text::is_unsafe_char));
                }
            }
        }

        #[test]
        fn any_string_does_not_panic(s in proptest::prelude::any::<String>()) {
            if let Some(f) = forwarded_original(&s) {
                assert_lines_in_input(&f.text, &s)?;
                assert_lines_in_input(&f.note, &s)?;
            }
        }
    }
}

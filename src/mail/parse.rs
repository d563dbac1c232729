//! Raw bytes to an owned [`ParsedMail`]. mail-parser accepts almost any bytes as a message, so
//! what "cannot be parsed" means is decided here: no recognisable header, or no usable sender
//! on a mail that is not automatic (automatic mail without one gets a placeholder sender and
//! `sender_missing`: bounces come from `<MAILER-DAEMON>`, `<>` or nobody). Those mails are
//! quarantined by the caller with the reason and their raw bytes.
//!
//! Text that reaches headers, the register and terminals (subject, display name) leaves here
//! without control characters and bounded; so are the header values kept for classification.

use chrono::{DateTime, Utc};
use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};

use crate::domain::classify::{MailFacts, automatic_reason};
use crate::domain::types::{EmailAddress, MessageId};

#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct ParsedMail {
    pub facts: MailFacts,
    pub from_name: Option<String>,
    pub to: Vec<EmailAddress>,
    pub date: Option<DateTime<Utc>>,
    /// Plain text: the text part, or the HTML part converted to readable text.
    pub text: String,
    /// `text` is the HTML part converted (there was no text part): quote stripping then cuts
    /// the HTML at its client markers first (see [`crate::mail::reply`]).
    pub text_from_html: bool,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
    /// The mails attached whole (message/rfc822, RFC 2046 5.2.1): Outlook's and
    /// Thunderbird's "forward as attachment". Each stays in `attachments` too. At most
    /// [`MAX_ATTACHED_MESSAGES`], none of a report (its returned mail is ours), and never the
    /// mails attached inside an attached mail.
    pub attached_messages: Vec<AttachedMessage>,
}

/// A mail attached to a mail, read as [`ParsedMail`] reads its own sender, date, subject and
/// text.
#[derive(Debug, Clone)]
pub struct AttachedMessage {
    pub from_name: Option<String>,
    /// `None` when its From has no usable address.
    pub from: Option<EmailAddress>,
    pub date: Option<DateTime<Utc>>,
    pub subject: String,
    /// The text part, or the HTML part converted, as [`ParsedMail::text`].
    pub text: String,
}

/// Attached mails read at most: a forward of a whole folder is not read mail by mail.
pub const MAX_ATTACHED_MESSAGES: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseFailure {
    #[error("empty mail")]
    Empty,
    #[error("not a mail message: no header block could be read")]
    NotAMessage,
    #[error("no usable headers: none of From, To, Subject, Date, Message-ID or Received")]
    NoHeaders,
    #[error("no usable sender: {0}")]
    NoSender(String),
    /// mail-parser panicked on it (a `debug_assert!` on a malformed multipart nesting, in
    /// debug builds): the mail is quarantined with this reason, like any unreadable mail.
    #[error("the mail parser failed on this mail: {0}")]
    ParserFailed(String),
}

/// Headers a real message has at least one of; a file without any of them is not a mail.
const CORE_HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "received",
    "return-path",
    "sender",
];

/// RFC 5322 2.1.1: a line is at most 998 characters; a subject is kept up to that.
pub use crate::domain::text::MAX_HEADER_CHARS as MAX_SUBJECT_CHARS;
/// A display name longer than this is not a name.
pub use crate::domain::text::MAX_NAME_CHARS;
/// Unfolded header values kept in [`MailFacts::headers`]: enough for any real header that
/// classification reads, and a 10 MB header is not copied around whole.
pub const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;
/// The sender of automatic mail that names none (RFC 2606: `.invalid` never resolves).
pub const PLACEHOLDER_SENDER: &str = "mailer-daemon@unknown.invalid";

/// At most this many Message-IDs are kept of In-Reply-To and of References.
const MAX_THREAD_IDS: usize = 50;
/// A mail with CR alone as line end is read up to this size (real ones are small).
const MAX_CR_ONLY_BYTES: usize = 4 * 1024 * 1024;
/// At most this many headers are kept in [`MailFacts::headers`].
const MAX_HEADERS: usize = 1000;
/// At most this many quoted Message-IDs are kept from the parts of one mail.
const MAX_REPORT_IDS: usize = 16;

pub fn parse(raw: &[u8]) -> Result<ParsedMail, ParseFailure> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseFailure::Empty);
    }
    // RFC 5322 2.3: lines end in CRLF. Classic Mac OS software stores mail with CR alone
    // (sisimai's maildir/mac), which mail-parser reads as one endless header line: a mail
    // without a single LF is read with CR as the line end. Bounded: it costs a copy.
    let crlf;
    let raw = if raw.len() <= MAX_CR_ONLY_BYTES && !raw.contains(&b'\n') && raw.contains(&b'\r') {
        crlf = {
            let mut v = Vec::with_capacity(raw.len() * 2);
            for &b in raw {
                v.push(b);
                if b == b'\r' {
                    v.push(b'\n');
                }
            }
            v
        };
        &crlf[..]
    } else {
        raw
    };
    // A copy is parsed only when the header block needs rewriting (see rewrite_header_block);
    // the caller stores the raw bytes as they came.
    let rewritten = rewrite_header_block(raw);
    let input = rewritten.as_deref().unwrap_or(raw);
    // A dependency that panics on hostile bytes must not decide what happens to the mail:
    // here it is an unreadable mail, with the reason.
    let msg = std::panic::catch_unwind(|| MessageParser::default().parse(input))
        .map_err(|panic| ParseFailure::ParserFailed(crate::panics::panic_message(panic)))?
        .ok_or(ParseFailure::NotAMessage)?;
    let headers: Vec<(String, String)> = msg
        .headers_raw()
        .take(MAX_HEADERS)
        .map(|(n, v)| (n.to_ascii_lowercase(), unfold(v, MAX_HEADER_VALUE_BYTES)))
        .collect();
    if !headers
        .iter()
        .any(|(n, _)| CORE_HEADERS.contains(&n.as_str()))
    {
        return Err(ParseFailure::NoHeaders);
    }

    let sender = sender_of(&msg, &headers);

    let reply_to = msg
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .and_then(|a| EmailAddress::parse(a).ok());
    let to = msg
        .to()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address())
                .filter_map(|x| EmailAddress::parse(x).ok())
                .collect()
        })
        .unwrap_or_default();
    let date = date_of(&msg);

    let (text, text_from_html) = body_text(&msg);
    let html = msg.body_html(0).map(|h| h.into_owned());

    let parts = report_parts(&msg);
    let is_report = parts.report_type.is_some();
    let mut attachments = Vec::new();
    let mut attached_messages = Vec::new();
    for part in msg.attachments() {
        // The returned or reported mail of a report is not the sender's attachment.
        if is_report && matches!(part.body, PartType::Message(_)) {
            continue;
        }
        // mail-parser keeps the parts of an attached mail inside it, so this loop never
        // reaches the mails attached to that one.
        if let PartType::Message(inner) = &part.body
            && attached_messages.len() < MAX_ATTACHED_MESSAGES
        {
            attached_messages.push(attached_message(inner));
        }
        let name = part
            .attachment_name()
            .map(str::to_string)
            .unwrap_or_else(|| "attachment".to_string());
        let content_type = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(s) => format!("{}/{}", c.ctype(), s),
                None => c.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".to_string());
        attachments.push(Attachment {
            name,
            content_type,
            bytes: part.contents().to_vec(),
        });
    }

    let message_id = msg.message_id().and_then(|m| MessageId::parse(m).ok());
    let subject = clean_text(msg.subject().unwrap_or(""), MAX_SUBJECT_CHARS);
    let (from, sender_missing, from_name, failure) = match sender {
        Ok((from, name)) => (from, false, name, None),
        Err(failure) => match fallback_sender(&headers) {
            Some(from) => (from, true, None, Some(failure)),
            None => return Err(failure),
        },
    };
    let facts = MailFacts {
        from,
        sender_missing,
        reply_to,
        subject,
        message_id,
        in_reply_to: bounded_ids(id_list(msg.in_reply_to())),
        references: bounded_ids(id_list(msg.references())),
        headers,
        is_delivery_report: parts.report_type.as_deref() == Some("delivery-status"),
        report_type: parts.report_type,
        returned_message: parts.returned_message,
        report_message_ids: parts.message_ids,
    };
    // Automatic mail without a usable sender (bounces from `<MAILER-DAEMON>`, from `<>`, or
    // with no From at all) is a bounce or unfiled, never quarantined; a person's mail without
    // one can be neither answered nor filed, so it is quarantined.
    if let Some(failure) = failure
        && automatic_reason(&facts).is_none()
    {
        return Err(failure);
    }
    Ok(ParsedMail {
        facts,
        from_name,
        to,
        date,
        text: without_nul(text),
        text_from_html,
        html: html.map(without_nul),
        attachments: attachments
            .into_iter()
            .map(|a| Attachment {
                name: without_nul(a.name),
                ..a
            })
            .collect(),
        attached_messages: attached_messages
            .into_iter()
            .map(|m| AttachedMessage {
                subject: without_nul(m.subject),
                text: without_nul(m.text),
                ..m
            })
            .collect(),
    })
}

/// RFC 5322 3.5 leaves NUL out of a message's text (only the obsolete syntax of 4.1 has it),
/// no mail client shows one, and PostgreSQL text cannot hold it: a NUL is read as U+FFFD, the
/// replacement character, on every backend, so both keep the same text.
pub fn without_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}

/// The Date header in UTC.
fn date_of(msg: &mail_parser::Message<'_>) -> Option<DateTime<Utc>> {
    msg.date()
        .and_then(|d| DateTime::parse_from_rfc3339(&d.to_rfc3339()).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// An attached mail's sender, date, subject and text, read as the mail's own are. A From
/// without a usable address keeps its display name.
fn attached_message(inner: &mail_parser::Message<'_>) -> AttachedMessage {
    // The raw header list only words the error, which is not kept here.
    let (from, from_name) = match sender_of(inner, &[]) {
        Ok((from, name)) => (Some(from), name),
        Err(_) => {
            let name = inner
                .from()
                .and_then(|a| a.first())
                .and_then(|a| a.name())
                .map(|n| clean_text(n, MAX_NAME_CHARS))
                .filter(|n| !n.is_empty());
            (None, name)
        }
    };
    AttachedMessage {
        from_name,
        from,
        date: date_of(inner),
        subject: clean_text(inner.subject().unwrap_or(""), MAX_SUBJECT_CHARS),
        text: body_text(inner).0,
    }
}

/// The sender from From (or Sender when there is no From) and its display name, cleaned.
fn sender_of(
    msg: &mail_parser::Message<'_>,
    headers: &[(String, String)],
) -> Result<(EmailAddress, Option<String>), ParseFailure> {
    let from_list = msg.from().or_else(|| msg.sender());
    // Outlook writes `From: de Vries, Jan <jan@example.nl>` with the comma unquoted (invalid
    // under RFC 5322 3.4, where the comma separates mailboxes): read as two entries, a name
    // without an address and "Jan <jan@...>". When exactly one entry has an address, the
    // others are pieces of its display name.
    let entries: Vec<&mail_parser::Addr<'_>> = from_list
        .map(|a| a.iter().take(MAX_FROM_ENTRIES).collect())
        .unwrap_or_default();
    let with_address: Vec<&&mail_parser::Addr<'_>> =
        entries.iter().filter(|a| a.address().is_some()).collect();
    let split_name = (entries.len() > 1 && with_address.len() == 1).then(|| {
        entries
            .iter()
            .filter_map(|a| a.name())
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    });
    let from_addr = match with_address.as_slice() {
        [one] if entries.len() > 1 => Some(**one),
        _ => from_list.and_then(|a| a.first()),
    };
    let from_raw = headers
        .iter()
        .find(|(n, _)| n == "from")
        .map(|(_, v)| clean_text(v, MAX_NAME_CHARS))
        .unwrap_or_default();
    let quoted = from_addr.and_then(quoted_local_part);
    let from = match quoted.as_deref().or(from_addr.and_then(|a| a.address())) {
        Some(a) => EmailAddress::parse(a)
            .map_err(|_| ParseFailure::NoSender(format!("From {from_raw:?} is not an address")))?,
        None if from_raw.is_empty() => {
            return Err(ParseFailure::NoSender("no From header".into()));
        }
        None => {
            return Err(ParseFailure::NoSender(format!(
                "From {from_raw:?} has no address"
            )));
        }
    };
    let name = match split_name {
        Some(n) => Some(n),
        None => from_addr
            .filter(|_| quoted.is_none())
            .and_then(|a| a.name())
            .map(str::to_string),
    }
    .map(|n| clean_text(&n, MAX_NAME_CHARS))
    .filter(|n| !n.is_empty());
    Ok((from, name))
}

/// A From with more entries than this is not a person's name split at commas.
const MAX_FROM_ENTRIES: usize = 8;

/// mail-parser 0.11 reads the quoted local part of `"System Administrator"@example.com`
/// (RFC 5322 3.4.1: local-part may be a quoted-string) as a display name and the address as
/// `@example.com`. Put the address back together.
fn quoted_local_part(a: &mail_parser::Addr<'_>) -> Option<String> {
    let domain = a.address()?.strip_prefix('@')?;
    let local = a.name()?;
    let escaped: String = local
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    Some(format!("\"{escaped}\"@{domain}"))
}

/// The best address an automatic mail without a usable From has: Sender, then Return-Path,
/// then [`PLACEHOLDER_SENDER`].
fn fallback_sender(headers: &[(String, String)]) -> Option<EmailAddress> {
    ["sender", "return-path"]
        .iter()
        .filter_map(|h| headers.iter().find(|(n, _)| n == h))
        .find_map(|(_, v)| {
            let v = v.split('(').next().unwrap_or("");
            let addr = match (v.find('<'), v.rfind('>')) {
                (Some(a), Some(b)) if a < b => &v[a + 1..b],
                _ => v,
            };
            EmailAddress::parse(addr).ok()
        })
        .or_else(|| EmailAddress::parse(PLACEHOLDER_SENDER).ok())
}

/// What the parts of a mail say about it being a report.
struct ReportParts {
    report_type: Option<String>,
    returned_message: bool,
    message_ids: Vec<MessageId>,
}

/// Report parts anywhere in the mail's own part tree (not inside a quoted mail): RFC 6522
/// multipart/report with its report-type, or inferred from the report part when the
/// parameter is missing or the report came without a multipart/report (InterScan, McAfee);
/// the quoted mails' Message-IDs.
fn report_parts(msg: &mail_parser::Message<'_>) -> ReportParts {
    let declared = msg
        .root_part()
        .content_type()
        .filter(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
        .map(|ct| {
            ct.attribute("report-type")
                .map(|t| t.trim().to_ascii_lowercase())
                .unwrap_or_default()
        });
    let mut inferred = None;
    let mut returned_message = false;
    let mut message_ids: Vec<MessageId> = Vec::new();
    for part in msg.parts.iter() {
        let ctype = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(s) => format!("{}/{}", c.ctype(), s).to_ascii_lowercase(),
                None => c.ctype().to_ascii_lowercase(),
            })
            .unwrap_or_default();
        let kind = match ctype.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => Some("delivery-status"),
            "message/feedback-report" => Some("feedback-report"),
            "message/disposition-notification" | "message/global-disposition-notification" => {
                Some("disposition-notification")
            }
            _ => None,
        };
        if inferred.is_none() {
            inferred = kind;
        }
        // The quoted mail comes whole (message/rfc822, RFC 6532 message/global) or as its
        // headers only (RFC 6522 text/rfc822-headers, RFC 6533 message/global-headers).
        let id = match &part.body {
            PartType::Message(inner) => {
                returned_message = true;
                inner.message_id().and_then(|m| MessageId::parse(m).ok())
            }
            _ if matches!(
                ctype.as_str(),
                "text/rfc822-headers" | "message/rfc822-headers" | "message/global-headers"
            ) =>
            {
                returned_message = true;
                find_message_id_in_header_text(part.contents())
            }
            _ => None,
        };
        if let Some(id) = id
            && message_ids.len() < MAX_REPORT_IDS
            && !message_ids.contains(&id)
        {
            message_ids.push(id);
        }
    }
    let report_type = match (declared, inferred) {
        (Some(t), _) if !t.is_empty() => Some(t),
        (Some(_), Some(k)) | (None, Some(k)) => Some(k.to_string()),
        // A multipart/report without a report-type or a report part: most are DSNs.
        (Some(_), None) => Some("delivery-status".to_string()),
        (None, None) => None,
    };
    ReportParts {
        report_type,
        returned_message,
        message_ids,
    }
}

/// Text for one line of a header, the register and a terminal (see
/// [`crate::domain::text::single_line`]).
pub fn clean_text(s: &str, max_chars: usize) -> String {
    crate::domain::text::single_line(s, max_chars)
}

/// Two things in a top-level header block that mail-parser 0.11 gets wrong are rewritten in
/// a copy before parsing; `None` when there is nothing to rewrite, as for almost every mail.
///
/// * It reads an alphabetic zone as three bytes whatever follows: a one- or two-letter zone
///   at the end of a Date line (`UT`, `Z`, military zones, RFC 5322 4.3) eats the line break
///   and the next header (From or Subject lost). Such zones in Date and Resent-Date become
///   numbers: `UT` and `Z` +0000, the others -0000 (RFC 5322 4.3: their sign was wrong in
///   RFC 822).
/// * ISO-2022-JP (RFC 1468) written raw into a header is 7-bit, so it passes as ASCII: the
///   escape sequences stay in the text, and their `$`, `(` and `<` break address parsing.
///   Each run from `ESC $` up to the switch back (`ESC ( B`, `ESC ( J`) becomes an RFC 2047
///   encoded word, which mail-parser decodes.
fn rewrite_header_block(raw: &[u8]) -> Option<Vec<u8>> {
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut i = 0;
    while i < raw.len() && !raw[i..].starts_with(b"\n") && !raw[i..].starts_with(b"\r\n") {
        // A field: this line and the continuation lines after it.
        let mut end = i;
        loop {
            match raw[end..].iter().position(|&b| b == b'\n') {
                Some(k) => {
                    end += k + 1;
                    if end < raw.len() && (raw[end] == b' ' || raw[end] == b'\t') {
                        continue;
                    }
                }
                None => end = raw.len(),
            }
            break;
        }
        let field = &raw[i..end];
        if let Some(colon) = field.iter().position(|&b| b == b':') {
            let name = field[..colon].trim_ascii();
            let at = i + colon + 1;
            if name.eq_ignore_ascii_case(b"date") || name.eq_ignore_ascii_case(b"resent-date") {
                if let Some((s, e, with)) = obsolete_zone(&field[colon + 1..]) {
                    edits.push((at + s, at + e, with.to_vec()));
                }
            } else {
                for (s, e) in iso_2022_jp_runs(&field[colon + 1..]) {
                    edits.push((at + s, at + e, encoded_word(&field[colon + 1..][s..e])));
                }
            }
        }
        i = end;
    }
    if edits.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len() + 8 * edits.len());
    let mut at = 0;
    for (s, e, with) in edits {
        out.extend_from_slice(&raw[at..s]);
        out.extend_from_slice(&with);
        at = e;
    }
    out.extend_from_slice(&raw[at..]);
    Some(out)
}

/// Spans of raw ISO-2022-JP in a header value: from `ESC $` to just after the next
/// `ESC ( B` / `ESC ( J`, or to the end of the line when the switch back is missing.
fn iso_2022_jp_runs(value: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut k = 0;
    while let Some(start) = find(&value[k..], b"\x1b$").map(|p| p + k) {
        let line_end = value[start..]
            .iter()
            .position(|&b| b == b'\r' || b == b'\n' || !b.is_ascii())
            .map_or(value.len(), |p| p + start);
        let end = [&b"\x1b(B"[..], &b"\x1b(J"[..]]
            .iter()
            .filter_map(|e| find(&value[start..line_end], e).map(|p| start + p + e.len()))
            .min()
            .unwrap_or(line_end);
        runs.push((start, end));
        k = end;
    }
    runs
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// An RFC 2047 Q-encoded word for ISO-2022-JP bytes, with spaces around it so that it
/// stands as a word of its own (RFC 2047 5); every byte but letters and digits is escaped.
fn encoded_word(bytes: &[u8]) -> Vec<u8> {
    let mut out = b" =?ISO-2022-JP?Q?".to_vec();
    for &b in bytes {
        if b.is_ascii_alphanumeric() {
            out.push(b);
        } else {
            out.extend_from_slice(format!("={b:02X}").as_bytes());
        }
    }
    out.extend_from_slice(b"?= ");
    out
}

/// The span of a one- or two-letter zone that ends a date value (outside comments), right
/// after the time of day, and its numeric replacement.
fn obsolete_zone(value: &[u8]) -> Option<(usize, usize, &'static [u8])> {
    let mut tokens: Vec<(usize, usize)> = Vec::new();
    let (mut depth, mut start, mut escaped) = (0usize, None::<usize>, false);
    for (k, &b) in value.iter().enumerate() {
        if depth > 0 {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
            continue;
        }
        let separator = b.is_ascii_whitespace() || b == b'(' || b == b',';
        if separator {
            if let Some(s) = start.take() {
                tokens.push((s, k));
            }
            if b == b'(' {
                depth = 1;
            }
        } else if start.is_none() {
            start = Some(k);
        }
    }
    if let Some(s) = start {
        tokens.push((s, value.len()));
    }
    let [.., (ts, te), (zs, ze)] = tokens[..] else {
        return None;
    };
    let zone = &value[zs..ze];
    let after_time = value[ts..te].contains(&b':');
    if !after_time || zone.is_empty() || zone.len() > 2 || !zone.iter().all(u8::is_ascii_alphabetic)
    {
        return None;
    }
    let with: &'static [u8] = if zone.eq_ignore_ascii_case(b"UT") || zone.eq_ignore_ascii_case(b"Z")
    {
        b"+0000"
    } else {
        b"-0000"
    };
    Some((zs, ze, with))
}

/// The text a person reads: the plain part, or the HTML part converted with html2text (far more
/// readable than stripping tags, and it keeps links and lists); and whether it is the HTML.
fn body_text(msg: &mail_parser::Message<'_>) -> (String, bool) {
    let has_plain = msg
        .text_bodies()
        .any(|p| matches!(p.body, PartType::Text(_)));
    if has_plain && let Some(t) = msg.body_text(0) {
        return (t.trim_end().to_string(), false);
    }
    if let Some(h) = msg.body_html(0) {
        return (html_to_text(&h), true);
    }
    (String::new(), false)
}

/// HTML to readable text in bounded time: see [`crate::mail::html`].
pub fn html_to_text(html: &str) -> String {
    crate::mail::html::html_to_text(html)
}

/// The thread ids kept of one header: each is looked up and stored, and a header may list
/// 100,000. RFC 5322 3.6.4: References ends with the parent and its nearest ancestors and
/// starts with the thread's root; those are kept, the middle is dropped.
fn bounded_ids(mut ids: Vec<MessageId>) -> Vec<MessageId> {
    if ids.len() > MAX_THREAD_IDS {
        ids.drain(1..ids.len() - (MAX_THREAD_IDS - 1));
    }
    ids
}

fn id_list(v: &HeaderValue<'_>) -> Vec<MessageId> {
    match v {
        HeaderValue::Text(t) => MessageId::parse(t).into_iter().collect(),
        HeaderValue::TextList(list) => list
            .iter()
            .filter_map(|t| MessageId::parse(t).ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// A header value unfolded (RFC 5322 2.2.3) into one line, at most `max` bytes; a longer
/// value is cut at a character boundary without being copied whole first.
fn unfold(v: &str, max: usize) -> String {
    let mut out = String::new();
    for piece in v
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if !out.is_empty() {
            if out.len() + 1 >= max {
                break;
            }
            out.push(' ');
        }
        let room = max - out.len();
        if piece.len() <= room {
            out.push_str(piece);
        } else {
            let mut cut = room;
            while !piece.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&piece[..cut]);
            break;
        }
    }
    out
}

fn find_message_id_in_header_text(bytes: &[u8]) -> Option<MessageId> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("message-id")
        {
            let mut v = value.trim().to_string();
            // Folded onto the next line.
            if v.is_empty()
                && let Some(next) = lines.peek()
            {
                v = next.trim().to_string();
            }
            return MessageId::parse(&v).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_mail_that_makes_the_parser_panic_is_an_unreadable_mail() {
        // Found by the parse fuzz target: mail-parser's debug assertion on multipart nesting.
        let raw = include_bytes!("../../fuzz/regressions/parse/mail-parser-debug-assert-multipart");
        // Release builds compile the assertion out; then any outcome but a panic is fine.
        if let Err(ParseFailure::ParserFailed(m)) = parse(raw) {
            assert!(m.contains("multipart"), "{m}");
        }
    }
    use super::*;

    use crate::domain::classify::automatic_reason;

    fn reason(raw: &[u8]) -> Option<String> {
        let m = parse(raw).unwrap_or_else(|e| panic!("{e}"));
        automatic_reason(&m.facts).map(|r| r.to_string())
    }

    const DSN_PARTS: &str = "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.nl\r\n\r\nFinal-Recipient: rfc822; gone@example.nl\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: service@org.nl\r\nMessage-ID: <ack-1@org.nl>\r\n\r\n--B--\r\n";

    #[test]
    fn iso_2022_jp_subjects_are_decoded() {
        // RFC 1468 in an RFC 2047 encoded word, and written raw (7-bit, so it passes as ASCII).
        let encoded = b"From: a@example.jp\r\nSubject: =?ISO-2022-JP?B?GyRCJWEhPCVrJSglaSE8RExDThsoQg==?=\r\n\r\nx\r\n";
        assert_eq!(parse(encoded).unwrap().facts.subject, "メールエラー通知");
        let raw =
            b"From: a@example.jp\r\nSubject: Re: \x1b$B%a!<%k%(%i!<DLCN\x1b(B (2)\r\n\r\nx\r\n";
        assert_eq!(
            parse(raw).unwrap().facts.subject,
            "Re: メールエラー通知 (2)"
        );
        let name = b"From: \x1b$B%a!<%k\x1b(B <a@example.jp>\r\nSubject: x\r\n\r\nx\r\n";
        assert_eq!(parse(name).unwrap().from_name.as_deref(), Some("メール"));
    }

    #[test]
    fn obsolete_date_zones_do_not_swallow_the_next_header() {
        // RFC 5322 4.3: UT and GMT are +0000; military zones are -0000 (their sign was wrong
        // in RFC 822). mail-parser 0.11 reads two more bytes after the first letter of a zone.
        for (zone, utc_hour) in [
            ("UT", 10),
            ("Z", 10),
            ("GMT", 10),
            ("UTC", 10),
            ("EST", 15),
            ("A", 10),
            ("M", 10),
            ("N", 10),
            ("Y", 10),
            ("+0100", 9),
        ] {
            for eol in ["\r\n", "\n"] {
                for order in [
                    ["From: Jan <jan@example.nl>", "Subject: Lesrooster"],
                    ["Subject: Lesrooster", "From: Jan <jan@example.nl>"],
                ] {
                    let raw = format!(
                        "Date: Mon, 23 Nov 2026 10:00:00 {zone}{eol}{}{eol}{}{eol}To: service@org.nl{eol}{eol}body{eol}",
                        order[0], order[1]
                    );
                    let m = parse(raw.as_bytes()).unwrap_or_else(|e| panic!("{zone} {eol:?}: {e}"));
                    assert_eq!(
                        m.facts.from.as_str(),
                        "jan@example.nl",
                        "{zone} {order:?} {eol:?}"
                    );
                    assert_eq!(m.facts.subject, "Lesrooster", "{zone} {order:?} {eol:?}");
                    assert_eq!(
                        m.date.map(|d| d.to_rfc3339()),
                        Some(format!("2026-11-23T{utc_hour:02}:00:00+00:00")),
                        "{zone} {eol:?}"
                    );
                }
            }
        }
        // A zone followed by a comment, and Resent-Date.
        let raw = b"Resent-Date: Mon, 23 Nov 2026 10:00:00 Z\nDate: 23 Nov 2026 10:00 UT (Universal)\nFrom: jan@example.nl\nSubject: s\n\nbody\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.facts.subject, "s");
        assert!(m.date.is_some());
    }

    /// Issue #8 finding 21: a valid quoted local part is an address, not a display name.
    #[test]
    fn an_unquoted_comma_in_the_display_name_is_one_name() {
        for (raw, name) in [
            (
                &b"From: de Vries, Jan <jan@example.nl>\r\nSubject: x\r\n\r\nbody\r\n"[..],
                "de Vries, Jan",
            ),
            (
                &b"From: Janssen, Ruud (Afdeling Planning) <r.janssen@example.nl>\r\nSubject: x\r\n\r\nbody\r\n"[..],
                "Janssen, Ruud (Afdeling Planning)",
            ),
        ] {
            let m = parse(raw).unwrap();
            assert_eq!(m.from_name.as_deref(), Some(name));
            assert!(m.facts.from.as_str().ends_with("@example.nl"));
        }
        // Two real mailboxes stay two: the first is the sender, as before.
        let two = parse(b"From: a@example.nl, b@example.nl\r\nSubject: x\r\n\r\nbody\r\n").unwrap();
        assert_eq!(two.facts.from.as_str(), "a@example.nl");
    }

    #[test]
    fn a_quoted_local_part_is_the_address() {
        let raw = b"From: \"System Administrator\"@example.com\r\nSubject: x\r\n\r\nbody\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(
            m.facts.from.as_str(),
            "\"system administrator\"@example.com"
        );
        assert_eq!(m.from_name, None);
        let raw =
            b"From: Beheer <\"System Administrator\"@example.com>\r\nSubject: x\r\n\r\nbody\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.facts.from.domain(), "example.com");
    }

    #[test]
    fn display_name_and_subject_lose_control_characters() {
        // Finding 1: an encoded LF in the display name; finding 8: terminal escapes.
        let raw = b"From: =?utf-8?b?SmFuCkJjYzogeEBldmlsLmV4YW1wbGU=?= <p0@example.nl>\r\nSubject: =?utf-8?b?YQ1iAGMJZBtbMUEbWzMybWXigK5m4oGmZ8KFaH8=?=\r\n\r\nx\r\n";
        let m = parse(raw).unwrap();
        let name = m.from_name.unwrap();
        assert_eq!(name, "Jan Bcc: x@evil.example");
        let subject = &m.facts.subject;
        assert!(
            subject
                .chars()
                .all(|c| !crate::domain::text::is_unsafe_char(c)),
            "{subject:?}"
        );
        assert_eq!(subject, "a b c d [1A [32me f g h");
    }

    #[test]
    fn subject_display_name_and_headers_are_bounded() {
        let mut raw = String::from("From: ");
        raw.push_str(&"N".repeat(5_000));
        raw.push_str(" <jan@example.nl>\r\nSubject: start");
        for _ in 0..200_000 {
            raw.push_str("\r\n folded words");
        }
        raw.push_str("\r\nTo: service@org.nl\r\n\r\nbody\r\n");
        let m = parse(raw.as_bytes()).unwrap();
        assert_eq!(m.facts.subject.chars().count(), MAX_SUBJECT_CHARS);
        assert!(m.facts.subject.starts_with("start folded words folded"));
        assert_eq!(m.from_name.unwrap().chars().count(), MAX_NAME_CHARS);
        assert!(
            m.facts
                .headers
                .iter()
                .all(|(_, v)| v.len() <= MAX_HEADER_VALUE_BYTES)
        );
        // The headers after the long one are all there.
        assert_eq!(m.facts.header("to"), Some("service@org.nl"));
    }

    #[test]
    fn automatic_mail_without_a_usable_sender_parses() {
        // Finding 17: DSNs from sendmail, Barracuda, DragonFly, and one without any From.
        for from in [
            "From: Mail Delivery Subsystem <MAILER-DAEMON>\r\n",
            "From: MAILER-DAEMON <>\r\n",
            "From: <>\r\n",
            "",
        ] {
            let raw = format!(
                "{from}To: service+b-7-0123456789@org.nl\r\nSubject: Returned mail\r\n{DSN_PARTS}"
            );
            let m = parse(raw.as_bytes()).unwrap_or_else(|e| panic!("{from:?}: {e}"));
            assert!(m.facts.sender_missing, "{from:?}");
            assert_eq!(m.facts.from.as_str(), PLACEHOLDER_SENDER);
            assert_eq!(m.facts.report_message_ids[0].as_str(), "ack-1@org.nl");
            assert!(automatic_reason(&m.facts).is_some(), "{from:?}");
        }
        // Headers alone make it automatic: a daemon-like From, an empty Return-Path, a VERP
        // recipient; the best address available is kept.
        let cases: &[(&str, &str)] = &[
            (
                "From: Mail Delivery Subsystem <MAILER-DAEMON>\r\nTo: jan@example.nl\r\n",
                PLACEHOLDER_SENDER,
            ),
            (
                "Return-Path: <>\r\nFrom: Klachtenformulier\r\nTo: service@org.nl\r\n",
                PLACEHOLDER_SENDER,
            ),
            (
                "From: Mail Delivery System <MAILER-DAEMON>\r\nSender: bounces@mx.example.nl\r\nTo: service+b-7-0123456789@org.nl\r\n",
                "bounces@mx.example.nl",
            ),
            (
                "Return-Path: <MAILER-DAEMON@mx.example.nl>\r\nTo: service@org.nl\r\n",
                "mailer-daemon@mx.example.nl",
            ),
        ];
        for (headers, from) in cases {
            let raw = format!("{headers}Subject: x\r\n\r\nbody\r\n");
            let m = parse(raw.as_bytes()).unwrap_or_else(|e| panic!("{headers:?}: {e}"));
            assert!(m.facts.sender_missing);
            assert_eq!(m.facts.from.as_str(), *from, "{headers:?}");
            assert!(automatic_reason(&m.facts).is_some(), "{headers:?}");
        }
    }

    #[test]
    fn human_mail_without_a_usable_sender_still_fails() {
        for raw in [
            "Return-Path: <scanner@printer.example.org>\r\nTo: service@org.nl\r\nSubject: Scan\r\n\r\nbody\r\n",
            "From: Klachtenformulier website\r\nTo: service@org.nl\r\nSubject: Returned mail\r\n\r\nbody\r\n",
            "From: Postmaster Jansen\r\nSubject: x\r\n\r\nbody\r\n",
        ] {
            assert!(
                matches!(parse(raw.as_bytes()), Err(ParseFailure::NoSender(_))),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn escaped_at_in_a_postmaster_address_is_automatic() {
        // Finding 15: a real bounce's From.
        let raw = b"From: <Postmaster\\@xxx.com@xxx.com>\r\nTo: service@org.nl\r\nSubject: Undeliverable\r\n\r\nbody\r\n";
        let r = reason(raw);
        assert!(r.is_some_and(|r| r.contains("postmaster")));
    }

    #[test]
    fn every_report_type_is_automatic() {
        let report = |ctype: &str, part: &str| {
            format!(
                "From: staff@isp.example\r\nTo: service@org.nl\r\nSubject: Report\r\nContent-Type: {ctype}boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nA report.\r\n--B\r\nContent-Type: {part}\r\n\r\nVersion: 1\r\n\r\n--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: service@org.nl\r\nMessage-ID: <ack-2@org.nl>\r\nSubject: x\r\n\r\nOur acknowledgement.\r\n--B--\r\n"
            )
        };
        // RFC 5965 (ARF), RFC 8098 (MDN), and one without a report-type (Yahoo's).
        for (ctype, part, kind) in [
            (
                "multipart/report; report-type=feedback-report; ",
                "message/feedback-report",
                "feedback report",
            ),
            (
                "multipart/report; report-type=\"disposition-notification\"; ",
                "message/disposition-notification",
                "read receipt",
            ),
            (
                "multipart/report; ",
                "message/feedback-report",
                "feedback report",
            ),
            (
                "multipart/report; report-type=tlsrpt; ",
                "application/tlsrpt+json",
                "tlsrpt",
            ),
            (
                "multipart/mixed; ",
                "message/feedback-report",
                "feedback report",
            ),
        ] {
            let raw = report(ctype, part);
            let m = parse(raw.as_bytes()).unwrap();
            let r = automatic_reason(&m.facts).map(|r| r.to_string());
            assert!(
                r.as_deref().is_some_and(|r| r.contains(kind)),
                "{ctype} {part}: {r:?}"
            );
            // Never a delivery report: it must not mark our mail bounced.
            assert!(!m.facts.is_delivery_report, "{ctype}");
            assert_eq!(m.facts.report_message_ids[0].as_str(), "ack-2@org.nl");
            // The reported mail is ours, not a forward.
            assert!(m.attached_messages.is_empty(), "{ctype}");
        }
        // A delivery-status part without multipart/report, and a report-type left out.
        for ctype in ["multipart/mixed; ", "multipart/report; "] {
            let raw = report(ctype, "message/delivery-status");
            let m = parse(raw.as_bytes()).unwrap();
            assert!(m.facts.is_delivery_report, "{ctype}");
            assert_eq!(
                automatic_reason(&m.facts).map(|r| r.to_string()).as_deref(),
                Some("delivery status report (RFC 3464)")
            );
        }
    }

    #[test]
    fn forwarded_mail_is_not_a_report() {
        // A complainant forwarding a mail as an attachment (message/rfc822), even one of ours.
        let raw = b"From: Jan <jan@example.nl>\r\nTo: service@org.nl\r\nSubject: Fw: Undeliverable: mijn klacht\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nZie bijlage.\r\n--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: service@org.nl\r\nMessage-ID: <ack-3@org.nl>\r\nSubject: x\r\n\r\nbody\r\n--B--\r\n";
        let m = parse(raw).unwrap();
        assert!(!m.facts.is_delivery_report);
        assert_eq!(automatic_reason(&m.facts), None);
        // The forwarded mail stays an attachment of the complaint.
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attached_messages.len(), 1);
        assert_eq!(
            m.attached_messages[0].from.as_ref().map(|a| a.as_str()),
            Some("service@org.nl")
        );
    }

    fn rfc822(from: &str, subject: &str, body_headers: &str, body: &str) -> String {
        format!(
            "From: {from}\r\nDate: Tue, 1 Dec 2026 21:14:00 +0100\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n{body_headers}\r\n{body}"
        )
    }

    #[test]
    fn attached_mails_are_read() {
        let plain = rfc822(
            "\"Jansen, Jan\" <Jan@Example.nl>",
            "=?utf-8?q?Lantaarnpaal_kapot_=E2=80=93_Beukenlaan?=",
            "Content-Type: text/plain; charset=utf-8\r\n",
            "De lantaarnpaal is kapot.\r\n",
        );
        let html = rfc822(
            "Piet Bos",
            "Bankje",
            "Content-Type: text/html; charset=utf-8\r\n",
            "<p>Het <b>bankje</b> is stuk.</p>\r\n",
        );
        let raw = format!(
            "From: Staff <staff@org.nl>\r\nTo: service@org.nl\r\nSubject: FW: twee klachten\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nZie bijlagen.\r\n--B\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"klacht.eml\"\r\n\r\n{plain}--B\r\nContent-Type: message/rfc822\r\n\r\n{html}--B--\r\n"
        );
        let m = parse(raw.as_bytes()).unwrap();
        assert_eq!(m.text, "Zie bijlagen.");
        assert_eq!(m.attachments.len(), 2);
        assert_eq!(m.attachments[0].content_type, "message/rfc822");
        let [a, b] = &m.attached_messages[..] else {
            panic!("{:?}", m.attached_messages)
        };
        assert_eq!(a.from.as_ref().unwrap().as_str(), "jan@example.nl");
        assert_eq!(a.from_name.as_deref(), Some("Jansen, Jan"));
        assert_eq!(a.subject, "Lantaarnpaal kapot – Beukenlaan");
        assert_eq!(
            a.date.map(|d| d.to_rfc3339()).as_deref(),
            Some("2026-12-01T20:14:00+00:00")
        );
        assert_eq!(a.text, "De lantaarnpaal is kapot.");
        // A From without an address keeps its name; HTML is converted.
        assert_eq!(b.from, None);
        assert_eq!(b.from_name.as_deref(), Some("Piet Bos"));
        assert!(
            b.text.contains("bankje") && !b.text.contains("<p>"),
            "{}",
            b.text
        );
    }

    #[test]
    fn attached_mails_are_bounded_and_not_recursed() {
        let inner = rfc822(
            "inner@example.nl",
            "binnenste",
            "Content-Type: text/plain\r\n",
            "x\r\n",
        );
        let middle = rfc822(
            "middle@example.nl",
            "midden",
            "Content-Type: multipart/mixed; boundary=\"C\"\r\n",
            &format!(
                "--C\r\nContent-Type: text/plain\r\n\r\nm\r\n--C\r\nContent-Type: message/rfc822\r\n\r\n{inner}--C--\r\n"
            ),
        );
        let mut raw = String::from(
            "From: staff@org.nl\r\nSubject: FW\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n",
        );
        raw.push_str(&format!(
            "--B\r\nContent-Type: message/rfc822\r\n\r\n{middle}"
        ));
        for i in 0..7 {
            raw.push_str(&format!(
                "--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: n{i}@example.nl\r\nSubject: {i}\r\n\r\nt{i}\r\n"
            ));
        }
        raw.push_str("--B--\r\n");
        let m = parse(raw.as_bytes()).unwrap();
        assert_eq!(m.attachments.len(), 8);
        assert_eq!(m.attached_messages.len(), MAX_ATTACHED_MESSAGES);
        assert_eq!(m.attached_messages[0].subject, "midden");
        assert_eq!(m.attached_messages[1].subject, "0");
        assert!(m.attached_messages.iter().all(|a| a.subject != "binnenste"));
    }

    /// Every byte Q-encoded (RFC 2047 4.2): any text, controls included, as a header word.
    fn q_word(text: &str) -> String {
        let hex: String = text.bytes().map(|b| format!("={b:02X}")).collect();
        format!("=?utf-8?Q?{hex}?=")
    }

    fn clean(s: &str) -> bool {
        !s.chars().any(crate::domain::text::is_unsafe_char)
    }

    proptest::proptest! {
        #[test]
        fn clean_text_has_no_controls_and_is_bounded(s in "\\PC*|[\\x00-\\x1f\\x7f-\\u{9f}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069} a-z]*", max in 0usize..50) {
            let out = clean_text(&s, max);
            proptest::prop_assert!(clean(&out), "{:?}", out);
            proptest::prop_assert!(out.chars().count() <= max);
            proptest::prop_assert_eq!(out.trim(), out.as_str());
        }

        #[test]
        fn parsed_subject_and_name_are_clean(name in "[\\x00-\\x1f\\x7f-\\u{9f}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069} a-zé\"<>@]{0,300}", subject in ".{0,1200}|[\\x00-\\x1f\\u{202e} a-z]{0,50}") {
            let raw = format!(
                "From: {} <jan@example.nl>\r\nSubject: {}\r\nTo: service@org.nl\r\n\r\nbody\r\n",
                q_word(&name),
                q_word(&subject)
            );
            let m = parse(raw.as_bytes()).unwrap();
            proptest::prop_assert_eq!(m.facts.from.as_str(), "jan@example.nl");
            proptest::prop_assert!(clean(&m.facts.subject), "{:?}", m.facts.subject);
            proptest::prop_assert!(m.facts.subject.chars().count() <= MAX_SUBJECT_CHARS);
            if let Some(n) = &m.from_name {
                proptest::prop_assert!(clean(n), "{:?}", n);
                proptest::prop_assert!(n.chars().count() <= MAX_NAME_CHARS);
            }
        }
    }

    #[test]
    fn plain_mail() {
        let raw = b"From: Jan Jansen <Jan@Example.nl>\r\nTo: service@org.nl\r\nSubject: Lesrooster\r\nMessage-ID: <a1@example.nl>\r\nIn-Reply-To: <x@org.nl>\r\nReferences: <w@org.nl> <x@org.nl>\r\n\r\nDe les viel uit.\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.facts.from.as_str(), "jan@example.nl");
        assert_eq!(m.from_name.as_deref(), Some("Jan Jansen"));
        assert_eq!(m.facts.subject, "Lesrooster");
        assert_eq!(m.facts.message_id.unwrap().as_str(), "a1@example.nl");
        assert_eq!(m.facts.in_reply_to.len(), 1);
        assert_eq!(m.facts.references.len(), 2);
        assert_eq!(m.text, "De les viel uit.");
    }

    #[test]
    fn thread_ids_are_bounded_keeping_the_root_and_the_nearest() {
        let refs: Vec<String> = (0..100_000).map(|i| format!("<r{i}@x.nl>")).collect();
        let raw = format!(
            "From: a@example.nl\r\nSubject: x\r\nReferences: {}\r\n\r\nx",
            refs.join("\r\n ")
        );
        let m = parse(raw.as_bytes()).unwrap();
        let r = &m.facts.references;
        assert_eq!(r.len(), MAX_THREAD_IDS);
        assert_eq!(r[0].as_str(), "r0@x.nl");
        assert_eq!(r[r.len() - 1].as_str(), "r99999@x.nl");
        assert_eq!(
            r[1].as_str(),
            format!("r{}@x.nl", 100_000 - MAX_THREAD_IDS + 1)
        );
    }

    #[test]
    fn html_only_is_converted() {
        let raw = b"From: a@example.nl\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Goedemiddag,</p><p>De <b>les</b> &amp; de docent.</p></body></html>";
        let m = parse(raw).unwrap();
        assert!(m.text.contains("Goedemiddag,"), "{}", m.text);
        assert!(m.text.contains("& de docent"), "{}", m.text);
        assert!(!m.text.contains("<p>"), "{}", m.text);
    }

    #[test]
    fn garbage_and_senderless_mail_are_refused() {
        assert_eq!(parse(b"  \r\n").unwrap_err(), ParseFailure::Empty);
        assert!(parse(b"\x00\x01\x02 binary junk without headers").is_err());
        assert!(matches!(
            parse(b"Subject: no sender\r\n\r\nbody").unwrap_err(),
            ParseFailure::NoSender(_)
        ));
        assert!(matches!(
            parse(b"From: not an address\r\nSubject: x\r\n\r\nbody").unwrap_err(),
            ParseFailure::NoSender(_)
        ));
    }

    #[test]
    fn delivery_report_names_the_bounced_message() {
        let raw = b"From: MAILER-DAEMON@mx.example.nl\r\nTo: service+b-abc@org.nl\r\nSubject: Undelivered Mail\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.nl\r\n\r\nFinal-Recipient: rfc822; gone@example.nl\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: service@org.nl\r\nMessage-ID: <ack-1@org.nl>\r\nSubject: [KL-2026-0001] x\r\n\r\n--B--\r\n";
        let m = parse(raw).unwrap();
        assert!(m.facts.is_delivery_report);
        assert_eq!(m.facts.report_message_ids[0].as_str(), "ack-1@org.nl");
        assert!(
            m.attachments
                .iter()
                .all(|a| a.content_type != "message/rfc822")
        );
        assert!(m.attached_messages.is_empty());
    }
}

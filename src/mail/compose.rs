//! Our outgoing mail, built with lettre's message builder. The bytes are made once, at enqueue,
//! so the Message-ID and Date are fixed and a retry sends the very same mail.

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use rand::Rng;

use crate::domain::classify::sign;
use crate::domain::text::{MAX_HEADER_CHARS, MAX_NAME_CHARS, single_line};
use crate::domain::types::{EmailAddress, MessageId};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot use address {0:?} in a mail header")]
    Address(String),
    #[error("cannot build mail: {0}")]
    Build(String),
}

/// Why we send: a reply to a person's mail (RFC 3834 `auto-replied`), or a notice we generate
/// ourselves (`auto-generated`). Either way auto-responders must not answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoKind {
    Replied,
    Generated,
}

#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub from_name: String,
    pub from: EmailAddress,
    pub to: Vec<(Option<String>, EmailAddress)>,
    pub reply_to: Option<EmailAddress>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: MessageId,
    pub in_reply_to: Option<MessageId>,
    pub references: Vec<MessageId>,
    pub date: DateTime<Utc>,
    pub auto: AutoKind,
}

fn lettre_address(addr: &EmailAddress) -> Result<lettre::Address, ComposeError> {
    addr.as_str()
        .parse()
        .map_err(|_| ComposeError::Address(addr.to_string()))
}

fn mailbox(name: Option<&str>, addr: &EmailAddress) -> Result<Mailbox, ComposeError> {
    let name = name
        .map(|n| single_line(n, MAX_NAME_CHARS))
        .filter(|n| !n.is_empty());
    Ok(Mailbox::new(name, lettre_address(addr)?))
}

/// A display name as RFC 5322 section 3.2.5 wants it: printable ASCII always as a
/// quoted-string (lettre writes `Free-Quilting.com` bare, which only the obsolete syntax of
/// section 4.1 allows), anything else as RFC 2047 encoded words. The name is made one safe
/// line first, so nothing a sender wrote can end the header.
fn encode_display_name(name: &str) -> Result<Option<String>, ComposeError> {
    let name = single_line(name, MAX_NAME_CHARS);
    if name.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    if name.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        out.push('"');
        for c in name.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        // "To: " is already on the line.
        let mut w = email_encoding::headers::writer::EmailWriter::new(&mut out, 4, 0, false);
        email_encoding::headers::rfc2047::encode(&name, &mut w)
            .map_err(|_| ComposeError::Build(format!("cannot encode display name {name:?}")))?;
    }
    Ok(Some(out))
}

/// The To header, written by us rather than lettre's mailbox encoder (see
/// [`encode_display_name`]); mailboxes separated by a folded comma.
fn to_header(to: &[(Option<String>, EmailAddress)]) -> Result<HeaderValue, ComposeError> {
    let mut raw = Vec::new();
    let mut encoded = Vec::new();
    for (name, addr) in to {
        lettre_address(addr)?;
        match name
            .as_deref()
            .map(encode_display_name)
            .transpose()?
            .flatten()
        {
            Some(n) => {
                encoded.push(format!("{n} <{addr}>"));
                raw.push(format!(
                    "{} <{addr}>",
                    single_line(name.as_deref().unwrap_or(""), MAX_NAME_CHARS)
                ));
            }
            None => {
                encoded.push(addr.to_string());
                raw.push(addr.to_string());
            }
        }
    }
    if encoded.is_empty() {
        return Err(ComposeError::Build("no recipient".into()));
    }
    let name = HeaderName::new_from_ascii_str("To");
    Ok(HeaderValue::dangerous_new_pre_encoded(
        name,
        raw.join(", "),
        encoded.join(",\r\n "),
    ))
}

fn raw_header(name: &str, value: &str) -> Result<HeaderValue, ComposeError> {
    let name = HeaderName::new_from_ascii(name.to_string())
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(HeaderValue::new(name, value.to_string()))
}

/// An image the HTML part shows by `cid:` (RFC 2392), sent in a multipart/related with it.
#[derive(Debug, Clone)]
pub struct InlineImage {
    pub content_id: String,
    pub png: Vec<u8>,
}

/// A file attached to the mail.
#[derive(Debug, Clone)]
pub struct FileAttachment {
    pub filename: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// What a report mail carries besides its text and HTML parts.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    pub inline: Vec<InlineImage>,
    pub attachments: Vec<FileAttachment>,
}

pub fn build(mail: &OutgoingMail) -> Result<Vec<u8>, ComposeError> {
    build_with(mail, &Parts::default())
}

/// [`build`] with inline images and attachments: multipart/mixed (RFC 2046 5.1.3) around
/// multipart/alternative (text, then multipart/related (RFC 2387): the HTML and its images),
/// then the files. Without any, the plain multipart/alternative of [`build`].
pub fn build_with(mail: &OutgoingMail, parts: &Parts) -> Result<Vec<u8>, ComposeError> {
    let recipients = mail
        .to
        .iter()
        .map(|(_, a)| lettre_address(a))
        .collect::<Result<Vec<_>, _>>()?;
    let envelope = lettre::address::Envelope::new(Some(lettre_address(&mail.from)?), recipients)
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    let mut b = lettre::Message::builder()
        .from(mailbox(Some(&mail.from_name), &mail.from)?)
        .subject(single_line(&mail.subject, MAX_HEADER_CHARS))
        .message_id(Some(mail.message_id.bracketed()))
        .date(mail.date.into())
        .envelope(envelope)
        .raw_header(to_header(&mail.to)?);
    if let Some(r) = &mail.reply_to {
        b = b.reply_to(mailbox(None, r)?);
    }
    if let Some(irt) = &mail.in_reply_to {
        b = b.in_reply_to(irt.bracketed());
    }
    if !mail.references.is_empty() {
        let refs: Vec<String> = mail.references.iter().map(|m| m.bracketed()).collect();
        b = b.references(refs.join(" "));
    }
    // RFC 3834 section 5; X-Auto-Response-Suppress keeps Exchange from answering with
    // out-of-office or read receipts.
    let auto = match mail.auto {
        AutoKind::Replied => "auto-replied",
        AutoKind::Generated => "auto-generated",
    };
    b = b
        .raw_header(raw_header("Auto-Submitted", auto)?)
        .raw_header(raw_header("X-Auto-Response-Suppress", "All")?)
        .raw_header(raw_header("Precedence", "auto_reply")?);
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(crlf(&mail.text));
    let html = SinglePart::builder()
        .header(ContentType::TEXT_HTML)
        .body(crlf(&mail.html));
    let alternative = if parts.inline.is_empty() {
        MultiPart::alternative().singlepart(text).singlepart(html)
    } else {
        let png =
            ContentType::parse("image/png").map_err(|e| ComposeError::Build(e.to_string()))?;
        let mut related = MultiPart::related().singlepart(html);
        for image in &parts.inline {
            related = related.singlepart(
                Attachment::new_inline(image.content_id.clone())
                    .body(image.png.clone(), png.clone()),
            );
        }
        MultiPart::alternative().singlepart(text).multipart(related)
    };
    let body = if parts.attachments.is_empty() {
        alternative
    } else {
        let mut mixed = MultiPart::mixed().multipart(alternative);
        for file in &parts.attachments {
            let content_type = ContentType::parse(&file.content_type)
                .map_err(|e| ComposeError::Build(e.to_string()))?;
            mixed = mixed.singlepart(
                Attachment::new(single_line(&file.filename, MAX_NAME_CHARS))
                    .body(file.body.clone(), content_type),
            );
        }
        mixed
    };
    let msg = b
        .multipart(body)
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(msg.formatted())
}

/// `text` with CRLF line ends (RFC 5322 2.3), in one pass. lettre would do it itself, but by
/// inserting each CR into the string (0.11 `in_place_crlf_line_endings`): quadratic, so a
/// digest of 100,000 rows took over ten minutes to build. Text already in CRLF passes lettre
/// untouched. A lone CR stays as it is, as lettre leaves it.
pub fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut previous = '\0';
    for c in text.chars() {
        if c == '\n' && previous != '\r' {
            out.push('\r');
        }
        out.push(c);
        previous = c;
    }
    out
}

/// A new Message-ID on our domain: random, plus a keyed hash of the random part, so a later
/// reply can prove it answers a mail we really sent (staff commands rely on that).
pub fn new_message_id(domain: &str, key: &[u8]) -> Result<MessageId, ComposeError> {
    let random: u64 = rand::thread_rng().r#gen();
    let left = format!("kl.{random:016x}");
    let id = format!("{left}.{}@{domain}", sign(&left, key));
    MessageId::parse(&id).map_err(|e| ComposeError::Build(e.to_string()))
}

/// True when `id` is a Message-ID we made with `key` (see [`new_message_id`]).
pub fn is_our_message_id(id: &MessageId, key: &[u8]) -> bool {
    let Some((left, _domain)) = id.as_str().split_once('@') else {
        return false;
    };
    let Some((random, sig)) = left.rsplit_once('.') else {
        return false;
    };
    random.starts_with("kl.") && sign(random, key) == sig
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_become_crlf_once() {
        assert_eq!(crlf("a\nb\r\nc\n"), "a\r\nb\r\nc\r\n");
        assert_eq!(crlf("\n\n"), "\r\n\r\n");
        assert_eq!(crlf("lone\rcr"), "lone\rcr");
        assert_eq!(crlf("é\nü"), "é\r\nü");
        assert_eq!(crlf(&crlf("x\ny\n")), "x\r\ny\r\n");
    }

    #[test]
    fn built_mail_has_threading_and_auto_headers() {
        let m = OutgoingMail {
            from_name: "Muziekcentrum Zuidoost".into(),
            from: EmailAddress::parse("service@mzo.nl").unwrap(),
            to: vec![(
                Some("Jan Jansen".into()),
                EmailAddress::parse("jan@example.nl").unwrap(),
            )],
            reply_to: None,
            subject: "[KL-2026-0001] Lesrooster groep 5".into(),
            text: "Beste Jan, ontvangen.".into(),
            html: "<p>Beste Jan, ontvangen.</p>".into(),
            message_id: MessageId::parse("<out-1@mzo.nl>").unwrap(),
            in_reply_to: Some(MessageId::parse("<in-1@example.nl>").unwrap()),
            references: vec![MessageId::parse("<in-1@example.nl>").unwrap()],
            date: DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                .unwrap()
                .into(),
            auto: AutoKind::Replied,
        };
        let raw = String::from_utf8(build(&m).unwrap()).unwrap();
        for needle in [
            "Message-ID: <out-1@mzo.nl>",
            "In-Reply-To: <in-1@example.nl>",
            "References: <in-1@example.nl>",
            "Auto-Submitted: auto-replied",
            "X-Auto-Response-Suppress: All",
            "Subject: [KL-2026-0001] Lesrooster groep 5",
            "multipart/alternative",
        ] {
            assert!(raw.contains(needle), "{needle} missing in\n{raw}");
        }
        // And it parses back.
        let parsed = crate::mail::parse::parse(raw.as_bytes()).unwrap();
        assert_eq!(parsed.facts.message_id.unwrap().as_str(), "out-1@mzo.nl");
    }

    fn mail_to(name: &str, subject: &str) -> OutgoingMail {
        OutgoingMail {
            from_name: "Muziekcentrum Zuidoost".into(),
            from: EmailAddress::parse("service@mzo.nl").unwrap(),
            to: vec![(
                Some(name.to_string()),
                EmailAddress::parse("p0@example.nl").unwrap(),
            )],
            reply_to: None,
            subject: subject.into(),
            text: "t".into(),
            html: "<p>t</p>".into(),
            message_id: MessageId::parse("<out-1@mzo.nl>").unwrap(),
            in_reply_to: None,
            references: vec![],
            date: DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                .unwrap()
                .into(),
            auto: AutoKind::Replied,
        }
    }

    fn header_lines(raw: &[u8], name: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(raw);
        let head = text.split("\r\n\r\n").next().unwrap_or("").to_string();
        head.split("\r\n")
            .filter(|l| {
                l.split_once(':')
                    .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
            })
            .map(str::to_string)
            .collect()
    }

    /// Issue #8 findings 1 and 2: a CR, LF or NUL in a display name made lettre fail or panic,
    /// and with it the whole batch; nor may it add a header.
    #[test]
    fn hostile_display_names_build_one_to_header() {
        for name in [
            "Jan\nBcc: x@evil.example",
            "Jan\rBcc: x@evil.example",
            "Jan\r\nBcc: x@evil.example",
            "Jan\u{0}",
            "\u{0}",
            "\u{1b}[1A\u{1b}[2K\u{1b}[32mOK",
            "\u{202e}exe.txt",
            "Rogue \" User \\",
        ] {
            let raw = build(&mail_to(name, "Klacht\r\nBcc: y@evil.example")).unwrap();
            assert!(header_lines(&raw, "bcc").is_empty(), "{name:?}");
            assert_eq!(header_lines(&raw, "to").len(), 1, "{name:?}");
            let parsed = crate::mail::parse::parse(&raw).unwrap();
            assert_eq!(parsed.to.len(), 1, "{name:?}");
            assert_eq!(parsed.to[0].as_str(), "p0@example.nl");
        }
    }

    /// Issue #8 finding 21: RFC 5322 has no bare dot in a phrase.
    #[test]
    fn a_display_name_with_a_dot_is_quoted() {
        let raw = build(&mail_to("Free-Quilting.com", "x")).unwrap();
        assert_eq!(
            header_lines(&raw, "to"),
            ["To: \"Free-Quilting.com\" <p0@example.nl>"]
        );
        let raw = build(&mail_to("Zoë de Vries", "x")).unwrap();
        let to = header_lines(&raw, "to").join("");
        assert!(to.contains("=?utf-8?b?"), "{to}");
        let parsed = crate::mail::parse::parse(&raw).unwrap();
        assert_eq!(parsed.to[0].as_str(), "p0@example.nl");
    }

    #[test]
    fn a_quoted_local_part_is_written_as_it_is() {
        let mut m = mail_to("Beheer", "x");
        m.to = vec![(
            None,
            EmailAddress::parse("\"System Administrator\"@example.com").unwrap(),
        )];
        let raw = build(&m).unwrap();
        assert_eq!(
            header_lines(&raw, "to"),
            ["To: \"system administrator\"@example.com"]
        );
    }

    proptest::proptest! {
        /// Whatever a sender calls themselves and whatever the subject: the mail builds, has
        /// exactly one To and no header it did not ask for.
        #[test]
        fn any_name_and_subject_build(name in proptest::prelude::any::<String>(), subject in proptest::prelude::any::<String>()) {
            let raw = build(&mail_to(&name, &subject)).unwrap();
            proptest::prop_assert_eq!(header_lines(&raw, "to").len(), 1);
            proptest::prop_assert!(header_lines(&raw, "bcc").is_empty());
        }
    }

    #[test]
    fn our_message_ids_verify() {
        let id = new_message_id("mzo.nl", b"k").unwrap();
        assert!(id.as_str().ends_with("@mzo.nl"));
        assert!(is_our_message_id(&id, b"k"));
        assert!(!is_our_message_id(&id, b"other"));
        assert!(!is_our_message_id(
            &MessageId::parse("<kl.1234.abcdef@mzo.nl>").unwrap(),
            b"k"
        ));
    }
}

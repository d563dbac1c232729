//! Our outgoing mail, built with lettre's message builder. The bytes are made once, at enqueue,
//! so the Message-ID and Date are fixed and a retry sends the very same mail.

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use rand::Rng;

use crate::domain::classify::sign;
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

fn mailbox(name: Option<&str>, addr: &EmailAddress) -> Result<Mailbox, ComposeError> {
    let address = addr
        .as_str()
        .parse()
        .map_err(|_| ComposeError::Address(addr.to_string()))?;
    Ok(Mailbox::new(name.map(str::to_string), address))
}

fn raw_header(name: &str, value: &str) -> Result<HeaderValue, ComposeError> {
    let name = HeaderName::new_from_ascii(name.to_string())
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(HeaderValue::new(name, value.to_string()))
}

pub fn build(mail: &OutgoingMail) -> Result<Vec<u8>, ComposeError> {
    let mut b = lettre::Message::builder()
        .from(mailbox(Some(&mail.from_name), &mail.from)?)
        .subject(mail.subject.clone())
        .message_id(Some(mail.message_id.bracketed()))
        .date(mail.date.into());
    for (name, addr) in &mail.to {
        b = b.to(mailbox(name.as_deref(), addr)?);
    }
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
    let body = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(mail.text.clone()),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(mail.html.clone()),
        );
    let msg = b
        .multipart(body)
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(msg.formatted())
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

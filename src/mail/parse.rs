//! Raw bytes to an owned [`ParsedMail`]. mail-parser accepts almost any bytes as a message, so
//! what "cannot be parsed" means is decided here: no recognisable header, or no usable sender.
//! Those mails are quarantined by the caller with the reason and their raw bytes.

use chrono::{DateTime, Utc};
use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};

use crate::domain::classify::MailFacts;
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
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
}

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

pub fn parse(raw: &[u8]) -> Result<ParsedMail, ParseFailure> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseFailure::Empty);
    }
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or(ParseFailure::NotAMessage)?;
    let headers: Vec<(String, String)> = msg
        .headers_raw()
        .map(|(n, v)| (n.to_ascii_lowercase(), unfold(v)))
        .collect();
    if !headers
        .iter()
        .any(|(n, _)| CORE_HEADERS.contains(&n.as_str()))
    {
        return Err(ParseFailure::NoHeaders);
    }

    let from_addr = msg
        .from()
        .and_then(|a| a.first())
        .or_else(|| msg.sender().and_then(|a| a.first()));
    let from_raw = headers
        .iter()
        .find(|(n, _)| n == "from")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let from = match from_addr.and_then(|a| a.address()) {
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
    let from_name = from_addr
        .and_then(|a| a.name())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());

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
    let date = msg
        .date()
        .and_then(|d| DateTime::parse_from_rfc3339(&d.to_rfc3339()).ok())
        .map(|d| d.with_timezone(&Utc));

    let text = body_text(&msg);
    let html = msg.body_html(0).map(|h| h.into_owned());

    let mut attachments = Vec::new();
    let mut report_message_ids = Vec::new();
    let mut is_delivery_report = false;
    let top_type = msg.root_part().content_type();
    if let Some(ct) = top_type
        && ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    {
        // RFC 6522 report; RFC 3464 delivery status when report-type says so (or is absent).
        is_delivery_report = ct
            .attribute("report-type")
            .is_none_or(|t| t.eq_ignore_ascii_case("delivery-status"));
    }
    for part in msg.parts.iter() {
        let ctype = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(s) => format!("{}/{}", c.ctype(), s).to_ascii_lowercase(),
                None => c.ctype().to_ascii_lowercase(),
            })
            .unwrap_or_default();
        if is_delivery_report {
            // The bounced mail comes back whole (message/rfc822) or as headers only.
            match &part.body {
                PartType::Message(inner) => {
                    if let Some(id) = inner.message_id().and_then(|m| MessageId::parse(m).ok()) {
                        report_message_ids.push(id);
                    }
                }
                _ if ctype == "text/rfc822-headers" || ctype == "message/rfc822-headers" => {
                    if let Some(id) = find_message_id_in_header_text(part.contents()) {
                        report_message_ids.push(id);
                    }
                }
                _ => {}
            }
        }
    }
    for part in msg.attachments() {
        if is_delivery_report && matches!(part.body, PartType::Message(_)) {
            continue;
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
    let facts = MailFacts {
        from,
        reply_to,
        subject: msg.subject().unwrap_or("").trim().to_string(),
        message_id,
        in_reply_to: id_list(msg.in_reply_to()),
        references: id_list(msg.references()),
        headers,
        is_delivery_report,
        report_message_ids,
    };
    Ok(ParsedMail {
        facts,
        from_name,
        to,
        date,
        text,
        html,
        attachments,
    })
}

/// The text a person reads: the plain part, or the HTML part converted with html2text (far more
/// readable than stripping tags, and it keeps links and lists).
fn body_text(msg: &mail_parser::Message<'_>) -> String {
    let has_plain = msg
        .text_bodies()
        .any(|p| matches!(p.body, PartType::Text(_)));
    if has_plain && let Some(t) = msg.body_text(0) {
        return t.trim_end().to_string();
    }
    if let Some(h) = msg.body_html(0) {
        return html_to_text(&h);
    }
    String::new()
}

pub fn html_to_text(html: &str) -> String {
    match html2text::from_read(html.as_bytes(), 78) {
        Ok(t) => t.trim_end().to_string(),
        Err(_) => html.to_string(),
    }
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

fn unfold(v: &str) -> String {
    v.split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
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
    use super::*;

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
    }
}

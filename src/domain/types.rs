//! Value types parsed at the edge ("parse, don't validate"): once built, they are valid.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    #[error("cannot read complaint reference {0:?}: expected PREFIX-YYYY-NNNN")]
    Reference(String),
    #[error("cannot read email address {0:?}")]
    Address(String),
    #[error("cannot read Message-ID {0:?}")]
    MessageId(String),
}

/// A complaint reference such as `KL-2026-0007`: prefix, year, sequence within the year.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ComplaintRef {
    pub prefix: String,
    pub year: i32,
    pub number: u32,
}

impl ComplaintRef {
    pub fn new(prefix: &str, year: i32, number: u32) -> Self {
        Self {
            prefix: prefix.to_string(),
            year,
            number,
        }
    }

    pub fn parse(text: &str) -> Result<Self, TypeError> {
        let err = || TypeError::Reference(text.to_string());
        let mut parts = text.trim().rsplitn(3, '-');
        let number = parts.next().ok_or_else(err)?;
        let year = parts.next().ok_or_else(err)?;
        let prefix = parts.next().ok_or_else(err)?;
        let valid_prefix = !prefix.is_empty()
            && prefix.len() <= 16
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid_prefix
            || year.len() != 4
            || number.len() < 4
            || !year.chars().all(|c| c.is_ascii_digit())
            || !number.chars().all(|c| c.is_ascii_digit())
        {
            return Err(err());
        }
        Ok(Self {
            prefix: prefix.to_ascii_uppercase(),
            year: year.parse().map_err(|_| err())?,
            number: number.parse().map_err(|_| err())?,
        })
    }

    /// All references `[PREFIX-YYYY-NNNN]` written in a subject, in order. Brackets are required
    /// so that a date or an order number in a subject is not taken for a reference.
    pub fn find_in_subject(subject: &str, prefix: &str) -> Vec<ComplaintRef> {
        let mut found = Vec::new();
        let mut rest = subject;
        while let Some(open) = rest.find('[') {
            rest = &rest[open + 1..];
            if let Some(close) = rest.find(']') {
                if let Ok(r) = ComplaintRef::parse(&rest[..close])
                    && r.prefix.eq_ignore_ascii_case(prefix)
                {
                    found.push(r);
                }
            } else {
                break;
            }
        }
        found
    }
}

impl fmt::Display for ComplaintRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:04}", self.prefix, self.year, self.number)
    }
}

/// An email address, lower-cased in the domain part (local parts are case-sensitive in theory,
/// but every real mail system treats them case-insensitively, so we compare lower-cased).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// One parser for every address that reaches us (From, Reply-To, config, CLI). It accepts
    /// exactly what we can also write into a header and an SMTP envelope: the RFC 5321 section
    /// 4.1.2 mailbox syntax as lettre checks it (dot-atom or quoted local part), a domain with
    /// a dot (or `localhost`), no IP literal (RFC 5321 4.1.3: never a complainant's), no
    /// trailing dot, and nothing lettre would refuse later when we answer. Parsing once by the
    /// rules of the code that writes the mail is what keeps one sender from failing a batch.
    pub fn parse(text: &str) -> Result<Self, TypeError> {
        let t = text.trim();
        let t = t.strip_prefix('<').unwrap_or(t);
        let t = t.strip_suffix('>').unwrap_or(t).trim();
        let err = || TypeError::Address(text.to_string());
        let (local, domain) = t.rsplit_once('@').ok_or_else(err)?;
        let quoted = local.len() >= 2 && local.starts_with('"') && local.ends_with('"');
        if local.is_empty()
            || domain.is_empty()
            || t.len() > 254
            || local.len() > 64
            || t.chars().any(|c| c.is_control())
            // Whitespace only inside a quoted local part (`"System Administrator"@...`).
            || domain.chars().any(char::is_whitespace)
            || (!quoted && local.chars().any(|c| c.is_whitespace() || c == ','))
            || (!domain.contains('.') && domain != "localhost")
            || domain.starts_with('[')
            || domain.ends_with('.')
            || domain.starts_with('.')
            || domain.contains("..")
            || domain
                .split('.')
                .any(|label| label.is_empty() || label.starts_with('-') || label.ends_with('-'))
        {
            return Err(err());
        }
        let lowered = t.to_lowercase();
        // lettre is what writes our To header and the RCPT TO: whatever it refuses is refused
        // here, so it can never fail later on an address we accepted.
        lowered.parse::<lettre::Address>().map_err(|_| err())?;
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// The mailbox this address reaches, as far as one can tell from outside: without a
    /// `+tag` (subaddress, RFC 5233), and for Gmail without dots and with `googlemail.com` as
    /// `gmail.com`, since all of those land in one inbox. Caps count this, so one inbox cannot
    /// be made many addresses.
    pub fn mailbox_key(&self) -> String {
        let (local, domain) = (self.local_part(), self.domain());
        if local.starts_with('"') {
            return self.0.clone();
        }
        let local = local.split_once('+').map(|(l, _)| l).unwrap_or(local);
        let local = if local.is_empty() {
            self.local_part()
        } else {
            local
        };
        match domain {
            "gmail.com" | "googlemail.com" => format!("{}@gmail.com", local.replace('.', "")),
            _ => format!("{local}@{domain}"),
        }
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Message-ID without its angle brackets (RFC 5322 msg-id: `id-left@id-right`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(String);

impl MessageId {
    pub fn parse(text: &str) -> Result<Self, TypeError> {
        let t = text
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        if t.is_empty()
            || t.len() > 998
            // RFC 5322 3.6.4: printable US-ASCII; anything else we could not write back.
            || t.bytes().any(|b| !(33..=126).contains(&b) || b == b'<' || b == b'>')
        {
            return Err(TypeError::MessageId(text.to_string()));
        }
        Ok(Self(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// With angle brackets, as it is written in a header.
    pub fn bracketed(&self) -> String {
        format!("<{}>", self.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_printable_ascii() {
        assert!(MessageId::parse("<a.b-c$d@x.nl>").is_ok());
        for bad in [
            "<a\x1b[2Jb@x.nl>",
            "<a\x7fb@x.nl>",
            "<a\x00b@x.nl>",
            "<j\u{e9}@x.nl>",
        ] {
            assert!(MessageId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reference_round_trips_and_pads() {
        let r = ComplaintRef::parse("KL-2026-0007").unwrap();
        assert_eq!(r, ComplaintRef::new("KL", 2026, 7));
        assert_eq!(r.to_string(), "KL-2026-0007");
        assert_eq!(
            ComplaintRef::new("KL", 2026, 12345).to_string(),
            "KL-2026-12345"
        );
    }

    #[test]
    fn reference_rejects_garbage() {
        for bad in [
            "",
            "KL-26-0001",
            "KL-2026-1",
            "KL-2026-00x1",
            "-2026-0001",
            "KL 2026 0001",
        ] {
            assert!(ComplaintRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reference_in_subject_needs_brackets_and_prefix() {
        let found = ComplaintRef::find_in_subject("Re: [KL-2026-0007] Lesrooster", "KL");
        assert_eq!(found, vec![ComplaintRef::new("KL", 2026, 7)]);
        assert!(ComplaintRef::find_in_subject("Re: KL-2026-0007 Lesrooster", "KL").is_empty());
        assert!(ComplaintRef::find_in_subject("[XY-2026-0007]", "KL").is_empty());
        assert!(ComplaintRef::find_in_subject("[unclosed KL-2026-0007", "KL").is_empty());
        // Prefix with a dash, and lower case written by hand.
        let found = ComplaintRef::find_in_subject("AW: [mzo-kl-2026-0012]", "MZO-KL");
        assert_eq!(found, vec![ComplaintRef::new("MZO-KL", 2026, 12)]);
    }

    #[test]
    fn addresses() {
        assert_eq!(
            EmailAddress::parse(" <Jan@Example.NL> ").unwrap().as_str(),
            "jan@example.nl"
        );
        for bad in [
            "",
            "jan",
            "@example.nl",
            "jan@",
            "jan @example.nl",
            "a@b,c@d.nl",
            "jan@nodot",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }

    /// Issue #8 finding 2: addresses the old parser accepted but lettre refuses to write, so
    /// the acknowledgement failed and with it the whole batch.
    #[test]
    fn addresses_lettre_refuses_are_refused_here() {
        for bad in [
            "a..b@example.nl",
            ".a@example.nl",
            "a.@example.nl",
            "a@example.nl.",
            "a\"b@example.nl",
            "a@b@example.nl",
            "a;b@example.nl",
            "a@[127.0.0.1]",
            "a@example..nl",
            "a@-example.nl",
            "a@example-.nl",
            "postmaster\\@xxx.com@xxx.com",
            "jan\u{0}@example.nl",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn mailbox_keys_join_what_reaches_one_inbox() {
        let key = |a: &str| EmailAddress::parse(a).unwrap().mailbox_key();
        assert_eq!(
            key("Jan.Jansen+klacht1@GoogleMail.com"),
            "janjansen@gmail.com"
        );
        assert_eq!(key("j.a.n.jansen@gmail.com"), "janjansen@gmail.com");
        assert_eq!(key("jan+x@example.nl"), "jan@example.nl");
        // Dots matter elsewhere.
        assert_eq!(key("jan.jansen@example.nl"), "jan.jansen@example.nl");
        assert_eq!(key("+x@example.nl"), "+x@example.nl");
    }

    #[test]
    fn quoted_local_parts_are_addresses() {
        let a = EmailAddress::parse("\"System Administrator\"@example.com").unwrap();
        assert_eq!(a.as_str(), "\"system administrator\"@example.com");
        assert_eq!(a.domain(), "example.com");
        // A quoted local part may hold an @.
        assert!(EmailAddress::parse("\"a@b\"@example.com").is_ok());
    }

    proptest::proptest! {
        /// Whatever we accept, lettre accepts: the address can always be answered.
        #[test]
        fn every_accepted_address_is_one_lettre_writes(s in "[ -~]{0,40}@[a-z0-9.\\-\\[\\]]{0,20}") {
            if let Ok(a) = EmailAddress::parse(&s) {
                proptest::prop_assert!(a.as_str().parse::<lettre::Address>().is_ok());
            }
        }
    }

    #[test]
    fn message_ids() {
        let m = MessageId::parse("<abc@example.nl>").unwrap();
        assert_eq!(m.as_str(), "abc@example.nl");
        assert_eq!(m.bracketed(), "<abc@example.nl>");
        assert!(MessageId::parse("<>").is_err());
        assert!(MessageId::parse("a b@c").is_err());
    }
}

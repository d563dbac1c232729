//! Signed tokens in the addresses and Message-IDs of the mail we send (issue #10), so that every
//! mail is answerable and an answer is recognised as one to a mail we really sent:
//!
//! - reply address: `service+c-KL-2026-0007-RRRRRRMMMMMMMMMMMMMMMM@domain`, bound to the complaint
//!   and to the recipient it was sent to;
//! - verdict links: `service+v-KL-2026-0007-a-…@` (agree) and `-d-` (disagree);
//! - a staff member's personal intake address: `service+i-…@`, bound to that staff member;
//! - Message-IDs: `<kt.NONCE.KL-2026-0007.RRRRRRMMMMMMMMMMMMMMMM@domain>`, so a reply that only
//!   keeps In-Reply-To/References is recognised too.
//!
//! `RRRRRR` is a recipient id (24 bits of a keyed hash of the recipient's mailbox), `M…` the
//! MAC (HMAC-SHA256 truncated to 64 bits). The recipient's address itself is in the MAC input
//! and never in the address: RFC 5321 4.5.3.1.1 limits a local part to 64 octets, and a
//! complainant's address should not be readable from our Reply-To. The recipient id lets the
//! verifier say to which of the complaint's recipients a token was issued, which matters when
//! a colleague answers a notice forwarded to them.
//!
//! Tokens hold no time: they do not expire while the complaint is open (the caller stops
//! accepting them when it closes). Keys rotate: the verifier takes the current key first and
//! then each previous key still in its accepted period. Everything is lower-case hex and read
//! case-insensitively, since some servers lower-case local parts.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::types::{ComplaintRef, EmailAddress, MessageId};

/// 64 bits of MAC: forging one takes some 2^63 tries, and each try is a mail.
const MAC_BYTES: usize = 8;
/// 24 bits: enough to tell the few recipients of one complaint apart.
const RID_BYTES: usize = 3;
const TOKEN_HEX: usize = 2 * (RID_BYTES + MAC_BYTES);
/// RFC 5321 section 4.5.3.1.1.
pub const MAX_LOCAL_PART: usize = 64;
/// Separators between the service's local part and the token (RFC 5233 subaddressing uses
/// `+`; some servers are configured for `-` or `=`).
pub const SEPARATORS: [char; 3] = ['+', '-', '='];

/// What a token is made for. Recipients are bound by [`EmailAddress::mailbox_key`], so a reply
/// from `jan+x@` or, for Gmail, `j.an@` counts as from the address we wrote to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenPurpose {
    /// The Reply-To of a mail about a complaint, sent to `recipient`.
    Reply {
        reference: ComplaintRef,
        recipient: EmailAddress,
    },
    /// A staff member's personal intake address.
    Intake { staff: EmailAddress },
    /// The complainant's agree / disagree mailto link.
    Verdict {
        reference: ComplaintRef,
        agree: bool,
        recipient: EmailAddress,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("separator {0:?} is not one of + - =")]
    Separator(char),
    #[error(
        "tokened address {address} has a local part of {len} octets; RFC 5321 4.5.3.1.1 allows 64 (shorten the service address or the reference prefix)"
    )]
    TooLong { address: String, len: usize },
    #[error("cannot write tokened address or Message-ID {0:?}")]
    Invalid(String),
}

/// What a token of ours claims, before verification. Use it only to find the complaint and its
/// recipients for [`UnverifiedToken::verify`]; nothing in it is authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    Reply(ComplaintRef),
    Intake,
    Verdict {
        reference: ComplaintRef,
        agree: bool,
    },
    MessageId(ComplaintRef),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedToken {
    pub kind: TokenKind,
    recipient_id: [u8; RID_BYTES],
    mac: [u8; MAC_BYTES],
    nonce: u64,
}

/// A token that checked out: issued with `keys[key_index]` to `candidates[candidate]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub candidate: usize,
    /// 0 for the current key; more for a previous key (the caller may log the rotation).
    pub key_index: usize,
}

impl UnverifiedToken {
    pub fn reference(&self) -> Option<&ComplaintRef> {
        match &self.kind {
            TokenKind::Reply(r) | TokenKind::MessageId(r) => Some(r),
            TokenKind::Verdict { reference, .. } => Some(reference),
            TokenKind::Intake => None,
        }
    }

    /// Which of `candidates` (the complaint's recipients, or the staff for an intake token)
    /// this token was issued to, checked with each of `keys` (current first). `None` when it
    /// was issued to none of them, or not by us: never authenticated then.
    pub fn verify(&self, keys: &[&[u8]], candidates: &[EmailAddress]) -> Option<Verified> {
        for (key_index, key) in keys.iter().enumerate() {
            for (candidate, address) in candidates.iter().enumerate() {
                let recipient = address.mailbox_key();
                // Both comparisons are constant-time (hmac's verify), so timing tells an
                // attacker nothing about how much of a guess was right.
                let rid_ok = keyed(key, &rid_input(&recipient))
                    .is_some_and(|m| m.verify_truncated_left(&self.recipient_id).is_ok());
                if !rid_ok {
                    continue;
                }
                let input = mac_input(&self.kind, &recipient, self.nonce);
                if keyed(key, &input).is_some_and(|m| m.verify_truncated_left(&self.mac).is_ok()) {
                    return Some(Verified {
                        candidate,
                        key_index,
                    });
                }
            }
        }
        None
    }
}

fn keyed(key: &[u8], data: &str) -> Option<Hmac<Sha256>> {
    // HMAC takes keys of any length; the error cannot happen, but must not panic.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(data.as_bytes());
    Some(mac)
}

fn tag(key: &[u8], data: &str, len: usize) -> Vec<u8> {
    keyed(key, data)
        .map(|m| m.finalize().into_bytes()[..len].to_vec())
        .unwrap_or_default()
}

fn rid_input(recipient_key: &str) -> String {
    format!("klachtd/token/v1/recipient\0{recipient_key}")
}

/// Domain-separated: a reply token's MAC is no verdict's, a complaint's no other's.
fn mac_input(kind: &TokenKind, recipient_key: &str, nonce: u64) -> String {
    let (purpose, reference) = match kind {
        TokenKind::Reply(r) => ("reply".to_string(), r.to_string()),
        TokenKind::Intake => ("intake".to_string(), String::new()),
        TokenKind::Verdict { reference, agree } => (
            format!("verdict-{}", if *agree { "agree" } else { "disagree" }),
            reference.to_string(),
        ),
        TokenKind::MessageId(r) => (format!("message-id-{nonce:016x}"), r.to_string()),
    };
    format!(
        "klachtd/token/v1\0{purpose}\0{}\0{recipient_key}",
        reference.to_ascii_uppercase()
    )
}

/// The 22 hex digits after the last dash: recipient id and MAC.
fn token_hex(kind: &TokenKind, recipient: &EmailAddress, nonce: u64, key: &[u8]) -> String {
    let recipient = recipient.mailbox_key();
    let mut bytes = tag(key, &rid_input(&recipient), RID_BYTES);
    bytes.extend(tag(key, &mac_input(kind, &recipient, nonce), MAC_BYTES));
    hex::encode(bytes)
}

fn read_token_hex(text: &str) -> Option<([u8; RID_BYTES], [u8; MAC_BYTES])> {
    if text.len() != TOKEN_HEX || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = hex::decode(text).ok()?;
    let (rid, mac) = bytes.split_at(RID_BYTES);
    Some((rid.try_into().ok()?, mac.try_into().ok()?))
}

/// A reference as written in a token: only its canonical form (case aside), so one complaint
/// has one spelling and `0007` cannot be written `00007`.
fn read_reference(text: &str) -> Option<ComplaintRef> {
    let r = ComplaintRef::parse(text).ok()?;
    r.to_string().eq_ignore_ascii_case(text).then_some(r)
}

/// The tokened address for `purpose` on the service mailbox, e.g.
/// `service+c-kl-2026-0007-…@domain` (lower case: [`EmailAddress`] is).
pub fn reply_address(
    service: &EmailAddress,
    sep: char,
    purpose: &TokenPurpose,
    key: &[u8],
) -> Result<EmailAddress, TokenError> {
    if !SEPARATORS.contains(&sep) {
        return Err(TokenError::Separator(sep));
    }
    let (kind, recipient) = match purpose {
        TokenPurpose::Reply {
            reference,
            recipient,
        } => (TokenKind::Reply(reference.clone()), recipient),
        TokenPurpose::Intake { staff } => (TokenKind::Intake, staff),
        TokenPurpose::Verdict {
            reference,
            agree,
            recipient,
        } => (
            TokenKind::Verdict {
                reference: reference.clone(),
                agree: *agree,
            },
            recipient,
        ),
    };
    let hex = token_hex(&kind, recipient, 0, key);
    let tail = match &kind {
        TokenKind::Reply(r) => format!("c-{r}-{hex}"),
        TokenKind::Intake => format!("i-{hex}"),
        TokenKind::Verdict { reference, agree } => {
            format!("v-{reference}-{}-{hex}", if *agree { "a" } else { "d" })
        }
        TokenKind::MessageId(_) => return Err(TokenError::Invalid(hex)),
    };
    let local = format!("{}{sep}{tail}", service.local_part());
    let address = format!("{local}@{}", service.domain());
    if local.len() > MAX_LOCAL_PART {
        return Err(TokenError::TooLong {
            len: local.len(),
            address,
        });
    }
    EmailAddress::parse(&address).map_err(|_| TokenError::Invalid(address))
}

/// Reads a tokened address of ours (To, Cc or Delivered-To of an incoming mail). `None` when it
/// is not on the service mailbox or not in our form; otherwise the claim, still to be verified.
pub fn parse_address(addr: &str, service: &EmailAddress, sep: char) -> Option<UnverifiedToken> {
    let address = EmailAddress::parse(addr).ok()?;
    if address.domain() != service.domain() {
        return None;
    }
    let local = address.local_part();
    let tail = local
        .strip_prefix(service.local_part())?
        .strip_prefix(sep)?;
    let (kind_tag, body) = tail.split_once('-')?;
    let (front, hex) = match kind_tag {
        "i" => ("", body),
        _ => body.rsplit_once('-')?,
    };
    let (recipient_id, mac) = read_token_hex(hex)?;
    let kind = match kind_tag {
        "c" => TokenKind::Reply(read_reference(front)?),
        "i" => TokenKind::Intake,
        "v" => {
            let (reference, verdict) = front.rsplit_once('-')?;
            let agree = match verdict {
                "a" => true,
                "d" => false,
                _ => return None,
            };
            TokenKind::Verdict {
                reference: read_reference(reference)?,
                agree,
            }
        }
        _ => return None,
    };
    Some(UnverifiedToken {
        kind,
        recipient_id,
        mac,
        nonce: 0,
    })
}

/// A Message-ID for a mail about `reference` to `recipient`: `kt.NONCE.REF.TOKEN@domain`.
/// `nonce` (random, from the caller: the core has no randomness) makes it unique per mail
/// and is covered by the MAC.
pub fn message_id(
    domain: &str,
    reference: &ComplaintRef,
    recipient: &EmailAddress,
    nonce: u64,
    key: &[u8],
) -> Result<MessageId, TokenError> {
    let kind = TokenKind::MessageId(reference.clone());
    let hex = token_hex(&kind, recipient, nonce, key);
    let id = format!("kt.{nonce:016x}.{reference}.{hex}@{domain}");
    MessageId::parse(&id).map_err(|_| TokenError::Invalid(id))
}

/// Reads a Message-ID of ours (from In-Reply-To or References), case-insensitively. Any
/// domain: the MAC is what counts, and the mail domain may have changed since.
pub fn parse_message_id(id: &MessageId) -> Option<UnverifiedToken> {
    let (left, _domain) = id.as_str().rsplit_once('@')?;
    let left = left.to_ascii_lowercase();
    let rest = left.strip_prefix("kt.")?;
    let (nonce_hex, rest) = rest.split_once('.')?;
    let (reference, hex) = rest.rsplit_once('.')?;
    if nonce_hex.len() != 16 || !nonce_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let nonce = u64::from_str_radix(nonce_hex, 16).ok()?;
    let (recipient_id, mac) = read_token_hex(hex)?;
    Some(UnverifiedToken {
        kind: TokenKind::MessageId(read_reference(reference)?),
        recipient_id,
        mac,
        nonce,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &[u8] = b"current secret";
    const OLD: &[u8] = b"previous secret";

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    fn service() -> EmailAddress {
        addr("klachten@mzo.nl")
    }

    fn kl7() -> ComplaintRef {
        ComplaintRef::new("KL", 2026, 7)
    }

    fn reply_to(recipient: &str, sep: char) -> EmailAddress {
        reply_address(
            &service(),
            sep,
            &TokenPurpose::Reply {
                reference: kl7(),
                recipient: addr(recipient),
            },
            KEY,
        )
        .unwrap()
    }

    fn verify_address(a: &str, sep: char, keys: &[&[u8]], who: &[&str]) -> Option<Verified> {
        let candidates: Vec<EmailAddress> = who.iter().map(|w| addr(w)).collect();
        parse_address(a, &service(), sep)?.verify(keys, &candidates)
    }

    #[test]
    fn reply_address_form_and_round_trip() {
        for sep in SEPARATORS {
            let a = reply_to("jan@example.nl", sep);
            let prefix = format!("klachten{sep}c-kl-2026-0007-");
            assert!(a.as_str().starts_with(&prefix), "{a}");
            assert!(a.as_str().ends_with("@mzo.nl"));
            assert!(a.local_part().len() <= MAX_LOCAL_PART);
            let t = parse_address(a.as_str(), &service(), sep).unwrap();
            assert_eq!(t.kind, TokenKind::Reply(kl7()));
            assert_eq!(t.reference(), Some(&kl7()));
            assert_eq!(
                verify_address(a.as_str(), sep, &[KEY], &["jan@example.nl"]),
                Some(Verified {
                    candidate: 0,
                    key_index: 0
                })
            );
        }
        assert_eq!(
            reply_address(
                &service(),
                '.',
                &TokenPurpose::Intake {
                    staff: addr("a@mzo.nl")
                },
                KEY
            ),
            Err(TokenError::Separator('.'))
        );
    }

    #[test]
    fn which_recipient_it_was_issued_to() {
        let a = reply_to("ruud@mzo.nl", '+');
        let staff = ["anna@mzo.nl", "piet@mzo.nl", "ruud@mzo.nl"];
        assert_eq!(
            verify_address(a.as_str(), '+', &[KEY], &staff),
            Some(Verified {
                candidate: 2,
                key_index: 0
            })
        );
        // Issued to nobody in the list: not authenticated.
        assert_eq!(
            verify_address(a.as_str(), '+', &[KEY], &["anna@mzo.nl", "jan@example.nl"]),
            None
        );
        assert_eq!(verify_address(a.as_str(), '+', &[KEY], &[]), None);
        // The mailbox, not the spelling: a subaddress or Gmail's dots reach the same inbox.
        let g = reply_to("Jan.Jansen@gmail.com", '+');
        assert!(verify_address(g.as_str(), '+', &[KEY], &["janjansen+x@googlemail.com"]).is_some());
        assert!(verify_address(g.as_str(), '+', &[KEY], &["jan.jansen@example.nl"]).is_none());
    }

    #[test]
    fn keys_rotate() {
        let old = reply_address(
            &service(),
            '+',
            &TokenPurpose::Reply {
                reference: kl7(),
                recipient: addr("jan@example.nl"),
            },
            OLD,
        )
        .unwrap();
        assert_eq!(
            verify_address(old.as_str(), '+', &[KEY, OLD], &["jan@example.nl"]),
            Some(Verified {
                candidate: 0,
                key_index: 1
            })
        );
        // Once the previous key is no longer given, its tokens fail.
        assert_eq!(
            verify_address(old.as_str(), '+', &[KEY], &["jan@example.nl"]),
            None
        );
        // Another installation's key never verifies.
        let new = reply_to("jan@example.nl", '+');
        assert_eq!(
            verify_address(
                new.as_str(),
                '+',
                &[b"other install".as_slice()],
                &["jan@example.nl"]
            ),
            None
        );
        assert_eq!(
            verify_address(new.as_str(), '+', &[], &["jan@example.nl"]),
            None
        );
    }

    #[test]
    fn case_does_not_matter() {
        let a = reply_to("jan@example.nl", '+');
        let upper = a.as_str().to_uppercase();
        assert!(verify_address(&upper, '+', &[KEY], &["JAN@example.nl"]).is_some());
        assert!(verify_address(&format!("<{upper}>"), '+', &[KEY], &["jan@example.nl"]).is_some());
    }

    #[test]
    fn another_complaint_or_purpose_fails() {
        let a = reply_to("jan@example.nl", '+');
        let other = a.as_str().replace("kl-2026-0007", "kl-2026-0008");
        assert!(parse_address(&other, &service(), '+').is_some());
        assert_eq!(
            verify_address(&other, '+', &[KEY], &["jan@example.nl"]),
            None
        );
        // Non-canonical spelling of the same reference is not ours.
        let padded = a.as_str().replace("kl-2026-0007", "kl-2026-00007");
        assert!(parse_address(&padded, &service(), '+').is_none());
        // The same token under another purpose: domain separation.
        let hex = a.local_part().rsplit_once('-').unwrap().1.to_string();
        for forged in [
            format!("klachten+v-kl-2026-0007-a-{hex}@mzo.nl"),
            format!("klachten+i-{hex}@mzo.nl"),
        ] {
            assert!(
                parse_address(&forged, &service(), '+').is_some(),
                "{forged}"
            );
            assert_eq!(
                verify_address(&forged, '+', &[KEY], &["jan@example.nl"]),
                None
            );
        }
        // Another mailbox or domain, another separator.
        assert!(
            parse_address(&a.as_str().replace("@mzo.nl", "@evil.nl"), &service(), '+').is_none()
        );
        assert!(
            parse_address(&a.as_str().replace("klachten+", "info+"), &service(), '+').is_none()
        );
        assert!(parse_address(a.as_str(), &service(), '-').is_none());
        assert!(parse_address("klachten@mzo.nl", &service(), '+').is_none());
        assert!(parse_address("not an address", &service(), '+').is_none());
    }

    /// Changing any one character of the token part (other than its case) breaks it.
    #[test]
    fn tampering_with_any_character_fails() {
        for sep in SEPARATORS {
            let a = reply_to("jan@example.nl", sep).to_string();
            let start = "klachten".len() + 1;
            let end = a.find('@').unwrap();
            for i in start..end {
                for replacement in ['0', '7', 'a', 'f', 'z', '-', '+', '='] {
                    let original = a.as_bytes()[i] as char;
                    if original.eq_ignore_ascii_case(&replacement) {
                        continue;
                    }
                    let mut t = a.clone();
                    t.replace_range(i..i + 1, &replacement.to_string());
                    assert_eq!(
                        verify_address(&t, sep, &[KEY, OLD], &["jan@example.nl"]),
                        None,
                        "{t} accepted"
                    );
                }
            }
        }
    }

    #[test]
    fn verdict_links() {
        let make = |agree| {
            reply_address(
                &service(),
                '+',
                &TokenPurpose::Verdict {
                    reference: kl7(),
                    agree,
                    recipient: addr("jan@example.nl"),
                },
                KEY,
            )
            .unwrap()
        };
        let yes = make(true);
        let no = make(false);
        assert!(
            yes.as_str().starts_with("klachten+v-kl-2026-0007-a-"),
            "{yes}"
        );
        assert!(
            no.as_str().starts_with("klachten+v-kl-2026-0007-d-"),
            "{no}"
        );
        let t = parse_address(yes.as_str(), &service(), '+').unwrap();
        assert_eq!(
            t.kind,
            TokenKind::Verdict {
                reference: kl7(),
                agree: true
            }
        );
        assert!(verify_address(yes.as_str(), '+', &[KEY], &["jan@example.nl"]).is_some());
        assert!(verify_address(no.as_str(), '+', &[KEY], &["jan@example.nl"]).is_some());
        // Turning agree into disagree is tampering.
        let flipped = yes.as_str().replace("-a-", "-d-");
        assert_eq!(
            verify_address(&flipped, '+', &[KEY], &["jan@example.nl"]),
            None
        );
        assert!(parse_address(&yes.as_str().replace("-a-", "-x-"), &service(), '+').is_none());
    }

    #[test]
    fn intake_addresses() {
        let anna = reply_address(
            &service(),
            '=',
            &TokenPurpose::Intake {
                staff: addr("anna@mzo.nl"),
            },
            KEY,
        )
        .unwrap();
        assert!(anna.as_str().starts_with("klachten=i-"));
        assert_eq!(anna.local_part().len(), "klachten=i-".len() + TOKEN_HEX);
        let t = parse_address(anna.as_str(), &service(), '=').unwrap();
        assert_eq!(t.kind, TokenKind::Intake);
        assert_eq!(t.reference(), None);
        assert_eq!(
            verify_address(anna.as_str(), '=', &[KEY], &["ruud@mzo.nl", "anna@mzo.nl"]),
            Some(Verified {
                candidate: 1,
                key_index: 0
            })
        );
        assert_eq!(
            verify_address(anna.as_str(), '=', &[KEY], &["ruud@mzo.nl"]),
            None
        );
    }

    #[test]
    fn local_part_limit() {
        let long_service = addr("klachtenenmeldingen.afdeling.kwaliteit@mzo.nl");
        let r = reply_address(
            &long_service,
            '+',
            &TokenPurpose::Reply {
                reference: ComplaintRef::new("MZO-KL", 2026, 12345),
                recipient: addr("jan@example.nl"),
            },
            KEY,
        );
        assert!(
            matches!(r, Err(TokenError::TooLong { len, .. }) if len > 64),
            "{r:?}"
        );
        // The usual case fits with room to spare.
        let a = reply_address(
            &addr("klachtenservice@mzo.nl"),
            '+',
            &TokenPurpose::Verdict {
                reference: ComplaintRef::new("MZO-KL", 2026, 12345),
                agree: false,
                recipient: addr("jan@example.nl"),
            },
            KEY,
        )
        .unwrap();
        assert!(a.local_part().len() <= MAX_LOCAL_PART, "{a}");
    }

    #[test]
    fn message_ids() {
        let jan = addr("jan@example.nl");
        let id = message_id("mzo.nl", &kl7(), &jan, 0x0123_4567_89ab_cdef, KEY).unwrap();
        assert_eq!(
            id.as_str()
                .split_once('@')
                .unwrap()
                .0
                .rsplit_once('.')
                .unwrap()
                .0,
            "kt.0123456789abcdef.KL-2026-0007"
        );
        let t = parse_message_id(&id).unwrap();
        assert_eq!(t.kind, TokenKind::MessageId(kl7()));
        assert_eq!(
            t.verify(&[KEY], std::slice::from_ref(&jan)),
            Some(Verified {
                candidate: 0,
                key_index: 0
            })
        );
        // Unique per mail, each verifying.
        let other = message_id("mzo.nl", &kl7(), &jan, 42, KEY).unwrap();
        assert_ne!(id, other);
        assert!(
            parse_message_id(&other)
                .unwrap()
                .verify(&[KEY], std::slice::from_ref(&jan))
                .is_some()
        );
        // Case-insensitive, and any domain.
        let lowered =
            MessageId::parse(&id.as_str().to_lowercase().replace("mzo.nl", "x.nl")).unwrap();
        assert!(
            parse_message_id(&lowered)
                .unwrap()
                .verify(&[KEY], std::slice::from_ref(&jan))
                .is_some()
        );
        // Wrong recipient, key, nonce or complaint.
        let t = parse_message_id(&id).unwrap();
        assert!(t.verify(&[KEY], &[addr("piet@example.nl")]).is_none());
        assert!(t.verify(&[OLD], std::slice::from_ref(&jan)).is_none());
        for forged in [
            id.as_str().replace("0123456789abcdef", "0123456789abcdee"),
            id.as_str().replace("KL-2026-0007", "KL-2026-0008"),
        ] {
            let f = MessageId::parse(&forged).unwrap();
            assert!(
                parse_message_id(&f)
                    .unwrap()
                    .verify(&[KEY], std::slice::from_ref(&jan))
                    .is_none()
            );
        }
        // The compose module's random ids and foreign ids are not ours.
        for foreign in [
            "kl.0123456789abcdef.abcdef0123@mzo.nl",
            "CAF=x@mail.gmail.com",
            "kt.x@y",
        ] {
            assert!(
                parse_message_id(&MessageId::parse(foreign).unwrap()).is_none(),
                "{foreign}"
            );
        }
    }

    fn reference() -> impl Strategy<Value = ComplaintRef> {
        ("[A-Z]{1,3}(-[A-Z]{1,3})?", 1000i32..=9999, 0u32..100_000)
            .prop_map(|(p, y, n)| ComplaintRef::new(&p, y, n))
    }

    proptest! {
        #[test]
        fn round_trips(
            r in reference(),
            local in "[a-z][a-z0-9.]{0,8}[a-z0-9]",
            other in "[a-z]{1,8}",
            sep in prop_oneof![Just('+'), Just('-'), Just('=')],
            key in proptest::collection::vec(any::<u8>(), 1..64),
            agree in any::<bool>(),
            nonce in any::<u64>(),
            which in 0usize..3,
        ) {
            prop_assume!(!local.contains(".."));
            let recipient = addr(&format!("{local}@example.nl"));
            let stranger = addr(&format!("{other}x@example.org"));
            let purpose = match which {
                0 => TokenPurpose::Reply { reference: r.clone(), recipient: recipient.clone() },
                1 => TokenPurpose::Verdict { reference: r.clone(), agree, recipient: recipient.clone() },
                _ => TokenPurpose::Intake { staff: recipient.clone() },
            };
            let a = reply_address(&service(), sep, &purpose, &key).unwrap();
            let t = parse_address(a.as_str(), &service(), sep).unwrap();
            prop_assert_eq!(
                t.verify(&[b"x".as_slice(), key.as_slice()], &[stranger.clone(), recipient.clone()]),
                Some(Verified { candidate: 1, key_index: 1 })
            );
            prop_assert_eq!(t.verify(&[key.as_slice()], std::slice::from_ref(&stranger)), None);
            let mut wrong = key.clone();
            wrong[0] ^= 1;
            prop_assert_eq!(t.verify(&[wrong.as_slice()], std::slice::from_ref(&recipient)), None);

            let id = message_id("mzo.nl", &r, &recipient, nonce, &key).unwrap();
            let t = parse_message_id(&id).unwrap();
            prop_assert_eq!(t.reference(), Some(&r));
            prop_assert!(t.verify(&[key.as_slice()], std::slice::from_ref(&recipient)).is_some());
            prop_assert!(t.verify(&[wrong.as_slice()], std::slice::from_ref(&recipient)).is_none());
        }

        #[test]
        fn parsing_junk_never_panics(s in "[ -~]{0,80}") {
            let _ = parse_address(&s, &service(), '+');
            if let Ok(id) = MessageId::parse(&s) {
                let _ = parse_message_id(&id);
            }
        }
    }
}

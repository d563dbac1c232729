//! What kind of mail is this, and where does it belong? Pure functions over the facts the parser
//! extracted and the lookups the store did; no I/O here.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::types::{ComplaintRef, EmailAddress, MessageId};

/// The facts of an incoming mail that classification needs.
#[derive(Debug, Clone)]
pub struct MailFacts {
    pub from: EmailAddress,
    /// The mail has no usable From: `from` is the best address found elsewhere (Sender,
    /// Return-Path) or a placeholder. Only automatic mail is parsed that way.
    pub sender_missing: bool,
    pub reply_to: Option<EmailAddress>,
    pub subject: String,
    pub message_id: Option<MessageId>,
    pub in_reply_to: Vec<MessageId>,
    pub references: Vec<MessageId>,
    /// Every header, name lower-cased, value unfolded, in order.
    pub headers: Vec<(String, String)>,
    /// A delivery status notification (RFC 3464): `report_type` is `delivery-status`. Only
    /// this kind of report says that a mail of ours bounced.
    pub is_delivery_report: bool,
    /// The kind of report (RFC 6522), lower-cased: the `report-type` of a multipart/report, or
    /// what its report part says when that parameter is missing (`delivery-status`,
    /// `feedback-report` (RFC 5965), `disposition-notification` (RFC 8098), ...); also set by
    /// a report part outside a multipart/report.
    pub report_type: Option<String>,
    /// A mail quoted whole or as headers (message/rfc822, text/rfc822-headers, ...): the
    /// returned mail of a bounce, the reported one of a feedback report, or one a person
    /// forwarded as an attachment.
    pub returned_message: bool,
    /// Message-IDs of the mails quoted in such parts (bounced, reported or forwarded): say
    /// which mail of ours a report is about only when the mail is automatic.
    pub report_message_ids: Vec<MessageId>,
}

impl MailFacts {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Message-IDs this mail answers, nearest first (In-Reply-To, then References newest first).
    pub fn thread_ids(&self) -> Vec<MessageId> {
        let mut ids: Vec<MessageId> = self.in_reply_to.clone();
        ids.extend(self.references.iter().rev().cloned());
        let mut seen = std::collections::HashSet::new();
        ids.retain(|i| seen.insert(i.clone()));
        ids
    }
}

/// Why a mail is automatic (RFC 3834 and its relatives). Automatic mail is kept, never answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AutomaticReason {
    AutoSubmitted(String),
    Precedence(String),
    ListId,
    AutoReplyHeader(String),
    EmptyReturnPath,
    DaemonSender,
    DeliveryReport,
    /// A report other than a delivery status notification (RFC 6522), by its report-type:
    /// `feedback-report` (RFC 5965 spam complaint), `disposition-notification` (RFC 8098
    /// read receipt), or any other.
    Report(String),
    /// The envelope sender (Return-Path) is MAILER-DAEMON or postmaster: gateways (InterScan,
    /// Symantec) send their notices so.
    DaemonReturnPath,
    /// `From: <>`: the null address, which only mail systems write.
    EmptyFrom,
    /// A header only mail software writes on its notices (Exim's X-Failed-Recipients, ...).
    MachineHeader(String),
    /// A mailing-list manager's header (ezmlm, fml) other than List-Id.
    MailingList(String),
    /// Delivered to a VERP address (`local+b-ID-SIGNATURE@`): only bounces go there.
    VerpRecipient,
    /// Weak signals that together say "automatic": a bounce or auto-reply subject, a returned
    /// mail, a no-reply sender, a mail-system sender name. Any one alone is not enough (a
    /// person may write "Returned mail" or forward a mail as an attachment).
    Signals(String),
}

impl std::fmt::Display for AutomaticReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AutoSubmitted(v) => write!(f, "Auto-Submitted: {v}"),
            Self::Precedence(v) => write!(f, "Precedence: {v}"),
            Self::ListId => write!(f, "List-Id present (mailing list)"),
            Self::AutoReplyHeader(h) => write!(f, "{h} present (auto-responder)"),
            Self::EmptyReturnPath => write!(f, "empty Return-Path (<>)"),
            Self::DaemonSender => write!(f, "sent by MAILER-DAEMON/postmaster"),
            Self::DeliveryReport => write!(f, "delivery status report (RFC 3464)"),
            Self::Report(t) => match t.as_str() {
                "feedback-report" => write!(f, "spam feedback report (RFC 5965)"),
                "disposition-notification" => write!(f, "read receipt (RFC 8098)"),
                other => write!(f, "report (RFC 6522): {other}"),
            },
            Self::DaemonReturnPath => write!(f, "Return-Path is MAILER-DAEMON/postmaster"),
            Self::EmptyFrom => write!(f, "empty From (<>)"),
            Self::MachineHeader(h) => write!(f, "{h} present (written by mail software)"),
            Self::MailingList(h) => write!(f, "{h} present (mailing list)"),
            Self::VerpRecipient => write!(f, "sent to a VERP bounce address"),
            Self::Signals(s) => write!(f, "looks automatic: {s}"),
        }
    }
}

/// Local parts mail systems send their notices from (sisimai's corpus: Sendmail, Postfix,
/// Exim, Apache James and Verizon's `post_master`, ...). Compared without quotes and escapes.
const DAEMON_LOCAL_PARTS: &[&str] = &[
    "mailer-daemon",
    "mailerdaemon",
    "mailer_daemon",
    "mail-daemon",
    "maildaemon",
    "mail_daemon",
    "postmaster",
    "post_master",
    "post-master",
];

/// Local parts that say "nobody reads replies": a weak signal (web forms use them too).
const NO_REPLY_LOCAL_PARTS: &[&str] = &[
    "no-reply",
    "noreply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
];

/// Headers only mail software writes, on bounces and notifications.
const MACHINE_HEADERS: &[&str] = &[
    // Exim, on every bounce it sends.
    "x-failed-recipients",
    // Exchange and Office 365 non-delivery reports.
    "x-ms-exchange-message-is-ndr",
    // Amazon SNS notifications (SES bounce and complaint notices).
    "x-amz-sns-message-id",
];

/// Headers Exchange writes on its auto-replies (and on some other mail).
const EXCHANGE_AUTO_REPLY_HEADERS: &[&str] =
    &["x-ms-exchange-inbox-rules-loop", "x-auto-response-suppress"];

/// Words of mail-system display names (`Mail Delivery System`, `Mailer Daemon
/// <poostmaster@...>`, Verizon's `MMSC NDR Administrator`): a weak signal.
const DAEMON_NAMES: &[&str] = &[
    "mailer-daemon",
    "mailer daemon",
    "mail delivery",
    "delivery subsystem",
    "ndr administrator",
    "mail administrator",
];

/// How auto-reply subjects start (lower-case): Outlook/Exchange in English, Dutch, German,
/// French, and the common others.
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    // Not "afwezig" or "out of office": a parent reporting a child absent starts so.
    "automatisch antwoord",
    "automatische antwort",
    "abwesenheitsnotiz",
    "réponse automatique",
    "risposta automatica",
    "respuesta automática",
];

/// Headers of mailing-list managers that write no List-Id (ezmlm, fml; Mailman writes its
/// version on every list mail, and Mailman 2.0's digests carry nothing else).
const LIST_HEADERS: &[&str] = &[
    "mailing-list",
    "x-mlserver",
    "x-ml-name",
    "x-mailman-version",
];

/// Microsoft's JMRP sends its feedback reports from here, not as a multipart/report but with
/// the reported mail attached (sisimai arf-22).
const JMRP_SENDER: &str = "staff@hotmail.com";

/// How bounce subjects start (lower-case), in the languages the corpus and our users have.
/// A reply or forward ("Re:", "Fw:") does not start so: a person forwarding a bounce is not one.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "delivery status",
    "delivery notification",
    "delivery report",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "mail delivery failed",
    "mail delivery failure",
    "mail delivery system",
    "message delivery has failed",
    "failure notice",
    "failure delivery",
    "failed delivery",
    "returned mail",
    "mail system error",
    "message not delivered",
    "mail could not be delivered",
    "message could not be delivered",
    "sorry, your message could not be delivered",
    "non-delivery",
    "nondeliverable",
    "non-deliverable",
    "there was an error sending your mail",
    "warning: could not send message",
    "delayed mail",
    "postmaster notify",
    "notice: mail delivery status",
    "email bounce notification",
    "onbestelbaar",
    "niet afgeleverd",
    "unzustellbar",
    "nicht zustellbar",
    "non remis",
    "non recapitabile",
    "no se puede entregar",
    "メールエラー通知",
    "配信エラー",
    "配送エラー",
];

/// The local part of an address-like text, without quotes, escapes and the domain:
/// `"Postmaster\@x.com"@x.com` and `MAILER-DAEMON` both give their first word.
fn bare_local_part(addr: &str) -> String {
    let unescaped: String = addr.chars().filter(|c| !matches!(c, '"' | '\\')).collect();
    let local = unescaped.split('@').next().unwrap_or("");
    local.trim().to_ascii_lowercase()
}

/// The From header names a mail system although it has no usable address:
/// `Mail Delivery Subsystem <MAILER-DAEMON>`, `MAILER-DAEMON <>`, `mailer-daemon`.
fn from_header_is_daemon(from: &str) -> bool {
    let (inside, outside) = match (from.find('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => (&from[a + 1..b], &from[..a]),
        _ => ("", from),
    };
    [inside, outside].iter().any(|t| {
        let t = t.split('(').next().unwrap_or("");
        DAEMON_LOCAL_PARTS.contains(&bare_local_part(t).as_str())
    })
}

fn from_header_is_null(from: &str) -> bool {
    let t = from.split('(').next().unwrap_or("");
    match (t.find('<'), t.rfind('>')) {
        (Some(a), Some(b)) if a < b => t[a + 1..b].trim().is_empty(),
        _ => false,
    }
}

/// A Return-Path address (RFC 5321 reverse-path) without its brackets.
fn return_path(m: &MailFacts) -> Option<&str> {
    m.header("return-path").map(|v| {
        v.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim()
    })
}

/// `local+b-ID-SIGNATURE@domain`, the form of our VERP addresses (see [`verp_address`]).
fn is_verp_form(addr: &str) -> bool {
    let Some((local, _)) = addr.rsplit_once('@') else {
        return false;
    };
    let Some((_, token)) = local.rsplit_once("+b-") else {
        return false;
    };
    let Some((id, sig)) = token.split_once('-') else {
        return false;
    };
    !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && !sig.is_empty()
        && sig.bytes().all(|b| b.is_ascii_hexdigit())
}

fn starts_with_any(subject: &str, prefixes: &[&str]) -> bool {
    let s = subject.trim_start().to_lowercase();
    prefixes.iter().any(|p| s.starts_with(p))
}

pub fn automatic_reason(m: &MailFacts) -> Option<AutomaticReason> {
    match m.report_type.as_deref() {
        Some("delivery-status") => return Some(AutomaticReason::DeliveryReport),
        Some(t) => return Some(AutomaticReason::Report(t.to_string())),
        None if m.is_delivery_report => return Some(AutomaticReason::DeliveryReport),
        None => {}
    }
    if is_jmrp_report(m) {
        return Some(AutomaticReason::Report("feedback-report".into()));
    }
    // RFC 3834 section 5: any value other than "no" means automatic. X-Auto-Response-Suppress
    // on an incoming mail says nothing about the mail itself (discourse PR #21367).
    if let Some(v) = m.header("auto-submitted") {
        let keyword = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if keyword != "no" {
            return Some(AutomaticReason::AutoSubmitted(keyword));
        }
    }
    if let Some(v) = m.header("precedence") {
        let v = v.trim().to_ascii_lowercase();
        if matches!(v.as_str(), "bulk" | "junk" | "list") {
            return Some(AutomaticReason::Precedence(v));
        }
    }
    if m.header("list-id").is_some() {
        return Some(AutomaticReason::ListId);
    }
    for h in LIST_HEADERS {
        if m.header(h).is_some() {
            return Some(AutomaticReason::MailingList(h.to_string()));
        }
    }
    for h in ["x-autoreply", "x-autorespond"] {
        if let Some(v) = m.header(h)
            && !v.trim().eq_ignore_ascii_case("no")
        {
            return Some(AutomaticReason::AutoReplyHeader(h.to_string()));
        }
    }
    // iCloud's vacation replies carry no Auto-Submitted.
    if m.header("x-apple-action")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("vacation"))
    {
        return Some(AutomaticReason::AutoReplyHeader("x-apple-action".into()));
    }
    for h in MACHINE_HEADERS {
        if m.header(h).is_some() {
            return Some(AutomaticReason::MachineHeader(h.to_string()));
        }
    }
    // A missing Return-Path is not an empty one: only "<>" (the null sender) counts.
    if let Some(rp) = return_path(m) {
        if rp.is_empty() {
            return Some(AutomaticReason::EmptyReturnPath);
        }
        if DAEMON_LOCAL_PARTS.contains(&bare_local_part(rp).as_str()) {
            return Some(AutomaticReason::DaemonReturnPath);
        }
    }
    let from_header = m.header("from").unwrap_or("");
    if from_header_is_null(from_header) {
        return Some(AutomaticReason::EmptyFrom);
    }
    // Without a usable From, `from` is a guess: only the From header itself is evidence.
    let daemon = if m.sender_missing {
        from_header_is_daemon(from_header)
    } else {
        DAEMON_LOCAL_PARTS.contains(&bare_local_part(m.from.local_part()).as_str())
    };
    if daemon {
        return Some(AutomaticReason::DaemonSender);
    }
    if delivery_addresses(m).iter().any(|a| is_verp_form(a)) {
        return Some(AutomaticReason::VerpRecipient);
    }
    let mut weak = Vec::new();
    if starts_with_any(&m.subject, BOUNCE_SUBJECTS) {
        weak.push("bounce subject".to_string());
    }
    let auto_reply_subject = starts_with_any(&m.subject, AUTO_REPLY_SUBJECTS);
    if auto_reply_subject {
        weak.push("auto-reply subject".to_string());
        // Exchange writes these on its auto-replies, and on some ordinary mail too: they
        // count only beside an auto-reply subject.
        if let Some(h) = EXCHANGE_AUTO_REPLY_HEADERS
            .iter()
            .find(|h| m.header(h).is_some())
        {
            weak.push(h.to_string());
        }
    }
    if m.returned_message {
        weak.push("a returned mail attached".to_string());
    }
    let no_reply = if m.sender_missing {
        NO_REPLY_LOCAL_PARTS
            .iter()
            .any(|p| from_header.to_ascii_lowercase().contains(&format!("{p}@")))
    } else {
        NO_REPLY_LOCAL_PARTS.contains(&bare_local_part(m.from.local_part()).as_str())
    };
    if no_reply {
        weak.push("no-reply sender".to_string());
    }
    let from_lower = from_header.to_lowercase();
    if DAEMON_NAMES.iter().any(|n| from_lower.contains(n)) {
        weak.push("mail-system sender name".to_string());
    }
    if weak.len() >= 2 {
        return Some(AutomaticReason::Signals(weak.join(", ")));
    }
    None
}

/// Whether an automatic mail may say that a mail of ours bounced. Feedback reports and read
/// receipts name our mail too, but it was delivered: they never mark it bounced (RFC 5965,
/// RFC 8098).
pub fn may_mark_bounced(m: &MailFacts) -> bool {
    !matches!(
        m.report_type.as_deref(),
        Some(t) if t != "delivery-status"
    ) && !is_jmrp_report(m)
}

fn is_jmrp_report(m: &MailFacts) -> bool {
    m.returned_message && m.from.as_str().eq_ignore_ascii_case(JMRP_SENDER)
}

/// The receiving server's spam verdict: `header` starts with `value` (case-insensitive).
pub fn is_spam(m: &MailFacts, header: &str, value: &str) -> bool {
    !header.is_empty()
        && m.headers_named(header).any(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with(&value.to_ascii_lowercase())
        })
}

/// True when an `Authentication-Results` header written by our own receiving server
/// (`authserv_id`) reports `dmarc=fail` (RFC 8601). Headers from other servers are ignored:
/// anyone can write one.
pub fn dmarc_failed(m: &MailFacts, authserv_id: &str) -> bool {
    if authserv_id.is_empty() {
        return false;
    }
    m.headers_named("authentication-results").any(|v| {
        let mut parts = v.split(';');
        let id = parts
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        id.eq_ignore_ascii_case(authserv_id)
            && parts.any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p.starts_with("dmarc=fail")
            })
    })
}

/// Whether our own receiving server (`authserv_id`) reports, in `Authentication-Results`
/// (RFC 8601 section 2.2), a DMARC pass for `domain` or a DKIM pass with `domain` as the
/// signing domain (`header.d`, or the domain of `header.i`). Results of any other server are
/// ignored: anyone can write that header (RFC 8601 section 5). Comments are dropped first.
pub fn domain_authenticated(m: &MailFacts, authserv_id: &str, domain: &str) -> bool {
    if authserv_id.trim().is_empty() {
        return false;
    }
    let domain = domain.trim().to_ascii_lowercase();
    m.headers_named("authentication-results").any(|v| {
        let v = strip_comments(v);
        let mut parts = v.split(';');
        let id = parts
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        if !id.eq_ignore_ascii_case(authserv_id.trim()) {
            return false;
        }
        parts.any(|resinfo| {
            let lower = resinfo.trim().to_ascii_lowercase();
            let mut words = lower.split_whitespace();
            let Some(verdict) = words.next() else {
                return false;
            };
            let props: Vec<(&str, &str)> = words.filter_map(|w| w.split_once('=')).collect();
            let prop = |name: &str| props.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
            match verdict {
                "dmarc=pass" => prop("header.from").is_some_and(|d| d == domain),
                "dkim=pass" => {
                    prop("header.d").is_some_and(|d| d == domain)
                        || prop("header.i")
                            .and_then(|i| i.rsplit_once('@'))
                            .is_some_and(|(_, d)| d == domain)
                }
                _ => false,
            }
        })
    })
}

/// RFC 5322 comments (`(...)`, nesting allowed) removed; an unclosed one runs to the end.
fn strip_comments(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut depth = 0usize;
    let mut escaped = false;
    for c in v.chars() {
        if depth > 0 {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            continue;
        }
        if c == '(' {
            depth = 1;
        } else {
            out.push(c);
        }
    }
    out
}

/// Addresses the mail was delivered to, as the receiving side recorded them: where a bounce
/// addressed to our VERP envelope sender shows up.
pub fn delivery_addresses(m: &MailFacts) -> Vec<String> {
    addresses_in(
        m,
        &[
            "delivered-to",
            "x-original-to",
            "envelope-to",
            "x-envelope-to",
            "to",
        ],
    )
}

/// The addresses in the named headers (`Name <a@b>, c@d` lists), lower case, in order.
pub fn addresses_in(m: &MailFacts, names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for h in names {
        for v in m.headers_named(h) {
            for piece in v.split(',') {
                let piece = piece.trim();
                let addr = match (piece.rfind('<'), piece.rfind('>')) {
                    (Some(a), Some(b)) if a < b => &piece[a + 1..b],
                    _ => piece,
                };
                if addr.contains('@') {
                    out.push(addr.trim().to_ascii_lowercase());
                }
            }
        }
    }
    out
}

/// VERP: our envelope sender is `LOCAL+b-TOKEN@DOMAIN`, TOKEN naming the outbox entry and
/// signed, so a bounce is matched to the mail it bounces even when it is not RFC 3464
/// (Exchange's are not), and a forged bounce cannot mark a mail bounced.
pub fn verp_address(from: &EmailAddress, outbox_id: i64, key: &[u8]) -> String {
    format!(
        "{}+b-{}@{}",
        from.local_part(),
        verp_token(outbox_id, key),
        from.domain()
    )
}

pub fn verp_token(outbox_id: i64, key: &[u8]) -> String {
    format!("{outbox_id}-{}", sign(&format!("verp:{outbox_id}"), key))
}

/// The outbox id in a VERP address of ours, when its signature is right.
pub fn parse_verp(address: &str, from: &EmailAddress, key: &[u8]) -> Option<i64> {
    let (local, domain) = address.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(from.domain()) {
        return None;
    }
    let token = local
        .to_ascii_lowercase()
        .strip_prefix(&format!("{}+b-", from.local_part()))?
        .to_string();
    let (id, sig) = token.split_once('-')?;
    let id: i64 = id.parse().ok()?;
    (sign(&format!("verp:{id}"), key) == sig).then_some(id)
}

/// A short keyed hash (HMAC-SHA256, 10 hex digits: enough that guessing is hopeless at mail
/// speeds, short enough for an address local part).
pub fn sign(data: &str, key: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length; this branch cannot happen, but must not panic.
        return String::new();
    };
    mac.update(data.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..5])
}

/// What the store found for a mail, inside the ingest transaction.
#[derive(Debug, Clone, Default)]
pub struct ThreadLookups {
    /// The complaint whose Message-ID of ours (signed) this mail answers.
    pub by_header: Option<i64>,
    /// The complaint (and its complainant) holding another mail this one names in
    /// In-Reply-To/References: the complainant's own mail, whose Message-ID anyone in the
    /// thread can see. It threads only a mail from that complainant.
    pub by_foreign_header: Option<(i64, EmailAddress)>,
    /// References in the subject that exist: (reference, complaint id, complainant).
    pub by_subject: Vec<(ComplaintRef, i64, EmailAddress)>,
    pub sender_is_staff: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Placement {
    /// Added to an existing complaint as a message.
    Thread { complaint_id: i64, by: ThreadedBy },
    /// A new complaint; `related` when the subject named a complaint the sender has no part in.
    NewComplaint { related: Option<i64> },
    /// Kept without a reference number.
    Unfiled { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadedBy {
    Header,
    Subject,
}

/// Where a mail goes. Header matches win (Message-IDs of ours are unguessable); a reference in
/// the subject only counts from the complainant or staff, because numbers are easy to guess.
pub fn place(
    sender: &EmailAddress,
    lookups: &ThreadLookups,
    automatic: Option<&AutomaticReason>,
    spam: bool,
) -> Placement {
    if let Some(id) = lookups.by_header {
        return Placement::Thread {
            complaint_id: id,
            by: ThreadedBy::Header,
        };
    }
    if let Some((id, complainant)) = &lookups.by_foreign_header
        && complainant == sender
    {
        return Placement::Thread {
            complaint_id: *id,
            by: ThreadedBy::Header,
        };
    }
    if !spam
        && let Some((_, id, _)) = lookups
            .by_subject
            .iter()
            .find(|(_, _, complainant)| complainant == sender || lookups.sender_is_staff)
    {
        return Placement::Thread {
            complaint_id: *id,
            by: ThreadedBy::Subject,
        };
    }
    if spam {
        return Placement::Unfiled {
            reason: "marked as spam by the receiving server".into(),
        };
    }
    if let Some(reason) = automatic {
        return Placement::Unfiled {
            reason: format!("automatic mail: {reason}"),
        };
    }
    Placement::NewComplaint {
        related: lookups
            .by_foreign_header
            .as_ref()
            .map(|(id, _)| *id)
            .or_else(|| lookups.by_subject.first().map(|(_, id, _)| *id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_results(values: &[&str]) -> MailFacts {
        let mut f = facts(&[]);
        f.headers = values
            .iter()
            .map(|v| ("authentication-results".to_string(), v.to_string()))
            .collect();
        f
    }

    #[test]
    fn only_our_servers_dmarc_or_dkim_pass_for_the_from_domain_counts() {
        let ours = "mx.school.nl; dmarc=pass (p=none dis=none) header.from=school.nl";
        assert!(domain_authenticated(
            &with_results(&[ours]),
            "mx.school.nl",
            "school.nl"
        ));
        assert!(!domain_authenticated(
            &with_results(&[ours]),
            "mx.school.nl",
            "other.nl"
        ));
        assert!(!domain_authenticated(
            &with_results(&[ours]),
            "",
            "school.nl"
        ));
        // Another server's verdict, as a forger writes it.
        let theirs = "evil.example; dmarc=pass header.from=school.nl";
        assert!(!domain_authenticated(
            &with_results(&[theirs]),
            "mx.school.nl",
            "school.nl"
        ));
        let dkim =
            "mx.school.nl; spf=fail smtp.mailfrom=x.nl; dkim=pass header.i=@school.nl header.s=sel";
        assert!(domain_authenticated(
            &with_results(&[dkim]),
            "mx.school.nl",
            "school.nl"
        ));
        let dkim_d = "mx.school.nl;\r\n\tdkim=pass (2048-bit key) header.d=school.nl";
        assert!(domain_authenticated(
            &with_results(&[dkim_d]),
            "MX.school.nl",
            "School.NL"
        ));
        let fail = "mx.school.nl; dmarc=fail header.from=school.nl; dkim=fail header.d=school.nl";
        assert!(!domain_authenticated(
            &with_results(&[fail]),
            "mx.school.nl",
            "school.nl"
        ));
        // A pass hidden in a comment is no pass.
        let comment =
            "mx.school.nl; dmarc=fail (dmarc=pass header.from=school.nl) header.from=school.nl";
        assert!(!domain_authenticated(
            &with_results(&[comment]),
            "mx.school.nl",
            "school.nl"
        ));
    }

    fn facts(headers: &[(&str, &str)]) -> MailFacts {
        MailFacts {
            from: EmailAddress::parse("jan@example.nl").unwrap(),
            sender_missing: false,
            reply_to: None,
            subject: "x".into(),
            message_id: None,
            in_reply_to: vec![],
            references: vec![],
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
                .collect(),
            is_delivery_report: false,
            report_type: None,
            returned_message: false,
            report_message_ids: vec![],
        }
    }

    #[test]
    fn automatic_headers() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("Auto-Submitted", "auto-replied")], true),
            (
                &[("Auto-Submitted", "auto-generated; owner-email=x@y.nl")],
                true,
            ),
            (&[("Auto-Submitted", "No")], false),
            (&[("Precedence", "bulk")], true),
            (&[("Precedence", "list")], true),
            (&[("Precedence", "first-class")], false),
            (&[("List-Id", "<ouders.school.nl>")], true),
            (&[("X-Mailman-Version", "2.0.4")], true),
            (&[("X-Autoreply", "yes")], true),
            (&[("X-Autorespond", "Out of office")], true),
            (&[("Return-Path", "<>")], true),
            (&[("Return-Path", "<jan@example.nl>")], false),
            (&[("X-Auto-Response-Suppress", "All")], false),
            (&[], false),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                automatic_reason(&facts(headers)).is_some(),
                *expected,
                "{headers:?}"
            );
        }
        let mut daemon = facts(&[]);
        daemon.from = EmailAddress::parse("MAILER-DAEMON@mx.example.nl").unwrap();
        assert_eq!(
            automatic_reason(&daemon),
            Some(AutomaticReason::DaemonSender)
        );
        let mut pm = facts(&[]);
        pm.from = EmailAddress::parse("postmaster@example.nl").unwrap();
        assert!(automatic_reason(&pm).is_some());
        // Microsoft JMRP: a feedback report only with the reported mail attached.
        let mut jmrp = facts(&[]);
        jmrp.from = EmailAddress::parse("staff@hotmail.com").unwrap();
        assert_eq!(automatic_reason(&jmrp), None);
        jmrp.returned_message = true;
        assert_eq!(
            automatic_reason(&jmrp),
            Some(AutomaticReason::Report("feedback-report".into()))
        );
        assert!(!may_mark_bounced(&jmrp));
    }

    fn reason_of(f: &MailFacts) -> Option<String> {
        automatic_reason(f).map(|r| r.to_string())
    }

    #[test]
    fn every_report_type_is_automatic_and_only_dsns_bounce() {
        for (t, shown) in [
            ("delivery-status", "delivery status report (RFC 3464)"),
            ("feedback-report", "spam feedback report (RFC 5965)"),
            ("disposition-notification", "read receipt (RFC 8098)"),
            ("tlsrpt", "report (RFC 6522): tlsrpt"),
        ] {
            let mut f = facts(&[]);
            f.report_type = Some(t.into());
            f.is_delivery_report = t == "delivery-status";
            assert_eq!(reason_of(&f).as_deref(), Some(shown));
            assert_eq!(may_mark_bounced(&f), t == "delivery-status", "{t}");
        }
        assert!(may_mark_bounced(&facts(&[])));
    }

    #[test]
    fn bounce_senders_and_envelopes() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: &[Case] = &[
            // InterScan / Symantec gateways: Return-Path MAILER-DAEMON.
            (
                &[("Return-Path", "<MAILER-DAEMON>")],
                Some("Return-Path is MAILER-DAEMON"),
            ),
            (
                &[("Return-Path", "<postmaster@mx.example.nl>")],
                Some("Return-Path is"),
            ),
            (&[("Return-Path", "<jan@example.nl>")], None),
            (&[("From", "MAILER-DAEMON <>")], Some("empty From")),
            (
                &[("X-Failed-Recipients", "gone@example.nl")],
                Some("x-failed-recipients"),
            ),
            (
                &[("X-MS-Exchange-Message-Is-Ndr", "")],
                Some("x-ms-exchange-message-is-ndr"),
            ),
            (
                &[("x-amz-sns-message-id", "ad6b")],
                Some("x-amz-sns-message-id"),
            ),
            (&[("X-MLServer", "fml [fml 4.0.3]")], Some("mailing list")),
            (
                &[("Mailing-List", "contact x-help@example.org; run by ezmlm")],
                Some("mailing list"),
            ),
            (&[("X-Apple-Action", "VACATION")], Some("auto-responder")),
            (
                &[("Delivered-To", "service+b-12-0a1b2c3d4e@org.nl")],
                Some("VERP"),
            ),
            // Not the VERP form: a person's plus address.
            (&[("To", "jan+b-school@example.nl")], None),
            (&[("To", "jan+b-12-xyz@example.nl")], None),
        ];
        for (headers, want) in cases {
            let got = reason_of(&facts(headers));
            match want {
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(w)),
                    "{headers:?}: {got:?}"
                ),
                None => assert_eq!(got, None, "{headers:?}"),
            }
        }
        for local in [
            "post_master",
            "Mailer-Daemon",
            "mailerdaemon",
            "\"postmaster\"",
        ] {
            let mut f = facts(&[]);
            f.from = EmailAddress::parse(&format!("{local}@vtext.example.com")).unwrap();
            assert_eq!(
                automatic_reason(&f),
                Some(AutomaticReason::DaemonSender),
                "{local}"
            );
        }
        for local in ["postmaster.jansen", "mailer", "daemon", "jan"] {
            let mut f = facts(&[]);
            f.from = EmailAddress::parse(&format!("{local}@example.nl")).unwrap();
            assert_eq!(automatic_reason(&f), None, "{local}");
        }
    }

    #[test]
    fn without_a_usable_sender_only_the_from_header_counts() {
        // The placeholder's local part is mailer-daemon: it must not make the mail automatic.
        let mut f = facts(&[("From", "Klachtenformulier")]);
        f.from = EmailAddress::parse("mailer-daemon@unknown.invalid").unwrap();
        f.sender_missing = true;
        assert_eq!(automatic_reason(&f), None);
        for from in [
            "Mail Delivery Subsystem <MAILER-DAEMON>",
            "\"Mail Deliver System\" <MAILER-DAEMON>",
            "mailer-daemon",
            "<Postmaster\\@xxx.com@xxx.com>",
            "MAILER-DAEMON@mx.example.nl (Mail Delivery System)",
        ] {
            let mut g = facts(&[("From", from)]);
            g.from = f.from.clone();
            g.sender_missing = true;
            assert_eq!(
                automatic_reason(&g),
                Some(AutomaticReason::DaemonSender),
                "{from}"
            );
        }
        let mut h = facts(&[("From", "Postmaster Jansen")]);
        h.from = f.from.clone();
        h.sender_missing = true;
        assert_eq!(automatic_reason(&h), None);
    }

    #[test]
    fn a_bounce_subject_needs_another_signal() {
        let with = |subject: &str, from: &str, returned: bool| {
            let mut f = facts(&[]);
            f.subject = subject.into();
            f.from = EmailAddress::parse(from).unwrap();
            f.returned_message = returned;
            automatic_reason(&f)
        };
        // A person may write any of these.
        for subject in [
            "Returned mail",
            "Undeliverable: mijn klacht",
            "Onbestelbaar",
            "Delivery Status Notification (Failure)",
            "failure notice",
        ] {
            assert_eq!(with(subject, "jan@example.nl", false), None, "{subject}");
            // Forwarding a bounce with the bounced mail attached: still the person's mail.
            let fw = format!("Fw: {subject}");
            assert_eq!(with(&fw, "jan@example.nl", true), None, "{fw}");
            assert_eq!(
                with(&format!("Re: {subject}"), "jan@example.nl", true),
                None
            );
            // With the returned mail, or from a no-reply sender: a bounce.
            assert!(matches!(
                with(subject, "jan@example.nl", true),
                Some(AutomaticReason::Signals(_))
            ));
            assert!(
                with(subject, "no-reply@isp.example", false).is_some(),
                "{subject}"
            );
        }
        // An auto-reply subject counts with Exchange's headers; those alone do not (they are
        // on ordinary Outlook mail too, fixture 30), nor beside a bounce subject.
        let outlook = |subject: &str, header: &str| {
            let mut f = facts(&[(header, "All")]);
            f.subject = subject.into();
            automatic_reason(&f)
        };
        assert!(outlook("Automatic reply: Nyaan", "X-Auto-Response-Suppress").is_some());
        assert!(
            outlook(
                "Automatisch antwoord: les",
                "X-MS-Exchange-Inbox-Rules-Loop"
            )
            .is_some()
        );
        assert_eq!(
            outlook("Klacht over de les", "X-Auto-Response-Suppress"),
            None
        );
        assert_eq!(
            outlook("Returned mail: mijn klacht", "X-Auto-Response-Suppress"),
            None
        );
        assert_eq!(
            outlook("Afwezig: Daan is ziek", "X-Auto-Response-Suppress"),
            None
        );
        assert_eq!(outlook("Automatic reply: x", "X-Other"), None);
        // A mail-system display name with a bounce subject (OpenSMTPD's typo'd local part).
        let mut f = facts(&[("From", "Mailer Daemon <poostmaster@example.co.jp>")]);
        f.subject = "Delivery status notification: error".into();
        assert!(matches!(
            automatic_reason(&f),
            Some(AutomaticReason::Signals(_))
        ));
        f.subject = "Klacht".into();
        assert_eq!(automatic_reason(&f), None);
        // A mail forwarded as an attachment, or a web form's no-reply sender, alone: not.
        assert_eq!(with("Klacht over de les", "jan@example.nl", true), None);
        assert_eq!(
            with("Klacht over de les", "noreply@web.example", false),
            None
        );
        assert!(with("メールエラー通知", "no-reply@dion.example", true).is_some());
    }

    #[test]
    fn spam_and_dmarc() {
        let f = facts(&[
            ("X-Spam-Flag", "YES"),
            (
                "Authentication-Results",
                "mx.org.nl; spf=pass; dmarc=fail (p=reject) header.from=x.nl",
            ),
            ("Authentication-Results", "evil.example; dmarc=pass"),
        ]);
        assert!(is_spam(&f, "X-Spam-Flag", "yes"));
        assert!(!is_spam(
            &facts(&[("X-Spam-Flag", "NO")]),
            "X-Spam-Flag",
            "YES"
        ));
        assert!(dmarc_failed(&f, "mx.org.nl"));
        assert!(!dmarc_failed(&f, "evil.example"));
        assert!(!dmarc_failed(&f, ""));
        // A forged header from elsewhere does not count.
        let forged = facts(&[("Authentication-Results", "attacker.example; dmarc=fail")]);
        assert!(!dmarc_failed(&forged, "mx.org.nl"));
    }

    #[test]
    fn verp_round_trip_and_forgery() {
        let from = EmailAddress::parse("service@org.nl").unwrap();
        let addr = verp_address(&from, 42, b"key");
        assert!(addr.starts_with("service+b-42-"), "{addr}");
        assert_eq!(parse_verp(&addr, &from, b"key"), Some(42));
        assert_eq!(parse_verp(&addr.to_uppercase(), &from, b"key"), Some(42));
        assert_eq!(parse_verp(&addr, &from, b"other key"), None);
        assert_eq!(parse_verp(&addr.replace("42-", "43-"), &from, b"key"), None);
        assert_eq!(parse_verp("service@org.nl", &from, b"key"), None);
    }

    #[test]
    fn delivery_addresses_from_headers() {
        let f = facts(&[
            ("Delivered-To", "service+b-1-abc@org.nl"),
            ("To", "Service <service@org.nl>, other@x.nl"),
        ]);
        assert_eq!(
            delivery_addresses(&f),
            vec!["service+b-1-abc@org.nl", "service@org.nl", "other@x.nl"]
        );
    }

    #[test]
    fn placement_rules() {
        let jan = EmailAddress::parse("jan@example.nl").unwrap();
        let piet = EmailAddress::parse("piet@example.nl").unwrap();
        let r = ComplaintRef::new("KL", 2026, 7);
        let subject = ThreadLookups {
            by_subject: vec![(r.clone(), 7, jan.clone())],
            ..Default::default()
        };
        // Complainant with reference in subject: threaded.
        assert!(matches!(
            place(&jan, &subject, None, false),
            Placement::Thread {
                complaint_id: 7,
                by: ThreadedBy::Subject
            }
        ));
        // Someone else: new complaint, linked.
        assert_eq!(
            place(&piet, &subject, None, false),
            Placement::NewComplaint { related: Some(7) }
        );
        // Staff: threaded.
        let staff = ThreadLookups {
            sender_is_staff: true,
            ..subject.clone()
        };
        assert!(matches!(
            place(&piet, &staff, None, false),
            Placement::Thread { .. }
        ));
        // Header match wins, even for automatic mail (an out-of-office answering our mail).
        let header = ThreadLookups {
            by_header: Some(3),
            ..Default::default()
        };
        let auto = AutomaticReason::AutoSubmitted("auto-replied".into());
        assert!(matches!(
            place(&piet, &header, Some(&auto), false),
            Placement::Thread {
                complaint_id: 3,
                by: ThreadedBy::Header
            }
        ));
        // Automatic or spam without a match: unfiled.
        assert!(matches!(
            place(&piet, &ThreadLookups::default(), Some(&auto), false),
            Placement::Unfiled { .. }
        ));
        assert!(matches!(
            place(&jan, &subject, None, true),
            Placement::Unfiled { .. }
        ));
        assert_eq!(
            place(&piet, &ThreadLookups::default(), None, false),
            Placement::NewComplaint { related: None }
        );
    }

    /// Issue #8 finding 10: the complainant's own Message-ID is visible to everybody in the
    /// thread; naming it threads only the complainant's mail.
    #[test]
    fn a_foreign_message_id_threads_only_its_complainant() {
        let jan = EmailAddress::parse("jan@example.nl").unwrap();
        let stranger = EmailAddress::parse("stranger@evil.example").unwrap();
        let lookups = ThreadLookups {
            by_foreign_header: Some((7, jan.clone())),
            ..Default::default()
        };
        assert_eq!(
            place(&jan, &lookups, None, false),
            Placement::Thread {
                complaint_id: 7,
                by: ThreadedBy::Header
            }
        );
        assert_eq!(
            place(&stranger, &lookups, None, false),
            Placement::NewComplaint { related: Some(7) }
        );
        // Staff get no pass here: without our signed Message-ID, a staff From is just a From.
        let staff = ThreadLookups {
            sender_is_staff: true,
            ..lookups
        };
        assert_eq!(
            place(&stranger, &staff, None, false),
            Placement::NewComplaint { related: Some(7) }
        );
    }

    #[test]
    fn thread_ids_nearest_first_without_duplicates() {
        let mut f = facts(&[]);
        f.in_reply_to = vec![MessageId::parse("<c@x>").unwrap()];
        f.references = ["<a@x>", "<b@x>", "<c@x>"]
            .iter()
            .map(|s| MessageId::parse(s).unwrap())
            .collect();
        let ids: Vec<String> = f.thread_ids().iter().map(|m| m.to_string()).collect();
        assert_eq!(ids, vec!["c@x", "b@x", "a@x"]);
    }
}

//! Ingest: raw mails from a source become registered complaints, thread messages, unfiled
//! mails or quarantine entries, in one transaction per batch. A mail is marked processed at
//! the source only after that transaction committed, so a crash at any point loses nothing and
//! registers nothing twice (the source key and the dedupe key are both unique).

use crate::store::blobs::{ATTACHMENTS, RAW};
use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::Instrument;

use super::outbound::queue_to_role;
use super::register::{Opening, acknowledge, open_complaint};
use super::{Context, ServiceError, sha256_hex};
use crate::domain::classify::{
    MailFacts, Placement, ThreadLookups, automatic_reason, delivery_addresses, dmarc_failed,
    is_spam, may_mark_bounced, parse_verp, place,
};
use crate::domain::text::{MAX_HEADER_CHARS, MAX_NAME_CHARS, single_line};
use crate::domain::types::{ComplaintRef, EmailAddress, MessageId};
use crate::mail::compose::is_our_message_id;
use crate::mail::parse::{ParsedMail, parse};
use crate::mailbox::{self, MailSource, RawMail, Waiting};
use crate::store::{NewAttachment, NewMessage, NewQuarantine, StoreTx};

/// What happened to one mail; printed by `run --once` and used by tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    Registered {
        reference: String,
        acknowledged: bool,
    },
    Threaded {
        reference: String,
    },
    Bounce {
        reference: Option<String>,
    },
    Unfiled {
        reason: String,
    },
    Quarantined {
        reason: String,
    },
    Duplicate,
    AlreadyProcessed,
}

pub const SYSTEM: &str = "klachtd";

/// Mails per transaction: large enough to amortise the commit, small enough that a crash
/// redoes little.
pub const BATCH: usize = 50;

/// Bytes per transaction, as the source reports the sizes: a backlog of large mails (scans,
/// photos) is fetched a few at a time, not 50 at once. A larger mail is a batch of its own.
pub const BATCH_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// The next batch is fetched during this one only when this one is smaller than this.
const PREFETCH_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Consecutive batches of at most `max_count` mails and `max_bytes` bytes; a mail larger than
/// `max_bytes` alone. Order is kept.
pub fn split_batches(waiting: &[Waiting], max_count: usize, max_bytes: u64) -> Vec<&[Waiting]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, w) in waiting.iter().enumerate() {
        let count = i - start;
        if count > 0 && (count >= max_count || bytes.saturating_add(w.size) > max_bytes) {
            out.push(&waiting[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes = bytes.saturating_add(w.size);
    }
    if start < waiting.len() {
        out.push(&waiting[start..]);
    }
    out
}

/// Drain everything waiting in the source. Returns the outcomes in order.
pub async fn drain(
    ctx: &Context,
    source: &mut dyn MailSource,
    stop: &(dyn Fn() -> bool + Send + Sync),
) -> Result<Vec<Outcome>, ServiceError> {
    let mut outcomes = Vec::new();
    let source_id = source.id().to_string();
    mark_left_over(ctx, source, &source_id).await?;
    let last = ctx.store.last_source_key(&source_id).await?;
    let pending = source.pending(last.as_deref()).await?;
    for chunk in pending.chunks(BATCH * 20) {
        let known = ctx
            .store
            .known_source_keys(&source_id, &mailbox::keys(chunk))
            .await?;
        let (seen, new): (Vec<Waiting>, Vec<Waiting>) =
            chunk.iter().cloned().partition(|w| known.contains(&w.key));
        // Known keys the source still offers (still in new/ after a crash, before the move;
        // or found in cur/) are marked now: the source stops offering them (see MailSource).
        if !seen.is_empty() {
            source.mark_processed(&mailbox::keys(&seen)).await?;
        }
        // The next batch is fetched while this one is registered: the mail server works on
        // it meanwhile. Marking still follows each batch's commit.
        let batches: Vec<Vec<String>> = split_batches(&new, BATCH, BATCH_MAX_BYTES)
            .into_iter()
            .map(mailbox::keys)
            .collect();
        let mut fetched = match batches.first() {
            Some(first) if !stop() => Some(source.fetch(first).await?),
            _ => None,
        };
        for i in 0..batches.len() {
            let Some(mails) = fetched.take() else {
                return Ok(outcomes);
            };
            let keys: Vec<String> = mails.iter().map(|m| m.key.clone()).collect();
            let next = batches.get(i + 1).filter(|_| !stop());
            // Large mails: one batch in memory at a time rather than two.
            let bytes: usize = mails.iter().map(|m| m.bytes.len()).sum();
            let prefetch = next.filter(|_| bytes <= PREFETCH_MAX_BYTES);
            let (registered, prefetched) =
                tokio::join!(ingest_batch(ctx, &source_id, mails), async {
                    match prefetch {
                        Some(batch) => source.fetch(batch).await.map(Some),
                        None => Ok(None),
                    }
                });
            outcomes.extend(registered?);
            crash_point_after_commit();
            source.mark_processed(&keys).await?;
            ctx.store.source_keys_marked(&source_id, &keys).await?;
            fetched = match (prefetched?, next) {
                (Some(mails), _) => Some(mails),
                (None, Some(batch)) => Some(source.fetch(batch).await?),
                (None, None) => None,
            };
        }
    }
    Ok(outcomes)
}

/// A mail read from the source, parsed and its blobs on disk, ready for a transaction.
struct Prepared {
    mail: RawMail,
    /// The parse result; `Err` holds the reason a mail cannot be read (quarantine).
    parsed: Result<ParsedMail, String>,
    over_size: bool,
    raw_sha: String,
    attachment_shas: Vec<Option<String>>,
}

/// Why one attempt at a transaction failed: an error, or a panic caught at the per-mail
/// boundary (a dependency that panics on one mail must not take the daemon down).
enum AttemptFailure {
    Error(ServiceError),
    Panic(String),
}

impl std::fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptFailure::Error(e) => write!(f, "{e}"),
            AttemptFailure::Panic(m) => write!(f, "internal error (panic): {m}"),
        }
    }
}

/// Committed keys per round of [`mark_left_over`].
const LEFT_OVER_ROUND: i64 = 500;

/// Marks at the source what an earlier run committed but did not mark (killed between the
/// commit and `mark_processed`). Over IMAP those UIDs lie before the saved position and would
/// never be offered again; in a Maildir they are still in `new/`. One indexed query when
/// there are none.
async fn mark_left_over(
    ctx: &Context,
    source: &mut dyn MailSource,
    source_id: &str,
) -> Result<(), ServiceError> {
    loop {
        let keys = ctx
            .store
            .unmarked_source_keys(source_id, LEFT_OVER_ROUND)
            .await?;
        if keys.is_empty() {
            return Ok(());
        }
        tracing::info!(
            count = keys.len(),
            "marking mails committed before a crash but not yet marked at the source"
        );
        source.mark_processed(&keys).await?;
        ctx.store.source_keys_marked(source_id, &keys).await?;
        if (keys.len() as i64) < LEFT_OVER_ROUND {
            return Ok(());
        }
    }
}

/// Test hook: with `KLACHTD_TEST_CRASH_AFTER_COMMIT=1` the process aborts right after a batch
/// committed, before the source marks it: the crash the tests of that window need, made
/// deterministic (a `kill -9` can only hit it by chance). Never set it in production.
fn crash_point_after_commit() {
    static CRASH: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *CRASH
        .get_or_init(|| std::env::var("KLACHTD_TEST_CRASH_AFTER_COMMIT").is_ok_and(|v| v == "1"))
    {
        tracing::error!("KLACHTD_TEST_CRASH_AFTER_COMMIT: aborting after the commit");
        std::process::abort();
    }
}

use crate::panics::panic_message;

/// Attachments kept per mail; a mail of 50,000 parts must not become 50,000 rows and files.
/// The rest are named in the history as not kept.
pub const MAX_ATTACHMENTS: usize = 100;

/// Of an over-size mail only this much is parsed (headers and the start of the text): the
/// register gets what a person reads, and the attachments are refused anyway.
const OVER_SIZE_PARSE_BYTES: usize = 1024 * 1024;

/// Parse off the async thread: mail-parser and the HTML conversion are CPU work that must not
/// hold up IDLE, the outbox or a SIGTERM. A panic in them is this mail's failure.
async fn parse_off_thread(mail: &mut RawMail, over_size: bool) -> Result<ParsedMail, String> {
    let bytes = std::sync::Arc::new(std::mem::take(&mut mail.bytes));
    let input = bytes.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let end = if over_size {
            (header_block(&input).len() + OVER_SIZE_PARSE_BYTES).min(input.len())
        } else {
            input.len()
        };
        parse(&input[..end]).map_err(|f| f.to_string())
    })
    .await;
    // The task's copy of the Arc is gone once it ended, even by a panic.
    mail.bytes = std::sync::Arc::try_unwrap(bytes).unwrap_or_else(|shared| (*shared).clone());
    match joined {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(format!(
            "internal error (panic) while reading the mail: {}",
            panic_message(e.into_panic())
        )),
        Err(e) => Err(format!("reading the mail was cancelled: {e}")),
    }
}

async fn prepare(ctx: &Context, mut mail: RawMail) -> Result<Prepared, ServiceError> {
    let over_size = mail.bytes.len() as u64 > ctx.settings.limits.max_mail_bytes;
    let parsed = parse_off_thread(&mut mail, over_size).await;
    // Disk first (content-addressed, idempotent): a rolled-back transaction leaves at most an
    // unreferenced file, never a row pointing at nothing.
    let kept: &[u8] = if over_size {
        header_block(&mail.bytes)
    } else {
        &mail.bytes
    };
    let raw_sha = ctx.blobs.put(RAW, kept).await?;
    let mut attachment_shas = Vec::new();
    if let Ok(p) = &parsed
        && !over_size
    {
        for a in p.attachments.iter().take(MAX_ATTACHMENTS) {
            attachment_shas.push(Some(ctx.blobs.put(ATTACHMENTS, &a.bytes).await?));
        }
    }
    Ok(Prepared {
        mail,
        parsed,
        over_size,
        raw_sha,
        attachment_shas,
    })
}

/// Register a batch: one transaction for all of it. When that fails, whatever the cause, the
/// batch is done again mail by mail, so one mail that cannot be handled is found, quarantined
/// with the reason and its raw bytes, and never holds up the mails behind it.
pub async fn ingest_batch(
    ctx: &Context,
    source_id: &str,
    mails: Vec<RawMail>,
) -> Result<Vec<Outcome>, ServiceError> {
    let started = std::time::Instant::now();
    let mut prepared = Vec::with_capacity(mails.len());
    for mail in mails {
        prepared.push(prepare(ctx, mail).await?);
    }
    ctx.blobs.sync().await?;
    // Counted here, once committed: a batch redone mail by mail counts each mail once.
    match attempt(ctx, source_id, &prepared).await {
        Ok(outcomes) => {
            super::health::record_ingested(&outcomes, started.elapsed());
            return Ok(outcomes);
        }
        Err(failure) => tracing::warn!(
            mails = prepared.len(),
            error = %failure,
            "batch failed; registering its mails one by one"
        ),
    }
    let mut outcomes = Vec::with_capacity(prepared.len());
    for p in &prepared {
        outcomes.push(ingest_alone(ctx, source_id, p).await?);
    }
    super::health::record_ingested(&outcomes, started.elapsed());
    Ok(outcomes)
}

/// One mail in its own transaction, tried twice (a busy database gets a second chance); when
/// it fails again it is quarantined. Only a failure to write the quarantine entry itself is
/// returned: then the database is what fails, and the whole batch waits for the next run.
async fn ingest_alone(
    ctx: &Context,
    source_id: &str,
    p: &Prepared,
) -> Result<Outcome, ServiceError> {
    let mut failure = None;
    for _ in 0..2 {
        match attempt(ctx, source_id, std::slice::from_ref(p)).await {
            Ok(mut outcomes) if outcomes.len() == 1 => return Ok(outcomes.remove(0)),
            Ok(_) => {
                failure = Some(AttemptFailure::Error(ServiceError::Invalid(
                    "no outcome for the mail".into(),
                )))
            }
            Err(f) => failure = Some(f),
        }
    }
    let reason = match failure {
        Some(f) => format!("cannot be processed: {f}"),
        None => "cannot be processed".to_string(),
    };
    let mut tx = ctx.store.begin().await?;
    let outcome = quarantine(ctx, tx.as_mut(), source_id, &p.mail, &p.raw_sha, &reason).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// All of `items` in one transaction, each behind a panic boundary.
async fn attempt(
    ctx: &Context,
    source_id: &str,
    items: &[Prepared],
) -> Result<Vec<Outcome>, AttemptFailure> {
    use futures_util::FutureExt;
    let mut tx = ctx
        .store
        .begin()
        .await
        .map_err(|e| AttemptFailure::Error(e.into()))?;
    let mut outcomes = Vec::with_capacity(items.len());
    for p in items {
        let span = tracing::info_span!(
            "mail",
            key = %p.mail.key,
            message_id = p.parsed.as_ref().ok().and_then(|m| m.facts.message_id.as_ref()).map(|m| m.to_string()).unwrap_or_default()
        );
        let outcome = std::panic::AssertUnwindSafe(
            ingest_one(ctx, tx.as_mut(), source_id, p).instrument(span.clone()),
        )
        .catch_unwind()
        .await
        .map_err(|panic| AttemptFailure::Panic(panic_message(panic)))?
        .map_err(AttemptFailure::Error)?;
        span.in_scope(|| tracing::info!(?outcome, "ingested"));
        outcomes.push(outcome);
    }
    tx.commit()
        .await
        .map_err(|e| AttemptFailure::Error(e.into()))?;
    Ok(outcomes)
}

/// Quarantine a mail that cannot be read or processed, with the reason; the same raw bytes
/// already held (a mail delivered again, a UIDVALIDITY reset) make no second entry.
async fn quarantine(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    source_id: &str,
    mail: &RawMail,
    raw_sha: &str,
    reason: &str,
) -> Result<Outcome, ServiceError> {
    let now = ctx.clock.now();
    if !tx
        .record_source_key(source_id, &mail.key, "quarantined")
        .await?
    {
        return Ok(Outcome::AlreadyProcessed);
    }
    if let Some(held) = tx.held_quarantine_by_sha(raw_sha).await? {
        tx.history(
            None,
            now,
            SYSTEM,
            "quarantined_again",
            &format!("{}: same mail as quarantine entry {held}", mail.key),
        )
        .await?;
        return Ok(Outcome::Quarantined {
            reason: format!("{reason} (same mail as quarantine entry {held})"),
        });
    }
    tx.insert_quarantine(&NewQuarantine {
        source: source_id.to_string(),
        source_key: mail.key.clone(),
        message_id: find_message_id_loosely(&mail.bytes),
        received_at: mail.received_at,
        reason: reason.to_string(),
        raw_sha256: raw_sha.to_string(),
        raw_size: mail.bytes.len() as i64,
        created_at: now,
    })
    .await?;
    tx.history(
        None,
        now,
        SYSTEM,
        "quarantined",
        &format!("{}: {reason}", mail.key),
    )
    .await?;
    tracing::warn!(%reason, "mail quarantined");
    Ok(Outcome::Quarantined {
        reason: reason.to_string(),
    })
}

/// The header block of a raw mail (up to the first empty line): what an over-size mail keeps.
fn header_block(raw: &[u8]) -> &[u8] {
    for (i, w) in raw.windows(4).enumerate() {
        if w == b"\r\n\r\n" {
            return &raw[..i + 4];
        }
    }
    for (i, w) in raw.windows(2).enumerate() {
        if w == b"\n\n" {
            return &raw[..i + 2];
        }
    }
    raw
}

/// What makes a redelivered mail the same mail: its sender, its subject and its body (all
/// after the header block: text, attachments, a bounce's report and returned mail), line
/// ends ignored.
fn content_digest(facts: &MailFacts, raw: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(facts.from.as_str().as_bytes());
    h.update([0]);
    h.update(facts.subject.as_bytes());
    h.update([0]);
    for piece in raw[header_block(raw).len()..].split(|&b| b == b'\r') {
        h.update(piece);
    }
    hex::encode(h.finalize())
}

async fn ingest_one(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    source_id: &str,
    p: &Prepared,
) -> Result<Outcome, ServiceError> {
    let mail = &p.mail;
    let parsed = match &p.parsed {
        Ok(parsed) => parsed,
        Err(reason) => {
            return quarantine(ctx, tx, source_id, mail, &p.raw_sha, reason).await;
        }
    };
    if !tx
        .record_source_key(source_id, &mail.key, "ingested")
        .await?
    {
        return Ok(Outcome::AlreadyProcessed);
    }
    test_hook(parsed)?;
    register(
        ctx,
        tx,
        source_id,
        &mail.key,
        mail.received_at,
        &mail.bytes,
        parsed,
        p.over_size,
        &p.raw_sha,
        &p.attachment_shas,
        true,
    )
    .await
}

/// Debug builds only: a subject containing `KLACHTD_TEST_FAIL` (its value) makes ingest fail
/// (`error`) or panic (`panic`) on that mail, so the tests can prove one failing mail never
/// holds up another whatever the cause. Release builds have no such hook.
#[cfg(debug_assertions)]
fn test_hook(parsed: &ParsedMail) -> Result<(), ServiceError> {
    if let Ok(spec) = std::env::var("KLACHTD_TEST_FAIL")
        && let Some((mode, needle)) = spec.split_once(':')
        && !needle.is_empty()
        && parsed.facts.subject.contains(needle)
    {
        if mode == "panic" {
            panic!("test hook: panic on {needle:?}");
        }
        return Err(ServiceError::Invalid(format!(
            "test hook: error on {needle:?}"
        )));
    }
    Ok(())
}

#[cfg(not(debug_assertions))]
fn test_hook(_parsed: &ParsedMail) -> Result<(), ServiceError> {
    Ok(())
}

/// Decide and record where a parsed mail belongs. Also used by `quarantine release`.
#[allow(clippy::too_many_arguments)]
pub async fn register(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    source_id: &str,
    source_key: &str,
    received_at: DateTime<Utc>,
    raw: &[u8],
    parsed: &ParsedMail,
    over_size: bool,
    raw_sha: &str,
    attachment_shas: &[Option<String>],
    may_acknowledge: bool,
) -> Result<Outcome, ServiceError> {
    let now = ctx.clock.now();
    let s = &ctx.settings;
    let facts = &parsed.facts;
    // Same mail again. A Message-ID alone does not make a duplicate: badly written form
    // mailers give every mail the same one. The same Message-ID with the same sender, subject
    // and body (text and attachments as sent; trace headers differ between two deliveries of
    // one mail) is the same mail; with another body it is a new mail, and the reuse is
    // recorded. A mail without a Message-ID is the same mail only byte for byte.
    let mut reused_message_id = None;
    let dedupe_key = match &facts.message_id {
        Some(m) => {
            let key = format!("mid:{}#body:{}", m.as_str(), content_digest(facts, raw));
            if tx.dedupe_key_exists(&key).await? {
                tracing::info!("duplicate of a mail already registered");
                return Ok(Outcome::Duplicate);
            }
            let stored = tx.messages_with_message_id(m.as_str()).await?;
            // Registered before the body counted, under the Message-ID alone: compared by
            // sender, subject and text as then.
            if tx.dedupe_key_exists(&format!("mid:{}", m.as_str())).await?
                && stored.iter().any(|c| {
                    c.from_address == facts.from.as_str()
                        && c.subject == facts.subject
                        && c.body_text == parsed.text
                })
            {
                tracing::info!("duplicate of a mail already registered");
                return Ok(Outcome::Duplicate);
            }
            if !stored.is_empty() {
                reused_message_id = Some(m.to_string());
            }
            key
        }
        None => {
            let key = format!("sha:{}", sha256_hex(raw));
            if tx.dedupe_key_exists(&key).await? {
                tracing::info!("duplicate of a mail already registered");
                return Ok(Outcome::Duplicate);
            }
            key
        }
    };

    let automatic = automatic_reason(facts);
    let spam = is_spam(facts, &s.intake.spam_header, &s.intake.spam_value);
    let from_addr = ctx.from_address()?;

    // Bounces change one of our mails only when they reach its VERP address with a valid
    // signature: a report sent to the plain address that merely names our Message-ID (which
    // the complainant and anyone later in the thread can see) could be forged by anyone.
    let mut bounced = None;
    // Feedback reports and read receipts name our mail too, but it was delivered.
    if automatic.is_some() && may_mark_bounced(facts) {
        for addr in delivery_addresses(facts) {
            if let Some(id) = parse_verp(&addr, &from_addr, &ctx.key)
                && let Some(sent) = tx.sent_by_id(id).await?
            {
                bounced = Some(sent);
                break;
            }
        }
    }
    let names_our_mail =
        bounced.is_none() && facts.is_delivery_report && !facts.report_message_ids.is_empty() && {
            let ids: Vec<String> = facts
                .report_message_ids
                .iter()
                .map(|m| m.to_string())
                .collect();
            tx.sent_by_message_ids(&ids).await?.is_some()
        };

    let complainant = complainant_of(ctx, parsed);
    let mut lookups = ThreadLookups {
        sender_is_staff: s.typed.is_staff(&facts.from),
        ..Default::default()
    };
    // Threading by header: a Message-ID we made (signed, unguessable) threads the mail; a
    // Message-ID of somebody else's mail in the complaint (the complainant's own) threads it
    // only when it comes from that complainant. A stranger naming it gets a new complaint,
    // linked to that one.
    let thread_ids = facts.thread_ids();
    let (ours, foreign): (Vec<&MessageId>, Vec<&MessageId>) = thread_ids.iter().partition(|m| {
        is_our_message_id(m, &ctx.key) || crate::domain::token::parse_message_id(m).is_some()
    });
    let ours: Vec<String> = ours.iter().map(|m| m.to_string()).collect();
    let foreign: Vec<String> = foreign.iter().map(|m| m.to_string()).collect();
    lookups.by_header = match &bounced {
        Some(sent) => sent.complaint_id,
        None if ours.is_empty() => None,
        None => tx.complaint_by_message_ids(&ours).await?,
    };
    // A token of ours that checks out (our Reply-To, a verdict link, a tokened Message-ID)
    // names its complaint, whatever the subject says.
    let tokens = super::staff_mail::read_tokens(ctx, tx, parsed).await?;
    let mut by_token = false;
    if lookups.by_header.is_none()
        && bounced.is_none()
        && let Some(id) = tokens.complaint()
    {
        lookups.by_header = Some(id);
        by_token = true;
    }
    if lookups.by_header.is_none()
        && !foreign.is_empty()
        && let Some(id) = tx.complaint_by_message_ids(&foreign).await?
        && let Some(who) = tx.complaint_complainant(id).await?
        && let Ok(who) = EmailAddress::parse(&who)
    {
        lookups.by_foreign_header = Some((id, who));
    }
    for r in ComplaintRef::find_in_subject(&facts.subject, &s.organisation.reference_prefix) {
        if let Some((id, who)) = tx.complaint_by_reference(&r.to_string()).await?
            && let Ok(who) = EmailAddress::parse(&who)
        {
            lookups.by_subject.push((r, id, who));
        }
    }
    let placement = match place(&complainant.0, &lookups, automatic.as_ref(), spam) {
        Placement::Unfiled { .. } if names_our_mail => Placement::Unfiled {
            reason: "delivery report naming one of our mails, but not sent to that mail's \
                     signed VERP address: kept unfiled, nothing marked bounced (may be forged)"
                .into(),
        },
        other => other,
    };

    let classification = if bounced.is_some() {
        "bounce"
    } else if spam {
        "spam"
    } else if automatic.is_some() {
        "automatic"
    } else {
        match placement {
            Placement::NewComplaint { .. } => "complaint",
            _ => "reply",
        }
    };
    let mut message = NewMessage {
        complaint_id: None,
        dedupe_key,
        message_id: facts.message_id.as_ref().map(|m| m.to_string()),
        source: source_id.to_string(),
        source_key: source_key.to_string(),
        received_at,
        sent_date: parsed.date,
        from_address: facts.from.to_string(),
        from_name: parsed
            .from_name
            .as_deref()
            .map(|n| single_line(n, MAX_NAME_CHARS)),
        reply_to: facts.reply_to.as_ref().map(|a| a.to_string()),
        to_addresses: parsed
            .to
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        subject: single_line(&facts.subject, MAX_HEADER_CHARS),
        in_reply_to: (!facts.in_reply_to.is_empty()).then(|| {
            facts
                .in_reply_to
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }),
        references_ids: (!facts.references.is_empty()).then(|| {
            facts
                .references
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }),
        body_text: parsed.text.clone(),
        raw_sha256: raw_sha.to_string(),
        raw_size: raw.len() as i64,
        raw_kept: if over_size {
            "headers".into()
        } else {
            "whole".into()
        },
        classification: classification.to_string(),
        automatic: automatic.as_ref().map(|a| a.to_string()),
        unfiled_reason: None,
        created_at: now,
    };
    let actor = format!("mail:{}", facts.from);
    let reuse_note = reused_message_id
        .as_ref()
        .map(|m| format!("Message-ID <{m}> reused: an earlier, different mail has it too"));
    if let (Some(note), Placement::Thread { complaint_id, .. }) = (&reuse_note, &placement) {
        tx.history(Some(*complaint_id), now, SYSTEM, "message_id_reused", note)
            .await?;
    }
    if let (Some(note), Placement::Unfiled { .. }) = (&reuse_note, &placement) {
        tx.history(None, now, SYSTEM, "message_id_reused", note)
            .await?;
    }

    match placement {
        Placement::Unfiled { reason } => {
            message.unfiled_reason = Some(reason.clone());
            let row = store_message(
                tx,
                &message,
                parsed,
                over_size,
                attachment_shas,
                s.limits.max_mail_bytes,
            )
            .await?;
            tx.history(
                None,
                now,
                &actor,
                "unfiled",
                &format!("message {row}: {reason}"),
            )
            .await?;
            Ok(Outcome::Unfiled { reason })
        }
        Placement::Thread { complaint_id, by } => {
            message.complaint_id = Some(complaint_id);
            let row = store_message(
                tx,
                &message,
                parsed,
                over_size,
                attachment_shas,
                s.limits.max_mail_bytes,
            )
            .await?;
            let reference = tx.complaint_reference(complaint_id).await?;
            if let Some(sent) = &bounced {
                let reason = bounce_reason(parsed);
                let first = tx.mark_bounced(sent.outbox_id, now, &reason).await?;
                tx.history(
                    Some(complaint_id),
                    now,
                    &actor,
                    "bounce",
                    &format!(
                        "our {} to {} bounced: {reason}",
                        sent.template, sent.recipients
                    ),
                )
                .await?;
                // The complainant did not get our acknowledgement: a person must reach them
                // another way.
                if first && sent.template == "acknowledgement" {
                    let context = json!({
                        "organisation": { "name": s.organisation.name },
                        "complaint": { "reference": reference, "subject": facts.subject },
                        "bounce": { "recipient": sent.recipients, "reason": reason },
                    });
                    queue_to_role(
                        ctx,
                        tx,
                        "receiver",
                        "bounce_alert",
                        &context,
                        Some(complaint_id),
                        now,
                    )
                    .await?;
                    tx.history(
                        Some(complaint_id),
                        now,
                        SYSTEM,
                        "alert",
                        "receiver told that the acknowledgement bounced",
                    )
                    .await?;
                }
                return Ok(Outcome::Bounce {
                    reference: Some(reference),
                });
            }
            let how = match by {
                crate::domain::classify::ThreadedBy::Header => "by In-Reply-To/References",
                crate::domain::classify::ThreadedBy::Subject => "by reference in subject",
            };
            tx.history(
                Some(complaint_id),
                now,
                &actor,
                "message_in",
                &format!(
                    "message {row} ({classification}) added {how}: {}",
                    facts.subject
                ),
            )
            .await?;
            super::staff_mail::on_threaded(
                ctx,
                tx,
                super::staff_mail::Threaded {
                    complaint_id,
                    row,
                    parsed,
                    tokens: &tokens,
                    sender_is_staff: lookups.sender_is_staff,
                    automatic: automatic.is_some(),
                    by_header: by_token || by == crate::domain::classify::ThreadedBy::Header,
                },
            )
            .await?;
            Ok(Outcome::Threaded { reference })
        }
        Placement::NewComplaint { related } => {
            if lookups.sender_is_staff
                && automatic.is_none()
                && let Some(outcome) = super::staff_mail::intake(
                    ctx,
                    tx,
                    &mut message,
                    parsed,
                    &tokens,
                    over_size,
                    attachment_shas,
                )
                .await?
            {
                return Ok(outcome);
            }
            let (reference, acknowledged) = new_complaint(
                ctx,
                tx,
                &mut message,
                parsed,
                complainant,
                related,
                over_size,
                attachment_shas,
                may_acknowledge && automatic.is_none(),
                reuse_note.as_deref(),
            )
            .await?;
            Ok(Outcome::Registered {
                reference,
                acknowledged,
            })
        }
    }
}

/// The person who complains: the From address, or the Reply-To for a configured web-form
/// sender (the form's mailer is not the person).
fn complainant_of(ctx: &Context, parsed: &ParsedMail) -> (EmailAddress, Option<String>) {
    let f = &parsed.facts;
    let web_form = ctx.settings.typed.web_form_senders.contains(&f.from);
    match (&f.reply_to, web_form) {
        (Some(r), true) => (r.clone(), None),
        _ => (
            f.from.clone(),
            parsed
                .from_name
                .as_deref()
                .map(|n| single_line(n, MAX_NAME_CHARS))
                .filter(|n| !n.is_empty()),
        ),
    }
}

fn bounce_reason(parsed: &ParsedMail) -> String {
    // The human-readable part of a bounce, first meaningful line, kept short.
    parsed
        .text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("delivery failed")
        .chars()
        .take(200)
        .collect()
}

fn find_message_id_loosely(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(64 * 1024)]);
    text.lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case("message-id")
                .then(|| MessageId::parse(v).ok().map(|m| m.to_string()))?
        })
}

/// Insert the message and a row per attachment (refused ones with the reason); its row id.
pub(crate) async fn store_message(
    tx: &mut dyn StoreTx,
    message: &NewMessage,
    parsed: &ParsedMail,
    over_size: bool,
    shas: &[Option<String>],
    limit: u64,
) -> Result<i64, ServiceError> {
    let row = tx.insert_message(message).await?;
    if parsed.attachments.len() > MAX_ATTACHMENTS {
        tx.history(
            message.complaint_id,
            message.created_at,
            SYSTEM,
            "attachments_refused",
            &format!(
                "message {row}: {} attachments; the first {MAX_ATTACHMENTS} kept, the rest \
                 only in the raw mail",
                parsed.attachments.len()
            ),
        )
        .await?;
    }
    for (i, a) in parsed.attachments.iter().take(MAX_ATTACHMENTS).enumerate() {
        let sha = shas.get(i).cloned().flatten();
        tx.insert_attachment(
            row,
            &NewAttachment {
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                size: a.bytes.len() as i64,
                sha256: if over_size { None } else { sha },
                refused_reason: over_size
                    .then(|| format!("mail larger than limits.max_mail_bytes ({limit} bytes)")),
            },
        )
        .await?;
    }
    Ok(row)
}

#[allow(clippy::too_many_arguments)]
async fn new_complaint(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    message: &mut NewMessage,
    parsed: &ParsedMail,
    complainant: (EmailAddress, Option<String>),
    related: Option<i64>,
    over_size: bool,
    attachment_shas: &[Option<String>],
    may_acknowledge: bool,
    note: Option<&str>,
) -> Result<(String, bool), ServiceError> {
    let s = &ctx.settings;
    let now = ctx.clock.now();
    let facts = &parsed.facts;
    let actor = format!("mail:{}", facts.from);
    let opened = open_complaint(
        ctx,
        tx,
        Opening {
            received_at: message.received_at,
            complainant: &complainant,
            subject: &single_line(&facts.subject, MAX_HEADER_CHARS),
            text: &parsed.text,
            related,
            actor: &actor,
            note: &note.map(|n| format!(" ({n})")).unwrap_or_default(),
            sent_to: &sent_to_addresses(parsed),
            no_address: false,
        },
    )
    .await?;
    message.complaint_id = Some(opened.id);
    store_message(
        tx,
        message,
        parsed,
        over_size,
        attachment_shas,
        s.limits.max_mail_bytes,
    )
    .await?;
    if over_size && !parsed.attachments.is_empty() {
        tx.history(
            Some(opened.id),
            now,
            SYSTEM,
            "attachments_refused",
            &format!(
                "{} attachment(s) refused: mail larger than {} bytes",
                parsed.attachments.len(),
                s.limits.max_mail_bytes
            ),
        )
        .await?;
    }
    let dmarc_fail = dmarc_failed(facts, &s.intake.trusted_authserv_id);
    let withheld = if !may_acknowledge {
        Some("automatic mail is never answered".to_string())
    } else if s.intake.dmarc_fail_blocks_acknowledgement && dmarc_fail {
        Some("DMARC failed at our receiving server: the From address may be forged".to_string())
    } else {
        None
    };
    let mut references = facts.references.clone();
    if let Some(m) = &facts.message_id {
        references.push(m.clone());
    }
    let acknowledged = acknowledge(
        ctx,
        tx,
        &opened,
        &complainant,
        facts.message_id.clone(),
        references,
        withheld,
        s.acknowledgement.quote_text && !dmarc_fail,
    )
    .await?;
    // The procedure's own first steps (notify the receiver, a serious alert) run whether or
    // not the complainant could be answered.
    super::scheduler::on_registered(ctx, tx, opened.id, now).await?;
    Ok((opened.reference, acknowledged))
}

/// Every address the mail was sent to: To, and what the receiving server recorded
/// (Delivered-To, X-Original-To), which names the `service+tag@` address a Bcc went to.
pub fn sent_to_addresses(parsed: &ParsedMail) -> Vec<EmailAddress> {
    let mut out = parsed.to.clone();
    for (name, value) in &parsed.facts.headers {
        if (name == "delivered-to" || name == "x-original-to")
            && let Ok(a) = EmailAddress::parse(value.trim().trim_matches(['<', '>']))
            && !out.contains(&a)
        {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn waiting(sizes: &[u64]) -> Vec<Waiting> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, size)| Waiting {
                key: format!("1:{i}"),
                size: *size,
            })
            .collect()
    }

    fn sizes(batches: &[&[Waiting]]) -> Vec<Vec<u64>> {
        batches
            .iter()
            .map(|b| b.iter().map(|w| w.size).collect())
            .collect()
    }

    #[test]
    fn batches_close_on_count_and_on_bytes() {
        let w = waiting(&[1, 1, 1, 1, 1]);
        assert_eq!(
            sizes(&split_batches(&w, 2, 100)),
            [vec![1, 1], vec![1, 1], vec![1]]
        );
        let w = waiting(&[40, 40, 40, 10, 90]);
        assert_eq!(
            sizes(&split_batches(&w, 50, 100)),
            [vec![40, 40], vec![40, 10], vec![90]]
        );
        // Exactly the limit still fits.
        let w = waiting(&[50, 50, 1]);
        assert_eq!(sizes(&split_batches(&w, 50, 100)), [vec![50, 50], vec![1]]);
    }

    #[test]
    fn a_mail_over_the_limit_is_a_batch_of_its_own() {
        let w = waiting(&[1, 500, 1, 1]);
        assert_eq!(
            sizes(&split_batches(&w, 50, 100)),
            [vec![1], vec![500], vec![1, 1]]
        );
        assert!(split_batches(&[], 50, 100).is_empty());
    }

    proptest! {
        #[test]
        fn batches_keep_every_mail_in_order_within_both_limits(
            sizes in proptest::collection::vec(0u64..300, 0..200),
            max_count in 1usize..60,
            max_bytes in 1u64..1000,
        ) {
            let w = waiting(&sizes);
            let out = split_batches(&w, max_count, max_bytes);
            let flat: Vec<&Waiting> = out.iter().flat_map(|b| b.iter()).collect();
            prop_assert_eq!(flat, w.iter().collect::<Vec<_>>());
            for (i, b) in out.iter().enumerate() {
                prop_assert!(!b.is_empty());
                prop_assert!(b.len() <= max_count);
                let bytes: u64 = b.iter().map(|m| m.size).sum();
                prop_assert!(b.len() == 1 || bytes <= max_bytes);
                // Greedy: the next mail would not have fitted.
                if let Some(next) = out.get(i + 1) {
                    prop_assert!(b.len() == max_count || bytes + next[0].size > max_bytes);
                }
            }
        }
    }
}

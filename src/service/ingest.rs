//! Ingest: raw mails from a source become registered complaints, thread messages, unfiled
//! mails or quarantine entries, in one transaction per batch. A mail is marked processed at
//! the source only after that transaction committed, so a crash at any point loses nothing and
//! registers nothing twice (the source key and the dedupe key are both unique).

use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::Instrument;

use super::outbound::queue_to_role;
use super::register::{Opening, acknowledge, open_complaint};
use super::{Context, ServiceError, sha256_hex};
use crate::domain::classify::{
    Placement, ThreadLookups, automatic_reason, delivery_addresses, dmarc_failed, is_spam,
    parse_verp, place,
};
use crate::domain::types::{ComplaintRef, EmailAddress, MessageId};
use crate::mail::parse::{ParseFailure, ParsedMail, parse};
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

/// One transaction for the whole batch.
pub async fn ingest_batch(
    ctx: &Context,
    source_id: &str,
    mails: Vec<RawMail>,
) -> Result<Vec<Outcome>, ServiceError> {
    // Disk first (content-addressed, idempotent): a rolled-back transaction leaves at most an
    // unreferenced file, never a row pointing at nothing.
    let mut prepared = Vec::with_capacity(mails.len());
    for mail in mails {
        let parsed = parse(&mail.bytes);
        let over_size = mail.bytes.len() as u64 > ctx.settings.limits.max_mail_bytes;
        let kept: &[u8] = if over_size {
            header_block(&mail.bytes)
        } else {
            &mail.bytes
        };
        let raw_sha = ctx.blobs.put("raw", kept)?;
        let mut attachment_shas = Vec::new();
        if let Ok(p) = &parsed
            && !over_size
        {
            for a in &p.attachments {
                attachment_shas.push(Some(ctx.blobs.put("attachments", &a.bytes)?));
            }
        }
        prepared.push((mail, parsed, over_size, raw_sha, attachment_shas));
    }
    ctx.blobs.sync()?;
    let mut tx = ctx.store.begin().await?;
    let mut outcomes = Vec::with_capacity(prepared.len());
    for (mail, parsed, over_size, raw_sha, attachment_shas) in prepared {
        let span = tracing::info_span!(
            "mail",
            key = %mail.key,
            message_id = parsed.as_ref().ok().and_then(|p| p.facts.message_id.as_ref()).map(|m| m.to_string()).unwrap_or_default()
        );
        let outcome = ingest_one(
            ctx,
            tx.as_mut(),
            source_id,
            &mail,
            parsed,
            over_size,
            &raw_sha,
            &attachment_shas,
        )
        .instrument(span.clone())
        .await?;
        span.in_scope(|| tracing::info!(?outcome, "ingested"));
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
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

#[allow(clippy::too_many_arguments)]
async fn ingest_one(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    source_id: &str,
    mail: &RawMail,
    parsed: Result<ParsedMail, ParseFailure>,
    over_size: bool,
    raw_sha: &str,
    attachment_shas: &[Option<String>],
) -> Result<Outcome, ServiceError> {
    let now = ctx.clock.now();
    if !tx
        .record_source_key(source_id, &mail.key, "ingested")
        .await?
    {
        return Ok(Outcome::AlreadyProcessed);
    }
    let parsed = match parsed {
        Ok(p) => p,
        Err(failure) => {
            let reason = failure.to_string();
            tx.insert_quarantine(&NewQuarantine {
                source: source_id.to_string(),
                source_key: mail.key.clone(),
                message_id: find_message_id_loosely(&mail.bytes),
                received_at: mail.received_at,
                reason: reason.clone(),
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
            return Ok(Outcome::Quarantined { reason });
        }
    };
    register(
        ctx,
        tx,
        source_id,
        &mail.key,
        mail.received_at,
        &mail.bytes,
        parsed,
        over_size,
        raw_sha,
        attachment_shas,
        true,
    )
    .await
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
    parsed: ParsedMail,
    over_size: bool,
    raw_sha: &str,
    attachment_shas: &[Option<String>],
    may_acknowledge: bool,
) -> Result<Outcome, ServiceError> {
    let now = ctx.clock.now();
    let s = &ctx.settings;
    let facts = &parsed.facts;
    // Same mail again: by Message-ID, or by its bytes when it has none.
    let dedupe_key = match &facts.message_id {
        Some(m) => format!("mid:{}", m.as_str()),
        None => format!("sha:{}", sha256_hex(raw)),
    };
    if tx.dedupe_key_exists(&dedupe_key).await? {
        tracing::info!("duplicate of a mail already registered");
        return Ok(Outcome::Duplicate);
    }

    let automatic = automatic_reason(facts);
    let spam = is_spam(facts, &s.intake.spam_header, &s.intake.spam_value);
    let from_addr = ctx.from_address()?;

    // Bounces: RFC 3464 reports name our Message-ID; any bounce (Exchange's too) reaches our
    // per-message VERP address.
    let mut bounced = None;
    if automatic.is_some() {
        let ids: Vec<String> = facts
            .report_message_ids
            .iter()
            .map(|m| m.to_string())
            .collect();
        if facts.is_delivery_report
            && let Some(sent) = tx.sent_by_message_ids(&ids).await?
        {
            bounced = Some(sent);
        }
        if bounced.is_none() {
            for addr in delivery_addresses(facts) {
                if let Some(id) = parse_verp(&addr, &from_addr, &ctx.key)
                    && let Some(sent) = tx.sent_by_id(id).await?
                {
                    bounced = Some(sent);
                    break;
                }
            }
        }
    }

    let complainant = complainant_of(ctx, &parsed);
    let mut lookups = ThreadLookups {
        sender_is_staff: s.staff.is_staff(&facts.from),
        ..Default::default()
    };
    let thread_ids: Vec<String> = facts.thread_ids().iter().map(|m| m.to_string()).collect();
    lookups.by_header = match &bounced {
        Some(sent) => sent.complaint_id,
        None => tx.complaint_by_message_ids(&thread_ids).await?,
    };
    for r in ComplaintRef::find_in_subject(&facts.subject, &s.organisation.reference_prefix) {
        if let Some((id, who)) = tx.complaint_by_reference(&r.to_string()).await?
            && let Ok(who) = EmailAddress::parse(&who)
        {
            lookups.by_subject.push((r, id, who));
        }
    }
    let placement = place(&complainant.0, &lookups, automatic.as_ref(), spam);

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
        from_name: parsed.from_name.clone(),
        reply_to: facts.reply_to.as_ref().map(|a| a.to_string()),
        to_addresses: parsed
            .to
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        subject: facts.subject.clone(),
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

    match placement {
        Placement::Unfiled { reason } => {
            message.unfiled_reason = Some(reason.clone());
            let row = store_message(
                tx,
                &message,
                &parsed,
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
                &parsed,
                over_size,
                attachment_shas,
                s.limits.max_mail_bytes,
            )
            .await?;
            let reference = tx.complaint_reference(complaint_id).await?;
            if let Some(sent) = &bounced {
                let reason = bounce_reason(&parsed);
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
            Ok(Outcome::Threaded { reference })
        }
        Placement::NewComplaint { related } => {
            let (reference, acknowledged) = new_complaint(
                ctx,
                tx,
                &mut message,
                &parsed,
                complainant,
                related,
                over_size,
                attachment_shas,
                may_acknowledge && automatic.is_none(),
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
    let web_form = ctx
        .settings
        .intake
        .web_form_senders
        .iter()
        .filter_map(|a| EmailAddress::parse(a).ok())
        .any(|a| a == f.from);
    match (&f.reply_to, web_form) {
        (Some(r), true) => (r.clone(), None),
        _ => (f.from.clone(), parsed.from_name.clone()),
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
async fn store_message(
    tx: &mut dyn StoreTx,
    message: &NewMessage,
    parsed: &ParsedMail,
    over_size: bool,
    shas: &[Option<String>],
    limit: u64,
) -> Result<i64, ServiceError> {
    let row = tx.insert_message(message).await?;
    for (i, a) in parsed.attachments.iter().enumerate() {
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
            subject: &facts.subject,
            text: &parsed.text,
            related,
            actor: &actor,
            note: "",
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
    let withheld = if !may_acknowledge {
        Some("automatic mail is never answered".to_string())
    } else if s.intake.dmarc_fail_blocks_acknowledgement
        && dmarc_failed(facts, &s.intake.trusted_authserv_id)
    {
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
    )
    .await?;
    // The procedure's own first steps (notify the receiver, a serious alert) run whether or
    // not the complainant could be answered.
    super::scheduler::on_registered(ctx, tx, opened.id, now).await?;
    Ok((opened.reference, acknowledged))
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

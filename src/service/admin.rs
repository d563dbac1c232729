//! Admin operations on the register: release a quarantined mail, promote an unfiled one,
//! void a registration made by mistake. Each is one transaction: nothing is half-applied.

use super::ingest::{Outcome, register};
use super::{Context, ServiceError};
use crate::domain::types::{ComplaintRef, EmailAddress};
use crate::mail::parse::parse;
use crate::store::blobs::{ATTACHMENTS, RAW};

/// Retry a quarantined mail. When it still cannot be parsed it stays held, with the reason.
pub async fn release(ctx: &Context, id: i64) -> Result<Outcome, ServiceError> {
    let now = ctx.clock.now();
    let mut tx = ctx.store.begin().await?;
    let Some((source, key, sha, received_at)) = tx.quarantine_entry(id).await? else {
        return Err(ServiceError::Invalid(format!(
            "no held quarantine entry {id}"
        )));
    };
    let raw = ctx.blobs.get(RAW, &sha).await?;
    let parsed = match parse(&raw) {
        Ok(p) => p,
        Err(e) => {
            return Err(ServiceError::Invalid(format!(
                "quarantine entry {id} still cannot be read: {e}; it stays held"
            )));
        }
    };
    let over_size = raw.len() as u64 > ctx.settings.limits.max_mail_bytes;
    let mut shas = Vec::new();
    for a in &parsed.attachments {
        shas.push(if over_size {
            None
        } else {
            Some(ctx.blobs.put(ATTACHMENTS, &a.bytes).await?)
        });
    }
    ctx.blobs.sync().await?;
    let outcome = register(
        ctx,
        tx.as_mut(),
        &source,
        &key,
        received_at,
        &raw,
        &parsed,
        over_size,
        &sha,
        &shas,
        true,
    )
    .await?;
    tx.set_quarantine_status(id, "released", now).await?;
    tx.history(
        None,
        now,
        "admin",
        "quarantine_released",
        &format!("quarantine {id}: {outcome:?}"),
    )
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Register an unfiled mail as a complaint. It is acknowledged unless it is automatic mail
/// (or `acknowledge` is false).
pub async fn promote(ctx: &Context, id: i64, acknowledge: bool) -> Result<String, ServiceError> {
    let now = ctx.clock.now();
    let s = &ctx.settings;
    let mut tx = ctx.store.begin().await?;
    let Some(m) = tx.unfiled_message(id).await? else {
        return Err(ServiceError::Invalid(format!("no unfiled message {id}")));
    };
    let from =
        EmailAddress::parse(&m.from_address).map_err(|e| ServiceError::Invalid(e.to_string()))?;
    let web_form = s.typed.web_form_senders.contains(&from);
    let complainant = match (&m.reply_to, web_form) {
        (Some(r), true) => (
            EmailAddress::parse(r).map_err(|e| ServiceError::Invalid(e.to_string()))?,
            None,
        ),
        _ => (from.clone(), m.from_name.clone()),
    };
    let note = format!(" (unfiled message {id} promoted)");
    let opened = super::register::open_complaint(
        ctx,
        tx.as_mut(),
        super::register::Opening {
            received_at: m.received_at,
            complainant: &complainant,
            subject: &m.subject,
            text: &m.body_text,
            related: None,
            actor: "admin",
            note: &note,
            sent_to: &[],
            no_address: false,
        },
    )
    .await?;
    tx.file_message(id, opened.id).await?;
    let withheld = if !acknowledge {
        Some("promoted with --no-acknowledge".to_string())
    } else {
        m.automatic
            .as_ref()
            .map(|auto| format!("automatic mail is never answered ({auto})"))
    };
    let in_reply_to = m
        .message_id
        .as_deref()
        .and_then(|x| crate::domain::types::MessageId::parse(x).ok());
    super::register::acknowledge(
        ctx,
        tx.as_mut(),
        &opened,
        &complainant,
        in_reply_to.clone(),
        in_reply_to.into_iter().collect(),
        withheld,
        s.acknowledgement.quote_text,
    )
    .await?;
    super::scheduler::on_registered(ctx, tx.as_mut(), opened.id, now).await?;
    tx.commit().await?;
    Ok(opened.reference)
}

/// Void a registration: its number stays taken, it leaves the register's figures.
pub async fn void(ctx: &Context, reference: &str, reason: &str) -> Result<(), ServiceError> {
    if reason.trim().is_empty() {
        return Err(ServiceError::Invalid("a reason is required".into()));
    }
    let now = ctx.clock.now();
    let reference = ComplaintRef::parse(reference)
        .map_err(|e| ServiceError::Invalid(e.to_string()))?
        .to_string();
    let mut tx = ctx.store.begin().await?;
    let Some((id, _)) = tx.complaint_by_reference(&reference).await? else {
        return Err(ServiceError::Invalid(format!(
            "no complaint {reference} (or it is already voided)"
        )));
    };
    tx.void_complaint(id, reason, now).await?;
    tx.history(Some(id), now, "admin", "voided", reason).await?;
    tx.commit().await?;
    Ok(())
}

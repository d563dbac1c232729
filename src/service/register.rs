//! Registering a complaint and acknowledging it: shared by intake and `unfiled promote`, so
//! both number, record and answer a complaint the same way.

use chrono::{DateTime, Datelike, Utc};

use super::ingest::SYSTEM;
use super::outbound::{MailSpec, queue};
use super::{Context, ServiceError};
use crate::domain::language::detect_language;
use crate::domain::types::{ComplaintRef, EmailAddress, MessageId};
use crate::mail::compose::AutoKind;
use crate::store::{NewComplaint, StoreTx};

pub struct Opening<'a> {
    pub received_at: DateTime<Utc>,
    pub complainant: &'a (EmailAddress, Option<String>),
    pub subject: &'a str,
    pub text: &'a str,
    pub related: Option<i64>,
    /// Who registered it, for the history (`mail:ADDRESS`, `admin`).
    pub actor: &'a str,
    pub note: &'a str,
}

pub struct Opened {
    pub id: i64,
    pub reference: String,
    pub language: String,
}

/// Number and insert a complaint, record it, complete `received`.
pub async fn open_complaint(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    o: Opening<'_>,
) -> Result<Opened, ServiceError> {
    let s = &ctx.settings;
    let now = ctx.clock.now();
    let year = o.received_at.with_timezone(&s.time_zone()).year();
    let prefix = s.organisation.reference_prefix.to_ascii_uppercase();
    let language = detect_language(
        &format!("{}\n{}", o.subject, o.text),
        &s.organisation.language,
    );
    let serious = ctx.procedure.serious_keywords(o.subject, o.text);
    let number = tx.next_reference_number(&prefix, year).await?;
    let kind = ctx
        .procedure
        .current()
        .kinds
        .first()
        .cloned()
        .unwrap_or_else(|| "complaint".into());
    let id = tx
        .insert_complaint(
            &NewComplaint {
                prefix: prefix.clone(),
                year,
                received_at: o.received_at,
                complainant_address: o.complainant.0.to_string(),
                complainant_name: o.complainant.1.clone(),
                subject: if o.subject.is_empty() {
                    "(geen onderwerp)".into()
                } else {
                    o.subject.to_string()
                },
                kind,
                severity: if serious.is_empty() {
                    "normal".into()
                } else {
                    "serious".into()
                },
                serious_keywords: (!serious.is_empty()).then(|| serious.join(", ")),
                related_id: o.related,
                language: language.clone(),
                procedure_name: ctx.procedure.name().to_string(),
                procedure_version: ctx.procedure.version().to_string(),
                created_at: now,
            },
            number,
        )
        .await?;
    let reference = ComplaintRef::new(&prefix, year, number).to_string();
    tx.history(
        Some(id),
        now,
        o.actor,
        "registered",
        &format!(
            "{reference} from {} received {}: {}{}",
            o.complainant.0,
            crate::store::ts(o.received_at),
            o.subject,
            o.note
        ),
    )
    .await?;
    if !serious.is_empty() {
        tx.history(
            Some(id),
            now,
            SYSTEM,
            "serious",
            &format!("possibly serious: {}", serious.join(", ")),
        )
        .await?;
    }
    if let Some(rel) = o.related {
        let other = tx.complaint_reference(rel).await?;
        tx.history(
            Some(id),
            now,
            SYSTEM,
            "linked",
            &format!("subject names {other}; sender is not its complainant"),
        )
        .await?;
    }
    tx.complete_milestone(id, "received", o.received_at, SYSTEM)
        .await?;
    Ok(Opened {
        id,
        reference,
        language,
    })
}

/// Queue the acknowledgement unless `withheld` says why not or the per-address cap is reached.
/// Returns whether it was queued. Either way the outcome is in the history.
pub async fn acknowledge(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    opened: &Opened,
    complainant: &(EmailAddress, Option<String>),
    in_reply_to: Option<MessageId>,
    references: Vec<MessageId>,
    withheld: Option<String>,
) -> Result<bool, ServiceError> {
    let now = ctx.clock.now();
    let withheld = match withheld {
        Some(w) => Some(w),
        None => {
            let since = now - chrono::Duration::hours(24);
            let sent = tx
                .count_sent_to_since("acknowledgement", complainant.0.as_str(), since)
                .await?;
            let cap = i64::from(ctx.settings.limits.acknowledgements_per_address_per_day);
            (sent >= cap).then(|| {
                format!(
                    "{sent} acknowledgements to {} in 24 hours (cap {cap})",
                    complainant.0
                )
            })
        }
    };
    if let Some(reason) = withheld {
        tx.history(
            Some(opened.id),
            now,
            SYSTEM,
            "acknowledgement_withheld",
            &reason,
        )
        .await?;
        return Ok(false);
    }
    let context = super::scheduler::context_for(ctx, tx, opened.id).await?;
    let (_, message_id) = queue(
        ctx,
        tx,
        MailSpec {
            template: "acknowledgement",
            lang: &opened.language,
            context: &context,
            complaint_id: Some(opened.id),
            to: vec![(complainant.1.clone(), complainant.0.clone())],
            role: None,
            in_reply_to,
            references,
            auto: AutoKind::Replied,
            now,
        },
    )
    .await?;
    tx.history(
        Some(opened.id),
        now,
        SYSTEM,
        "message_out",
        &format!("acknowledgement queued to {} ({message_id})", complainant.0),
    )
    .await?;
    tx.complete_milestone(opened.id, "acknowledged", now, SYSTEM)
        .await?;
    Ok(true)
}

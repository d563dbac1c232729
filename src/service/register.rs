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
    /// The addresses the mail was sent to, for `[[routing]]` rules.
    pub sent_to: &'a [EmailAddress],
    /// Registered on behalf of someone without an email address (by phone, letter, at the
    /// desk): `complainant.0` is then the staff member who entered it, used only for routing,
    /// and no mail goes to the complainant.
    pub no_address: bool,
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
    let year = o.received_at.with_timezone(&s.typed.time_zone).year();
    let prefix = s.organisation.reference_prefix.to_ascii_uppercase();
    let language = detect_language(
        &format!("{}\n{}", o.subject, o.text),
        &s.organisation.language,
    );
    let serious = ctx.procedure.serious_keywords(o.subject, o.text);
    let number = tx.next_reference_number(&prefix, year).await?;
    let kind = ctx.procedure.current().default_kind();
    let id = tx
        .insert_complaint(
            &NewComplaint {
                prefix: prefix.clone(),
                year,
                received_at: o.received_at,
                complainant_address: if o.no_address {
                    String::new()
                } else {
                    o.complainant.0.to_string()
                },
                complainant_name: o.complainant.1.clone(),
                subject: if o.subject.is_empty() {
                    "(geen onderwerp)".into()
                } else {
                    o.subject.to_string()
                },
                kind: kind.clone(),
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
            if o.no_address {
                "(no address)".to_string()
            } else {
                o.complainant.0.to_string()
            },
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
    let facts = crate::domain::routing::RoutingFacts {
        from: &o.complainant.0,
        sent_to: o.sent_to,
        subject: o.subject,
        text: o.text,
        kind: &kind,
    };
    if let Some(m) = crate::domain::routing::route(&ctx.routing, &facts)
        && let Some(rule) = ctx.routing.get(m.rule)
    {
        if let Some(h) = &rule.handler {
            tx.set_field(id, "handler", Some(h.as_str())).await?;
        }
        if !rule.notify.is_empty() {
            tx.set_field(id, "routed_roles", Some(&rule.notify.join(",")))
                .await?;
        }
        tx.set_field(id, "routing_rule", Some(&m.name)).await?;
        tx.history(
            Some(id),
            now,
            SYSTEM,
            "routed",
            &format!(
                "routing rule {:?} ({}): handler {}, told: {}",
                m.name,
                m.because.join(", "),
                rule.handler
                    .as_ref()
                    .map(|h| h.as_str())
                    .unwrap_or("unchanged"),
                if rule.notify.is_empty() {
                    "the receiving role".to_string()
                } else {
                    rule.notify.join(", ")
                }
            ),
        )
        .await?;
    }
    Ok(Opened {
        id,
        reference,
        language,
    })
}

/// Queue the acknowledgement unless `withheld` says why not or the per-address cap is reached.
/// Returns whether it was queued. Either way the outcome is in the history. `quote` says
/// whether it may quote the complainant's text (`acknowledgement.quote_text`, and the From
/// was not shown forged by DMARC).
#[allow(clippy::too_many_arguments)]
pub async fn acknowledge(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    opened: &Opened,
    complainant: &(EmailAddress, Option<String>),
    in_reply_to: Option<MessageId>,
    references: Vec<MessageId>,
    withheld: Option<String>,
    quote: bool,
) -> Result<bool, ServiceError> {
    let now = ctx.clock.now();
    let limits = &ctx.settings.limits;
    let recipient_key = complainant.0.mailbox_key();
    let withheld = match withheld {
        Some(w) => Some(w),
        None => {
            let since = now - chrono::Duration::hours(24);
            let sent = tx
                .count_acknowledgements_to_key_since(&recipient_key, since)
                .await?;
            let cap = i64::from(limits.acknowledgements_per_address_per_day);
            (sent >= cap).then(|| {
                format!(
                    "{sent} acknowledgements to {recipient_key} in 24 hours (cap {cap}; \
                     +tags, Gmail dots and googlemail.com count as one address)",
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
    let not_before = hourly_release(ctx, tx, now).await?;
    let mut context = super::scheduler::context_for(ctx, tx, opened.id).await?;
    if !quote && let Some(c) = context.get_mut("complaint") {
        c["summary"] = serde_json::Value::String(String::new());
    }
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
            not_before,
            recipient_key: Some(recipient_key),
        },
    )
    .await?;
    tx.record_acknowledgement_release(
        not_before.unwrap_or(now),
        i64::from(limits.acknowledgements_per_hour.max(1)),
    )
    .await?;
    let held = match not_before {
        Some(t) => format!(
            "; held until {} by the hourly cap ({} per hour)",
            crate::store::ts(t),
            limits.acknowledgements_per_hour
        ),
        None => String::new(),
    };
    tx.history(
        Some(opened.id),
        now,
        SYSTEM,
        "message_out",
        &format!(
            "acknowledgement queued to {} ({message_id}){held}",
            complainant.0
        ),
    )
    .await?;
    tx.complete_milestone(opened.id, "acknowledged", now, SYSTEM)
        .await?;
    Ok(true)
}

/// When the next acknowledgement may go out under `limits.acknowledgements_per_hour`: `None`
/// for at once. Past the cap it waits in the outbox (release times spaced so no hour holds
/// more than the cap); the admin is told once a day while that happens.
async fn hourly_release(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ServiceError> {
    let cap = i64::from(ctx.settings.limits.acknowledgements_per_hour.max(1));
    let hour = chrono::Duration::hours(1);
    let Some(nth) = tx
        .nth_latest_acknowledgement_release(now - hour, cap)
        .await?
    else {
        return Ok(None);
    };
    let release = nth + hour;
    if release <= now {
        return Ok(None);
    }
    let day = now.date_naive().and_hms_opt(0, 0, 0).map(|d| d.and_utc());
    if let Some(day) = day
        && tx
            .mark_job_done("acknowledgement_cap_alert", day, now)
            .await?
    {
        let context = serde_json::json!({
            "organisation": { "name": ctx.settings.organisation.name },
            "alert": {
                "subject": "Veel ontvangstbevestigingen: limiet bereikt / acknowledgement cap reached",
                "text": format!(
                    "More than {cap} acknowledgements in one hour: the rest wait in the outbox and go out at {cap} per hour (limits.acknowledgements_per_hour). This can be a flood of mail with forged senders; check `klachtd list` and `klachtd outbox list`. You are told once a day while it lasts."
                ),
            },
        });
        super::outbound::queue_to_role(ctx, tx, "admin", "operational_alert", &context, None, now)
            .await?;
        tx.history(
            None,
            now,
            SYSTEM,
            "alert",
            "admin told: hourly acknowledgement cap reached",
        )
        .await?;
    }
    Ok(Some(release))
}

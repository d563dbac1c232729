//! Render a template and queue the mail in the outbox, inside the caller's transaction, so a
//! complaint and the mail it triggers commit together (transactional outbox).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Context, ServiceError};
use crate::domain::classify::verp_address;
use crate::domain::token::{self, TokenError, TokenPurpose};
use crate::domain::types::{ComplaintRef, EmailAddress, MessageId};
use crate::mail::compose::{AutoKind, OutgoingMail, Parts, build_with, new_message_id};
use crate::store::{NewOutbox, StoreTx};

pub struct MailSpec<'a> {
    pub template: &'a str,
    pub lang: &'a str,
    pub context: &'a Value,
    pub complaint_id: Option<i64>,
    pub to: Vec<(Option<String>, EmailAddress)>,
    pub role: Option<&'a str>,
    pub in_reply_to: Option<MessageId>,
    pub references: Vec<MessageId>,
    pub auto: AutoKind,
    pub now: DateTime<Utc>,
    /// Held in the outbox until then (the hourly acknowledgement cap).
    pub not_before: Option<DateTime<Utc>>,
    /// The normalised recipient a per-address cap counts.
    pub recipient_key: Option<String>,
}

/// Returns the outbox id and the Message-ID fixed for this mail.
pub async fn queue(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    spec: MailSpec<'_>,
) -> Result<(i64, MessageId), ServiceError> {
    let rendered = ctx
        .templates
        .render(spec.lang, spec.template, spec.context)?;
    queue_rendered(ctx, tx, spec, rendered, &Parts::default()).await
}

/// [`queue`] of a mail already rendered, with inline images and attachments (the reports).
pub async fn queue_rendered(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    spec: MailSpec<'_>,
    rendered: crate::mail::templates::Rendered,
    parts: &Parts,
) -> Result<(i64, MessageId), ServiceError> {
    let from = ctx.from_address()?;
    let reference = match spec.complaint_id {
        Some(id) => Some(
            ComplaintRef::parse(&tx.complaint_reference(id).await?)
                .map_err(|e| ServiceError::Invalid(e.to_string()))?,
        ),
        None => None,
    };
    let (message_id, reply_to) = answerable_ids(ctx, &from, reference.as_ref(), &spec.to)?;
    let mail = OutgoingMail {
        from_name: ctx.from_name(),
        from: from.clone(),
        to: spec.to.clone(),
        reply_to,
        subject: rendered.subject.clone(),
        text: rendered.text,
        html: rendered.html,
        message_id: message_id.clone(),
        in_reply_to: spec.in_reply_to,
        references: spec.references,
        date: spec.now,
        auto: spec.auto,
    };
    let raw = build_with(&mail, parts)?;
    let id = tx.reserve_outbox_id().await?;
    tx.enqueue(&NewOutbox {
        id,
        envelope_from: verp_address(&from, id, &ctx.key),
        complaint_id: spec.complaint_id,
        template: spec.template.to_string(),
        message_id: message_id.as_str().to_string(),
        recipients: spec.to.iter().map(|(_, a)| a.to_string()).collect(),
        recipient_role: spec.role.map(str::to_string),
        subject: rendered.subject,
        raw,
        created_at: spec.now,
        not_before: spec.not_before,
        recipient_key: spec.recipient_key,
    })
    .await?;
    Ok((id, message_id))
}

/// The Message-ID and Reply-To of a mail. A mail about a complaint to one recipient is made
/// answerable: its Reply-To carries a token bound to the complaint and that recipient, and so
/// does its Message-ID (a reply that keeps only In-Reply-To/References is recognised too).
/// Other mail gets a plain signed Message-ID.
fn answerable_ids(
    ctx: &Context,
    service: &EmailAddress,
    reference: Option<&ComplaintRef>,
    to: &[(Option<String>, EmailAddress)],
) -> Result<(MessageId, Option<EmailAddress>), ServiceError> {
    let domain = &ctx.settings.organisation.mail_domain;
    let (Some(reference), [(_, recipient)]) = (reference, to) else {
        return Ok((new_message_id(domain, &ctx.key)?, None));
    };
    let nonce = rand::random::<u64>();
    let message_id = token::message_id(domain, reference, recipient, nonce, &ctx.key)
        .map_err(|e| ServiceError::Invalid(e.to_string()))?;
    let purpose = TokenPurpose::Reply {
        reference: reference.clone(),
        recipient: recipient.clone(),
    };
    let reply_to = match token::reply_address(service, ctx.separator(), &purpose, &ctx.key) {
        Ok(a) => Some(a),
        // `klachtd check` refuses a service address too long for references up to 9999; a
        // mail must still go out (its Message-ID is tokened).
        Err(e @ TokenError::TooLong { .. }) => {
            tracing::warn!(error = %e, "mail sent without a tokened Reply-To");
            None
        }
        Err(e) => return Err(ServiceError::Invalid(e.to_string())),
    };
    Ok((message_id, reply_to))
}

/// What a staff mail adds to its context for its one recipient: the personal intake address
/// and the most used commands, for the footer.
pub fn staff_context(ctx: &Context, context: &Value, recipient: &EmailAddress) -> Value {
    let mut context = context.clone();
    let lang = &ctx.settings.organisation.language;
    let intake = ctx.from_address().ok().and_then(|service| {
        token::reply_address(
            &service,
            ctx.separator(),
            &TokenPurpose::Intake {
                staff: recipient.clone(),
            },
            &ctx.key,
        )
        .ok()
    });
    // A digest line is answered on its own: each carries a reply address bound to that
    // complaint and this recipient, as the complaint's own mails do.
    if let Some(items) = context
        .get_mut("digest")
        .and_then(|d| d.get_mut("items"))
        .and_then(Value::as_array_mut)
    {
        for item in items {
            let reference = item
                .get("reference")
                .and_then(Value::as_str)
                .and_then(|r| ComplaintRef::parse(r).ok());
            let address = reference.and_then(|reference| {
                let service = ctx.from_address().ok()?;
                token::reply_address(
                    &service,
                    ctx.separator(),
                    &TokenPurpose::Reply {
                        reference,
                        recipient: recipient.clone(),
                    },
                    &ctx.key,
                )
                .ok()
            });
            if let (Some(a), Value::Object(item)) = (address, item) {
                item.insert("reply_address".into(), Value::String(a.to_string()));
            }
        }
    }
    if let Value::Object(map) = &mut context {
        map.insert(
            "staff".into(),
            serde_json::json!({
                "address": recipient.as_str(),
                "intake_address": intake.map(|a| a.to_string()),
                "commands": crate::domain::command::footer_text(lang),
            }),
        );
    }
    context
}

/// Queue an operational mail to every address of a staff role (e.g. `admin`, `receiver`).
/// Returns how many were queued (0 when the role has no address: then it is only logged).
pub async fn queue_to_role(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    role: &str,
    template: &str,
    context: &Value,
    complaint_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    let to = ctx.settings.typed.staff(role).to_vec();
    if to.is_empty() {
        tracing::warn!(role, template, "no address for role: alert only logged");
        return Ok(0);
    }
    queue_to_staff(ctx, tx, role, &to, template, context, complaint_id, now).await
}

/// Queue one generated staff mail to `to`, who hold `role` (the role is recorded with it).
#[allow(clippy::too_many_arguments)]
pub async fn queue_to_staff(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    role: &str,
    to: &[EmailAddress],
    template: &str,
    context: &Value,
    complaint_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    queue_to_staff_at(
        ctx,
        tx,
        role,
        to,
        template,
        context,
        complaint_id,
        now,
        None,
    )
    .await
}

/// [`queue_to_staff`], held in the outbox until `not_before` (a working moment) when given.
#[allow(clippy::too_many_arguments)]
pub async fn queue_to_staff_at(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    role: &str,
    to: &[EmailAddress],
    template: &str,
    context: &Value,
    complaint_id: Option<i64>,
    now: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
) -> Result<usize, ServiceError> {
    // One mail per person: each carries tokens bound to its own recipient, so a reply proves
    // which staff member it answers for.
    for recipient in to {
        let context = staff_context(ctx, context, recipient);
        queue(
            ctx,
            tx,
            MailSpec {
                template,
                lang: &ctx.settings.organisation.language,
                context: &context,
                complaint_id,
                to: vec![(None, recipient.clone())],
                role: Some(role),
                in_reply_to: None,
                references: vec![],
                auto: AutoKind::Generated,
                now,
                not_before,
                recipient_key: None,
            },
        )
        .await?;
    }
    Ok(to.len())
}

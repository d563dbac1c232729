//! The scheduler: runs each complaint's due procedure actions exactly once (persisted in
//! `actions_done`, in the same transaction as the mail it queues), catches up after downtime
//! with one late run per missed action, keeps mail to people within working hours, and fires
//! the periodic jobs (the daily digest, the daily retention purge). Also the staff steps
//! (`set`, `complete`) that move a complaint along, with the validation the mail commands will
//! share.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::outbound::{MailSpec, queue, queue_to_staff};
use super::{Context, ServiceError};
use crate::domain::calendar::{at_local, end_of_day, local_date};
use crate::domain::complaint::{Change, Complaint, Effect, Event, Stored, lifecycle};
use crate::domain::digest;
use crate::domain::procedure::{
    Milestone, PlannedAction, Procedure, Progress, Recipients, SUBJECT_PERSON_ROLE, Trigger,
};
use crate::domain::types::{ComplaintRef, EmailAddress, MessageId};
use crate::mail::compose::AutoKind;
use crate::store::{ComplaintState, StoreTx};

pub const SCHEDULER: &str = "scheduler";

/// One action the scheduler ran, or would run (`due`).
#[derive(Debug, Clone, Serialize)]
pub struct DueAction {
    pub reference: String,
    pub key: String,
    pub action: String,
    pub template: Option<String>,
    pub to: Vec<String>,
    pub due_at: String,
    pub concerns: Option<String>,
    pub deadline: Option<String>,
    /// What happened (tick) or will happen (due): `sent`, `skipped: ...`, `waits for working hours`.
    pub result: String,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct TickReport {
    pub actions: Vec<DueAction>,
    pub jobs: Vec<String>,
}

fn progress_of(state: &ComplaintState, completed: BTreeMap<String, DateTime<Utc>>) -> Progress {
    Progress {
        received_at: state.received_at,
        completed,
        round: state.round,
        serious: state.severity == "serious",
        extended_weeks: state.extended_weeks,
    }
}

/// Everything a template may use (see templates/README.md), filled for this complaint.
pub fn template_context(
    ctx: &Context,
    state: &ComplaintState,
    procedure: &Procedure,
    progress: &Progress,
    action: Option<&PlannedAction>,
    lang: &str,
) -> Value {
    let rt = &ctx.procedure;
    let deadlines = rt.deadline_map(procedure, progress, lang);
    let label = |m: &str| {
        Milestone::parse(m)
            .map(|m| m.label(lang).to_string())
            .unwrap_or_else(|| m.to_string())
    };
    let (due_date, concerns, deadline) = match action {
        Some(a) => (
            rt.format_day(a.due_at, lang),
            a.concerns.as_deref().map(label).unwrap_or_default(),
            a.deadline
                .map(|d| crate::domain::calendar::format_date(d, lang))
                .unwrap_or_default(),
        ),
        None => (String::new(), String::new(), String::new()),
    };
    // The acknowledgement promises a delay notice before the term it names passes: the term
    // that can be extended. Passing it without one breaks that promise.
    let promised = procedure.extensible().map(|(m, _)| m);
    let promise_broken = action.is_some_and(|a| {
        progress.extended_weeks == 0
            && promised.is_some_and(|m| a.concerns.as_deref() == Some(m.as_str()))
            && procedure
                .actions
                .iter()
                .any(|x| x.id == a.action_id && matches!(x.trigger, Trigger::WhenMissed(_)))
    });
    let extend_command = if lang == "en" {
        format!("klachtd set {} extension WEEKS", state.reference)
    } else {
        format!("klachtd set {} extension WEKEN", state.reference)
    };
    // The deadline an extension moves, for the delay notices.
    let extension_due = promised
        .and_then(|m| deadlines.get(m.as_str()))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let extension_what = promised.map(|m| m.label(lang)).unwrap_or_default();
    let reply_hint = if lang == "en" {
        format!(
            "Reply to this email and keep {} in the subject.",
            state.reference
        )
    } else {
        format!(
            "Antwoord op deze e-mail en laat {} in het onderwerp staan.",
            state.reference
        )
    };
    let verdict_links = verdict_links(ctx, state, lang);
    json!({
        "verdict": verdict_links,
        "organisation": { "name": ctx.settings.organisation.name },
        "complaint": {
            "reference": state.reference,
            "subject": state.subject,
            "received_date": rt.format_day(state.received_at, lang),
            "summary": summary(&state.text),
            "text": state.text,
        },
        "complainant": {
            "name": state.complainant_name.clone().unwrap_or_default(),
            "address": state.complainant_address,
            // How a letter greets them: "Janssen, Ruud" is Ruud Janssen; a department or an
            // address is no name to greet (the template then writes "Geachte heer, mevrouw").
            "greeting": EmailAddress::parse(&state.complainant_address)
                .ok()
                .and_then(|a| crate::domain::greeting::greeting_name(state.complainant_name.as_deref(), &a))
                .unwrap_or_default(),
        },
        "procedure": { "title": procedure.title },
        "deadlines": deadlines,
        "action": {
            "due_date": due_date,
            "concerns": concerns,
            "deadline": deadline,
            "promise_broken": promise_broken,
            "extended": progress.extended_weeks > 0,
            "extend_command": extend_command,
        },
        "handler": { "name": state.handler.clone().unwrap_or_default(), "address": state.handler.clone().unwrap_or_default() },
        "subject_person": { "address": state.subject_person.clone().unwrap_or_default() },
        "extension": { "due": extension_due, "what": extension_what },
        "serious": { "keywords": state.serious_keywords.clone().unwrap_or_default() },
        "solution": { "text": state.solution.clone().unwrap_or_default() },
        "digest": { "items": [] },
        "links": { "reply_hint": reply_hint },
    })
}

/// The complainant's two answers to a proposed solution: mailto links to tokened addresses
/// with a prepared subject (RFC 6068), so one click answers and nothing needs reading.
fn verdict_links(ctx: &Context, state: &ComplaintState, lang: &str) -> Value {
    let (Ok(service), Ok(reference), Ok(complainant)) = (
        ctx.from_address(),
        ComplaintRef::parse(&state.reference),
        EmailAddress::parse(&state.complainant_address),
    ) else {
        return json!({});
    };
    let link = |agree: bool| {
        let purpose = crate::domain::token::TokenPurpose::Verdict {
            reference: reference.clone(),
            agree,
            recipient: complainant.clone(),
        };
        let address = match crate::domain::token::reply_address(
            &service,
            ctx.separator(),
            &purpose,
            &ctx.key,
        ) {
            Ok(a) => a,
            Err(e) => {
                // `klachtd check` refuses such a configuration; a reference past 9999
                // can still be too long.
                tracing::warn!(error = %e, "solution mail without its verdict links");
                return None;
            }
        };
        let word = match (agree, lang == "en") {
            (true, false) => "Akkoord",
            (false, false) => "Niet akkoord",
            (true, true) => "Agree",
            (false, true) => "Disagree",
        };
        let subject = format!("{word} [{reference}]");
        Some((
            address.to_string(),
            format!("mailto:{address}?subject={}", mailto_encode(&subject)),
        ))
    };
    match (link(true), link(false)) {
        (Some((agree_address, agree_mailto)), Some((disagree_address, disagree_mailto))) => json!({
            "agree_address": agree_address,
            "agree_mailto": agree_mailto,
            "disagree_address": disagree_address,
            "disagree_mailto": disagree_mailto,
        }),
        _ => json!({}),
    }
}

/// Percent-encoding for a mailto header value (RFC 6068 section 2: everything but
/// unreserved characters).
fn mailto_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The first lines of a mail, for summaries in mail to staff and the complainant.
fn summary(text: &str) -> String {
    let mut out = String::new();
    for line in text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .take(8)
    {
        if out.len() + line.len() > 600 {
            out.push_str(" …");
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    out
}

/// Load a complaint, its procedure and progress inside `tx`.
pub(crate) async fn load(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    complaint_id: i64,
) -> Result<(ComplaintState, Arc<Procedure>, Progress), ServiceError> {
    let state = tx
        .complaint_state(complaint_id)
        .await?
        .ok_or_else(|| ServiceError::Invalid(format!("no complaint {complaint_id}")))?;
    let procedure = ctx
        .procedure
        .for_complaint(tx, &state.procedure_name, &state.procedure_version)
        .await?;
    let completed = tx.milestones(complaint_id).await?;
    let progress = progress_of(&state, completed);
    Ok((state, procedure, progress))
}

/// The acknowledgement context for a complaint just inserted in `tx`.
pub async fn context_for(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    complaint_id: i64,
) -> Result<Value, ServiceError> {
    let (state, procedure, progress) = load(ctx, tx, complaint_id).await?;
    Ok(template_context(
        ctx,
        &state,
        &procedure,
        &progress,
        None,
        &state.language,
    ))
}

pub(crate) fn in_working_hours(ctx: &Context, now: DateTime<Utc>) -> bool {
    let rt = &ctx.procedure;
    let day = local_date(now, rt.tz);
    rt.calendar.is_working_day(day)
        && now >= at_local(day, rt.hours.0, rt.tz)
        && now < at_local(day, rt.hours.1, rt.tz)
}

/// The next moment mail to people may go out, at or after `t`.
pub(crate) fn next_working_moment(ctx: &Context, t: DateTime<Utc>) -> DateTime<Utc> {
    if in_working_hours(ctx, t) {
        return t;
    }
    let rt = &ctx.procedure;
    let mut day = local_date(t, rt.tz);
    for _ in 0..400 {
        let start = at_local(day, rt.hours.0, rt.tz);
        if rt.calendar.is_working_day(day) && start >= t {
            return start;
        }
        day = day.succ_opt().unwrap_or(day);
    }
    t
}

/// When this planned action may actually run: the planner already moved mail to people to
/// a working moment (see [`Procedure::plan`]).
fn runnable_at(a: &PlannedAction) -> DateTime<Utc> {
    a.due_at
}

fn is_reminder(procedure: &Procedure, action_id: &str) -> bool {
    procedure
        .actions
        .iter()
        .any(|a| a.id == action_id && matches!(a.trigger, Trigger::Before { .. }))
}

/// Run every due action of one complaint inside `tx` (or, with `dry_run`, only say what would run).
pub async fn run_for_complaint(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    complaint_id: i64,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Vec<DueAction>, ServiceError> {
    let (state, procedure, progress) = load(ctx, tx, complaint_id).await?;
    if state.status != "open" {
        return Ok(vec![]);
    }
    let done = tx.actions_done(complaint_id).await?;
    let plan = procedure.plan(
        &ctx.procedure.calendar,
        ctx.procedure.tz,
        ctx.procedure.hours,
        &progress,
        ctx.settings.schedule.notify_staff_at_once,
    );
    let mut done = done;
    let mut milestones_changed = false;
    // Only a step that follows handling can finish the procedure here; a complaint staff
    // reopened by hand is not closed again by an unrelated action.
    let mut ran_on_handled = false;
    let mut out = Vec::new();
    for a in &plan {
        if done.contains(&a.key) || runnable_at(a) > now {
            continue;
        }
        let mut item = DueAction {
            reference: state.reference.clone(),
            key: a.key.clone(),
            action: a.action_id.clone(),
            template: a.send.clone(),
            to: match &a.recipients {
                Recipients::Complainant => vec![state.complainant_address.clone()],
                Recipients::Roles(r) => r.clone(),
            },
            due_at: crate::store::ts(a.due_at),
            concerns: a.concerns.clone(),
            deadline: a.deadline.map(|d| d.to_string()),
            result: "due".into(),
        };
        // The acknowledgement belongs to intake (cap, DMARC and automatic-mail rules live there).
        let skip = if a.send.as_deref() == Some("acknowledgement") {
            Some("handled at intake".to_string())
        } else if is_reminder(&procedure, &a.action_id)
            && a.deadline
                .is_some_and(|d| end_of_day(d, ctx.procedure.tz) <= now)
        {
            Some("deadline already passed; the escalation covers it".to_string())
        } else {
            None
        };
        if dry_run {
            item.result = skip
                .map(|s| format!("skip: {s}"))
                .unwrap_or_else(|| "will run".into());
            out.push(item);
            continue;
        }
        let first = tx
            .mark_action_done(complaint_id, &a.key, a.due_at, now)
            .await?;
        // Done now either way: by us, or by another process just before.
        done.insert(a.key.clone());
        if !first {
            continue;
        }
        if let Some(reason) = skip {
            tx.history(
                Some(complaint_id),
                now,
                SCHEDULER,
                "action_skipped",
                &format!("{}: {reason}", a.action_id),
            )
            .await?;
            item.result = format!("skipped: {reason}");
            out.push(item);
            continue;
        }
        item.result = execute(ctx, tx, &state, &procedure, &progress, a, now).await?;
        milestones_changed |= a.completes.is_some();
        ran_on_handled |= procedure
            .actions
            .iter()
            .any(|x| x.id == a.action_id && matches!(x.trigger, Trigger::On(Milestone::Handled)));
        out.push(item);
    }
    if !dry_run {
        // What this step did moves the complaint's next time: store it, so the scans read an
        // index instead of planning every open complaint. A completed milestone changes the
        // plan itself.
        let plan = if milestones_changed {
            let progress = progress_of(&state, tx.milestones(complaint_id).await?);
            procedure.plan(
                &ctx.procedure.calendar,
                ctx.procedure.tz,
                ctx.procedure.hours,
                &progress,
                ctx.settings.schedule.notify_staff_at_once,
            )
        } else {
            plan
        };
        tx.set_next_due(complaint_id, next_due(&plan, &done))
            .await?;
        // An outcome copy that waited for working hours was the last step: close now.
        if ran_on_handled
            && crate::domain::complaint::procedure_complete(
                &procedure,
                &progress_of(&state, tx.milestones(complaint_id).await?),
                &plan,
                &done,
            )
        {
            close(tx, complaint_id, now, SCHEDULER).await?;
        }
    }
    Ok(out)
}

async fn close(
    tx: &mut dyn StoreTx,
    id: i64,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<(), ServiceError> {
    tx.set_field(id, "status", Some("closed")).await?;
    tx.history(Some(id), now, actor, "closed", "procedure complete")
        .await?;
    Ok(())
}

/// The earliest moment a planned action not yet done may run.
fn next_due(
    plan: &[PlannedAction],
    done: &std::collections::HashSet<String>,
) -> Option<DateTime<Utc>> {
    plan.iter()
        .filter(|a| !done.contains(&a.key))
        .map(runnable_at)
        .min()
}

/// Carry out one planned action: queue its mail(s), complete its milestone, record it.
async fn execute(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    state: &ComplaintState,
    procedure: &Procedure,
    progress: &Progress,
    a: &PlannedAction,
    now: DateTime<Utc>,
) -> Result<String, ServiceError> {
    let late = now - a.due_at > Duration::hours(1);
    let when = if late {
        format!(
            "due {}, run late at {}",
            crate::store::ts(a.due_at),
            crate::store::ts(now)
        )
    } else {
        format!("due {}", crate::store::ts(a.due_at))
    };
    let mut sent_to = Vec::new();
    if let Some(template) = &a.send {
        // Dates and labels follow the language of the mail: the complainant's for theirs,
        // the organisation's for staff.
        let staff_lang = ctx.settings.organisation.language.as_str();
        match &a.recipients {
            Recipients::Complainant => {
                let context =
                    template_context(ctx, state, procedure, progress, Some(a), &state.language);
                let to = EmailAddress::parse(&state.complainant_address)
                    .map_err(|e| ServiceError::Invalid(e.to_string()))?;
                send_to_complainant(ctx, tx, state, template, &context, now).await?;
                sent_to.push(to.to_string());
            }
            Recipients::Roles(roles) => {
                let context =
                    template_context(ctx, state, procedure, progress, Some(a), staff_lang);
                let mut reached: Vec<String> = Vec::new();
                for role in roles {
                    let mut role = role.as_str();
                    let mut addresses = role_addresses(ctx, state, role);
                    if addresses.is_empty() && role == SUBJECT_PERSON_ROLE {
                        tx.history(
                            Some(state.id),
                            now,
                            SCHEDULER,
                            "action_unaddressed",
                            &format!(
                                "{}: no person complained about is recorded (klachtd set {} subject_person ADDRESS)",
                                a.action_id, state.reference
                            ),
                        )
                        .await?;
                        continue;
                    }
                    if addresses.is_empty() && role != "receiver" {
                        // Someone must hear of it: a role with no address on this complaint
                        // (no handler assigned yet) falls back to the receiving role.
                        let fallback = role_addresses(ctx, state, "receiver");
                        tx.history(
                            Some(state.id),
                            now,
                            SCHEDULER,
                            "action_fallback",
                            &format!(
                                "{}: role {role} has no address on this complaint; sent to the receiving role instead",
                                a.action_id
                            ),
                        )
                        .await?;
                        role = "receiver";
                        addresses = fallback;
                    }
                    // One mail per person, also when a fallback lands on a role already listed.
                    addresses.retain(|x| !reached.contains(&x.mailbox_key()));
                    if addresses.is_empty() {
                        if role_addresses(ctx, state, role).is_empty() {
                            tx.history(
                                Some(state.id),
                                now,
                                SCHEDULER,
                                "action_unaddressed",
                                &format!("{}: role {role} has no address", a.action_id),
                            )
                            .await?;
                        }
                        continue;
                    }
                    reached.extend(addresses.iter().map(|x| x.mailbox_key()));
                    queue_to_staff(
                        ctx,
                        tx,
                        role,
                        &addresses,
                        template,
                        &context,
                        Some(state.id),
                        now,
                    )
                    .await?;
                    sent_to.extend(addresses.iter().map(|x| format!("{role}:{x}")));
                }
            }
        }
    }
    if let Some(m) = &a.completes {
        tx.complete_milestone(state.id, m, now, SCHEDULER).await?;
        super::health::record_completion(ctx, procedure, progress, m, now);
    }
    let detail = format!(
        "{} ({} to {}) {when}",
        a.action_id,
        a.send.as_deref().unwrap_or("no mail"),
        if sent_to.is_empty() {
            "nobody".to_string()
        } else {
            sent_to.join(", ")
        }
    );
    tx.history(Some(state.id), now, SCHEDULER, "action", &detail)
        .await?;
    Ok(if late {
        "sent late".into()
    } else {
        "sent".into()
    })
}

fn role_addresses(ctx: &Context, state: &ComplaintState, role: &str) -> Vec<EmailAddress> {
    if role == SUBJECT_PERSON_ROLE {
        return state
            .subject_person
            .as_deref()
            .and_then(|h| EmailAddress::parse(h).ok())
            .into_iter()
            .collect();
    }
    if role == "receiver" && !state.routed_roles.is_empty() {
        // A [[routing]] rule named who hears in place of the general receiver.
        let mut out: Vec<EmailAddress> = state
            .routed_roles
            .iter()
            .flat_map(|r| ctx.settings.typed.staff(r).to_vec())
            .collect();
        out.dedup();
        if !out.is_empty() {
            return out;
        }
    }
    let configured = ctx.settings.typed.staff(role).to_vec();
    if role == "handler" && configured.is_empty() {
        // The handler is per complaint: whoever `set REF handler ADDRESS` named.
        return state
            .handler
            .as_deref()
            .and_then(|h| EmailAddress::parse(h).ok())
            .into_iter()
            .collect();
    }
    configured
}

async fn send_to_complainant(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    state: &ComplaintState,
    template: &str,
    context: &Value,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    if state.complainant_address.is_empty() {
        // Registered on behalf of someone without an email address: a person reaches them
        // another way; the history says what would have gone out.
        tx.history(
            Some(state.id),
            now,
            SCHEDULER,
            "action_unaddressed",
            &format!(
                "{template}: the complainant has no email address; reach them by phone or letter"
            ),
        )
        .await?;
        return Ok(());
    }
    let to = EmailAddress::parse(&state.complainant_address)
        .map_err(|e| ServiceError::Invalid(e.to_string()))?;
    let first = state
        .first_message_id
        .as_deref()
        .and_then(|m| MessageId::parse(m).ok());
    let (_, mid) = queue(
        ctx,
        tx,
        MailSpec {
            template,
            lang: &state.language,
            context,
            complaint_id: Some(state.id),
            to: vec![(state.complainant_name.clone(), to.clone())],
            role: None,
            in_reply_to: first.clone(),
            references: first.into_iter().collect(),
            auto: AutoKind::Generated,
            now,
            not_before: None,
            recipient_key: None,
        },
    )
    .await?;
    tx.history(
        Some(state.id),
        now,
        SCHEDULER,
        "message_out",
        &format!("{template} queued to {to} ({mid})"),
    )
    .await?;
    Ok(())
}

/// What one incoming message on a complaint tells staff.
pub struct MessageNotice<'a> {
    pub template: &'a str,
    pub from: &'a EmailAddress,
    pub subject: &'a str,
    pub text: &'a str,
    /// Sent once per complaint under this key (in `actions_done`), or every time when None.
    pub once_key: Option<&'a str>,
}

/// Notices of replies per complaint per day: a sender who floods a complaint with replies
/// (or forges the complainant's From) cannot flood staff; the replies are all kept.
pub const REPLY_NOTICES_PER_DAY: u32 = 5;

/// Tell the complaint's handler (or, with none assigned, the receiving role) about a message
/// that came in on it, at the next working moment unless the complaint is serious. Returns
/// whether a mail was queued.
pub async fn tell_staff_about_message(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    complaint_id: i64,
    notice: MessageNotice<'_>,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    if let Some(key) = notice.once_key
        && !tx.mark_action_done(complaint_id, key, now, now).await?
    {
        return Ok(false);
    }
    if notice.once_key.is_none() {
        let day = local_date(now, ctx.procedure.tz);
        let mut slot = false;
        for n in 1..=REPLY_NOTICES_PER_DAY {
            let key = format!("{}:{day}:{n}", notice.template);
            if tx.mark_action_done(complaint_id, &key, now, now).await? {
                slot = true;
                break;
            }
        }
        if !slot {
            tx.history(
                Some(complaint_id),
                now,
                SCHEDULER,
                "notice_capped",
                &format!(
                    "{}: already {REPLY_NOTICES_PER_DAY} today; the message is kept, staff are not told again until tomorrow",
                    notice.template
                ),
            )
            .await?;
            return Ok(false);
        }
    }
    let (state, procedure, progress) = load(ctx, tx, complaint_id).await?;
    // The handler, else the receiving role; telling the sender about their own mail helps
    // nobody (an absent receiver's auto-reply goes to the director).
    let (role, to) = ["handler", "receiver", "director"]
        .into_iter()
        .map(|role| {
            let mut to = role_addresses(ctx, &state, role);
            to.retain(|a| a.mailbox_key() != notice.from.mailbox_key());
            (role, to)
        })
        .find(|(_, to)| !to.is_empty())
        .unwrap_or(("receiver", Vec::new()));
    if to.is_empty() {
        tx.history(
            Some(complaint_id),
            now,
            SCHEDULER,
            "action_unaddressed",
            &format!("{}: no handler and no receiving role", notice.template),
        )
        .await?;
        return Ok(false);
    }
    let lang = ctx.settings.organisation.language.clone();
    let mut context = template_context(ctx, &state, &procedure, &progress, None, &lang);
    context["message"] = json!({
        "from": notice.from.as_str(),
        "subject": notice.subject,
        "text": summary(notice.text),
    });
    let not_before = (state.severity != "serious" && !ctx.settings.schedule.notify_staff_at_once)
        .then(|| next_working_moment(ctx, now))
        .filter(|t| *t > now);
    super::outbound::queue_to_staff_at(
        ctx,
        tx,
        role,
        &to,
        notice.template,
        &context,
        Some(complaint_id),
        now,
        not_before,
    )
    .await?;
    tx.history(
        Some(complaint_id),
        now,
        SCHEDULER,
        "staff_told",
        &format!(
            "{} to {role} ({}) about a message from {}",
            notice.template,
            to.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", "),
            notice.from
        ),
    )
    .await?;
    Ok(true)
}

/// A notice to the person the complaint is about (Awb 9:11(2)), when one is recorded.
async fn send_to_subject_person(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    state: &ComplaintState,
    template: &str,
    context: &Value,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let to = role_addresses(ctx, state, SUBJECT_PERSON_ROLE);
    if to.is_empty() {
        tx.history(
            Some(state.id),
            now,
            SCHEDULER,
            "action_unaddressed",
            &format!("{template}: no person complained about is recorded"),
        )
        .await?;
        return Ok(());
    }
    queue_to_staff(
        ctx,
        tx,
        SUBJECT_PERSON_ROLE,
        &to,
        template,
        context,
        Some(state.id),
        now,
    )
    .await?;
    Ok(())
}

/// Setting that names what the stored next times (`complaints.next_due_at`) were computed
/// with: the calendar, time zone and working hours of the configuration, and this build
/// (its holiday table). When it changes they are computed again.
const PLAN_INPUTS: &str = "scheduler.plan_inputs";

fn plan_inputs(ctx: &Context) -> String {
    let rt = &ctx.procedure;
    crate::service::sha256_hex(
        format!(
            "{}|{:?}|{}|{:?}",
            env!("CARGO_PKG_VERSION"),
            ctx.settings.calendar,
            rt.tz,
            rt.hours
        )
        .as_bytes(),
    )
}

/// Whether the stored next times can be trusted. With `fix`, stale ones are forgotten (and
/// so computed again by the next scan) and the current inputs recorded.
async fn stored_times_valid(ctx: &Context, fix: bool) -> Result<bool, ServiceError> {
    let current = plan_inputs(ctx);
    match ctx.store.get_setting(PLAN_INPUTS).await? {
        Some(stored) if stored == current => Ok(true),
        // Never recorded: the times were computed by this configuration (intake) or are
        // unknown ('') already.
        None => {
            if fix {
                ctx.store.put_setting(PLAN_INPUTS, &current).await?;
            }
            Ok(true)
        }
        Some(_) => {
            if fix {
                let n = ctx.store.forget_next_due().await?;
                tracing::info!(
                    complaints = n,
                    "calendar or working hours changed: planning open complaints again"
                );
                ctx.store.put_setting(PLAN_INPUTS, &current).await?;
                Ok(true)
            } else {
                Ok(false)
            }
        }
    }
}

/// Open complaints with something due at or before `at` (or not known): from the stored
/// times when they can be trusted, else every open complaint.
async fn due_ids(
    ctx: &Context,
    at: DateTime<Utc>,
    trusted: bool,
) -> Result<Vec<i64>, ServiceError> {
    if trusted {
        Ok(ctx.store.complaints_due(at).await?)
    } else {
        Ok(ctx.store.open_complaint_ids().await?)
    }
}

/// Run everything due at `now` for every open complaint, then the periodic jobs. One
/// transaction per complaint, so one broken complaint does not hold up the others. Only the
/// complaints whose stored next time has come are looked at.
pub async fn run_due(ctx: &Context, now: DateTime<Utc>) -> Result<TickReport, ServiceError> {
    let mut report = TickReport::default();
    stored_times_valid(ctx, true).await?;
    for id in due_ids(ctx, now, true).await? {
        let mut tx = ctx.store.begin().await?;
        match run_for_complaint(ctx, tx.as_mut(), id, now, false).await {
            Ok(actions) => {
                tx.commit().await?;
                // Counted once committed.
                let escalations = actions
                    .iter()
                    .filter(|a| {
                        a.template.as_deref() == Some("escalation") && a.result.starts_with("sent")
                    })
                    .count();
                metrics::counter!(super::health::names::ESCALATIONS).increment(escalations as u64);
                report.actions.extend(actions);
            }
            Err(e) => {
                tracing::error!(complaint = id, error = %e, "scheduler step failed; will retry")
            }
        }
    }
    if let Some(job) = run_digest(ctx, now).await? {
        report.jobs.push(job);
    }
    // The reports of `[[reports.mail]]` whose time has come.
    report
        .jobs
        .extend(super::report::run_scheduled(ctx, now).await);
    // Once a day: personal data past its procedure's retention period goes (issue #11).
    if let Some(job) = super::retention::run_daily(ctx, now).await? {
        report.jobs.push(job);
    }
    Ok(report)
}

/// What would run at `at` (a dry run: nothing is written, no write lock is taken).
pub async fn due(ctx: &Context, at: DateTime<Utc>) -> Result<Vec<DueAction>, ServiceError> {
    let trusted = stored_times_valid(ctx, false).await?;
    let mut out = Vec::new();
    for id in due_ids(ctx, at, trusted).await? {
        let mut tx = ctx.store.begin_read().await?;
        out.extend(run_for_complaint(ctx, tx.as_mut(), id, at, true).await?);
        // Dropped without commit: a dry run writes nothing.
    }
    out.sort_by(|a, b| a.due_at.cmp(&b.due_at).then(a.reference.cmp(&b.reference)));
    Ok(out)
}

/// The earliest moment anything becomes due (for the daemon's sleep), or None: one index
/// read. A complaint whose next time is not known yet makes it now, so the scheduler runs and
/// computes it.
pub async fn next_wakeup(ctx: &Context) -> Result<Option<DateTime<Utc>>, ServiceError> {
    let started = std::time::Instant::now();
    let now = ctx.clock.now();
    let mut next = if stored_times_valid(ctx, true).await? {
        match ctx.store.earliest_next_due().await? {
            Some(crate::store::NextDue::Unknown) => Some(now),
            Some(crate::store::NextDue::At(t)) => Some(t),
            None => None,
        }
    } else {
        Some(now)
    };
    if let Some(t) = next_digest_fire(ctx, now) {
        next = Some(next.map_or(t, |n| n.min(t)));
    }
    if let Some(t) = super::report::next_fire(ctx, now) {
        next = Some(next.map_or(t, |n| n.min(t)));
    }
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        next = ?next.map(crate::store::ts),
        "scheduler wake-up computed"
    );
    Ok(next)
}

fn digest_schedule(ctx: &Context) -> Option<&cron::Schedule> {
    ctx.settings.typed.digest.as_ref()
}

/// The digest is mail to people: a fire on a weekend, a holiday of the organisation's calendar
/// or outside working hours goes out at the next working moment instead (and several fires
/// that land on one moment are one digest).
fn next_digest_fire(ctx: &Context, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let s = digest_schedule(ctx)?;
    s.after(&after.with_timezone(&ctx.procedure.tz))
        .next()
        .map(|t| next_working_moment(ctx, t.with_timezone(&Utc)))
}

/// At most this many complaints are rows of the digest mail (the counts cover all).
const DIGEST_MAX_ROWS: usize = 200;

/// Open complaints read per read transaction by the digest.
const DIGEST_READ_CHUNK: usize = 500;

/// Subjects in the digest's table are cut to this many characters.
const DIGEST_SUBJECT_CHARS: usize = 60;

/// One open complaint's row in the digest: its traffic light and next open deadline (from the
/// one planner, `Procedure::deadlines`), and what the table shows of it.
fn digest_row(
    ctx: &Context,
    state: &ComplaintState,
    procedure: &Procedure,
    progress: &Progress,
    (today, horizon): (chrono::NaiveDate, chrono::NaiveDate),
    lang: &str,
) -> (digest::Entry, Value) {
    let deadlines = procedure.deadlines(&ctx.procedure.calendar, ctx.procedure.tz, progress);
    // Stored references are always well formed; a broken one still gets its row (after the
    // well-formed ones of its prefix), not a digest that fails for everyone.
    let reference = ComplaintRef::parse(&state.reference).unwrap_or_else(|_| {
        tracing::warn!(complaint = state.id, reference = %state.reference, "digest: stored reference cannot be read");
        ComplaintRef {
            prefix: state.reference.clone(),
            year: i32::MAX,
            number: u32::MAX,
        }
    });
    let entry = digest::entry(
        reference,
        state.handler.as_deref(),
        &deadlines,
        today,
        horizon,
    );
    let status = match snapshot(state, progress) {
        Ok(c) => Some(lifecycle(&c)),
        Err(e) => {
            tracing::warn!(complaint = state.id, error = %e, "digest: status cannot be derived");
            None
        }
    };
    let next = entry.next;
    let row = json!({
        "reference": state.reference,
        "subject": digest::short_subject(&state.subject, DIGEST_SUBJECT_CHARS),
        "status": status.map_or("?", |s| s.label(lang)),
        "status_id": status.map_or("", |s| s.as_str()),
        "handler": if entry.unassigned { "" } else { state.handler.as_deref().unwrap_or_default().trim() },
        "unassigned": entry.unassigned,
        "light": entry.light.as_str(),
        "light_word": entry.light.word(lang),
        "what": next.map_or("", |n| n.milestone.label(lang)),
        "due": next.map(|n| crate::domain::calendar::format_date(n.due, lang)).unwrap_or_default(),
        "missed": next.is_some_and(|n| n.missed),
    });
    (entry, row)
}

/// The digest fires for the latest scheduled time at or before `now` that has not fired yet:
/// after downtime it runs once, not once per missed day.
async fn run_digest(ctx: &Context, now: DateTime<Utc>) -> Result<Option<String>, ServiceError> {
    let Some(schedule) = digest_schedule(ctx) else {
        return Ok(None);
    };
    // Only on working days, inside working hours: a fire missed on a weekend, a holiday or
    // during downtime goes out once, at the next working moment.
    if !in_working_hours(ctx, now) {
        return Ok(None);
    }
    let tz = ctx.procedure.tz;
    let from = (now - Duration::days(8)).with_timezone(&tz);
    let Some(fire) = schedule
        .after(&from)
        .take_while(|t| t.with_timezone(&Utc) <= now)
        .map(|t| next_working_moment(ctx, t.with_timezone(&Utc)))
        .filter(|t| *t <= now)
        .last()
    else {
        return Ok(None);
    };
    if ctx.store.job_done("digest", fire).await? {
        return Ok(None);
    }
    let today = local_date(now, tz);
    let horizon = ctx
        .procedure
        .calendar
        .add_working_days(today, ctx.settings.schedule.digest_days_ahead);
    let lang = ctx.settings.organisation.language.clone();
    let mut rows = Vec::new();
    // Read in short read transactions of a few hundred complaints, not inside the write
    // transaction below: holding the write lock while every open complaint is loaded would
    // stop intake for as long.
    let ids = ctx.store.open_complaint_ids().await?;
    for chunk in ids.chunks(DIGEST_READ_CHUNK) {
        let mut rx = ctx.store.begin_read().await?;
        for &id in chunk {
            let (state, procedure, progress) = load(ctx, rx.as_mut(), id).await?;
            rows.push(digest_row(
                ctx,
                &state,
                &procedure,
                &progress,
                (today, horizon),
                &lang,
            ));
        }
    }
    rows.sort_by(|a, b| digest::order(&a.0, &b.0));
    let counts = digest::counts(rows.iter().map(|(e, _)| e));
    // A mail people read: the first rows (red first) and the counts of all; `klachtd list`
    // and the register have the rest.
    let more = rows.len().saturating_sub(DIGEST_MAX_ROWS);
    rows.truncate(DIGEST_MAX_ROWS);
    let mut tx = ctx.store.begin().await?;
    // Exactly once: whoever marks the job first sends it.
    if !tx.mark_job_done("digest", fire, now).await? {
        return Ok(None);
    }
    // An empty register has nothing to show: no mail.
    if counts.total > 0 {
        let context = json!({
            "organisation": { "name": ctx.settings.organisation.name },
            "complaint": { "reference": "", "subject": "", "received_date": "", "summary": "" },
            "complainant": { "name": "", "address": "" },
            "procedure": { "title": ctx.procedure.current().title },
            "deadlines": {},
            "action": { "due_date": crate::domain::calendar::format_date(today, &lang), "concerns": "", "deadline": "" },
            "handler": { "name": "", "address": "" },
            "serious": { "keywords": "" },
            "solution": { "text": "" },
            // `items`: one row per open complaint, red first; outbound::staff_context adds each
            // row's tokened `reply_address` for the recipient.
            "digest": {
                "items": rows.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
                "counts": counts,
                "more": more,
                "date": crate::domain::calendar::format_date(today, &lang),
                "days_ahead": ctx.settings.schedule.digest_days_ahead,
            },
            "links": { "reply_hint": "" },
        });
        super::outbound::queue_to_role(ctx, tx.as_mut(), "receiver", "digest", &context, None, now)
            .await?;
    }
    let n = counts.total;
    tx.history(
        None,
        now,
        SCHEDULER,
        "digest",
        &format!(
            "digest for {} with {n} open complaint(s): {} red, {} amber, {} green",
            crate::store::ts(fire),
            counts.red,
            counts.amber,
            counts.green
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(format!("digest ({n} complaints)")))
}

/// After a complaint is registered (inside the intake transaction): remember the procedure
/// version it runs under and run its immediate actions (notify the receiver, serious alert).
pub async fn on_registered(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    complaint_id: i64,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    ctx.procedure.record_current(tx, now).await?;
    run_for_complaint(ctx, tx, complaint_id, now, false).await?;
    Ok(())
}

/// A reference as typed by a person, in its canonical form.
fn parse_reference(reference: &str) -> Result<String, ServiceError> {
    Ok(ComplaintRef::parse(reference)
        .map_err(|e| ServiceError::Invalid(e.to_string()))?
        .to_string())
}

async fn complaint_id(tx: &mut dyn StoreTx, reference: &str) -> Result<i64, ServiceError> {
    tx.complaint_id_by_reference(reference)
        .await?
        .ok_or_else(|| ServiceError::Invalid(format!("no complaint {reference}")))
}

/// `klachtd set REF FIELD VALUE`.
pub async fn set_field(
    ctx: &Context,
    reference: &str,
    field: &str,
    value: &str,
    actor: &str,
) -> Result<String, ServiceError> {
    let now = ctx.clock.now();
    let reference = parse_reference(reference)?;
    let mut tx = ctx.store.begin().await?;
    let id = complaint_id(tx.as_mut(), &reference).await?;
    let note = set_field_in(ctx, tx.as_mut(), id, field, value, actor, now)
        .await
        .map_err(refusal_as_invalid)?;
    tx.commit().await?;
    Ok(note)
}

/// On the command line a refusal is a usage error like any other invalid input.
fn refusal_as_invalid(e: ServiceError) -> ServiceError {
    match e {
        ServiceError::Refused(r) => ServiceError::Invalid(r.to_string()),
        other => other,
    }
}

/// [`set_field`] inside the caller's transaction: the field and its value are read into an
/// event of the complaint's rules ([`crate::domain::complaint`]), which says what may change.
pub async fn set_field_in(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    id: i64,
    field: &str,
    value: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<String, ServiceError> {
    let mut value = value.trim().to_string();
    let categories = &ctx.settings.procedure.categories;
    if field == "category" && !categories.is_empty() {
        // The register's categories are the config's: written as listed there.
        value = categories
            .iter()
            .find(|c| c.eq_ignore_ascii_case(&value))
            .cloned()
            .ok_or_else(|| {
                ServiceError::Invalid(format!(
                    "category must be one of procedure.categories: {}",
                    categories.join(", ")
                ))
            })?;
    }
    let event = field_event(field, &value)?;
    let notes = apply_event(ctx, tx, id, &event, actor, now).await?;
    Ok(notes.join("; "))
}

/// `klachtd set REF FIELD VALUE` as an event: parsed once, here, into typed values.
fn field_event(field: &str, value: &str) -> Result<Event, ServiceError> {
    use crate::domain::command::{Nature, Severity, Status};
    let invalid = |m: String| ServiceError::Invalid(m);
    let address = |what: &str| {
        EmailAddress::parse(value)
            .map_err(|e| invalid(format!("{what} must be an email address: {e}")))
    };
    let one_of =
        |allowed: &[&str]| invalid(format!("{field} must be one of: {}", allowed.join(", ")));
    Ok(match field {
        "handler" => Event::AssignHandler(address("handler")?),
        "subject_person" => Event::NameSubjectPerson(address("subject_person")?),
        "kind" => Event::SetKind(value.to_string()),
        "category" => Event::SetCategory(value.to_string()),
        "cause" => Event::SetCause(value.to_string()),
        "solution" => Event::SetSolution(value.to_string()),
        "status" => match value {
            "open" => Event::SetStatus(Status::Open),
            "closed" => Event::SetStatus(Status::Closed),
            _ => return Err(one_of(&["open", "closed"])),
        },
        "reopen" => Event::Reopen {
            reason: value.to_string(),
        },
        "measure" => Event::AddMeasure(value.to_string()),
        "agreement" => match value {
            "yes" => Event::SetAgreement(true),
            "no" => Event::SetAgreement(false),
            _ => return Err(one_of(&["yes", "no"])),
        },
        "incident_kind" => match value {
            "incident" => Event::SetNature(Nature::Incident),
            "structural" => Event::SetNature(Nature::Structural),
            _ => return Err(one_of(&["incident", "structural"])),
        },
        "severity" => match value {
            "serious" => Event::SetSeverity(Severity::Serious),
            "normal" => Event::SetSeverity(Severity::Normal),
            _ => return Err(one_of(&["serious", "normal"])),
        },
        "satisfaction" => Event::SetSatisfaction(
            value
                .parse()
                .map_err(|_| invalid("satisfaction is a score from 1 to 5".into()))?,
        ),
        "extension" => {
            // `extension WEEKS [REASON]`: added to any earlier extension.
            let (weeks, reason) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
            let weeks: u32 = weeks.parse().map_err(|_| {
                invalid("extension is a number of weeks, added to any earlier extension".into())
            })?;
            let reason = reason.trim();
            Event::Extend {
                period: crate::domain::command::Period {
                    amount: weeks,
                    unit: crate::domain::procedure::Unit::Weeks,
                },
                reason: if reason.is_empty() {
                    "set with klachtd set".to_string()
                } else {
                    reason.to_string()
                },
            }
        }
        "extension_agreement" => {
            if value.is_empty() {
                return Err(invalid(
                    "extension_agreement needs what the complainant agreed to, and where (\"e-mail of 12 May 2027: agrees to 2 more weeks\")".into(),
                ));
            }
            Event::RecordExtensionAgreement(value.to_string())
        }
        other => {
            return Err(invalid(format!(
                "unknown field {other}; fields: handler, category, cause, solution, kind, incident_kind, severity, agreement, satisfaction, status, reopen, measure, extension, extension_agreement, subject_person"
            )));
        }
    })
}

/// The rules' view of a stored complaint.
fn snapshot(state: &ComplaintState, progress: &Progress) -> Result<Complaint, ServiceError> {
    use crate::domain::command::{Nature, Severity};
    let unreadable =
        |what: &str, v: &str| ServiceError::Invalid(format!("stored {what} {v:?} cannot be read"));
    Ok(Complaint {
        reference: ComplaintRef::parse(&state.reference)
            .map_err(|_| unreadable("reference", &state.reference))?,
        stored: Stored::parse(&state.status).ok_or_else(|| unreadable("status", &state.status))?,
        severity: Severity::parse(&state.severity)
            .ok_or_else(|| unreadable("severity", &state.severity))?,
        kind: state.kind.clone(),
        nature: state.incident_kind.as_deref().and_then(Nature::parse),
        handler: state
            .handler
            .as_deref()
            .and_then(|h| EmailAddress::parse(h).ok()),
        category: state.category.clone(),
        cause: state.cause.clone(),
        solution: state.solution.clone(),
        agreement: match state.agreement.as_deref() {
            Some("yes") => Some(true),
            Some("no") => Some(false),
            _ => None,
        },
        satisfaction: state.satisfaction.as_deref().and_then(|s| s.parse().ok()),
        subject_person: state
            .subject_person
            .as_deref()
            .and_then(|a| EmailAddress::parse(a).ok()),
        extension_agreement: state.extension_agreement.clone(),
        progress: progress.clone(),
        reopen_reason: state.reopen_reason.clone(),
        linked: state
            .related_reference
            .as_deref()
            .and_then(|r| ComplaintRef::parse(r).ok())
            .into_iter()
            .collect(),
        measure: state.measure.clone(),
    })
}

/// One event on a complaint, through its rules: refused as a whole
/// ([`ServiceError::Refused`]) or written with everything it implies (the mails it sends, an
/// escalation, closing when the procedure is complete). Returns the history lines written.
pub async fn apply_event(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    id: i64,
    event: &Event,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, ServiceError> {
    let (state, procedure, progress) = load(ctx, tx, id).await?;
    let before = snapshot(&state, &progress)?;
    let t = crate::domain::complaint::apply(&procedure, &before, event, now)
        .map_err(ServiceError::Refused)?;
    for change in &t.changes {
        persist(tx, id, change, actor, now).await?;
    }
    let (after_state, _, after_progress) = load(ctx, tx, id).await?;
    // The deadlines this event decided (a milestone completed): met or missed. Counted inside
    // the event's transaction: a staff mail whose later command is refused rolls it back and
    // still counts (rare; the register stays the record).
    let cal = &ctx.procedure.calendar;
    super::health::record_deadlines(
        &procedure.deadlines(cal, ctx.procedure.tz, &progress),
        &procedure.deadlines(cal, ctx.procedure.tz, &after_progress),
    );
    let mut notes = Vec::new();
    let mut close_if_complete = false;
    for effect in &t.effects {
        match effect {
            Effect::History { event, detail } => {
                tx.history(Some(id), now, actor, event.as_str(), detail)
                    .await?;
                notes.push(detail.clone());
            }
            Effect::SendToComplainant { template, .. } | Effect::DelayNotice { template, .. } => {
                let context = template_context(
                    ctx,
                    &after_state,
                    &procedure,
                    &after_progress,
                    None,
                    &after_state.language,
                );
                send_to_complainant(ctx, tx, &after_state, template, &context, now).await?;
            }
            Effect::SubjectPersonDelayNotice { template, .. } => {
                let context = template_context(
                    ctx,
                    &after_state,
                    &procedure,
                    &after_progress,
                    None,
                    &ctx.settings.organisation.language,
                );
                send_to_subject_person(ctx, tx, &after_state, template, &context, now).await?;
            }
            Effect::Escalate {
                key,
                roles,
                concerns,
            } => {
                let planned = PlannedAction {
                    key: key.clone(),
                    action_id: "complainant_disagrees".into(),
                    send: Some("escalation".into()),
                    recipients: Recipients::Roles(roles.clone()),
                    due_date: local_date(now, ctx.procedure.tz),
                    due_at: now,
                    immediate: true,
                    completes: None,
                    concerns: Some(concerns.as_str().to_string()),
                    deadline: None,
                };
                if tx.mark_action_done(id, &planned.key, now, now).await? {
                    execute(
                        ctx,
                        tx,
                        &after_state,
                        &procedure,
                        &after_progress,
                        &planned,
                        now,
                    )
                    .await?;
                    tell_appeal(ctx, tx, &after_state, &procedure, &after_progress, now).await?;
                }
            }
            Effect::Reply { text } => {
                answer_complainant(ctx, tx, id, text, actor, now).await?;
            }
            Effect::CloseIfComplete => close_if_complete = true,
        }
    }
    // What the change made due now (a survey on handling, the copy to the person complained
    // about, the outcome) runs in this transaction.
    run_for_complaint(ctx, tx, id, now, false).await?;
    if close_if_complete {
        let (state, procedure, progress) = load(ctx, tx, id).await?;
        let plan = procedure.plan(
            &ctx.procedure.calendar,
            ctx.procedure.tz,
            ctx.procedure.hours,
            &progress,
            ctx.settings.schedule.notify_staff_at_once,
        );
        let done = tx.actions_done(id).await?;
        if state.status == "open"
            && crate::domain::complaint::procedure_complete(&procedure, &progress, &plan, &done)
        {
            // Nothing follows in this procedure: the complaint is closed.
            close(tx, id, now, actor).await?;
        }
    }
    Ok(notes)
}

/// Writes one change of a transition.
async fn persist(
    tx: &mut dyn StoreTx,
    id: i64,
    change: &Change,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    match change {
        Change::Field { field, value } => {
            tx.set_field(id, field.column(), value.as_deref()).await?;
        }
        Change::Completed { milestone, at } => {
            tx.complete_milestone(id, milestone.as_str(), *at, actor)
                .await?;
        }
        Change::ProgressKey { key, at } => {
            tx.reset_milestone(id, key, *at, actor).await?;
        }
        Change::Progress {
            round,
            extended_weeks,
        } => tx.set_progress(id, *round, *extended_weeks).await?,
        Change::Status(stored) => {
            tx.set_field(id, "status", Some(stored.as_str())).await?;
        }
        Change::ReopenReason(reason) => {
            tx.set_field(id, "reopen_reason", Some(reason)).await?;
        }
        Change::Link(other) => {
            let (other_id, _) = tx
                .complaint_by_reference(&other.to_string())
                .await?
                .ok_or_else(|| ServiceError::Invalid(format!("there is no complaint {other}")))?;
            tx.link_complaint(id, other_id).await?;
            let reference = tx.complaint_reference(id).await?;
            tx.history(
                Some(other_id),
                now,
                actor,
                "linked",
                &format!("{reference} linked to this complaint"),
            )
            .await?;
        }
        Change::Voided { reason } => {
            tx.void_complaint(id, reason, now).await?;
        }
    }
    Ok(())
}

/// `klachtd complete REF MILESTONE [--at TIME] [--verdict agree|disagree]`. A milestone
/// completed by an email sends that email; the complainant's verdict may reopen the loop.
pub async fn complete(
    ctx: &Context,
    reference: &str,
    milestone: &str,
    at: DateTime<Utc>,
    verdict: Option<&str>,
    actor: &str,
) -> Result<String, ServiceError> {
    let now = ctx.clock.now();
    let reference = parse_reference(reference)?;
    let m = Milestone::parse(milestone).ok_or_else(|| {
        ServiceError::Invalid(format!(
            "unknown milestone {milestone}; milestones: {}",
            Milestone::ALL
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let mut tx = ctx.store.begin().await?;
    let id = complaint_id(tx.as_mut(), &reference).await?;
    let note = complete_in(ctx, tx.as_mut(), id, m, at, verdict, actor, now)
        .await
        .map_err(refusal_as_invalid)?;
    tx.commit().await?;
    Ok(note)
}

/// [`complete`] inside the caller's transaction, through the complaint's rules.
#[allow(clippy::too_many_arguments)]
pub async fn complete_in(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    id: i64,
    m: Milestone,
    at: DateTime<Utc>,
    verdict: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<String, ServiceError> {
    let verdict = match verdict {
        None => None,
        Some(v) => Some(crate::domain::command::Verdict::parse(v).ok_or_else(|| {
            ServiceError::Invalid("the verdict needs --verdict agree or --verdict disagree".into())
        })?),
    };
    let notes = apply_event(
        ctx,
        tx,
        id,
        &Event::CompleteMilestone {
            milestone: m,
            at,
            verdict,
        },
        actor,
        now,
    )
    .await?;
    Ok(notes.join("; "))
}

/// `#antwoord`: `text` goes to the complainant as our answer, in the thread of their mail,
/// from the service address.
pub async fn answer_complainant(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    id: i64,
    text: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let (state, procedure, progress) = load(ctx, tx, id).await?;
    let mut context = template_context(ctx, &state, &procedure, &progress, None, &state.language);
    context["answer"] = json!({ "text": text });
    send_to_complainant(ctx, tx, &state, "staff_answer", &context, now).await?;
    tx.history(
        Some(id),
        now,
        actor,
        "answer_out",
        &format!(
            "answer to the complainant queued ({} characters)",
            text.chars().count()
        ),
    )
    .await?;
    Ok(())
}

/// `#heropen REASON`: a closed complaint is open again, in a new round of the procedure.
pub async fn reopen_in(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    id: i64,
    reason: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    apply_event(
        ctx,
        tx,
        id,
        &Event::Reopen {
            reason: reason.to_string(),
        },
        actor,
        now,
    )
    .await?;
    Ok(())
}

/// The complainant's verdict where the procedure has no verdict milestone: recorded as the
/// agreement; one who does not agree is an escalation, as a verdict is.
pub async fn record_agreement(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    id: i64,
    agree: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    apply_event(ctx, tx, id, &Event::SetAgreement(agree), actor, now).await?;
    if !agree {
        let (state, procedure, progress) = load(ctx, tx, id).await?;
        let planned = PlannedAction {
            key: format!("r{}:disagree", progress.round),
            action_id: "complainant_disagrees".into(),
            send: Some("escalation".into()),
            recipients: Recipients::Roles(crate::domain::complaint::escalation_roles(&procedure)),
            due_date: local_date(now, ctx.procedure.tz),
            due_at: now,
            immediate: true,
            completes: None,
            concerns: None,
            deadline: None,
        };
        if tx.mark_action_done(id, &planned.key, now, now).await? {
            execute(ctx, tx, &state, &procedure, &progress, &planned, now).await?;
            tell_appeal(ctx, tx, &state, &procedure, &progress, now).await?;
        }
    }
    Ok(())
}

/// A complainant who does not agree hears where they can go next, where the procedure names
/// it (`appeal`: seed 001's OOA, seed 004's examencommissie).
async fn tell_appeal(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    state: &ComplaintState,
    procedure: &Procedure,
    progress: &Progress,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let Some(appeal) = &procedure.appeal else {
        return Ok(());
    };
    let mut context = template_context(ctx, state, procedure, progress, None, &state.language);
    context["appeal"] = json!({ "text": appeal });
    send_to_complainant(ctx, tx, state, "appeal_info", &context, now).await
}

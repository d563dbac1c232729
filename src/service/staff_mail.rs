//! Staff and complainants working by mail (issue #10): reading the signed tokens of an
//! incoming mail, deciding whether a staff mail is authenticated, applying its commands (all
//! or none, in a savepoint of the ingest transaction), answering the sender, relaying
//! `#antwoord` to the complainant, and reading the complainant's verdict and satisfaction.
//!
//! The whole mail is already stored on the complaint before anything here runs; what is
//! decided here only adds to it. Nothing a mail claims is believed before a token checks out.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::outbound::{MailSpec, queue, queue_to_role};
use super::scheduler::{self, MessageNotice};
use super::{Context, ServiceError};
use crate::domain::classify::{MailFacts, addresses_in, domain_authenticated};
use crate::domain::command::{
    self, Command, CommandContext, CommandError, Commands, VerdictReading,
};
use crate::domain::procedure::Milestone;
use crate::domain::token::{self, TokenKind, UnverifiedToken};
use crate::domain::types::{ComplaintRef, EmailAddress};
use crate::mail::compose::AutoKind;
use crate::mail::parse::ParsedMail;
use crate::store::StoreTx;

/// Tokens read per mail: a hostile mail with thousands of tokened addresses must not make
/// thousands of HMAC checks against every recipient.
const MAX_CLAIMS: usize = 12;

/// Where a token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The address the mail was sent to (our Reply-To, a verdict link).
    Address,
    /// A Message-ID of ours in In-Reply-To / References.
    MessageId,
}

/// A token that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub complaint_id: i64,
    pub reference: ComplaintRef,
    /// The recipient we issued it to.
    pub issued_to: EmailAddress,
    /// Issued to a staff recipient of the complaint (not the complainant or the person
    /// complained about).
    pub to_staff: bool,
    pub via: Via,
    /// A verdict link: `Some(true)` agree, `Some(false)` disagree.
    pub verdict: Option<bool>,
}

/// What the tokens of a mail prove.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    pub verified: Vec<Finding>,
    /// The staff member whose personal intake address the mail was sent to.
    pub intake_for: Option<EmailAddress>,
    /// Tokens in our form that did not check out: edited, from another installation, or for
    /// a complaint that does not exist.
    pub refused: Vec<String>,
}

impl Tokens {
    /// The one complaint the verified tokens name; `None` when none do, or they disagree.
    pub fn complaint(&self) -> Option<i64> {
        let first = self.verified.first()?.complaint_id;
        (!self.conflicting()).then_some(first)
    }

    /// Verified tokens of more than one complaint.
    pub fn conflicting(&self) -> bool {
        self.verified
            .windows(2)
            .any(|w| w[0].complaint_id != w[1].complaint_id)
    }
}

/// A recipient a token of a complaint may have been issued to.
struct Candidate {
    address: EmailAddress,
    staff: bool,
}

async fn candidates(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    complaint_id: i64,
) -> Result<Vec<Candidate>, ServiceError> {
    let mut out: Vec<Candidate> = Vec::new();
    let push = |out: &mut Vec<Candidate>, address: EmailAddress, staff: bool| {
        if !out
            .iter()
            .any(|c| c.address.mailbox_key() == address.mailbox_key())
        {
            out.push(Candidate { address, staff });
        }
    };
    if let Some(state) = tx.complaint_state(complaint_id).await? {
        if let Ok(a) = EmailAddress::parse(&state.complainant_address) {
            push(&mut out, a, false);
        }
        if let Some(a) = state
            .subject_person
            .as_deref()
            .and_then(|a| EmailAddress::parse(a).ok())
        {
            push(&mut out, a, false);
        }
        if let Some(a) = state
            .handler
            .as_deref()
            .and_then(|a| EmailAddress::parse(a).ok())
        {
            push(&mut out, a, true);
        }
    }
    for sent in tx.complaint_mail_recipients(complaint_id).await? {
        for a in sent.recipients.split(',') {
            if let Ok(a) = EmailAddress::parse(a.trim()) {
                let staff = sent.role.as_deref().is_some_and(|r| {
                    r != crate::domain::procedure::SUBJECT_PERSON_ROLE && r != "complainant"
                });
                push(&mut out, a, staff);
            }
        }
    }
    for a in ctx.settings.typed.all_staff() {
        push(&mut out, a, true);
    }
    Ok(out)
}

/// Reads and verifies the tokens of a mail: in the addresses it was sent to and in the
/// Message-IDs it answers.
pub async fn read_tokens(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    parsed: &ParsedMail,
) -> Result<Tokens, ServiceError> {
    let facts = &parsed.facts;
    let service = ctx.from_address()?;
    let sep = ctx.separator();
    let mut claims: Vec<(UnverifiedToken, Via, String)> = Vec::new();
    let mut addresses = addresses_in(
        facts,
        &["delivered-to", "x-original-to", "envelope-to", "to", "cc"],
    );
    addresses.dedup();
    for a in addresses {
        if let Some(t) = token::parse_address(&a, &service, sep) {
            claims.push((t, Via::Address, a));
        }
    }
    for m in facts.thread_ids() {
        if let Some(t) = token::parse_message_id(&m) {
            claims.push((t, Via::MessageId, m.to_string()));
        }
    }
    claims.truncate(MAX_CLAIMS);
    let keys = ctx.token_keys();
    let mut found = Tokens::default();
    let mut cache: HashMap<i64, Vec<Candidate>> = HashMap::new();
    for (claim, via, written) in claims {
        if claim.kind == TokenKind::Intake {
            let staff = ctx.settings.typed.all_staff();
            match claim.verify(&keys, &staff) {
                Some(v) => found.intake_for = staff.get(v.candidate).cloned(),
                None => found.refused.push(written),
            }
            continue;
        }
        let Some(reference) = claim.reference().cloned() else {
            continue;
        };
        let Some((complaint_id, _)) = tx.complaint_by_reference(&reference.to_string()).await?
        else {
            found.refused.push(written);
            continue;
        };
        if let std::collections::hash_map::Entry::Vacant(e) = cache.entry(complaint_id) {
            e.insert(candidates(ctx, tx, complaint_id).await?);
        }
        let list = cache.get(&complaint_id).map(Vec::as_slice).unwrap_or(&[]);
        let addresses: Vec<EmailAddress> = list.iter().map(|c| c.address.clone()).collect();
        match claim.verify(&keys, &addresses) {
            Some(v) => {
                let c = &list[v.candidate];
                if v.key_index > 0 {
                    tracing::info!(%reference, "token made with a previous key accepted");
                }
                found.verified.push(Finding {
                    complaint_id,
                    reference,
                    issued_to: c.address.clone(),
                    to_staff: c.staff,
                    via,
                    verdict: match claim.kind {
                        TokenKind::Verdict { agree, .. } => Some(agree),
                        _ => None,
                    },
                });
            }
            None => found.refused.push(written),
        }
    }
    Ok(found)
}

/// Why a staff mail is not taken as a command.
fn authenticate<'a>(
    ctx: &Context,
    facts: &MailFacts,
    tokens: &'a Tokens,
    complaint_id: i64,
    subject_refs: &[ComplaintRef],
    reference: &str,
) -> Result<&'a Finding, String> {
    if tokens.conflicting() {
        return Err("its tokens name more than one complaint".into());
    }
    let Some(finding) = tokens
        .verified
        .iter()
        .find(|f| f.complaint_id == complaint_id && f.to_staff && f.verdict.is_none())
    else {
        return Err(
            if tokens
                .verified
                .iter()
                .any(|f| f.complaint_id != complaint_id)
            {
                "its token belongs to another complaint".into()
            } else if tokens.verified.iter().any(|f| !f.to_staff) {
                "its token was issued to the complainant, not to staff".into()
            } else if !tokens.refused.is_empty() {
                format!(
                    "its token was not made by us for this complaint (edited or forged): {}",
                    tokens.refused.join(", ")
                )
            } else {
                "it answers none of our mails (no token)".into()
            },
        );
    };
    if let Some(other) = subject_refs.iter().find(|r| r.to_string() != reference) {
        return Err(format!(
            "its subject names {other} but its token is for {reference} (a reply moved to another complaint)"
        ));
    }
    let s = &ctx.settings;
    if s.staff.require_dmarc_pass
        && !domain_authenticated(facts, &s.intake.trusted_authserv_id, facts.from.domain())
    {
        return Err(format!(
            "staff.require_dmarc_pass is set and {} reports no DMARC or DKIM pass for {}",
            s.intake.trusted_authserv_id,
            facts.from.domain()
        ));
    }
    Ok(finding)
}

/// A mail added to a complaint, with what ingest learned about it.
pub struct Threaded<'a> {
    pub complaint_id: i64,
    pub row: i64,
    pub parsed: &'a ParsedMail,
    pub tokens: &'a Tokens,
    pub sender_is_staff: bool,
    pub automatic: bool,
    /// Threaded by a Message-ID of ours or a token (not only by the subject).
    pub by_header: bool,
}

/// Everything that follows from a mail added to a complaint.
pub async fn on_threaded(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    m: Threaded<'_>,
) -> Result<(), ServiceError> {
    let now = ctx.clock.now();
    let facts = &m.parsed.facts;
    let Some(state) = tx.complaint_state(m.complaint_id).await? else {
        return Ok(());
    };
    let from_complainant = state
        .complainant_address
        .eq_ignore_ascii_case(facts.from.as_str())
        || EmailAddress::parse(&state.complainant_address)
            .is_ok_and(|a| a.mailbox_key() == facts.from.mailbox_key());
    let from_staff = !from_complainant
        && (m.sender_is_staff
            || state
                .handler
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(facts.from.as_str())));
    // Only the new part of a reply: the quoted mail is ours or already on the complaint.
    let reply = crate::mail::reply::reply_of(m.parsed);
    let text = reply.text.as_str();
    if m.automatic {
        if from_staff && m.by_header {
            // An out-of-office from a handler or colleague answering one of our mails: the
            // complaint may need someone else. Once per complaint.
            tx.history(
                Some(m.complaint_id),
                now,
                super::ingest::SYSTEM,
                "staff_auto_reply",
                &format!(
                    "message {}: automatic reply from staff member {}: {}",
                    m.row, facts.from, facts.subject
                ),
            )
            .await?;
            scheduler::tell_staff_about_message(
                ctx,
                tx,
                m.complaint_id,
                MessageNotice {
                    template: "staff_absent",
                    from: &facts.from,
                    subject: &facts.subject,
                    text,
                    once_key: Some("staff_absent_notice"),
                },
                now,
            )
            .await?;
        }
        return Ok(());
    }
    if from_staff {
        let subject_refs = ComplaintRef::find_in_subject(
            &facts.subject,
            &ctx.settings.organisation.reference_prefix,
        );
        let to_complainant = addressed_to(m.parsed, &state.complainant_address);
        match authenticate(
            ctx,
            facts,
            m.tokens,
            m.complaint_id,
            &subject_refs,
            &state.reference,
        ) {
            Ok(_) if to_complainant => {
                // Staff answered the complainant from their own client, with us in Cc/Bcc.
                tx.history(
                    Some(m.complaint_id),
                    now,
                    &staff_actor(&facts.from),
                    "staff_answered",
                    &format!(
                        "message {}: {} answered the complainant directly (service address in Cc/Bcc): {}",
                        m.row, facts.from, facts.subject
                    ),
                )
                .await?;
                complete_first_reaction(ctx, tx, m.complaint_id, &facts.from, now).await?;
            }
            Ok(_) => apply_staff_mail(ctx, tx, &state, m.row, m.parsed, text, now).await?,
            Err(reason) => {
                refuse(ctx, tx, &state, m.row, facts, &reason, to_complainant, now).await?
            }
        }
        return Ok(());
    }
    if from_complainant {
        complainant_mail(ctx, tx, &state, m.row, m.tokens, facts, text, now).await?;
    }
    Ok(())
}

fn staff_actor(a: &EmailAddress) -> String {
    format!("staff:{a}")
}

/// Whether `address` is among the To/Cc of the mail.
fn addressed_to(parsed: &ParsedMail, address: &str) -> bool {
    let Ok(target) = EmailAddress::parse(address) else {
        return false;
    };
    addresses_in(&parsed.facts, &["to", "cc"])
        .iter()
        .filter_map(|a| EmailAddress::parse(a).ok())
        .any(|a| a.mailbox_key() == target.mailbox_key())
}

/// A staff From that did not authenticate: never a command. Kept as an ordinary message,
/// logged as a security event, and the receiving role told once per complaint.
#[allow(clippy::too_many_arguments)]
async fn refuse(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    state: &crate::store::ComplaintState,
    row: i64,
    facts: &MailFacts,
    reason: &str,
    to_complainant: bool,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let what = if to_complainant {
        "an answer to the complainant"
    } else {
        "commands or a note"
    };
    let detail = format!(
        "message {row} has staff address {} in From but is not authenticated: {reason}; recorded as an ordinary message, {what} not applied",
        facts.from
    );
    tracing::warn!(
        target: "klachtd::security",
        complaint = %state.reference,
        from = %facts.from,
        %reason,
        "unauthenticated mail with a staff From refused"
    );
    tx.history(
        Some(state.id),
        now,
        super::ingest::SYSTEM,
        "security_refused",
        &detail,
    )
    .await?;
    if tx
        .mark_action_done(state.id, "unverified_staff_notice", now, now)
        .await?
    {
        let (st, procedure, progress) = scheduler::load(ctx, tx, state.id).await?;
        let lang = ctx.settings.organisation.language.clone();
        let mut context = scheduler::template_context(ctx, &st, &procedure, &progress, None, &lang);
        context["message"] = json!({
            "from": facts.from.as_str(),
            "subject": facts.subject,
            "reason": reason,
        });
        queue_to_role(
            ctx,
            tx,
            "receiver",
            "unverified_staff_mail",
            &context,
            Some(state.id),
            now,
        )
        .await?;
    }
    Ok(())
}

/// `procedure.categories`, when the config lists them.
fn configured_categories(ctx: &Context) -> Option<Vec<String>> {
    let list = &ctx.settings.procedure.categories;
    (!list.is_empty()).then(|| list.clone())
}

/// The command context for a staff mail on this complaint.
fn command_context(
    ctx: &Context,
    procedure: &crate::domain::procedure::Procedure,
    state: &crate::store::ComplaintState,
    sender: &EmailAddress,
) -> CommandContext {
    let mut staff = ctx.settings.typed.all_staff();
    if let Some(h) = state
        .handler
        .as_deref()
        .and_then(|h| EmailAddress::parse(h).ok())
    {
        staff.push(h);
    }
    CommandContext {
        sender: sender.clone(),
        staff: Some(staff),
        categories: configured_categories(ctx),
        kinds: procedure.kinds.clone(),
        milestones: procedure.milestones.iter().map(|m| m.id).collect(),
    }
}

/// An authenticated staff mail: its commands, all or none; a note when it has none.
async fn apply_staff_mail(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    state: &crate::store::ComplaintState,
    row: i64,
    parsed: &ParsedMail,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let facts = &parsed.facts;
    let sender = &facts.from;
    let actor = staff_actor(sender);
    let (_, procedure, _) = scheduler::load(ctx, tx, state.id).await?;
    let lang = ctx.settings.organisation.language.clone();
    let cctx = command_context(ctx, &procedure, state, sender);
    let commands = match command::parse_commands(text, &cctx) {
        Ok(c) => c,
        Err(errors) => {
            return refuse_commands(ctx, tx, state, row, parsed, &errors, now).await;
        }
    };
    if let Some(intake) = &commands.intake {
        let error = CommandError::not_in_reply(intake.line);
        return refuse_commands(ctx, tx, state, row, parsed, &[error], now).await;
    }
    if let Some(note) = commands.implicit_note() {
        tx.history(Some(state.id), now, &actor, "note", note)
            .await?;
        let done = vec![if lang == "en" {
            "recorded as an internal note (no commands)".to_string()
        } else {
            "vastgelegd als interne notitie (geen opdrachten)".to_string()
        }];
        return confirm(ctx, tx, state, parsed, &done, &commands, now).await;
    }
    if commands.commands.is_empty() {
        // Nothing but quoted text or a signature: the mail is kept, nothing to do.
        return Ok(());
    }
    tx.savepoint().await?;
    let mut done = Vec::new();
    let mut help = false;
    for line in &commands.commands {
        if line.command == Command::Help {
            help = true;
            continue;
        }
        match apply_command(ctx, tx, state.id, &line.command, sender, &actor, now).await {
            Ok(()) => done.push(line.command.describe(&lang, sender)),
            Err(e @ (ServiceError::Invalid(_) | ServiceError::Refused(_))) => {
                tx.rollback_to_savepoint().await?;
                let why = match e {
                    ServiceError::Refused(r) => r.message(&lang),
                    other => other.to_string(),
                };
                let error = CommandError::refused(line.line, text, why);
                return refuse_commands(ctx, tx, state, row, parsed, &[error], now).await;
            }
            Err(other) => return Err(other),
        }
    }
    tx.release_savepoint().await?;
    tx.history(
        Some(state.id),
        now,
        &actor,
        "commands_applied",
        &format!("message {row}: {}", done.join("; ")),
    )
    .await?;
    if help {
        send_to_sender(
            ctx,
            tx,
            state,
            parsed,
            "command_help",
            json!({ "reference": command::reference_text(&lang), "intake_address": intake_address(ctx, sender) }),
            now,
        )
        .await?;
    }
    if !done.is_empty() {
        confirm(ctx, tx, state, parsed, &done, &commands, now).await?;
    }
    Ok(())
}

fn intake_address(ctx: &Context, staff: &EmailAddress) -> Option<String> {
    let service = ctx.from_address().ok()?;
    token::reply_address(
        &service,
        ctx.separator(),
        &token::TokenPurpose::Intake {
            staff: staff.clone(),
        },
        &ctx.key,
    )
    .ok()
    .map(|a| a.to_string())
}

async fn confirm(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    state: &crate::store::ComplaintState,
    parsed: &ParsedMail,
    done: &[String],
    commands: &Commands,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    if !ctx.settings.staff.confirm_commands {
        return Ok(());
    }
    send_to_sender(
        ctx,
        tx,
        state,
        parsed,
        "command_confirmation",
        json!({
            "applied": done,
            "late_lines": commands.late_commands,
        }),
        now,
    )
    .await
}

async fn refuse_commands(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    state: &crate::store::ComplaintState,
    row: i64,
    parsed: &ParsedMail,
    errors: &[CommandError],
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let lang = ctx.settings.organisation.language.clone();
    let messages: Vec<String> = errors.iter().map(|e| e.message(&lang)).collect();
    tx.history(
        Some(state.id),
        now,
        &staff_actor(&parsed.facts.from),
        "commands_refused",
        &format!(
            "message {row}: nothing applied: {}",
            errors
                .iter()
                .map(|e| e.message("en"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    )
    .await?;
    send_to_sender(
        ctx,
        tx,
        state,
        parsed,
        "command_refused",
        json!({ "errors": messages }),
        now,
    )
    .await
}

/// A short answer to the staff member who wrote, in the thread of their mail, with a token of
/// its own so they can answer it again.
async fn send_to_sender(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    state: &crate::store::ComplaintState,
    parsed: &ParsedMail,
    template: &str,
    extra: Value,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let facts = &parsed.facts;
    let (st, procedure, progress) = scheduler::load(ctx, tx, state.id).await?;
    let lang = ctx.settings.organisation.language.clone();
    let mut context = scheduler::template_context(ctx, &st, &procedure, &progress, None, &lang);
    context["commands"] = extra;
    context["message"] = json!({ "subject": facts.subject });
    answer_sender(ctx, tx, parsed, template, &context, Some(state.id), now).await
}

/// Queue `template` to the sender of `parsed`, in the thread of their mail (RFC 5322 3.6.4:
/// In-Reply-To their Message-ID, References theirs and it), as an auto-reply (RFC 3834), with
/// the staff footer.
async fn answer_sender(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    parsed: &ParsedMail,
    template: &str,
    context: &Value,
    complaint_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let facts = &parsed.facts;
    let context = super::outbound::staff_context(ctx, context, &facts.from);
    let mut references = facts.references.clone();
    if let Some(m) = &facts.message_id {
        references.push(m.clone());
    }
    queue(
        ctx,
        tx,
        MailSpec {
            template,
            lang: &ctx.settings.organisation.language,
            context: &context,
            complaint_id,
            to: vec![(None, facts.from.clone())],
            role: Some("staff"),
            in_reply_to: facts.message_id.clone(),
            references,
            auto: AutoKind::Replied,
            now,
            not_before: None,
            recipient_key: None,
        },
    )
    .await?;
    Ok(())
}

/// One command as an event of the complaint's rules, through the same operation as
/// `klachtd set` / `klachtd complete` ([`scheduler::apply_event`]). An error is a refusal: the
/// caller rolls back all of the mail's commands.
async fn apply_command(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    id: i64,
    command: &Command,
    sender: &EmailAddress,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    use crate::domain::complaint::Event;
    let event = match command {
        Command::Assign(a) => Event::AssignHandler(a.resolve(sender).clone()),
        Command::Category(t) => Event::SetCategory(t.clone()),
        Command::Cause(t) => Event::SetCause(t.clone()),
        Command::Solution(t) => Event::SetSolution(t.clone()),
        Command::Severity(v) => Event::SetSeverity(*v),
        Command::Kind(v) => Event::SetKind(v.as_str().to_string()),
        Command::Nature(v) => Event::SetNature(*v),
        Command::Agreement(yes) => Event::SetAgreement(*yes),
        Command::Extend { period, reason } => Event::Extend {
            period: *period,
            reason: reason.clone(),
        },
        Command::Note(t) => Event::AddNote(t.clone()),
        Command::Reply(t) => Event::ReplyToComplainant(t.clone()),
        Command::Done(m, verdict) => Event::CompleteMilestone {
            milestone: *m,
            at: now,
            verdict: *verdict,
        },
        Command::Status(s) => Event::SetStatus(*s),
        Command::Reopen(reason) => Event::Reopen {
            reason: reason.clone(),
        },
        Command::Link(other) => Event::Link(other.clone()),
        Command::Measure(t) => Event::AddMeasure(t.clone()),
        Command::Help => return Ok(()),
    };
    scheduler::apply_event(ctx, tx, id, &event, actor, now).await?;
    if matches!(command, Command::Reply(_)) {
        complete_first_reaction(ctx, tx, id, sender, now).await?;
    }
    Ok(())
}

/// Our answer reached the complainant: the first reaction is given, where the procedure has
/// that milestone and it is still open.
async fn complete_first_reaction(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    id: i64,
    by: &EmailAddress,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let (_, procedure, progress) = scheduler::load(ctx, tx, id).await?;
    let m = Milestone::FirstReaction;
    if procedure.milestone(m).is_none() || progress.completed.contains_key(m.as_str()) {
        return Ok(());
    }
    let actor = staff_actor(by);
    tx.complete_milestone(id, m.as_str(), now, &actor).await?;
    super::health::record_completion(ctx, &procedure, &progress, m.as_str(), now);
    tx.history(
        Some(id),
        now,
        &actor,
        "milestone",
        "first_reaction completed: staff answered the complainant",
    )
    .await?;
    scheduler::run_for_complaint(ctx, tx, id, now, false).await?;
    Ok(())
}

/// The complainant wrote: a verdict (by link or in words), a satisfaction score, or a message
/// the handler must read.
#[allow(clippy::too_many_arguments)]
async fn complainant_mail(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    state: &crate::store::ComplaintState,
    row: i64,
    tokens: &Tokens,
    facts: &MailFacts,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let (_, procedure, progress) = scheduler::load(ctx, tx, state.id).await?;
    let actor = format!("mail:{}", facts.from);
    let link = tokens
        .verified
        .iter()
        .find(|f| f.complaint_id == state.id && !f.to_staff && f.verdict.is_some())
        .and_then(|f| f.verdict);
    let verdict_open = procedure.milestone(Milestone::Verdict).is_some()
        && progress
            .completed
            .contains_key(Milestone::SolutionProposed.as_str())
        && !progress.completed.contains_key(Milestone::Verdict.as_str());
    let reading = match link {
        Some(true) => Some(VerdictReading::Agree),
        Some(false) => Some(VerdictReading::Disagree),
        None if verdict_open => Some(command::read_verdict(text)),
        None => None,
    };
    match reading {
        Some(VerdictReading::Unclear) => {
            tx.history(
                Some(state.id),
                now,
                &actor,
                "verdict_unclear",
                &format!(
                    "message {row}: the complainant's answer is not a clear agree or disagree; the handler decides (#klaar oordeel akkoord / niet akkoord)"
                ),
            )
            .await?;
            scheduler::tell_staff_about_message(
                ctx,
                tx,
                state.id,
                MessageNotice {
                    template: "verdict_unclear",
                    from: &facts.from,
                    subject: &facts.subject,
                    text,
                    once_key: None,
                },
                now,
            )
            .await?;
            return Ok(());
        }
        Some(v) => {
            let agree = v == VerdictReading::Agree;
            let how = if link.is_some() { "link" } else { "text" };
            tx.savepoint().await?;
            let applied = if procedure.milestone(Milestone::Verdict).is_some() {
                scheduler::complete_in(
                    ctx,
                    tx,
                    state.id,
                    Milestone::Verdict,
                    now,
                    Some(if agree { "agree" } else { "disagree" }),
                    &actor,
                    now,
                )
                .await
                .map(|_| ())
            } else {
                scheduler::record_agreement(ctx, tx, state.id, agree, &actor, now).await
            };
            match applied {
                Ok(()) => {
                    tx.release_savepoint().await?;
                    tx.history(
                        Some(state.id),
                        now,
                        &actor,
                        "verdict",
                        &format!(
                            "message {row}: the complainant {} (by {how})",
                            if agree { "agrees" } else { "does not agree" }
                        ),
                    )
                    .await?;
                }
                Err(e @ (ServiceError::Invalid(_) | ServiceError::Refused(_))) => {
                    let why = e.to_string();
                    tx.rollback_to_savepoint().await?;
                    tx.history(
                        Some(state.id),
                        now,
                        &actor,
                        "verdict_not_applied",
                        &format!("message {row}: {why}"),
                    )
                    .await?;
                    notify_reply(ctx, tx, state.id, facts, text, now).await?;
                }
                Err(e) => return Err(e),
            }
            return Ok(());
        }
        None => {}
    }
    let surveyed = tx
        .complaint_mail_recipients(state.id)
        .await?
        .iter()
        .any(|s| s.template == "satisfaction_survey");
    if surveyed && let Some(score) = command::read_satisfaction(text) {
        tx.set_field(state.id, "satisfaction", Some(&score.to_string()))
            .await?;
        tx.history(
            Some(state.id),
            now,
            &actor,
            "satisfaction",
            &format!("message {row}: the complainant rates the handling {score} of 5"),
        )
        .await?;
        return Ok(());
    }
    notify_reply(ctx, tx, state.id, facts, text, now).await
}

async fn notify_reply(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    id: i64,
    facts: &MailFacts,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    scheduler::tell_staff_about_message(
        ctx,
        tx,
        id,
        MessageNotice {
            template: "complainant_replied",
            from: &facts.from,
            subject: &facts.subject,
            text,
            once_key: None,
        },
        now,
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Intake on behalf: `#nieuw`, a forwarded complaint, a mail to a personal intake address
// ---------------------------------------------------------------------------------------------

/// Whether the first non-blank line of `text` is `#nieuw` / `#new`.
fn opens_with_new(text: &str) -> bool {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| {
            let w = l.trim().trim_start_matches(['*', '>', ' ']).to_lowercase();
            // Bold in HTML converted to text: `*#nieuw*`.
            let name = w
                .split(|c: char| c.is_whitespace() || c == ':')
                .next()
                .unwrap_or("")
                .trim_end_matches('*');
            name == "#nieuw" || name == "#new"
        })
}

/// A subject as clients prefix a forward: `FW:`, `Fwd:`, `Doorst:`, `TR:`, `WG:` (repeated).
fn strip_forward_prefix(subject: &str) -> (&str, bool) {
    let mut s = subject.trim();
    let mut found = false;
    loop {
        let lower = s.to_ascii_lowercase();
        let Some(p) = ["fwd:", "fw:", "doorst:", "tr:", "wg:", "fw :", "fwd :"]
            .iter()
            .find(|p| lower.starts_with(**p))
        else {
            return (s, found);
        };
        s = s[p.len()..].trim_start();
        found = true;
    }
}

/// The original of a forwarded mail: an attached message (RFC 2046 5.2.1 `message/rfc822`)
/// first, else an inline forward in `text`.
struct Original {
    from: Option<EmailAddress>,
    from_name: Option<String>,
    date: Option<DateTime<Utc>>,
    subject: Option<String>,
    text: String,
    note: String,
}

fn original_of(ctx: &Context, parsed: &ParsedMail, text: &str) -> Option<Original> {
    if let Some(a) = parsed.attached_messages.first() {
        return Some(Original {
            from: a.from.clone(),
            from_name: a.from_name.clone(),
            date: a.date,
            subject: (!a.subject.is_empty()).then(|| a.subject.clone()),
            text: a.text.trim().to_string(),
            note: text.trim().to_string(),
        });
    }
    let f = crate::domain::forward::forwarded_original(text)?;
    Some(Original {
        date: f
            .date
            .as_deref()
            .and_then(|d| crate::domain::forward::parse_written_date(d, ctx.procedure.tz)),
        from: f.from,
        from_name: f.from_name,
        subject: f.subject,
        text: f.text,
        note: f.note,
    })
}

/// A mail from a staff member that is no answer to one of our mails: a complaint they register
/// for someone else when it says so (`#nieuw` on its first line, a forward, or a mail to their
/// personal intake address). `None`: an ordinary new complaint (staff may complain too).
/// Authenticated like commands: the personal intake token, or a DMARC/DKIM pass at our own
/// server; an unauthenticated `#nieuw` is kept unfiled and never registers anything.
#[allow(clippy::too_many_arguments)]
pub async fn intake(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    message: &mut crate::store::NewMessage,
    parsed: &ParsedMail,
    tokens: &Tokens,
    over_size: bool,
    attachment_shas: &[Option<String>],
) -> Result<Option<super::ingest::Outcome>, ServiceError> {
    use super::ingest::Outcome;
    let s = &ctx.settings;
    let now = ctx.clock.now();
    let facts = &parsed.facts;
    let from = &facts.from;
    let text = parsed.text.as_str();
    let by_token = tokens
        .intake_for
        .as_ref()
        .is_some_and(|a| a.mailbox_key() == from.mailbox_key());
    let dmarc = domain_authenticated(facts, &s.intake.trusted_authserv_id, from.domain());
    // An answer to one of our staff mails about no single complaint (the digest, an
    // operational alert) is no new complaint: the lines of the digest have their own links.
    let ours: Vec<String> = facts
        .thread_ids()
        .iter()
        .filter(|m| crate::mail::compose::is_our_message_id(m, &ctx.key))
        .map(|m| m.to_string())
        .collect();
    if !ours.is_empty()
        && let Some(sent) = tx.sent_by_message_ids(&ours).await?
        && sent.complaint_id.is_none()
    {
        let reason = format!(
            "a staff answer to our {} mail, which is about no single complaint: kept unfiled (commands answer a complaint's own mail, or the link by its line in the digest)",
            sent.template
        );
        let outcome = unfiled(
            ctx,
            tx,
            message,
            parsed,
            over_size,
            attachment_shas,
            &reason,
        )
        .await?;
        let en = s.organisation.language == "en";
        let text = if en {
            "this is an answer to the overview, which is about several complaints: nothing was done. Answer the link by the complaint's line (\"commands: reply to ...\"), or a mail about that complaint."
        } else {
            "dit is een antwoord op het overzicht, dat over meer klachten gaat: er is niets uitgevoerd. Antwoord via het adres bij de regel van de klacht (\"opdrachten: antwoord aan ...\"), of op een bericht over die klacht."
        };
        reply_without_complaint(
            ctx,
            tx,
            parsed,
            "command_refused",
            json!({ "errors": [text] }),
            now,
        )
        .await?;
        return Ok(outcome);
    }
    let (subject, fw_subject) = strip_forward_prefix(&facts.subject);
    let new = opens_with_new(text);
    let forward = !parsed.attached_messages.is_empty()
        || (fw_subject && crate::domain::forward::forwarded_original(text).is_some());
    if !(new || forward || by_token) {
        return Ok(None);
    }
    // The personal intake token, or a DMARC/DKIM pass; with require_dmarc_pass the pass always.
    let authenticated = dmarc || (by_token && !s.staff.require_dmarc_pass);
    let actor = staff_actor(from);
    if !authenticated {
        if !new {
            // A forward that proves nothing: registered as the staff member's own mail.
            return Ok(None);
        }
        let reason = "#nieuw from a staff address, but not to that staff member's personal intake address and without a DMARC/DKIM pass: not registered (the From may be forged)".to_string();
        tracing::warn!(target: "klachtd::security", from = %from, "unauthenticated #nieuw refused");
        return unfiled(
            ctx,
            tx,
            message,
            parsed,
            over_size,
            attachment_shas,
            &reason,
        )
        .await;
    }
    let procedure = ctx.procedure.current();
    let cctx = CommandContext {
        sender: from.clone(),
        staff: Some(s.typed.all_staff()),
        categories: configured_categories(ctx),
        kinds: procedure.kinds.clone(),
        milestones: procedure.milestones.iter().map(|m| m.id).collect(),
    };
    let (intake, body) = if new {
        match command::parse_commands(text, &cctx) {
            Ok(Commands {
                intake: Some(i), ..
            }) => {
                let body = i.text.clone();
                (Some(i), body)
            }
            Ok(_) => (None, text.to_string()),
            Err(errors) => {
                let lang = s.organisation.language.clone();
                let messages: Vec<String> = errors.iter().map(|e| e.message(&lang)).collect();
                let reason = format!(
                    "#nieuw not registered: {}",
                    errors
                        .iter()
                        .map(|e| e.message("en"))
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                let outcome = unfiled(
                    ctx,
                    tx,
                    message,
                    parsed,
                    over_size,
                    attachment_shas,
                    &reason,
                )
                .await?;
                reply_without_complaint(
                    ctx,
                    tx,
                    parsed,
                    "command_refused",
                    json!({ "errors": messages }),
                    now,
                )
                .await?;
                return Ok(outcome);
            }
        }
    } else {
        (None, text.to_string())
    };
    let original = original_of(ctx, parsed, &body);
    let address = intake
        .as_ref()
        .and_then(|i| i.email.clone())
        .or_else(|| original.as_ref().and_then(|o| o.from.clone()));
    let name = intake
        .as_ref()
        .and_then(|i| i.name.clone())
        .or_else(|| original.as_ref().and_then(|o| o.from_name.clone()))
        .map(|n| crate::domain::text::single_line(&n, crate::domain::text::MAX_NAME_CHARS));
    // The term runs from when the organisation first had the complaint: the original's date,
    // never later than now.
    let received_at = original
        .as_ref()
        .and_then(|o| o.date)
        .filter(|d| *d <= message.received_at)
        .unwrap_or(message.received_at);
    let subject = original
        .as_ref()
        .and_then(|o| o.subject.clone())
        .map(|s| strip_forward_prefix(&s).0.to_string())
        .unwrap_or_else(|| subject.to_string());
    let complaint_text = match &original {
        Some(o) if !o.text.is_empty() => o.text.clone(),
        _ => body.trim().to_string(),
    };
    let channel = intake
        .as_ref()
        .and_then(|i| i.channel)
        .map(|c| c.as_str())
        .or(original.as_ref().map(|_| "email"));
    let complainant = (address.clone().unwrap_or_else(|| from.clone()), name);
    let opened = super::register::open_complaint(
        ctx,
        tx,
        super::register::Opening {
            received_at,
            complainant: &complainant,
            subject: &crate::domain::text::single_line(
                &subject,
                crate::domain::text::MAX_HEADER_CHARS,
            ),
            text: &complaint_text,
            related: None,
            actor: &actor,
            note: &format!(
                " (registered by {from} on behalf of the complainant{})",
                channel
                    .map(|c| format!(", channel {c}"))
                    .unwrap_or_default()
            ),
            sent_to: &super::ingest::sent_to_addresses(parsed),
            no_address: address.is_none(),
        },
    )
    .await?;
    message.complaint_id = Some(opened.id);
    message.classification = "intake".into();
    super::ingest::store_message(
        tx,
        message,
        parsed,
        over_size,
        attachment_shas,
        s.limits.max_mail_bytes,
    )
    .await?;
    if let Some(c) = channel {
        tx.set_field(opened.id, "channel", Some(c)).await?;
    }
    tx.set_field(opened.id, "received_by", Some(from.as_str()))
        .await?;
    if let Some(note) = original
        .as_ref()
        .map(|o| o.note.as_str())
        .filter(|n| !n.is_empty() && !opens_with_new(n))
    {
        tx.history(Some(opened.id), now, &actor, "note", note)
            .await?;
    }
    let acknowledged = match &address {
        Some(_) => {
            super::register::acknowledge(
                ctx,
                tx,
                &opened,
                &complainant,
                None,
                Vec::new(),
                None,
                s.acknowledgement.quote_text,
            )
            .await?
        }
        None => false,
    };
    scheduler::on_registered(ctx, tx, opened.id, now).await?;
    let lang = s.organisation.language.clone();
    let en = lang == "en";
    let mut done = vec![match (&address, en) {
        (Some(a), false) => format!("#nieuw: geregistreerd als {} voor {a}", opened.reference),
        (Some(a), true) => format!("#new: registered as {} for {a}", opened.reference),
        (None, false) => format!(
            "#nieuw: geregistreerd als {} (geen e-mailadres: de klager krijgt geen e-mail, neem contact op per telefoon of brief)",
            opened.reference
        ),
        (None, true) => format!(
            "#new: registered as {} (no email address: the complainant gets no mail; reach them by phone or letter)",
            opened.reference
        ),
    }];
    if acknowledged {
        done.push(if en {
            "acknowledgement sent to the complainant".into()
        } else {
            "ontvangstbevestiging verstuurd aan de klager".into()
        });
    }
    if let Some(state) = tx.complaint_state(opened.id).await? {
        send_to_sender(
            ctx,
            tx,
            &state,
            parsed,
            "command_confirmation",
            json!({ "applied": done, "late_lines": [] }),
            now,
        )
        .await?;
    }
    Ok(Some(Outcome::Registered {
        reference: opened.reference,
        acknowledged,
    }))
}

/// Keep a staff mail unfiled with `reason` (nothing registered).
async fn unfiled(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    message: &mut crate::store::NewMessage,
    parsed: &ParsedMail,
    over_size: bool,
    attachment_shas: &[Option<String>],
    reason: &str,
) -> Result<Option<super::ingest::Outcome>, ServiceError> {
    let now = ctx.clock.now();
    message.unfiled_reason = Some(reason.to_string());
    message.classification = "intake".into();
    let row = super::ingest::store_message(
        tx,
        message,
        parsed,
        over_size,
        attachment_shas,
        ctx.settings.limits.max_mail_bytes,
    )
    .await?;
    tx.history(
        None,
        now,
        &format!("mail:{}", parsed.facts.from),
        "unfiled",
        &format!("message {row}: {reason}"),
    )
    .await?;
    Ok(Some(super::ingest::Outcome::Unfiled {
        reason: reason.to_string(),
    }))
}

/// An answer to a staff mail that belongs to no complaint (a `#nieuw` that could not be read).
async fn reply_without_complaint(
    ctx: &Context,
    tx: &mut dyn StoreTx,
    parsed: &ParsedMail,
    template: &str,
    extra: Value,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let facts = &parsed.facts;
    let context = json!({
        "organisation": { "name": ctx.settings.organisation.name },
        "complaint": { "reference": "", "subject": facts.subject },
        "commands": extra,
        "message": { "subject": facts.subject },
    });
    answer_sender(ctx, tx, parsed, template, &context, None, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intake_is_recognised_by_its_first_line_and_forwards_by_their_subject() {
        assert!(opens_with_new("\n#nieuw\n#naam Jan\n\nTekst"));
        assert!(opens_with_new("#New: telefoon"));
        assert!(opens_with_new("*#nieuw*"));
        assert!(!opens_with_new("Hallo,\n#nieuw"));
        assert!(!opens_with_new("#nieuwsbrief"));
        assert_eq!(strip_forward_prefix("FW: Fwd: Klacht"), ("Klacht", true));
        assert_eq!(strip_forward_prefix("Doorst: Klacht"), ("Klacht", true));
        assert_eq!(
            strip_forward_prefix("Klacht over FW:"),
            ("Klacht over FW:", false)
        );
    }
}

//! `klachtd register`: the complaint register as seed 004 names its fields (handler, cause,
//! solution, agreement with the complainant, date handled) and the rest a coordinator keeps:
//! one row per complaint, with each milestone's due and done date and whether it met its
//! deadline, counted in the organisation's working days.
//!
//! Rows are read a page at a time and handed to the caller as they come, so a register of
//! 100,000 complaints is never held in memory; each page costs three statements.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{Context, ServiceError};
use crate::domain::calendar::local_date;
use crate::domain::procedure::{Deadline, Milestone, Progress};
use crate::store::{PAGE_ROWS, RegisterComplaint, RegisterEntry, RegisterPosition, RegisterQuery};

/// Which complaints: received from `from` up to and including `to` (organisation dates), in
/// `status` (either kind of status, as `list --status`).
#[derive(Debug, Clone, Default)]
pub struct RegisterFilter {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub status: Option<String>,
    /// Also complaints received before `from` that carry a measure (see
    /// [`crate::store::RegisterQuery::older_with_measure`]).
    pub older_with_measure: bool,
}

/// One milestone of one complaint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MilestoneCell {
    pub milestone: Milestone,
    pub due: Option<NaiveDate>,
    pub done: Option<NaiveDate>,
    /// Done by the end of the due day; `None` while open or without a due date.
    pub met: Option<bool>,
    /// Working days from receipt to done.
    pub working_days: Option<i64>,
}

/// One row of the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterRow {
    pub reference: String,
    pub received: DateTime<Utc>,
    pub received_date: NaiveDate,
    pub kind: String,
    pub channel: Option<String>,
    pub category: Option<String>,
    pub severity: String,
    /// `incident` or `structural`.
    pub nature: Option<String>,
    pub status: String,
    pub handler: Option<String>,
    pub cause: Option<String>,
    pub solution: Option<String>,
    /// Agreement with the complainant (seed 004): `yes` / `no`.
    pub agreement: Option<String>,
    /// The date handled (seed 004).
    pub handled: Option<NaiveDate>,
    /// Escalations sent (missed deadlines, a complainant who does not agree).
    pub escalations: i64,
    /// The complainant's verdict on the proposed solution: `agree` / `disagree`.
    pub verdict: Option<String>,
    pub satisfaction: Option<u8>,
    pub measure: Option<String>,
    pub received_by: Option<String>,
    pub milestones: Vec<MilestoneCell>,
}

/// The milestones the register has columns for: all that people complete (not receipt, which
/// is the received date, nor the deletion of the data).
pub const COLUMNS: [Milestone; 9] = [
    Milestone::Acknowledged,
    Milestone::HandlerKnown,
    Milestone::ProcedureExplained,
    Milestone::FirstReaction,
    Milestone::SolutionProposed,
    Milestone::Verdict,
    Milestone::Handled,
    Milestone::FollowUp,
    Milestone::Closed,
];

/// Hands every row matching `filter` to `row`, in register order. Returns how many.
pub async fn for_each_row(
    ctx: &Context,
    filter: &RegisterFilter,
    mut row: impl FnMut(RegisterRow) -> Result<(), ServiceError>,
) -> Result<usize, ServiceError> {
    for_each_complaint(ctx, filter, |c| row(make_row(ctx, c))).await
}

/// One complaint as the register and the reports read it: its row, the extras of the other
/// tables, and its deadlines under the procedure version it runs under.
pub struct ComplaintRecord {
    pub complaint: RegisterComplaint,
    pub extras: crate::store::RegisterExtras,
    pub received: DateTime<Utc>,
    pub deadlines: Vec<Deadline>,
}

/// Hands every complaint matching `filter` to `each`, in register order, a page at a time.
/// Returns how many.
pub async fn for_each_complaint(
    ctx: &Context,
    filter: &RegisterFilter,
    mut each: impl FnMut(ComplaintRecord) -> Result<(), ServiceError>,
) -> Result<usize, ServiceError> {
    let mut count = 0;
    let tz = ctx.procedure.tz;
    // The store narrows by UTC instants, a day wider than the organisation's dates on each
    // side; `received_in` then filters exactly.
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let query = RegisterQuery {
        status: filter.status.clone(),
        received_from: filter.from.and_then(|d| d.pred_opt()).and_then(midnight),
        received_before: filter
            .to
            .and_then(|d| d.checked_add_days(chrono::Days::new(2)))
            .and_then(midnight),
        older_with_measure: filter.older_with_measure,
    };
    // The next page is read, filtered and completed while this one is worked through:
    // SQLite's thread and ours overlap (a register of 100,000 rows costs the longer of the
    // two, not their sum).
    let fetch = |after: Option<RegisterPosition>| {
        let store = ctx.store.clone();
        let query = query.clone();
        let filter = filter.clone();
        tokio::spawn(async move {
            let mut page = store
                .register_page(&query, after.as_ref(), PAGE_ROWS)
                .await?;
            let full = page.len() as i64 == PAGE_ROWS;
            let last = page.last().map(|e| e.complaint.position.clone());
            page.retain(|e| received_in(tz, &e.complaint, &filter));
            store.add_register_extras(&mut page).await?;
            Ok::<_, crate::store::StoreError>((page, last.filter(|_| full)))
        })
    };
    let mut next = Some(fetch(None));
    while let Some(pending) = next.take() {
        let (page, last) = pending
            .await
            .map_err(|e| ServiceError::Invalid(format!("reading the register: {e}")))??;
        if let Some(last) = last {
            next = Some(fetch(Some(last)));
        }
        let mut tx = ctx.store.begin_read().await?;
        for RegisterEntry {
            complaint: c,
            extras: extra,
        } in page
        {
            let procedure = ctx
                .procedure
                .for_complaint(tx.as_mut(), &c.procedure, &c.procedure_version)
                .await?;
            let received = crate::store::parse_ts(&c.received_at)?;
            let progress = Progress {
                received_at: received,
                completed: extra.milestones.clone(),
                round: extra.round,
                serious: c.severity == "serious",
                extended_weeks: u32::try_from(c.extended_weeks).unwrap_or(0),
            };
            let deadlines = procedure.deadlines(&ctx.procedure.calendar, tz, &progress);
            each(ComplaintRecord {
                complaint: c,
                extras: extra,
                received,
                deadlines,
            })?;
            count += 1;
        }
    }
    Ok(count)
}

/// Received on the organisation's dates `filter` asks for (or older with a measure, when it
/// asks for those too).
fn received_in(tz: chrono_tz::Tz, c: &RegisterComplaint, filter: &RegisterFilter) -> bool {
    let Ok(received) = crate::store::parse_ts(&c.received_at) else {
        return true;
    };
    let day = local_date(received, tz);
    let from_ok = filter
        .from
        .is_none_or(|f| day >= f || (filter.older_with_measure && c.measure.is_some()));
    from_ok && filter.to.is_none_or(|t| day <= t)
}

fn make_row(ctx: &Context, record: ComplaintRecord) -> RegisterRow {
    let tz = ctx.procedure.tz;
    let cal = &ctx.procedure.calendar;
    let ComplaintRecord {
        complaint: c,
        extras: extra,
        received,
        deadlines,
    } = record;
    let received_date = local_date(received, tz);
    let milestones = COLUMNS
        .iter()
        .filter_map(|m| deadlines.iter().find(|d| d.milestone == *m))
        .map(|d| {
            let done = d.completed_at.map(|t| local_date(t, tz));
            MilestoneCell {
                milestone: d.milestone,
                due: d.due,
                done,
                met: d.met,
                working_days: done.map(|day| cal.working_days_between(received_date, day)),
            }
        })
        .collect();
    let handled = extra
        .milestones
        .get(Milestone::Handled.as_str())
        .map(|t| local_date(*t, tz));
    // The complainant's answer to the proposal is what the register keeps as agreement.
    let verdict = match c.agreement.as_deref() {
        Some("yes") => Some("agree".to_string()),
        Some("no") => Some("disagree".to_string()),
        _ => None,
    };
    RegisterRow {
        reference: c.reference,
        received,
        received_date,
        kind: c.kind,
        channel: c.channel,
        category: c.category,
        severity: c.severity,
        nature: c.incident_kind,
        status: c.status,
        handler: c.handler,
        cause: c.cause,
        solution: c.solution,
        agreement: c.agreement,
        handled,
        escalations: extra.escalations,
        verdict,
        satisfaction: c.satisfaction.as_deref().and_then(|s| s.parse().ok()),
        measure: c.measure,
        received_by: c.received_by,
        milestones,
    }
}

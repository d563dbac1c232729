//! What both backends read the same way: the SQL of a complaint's lifecycle and of the
//! register's columns (one text, with the few functions whose names differ given by each
//! backend), and the mapping of their rows to the store's types, generic over the row type.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{
    OutboxItem, RegisterComplaint, RegisterEntry, RegisterExtras, RegisterPosition, StoreError,
    parse_ts,
};

/// Where a complaint stands ([`super::ComplaintRow::status`]), from its row `c` and
/// milestones. `$strpos` is the backend's "position of a substring" (SQLite `instr`,
/// PostgreSQL `strpos`, same argument order). A position in a list of names, not
/// `ms.milestone IN (...)`: on SQLite an IN list in this correlated subquery opens an
/// ephemeral table for every row (a page-sized allocation each, 7 % of a register).
macro_rules! lifecycle_sql {
    ($strpos:literal) => {
        concat!(
            "CASE
      WHEN c.status = 'voided' THEN 'voided'
      WHEN c.status = 'closed' THEN 'closed'
      WHEN c.agreement = 'yes' OR EXISTS (
        SELECT 1 FROM milestones ms WHERE ms.complaint_id = c.id
          AND ",
            $strpos,
            "(',solution_proposed,verdict,handled,closed,', ',' || ms.milestone || ',') > 0
          AND (NOT (c.round > 0 OR c.reopen_reason IS NOT NULL)
               OR ms.completed_at >= COALESCE((SELECT mr.completed_at FROM milestones mr
                    WHERE mr.complaint_id = c.id AND mr.milestone = 'reopened'), ''))
      ) THEN 'resolved'
      WHEN c.round > 0 OR c.reopen_reason IS NOT NULL THEN 'reopened'
      WHEN c.handler IS NOT NULL THEN 'in_progress'
      ELSE 'new'
    END"
        )
    };
}

/// The columns of a [`super::ComplaintRow`] (by name), from `complaints c` joined to its
/// related complaint `r`.
macro_rules! complaint_columns {
    ($strpos:literal) => {
        concat!(
            "c.id, c.reference, c.ref_year, c.ref_prefix, c.ref_number,
    c.received_at, c.status, c.kind, c.severity,
    c.complainant_address, c.complainant_name, c.subject, r.reference AS related_reference,
    c.procedure_name, c.procedure_version, c.language, c.category, c.cause, c.solution,
    c.handler, c.void_reason, c.subject_person, c.extended_weeks,
    c.incident_kind, c.agreement, CAST(c.satisfaction AS TEXT) AS satisfaction,
    c.channel, c.received_by, c.measure, c.status AS stored_status, ",
            $crate::store::rows::lifecycle_sql!($strpos),
            " AS lifecycle"
        )
    };
}

/// What the register and the reports read of a complaint, in the order
/// [`register_complaint`] reads them by index (no name lookups, no personal data).
/// `$string_agg` is the backend's aggregate that joins strings with a separator (SQLite
/// `group_concat`, PostgreSQL `string_agg`).
macro_rules! register_columns {
    ($strpos:literal, $string_agg:literal) => {
        concat!(
            "c.id, c.reference, c.ref_year, c.ref_prefix, c.ref_number, c.received_at, ",
            $crate::store::rows::lifecycle_sql!($strpos),
            ", c.kind, c.severity, c.procedure_name, c.procedure_version, c.category, c.cause,
    c.solution, c.handler, c.extended_weeks, c.incident_kind, c.agreement,
    CAST(c.satisfaction AS TEXT), c.channel, c.received_by, c.measure, c.round,
    (SELECT ",
            $string_agg,
            "(ms.milestone || '=' || ms.completed_at, ',')
       FROM milestones ms WHERE ms.complaint_id = c.id)"
        )
    };
}

pub(crate) use {complaint_columns, lifecycle_sql, register_columns};

/// A row of [`register_columns!`].
pub(crate) fn register_complaint<'r, R>(r: &'r R) -> Result<RegisterEntry, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    let complaint = RegisterComplaint {
        id: r.try_get(0)?,
        reference: r.try_get(1)?,
        position: RegisterPosition {
            year: r.try_get(2)?,
            prefix: r.try_get(3)?,
            number: r.try_get(4)?,
        },
        received_at: r.try_get(5)?,
        status: r.try_get(6)?,
        kind: r.try_get(7)?,
        severity: r.try_get(8)?,
        procedure: r.try_get(9)?,
        procedure_version: r.try_get(10)?,
        category: r.try_get(11)?,
        cause: r.try_get(12)?,
        solution: r.try_get(13)?,
        handler: r.try_get(14)?,
        extended_weeks: r.try_get(15)?,
        incident_kind: r.try_get(16)?,
        agreement: r.try_get(17)?,
        satisfaction: r.try_get(18)?,
        channel: r.try_get(19)?,
        received_by: r.try_get(20)?,
        measure: r.try_get(21)?,
    };
    let mut extras = RegisterExtras {
        round: u32::try_from(r.try_get::<i64, _>(22)?).unwrap_or(0),
        ..RegisterExtras::default()
    };
    // Milestone names are ours ([a-z_]) and times are RFC 3339 (`ts`): neither holds the
    // separators.
    if let Some(list) = r.try_get::<Option<String>, _>(23)? {
        for item in list.split(',') {
            let (milestone, at) = item.split_once('=').ok_or_else(|| {
                StoreError::Query(format!(
                    "bad milestone {item:?} of {} in database",
                    complaint.reference
                ))
            })?;
            extras
                .milestones
                .insert(milestone.to_string(), parse_ts(at)?);
        }
    }
    Ok(RegisterEntry { complaint, extras })
}

/// A row of the outbox as the sender claims it (`recipients` comma-separated).
pub(crate) fn outbox_item<'r, R>(r: &'r R) -> Result<OutboxItem, StoreError>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    let recipients: String = r.try_get("recipients")?;
    Ok(OutboxItem {
        id: r.try_get("id")?,
        complaint_id: r.try_get("complaint_id")?,
        template: r.try_get("template")?,
        message_id: r.try_get("message_id")?,
        envelope_from: r.try_get("envelope_from")?,
        recipients: recipients
            .split(',')
            .map(|s| s.trim().to_string())
            .collect(),
        subject: r.try_get("subject")?,
        raw: r.try_get("raw")?,
        attempts: r.try_get("attempts")?,
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
    })
}

/// Any row type that derives `FromRow`, with the store's error.
pub(crate) fn from_row<'r, R: Row, T: sqlx::FromRow<'r, R>>(r: &'r R) -> Result<T, StoreError> {
    Ok(T::from_row(r)?)
}

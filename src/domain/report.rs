//! The figures of the analysis report and of the anonymised public annual report (issue #11).
//!
//! Pure: the services read one [`ComplaintFacts`] row per complaint from the store, call
//! [`analyse`] and, for the website, [`public_report`], and render the result. No I/O, no clock
//! (`now` is a parameter), no database. Everything is deterministic: maps are `BTreeMap`s and
//! every list has a stated order, so the same rows always give the same report.
//!
//! Selection: a complaint belongs to a period by the local date (in the organisation's time
//! zone) on which it was received. Voided complaints (status `voided`, a registration made by
//! mistake) are left out of every figure.
//!
//! Times are counted in working days of the organisation's [`Calendar`]: the number of working
//! days `d` with `received < d <= done`, local dates, so a complaint received on Friday and
//! answered on Monday took 1 working day, one answered on the day it came in took 0.
//!
//! Percentiles use the nearest-rank method: the p-th percentile of `n` sorted values is the
//! value at rank `ceil(p/100 * n)` (1-based), always one of the observed values. The median is
//! the usual one: the middle value, or the mean of the two middle values when `n` is even.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

use super::calendar::{Calendar, at_local, local_date};
use super::procedure::{Deadline, Milestone};

// ---------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------

/// One complaint as the reports see it; the services fill it from the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComplaintFacts {
    /// `KL-2026-0007`. Only in the internal report (missed deadlines, measures).
    pub reference: String,
    /// When the complaint was received; its local date decides the period it belongs to.
    pub received: DateTime<Utc>,
    /// One of the procedure's kinds (`complaint`, `compliment`, ...).
    pub kind: String,
    /// A category label from the configuration; None (or blank) when not set.
    pub category: Option<String>,
    /// `normal`, `serious`, ... as stored.
    pub severity: String,
    /// How it came in: `email`, `phone`, `web`, ...
    pub channel: String,
    /// `incident` or `structural` when staff classified it.
    pub nature: Option<String>,
    /// The lifecycle id (`new`, `in_progress`, ..., `voided`); `voided` is left out of every
    /// figure.
    pub status: String,
    /// The handler's address. Not used in any figure; carried for the register, which reads the
    /// same rows.
    pub handler: Option<String>,
    /// The cause staff recorded, free text: counted (normalised) in the internal report, never
    /// shown in the public one.
    pub cause: Option<String>,
    /// The measure or recommendation recorded on this complaint (`#maatregel`), free text.
    pub measure: Option<String>,
    /// When the measure was recorded. None when unknown: the measure then counts as taken when
    /// its complaint was received, so a later complaint with the same cause counts as one that
    /// came back after it.
    pub measure_recorded: Option<DateTime<Utc>>,
    /// Whether complainant and organisation agreed on the solution.
    pub agreement: Option<bool>,
    /// The complainant's score, 1 to 5; other values are ignored.
    pub satisfaction: Option<u8>,
    /// How many times the complaint was escalated.
    pub escalations: u32,
    /// Whether the complainant was pointed to the appeal body (not agreeing, Awb 9:12 / 9:18).
    pub appeal_pointed: bool,
    /// The procedure's milestones with due and done; one entry per milestone (when there are
    /// more, the first counts).
    pub milestones: Vec<MilestoneFact>,
}

/// One milestone of one complaint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MilestoneFact {
    pub milestone: Milestone,
    /// The last local day on which it was on time; None when the procedure sets no term.
    pub due: Option<NaiveDate>,
    /// When it was reached; None while open.
    pub done: Option<DateTime<Utc>>,
}

impl From<&Deadline> for MilestoneFact {
    fn from(d: &Deadline) -> Self {
        MilestoneFact {
            milestone: d.milestone,
            due: d.due,
            done: d.completed_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Periods
// ---------------------------------------------------------------------------------------------

/// The period a report covers. Build one with [`Period::parse`] or [`Period::range`]; a value
/// built by hand with a quarter outside 1..=4 or a month outside 1..=12 is read as the nearest
/// valid one, and a range whose last day is before its first as empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Year(i32),
    /// Year and quarter (1..=4).
    Quarter(i32, u8),
    /// Year and month (1..=12).
    Month(i32, u32),
    /// First and last day, both included (`--from` / `--to`).
    Range(NaiveDate, NaiveDate),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error(
        "period {0:?}: expected a year (2026), a quarter (2026-Q3), a month (2026-11) or a range (2026-01-01..2026-03-31)"
    )]
    Syntax(String),
    #[error("period {0:?}: a quarter is 1 to 4")]
    Quarter(String),
    #[error("period {0:?}: a month is 1 to 12")]
    Month(String),
    #[error("period: {from} is after {to}")]
    Reversed { from: NaiveDate, to: NaiveDate },
}

impl Period {
    /// `2026`, `2026-Q3` (or `q3`), `2026-11`, or `2026-01-01..2026-03-31` (both days included).
    pub fn parse(text: &str) -> Result<Period, PeriodError> {
        let s = text.trim();
        let syntax = || PeriodError::Syntax(text.to_string());
        if let Some((from, to)) = s.split_once("..") {
            let day =
                |d: &str| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| syntax());
            return Period::range(day(from)?, day(to)?);
        }
        let four_digits = |y: &str| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit());
        let year = |y: &str| -> Result<i32, PeriodError> {
            if four_digits(y) {
                y.parse().map_err(|_| syntax())
            } else {
                Err(syntax())
            }
        };
        let digits =
            |d: &str| !d.is_empty() && d.len() <= 2 && d.bytes().all(|b| b.is_ascii_digit());
        match s.split_once('-') {
            None => Ok(Period::Year(year(s)?)),
            Some((y, rest)) => {
                let y = year(y)?;
                if let Some(q) = rest.strip_prefix(['Q', 'q']) {
                    if !digits(q) {
                        return Err(syntax());
                    }
                    match q.parse::<u8>() {
                        Ok(q @ 1..=4) => Ok(Period::Quarter(y, q)),
                        _ => Err(PeriodError::Quarter(text.to_string())),
                    }
                } else {
                    if !digits(rest) {
                        return Err(syntax());
                    }
                    match rest.parse::<u32>() {
                        Ok(m @ 1..=12) => Ok(Period::Month(y, m)),
                        _ => Err(PeriodError::Month(text.to_string())),
                    }
                }
            }
        }
    }

    /// The days `from` through `to`, both included.
    pub fn range(from: NaiveDate, to: NaiveDate) -> Result<Period, PeriodError> {
        if to < from {
            Err(PeriodError::Reversed { from, to })
        } else {
            Ok(Period::Range(from, to))
        }
    }

    /// The first local day of the period and the day after its last (end exclusive).
    pub fn dates(&self) -> (NaiveDate, NaiveDate) {
        match *self {
            Period::Year(y) => (first_of_month(y, 1), first_of_month(y.saturating_add(1), 1)),
            Period::Quarter(y, q) => {
                let first = 3 * u32::from(q.clamp(1, 4)) - 2;
                let (ny, nm) = month_after(y, first + 2);
                (first_of_month(y, first), first_of_month(ny, nm))
            }
            Period::Month(y, m) => {
                let m = m.clamp(1, 12);
                let (ny, nm) = month_after(y, m);
                (first_of_month(y, m), first_of_month(ny, nm))
            }
            Period::Range(from, to) => {
                let end = to.succ_opt().unwrap_or(to);
                (from, end.max(from))
            }
        }
    }

    /// The period as instants: local midnight at the start of its first day and local midnight
    /// after its last (end exclusive), for a query on `received`.
    pub fn bounds(&self, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        let (start, end) = self.dates();
        (
            at_local(start, NaiveTime::MIN, tz),
            at_local(end, NaiveTime::MIN, tz),
        )
    }

    /// The period of the same length just before: the previous year, quarter or month; for a
    /// range, as many days ending the day before it starts.
    pub fn previous(&self) -> Period {
        match *self {
            Period::Year(y) => Period::Year(y.saturating_sub(1)),
            Period::Quarter(y, q) => match q.clamp(1, 4) {
                1 => Period::Quarter(y.saturating_sub(1), 4),
                q => Period::Quarter(y, q - 1),
            },
            Period::Month(y, m) => match m.clamp(1, 12) {
                1 => Period::Month(y.saturating_sub(1), 12),
                m => Period::Month(y, m - 1),
            },
            Period::Range(..) => {
                let (start, end) = self.dates();
                let days = u64::try_from((end - start).num_days().max(1)).unwrap_or(1);
                let last = start.pred_opt().unwrap_or(start);
                let first = start.checked_sub_days(Days::new(days)).unwrap_or(last);
                Period::Range(first, last)
            }
        }
    }

    /// Every (year, month) the period touches, in order.
    pub fn months(&self) -> Vec<(i32, u32)> {
        let (start, end) = self.dates();
        let mut out = Vec::new();
        if end <= start {
            return out;
        }
        let last = end.pred_opt().unwrap_or(end);
        let (mut y, mut m) = (start.year(), start.month());
        while (y, m) <= (last.year(), last.month()) {
            out.push((y, m));
            (y, m) = month_after(y, m);
        }
        out
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Period::Year(y) => write!(f, "{y:04}"),
            Period::Quarter(y, q) => write!(f, "{y:04}-Q{q}"),
            Period::Month(y, m) => write!(f, "{y:04}-{m:02}"),
            Period::Range(from, to) => write!(f, "{from}..{to}"),
        }
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn first_of_month(y: i32, m: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(if y < 0 {
        NaiveDate::MIN
    } else {
        NaiveDate::MAX
    })
}

fn month_after(y: i32, m: u32) -> (i32, u32) {
    if m >= 12 {
        (y.saturating_add(1), 1)
    } else {
        (y, m + 1)
    }
}

// ---------------------------------------------------------------------------------------------
// The analysis
// ---------------------------------------------------------------------------------------------

/// The milestones whose times and deadlines the reports show, in this order.
pub const REPORTED_MILESTONES: [Milestone; 4] = [
    Milestone::Acknowledged,
    Milestone::FirstReaction,
    Milestone::SolutionProposed,
    Milestone::Handled,
];

/// A count in the period and in the previous period of the same length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    pub current: u32,
    pub previous: u32,
}

impl Counts {
    /// Current minus previous.
    pub fn change(&self) -> i64 {
        i64::from(self.current) - i64::from(self.previous)
    }
}

/// One line of a breakdown; `label` None is the row of complaints without a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakdownRow {
    pub label: Option<String>,
    pub counts: Counts,
}

/// Counts by one property. Rows: every label seen in either period, sorted; then the row
/// without a value, when there is any.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Breakdown {
    pub rows: Vec<BreakdownRow>,
    pub total: Counts,
}

/// A deadline that was not met: done after the due day, or still open after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissedDeadline {
    pub reference: String,
    pub due: NaiveDate,
    /// Local date it was done; None while still open.
    pub done: Option<NaiveDate>,
    /// Working days after the due day up to done (or up to today while open); 0 when it was
    /// done on a non-working day just after.
    pub working_days_late: u32,
}

/// Times and deadlines of one milestone over the complaints of the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MilestoneStats {
    pub milestone: Milestone,
    /// Complaints of the period that reached it (with a time).
    pub completed: u32,
    /// Median working days from receipt to done; None when none was done.
    pub median_days: Option<f64>,
    /// 90th percentile, nearest rank, of the same; None when none was done.
    pub p90_days: Option<u32>,
    /// Done on or before the due day.
    pub met: u32,
    /// Done after the due day, or open while the due day has passed.
    pub missed: u32,
    /// Open, due today or later: not counted in the share.
    pub pending: u32,
    /// `met / (met + missed)`; None when there is nothing to judge.
    pub share_met: Option<f64>,
    /// The misses, by due date, then reference.
    pub missed_list: Vec<MissedDeadline>,
}

/// The complainants' scores.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Satisfaction {
    pub responses: u32,
    pub mean: Option<f64>,
    /// How many gave 1, 2, 3, 4 and 5.
    pub distribution: [u32; 5],
}

/// A cause and how often it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CauseCount {
    /// The spelling used most often in the period (ties: the earliest).
    pub cause: String,
    pub counts: Counts,
}

/// A measure recorded on a complaint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasureRecord {
    pub reference: String,
    pub measure: String,
    /// When recorded; None when unknown (then the receipt of its complaint stands in).
    pub recorded: Option<DateTime<Utc>>,
    pub cause: Option<String>,
}

/// A cause that came back: complaints of the period with this cause received after a measure
/// had been recorded on another complaint with the same cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecurringCause {
    pub cause: String,
    /// The earliest measure on this cause (it may lie before the period).
    pub first_measure: MeasureRecord,
    /// References, by receipt.
    pub came_back: Vec<String>,
}

/// Complaints received in one month of the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthCount {
    pub year: i32,
    pub month: u32,
    pub total: u32,
    /// Kinds with at least one complaint.
    pub by_kind: BTreeMap<String, u32>,
}

/// Every figure of the internal analysis report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub period: Period,
    pub previous_period: Period,
    /// First local day of the period.
    pub start: NaiveDate,
    /// The day after its last.
    pub end: NaiveDate,
    /// The local date `now` fell on: deadlines before it that are open count as missed.
    pub today: NaiveDate,
    /// Complaints (all kinds) received in the period and in the previous one.
    pub total: Counts,
    /// Voided complaints received in the period, left out of everything else.
    pub voided: u32,
    pub by_kind: Breakdown,
    pub by_category: Breakdown,
    pub by_severity: Breakdown,
    pub by_channel: Breakdown,
    pub by_nature: Breakdown,
    /// One entry per [`REPORTED_MILESTONES`], in that order.
    pub milestones: Vec<MilestoneStats>,
    /// Complaints that missed any reported deadline, sorted.
    pub missed: Vec<String>,
    /// Escalations, summed over the complaints.
    pub escalations: u32,
    /// Complaints escalated at least once.
    pub escalated: u32,
    /// Complaints where complainant and organisation did not agree.
    pub not_agreed: u32,
    /// Complaints whose complainant was pointed to the appeal body.
    pub appeals_pointed: u32,
    pub satisfaction: Satisfaction,
    /// Causes recorded in the period, normalised (trimmed, spaces collapsed, case-insensitive),
    /// most frequent first, then alphabetically.
    pub causes: Vec<CauseCount>,
    /// Causes that came back after a measure, most came-back complaints first.
    pub recurring_causes: Vec<RecurringCause>,
    /// Measures recorded in the period (by when recorded), for the internal report only.
    pub measures: Vec<MeasureRecord>,
    /// Every month the period touches, in order, with zeros.
    pub months: Vec<MonthCount>,
}

/// The figures of `period` from `facts`, which should hold every complaint received in the
/// period and in [`Period::previous`] (more does no harm; measures on older complaints count for
/// [`Analysis::recurring_causes`] and, when recorded in the period, [`Analysis::measures`]).
pub fn analyse(
    facts: &[ComplaintFacts],
    period: &Period,
    calendar: &Calendar,
    tz: Tz,
    now: DateTime<Utc>,
) -> Analysis {
    let today = local_date(now, tz);
    let previous_period = period.previous();
    let (start, end) = period.dates();
    let (prev_start, prev_end) = previous_period.dates();
    let in_period = |f: &ComplaintFacts| {
        let d = local_date(f.received, tz);
        start <= d && d < end
    };
    let in_previous = |f: &ComplaintFacts| {
        let d = local_date(f.received, tz);
        prev_start <= d && d < prev_end
    };

    // Sorted by receipt so that every tie below is broken the same way whatever the input order.
    let mut live: Vec<&ComplaintFacts> = facts.iter().filter(|f| !is_voided(f)).collect();
    live.sort_by(|a, b| {
        a.received
            .cmp(&b.received)
            .then_with(|| a.reference.cmp(&b.reference))
    });
    let current: Vec<&ComplaintFacts> = live.iter().copied().filter(|f| in_period(f)).collect();
    let previous: Vec<&ComplaintFacts> = live.iter().copied().filter(|f| in_previous(f)).collect();
    let voided = facts
        .iter()
        .filter(|f| is_voided(f) && in_period(f))
        .count();

    let milestones: Vec<MilestoneStats> = REPORTED_MILESTONES
        .iter()
        .map(|&m| milestone_stats(m, &current, calendar, tz, today))
        .collect();
    let mut missed: Vec<String> = milestones
        .iter()
        .flat_map(|s| s.missed_list.iter().map(|m| m.reference.clone()))
        .collect();
    missed.sort();
    missed.dedup();

    Analysis {
        period: *period,
        previous_period,
        start,
        end,
        today,
        total: Counts {
            current: count(current.len()),
            previous: count(previous.len()),
        },
        voided: count(voided),
        by_kind: breakdown(&current, &previous, |f| Some(f.kind.as_str())),
        by_category: breakdown(&current, &previous, |f| f.category.as_deref()),
        by_severity: breakdown(&current, &previous, |f| Some(f.severity.as_str())),
        by_channel: breakdown(&current, &previous, |f| Some(f.channel.as_str())),
        by_nature: breakdown(&current, &previous, |f| f.nature.as_deref()),
        milestones,
        missed,
        escalations: current
            .iter()
            .fold(0u32, |acc, f| acc.saturating_add(f.escalations)),
        escalated: count(current.iter().filter(|f| f.escalations > 0).count()),
        not_agreed: count(
            current
                .iter()
                .filter(|f| f.agreement == Some(false))
                .count(),
        ),
        appeals_pointed: count(current.iter().filter(|f| f.appeal_pointed).count()),
        satisfaction: satisfaction(&current),
        causes: causes(&current, &previous),
        recurring_causes: recurring_causes(&live, &current),
        measures: measures_recorded(&live, start, end, tz),
        months: months(period, &current, tz),
    }
}

fn is_voided(f: &ComplaintFacts) -> bool {
    f.status.trim().eq_ignore_ascii_case("voided")
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A label that says something: trimmed, not empty.
fn label(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn breakdown(
    current: &[&ComplaintFacts],
    previous: &[&ComplaintFacts],
    key: impl Fn(&ComplaintFacts) -> Option<&str>,
) -> Breakdown {
    let mut rows: BTreeMap<String, Counts> = BTreeMap::new();
    let mut none = Counts::default();
    let mut add = |f: &ComplaintFacts, cur: bool| {
        let slot = match label(key(f)) {
            Some(l) => rows.entry(l.to_string()).or_default(),
            None => &mut none,
        };
        if cur {
            slot.current += 1;
        } else {
            slot.previous += 1;
        }
    };
    for f in current {
        add(f, true);
    }
    for f in previous {
        add(f, false);
    }
    let mut out: Vec<BreakdownRow> = rows
        .into_iter()
        .map(|(l, counts)| BreakdownRow {
            label: Some(l),
            counts,
        })
        .collect();
    if none != Counts::default() {
        out.push(BreakdownRow {
            label: None,
            counts: none,
        });
    }
    Breakdown {
        rows: out,
        total: Counts {
            current: count(current.len()),
            previous: count(previous.len()),
        },
    }
}

fn working_days(calendar: &Calendar, from: NaiveDate, to: NaiveDate) -> u32 {
    u32::try_from(calendar.working_days_between(from, to).max(0)).unwrap_or(u32::MAX)
}

fn milestone_stats(
    milestone: Milestone,
    current: &[&ComplaintFacts],
    calendar: &Calendar,
    tz: Tz,
    today: NaiveDate,
) -> MilestoneStats {
    let mut times = Vec::new();
    let (mut met, mut missed, mut pending) = (0u32, 0u32, 0u32);
    let mut missed_list = Vec::new();
    for f in current {
        let Some(m) = f.milestones.iter().find(|m| m.milestone == milestone) else {
            continue;
        };
        let received = local_date(f.received, tz);
        let done = m.done.map(|t| local_date(t, tz));
        if let Some(d) = done {
            times.push(working_days(calendar, received, d));
        }
        let Some(due) = m.due else { continue };
        let late_until = match done {
            Some(d) if d <= due => {
                met += 1;
                continue;
            }
            Some(d) => d,
            None if due < today => today,
            None => {
                pending += 1;
                continue;
            }
        };
        missed += 1;
        missed_list.push(MissedDeadline {
            reference: f.reference.clone(),
            due,
            done,
            working_days_late: working_days(calendar, due, late_until),
        });
    }
    times.sort_unstable();
    missed_list.sort_by(|a, b| {
        a.due
            .cmp(&b.due)
            .then_with(|| a.reference.cmp(&b.reference))
    });
    let judged = met + missed;
    MilestoneStats {
        milestone,
        completed: count(times.len()),
        median_days: median(&times),
        p90_days: nearest_rank(&times, 90),
        met,
        missed,
        pending,
        share_met: (judged > 0).then(|| f64::from(met) / f64::from(judged)),
        missed_list,
    }
}

/// The middle of `sorted`, or the mean of the two middle values.
fn median(sorted: &[u32]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    if n % 2 == 1 {
        Some(f64::from(sorted[mid]))
    } else {
        Some((f64::from(sorted[mid - 1]) + f64::from(sorted[mid])) / 2.0)
    }
}

/// The `pct`-th percentile of `sorted` by nearest rank: the value at rank `ceil(pct/100 * n)`.
fn nearest_rank(sorted: &[u32], pct: u32) -> Option<u32> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pct = pct.clamp(1, 100) as usize;
    let rank = (pct * n).div_ceil(100);
    sorted.get(rank.clamp(1, n) - 1).copied()
}

fn satisfaction(current: &[&ComplaintFacts]) -> Satisfaction {
    let mut distribution = [0u32; 5];
    let mut sum = 0u64;
    for score in current.iter().filter_map(|f| f.satisfaction) {
        if (1..=5).contains(&score) {
            distribution[usize::from(score - 1)] += 1;
            sum += u64::from(score);
        }
    }
    let responses: u32 = distribution.iter().sum();
    Satisfaction {
        responses,
        mean: (responses > 0).then(|| sum as f64 / f64::from(responses)),
        distribution,
    }
}

/// The form causes are compared in: trimmed, inner spaces collapsed, lower case.
fn cause_key(s: &str) -> Option<String> {
    let key = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    (!key.is_empty()).then_some(key)
}

/// Per normalised cause, the spelling used most often in `facts` (ties: the earliest).
fn cause_spellings(facts: &[&ComplaintFacts]) -> BTreeMap<String, String> {
    // key -> spelling -> (uses, first position)
    let mut seen: BTreeMap<String, BTreeMap<String, (u32, usize)>> = BTreeMap::new();
    for (i, f) in facts.iter().enumerate() {
        let Some(cause) = f.cause.as_deref() else {
            continue;
        };
        let Some(key) = cause_key(cause) else {
            continue;
        };
        let spelling = cause.split_whitespace().collect::<Vec<_>>().join(" ");
        let e = seen
            .entry(key)
            .or_default()
            .entry(spelling)
            .or_insert((0, i));
        e.0 += 1;
    }
    seen.into_iter()
        .filter_map(|(key, spellings)| {
            spellings
                .into_iter()
                .max_by(|a, b| a.1.0.cmp(&b.1.0).then_with(|| b.1.1.cmp(&a.1.1)))
                .map(|(s, _)| (key, s))
        })
        .collect()
}

fn causes(current: &[&ComplaintFacts], previous: &[&ComplaintFacts]) -> Vec<CauseCount> {
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    for f in current {
        if let Some(k) = f.cause.as_deref().and_then(cause_key) {
            counts.entry(k).or_default().current += 1;
        }
    }
    for f in previous {
        if let Some(k) = f.cause.as_deref().and_then(cause_key) {
            // Only causes of the period are listed; the previous count is for comparison.
            if let Some(c) = counts.get_mut(&k) {
                c.previous += 1;
            }
        }
    }
    let spellings = cause_spellings(current);
    let mut out: Vec<(String, CauseCount)> = counts
        .into_iter()
        .map(|(k, counts)| {
            let cause = spellings.get(&k).cloned().unwrap_or_else(|| k.clone());
            (k, CauseCount { cause, counts })
        })
        .collect();
    out.sort_by(|a, b| {
        b.1.counts
            .current
            .cmp(&a.1.counts.current)
            .then_with(|| a.0.cmp(&b.0))
    });
    out.into_iter().map(|(_, c)| c).collect()
}

fn measure_text(f: &ComplaintFacts) -> Option<&str> {
    label(f.measure.as_deref())
}

/// When a measure counts as taken: when recorded, else when its complaint came in.
fn measure_at(f: &ComplaintFacts) -> DateTime<Utc> {
    f.measure_recorded.unwrap_or(f.received)
}

fn measure_record(f: &ComplaintFacts, text: &str) -> MeasureRecord {
    MeasureRecord {
        reference: f.reference.clone(),
        measure: text.to_string(),
        recorded: f.measure_recorded,
        cause: label(f.cause.as_deref()).map(str::to_string),
    }
}

fn recurring_causes(live: &[&ComplaintFacts], current: &[&ComplaintFacts]) -> Vec<RecurringCause> {
    // Per cause, its measures by when they were taken.
    let mut measured: BTreeMap<String, Vec<&ComplaintFacts>> = BTreeMap::new();
    for f in live {
        if measure_text(f).is_none() {
            continue;
        }
        if let Some(k) = f.cause.as_deref().and_then(cause_key) {
            measured.entry(k).or_default().push(f);
        }
    }
    for list in measured.values_mut() {
        list.sort_by(|a, b| {
            measure_at(a)
                .cmp(&measure_at(b))
                .then_with(|| a.reference.cmp(&b.reference))
        });
    }
    let mut back: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in current {
        let Some(k) = f.cause.as_deref().and_then(cause_key) else {
            continue;
        };
        let Some(list) = measured.get(&k) else {
            continue;
        };
        let after_another = list
            .iter()
            .take_while(|m| measure_at(m) < f.received)
            .any(|m| m.reference != f.reference);
        if after_another {
            back.entry(k).or_default().push(f.reference.clone());
        }
    }
    let spellings = cause_spellings(current);
    let mut out: Vec<(String, RecurringCause)> = back
        .into_iter()
        .filter_map(|(k, came_back)| {
            let first = measured.get(&k)?.first()?;
            let first_measure = measure_record(first, measure_text(first)?);
            let cause = spellings.get(&k).cloned().unwrap_or_else(|| k.clone());
            Some((
                k,
                RecurringCause {
                    cause,
                    first_measure,
                    came_back,
                },
            ))
        })
        .collect();
    out.sort_by(|a, b| {
        b.1.came_back
            .len()
            .cmp(&a.1.came_back.len())
            .then_with(|| a.0.cmp(&b.0))
    });
    out.into_iter().map(|(_, r)| r).collect()
}

fn measures_recorded(
    live: &[&ComplaintFacts],
    start: NaiveDate,
    end: NaiveDate,
    tz: Tz,
) -> Vec<MeasureRecord> {
    let mut found: Vec<(DateTime<Utc>, MeasureRecord)> = live
        .iter()
        .filter_map(|f| {
            let text = measure_text(f)?;
            let at = measure_at(f);
            let day = local_date(at, tz);
            (start <= day && day < end).then(|| (at, measure_record(f, text)))
        })
        .collect();
    found.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.reference.cmp(&b.1.reference))
    });
    found.into_iter().map(|(_, m)| m).collect()
}

fn months(period: &Period, current: &[&ComplaintFacts], tz: Tz) -> Vec<MonthCount> {
    let mut out: Vec<MonthCount> = period
        .months()
        .into_iter()
        .map(|(year, month)| MonthCount {
            year,
            month,
            total: 0,
            by_kind: BTreeMap::new(),
        })
        .collect();
    for f in current {
        let d = local_date(f.received, tz);
        if let Some(m) = out
            .iter_mut()
            .find(|m| m.year == d.year() && m.month == d.month())
        {
            m.total += 1;
            *m.by_kind.entry(f.kind.trim().to_string()).or_default() += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The public report
// ---------------------------------------------------------------------------------------------

/// What a cell hidden to protect another shows (complementary suppression): the mark Statistics
/// Netherlands uses for "geheim". Such a cell usually holds the threshold or more, so it cannot
/// say "< 5"; and a reader cannot tell its value apart from any other.
pub const SUPPRESSED_MARK: &str = "x";

/// One count in the public report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Count(u32),
    /// A count from 1 to the threshold minus one, shown as "< threshold" (the value is the
    /// threshold). Only where no other hidden entry of its lines is an `x`, and where the
    /// bounds 1 and threshold - 1 tell nothing more (see [`public_report`]).
    Below(u32),
    /// Hidden so that a small count cannot be computed back, or small in a line that has such a
    /// cell: shown as [`SUPPRESSED_MARK`].
    Suppressed,
}

impl Cell {
    pub fn count(self) -> Option<u32> {
        match self {
            Cell::Count(n) => Some(n),
            Cell::Below(_) | Cell::Suppressed => None,
        }
    }

    pub fn is_suppressed(self) -> bool {
        !matches!(self, Cell::Count(_))
    }

    /// A count on its own (no total it adds up to): hidden when below the threshold.
    fn primary(n: u32, threshold: u32) -> Cell {
        if n > 0 && n < threshold {
            Cell::Below(threshold)
        } else {
            Cell::Count(n)
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Count(n) => write!(f, "{n}"),
            Cell::Below(t) => write!(f, "< {t}"),
            Cell::Suppressed => f.write_str(SUPPRESSED_MARK),
        }
    }
}

/// A number, or the text shown ("< 5", [`SUPPRESSED_MARK`]), so a template prints either as
/// it comes.
impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Count(n) => s.serialize_u32(*n),
            Cell::Below(_) => s.collect_str(self),
            Cell::Suppressed => s.serialize_str(SUPPRESSED_MARK),
        }
    }
}

/// The period and the previous one. They are protected as separate tables, so show a change
/// only when both are counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PublicPair {
    pub current: Cell,
    pub previous: Cell,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicRow {
    /// A label from the configuration or procedure (never free text); None: not set.
    pub label: Option<String>,
    pub counts: PublicPair,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicBreakdown {
    pub rows: Vec<PublicRow>,
    pub total: PublicPair,
}

/// One month of [`PublicGrid`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicMonth {
    pub year: i32,
    pub month: u32,
    /// One per [`PublicGrid::columns`].
    pub cells: Vec<Cell>,
    /// The month's total (the bar of the chart).
    pub total: Cell,
}

/// Complaints per month and kind of the period, protected along rows and columns at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicGrid {
    /// The kinds, sorted.
    pub columns: Vec<String>,
    pub months: Vec<PublicMonth>,
    pub column_totals: Vec<Cell>,
    pub total: Cell,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicMilestone {
    pub milestone: Milestone,
    pub completed: Cell,
    /// None unless at least `threshold` complaints reached the milestone.
    pub median_days: Option<f64>,
    pub p90_days: Option<u32>,
    pub met: Cell,
    pub missed: Cell,
    /// `met + missed`.
    pub judged: Cell,
    /// Only when `met` and `judged` are shown.
    pub share_met: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicSatisfaction {
    /// Scores 1 to 5.
    pub distribution: [Cell; 5],
    pub responses: Cell,
    /// Only when no score is suppressed: with the count of responses, a mean is one more
    /// equation that could tell two hidden scores apart.
    pub mean: Option<f64>,
}

/// The anonymised annual report: aggregates only; no reference, name, address, cause or
/// measure. Every count from 1 to `threshold - 1` is suppressed, 0 is shown, and in every table
/// with a total enough further cells are suppressed that no suppressed count can be computed
/// back (see [`public_report`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicReport {
    pub period: Period,
    pub previous_period: Period,
    pub threshold: u32,
    /// Complaints (all kinds) received; the total of every breakdown.
    pub total: PublicPair,
    /// The current column is [`PublicGrid::column_totals`].
    pub by_kind: PublicBreakdown,
    pub by_category: PublicBreakdown,
    pub by_severity: PublicBreakdown,
    pub by_channel: PublicBreakdown,
    pub by_nature: PublicBreakdown,
    pub kind_by_month: PublicGrid,
    pub milestones: Vec<PublicMilestone>,
    pub escalations: Cell,
    pub escalated: Cell,
    pub not_agreed: Cell,
    pub appeals_pointed: Cell,
    pub satisfaction: PublicSatisfaction,
}

impl PublicReport {
    /// The legend for [`SUPPRESSED_MARK`]: Dutch unless `lang` is `en`.
    pub fn suppression_note(&self, lang: &str) -> String {
        let t = self.threshold;
        if lang.eq_ignore_ascii_case("en") {
            format!(
                "< {t}: fewer than {t}, not shown. {SUPPRESSED_MARK}: not shown, so that no count below {t} can be worked out from the totals (it may be any number)."
            )
        } else {
            format!(
                "< {t}: minder dan {t}, niet getoond. {SUPPRESSED_MARK}: niet getoond, zodat geen aantal kleiner dan {t} uit de totalen is terug te rekenen (het kan elk aantal zijn)."
            )
        }
    }
}

/// The public report of `a`, with counts below `threshold` (usually 5) suppressed.
///
/// The rule, for every table whose cells add up to a shown total (each row and each column of
/// the month × kind table, its margins, each breakdown, each milestone's met/missed, the
/// satisfaction scores):
/// 1. a count from 1 to `threshold - 1` is suppressed; 0 is shown (it identifies nobody), unless
///    rules 2 to 4 need one more entry of a line and only zeros are left;
/// 2. a line (its cells and its total) never has exactly one suppressed entry: then the
///    smallest other non-zero cell is suppressed too (if there is none, the total);
/// 3. where the total is shown, the suppressed cells of a line add up to at least `threshold`
///    and are not all 1 (else, the reader knowing a hidden count is at least 1, they would
///    follow from the total), nor, when all of them are below the threshold, all
///    `threshold - 1` (4 + 4 = 8 under "< 5" tells both): if not, the next smallest cell is
///    suppressed;
/// 4. no suppressed entry may follow from all the table's lines together (solved exactly, by
///    Gauss-Jordan elimination): while one does, another cell of its line is suppressed.
///
/// Breakdowns of one period share its total; when any of them has to hide it, all do. Counts
/// without a total (escalations, not agreed, appeals) get rule 1 only. A median or percentile
/// is shown only over at least `threshold` complaints.
///
/// What a reader knows is taken to be: the shown entries, the lines, and that a hidden count
/// is at least 1, and at most `threshold - 1` where it says "< threshold". A hidden count
/// says "< threshold" only when it is below the threshold and every line it is in hides only
/// such counts; else it is an `x`, and the reader knows nothing of its size. Rule 3 covers
/// those bounds line by line (exactly: the bounds of one line are intervals); bounds a reader could get by
/// combining several lines with it (linear programming) are not checked. A threshold of 0 or 1
/// suppresses nothing.
pub fn public_report(a: &Analysis, threshold: u32) -> PublicReport {
    // The current period: the month × kind grid and four breakdowns, all adding up to N.
    let kinds: Vec<String> = a
        .by_kind
        .rows
        .iter()
        .map(|r| r.label.clone().unwrap_or_default())
        .collect();
    let grid_values: Vec<Vec<u32>> = a
        .months
        .iter()
        .map(|m| {
            kinds
                .iter()
                .map(|k| m.by_kind.get(k).copied().unwrap_or(0))
                .collect()
        })
        .collect();
    let grid = Lines::two_way(&grid_values, kinds.len());
    let current_parts: Vec<&Breakdown> =
        vec![&a.by_category, &a.by_severity, &a.by_channel, &a.by_nature];
    let one_way_current: Vec<Lines> = current_parts
        .iter()
        .map(|b| Lines::one_way(&b.rows.iter().map(|r| r.counts.current).collect::<Vec<_>>()))
        .collect();
    let mut current_tables: Vec<&Lines> = vec![&grid];
    current_tables.extend(one_way_current.iter());
    let current_cells = protect_sharing_total(&current_tables, threshold);

    // The previous period: five breakdowns adding up to its N.
    let previous_parts: Vec<&Breakdown> = vec![
        &a.by_kind,
        &a.by_category,
        &a.by_severity,
        &a.by_channel,
        &a.by_nature,
    ];
    let one_way_previous: Vec<Lines> = previous_parts
        .iter()
        .map(|b| Lines::one_way(&b.rows.iter().map(|r| r.counts.previous).collect::<Vec<_>>()))
        .collect();
    let previous_tables: Vec<&Lines> = one_way_previous.iter().collect();
    let previous_cells = protect_sharing_total(&previous_tables, threshold);

    let (rows, cols) = (grid_values.len(), kinds.len());
    let g = &current_cells[0];
    let kind_by_month = PublicGrid {
        columns: kinds.clone(),
        months: a
            .months
            .iter()
            .enumerate()
            .map(|(i, m)| PublicMonth {
                year: m.year,
                month: m.month,
                cells: (0..cols).map(|j| g[i * cols + j]).collect(),
                total: g[rows * cols + i],
            })
            .collect(),
        column_totals: (0..cols).map(|j| g[rows * cols + rows + j]).collect(),
        total: g[rows * cols + rows + cols],
    };
    // Each breakdown from its own protected table (cells, then the total), so a total hidden in
    // one table is hidden in its breakdown too; sharing makes them all the same.
    let last = |cells: &[Cell]| cells.last().copied().unwrap_or(Cell::Suppressed);
    let public_breakdown = |b: &Breakdown, current: &[Cell], previous: &[Cell]| PublicBreakdown {
        rows: b
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| PublicRow {
                label: r.label.clone(),
                counts: PublicPair {
                    current: current.get(i).copied().unwrap_or(Cell::Suppressed),
                    previous: previous.get(i).copied().unwrap_or(Cell::Suppressed),
                },
            })
            .collect(),
        total: PublicPair {
            current: last(current),
            previous: last(previous),
        },
    };
    let mut kind_current = kind_by_month.column_totals.clone();
    kind_current.push(kind_by_month.total);
    let by_kind = public_breakdown(&a.by_kind, &kind_current, &previous_cells[0]);
    let by_category = public_breakdown(&a.by_category, &current_cells[1], &previous_cells[1]);
    let by_severity = public_breakdown(&a.by_severity, &current_cells[2], &previous_cells[2]);
    let by_channel = public_breakdown(&a.by_channel, &current_cells[3], &previous_cells[3]);
    let by_nature = public_breakdown(&a.by_nature, &current_cells[4], &previous_cells[4]);
    let total = by_kind.total;

    let milestones = a
        .milestones
        .iter()
        .map(|s| {
            let cells = protect_one_way(&[s.met, s.missed], threshold);
            let (met, missed, judged) = (cells[0], cells[1], cells[2]);
            let enough = s.completed > 0 && s.completed >= threshold;
            PublicMilestone {
                milestone: s.milestone,
                completed: Cell::primary(s.completed, threshold),
                median_days: s.median_days.filter(|_| enough),
                p90_days: s.p90_days.filter(|_| enough),
                met,
                missed,
                judged,
                share_met: match (met, judged) {
                    (Cell::Count(m), Cell::Count(j)) if j > 0 => Some(f64::from(m) / f64::from(j)),
                    _ => None,
                },
            }
        })
        .collect();

    let scores = protect_one_way(&a.satisfaction.distribution, threshold);
    let mut distribution = [Cell::Count(0); 5];
    distribution.copy_from_slice(&scores[..5]);
    let satisfaction = PublicSatisfaction {
        distribution,
        responses: scores[5],
        mean: a
            .satisfaction
            .mean
            .filter(|_| scores.iter().all(|c| !c.is_suppressed())),
    };

    PublicReport {
        period: a.period,
        previous_period: a.previous_period,
        threshold,
        total,
        by_kind,
        by_category,
        by_severity,
        by_channel,
        by_nature,
        kind_by_month,
        milestones,
        escalations: Cell::primary(a.escalations, threshold),
        escalated: Cell::primary(a.escalated, threshold),
        not_agreed: Cell::primary(a.not_agreed, threshold),
        appeals_pointed: Cell::primary(a.appeals_pointed, threshold),
        satisfaction,
    }
}

// ---------------------------------------------------------------------------------------------
// Suppression
// ---------------------------------------------------------------------------------------------

/// "The members add up to the total", over the entries of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    members: Vec<usize>,
    total: usize,
}

impl Line {
    fn entries(&self) -> impl Iterator<Item = usize> + '_ {
        self.members
            .iter()
            .copied()
            .chain(std::iter::once(self.total))
    }
}

/// A table as its entries (cells and totals) and the lines they satisfy; `grand` is the entry
/// that is the table's overall total.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lines {
    values: Vec<u32>,
    lines: Vec<Line>,
    grand: usize,
}

impl Lines {
    /// Cells `0..n`, their total at `n`.
    fn one_way(cells: &[u32]) -> Lines {
        let n = cells.len();
        let mut values = cells.to_vec();
        values.push(cells.iter().fold(0u32, |a, &v| a.saturating_add(v)));
        Lines {
            values,
            lines: vec![Line {
                members: (0..n).collect(),
                total: n,
            }],
            grand: n,
        }
    }

    /// `rows × cols` cells row by row, then the row totals, the column totals and the grand
    /// total; lines: every row, every column, and both margins.
    fn two_way(grid: &[Vec<u32>], cols: usize) -> Lines {
        let rows = grid.len();
        let cell = |i: usize, j: usize| grid[i].get(j).copied().unwrap_or(0);
        let mut values: Vec<u32> = Vec::with_capacity(rows * cols + rows + cols + 1);
        for i in 0..rows {
            values.extend((0..cols).map(|j| cell(i, j)));
        }
        let row_totals: Vec<u32> = (0..rows)
            .map(|i| (0..cols).fold(0u32, |a, j| a.saturating_add(cell(i, j))))
            .collect();
        let col_totals: Vec<u32> = (0..cols)
            .map(|j| (0..rows).fold(0u32, |a, i| a.saturating_add(cell(i, j))))
            .collect();
        let grand_value = row_totals.iter().fold(0u32, |a, &v| a.saturating_add(v));
        values.extend(&row_totals);
        values.extend(&col_totals);
        values.push(grand_value);
        let row_total = |i: usize| rows * cols + i;
        let col_total = |j: usize| rows * cols + rows + j;
        let grand = rows * cols + rows + cols;
        let mut lines = Vec::new();
        for i in 0..rows {
            lines.push(Line {
                members: (0..cols).map(|j| i * cols + j).collect(),
                total: row_total(i),
            });
        }
        for j in 0..cols {
            lines.push(Line {
                members: (0..rows).map(|i| i * cols + j).collect(),
                total: col_total(j),
            });
        }
        lines.push(Line {
            members: (0..rows).map(row_total).collect(),
            total: grand,
        });
        lines.push(Line {
            members: (0..cols).map(col_total).collect(),
            total: grand,
        });
        Lines {
            values,
            lines,
            grand,
        }
    }
}

fn protect_one_way(cells: &[u32], threshold: u32) -> Vec<Cell> {
    let t = Lines::one_way(cells);
    to_cells(&t, &protect(&t, threshold, false), threshold)
}

/// The shown form of each entry: a count, "< threshold" for a small hidden count whose lines
/// hide only small counts, else `x`.
fn to_cells(t: &Lines, hidden: &[bool], threshold: u32) -> Vec<Cell> {
    let small = |i: usize| t.values[i] > 0 && t.values[i] < threshold;
    // Entries in a line that hides an entry of any size: these show `x`.
    let mut mixed = vec![false; t.values.len()];
    for line in &t.lines {
        let entries: Vec<usize> = line.entries().filter(|&e| hidden[e]).collect();
        if entries.iter().any(|&e| !small(e)) {
            for e in entries {
                mixed[e] = true;
            }
        }
    }
    (0..t.values.len())
        .map(|i| match (hidden[i], small(i) && !mixed[i]) {
            (false, _) => Cell::Count(t.values[i]),
            (true, true) => Cell::Below(threshold),
            (true, false) => Cell::Suppressed,
        })
        .collect()
}

/// Protect tables that share their grand total: when one must hide it, all hide it.
fn protect_sharing_total(tables: &[&Lines], threshold: u32) -> Vec<Vec<Cell>> {
    let mut hidden: Vec<Vec<bool>> = tables
        .iter()
        .map(|t| protect(t, threshold, false))
        .collect();
    if tables.iter().zip(&hidden).any(|(t, h)| h[t.grand]) {
        hidden = tables.iter().map(|t| protect(t, threshold, true)).collect();
    }
    tables
        .iter()
        .zip(&hidden)
        .map(|(t, h)| to_cells(t, h, threshold))
        .collect()
}

/// Which entries to suppress (see [`public_report`] for the rule); `hide_grand` hides the
/// grand total from the start.
fn protect(t: &Lines, threshold: u32, hide_grand: bool) -> Vec<bool> {
    let mut hidden: Vec<bool> = t.values.iter().map(|&v| v > 0 && v < threshold).collect();
    if hide_grand && let Some(h) = hidden.get_mut(t.grand) {
        *h = true;
    }
    // Every pass hides one more entry or stops, so this ends within `values.len()` passes.
    loop {
        let mut changed = false;
        for line in &t.lines {
            while let Some(pick) = line_needs(line, &t.values, &hidden, threshold) {
                hidden[pick] = true;
                changed = true;
            }
        }
        if changed {
            continue;
        }
        let Some(&x) = determined(&t.lines, &hidden).first() else {
            break;
        };
        let pick = t
            .lines
            .iter()
            .filter(|l| l.entries().any(|e| e == x))
            .find_map(|l| candidate(l, &t.values, &hidden))
            .or_else(|| {
                (0..t.values.len())
                    .filter(|&i| !hidden[i])
                    .min_by_key(|&i| (t.values[i], i))
            });
        match pick {
            Some(p) => hidden[p] = true,
            None => break,
        }
    }
    hidden
}

/// The next entry to hide in `line` under rules 2 and 3, if it needs one.
fn line_needs(line: &Line, values: &[u32], hidden: &[bool], threshold: u32) -> Option<usize> {
    let hidden_members: Vec<usize> = line
        .members
        .iter()
        .copied()
        .filter(|&i| hidden[i])
        .collect();
    let total_hidden = hidden[line.total];
    let n_hidden = hidden_members.len() + usize::from(total_hidden);
    let short = match n_hidden {
        0 => false,
        1 => true,
        _ if total_hidden => false,
        _ => {
            let sum: u64 = hidden_members.iter().map(|&i| u64::from(values[i])).sum();
            let k = hidden_members.len() as u64;
            // Shown as "< threshold", each is at most threshold - 1: all at that bound follow
            // from the total too.
            let all_small = hidden_members
                .iter()
                .all(|&i| values[i] > 0 && values[i] < threshold);
            let all_at_upper_bound = all_small && sum == k * u64::from(threshold.saturating_sub(1));
            sum < u64::from(threshold) || sum <= k || all_at_upper_bound
        }
    };
    if short {
        candidate(line, values, hidden)
    } else {
        None
    }
}

/// The entry of `line` to hide next: its smallest non-zero shown cell, else its total, else a
/// shown zero.
fn candidate(line: &Line, values: &[u32], hidden: &[bool]) -> Option<usize> {
    line.members
        .iter()
        .copied()
        .filter(|&i| !hidden[i] && values[i] > 0)
        .min_by_key(|&i| (values[i], i))
        .or_else(|| (!hidden[line.total]).then_some(line.total))
        .or_else(|| line.members.iter().copied().find(|&i| !hidden[i]))
}

/// The hidden entries whose value follows from the shown ones through the lines: those `x` for
/// which the unit vector of `x` lies in the row space of the lines restricted to hidden
/// entries. Gauss-Jordan on integers; on overflow every hidden entry is reported (which makes
/// the caller hide more, never less).
fn determined(lines: &[Line], hidden: &[bool]) -> Vec<usize> {
    let unknowns: Vec<usize> = (0..hidden.len()).filter(|&i| hidden[i]).collect();
    let column: BTreeMap<usize, usize> =
        unknowns.iter().enumerate().map(|(c, &e)| (e, c)).collect();
    let mut rows: Vec<Vec<i128>> = lines
        .iter()
        .map(|l| {
            let mut r = vec![0i128; unknowns.len()];
            for &m in &l.members {
                if let Some(&c) = column.get(&m) {
                    r[c] += 1;
                }
            }
            if let Some(&c) = column.get(&l.total) {
                r[c] -= 1;
            }
            r
        })
        .filter(|r| r.iter().any(|&v| v != 0))
        .collect();
    let mut pivots: Vec<(usize, usize)> = Vec::new();
    let mut next = 0;
    for c in 0..unknowns.len() {
        let Some(p) = (next..rows.len()).find(|&r| rows[r][c] != 0) else {
            continue;
        };
        rows.swap(next, p);
        for r in 0..rows.len() {
            if r == next || rows[r][c] == 0 {
                continue;
            }
            let (a, b) = (rows[next][c], rows[r][c]);
            match eliminate(&rows[r], a, &rows[next], b) {
                Some(row) => rows[r] = row,
                None => return unknowns,
            }
        }
        pivots.push((next, c));
        next += 1;
    }
    pivots
        .into_iter()
        .filter(|&(r, _)| rows[r].iter().filter(|&&v| v != 0).count() == 1)
        .map(|(_, c)| unknowns[c])
        .collect()
}

/// `row * a - pivot * b`, divided by the gcd of its entries; None on overflow.
fn eliminate(row: &[i128], a: i128, pivot: &[i128], b: i128) -> Option<Vec<i128>> {
    let mut out = Vec::with_capacity(row.len());
    for (&x, &p) in row.iter().zip(pivot) {
        out.push(x.checked_mul(a)?.checked_sub(p.checked_mul(b)?)?);
    }
    let g = out
        .iter()
        .fold(0i128, |g, &v| gcd(g, v.checked_abs().unwrap_or(i128::MAX)));
    if g > 1 {
        for v in &mut out {
            *v /= g;
        }
    }
    Some(out)
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Amsterdam;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    // --- Periods -------------------------------------------------------------------------

    #[test]
    fn period_parsing() {
        assert_eq!(Period::parse("2026"), Ok(Period::Year(2026)));
        assert_eq!(Period::parse(" 2026-Q3 "), Ok(Period::Quarter(2026, 3)));
        assert_eq!(Period::parse("2026-q4"), Ok(Period::Quarter(2026, 4)));
        assert_eq!(Period::parse("2026-11"), Ok(Period::Month(2026, 11)));
        assert_eq!(Period::parse("2026-1"), Ok(Period::Month(2026, 1)));
        assert_eq!(
            Period::parse("2026-01-01..2026-03-31"),
            Ok(Period::Range(d(2026, 1, 1), d(2026, 3, 31)))
        );
        for bad in [
            "", "26", "20261", "2026-", "2026-Q", "2026-Qx", "2026-123", "abcd", "2026-1-1",
        ] {
            assert!(
                matches!(Period::parse(bad), Err(PeriodError::Syntax(_))),
                "{bad:?}: {:?}",
                Period::parse(bad)
            );
        }
        assert!(matches!(
            Period::parse("2026-Q5"),
            Err(PeriodError::Quarter(_))
        ));
        assert!(matches!(
            Period::parse("2026-Q0"),
            Err(PeriodError::Quarter(_))
        ));
        assert!(matches!(
            Period::parse("2026-13"),
            Err(PeriodError::Month(_))
        ));
        assert!(matches!(
            Period::parse("2026-00"),
            Err(PeriodError::Month(_))
        ));
        assert_eq!(
            Period::parse("2026-03-31..2026-01-01"),
            Err(PeriodError::Reversed {
                from: d(2026, 3, 31),
                to: d(2026, 1, 1)
            })
        );
        let msg = Period::parse("2026-Q5").unwrap_err().to_string();
        assert!(msg.contains("2026-Q5"), "{msg}");
    }

    #[test]
    fn period_dates_and_bounds() {
        assert_eq!(Period::Year(2026).dates(), (d(2026, 1, 1), d(2027, 1, 1)));
        assert_eq!(
            Period::Quarter(2026, 1).dates(),
            (d(2026, 1, 1), d(2026, 4, 1))
        );
        assert_eq!(
            Period::Quarter(2026, 3).dates(),
            (d(2026, 7, 1), d(2026, 10, 1))
        );
        assert_eq!(
            Period::Quarter(2026, 4).dates(),
            (d(2026, 10, 1), d(2027, 1, 1))
        );
        assert_eq!(
            Period::Month(2026, 12).dates(),
            (d(2026, 12, 1), d(2027, 1, 1))
        );
        assert_eq!(
            Period::Month(2024, 2).dates(),
            (d(2024, 2, 1), d(2024, 3, 1))
        );
        assert_eq!(
            Period::Range(d(2026, 1, 15), d(2026, 3, 2)).dates(),
            (d(2026, 1, 15), d(2026, 3, 3))
        );
        // Local midnight in Amsterdam: CET in winter, CEST in summer.
        assert_eq!(
            Period::Year(2026).bounds(Amsterdam),
            (utc("2025-12-31T23:00:00Z"), utc("2026-12-31T23:00:00Z"))
        );
        assert_eq!(
            Period::Quarter(2026, 3).bounds(Amsterdam),
            (utc("2026-06-30T22:00:00Z"), utc("2026-09-30T22:00:00Z"))
        );
        // The last Sunday of October 2026 is the 25th: December starts in CET again.
        assert_eq!(
            Period::Month(2026, 12).bounds(Amsterdam),
            (utc("2026-11-30T23:00:00Z"), utc("2026-12-31T23:00:00Z"))
        );
    }

    #[test]
    fn previous_periods() {
        assert_eq!(Period::Year(2026).previous(), Period::Year(2025));
        assert_eq!(
            Period::Quarter(2026, 1).previous(),
            Period::Quarter(2025, 4)
        );
        assert_eq!(
            Period::Quarter(2026, 4).previous(),
            Period::Quarter(2026, 3)
        );
        assert_eq!(Period::Month(2026, 1).previous(), Period::Month(2025, 12));
        assert_eq!(Period::Month(2026, 12).previous(), Period::Month(2026, 11));
        // Ten days ending 10 January: the ten days before, across the year boundary.
        assert_eq!(
            Period::Range(d(2026, 1, 1), d(2026, 1, 10)).previous(),
            Period::Range(d(2025, 12, 22), d(2025, 12, 31))
        );
        // A leap-year February range of 29 days.
        assert_eq!(
            Period::Range(d(2024, 3, 1), d(2024, 3, 29)).previous(),
            Period::Range(d(2024, 2, 1), d(2024, 2, 29))
        );
        // Hand-built nonsense is read as the nearest valid period, without a panic.
        assert_eq!(
            Period::Quarter(2026, 9).dates(),
            Period::Quarter(2026, 4).dates()
        );
        assert_eq!(Period::Month(2026, 0).previous(), Period::Month(2025, 12));
        let reversed = Period::Range(d(2026, 2, 1), d(2026, 1, 1));
        assert_eq!(reversed.dates(), (d(2026, 2, 1), d(2026, 2, 1)));
        assert!(reversed.months().is_empty());
    }

    #[test]
    fn months_of_periods() {
        assert_eq!(
            Period::Quarter(2026, 3).months(),
            vec![(2026, 7), (2026, 8), (2026, 9)]
        );
        assert_eq!(Period::Year(2026).months().len(), 12);
        assert_eq!(
            Period::Range(d(2025, 12, 15), d(2026, 2, 1)).months(),
            vec![(2025, 12), (2026, 1), (2026, 2)]
        );
        assert_eq!(Period::Month(2026, 12).months(), vec![(2026, 12)]);
    }

    fn any_period() -> impl Strategy<Value = Period> {
        let day = (0i64..20_000).prop_map(|o| d(1990, 1, 1) + chrono::TimeDelta::days(o));
        prop_oneof![
            (1990i32..2100).prop_map(Period::Year),
            (1990i32..2100, 1u8..=4).prop_map(|(y, q)| Period::Quarter(y, q)),
            (1990i32..2100, 1u32..=12).prop_map(|(y, m)| Period::Month(y, m)),
            (day, 0i64..800).prop_map(|(a, n)| Period::Range(a, a + chrono::TimeDelta::days(n))),
        ]
    }

    proptest! {
        #[test]
        fn period_display_parses_back(p in any_period()) {
            prop_assert_eq!(Period::parse(&p.to_string()), Ok(p));
        }

        /// The previous period ends where this one starts; a range keeps its length.
        #[test]
        fn previous_adjoins(p in any_period()) {
            let (start, end) = p.dates();
            let (pstart, pend) = p.previous().dates();
            prop_assert_eq!(pend, start);
            prop_assert!(pstart < pend);
            if let Period::Range(..) = p {
                prop_assert_eq!((end - start).num_days(), (pend - pstart).num_days());
            }
            let months = p.months();
            prop_assert_eq!(months.first().copied(), Some((start.year(), start.month())));
        }
    }

    // --- The analysis on a hand-made set ---------------------------------------------------

    fn fact(reference: &str, received: &str, kind: &str) -> ComplaintFacts {
        ComplaintFacts {
            reference: reference.to_string(),
            received: utc(received),
            kind: kind.to_string(),
            category: None,
            severity: "normal".to_string(),
            channel: "email".to_string(),
            nature: None,
            status: "closed".to_string(),
            handler: None,
            cause: None,
            measure: None,
            measure_recorded: None,
            agreement: None,
            satisfaction: None,
            escalations: 0,
            appeal_pointed: false,
            milestones: Vec::new(),
        }
    }

    fn ms(milestone: Milestone, due: Option<NaiveDate>, done: Option<&str>) -> MilestoneFact {
        MilestoneFact {
            milestone,
            due,
            done: done.map(utc),
        }
    }

    use Milestone::{
        Acknowledged as Ack, FirstReaction as First, Handled, SolutionProposed as Sol,
    };

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    /// Q1 2026 (six complaints, one voided, one in April) and Q4 2025 (three), plus one from
    /// June 2025 with a measure. Every expected value in `hand_made_analysis` is worked out by
    /// hand in the comments there.
    fn sample() -> Vec<ComplaintFacts> {
        let mut a = fact("K-2026-001", "2026-01-05T08:00:00Z", "complaint");
        a.category = some("Bejegening");
        a.nature = some("incident");
        a.cause = some("Wachttijd");
        a.agreement = Some(true);
        a.satisfaction = Some(4);
        a.milestones = vec![
            ms(Ack, Some(d(2026, 1, 6)), Some("2026-01-05T09:00:00Z")),
            ms(First, Some(d(2026, 1, 12)), Some("2026-01-09T10:00:00Z")),
            ms(Handled, Some(d(2026, 2, 2)), Some("2026-01-20T10:00:00Z")),
        ];
        // 23:30 UTC on 31 December is 00:30 on New Year's Day in Amsterdam.
        let mut b = fact("K-2026-002", "2025-12-31T23:30:00Z", "complaint");
        b.category = some("Bejegening");
        b.severity = "serious".into();
        b.nature = some("structural");
        b.cause = some("  wachttijd ");
        b.measure = some("Extra bezetting op maandag");
        b.measure_recorded = Some(utc("2026-01-15T12:00:00Z"));
        b.agreement = Some(false);
        b.satisfaction = Some(2);
        b.escalations = 1;
        b.appeal_pointed = true;
        b.milestones = vec![
            ms(Ack, Some(d(2026, 1, 5)), Some("2026-01-05T08:00:00Z")),
            ms(First, Some(d(2026, 1, 9)), Some("2026-01-13T10:00:00Z")),
            ms(Handled, Some(d(2026, 1, 30)), Some("2026-02-10T10:00:00Z")),
        ];
        let mut c = fact("K-2026-003", "2026-01-30T13:00:00Z", "complaint");
        c.channel = "phone".into();
        c.status = "in_progress".into();
        c.cause = some("Wachttijd");
        c.satisfaction = Some(9); // out of range: ignored
        c.milestones = vec![
            ms(Ack, Some(d(2026, 2, 2)), Some("2026-02-02T09:00:00Z")),
            ms(First, Some(d(2026, 2, 6)), None),
            ms(Handled, Some(d(2026, 4, 30)), None),
        ];
        let mut dd = fact("K-2026-004", "2026-02-17T09:00:00Z", "compliment");
        dd.category = some("Service");
        dd.satisfaction = Some(5);
        // An undated measure counts from its own receipt: D does not come back after itself.
        dd.cause = some("Parkeren");
        dd.measure = some("Bordjes bij de ingang");
        dd.milestones = vec![
            ms(Ack, Some(d(2026, 2, 18)), Some("2026-02-17T10:00:00Z")),
            ms(Handled, None, Some("2026-02-17T11:00:00Z")),
        ];
        let mut e = fact("K-2026-005", "2026-03-02T09:00:00Z", "complaint");
        e.category = some("Facturen");
        e.channel = "web".into();
        e.nature = some("incident");
        e.cause = some("Fout in factuur");
        e.measure = some("Controle facturen vóór verzending");
        e.measure_recorded = Some(utc("2026-03-20T10:00:00Z"));
        e.agreement = Some(true);
        e.satisfaction = Some(3);
        e.escalations = 2;
        e.milestones = vec![
            ms(Ack, Some(d(2026, 3, 3)), Some("2026-03-04T09:00:00Z")),
            ms(First, Some(d(2026, 3, 9)), Some("2026-03-09T15:00:00Z")),
            ms(Sol, Some(d(2026, 3, 16)), Some("2026-03-12T09:00:00Z")),
            ms(Handled, Some(d(2026, 3, 30)), Some("2026-03-27T09:00:00Z")),
        ];
        // 21:30 UTC on 31 March is 23:30 CEST: still March.
        let mut f = fact("K-2026-006", "2026-03-31T21:30:00Z", "complaint");
        f.category = some("Facturen");
        f.nature = some("incident");
        f.cause = some("FOUT  IN FACTUUR");
        f.status = "in_progress".into();
        f.milestones = vec![
            ms(Ack, Some(d(2026, 4, 1)), Some("2026-04-01T07:00:00Z")),
            ms(First, Some(d(2026, 4, 8)), None),
            ms(Handled, Some(d(2026, 5, 1)), None),
        ];
        // Voided: left out of everything, its measure too (else E would have come back).
        let mut g = fact("K-2026-007", "2026-02-03T09:00:00Z", "complaint");
        g.status = "voided".into();
        g.category = some("Facturen");
        g.cause = some("Fout in factuur");
        g.measure = some("Vervallen maatregel");
        g.measure_recorded = Some(utc("2026-02-04T09:00:00Z"));
        g.escalations = 5;
        // 00:30 on 1 April in Amsterdam: the next quarter.
        let h = fact("K-2026-008", "2026-03-31T22:30:00Z", "complaint");

        let mut p1 = fact("K-2025-101", "2025-10-06T09:00:00Z", "complaint");
        p1.category = some("Bejegening");
        p1.nature = some("incident");
        p1.cause = some("wachttijd");
        let mut p2 = fact("K-2025-102", "2025-11-12T09:00:00Z", "complaint");
        p2.category = some("Facturen");
        p2.channel = "phone".into();
        p2.nature = some("structural");
        // 23:30 CET on New Year's Eve: still 2025.
        let p3 = fact("K-2025-103", "2025-12-31T22:30:00Z", "question");
        // An older complaint whose measure has no date: it counts from its receipt.
        let mut p4 = fact("K-2025-050", "2025-06-01T09:00:00Z", "complaint");
        p4.cause = some("Fout in factuur");
        p4.measure = some("Nieuwe factuursoftware");

        vec![h, f, e, dd, c, b, a, g, p3, p2, p1, p4]
    }

    fn q1() -> Analysis {
        analyse(
            &sample(),
            &Period::Quarter(2026, 1),
            &Calendar::dutch(),
            Amsterdam,
            utc("2026-04-15T08:00:00Z"),
        )
    }

    fn row(b: &Breakdown, label: Option<&str>) -> (u32, u32) {
        let r = b
            .rows
            .iter()
            .find(|r| r.label.as_deref() == label)
            .unwrap_or_else(|| panic!("no row {label:?} in {b:?}"));
        (r.counts.current, r.counts.previous)
    }

    fn labels(b: &Breakdown) -> Vec<Option<&str>> {
        b.rows.iter().map(|r| r.label.as_deref()).collect()
    }

    #[test]
    fn hand_made_counts() {
        let a = q1();
        assert_eq!(a.start, d(2026, 1, 1));
        assert_eq!(a.end, d(2026, 4, 1));
        assert_eq!(a.today, d(2026, 4, 15));
        assert_eq!(a.previous_period, Period::Quarter(2025, 4));
        // Current: A B C D E F (G voided, H in April). Previous: P1 P2 P3 (B is 1 January).
        assert_eq!(
            a.total,
            Counts {
                current: 6,
                previous: 3
            }
        );
        assert_eq!(a.total.change(), 3);
        assert_eq!(a.voided, 1);
        assert_eq!(
            labels(&a.by_kind),
            [Some("complaint"), Some("compliment"), Some("question")]
        );
        assert_eq!(row(&a.by_kind, Some("complaint")), (5, 2));
        assert_eq!(row(&a.by_kind, Some("compliment")), (1, 0));
        assert_eq!(row(&a.by_kind, Some("question")), (0, 1));
        assert_eq!(
            labels(&a.by_category),
            [Some("Bejegening"), Some("Facturen"), Some("Service"), None]
        );
        assert_eq!(row(&a.by_category, Some("Bejegening")), (2, 1));
        assert_eq!(row(&a.by_category, Some("Facturen")), (2, 1));
        assert_eq!(row(&a.by_category, Some("Service")), (1, 0));
        assert_eq!(row(&a.by_category, None), (1, 1));
        assert_eq!(row(&a.by_severity, Some("normal")), (5, 3));
        assert_eq!(row(&a.by_severity, Some("serious")), (1, 0));
        assert_eq!(row(&a.by_channel, Some("email")), (4, 2));
        assert_eq!(row(&a.by_channel, Some("phone")), (1, 1));
        assert_eq!(row(&a.by_channel, Some("web")), (1, 0));
        assert_eq!(row(&a.by_nature, Some("incident")), (3, 1));
        assert_eq!(row(&a.by_nature, Some("structural")), (1, 1));
        assert_eq!(row(&a.by_nature, None), (2, 1));
        for b in [
            &a.by_kind,
            &a.by_category,
            &a.by_severity,
            &a.by_channel,
            &a.by_nature,
        ] {
            assert_eq!(b.total, a.total);
        }
        // Months: January A B C, February D, March E F.
        let months: Vec<(i32, u32, u32)> = a
            .months
            .iter()
            .map(|m| (m.year, m.month, m.total))
            .collect();
        assert_eq!(months, [(2026, 1, 3), (2026, 2, 1), (2026, 3, 2)]);
        assert_eq!(
            a.months[1].by_kind,
            BTreeMap::from([("compliment".to_string(), 1)])
        );
        assert_eq!(
            a.months[2].by_kind,
            BTreeMap::from([("complaint".to_string(), 2)])
        );
        // Escalations B 1 + E 2 (G's 5 are voided); not agreed and appeal: B.
        assert_eq!((a.escalations, a.escalated), (3, 2));
        assert_eq!((a.not_agreed, a.appeals_pointed), (1, 1));
        // Scores A 4, B 2, D 5, E 3 (C's 9 ignored): mean 14 / 4.
        assert_eq!(a.satisfaction.responses, 4);
        assert_eq!(a.satisfaction.mean, Some(3.5));
        assert_eq!(a.satisfaction.distribution, [0, 1, 1, 1, 1]);
    }

    fn stats(a: &Analysis, m: Milestone) -> &MilestoneStats {
        a.milestones.iter().find(|s| s.milestone == m).unwrap()
    }

    fn missed_refs(s: &MilestoneStats) -> Vec<(&str, u32)> {
        s.missed_list
            .iter()
            .map(|m| (m.reference.as_str(), m.working_days_late))
            .collect()
    }

    #[test]
    fn hand_made_times_and_deadlines() {
        let a = q1();
        let order: Vec<Milestone> = a.milestones.iter().map(|s| s.milestone).collect();
        assert_eq!(order, REPORTED_MILESTONES);

        // Acknowledged: A 0, B 1 (1 Jan -> 5 Jan: the 2nd is equated, then the weekend),
        // C 1 (Fri -> Mon), D 0, E 2, F 1 -> [0 0 1 1 1 2]: median 1, p90 rank ceil(5.4) = 6 -> 2.
        // Only E was late (due 3 March, done 4 March: 1 working day).
        let ack = stats(&a, Ack);
        assert_eq!(ack.completed, 6);
        assert_eq!(ack.median_days, Some(1.0));
        assert_eq!(ack.p90_days, Some(2));
        assert_eq!((ack.met, ack.missed, ack.pending), (5, 1, 0));
        assert_eq!(ack.share_met, Some(5.0 / 6.0));
        assert_eq!(missed_refs(ack), [("K-2026-005", 1)]);
        assert_eq!(ack.missed_list[0].done, Some(d(2026, 3, 4)));

        // First reaction: A 4, B 7, E 5 -> median 5, p90 rank ceil(2.7) = 3 -> 7.
        // Met A, E (on the due day). Missed: B done 13 Jan for the 9th (2 late), C open since
        // 6 Feb (46 working days to 15 April, Good Friday and Easter Monday not counted),
        // F open since 8 April (5).
        let first = stats(&a, First);
        assert_eq!(first.completed, 3);
        assert_eq!(first.median_days, Some(5.0));
        assert_eq!(first.p90_days, Some(7));
        assert_eq!((first.met, first.missed, first.pending), (2, 3, 0));
        assert_eq!(first.share_met, Some(0.4));
        assert_eq!(
            missed_refs(first),
            [("K-2026-002", 2), ("K-2026-003", 46), ("K-2026-006", 5)]
        );
        assert_eq!(first.missed_list[1].done, None);

        // Solution proposed: E only, 8 working days, on time.
        let sol = stats(&a, Sol);
        assert_eq!(
            (sol.completed, sol.median_days, sol.p90_days),
            (1, Some(8.0), Some(8))
        );
        assert_eq!((sol.met, sol.missed, sol.pending), (1, 0, 0));
        assert_eq!(sol.share_met, Some(1.0));

        // Handled: A 11, B 27, D 0 (no due: not judged), E 19 -> [0 11 19 27]: median 15,
        // p90 rank ceil(3.6) = 4 -> 27. Met A, E; missed B (30 Jan -> 10 Feb: 7);
        // pending C and F (due end of April / May).
        let handled = stats(&a, Handled);
        assert_eq!(handled.completed, 4);
        assert_eq!(handled.median_days, Some(15.0));
        assert_eq!(handled.p90_days, Some(27));
        assert_eq!((handled.met, handled.missed, handled.pending), (2, 1, 2));
        assert_eq!(handled.share_met, Some(2.0 / 3.0));
        assert_eq!(missed_refs(handled), [("K-2026-002", 7)]);

        assert_eq!(
            a.missed,
            ["K-2026-002", "K-2026-003", "K-2026-005", "K-2026-006"]
        );
    }

    #[test]
    fn hand_made_causes_and_measures() {
        let a = q1();
        // wachttijd: A, B, C (and P1 before); fout in factuur: E, F. Spelling most used.
        let causes: Vec<(&str, u32, u32)> = a
            .causes
            .iter()
            .map(|c| (c.cause.as_str(), c.counts.current, c.counts.previous))
            .collect();
        assert_eq!(
            causes,
            [
                ("Wachttijd", 3, 1),
                ("Fout in factuur", 2, 0),
                ("Parkeren", 1, 0)
            ]
        );

        // Fout in factuur: P4's undated measure counts from 1 June 2025; E and F came later.
        // Wachttijd: B's measure of 15 January; C (30 Jan) came after, A (5 Jan) before it,
        // and B does not come back after its own measure.
        assert_eq!(a.recurring_causes.len(), 2);
        let factuur = &a.recurring_causes[0];
        assert_eq!(factuur.cause, "Fout in factuur");
        assert_eq!(factuur.first_measure.reference, "K-2025-050");
        assert_eq!(factuur.first_measure.recorded, None);
        assert_eq!(factuur.came_back, ["K-2026-005", "K-2026-006"]);
        let wacht = &a.recurring_causes[1];
        assert_eq!(wacht.cause, "Wachttijd");
        assert_eq!(wacht.first_measure.reference, "K-2026-002");
        assert_eq!(wacht.first_measure.measure, "Extra bezetting op maandag");
        assert_eq!(wacht.came_back, ["K-2026-003"]);

        // Measures recorded in Q1: B's, D's (undated: its receipt) and E's (P4's counts in
        // June 2025, G is voided).
        let measures: Vec<(&str, &str)> = a
            .measures
            .iter()
            .map(|m| (m.reference.as_str(), m.measure.as_str()))
            .collect();
        assert_eq!(
            measures,
            [
                ("K-2026-002", "Extra bezetting op maandag"),
                ("K-2026-004", "Bordjes bij de ingang"),
                ("K-2026-005", "Controle facturen vóór verzending")
            ]
        );
        assert_eq!(a.measures[0].cause.as_deref(), Some("wachttijd"));
    }

    #[test]
    fn previous_period_across_the_year_boundary() {
        // January 2026 against December 2025: B (local New Year's Day) is January,
        // P3 (local New Year's Eve) is December.
        let a = analyse(
            &sample(),
            &Period::Month(2026, 1),
            &Calendar::dutch(),
            Amsterdam,
            utc("2026-04-15T08:00:00Z"),
        );
        assert_eq!(a.previous_period, Period::Month(2025, 12));
        assert_eq!(
            a.total,
            Counts {
                current: 3,
                previous: 1
            }
        );
        assert_eq!(row(&a.by_kind, Some("question")), (0, 1));
        assert_eq!(a.months.len(), 1);
        // The year 2026 against 2025: P1..P3 and P4 are 2025.
        let y = analyse(
            &sample(),
            &Period::Year(2026),
            &Calendar::dutch(),
            Amsterdam,
            utc("2026-04-15T08:00:00Z"),
        );
        assert_eq!(
            y.total,
            Counts {
                current: 7,
                previous: 4
            }
        );
        assert_eq!(y.months.len(), 12);
        assert_eq!(y.months[3].total, 1, "H in April");
    }

    /// Received on Friday 24 April 2026, before Koningsdag (Monday 27th): acknowledged on
    /// Tuesday is 1 working day. Friday 22 May before Tweede Pinksterdag, answered Friday 29:
    /// 4 working days. A Friday-evening receipt that is Saturday in Amsterdam counts from
    /// Saturday, which changes nothing.
    #[test]
    fn working_days_through_the_real_calendar() {
        let mut k = fact("K-2026-010", "2026-04-24T13:00:00Z", "complaint");
        k.milestones = vec![
            ms(Ack, Some(d(2026, 4, 28)), Some("2026-04-28T08:00:00Z")),
            ms(First, Some(d(2026, 5, 1)), Some("2026-04-30T08:00:00Z")),
        ];
        let mut p = fact("K-2026-011", "2026-05-22T12:00:00Z", "complaint");
        p.milestones = vec![ms(Ack, Some(d(2026, 5, 26)), Some("2026-05-29T08:00:00Z"))];
        let mut late = fact("K-2026-012", "2026-04-24T22:30:00Z", "complaint");
        late.milestones = vec![ms(Ack, Some(d(2026, 4, 28)), Some("2026-04-28T08:00:00Z"))];
        let a = analyse(
            &[k, p, late],
            &Period::Quarter(2026, 2),
            &Calendar::dutch(),
            Amsterdam,
            utc("2026-06-01T08:00:00Z"),
        );
        let ack = stats(&a, Ack);
        // [1, 1, 4]
        assert_eq!(ack.completed, 3);
        assert_eq!(ack.median_days, Some(1.0));
        assert_eq!(ack.p90_days, Some(4));
        // K-2026-011: due Tue 26 May, done Fri 29: 3 working days late.
        assert_eq!(missed_refs(ack), [("K-2026-011", 3)]);
        // 24 April -> 30 April: 28, 29, 30.
        assert_eq!(stats(&a, First).median_days, Some(3.0));
        // A calendar without Koningsdag counts Monday 27 April.
        let cal = Calendar::new(&crate::config::CalendarSettings {
            drop_holidays: vec!["koningsdag".into()],
            ..Default::default()
        })
        .unwrap();
        let mut k = fact("K-2026-010", "2026-04-24T13:00:00Z", "complaint");
        k.milestones = vec![ms(Ack, Some(d(2026, 4, 28)), Some("2026-04-28T08:00:00Z"))];
        let a = analyse(
            &[k],
            &Period::Quarter(2026, 2),
            &cal,
            Amsterdam,
            utc("2026-06-01T08:00:00Z"),
        );
        assert_eq!(stats(&a, Ack).median_days, Some(2.0));
    }

    #[test]
    fn percentiles() {
        assert_eq!(median(&[]), None);
        assert_eq!(nearest_rank(&[], 90), None);
        assert_eq!(median(&[7]), Some(7.0));
        assert_eq!(median(&[1, 2, 4, 10]), Some(3.0));
        assert_eq!(nearest_rank(&[7], 90), Some(7));
        let ten: Vec<u32> = (1..=10).collect();
        // ceil(9) = 9
        assert_eq!(nearest_rank(&ten, 90), Some(9));
        let eleven: Vec<u32> = (1..=11).collect();
        // ceil(9.9) = 10
        assert_eq!(nearest_rank(&eleven, 90), Some(10));
        let twenty: Vec<u32> = (1..=20).collect();
        assert_eq!(nearest_rank(&twenty, 90), Some(18));
        assert_eq!(nearest_rank(&twenty, 50), Some(10));
        assert_eq!(nearest_rank(&twenty, 100), Some(20));
    }

    #[test]
    fn empty_period() {
        let a = analyse(
            &[],
            &Period::Year(2026),
            &Calendar::dutch(),
            Amsterdam,
            utc("2026-04-15T08:00:00Z"),
        );
        assert_eq!(a.total, Counts::default());
        assert!(a.by_kind.rows.is_empty());
        assert!(
            a.milestones
                .iter()
                .all(|s| s.median_days.is_none() && s.share_met.is_none())
        );
        assert_eq!(a.satisfaction.mean, None);
        assert_eq!(a.months.len(), 12);
        let p = public_report(&a, 5);
        assert_eq!(p.total.current, Cell::Count(0));
        assert_eq!(p.kind_by_month.months.len(), 12);
    }

    fn any_fact() -> impl Strategy<Value = ComplaintFacts> {
        (
            0i64..(2 * 365 * 24),
            0usize..3,
            0usize..4,
            0usize..3,
            proptest::option::of(0u8..7),
            0u32..3,
            proptest::option::of((0usize..3, any::<bool>())),
            proptest::collection::vec(
                (
                    0usize..4,
                    proptest::option::of(0i64..40),
                    proptest::option::of(0i64..60),
                ),
                0..4,
            ),
            any::<bool>(),
        )
            .prop_map(|(hours, kind, cat, chan, sat, esc, cause, mss, voided)| {
                let received = utc("2025-01-01T00:00:00Z") + chrono::TimeDelta::hours(hours);
                let mut f = fact(
                    &format!("K-{hours:06}-{kind}{cat}"),
                    "2025-01-01T00:00:00Z",
                    ["complaint", "compliment", "question"][kind],
                );
                f.received = received;
                f.category = ["A", "B", "C"].get(cat).map(|s| s.to_string());
                f.channel = ["email", "phone", "web"][chan].to_string();
                f.satisfaction = sat;
                f.escalations = esc;
                if voided && hours % 7 == 0 {
                    f.status = "voided".into();
                }
                if let Some((c, measure)) = cause {
                    f.cause = Some(["Wachttijd", " wachttijd", "Toon"][c].to_string());
                    if measure {
                        f.measure = some("maatregel");
                        f.measure_recorded = Some(received + chrono::TimeDelta::days(3));
                    }
                }
                let day = local_date(received, Amsterdam);
                f.milestones = mss
                    .into_iter()
                    .map(|(m, due, done)| MilestoneFact {
                        milestone: REPORTED_MILESTONES[m],
                        due: due.map(|n| day + chrono::TimeDelta::days(n)),
                        done: done.map(|n| received + chrono::TimeDelta::hours(n * 12)),
                    })
                    .collect();
                f
            })
    }

    proptest! {
        /// The same rows in another order give the same report, and the parts add up.
        #[test]
        fn analysis_is_order_free_and_adds_up(
            mut facts in proptest::collection::vec(any_fact(), 0..40),
            p in prop_oneof![Just(Period::Year(2026)), Just(Period::Quarter(2025, 4)), Just(Period::Month(2026, 1))],
        ) {
            let now = utc("2026-06-01T10:00:00Z");
            let a = analyse(&facts, &p, &Calendar::dutch(), Amsterdam, now);
            facts.reverse();
            let b = analyse(&facts, &p, &Calendar::dutch(), Amsterdam, now);
            prop_assert_eq!(&a, &b);
            for br in [&a.by_kind, &a.by_category, &a.by_severity, &a.by_channel, &a.by_nature] {
                prop_assert_eq!(br.rows.iter().map(|r| r.counts.current).sum::<u32>(), a.total.current);
                prop_assert_eq!(br.rows.iter().map(|r| r.counts.previous).sum::<u32>(), a.total.previous);
            }
            prop_assert_eq!(a.months.iter().map(|m| m.total).sum::<u32>(), a.total.current);
            for s in &a.milestones {
                prop_assert_eq!(s.missed as usize, s.missed_list.len());
                prop_assert!(s.met + s.missed + s.pending <= a.total.current);
                if let (Some(m), Some(p90)) = (s.median_days, s.p90_days) {
                    prop_assert!(m <= f64::from(p90));
                }
            }
            prop_assert_eq!(a.satisfaction.distribution.iter().sum::<u32>(), a.satisfaction.responses);
            // Public: nothing shown between 1 and the threshold.
            let public = public_report(&a, 5);
            for c in all_cells(&public) {
                if let Cell::Count(n) = c {
                    prop_assert!(n == 0 || n >= 5, "{n} shown");
                }
            }
            check_public_consistency(&public)?;
        }
    }

    // --- Suppression ------------------------------------------------------------------------

    fn shown(cells: &[Cell]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn one_way_rules() {
        let x = "x";
        // A 1 and its total: the next smallest cell goes too.
        assert_eq!(shown(&protect_one_way(&[1, 7, 9], 5)), [x, x, "9", "17"]);
        // 2 + 3 hidden: the total tells they are 5 together, each "< 5", not what each is.
        let below = "< 5";
        assert_eq!(
            shown(&protect_one_way(&[2, 3, 10], 5)),
            [below, below, "10", "15"]
        );
        // 4 + 4 = 8 under "< 5": both would be 4, so the 10 goes too, and all show x.
        assert_eq!(shown(&protect_one_way(&[4, 4, 10], 5)), [x, x, x, "18"]);
        assert_eq!(
            shown(&protect_one_way(&[4, 3, 10], 5)),
            [below, below, "10", "17"]
        );
        // 1 + 1 would follow from the total (both at least 1, together 2): a third cell goes.
        assert_eq!(shown(&protect_one_way(&[1, 1, 10], 5)), [x, x, x, "12"]);
        // Five ones add up to five: the cells tell nothing more only when the total goes too.
        assert_eq!(
            shown(&protect_one_way(&[1, 1, 1, 1, 1], 5)),
            [x, x, x, x, x, x]
        );
        // Zeros are shown and are not taken as the second cell.
        assert_eq!(shown(&protect_one_way(&[0, 3, 12], 5)), ["0", x, x, "15"]);
        assert_eq!(
            shown(&protect_one_way(&[0, 0, 12], 5)),
            ["0", "0", "12", "12"]
        );
        assert_eq!(shown(&protect_one_way(&[5, 6], 5)), ["5", "6", "11"]);
        // A small total goes with its cells.
        assert_eq!(shown(&protect_one_way(&[3, 0], 5)), [below, "0", below]);
        // Threshold 1: nothing is suppressed.
        assert_eq!(shown(&protect_one_way(&[1, 2], 1)), ["1", "2", "3"]);
        assert_eq!(Cell::Suppressed.to_string(), SUPPRESSED_MARK);
        assert_eq!(
            serde_json::to_string(&[Cell::Count(7), Cell::Suppressed, Cell::Below(5)]).unwrap(),
            "[7,\"x\",\"< 5\"]"
        );
    }

    #[test]
    fn two_way_rules() {
        // [[1, 6], [7, 8]]: the 1 takes the 6 (row) and the 7 (column), which takes the 8.
        let t = Lines::two_way(&[vec![1, 6], vec![7, 8]], 2);
        let cells = to_cells(&t, &protect(&t, 5, false), 5);
        // cells, row totals, column totals, grand total
        assert_eq!(
            shown(&cells),
            ["x", "x", "x", "x", "7", "15", "8", "14", "22"]
        );
        assert!(
            determined(
                &t.lines,
                &cells.iter().map(|c| c.is_suppressed()).collect::<Vec<_>>()
            )
            .is_empty()
        );
    }

    /// Two cycles of hidden cells joined by one more hidden cell: every row and column has 0
    /// or at least 2 hidden entries, yet the joining cell follows from the totals (rows 0 and 1
    /// together minus columns 0 and 1). The local rule misses it; the elimination does not.
    #[test]
    fn a_bridge_between_two_cycles_is_found() {
        let grid: Vec<Vec<u32>> = vec![
            vec![6, 6, 7, 0],
            vec![6, 6, 0, 0],
            vec![0, 0, 6, 6],
            vec![0, 0, 6, 6],
        ];
        let t = Lines::two_way(&grid, 4);
        let mut hidden = vec![false; t.values.len()];
        for (i, j) in [
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (2, 2),
            (2, 3),
            (3, 2),
            (3, 3),
            (0, 2),
        ] {
            hidden[i * 4 + j] = true;
        }
        for line in &t.lines {
            let n = line.entries().filter(|&e| hidden[e]).count();
            assert!(n == 0 || n >= 2);
        }
        assert_eq!(determined(&t.lines, &hidden), [2]);
        assert_eq!(bridges(4, 4, &hidden), [2]);
        let protected = protect(&t, 7, false);
        assert!(determined(&t.lines, &protected).is_empty());
    }

    /// An independent test of [`determined`] for a two-way table: in the table extended with
    /// its margins, every row and column adds up to zero once margins carry a minus sign, so a
    /// hidden entry follows from the rest exactly when it is a bridge of the bipartite graph
    /// rows -- columns whose edges are the hidden entries.
    fn bridges(rows: usize, cols: usize, hidden: &[bool]) -> Vec<usize> {
        let pos = |e: usize| -> (usize, usize) {
            let n = rows * cols;
            if e < n {
                (e / cols, e % cols)
            } else if e < n + rows {
                (e - n, cols)
            } else if e < n + rows + cols {
                (rows, e - n - rows)
            } else {
                (rows, cols)
            }
        };
        let edges: Vec<(usize, usize, usize)> = (0..hidden.len())
            .filter(|&e| hidden[e])
            .map(|e| {
                let (i, j) = pos(e);
                (e, i, rows + 1 + j)
            })
            .collect();
        let vertices = rows + cols + 2;
        edges
            .iter()
            .filter(|&&(e, a, b)| {
                // Is b reachable from a without this edge?
                let mut seen = vec![false; vertices];
                let mut stack = vec![a];
                seen[a] = true;
                while let Some(v) = stack.pop() {
                    for &(f, x, y) in &edges {
                        if f == e {
                            continue;
                        }
                        let w = if x == v {
                            y
                        } else if y == v {
                            x
                        } else {
                            continue;
                        };
                        if !seen[w] {
                            seen[w] = true;
                            stack.push(w);
                        }
                    }
                }
                !seen[b]
            })
            .map(|&(e, _, _)| e)
            .collect()
    }

    fn small_count() -> impl Strategy<Value = u32> {
        // Mostly small numbers, where suppression has work to do.
        prop_oneof![3 => 0u32..5, 2 => 0u32..15, 1 => 0u32..60]
    }

    fn any_grid() -> impl Strategy<Value = Vec<Vec<u32>>> {
        (1usize..6, 1usize..6).prop_flat_map(|(r, c)| {
            proptest::collection::vec(proptest::collection::vec(small_count(), c), r)
        })
    }

    /// The checks the public report promises, on one protected table.
    fn check_protected(t: &Lines, hidden: &[bool], threshold: u32) -> Result<(), TestCaseError> {
        for (i, &v) in t.values.iter().enumerate() {
            if !hidden[i] {
                prop_assert!(v == 0 || v >= threshold, "shown {v} below {threshold}");
            }
        }
        for line in &t.lines {
            let hidden_members: Vec<usize> = line
                .members
                .iter()
                .copied()
                .filter(|&i| hidden[i])
                .collect();
            if hidden[line.total] {
                // Then the line alone gives nothing away, unless everything else is shown.
                prop_assert!(!hidden_members.is_empty() || line.members.is_empty());
                continue;
            }
            // With the total shown, 0 or at least 2 hidden, together at least the threshold
            // and not all ones.
            prop_assert!(
                hidden_members.len() != 1,
                "one hidden cell in a line with its total"
            );
            if !hidden_members.is_empty() {
                let sum: u32 = hidden_members.iter().map(|&i| t.values[i]).sum();
                prop_assert!(sum >= threshold && sum as usize > hidden_members.len());
                // All shown as "< threshold": not all at threshold - 1 either.
                let k = hidden_members.len() as u32;
                let all_small = hidden_members.iter().all(|&i| t.values[i] < threshold);
                prop_assert!(
                    !(all_small && sum == k * (threshold - 1)),
                    "all at the upper bound"
                );
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn one_way_protection(cells in proptest::collection::vec(small_count(), 1..9), threshold in 2u32..7) {
            let t = Lines::one_way(&cells);
            let hidden = protect(&t, threshold, false);
            check_protected(&t, &hidden, threshold)?;
            // One line: a hidden entry follows only when it is the only one.
            let n = hidden.iter().filter(|&&h| h).count();
            prop_assert_ne!(n, 1);
            prop_assert!(determined(&t.lines, &hidden).is_empty());
        }

        #[test]
        fn two_way_protection(grid in any_grid(), threshold in 2u32..7, hide_grand in any::<bool>()) {
            let cols = grid[0].len();
            let t = Lines::two_way(&grid, cols);
            let hidden = protect(&t, threshold, hide_grand);
            check_protected(&t, &hidden, threshold)?;
            prop_assert_eq!(hidden[t.grand], hide_grand || hidden[t.grand]);
            // No hidden entry can be computed back from the shown ones (independent check).
            prop_assert_eq!(bridges(grid.len(), cols, &hidden), Vec::<usize>::new());
        }

        /// The elimination agrees with the bridge criterion on any pattern of hidden entries.
        #[test]
        fn elimination_agrees_with_bridges(
            (r, c, pattern) in (1usize..5, 1usize..5).prop_flat_map(|(r, c)| {
                (Just(r), Just(c), proptest::collection::vec(any::<bool>(), r * c + r + c + 1))
            })
        ) {
            let t = Lines::two_way(&vec![vec![1; c]; r], c);
            prop_assert_eq!(determined(&t.lines, &pattern), bridges(r, c, &pattern));
        }
    }

    // --- The public report ------------------------------------------------------------------

    fn all_cells(p: &PublicReport) -> Vec<Cell> {
        let mut out = vec![p.total.current, p.total.previous];
        for b in [
            &p.by_kind,
            &p.by_category,
            &p.by_severity,
            &p.by_channel,
            &p.by_nature,
        ] {
            out.extend(
                b.rows
                    .iter()
                    .flat_map(|r| [r.counts.current, r.counts.previous]),
            );
            out.extend([b.total.current, b.total.previous]);
        }
        for m in &p.kind_by_month.months {
            out.extend(m.cells.iter().copied());
            out.push(m.total);
        }
        out.extend(p.kind_by_month.column_totals.iter().copied());
        out.push(p.kind_by_month.total);
        for m in &p.milestones {
            out.extend([m.completed, m.met, m.missed, m.judged]);
        }
        out.extend([p.escalations, p.escalated, p.not_agreed, p.appeals_pointed]);
        out.extend(p.satisfaction.distribution);
        out.push(p.satisfaction.responses);
        out
    }

    /// Shared totals are the same cell everywhere; the kind column is the grid's margin.
    fn check_public_consistency(p: &PublicReport) -> Result<(), TestCaseError> {
        for b in [
            &p.by_kind,
            &p.by_category,
            &p.by_severity,
            &p.by_channel,
            &p.by_nature,
        ] {
            prop_assert_eq!(b.total, p.total);
        }
        prop_assert_eq!(p.kind_by_month.total, p.total.current);
        let kind_current: Vec<Cell> = p.by_kind.rows.iter().map(|r| r.counts.current).collect();
        prop_assert_eq!(&kind_current, &p.kind_by_month.column_totals);
        Ok(())
    }

    /// A year with 41 complaints where one is the only serious one, the only one by phone,
    /// the only one in category Integriteit and the only one in March: each table alone would
    /// point at it. Nothing in the public report tells its count, not even with the totals.
    #[test]
    fn a_single_complaint_cannot_be_singled_out() {
        let mut facts = Vec::new();
        for i in 0..40u32 {
            let month = [1, 2, 4, 5][(i % 4) as usize];
            let mut f = fact(
                &format!("KL-2026-{:04}", i + 1),
                &format!("2026-{month:02}-{:02}T10:00:00Z", 2 + i / 4),
                if i % 5 == 0 {
                    "compliment"
                } else {
                    "complaint"
                },
            );
            f.category = some(if i % 2 == 0 { "Bejegening" } else { "Facturen" });
            f.cause = some("Lange wachttijd bij de balie");
            f.measure = some("Extra medewerker op dinsdag");
            f.handler = some("jan.jansen@example.nl");
            f.satisfaction = Some(4);
            facts.push(f);
        }
        let mut lone = fact("KL-2026-0099", "2026-03-17T10:00:00Z", "complaint");
        lone.category = some("Integriteit");
        lone.severity = "serious".into();
        lone.channel = "phone".into();
        lone.cause = some("Geheimhouding geschonden door Pietersen");
        lone.measure = some("Gesprek met Pietersen");
        lone.satisfaction = Some(1);
        lone.agreement = Some(false);
        facts.push(lone);
        let a = analyse(
            &facts,
            &Period::Year(2026),
            &Calendar::dutch(),
            Amsterdam,
            utc("2027-01-10T10:00:00Z"),
        );
        assert_eq!(a.total.current, 41);
        let p = public_report(&a, 5);

        let cur = |b: &PublicBreakdown, l: &str| {
            b.rows
                .iter()
                .find(|r| r.label.as_deref() == Some(l))
                .unwrap()
                .counts
                .current
        };
        assert_eq!(p.total.current, Cell::Count(41));
        assert!(cur(&p.by_category, "Integriteit").is_suppressed());
        assert!(cur(&p.by_severity, "serious").is_suppressed());
        assert!(cur(&p.by_channel, "phone").is_suppressed());
        assert!(p.kind_by_month.months[2].total.is_suppressed(), "March");
        assert!(p.not_agreed.is_suppressed());
        assert!(p.satisfaction.distribution[0].is_suppressed());
        assert_eq!(p.satisfaction.mean, None);
        // The breakdowns with two rows hide both; the total stays.
        assert!(cur(&p.by_severity, "normal").is_suppressed());
        assert!(cur(&p.by_channel, "email").is_suppressed());
        // Categories: the lone one and the next smallest (20 each: the first, Bejegening) go.
        assert!(cur(&p.by_category, "Bejegening").is_suppressed());
        assert_eq!(cur(&p.by_category, "Facturen"), Cell::Count(20));

        // Nothing can be solved back: every table of the report through the elimination.
        let kinds = p.kind_by_month.columns.len();
        let grid: Vec<bool> = p
            .kind_by_month
            .months
            .iter()
            .flat_map(|m| m.cells.iter().map(|c| c.is_suppressed()))
            .chain(
                p.kind_by_month
                    .months
                    .iter()
                    .map(|m| m.total.is_suppressed()),
            )
            .chain(
                p.kind_by_month
                    .column_totals
                    .iter()
                    .map(|c| c.is_suppressed()),
            )
            .chain([p.kind_by_month.total.is_suppressed()])
            .collect();
        assert!(grid.iter().any(|&h| h));
        assert_eq!(bridges(12, kinds, &grid), Vec::<usize>::new());
        for b in [&p.by_category, &p.by_severity, &p.by_channel, &p.by_nature] {
            let n = b
                .rows
                .iter()
                .filter(|r| r.counts.current.is_suppressed())
                .count();
            assert_ne!(n, 1, "{b:?}");
        }

        // No reference, name, address, cause or measure anywhere in it.
        let json = serde_json::to_string(&p).unwrap();
        for secret in [
            "KL-2026",
            "Pietersen",
            "jan.jansen",
            "example.nl",
            "wachttijd",
            "medewerker",
            "Geheimhouding",
        ] {
            assert!(
                !json.to_lowercase().contains(&secret.to_lowercase()),
                "{secret} in {json}"
            );
        }
        let note = p.suppression_note("nl");
        assert!(note.contains("kleiner dan 5"), "{note}");
        assert!(p.suppression_note("en").contains("below 5"));
        assert!(
            public_report(&a, 10)
                .suppression_note("nl")
                .contains("kleiner dan 10")
        );
    }

    /// Five complaints in January, one in each of five categories: five hidden ones adding up
    /// to a shown 5 would each be 1, so the category table hides its total, and then every
    /// table of the period must, or the kind table would give it back.
    #[test]
    fn a_total_hidden_in_one_table_is_hidden_in_all() {
        let facts: Vec<ComplaintFacts> = ["A", "B", "C", "D", "E"]
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut f = fact(
                    &format!("KL-2026-{:04}", i + 1),
                    &format!("2026-01-{:02}T10:00:00Z", 5 + i),
                    "complaint",
                );
                f.category = some(c);
                f
            })
            .collect();
        let a = analyse(
            &facts,
            &Period::Year(2026),
            &Calendar::dutch(),
            Amsterdam,
            utc("2027-01-10T10:00:00Z"),
        );
        let p = public_report(&a, 5);
        assert!(p.total.current.is_suppressed());
        assert!(
            p.by_category
                .rows
                .iter()
                .all(|r| r.counts.current.is_suppressed())
        );
        for b in [
            &p.by_kind,
            &p.by_category,
            &p.by_severity,
            &p.by_channel,
            &p.by_nature,
        ] {
            assert!(b.total.current.is_suppressed(), "{b:?}");
            // The one-row tables hide their single cell too, or it would be the total.
            let shown_rows = b
                .rows
                .iter()
                .filter(|r| !r.counts.current.is_suppressed())
                .count();
            assert!(shown_rows == 0 || b.rows.len() > 1, "{b:?}");
        }
        assert!(p.kind_by_month.total.is_suppressed());
        assert!(p.kind_by_month.months[0].total.is_suppressed());
        check_public_consistency(&p).unwrap();
    }

    #[test]
    fn public_milestones_and_shares() {
        let mut facts = Vec::new();
        for i in 0..12u32 {
            let mut f = fact(
                &format!("KL-2026-{:04}", i + 1),
                &format!("2026-02-{:02}T09:00:00Z", 2 + i),
                "complaint",
            );
            // Due the next day; the first three are late.
            let day = d(2026, 2, 2 + i);
            let done = if i < 3 {
                day + chrono::TimeDelta::days(4)
            } else {
                day
            };
            f.milestones = vec![ms(
                Ack,
                Some(day + chrono::TimeDelta::days(1)),
                Some(&format!("{done}T15:00:00Z")),
            )];
            facts.push(f);
        }
        let a = analyse(
            &facts,
            &Period::Year(2026),
            &Calendar::dutch(),
            Amsterdam,
            utc("2027-01-10T10:00:00Z"),
        );
        let p = public_report(&a, 5);
        let ack = &p.milestones[0];
        assert_eq!(ack.milestone, Ack);
        assert_eq!(ack.completed, Cell::Count(12));
        assert!(ack.median_days.is_some());
        // 9 met, 3 missed: the 3 goes, and so does the 9, or the 3 would be 12 - 9.
        assert_eq!(
            (ack.met, ack.missed, ack.judged),
            (Cell::Suppressed, Cell::Suppressed, Cell::Count(12))
        );
        assert_eq!(ack.share_met, None);
        // Milestones nobody reached: no median, zeros shown.
        let handled = &p.milestones[3];
        assert_eq!(
            (handled.completed, handled.median_days),
            (Cell::Count(0), None)
        );
        // With threshold 3 the 3 late ones are shown, and the share with them.
        let p = public_report(&a, 3);
        assert_eq!(p.milestones[0].met, Cell::Count(9));
        assert_eq!(p.milestones[0].share_met, Some(0.75));
    }
}

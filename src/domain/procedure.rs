//! A complaint procedure: milestones with deadlines, the actions that follow from them, and how
//! serious complaints are recognised. Parsed from TOML text (the caller reads the file), then
//! evaluated against a complaint's [`Progress`] to get its deadlines and planned actions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::calendar::{Calendar, Roll, at_local, end_of_day, format_date, local_date};

/// One problem in a procedure file, with where it is and which key it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{origin}:{line}: {key}: {message}")]
pub struct ProcedureError {
    pub origin: String,
    pub line: usize,
    pub key: String,
    pub message: String,
}

/// The fixed vocabulary of milestones, in the order a complaint normally passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    Received,
    Acknowledged,
    HandlerKnown,
    ProcedureExplained,
    FirstReaction,
    SolutionProposed,
    Verdict,
    Handled,
    FollowUp,
    Closed,
    Purged,
}

impl Milestone {
    pub const ALL: [Milestone; 11] = [
        Milestone::Received,
        Milestone::Acknowledged,
        Milestone::HandlerKnown,
        Milestone::ProcedureExplained,
        Milestone::FirstReaction,
        Milestone::SolutionProposed,
        Milestone::Verdict,
        Milestone::Handled,
        Milestone::FollowUp,
        Milestone::Closed,
        Milestone::Purged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Received => "received",
            Milestone::Acknowledged => "acknowledged",
            Milestone::HandlerKnown => "handler_known",
            Milestone::ProcedureExplained => "procedure_explained",
            Milestone::FirstReaction => "first_reaction",
            Milestone::SolutionProposed => "solution_proposed",
            Milestone::Verdict => "verdict",
            Milestone::Handled => "handled",
            Milestone::FollowUp => "follow_up",
            Milestone::Closed => "closed",
            Milestone::Purged => "purged",
        }
    }

    pub fn parse(s: &str) -> Option<Milestone> {
        Milestone::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// A short noun for people: Dutch unless `lang` is `en`.
    pub fn label(self, lang: &str) -> &'static str {
        let en = lang.eq_ignore_ascii_case("en");
        match (self, en) {
            (Milestone::Received, false) => "ontvangst",
            (Milestone::Received, true) => "receipt",
            (Milestone::Acknowledged, false) => "ontvangstbevestiging",
            (Milestone::Acknowledged, true) => "acknowledgement",
            (Milestone::HandlerKnown, false) => "bericht over de behandelaar",
            (Milestone::HandlerKnown, true) => "notice of the handler",
            (Milestone::ProcedureExplained, false) => "uitleg over de verdere procedure",
            (Milestone::ProcedureExplained, true) => "explanation of the procedure",
            (Milestone::FirstReaction, false) => "eerste reactie",
            (Milestone::FirstReaction, true) => "first reaction",
            (Milestone::SolutionProposed, false) => "voorstel voor een oplossing",
            (Milestone::SolutionProposed, true) => "proposed solution",
            (Milestone::Verdict, false) => "oordeel van de klager",
            (Milestone::Verdict, true) => "complainant's verdict",
            (Milestone::Handled, false) => "afhandeling",
            (Milestone::Handled, true) => "handling",
            (Milestone::FollowUp, false) => "nazorg",
            (Milestone::FollowUp, true) => "follow-up",
            (Milestone::Closed, false) => "sluiting",
            (Milestone::Closed, true) => "closure",
            (Milestone::Purged, false) => "verwijdering van de gegevens",
            (Milestone::Purged, true) => "deletion of the data",
        }
    }
}

impl fmt::Display for Milestone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    WorkingDays,
    CalendarDays,
    Weeks,
}

/// A term relative to the completion of another milestone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Term {
    pub after: Milestone,
    pub amount: u32,
    pub unit: Unit,
    /// Atw art. 1: an end on a weekend or holiday moves to the next day (calendar days, weeks).
    pub roll: bool,
}

impl Term {
    /// The end of the term counted from local date `from`, `extra_weeks` later when extended.
    fn end(&self, cal: &Calendar, from: NaiveDate, extra_weeks: u32) -> NaiveDate {
        let roll = if self.roll {
            Roll::NextWorkingDay
        } else {
            Roll::None
        };
        let base = match self.unit {
            Unit::WorkingDays => cal.add_working_days(from, self.amount),
            Unit::CalendarDays => cal.add_calendar_days(from, self.amount, Roll::None),
            Unit::Weeks => cal.add_weeks(from, self.amount, Roll::None),
        };
        let extended = if extra_weeks > 0 {
            cal.add_weeks(base, extra_weeks, Roll::None)
        } else {
            base
        };
        match (self.unit, extra_weeks) {
            // A working-day count already ends on a working day.
            (Unit::WorkingDays, 0) => extended,
            _ => cal.roll(extended, roll),
        }
    }

    fn describe(&self, lang: &str, anchor_override: Option<&str>) -> String {
        let en = lang.eq_ignore_ascii_case("en");
        let n = self.amount;
        let unit = match (self.unit, en, n == 1) {
            (Unit::WorkingDays, false, true) => "werkdag",
            (Unit::WorkingDays, false, false) => "werkdagen",
            (Unit::CalendarDays, false, true) => "dag",
            (Unit::CalendarDays, false, false) => "dagen",
            (Unit::Weeks, false, true) => "week",
            (Unit::Weeks, false, false) => "weken",
            (Unit::WorkingDays, true, true) => "working day",
            (Unit::WorkingDays, true, false) => "working days",
            (Unit::CalendarDays, true, true) => "day",
            (Unit::CalendarDays, true, false) => "days",
            (Unit::Weeks, true, true) => "week",
            (Unit::Weeks, true, false) => "weeks",
        };
        let anchor = anchor_override.unwrap_or(self.after.label(lang));
        let mut s = if en {
            format!("within {n} {unit} after {anchor}")
        } else {
            format!("binnen {n} {unit} na {anchor}")
        };
        if self.roll && self.unit != Unit::WorkingDays {
            s.push_str(if en {
                " (an end on a weekend or public holiday moves to the next working day)"
            } else {
                " (valt het einde op een weekend of feestdag, dan de eerstvolgende werkdag)"
            });
        }
        s
    }
}

/// How a milestone gets completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletedBy {
    /// Sending this template to the complainant completes it.
    Email(String),
    /// A staff command or `klachtd complete`.
    Staff,
    /// The complainant's verdict on a proposed solution.
    Verdict,
    /// The engine itself (an action's `completes`, or registration).
    Auto,
}

/// How a milestone's term may be extended (Awb 9:11(2) and (3), seed 001). The limits are the
/// procedure's, not the code's: without `max_weeks` any extension is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extension {
    /// The most all extensions together may add, in weeks.
    pub max_weeks: Option<u32>,
    /// The written notice to the complainant, sent with each extension.
    pub notice: Option<String>,
    /// The notice to the person the complaint is about (Awb 9:11(2)), when one is recorded.
    pub subject_person_notice: Option<String>,
    /// Beyond `max_weeks` only with the complainant's recorded written agreement (Awb 9:11(3)).
    pub beyond_with_agreement: bool,
}

/// Extensions together never exceed ten years: a larger number is a typing error.
pub const MAX_EXTENSION_WEEKS: u32 = 520;

/// What an extension request comes to, or why it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionGranted {
    pub milestone: Milestone,
    /// All extensions together, this one included.
    pub total_weeks: u32,
    /// This extension goes beyond the procedure's limit and uses the recorded agreement.
    pub uses_agreement: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionRefused {
    #[error("procedure {0} allows no extension")]
    NotAllowed(String),
    #[error("an extension is at least 1 week")]
    Zero,
    #[error("{0} is already completed; there is nothing to extend")]
    Completed(Milestone),
    #[error(
        "extensions together may be at most {max} weeks ({used} used); a further delay needs the complainant's written agreement, recorded first: klachtd set REF extension_agreement \"...\""
    )]
    NeedsAgreement { max: u32, used: u32 },
    #[error("extensions together may be at most {max} weeks ({used} used)")]
    OverLimit { max: u32, used: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MilestoneDef {
    pub id: Milestone,
    pub deadline: Option<Term>,
    pub completed_by: CompletedBy,
    /// Completing this milestone with "another proposal, please" reopens these.
    pub reopens: Vec<Milestone>,
    pub extension: Option<Extension>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// When the milestone is completed.
    On(Milestone),
    /// `working_days` before the milestone's deadline, while it is open.
    Before {
        milestone: Milestone,
        working_days: u32,
    },
    /// At the end of the milestone's due day when it is still open.
    WhenMissed(Milestone),
    /// A term after the milestone's completion.
    After(Term),
    /// When staff record the person the complaint is about (Awb 9:10: a copy of the complaint).
    SubjectPersonNamed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipients {
    Complainant,
    Roles(Vec<String>),
}

impl Recipients {
    fn names(&self) -> Vec<String> {
        match self {
            Recipients::Complainant => vec!["complainant".to_string()],
            Recipients::Roles(r) => r.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub id: String,
    pub trigger: Trigger,
    pub send: Option<String>,
    pub to: Recipients,
    pub completes: Option<Milestone>,
    pub immediate: bool,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Serious {
    pub keywords: Vec<String>,
    pub alert: Vec<String>,
    pub template: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retention {
    pub after: Milestone,
    pub months: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Procedure {
    pub name: String,
    /// First 12 hex digits of the SHA-256 of the text; kept on each complaint.
    pub version: String,
    pub title: String,
    pub description: String,
    pub kinds: Vec<String>,
    pub retention: Option<Retention>,
    /// In vocabulary order; `received` is always first.
    pub milestones: Vec<MilestoneDef>,
    pub actions: Vec<Action>,
    pub serious: Option<Serious>,
    /// Where a complainant who does not agree with the outcome can go next (seed 001: the
    /// OOA; 004: the examencommissie), told to them when they say they do not agree.
    pub appeal: Option<String>,
    pub origin: String,
}

/// Where one complaint stands. Keys of `completed` are milestone ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub received_at: DateTime<Utc>,
    pub completed: BTreeMap<String, DateTime<Utc>>,
    pub round: u32,
    pub serious: bool,
    pub extended_weeks: u32,
}

/// Key in [`Progress::completed`] where [`Procedure::reopen`] records when the last round began:
/// a reopened milestone's term counts from then, not from the first round.
pub const REOPENED_KEY: &str = "reopened";

/// Key in [`Progress::completed`] recording when staff named the person the complaint is about.
pub const SUBJECT_PERSON_KEY: &str = "subject_person_named";

/// The per-complaint role of the person the complaint is about (Awb 9:10, seed 003 step 6).
pub const SUBJECT_PERSON_ROLE: &str = "subject_person";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deadline {
    pub milestone: Milestone,
    pub due: Option<NaiveDate>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Completed by the end of the due day; None while open or without a due date.
    pub met: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedAction {
    /// Stable and unique per complaint: `r{round}:{action_id}`.
    pub key: String,
    pub action_id: String,
    pub send: Option<String>,
    pub recipients: Recipients,
    pub due_date: NaiveDate,
    pub due_at: DateTime<Utc>,
    pub immediate: bool,
    pub completes: Option<String>,
    pub concerns: Option<String>,
    pub deadline: Option<NaiveDate>,
}

/// The action id of the serious-complaint alert in [`Procedure::plan`].
pub const SERIOUS_ACTION: &str = "serious_alert";

/// Terms beyond ten years are typing errors, and would make date loops long.
const MAX_AMOUNT: u32 = 3660;

// ---------------------------------------------------------------------------------------------
// Parsing

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcedure {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    kinds: Vec<String>,
    retention: Option<Spanned<RawRetention>>,
    #[serde(default)]
    milestones: BTreeMap<String, Spanned<RawMilestone>>,
    #[serde(default)]
    action: Vec<Spanned<RawAction>>,
    serious: Option<Spanned<RawSerious>>,
    #[serde(default)]
    appeal: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    after: String,
    months: u32,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTerm {
    after: String,
    working_days: Option<u32>,
    calendar_days: Option<u32>,
    weeks: Option<u32>,
    roll: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMilestone {
    deadline: Option<RawTerm>,
    completed_by: Option<String>,
    #[serde(default)]
    reopens: Vec<String>,
    extension: Option<RawExtension>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtension {
    max_weeks: Option<u32>,
    notice: Option<String>,
    subject_person_notice: Option<String>,
    #[serde(default)]
    beyond_with_agreement: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTo {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    id: String,
    on: Option<String>,
    before: Option<String>,
    when_missed: Option<String>,
    after: Option<String>,
    working_days: Option<u32>,
    calendar_days: Option<u32>,
    weeks: Option<u32>,
    roll: Option<bool>,
    send: Option<String>,
    to: Option<RawTo>,
    completes: Option<String>,
    #[serde(default)]
    immediate: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSerious {
    keywords: Vec<String>,
    alert: Vec<String>,
    template: String,
}

struct Errors<'a> {
    origin: &'a str,
    text: &'a str,
    list: Vec<ProcedureError>,
}

impl Errors<'_> {
    fn line_of(&self, offset: usize) -> usize {
        line_at(self.text, offset)
    }

    fn push(&mut self, offset: usize, key: impl Into<String>, message: impl Into<String>) {
        let line = self.line_of(offset);
        self.list.push(ProcedureError {
            origin: self.origin.to_string(),
            line,
            key: key.into(),
            message: message.into(),
        });
    }

    fn milestone(&mut self, offset: usize, key: &str, name: &str) -> Option<Milestone> {
        let m = Milestone::parse(name);
        if m.is_none() {
            self.push(
                offset,
                key,
                format!(
                    "unknown milestone {name:?} (known: {})",
                    Milestone::ALL.map(|m| m.as_str()).join(", ")
                ),
            );
        }
        m
    }

    /// Exactly one of the three units, within bounds.
    fn amount(
        &mut self,
        offset: usize,
        key: &str,
        working_days: Option<u32>,
        calendar_days: Option<u32>,
        weeks: Option<u32>,
    ) -> Option<(u32, Unit)> {
        let given: Vec<(u32, Unit)> = [
            working_days.map(|n| (n, Unit::WorkingDays)),
            calendar_days.map(|n| (n, Unit::CalendarDays)),
            weeks.map(|n| (n, Unit::Weeks)),
        ]
        .into_iter()
        .flatten()
        .collect();
        match given.as_slice() {
            [(n, unit)] if *n <= MAX_AMOUNT => Some((*n, *unit)),
            [(n, _)] => {
                self.push(offset, key, format!("{n} is more than {MAX_AMOUNT}"));
                None
            }
            [] => {
                self.push(offset, key, "needs working_days, calendar_days or weeks");
                None
            }
            _ => {
                self.push(
                    offset,
                    key,
                    "give only one of working_days, calendar_days and weeks",
                );
                None
            }
        }
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Procedure {
    /// Parse a procedure file. `name` is its preset name, `origin` names it in errors.
    pub fn parse(name: &str, text: &str, origin: &str) -> Result<Procedure, Vec<ProcedureError>> {
        let raw: RawProcedure = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let line = e.span().map(|s| line_at(text, s.start)).unwrap_or(0);
                return Err(vec![ProcedureError {
                    origin: origin.to_string(),
                    line,
                    key: key_in_message(e.message()),
                    message: e.message().trim().to_string(),
                }]);
            }
        };
        let mut errs = Errors {
            origin,
            text,
            list: Vec::new(),
        };

        if raw.title.trim().is_empty() {
            errs.push(0, "title", "must not be empty");
        }

        let mut milestones: Vec<MilestoneDef> = Vec::new();
        for (id, spanned) in &raw.milestones {
            let at = spanned.span().start;
            let key = format!("milestones.{id}");
            let Some(m) = errs.milestone(at, &key, id) else {
                continue;
            };
            let rm = spanned.get_ref();
            let deadline = match &rm.deadline {
                None => None,
                Some(t) => {
                    let k = format!("{key}.deadline");
                    let after = errs.milestone(at, &format!("{k}.after"), &t.after);
                    let amount = errs.amount(at, &k, t.working_days, t.calendar_days, t.weeks);
                    if m == Milestone::Received {
                        errs.push(at, &k, "received has no deadline: it starts the clock");
                    }
                    match (after, amount) {
                        (Some(after), Some((amount, unit))) => Some(Term {
                            after,
                            amount,
                            unit,
                            roll: t.roll.unwrap_or(false),
                        }),
                        _ => None,
                    }
                }
            };
            let completed_by = match rm.completed_by.as_deref() {
                None | Some("auto") => CompletedBy::Auto,
                Some("staff") => CompletedBy::Staff,
                Some("verdict") => CompletedBy::Verdict,
                Some(other) => match other.strip_prefix("email:") {
                    Some(t) if !t.trim().is_empty() => CompletedBy::Email(t.trim().to_string()),
                    _ => {
                        errs.push(
                            at,
                            format!("{key}.completed_by"),
                            format!(
                                "{other:?}: expected \"email:TEMPLATE\", \"staff\", \"verdict\" or \"auto\""
                            ),
                        );
                        CompletedBy::Auto
                    }
                },
            };
            let reopens = rm
                .reopens
                .iter()
                .filter_map(|r| errs.milestone(at, &format!("{key}.reopens"), r))
                .collect();
            let extension = rm.extension.as_ref().and_then(|x| {
                if x.max_weeks
                    .is_some_and(|w| w == 0 || w > MAX_EXTENSION_WEEKS)
                {
                    errs.push(
                        at,
                        format!("{key}.extension.max_weeks"),
                        format!("must be 1 to {MAX_EXTENSION_WEEKS}, or left out for no limit"),
                    );
                    None
                } else if x.beyond_with_agreement && x.max_weeks.is_none() {
                    errs.push(
                        at,
                        format!("{key}.extension.beyond_with_agreement"),
                        "only means something with max_weeks",
                    );
                    None
                } else {
                    if rm.deadline.is_none() {
                        errs.push(
                            at,
                            format!("{key}.extension"),
                            "only a milestone with a deadline can be extended",
                        );
                    }
                    Some(Extension {
                        max_weeks: x.max_weeks,
                        notice: x.notice.clone(),
                        subject_person_notice: x.subject_person_notice.clone(),
                        beyond_with_agreement: x.beyond_with_agreement,
                    })
                }
            });
            milestones.push(MilestoneDef {
                id: m,
                deadline,
                completed_by,
                reopens,
                extension,
                line: line_at(text, at),
            });
        }
        if !milestones.iter().any(|m| m.id == Milestone::Received) {
            milestones.push(MilestoneDef {
                id: Milestone::Received,
                deadline: None,
                completed_by: CompletedBy::Auto,
                reopens: Vec::new(),
                extension: None,
                line: 0,
            });
        }
        milestones.sort_by_key(|m| m.id);

        let mut actions = Vec::new();
        for (i, spanned) in raw.action.iter().enumerate() {
            let at = spanned.span().start;
            let ra = spanned.get_ref();
            let key = format!("action[{i}]");
            if ra.id.trim().is_empty() {
                errs.push(at, format!("{key}.id"), "must not be empty");
            }
            let key = if ra.id.trim().is_empty() {
                key
            } else {
                format!("action.{}", ra.id)
            };
            let has_amount =
                ra.working_days.is_some() || ra.calendar_days.is_some() || ra.weeks.is_some();
            let triggers = [&ra.on, &ra.before, &ra.when_missed, &ra.after]
                .iter()
                .filter(|t| t.is_some())
                .count();
            let trigger = if triggers != 1 {
                errs.push(
                    at,
                    &key,
                    "needs exactly one of on, before, when_missed and after",
                );
                None
            } else if let Some(m) = &ra.on {
                if has_amount {
                    errs.push(at, &key, "an `on` action takes no term");
                }
                if m == SUBJECT_PERSON_KEY {
                    Some(Trigger::SubjectPersonNamed)
                } else {
                    errs.milestone(at, &format!("{key}.on"), m).map(Trigger::On)
                }
            } else if let Some(m) = &ra.when_missed {
                if has_amount {
                    errs.push(at, &key, "a `when_missed` action takes no term");
                }
                errs.milestone(at, &format!("{key}.when_missed"), m)
                    .map(Trigger::WhenMissed)
            } else if let Some(m) = &ra.before {
                let milestone = errs.milestone(at, &format!("{key}.before"), m);
                let n = match (ra.working_days, ra.calendar_days, ra.weeks) {
                    (Some(n), None, None) if n <= MAX_AMOUNT => Some(n),
                    _ => {
                        errs.push(at, &key, "`before` needs working_days (and no other unit)");
                        None
                    }
                };
                milestone
                    .zip(n)
                    .map(|(milestone, working_days)| Trigger::Before {
                        milestone,
                        working_days,
                    })
            } else if let Some(m) = &ra.after {
                let after = errs.milestone(at, &format!("{key}.after"), m);
                let amount = errs.amount(at, &key, ra.working_days, ra.calendar_days, ra.weeks);
                after.zip(amount).map(|(after, (amount, unit))| {
                    Trigger::After(Term {
                        after,
                        amount,
                        unit,
                        roll: ra.roll.unwrap_or(false),
                    })
                })
            } else {
                None
            };
            let to = match &ra.to {
                None => {
                    if ra.send.is_some() {
                        errs.push(at, format!("{key}.to"), "say who gets the mail");
                    }
                    Recipients::Roles(Vec::new())
                }
                Some(RawTo::One(s)) if s == "complainant" => Recipients::Complainant,
                Some(RawTo::One(s)) => Recipients::Roles(vec![s.clone()]),
                Some(RawTo::Many(list)) => {
                    if list.iter().any(|r| r == "complainant") {
                        errs.push(
                            at,
                            format!("{key}.to"),
                            "write to = \"complainant\" on its own action",
                        );
                    }
                    if list.is_empty() {
                        errs.push(at, format!("{key}.to"), "must not be empty");
                    }
                    Recipients::Roles(list.clone())
                }
            };
            let completes = ra
                .completes
                .as_ref()
                .and_then(|m| errs.milestone(at, &format!("{key}.completes"), m));
            if ra.send.is_none() && ra.completes.is_none() {
                errs.push(at, &key, "does nothing: give send or completes");
            }
            if let Some(trigger) = trigger {
                actions.push(Action {
                    id: ra.id.trim().to_string(),
                    trigger,
                    send: ra.send.clone(),
                    to,
                    completes,
                    immediate: ra.immediate,
                    line: line_at(text, at),
                });
            }
        }

        let serious = raw.serious.as_ref().map(|s| {
            let at = s.span().start;
            let r = s.get_ref();
            if r.keywords.iter().all(|k| normalize(k).trim().is_empty()) {
                errs.push(at, "serious.keywords", "needs at least one keyword");
            }
            if r.alert.is_empty() {
                errs.push(at, "serious.alert", "needs at least one role");
            }
            Serious {
                keywords: r.keywords.clone(),
                alert: r.alert.clone(),
                template: r.template.clone(),
                line: line_at(text, at),
            }
        });

        let retention = raw.retention.as_ref().and_then(|r| {
            let at = r.span().start;
            let rr = r.get_ref();
            if rr.months == 0 || rr.months > 1200 {
                errs.push(at, "retention.months", "must be 1 to 1200");
            }
            errs.milestone(at, "retention.after", &rr.after)
                .map(|after| Retention {
                    after,
                    months: rr.months,
                })
        });

        if !errs.list.is_empty() {
            return Err(errs.list);
        }
        let digest = Sha256::digest(text.as_bytes());
        let mut version = hex::encode(digest);
        version.truncate(12);
        Ok(Procedure {
            name: name.to_string(),
            version,
            title: raw.title,
            description: raw.description,
            kinds: raw.kinds,
            retention,
            milestones,
            actions,
            serious,
            appeal: raw
                .appeal
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty()),
            origin: origin.to_string(),
        })
    }

    pub fn milestone(&self, m: Milestone) -> Option<&MilestoneDef> {
        self.milestones.iter().find(|d| d.id == m)
    }

    /// The kind a new complaint gets: the procedure's first, or `complaint`.
    pub fn default_kind(&self) -> String {
        self.kinds
            .first()
            .cloned()
            .unwrap_or_else(|| "complaint".into())
    }

    pub fn uses(&self, m: Milestone) -> bool {
        self.milestone(m).is_some()
    }

    /// What is wrong beyond the syntax: references to milestones this procedure does not use,
    /// deadlines depending on themselves, templates and roles that do not exist, duplicate ids.
    pub fn check(
        &self,
        has_template: &dyn Fn(&str) -> bool,
        has_role: &dyn Fn(&str) -> bool,
    ) -> Vec<ProcedureError> {
        let mut out = Vec::new();
        let mut err = |line: usize, key: String, message: String| {
            out.push(ProcedureError {
                origin: self.origin.clone(),
                line,
                key,
                message,
            });
        };
        let unused = |m: Milestone| format!("milestone {m} is not part of this procedure");

        for def in &self.milestones {
            let key = format!("milestones.{}", def.id);
            if let Some(t) = &def.deadline
                && !self.uses(t.after)
            {
                err(def.line, format!("{key}.deadline.after"), unused(t.after));
            }
            for r in &def.reopens {
                if !self.uses(*r) {
                    err(def.line, format!("{key}.reopens"), unused(*r));
                }
            }
            if let CompletedBy::Email(t) = &def.completed_by
                && !has_template(t)
            {
                err(
                    def.line,
                    format!("{key}.completed_by"),
                    format!("no template {t:?}"),
                );
            }
            if let Some(x) = &def.extension {
                for (field, t) in [
                    ("notice", &x.notice),
                    ("subject_person_notice", &x.subject_person_notice),
                ] {
                    if let Some(t) = t
                        && !has_template(t)
                    {
                        err(
                            def.line,
                            format!("{key}.extension.{field}"),
                            format!("no template {t:?}"),
                        );
                    }
                }
            }
        }

        // Cycles in `after` chains: follow each chain; meeting the start again is a cycle.
        for def in &self.milestones {
            let mut seen = BTreeSet::new();
            let mut current = def.id;
            while let Some(t) = self.milestone(current).and_then(|d| d.deadline) {
                if t.after == def.id {
                    err(
                        def.line,
                        format!("milestones.{}.deadline.after", def.id),
                        format!("the deadline of {} depends on itself", def.id),
                    );
                    break;
                }
                if !seen.insert(t.after) {
                    break; // a cycle not through def: reported at its own members
                }
                current = t.after;
            }
        }

        let mut ids = BTreeSet::new();
        for a in &self.actions {
            let key = format!("action.{}", a.id);
            if !ids.insert(a.id.as_str()) {
                err(
                    a.line,
                    format!("{key}.id"),
                    format!("duplicate action id {:?}", a.id),
                );
            }
            if a.id == SERIOUS_ACTION {
                err(
                    a.line,
                    format!("{key}.id"),
                    format!("{SERIOUS_ACTION:?} is reserved"),
                );
            }
            let m = match &a.trigger {
                Trigger::On(m) | Trigger::WhenMissed(m) => *m,
                Trigger::Before { milestone, .. } => *milestone,
                Trigger::After(t) => t.after,
                Trigger::SubjectPersonNamed => Milestone::Received,
            };
            if !self.uses(m) {
                err(a.line, key.clone(), unused(m));
            }
            if let Trigger::Before { milestone: m, .. } | Trigger::WhenMissed(m) = &a.trigger
                && self.uses(*m)
                && self.milestone(*m).and_then(|d| d.deadline).is_none()
            {
                err(
                    a.line,
                    key.clone(),
                    format!("milestone {m} has no deadline to be before or to miss"),
                );
            }
            if let Some(c) = a.completes
                && !self.uses(c)
            {
                err(a.line, format!("{key}.completes"), unused(c));
            }
            if let Some(t) = &a.send
                && !has_template(t)
            {
                err(a.line, format!("{key}.send"), format!("no template {t:?}"));
            }
            if let Recipients::Roles(roles) = &a.to {
                for r in roles {
                    if r != SUBJECT_PERSON_ROLE && !has_role(r) {
                        err(
                            a.line,
                            format!("{key}.to"),
                            format!("role {r:?} has no address"),
                        );
                    }
                }
            }
        }

        if let Some(s) = &self.serious {
            if !has_template(&s.template) {
                err(
                    s.line,
                    "serious.template".into(),
                    format!("no template {:?}", s.template),
                );
            }
            for r in &s.alert {
                if !has_role(r) {
                    err(
                        s.line,
                        "serious.alert".into(),
                        format!("role {r:?} has no address"),
                    );
                }
            }
        }
        if let Some(r) = &self.retention
            && !self.uses(r.after)
        {
            err(0, "retention.after".into(), unused(r.after));
        }
        out
    }

    /// The keywords of `[serious]` found in the mail, whole words, ignoring case and accents.
    pub fn is_serious(&self, subject: &str, body: &str) -> Vec<String> {
        let Some(s) = &self.serious else {
            return Vec::new();
        };
        let words: Vec<String> = words(&format!("{subject}\n{body}"));
        let mut found = Vec::new();
        for k in &s.keywords {
            let kw = words_of(k);
            if kw.is_empty() || found.contains(k) {
                continue;
            }
            if words.windows(kw.len()).any(|w| w == kw.as_slice()) {
                found.push(k.clone());
            }
        }
        found
    }

    /// The milestones reopened when a complainant asks for another proposal.
    pub fn reopened_milestones(&self) -> BTreeSet<Milestone> {
        self.milestones
            .iter()
            .flat_map(|d| d.reopens.iter().copied())
            .collect()
    }

    /// Start a new round: forget the completion of every reopened milestone and note when the
    /// round began (their terms count again from then).
    pub fn reopen(&self, progress: &mut Progress, at: DateTime<Utc>) {
        let reopened = self.reopened_milestones();
        if reopened.is_empty() {
            return;
        }
        for m in &reopened {
            progress.completed.remove(m.as_str());
        }
        progress.round += 1;
        progress.completed.insert(REOPENED_KEY.to_string(), at);
    }

    fn completed_at(&self, p: &Progress, m: Milestone) -> Option<DateTime<Utc>> {
        if m == Milestone::Received {
            Some(p.received_at)
        } else {
            p.completed.get(m.as_str()).copied()
        }
    }

    /// When the term of `def` starts: the completion of the milestone it counts from, or while
    /// that is open, that milestone's own due date (seed 004: "binnen 14 werkdagen na ontvangst
    /// van deze reactie", with the reaction due in 5). None when neither is known.
    fn anchor_date(
        &self,
        cal: &Calendar,
        tz: Tz,
        p: &Progress,
        def: &MilestoneDef,
        t: &Term,
        depth: usize,
    ) -> Option<NaiveDate> {
        if let Some(at) = self.anchor(p, def, t) {
            return Some(local_date(at, tz));
        }
        // A chain longer than the vocabulary is a cycle (refused by `check`): stop.
        if depth > Milestone::ALL.len() {
            return None;
        }
        self.due_at_depth(cal, tz, p, t.after, depth + 1)
    }

    /// When the term of `def` starts, if it has started.
    fn anchor(&self, p: &Progress, def: &MilestoneDef, t: &Term) -> Option<DateTime<Utc>> {
        // In a later round a reopened milestone's term counts from the reopening when its
        // anchor itself was not reopened (else the new term would already have passed).
        if p.round > 0 {
            let reopened = self.reopened_milestones();
            if reopened.contains(&def.id)
                && !reopened.contains(&t.after)
                && let Some(at) = p.completed.get(REOPENED_KEY)
            {
                return Some(*at);
            }
        }
        self.completed_at(p, t.after)
    }

    fn due(&self, cal: &Calendar, tz: Tz, p: &Progress, m: Milestone) -> Option<NaiveDate> {
        self.due_at_depth(cal, tz, p, m, 0)
    }

    fn due_at_depth(
        &self,
        cal: &Calendar,
        tz: Tz,
        p: &Progress,
        m: Milestone,
        depth: usize,
    ) -> Option<NaiveDate> {
        let def = self.milestone(m)?;
        let t = def.deadline?;
        let start = self.anchor_date(cal, tz, p, def, &t, depth)?;
        // The limits were applied when the extension was granted ([`Procedure::extend`]).
        let extra = match &def.extension {
            Some(_) => p.extended_weeks.min(MAX_EXTENSION_WEEKS),
            None => 0,
        };
        Some(t.end(cal, start, extra))
    }

    /// The milestone whose term may be extended, if the procedure has one.
    pub fn extensible(&self) -> Option<(Milestone, &Extension)> {
        self.milestones
            .iter()
            .find_map(|m| m.extension.as_ref().map(|x| (m.id, x)))
    }

    /// Extend the term by `weeks` more (Awb 9:11): extensions add up, so a deadline never
    /// moves earlier. Beyond the procedure's limit only with a recorded written agreement
    /// (`agreement_recorded`), when the procedure allows that at all.
    pub fn extend(
        &self,
        p: &Progress,
        weeks: u32,
        agreement_recorded: bool,
    ) -> Result<ExtensionGranted, ExtensionRefused> {
        let (milestone, x) = self
            .extensible()
            .ok_or_else(|| ExtensionRefused::NotAllowed(self.name.clone()))?;
        if weeks == 0 {
            return Err(ExtensionRefused::Zero);
        }
        if self.completed_at(p, milestone).is_some() {
            return Err(ExtensionRefused::Completed(milestone));
        }
        let used = p.extended_weeks;
        let total = used.saturating_add(weeks);
        if total > MAX_EXTENSION_WEEKS {
            return Err(ExtensionRefused::OverLimit {
                max: MAX_EXTENSION_WEEKS,
                used,
            });
        }
        let uses_agreement = match x.max_weeks {
            Some(max) if total > max => {
                if !x.beyond_with_agreement {
                    return Err(ExtensionRefused::OverLimit { max, used });
                }
                if !agreement_recorded {
                    return Err(ExtensionRefused::NeedsAgreement { max, used });
                }
                true
            }
            _ => false,
        };
        Ok(ExtensionGranted {
            milestone,
            total_weeks: total,
            uses_agreement,
        })
    }

    /// Every milestone of the procedure with its due date (when known) and whether it was met.
    pub fn deadlines(&self, cal: &Calendar, tz: Tz, p: &Progress) -> Vec<Deadline> {
        self.milestones
            .iter()
            .map(|def| {
                let due = self.due(cal, tz, p, def.id);
                let completed_at = self.completed_at(p, def.id);
                let met = match (due, completed_at) {
                    (Some(d), Some(c)) => Some(c < end_of_day(d, tz)),
                    _ => None,
                };
                Deadline {
                    milestone: def.id,
                    due,
                    completed_at,
                    met,
                }
            })
            .collect()
    }

    /// Every action that applies to this complaint now or later, with the moment it runs.
    /// Mail to people runs on a working day inside working hours; at once only the serious
    /// alert, mail marked `immediate` to the complainant, and, when the complaint is serious or
    /// `staff_at_once` is set, mail marked `immediate` to staff.
    pub fn plan(
        &self,
        cal: &Calendar,
        tz: Tz,
        hours: (NaiveTime, NaiveTime),
        p: &Progress,
        staff_at_once: bool,
    ) -> Vec<PlannedAction> {
        self.plan_inner(cal, tz, hours, p, true, staff_at_once)
    }

    fn plan_inner(
        &self,
        cal: &Calendar,
        tz: Tz,
        hours: (NaiveTime, NaiveTime),
        p: &Progress,
        only_open: bool,
        staff_at_once: bool,
    ) -> Vec<PlannedAction> {
        let reopened = self.reopened_milestones();
        let done = |m: Milestone| only_open && self.completed_at(p, m).is_some();
        let start_of_work = |d: NaiveDate| at_local(cal.working_day_on_or_after(d), hours.0, tz);
        let mut out = Vec::new();

        if p.serious
            && let Some(s) = &self.serious
        {
            out.push(PlannedAction {
                key: format!("r0:{SERIOUS_ACTION}"),
                action_id: SERIOUS_ACTION.to_string(),
                send: Some(s.template.clone()),
                recipients: Recipients::Roles(s.alert.clone()),
                due_date: local_date(p.received_at, tz),
                due_at: p.received_at,
                immediate: true,
                completes: None,
                concerns: Some(Milestone::Received.to_string()),
                deadline: None,
            });
        }

        for a in &self.actions {
            if a.completes.is_some_and(done) {
                continue;
            }
            let (concerns, due_at) = match &a.trigger {
                Trigger::On(m) => {
                    let Some(at) = self.completed_at(p, *m) else {
                        continue;
                    };
                    (*m, at)
                }
                Trigger::Before {
                    milestone,
                    working_days,
                } => {
                    if done(*milestone) {
                        continue;
                    }
                    let Some(due) = self.due(cal, tz, p, *milestone) else {
                        continue;
                    };
                    let day = cal.sub_working_days(due, *working_days);
                    (*milestone, start_of_work(day))
                }
                Trigger::WhenMissed(m) => {
                    if done(*m) {
                        continue;
                    }
                    let Some(due) = self.due(cal, tz, p, *m) else {
                        continue;
                    };
                    let end = end_of_day(due, tz);
                    let at = if a.immediate {
                        end
                    } else {
                        next_working_time(cal, tz, hours, end)
                    };
                    (*m, at)
                }
                Trigger::After(t) => {
                    let Some(start) = self.completed_at(p, t.after) else {
                        continue;
                    };
                    let day = t.end(cal, local_date(start, tz), 0);
                    let at = if a.immediate {
                        at_local(day, NaiveTime::MIN, tz).max(start)
                    } else {
                        start_of_work(day).max(start)
                    };
                    (a.completes.unwrap_or(t.after), at)
                }
                Trigger::SubjectPersonNamed => {
                    let Some(at) = p.completed.get(SUBJECT_PERSON_KEY) else {
                        continue;
                    };
                    (Milestone::Received, *at)
                }
            };
            let anchor = match &a.trigger {
                Trigger::On(m) | Trigger::WhenMissed(m) => *m,
                Trigger::Before { milestone, .. } => *milestone,
                Trigger::After(t) => t.after,
                Trigger::SubjectPersonNamed => Milestone::Received,
            };
            let round = if reopened.contains(&anchor) {
                p.round
            } else {
                0
            };
            let to_staff = a.send.is_some() && matches!(a.to, Recipients::Roles(_));
            let at_once = a.immediate && (!to_staff || p.serious || staff_at_once);
            let due_at = if at_once {
                due_at
            } else {
                next_working_time(cal, tz, hours, due_at)
            };
            out.push(PlannedAction {
                key: format!("r{round}:{}", a.id),
                action_id: a.id.clone(),
                send: a.send.clone(),
                recipients: a.to.clone(),
                due_date: local_date(due_at, tz),
                due_at,
                immediate: a.immediate,
                completes: a.completes.map(|m| m.to_string()),
                concerns: Some(concerns.to_string()),
                deadline: self.due(cal, tz, p, concerns),
            });
        }
        out.sort_by(|a, b| a.due_at.cmp(&b.due_at).then_with(|| a.key.cmp(&b.key)));
        out
    }

    /// The timeline of a complaint received at `received_at`, assuming each milestone is
    /// completed at the end of working hours on its due day.
    pub fn explain(
        &self,
        cal: &Calendar,
        tz: Tz,
        hours: (NaiveTime, NaiveTime),
        received_at: DateTime<Utc>,
        lang: &str,
        staff_at_once: bool,
    ) -> Explanation {
        // Not serious: the timeline of an ordinary complaint; the serious alert is added below.
        let mut sim = Progress {
            received_at,
            completed: BTreeMap::new(),
            round: 0,
            serious: false,
            extended_weeks: 0,
        };
        // Fixpoint: each pass can complete milestones whose anchors the previous pass completed.
        for _ in 0..=self.milestones.len() {
            let mut changed = false;
            for def in &self.milestones {
                if self.completed_at(&sim, def.id).is_some() {
                    continue;
                }
                if let Some(due) = self.due(cal, tz, &sim, def.id) {
                    sim.completed
                        .insert(def.id.to_string(), at_local(due, hours.1, tz));
                    changed = true;
                }
            }
            for pa in self.plan_inner(cal, tz, hours, &sim, false, staff_at_once) {
                if let Some(c) = &pa.completes
                    && !sim.completed.contains_key(c)
                {
                    sim.completed.insert(c.clone(), pa.due_at);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let milestones = self
            .milestones
            .iter()
            .map(|def| ExplainedMilestone {
                milestone: def.id,
                label: def.id.label(lang).to_string(),
                due: self.due(cal, tz, &sim, def.id),
                rule: describe_milestone(def, lang),
            })
            .collect();
        let serious_alert = self
            .plan_inner(
                cal,
                tz,
                hours,
                &Progress {
                    serious: true,
                    ..sim.clone()
                },
                false,
                staff_at_once,
            )
            .into_iter()
            .filter(|pa| pa.action_id == SERIOUS_ACTION);
        let mut planned: Vec<PlannedAction> = self
            .plan_inner(cal, tz, hours, &sim, false, staff_at_once)
            .into_iter()
            .chain(serious_alert)
            .collect();
        planned.sort_by(|a, b| a.due_at.cmp(&b.due_at).then_with(|| a.key.cmp(&b.key)));
        let actions = planned
            .into_iter()
            .map(|pa| {
                let description = match self.actions.iter().find(|a| a.id == pa.action_id) {
                    Some(a) => describe_action(a, lang),
                    None => {
                        if lang.eq_ignore_ascii_case("en") {
                            "only for a serious complaint: alert at once".to_string()
                        } else {
                            "alleen bij een ernstige klacht: direct melden".to_string()
                        }
                    }
                };
                ExplainedAction {
                    id: pa.action_id,
                    due_at: pa.due_at,
                    template: pa.send,
                    to: pa.recipients.names(),
                    description,
                }
            })
            .collect();
        Explanation {
            procedure: self.name.clone(),
            version: self.version.clone(),
            received_at,
            milestones,
            actions,
            title: self.title.clone(),
            lang: lang.to_string(),
            tz,
        }
    }
}

/// The first moment at or after `t` inside working hours on a working day.
fn next_working_time(
    cal: &Calendar,
    tz: Tz,
    hours: (NaiveTime, NaiveTime),
    t: DateTime<Utc>,
) -> DateTime<Utc> {
    let local = t.with_timezone(&tz);
    let day = local.date_naive();
    let time = local.time();
    if cal.is_working_day(day) && time < hours.0 {
        at_local(day, hours.0, tz)
    } else if cal.is_working_day(day) && time < hours.1 {
        t
    } else {
        at_local(cal.next_working_day(day), hours.0, tz)
    }
}

fn describe_milestone(def: &MilestoneDef, lang: &str) -> String {
    let en = lang.eq_ignore_ascii_case("en");
    let mut s = match (&def.deadline, def.id) {
        (_, Milestone::Received) if en => "the day of receipt does not count".to_string(),
        (_, Milestone::Received) => "de dag van ontvangst telt niet mee".to_string(),
        (Some(t), _) => t.describe(lang, None),
        (None, _) if en => "no fixed term".to_string(),
        (None, _) => "geen vaste termijn".to_string(),
    };
    let how = match (&def.completed_by, en) {
        (CompletedBy::Email(t), false) => format!("; klaar met het bericht '{t}'"),
        (CompletedBy::Email(t), true) => format!("; done by sending '{t}'"),
        (CompletedBy::Staff, false) => "; een medewerker meldt het als gedaan".to_string(),
        (CompletedBy::Staff, true) => "; a staff member marks it done".to_string(),
        (CompletedBy::Verdict, false) => "; de klager geeft zijn oordeel".to_string(),
        (CompletedBy::Verdict, true) => "; the complainant gives a verdict".to_string(),
        (CompletedBy::Auto, _) => String::new(),
    };
    s.push_str(&how);
    if !def.reopens.is_empty() {
        let list: Vec<&str> = def.reopens.iter().map(|m| m.label(lang)).collect();
        s.push_str(&if en {
            format!("; asking for another proposal reopens: {}", list.join(", "))
        } else {
            format!(
                "; vraagt de klager om een ander voorstel, dan opnieuw: {}",
                list.join(", ")
            )
        });
    }
    if let Some(x) = &def.extension {
        s.push_str(&match (x.max_weeks, x.beyond_with_agreement, en) {
            (None, _, true) => "; may be extended, with notice".to_string(),
            (None, _, false) => "; te verlengen, met bericht".to_string(),
            (Some(w), false, true) => {
                format!("; may be extended by at most {w} weeks in all, with written notice")
            }
            (Some(w), false, false) => format!(
                "; te verlengen met in totaal ten hoogste {w} weken, met schriftelijk bericht"
            ),
            (Some(w), true, true) => format!(
                "; may be extended by at most {w} weeks in all, with written notice; further only with the complainant's written agreement"
            ),
            (Some(w), true, false) => format!(
                "; te verlengen met in totaal ten hoogste {w} weken, met schriftelijk bericht; verder alleen met schriftelijke instemming van de klager"
            ),
        });
    }
    s
}

fn describe_action(a: &Action, lang: &str) -> String {
    let en = lang.eq_ignore_ascii_case("en");
    let to = a.to.names().join(", ");
    let what = match (&a.send, en) {
        (Some(t), false) => format!("bericht '{t}' aan {to}"),
        (Some(t), true) => format!("mail '{t}' to {to}"),
        (None, false) => "geen bericht".to_string(),
        (None, true) => "no mail".to_string(),
    };
    let when = match (&a.trigger, en) {
        (Trigger::On(m), false) => format!("bij {}", m.label(lang)),
        (Trigger::On(m), true) => format!("on {}", m.label(lang)),
        (
            Trigger::Before {
                milestone,
                working_days,
            },
            false,
        ) => format!(
            "{working_days} werkdag(en) voor de termijn van {}, als die nog open is",
            milestone.label(lang)
        ),
        (
            Trigger::Before {
                milestone,
                working_days,
            },
            true,
        ) => format!(
            "{working_days} working day(s) before the deadline of {}, while open",
            milestone.label(lang)
        ),
        (Trigger::WhenMissed(m), false) => {
            format!("als de termijn van {} verstreken is", m.label(lang))
        }
        (Trigger::WhenMissed(m), true) => format!("when the deadline of {} passed", m.label(lang)),
        (Trigger::After(t), _) => t.describe(lang, None),
        (Trigger::SubjectPersonNamed, false) => {
            "als de persoon over wie geklaagd wordt is vastgelegd".to_string()
        }
        (Trigger::SubjectPersonNamed, true) => {
            "when the person complained about is recorded".to_string()
        }
    };
    let mut s = format!("{what} ({when})");
    if let Some(c) = a.completes {
        s.push_str(&if en {
            format!("; completes {}", c.label(lang))
        } else {
            format!("; rondt {} af", c.label(lang))
        });
    }
    if a.immediate && matches!(a.to, Recipients::Complainant) {
        s.push_str(if en {
            "; at once, also outside working hours"
        } else {
            "; direct, ook buiten werktijd"
        });
    } else if a.immediate {
        s.push_str(if en {
            "; at once within working hours (for a serious complaint, or with schedule.notify_staff_at_once, at any hour)"
        } else {
            "; direct binnen werktijd (bij een ernstige klacht, of met schedule.notify_staff_at_once, op elk moment)"
        });
    }
    s
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplainedMilestone {
    pub milestone: Milestone,
    pub label: String,
    pub due: Option<NaiveDate>,
    pub rule: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplainedAction {
    pub id: String,
    pub due_at: DateTime<Utc>,
    pub template: Option<String>,
    pub to: Vec<String>,
    pub description: String,
}

/// What a procedure does with a complaint received at a given moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub procedure: String,
    pub version: String,
    pub received_at: DateTime<Utc>,
    pub milestones: Vec<ExplainedMilestone>,
    pub actions: Vec<ExplainedAction>,
    #[serde(skip)]
    title: String,
    #[serde(skip)]
    lang: String,
    #[serde(skip)]
    tz: Tz,
}

impl Explanation {
    /// Plain text with concrete local dates, in the language asked for.
    pub fn to_text(&self) -> String {
        let en = self.lang.eq_ignore_ascii_case("en");
        let lang = self.lang.as_str();
        let when = |t: DateTime<Utc>| {
            let local = t.with_timezone(&self.tz);
            format!(
                "{} {}",
                format_date(local.date_naive(), lang),
                local.format("%H:%M")
            )
        };
        let mut s = format!(
            "{} ({}, {} {})\n",
            self.title,
            self.procedure,
            if en { "version" } else { "versie" },
            self.version
        );
        s.push_str(&if en {
            format!("Complaint received {}.\n\n", when(self.received_at))
        } else {
            format!("Klacht ontvangen op {}.\n\n", when(self.received_at))
        });
        s.push_str(if en { "Milestones:\n" } else { "Termijnen:\n" });
        for m in &self.milestones {
            let due = match m.due {
                Some(d) if en => format!("by {}", format_date(d, lang)),
                Some(d) => format!("uiterlijk {}", format_date(d, lang)),
                None if m.milestone == Milestone::Received => String::new(),
                None if en => "no date".to_string(),
                None => "geen datum".to_string(),
            };
            let label = capitalise(&m.label);
            if due.is_empty() {
                s.push_str(&format!("- {label}: {}\n", m.rule));
            } else {
                s.push_str(&format!("- {label}: {due} ({})\n", m.rule));
            }
        }
        s.push_str(if en {
            "\nMessages (each only while it still applies):\n"
        } else {
            "\nBerichten (elk alleen zolang het nog van toepassing is):\n"
        });
        for a in &self.actions {
            s.push_str(&format!("- {}: {}\n", when(a.due_at), a.description));
        }
        s
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The key a TOML error message names (`unknown field `x``, `missing field `x``), if any.
fn key_in_message(msg: &str) -> String {
    let mut parts = msg.split('`');
    parts.next();
    parts.next().unwrap_or("").to_string()
}

/// Lower case without accents, so `Veiligheid`, `VEILIGHEID` and `veiligheid` all match.
/// Lower case without accents, for keyword matching.
pub(crate) fn normalize(s: &str) -> String {
    s.chars()
        .flat_map(|c| c.to_lowercase())
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            'ç' => 'c',
            'ñ' => 'n',
            other => other,
        })
        .collect()
}

/// The words of `s`, normalised ([`normalize`]).
pub(crate) fn words(s: &str) -> Vec<String> {
    normalize(s)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn words_of(keyword: &str) -> Vec<String> {
    words(keyword)
}

/// The shipped presets, for the unit tests of every module that works on procedures.
#[cfg(test)]
pub(crate) const TEST_PRESETS: [(&str, &str); 6] = [
    ("mzo", include_str!("../../config/procedures/mzo.toml")),
    (
        "academie",
        include_str!("../../config/procedures/academie.toml"),
    ),
    (
        "korein",
        include_str!("../../config/procedures/korein.toml"),
    ),
    (
        "gelukwerkt",
        include_str!("../../config/procedures/gelukwerkt.toml"),
    ),
    (
        "leefstijlwijzer",
        include_str!("../../config/procedures/leefstijlwijzer.toml"),
    ),
    ("awb", include_str!("../../config/procedures/awb.toml")),
];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Amsterdam;

    use super::TEST_PRESETS as PRESETS;

    const TEMPLATES: [&str; 17] = [
        "acknowledgement",
        "handler_assigned",
        "procedure_explanation",
        "delay_notice",
        "solution",
        "satisfaction_survey",
        "closure",
        "outcome_awb",
        "new_complaint",
        "reminder",
        "escalation",
        "serious_alert",
        "digest",
        "delay_notice_due",
        "subject_copy",
        "subject_delay_notice",
        "subject_outcome",
    ];

    const ROLES: [&str; 7] = [
        "receiver",
        "director",
        "handler",
        "admin",
        "cluster_manager",
        "complaints_officer",
        "management_team",
    ];

    fn preset(name: &str) -> Procedure {
        let (_, text) = PRESETS.iter().find(|(n, _)| *n == name).unwrap();
        Procedure::parse(name, text, &format!("{name}.toml")).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn hours() -> (NaiveTime, NaiveTime) {
        (
            NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
        )
    }

    fn progress(received: &str) -> Progress {
        Progress {
            received_at: utc(received),
            completed: BTreeMap::new(),
            round: 0,
            serious: false,
            extended_weeks: 0,
        }
    }

    fn due(p: &Procedure, pr: &Progress, m: Milestone) -> Option<NaiveDate> {
        p.deadlines(&Calendar::dutch(), Amsterdam, pr)
            .into_iter()
            .find(|x| x.milestone == m)
            .and_then(|x| x.due)
    }

    fn plan(p: &Procedure, pr: &Progress) -> Vec<PlannedAction> {
        p.plan(&Calendar::dutch(), Amsterdam, hours(), pr, false)
    }

    #[test]
    fn every_preset_parses_and_checks() {
        for (name, text) in PRESETS {
            let p = Procedure::parse(name, text, name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let errors = p.check(&|t| TEMPLATES.contains(&t), &|r| ROLES.contains(&r));
            assert!(errors.is_empty(), "{name}: {errors:#?}");
            assert!(p.uses(Milestone::Received) && p.uses(Milestone::Acknowledged));
            let ack = p.actions.iter().find(|a| a.id == "acknowledge").unwrap();
            assert_eq!(ack.trigger, Trigger::On(Milestone::Received));
            assert!(ack.immediate && ack.to == Recipients::Complainant);
            assert_eq!(ack.completes, Some(Milestone::Acknowledged));
            assert!(p.actions.iter().any(|a| a.send.as_deref() == Some("new_complaint")
                && a.immediate
                && matches!(&a.to, Recipients::Roles(r) if r.iter().any(|x| x == "receiver"))));
            // Every rule carries a comment: each [[action]] and milestone header is followed by one.
            let lines: Vec<&str> = text.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                if l.starts_with("[[action]]") || l.starts_with("[milestones.") {
                    assert!(
                        lines[i + 1].starts_with('#'),
                        "{name}:{}: no comment",
                        i + 1
                    );
                }
            }
        }
    }

    #[test]
    fn preset_facts() {
        // 000: 5, 7 and 14 working days; 3 weeks follow-up; escalation to the director.
        let mzo = preset("mzo");
        let pr = progress("2026-12-23T09:00:00Z");
        assert_eq!(
            due(&mzo, &pr, Milestone::FirstReaction),
            Some(d(2026, 12, 31))
        );
        assert_eq!(due(&mzo, &pr, Milestone::Handled), Some(d(2027, 1, 14)));
        assert_eq!(due(&mzo, &pr, Milestone::FollowUp), Some(d(2027, 1, 13)));
        // 001: 7 calendar days rolled, retention 6 months after handling.
        let academie = preset("academie");
        let pr = progress("2026-12-19T09:00:00Z"); // Saturday; +7 = Saturday 26 Dec
        assert_eq!(
            due(&academie, &pr, Milestone::FirstReaction),
            Some(d(2026, 12, 28))
        );
        assert_eq!(academie.retention.as_ref().map(|r| r.months), Some(6));
        // 002: kinds and serious alert to director and cluster manager at once.
        let korein = preset("korein");
        assert_eq!(
            korein.kinds,
            ["complaint", "compliment", "suggestion", "tip"]
        );
        let s = korein.serious.as_ref().unwrap();
        assert_eq!(s.alert, ["director", "cluster_manager"]);
        // 003: the verdict loop.
        let geluk = preset("gelukwerkt");
        let verdict = geluk.milestone(Milestone::Verdict).unwrap();
        assert_eq!(
            verdict.reopens,
            [Milestone::SolutionProposed, Milestone::Verdict]
        );
        // 004: handled counts from the first reaction; retention two years.
        let lsw = preset("leefstijlwijzer");
        assert_eq!(lsw.retention.as_ref().map(|r| r.months), Some(24));
    }

    #[test]
    fn deadline_after_an_open_milestone_runs_from_its_due_date() {
        let lsw = preset("leefstijlwijzer");
        // Wed 23 Dec 2026: first reaction by Thu 31 Dec.
        let mut pr = progress("2026-12-23T09:00:00Z");
        assert_eq!(
            due(&lsw, &pr, Milestone::FirstReaction),
            Some(d(2026, 12, 31))
        );
        // Seed 004: while the reaction is open, handling counts from its due date.
        assert_eq!(due(&lsw, &pr, Milestone::Handled), Some(d(2027, 1, 21)));
        // Reaction on Mon 28 Dec: 14 working days after it, skipping 1 Jan, is Mon 18 Jan.
        pr.completed
            .insert("first_reaction".into(), utc("2026-12-28T10:00:00Z"));
        assert_eq!(due(&lsw, &pr, Milestone::Handled), Some(d(2027, 1, 18)));
        let dl = lsw.deadlines(&Calendar::dutch(), Amsterdam, &pr);
        let fr = dl
            .iter()
            .find(|x| x.milestone == Milestone::FirstReaction)
            .unwrap();
        assert_eq!(fr.met, Some(true));
        let h = dl
            .iter()
            .find(|x| x.milestone == Milestone::Handled)
            .unwrap();
        assert_eq!(h.met, None);
    }

    #[test]
    fn met_means_by_end_of_local_due_day() {
        let mzo = preset("mzo");
        let mut pr = progress("2026-12-23T09:00:00Z");
        // Due Thu 31 Dec 2026; 23:30 Amsterdam time is 22:30 UTC: still met.
        pr.completed
            .insert("first_reaction".into(), utc("2026-12-31T22:30:00Z"));
        // 00:30 on 6 Jan Amsterdam time: one day late.
        pr.completed
            .insert("solution_proposed".into(), utc("2027-01-05T23:30:00Z"));
        let dl = mzo.deadlines(&Calendar::dutch(), Amsterdam, &pr);
        let get = |m| dl.iter().find(|x| x.milestone == m).unwrap().met;
        assert_eq!(get(Milestone::FirstReaction), Some(true));
        // Solution due 7 working days after 23 Dec = Tue 5 Jan 2027 (1 Jan is a holiday).
        assert_eq!(
            due(&mzo, &pr, Milestone::SolutionProposed),
            Some(d(2027, 1, 5))
        );
        assert_eq!(get(Milestone::SolutionProposed), Some(false));
    }

    #[test]
    fn escalation_after_friday_deadline_goes_out_monday_morning() {
        let mzo = preset("mzo");
        // Received Mon 9 Mar 2026: 14 working days = Fri 27 Mar. Clocks go forward on Sun 29.
        let pr = progress("2026-03-09T09:00:00Z");
        assert_eq!(due(&mzo, &pr, Milestone::Handled), Some(d(2026, 3, 27)));
        let esc = plan(&mzo, &pr)
            .into_iter()
            .find(|a| a.action_id == "escalate_handled")
            .unwrap();
        assert_eq!(esc.key, "r0:escalate_handled");
        assert_eq!(esc.due_at, utc("2026-03-30T06:00:00Z")); // Monday 08:00 CEST
        assert_eq!(esc.due_date, d(2026, 3, 30));
        assert_eq!(esc.deadline, Some(d(2026, 3, 27)));
        assert_eq!(esc.concerns.as_deref(), Some("handled"));
        assert_eq!(esc.recipients, Recipients::Roles(vec!["director".into()]));
        assert!(!esc.immediate);
    }

    #[test]
    fn immediate_staff_mail_waits_for_work_unless_serious_or_at_once() {
        let text = PRESETS[0].1.replace(
            "id = \"escalate_handled\"",
            "id = \"escalate_handled\"\nimmediate = true",
        );
        let mzo = Procedure::parse("mzo", &text, "mzo.toml").unwrap();
        let pr = progress("2026-03-09T09:00:00Z");
        let esc = |at_once: bool| {
            mzo.plan(&Calendar::dutch(), Amsterdam, hours(), &pr, at_once)
                .into_iter()
                .find(|a| a.action_id == "escalate_handled")
                .unwrap()
                .due_at
        };
        // Mail to staff waits for the next working moment (Mon 08:00 CEST, after the clocks
        // changed) unless staff are to be told at once; then Sat 00:00 CET.
        assert_eq!(esc(false), utc("2026-03-30T06:00:00Z"));
        assert_eq!(esc(true), utc("2026-03-27T23:00:00Z"));
        let serious = Progress {
            serious: true,
            ..pr.clone()
        };
        let at = mzo
            .plan(&Calendar::dutch(), Amsterdam, hours(), &serious, false)
            .into_iter()
            .find(|a| a.action_id == "escalate_handled")
            .unwrap()
            .due_at;
        assert_eq!(at, utc("2026-03-27T23:00:00Z"), "serious: at once");
    }

    #[test]
    fn reminders_and_escalations_vanish_once_completed() {
        let mzo = preset("mzo");
        let mut pr = progress("2026-03-09T09:00:00Z");
        let keys =
            |pr: &Progress| -> Vec<String> { plan(&mzo, pr).into_iter().map(|a| a.key).collect() };
        let before = keys(&pr);
        for k in [
            "r0:acknowledge",
            "r0:notify_receiver",
            "r0:remind_handled",
            "r0:escalate_handled",
        ] {
            assert!(before.contains(&k.to_string()), "{k} in {before:?}");
        }
        let remind = plan(&mzo, &pr)
            .into_iter()
            .find(|a| a.action_id == "remind_handled")
            .unwrap();
        // Two working days before Fri 27 Mar: Wed 25 Mar, 08:00 CET.
        assert_eq!(remind.due_at, utc("2026-03-25T07:00:00Z"));
        pr.completed
            .insert("handled".into(), utc("2026-03-20T12:00:00Z"));
        pr.completed
            .insert("acknowledged".into(), utc("2026-03-09T09:00:01Z"));
        let after = keys(&pr);
        assert!(
            !after.contains(&"r0:remind_handled".to_string()),
            "{after:?}"
        );
        assert!(
            !after.contains(&"r0:escalate_handled".to_string()),
            "{after:?}"
        );
        assert!(!after.contains(&"r0:acknowledge".to_string()), "{after:?}");
        assert!(after.contains(&"r0:notify_receiver".to_string()));
    }

    #[test]
    fn follow_up_after_three_weeks_at_start_of_working_hours() {
        let mzo = preset("mzo");
        let pr = progress("2026-12-23T09:00:00Z");
        let s = plan(&mzo, &pr)
            .into_iter()
            .find(|a| a.action_id == "satisfaction_survey")
            .unwrap();
        // 3 weeks after Wed 23 Dec 2026 = Wed 13 Jan 2027, 08:00 CET.
        assert_eq!(s.due_at, utc("2027-01-13T07:00:00Z"));
        assert_eq!(s.recipients, Recipients::Complainant);
        assert_eq!(s.completes.as_deref(), Some("follow_up"));
        assert_eq!(s.send.as_deref(), Some("satisfaction_survey"));
    }

    #[test]
    fn serious_complaints_alert_at_once() {
        let korein = preset("korein");
        assert_eq!(
            korein.is_serious("Onveilige situatie", "Mijn kind is GEWOND geraakt."),
            vec!["onveilige".to_string(), "gewond".to_string()],
            "in the order of the keyword list"
        );
        assert!(
            korein
                .is_serious("Geweldig!", "Wat een geweldige dag.")
                .is_empty()
        );
        let mut pr = progress("2026-03-07T23:10:00Z");
        assert!(
            !plan(&korein, &pr)
                .iter()
                .any(|a| a.action_id == SERIOUS_ACTION)
        );
        pr.serious = true;
        let alert = plan(&korein, &pr)
            .into_iter()
            .find(|a| a.action_id == SERIOUS_ACTION)
            .unwrap();
        assert_eq!(alert.key, "r0:serious_alert");
        assert!(alert.immediate);
        assert_eq!(alert.due_at, pr.received_at);
        assert_eq!(
            alert.recipients,
            Recipients::Roles(vec!["director".into(), "cluster_manager".into()])
        );
    }

    #[test]
    fn serious_keywords_ignore_accents_and_need_whole_words() {
        let text = r#"
title = "t"
[serious]
keywords = ["geïntimideerd", "ernstig letsel"]
alert = ["director"]
template = "serious_alert"
"#;
        let p = Procedure::parse("t", text, "t").unwrap();
        assert_eq!(
            p.is_serious("", "Ik werd GEINTIMIDEERD."),
            ["geïntimideerd"]
        );
        assert_eq!(p.is_serious("Ernstig  letsel", ""), ["ernstig letsel"]);
        assert!(p.is_serious("", "ernstig, geen letsel").is_empty());
        assert!(p.is_serious("", "ongeintimideerd").is_empty());
    }

    const LOOP: &str = r#"
title = "Loop"
[milestones.received]
[milestones.solution_proposed]
deadline = { after = "received", weeks = 2 }
completed_by = "email:solution"
[milestones.verdict]
completed_by = "verdict"
reopens = ["solution_proposed", "verdict"]
[milestones.handled]
completed_by = "staff"

[[action]]
id = "remind"
before = "solution_proposed"
working_days = 1
send = "reminder"
to = ["handler"]

[[action]]
id = "ask_verdict"
on = "solution_proposed"
send = "solution"
to = "complainant"
"#;

    #[test]
    fn reopen_starts_a_new_round() {
        let p = Procedure::parse("loop", LOOP, "loop.toml").unwrap();
        let mut pr = progress("2026-03-02T09:00:00Z"); // Monday
        assert_eq!(
            due(&p, &pr, Milestone::SolutionProposed),
            Some(d(2026, 3, 16))
        );
        pr.completed
            .insert("solution_proposed".into(), utc("2026-03-10T09:00:00Z"));
        pr.completed
            .insert("verdict".into(), utc("2026-03-12T09:00:00Z"));
        let keys: Vec<String> = plan(&p, &pr).into_iter().map(|a| a.key).collect();
        assert_eq!(keys, ["r0:ask_verdict"]);

        p.reopen(&mut pr, utc("2026-03-12T09:00:00Z"));
        assert_eq!(pr.round, 1);
        assert!(!pr.completed.contains_key("solution_proposed"));
        assert!(!pr.completed.contains_key("verdict"));
        // The new term counts from the reopening (Thu 12 Mar), not from receipt.
        assert_eq!(
            due(&p, &pr, Milestone::SolutionProposed),
            Some(d(2026, 3, 26))
        );
        let keys: Vec<String> = plan(&p, &pr).into_iter().map(|a| a.key).collect();
        assert_eq!(keys, ["r1:remind"]);
        pr.completed
            .insert("solution_proposed".into(), utc("2026-03-20T09:00:00Z"));
        let keys: Vec<String> = plan(&p, &pr).into_iter().map(|a| a.key).collect();
        assert_eq!(keys, ["r1:ask_verdict"]);
    }

    #[test]
    fn awb_extensions_add_up_to_four_weeks_and_further_only_with_agreement() {
        let awb = preset("awb");
        // Mon 13 Apr 2026 + 6 weeks = Mon 25 May, Tweede Pinksterdag: rolled to Tue 26 May.
        let mut pr = progress("2026-04-13T09:00:00Z");
        assert_eq!(due(&awb, &pr, Milestone::Handled), Some(d(2026, 5, 26)));
        let first = awb.extend(&pr, 2, false).unwrap();
        assert_eq!(first.total_weeks, 2);
        pr.extended_weeks = first.total_weeks;
        let after_first = due(&awb, &pr, Milestone::Handled).unwrap();
        assert_eq!(after_first, d(2026, 6, 8));
        // A second extension adds to the first (9:11(2): "ten hoogste vier weken" in all).
        let second = awb.extend(&pr, 2, false).unwrap();
        assert_eq!(second.total_weeks, 4);
        assert!(!second.uses_agreement);
        pr.extended_weeks = second.total_weeks;
        assert_eq!(due(&awb, &pr, Milestone::Handled), Some(d(2026, 6, 22)));
        // Beyond four weeks: refused without the complainant's written agreement (9:11(3)).
        assert_eq!(
            awb.extend(&pr, 1, false),
            Err(ExtensionRefused::NeedsAgreement { max: 4, used: 4 })
        );
        let third = awb.extend(&pr, 3, true).unwrap();
        assert!(third.uses_agreement);
        pr.extended_weeks = third.total_weeks;
        assert_eq!(due(&awb, &pr, Milestone::Handled), Some(d(2026, 7, 13)));
        assert_eq!(awb.extend(&pr, 0, true), Err(ExtensionRefused::Zero));
    }

    #[test]
    fn academie_extensions_have_no_limit_of_their_own() {
        let academie = preset("academie");
        let mut pr = progress("2026-04-13T09:00:00Z");
        let long = academie.extend(&pr, 12, false).unwrap();
        assert_eq!(long.total_weeks, 12);
        assert!(!long.uses_agreement);
        pr.extended_weeks = 12;
        assert_eq!(academie.extend(&pr, 8, false).unwrap().total_weeks, 20);
        assert_eq!(
            academie.extend(&pr, MAX_EXTENSION_WEEKS, false),
            Err(ExtensionRefused::OverLimit {
                max: MAX_EXTENSION_WEEKS,
                used: 12
            })
        );
        pr.completed
            .insert("handled".into(), utc("2026-05-01T09:00:00Z"));
        assert_eq!(
            academie.extend(&pr, 1, false),
            Err(ExtensionRefused::Completed(Milestone::Handled))
        );
        let plain = Procedure::parse(
            "plain",
            "title = \"t\"\n[milestones.handled]\ndeadline = { after = \"received\", weeks = 2 }\ncompleted_by = \"staff\"\n",
            "plain.toml",
        )
        .unwrap();
        assert_eq!(
            plain.extend(&progress("2026-04-13T09:00:00Z"), 1, false),
            Err(ExtensionRefused::NotAllowed("plain".into()))
        );
    }

    #[test]
    fn an_extension_never_moves_a_deadline_earlier() {
        for name in ["awb", "academie"] {
            let p = preset(name);
            let mut pr = progress("2026-12-23T09:00:00Z");
            let mut last = due(&p, &pr, Milestone::Handled).unwrap();
            for weeks in [4, 2, 1, 3] {
                match p.extend(&pr, weeks, true) {
                    Ok(g) => pr.extended_weeks = g.total_weeks,
                    Err(_) => continue,
                }
                let now = due(&p, &pr, Milestone::Handled).unwrap();
                assert!(now > last, "{name}: {now} after {last}");
                last = now;
            }
        }
    }

    #[test]
    fn leefstijlwijzer_handling_runs_from_the_reaction_due_date_while_it_is_open() {
        // Seed 004: reaction within 5 working days, handled within 14 working days after it.
        // Received Wed 23 Dec 2026: reaction due Thu 31 Dec; handled 14 working days later,
        // Thu 21 Jan 2027 (Nieuwjaarsdag does not count).
        let p = preset("leefstijlwijzer");
        let pr = progress("2026-12-23T10:00:00Z");
        assert_eq!(
            due(&p, &pr, Milestone::FirstReaction),
            Some(d(2026, 12, 31))
        );
        assert_eq!(due(&p, &pr, Milestone::Handled), Some(d(2027, 1, 21)));
        let plan = plan(&p, &pr);
        let ids: Vec<&str> = plan.iter().map(|a| a.action_id.as_str()).collect();
        assert!(ids.contains(&"remind_handled"), "{ids:?}");
        assert!(ids.contains(&"escalate_handled"), "{ids:?}");
        // The explanation and the plan agree on every date.
        let ex = p.explain(
            &Calendar::dutch(),
            Amsterdam,
            hours(),
            pr.received_at,
            "nl",
            false,
        );
        for a in &plan {
            if let Some(e) = ex.actions.iter().find(|e| e.id == a.action_id) {
                assert_eq!(e.due_at, a.due_at, "{}", a.action_id);
            }
        }
        // A late reaction moves the handling deadline: 14 working days after Tue 5 Jan.
        let mut late = pr.clone();
        late.completed
            .insert("first_reaction".into(), utc("2027-01-05T10:00:00Z"));
        assert_eq!(due(&p, &late, Milestone::Handled), Some(d(2027, 1, 25)));
    }

    #[test]
    fn version_is_a_short_content_hash() {
        let a = Procedure::parse("x", "title = \"A\"\n", "x").unwrap();
        let b = Procedure::parse("x", "title = \"B\"\n", "x").unwrap();
        assert_eq!(a.version.len(), 12);
        assert!(a.version.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.version, b.version);
        assert_eq!(a.milestones.len(), 1, "received is always there");
    }

    #[test]
    fn parse_reports_every_error_with_its_line() {
        let text = r#"title = "Bad"

[milestones.handeld]
completed_by = "staff"

[milestones.handled]
deadline = { after = "received", working_days = 5, weeks = 1 }
completed_by = "mail:x"

[[action]]
id = "a"
on = "received"
before = "handled"
send = "reminder"
to = ["director"]
"#;
        let errs = Procedure::parse("bad", text, "bad.toml").unwrap_err();
        let found: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert!(found.contains(&(3, "milestones.handeld")), "{errs:#?}");
        assert!(
            found.contains(&(6, "milestones.handled.deadline")),
            "{errs:#?}"
        );
        assert!(
            found.contains(&(6, "milestones.handled.completed_by")),
            "{errs:#?}"
        );
        assert!(found.contains(&(10, "action.a")), "{errs:#?}");
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs[0].to_string().starts_with("bad.toml:"));
    }

    #[test]
    fn syntax_error_has_line_and_key() {
        let errs = Procedure::parse(
            "bad",
            "title = \"x\"\n\n[milestones.handled]\ncompleted = 1\n",
            "b",
        )
        .unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 4, "{errs:?}");
        assert_eq!(errs[0].key, "completed");
    }

    #[test]
    fn check_finds_cycles_and_missing_things() {
        let text = r#"title = "Check"
[milestones.first_reaction]
deadline = { after = "handled", working_days = 1 }
[milestones.handled]
deadline = { after = "first_reaction", working_days = 1 }
[milestones.closed]
deadline = { after = "closed", working_days = 1 }
completed_by = "email:nope"
[milestones.follow_up]
deadline = { after = "verdict", working_days = 1 }

[[action]]
id = "x"
on = "received"
send = "new_complaint"
to = ["nobody"]

[[action]]
id = "x"
when_missed = "acknowledged"
send = "escalation"
to = ["director"]
"#;
        let p = Procedure::parse("c", text, "c.toml").unwrap();
        let errs = p.check(&|t| TEMPLATES.contains(&t), &|r| ROLES.contains(&r));
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let has = |needle: &str| msgs.iter().any(|m| m.contains(needle));
        assert!(
            has(
                "c.toml:2: milestones.first_reaction.deadline.after: the deadline of first_reaction depends on itself"
            ),
            "{msgs:#?}"
        );
        assert!(
            has("milestones.handled.deadline.after: the deadline of handled depends on itself"),
            "{msgs:#?}"
        );
        assert!(
            has("c.toml:6: milestones.closed.deadline.after: the deadline of closed depends"),
            "{msgs:#?}"
        );
        assert!(has("no template \"nope\""), "{msgs:#?}");
        assert!(
            has("milestones.follow_up.deadline.after: milestone verdict is not part"),
            "{msgs:#?}"
        );
        assert!(has("role \"nobody\" has no address"), "{msgs:#?}");
        assert!(has("duplicate action id \"x\""), "{msgs:#?}");
        assert!(has("milestone acknowledged is not part"), "{msgs:#?}");
        assert_eq!(errs.len(), 8, "{msgs:#?}");
    }

    #[test]
    fn explanation_has_concrete_dates() {
        let mzo = preset("mzo");
        let e = mzo.explain(
            &Calendar::dutch(),
            Amsterdam,
            hours(),
            utc("2026-12-23T09:00:00Z"),
            "nl",
            false,
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["procedure"], "mzo");
        assert_eq!(json["received_at"], "2026-12-23T09:00:00Z");
        let fr = json["milestones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["milestone"] == "first_reaction")
            .unwrap();
        assert_eq!(fr["due"], "2026-12-31");
        assert!(
            fr["rule"]
                .as_str()
                .unwrap()
                .contains("5 werkdagen na ontvangst")
        );
        let received = &json["milestones"][0];
        assert_eq!(received["due"], serde_json::Value::Null);
        let esc = json["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == "escalate_handled")
            .unwrap();
        // Handled due Thu 14 Jan 2027; escalation Fri 15 Jan 08:00 CET.
        assert_eq!(esc["due_at"], "2027-01-15T07:00:00Z");
        assert_eq!(esc["to"], serde_json::json!(["director"]));
        let text = e.to_text();
        assert!(
            text.contains("uiterlijk donderdag 31 december 2026"),
            "{text}"
        );
        assert!(
            text.contains("Klacht ontvangen op woensdag 23 december 2026 10:00"),
            "{text}"
        );
        let en = mzo
            .explain(
                &Calendar::dutch(),
                Amsterdam,
                hours(),
                utc("2026-12-23T09:00:00Z"),
                "en",
                false,
            )
            .to_text();
        assert!(en.contains("by Thursday 31 December 2026"), "{en}");
    }
}

//! A complaint's lifecycle as one pure state machine: each staff command or CLI operation is an
//! [`Event`]; [`apply`] says whether it may happen in the complaint's present state and, if so,
//! what the store must write ([`Change`]) and what the services must do ([`Effect`]). No I/O, no
//! clock: `now` is a parameter.
//!
//! The lifecycle shown to people ([`Lifecycle`]: nieuw, in behandeling, opgelost, gesloten,
//! heropend) is not stored. [`lifecycle`] derives it from the facts that are (stored status,
//! handler, milestones, round), so existing rows need no migration.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::command::{Nature, Period, Severity, Status, Verdict};
use super::procedure::{
    CompletedBy, ExtensionRefused, Milestone, PlannedAction, Procedure, Progress, REOPENED_KEY,
    Recipients, SUBJECT_PERSON_KEY, Trigger, Unit,
};
use super::types::{ComplaintRef, EmailAddress};

// ---------------------------------------------------------------------------------------------
// Status as stored and as shown
// ---------------------------------------------------------------------------------------------

/// The `status` column: all the store knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stored {
    Open,
    Closed,
    Voided,
}

impl Stored {
    pub fn as_str(self) -> &'static str {
        match self {
            Stored::Open => "open",
            Stored::Closed => "closed",
            Stored::Voided => "voided",
        }
    }

    pub fn parse(s: &str) -> Option<Stored> {
        [Stored::Open, Stored::Closed, Stored::Voided]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a complaint stands, in the terms complaint-registration tenders use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Registered; nobody handles it yet.
    New,
    /// A handler is assigned.
    InProgress,
    /// A solution is proposed or agreed, or the complaint is handled.
    Resolved,
    Closed,
    /// Open again after closure or after the complainant rejected the proposal, and not yet
    /// resolved again.
    Reopened,
    /// A registration made by mistake; it stays out of the register's figures.
    Voided,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 6] = [
        Lifecycle::New,
        Lifecycle::InProgress,
        Lifecycle::Resolved,
        Lifecycle::Closed,
        Lifecycle::Reopened,
        Lifecycle::Voided,
    ];

    /// The stable id, as in list/show JSON (`status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::New => "new",
            Lifecycle::InProgress => "in_progress",
            Lifecycle::Resolved => "resolved",
            Lifecycle::Closed => "closed",
            Lifecycle::Reopened => "reopened",
            Lifecycle::Voided => "voided",
        }
    }

    /// For people: Dutch unless `lang` is `en`.
    pub fn label(self, lang: &str) -> &'static str {
        let en = lang.eq_ignore_ascii_case("en");
        match (self, en) {
            (Lifecycle::New, false) => "nieuw",
            (Lifecycle::New, true) => "new",
            (Lifecycle::InProgress, false) => "in behandeling",
            (Lifecycle::InProgress, true) => "in progress",
            (Lifecycle::Resolved, false) => "opgelost",
            (Lifecycle::Resolved, true) => "resolved",
            (Lifecycle::Closed, false) => "gesloten",
            (Lifecycle::Closed, true) => "closed",
            (Lifecycle::Reopened, false) => "heropend",
            (Lifecycle::Reopened, true) => "reopened",
            (Lifecycle::Voided, false) => "vervallen",
            (Lifecycle::Voided, true) => "voided",
        }
    }

    /// The id or either label, case-insensitive, `_`, `-` and spaces alike: `in_progress`,
    /// `In behandeling`, `in-progress`.
    pub fn parse(s: &str) -> Option<Lifecycle> {
        let norm = |t: &str| {
            t.replace(['_', '-'], " ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        };
        let wanted = norm(s);
        Lifecycle::ALL.into_iter().find(|l| {
            [l.as_str(), l.label("nl"), l.label("en")]
                .iter()
                .any(|c| norm(c) == wanted)
        })
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Milestones whose completion means a solution was proposed, agreed or carried out.
const RESOLVING: [Milestone; 4] = [
    Milestone::SolutionProposed,
    Milestone::Verdict,
    Milestone::Handled,
    Milestone::Closed,
];

/// The lifecycle from the stored facts. Precedence, first match wins:
///
/// 1. stored `voided` → [`Lifecycle::Voided`];
/// 2. stored `closed` → [`Lifecycle::Closed`];
/// 3. open in a later round (round > 0, or a reopen reason recorded): [`Lifecycle::Resolved`]
///    when it was resolved again since the round began (a resolving milestone completed at or
///    after [`REOPENED_KEY`], or the agreement is `yes`: reopening clears it), else
///    [`Lifecycle::Reopened`];
/// 4. open and resolved: `solution_proposed`, `verdict`, `handled` or `closed` completed, or
///    the agreement is `yes` → [`Lifecycle::Resolved`];
/// 5. open with a handler → [`Lifecycle::InProgress`];
/// 6. else [`Lifecycle::New`].
pub fn lifecycle(c: &Complaint) -> Lifecycle {
    match c.stored {
        Stored::Voided => return Lifecycle::Voided,
        Stored::Closed => return Lifecycle::Closed,
        Stored::Open => {}
    }
    let reopened = c.progress.round > 0 || c.reopen_reason.is_some();
    // Without a recorded start of the round every resolution counts (no row written by
    // `apply` lacks it; older rows with round > 0 have it from `Procedure::reopen`).
    let since = if reopened {
        c.progress.completed.get(REOPENED_KEY).copied()
    } else {
        None
    };
    let resolved = c.agreement == Some(true)
        || RESOLVING.iter().any(|m| {
            c.progress
                .completed
                .get(m.as_str())
                .is_some_and(|at| since.is_none_or(|s| *at >= s))
        });
    match (reopened, resolved) {
        (_, true) => Lifecycle::Resolved,
        (true, false) => Lifecycle::Reopened,
        (false, false) if c.handler.is_some() => Lifecycle::InProgress,
        (false, false) => Lifecycle::New,
    }
}

// ---------------------------------------------------------------------------------------------
// The snapshot, events and their results
// ---------------------------------------------------------------------------------------------

/// What the rules need to know of one complaint, filled by the caller from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    pub reference: ComplaintRef,
    pub stored: Stored,
    pub severity: Severity,
    /// One of the procedure's kinds (`complaint`, `compliment`, ...).
    pub kind: String,
    pub nature: Option<Nature>,
    pub handler: Option<EmailAddress>,
    pub category: Option<String>,
    pub cause: Option<String>,
    pub solution: Option<String>,
    /// Whether complainant and organisation agree on the solution.
    pub agreement: Option<bool>,
    /// The complainant's score, 1 to 5.
    pub satisfaction: Option<u8>,
    /// The person whose conduct the complaint is about (Awb 9:10).
    pub subject_person: Option<EmailAddress>,
    /// The complainant's written agreement to a further delay, not yet used (Awb 9:11(3)).
    pub extension_agreement: Option<String>,
    /// `progress.serious` follows `severity`.
    pub progress: Progress,
    /// Why staff last reopened it.
    pub reopen_reason: Option<String>,
    pub linked: Vec<ComplaintRef>,
    /// Recommendations and measures against new complaints, one per line (seeds 003, 004).
    pub measure: Option<String>,
}

/// Everything staff (by mail or CLI) and admins can do to a complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `#behandelaar` (`ik` resolved by the caller), `klachtd set REF handler`.
    AssignHandler(EmailAddress),
    SetCategory(String),
    SetSeverity(Severity),
    /// An id of the procedure's kinds; a procedure may name kinds [`super::command::Kind`]
    /// does not know, so this is the id (`Kind::as_str()` for a mail command).
    SetKind(String),
    SetNature(Nature),
    SetCause(String),
    SetSolution(String),
    SetAgreement(bool),
    /// 1 to 5.
    SetSatisfaction(u8),
    /// Awb 9:10: names the person complained about; the procedure sends them a copy.
    NameSubjectPerson(EmailAddress),
    /// Awb 9:11(3): the complainant's written agreement to a delay beyond the limit.
    RecordExtensionAgreement(String),
    /// Extend the procedure's extensible term. Counted in whole weeks (Awb 9:11(2)): days when
    /// a multiple of 7, working days when a multiple of 5 (a working week).
    Extend {
        period: Period,
        reason: String,
    },
    AddNote(String),
    /// A recommendation or measure, added to those recorded (`#maatregel`).
    AddMeasure(String),
    ReplyToComplainant(String),
    CompleteMilestone {
        milestone: Milestone,
        at: DateTime<Utc>,
        verdict: Option<Verdict>,
    },
    SetStatus(Status),
    Reopen {
        reason: String,
    },
    Link(ComplaintRef),
    Void {
        reason: String,
    },
}

/// A column the store writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Handler,
    Category,
    Cause,
    Solution,
    Kind,
    Severity,
    /// Stored as `incident_kind`.
    Nature,
    /// `yes` / `no`.
    Agreement,
    Satisfaction,
    SubjectPerson,
    ExtensionAgreement,
    Measure,
}

impl Field {
    /// The column name (see `store::SETTABLE_FIELDS`).
    pub fn column(self) -> &'static str {
        match self {
            Field::Handler => "handler",
            Field::Category => "category",
            Field::Cause => "cause",
            Field::Solution => "solution",
            Field::Kind => "kind",
            Field::Severity => "severity",
            Field::Nature => "incident_kind",
            Field::Agreement => "agreement",
            Field::Satisfaction => "satisfaction",
            Field::SubjectPerson => "subject_person",
            Field::ExtensionAgreement => "extension_agreement",
            Field::Measure => "measure",
        }
    }
}

/// What the store must write, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Set a column; `None` clears it.
    Field {
        field: Field,
        value: Option<String>,
    },
    /// A milestone completed for the first time in this round (insert).
    Completed {
        milestone: Milestone,
        at: DateTime<Utc>,
    },
    /// A key of [`Progress::completed`] (milestone or marker such as [`REOPENED_KEY`]) set to
    /// this moment, replacing what was there, or forgotten when `None`.
    ProgressKey {
        key: String,
        at: Option<DateTime<Utc>>,
    },
    /// The round and the weeks of extension, together.
    Progress {
        round: u32,
        extended_weeks: u32,
    },
    Status(Stored),
    /// Why staff reopened it (kept after it is resolved again).
    ReopenReason(String),
    Link(ComplaintRef),
    Voided {
        reason: String,
    },
}

/// The event recorded in the history (the `event` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryEvent {
    Set,
    Milestone,
    ExtensionAgreementUsed,
    Note,
    Reply,
    Closed,
    Reopened,
    Linked,
    Voided,
}

impl HistoryEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryEvent::Set => "set",
            HistoryEvent::Milestone => "milestone",
            HistoryEvent::ExtensionAgreementUsed => "extension_agreement_used",
            HistoryEvent::Note => "note",
            HistoryEvent::Reply => "reply",
            HistoryEvent::Closed => "closed",
            HistoryEvent::Reopened => "reopened",
            HistoryEvent::Linked => "linked",
            HistoryEvent::Voided => "voided",
        }
    }
}

/// What the services must do once the changes are written, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Send this template to the complainant: completing `milestone` is sending it.
    SendToComplainant {
        template: String,
        milestone: Milestone,
    },
    /// The complainant does not agree: alert these roles at once. `key` is the action key
    /// (`r{round}:disagree`) to record in `actions_done`, so it goes out once per round.
    Escalate {
        key: String,
        roles: Vec<String>,
        concerns: Milestone,
    },
    /// The written notice of an extension to the complainant (Awb 9:11(2)), with the reason.
    DelayNotice {
        template: String,
        milestone: Milestone,
        weeks: u32,
        total_weeks: u32,
        reason: String,
    },
    /// The same notice to the person complained about (Awb 9:11(2)); only when one is named.
    SubjectPersonDelayNotice { template: String, reason: String },
    /// Staff's text goes to the complainant as our answer.
    Reply { text: String },
    /// Handling or closure was completed: close the complaint when nothing more follows (see
    /// [`procedure_complete`]; it needs the plan and the actions done, which the service has).
    CloseIfComplete,
    /// One line in the complaint's history.
    History { event: HistoryEvent, detail: String },
}

/// One event's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub changes: Vec<Change>,
    pub effects: Vec<Effect>,
    /// The snapshot with the changes made.
    pub after: Complaint,
}

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

/// What a reason or a value was missing for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Reopen,
    Void,
    Extend,
    Category,
    Cause,
    Solution,
    Note,
    Reply,
    ExtensionAgreement,
    Measure,
}

impl Needs {
    fn what(self, en: bool) -> &'static str {
        match (self, en) {
            (Needs::Reopen, true) => "reopening needs a reason",
            (Needs::Reopen, false) => "heropenen kan alleen met een reden",
            (Needs::Void, true) => "voiding needs a reason",
            (Needs::Void, false) => "laten vervallen kan alleen met een reden",
            (Needs::Extend, true) => "an extension needs a reason (the complainant is told)",
            (Needs::Extend, false) => {
                "een verlenging heeft een reden nodig (de klager krijgt die te lezen)"
            }
            (Needs::Category, true) => "the category needs a value",
            (Needs::Category, false) => "de categorie heeft een waarde nodig",
            (Needs::Cause, true) => "the cause needs a text",
            (Needs::Cause, false) => "de oorzaak heeft een tekst nodig",
            (Needs::Solution, true) => "the solution needs a text",
            (Needs::Solution, false) => "de oplossing heeft een tekst nodig",
            (Needs::Note, true) => "the note is empty",
            (Needs::Note, false) => "de notitie is leeg",
            (Needs::Reply, true) => "the reply is empty",
            (Needs::Reply, false) => "het antwoord is leeg",
            (Needs::ExtensionAgreement, true) => {
                "the agreement needs what the complainant agreed to, and where"
            }
            (Needs::ExtensionAgreement, false) => {
                "leg vast waarmee de klager instemde, en waar (bijvoorbeeld: e-mail van 12 mei: akkoord met 2 weken extra)"
            }
            (Needs::Measure, true) => "the measure needs a text",
            (Needs::Measure, false) => "de maatregel heeft een tekst nodig",
        }
    }
}

/// Why an event may not happen now. `Display` is English; [`Refusal::message`] is for the
/// staff member's language, with the mail command to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} is voided; a voided complaint cannot be changed")]
    Voided(ComplaintRef),
    #[error("{0} is closed; reopen it first, with a reason")]
    Closed(ComplaintRef),
    #[error("{0} is closed; a closed complaint is reopened with a reason, not by its status")]
    ReopenWithReason(ComplaintRef),
    #[error("{0} is not closed; only a closed complaint can be reopened")]
    NotClosed(ComplaintRef),
    #[error("{}", .0.what(true))]
    Missing(Needs),
    #[error("kind {kind:?} is not one of this procedure's kinds: {}", allowed.join(", "))]
    UnknownKind { kind: String, allowed: Vec<String> },
    #[error("the satisfaction score is 1 to 5, not {0}")]
    Satisfaction(u8),
    #[error(
        "{0} already names the person complained about; a complaint about more people is registered once per person"
    )]
    SubjectPersonNamed(ComplaintRef),
    #[error("procedure {0} has no delay by agreement")]
    NoDelayByAgreement(String),
    #[error("extensions are counted in whole weeks; {0} is not")]
    NotWholeWeeks(String),
    #[error("{0}")]
    Extension(ExtensionRefused),
    #[error("procedure {procedure} has no milestone {milestone}")]
    NotInProcedure {
        procedure: String,
        milestone: Milestone,
    },
    #[error("{0} is already completed")]
    AlreadyCompleted(Milestone),
    #[error("{0} is completed automatically")]
    Automatic(Milestone),
    #[error("the acknowledgement is sent at intake")]
    AcknowledgedAtIntake,
    #[error("{0} sends the solution: record the solution first")]
    NeedsSolution(Milestone),
    #[error("{0} tells the complainant who handles the complaint: assign the handler first")]
    NeedsHandler(Milestone),
    #[error("the verdict needs agree or disagree")]
    NeedsVerdict,
    #[error("only the verdict takes agree or disagree, not {0}")]
    VerdictNotExpected(Milestone),
    #[error(
        "there is no verdict on a solution that was not proposed: complete solution_proposed first"
    )]
    NothingProposed,
    #[error("{milestone} cannot be completed at {at}, later than now")]
    InFuture {
        milestone: Milestone,
        at: DateTime<Utc>,
    },
    #[error(
        "{milestone} cannot be completed at {at}, before {earliest} (receipt or the start of this round)"
    )]
    TooEarly {
        milestone: Milestone,
        at: DateTime<Utc>,
        earliest: DateTime<Utc>,
    },
    #[error("a complaint is not linked to itself")]
    SelfLink,
}

impl Refusal {
    /// The refusal for staff, Dutch unless `lang` is `en`, naming the mail command to use.
    pub fn message(&self, lang: &str) -> String {
        let en = lang.eq_ignore_ascii_case("en");
        let m = |nl: String, e: String| if en { e } else { nl };
        match self {
            Refusal::Voided(r) => m(
                format!("{r} is vervallen; een vervallen klacht kan niet meer veranderen."),
                format!("{r} is voided; a voided complaint cannot be changed."),
            ),
            Refusal::Closed(r) => m(
                format!("{r} is gesloten; heropen de klacht eerst, met een reden: #heropen <reden>."),
                format!("{r} is closed; reopen it first, with a reason: #reopen <reason>."),
            ),
            Refusal::ReopenWithReason(r) => m(
                format!("{r} is gesloten; een gesloten klacht heropent u met een reden: #heropen <reden>."),
                format!("{r} is closed; a closed complaint is reopened with a reason: #reopen <reason>."),
            ),
            Refusal::NotClosed(r) => m(
                format!("{r} is niet gesloten; alleen een gesloten klacht kan worden heropend."),
                format!("{r} is not closed; only a closed complaint can be reopened."),
            ),
            Refusal::Missing(n) => {
                let w = n.what(en);
                let mut chars = w.chars();
                let first: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
                format!("{first}{}.", chars.as_str())
            }
            Refusal::UnknownKind { kind, allowed } => m(
                format!("Soort \"{kind}\" kent deze procedure niet; kies uit: {}.", allowed.join(", ")),
                format!("This procedure has no kind \"{kind}\"; choose from: {}.", allowed.join(", ")),
            ),
            Refusal::Satisfaction(n) => m(
                format!("De tevredenheid is een cijfer van 1 tot en met 5, niet {n}."),
                format!("The satisfaction score is 1 to 5, not {n}."),
            ),
            Refusal::SubjectPersonNamed(r) => m(
                format!("{r} noemt al de persoon over wie geklaagd wordt; een klacht over meer personen wordt per persoon geregistreerd."),
                format!("{r} already names the person complained about; a complaint about more people is registered once per person."),
            ),
            Refusal::NoDelayByAgreement(p) => m(
                format!("Procedure {p} kent geen verder uitstel met instemming van de klager."),
                format!("Procedure {p} has no delay by agreement."),
            ),
            Refusal::NotWholeWeeks(p) => m(
                format!("Een verlenging gaat in hele weken (Awb 9:11); {p} is dat niet. Schrijf bijvoorbeeld: #verleng 2 weken <reden>."),
                format!("Extensions are counted in whole weeks (Awb 9:11); {p} is not. Write for example: #extend 2 weeks <reason>."),
            ),
            Refusal::Extension(x) => extension_message(x, en),
            Refusal::NotInProcedure { procedure, milestone } => m(
                format!("Procedure {procedure} kent geen mijlpaal {} ({milestone}).", milestone.label("nl")),
                format!("Procedure {procedure} has no milestone {milestone}."),
            ),
            Refusal::AlreadyCompleted(ms) => m(
                format!("De mijlpaal {} is al gereed.", ms.label("nl")),
                format!("The milestone {} is already completed.", ms.label("en")),
            ),
            Refusal::Automatic(ms) => m(
                format!("De mijlpaal {} wordt automatisch gereed gemeld.", ms.label("nl")),
                format!("The milestone {} is completed automatically.", ms.label("en")),
            ),
            Refusal::AcknowledgedAtIntake => m(
                "De ontvangstbevestiging gaat bij ontvangst automatisch uit.".into(),
                "The acknowledgement is sent at intake.".into(),
            ),
            Refusal::NeedsSolution(ms) => m(
                format!("Bij {} gaat de oplossing naar de klager: leg eerst de oplossing vast met #oplossing <tekst>.", ms.label("nl")),
                format!("Completing {} sends the solution to the complainant: record it first with #solution <text>.", ms.label("en")),
            ),
            Refusal::NeedsHandler(ms) => m(
                format!("Bij {} hoort de klager wie de klacht behandelt: wijs eerst een behandelaar toe met #behandelaar <e-mailadres> of #behandelaar ik.", ms.label("nl")),
                format!("Completing {} tells the complainant who handles the complaint: assign the handler first with #assign <address> or #assign me.", ms.label("en")),
            ),
            Refusal::NeedsVerdict => m(
                "Bij het oordeel hoort akkoord of niet akkoord: #klaar oordeel akkoord.".into(),
                "The verdict needs agree or disagree: #done verdict agree.".into(),
            ),
            Refusal::VerdictNotExpected(ms) => m(
                format!("Alleen bij het oordeel van de klager hoort akkoord of niet akkoord, niet bij {}.", ms.label("nl")),
                format!("Only the complainant's verdict takes agree or disagree, not {}.", ms.label("en")),
            ),
            Refusal::NothingProposed => m(
                "Er is nog geen oplossing voorgesteld, dus ook geen oordeel erover: meld eerst het voorstel gereed (#klaar voorstel voor een oplossing).".into(),
                "No solution was proposed yet, so there is no verdict on one: complete the proposal first (#done solution_proposed).".into(),
            ),
            Refusal::InFuture { milestone, at } => m(
                format!("De mijlpaal {} kan niet gereed zijn op {at}: dat is later dan nu.", milestone.label("nl")),
                format!("The milestone {} cannot be completed at {at}: that is later than now.", milestone.label("en")),
            ),
            Refusal::TooEarly { milestone, at, earliest } => m(
                format!("De mijlpaal {} kan niet gereed zijn op {at}: dat is voor {earliest} (ontvangst of begin van deze ronde).", milestone.label("nl")),
                format!("The milestone {} cannot be completed at {at}: that is before {earliest} (receipt or the start of this round).", milestone.label("en")),
            ),
            Refusal::SelfLink => m(
                "Een klacht wordt niet aan zichzelf gekoppeld.".into(),
                "A complaint is not linked to itself.".into(),
            ),
        }
    }
}

fn extension_message(x: &ExtensionRefused, en: bool) -> String {
    match (x, en) {
        (ExtensionRefused::NotAllowed(p), false) => {
            format!("Procedure {p} kent geen verlenging van de termijn.")
        }
        (ExtensionRefused::NotAllowed(p), true) => format!("Procedure {p} allows no extension."),
        (ExtensionRefused::Zero, false) => "Een verlenging is minstens 1 week.".into(),
        (ExtensionRefused::Zero, true) => "An extension is at least 1 week.".into(),
        (ExtensionRefused::Completed(m), false) => format!(
            "De mijlpaal {} is al gereed; er is niets te verlengen.",
            m.label("nl")
        ),
        (ExtensionRefused::Completed(m), true) => format!(
            "The milestone {} is already completed; there is nothing to extend.",
            m.label("en")
        ),
        (ExtensionRefused::NeedsAgreement { max, used }, false) => format!(
            "Verlengingen samen zijn ten hoogste {max} weken ({used} gebruikt); verder uitstel kan alleen met schriftelijke instemming van de klager, eerst vastgelegd (Awb 9:11 lid 3)."
        ),
        (ExtensionRefused::NeedsAgreement { max, used }, true) => format!(
            "Extensions together may be at most {max} weeks ({used} used); a further delay needs the complainant's written agreement, recorded first (Awb 9:11(3))."
        ),
        (ExtensionRefused::OverLimit { max, used }, false) => {
            format!("Verlengingen samen zijn ten hoogste {max} weken ({used} gebruikt).")
        }
        (ExtensionRefused::OverLimit { max, used }, true) => {
            format!("Extensions together may be at most {max} weeks ({used} used).")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pure helpers shared with the scheduler
// ---------------------------------------------------------------------------------------------

/// Who hears that the complainant disagrees: the roles the procedure escalates missed
/// deadlines to (not the handler or the receiver, who already know), else the director.
pub fn escalation_roles(procedure: &Procedure) -> Vec<String> {
    let mut roles: Vec<String> = procedure
        .actions
        .iter()
        .filter(|a| matches!(a.trigger, Trigger::WhenMissed(_)))
        .filter_map(|a| match &a.to {
            Recipients::Roles(r) => Some(r.clone()),
            Recipients::Complainant => None,
        })
        .flatten()
        .filter(|r| r != "handler" && r != "receiver")
        .collect();
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        roles.push("director".into());
    }
    roles
}

/// Nothing more follows in this procedure: the closing milestone is done, or handling is done,
/// the procedure has no closing milestone and nothing after handling waits.
pub fn procedure_complete(
    procedure: &Procedure,
    progress: &Progress,
    plan: &[PlannedAction],
    done: &HashSet<String>,
) -> bool {
    if progress.completed.contains_key(Milestone::Closed.as_str()) {
        return true;
    }
    if procedure.uses(Milestone::Closed)
        || !progress.completed.contains_key(Milestone::Handled.as_str())
    {
        return false;
    }
    let later = procedure
        .actions
        .iter()
        .any(|a| matches!(&a.trigger, Trigger::After(t) if t.after == Milestone::Handled));
    let waiting = plan.iter().any(|pa| {
        !done.contains(&pa.key)
            && procedure.actions.iter().any(|a| {
                a.id == pa.action_id && matches!(a.trigger, Trigger::On(Milestone::Handled))
            })
    });
    // A milestone that comes after handling (mzo's follow-up three weeks after receipt) still
    // has to happen: the complaint is not done before it is.
    let after_handling_open = procedure.milestones.iter().any(|m| {
        m.id > Milestone::Handled
            && !matches!(m.id, Milestone::Closed | Milestone::Purged)
            && !progress.completed.contains_key(m.id.as_str())
    });
    !later && !waiting && !after_handling_open
}

/// The milestones of the procedure a person still had to complete: not receipt (always done)
/// nor the deletion of the data (after retention).
pub fn open_milestones(procedure: &Procedure, progress: &Progress) -> Vec<Milestone> {
    procedure
        .milestones
        .iter()
        .map(|d| d.id)
        .filter(|m| !matches!(m, Milestone::Received | Milestone::Purged))
        .filter(|m| !progress.completed.contains_key(m.as_str()))
        .collect()
}

/// An extension in whole weeks, or why it is not one.
fn weeks_of(period: Period) -> Result<u32, Refusal> {
    // Terms are extended by weeks (Awb 9:11(2)); `10 werkdagen` is how staff say two weeks
    // (a working week is five working days), as `14 dagen` is.
    match period.unit {
        Unit::Weeks => Ok(period.amount),
        Unit::CalendarDays if period.amount.is_multiple_of(7) => Ok(period.amount / 7),
        Unit::WorkingDays if period.amount.is_multiple_of(5) => Ok(period.amount / 5),
        _ => Err(Refusal::NotWholeWeeks(period.describe("en"))),
    }
}

// ---------------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------------

/// Collects one transition: each change is made to `after` as it is recorded, so the two
/// cannot disagree.
struct Step {
    changes: Vec<Change>,
    effects: Vec<Effect>,
    after: Complaint,
}

impl Step {
    fn field(&mut self, field: Field, value: Option<String>) {
        let c = &mut self.after;
        let v = value.clone();
        match field {
            Field::Handler => c.handler = v.and_then(|a| EmailAddress::parse(&a).ok()),
            Field::Category => c.category = v,
            Field::Cause => c.cause = v,
            Field::Solution => c.solution = v,
            Field::Kind => c.kind = v.unwrap_or_default(),
            Field::Severity => {
                c.severity = v
                    .as_deref()
                    .and_then(Severity::parse)
                    .unwrap_or(Severity::Normal);
                c.progress.serious = c.severity == Severity::Serious;
            }
            Field::Nature => c.nature = v.as_deref().and_then(Nature::parse),
            Field::Agreement => c.agreement = v.map(|x| x == "yes"),
            Field::Satisfaction => c.satisfaction = v.and_then(|x| x.parse().ok()),
            Field::SubjectPerson => c.subject_person = v.and_then(|a| EmailAddress::parse(&a).ok()),
            Field::ExtensionAgreement => c.extension_agreement = v,
            Field::Measure => c.measure = v,
        }
        self.changes.push(Change::Field { field, value });
    }

    fn completed(&mut self, milestone: Milestone, at: DateTime<Utc>) {
        self.after
            .progress
            .completed
            .insert(milestone.as_str().to_string(), at);
        self.changes.push(Change::Completed { milestone, at });
    }

    fn key(&mut self, key: &str, at: Option<DateTime<Utc>>) {
        match at {
            Some(t) => self.after.progress.completed.insert(key.to_string(), t),
            None => self.after.progress.completed.remove(key),
        };
        self.changes.push(Change::ProgressKey {
            key: key.to_string(),
            at,
        });
    }

    fn progress(&mut self, round: u32, extended_weeks: u32) {
        self.after.progress.round = round;
        self.after.progress.extended_weeks = extended_weeks;
        self.changes.push(Change::Progress {
            round,
            extended_weeks,
        });
    }

    fn status(&mut self, s: Stored) {
        self.after.stored = s;
        self.changes.push(Change::Status(s));
    }

    /// Write what a new round changed in `progress.completed` (keys forgotten or moved) and
    /// the round itself.
    fn new_round(&mut self, p: &Progress) {
        let before = self.after.progress.completed.clone();
        for k in before.keys().filter(|k| !p.completed.contains_key(*k)) {
            self.key(k, None);
        }
        for (k, t) in p
            .completed
            .iter()
            .filter(|(k, t)| before.get(*k) != Some(*t))
        {
            self.key(k, Some(*t));
        }
        self.progress(p.round, p.extended_weeks);
    }

    fn effect(&mut self, e: Effect) {
        self.effects.push(e);
    }

    fn history(&mut self, event: HistoryEvent, detail: String) {
        self.effects.push(Effect::History { event, detail });
    }

    fn done(self) -> Transition {
        Transition {
            changes: self.changes,
            effects: self.effects,
            after: self.after,
        }
    }
}

/// A text value that must not be blank, trimmed.
fn text(value: &str, needs: Needs) -> Result<String, Refusal> {
    let v = value.trim();
    if v.is_empty() {
        Err(Refusal::Missing(needs))
    } else {
        Ok(v.to_string())
    }
}

/// Whether `event` may happen to `c` under `procedure` at `now`, and what follows.
///
/// A voided complaint refuses every event. A closed one takes only a reopening, a note, a
/// reply to the complainant and voiding (notes and replies change nothing the register counts;
/// voiding a closed spam registration is an admin's right); everything else is refused until
/// it is reopened.
pub fn apply(
    procedure: &Procedure,
    c: &Complaint,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<Transition, Refusal> {
    match (c.stored, event) {
        (Stored::Voided, _) => return Err(Refusal::Voided(c.reference.clone())),
        (
            Stored::Closed,
            Event::Reopen { .. }
            | Event::AddNote(_)
            | Event::ReplyToComplainant(_)
            | Event::Void { .. },
        ) => {}
        (Stored::Closed, Event::SetStatus(Status::Open)) => {
            return Err(Refusal::ReopenWithReason(c.reference.clone()));
        }
        (Stored::Closed, _) => return Err(Refusal::Closed(c.reference.clone())),
        (Stored::Open, _) => {}
    }
    let mut s = Step {
        changes: Vec::new(),
        effects: Vec::new(),
        after: c.clone(),
    };
    match event {
        Event::AssignHandler(a) => {
            s.field(Field::Handler, Some(a.as_str().to_string()));
            s.history(HistoryEvent::Set, format!("handler set to {a}"));
        }
        Event::SetCategory(v) => {
            let v = text(v, Needs::Category)?;
            s.history(HistoryEvent::Set, format!("category set: {v}"));
            s.field(Field::Category, Some(v));
        }
        Event::SetCause(v) => {
            let v = text(v, Needs::Cause)?;
            s.history(HistoryEvent::Set, format!("cause set: {v}"));
            s.field(Field::Cause, Some(v));
        }
        Event::AddMeasure(v) => {
            let v = text(v, Needs::Measure)?;
            s.history(HistoryEvent::Set, format!("measure recorded: {v}"));
            let all = match &c.measure {
                Some(earlier) if !earlier.is_empty() => format!("{earlier}\n{v}"),
                _ => v,
            };
            s.field(Field::Measure, Some(all));
        }
        Event::SetSolution(v) => {
            let v = text(v, Needs::Solution)?;
            s.history(HistoryEvent::Set, format!("solution set: {v}"));
            s.field(Field::Solution, Some(v));
        }
        Event::SetSeverity(v) => {
            s.field(Field::Severity, Some(v.as_str().to_string()));
            s.history(HistoryEvent::Set, format!("severity set to {v}"));
        }
        Event::SetKind(k) => {
            let k = k.trim();
            let allowed = if procedure.kinds.is_empty() {
                vec![procedure.default_kind()]
            } else {
                procedure.kinds.clone()
            };
            let Some(found) = allowed.iter().find(|a| a.eq_ignore_ascii_case(k)) else {
                return Err(Refusal::UnknownKind {
                    kind: k.to_string(),
                    allowed,
                });
            };
            s.history(HistoryEvent::Set, format!("kind set to {found}"));
            s.field(Field::Kind, Some(found.clone()));
        }
        Event::SetNature(n) => {
            s.field(Field::Nature, Some(n.as_str().to_string()));
            s.history(HistoryEvent::Set, format!("nature set to {n}"));
        }
        Event::SetAgreement(yes) => {
            let v = if *yes { "yes" } else { "no" };
            s.field(Field::Agreement, Some(v.to_string()));
            s.history(HistoryEvent::Set, format!("agreement set to {v}"));
        }
        Event::SetSatisfaction(n) => {
            if !(1..=5).contains(n) {
                return Err(Refusal::Satisfaction(*n));
            }
            s.field(Field::Satisfaction, Some(n.to_string()));
            s.history(HistoryEvent::Set, format!("satisfaction set to {n}"));
        }
        Event::NameSubjectPerson(a) => {
            if c.subject_person.is_some() {
                return Err(Refusal::SubjectPersonNamed(c.reference.clone()));
            }
            s.field(Field::SubjectPerson, Some(a.as_str().to_string()));
            // Recorded like a milestone, so the procedure's actions on it (Awb 9:10: a copy
            // of the complaint) are planned and run exactly once.
            s.key(SUBJECT_PERSON_KEY, Some(now));
            s.history(
                HistoryEvent::Set,
                format!("person complained about set to {a}"),
            );
        }
        Event::RecordExtensionAgreement(v) => {
            let v = text(v, Needs::ExtensionAgreement)?;
            let allowed = procedure
                .extensible()
                .is_some_and(|(_, x)| x.beyond_with_agreement);
            if !allowed {
                return Err(Refusal::NoDelayByAgreement(procedure.name.clone()));
            }
            s.history(
                HistoryEvent::Set,
                format!("the complainant's written agreement to a further delay is recorded: {v}"),
            );
            s.field(Field::ExtensionAgreement, Some(v));
        }
        Event::Extend { period, reason } => extend(procedure, c, &mut s, *period, reason)?,
        Event::AddNote(v) => {
            let v = text(v, Needs::Note)?;
            s.history(HistoryEvent::Note, v);
        }
        Event::ReplyToComplainant(v) => {
            let v = text(v, Needs::Reply)?;
            s.effect(Effect::Reply { text: v.clone() });
            s.history(HistoryEvent::Reply, v);
        }
        Event::CompleteMilestone {
            milestone,
            at,
            verdict,
        } => complete(procedure, c, &mut s, *milestone, *at, *verdict, now)?,
        Event::SetStatus(Status::Open) => {
            // Only reached while open (closed is refused above): nothing to do, and an
            // idempotent line must not make the whole mail fail.
            s.history(HistoryEvent::Set, "status is already open".into());
        }
        Event::SetStatus(Status::Closed) => {
            s.status(Stored::Closed);
            let open = open_milestones(procedure, &c.progress);
            let detail = if open.is_empty() {
                "closed by staff".to_string()
            } else {
                format!(
                    "closed by staff while still open: {}",
                    open.iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            s.history(HistoryEvent::Closed, detail);
        }
        Event::Reopen { reason } => {
            if c.stored != Stored::Closed {
                return Err(Refusal::NotClosed(c.reference.clone()));
            }
            let reason = text(reason, Needs::Reopen)?;
            let mut p = c.progress.clone();
            procedure.reopen(&mut p, now);
            if p.round == c.progress.round {
                // The procedure has no loop to reopen: still a new round, so the lifecycle
                // can tell what happened since. Harmless to the plan: rounds only key actions
                // on reopened milestones, and there are none.
                p.round = p.round.saturating_add(1);
                p.completed.insert(REOPENED_KEY.to_string(), now);
            }
            // The closure no longer holds; the closure mail may go out again.
            p.completed.remove(Milestone::Closed.as_str());
            s.status(Stored::Open);
            s.new_round(&p);
            if c.agreement.is_some() {
                // The agreement was on the solution that did not last.
                s.field(Field::Agreement, None);
            }
            s.after.reopen_reason = Some(reason.clone());
            s.changes.push(Change::ReopenReason(reason.clone()));
            s.history(
                HistoryEvent::Reopened,
                format!("round {}: {reason}", p.round),
            );
        }
        Event::Link(r) => {
            if *r == c.reference {
                return Err(Refusal::SelfLink);
            }
            if c.linked.contains(r) {
                s.history(HistoryEvent::Linked, format!("already linked to {r}"));
            } else {
                s.after.linked.push(r.clone());
                s.changes.push(Change::Link(r.clone()));
                s.history(HistoryEvent::Linked, format!("linked to {r}"));
            }
        }
        Event::Void { reason } => {
            let reason = text(reason, Needs::Void)?;
            s.after.stored = Stored::Voided;
            s.changes.push(Change::Voided {
                reason: reason.clone(),
            });
            s.history(HistoryEvent::Voided, reason);
        }
    }
    Ok(s.done())
}

fn extend(
    procedure: &Procedure,
    c: &Complaint,
    s: &mut Step,
    period: Period,
    reason: &str,
) -> Result<(), Refusal> {
    let reason = text(reason, Needs::Extend)?;
    let weeks = weeks_of(period)?;
    let granted = procedure
        .extend(&c.progress, weeks, c.extension_agreement.is_some())
        .map_err(Refusal::Extension)?;
    s.progress(c.progress.round, granted.total_weeks);
    s.history(
        HistoryEvent::Set,
        format!(
            "{} extended by {weeks} week(s), {} in all: {reason}",
            granted.milestone.label("en"),
            granted.total_weeks
        ),
    );
    if granted.uses_agreement {
        // One recorded agreement covers one further delay (Awb 9:11(3)).
        s.field(Field::ExtensionAgreement, None);
        s.history(
            HistoryEvent::ExtensionAgreementUsed,
            c.extension_agreement.clone().unwrap_or_default(),
        );
    }
    if let Some((_, x)) = procedure.extensible() {
        if let Some(t) = &x.notice {
            s.effect(Effect::DelayNotice {
                template: t.clone(),
                milestone: granted.milestone,
                weeks,
                total_weeks: granted.total_weeks,
                reason: reason.clone(),
            });
        }
        if let Some(t) = &x.subject_person_notice
            && c.subject_person.is_some()
        {
            s.effect(Effect::SubjectPersonDelayNotice {
                template: t.clone(),
                reason,
            });
        }
    }
    Ok(())
}

fn complete(
    procedure: &Procedure,
    c: &Complaint,
    s: &mut Step,
    m: Milestone,
    at: DateTime<Utc>,
    verdict: Option<Verdict>,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let def = procedure
        .milestone(m)
        .ok_or_else(|| Refusal::NotInProcedure {
            procedure: procedure.name.clone(),
            milestone: m,
        })?;
    match def.completed_by {
        CompletedBy::Auto => return Err(Refusal::Automatic(m)),
        CompletedBy::Email(ref t) if t == "acknowledgement" => {
            return Err(Refusal::AcknowledgedAtIntake);
        }
        _ => {}
    }
    let completed = &c.progress.completed;
    let round_start = completed.get(REOPENED_KEY).copied();
    // In a later round a milestone completed before the round began may be completed again
    // (the new solution is sent, handling is done again); in the same round only once.
    let previous = completed.get(m.as_str()).copied();
    if previous.is_some_and(|p| round_start.is_none_or(|r| p >= r)) {
        return Err(Refusal::AlreadyCompleted(m));
    }
    if at > now {
        return Err(Refusal::InFuture { milestone: m, at });
    }
    let mut earliest =
        round_start.map_or(c.progress.received_at, |r| r.max(c.progress.received_at));
    if m == Milestone::Verdict
        && let Some(proposed) = completed.get(Milestone::SolutionProposed.as_str())
    {
        // A verdict is on a proposal: not before it.
        earliest = earliest.max(*proposed);
    }
    if at < earliest {
        return Err(Refusal::TooEarly {
            milestone: m,
            at,
            earliest,
        });
    }
    if verdict.is_some() && def.completed_by != CompletedBy::Verdict {
        return Err(Refusal::VerdictNotExpected(m));
    }
    let record = |s: &mut Step| match previous {
        None => s.completed(m, at),
        Some(_) => s.key(m.as_str(), Some(at)),
    };
    let note = match &def.completed_by {
        // Refused above; kept total.
        CompletedBy::Auto => return Err(Refusal::Automatic(m)),
        CompletedBy::Email(template) => {
            if matches!(template.as_str(), "solution" | "outcome_awb" | "closure")
                && c.solution.as_deref().unwrap_or("").trim().is_empty()
            {
                return Err(Refusal::NeedsSolution(m));
            }
            if template == "handler_assigned" && c.handler.is_none() {
                return Err(Refusal::NeedsHandler(m));
            }
            record(s);
            s.effect(Effect::SendToComplainant {
                template: template.clone(),
                milestone: m,
            });
            format!("{m} completed; {template} sent to the complainant")
        }
        CompletedBy::Staff => {
            record(s);
            format!("{m} completed")
        }
        CompletedBy::Verdict => {
            let v = verdict.ok_or(Refusal::NeedsVerdict)?;
            let proposed = completed
                .get(Milestone::SolutionProposed.as_str())
                .is_some_and(|p| round_start.is_none_or(|r| *p >= r));
            if procedure.uses(Milestone::SolutionProposed) && !proposed {
                return Err(Refusal::NothingProposed);
            }
            match v {
                Verdict::Agree => {
                    record(s);
                    s.field(Field::Agreement, Some("yes".into()));
                    format!("{m}: the complainant agrees")
                }
                Verdict::Disagree => {
                    s.field(Field::Agreement, Some("no".into()));
                    let mut p = s.after.progress.clone();
                    procedure.reopen(&mut p, at);
                    s.new_round(&p);
                    // A complainant who does not agree is an escalation: the procedure's
                    // escalation roles hear at once.
                    let roles = escalation_roles(procedure);
                    let note = format!(
                        "{m}: the complainant does not agree; round {} reopened; {} alerted",
                        p.round,
                        roles.join(", ")
                    );
                    s.effect(Effect::Escalate {
                        key: format!("r{}:disagree", p.round),
                        roles,
                        concerns: m,
                    });
                    note
                }
            }
        }
    };
    s.history(HistoryEvent::Milestone, note);
    if matches!(m, Milestone::Handled | Milestone::Closed) {
        s.effect(Effect::CloseIfComplete);
    }
    Ok(())
}

/// Apply a mail's events in order, each to the snapshot the one before left. All or nothing:
/// the first refusal refuses the whole list, with the index of the event refused.
pub fn apply_all(
    procedure: &Procedure,
    c: &Complaint,
    events: &[Event],
    now: DateTime<Utc>,
) -> Result<Vec<Transition>, (usize, Refusal)> {
    let mut out: Vec<Transition> = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let current = out.last().map_or(c, |t| &t.after);
        let t = apply(procedure, current, e, now).map_err(|r| (i, r))?;
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::Calendar;
    use chrono_tz::Europe::Amsterdam;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    use crate::domain::procedure::TEST_PRESETS as PRESETS;

    fn preset(name: &str) -> Procedure {
        let (_, text) = PRESETS.iter().find(|(n, _)| *n == name).unwrap();
        Procedure::parse(name, text, &format!("{name}.toml")).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    fn kl(n: u32) -> ComplaintRef {
        ComplaintRef::new("KL", 2026, n)
    }

    const RECEIVED: &str = "2026-04-13T09:00:00Z";
    const NOW: &str = "2026-04-20T09:00:00Z";

    fn now() -> DateTime<Utc> {
        utc(NOW)
    }

    #[test]
    fn measures_add_up_one_per_line() {
        let mzo = preset("mzo");
        let c = fresh();
        let t = apply(&mzo, &c, &Event::AddMeasure("eerder bellen".into()), now()).unwrap();
        let t = apply(
            &mzo,
            &t.after,
            &Event::AddMeasure("rooster mailen".into()),
            now(),
        )
        .unwrap();
        assert_eq!(
            t.after.measure.as_deref(),
            Some("eerder bellen\nrooster mailen")
        );
        assert_eq!(
            apply(&mzo, &c, &Event::AddMeasure("  ".into()), now()).unwrap_err(),
            Refusal::Missing(Needs::Measure)
        );
    }

    #[test]
    fn a_complaint_is_not_done_while_a_milestone_after_handling_is_open() {
        // mzo: the follow-up three weeks after receipt comes after handling.
        let mzo = preset("mzo");
        let mut progress = fresh().progress;
        progress.completed.insert("handled".into(), utc(NOW));
        let none = HashSet::new();
        assert!(!procedure_complete(&mzo, &progress, &[], &none));
        progress.completed.insert("follow_up".into(), utc(NOW));
        assert!(procedure_complete(&mzo, &progress, &[], &none));
        // Without a later milestone, handling is the end (leefstijlwijzer has none).
        let lsw = preset("leefstijlwijzer");
        let mut progress = fresh().progress;
        progress.completed.insert("handled".into(), utc(NOW));
        assert!(procedure_complete(&lsw, &progress, &[], &none));
    }

    /// A complaint as registration leaves it: received and acknowledged.
    fn fresh() -> Complaint {
        let mut completed = BTreeMap::new();
        completed.insert("acknowledged".to_string(), utc(RECEIVED));
        Complaint {
            reference: kl(7),
            stored: Stored::Open,
            severity: Severity::Normal,
            kind: "complaint".into(),
            nature: None,
            handler: None,
            category: None,
            cause: None,
            solution: None,
            agreement: None,
            satisfaction: None,
            subject_person: None,
            extension_agreement: None,
            progress: Progress {
                received_at: utc(RECEIVED),
                completed,
                round: 0,
                serious: false,
                extended_weeks: 0,
            },
            reopen_reason: None,
            linked: Vec::new(),
            measure: None,
        }
    }

    fn closed() -> Complaint {
        let mut c = fresh();
        c.stored = Stored::Closed;
        c
    }

    fn ok(p: &Procedure, c: &Complaint, e: Event) -> Transition {
        apply(p, c, &e, now()).unwrap_or_else(|r| panic!("{e:?}: {r}"))
    }

    fn refused(p: &Procedure, c: &Complaint, e: Event) -> Refusal {
        match apply(p, c, &e, now()) {
            Ok(t) => panic!("{e:?} was not refused: {t:?}"),
            Err(r) => r,
        }
    }

    fn done(m: Milestone, at: &str) -> Event {
        Event::CompleteMilestone {
            milestone: m,
            at: utc(at),
            verdict: None,
        }
    }

    fn verdict(v: Verdict) -> Event {
        Event::CompleteMilestone {
            milestone: Milestone::Verdict,
            at: utc("2026-04-17T09:00:00Z"),
            verdict: Some(v),
        }
    }

    fn weeks(n: u32) -> Period {
        Period {
            amount: n,
            unit: Unit::Weeks,
        }
    }

    fn extend_event(n: u32) -> Event {
        Event::Extend {
            period: weeks(n),
            reason: "waiting for the committee".into(),
        }
    }

    fn histories(t: &Transition) -> Vec<(HistoryEvent, String)> {
        t.effects
            .iter()
            .filter_map(|e| match e {
                Effect::History { event, detail } => Some((*event, detail.clone())),
                _ => None,
            })
            .collect()
    }

    /// What a store holding `c` holds after writing `changes`: the reference the transitions'
    /// `after` is checked against.
    fn write(c: &Complaint, changes: &[Change]) -> Complaint {
        let mut c = c.clone();
        for ch in changes {
            match ch {
                Change::Field { field, value } => {
                    let v = value.clone();
                    match field {
                        Field::Handler => c.handler = v.map(|a| addr(&a)),
                        Field::Category => c.category = v,
                        Field::Cause => c.cause = v,
                        Field::Solution => c.solution = v,
                        Field::Kind => c.kind = v.unwrap(),
                        Field::Severity => {
                            c.severity = Severity::parse(&v.unwrap()).unwrap();
                            c.progress.serious = c.severity == Severity::Serious;
                        }
                        Field::Nature => c.nature = Some(Nature::parse(&v.unwrap()).unwrap()),
                        Field::Agreement => c.agreement = v.map(|x| x == "yes"),
                        Field::Satisfaction => c.satisfaction = v.map(|x| x.parse().unwrap()),
                        Field::SubjectPerson => c.subject_person = v.map(|a| addr(&a)),
                        Field::ExtensionAgreement => c.extension_agreement = v,
                        Field::Measure => c.measure = v,
                    }
                }
                Change::Completed { milestone, at } => {
                    // The store inserts, never overwrites: a second insert would be lost.
                    assert!(
                        c.progress
                            .completed
                            .insert(milestone.as_str().into(), *at)
                            .is_none(),
                        "Completed for {milestone}, which is already there"
                    );
                }
                Change::ProgressKey { key, at } => {
                    c.progress.completed.remove(key);
                    if let Some(t) = at {
                        c.progress.completed.insert(key.clone(), *t);
                    }
                }
                Change::Progress {
                    round,
                    extended_weeks,
                } => {
                    c.progress.round = *round;
                    c.progress.extended_weeks = *extended_weeks;
                }
                Change::Status(s) => c.stored = *s,
                Change::ReopenReason(r) => c.reopen_reason = Some(r.clone()),
                Change::Link(r) => c.linked.push(r.clone()),
                Change::Voided { .. } => c.stored = Stored::Voided,
            }
        }
        c
    }

    // --- lifecycle ----------------------------------------------------------------------

    #[test]
    fn lifecycle_ids_labels_and_parse() {
        let nl: Vec<&str> = Lifecycle::ALL.iter().map(|l| l.label("nl")).collect();
        assert_eq!(
            nl,
            [
                "nieuw",
                "in behandeling",
                "opgelost",
                "gesloten",
                "heropend",
                "vervallen"
            ]
        );
        let ids: Vec<&str> = Lifecycle::ALL.iter().map(|l| l.as_str()).collect();
        assert_eq!(
            ids,
            [
                "new",
                "in_progress",
                "resolved",
                "closed",
                "reopened",
                "voided"
            ]
        );
        for l in Lifecycle::ALL {
            for s in [l.as_str(), l.label("nl"), l.label("en")] {
                assert_eq!(Lifecycle::parse(s), Some(l), "{s}");
                assert_eq!(Lifecycle::parse(&s.to_uppercase()), Some(l), "{s}");
            }
            assert_eq!(serde_json::to_value(l).unwrap(), l.as_str());
        }
        assert_eq!(
            Lifecycle::parse("In-Behandeling"),
            Some(Lifecycle::InProgress)
        );
        assert_eq!(Lifecycle::parse("open"), None);
        assert_eq!(Lifecycle::parse(""), None);
        assert_eq!(Stored::parse("voided"), Some(Stored::Voided));
        assert_eq!(Stored::parse("gesloten"), None);
    }

    #[test]
    fn lifecycle_precedence() {
        let mut c = fresh();
        assert_eq!(lifecycle(&c), Lifecycle::New);
        c.handler = Some(addr("piet@mzo.nl"));
        assert_eq!(lifecycle(&c), Lifecycle::InProgress);
        c.progress
            .completed
            .insert("solution_proposed".into(), utc("2026-04-15T09:00:00Z"));
        assert_eq!(lifecycle(&c), Lifecycle::Resolved);
        // Resolved does not need a handler: handling alone is a resolution.
        let mut h = fresh();
        h.progress
            .completed
            .insert("handled".into(), utc("2026-04-15T09:00:00Z"));
        assert_eq!(lifecycle(&h), Lifecycle::Resolved);
        let mut a = fresh();
        a.agreement = Some(true);
        assert_eq!(lifecycle(&a), Lifecycle::Resolved);
        a.agreement = Some(false);
        assert_eq!(lifecycle(&a), Lifecycle::New);
        // A later round: reopened until resolved again since the round began.
        c.progress.round = 1;
        c.progress
            .completed
            .insert(REOPENED_KEY.into(), utc("2026-04-16T09:00:00Z"));
        assert_eq!(lifecycle(&c), Lifecycle::Reopened);
        c.progress
            .completed
            .insert("handled".into(), utc("2026-04-16T09:00:00Z"));
        assert_eq!(
            lifecycle(&c),
            Lifecycle::Resolved,
            "at the same moment counts"
        );
        // A reopen reason alone marks a reopened complaint (round 0 rows from before).
        let mut r = fresh();
        r.handler = Some(addr("piet@mzo.nl"));
        r.reopen_reason = Some("probleem terug".into());
        assert_eq!(lifecycle(&r), Lifecycle::Reopened);
        // Closed and voided win over everything.
        c.stored = Stored::Closed;
        assert_eq!(lifecycle(&c), Lifecycle::Closed);
        c.stored = Stored::Voided;
        assert_eq!(lifecycle(&c), Lifecycle::Voided);
    }

    // --- field events -----------------------------------------------------------------

    #[test]
    fn assign_handler_moves_new_to_in_progress() {
        let p = preset("mzo");
        let c = fresh();
        let t = ok(&p, &c, Event::AssignHandler(addr("piet@mzo.nl")));
        assert_eq!(
            t.changes,
            [Change::Field {
                field: Field::Handler,
                value: Some("piet@mzo.nl".into())
            }]
        );
        assert_eq!(lifecycle(&c), Lifecycle::New);
        assert_eq!(lifecycle(&t.after), Lifecycle::InProgress);
        assert_eq!(
            histories(&t),
            [(HistoryEvent::Set, "handler set to piet@mzo.nl".into())]
        );
    }

    #[test]
    fn text_fields_are_trimmed_and_must_not_be_blank() {
        let p = preset("mzo");
        let c = fresh();
        for (make, field, needs) in [
            (
                Event::SetCategory as fn(String) -> Event,
                Field::Category,
                Needs::Category,
            ),
            (Event::SetCause, Field::Cause, Needs::Cause),
            (Event::SetSolution, Field::Solution, Needs::Solution),
        ] {
            let t = ok(&p, &c, make("  Planning \n".into()));
            assert_eq!(
                t.changes,
                [Change::Field {
                    field,
                    value: Some("Planning".into())
                }]
            );
            assert_eq!(
                refused(&p, &c, make(" \n\t".into())),
                Refusal::Missing(needs)
            );
        }
        assert_eq!(
            ok(&p, &c, Event::SetSolution("x".into()))
                .after
                .solution
                .as_deref(),
            Some("x")
        );
    }

    #[test]
    fn severity_follows_into_progress() {
        let p = preset("korein");
        let t = ok(&p, &fresh(), Event::SetSeverity(Severity::Serious));
        assert_eq!(
            t.changes,
            [Change::Field {
                field: Field::Severity,
                value: Some("serious".into())
            }]
        );
        assert!(t.after.progress.serious);
        assert_eq!(t.after.severity, Severity::Serious);
        let back = ok(&p, &t.after, Event::SetSeverity(Severity::Normal));
        assert!(!back.after.progress.serious);
    }

    #[test]
    fn kind_must_be_one_of_the_procedure() {
        let korein = preset("korein");
        let t = ok(&korein, &fresh(), Event::SetKind("Compliment".into()));
        assert_eq!(t.after.kind, "compliment", "the procedure's spelling");
        let r = refused(&korein, &fresh(), Event::SetKind("question".into()));
        assert_eq!(
            r,
            Refusal::UnknownKind {
                kind: "question".into(),
                allowed: vec![
                    "complaint".into(),
                    "compliment".into(),
                    "suggestion".into(),
                    "tip".into()
                ]
            }
        );
        assert!(r.message("nl").contains("kies uit: complaint, compliment"));
        let mzo = preset("mzo");
        assert!(matches!(
            refused(&mzo, &fresh(), Event::SetKind("tip".into())),
            Refusal::UnknownKind { .. }
        ));
        let empty = Procedure::parse("e", "title = \"e\"\n", "e.toml").unwrap();
        assert_eq!(
            ok(&empty, &fresh(), Event::SetKind("complaint".into()))
                .after
                .kind,
            "complaint"
        );
        assert!(matches!(
            refused(&empty, &fresh(), Event::SetKind("tip".into())),
            Refusal::UnknownKind { .. }
        ));
    }

    #[test]
    fn nature_agreement_and_satisfaction() {
        let p = preset("mzo");
        let t = ok(&p, &fresh(), Event::SetNature(Nature::Structural));
        assert_eq!(
            t.changes,
            [Change::Field {
                field: Field::Nature,
                value: Some("structural".into())
            }]
        );
        assert_eq!(Field::Nature.column(), "incident_kind");
        let t = ok(&p, &fresh(), Event::SetAgreement(true));
        assert_eq!(t.after.agreement, Some(true));
        assert_eq!(lifecycle(&t.after), Lifecycle::Resolved);
        let t = ok(&p, &fresh(), Event::SetAgreement(false));
        assert_eq!(
            t.changes,
            [Change::Field {
                field: Field::Agreement,
                value: Some("no".into())
            }]
        );
        assert_eq!(
            ok(&p, &fresh(), Event::SetSatisfaction(5))
                .after
                .satisfaction,
            Some(5)
        );
        assert_eq!(
            refused(&p, &fresh(), Event::SetSatisfaction(0)),
            Refusal::Satisfaction(0)
        );
        assert_eq!(
            refused(&p, &fresh(), Event::SetSatisfaction(6)),
            Refusal::Satisfaction(6)
        );
    }

    #[test]
    fn subject_person_is_named_once_and_recorded_like_a_milestone() {
        let p = preset("awb");
        let t = ok(
            &p,
            &fresh(),
            Event::NameSubjectPerson(addr("jan@gemeente.nl")),
        );
        assert_eq!(
            t.changes,
            [
                Change::Field {
                    field: Field::SubjectPerson,
                    value: Some("jan@gemeente.nl".into())
                },
                Change::ProgressKey {
                    key: SUBJECT_PERSON_KEY.into(),
                    at: Some(now())
                }
            ]
        );
        assert_eq!(
            refused(
                &p,
                &t.after,
                Event::NameSubjectPerson(addr("kees@gemeente.nl"))
            ),
            Refusal::SubjectPersonNamed(kl(7))
        );
    }

    #[test]
    fn extension_agreement_only_where_the_procedure_has_it() {
        let awb = preset("awb");
        let t = ok(
            &awb,
            &fresh(),
            Event::RecordExtensionAgreement(" mail van 12 mei ".into()),
        );
        assert_eq!(
            t.after.extension_agreement.as_deref(),
            Some("mail van 12 mei")
        );
        assert_eq!(
            refused(&awb, &fresh(), Event::RecordExtensionAgreement(" ".into())),
            Refusal::Missing(Needs::ExtensionAgreement)
        );
        assert_eq!(
            refused(
                &preset("academie"),
                &fresh(),
                Event::RecordExtensionAgreement("x".into())
            ),
            Refusal::NoDelayByAgreement("academie".into())
        );
    }

    // --- extension -------------------------------------------------------------------

    #[test]
    fn extend_adds_weeks_and_sends_the_notices() {
        let awb = preset("awb");
        let mut c = fresh();
        c.subject_person = Some(addr("jan@gemeente.nl"));
        let t = ok(&awb, &c, extend_event(2));
        assert_eq!(
            t.changes,
            [Change::Progress {
                round: 0,
                extended_weeks: 2
            }]
        );
        assert!(t.effects.contains(&Effect::DelayNotice {
            template: "delay_notice".into(),
            milestone: Milestone::Handled,
            weeks: 2,
            total_weeks: 2,
            reason: "waiting for the committee".into()
        }));
        assert!(t.effects.contains(&Effect::SubjectPersonDelayNotice {
            template: "subject_delay_notice".into(),
            reason: "waiting for the committee".into()
        }));
        // Without a person complained about, no notice to one.
        let t = ok(&awb, &fresh(), extend_event(2));
        assert!(
            !t.effects
                .iter()
                .any(|e| matches!(e, Effect::SubjectPersonDelayNotice { .. }))
        );
        // Days count when they are whole weeks.
        let days = Event::Extend {
            period: Period {
                amount: 14,
                unit: Unit::CalendarDays,
            },
            reason: "r".into(),
        };
        assert_eq!(ok(&awb, &fresh(), days).after.progress.extended_weeks, 2);
    }

    #[test]
    fn extend_refusals() {
        let awb = preset("awb");
        let c = fresh();
        assert_eq!(
            refused(
                &awb,
                &c,
                Event::Extend {
                    period: weeks(1),
                    reason: "  ".into()
                }
            ),
            Refusal::Missing(Needs::Extend)
        );
        for (amount, unit) in [(10, Unit::CalendarDays), (12, Unit::WorkingDays)] {
            let r = refused(
                &awb,
                &c,
                Event::Extend {
                    period: Period { amount, unit },
                    reason: "r".into(),
                },
            );
            assert!(matches!(r, Refusal::NotWholeWeeks(_)), "{r:?}");
        }
        assert_eq!(
            refused(&awb, &c, extend_event(0)),
            Refusal::Extension(ExtensionRefused::Zero)
        );
        let four = ok(&awb, &c, extend_event(4)).after;
        let r = refused(&awb, &four, extend_event(1));
        assert_eq!(
            r,
            Refusal::Extension(ExtensionRefused::NeedsAgreement { max: 4, used: 4 })
        );
        assert!(
            r.message("nl").contains("Awb 9:11 lid 3"),
            "{}",
            r.message("nl")
        );
        // Gelukwerkt extends the explanation of the procedure, not the handling.
        let t = ok(&preset("gelukwerkt"), &c, extend_event(1));
        assert!(matches!(
            t.effects
                .iter()
                .find(|e| matches!(e, Effect::DelayNotice { .. })),
            Some(Effect::DelayNotice {
                milestone: Milestone::ProcedureExplained,
                ..
            })
        ));
        let mut handled = c.clone();
        handled
            .progress
            .completed
            .insert("handled".into(), utc("2026-04-15T09:00:00Z"));
        assert_eq!(
            refused(&awb, &handled, extend_event(1)),
            Refusal::Extension(ExtensionRefused::Completed(Milestone::Handled))
        );
        let plain = Procedure::parse("plain", "title = \"t\"\n", "plain.toml").unwrap();
        assert_eq!(
            refused(&plain, &c, extend_event(1)),
            Refusal::Extension(ExtensionRefused::NotAllowed("plain".into()))
        );
    }

    #[test]
    fn a_recorded_agreement_allows_one_further_delay() {
        let awb = preset("awb");
        let t = apply_all(
            &awb,
            &fresh(),
            &[
                extend_event(4),
                Event::RecordExtensionAgreement("mail van 12 mei".into()),
                extend_event(2),
            ],
            now(),
        )
        .unwrap();
        let last = &t[2];
        assert_eq!(last.after.progress.extended_weeks, 6);
        assert_eq!(last.after.extension_agreement, None, "used up");
        assert!(last.changes.contains(&Change::Field {
            field: Field::ExtensionAgreement,
            value: None
        }));
        assert!(histories(last).contains(&(
            HistoryEvent::ExtensionAgreementUsed,
            "mail van 12 mei".into()
        )));
        assert_eq!(
            refused(&awb, &last.after, extend_event(1)),
            Refusal::Extension(ExtensionRefused::NeedsAgreement { max: 4, used: 6 })
        );
    }

    // --- notes, replies, links --------------------------------------------------------

    #[test]
    fn notes_and_replies_change_nothing_stored() {
        let p = preset("mzo");
        let t = ok(&p, &fresh(), Event::AddNote("teruggebeld".into()));
        assert!(t.changes.is_empty());
        assert_eq!(histories(&t), [(HistoryEvent::Note, "teruggebeld".into())]);
        let t = ok(
            &p,
            &fresh(),
            Event::ReplyToComplainant("Geachte heer,\nJa.".into()),
        );
        assert!(t.changes.is_empty());
        assert_eq!(
            t.effects[0],
            Effect::Reply {
                text: "Geachte heer,\nJa.".into()
            }
        );
        assert_eq!(
            refused(&p, &fresh(), Event::AddNote(" ".into())),
            Refusal::Missing(Needs::Note)
        );
        assert_eq!(
            refused(&p, &fresh(), Event::ReplyToComplainant("".into())),
            Refusal::Missing(Needs::Reply)
        );
    }

    #[test]
    fn link_once_and_never_to_itself() {
        let p = preset("mzo");
        let t = ok(&p, &fresh(), Event::Link(kl(3)));
        assert_eq!(t.changes, [Change::Link(kl(3))]);
        assert_eq!(t.after.linked, [kl(3)]);
        let again = ok(&p, &t.after, Event::Link(kl(3)));
        assert!(
            again.changes.is_empty(),
            "linking twice is no error and no change"
        );
        assert_eq!(refused(&p, &fresh(), Event::Link(kl(7))), Refusal::SelfLink);
    }

    // --- milestones -------------------------------------------------------------------

    #[test]
    fn staff_milestone_completes() {
        let p = preset("mzo");
        let t = ok(
            &p,
            &fresh(),
            done(Milestone::FirstReaction, "2026-04-15T09:00:00Z"),
        );
        assert_eq!(
            t.changes,
            [Change::Completed {
                milestone: Milestone::FirstReaction,
                at: utc("2026-04-15T09:00:00Z")
            }]
        );
        assert!(!t.effects.contains(&Effect::CloseIfComplete));
        assert_eq!(
            refused(
                &p,
                &t.after,
                done(Milestone::FirstReaction, "2026-04-16T09:00:00Z")
            ),
            Refusal::AlreadyCompleted(Milestone::FirstReaction)
        );
        let h = ok(
            &p,
            &t.after,
            done(Milestone::Handled, "2026-04-16T09:00:00Z"),
        );
        assert!(h.effects.contains(&Effect::CloseIfComplete));
        assert_eq!(lifecycle(&h.after), Lifecycle::Resolved);
    }

    #[test]
    fn milestone_refusals() {
        let mzo = preset("mzo");
        let c = fresh();
        assert_eq!(
            refused(&mzo, &c, done(Milestone::Verdict, NOW)),
            Refusal::NotInProcedure {
                procedure: "mzo".into(),
                milestone: Milestone::Verdict
            }
        );
        assert_eq!(
            refused(&mzo, &c, done(Milestone::Received, NOW)),
            Refusal::Automatic(Milestone::Received)
        );
        assert_eq!(
            refused(&mzo, &c, done(Milestone::Acknowledged, NOW)),
            Refusal::AcknowledgedAtIntake
        );
        assert_eq!(
            refused(&mzo, &c, done(Milestone::Handled, "2026-04-20T09:00:01Z")),
            Refusal::InFuture {
                milestone: Milestone::Handled,
                at: utc("2026-04-20T09:00:01Z")
            }
        );
        assert_eq!(
            refused(&mzo, &c, done(Milestone::Handled, "2026-04-13T08:59:59Z")),
            Refusal::TooEarly {
                milestone: Milestone::Handled,
                at: utc("2026-04-13T08:59:59Z"),
                earliest: utc(RECEIVED)
            }
        );
        assert_eq!(
            refused(
                &mzo,
                &c,
                Event::CompleteMilestone {
                    milestone: Milestone::Handled,
                    at: now(),
                    verdict: Some(Verdict::Agree)
                }
            ),
            Refusal::VerdictNotExpected(Milestone::Handled)
        );
        // Auto milestones other than receipt: a procedure may complete one by an action only.
        let auto = Procedure::parse(
            "auto",
            "title = \"t\"\n[milestones.first_reaction]\ncompleted_by = \"auto\"\n",
            "auto.toml",
        )
        .unwrap();
        assert_eq!(
            refused(&auto, &c, done(Milestone::FirstReaction, NOW)),
            Refusal::Automatic(Milestone::FirstReaction)
        );
    }

    #[test]
    fn email_milestones_send_their_template_and_need_their_facts() {
        let korein = preset("korein");
        let c = fresh();
        assert_eq!(
            refused(&korein, &c, done(Milestone::HandlerKnown, NOW)),
            Refusal::NeedsHandler(Milestone::HandlerKnown)
        );
        let assigned = ok(&korein, &c, Event::AssignHandler(addr("piet@korein.nl"))).after;
        let t = ok(&korein, &assigned, done(Milestone::HandlerKnown, NOW));
        assert_eq!(
            t.effects[0],
            Effect::SendToComplainant {
                template: "handler_assigned".into(),
                milestone: Milestone::HandlerKnown
            }
        );
        assert_eq!(
            refused(&korein, &c, done(Milestone::SolutionProposed, NOW)),
            Refusal::NeedsSolution(Milestone::SolutionProposed)
        );
        let mut blank = c.clone();
        blank.solution = Some("  ".into());
        assert_eq!(
            refused(&korein, &blank, done(Milestone::SolutionProposed, NOW)),
            Refusal::NeedsSolution(Milestone::SolutionProposed)
        );
        let with = ok(&korein, &c, Event::SetSolution("nieuwe afspraak".into())).after;
        let t = ok(&korein, &with, done(Milestone::SolutionProposed, NOW));
        assert!(t.effects.contains(&Effect::SendToComplainant {
            template: "solution".into(),
            milestone: Milestone::SolutionProposed
        }));
        // The closure mail completes the closing milestone; the service then closes.
        let t = ok(&korein, &with, done(Milestone::Closed, NOW));
        assert!(t.effects.contains(&Effect::CloseIfComplete));
        assert_eq!(
            t.after.stored,
            Stored::Open,
            "closing the complaint is the service's check"
        );
        // Awb: the outcome needs the solution too.
        assert_eq!(
            refused(&preset("awb"), &c, done(Milestone::Handled, NOW)),
            Refusal::NeedsSolution(Milestone::Handled)
        );
    }

    #[test]
    fn verdict_agree_completes_and_records_agreement() {
        let p = preset("gelukwerkt");
        let c = fresh();
        assert_eq!(
            refused(&p, &c, verdict(Verdict::Agree)),
            Refusal::NothingProposed
        );
        let proposed = apply_all(
            &p,
            &c,
            &[
                Event::SetSolution("excuses".into()),
                done(Milestone::SolutionProposed, "2026-04-16T09:00:00Z"),
            ],
            now(),
        )
        .unwrap()
        .pop()
        .unwrap()
        .after;
        assert_eq!(
            refused(&p, &proposed, done(Milestone::Verdict, NOW)),
            Refusal::NeedsVerdict
        );
        let t = ok(&p, &proposed, verdict(Verdict::Agree));
        assert_eq!(
            t.changes,
            [
                Change::Completed {
                    milestone: Milestone::Verdict,
                    at: utc("2026-04-17T09:00:00Z")
                },
                Change::Field {
                    field: Field::Agreement,
                    value: Some("yes".into())
                }
            ]
        );
        assert_eq!(lifecycle(&t.after), Lifecycle::Resolved);
    }

    #[test]
    fn verdict_disagree_reopens_the_loop_and_escalates() {
        let p = preset("gelukwerkt");
        let proposed = apply_all(
            &p,
            &fresh(),
            &[
                Event::AssignHandler(addr("piet@gelukwerkt.nl")),
                Event::SetSolution("excuses".into()),
                done(Milestone::SolutionProposed, "2026-04-16T09:00:00Z"),
            ],
            now(),
        )
        .unwrap()
        .pop()
        .unwrap()
        .after;
        let t = ok(&p, &proposed, verdict(Verdict::Disagree));
        let at = utc("2026-04-17T09:00:00Z");
        assert_eq!(
            t.changes,
            [
                Change::Field {
                    field: Field::Agreement,
                    value: Some("no".into())
                },
                Change::ProgressKey {
                    key: "solution_proposed".into(),
                    at: None
                },
                Change::ProgressKey {
                    key: REOPENED_KEY.into(),
                    at: Some(at)
                },
                Change::Progress {
                    round: 1,
                    extended_weeks: 0
                },
            ]
        );
        assert_eq!(
            t.effects[0],
            Effect::Escalate {
                key: "r1:disagree".into(),
                roles: escalation_roles(&p),
                concerns: Milestone::Verdict
            }
        );
        assert_eq!(lifecycle(&t.after), Lifecycle::Reopened);
        // The new round: a new proposal, then agreement.
        let again = apply_all(
            &p,
            &t.after,
            &[
                done(Milestone::SolutionProposed, "2026-04-18T09:00:00Z"),
                verdict(Verdict::Agree),
            ],
            now(),
        );
        // A verdict (17 Apr) before the new proposal (18 Apr) is refused, with its index.
        assert!(
            matches!(again, Err((1, Refusal::TooEarly { .. }))),
            "{again:?}"
        );
        let again = apply_all(
            &p,
            &t.after,
            &[
                done(Milestone::SolutionProposed, "2026-04-18T09:00:00Z"),
                Event::CompleteMilestone {
                    milestone: Milestone::Verdict,
                    at: utc("2026-04-19T09:00:00Z"),
                    verdict: Some(Verdict::Agree),
                },
            ],
            now(),
        )
        .unwrap();
        assert_eq!(lifecycle(&again[0].after), Lifecycle::Resolved);
        assert_eq!(again[1].after.agreement, Some(true));
    }

    #[test]
    fn escalation_roles_of_the_presets() {
        assert_eq!(
            escalation_roles(&preset("mzo")),
            ["director", "management_team"],
            "sorted, once each"
        );
        assert_eq!(
            escalation_roles(&preset("gelukwerkt")),
            ["complaints_officer"]
        );
        let plain = Procedure::parse("plain", "title = \"t\"\n", "plain.toml").unwrap();
        assert_eq!(escalation_roles(&plain), ["director"], "the fallback");
        for (name, _) in PRESETS {
            let roles = escalation_roles(&preset(name));
            assert!(!roles.is_empty());
            assert!(
                !roles.iter().any(|r| r == "handler" || r == "receiver"),
                "{name}: {roles:?}"
            );
        }
    }

    // --- status, reopen, void ---------------------------------------------------------

    #[test]
    fn closing_by_hand_says_what_was_still_open() {
        let p = preset("mzo");
        let t = ok(&p, &fresh(), Event::SetStatus(Status::Closed));
        assert_eq!(t.changes, [Change::Status(Stored::Closed)]);
        assert_eq!(lifecycle(&t.after), Lifecycle::Closed);
        assert_eq!(
            histories(&t),
            [(
                HistoryEvent::Closed,
                "closed by staff while still open: first_reaction, solution_proposed, handled, follow_up".into()
            )]
        );
        let mut all = fresh();
        for m in [
            "first_reaction",
            "solution_proposed",
            "handled",
            "follow_up",
        ] {
            all.progress
                .completed
                .insert(m.into(), utc("2026-04-15T09:00:00Z"));
        }
        let t = ok(&p, &all, Event::SetStatus(Status::Closed));
        assert_eq!(
            histories(&t),
            [(HistoryEvent::Closed, "closed by staff".into())]
        );
        // Open on an open complaint: no change, no failure.
        let t = ok(&p, &fresh(), Event::SetStatus(Status::Open));
        assert!(t.changes.is_empty());
    }

    #[test]
    fn a_closed_complaint_takes_only_reopen_note_reply_and_void() {
        let p = preset("mzo");
        let c = closed();
        assert_eq!(
            refused(&p, &c, Event::SetStatus(Status::Open)),
            Refusal::ReopenWithReason(kl(7))
        );
        for e in [
            Event::AssignHandler(addr("piet@mzo.nl")),
            Event::SetSolution("x".into()),
            Event::SetStatus(Status::Closed),
            done(Milestone::Handled, NOW),
            extend_event(1),
            Event::Link(kl(3)),
        ] {
            assert_eq!(refused(&p, &c, e.clone()), Refusal::Closed(kl(7)), "{e:?}");
        }
        assert!(ok(&p, &c, Event::AddNote("n".into())).changes.is_empty());
        assert!(
            ok(&p, &c, Event::ReplyToComplainant("r".into()))
                .changes
                .is_empty()
        );
        assert_eq!(
            ok(
                &p,
                &c,
                Event::Void {
                    reason: "spam".into()
                }
            )
            .after
            .stored,
            Stored::Voided
        );
        let r = Refusal::Closed(kl(7));
        assert!(r.message("nl").contains("#heropen"), "{}", r.message("nl"));
        assert!(r.message("en").contains("#reopen"), "{}", r.message("en"));
    }

    #[test]
    fn reopen_needs_a_reason_and_a_closed_complaint() {
        let p = preset("mzo");
        assert_eq!(
            refused(&p, &closed(), Event::Reopen { reason: " ".into() }),
            Refusal::Missing(Needs::Reopen)
        );
        assert_eq!(
            refused(
                &p,
                &fresh(),
                Event::Reopen {
                    reason: "terug".into()
                }
            ),
            Refusal::NotClosed(kl(7))
        );
    }

    #[test]
    fn reopen_without_a_loop_starts_a_round_and_can_be_resolved_again() {
        let p = preset("mzo");
        let mut c = closed();
        c.handler = Some(addr("piet@mzo.nl"));
        c.agreement = Some(true);
        c.progress
            .completed
            .insert("handled".into(), utc("2026-04-15T09:00:00Z"));
        let t = ok(
            &p,
            &c,
            Event::Reopen {
                reason: " het probleem is terug ".into(),
            },
        );
        assert_eq!(
            t.changes,
            [
                Change::Status(Stored::Open),
                Change::ProgressKey {
                    key: REOPENED_KEY.into(),
                    at: Some(now())
                },
                Change::Progress {
                    round: 1,
                    extended_weeks: 0
                },
                Change::Field {
                    field: Field::Agreement,
                    value: None
                },
                Change::ReopenReason("het probleem is terug".into()),
            ]
        );
        assert_eq!(lifecycle(&t.after), Lifecycle::Reopened);
        assert_eq!(
            histories(&t),
            [(
                HistoryEvent::Reopened,
                "round 1: het probleem is terug".into()
            )]
        );
        // Handling done before the reopening may be done again, once.
        let later = utc("2026-04-20T09:00:00Z");
        let h = ok(&p, &t.after, done(Milestone::Handled, NOW));
        assert_eq!(
            h.changes,
            [Change::ProgressKey {
                key: "handled".into(),
                at: Some(later)
            }]
        );
        assert_eq!(lifecycle(&h.after), Lifecycle::Resolved);
        assert_eq!(
            refused(&p, &h.after, done(Milestone::Handled, NOW)),
            Refusal::AlreadyCompleted(Milestone::Handled)
        );
        // And not backdated before the round began.
        assert!(matches!(
            refused(
                &p,
                &t.after,
                done(Milestone::Handled, "2026-04-19T09:00:00Z")
            ),
            Refusal::TooEarly { .. }
        ));
    }

    #[test]
    fn reopen_with_a_loop_uses_the_procedure_and_forgets_the_closure() {
        let p = preset("korein");
        let mut c = closed();
        for m in ["solution_proposed", "handled", "closed"] {
            c.progress
                .completed
                .insert(m.into(), utc("2026-04-15T09:00:00Z"));
        }
        let t = ok(
            &p,
            &c,
            Event::Reopen {
                reason: "terug".into(),
            },
        );
        assert!(t.changes.contains(&Change::ProgressKey {
            key: "closed".into(),
            at: None
        }));
        assert_eq!(t.after.progress.round, 1);
        assert!(!t.after.progress.completed.contains_key("closed"));

        let g = preset("gelukwerkt");
        let mut c = closed();
        for m in ["solution_proposed", "verdict", "handled"] {
            c.progress
                .completed
                .insert(m.into(), utc("2026-04-15T09:00:00Z"));
        }
        let t = ok(
            &g,
            &c,
            Event::Reopen {
                reason: "terug".into(),
            },
        );
        assert_eq!(t.after.progress.round, 1);
        assert!(!t.after.progress.completed.contains_key("solution_proposed"));
        assert!(!t.after.progress.completed.contains_key("verdict"));
        assert_eq!(t.after.progress.completed.get(REOPENED_KEY), Some(&now()));
        assert_eq!(lifecycle(&t.after), Lifecycle::Reopened);
    }

    #[test]
    fn void_needs_a_reason_and_ends_everything() {
        let p = preset("mzo");
        assert_eq!(
            refused(&p, &fresh(), Event::Void { reason: "".into() }),
            Refusal::Missing(Needs::Void)
        );
        let t = ok(
            &p,
            &fresh(),
            Event::Void {
                reason: "spam".into(),
            },
        );
        assert_eq!(
            t.changes,
            [Change::Voided {
                reason: "spam".into()
            }]
        );
        assert_eq!(lifecycle(&t.after), Lifecycle::Voided);
        assert_eq!(
            refused(&p, &t.after, Event::AddNote("n".into())),
            Refusal::Voided(kl(7))
        );
        assert_eq!(
            refused(&p, &t.after, Event::Reopen { reason: "r".into() }),
            Refusal::Voided(kl(7))
        );
    }

    #[test]
    fn apply_all_is_all_or_nothing_with_the_index() {
        let p = preset("mzo");
        let events = [
            Event::AssignHandler(addr("piet@mzo.nl")),
            Event::SetCategory("Planning".into()),
            done(Milestone::Verdict, NOW),
            Event::AddNote("n".into()),
        ];
        assert_eq!(
            apply_all(&p, &fresh(), &events, now()),
            Err((
                2,
                Refusal::NotInProcedure {
                    procedure: "mzo".into(),
                    milestone: Milestone::Verdict
                }
            ))
        );
        let t = apply_all(&p, &fresh(), &events[..2], now()).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            t[1].after.handler,
            Some(addr("piet@mzo.nl")),
            "each sees the one before"
        );
        assert_eq!(apply_all(&p, &fresh(), &[], now()), Ok(vec![]));
        // A later event may rely on an earlier one in the same mail.
        let korein = preset("korein");
        let t = apply_all(
            &korein,
            &fresh(),
            &[
                Event::SetSolution("s".into()),
                done(Milestone::SolutionProposed, NOW),
            ],
            now(),
        );
        assert!(t.is_ok(), "{t:?}");
    }

    #[test]
    fn every_refusal_reads_in_both_languages() {
        let all = [
            Refusal::Voided(kl(1)),
            Refusal::Closed(kl(1)),
            Refusal::ReopenWithReason(kl(1)),
            Refusal::NotClosed(kl(1)),
            Refusal::Missing(Needs::Reopen),
            Refusal::Missing(Needs::ExtensionAgreement),
            Refusal::UnknownKind {
                kind: "x".into(),
                allowed: vec!["complaint".into()],
            },
            Refusal::Satisfaction(9),
            Refusal::SubjectPersonNamed(kl(1)),
            Refusal::NoDelayByAgreement("p".into()),
            Refusal::NotWholeWeeks("3 days".into()),
            Refusal::Extension(ExtensionRefused::OverLimit { max: 4, used: 4 }),
            Refusal::NotInProcedure {
                procedure: "p".into(),
                milestone: Milestone::Verdict,
            },
            Refusal::AlreadyCompleted(Milestone::Handled),
            Refusal::Automatic(Milestone::Received),
            Refusal::AcknowledgedAtIntake,
            Refusal::NeedsSolution(Milestone::Handled),
            Refusal::NeedsHandler(Milestone::HandlerKnown),
            Refusal::NeedsVerdict,
            Refusal::VerdictNotExpected(Milestone::Handled),
            Refusal::NothingProposed,
            Refusal::InFuture {
                milestone: Milestone::Handled,
                at: now(),
            },
            Refusal::TooEarly {
                milestone: Milestone::Handled,
                at: now(),
                earliest: now(),
            },
            Refusal::SelfLink,
        ];
        for r in &all {
            let (nl, en) = (r.message("nl"), r.message("en"));
            assert!(!r.to_string().is_empty());
            assert_ne!(nl, en, "{r:?}");
            assert!(nl.ends_with('.') && en.ends_with('.'), "{nl} / {en}");
            assert!(
                nl.starts_with(char::is_uppercase) || nl.starts_with("KL-"),
                "{nl}"
            );
            assert!(en.starts_with(char::is_uppercase), "{en}");
        }
    }

    // --- properties -------------------------------------------------------------------

    fn arb_procedure() -> impl Strategy<Value = Procedure> {
        prop::sample::select(PRESETS.iter().map(|(n, _)| *n).collect::<Vec<_>>()).prop_map(preset)
    }

    fn arb_at() -> impl Strategy<Value = DateTime<Utc>> {
        // From before receipt to after now, so both time refusals are reached.
        (-2i64..=200).prop_map(|h| utc(RECEIVED) + chrono::Duration::hours(h))
    }

    fn arb_text() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => Just(String::new()),
            1 => Just("  ".to_string()),
            8 => "[a-z][a-z ]{0,11}"
        ]
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        let who = prop::sample::select(vec!["piet@mzo.nl", "kees@mzo.nl"]).prop_map(addr);
        prop_oneof![
            2 => who.clone().prop_map(Event::AssignHandler),
            2 => arb_text().prop_map(Event::SetCategory),
            2 => prop::sample::select(Severity::ALL.to_vec()).prop_map(Event::SetSeverity),
            2 => prop::sample::select(vec!["complaint", "compliment", "tip", "vraag"])
                .prop_map(|k| Event::SetKind(k.into())),
            2 => prop::sample::select(Nature::ALL.to_vec()).prop_map(Event::SetNature),
            2 => arb_text().prop_map(Event::SetCause),
            2 => arb_text().prop_map(Event::SetSolution),
            2 => any::<bool>().prop_map(Event::SetAgreement),
            2 => (0u8..=7).prop_map(Event::SetSatisfaction),
            2 => who.prop_map(Event::NameSubjectPerson),
            2 => arb_text().prop_map(Event::RecordExtensionAgreement),
            2 => (
                0u32..=8,
                prop::sample::select(vec![Unit::Weeks, Unit::CalendarDays, Unit::WorkingDays]),
                arb_text()
            )
                .prop_map(|(amount, unit, reason)| Event::Extend {
                    period: Period { amount, unit },
                    reason
                }),
            2 => arb_text().prop_map(Event::AddNote),
            2 => arb_text().prop_map(Event::ReplyToComplainant),
            8 => (
                prop::sample::select(Milestone::ALL.to_vec()),
                arb_at(),
                prop::option::of(prop::sample::select(vec![
                    Verdict::Agree,
                    Verdict::Disagree
                ]))
            )
                .prop_map(|(milestone, at, verdict)| Event::CompleteMilestone {
                    milestone,
                    at,
                    verdict
                }),
            3 => prop::sample::select(vec![Status::Open, Status::Closed]).prop_map(Event::SetStatus),
            4 => arb_text().prop_map(|reason| Event::Reopen { reason }),
            2 => (1u32..=9).prop_map(|n| Event::Link(kl(n))),
            1 => arb_text().prop_map(|reason| Event::Void { reason }),
        ]
    }

    fn due_dates(p: &Procedure, pr: &Progress) -> Vec<(Milestone, Option<chrono::NaiveDate>)> {
        p.deadlines(&Calendar::dutch(), Amsterdam, pr)
            .into_iter()
            .map(|d| (d.milestone, d.due))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// (a) Any sequence never panics; the changes written to the store give exactly the
        /// transition's `after`; the lifecycle agrees with the stored status; rounds and
        /// extensions never go back; a refusal leaves nothing to write.
        #[test]
        fn any_sequence_keeps_the_invariants(
            p in arb_procedure(),
            events in prop::collection::vec(arb_event(), 0..24),
        ) {
            let mut c = fresh();
            for e in &events {
                match apply(&p, &c, e, now()) {
                    Ok(t) => {
                        prop_assert_eq!(&write(&c, &t.changes), &t.after, "{:?}", e);
                        let l = lifecycle(&t.after);
                        prop_assert!(Lifecycle::ALL.contains(&l));
                        prop_assert_eq!(l == Lifecycle::Voided, t.after.stored == Stored::Voided);
                        prop_assert_eq!(l == Lifecycle::Closed, t.after.stored == Stored::Closed);
                        prop_assert_eq!(t.after.progress.serious, t.after.severity == Severity::Serious);
                        prop_assert!(t.after.progress.round >= c.progress.round);
                        prop_assert!(t.after.progress.extended_weeks >= c.progress.extended_weeks);
                        prop_assert_eq!(t.after.progress.received_at, c.progress.received_at);
                        c = t.after;
                    }
                    Err(r) => {
                        prop_assert!(!r.to_string().is_empty());
                        prop_assert!(!r.message("nl").is_empty());
                    }
                }
            }
        }

        /// (b) A voided complaint refuses every event.
        #[test]
        fn a_voided_complaint_refuses_everything(p in arb_procedure(), e in arb_event()) {
            let mut c = fresh();
            c.stored = Stored::Voided;
            prop_assert_eq!(apply(&p, &c, &e, now()), Err(Refusal::Voided(kl(7))));
        }

        /// (c) apply_all refuses at the first event `apply` refuses, and only then; otherwise
        /// it gives one transition per event, the same as applying them one by one.
        #[test]
        fn apply_all_refuses_at_the_first_refusal(
            p in arb_procedure(),
            events in prop::collection::vec(arb_event(), 0..12),
        ) {
            let mut c = fresh();
            let mut expected = Ok(Vec::new());
            for (i, e) in events.iter().enumerate() {
                match apply(&p, &c, e, now()) {
                    Ok(t) => {
                        c = t.after.clone();
                        if let Ok(v) = &mut expected { v.push(t); }
                    }
                    Err(r) => { expected = Err((i, r)); break; }
                }
            }
            prop_assert_eq!(apply_all(&p, &fresh(), &events, now()), expected);
        }

        /// (d) No event moves a deadline earlier through an extension: after each granted
        /// Extend every milestone's due date is the same or later, and the extended one later.
        #[test]
        fn extensions_never_move_a_deadline_earlier(
            p in arb_procedure(),
            steps in prop::collection::vec((1u32..=6, any::<bool>()), 1..8),
        ) {
            let mut c = fresh();
            for (w, agree) in steps {
                if agree
                    && let Ok(t) = apply(&p, &c, &Event::RecordExtensionAgreement("ok".into()), now())
                {
                    c = t.after;
                }
                let Ok(t) = apply(&p, &c, &extend_event(w), now()) else { continue };
                let before = due_dates(&p, &c.progress);
                let after = due_dates(&p, &t.after.progress);
                let extended = p.extensible().map(|(m, _)| m);
                for ((m, b), (_, a)) in before.iter().zip(&after) {
                    if let (Some(b), Some(a)) = (b, a) {
                        prop_assert!(a >= b, "{} moved from {} to {}", m, b, a);
                        if Some(*m) == extended {
                            prop_assert!(a > b, "{} did not move: {}", m, b);
                        }
                    }
                    prop_assert_eq!(b.is_some(), a.is_some());
                }
                c = t.after;
            }
        }
    }
}

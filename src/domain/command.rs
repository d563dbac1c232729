//! Staff work by email (issue #10): the `#name value` commands at the top of a staff reply, the
//! intake of a complaint on behalf of someone (`#nieuw`), and the complainant's plain-text
//! answers (a verdict on a proposed solution, a satisfaction score).
//!
//! Everything here reads the NEW text of a reply (quotes already removed). A mail's commands
//! are applied together or not at all, so [`parse_commands`] either returns all of them or
//! every problem it found, each naming its line and how to write it, in Dutch or English.

use std::collections::BTreeMap;
use std::fmt;

use super::procedure::{Milestone, Unit};
use super::text::{is_unsafe_char, single_line};
use super::types::{ComplaintRef, EmailAddress};

/// A one-line value longer than this is refused: no command needs it, and it is copied into
/// the register and into mails.
pub const MAX_LINE_VALUE_CHARS: usize = 2000;
/// A text block (`#antwoord`, `#oplossing`, `#notitie` alone on their line) longer than this is
/// refused. 50 000 characters is some 25 pages.
pub const MAX_BLOCK_CHARS: usize = 50_000;
/// Categories and names are short labels.
pub const MAX_LABEL_CHARS: usize = 200;
/// An extension longer than this is a typo (Awb 9:11(2) allows ten weeks; the procedure decides).
pub const MAX_PERIOD_DAYS: u32 = 366;

/// What validation needs to know, gathered by the caller (no I/O here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    /// The staff member who wrote the mail (`ik` / `me` means this address).
    pub sender: EmailAddress,
    /// When known, `#behandelaar` must name one of these (compared by mailbox).
    pub staff: Option<Vec<EmailAddress>>,
    /// `procedure.categories` when the config lists them; `None` allows any text.
    pub categories: Option<Vec<String>>,
    /// The procedure's kinds (`complaint`, `compliment`, ...); empty allows every kind.
    pub kinds: Vec<String>,
    /// The procedure's milestones; empty allows every milestone staff may complete.
    pub milestones: Vec<Milestone>,
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    /// `ik` / `me`: the sender of the mail.
    Me,
    Address(EmailAddress),
}

impl Assignee {
    pub fn resolve<'a>(&'a self, sender: &'a EmailAddress) -> &'a EmailAddress {
        match self {
            Assignee::Me => sender,
            Assignee::Address(a) => a,
        }
    }
}

/// Defines a small enum of command values: English id, Dutch and English labels, and the words
/// (lower case) that are read as each value.
macro_rules! value_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $id:literal, $nl:literal, $en:literal, [$($word:literal),+ $(,)?];)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable English id, as stored.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $id),+ }
            }

            pub fn label(self, lang: &str) -> &'static str {
                let en = lang.eq_ignore_ascii_case("en");
                match self { $($name::$variant => if en { $en } else { $nl }),+ }
            }

            /// Reads a value as staff write it: case-insensitive, Dutch or English.
            pub fn parse(text: &str) -> Option<$name> {
                let t = normalise_word(text);
                $(if [$($word),+].contains(&t.as_str()) { return Some($name::$variant); })+
                None
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

value_enum!(
    Severity {
        Serious => "serious", "ernstig", "serious", ["ernstig", "serious"];
        Normal => "normal", "normaal", "normal", ["normaal", "normal"];
    }
);

value_enum!(
    /// What a message is; ids are those of `procedure.kinds`.
    Kind {
        Complaint => "complaint", "klacht", "complaint", ["klacht", "complaint"];
        Compliment => "compliment", "compliment", "compliment", ["compliment"];
        Suggestion => "suggestion", "suggestie", "suggestion", ["suggestie", "suggestion"];
        Tip => "tip", "tip", "tip", ["tip"];
        Question => "question", "vraag", "question", ["vraag", "question"];
    }
);

value_enum!(
    Nature {
        Incident => "incident", "incident", "incident", ["incident"];
        Structural => "structural", "structureel", "structural", ["structureel", "structural"];
    }
);

value_enum!(
    Status {
        Open => "open", "open", "open", ["open"];
        Closed => "closed", "gesloten", "closed", ["gesloten", "afgesloten", "closed"];
    }
);

value_enum!(
    /// The complainant's verdict on the proposed solution, as staff record it.
    Verdict {
        Agree => "agree", "akkoord", "agree", ["akkoord", "eens", "agree", "agreed"];
        Disagree => "disagree", "niet akkoord", "disagree",
            ["niet akkoord", "oneens", "niet eens", "disagree", "not agreed", "not agree"];
    }
);

value_enum!(
    /// How a complaint taken in on behalf of someone reached us.
    Channel {
        Phone => "phone", "telefoon", "phone", ["telefoon", "telefonisch", "phone", "telephone"];
        Letter => "letter", "brief", "letter", ["brief", "post", "letter"];
        Desk => "desk", "balie", "desk", ["balie", "desk", "counter"];
        Internal => "internal", "intern", "internal", ["intern", "internal"];
    }
);

/// Lower case, inner whitespace collapsed, trailing punctuation dropped: `Ernstig.` is
/// `ernstig`, `Niet  akkoord!` is `niet akkoord`.
fn normalise_word(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(['.', '!', ',', ';'])
        .to_lowercase()
}

/// A period of time, as in `#verleng 4 weken ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub amount: u32,
    pub unit: Unit,
}

impl Period {
    /// Reads a period at the start of `text` and returns it with the rest of the text:
    /// `4 weken`, `2 weeks`, `10 werkdagen`, `10 working days`, `1 week`, `3 dagen`, `3 days`.
    pub fn parse_prefix(text: &str) -> Option<(Period, &str)> {
        let t = text.trim_start();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        if digits == 0 || digits > 4 {
            return None;
        }
        let amount: u32 = t[..digits].parse().ok()?;
        let after = t[digits..].trim_start();
        let lower = after.to_lowercase();
        // Longest first, so `working days` is not read as `working` + junk.
        const UNITS: &[(&str, Unit)] = &[
            ("working days", Unit::WorkingDays),
            ("working day", Unit::WorkingDays),
            ("werkdagen", Unit::WorkingDays),
            ("werkdag", Unit::WorkingDays),
            ("weken", Unit::Weeks),
            ("weeks", Unit::Weeks),
            ("week", Unit::Weeks),
            ("dagen", Unit::CalendarDays),
            ("days", Unit::CalendarDays),
            ("dag", Unit::CalendarDays),
            ("day", Unit::CalendarDays),
        ];
        for (word, unit) in UNITS {
            if let Some(rest) = lower.strip_prefix(word) {
                // The unit must end there: `weekend` is not `week`.
                if rest.starts_with(|c: char| c.is_alphanumeric()) {
                    continue;
                }
                let days = match unit {
                    Unit::Weeks => amount.saturating_mul(7),
                    _ => amount,
                };
                if amount == 0 || days > MAX_PERIOD_DAYS {
                    return None;
                }
                // `lower` may differ in byte length from `after` (to_lowercase of some
                // characters); the unit words are ASCII, so cut `after` by char count.
                let cut = after
                    .char_indices()
                    .nth(word.chars().count())
                    .map(|(i, _)| i)
                    .unwrap_or(after.len());
                return Some((
                    Period {
                        amount,
                        unit: *unit,
                    },
                    &after[cut..],
                ));
            }
        }
        None
    }

    pub fn describe(&self, lang: &str) -> String {
        let en = lang.eq_ignore_ascii_case("en");
        let one = self.amount == 1;
        let unit = match (self.unit, en, one) {
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
        format!("{} {unit}", self.amount)
    }
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Assign(Assignee),
    Category(String),
    Severity(Severity),
    Kind(Kind),
    Nature(Nature),
    Cause(String),
    Solution(String),
    /// Whether complainant and organisation agree on the solution (`#overeenstemming ja`).
    Agreement(bool),
    Extend {
        period: Period,
        reason: String,
    },
    Note(String),
    /// Text that goes to the complainant as our answer.
    Reply(String),
    /// A milestone completed; for `verdict` the complainant's verdict comes with it.
    Done(Milestone, Option<Verdict>),
    Status(Status),
    Reopen(String),
    Link(ComplaintRef),
    /// A recommendation or measure against new complaints (seeds 003, 004).
    Measure(String),
    Help,
}

impl Command {
    pub fn name(&self) -> CommandName {
        match self {
            Command::Assign(_) => CommandName::Assign,
            Command::Category(_) => CommandName::Category,
            Command::Severity(_) => CommandName::Severity,
            Command::Kind(_) => CommandName::Kind,
            Command::Nature(_) => CommandName::Nature,
            Command::Cause(_) => CommandName::Cause,
            Command::Solution(_) => CommandName::Solution,
            Command::Agreement(_) => CommandName::Agreement,
            Command::Extend { .. } => CommandName::Extend,
            Command::Note(_) => CommandName::Note,
            Command::Reply(_) => CommandName::Reply,
            Command::Done(..) => CommandName::Done,
            Command::Status(_) => CommandName::Status,
            Command::Reopen(_) => CommandName::Reopen,
            Command::Measure(_) => CommandName::Measure,
            Command::Link(_) => CommandName::Link,
            Command::Help => CommandName::Help,
        }
    }

    /// The command as applied, one line, for the confirmation to the sender: `#ernst ernstig`,
    /// `#behandelaar jan@example.nl`; long texts are shortened.
    pub fn describe(&self, lang: &str, sender: &EmailAddress) -> String {
        let en = lang.eq_ignore_ascii_case("en");
        let short = |t: &str| {
            let one = single_line(t, 80);
            if t.chars().count() > 80 || t.contains('\n') {
                format!("{one}...")
            } else {
                one
            }
        };
        let value = match self {
            Command::Assign(a) => a.resolve(sender).to_string(),
            Command::Category(t)
            | Command::Cause(t)
            | Command::Note(t)
            | Command::Reopen(t)
            | Command::Measure(t) => short(t),
            Command::Solution(t) | Command::Reply(t) => short(t),
            Command::Severity(v) => v.label(lang).to_string(),
            Command::Kind(v) => v.label(lang).to_string(),
            Command::Nature(v) => v.label(lang).to_string(),
            Command::Agreement(true) => (if en { "yes" } else { "ja" }).to_string(),
            Command::Agreement(false) => (if en { "no" } else { "nee" }).to_string(),
            Command::Extend { period, reason } => {
                format!("{} ({})", period.describe(lang), short(reason))
            }
            Command::Done(m, verdict) => match verdict {
                Some(v) => format!("{} {}", m.label(lang), v.label(lang)),
                None => m.label(lang).to_string(),
            },
            Command::Status(v) => v.label(lang).to_string(),
            Command::Link(r) => r.to_string(),
            Command::Help => String::new(),
        };
        format!("{} {value}", self.name().written(lang))
            .trim_end()
            .to_string()
    }
}

/// One command with the (1-based) line it was written on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub line: usize,
    pub command: Command,
}

/// `#nieuw`: a complaint a staff member takes in for someone (by phone, letter, at the desk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intake {
    /// The line of `#nieuw`.
    pub line: usize,
    pub name: Option<String>,
    pub email: Option<EmailAddress>,
    pub channel: Option<Channel>,
    /// The complaint as the complainant made it: the text after the commands.
    pub text: String,
}

/// Everything a staff mail asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Commands {
    pub intake: Option<Intake>,
    /// In the order written; repeated identical commands appear once.
    pub commands: Vec<CommandLine>,
    /// Text no command claimed. Without any command it is the whole text, which the caller
    /// records as a note (see [`Commands::implicit_note`]). Empty for an intake (the text is
    /// the complaint).
    pub rest: String,
    /// Lines in `rest` that start like a known command: they came after ordinary text, so they
    /// were not applied. The caller tells the sender so a command is never lost silently.
    pub late_commands: Vec<usize>,
}

impl Commands {
    /// The text to record as a note when the mail has no command at all.
    pub fn implicit_note(&self) -> Option<&str> {
        (self.intake.is_none() && self.commands.is_empty() && !self.rest.is_empty())
            .then_some(self.rest.as_str())
    }
}

/// Every command name, Dutch and English, for parsing, errors and the reference text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CommandName {
    Assign,
    Category,
    Severity,
    Kind,
    Nature,
    Cause,
    Solution,
    Agreement,
    Extend,
    Note,
    Reply,
    Done,
    Status,
    Reopen,
    Link,
    Measure,
    Help,
    New,
    Name,
    Email,
    Channel,
}

struct Spec {
    name: CommandName,
    nl: &'static str,
    en: &'static str,
    value_nl: &'static str,
    value_en: &'static str,
    what_nl: &'static str,
    what_en: &'static str,
    example_nl: &'static str,
    example_en: &'static str,
}

const SPECS: &[Spec] = &[
    Spec {
        name: CommandName::Assign,
        nl: "behandelaar",
        en: "assign",
        value_nl: "<e-mailadres> | ik",
        value_en: "<email address> | me",
        what_nl: "wijst de klacht toe aan een medewerker (ik = uzelf)",
        what_en: "assigns the complaint to a staff member (me = yourself)",
        example_nl: "#behandelaar ik",
        example_en: "#assign me",
    },
    Spec {
        name: CommandName::Category,
        nl: "categorie",
        en: "category",
        value_nl: "<categorie>",
        value_en: "<category>",
        what_nl: "legt de categorie vast",
        what_en: "records the category",
        example_nl: "#categorie: Planning",
        example_en: "#category: Planning",
    },
    Spec {
        name: CommandName::Severity,
        nl: "ernst",
        en: "severity",
        value_nl: "ernstig | normaal",
        value_en: "serious | normal",
        what_nl: "markeert de klacht als ernstig of normaal",
        what_en: "marks the complaint serious or normal",
        example_nl: "#ernst ernstig",
        example_en: "#severity serious",
    },
    Spec {
        name: CommandName::Kind,
        nl: "soort",
        en: "kind",
        value_nl: "klacht | compliment | suggestie | tip | vraag",
        value_en: "complaint | compliment | suggestion | tip | question",
        what_nl: "legt vast wat voor bericht het is",
        what_en: "records what kind of message it is",
        example_nl: "#soort compliment",
        example_en: "#kind compliment",
    },
    Spec {
        name: CommandName::Nature,
        nl: "aard",
        en: "nature",
        value_nl: "incident | structureel",
        value_en: "incident | structural",
        what_nl: "een eenmalig voorval of een structureel probleem",
        what_en: "a one-off incident or a structural problem",
        example_nl: "#aard structureel",
        example_en: "#nature structural",
    },
    Spec {
        name: CommandName::Cause,
        nl: "oorzaak",
        en: "cause",
        value_nl: "<tekst>",
        value_en: "<text>",
        what_nl: "legt de oorzaak vast",
        what_en: "records the cause",
        example_nl: "#oorzaak rooster te laat gepubliceerd",
        example_en: "#cause timetable published late",
    },
    Spec {
        name: CommandName::Solution,
        nl: "oplossing",
        en: "solution",
        value_nl: "<tekst>, of alleen op de regel: de tekst eronder",
        value_en: "<text>, or alone on its line: the text below it",
        what_nl: "legt de (voorgestelde) oplossing vast",
        what_en: "records the (proposed) solution",
        example_nl: "#oplossing nieuwe afspraak op dinsdag",
        example_en: "#solution new appointment on Tuesday",
    },
    Spec {
        name: CommandName::Agreement,
        nl: "overeenstemming",
        en: "agreement",
        value_nl: "ja | nee",
        value_en: "yes | no",
        what_nl: "of klager en organisatie het eens zijn over de oplossing",
        what_en: "whether complainant and organisation agree on the solution",
        example_nl: "#overeenstemming ja",
        example_en: "#agreement yes",
    },
    Spec {
        name: CommandName::Extend,
        nl: "verleng",
        en: "extend",
        value_nl: "<aantal> weken | werkdagen | dagen <reden>",
        value_en: "<number> weeks | working days | days <reason>",
        what_nl: "verlengt de termijn (de klager krijgt bericht met de reden)",
        what_en: "extends the term (the complainant is told, with the reason)",
        example_nl: "#verleng 4 weken wachten op advies van de commissie",
        example_en: "#extend 4 weeks waiting for the committee's advice",
    },
    Spec {
        name: CommandName::Note,
        nl: "notitie",
        en: "note",
        value_nl: "<tekst>, of alleen op de regel: de tekst eronder",
        value_en: "<text>, or alone on its line: the text below it",
        what_nl: "interne notitie (gaat niet naar de klager)",
        what_en: "internal note (not sent to the complainant)",
        example_nl: "#notitie klager teruggebeld, geen gehoor",
        example_en: "#note called the complainant back, no answer",
    },
    Spec {
        name: CommandName::Reply,
        nl: "antwoord",
        en: "reply",
        value_nl: "de tekst eronder",
        value_en: "the text below it",
        what_nl: "de tekst eronder gaat als ons antwoord naar de klager",
        what_en: "the text below goes to the complainant as our answer",
        example_nl: "#antwoord\nGeachte heer Jansen, ...",
        example_en: "#reply\nDear Mr Jansen, ...",
    },
    Spec {
        name: CommandName::Done,
        nl: "klaar",
        en: "done",
        value_nl: "<mijlpaal> (bij oordeel: akkoord | niet akkoord)",
        value_en: "<milestone> (for the verdict: agree | disagree)",
        what_nl: "markeert een mijlpaal als gereed (id of Nederlandse naam)",
        what_en: "marks a milestone done (its id or its Dutch name)",
        example_nl: "#klaar eerste reactie",
        example_en: "#done first_reaction",
    },
    Spec {
        name: CommandName::Status,
        nl: "status",
        en: "status",
        value_nl: "open | gesloten",
        value_en: "open | closed",
        what_nl: "opent of sluit de klacht",
        what_en: "opens or closes the complaint",
        example_nl: "#status gesloten",
        example_en: "#status closed",
    },
    Spec {
        name: CommandName::Reopen,
        nl: "heropen",
        en: "reopen",
        value_nl: "<reden>",
        value_en: "<reason>",
        what_nl: "heropent een gesloten klacht (reden verplicht)",
        what_en: "reopens a closed complaint (reason required)",
        example_nl: "#heropen klager meldt dat het probleem terug is",
        example_en: "#reopen complainant reports the problem is back",
    },
    Spec {
        name: CommandName::Measure,
        nl: "maatregel",
        en: "measure",
        value_nl: "<tekst>",
        value_en: "<text>",
        what_nl: "legt een aanbeveling of maatregel vast om nieuwe klachten te voorkomen; alleen op de regel: de tekst eronder",
        what_en: "records a recommendation or measure against new complaints; alone on its line: the text below it",
        example_nl: "#maatregel roosterwijzigingen voortaan een week vooraf mailen",
        example_en: "#measure mail timetable changes a week ahead from now on",
    },
    Spec {
        name: CommandName::Link,
        nl: "koppel",
        en: "link",
        value_nl: "<kenmerk>",
        value_en: "<reference>",
        what_nl: "koppelt aan een andere klacht",
        what_en: "links to another complaint",
        example_nl: "#koppel KL-2026-0003",
        example_en: "#link KL-2026-0003",
    },
    Spec {
        name: CommandName::Help,
        nl: "help",
        en: "help",
        value_nl: "",
        value_en: "",
        what_nl: "stuurt dit overzicht",
        what_en: "sends this overview",
        example_nl: "#help",
        example_en: "#help",
    },
    Spec {
        name: CommandName::New,
        nl: "nieuw",
        en: "new",
        value_nl: "",
        value_en: "",
        what_nl: "op de eerste regel: registreert een klacht namens iemand; de tekst na de opdrachten is de klacht",
        what_en: "on the first line: registers a complaint on someone's behalf; the text after the commands is the complaint",
        example_nl: "#nieuw",
        example_en: "#new",
    },
    Spec {
        name: CommandName::Name,
        nl: "naam",
        en: "name",
        value_nl: "<naam van de klager> (alleen na #nieuw)",
        value_en: "<complainant's name> (only after #new)",
        what_nl: "naam van de klager",
        what_en: "the complainant's name",
        example_nl: "#naam Jan Jansen",
        example_en: "#name Jan Jansen",
    },
    Spec {
        name: CommandName::Email,
        nl: "email",
        en: "email",
        value_nl: "<e-mailadres van de klager> (alleen na #nieuw)",
        value_en: "<complainant's email address> (only after #new)",
        what_nl: "e-mailadres van de klager",
        what_en: "the complainant's email address",
        example_nl: "#email jan@example.nl",
        example_en: "#email jan@example.nl",
    },
    Spec {
        name: CommandName::Channel,
        nl: "kanaal",
        en: "channel",
        value_nl: "telefoon | brief | balie | intern (alleen na #nieuw)",
        value_en: "phone | letter | desk | internal (only after #new)",
        what_nl: "hoe de klacht binnenkwam",
        what_en: "how the complaint reached us",
        example_nl: "#kanaal telefoon",
        example_en: "#channel phone",
    },
];

impl CommandName {
    fn spec(self) -> &'static Spec {
        // SPECS lists every name; the fallback is never taken but must not panic.
        SPECS.iter().find(|s| s.name == self).unwrap_or(&SPECS[0])
    }

    /// `#nl` or `#en` name.
    pub fn written(self, lang: &str) -> String {
        let s = self.spec();
        if lang.eq_ignore_ascii_case("en") {
            format!("#{}", s.en)
        } else {
            format!("#{}", s.nl)
        }
    }

    /// How to write it: `#ernst ernstig | normaal (#severity serious | normal)`.
    pub fn usage(self, lang: &str) -> String {
        let s = self.spec();
        let (name, value, other, other_value) = if lang.eq_ignore_ascii_case("en") {
            (s.en, s.value_en, s.nl, s.value_nl)
        } else {
            (s.nl, s.value_nl, s.en, s.value_en)
        };
        let main = format!("#{name} {value}").trim_end().to_string();
        if name == other {
            main
        } else {
            format!("{main} (#{other} {other_value})")
                .replace(" )", ")")
                .to_string()
        }
    }

    fn lookup(name: &str) -> Option<CommandName> {
        let n = name.to_lowercase();
        SPECS
            .iter()
            .find(|s| s.nl == n || s.en == n)
            .map(|s| s.name)
    }

    /// Block commands take the text below when written alone on their line.
    fn takes_block(self) -> bool {
        matches!(
            self,
            CommandName::Solution | CommandName::Note | CommandName::Reply | CommandName::Measure
        )
    }

    fn intake_field(self) -> bool {
        matches!(
            self,
            CommandName::Name | CommandName::Email | CommandName::Channel
        )
    }

    /// Commands that make sense while registering a new complaint.
    fn allowed_in_intake(self) -> bool {
        matches!(
            self,
            CommandName::Assign
                | CommandName::Category
                | CommandName::Severity
                | CommandName::Kind
                | CommandName::Nature
                | CommandName::Note
                | CommandName::Link
                | CommandName::Name
                | CommandName::Email
                | CommandName::Channel
        )
    }

    /// Commands that may be given several times with different values.
    fn repeatable(self) -> bool {
        matches!(
            self,
            CommandName::Note
                | CommandName::Link
                | CommandName::Done
                | CommandName::Measure
                | CommandName::Help
        )
    }
}

impl fmt::Display for CommandName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written("nl"))
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandErrorKind {
    /// `#name` is no command; `suggestion` is a close one.
    Unknown {
        name: String,
        suggestion: Option<CommandName>,
    },
    MissingValue(CommandName),
    /// The value cannot be read as what the command takes.
    InvalidValue(CommandName),
    /// The value is well-formed but not one this complaint or procedure allows.
    NotAllowed {
        command: CommandName,
        allowed: Vec<String>,
    },
    /// `#behandelaar` names an address that is not a staff member's.
    NotStaff,
    /// `#verleng` and `#heropen` need a reason.
    MissingReason(CommandName),
    /// `#klaar oordeel` needs the complainant's verdict.
    MissingVerdict,
    TakesNoValue(CommandName),
    ControlCharacter(CommandName),
    TooLong {
        command: CommandName,
        max: usize,
    },
    /// Given before, with another value (or contradicting another command) on `first_line`.
    Conflict {
        command: CommandName,
        first_line: usize,
    },
    /// `#nieuw` must be the first line.
    NewNotFirst,
    /// `#naam`, `#email`, `#kanaal` only after `#nieuw`.
    IntakeOnly(CommandName),
    /// A command that makes no sense while registering a new complaint.
    NotInIntake(CommandName),
    /// `#nieuw` without the complaint's text below the commands.
    EmptyIntake,
    /// `#nieuw` in a reply about an existing complaint.
    NewInReply,
    /// Read fine, but the complaint's rules refused it (the reason, in English, from the
    /// operation that checked it).
    Refused(String),
}

/// One problem, on a line of the staff mail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message("en"))]
pub struct CommandError {
    /// 1-based line number in the text given to [`parse_commands`].
    pub line: usize,
    /// The line as written, made safe to quote in a mail (one line, at most 200 characters).
    pub text: String,
    pub kind: CommandErrorKind,
}

impl CommandError {
    fn new(line: usize, raw: &str, kind: CommandErrorKind) -> Self {
        Self {
            line,
            text: single_line(raw, 200),
            kind,
        }
    }

    /// `#nieuw` on `line` of a reply about an existing complaint.
    pub fn not_in_reply(line: usize) -> Self {
        Self::new(line, "#nieuw", CommandErrorKind::NewInReply)
    }

    /// The command on `line` of `text` (as given to [`parse_commands`]) was refused by the
    /// complaint's rules, for `why`.
    pub fn refused(line: usize, text: &str, why: String) -> Self {
        let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
        let raw = normalised
            .split('\n')
            .nth(line.saturating_sub(1))
            .unwrap_or("");
        Self::new(line, raw, CommandErrorKind::Refused(why))
    }

    /// The message for the sender, in `nl` or `en`: the line, what is wrong, how to write it.
    pub fn message(&self, lang: &str) -> String {
        let en = lang.eq_ignore_ascii_case("en");
        let (what, how) = self.explain(en);
        let head = if en {
            format!("line {}: \"{}\": {what}", self.line, self.text)
        } else {
            format!("regel {}: \"{}\": {what}", self.line, self.text)
        };
        match how {
            Some(how) if en => format!("{head}. Write: {how}"),
            Some(how) => format!("{head}. Schrijf: {how}"),
            None => format!("{head}."),
        }
    }

    fn explain(&self, en: bool) -> (String, Option<String>) {
        let lang = if en { "en" } else { "nl" };
        let pick = |nl: String, e: String| if en { e } else { nl };
        use CommandErrorKind as K;
        match &self.kind {
            K::Unknown { name, suggestion } => {
                let what = pick(
                    format!("#{name} is geen opdracht"),
                    format!("#{name} is not a command"),
                );
                let how = match suggestion {
                    Some(s) => pick(
                        format!("{} (of zie #help)", s.usage(lang)),
                        format!("{} (or see #help)", s.usage(lang)),
                    ),
                    None => pick(
                        "#help voor alle opdrachten".to_string(),
                        "#help for all commands".to_string(),
                    ),
                };
                (what, Some(how))
            }
            K::MissingValue(c) => (
                pick(
                    format!("{} heeft een waarde nodig", c.written(lang)),
                    format!("{} needs a value", c.written(lang)),
                ),
                Some(c.usage(lang)),
            ),
            K::InvalidValue(c) => (
                pick(
                    format!("onbekende waarde voor {}", c.written(lang)),
                    format!("unknown value for {}", c.written(lang)),
                ),
                Some(c.usage(lang)),
            ),
            K::NotAllowed { command, allowed } => {
                let what = pick(
                    format!(
                        "deze waarde is hier niet toegestaan voor {}",
                        command.written(lang)
                    ),
                    format!(
                        "this value is not allowed here for {}",
                        command.written(lang)
                    ),
                );
                let how = if allowed.is_empty() {
                    command.usage(lang)
                } else {
                    format!("{} {}", command.written(lang), allowed.join(" | "))
                };
                (what, Some(how))
            }
            K::NotStaff => (
                pick(
                    "dit adres is niet van een medewerker".to_string(),
                    "this address is not a staff member's".to_string(),
                ),
                Some(CommandName::Assign.usage(lang)),
            ),
            K::MissingReason(c) => (
                pick(
                    format!("{} heeft een reden nodig", c.written(lang)),
                    format!("{} needs a reason", c.written(lang)),
                ),
                Some(c.spec_example(en)),
            ),
            K::MissingVerdict => (
                pick(
                    "bij het oordeel hoort akkoord of niet akkoord".to_string(),
                    "the verdict needs agree or disagree".to_string(),
                ),
                Some(pick(
                    "#klaar oordeel akkoord, of #klaar oordeel niet akkoord".to_string(),
                    "#done verdict agree, or #done verdict disagree".to_string(),
                )),
            ),
            K::TakesNoValue(c) => (
                pick(
                    format!("{} heeft geen waarde", c.written(lang)),
                    format!("{} takes no value", c.written(lang)),
                ),
                Some(c.written(lang)),
            ),
            K::ControlCharacter(c) => (
                pick(
                    format!("{} bevat een stuurteken", c.written(lang)),
                    format!("{} contains a control character", c.written(lang)),
                ),
                Some(c.usage(lang)),
            ),
            K::TooLong { command, max } => (
                pick(
                    format!(
                        "{} is te lang (ten hoogste {max} tekens)",
                        command.written(lang)
                    ),
                    format!(
                        "{} is too long (at most {max} characters)",
                        command.written(lang)
                    ),
                ),
                None,
            ),
            K::Conflict {
                command,
                first_line,
            } => (
                pick(
                    format!("{} spreekt regel {first_line} tegen", command.written(lang)),
                    format!("{} contradicts line {first_line}", command.written(lang)),
                ),
                Some(pick(
                    "één van de twee".to_string(),
                    "one of the two".to_string(),
                )),
            ),
            K::NewNotFirst => (
                pick(
                    "#nieuw moet op de eerste regel staan".to_string(),
                    "#new must be on the first line".to_string(),
                ),
                Some(pick(
                    "#nieuw op de eerste regel, dan #naam, #email, #kanaal, dan de klacht"
                        .to_string(),
                    "#new on the first line, then #name, #email, #channel, then the complaint"
                        .to_string(),
                )),
            ),
            K::IntakeOnly(c) => (
                pick(
                    format!("{} hoort alleen bij #nieuw", c.written(lang)),
                    format!("{} only goes with #new", c.written(lang)),
                ),
                Some(pick(
                    format!("#nieuw op de eerste regel, dan {}", c.usage(lang)),
                    format!("#new on the first line, then {}", c.usage(lang)),
                )),
            ),
            K::NotInIntake(c) => (
                pick(
                    format!(
                        "{} kan niet bij het registreren van een nieuwe klacht",
                        c.written(lang)
                    ),
                    format!(
                        "{} cannot be used when registering a new complaint",
                        c.written(lang)
                    ),
                ),
                Some(pick(
                    "stuur het in een antwoord op de bevestiging".to_string(),
                    "send it in a reply to the confirmation".to_string(),
                )),
            ),
            K::EmptyIntake => (
                pick(
                    "na #nieuw ontbreekt de tekst van de klacht".to_string(),
                    "the complaint's text is missing after #new".to_string(),
                ),
                Some(pick(
                    "#nieuw, #naam ..., een lege regel, dan de klacht".to_string(),
                    "#new, #name ..., a blank line, then the complaint".to_string(),
                )),
            ),
            K::NewInReply => (
                pick(
                    "#nieuw registreert een nieuwe klacht en hoort niet in een antwoord over een bestaande klacht".to_string(),
                    "#new registers a new complaint and does not belong in a reply about an existing one".to_string(),
                ),
                Some(pick(
                    "stuur een nieuw bericht aan uw persoonlijke intake-adres (zie #help)".to_string(),
                    "send a new mail to your personal intake address (see #help)".to_string(),
                )),
            ),
            K::Refused(why) => (
                pick(
                    format!("niet uitgevoerd: {why}"),
                    format!("not applied: {why}"),
                ),
                None,
            ),
        }
    }
}

impl CommandName {
    fn spec_example(self, en: bool) -> String {
        let s = self.spec();
        if en {
            s.example_en.to_string()
        } else {
            s.example_nl.to_string()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// `#name value` or `#name: value` at the start of a line (whitespace, a BOM or a zero-width
/// space before it are tolerated: mail clients insert them). `#` followed by anything but a
/// letter (`#1`, `# `, `##`) is text.
fn command_head(line: &str) -> Option<(&str, &str)> {
    let t =
        line.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}');
    let after = t.strip_prefix('#')?;
    if !after.starts_with(char::is_alphabetic) {
        return None;
    }
    let end = after
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(after.len());
    let name = &after[..end];
    let value = after[end..].trim_start();
    let value = value.strip_prefix(':').unwrap_or(value);
    Some((name, value.trim()))
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// Lines joined back, trailing whitespace off each, blank lines at both ends dropped.
fn join_block(lines: &[&str]) -> String {
    let start = lines.iter().position(|l| !is_blank(l));
    let end = lines.iter().rposition(|l| !is_blank(l));
    match (start, end) {
        (Some(s), Some(e)) => lines[s..=e]
            .iter()
            .map(|l| l.trim_end())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A character that must not be in a value: control characters (a tab is whitespace) and the
/// invisible direction controls that can make a value read differently than it is.
fn bad_char(c: char) -> bool {
    c != '\t' && is_unsafe_char(c)
}

/// One command as written, before its value is read.
struct Raw<'a> {
    line: usize,
    text: &'a str,
    name: CommandName,
    value: String,
    block: bool,
}

/// Reads the commands at the top of a staff reply. All or nothing: one unknown, malformed or
/// not-allowed command fails the whole mail, with an error for every problem found.
pub fn parse_commands(text: &str, ctx: &CommandContext) -> Result<Commands, Vec<CommandError>> {
    // One line end, so line numbers mean what the sender sees.
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalised.split('\n').collect();
    let n = lines.len();

    let first = lines.iter().position(|l| !is_blank(l));
    let Some(first) = first.filter(|&i| command_head(lines[i]).is_some()) else {
        return Ok(Commands {
            rest: join_block(&lines),
            late_commands: late_commands(&lines, 0),
            ..Commands::default()
        });
    };

    let mut errors = Vec::new();
    let mut raws = Vec::new();
    let mut i = first;
    let mut rest_start = n;
    while i < n {
        let line = lines[i];
        if is_blank(line) {
            i += 1;
            continue;
        }
        let Some((name_text, value)) = command_head(line) else {
            rest_start = i;
            break;
        };
        let Some(name) = CommandName::lookup(name_text) else {
            errors.push(CommandError::new(
                i + 1,
                line,
                CommandErrorKind::Unknown {
                    name: single_line(name_text, 50),
                    suggestion: suggest(name_text),
                },
            ));
            i += 1;
            continue;
        };
        // `#antwoord` always takes the text below (what is on its line starts it); the other
        // block commands only when alone on their line.
        let block = name == CommandName::Reply || (name.takes_block() && value.is_empty());
        if block {
            let mut j = i + 1;
            while j < n && command_head(lines[j]).is_none() {
                j += 1;
            }
            let mut body: Vec<&str> = Vec::with_capacity(j - i);
            if !value.is_empty() {
                body.push(value);
            }
            body.extend_from_slice(&lines[i + 1..j]);
            raws.push(Raw {
                line: i + 1,
                text: line,
                name,
                value: join_block(&body),
                block: true,
            });
            i = j;
        } else {
            raws.push(Raw {
                line: i + 1,
                text: line,
                name,
                value: value.trim_end().to_string(),
                block: false,
            });
            i += 1;
        }
    }
    let rest_lines = &lines[rest_start.min(n)..];

    // `#nieuw` counts only on the first line (of the text, blank lines aside).
    let intake_mode = raws
        .first()
        .is_some_and(|r| r.name == CommandName::New && r.line == first + 1);
    let mut intake: Option<Intake> = None;
    let mut commands: Vec<CommandLine> = Vec::new();
    // First line and value of each single-valued command, to catch contradictions.
    let mut seen: BTreeMap<CommandName, (usize, Command)> = BTreeMap::new();
    let mut seen_intake: BTreeMap<CommandName, usize> = BTreeMap::new();
    let mut done_seen: BTreeMap<Milestone, (usize, Option<Verdict>)> = BTreeMap::new();

    for (index, raw) in raws.iter().enumerate() {
        let err = |kind| CommandError::new(raw.line, raw.text, kind);
        if raw.name == CommandName::New {
            if index == 0 && intake_mode {
                if !raw.value.is_empty() {
                    errors.push(err(CommandErrorKind::TakesNoValue(CommandName::New)));
                }
                intake = Some(Intake {
                    line: raw.line,
                    name: None,
                    email: None,
                    channel: None,
                    text: String::new(),
                });
            } else {
                errors.push(err(CommandErrorKind::NewNotFirst));
            }
            continue;
        }
        if intake_mode && !raw.name.allowed_in_intake() {
            errors.push(err(CommandErrorKind::NotInIntake(raw.name)));
            continue;
        }
        if raw.name.intake_field() {
            let Some(draft) = intake.as_mut() else {
                errors.push(err(CommandErrorKind::IntakeOnly(raw.name)));
                continue;
            };
            if let Some(&first_line) = seen_intake.get(&raw.name) {
                errors.push(err(CommandErrorKind::Conflict {
                    command: raw.name,
                    first_line,
                }));
                continue;
            }
            seen_intake.insert(raw.name, raw.line);
            match read_intake_field(raw) {
                Ok(IntakeField::Name(v)) => draft.name = Some(v),
                Ok(IntakeField::Email(v)) => draft.email = Some(v),
                Ok(IntakeField::Channel(v)) => draft.channel = Some(v),
                Err(kind) => errors.push(err(kind)),
            }
            continue;
        }
        let command = match read_value(raw, ctx) {
            Ok(c) => c,
            Err(kind) => {
                errors.push(err(kind));
                continue;
            }
        };
        if let Command::Done(m, verdict) = &command {
            match done_seen.get(m) {
                Some((_, v)) if v == verdict => continue,
                Some(&(first_line, _)) => {
                    errors.push(err(CommandErrorKind::Conflict {
                        command: raw.name,
                        first_line,
                    }));
                    continue;
                }
                None => {
                    done_seen.insert(*m, (raw.line, *verdict));
                }
            }
        } else if raw.name == CommandName::Help {
            if seen.contains_key(&CommandName::Help) {
                continue;
            }
            seen.insert(CommandName::Help, (raw.line, Command::Help));
        } else if raw.name.repeatable() {
            if commands.iter().any(|c| c.command == command) {
                continue;
            }
        } else {
            match seen.get(&raw.name) {
                Some((_, c)) if *c == command => continue,
                Some(&(first_line, _)) => {
                    errors.push(err(CommandErrorKind::Conflict {
                        command: raw.name,
                        first_line,
                    }));
                    continue;
                }
                None => {
                    seen.insert(raw.name, (raw.line, command.clone()));
                }
            }
        }
        commands.push(CommandLine {
            line: raw.line,
            command,
        });
    }

    // Closing and reopening in one mail cannot both be meant.
    if let (Some((close_line, Command::Status(Status::Closed))), Some((reopen_line, _))) = (
        seen.get(&CommandName::Status),
        seen.get(&CommandName::Reopen),
    ) {
        let (line, first_line) = if close_line > reopen_line {
            (*close_line, *reopen_line)
        } else {
            (*reopen_line, *close_line)
        };
        let command = if line == *close_line {
            CommandName::Status
        } else {
            CommandName::Reopen
        };
        errors.push(CommandError::new(
            line,
            lines.get(line - 1).copied().unwrap_or(""),
            CommandErrorKind::Conflict {
                command,
                first_line,
            },
        ));
    }

    let mut rest = join_block(rest_lines);
    let mut late = Vec::new();
    if let Some(draft) = intake.as_mut() {
        if rest.is_empty() {
            errors.push(CommandError::new(
                draft.line,
                lines.get(draft.line - 1).copied().unwrap_or(""),
                CommandErrorKind::EmptyIntake,
            ));
        }
        draft.text = std::mem::take(&mut rest);
    } else {
        late = late_commands(&lines, rest_start);
    }

    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(errors);
    }
    Ok(Commands {
        intake,
        commands,
        rest,
        late_commands: late,
    })
}

/// Lines from `from` on that start like a known command.
fn late_commands(lines: &[&str], from: usize) -> Vec<usize> {
    lines
        .iter()
        .enumerate()
        .skip(from)
        .filter(|(_, l)| {
            command_head(l).is_some_and(|(name, _)| CommandName::lookup(name).is_some())
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// A known command name within two edits of what was written (`#categori`, `#stauts`).
fn suggest(written: &str) -> Option<CommandName> {
    let w: Vec<char> = written.to_lowercase().chars().collect();
    if w.len() > 40 {
        return None;
    }
    SPECS
        .iter()
        .flat_map(|s| [(s.nl, s.name), (s.en, s.name)])
        .map(|(n, name)| (edit_distance(&w, &n.chars().collect::<Vec<_>>()), name))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

enum IntakeField {
    Name(String),
    Email(EmailAddress),
    Channel(Channel),
}

fn read_intake_field(raw: &Raw) -> Result<IntakeField, CommandErrorKind> {
    let v = checked(raw, MAX_LABEL_CHARS)?;
    match raw.name {
        CommandName::Name => Ok(IntakeField::Name(v.to_string())),
        CommandName::Email => read_address(v)
            .map(IntakeField::Email)
            .ok_or(CommandErrorKind::InvalidValue(raw.name)),
        _ => Channel::parse(v)
            .map(IntakeField::Channel)
            .ok_or(CommandErrorKind::InvalidValue(raw.name)),
    }
}

/// The value, checked for presence, control characters and length.
fn checked<'a>(raw: &'a Raw, max: usize) -> Result<&'a str, CommandErrorKind> {
    let v = raw.value.as_str();
    if v.is_empty() {
        return Err(
            if matches!(raw.name, CommandName::Extend | CommandName::Reopen) {
                CommandErrorKind::MissingReason(raw.name)
            } else {
                CommandErrorKind::MissingValue(raw.name)
            },
        );
    }
    if v.chars().any(|c| bad_char(c) && !(raw.block && c == '\n')) {
        return Err(CommandErrorKind::ControlCharacter(raw.name));
    }
    if v.chars().count() > max {
        return Err(CommandErrorKind::TooLong {
            command: raw.name,
            max,
        });
    }
    Ok(v)
}

/// An address as staff paste it: bare, in angle brackets, after a name, or as Outlook's plain
/// text renders a link (`jan@x.nl<mailto:jan@x.nl>`).
fn read_address(v: &str) -> Option<EmailAddress> {
    let inner = match (v.rfind('<'), v.ends_with('>')) {
        (Some(open), true) => &v[open + 1..v.len() - 1],
        _ => v,
    };
    let inner = inner.trim();
    let inner = inner
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("mailto:"))
        .map(|_| &inner[7..])
        .unwrap_or(inner);
    EmailAddress::parse(inner).ok()
}

fn read_value(raw: &Raw, ctx: &CommandContext) -> Result<Command, CommandErrorKind> {
    use CommandErrorKind as K;
    let name = raw.name;
    let invalid = || K::InvalidValue(name);
    if name == CommandName::Help {
        // A topic after #help is harmless; the whole reference is sent.
        return Ok(Command::Help);
    }
    let max = if raw.block {
        MAX_BLOCK_CHARS
    } else if matches!(name, CommandName::Category) {
        MAX_LABEL_CHARS
    } else {
        MAX_LINE_VALUE_CHARS
    };
    let v = checked(raw, max)?;
    Ok(match name {
        CommandName::Assign => {
            let lower = normalise_word(v);
            if lower == "ik" || lower == "me" || lower == "mij" {
                Command::Assign(Assignee::Me)
            } else {
                let a = read_address(v).ok_or_else(invalid)?;
                if let Some(staff) = &ctx.staff
                    && !staff.iter().any(|s| s.mailbox_key() == a.mailbox_key())
                {
                    return Err(K::NotStaff);
                }
                Command::Assign(Assignee::Address(a))
            }
        }
        CommandName::Category => match &ctx.categories {
            Some(list) => {
                let wanted = normalise_word(v);
                let found = list.iter().find(|c| normalise_word(c) == wanted);
                match found {
                    Some(c) => Command::Category(c.clone()),
                    None => {
                        return Err(K::NotAllowed {
                            command: name,
                            allowed: list.clone(),
                        });
                    }
                }
            }
            None => Command::Category(v.to_string()),
        },
        CommandName::Severity => Command::Severity(Severity::parse(v).ok_or_else(invalid)?),
        CommandName::Kind => {
            let kind = Kind::parse(v).ok_or_else(invalid)?;
            if !ctx.kinds.is_empty()
                && !ctx
                    .kinds
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(kind.as_str()))
            {
                return Err(K::NotAllowed {
                    command: name,
                    allowed: ctx
                        .kinds
                        .iter()
                        .map(|k| {
                            Kind::parse(k)
                                .map(|k| format!("{} ({})", k.label("nl"), k.label("en")))
                                .unwrap_or_else(|| k.clone())
                        })
                        .collect(),
                });
            }
            Command::Kind(kind)
        }
        CommandName::Nature => Command::Nature(Nature::parse(v).ok_or_else(invalid)?),
        CommandName::Cause => Command::Cause(v.to_string()),
        CommandName::Solution => Command::Solution(v.to_string()),
        CommandName::Agreement => match normalise_word(v).as_str() {
            "ja" | "yes" => Command::Agreement(true),
            "nee" | "no" => Command::Agreement(false),
            _ => return Err(invalid()),
        },
        CommandName::Extend => {
            let (period, reason) = Period::parse_prefix(v).ok_or_else(invalid)?;
            let reason = reason
                .trim_start_matches(|c: char| {
                    c.is_whitespace()
                        || matches!(c, ',' | ':' | ';' | '-' | '\u{2013}' | '\u{2014}')
                })
                .trim();
            if reason.is_empty() {
                return Err(K::MissingReason(name));
            }
            Command::Extend {
                period,
                reason: reason.to_string(),
            }
        }
        CommandName::Note => Command::Note(v.to_string()),
        CommandName::Reply => Command::Reply(v.to_string()),
        CommandName::Done => read_done(v, ctx)?,
        CommandName::Status => Command::Status(Status::parse(v).ok_or_else(invalid)?),
        CommandName::Reopen => Command::Reopen(v.to_string()),
        CommandName::Measure => Command::Measure(v.to_string()),
        CommandName::Link => {
            let r = v.trim_matches(|c: char| matches!(c, '[' | ']') || c.is_whitespace());
            Command::Link(ComplaintRef::parse(r).map_err(|_| invalid())?)
        }
        // Handled by the caller; kept total so a new name cannot panic.
        CommandName::Help
        | CommandName::New
        | CommandName::Name
        | CommandName::Email
        | CommandName::Channel => return Err(invalid()),
    })
}

/// The short words staff write for a milestone (`#klaar oplossing` sends the solution mail).
fn short_milestone_names(m: Milestone) -> &'static [&'static str] {
    match m {
        Milestone::Acknowledged => &["ontvangstbevestiging", "acknowledgement"],
        Milestone::HandlerKnown => &["behandelaar", "handler"],
        Milestone::ProcedureExplained => &["uitleg", "procedure", "explanation"],
        Milestone::FirstReaction => &["reactie", "reaction"],
        Milestone::SolutionProposed => &["oplossing", "voorstel", "solution", "proposal"],
        Milestone::Verdict => &["oordeel"],
        Milestone::Handled => &["afhandeling", "afgehandeld", "handled"],
        Milestone::FollowUp => &["nazorg", "follow up"],
        Milestone::Closed => &["gesloten", "closed"],
        Milestone::Received | Milestone::Purged => &[],
    }
}

/// `#klaar <milestone> [verdict]`: the milestone by id (`first_reaction`, `first reaction`) or
/// by its Dutch or English label, longest match first so `oordeel van de klager` is one name.
fn read_done(v: &str, ctx: &CommandContext) -> Result<Command, CommandErrorKind> {
    use CommandErrorKind as K;
    let name = CommandName::Done;
    let wanted = normalise_word(&v.replace(['_', '-'], " "));
    let mut best: Option<(usize, Milestone)> = None;
    for m in Milestone::ALL {
        let short = short_milestone_names(m).iter().map(|s| s.to_string());
        for candidate in [
            m.as_str().replace('_', " "),
            m.label("nl").replace('-', " "),
            m.label("en").replace('-', " "),
        ]
        .into_iter()
        .chain(short)
        {
            if candidate.is_empty() {
                continue;
            }
            let matches = wanted == candidate
                || wanted
                    .strip_prefix(&candidate)
                    .is_some_and(|r| r.starts_with([' ', ':', ',']));
            if matches && best.is_none_or(|(len, _)| candidate.len() > len) {
                best = Some((candidate.len(), m));
            }
        }
    }
    let allowed = || {
        ctx_milestones(ctx)
            .into_iter()
            .map(|m| format!("{} ({})", m.label("nl"), m.as_str()))
            .collect::<Vec<_>>()
    };
    let Some((len, milestone)) = best else {
        return Err(K::NotAllowed {
            command: name,
            allowed: allowed(),
        });
    };
    if !ctx_milestones(ctx).contains(&milestone) {
        return Err(K::NotAllowed {
            command: name,
            allowed: allowed(),
        });
    }
    let remainder = wanted[len..].trim_start_matches([' ', ':', ',']).trim();
    let verdict = if remainder.is_empty() {
        None
    } else {
        Some(Verdict::parse(remainder).ok_or(K::InvalidValue(name))?)
    };
    match (milestone, verdict) {
        (Milestone::Verdict, None) => Err(K::MissingVerdict),
        (Milestone::Verdict, v) => Ok(Command::Done(milestone, v)),
        (_, Some(_)) => Err(K::InvalidValue(name)),
        (m, None) => Ok(Command::Done(m, None)),
    }
}

/// The milestones staff may complete: the procedure's, without those only the engine completes
/// (receipt is registration, deletion is retention).
fn ctx_milestones(ctx: &CommandContext) -> Vec<Milestone> {
    let base: Vec<Milestone> = if ctx.milestones.is_empty() {
        Milestone::ALL.to_vec()
    } else {
        ctx.milestones.clone()
    };
    base.into_iter()
        .filter(|m| !matches!(m, Milestone::Received | Milestone::Purged))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reference texts
// ---------------------------------------------------------------------------------------------

/// The command reference: printed by `klachtd commands` and sent as the answer to `#help`.
pub fn reference_text(lang: &str) -> String {
    let en = lang.eq_ignore_ascii_case("en");
    let mut out = String::new();
    if en {
        out.push_str(
            "Commands for staff\n\
             ==================\n\n\
             Reply to a mail about a complaint and write the commands at the top of your text,\n\
             one per line (blank lines in between are fine). Names and values may be Dutch or\n\
             English, in any case; a colon after the name is optional (#category: Planning).\n\
             All commands of a mail are applied together, or none: if one cannot be read, you\n\
             get an answer naming the line and nothing is changed. A reply without commands is\n\
             recorded as an internal note.\n\n",
        );
    } else {
        out.push_str(
            "Opdrachten voor medewerkers\n\
             ===========================\n\n\
             Beantwoord een bericht over een klacht en zet de opdrachten bovenaan uw tekst, één\n\
             per regel (lege regels ertussen mogen). Namen en waarden mogen Nederlands of Engels\n\
             zijn, in hoofd- of kleine letters; een dubbele punt na de naam mag (#categorie: Planning).\n\
             Alle opdrachten van één bericht worden samen uitgevoerd, of geen: kan er één niet\n\
             gelezen worden, dan krijgt u antwoord met de regel en verandert er niets. Een\n\
             antwoord zonder opdrachten wordt vastgelegd als interne notitie.\n\n",
        );
    }
    let intake_names = [
        CommandName::New,
        CommandName::Name,
        CommandName::Email,
        CommandName::Channel,
    ];
    let entry = |out: &mut String, s: &Spec| {
        let (name, other, value, what, example) = if en {
            (s.en, s.nl, s.value_en, s.what_en, s.example_en)
        } else {
            (s.nl, s.en, s.value_nl, s.what_nl, s.example_nl)
        };
        let names = if name == other {
            format!("#{name}")
        } else {
            format!("#{name} (#{other})")
        };
        out.push_str(&format!("{names} {value}\n").replace(" \n", "\n"));
        out.push_str(&format!("    {what}\n"));
        for (i, line) in example.lines().enumerate() {
            let lead = if i == 0 {
                if en { "example: " } else { "voorbeeld: " }
            } else {
                "           "
            };
            out.push_str(&format!("    {lead}{line}\n"));
        }
    };
    for s in SPECS.iter().filter(|s| !intake_names.contains(&s.name)) {
        entry(&mut out, s);
    }
    if en {
        out.push_str(
            "\nPeriods for #extend: 4 weeks, 1 week, 10 working days, 3 days (Dutch: 4 weken,\n\
             10 werkdagen, 3 dagen), followed by the reason.\n\
             Milestones for #done (name or id):\n",
        );
    } else {
        out.push_str(
            "\nTermijnen bij #verleng: 4 weken, 1 week, 10 werkdagen, 3 dagen (Engels: 4 weeks,\n\
             10 working days, 3 days), gevolgd door de reden.\n\
             Mijlpalen bij #klaar (naam of id):\n",
        );
    }
    let milestones: Vec<String> = Milestone::ALL
        .iter()
        .filter(|m| !matches!(m, Milestone::Received | Milestone::Purged))
        .map(|m| format!("    {} ({})\n", m.label("nl"), m.as_str()))
        .collect();
    out.push_str(&milestones.concat());
    out.push('\n');
    if en {
        out.push_str(
            "Registering a complaint on someone's behalf\n\
             -------------------------------------------\n\
             Mail the service address (or your personal intake address) with #new on the first\n\
             line, then optionally #name, #email and #channel, then the complaint itself:\n\n",
        );
    } else {
        out.push_str(
            "Een klacht registreren namens iemand\n\
             ------------------------------------\n\
             Mail het klachtenadres (of uw persoonlijke intake-adres) met #nieuw op de eerste\n\
             regel, dan eventueel #naam, #email en #kanaal, dan de klacht zelf:\n\n",
        );
    }
    for name in intake_names {
        entry(&mut out, name.spec());
    }
    if en {
        out.push_str(
            "\nexample:\n    #new\n    #name Jan Jansen\n    #email jan@example.nl\n    #channel phone\n\n    Mr Jansen called: the bus did not come on Monday.\n",
        );
    } else {
        out.push_str(
            "\nvoorbeeld:\n    #nieuw\n    #naam Jan Jansen\n    #email jan@example.nl\n    #kanaal telefoon\n\n    Meneer Jansen belde: de bus kwam maandag niet.\n",
        );
    }
    out
}

/// The few most used commands, for the foot of the mails staff receive.
pub fn footer_text(lang: &str) -> String {
    if lang.eq_ignore_ascii_case("en") {
        "Commands (at the top of your reply, one per line):\n\
         #assign me   #note <text>   #category <category>   #severity serious\n\
         #reply  (the text below goes to the complainant)\n\
         #done <milestone>   #status closed   #help (all commands)"
            .to_string()
    } else {
        "Opdrachten (bovenaan uw antwoord, één per regel):\n\
         #behandelaar ik   #notitie <tekst>   #categorie <categorie>   #ernst ernstig\n\
         #antwoord  (de tekst eronder gaat naar de klager)\n\
         #klaar <mijlpaal>   #status gesloten   #help (alle opdrachten)"
            .to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// The complainant's answers
// ---------------------------------------------------------------------------------------------

/// The complainant's verdict on a proposed solution, read from a plain-text answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictReading {
    Agree,
    Disagree,
    /// Anything we cannot be sure of: a person reads it.
    Unclear,
}

const AGREE_WORDS: &[&str] = &["akkoord", "eens", "agree", "agreed", "ja", "yes"];
const DISAGREE_WORDS: &[&str] = &["oneens", "disagree", "nee", "neen", "no"];
const NEGATORS: &[&str] = &[
    "niet", "not", "geen", "nooit", "never", "don't", "dont", "do't", "doesn't", "didn't",
    "cannot", "can't",
];
/// Words allowed before the first verdict word: "ik ben het er (niet) mee eens", "I do agree".
const LEAD_FILLER: &[&str] = &[
    "ik",
    "ben",
    "het",
    "er",
    "mee",
    "ermee",
    "daarmee",
    "hiermee",
    "ga",
    "wij",
    "we",
    "zijn",
    "gaan",
    "i",
    "am",
    "do",
    "we're",
    "i'm",
    "are",
    "fully",
    "completely",
    "totally",
    "volledig",
    "helemaal",
    "geheel",
    "with",
    "this",
    "that",
    "it",
    "hereby",
    "hierbij",
];
/// Words that make an answer conditional or partial.
const HEDGES: &[&str] = &[
    "maar",
    "echter",
    "behalve",
    "alleen",
    "tenzij",
    "mits",
    "misschien",
    "wellicht",
    "deels",
    "gedeeltelijk",
    "half",
    "twijfel",
    "weet",
    "but",
    "however",
    "except",
    "unless",
    "only",
    "provided",
    "maybe",
    "perhaps",
    "partly",
    "partially",
    "sure",
    "although",
    "hoewel",
    "toch",
    "still",
    "yet",
];

/// How many words of the opening paragraph are looked at.
const OPENING_WORDS: usize = 40;

/// The opening paragraph (until the first blank line) as lower-case words, and whether it
/// holds a question mark.
fn opening_words(text: &str) -> (Vec<String>, bool) {
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut paragraph = Vec::new();
    for line in normalised.lines() {
        if line.trim().is_empty() {
            if paragraph.is_empty() {
                continue;
            }
            break;
        }
        paragraph.push(line);
    }
    let joined = paragraph.join(" ");
    let question = joined.contains('?');
    let words = joined
        .to_lowercase()
        .replace('\u{2019}', "'")
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\'').to_string())
        .filter(|w| !w.is_empty())
        .take(OPENING_WORDS)
        .collect();
    (words, question)
}

/// Reads "akkoord" / "niet akkoord" (and the like) from the first words of the complainant's
/// answer. Never guesses: both signals, a hedge ("ja, maar"), a question, a double negation,
/// or words before the answer make it [`VerdictReading::Unclear`].
pub fn read_verdict(new_text: &str) -> VerdictReading {
    let (words, question) = opening_words(new_text);
    if question || words.is_empty() {
        return VerdictReading::Unclear;
    }
    let mut signals: Vec<(usize, bool)> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if HEDGES.contains(&w.as_str()) {
            return VerdictReading::Unclear;
        }
        let agree = AGREE_WORDS.contains(&w.as_str());
        let disagree = DISAGREE_WORDS.contains(&w.as_str());
        if !agree && !disagree {
            continue;
        }
        // A negator up to three words before flips the word ("niet mee eens", "do not agree").
        let negated = words[i.saturating_sub(3)..i]
            .iter()
            .any(|p| NEGATORS.contains(&p.as_str()));
        if disagree && negated {
            // "niet oneens", "not disagree": a double negation is not an answer we trust.
            return VerdictReading::Unclear;
        }
        signals.push((i, agree && !negated));
    }
    let Some(&(first_index, polarity)) = signals.first() else {
        return VerdictReading::Unclear;
    };
    // The answer must be the first words: only filler and negators may come before it.
    let lead_ok = words[..first_index]
        .iter()
        .all(|w| LEAD_FILLER.contains(&w.as_str()) || NEGATORS.contains(&w.as_str()));
    if !lead_ok || signals.iter().any(|&(_, p)| p != polarity) {
        return VerdictReading::Unclear;
    }
    if polarity {
        VerdictReading::Agree
    } else {
        VerdictReading::Disagree
    }
}

/// A satisfaction score 1..=5 from the first words of an answer: `4`, `5/5`, `4 van de 5`,
/// `zeer tevreden`, `very dissatisfied`, `★★★★`. `None` when it is not clearly one of those.
pub fn read_satisfaction(new_text: &str) -> Option<u8> {
    let t = new_text.trim_start();
    let lower = t.to_lowercase();

    // Stars, as some clients and people write them.
    let stars = lower
        .chars()
        .take_while(|c| matches!(c, '★' | '⭐' | '*'))
        .count();
    if stars > 0 {
        let next = lower.chars().nth(stars);
        return ((1..=5).contains(&stars) && next.is_none_or(|c| c.is_whitespace()))
            .then_some(stars as u8);
    }

    if lower.starts_with(|c: char| c.is_ascii_digit()) {
        let digits = lower
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(lower.len());
        let value: u8 = lower[..digits].parse().ok()?;
        if !(1..=5).contains(&value) {
            return None;
        }
        let after = &lower[digits..];
        let mut chars = after.chars();
        let words_after: &str;
        match chars.next() {
            None => return Some(value),
            // 4.5 / 4,5 is no whole score.
            Some('.' | ',') if chars.next().is_some_and(|c| c.is_ascii_digit()) => return None,
            Some('/') => {
                let scale = after[1..].trim_start();
                let scale_digits = scale
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(scale.len());
                if &scale[..scale_digits] != "5" {
                    return None;
                }
                words_after = &scale[scale_digits..];
            }
            Some(c) if c.is_alphanumeric() => return None,
            Some(_) => {
                let rest = after.trim_start_matches(|c: char| !c.is_alphanumeric());
                // "4 van de 5", "4 out of 5", "4 uit 5": the scale must be 5.
                let scale_words: Vec<&str> = rest.split_whitespace().take(3).collect();
                let scale = match scale_words.as_slice() {
                    ["van", "de", n, ..]
                    | ["out", "of", n, ..]
                    | ["uit", n, ..]
                    | ["of", n, ..] => Some(*n),
                    _ => None,
                };
                match scale {
                    Some(n) if n.trim_end_matches(|c: char| !c.is_ascii_digit()) != "5" => {
                        return None;
                    }
                    Some(_) => words_after = "",
                    None => words_after = rest,
                }
            }
        }
        // A number followed by words that mean another score is a contradiction.
        return match satisfaction_words(
            words_after.trim_start_matches(|c: char| !c.is_alphanumeric()),
        ) {
            Some(word_value) if word_value != value => None,
            _ => Some(value),
        };
    }
    satisfaction_words(&lower)
}

/// `zeer tevreden` = 5 ... `zeer ontevreden` = 1, and English, as the first words.
fn satisfaction_words(lower: &str) -> Option<u8> {
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .take(3)
        .collect();
    let intensifier =
        |w: &str| matches!(w, "zeer" | "heel" | "erg" | "very" | "extremely" | "really");
    let positive = |w: &str| matches!(w, "tevreden" | "satisfied" | "happy");
    let negative = |w: &str| matches!(w, "ontevreden" | "dissatisfied" | "unsatisfied" | "unhappy");
    let neutral = |w: &str| matches!(w, "neutraal" | "neutral");
    match words.as_slice() {
        [i, w, ..] if intensifier(i) && positive(w) => Some(5),
        [i, w, ..] if intensifier(i) && negative(w) => Some(1),
        // "niet tevreden" = ontevreden; "niet ontevreden" is not an answer we trust.
        ["niet" | "not", w, ..] if positive(w) => Some(2),
        ["niet" | "not", ..] => None,
        [w, ..] if positive(w) => Some(4),
        [w, ..] if negative(w) => Some(2),
        [w, ..] if neutral(w) => Some(3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctx() -> CommandContext {
        CommandContext {
            sender: EmailAddress::parse("ruud@mzo.nl").unwrap(),
            staff: Some(vec![
                EmailAddress::parse("ruud@mzo.nl").unwrap(),
                EmailAddress::parse("anna@mzo.nl").unwrap(),
            ]),
            categories: Some(vec!["Planning".to_string(), "Vervoer".to_string()]),
            kinds: vec![
                "complaint".to_string(),
                "compliment".to_string(),
                "suggestion".to_string(),
                "tip".to_string(),
            ],
            milestones: vec![
                Milestone::Received,
                Milestone::Acknowledged,
                Milestone::FirstReaction,
                Milestone::SolutionProposed,
                Milestone::Verdict,
                Milestone::Handled,
                Milestone::Closed,
            ],
        }
    }

    fn one(text: &str) -> Command {
        let c = parse_commands(text, &ctx()).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
        assert_eq!(c.commands.len(), 1, "{text:?}: {c:?}");
        c.commands[0].command.clone()
    }

    fn errs(text: &str) -> Vec<CommandError> {
        match parse_commands(text, &ctx()) {
            Ok(c) => panic!("{text:?} parsed: {c:?}"),
            Err(e) => e,
        }
    }

    fn err_kind(text: &str) -> CommandErrorKind {
        let e = errs(text);
        assert_eq!(e.len(), 1, "{e:?}");
        e[0].kind.clone()
    }

    #[test]
    fn assign() {
        assert_eq!(one("#behandelaar ik"), Command::Assign(Assignee::Me));
        assert_eq!(one("#assign ME"), Command::Assign(Assignee::Me));
        let anna = EmailAddress::parse("anna@mzo.nl").unwrap();
        for text in [
            "#behandelaar anna@mzo.nl",
            "#Behandelaar: Anna@MZO.nl",
            "#assign <anna@mzo.nl>",
            "#assign Anna de Boer <anna@mzo.nl>",
            "#behandelaar anna@mzo.nl<mailto:anna@mzo.nl>",
            "#behandelaar mailto:anna@mzo.nl",
            "#behandelaar anna+klacht@mzo.nl",
        ] {
            let Command::Assign(Assignee::Address(a)) = one(text) else {
                panic!("{text}")
            };
            assert_eq!(a.mailbox_key(), anna.mailbox_key(), "{text}");
        }
        assert_eq!(Assignee::Me.resolve(&ctx().sender).as_str(), "ruud@mzo.nl");
        assert_eq!(
            err_kind("#behandelaar jan"),
            CommandErrorKind::InvalidValue(CommandName::Assign)
        );
        assert_eq!(
            err_kind("#behandelaar piet@elders.nl"),
            CommandErrorKind::NotStaff
        );
        // Without a staff list, any address.
        let mut c = ctx();
        c.staff = None;
        assert!(parse_commands("#assign piet@elders.nl", &c).is_ok());
    }

    #[test]
    fn category() {
        assert_eq!(
            one("#categorie: planning"),
            Command::Category("Planning".into())
        );
        assert_eq!(
            one("#category VERVOER."),
            Command::Category("Vervoer".into())
        );
        match err_kind("#categorie Catering") {
            CommandErrorKind::NotAllowed { allowed, .. } => {
                assert_eq!(allowed, vec!["Planning", "Vervoer"])
            }
            k => panic!("{k:?}"),
        }
        let mut c = ctx();
        c.categories = None;
        let parsed = parse_commands("#categorie  Catering en eten  ", &c).unwrap();
        assert_eq!(
            parsed.commands[0].command,
            Command::Category("Catering en eten".into())
        );
        assert!(matches!(
            parse_commands(&format!("#categorie {}", "x".repeat(201)), &c).unwrap_err()[0].kind,
            CommandErrorKind::TooLong { max: 200, .. }
        ));
    }

    #[test]
    fn enum_values() {
        assert_eq!(one("#ernst ernstig"), Command::Severity(Severity::Serious));
        assert_eq!(one("#ERNST: Normaal"), Command::Severity(Severity::Normal));
        assert_eq!(
            one("#severity serious"),
            Command::Severity(Severity::Serious)
        );
        assert_eq!(
            one("#severity normal!"),
            Command::Severity(Severity::Normal)
        );
        assert_eq!(
            err_kind("#ernst heel erg"),
            CommandErrorKind::InvalidValue(CommandName::Severity)
        );
        assert_eq!(one("#soort klacht"), Command::Kind(Kind::Complaint));
        assert_eq!(one("#kind suggestion"), Command::Kind(Kind::Suggestion));
        assert_eq!(one("#soort suggestie"), Command::Kind(Kind::Suggestion));
        assert_eq!(one("#soort Tip"), Command::Kind(Kind::Tip));
        assert_eq!(one("#kind compliment"), Command::Kind(Kind::Compliment));
        // The procedure has no questions.
        match err_kind("#soort vraag") {
            CommandErrorKind::NotAllowed { allowed, .. } => {
                assert!(
                    allowed.contains(&"suggestie (suggestion)".to_string()),
                    "{allowed:?}"
                )
            }
            k => panic!("{k:?}"),
        }
        let mut c = ctx();
        c.kinds.clear();
        assert_eq!(
            parse_commands("#kind question", &c).unwrap().commands[0].command,
            Command::Kind(Kind::Question)
        );
        assert_eq!(one("#aard incident"), Command::Nature(Nature::Incident));
        assert_eq!(
            one("#aard structureel"),
            Command::Nature(Nature::Structural)
        );
        assert_eq!(
            one("#nature structural"),
            Command::Nature(Nature::Structural)
        );
        assert_eq!(
            err_kind("#aard vaak"),
            CommandErrorKind::InvalidValue(CommandName::Nature)
        );
        assert_eq!(one("#status open"), Command::Status(Status::Open));
        assert_eq!(one("#status gesloten"), Command::Status(Status::Closed));
        assert_eq!(one("#status Closed"), Command::Status(Status::Closed));
        assert_eq!(
            err_kind("#status dicht"),
            CommandErrorKind::InvalidValue(CommandName::Status)
        );
        assert_eq!(one("#overeenstemming ja"), Command::Agreement(true));
        assert_eq!(one("#overeenstemming Nee"), Command::Agreement(false));
        assert_eq!(one("#agreement yes"), Command::Agreement(true));
        assert_eq!(one("#agreement no"), Command::Agreement(false));
        assert_eq!(
            err_kind("#agreement misschien"),
            CommandErrorKind::InvalidValue(CommandName::Agreement)
        );
    }

    #[test]
    fn text_values() {
        assert_eq!(
            one("#oorzaak rooster te laat   "),
            Command::Cause("rooster te laat".into())
        );
        assert_eq!(one("#cause: late"), Command::Cause("late".into()));
        assert_eq!(
            one("#oplossing nieuwe afspraak"),
            Command::Solution("nieuwe afspraak".into())
        );
        assert_eq!(
            one("#notitie teruggebeld"),
            Command::Note("teruggebeld".into())
        );
        assert_eq!(one("#note: called"), Command::Note("called".into()));
        assert_eq!(
            one("#heropen probleem is terug"),
            Command::Reopen("probleem is terug".into())
        );
        assert_eq!(
            err_kind("#heropen"),
            CommandErrorKind::MissingReason(CommandName::Reopen)
        );
        assert_eq!(
            err_kind("#oorzaak"),
            CommandErrorKind::MissingValue(CommandName::Cause)
        );
        assert_eq!(
            err_kind("#cause:"),
            CommandErrorKind::MissingValue(CommandName::Cause)
        );
        assert!(matches!(
            err_kind(&format!("#oorzaak {}", "x".repeat(2001))),
            CommandErrorKind::TooLong { max: 2000, .. }
        ));
        assert!(parse_commands(&format!("#oorzaak {}", "x".repeat(2000)), &ctx()).is_ok());
    }

    #[test]
    fn control_characters_are_refused() {
        for text in [
            "#oorzaak rooster\u{7}",
            "#notitie a\u{1b}[2Jb",
            "#oorzaak evil\u{202e}txt",
            "#antwoord\nBeste\u{0} heer",
        ] {
            assert!(
                matches!(err_kind(text), CommandErrorKind::ControlCharacter(_)),
                "{text:?}"
            );
        }
        // A tab is whitespace.
        assert_eq!(one("#oorzaak a\tb"), Command::Cause("a\tb".into()));
    }

    #[test]
    fn blocks_take_the_text_below() {
        let text = "#oplossing\nWe bieden een nieuwe afspraak aan.\n\nOp dinsdag.   \n\n#status gesloten\n";
        let c = parse_commands(text, &ctx()).unwrap();
        assert_eq!(
            c.commands,
            vec![
                CommandLine {
                    line: 1,
                    command: Command::Solution(
                        "We bieden een nieuwe afspraak aan.\n\nOp dinsdag.".into()
                    )
                },
                CommandLine {
                    line: 6,
                    command: Command::Status(Status::Closed)
                },
            ]
        );
        assert_eq!(c.rest, "");

        // #antwoord: what is on its line starts the answer, the text below continues it.
        let c = parse_commands(
            "#behandelaar ik\n#antwoord Geachte heer Jansen,\n\nHierbij ons antwoord.\n\nMet vriendelijke groet,\nRuud",
            &ctx(),
        )
        .unwrap();
        assert_eq!(
            c.commands[1].command,
            Command::Reply(
                "Geachte heer Jansen,\n\nHierbij ons antwoord.\n\nMet vriendelijke groet,\nRuud"
                    .into()
            )
        );
        assert_eq!(
            err_kind("#antwoord\n\n   \n"),
            CommandErrorKind::MissingValue(CommandName::Reply)
        );
        let c = parse_commands("#notitie\nregel 1\nregel 2", &ctx()).unwrap();
        assert_eq!(
            c.commands[0].command,
            Command::Note("regel 1\nregel 2".into())
        );
        // A typo after a block is an error, never part of the text sent to the complainant.
        let e = errs("#antwoord\nBeste meneer,\n#notite intern");
        assert_eq!(e[0].line, 3);
        assert!(matches!(e[0].kind, CommandErrorKind::Unknown { .. }));
        // `#1` in the answer is text.
        let c = parse_commands("#antwoord\nZie punt\n#1 hieronder", &ctx()).unwrap();
        assert_eq!(
            c.commands[0].command,
            Command::Reply("Zie punt\n#1 hieronder".into())
        );
        let big = format!("#antwoord\n{}", "x".repeat(MAX_BLOCK_CHARS + 1));
        assert!(matches!(
            err_kind(&big),
            CommandErrorKind::TooLong {
                max: MAX_BLOCK_CHARS,
                ..
            }
        ));
    }

    #[test]
    fn extend() {
        let cases = [
            (
                "#verleng 4 weken advies commissie",
                4,
                Unit::Weeks,
                "advies commissie",
            ),
            (
                "#extend 2 weeks: waiting for advice",
                2,
                Unit::Weeks,
                "waiting for advice",
            ),
            (
                "#verleng 10 werkdagen, ziekte",
                10,
                Unit::WorkingDays,
                "ziekte",
            ),
            (
                "#extend 10 working days - illness",
                10,
                Unit::WorkingDays,
                "illness",
            ),
            ("#verleng 1 week vakantie", 1, Unit::Weeks, "vakantie"),
            ("#verleng 3 dagen overleg", 3, Unit::CalendarDays, "overleg"),
            ("#extend 1 day reason", 1, Unit::CalendarDays, "reason"),
            ("#verleng 1 werkdag x", 1, Unit::WorkingDays, "x"),
            ("#verleng 4weken x", 4, Unit::Weeks, "x"),
            ("#VERLENG 4 Weken Advies", 4, Unit::Weeks, "Advies"),
        ];
        for (text, amount, unit, reason) in cases {
            assert_eq!(
                one(text),
                Command::Extend {
                    period: Period { amount, unit },
                    reason: reason.into()
                },
                "{text}"
            );
        }
        assert_eq!(
            err_kind("#verleng 4 weken"),
            CommandErrorKind::MissingReason(CommandName::Extend)
        );
        assert_eq!(
            err_kind("#verleng"),
            CommandErrorKind::MissingReason(CommandName::Extend)
        );
        for bad in [
            "#verleng vier weken x",
            "#verleng 4 maanden x",
            "#verleng 0 weken x",
            "#verleng 60 weken x",
            "#verleng 4 weekend x",
            "#verleng weken 4 x",
        ] {
            assert_eq!(
                err_kind(bad),
                CommandErrorKind::InvalidValue(CommandName::Extend),
                "{bad}"
            );
        }
        assert_eq!(
            Period {
                amount: 1,
                unit: Unit::Weeks
            }
            .describe("nl"),
            "1 week"
        );
        assert_eq!(
            Period {
                amount: 10,
                unit: Unit::WorkingDays
            }
            .describe("en"),
            "10 working days"
        );
    }

    #[test]
    fn measure() {
        assert_eq!(
            one("#maatregel roosters een week vooraf mailen"),
            Command::Measure("roosters een week vooraf mailen".into())
        );
        assert_eq!(
            one("#Measure: mail timetables ahead"),
            Command::Measure("mail timetables ahead".into())
        );
    }

    #[test]
    fn done() {
        assert_eq!(
            one("#klaar first_reaction"),
            Command::Done(Milestone::FirstReaction, None)
        );
        assert_eq!(
            one("#klaar eerste reactie"),
            Command::Done(Milestone::FirstReaction, None)
        );
        assert_eq!(
            one("#done First reaction"),
            Command::Done(Milestone::FirstReaction, None)
        );
        assert_eq!(
            one("#klaar voorstel voor een oplossing"),
            Command::Done(Milestone::SolutionProposed, None)
        );
        assert_eq!(
            one("#klaar verdict akkoord"),
            Command::Done(Milestone::Verdict, Some(Verdict::Agree))
        );
        // The short words staff write.
        assert_eq!(
            one("#klaar oplossing"),
            Command::Done(Milestone::SolutionProposed, None)
        );
        assert_eq!(
            one("#done solution"),
            Command::Done(Milestone::SolutionProposed, None)
        );
        assert_eq!(
            one("#klaar afhandeling"),
            Command::Done(Milestone::Handled, None)
        );
        assert_eq!(
            one("#klaar gesloten"),
            Command::Done(Milestone::Closed, None)
        );
        assert_eq!(
            one("#klaar oordeel van de klager niet akkoord"),
            Command::Done(Milestone::Verdict, Some(Verdict::Disagree))
        );
        assert_eq!(
            one("#done verdict: disagree"),
            Command::Done(Milestone::Verdict, Some(Verdict::Disagree))
        );
        assert_eq!(
            one("#klaar oordeel oneens"),
            Command::Done(Milestone::Verdict, Some(Verdict::Disagree))
        );
        assert_eq!(err_kind("#klaar oordeel"), CommandErrorKind::MissingVerdict);
        assert_eq!(
            err_kind("#klaar oordeel misschien"),
            CommandErrorKind::InvalidValue(CommandName::Done)
        );
        assert_eq!(
            err_kind("#klaar eerste reactie akkoord"),
            CommandErrorKind::InvalidValue(CommandName::Done)
        );
        // Not in this procedure, unknown, or only the engine's.
        for bad in [
            "#klaar nazorg",
            "#klaar iets",
            "#klaar ontvangst",
            "#klaar purged",
        ] {
            assert!(
                matches!(err_kind(bad), CommandErrorKind::NotAllowed { .. }),
                "{bad}"
            );
        }
        // `handled` is not read as a prefix of something longer.
        assert!(matches!(
            err_kind("#klaar handledx"),
            CommandErrorKind::NotAllowed { .. }
        ));
        // Two milestones in one mail are fine; the same one twice differently is not.
        let c = parse_commands("#klaar eerste reactie\n#klaar afhandeling", &ctx()).unwrap();
        assert_eq!(c.commands.len(), 2);
        let e = errs("#klaar oordeel akkoord\n#klaar oordeel niet akkoord");
        assert_eq!(
            e[0].kind,
            CommandErrorKind::Conflict {
                command: CommandName::Done,
                first_line: 1
            }
        );
    }

    #[test]
    fn link_and_help() {
        assert_eq!(
            one("#koppel KL-2026-0003"),
            Command::Link(ComplaintRef::new("KL", 2026, 3))
        );
        assert_eq!(
            one("#link [kl-2026-0003]"),
            Command::Link(ComplaintRef::new("KL", 2026, 3))
        );
        assert_eq!(
            err_kind("#koppel 2026-3"),
            CommandErrorKind::InvalidValue(CommandName::Link)
        );
        let c = parse_commands(
            "#koppel KL-2026-0003\n#koppel KL-2026-0004\n#koppel KL-2026-0003",
            &ctx(),
        )
        .unwrap();
        assert_eq!(c.commands.len(), 2);
        assert_eq!(one("#help"), Command::Help);
        assert_eq!(one("#HELP"), Command::Help);
        assert_eq!(one("#help\n#help"), Command::Help);
        assert_eq!(one("#help verleng"), Command::Help);
    }

    #[test]
    fn no_commands_is_a_note() {
        let c = parse_commands("\n\nIk heb de klager gebeld.\nMorgen verder.\n", &ctx()).unwrap();
        assert!(c.commands.is_empty());
        assert_eq!(c.rest, "Ik heb de klager gebeld.\nMorgen verder.");
        assert_eq!(
            c.implicit_note(),
            Some("Ik heb de klager gebeld.\nMorgen verder.")
        );
        let empty = parse_commands("", &ctx()).unwrap();
        assert_eq!(empty, Commands::default());
        assert_eq!(empty.implicit_note(), None);
        // Commands under ordinary text are not applied, but reported.
        let c = parse_commands("Hoi,\n\n#status gesloten\n#onzin x", &ctx()).unwrap();
        assert!(c.commands.is_empty());
        assert_eq!(c.late_commands, vec![3]);
        // `#1` at the top is text.
        let c = parse_commands("#1 het rooster\n#2 de bus", &ctx()).unwrap();
        assert_eq!(c.implicit_note(), Some("#1 het rooster\n#2 de bus"));
    }

    #[test]
    fn block_ends_at_first_text_line_and_rest_is_kept() {
        let text = "\n#behandelaar ik\n\n#ernst: ernstig\nHet rooster was fout.\n#status gesloten\n\nGroet, Ruud";
        let c = parse_commands(text, &ctx()).unwrap();
        assert_eq!(
            c.commands,
            vec![
                CommandLine {
                    line: 2,
                    command: Command::Assign(Assignee::Me)
                },
                CommandLine {
                    line: 4,
                    command: Command::Severity(Severity::Serious)
                },
            ]
        );
        assert_eq!(
            c.rest,
            "Het rooster was fout.\n#status gesloten\n\nGroet, Ruud"
        );
        assert_eq!(c.late_commands, vec![6]);
        assert_eq!(c.implicit_note(), None);
    }

    #[test]
    fn line_ends_and_invisible_characters() {
        let c = parse_commands("#behandelaar ik\r\n#ernst ernstig\r\n\r\nTekst", &ctx()).unwrap();
        assert_eq!(c.commands.len(), 2);
        assert_eq!(c.commands[1].line, 2);
        assert_eq!(c.rest, "Tekst");
        let c = parse_commands("#behandelaar ik\r#ernst ernstig", &ctx()).unwrap();
        assert_eq!(c.commands[1].line, 2);
        let c = parse_commands("\u{feff}#ernst\u{a0}ernstig", &ctx()).unwrap();
        assert_eq!(c.commands[0].command, Command::Severity(Severity::Serious));
        let c = parse_commands("  #ernst   :   ernstig  ", &ctx()).unwrap();
        assert_eq!(c.commands[0].command, Command::Severity(Severity::Serious));
    }

    #[test]
    fn all_or_nothing_with_every_error() {
        let e = errs(
            "#behandelaar ik\n#ernst heel\n#categori Planning\n#status gesloten\n#status open",
        );
        let lines: Vec<usize> = e.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 5]);
        assert_eq!(e[0].text, "#ernst heel");
        assert_eq!(
            e[1].kind,
            CommandErrorKind::Unknown {
                name: "categori".into(),
                suggestion: Some(CommandName::Category)
            }
        );
        assert_eq!(
            e[2].kind,
            CommandErrorKind::Conflict {
                command: CommandName::Status,
                first_line: 4
            }
        );
    }

    #[test]
    fn duplicates() {
        // The same command twice with the same value is harmless.
        let c = parse_commands(
            "#status gesloten\n#status Gesloten\n#notitie a\n#notitie b",
            &ctx(),
        )
        .unwrap();
        assert_eq!(c.commands.len(), 3);
        for text in [
            "#ernst ernstig\n#severity normal",
            "#behandelaar ik\n#behandelaar anna@mzo.nl",
            "#categorie planning\n#categorie vervoer",
            "#oorzaak a\n#oorzaak b",
            "#antwoord\na\n#antwoord\nb",
        ] {
            assert!(
                matches!(
                    err_kind(text),
                    CommandErrorKind::Conflict { first_line: 1, .. }
                ),
                "{text}"
            );
        }
        // Closing and reopening contradict each other, in either order.
        for text in [
            "#status gesloten\n#heropen reden",
            "#heropen reden\n#status gesloten",
        ] {
            let e = errs(text);
            assert_eq!(e[0].line, 2, "{text}");
            assert!(matches!(
                e[0].kind,
                CommandErrorKind::Conflict { first_line: 1, .. }
            ));
        }
        assert!(parse_commands("#heropen reden\n#status open", &ctx()).is_ok());
    }

    #[test]
    fn unknown_commands() {
        match err_kind("#stauts gesloten") {
            CommandErrorKind::Unknown { name, suggestion } => {
                assert_eq!(name, "stauts");
                assert_eq!(suggestion, Some(CommandName::Status));
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(
            err_kind("#metoo"),
            CommandErrorKind::Unknown {
                name: "metoo".into(),
                suggestion: None
            }
        );
        // A long name does not make the suggestion search slow or wrong.
        let long = format!("#{}", "a".repeat(10_000));
        assert!(matches!(
            err_kind(&long),
            CommandErrorKind::Unknown {
                suggestion: None,
                ..
            }
        ));
    }

    #[test]
    fn intake_on_behalf() {
        let text = "#nieuw\n#naam Jan Jansen\n#email jan@example.nl\n#kanaal telefoon\n#behandelaar ik\n\nMeneer Jansen belde: de bus kwam niet.\nHij is boos.";
        let c = parse_commands(text, &ctx()).unwrap();
        assert_eq!(
            c.intake,
            Some(Intake {
                line: 1,
                name: Some("Jan Jansen".into()),
                email: Some(EmailAddress::parse("jan@example.nl").unwrap()),
                channel: Some(Channel::Phone),
                text: "Meneer Jansen belde: de bus kwam niet.\nHij is boos.".into(),
            })
        );
        assert_eq!(
            c.commands,
            vec![CommandLine {
                line: 5,
                command: Command::Assign(Assignee::Me)
            }]
        );
        assert_eq!(c.rest, "");
        assert_eq!(c.implicit_note(), None);

        let c = parse_commands("#new\n#channel desk\nComplaint text", &ctx()).unwrap();
        let intake = c.intake.unwrap();
        assert_eq!(intake.channel, Some(Channel::Desk));
        assert_eq!(intake.name, None);
        assert_eq!(intake.text, "Complaint text");
        for (word, channel) in [
            ("brief", Channel::Letter),
            ("letter", Channel::Letter),
            ("balie", Channel::Desk),
            ("intern", Channel::Internal),
            ("internal", Channel::Internal),
            ("phone", Channel::Phone),
        ] {
            let c = parse_commands(&format!("#nieuw\n#kanaal {word}\nx"), &ctx()).unwrap();
            assert_eq!(c.intake.unwrap().channel, Some(channel), "{word}");
        }
    }

    #[test]
    fn intake_errors() {
        assert_eq!(err_kind("#nieuw\n#naam Jan"), CommandErrorKind::EmptyIntake);
        assert_eq!(errs("#nieuw\n#naam Jan")[0].line, 1);
        assert_eq!(
            err_kind("#behandelaar ik\n#nieuw\nx"),
            CommandErrorKind::NewNotFirst
        );
        assert_eq!(
            err_kind("#naam Jan Jansen"),
            CommandErrorKind::IntakeOnly(CommandName::Name)
        );
        // The answer block also took the text, so the intake is empty as well.
        let e = errs("#nieuw\n#antwoord\nx");
        let kinds: Vec<_> = e.iter().map(|e| (e.line, e.kind.clone())).collect();
        assert_eq!(
            kinds,
            vec![
                (1, CommandErrorKind::EmptyIntake),
                (2, CommandErrorKind::NotInIntake(CommandName::Reply))
            ]
        );
        assert_eq!(
            err_kind("#nieuw\n#status gesloten\nx"),
            CommandErrorKind::NotInIntake(CommandName::Status)
        );
        assert_eq!(
            err_kind("#nieuw\n#kanaal duif\nx"),
            CommandErrorKind::InvalidValue(CommandName::Channel)
        );
        assert_eq!(
            err_kind("#nieuw\n#email jan\nx"),
            CommandErrorKind::InvalidValue(CommandName::Email)
        );
        assert_eq!(
            err_kind("#nieuw bus\nx"),
            CommandErrorKind::TakesNoValue(CommandName::New)
        );
        assert!(matches!(
            err_kind("#nieuw\n#naam a\n#naam b\nx"),
            CommandErrorKind::Conflict {
                command: CommandName::Name,
                first_line: 2
            }
        ));
    }

    #[test]
    fn error_messages_in_both_languages() {
        let e = &errs("#behandelaar ik\n#ernst heel erg")[0];
        assert_eq!(
            e.message("nl"),
            "regel 2: \"#ernst heel erg\": onbekende waarde voor #ernst. Schrijf: #ernst ernstig | normaal (#severity serious | normal)"
        );
        assert_eq!(
            e.message("en"),
            "line 2: \"#ernst heel erg\": unknown value for #severity. Write: #severity serious | normal (#ernst ernstig | normaal)"
        );
        assert_eq!(e.to_string(), e.message("en"));
        let e = &errs("#stauts x")[0];
        assert!(
            e.message("nl").contains("#stauts is geen opdracht"),
            "{}",
            e.message("nl")
        );
        assert!(e.message("nl").contains("#status open | gesloten"));
        let e = &errs("#categorie Eten")[0];
        assert!(
            e.message("en").contains("#category Planning | Vervoer"),
            "{}",
            e.message("en")
        );
        let e = &errs("#verleng 4 weken")[0];
        assert!(
            e.message("nl")
                .contains("#verleng 4 weken wachten op advies")
        );
        let e = &errs("#oorzaak \u{1b}[31mrood")[0];
        // The quoted line is made safe to mail back.
        assert!(!e.text.contains('\u{1b}'));
        assert!(!e.message("nl").contains('\u{1b}'));
        // Every kind renders in both languages without panicking and names the line.
        let kinds = vec![
            CommandErrorKind::Unknown {
                name: "x".into(),
                suggestion: None,
            },
            CommandErrorKind::MissingValue(CommandName::Cause),
            CommandErrorKind::InvalidValue(CommandName::Done),
            CommandErrorKind::NotAllowed {
                command: CommandName::Assign,
                allowed: vec![],
            },
            CommandErrorKind::MissingReason(CommandName::Reopen),
            CommandErrorKind::MissingVerdict,
            CommandErrorKind::NotStaff,
            CommandErrorKind::TakesNoValue(CommandName::New),
            CommandErrorKind::ControlCharacter(CommandName::Note),
            CommandErrorKind::TooLong {
                command: CommandName::Note,
                max: 5,
            },
            CommandErrorKind::Conflict {
                command: CommandName::Status,
                first_line: 1,
            },
            CommandErrorKind::NewNotFirst,
            CommandErrorKind::IntakeOnly(CommandName::Email),
            CommandErrorKind::NotInIntake(CommandName::Reply),
            CommandErrorKind::EmptyIntake,
        ];
        for kind in kinds {
            let e = CommandError::new(7, "#x", kind);
            assert!(
                e.message("nl").starts_with("regel 7: "),
                "{}",
                e.message("nl")
            );
            assert!(
                e.message("en").starts_with("line 7: "),
                "{}",
                e.message("en")
            );
            assert_ne!(e.message("nl"), e.message("en"));
        }
    }

    #[test]
    fn reference_and_footer() {
        for lang in ["nl", "en"] {
            let r = reference_text(lang);
            for s in SPECS {
                assert!(r.contains(&format!("#{}", s.nl)), "{lang}: {}", s.nl);
                assert!(r.contains(&format!("#{}", s.en)), "{lang}: {}", s.en);
            }
            // Every example in the reference parses (the intake ones as an intake).
            for s in SPECS {
                let example = if lang == "en" {
                    s.example_en
                } else {
                    s.example_nl
                };
                let text = match s.name {
                    CommandName::New => format!("{example}\nx"),
                    CommandName::Name | CommandName::Email | CommandName::Channel => {
                        format!("#nieuw\n{example}\nx")
                    }
                    _ => example.to_string(),
                };
                let mut c = ctx();
                c.categories = None;
                assert!(parse_commands(&text, &c).is_ok(), "{lang}: {text:?}");
            }
            let f = footer_text(lang);
            let lines = f.lines().count();
            assert!((3..=5).contains(&lines), "{f}");
            // Every command shown in the footer is one.
            for word in f.split_whitespace().filter(|w| w.starts_with('#')) {
                assert!(CommandName::lookup(&word[1..]).is_some(), "{word}");
            }
        }
        assert!(reference_text("nl").contains("eerste reactie (first_reaction)"));
        assert_ne!(reference_text("nl"), reference_text("en"));
    }

    #[test]
    fn verdicts() {
        use VerdictReading::*;
        let cases = [
            ("Akkoord", Agree),
            ("akkoord.", Agree),
            ("AKKOORD!", Agree),
            ("Ja", Agree),
            ("Ja, akkoord.", Agree),
            ("Eens", Agree),
            ("Ik ben het eens.", Agree),
            ("Ik ben het ermee eens", Agree),
            ("Ik ga akkoord", Agree),
            ("Agree", Agree),
            ("I agree.", Agree),
            ("Yes, I agree", Agree),
            ("Agreed", Agree),
            ("Akkoord\n\nMet vriendelijke groet,\nJan", Agree),
            ("  \n\nAkkoord", Agree),
            ("Niet akkoord", Disagree),
            ("niet akkoord.", Disagree),
            ("Oneens", Disagree),
            ("Niet eens", Disagree),
            ("Nee", Disagree),
            ("Nee, niet akkoord", Disagree),
            ("Ik ben het er niet mee eens.", Disagree),
            ("Ik ga niet akkoord", Disagree),
            ("Disagree", Disagree),
            ("No", Disagree),
            ("Not agree", Disagree),
            ("I do not agree", Disagree),
            ("I don't agree.", Disagree),
            ("I don\u{2019}t agree", Disagree),
            ("No, I disagree", Disagree),
            ("Niet akkoord\n\nHet probleem is niet opgelost.", Disagree),
            // Ambiguous: never guess.
            ("Ja maar ik wil nog iets", Unclear),
            ("Ja, maar", Unclear),
            ("Akkoord, maar alleen als de bus komt", Unclear),
            ("Nee, ik ben het eens", Unclear),
            ("Ja, ik ben het niet eens", Unclear),
            ("Niet oneens", Unclear),
            ("Akkoord?", Unclear),
            ("Beste meneer, akkoord", Unclear),
            ("Dank voor uw bericht. Akkoord.", Unclear),
            ("Misschien", Unclear),
            ("", Unclear),
            ("   ", Unclear),
            ("Ik weet het niet", Unclear),
            ("No problem, I agree", Unclear),
            ("Yes and no", Unclear),
            ("akkoordje", Unclear),
            ("Jawel", Unclear),
        ];
        for (text, want) in cases {
            assert_eq!(read_verdict(text), want, "{text:?}");
        }
    }

    #[test]
    fn satisfaction() {
        let cases: &[(&str, Option<u8>)] = &[
            ("5", Some(5)),
            ("1", Some(1)),
            (" 4\n\nGroet", Some(4)),
            ("4.", Some(4)),
            ("3!", Some(3)),
            ("5/5", Some(5)),
            ("4 / 5", Some(4)),
            ("4 van de 5", Some(4)),
            ("4 out of 5", Some(4)),
            ("4 uit 5", Some(4)),
            ("5 - zeer tevreden", Some(5)),
            ("2, ontevreden", Some(2)),
            ("zeer tevreden", Some(5)),
            ("Heel tevreden!", Some(5)),
            ("Tevreden", Some(4)),
            ("tevreden, dank u", Some(4)),
            ("Neutraal", Some(3)),
            ("Ontevreden", Some(2)),
            ("niet tevreden", Some(2)),
            ("Zeer ontevreden", Some(1)),
            ("Very satisfied", Some(5)),
            ("satisfied", Some(4)),
            ("Neutral", Some(3)),
            ("Dissatisfied", Some(2)),
            ("unsatisfied", Some(2)),
            ("very dissatisfied", Some(1)),
            ("★★★★", Some(4)),
            ("*****", Some(5)),
            ("0", None),
            ("6", None),
            ("10", None),
            ("4.5", None),
            ("4,5", None),
            ("3/10", None),
            ("4 van de 10", None),
            ("5 ontevreden", None),
            ("niet ontevreden", None),
            ("4e keer", None),
            ("Ik ben tevreden", None),
            ("", None),
            ("******", None),
            ("ja", None),
        ];
        for (text, want) in cases {
            assert_eq!(read_satisfaction(text), *want, "{text:?}");
        }
    }

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("#".to_string()),
            Just("#antwoord".to_string()),
            Just("#notitie".to_string()),
            Just("#oplossing ".to_string()),
            Just("#nieuw".to_string()),
            Just("#naam ".to_string()),
            Just("#klaar ".to_string()),
            Just("oordeel van de klager".to_string()),
            Just("#verleng ".to_string()),
            Just("4 weken".to_string()),
            Just("#status ".to_string()),
            Just("gesloten".to_string()),
            Just("#behandelaar ".to_string()),
            Just("ik".to_string()),
            Just("#koppel KL-2026-0001".to_string()),
            Just(":".to_string()),
            Just("\n".to_string()),
            Just("\r\n".to_string()),
            Just("\r".to_string()),
            Just(" ".to_string()),
            Just("\u{1b}".to_string()),
            Just("é".to_string()),
            "[ -~]{0,12}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_errors_name_a_real_line(
            parts in proptest::collection::vec(fragment(), 0..30)
        ) {
            let text: String = parts.concat();
            let lines: Vec<String> = text
                .replace("\r\n", "\n")
                .replace('\r', "\n")
                .split('\n')
                .map(str::to_string)
                .collect();
            match parse_commands(&text, &ctx()) {
                Ok(c) => {
                    for cl in &c.commands {
                        prop_assert!(cl.line >= 1 && cl.line <= lines.len());
                    }
                    for &l in &c.late_commands {
                        prop_assert!(l >= 1 && l <= lines.len());
                    }
                }
                Err(errors) => {
                    prop_assert!(!errors.is_empty());
                    for e in &errors {
                        prop_assert!(e.line >= 1 && e.line <= lines.len(), "{e:?}");
                        prop_assert_eq!(&e.text, &single_line(&lines[e.line - 1], 200));
                        prop_assert!(!e.message("nl").is_empty());
                        prop_assert!(!e.message("en").is_empty());
                    }
                }
            }
            let _ = read_verdict(&text);
            if let Some(s) = read_satisfaction(&text) {
                prop_assert!((1..=5).contains(&s));
            }
        }

        #[test]
        fn periods_round_trip(amount in 1u32..=52, unit in prop_oneof![
            Just(Unit::Weeks), Just(Unit::WorkingDays), Just(Unit::CalendarDays)
        ], en in any::<bool>()) {
            let p = Period { amount, unit };
            let text = format!("{} reden", p.describe(if en { "en" } else { "nl" }));
            prop_assert_eq!(Period::parse_prefix(&text), Some((p, " reden")));
        }
    }
}

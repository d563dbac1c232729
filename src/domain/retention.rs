//! Retention (issue #11): when a complaint's personal data is due for removal under its
//! procedure's `retention = { after = MILESTONE, months = N }`, and how free text that stays in
//! the statistics row is cleared of the names and addresses it may hold.
//!
//! The period runs from the local day the milestone was completed: 6 months after handling on
//! 31 August ends on 28 February (the end of a shorter month), and the data goes from that day
//! on. A complaint whose milestone was never completed counts from its closing (a complaint
//! closed by hand is handled in the sense of the procedures: "afgehandeld"), a voided one from
//! its voiding. A round begun after the milestone (reopened) restarts the wait: the milestone
//! of the earlier round does not count.

use std::collections::BTreeMap;

use chrono::{DateTime, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::calendar::local_date;
use super::procedure::{REOPENED_KEY, Retention};

/// What the rule looks at of one complaint.
#[derive(Debug, Clone, Default)]
pub struct RetentionFacts {
    /// The stored status: `open`, `closed` or `voided`.
    pub status: String,
    /// Completed milestones by id (as [`crate::domain::procedure::Progress::completed`]).
    pub milestones: BTreeMap<String, DateTime<Utc>>,
    /// When the complaint was last closed (its latest `closed` history event).
    pub closed_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
}

/// What the retention period of a complaint counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorKind {
    /// The rule's own milestone.
    Milestone,
    /// The complaint was closed without that milestone.
    Closed,
    /// The complaint was voided.
    Voided,
}

/// When a complaint's retention period ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionDue {
    /// The moment the period counts from.
    pub anchor: DateTime<Utc>,
    pub anchor_kind: AnchorKind,
    /// The first local day the data may no longer be kept.
    pub due: NaiveDate,
}

/// The moment the period counts from, if it has begun.
pub fn anchor(rule: &Retention, facts: &RetentionFacts) -> Option<(DateTime<Utc>, AnchorKind)> {
    let reopened = facts.milestones.get(REOPENED_KEY).copied();
    let after_reopening = |t: DateTime<Utc>| reopened.is_none_or(|r| t >= r);
    if facts.status == "voided" {
        return facts.voided_at.map(|t| (t, AnchorKind::Voided));
    }
    if let Some(t) = facts.milestones.get(rule.after.as_str()).copied()
        && after_reopening(t)
    {
        return Some((t, AnchorKind::Milestone));
    }
    if facts.status == "closed"
        && let Some(t) = facts.closed_at
    {
        return Some((t, AnchorKind::Closed));
    }
    None
}

/// The local day the period that began at `anchor` ends: `months` calendar months later, on
/// the last day of the month when that month is shorter.
pub fn due_date(rule: &Retention, anchor: DateTime<Utc>, tz: Tz) -> NaiveDate {
    let from = local_date(anchor, tz);
    from.checked_add_months(Months::new(rule.months))
        .unwrap_or(NaiveDate::MAX)
}

/// When the period of this complaint ends, if it has begun.
pub fn retention_due(rule: &Retention, facts: &RetentionFacts, tz: Tz) -> Option<RetentionDue> {
    let (anchor, anchor_kind) = anchor(rule, facts)?;
    Some(RetentionDue {
        anchor,
        anchor_kind,
        due: due_date(rule, anchor, tz),
    })
}

/// Whether the data must go on local day `today`.
pub fn is_due(due: &RetentionDue, today: NaiveDate) -> bool {
    due.due <= today
}

/// The rule in words, as the history and `purge --dry-run` say it: `retention 6 months after
/// handled`, and what the period counted from when it was not the milestone.
pub fn describe(rule: &Retention, kind: AnchorKind) -> String {
    let unit = if rule.months == 1 { "month" } else { "months" };
    let base = format!("retention {} {unit} after {}", rule.months, rule.after);
    match kind {
        AnchorKind::Milestone => base,
        AnchorKind::Closed => format!("{base} (counted from closing: never {})", rule.after),
        AnchorKind::Voided => format!("{base} (counted from voiding)"),
    }
}

/// What a cleared name or address becomes in text that is kept.
pub const REMOVED: &str = "[verwijderd]";

/// Particles of Dutch names that are words of their own too: never cleared alone.
const PARTICLES: &[&str] = &[
    "van", "der", "den", "de", "het", "ten", "ter", "te", "la", "le", "du", "von", "and", "en",
];

/// The strings of a person that are cleared from kept text: the whole name, each of its words
/// of three letters or more but the particles, the address, its local part and the parts of
/// that (`jan.devries` gives `jan.devries`, `jan`, `devries`).
pub fn person_needles(name: Option<&str>, address: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let add_words = |text: &str, out: &mut Vec<String>| {
        let text = text.trim();
        if text.chars().count() >= 3 {
            out.push(text.to_string());
        }
        for w in text.split(|c: char| !c.is_alphanumeric()) {
            let lower = w.to_lowercase();
            if w.chars().count() >= 3
                && !w.chars().all(|c| c.is_ascii_digit())
                && !PARTICLES.contains(&lower.as_str())
            {
                out.push(w.to_string());
            }
        }
    };
    if let Some(n) = name {
        add_words(n, &mut out);
    }
    if let Some(a) = address.map(str::trim).filter(|a| !a.is_empty()) {
        out.push(a.to_string());
        if let Some((local, _)) = a.rsplit_once('@') {
            add_words(local, &mut out);
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|s| seen.insert(s.to_lowercase()));
    // Longest first: the whole name is cleared before its words are looked for.
    out.sort_by_key(|s| std::cmp::Reverse(s.chars().count()));
    out
}

/// Folds a character for comparison: its first lowercase character, so positions stay one
/// character for one.
fn fold(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// Whether a character joins a word (or an address) to what is next to it.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `text` with every whole-word occurrence of each needle (any case) replaced by
/// [`REMOVED`]. Whole words only: the name `Jan` does not touch `Januari`.
pub fn scrub(text: &str, needles: &[String]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for needle in needles {
        let n: Vec<char> = needle.chars().map(fold).collect();
        if n.is_empty() {
            continue;
        }
        let mut out: Vec<char> = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            let fits = i + n.len() <= chars.len()
                && chars[i..i + n.len()]
                    .iter()
                    .zip(&n)
                    .all(|(a, b)| fold(*a) == *b);
            let starts_word = i == 0 || !is_word(chars[i - 1]) || !is_word(n[0]);
            let ends_word = i + n.len() >= chars.len()
                || !is_word(chars[i + n.len()])
                || !is_word(n[n.len() - 1]);
            if fits && starts_word && ends_word {
                out.extend(REMOVED.chars());
                i += n.len();
            } else {
                out.push(chars[i]);
                i += 1;
            }
        }
        chars = out;
    }
    chars.into_iter().collect()
}

/// Whether a character can be part of an address (RFC 5322 3.2.3 atext and the dot).
fn is_address_char(c: char) -> bool {
    c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.@".contains(c)
}

/// Whether `text` names `address` as a whole address, any case: `jan@x.nl` is in `mail:Jan@X.nl`
/// and `<jan@x.nl>`, not in `bjan@x.nl` or `jan@x.nl.evil`.
pub fn mentions_address(text: &str, address: &str) -> bool {
    let needle: Vec<char> = address.trim().chars().map(fold).collect();
    if needle.is_empty() {
        return false;
    }
    let hay: Vec<char> = text.chars().map(fold).collect();
    (0..hay.len().saturating_sub(needle.len() - 1)).any(|i| {
        hay[i..i + needle.len()] == needle[..]
            && (i == 0 || !is_address_char(hay[i - 1]))
            && hay.get(i + needle.len()).is_none_or(|c| {
                !is_address_char(*c)
                    || (*c == '.'
                        && hay
                            .get(i + needle.len() + 1)
                            .is_none_or(|n| !is_address_char(*n)))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::procedure::Milestone;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const TZ: Tz = chrono_tz::Europe::Amsterdam;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn rule(after: Milestone, months: u32) -> Retention {
        Retention { after, months }
    }

    fn facts(status: &str, ms: &[(&str, &str)]) -> RetentionFacts {
        RetentionFacts {
            status: status.into(),
            milestones: ms.iter().map(|(k, v)| (k.to_string(), t(v))).collect(),
            closed_at: None,
            voided_at: None,
        }
    }

    #[test]
    fn six_months_after_handling_counts_from_the_local_day() {
        let r = rule(Milestone::Handled, 6);
        // 23:30 UTC on 14 May is 15 May in Amsterdam.
        let f = facts("closed", &[("handled", "2026-05-14T23:30:00Z")]);
        let d = retention_due(&r, &f, TZ).unwrap();
        assert_eq!(d.anchor_kind, AnchorKind::Milestone);
        assert_eq!(d.due, NaiveDate::from_ymd_opt(2026, 11, 15).unwrap());
        assert!(!is_due(&d, NaiveDate::from_ymd_opt(2026, 11, 14).unwrap()));
        assert!(is_due(&d, NaiveDate::from_ymd_opt(2026, 11, 15).unwrap()));
    }

    #[test]
    fn a_month_end_lands_on_the_end_of_a_shorter_month() {
        let r = rule(Milestone::Handled, 6);
        let f = facts("closed", &[("handled", "2026-08-31T10:00:00Z")]);
        assert_eq!(
            retention_due(&r, &f, TZ).unwrap().due,
            NaiveDate::from_ymd_opt(2027, 2, 28).unwrap()
        );
        let two_years = rule(Milestone::Handled, 24);
        let leap = facts("closed", &[("handled", "2028-02-29T10:00:00Z")]);
        assert_eq!(
            retention_due(&two_years, &leap, TZ).unwrap().due,
            NaiveDate::from_ymd_opt(2030, 2, 28).unwrap()
        );
    }

    #[test]
    fn an_open_complaint_without_the_milestone_is_kept() {
        let r = rule(Milestone::Handled, 6);
        let f = facts("open", &[("received", "2020-01-01T10:00:00Z")]);
        assert_eq!(retention_due(&r, &f, TZ), None);
    }

    #[test]
    fn a_complaint_closed_without_the_milestone_counts_from_closing() {
        let r = rule(Milestone::Handled, 6);
        let mut f = facts("closed", &[("received", "2026-01-01T10:00:00Z")]);
        f.closed_at = Some(t("2026-02-10T10:00:00Z"));
        let d = retention_due(&r, &f, TZ).unwrap();
        assert_eq!(d.anchor_kind, AnchorKind::Closed);
        assert_eq!(d.due, NaiveDate::from_ymd_opt(2026, 8, 10).unwrap());
        assert!(describe(&r, d.anchor_kind).contains("counted from closing"));
    }

    #[test]
    fn a_voided_complaint_counts_from_voiding() {
        let r = rule(Milestone::Closed, 3);
        let mut f = facts("voided", &[("handled", "2025-01-01T10:00:00Z")]);
        f.voided_at = Some(t("2026-03-01T10:00:00Z"));
        let d = retention_due(&r, &f, TZ).unwrap();
        assert_eq!(d.anchor_kind, AnchorKind::Voided);
        assert_eq!(d.due, NaiveDate::from_ymd_opt(2026, 6, 1).unwrap());
    }

    #[test]
    fn a_reopened_round_restarts_the_wait() {
        let r = rule(Milestone::Handled, 6);
        let f = facts(
            "open",
            &[
                ("handled", "2025-01-10T10:00:00Z"),
                (REOPENED_KEY, "2025-02-01T10:00:00Z"),
            ],
        );
        assert_eq!(retention_due(&r, &f, TZ), None);
        let again = facts(
            "closed",
            &[
                ("handled", "2025-03-10T10:00:00Z"),
                (REOPENED_KEY, "2025-02-01T10:00:00Z"),
            ],
        );
        assert_eq!(
            retention_due(&r, &again, TZ).unwrap().due,
            NaiveDate::from_ymd_opt(2025, 9, 10).unwrap()
        );
    }

    #[test]
    fn the_rule_in_words() {
        assert_eq!(
            describe(&rule(Milestone::Handled, 6), AnchorKind::Milestone),
            "retention 6 months after handled"
        );
        assert_eq!(
            describe(&rule(Milestone::Closed, 1), AnchorKind::Milestone),
            "retention 1 month after closed"
        );
    }

    #[test]
    fn names_and_addresses_are_cleared_from_kept_text() {
        let needles = person_needles(
            Some("Marieke van der Sluis"),
            Some("m.vandersluis@voorbeeld.nl"),
        );
        let kept = scrub(
            "Docent ziek; mevrouw Van der Sluis (MARIEKE) belde, mail m.vandersluis@voorbeeld.nl. Januari rooster.",
            &needles,
        );
        assert!(!kept.to_lowercase().contains("marieke"), "{kept}");
        assert!(!kept.to_lowercase().contains("sluis"), "{kept}");
        assert!(!kept.contains("voorbeeld.nl"), "{kept}");
        assert!(kept.contains("Docent ziek"), "{kept}");
        assert!(kept.contains("Januari rooster"), "{kept}");
        // Particles alone are not cleared.
        assert!(
            kept.contains("van der") || kept.contains("Van der"),
            "{kept}"
        );
    }

    #[test]
    fn whole_words_only() {
        let needles = person_needles(Some("Jan"), None);
        assert_eq!(
            scrub("Jan belde in januari over Jansen", &needles),
            "[verwijderd] belde in januari over Jansen"
        );
    }

    #[test]
    fn short_and_numeric_parts_are_not_needles() {
        let n = person_needles(Some("Al"), Some("jo.1987@x.nl"));
        assert!(
            n.iter().all(|s| s != "Al" && s != "jo" && s != "1987"),
            "{n:?}"
        );
        assert!(n.iter().any(|s| s == "jo.1987@x.nl"));
    }

    #[test]
    fn an_address_is_found_whole_only() {
        let a = "jan@x.nl";
        assert!(mentions_address("mail:Jan@X.nl", a));
        assert!(mentions_address("KL-2026-0001 from jan@x.nl received", a));
        assert!(mentions_address("<jan@x.nl>", a));
        assert!(mentions_address("schreef jan@x.nl.", a));
        assert!(!mentions_address("from bjan@x.nl", a));
        assert!(!mentions_address("from jan@x.nl.evil", a));
        assert!(!mentions_address("jan@x.nlx", a));
        assert!(!mentions_address("jan", a));
        assert!(!mentions_address("", a));
    }

    #[test]
    fn a_late_evening_in_utc_is_the_next_local_day() {
        let r = rule(Milestone::Handled, 1);
        let winter = Utc.with_ymd_and_hms(2026, 1, 31, 23, 30, 0).unwrap();
        assert_eq!(
            due_date(&r, winter, TZ),
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
        );
    }

    proptest! {
        /// Whatever surrounds it, a needle never survives scrubbing as a whole word, and text
        /// without any needle comes back unchanged.
        #[test]
        fn scrub_leaves_no_needle(
            before in "[a-z .,;]{0,12}",
            after in "[a-z .,;]{0,12}",
            name in "[A-Z][a-z]{2,8}",
        ) {
            let needles = person_needles(Some(&name), None);
            let text = format!("{before} {name} {after}");
            let out = scrub(&text, &needles);
            let words: Vec<String> = out
                .split(|c: char| !c.is_alphanumeric())
                .map(str::to_lowercase)
                .collect();
            prop_assert!(!words.contains(&name.to_lowercase()), "{}", out);
            let clean = format!("{before} {after}");
            let clean_words: Vec<String> = clean
                .split(|c: char| !c.is_alphanumeric())
                .map(str::to_lowercase)
                .collect();
            if !clean_words.contains(&name.to_lowercase()) {
                prop_assert_eq!(scrub(&clean, &needles), clean);
            }
        }

        /// The due day is never before the anchor's day, and one more month never makes it
        /// earlier.
        #[test]
        fn due_is_monotonic(secs in 0i64..2_000_000_000, months in 1u32..60) {
            let at = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
            let a = due_date(&rule(Milestone::Handled, months), at, TZ);
            let b = due_date(&rule(Milestone::Handled, months + 1), at, TZ);
            prop_assert!(a > local_date(at, TZ));
            prop_assert!(b >= a);
        }
    }
}

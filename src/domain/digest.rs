//! The daily digest at a glance (issue #11): every open complaint gets a traffic light from its
//! open deadlines, and the rows are ordered red first. Pure: the caller passes the deadlines
//! (from [`Procedure::deadlines`](super::procedure::Procedure::deadlines)), today and the
//! horizon (today plus `schedule.digest_days_ahead` working days).

use std::cmp::Ordering;

use chrono::NaiveDate;
use serde::Serialize;

use super::procedure::{Deadline, Milestone};
use super::types::ComplaintRef;

/// How a complaint stands against its deadlines. The order is the digest's: red first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Light {
    /// An open milestone's due date has passed.
    Red,
    /// Nothing missed, but the next due date is today or within the horizon.
    Amber,
    /// On track: the next due date lies beyond the horizon, or there is none.
    Green,
}

impl Light {
    pub const ALL: [Light; 3] = [Light::Red, Light::Amber, Light::Green];

    /// The stable id templates compare with: `red`, `amber`, `green`.
    pub fn as_str(self) -> &'static str {
        match self {
            Light::Red => "red",
            Light::Amber => "amber",
            Light::Green => "green",
        }
    }

    /// The word printed next to (or instead of) the colour: Dutch unless `lang` is `en`.
    pub fn word(self, lang: &str) -> &'static str {
        let en = lang.eq_ignore_ascii_case("en");
        match (self, en) {
            (Light::Red, false) => "ROOD",
            (Light::Red, true) => "RED",
            (Light::Amber, false) => "ORANJE",
            (Light::Amber, true) => "AMBER",
            (Light::Green, false) => "GROEN",
            (Light::Green, true) => "GREEN",
        }
    }
}

/// The open deadline a row shows: the earliest due date among the open milestones (for a red
/// row, the one missed longest ago).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    pub milestone: Milestone,
    pub due: NaiveDate,
    /// The due date is before today.
    pub missed: bool,
}

/// One complaint's line in the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub reference: ComplaintRef,
    pub light: Light,
    pub next: Option<Next>,
    /// No handler is assigned.
    pub unassigned: bool,
}

/// The light of a complaint with these deadlines on `today`: red when an open milestone's due
/// date is before today; amber when the earliest open due date is on or before `horizon`
/// (today itself included: not missed yet); green otherwise, also with no open due date.
/// Completed milestones and milestones without a due date do not count.
pub fn classify(
    deadlines: &[Deadline],
    today: NaiveDate,
    horizon: NaiveDate,
) -> (Light, Option<Next>) {
    let next = deadlines
        .iter()
        .filter(|d| d.completed_at.is_none())
        .filter_map(|d| d.due.map(|due| (due, d.milestone)))
        .min()
        .map(|(due, milestone)| Next {
            milestone,
            due,
            missed: due < today,
        });
    let light = match next {
        Some(n) if n.due < today => Light::Red,
        Some(n) if n.due <= horizon => Light::Amber,
        _ => Light::Green,
    };
    (light, next)
}

/// The digest entry of one complaint. A handler that is empty or only blanks is none.
pub fn entry(
    reference: ComplaintRef,
    handler: Option<&str>,
    deadlines: &[Deadline],
    today: NaiveDate,
    horizon: NaiveDate,
) -> Entry {
    let (light, next) = classify(deadlines, today, horizon);
    Entry {
        reference,
        light,
        next,
        unassigned: handler.is_none_or(|h| h.trim().is_empty()),
    }
}

/// The digest's order: red, then amber, then green; within a light by the next due date (none
/// last), then by reference.
pub fn order(a: &Entry, b: &Entry) -> Ordering {
    let due = |e: &Entry| (e.next.is_none(), e.next.map(|n| n.due));
    a.light
        .cmp(&b.light)
        .then_with(|| due(a).cmp(&due(b)))
        .then_with(|| a.reference.cmp(&b.reference))
}

/// How many rows have each light.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub red: usize,
    pub amber: usize,
    pub green: usize,
    pub total: usize,
}

pub fn counts<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Counts {
    let mut c = Counts::default();
    for e in entries {
        match e.light {
            Light::Red => c.red += 1,
            Light::Amber => c.amber += 1,
            Light::Green => c.green += 1,
        }
        c.total += 1;
    }
    c
}

/// A subject for a table cell: at most `max` characters, whitespace collapsed, cut at a word
/// where one is near and marked with an ellipsis.
pub fn short_subject(subject: &str, max: usize) -> String {
    let flat = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    let at_word = match cut.rfind(' ') {
        Some(i) if cut[..i].chars().count() * 4 >= max * 3 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", at_word.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    fn open(milestone: Milestone, due: Option<NaiveDate>) -> Deadline {
        Deadline {
            milestone,
            due,
            completed_at: None,
            met: None,
        }
    }

    fn done(milestone: Milestone, due: NaiveDate) -> Deadline {
        Deadline {
            milestone,
            due: Some(due),
            completed_at: Some(Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap()),
            met: Some(true),
        }
    }

    fn reference(n: u32) -> ComplaintRef {
        ComplaintRef {
            prefix: "KL".into(),
            year: 2026,
            number: n,
        }
    }

    // Tuesday 8 December 2026; three working days ahead is Friday 11 December.
    const TODAY: (u32, u32) = (12, 8);
    const HORIZON: (u32, u32) = (12, 11);

    fn light_of(deadlines: &[Deadline]) -> Light {
        classify(deadlines, day(TODAY.0, TODAY.1), day(HORIZON.0, HORIZON.1)).0
    }

    #[test]
    fn missed_yesterday_is_red_and_shown_as_missed() {
        let d = [
            open(Milestone::FirstReaction, Some(day(12, 7))),
            open(Milestone::Handled, Some(day(12, 20))),
        ];
        let (light, next) = classify(&d, day(12, 8), day(12, 11));
        assert_eq!(light, Light::Red);
        assert_eq!(
            next,
            Some(Next {
                milestone: Milestone::FirstReaction,
                due: day(12, 7),
                missed: true
            })
        );
    }

    #[test]
    fn due_today_is_amber_not_missed() {
        let d = [open(Milestone::FirstReaction, Some(day(12, 8)))];
        let (light, next) = classify(&d, day(12, 8), day(12, 11));
        assert_eq!(light, Light::Amber);
        assert!(!next.unwrap().missed);
    }

    #[test]
    fn due_exactly_at_the_horizon_is_amber_one_day_later_green() {
        assert_eq!(
            light_of(&[open(Milestone::Handled, Some(day(12, 11)))]),
            Light::Amber
        );
        assert_eq!(
            light_of(&[open(Milestone::Handled, Some(day(12, 12)))]),
            Light::Green
        );
    }

    #[test]
    fn no_due_date_is_green_with_nothing_shown() {
        let d = [open(Milestone::Verdict, None)];
        assert_eq!(classify(&d, day(12, 8), day(12, 11)), (Light::Green, None));
        assert_eq!(classify(&[], day(12, 8), day(12, 11)), (Light::Green, None));
    }

    #[test]
    fn completed_milestones_do_not_count() {
        // Missed long ago but completed (late): no longer red; the open one decides.
        let d = [
            done(Milestone::FirstReaction, day(11, 30)),
            open(Milestone::Handled, Some(day(12, 18))),
        ];
        let (light, next) = classify(&d, day(12, 8), day(12, 11));
        assert_eq!(light, Light::Green);
        assert_eq!(next.unwrap().milestone, Milestone::Handled);
    }

    #[test]
    fn a_missed_deadline_makes_red_even_when_another_is_near() {
        let d = [
            open(Milestone::SolutionProposed, Some(day(12, 9))),
            open(Milestone::FirstReaction, Some(day(12, 1))),
        ];
        let (light, next) = classify(&d, day(12, 8), day(12, 11));
        assert_eq!(light, Light::Red);
        assert_eq!(next.unwrap().milestone, Milestone::FirstReaction);
    }

    #[test]
    fn unassigned_is_marked_and_does_not_change_the_light() {
        let d = [open(Milestone::Handled, Some(day(12, 9)))];
        let t = (day(12, 8), day(12, 11));
        let none = entry(reference(1), None, &d, t.0, t.1);
        let blank = entry(reference(1), Some("  "), &d, t.0, t.1);
        let someone = entry(reference(1), Some("marieke@example.org"), &d, t.0, t.1);
        assert!(none.unassigned && blank.unassigned && !someone.unassigned);
        assert_eq!(none.light, Light::Amber);
        assert_eq!(someone.light, Light::Amber);
    }

    #[test]
    fn words_and_ids() {
        assert_eq!(
            Light::ALL.map(|l| l.word("nl")),
            ["ROOD", "ORANJE", "GROEN"]
        );
        assert_eq!(Light::ALL.map(|l| l.word("en")), ["RED", "AMBER", "GREEN"]);
        assert_eq!(Light::ALL.map(Light::as_str), ["red", "amber", "green"]);
    }

    #[test]
    fn order_is_light_then_due_date_then_reference() {
        let at = |n: u32, light: Light, due: Option<NaiveDate>| Entry {
            reference: reference(n),
            light,
            next: due.map(|due| Next {
                milestone: Milestone::Handled,
                due,
                missed: false,
            }),
            unassigned: false,
        };
        let mut v = vec![
            at(1, Light::Green, None),
            at(2, Light::Amber, Some(day(12, 11))),
            at(3, Light::Green, Some(day(12, 20))),
            at(4, Light::Red, Some(day(12, 3))),
            at(5, Light::Amber, Some(day(12, 9))),
            at(6, Light::Red, Some(day(11, 30))),
            at(10, Light::Amber, Some(day(12, 9))),
            at(9, Light::Amber, Some(day(12, 9))),
        ];
        v.sort_by(order);
        let refs: Vec<u32> = v.iter().map(|e| e.reference.number).collect();
        // 10 after 9: references compare by number, not as text.
        assert_eq!(refs, [6, 4, 5, 9, 10, 2, 3, 1]);
        assert_eq!(
            counts(&v),
            Counts {
                red: 2,
                amber: 4,
                green: 2,
                total: 8
            }
        );
    }

    #[test]
    fn short_subjects() {
        assert_eq!(
            short_subject("  Les   gaat\nniet door ", 60),
            "Les gaat niet door"
        );
        let long = "De muziekles van groep 5 is drie keer niet doorgegaan en niemand zei iets";
        let s = short_subject(long, 40);
        assert!(s.chars().count() <= 40, "{s}");
        assert!(s.ends_with('…'), "{s}");
        assert!(long.starts_with(s.trim_end_matches('…')), "{s}");
        // One long word: cut inside it, on a character boundary.
        let s = short_subject(&"é".repeat(100), 10);
        assert_eq!(s, format!("{}…", "é".repeat(9)));
    }

    fn arb_deadline() -> impl Strategy<Value = Deadline> {
        (
            0usize..Milestone::ALL.len(),
            prop::option::of(0i64..60),
            any::<bool>(),
        )
            .prop_map(|(m, due, completed)| Deadline {
                milestone: Milestone::ALL[m],
                due: due.map(|d| day(11, 1) + chrono::Duration::days(d)),
                completed_at: completed
                    .then(|| Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap()),
                met: None,
            })
    }

    proptest! {
        #[test]
        fn ordering_is_always_red_then_amber_then_green(
            complaints in prop::collection::vec(
                (1u32..500, prop::option::of("[a-z]{1,8}"), prop::collection::vec(arb_deadline(), 0..5)),
                0..40,
            ),
            today_offset in 0i64..60,
            ahead in 0i64..10,
        ) {
            let today = day(11, 1) + chrono::Duration::days(today_offset);
            let horizon = today + chrono::Duration::days(ahead);
            let mut entries: Vec<Entry> = complaints
                .iter()
                .map(|(n, h, d)| entry(reference(*n), h.as_deref(), d, today, horizon))
                .collect();
            entries.sort_by(order);
            for w in entries.windows(2) {
                prop_assert!(w[0].light <= w[1].light, "{:?} before {:?}", w[0], w[1]);
                if w[0].light == w[1].light {
                    prop_assert!(order(&w[0], &w[1]) != Ordering::Greater);
                }
            }
            // Each light means what it says.
            for e in &entries {
                match (e.light, e.next) {
                    (Light::Red, Some(n)) => prop_assert!(n.due < today && n.missed),
                    (Light::Amber, Some(n)) => prop_assert!(n.due >= today && n.due <= horizon),
                    (Light::Green, Some(n)) => prop_assert!(n.due > horizon),
                    (Light::Green, None) => {}
                    (l, None) => prop_assert!(false, "{l:?} without a due date"),
                }
            }
            let c = counts(&entries);
            prop_assert_eq!(c.red + c.amber + c.green, entries.len());
            prop_assert_eq!(c.total, entries.len());
        }
    }
}

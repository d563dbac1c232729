//! Lives of complaints nobody acts on, for every preset (issue #9): three receipts around the
//! Christmas/New Year, Easter and May holidays, 60 days each of `klachtd tick --at` at 08:30
//! and 17:00 every day (a fresh process each time), with the daily digest on. Every mail is
//! compared with `tests/fixtures/lives/<preset>.txt`, which an independent implementation
//! (`tests/fixtures/lives/oracle.py`: its own calendar, its own reading of the preset) wrote:
//! recipient, template and day, and for each digest how many complaints it counted red, amber
//! and green. And for every mail: nothing goes to a person on a weekend, a holiday or outside
//! working hours except the acknowledgement and a serious alert.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Europe::Amsterdam;
use common::{Mail, TestApp};

const RECEIPTS: [(i32, u32, u32, u32); 3] =
    [(2026, 12, 23, 10), (2027, 3, 25, 14), (2027, 5, 1, 11)];
const DAYS: i64 = 60;

/// Holidays and equated days of 2026 and 2027, written out by hand (not from klachtd).
fn holidays() -> BTreeSet<NaiveDate> {
    [
        (2026, 1, 1),
        (2026, 1, 2),
        (2026, 4, 3),
        (2026, 4, 6),
        (2026, 4, 27),
        (2026, 5, 5),
        (2026, 5, 14),
        (2026, 5, 15),
        (2026, 5, 25),
        (2026, 12, 25),
        (2026, 12, 26),
        (2027, 1, 1),
        (2027, 3, 26),
        (2027, 3, 29),
        (2027, 4, 27),
        (2027, 5, 5),
        (2027, 5, 6),
        (2027, 5, 7),
        (2027, 5, 17),
    ]
    .into_iter()
    .map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap())
    .collect()
}

fn local(d: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    Amsterdam
        .from_local_datetime(&d.and_hms_opt(h, m, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.with_timezone(&Amsterdam).to_rfc3339()
}

fn live(preset: &str) {
    let app = TestApp::spawn_with_config(|c| {
        *c = c.replace("preset = \"mzo\"", &format!("preset = \"{preset}\""));
    });
    app.set_env("KLACHTD__SCHEDULE__DIGEST", "0 0 8 * * Mon-Fri");
    let receipts: Vec<DateTime<Utc>> = RECEIPTS
        .iter()
        .map(|&(y, m, d, h)| local(NaiveDate::from_ymd_opt(y, m, d).unwrap(), h, 0))
        .collect();
    let mut days = BTreeSet::new();
    for r in &receipts {
        let first = r.with_timezone(&Amsterdam).date_naive();
        for i in 0..=DAYS {
            days.insert(first + Duration::days(i));
        }
    }
    let mut events: Vec<(DateTime<Utc>, Option<usize>)> = days
        .iter()
        .flat_map(|d| [local(*d, 8, 30), local(*d, 17, 0)])
        .map(|t| (t, None))
        .collect();
    events.extend(receipts.iter().enumerate().map(|(i, t)| (*t, Some(i))));
    events.sort();

    let mut refs: BTreeMap<String, usize> = BTreeMap::new();
    for (at, receipt) in events {
        match receipt {
            Some(i) => {
                let mail = Mail::new(&format!("klager{}@example.nl", i + 1), "Klacht over de les")
                    .body("De les is drie keer niet doorgegaan.")
                    .build();
                app.deliver_eml(&mail, at);
                app.set_now(&rfc(at));
                app.run_once();
                let known: BTreeSet<&String> = refs.keys().collect();
                let new: Vec<String> = app
                    .references()
                    .into_iter()
                    .filter(|r| !known.contains(r))
                    .collect();
                assert_eq!(new.len(), 1, "one complaint per receipt: {new:?}");
                refs.insert(new[0].clone(), i + 1);
            }
            None => {
                app.set_now(&rfc(at));
                app.cmd_ok(&["tick", "--at", &rfc(at)]);
            }
        }
    }

    let hol = holidays();
    let working =
        |d: NaiveDate| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !hol.contains(&d);
    let mut seen = Vec::new();
    for o in app.outbox() {
        let template = o["template"].as_str().unwrap_or("").to_string();
        let to = o["recipients"].as_str().unwrap_or("").to_string();
        let created: DateTime<Utc> = o["created_at"].as_str().unwrap().parse().unwrap();
        let when = created.with_timezone(&Amsterdam);
        let (day, time) = (when.date_naive(), when.time());
        let in_hours = working(day)
            && time >= NaiveTime::from_hms_opt(8, 0, 0).unwrap()
            && time < NaiveTime::from_hms_opt(18, 0, 0).unwrap();
        assert!(
            in_hours || matches!(template.as_str(), "acknowledgement" | "serious_alert"),
            "{preset}: {template} to {to} at {when}: mail to people waits for working hours"
        );
        if template == "digest" {
            // The digest is about every open complaint: its day and the lights it counted
            // ("1 rood, 0 oranje, 2 groen", the end of its subject).
            let subject = o["subject"].as_str().unwrap_or("");
            let counts = subject.rsplit_once(": ").map_or(subject, |(_, c)| c);
            seen.push(format!("D {day} digest {to} {counts}"));
            continue;
        }
        let r = o["reference"]
            .as_str()
            .and_then(|r| refs.get(r))
            .unwrap_or_else(|| panic!("{preset}: {template} to {to} belongs to no receipt"));
        seen.push(format!("R{r} {day} {template} {to}"));
    }
    seen.sort();
    let path = common::repo().join(format!("tests/fixtures/lives/{preset}.txt"));
    let expected: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = expected.iter().filter(|l| !seen.contains(l)).collect();
    let extra: Vec<&String> = seen.iter().filter(|l| !expected.contains(l)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{preset}: the mails differ from {}\n  missing: {missing:#?}\n  unexpected: {extra:#?}",
        path.display()
    );
    assert_eq!(seen.len(), expected.len(), "{preset}: a mail sent twice");
    // Every deadline the seed sets had its reminder before and its alert after, for each
    // receipt: the escalations are in the list above; here that none is missing.
    for r in 1..=3 {
        let of = |t: &str| {
            seen.iter()
                .filter(|l| l.starts_with(&format!("R{r} ")) && l.contains(&format!(" {t} ")))
                .count()
        };
        assert!(of("reminder") >= 1, "{preset} R{r}: no reminder");
        assert!(of("escalation") >= 1, "{preset} R{r}: no escalation");
    }
}

#[test]
fn mzo_lives() {
    live("mzo");
}

#[test]
fn academie_lives() {
    live("academie");
}

#[test]
fn korein_lives() {
    live("korein");
}

#[test]
fn gelukwerkt_lives() {
    live("gelukwerkt");
}

#[test]
fn leefstijlwijzer_lives() {
    live("leefstijlwijzer");
}

#[test]
fn awb_lives() {
    live("awb");
}

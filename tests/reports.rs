//! The reports (issue #11) through the real binary, on a register of generated complaints.
//!
//! The data: 2,000 complaints received over 2025 and 2026, the first year under the `mzo`
//! preset and the second under `korein` (the procedure is switched between the two intake
//! runs, as an organisation that changes its procedure would), plus a small group built to
//! be re-identifiable. Every complaint comes in through the real intake path (`run --once`
//! on a Maildir holding a year of mails, each with its own receipt time). Then the fixture
//! generator below gives each one what staff commands and the scheduler would have written
//! over the months: handler, kind, category, severity, channel, incident/structural, cause,
//! agreement, satisfaction, measure (with its history line), escalation and appeal mails in
//! the outbox, and the times its milestones were completed, some late and some never. It
//! writes those columns and rows straight into the database, with times it chooses, because
//! replaying two years of staff mail day by day would take an hour.
//!
//! Every figure of `report --format json` is then checked against counts this file makes
//! itself: from the generator's own records, and, for the deadlines, from each complaint's
//! due and done dates as `register --format json` lists them.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;
use common::{Database, Mail, TestApp};
use mail_parser::MimeHeaders;
use serde_json::Value;

/// A small deterministic generator (xorshift), so every run makes the same register.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const CATEGORIES: &[&str] = &["Roostering", "Bejegening", "Communicatie", "Facilitair"];
const CAUSES: &[&str] = &[
    "Ziekte docent, geen vervanger",
    "Rooster te laat bekend",
    "Onduidelijke factuur",
    "Lokaal te koud",
];
const KINDS: &[&str] = &[
    "complaint",
    "complaint",
    "complaint",
    "complaint",
    "compliment",
    "suggestion",
    "question",
];
const CHANNELS: &[&str] = &["phone", "letter", "internal"];
/// The milestones whose times the generator sets (the ones the reports show).
const MILESTONES: &[&str] = &[
    "acknowledged",
    "first_reaction",
    "solution_proposed",
    "handled",
];

/// What the generator made of one complaint: the truth the checks count from.
#[derive(Debug, Clone)]
struct Made {
    reference: String,
    received: DateTime<Utc>,
    address: String,
    name: String,
    unique_word: String,
    kind: String,
    category: Option<String>,
    severity: String,
    channel: Option<String>,
    nature: Option<String>,
    cause: Option<String>,
    agreement: Option<bool>,
    satisfaction: Option<u8>,
    escalations: u32,
    appeal: bool,
    measure: Option<(String, DateTime<Utc>)>,
}

impl Made {
    fn day(&self) -> NaiveDate {
        self.received.with_timezone(&Amsterdam).date_naive()
    }
}

/// A receipt time on a random day of `year`, mostly in office hours, some in the evening
/// and at weekends.
fn received_in(rng: &mut Rng, year: i32) -> DateTime<Utc> {
    let day = NaiveDate::from_ymd_opt(year, 1, 1).unwrap() + Duration::days(rng.below(365) as i64);
    let hour = if rng.chance(85) {
        8 + rng.below(9)
    } else {
        rng.below(24)
    } as u32;
    Amsterdam
        .from_local_datetime(&day.and_hms_opt(hour, rng.below(60) as u32, 0).unwrap())
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

/// Deliver one year of mails and register them with one `run --once`.
fn intake(
    app: &TestApp,
    rng: &mut Rng,
    year: i32,
    n: usize,
    start: usize,
) -> Vec<(usize, DateTime<Utc>)> {
    let mut out = Vec::new();
    for i in start..start + n {
        let received = received_in(rng, year);
        let mail = Mail::new(
            &format!("\"Ouder{i} Achternaam{i}\" <ouder{i}@example.nl>"),
            &format!("Klacht over de les uniekwoord{i}"),
        )
        .header("Return-Path", &format!("<ouder{i}@example.nl>"))
        .message_id(&format!("gen{i}@example.nl"))
        .body(&format!(
            "Geachte heer, mevrouw,\n\nDe les van mijn kind ging niet door (uniekwoord{i}).\n\nMet vriendelijke groet,\nOuder{i} Achternaam{i}"
        ));
        app.deliver_eml(&mail.build(), received);
        out.push((i, received));
    }
    app.set_now(&format!("{year}-12-31T16:00:00+01:00"));
    app.run_once();
    out
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The fixture generator's statements, on a pool of either backend (`$N` placeholders,
/// which SQLite reads by number too): the register as two years of staff work would have
/// left it.
macro_rules! give_facts_in {
    ($db:expr, $rng:expr, $made:expr) => {{
        let mut tx = $db.begin().await.unwrap();
        let mut outbox_seq = 0u64;
        for m in $made.iter_mut() {
            let id: i64 = sqlx::query_scalar("SELECT id FROM complaints WHERE reference = $1")
                .bind(&m.reference)
                .fetch_one(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", m.reference));
            sqlx::query(
                "UPDATE complaints SET kind = $1, category = $2, severity = $3, channel = $4,
                        incident_kind = $5, cause = $6, agreement = $7, satisfaction = $8,
                        handler = $9, measure = $10
                 WHERE id = $11",
            )
            .bind(&m.kind)
            .bind(&m.category)
            .bind(&m.severity)
            .bind(m.channel.as_deref().unwrap_or("email"))
            .bind(&m.nature)
            .bind(&m.cause)
            .bind(m.agreement.map(|a| if a { "yes" } else { "no" }))
            // A text column on both backends.
            .bind(m.satisfaction.map(|s| s.to_string()))
            .bind(format!("behandelaar{}@example.org", $rng.below(4)))
            .bind(m.measure.as_ref().map(|(t, _)| t.clone()))
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
            if let Some((text, at)) = &m.measure {
                sqlx::query(
                    "INSERT INTO history (complaint_id, at, actor, event, detail) VALUES ($1, $2, 'staff:behandelaar0@example.org', 'set', $3)",
                )
                .bind(id)
                .bind(ts(*at))
                .bind(format!("measure recorded: {text}"))
                .execute(&mut *tx)
                .await
                .unwrap();
            }
            // The intake runs' scheduler already escalated some; the generator decides instead.
            sqlx::query(
                "DELETE FROM outbox WHERE complaint_id = $1 AND template IN ('escalation', 'appeal_info')",
            )
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
            let mut mails: Vec<&str> = vec!["escalation"; m.escalations as usize];
            if m.appeal {
                mails.push("appeal_info");
            }
            for template in mails {
                outbox_seq += 1;
                sqlx::query(
                    "INSERT INTO outbox (complaint_id, template, message_id, envelope_from, recipients,
                                         subject, raw, status, next_attempt_at, created_at, sent_at)
                     VALUES ($1, $2, $3, 'klachten@example.org', 'directeur@example.org', 'escalatie', $4, 'sent', $5, $6, $7)",
                )
                .bind(id)
                .bind(template)
                .bind(format!("gen-outbox-{outbox_seq}@example.org"))
                .bind(Vec::<u8>::new())
                .bind(ts(m.received))
                .bind(ts(m.received))
                .bind(ts(m.received))
                .execute(&mut *tx)
                .await
                .unwrap();
            }
            // Milestone times: a few hours to several weeks after receipt; some never (open).
            sqlx::query("DELETE FROM milestones WHERE complaint_id = $1 AND milestone IN ('acknowledged', 'first_reaction', 'solution_proposed', 'handled')")
                .bind(id)
                .execute(&mut *tx)
                .await
                .unwrap();
            let mut at = m.received;
            for (step, milestone) in MILESTONES.iter().enumerate() {
                if step > 0 && $rng.chance(12) {
                    break;
                }
                let long = $rng.chance(if step == 0 { 10 } else { 20 });
                let hours = match (step, long) {
                    (0, true) => 1 + $rng.below(200),
                    (0, false) => 1 + $rng.below(30),
                    (_, true) => 4 + $rng.below(700),
                    (_, false) => 4 + $rng.below(200),
                };
                at += Duration::hours(hours as i64);
                sqlx::query(
                    "INSERT INTO milestones (complaint_id, milestone, completed_at, actor) VALUES ($1, $2, $3, 'staff:behandelaar0@example.org')",
                )
                .bind(id)
                .bind(milestone)
                .bind(ts(at))
                .execute(&mut *tx)
                .await
                .unwrap();
            }
        }
        tx.commit().await.unwrap();
    }};
}

/// The fixture generator, on the installation's own database (SQLite or PostgreSQL).
async fn give_facts(app: &TestApp, rng: &mut Rng, made: &mut [Made]) {
    match app.open_database().await {
        Database::Sqlite(db) => {
            give_facts_in!(db, rng, made);
            db.close().await;
        }
        Database::Postgres(db) => {
            give_facts_in!(db, rng, made);
            db.close().await;
        }
    }
}

/// Makes the register: 1,000 complaints a year, then a group of three alike that a public
/// report must not single out.
fn generated() -> (TestApp, Vec<Made>) {
    let app = TestApp::spawn_with_config(|c| {
        *c = c.replace(
            "[procedure]\npreset = \"mzo\"",
            "[procedure]\npreset = \"mzo\"\ncategories = [\"Roostering\", \"Bejegening\", \"Communicatie\", \"Facilitair\"]",
        );
    });
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut received = intake(&app, &mut rng, 2025, 1000, 0);
    // The organisation changes its procedure at the turn of the year.
    app.set_env("KLACHTD__PROCEDURE__PRESET", "korein");
    received.extend(intake(&app, &mut rng, 2026, 1000, 1000));
    // The small group: three complaints at the desk in March 2026, all "Integriteit".
    for i in 2000..2003 {
        let at = Amsterdam
            .with_ymd_and_hms(2026, 3, 10 + i as u32 - 2000, 10, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let mail = Mail::new(
            &format!("\"Ouder{i} Achternaam{i}\" <ouder{i}@example.nl>"),
            &format!("Klacht uniekwoord{i}"),
        )
        .message_id(&format!("gen{i}@example.nl"))
        .body(&format!("Een gevoelige klacht, uniekwoord{i}."));
        app.deliver_eml(&mail.build(), at);
        received.push((i, at));
    }
    app.run_once();

    // References by the unique word of each mail's subject.
    let list = app.list();
    let by_word: BTreeMap<String, (String, String, String)> = list
        .iter()
        .map(|c| {
            let subject = c["subject"].as_str().unwrap_or_default();
            let word = subject
                .split_whitespace()
                .find(|w| w.starts_with("uniekwoord"))
                .unwrap_or_else(|| panic!("generated subject {subject:?}"))
                .to_string();
            (
                word,
                (
                    c["reference"].as_str().unwrap().to_string(),
                    c["complainant"].as_str().unwrap_or_default().to_string(),
                    c["procedure"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(by_word.len(), 2003, "every generated mail is one complaint");
    let procedures: Vec<&str> = by_word.values().map(|v| v.2.as_str()).collect();
    assert!(procedures.contains(&"mzo") && procedures.contains(&"korein"));

    let mut made: Vec<Made> = received
        .iter()
        .map(|&(i, received)| {
            let word = format!("uniekwoord{i}");
            let (reference, address, _) = by_word[&word].clone();
            let small_group = i >= 2000;
            let category = if small_group {
                // Free text typed by staff: not a listed category, so never public.
                Some("Integriteit meester Pietersen".to_string())
            } else if rng.chance(8) {
                None
            } else {
                Some(rng.pick(CATEGORIES).to_string())
            };
            let cause = if rng.chance(15) {
                None
            } else if rng.chance(5) {
                Some(format!("Eenmalig voorval oorzaakwoord{i}"))
            } else {
                Some(rng.pick(CAUSES).to_string())
            };
            let measured = cause.is_some() && rng.chance(4);
            Made {
                reference,
                received,
                address,
                name: format!("Achternaam{i}"),
                unique_word: word,
                kind: if small_group {
                    "complaint".into()
                } else {
                    rng.pick(KINDS).to_string()
                },
                category,
                severity: if small_group || rng.chance(6) {
                    "serious".into()
                } else {
                    "normal".into()
                },
                channel: if small_group {
                    Some("desk".into())
                } else if rng.chance(15) {
                    Some(rng.pick(CHANNELS).to_string())
                } else {
                    None
                },
                nature: match rng.below(3) {
                    0 => None,
                    1 => Some("incident".into()),
                    _ => Some("structural".into()),
                },
                cause,
                agreement: match rng.below(4) {
                    0 => None,
                    1 => Some(false),
                    _ => Some(true),
                },
                satisfaction: rng.chance(40).then(|| 1 + rng.below(5) as u8),
                escalations: if rng.chance(10) {
                    1 + rng.below(2) as u32
                } else {
                    0
                },
                appeal: rng.chance(3),
                measure: measured.then(|| {
                    (
                        format!("Maatregel maatregelwoord{i}"),
                        received + Duration::days(3 + rng.below(20) as i64),
                    )
                }),
            }
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(give_facts(&app, &mut rng, &mut made));
    (app, made)
}

fn in_year(m: &Made, year: i32) -> bool {
    m.day().year() == year
}

/// The counts of one breakdown as the report lists them: label -> (current, previous).
fn breakdown(report: &Value, key: &str) -> BTreeMap<String, (u64, u64)> {
    report[key]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["label"].as_str().unwrap_or("(none)").to_string(),
                (
                    r["counts"]["current"].as_u64().unwrap(),
                    r["counts"]["previous"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn expected_breakdown(
    made: &[Made],
    year: i32,
    key: impl Fn(&Made) -> Option<String>,
) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for m in made {
        let label = key(m).unwrap_or_else(|| "(none)".into());
        if in_year(m, year) {
            out.entry(label).or_default().0 += 1;
        } else if in_year(m, year - 1) {
            out.entry(label).or_default().1 += 1;
        }
    }
    out
}

fn nearest_rank(sorted: &[i64], pct: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

fn median(sorted: &[i64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2] as f64),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0),
    }
}

#[test]
fn every_figure_of_the_report_matches_an_independent_count() {
    let (app, made) = generated();
    app.set_now("2027-01-15T09:00:00+01:00");
    let today = NaiveDate::from_ymd_opt(2027, 1, 15).unwrap();
    let report = app.json(&["report", "--period", "2026", "--format", "json"]);
    let (y, prev) = (2026, 2025);

    // Totals and every breakdown, this year and the year before.
    let total = made.iter().filter(|m| in_year(m, y)).count() as u64;
    let total_prev = made.iter().filter(|m| in_year(m, prev)).count() as u64;
    assert_eq!(report["total"]["current"], total);
    assert_eq!(report["total"]["previous"], total_prev);
    assert_eq!(
        breakdown(&report, "by_kind"),
        expected_breakdown(&made, y, |m| Some(m.kind.clone()))
    );
    assert_eq!(
        breakdown(&report, "by_category"),
        expected_breakdown(&made, y, |m| m.category.clone())
    );
    assert_eq!(
        breakdown(&report, "by_severity"),
        expected_breakdown(&made, y, |m| Some(m.severity.clone()))
    );
    assert_eq!(
        breakdown(&report, "by_channel"),
        expected_breakdown(&made, y, |m| Some(
            m.channel.clone().unwrap_or_else(|| "email".into())
        ))
    );
    assert_eq!(
        breakdown(&report, "by_nature"),
        expected_breakdown(&made, y, |m| m.nature.clone())
    );

    // Per month.
    let months: Vec<u64> = report["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["total"].as_u64().unwrap())
        .collect();
    let expected_months: Vec<u64> = (1..=12)
        .map(|month| {
            made.iter()
                .filter(|m| in_year(m, y) && m.day().month() == month)
                .count() as u64
        })
        .collect();
    assert_eq!(months, expected_months);

    // Escalations, not agreed, appeals, satisfaction.
    let this: Vec<&Made> = made.iter().filter(|m| in_year(m, y)).collect();
    assert_eq!(
        report["escalations"],
        this.iter().map(|m| u64::from(m.escalations)).sum::<u64>()
    );
    assert_eq!(
        report["escalated"],
        this.iter().filter(|m| m.escalations > 0).count() as u64
    );
    assert_eq!(
        report["not_agreed"],
        this.iter().filter(|m| m.agreement == Some(false)).count() as u64
    );
    assert_eq!(
        report["appeals_pointed"],
        this.iter().filter(|m| m.appeal).count() as u64
    );
    let scores: Vec<u8> = this.iter().filter_map(|m| m.satisfaction).collect();
    let mut distribution = [0u64; 5];
    for s in &scores {
        distribution[usize::from(*s) - 1] += 1;
    }
    assert_eq!(report["satisfaction"]["responses"], scores.len() as u64);
    assert_eq!(
        report["satisfaction"]["distribution"],
        serde_json::json!(distribution)
    );
    let mean = scores.iter().map(|&s| f64::from(s)).sum::<f64>() / scores.len() as f64;
    assert!((report["satisfaction"]["mean"].as_f64().unwrap() - mean).abs() < 1e-9);

    // Causes: counted after trimming and ignoring case, most frequent first.
    let mut causes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for m in &made {
        if let Some(c) = &m.cause {
            let e = causes.entry(c.to_lowercase()).or_default();
            if in_year(m, y) {
                e.0 += 1;
            } else if in_year(m, prev) {
                e.1 += 1;
            }
        }
    }
    causes.retain(|_, v| v.0 > 0);
    let reported: BTreeMap<String, (u64, u64)> = report["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["cause"].as_str().unwrap().to_lowercase(),
                (
                    c["counts"]["current"].as_u64().unwrap(),
                    c["counts"]["previous"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(reported, causes);
    let firsts: Vec<u64> = report["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["counts"]["current"].as_u64().unwrap())
        .collect();
    assert!(firsts.windows(2).all(|w| w[0] >= w[1]), "{firsts:?}");

    // Measures recorded in 2026, and causes that came back after one.
    let mut measures: Vec<String> = made
        .iter()
        .filter_map(|m| m.measure.as_ref().map(|(_, at)| (m, at)))
        .filter(|(_, at)| at.with_timezone(&Amsterdam).year() == y)
        .map(|(m, _)| m.reference.clone())
        .collect();
    measures.sort();
    let mut reported: Vec<String> = report["measures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["reference"].as_str().unwrap().to_string())
        .collect();
    reported.sort();
    assert_eq!(reported, measures);
    for r in report["recurring_causes"].as_array().unwrap() {
        let cause = r["cause"].as_str().unwrap().to_lowercase();
        let first_at = made
            .iter()
            .filter(|m| m.cause.as_deref().map(str::to_lowercase) == Some(cause.clone()))
            .filter_map(|m| m.measure.as_ref().map(|(_, at)| *at))
            .min()
            .unwrap();
        for back in r["came_back"].as_array().unwrap() {
            let m = made.iter().find(|m| m.reference == *back).unwrap();
            assert!(m.received > first_at && in_year(m, y));
        }
    }
    let some_recurring = made.iter().any(|m| {
        in_year(m, y)
            && m.cause.as_deref().is_some_and(|c| {
                made.iter().any(|o| {
                    o.reference != m.reference
                        && o.cause.as_deref() == Some(c)
                        && o.measure.as_ref().is_some_and(|(_, at)| *at < m.received)
                })
            })
    });
    assert_eq!(
        !report["recurring_causes"].as_array().unwrap().is_empty(),
        some_recurring
    );

    // Deadlines: from each complaint's due and done dates in the register.
    let register = app.json(&[
        "register",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
        "--format",
        "json",
    ]);
    let rows = register.as_array().unwrap();
    assert_eq!(rows.len() as u64, total);
    let mut judged_both = false;
    for stats in report["milestones"].as_array().unwrap() {
        let id = stats["milestone"].as_str().unwrap();
        let mut days: Vec<i64> = Vec::new();
        let (mut met, mut missed, mut pending) = (0u64, 0u64, 0u64);
        let mut missed_refs: Vec<String> = Vec::new();
        for row in rows {
            let Some(cell) = row["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["milestone"] == id)
            else {
                continue;
            };
            let date = |v: &Value| {
                v.as_str()
                    .map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
            };
            let (due, done) = (date(&cell["due"]), date(&cell["done"]));
            if done.is_some() {
                days.push(cell["working_days"].as_i64().unwrap());
            }
            match (due, done) {
                (None, _) => {}
                (Some(due), Some(done)) if done <= due => met += 1,
                (Some(_), Some(_)) => {
                    missed += 1;
                    missed_refs.push(row["reference"].as_str().unwrap().into());
                }
                (Some(due), None) if due < today => {
                    missed += 1;
                    missed_refs.push(row["reference"].as_str().unwrap().into());
                }
                (Some(_), None) => pending += 1,
            }
        }
        days.sort_unstable();
        assert_eq!(stats["completed"], days.len() as u64, "{id}");
        assert_eq!(stats["met"], met, "{id}");
        assert_eq!(stats["missed"], missed, "{id}");
        assert_eq!(stats["pending"], pending, "{id}");
        assert_eq!(stats["median_days"].as_f64(), median(&days), "{id}");
        assert_eq!(stats["p90_days"].as_i64(), nearest_rank(&days, 90), "{id}");
        if met + missed > 0 {
            let share = met as f64 / (met + missed) as f64;
            assert!((stats["share_met"].as_f64().unwrap() - share).abs() < 1e-9);
        }
        let mut listed: Vec<String> = stats["missed_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["reference"].as_str().unwrap().to_string())
            .collect();
        listed.sort();
        missed_refs.sort();
        assert_eq!(listed, missed_refs, "{id}");
        judged_both |= missed > 0 && met > 0;
    }
    assert!(judged_both, "the data has deadlines both met and missed");

    // The CSV holds the same figures, read back by a CSV parser.
    let dir = app.root.join("report-2026");
    app.cmd_ok(&[
        "report",
        "--period",
        "2026",
        "--output",
        dir.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(dir.join("report.csv")).unwrap();
    assert!(bytes.starts_with("\u{feff}".as_bytes()), "UTF-8 with BOM");
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(&bytes[3..]);
    let records: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let find = |section: &str, item: &str| {
        records
            .iter()
            .find(|r| &r[0] == section && &r[1] == item)
            .unwrap_or_else(|| panic!("no CSV row {section};{item}"))
    };
    assert_eq!(find("totaal", "")[2], total.to_string());
    assert_eq!(find("totaal", "")[3], total_prev.to_string());
    for (label, (cur, _)) in expected_breakdown(&made, y, |m| m.category.clone()) {
        let label = if label == "(none)" {
            "(niet ingevuld)".to_string()
        } else {
            label
        };
        assert_eq!(find("Categorie", &label)[2], cur.to_string());
    }
    assert_eq!(
        find("tevredenheid", "antwoorden")[2],
        scores.len().to_string()
    );
    // report.txt: the same total; report.html: every chart embedded.
    let text = std::fs::read_to_string(dir.join("report.txt")).unwrap();
    assert!(text.contains(&format!("Ontvangen: {total} (")), "{text}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 3);

    // Looked at as a person would: rendered by headless Chromium, with its charts.
    if let Some(browser) = chromium() {
        let shot = app.root.join("report.png");
        screenshot(&browser, &app.root, &dir.join("report.html"), &shot);
        let (w, h, blue) = bar_pixels(&shot);
        assert!(w >= 700 && h >= 2000, "{w}x{h}");
        // Three charts of 720 px wide with a year of bars: tens of thousands of bar pixels.
        assert!(
            blue > 20_000,
            "the charts are not rendered: {blue} bar-coloured pixels"
        );
        // The same page without its images has none: the count is of the charts.
        let bare = dir.join("bare.html");
        std::fs::write(
            &bare,
            html.replace("src=\"data:image/png;base64,", "src=\"data:,"),
        )
        .unwrap();
        let bare_shot = app.root.join("bare.png");
        screenshot(&browser, &app.root, &bare, &bare_shot);
        let (_, _, none) = bar_pixels(&bare_shot);
        assert!(none < 100, "{none} bar-coloured pixels without images");
        // KLACHTD_SCREENSHOT_TO=docs/report.png keeps the screenshot for the README.
        if let Ok(to) = std::env::var("KLACHTD_SCREENSHOT_TO") {
            std::fs::copy(&shot, common::repo().join(to)).unwrap();
        }
    }
}

/// Headless Chromium, or None when it is missing and the full stack is not required (CI sets
/// KLACHTD_REQUIRE_STACK, and scripts/test.sh installs Debian's `chromium`).
fn chromium() -> Option<String> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = std::process::Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return Some(name.to_string());
        }
    }
    assert!(
        std::env::var_os("KLACHTD_REQUIRE_STACK").is_none(),
        "chromium is needed for the report screenshot test (apt-get install chromium)"
    );
    eprintln!("chromium not installed: the screenshot check is skipped");
    None
}

fn screenshot(
    browser: &str,
    root: &std::path::Path,
    html: &std::path::Path,
    png: &std::path::Path,
) {
    let profile = root.join(format!(
        "chromium-profile-{}",
        png.file_stem().unwrap().to_string_lossy()
    ));
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=800,3400",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--screenshot={}", png.display()),
            &format!("file://{}", html.display()),
        ])
        .output()
        .expect("run chromium");
    assert!(
        out.status.success() && png.exists(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Size of a screenshot and how many of its pixels are the charts' bar colour (give or take
/// a little for colour management).
fn bar_pixels(png_path: &std::path::Path) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    let (r, g, b) = klachtd::mail::charts::BAR_COLOUR;
    let near = |x: u8, y: u8| x.abs_diff(y) <= 8;
    let n = buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| near(p[0], r) && near(p[1], g) && near(p[2], b))
        .count();
    (info.width, info.height, n)
}

/// The shown cells of one public breakdown (the period's column) and its total.
fn public_column(p: &Value, key: &str) -> (Vec<Value>, Value) {
    let b = &p[key];
    (
        b["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["counts"]["current"].clone())
            .collect(),
        b["total"]["current"].clone(),
    )
}

#[test]
fn the_public_report_gives_nobody_away() {
    let (app, made) = generated();
    app.set_now("2027-01-15T09:00:00+01:00");
    let public = app.json(&["report", "--period", "2026", "--public", "--format", "json"]);
    let dir = app.root.join("public-2026");
    app.cmd_ok(&[
        "report",
        "--period",
        "2026",
        "--public",
        "--output",
        dir.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let markdown = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let json_text = public.to_string();
    for text in [&html, &markdown, &json_text] {
        // No reference, name, address, word of a complaint, cause or measure.
        assert!(!text.contains("KL-20"), "a reference is shown");
        for m in &made {
            for needle in [&m.address, &m.name, &m.unique_word] {
                assert!(!text.contains(needle.as_str()), "{needle} is shown");
            }
        }
        for needle in [
            "oorzaakwoord",
            "maatregelwoord",
            "Pietersen",
            "behandelaar",
            "example",
        ] {
            assert!(!text.contains(needle), "{needle} is shown");
        }
        for cause in CAUSES {
            assert!(!text.contains(cause), "cause {cause} is shown");
        }
    }
    // 002's text and the legend.
    assert!(html.contains("aard en de afhandeling"));
    assert!(markdown.contains("aard en de afhandeling"));
    assert!(markdown.contains("< 5"), "small counts say < 5");

    // No count from 1 to 4 anywhere in the JSON.
    fn walk(v: &Value, out: &mut Vec<u64>) {
        match v {
            Value::Number(n) if n.is_u64() => out.push(n.as_u64().unwrap()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "year" | "month" | "threshold" | "p90_days"))
                .for_each(|(_, x)| walk(x, out)),
            _ => {}
        }
    }
    let mut numbers = Vec::new();
    walk(&public, &mut numbers);
    assert!(numbers.iter().all(|&n| n == 0 || n >= 5), "{numbers:?}");

    // The small group (3 at the desk, all serious, free-text category) cannot be computed back:
    // in every breakdown whose total is shown, the hidden cells are 0 or at least two, and
    // what they hold together (the total minus what is shown) is at least 5, and not all
    // at their upper bound 4 when all say "< 5".
    let letters = made
        .iter()
        .filter(|m| in_year(m, 2026) && m.channel.as_deref() == Some("desk"))
        .count();
    assert_eq!(letters, 3, "the data has a small channel");
    for key in [
        "by_kind",
        "by_category",
        "by_severity",
        "by_channel",
        "by_nature",
    ] {
        let (cells, total) = public_column(&public, key);
        let Some(total) = total.as_u64() else {
            continue;
        };
        let shown: u64 = cells.iter().filter_map(Value::as_u64).sum();
        let hidden: Vec<&Value> = cells.iter().filter(|c| !c.is_u64()).collect();
        assert_ne!(
            hidden.len(),
            1,
            "{key}: one hidden cell follows from the total"
        );
        if !hidden.is_empty() {
            let remainder = total - shown;
            assert!(remainder >= 5, "{key}: hidden cells hold {remainder}");
            assert!(remainder > hidden.len() as u64, "{key}: all ones");
            if hidden.iter().all(|c| c.as_str() == Some("< 5")) {
                assert_ne!(remainder, 4 * hidden.len() as u64, "{key}: all fours");
            }
        }
    }
    // The desk channel is hidden.
    let channel = public["by_channel"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == "desk")
        .unwrap()
        .clone();
    assert!(!channel["counts"]["current"].is_u64(), "{channel}");
    // The free-text category is not a row at all.
    assert!(
        !public["by_category"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["label"]
                .as_str()
                .is_some_and(|l| l.contains("Integriteit")))
    );
}

/// A small register for the mail tests: a few complaints in 2026, one with a cause.
fn small_register(config: &str) -> TestApp {
    let app = TestApp::spawn_with_config(|c| c.push_str(config));
    for i in 0..6 {
        let at = Amsterdam
            .with_ymd_and_hms(2026, 3 + i, 10, 10, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let mail = Mail::new(
            &format!("klager{i}@example.nl"),
            &format!("Klacht {i} lesrooster"),
        )
        .message_id(&format!("small{i}@example.nl"))
        .body(&format!("Klacht nummer {i} over het rooster."));
        app.deliver_eml(&mail.build(), at);
    }
    app.set_now("2026-11-30T10:00:00+01:00");
    app.run_once();
    let first = app.references()[0].clone();
    app.cmd_ok(&["set", &first, "cause", "Rooster te laat"]);
    app.cmd_ok(&["set", &first, "measure", "Rooster een week vooruit"]);
    app
}

const YEARLY_TO_DIRECTOR: &str =
    "\n[[reports.mail]]\nschedule = \"0 0 8 15 1 *\"\nperiod = \"year\"\nto = \"director\"\n";

fn reports_to(app: &TestApp, to: &str) -> Vec<common::SentMail> {
    app.sent_to(to)
        .into_iter()
        .filter(|m| m.subject.starts_with("Klachtenrapportage"))
        .collect()
}

#[test]
fn the_yearly_report_is_mailed_once_with_its_charts_inline_and_the_csv_attached() {
    let app = small_register(YEARLY_TO_DIRECTOR);
    // The day before: nothing; 15 January 2027 is a Friday, 08:30 is in working hours.
    app.cmd_ok(&["tick", "--at", "2027-01-14T12:00:00+01:00"]);
    assert!(reports_to(&app, common::DIRECTOR).is_empty());
    app.cmd_ok(&["tick", "--at", "2027-01-15T08:30:00+01:00"]);
    app.cmd_ok(&["tick", "--at", "2027-01-15T09:30:00+01:00"]);
    let mails = reports_to(&app, common::DIRECTOR);
    assert_eq!(mails.len(), 1, "once");
    let mail = &mails[0];
    assert!(mail.subject.contains("2026"), "{}", mail.subject);
    assert!(mail.text.contains("Ontvangen: 6 (+6)"), "{}", mail.text);
    assert!(mail.text.contains("Rooster te laat"));

    // The structure: text, and HTML with three images by Content-ID, then the CSV.
    let msg = mail_parser::MessageParser::default()
        .parse(&mail.raw)
        .unwrap();
    let html = msg.body_html(0).unwrap().into_owned();
    let mut cids = Vec::new();
    let mut csv = None;
    for part in msg.parts.iter() {
        let ct = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()));
        match ct.as_deref() {
            Some("image/png") => {
                let cid = part.content_id().unwrap().to_string();
                assert!(part.contents().starts_with(b"\x89PNG"), "a PNG");
                cids.push(cid);
            }
            Some("text/csv") => {
                assert!(part.attachment_name().unwrap().ends_with(".csv"));
                csv = Some(part.contents().to_vec());
            }
            _ => {}
        }
    }
    assert_eq!(cids.len(), 3, "three charts");
    for cid in &cids {
        assert!(
            html.contains(&format!("src=\"cid:{cid}\"")),
            "{cid} not shown"
        );
    }
    let csv = csv.expect("the figures attached");
    assert!(csv.starts_with("\u{feff}".as_bytes()));
    assert!(String::from_utf8_lossy(&csv).contains("totaal;;6;0"));

    // A fire missed by more than a week (klachtd was down) is not sent late.
    let late = small_register(YEARLY_TO_DIRECTOR);
    late.cmd_ok(&["tick", "--at", "2027-02-01T10:00:00+01:00"]);
    assert!(reports_to(&late, common::DIRECTOR).is_empty());
}

#[test]
fn a_report_config_with_a_bad_line_is_named_by_its_key() {
    let app = TestApp::spawn_with_config(|c| {
        c.push_str("\n[[reports.mail]]\nschedule = \"0 0 8 15 1 *\"\nperiod = \"decade\"\nto = \"director\"\n")
    });
    let out = app.cmd(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(err.contains("reports.mail[0].period"), "{err}");
    let app = TestApp::spawn_with_config(|c| {
        c.push_str(
            "\n[[reports.mail]]\nschedule = \"0 0 8 15 1 *\"\nperiod = \"year\"\nto = \"nobody\"\n",
        )
    });
    let out = app.cmd(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(err.contains("reports.mail[0].to"), "{err}");
}

#[test]
fn report_usage_errors_and_mail_to() {
    let app = small_register("");
    for args in [
        &["report"][..],
        &["report", "--period", "2026-Q5"],
        &["report", "--period", "2026", "--format", "markdown"],
        &["report", "--period", "2026", "--lang", "de"],
        &["report", "--period", "2026", "--mail-to", "nobody"],
    ] {
        let out = app.cmd(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // English, and a quarter.
    let text = app.cmd_ok(&["report", "--period", "2026-Q2", "--lang", "en"]);
    assert!(text.contains("COMPLAINTS REPORT Q2 2026"), "{text}");
    // April to June against one in March.
    assert!(text.contains("Received: 3 (+2)"), "{text}");
    // --mail-to queues it now; run --once delivers it.
    app.cmd_ok(&["report", "--period", "2026", "--mail-to", "director"]);
    app.run_once();
    assert_eq!(reports_to(&app, common::DIRECTOR).len(), 1);
    // The public one by mail: HTML and Markdown attached.
    app.cmd_ok(&[
        "report",
        "--period",
        "2026",
        "--public",
        "--mail-to",
        "receiver",
    ]);
    app.run_once();
    let public: Vec<_> = app
        .sent_to(common::RECEIVER)
        .into_iter()
        .filter(|m| m.subject.starts_with("Openbaar jaarverslag"))
        .collect();
    assert_eq!(public.len(), 1);
    let raw = String::from_utf8_lossy(&public[0].raw);
    assert!(raw.contains("jaarverslag-2026.md") && raw.contains("jaarverslag-2026.html"));
}

#[test]
fn a_broken_report_template_does_not_stop_the_scheduler_and_the_report_follows_when_fixed() {
    let app = small_register(YEARLY_TO_DIRECTOR);
    // The admin's copy of the templates, with a variable the report does not have.
    let templates = app.root.join("templates");
    let copy = std::process::Command::new("cp")
        .args(["-r"])
        .arg(common::repo().join("templates"))
        .arg(&templates)
        .status()
        .unwrap();
    assert!(copy.success());
    let txt = templates.join("nl/report.txt.hbs");
    let good = std::fs::read_to_string(&txt).unwrap();
    std::fs::write(&txt, format!("{{{{report.no_such_figure}}}}\n{good}")).unwrap();
    app.set_env("KLACHTD__TEMPLATES__DIR", templates.to_str().unwrap());
    let out = app.cmd(&["tick", "--at", "2027-01-15T08:30:00+01:00"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(reports_to(&app, common::DIRECTOR).is_empty());
    // Fixed: the next tick sends it, once.
    std::fs::write(&txt, good).unwrap();
    app.cmd_ok(&["tick", "--at", "2027-01-15T10:00:00+01:00"]);
    app.cmd_ok(&["tick", "--at", "2027-01-15T11:00:00+01:00"]);
    assert_eq!(reports_to(&app, common::DIRECTOR).len(), 1);
}

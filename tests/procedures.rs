//! The procedure engine end to end: for every preset, a complaint received on a chosen date,
//! `klachtd tick --at` across its life (each tick a fresh process: a restart between every two
//! ticks), and the exact mails that came out (template, recipients, day). Dates in the
//! comments are worked out by hand from the Dutch calendar.

mod common;

use std::cell::Cell;

use common::{Mail, TestApp, ts};
use serde_json::Value;

struct Scenario {
    app: TestApp,
    seen: Cell<usize>,
}

impl Scenario {
    fn new(preset: &str) -> Self {
        let app = TestApp::spawn_with_config(|c| {
            *c = c.replace("preset = \"mzo\"", &format!("preset = \"{preset}\""));
        });
        // The daily digest has its own test; here it would add a mail every working morning.
        app.set_env("KLACHTD__SCHEDULE__DIGEST", "\"\"");
        Scenario {
            app,
            seen: Cell::new(0),
        }
    }

    /// Deliver a complaint "received" at `received` and run intake at that moment.
    fn receive(&self, received: &str, from: &str, subject: &str, body: &str) -> String {
        let mail = Mail::new(from, subject).body(body).build();
        self.app.deliver_eml(&mail, ts(received));
        self.app.set_now(received);
        self.app.run_once();
        let list = self.app.list();
        list.last()
            .and_then(|c| c["reference"].as_str())
            .map(str::to_string)
            .expect("registered")
    }

    /// Mails queued since the last call: (template, recipients, created_at).
    fn new_mails(&self) -> Vec<(String, String, String)> {
        let outbox = self.app.outbox();
        let fresh: Vec<(String, String, String)> = outbox[self.seen.get()..]
            .iter()
            .map(|o: &Value| {
                (
                    o["template"].as_str().unwrap_or("").to_string(),
                    o["recipients"].as_str().unwrap_or("").to_string(),
                    o["created_at"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        self.seen.set(outbox.len());
        fresh
    }

    /// Mails queued since the last call, as (template, recipients).
    fn sent_now(&self) -> Vec<(String, String)> {
        self.new_mails()
            .into_iter()
            .map(|(t, to, _)| (t, to))
            .collect()
    }

    fn tick(&self, at: &str) -> Vec<(String, String)> {
        self.app.set_now(at);
        self.app.cmd_ok(&["tick", "--at", at]);
        let mails = self.new_mails();
        for (_, _, created) in &mails {
            assert_eq!(ts(created), ts(at), "mail queued at the tick time");
        }
        mails.into_iter().map(|(t, r, _)| (t, r)).collect()
    }

    fn cli(&self, at: &str, args: &[&str]) -> String {
        self.app.set_now(at);
        self.app.cmd_ok(args)
    }
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn mzo_across_christmas_and_new_year_with_escalations_and_catch_up() {
    let s = Scenario::new("mzo");
    // Wednesday 23 December 2026, 10:00.
    let r = s.receive(
        "2026-12-23T10:00:00+01:00",
        "school@example.nl",
        "Les niet doorgegaan",
        "De les van groep 5 ging niet door.",
    );
    assert_eq!(r, "KL-2026-0001");
    let intake = s.new_mails();
    assert_eq!(intake.len(), 2, "{intake:?}");
    assert!(
        intake
            .iter()
            .any(|(t, to, _)| t == "acknowledgement" && to == "school@example.nl")
    );
    assert!(
        intake
            .iter()
            .any(|(t, to, _)| t == "new_complaint" && to == common::RECEIVER)
    );

    // First reaction: 5 working days after Wed 23 Dec = Thu 31 Dec (24, 28, 29, 30, 31; the
    // 25th and 26th are Christmas). Reminder one working day before: Wed 30 Dec, 08:00.
    assert!(s.tick("2026-12-29T17:00:00+01:00").is_empty());
    assert!(s.tick("2026-12-30T07:59:00+01:00").is_empty());
    assert_eq!(
        s.tick("2026-12-30T08:00:00+01:00"),
        pairs(&[("reminder", common::RECEIVER)])
    );
    // Exactly once: the same tick again (a new process) sends nothing.
    assert!(s.tick("2026-12-30T08:00:00+01:00").is_empty());
    s.cli(
        "2026-12-30T11:00:00+01:00",
        &["complete", &r, "first_reaction"],
    );

    // Solution proposed: 7 working days = Tue 5 Jan 2027 (1 Jan is Nieuwjaarsdag). Missed: the
    // management team hears at the start of the next working day, Wed 6 Jan 08:00.
    assert!(s.tick("2027-01-06T07:00:00+01:00").is_empty());
    assert_eq!(
        s.tick("2027-01-06T08:00:00+01:00"),
        pairs(&[("escalation", common::MANAGEMENT)])
    );

    // Downtime until Wed 20 Jan: each missed action runs once, late. Handled (14 working days)
    // was due Thu 14 Jan: its reminder (Tue 12 Jan) is skipped as stale, the escalation to the
    // director and the satisfaction survey (3 weeks: Wed 13 Jan) go out now.
    let late = s.tick("2027-01-20T09:00:00+01:00");
    assert_eq!(late.len(), 2, "{late:?}");
    assert!(late.contains(&("satisfaction_survey".into(), "school@example.nl".into())));
    assert!(late.contains(&("escalation".into(), common::DIRECTOR.into())));
    assert!(s.tick("2027-01-21T09:00:00+01:00").is_empty());
    let history = s.app.history_events(&r);
    assert!(history.iter().any(|e| e == "action_skipped"), "{history:?}");
    let show = s.app.show(&r);
    let details: Vec<&str> = show["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["detail"].as_str())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("escalate_handled") && d.contains("run late")),
        "{details:?}"
    );
}

/// Issue #9 finding 2: when mzo's 5-working-day reaction deadline passes, the director hears
/// of it ("Mocht de klacht om welke reden dan ook onvoldoende worden afgehandeld kan deze
/// worden ingediend bij de directeur"), not only a reminder the day before.
#[test]
fn mzo_missed_first_reaction_is_escalated_to_the_director() {
    let s = Scenario::new("mzo");
    s.receive(
        "2026-12-23T10:00:00+01:00",
        "school@example.nl",
        "Les niet doorgegaan",
        "De les van groep 5 ging niet door.",
    );
    s.new_mails();
    assert_eq!(
        s.tick("2026-12-30T08:00:00+01:00"),
        pairs(&[("reminder", common::RECEIVER)])
    );
    // Due Thu 31 Dec; Fri 1 Jan is Nieuwjaarsdag, so the next working morning is Mon 4 Jan.
    assert!(s.tick("2027-01-01T09:00:00+01:00").is_empty());
    assert!(s.tick("2027-01-04T07:59:00+01:00").is_empty());
    // With it, the reminder for the 7-working-day "eerste reactie richting oplossing" (Tue 5 Jan).
    assert_eq!(
        s.tick("2027-01-04T08:00:00+01:00"),
        pairs(&[
            ("escalation", common::DIRECTOR),
            ("reminder", common::RECEIVER)
        ])
    );
    assert!(
        s.tick("2027-01-04T08:00:00+01:00").is_empty(),
        "exactly once"
    );
}

#[test]
fn friday_evening_and_saturday_receipt_share_their_deadline() {
    let s = Scenario::new("mzo");
    s.receive(
        "2026-11-27T20:30:00+01:00",
        "a@example.nl",
        "Vrijdagavond",
        "klacht",
    );
    s.receive(
        "2026-11-28T11:00:00+01:00",
        "b@example.nl",
        "Zaterdag",
        "klacht",
    );
    // Only the acknowledgements go out at once; the receiver hears of both complaints on
    // Monday morning, not on Friday night or Saturday.
    let intake = s.sent_now();
    assert_eq!(
        intake,
        pairs(&[
            ("acknowledgement", "a@example.nl"),
            ("acknowledgement", "b@example.nl")
        ])
    );
    assert!(s.tick("2026-11-28T18:00:00+01:00").is_empty());
    assert!(s.tick("2026-11-29T12:00:00+01:00").is_empty());
    assert_eq!(
        s.tick("2026-11-30T08:00:00+01:00"),
        pairs(&[
            ("new_complaint", common::RECEIVER),
            ("new_complaint", common::RECEIVER)
        ])
    );
    // 5 working days after either: Fri 4 Dec. Reminders both Thu 3 Dec 08:00.
    assert!(s.tick("2026-12-02T18:00:00+01:00").is_empty());
    let mails = s.tick("2026-12-03T08:00:00+01:00");
    assert_eq!(
        mails,
        pairs(&[
            ("reminder", common::RECEIVER),
            ("reminder", common::RECEIVER)
        ])
    );
}

#[test]
fn korein_saturday_serious_complaint_alerts_director_and_cluster_manager_at_once() {
    let s = Scenario::new("korein");
    // Saturday 28 November 2026: outside working hours, but serious alerts do not wait.
    let r = s.receive(
        "2026-11-28T15:00:00+01:00",
        "ouder@example.nl",
        "Incident bij het ophalen",
        "Er was sprake van agressie van een andere ouder bij het ophalen.",
    );
    let intake = s.new_mails();
    let templates: Vec<(&str, &str)> = intake
        .iter()
        .map(|(t, to, _)| (t.as_str(), to.as_str()))
        .collect();
    assert!(
        templates.contains(&("acknowledgement", "ouder@example.nl")),
        "{templates:?}"
    );
    assert!(
        templates.contains(&(
            "serious_alert",
            "directeur@example.org,clustermanager@example.org"
        )) || templates.contains(&("serious_alert", common::DIRECTOR)),
        "{templates:?}"
    );
    assert!(
        templates
            .iter()
            .any(|(t, to)| *t == "serious_alert" && to.contains("clustermanager@example.org")),
        "{templates:?}"
    );
    assert_eq!(s.app.show(&r)["complaint"]["severity"], "serious");

    // Handler known within 1 week: Sat 5 Dec, moved to Mon 7 Dec (Atw art. 1). Reminder one
    // working day before: Fri 4 Dec 08:00.
    assert!(s.tick("2026-12-03T12:00:00+01:00").is_empty());
    assert_eq!(
        s.tick("2026-12-04T08:00:00+01:00"),
        pairs(&[("reminder", common::RECEIVER)])
    );
    // Missed: escalation to the director on Tue 8 Dec 08:00.
    assert_eq!(
        s.tick("2026-12-08T08:00:00+01:00"),
        pairs(&[("escalation", common::DIRECTOR)])
    );
    // The handler is named: the parent is told who handles it.
    s.cli(
        "2026-12-08T10:00:00+01:00",
        &["set", &r, "handler", "leidster@example.org"],
    );
    s.cli(
        "2026-12-08T10:05:00+01:00",
        &["complete", &r, "handler_known"],
    );
    assert_eq!(
        s.sent_now(),
        pairs(&[("handler_assigned", "ouder@example.nl")])
    );
    // Solution within 3 weeks: Sat 19 Dec -> Mon 21 Dec; reminder to the handler 2 working
    // days before: Thu 17 Dec 08:00.
    assert_eq!(
        s.tick("2026-12-17T08:00:00+01:00"),
        pairs(&[("reminder", "leidster@example.org")])
    );
    assert_eq!(
        s.tick("2026-12-22T08:00:00+01:00"),
        pairs(&[
            ("escalation", common::DIRECTOR),
            ("escalation", "clustermanager@example.org")
        ])
    );
}

#[test]
fn leefstijlwijzer_across_easter_and_koningsdag_with_a_chained_deadline() {
    let s = Scenario::new("leefstijlwijzer");
    // Thursday 25 March 2027. Reaction within 5 working days: Mon 5 Apr (Goede Vrijdag 26 Mar
    // and Tweede Paasdag 29 Mar do not count). Reminder one working day before: Fri 2 Apr.
    let r = s.receive(
        "2027-03-25T14:00:00+01:00",
        "cursist@example.nl",
        "Examen",
        "Mijn examen is kwijt.",
    );
    s.new_mails();
    assert!(s.tick("2027-04-01T12:00:00+02:00").is_empty());
    assert_eq!(
        s.tick("2027-04-02T08:00:00+02:00"),
        pairs(&[("reminder", common::RECEIVER)])
    );
    // Missed: Tue 6 Apr 08:00, to the director.
    assert_eq!(
        s.tick("2027-04-06T08:00:00+02:00"),
        pairs(&[("escalation", common::DIRECTOR)])
    );
    s.cli(
        "2027-04-06T10:00:00+02:00",
        &["set", &r, "handler", "docent@example.org"],
    );
    s.cli(
        "2027-04-06T10:00:00+02:00",
        &["complete", &r, "first_reaction"],
    );
    // Handled within 14 working days after that reaction: Mon 26 Apr. Reminder 2 working days
    // before: Thu 22 Apr. Missed: Tue 27 Apr is Koningsdag, so Wed 28 Apr 08:00.
    assert_eq!(
        s.tick("2027-04-22T08:00:00+02:00"),
        pairs(&[("reminder", "docent@example.org")])
    );
    assert!(s.tick("2027-04-27T09:00:00+02:00").is_empty());
    assert_eq!(
        s.tick("2027-04-28T08:00:00+02:00"),
        pairs(&[("escalation", common::DIRECTOR)])
    );
}

#[test]
fn gelukwerkt_across_ascension_and_pentecost_with_the_verdict_loop() {
    let s = Scenario::new("gelukwerkt");
    // Monday 3 May 2027. Explanation within 2 weeks: Mon 17 May is Tweede Pinksterdag, so
    // Tue 18 May. Reminder 2 working days before: Fri 14 May (1), Thu 13 May (2)... but
    // Thursday 13 May is no holiday in 2027 (Hemelvaart is 6 May, the Friday after it 7 May).
    let r = s.receive(
        "2027-05-03T11:00:00+02:00",
        "klant@example.nl",
        "Training",
        "De training was slecht.",
    );
    let intake = s.new_mails();
    assert!(
        intake
            .iter()
            .any(|(t, to, _)| t == "new_complaint" && to == "klachtenfunctionaris@example.org"),
        "{intake:?}"
    );
    assert!(s.tick("2027-05-12T12:00:00+02:00").is_empty());
    assert_eq!(
        s.tick("2027-05-13T08:00:00+02:00"),
        pairs(&[("reminder", "klachtenfunctionaris@example.org")])
    );
    // One working day before Tue 18 May (Mon 17 May is Tweede Pinksterdag): Fri 14 May, the
    // acknowledgement's promise. No handler yet, so the receiving role hears in its place.
    assert_eq!(
        s.tick("2027-05-14T08:00:00+02:00"),
        pairs(&[
            ("delay_notice_due", common::RECEIVER),
            ("delay_notice_due", "klachtenfunctionaris@example.org")
        ])
    );
    assert!(
        s.app
            .history_events(&r)
            .iter()
            .any(|e| e == "action_fallback")
    );
    assert!(s.tick("2027-05-18T17:00:00+02:00").is_empty());
    assert_eq!(
        s.tick("2027-05-19T08:00:00+02:00"),
        pairs(&[("escalation", "klachtenfunctionaris@example.org")])
    );

    // The loop: a proposal, the complainant asks for another, a second proposal, agreement.
    s.cli(
        "2027-05-19T10:00:00+02:00",
        &[
            "set",
            &r,
            "solution",
            "Een gratis herhaling van de training.",
        ],
    );
    s.cli(
        "2027-05-19T10:01:00+02:00",
        &["complete", &r, "solution_proposed"],
    );
    assert_eq!(s.sent_now(), pairs(&[("solution", "klant@example.nl")]));
    s.cli(
        "2027-05-20T10:00:00+02:00",
        &["complete", &r, "verdict", "--verdict", "disagree"],
    );
    assert_eq!(
        s.sent_now(),
        pairs(&[("escalation", "klachtenfunctionaris@example.org")])
    );
    s.cli(
        "2027-05-21T10:00:00+02:00",
        &[
            "set",
            &r,
            "solution",
            "Een herhaling met een andere trainer.",
        ],
    );
    s.cli(
        "2027-05-21T10:01:00+02:00",
        &["complete", &r, "solution_proposed"],
    );
    assert_eq!(s.sent_now(), pairs(&[("solution", "klant@example.nl")]));
    s.cli(
        "2027-05-24T10:00:00+02:00",
        &["complete", &r, "verdict", "--verdict", "agree"],
    );
    let c = &s.app.show(&r)["complaint"];
    assert_eq!(c["solution"], "Een herhaling met een andere trainer.");
    // Completing twice is refused with exit code 2 and nothing changes.
    s.app.set_now("2027-05-24T11:00:00+02:00");
    let again = s
        .app
        .cmd(&["complete", &r, "verdict", "--verdict", "agree"]);
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn academie_seven_days_roll_past_christmas() {
    let s = Scenario::new("academie");
    // Friday 18 December 2026: 7 days is Fri 25 Dec (Eerste Kerstdag), then 26 Dec (Tweede
    // Kerstdag), Sun 27: the term ends Mon 28 Dec. Missed: director on Tue 29 Dec 08:00.
    s.receive(
        "2026-12-18T09:30:00+01:00",
        "student@example.nl",
        "Rooster",
        "Het rooster klopt niet.",
    );
    let intake = s.new_mails();
    assert!(
        intake
            .iter()
            .any(|(t, to, _)| t == "new_complaint" && to == common::DIRECTOR),
        "{intake:?}"
    );
    // Reminder 2 working days before Mon 28 Dec: Wed 23 Dec 08:00.
    assert_eq!(
        s.tick("2026-12-23T08:00:00+01:00"),
        pairs(&[("reminder", common::RECEIVER)])
    );
    assert!(s.tick("2026-12-28T17:59:00+01:00").is_empty());
    assert_eq!(
        s.tick("2026-12-29T08:00:00+01:00"),
        pairs(&[("escalation", common::DIRECTOR)])
    );
}

#[test]
fn awb_six_weeks_and_a_written_extension() {
    let s = Scenario::new("awb");
    // Monday 2 November 2026: 6 weeks is Mon 14 Dec. Extended by 4 weeks with written notice:
    // Mon 11 Jan 2027; the escalation moves with it (Tue 12 Jan 08:00).
    let r = s.receive(
        "2026-11-02T10:00:00+01:00",
        "burger@example.nl",
        "Bejegening",
        "Ik ben onheus bejegend.",
    );
    s.new_mails();
    s.cli("2026-12-01T10:00:00+01:00", &["set", &r, "extension", "4"]);
    assert_eq!(
        s.sent_now(),
        pairs(&[("delay_notice", "burger@example.nl")])
    );
    // More than the law allows is refused.
    s.app.set_now("2026-12-01T10:00:00+01:00");
    assert_eq!(
        s.app.cmd(&["set", &r, "extension", "5"]).status.code(),
        Some(2)
    );
    // A field with a fixed set of values refuses anything else, naming the values.
    let bad = s.app.cmd(&["set", &r, "agreement", "maybe"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("yes, no"));
    assert!(
        s.tick("2026-12-15T08:00:00+01:00").is_empty(),
        "no escalation on the original date"
    );
    // The reminder moves too: 5 working days before Mon 11 Jan is Mon 4 Jan (the handler has
    // no address yet, so only the receiver gets it).
    assert_eq!(
        s.tick("2027-01-04T08:00:00+01:00"),
        pairs(&[("reminder", common::RECEIVER)])
    );
    assert_eq!(
        s.tick("2027-01-12T08:00:00+01:00"),
        pairs(&[("escalation", common::DIRECTOR)])
    );
}

#[test]
fn due_is_a_dry_run_and_procedure_explain_gives_dates() {
    let s = Scenario::new("mzo");
    s.receive(
        "2026-12-23T10:00:00+01:00",
        "school@example.nl",
        "Les",
        "klacht",
    );
    s.new_mails();
    let due: Value = serde_json::from_str(&s.cli(
        "2026-12-30T09:00:00+01:00",
        &[
            "due",
            "--at",
            "2026-12-30T09:00:00+01:00",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(due.as_array().unwrap().len(), 1, "{due}");
    assert_eq!(due[0]["action"], "remind_first_reaction");
    // Dry run: nothing was sent, the tick still sends it.
    assert!(s.new_mails().is_empty());
    assert_eq!(s.tick("2026-12-30T09:00:00+01:00").len(), 1);

    let explain: Value = serde_json::from_str(&s.cli(
        "2026-12-01T00:00:00Z",
        &[
            "procedure",
            "explain",
            "mzo",
            "--received",
            "2026-12-23T10:00:00+01:00",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    let due_of = |m: &str| {
        explain["milestones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["milestone"] == m)
            .and_then(|x| x["due"].as_str())
            .map(str::to_string)
    };
    assert_eq!(due_of("first_reaction").as_deref(), Some("2026-12-31"));
    assert_eq!(due_of("solution_proposed").as_deref(), Some("2027-01-05"));
    assert_eq!(due_of("handled").as_deref(), Some("2027-01-14"));
    assert_eq!(due_of("follow_up").as_deref(), Some("2027-01-13"));
    let text = s.cli(
        "2026-12-01T00:00:00Z",
        &[
            "procedure",
            "explain",
            "mzo",
            "--received",
            "2026-12-23T10:00:00+01:00",
        ],
    );
    assert!(text.contains("donderdag 31 december 2026"), "{text}");
}

#[test]
fn an_edited_procedure_applies_to_new_complaints_only() {
    let s = Scenario::new("mzo");
    let first = s.receive(
        "2026-12-01T10:00:00+01:00",
        "a@example.nl",
        "Eerste",
        "klacht",
    );
    let v1 = s.app.show(&first)["complaint"]["procedure_version"]
        .as_str()
        .unwrap()
        .to_string();
    // The admin copies the preset and changes the reaction term from 5 to 3 working days.
    let text = std::fs::read_to_string(common::repo().join("config/procedures/mzo.toml")).unwrap();
    let edited = s.app.root.join("mzo-edited.toml");
    std::fs::write(
        &edited,
        text.replace(
            "{ after = \"received\", working_days = 5 }",
            "{ after = \"received\", working_days = 3 }",
        ),
    )
    .unwrap();
    s.app
        .set_env("KLACHTD__PROCEDURE__PRESET", edited.to_str().unwrap());
    let second = s.receive(
        "2026-12-01T10:05:00+01:00",
        "b@example.nl",
        "Tweede",
        "klacht",
    );
    let v2 = s.app.show(&second)["complaint"]["procedure_version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(v1, v2);
    s.new_mails();
    // New complaint: first reaction due Fri 4 Dec -> reminder Thu 3 Dec, and missed: the
    // director hears on Mon 7 Dec. Old complaint keeps 5 working days: due Tue 8 Dec ->
    // reminder Mon 7 Dec.
    assert_eq!(s.tick("2026-12-03T08:00:00+01:00").len(), 1);
    assert!(s.tick("2026-12-04T08:00:00+01:00").is_empty());
    let monday = s.tick("2026-12-07T08:00:00+01:00");
    assert_eq!(monday.len(), 2, "{monday:?}");
    assert!(monday.contains(&("reminder".into(), common::RECEIVER.into())));
    assert!(monday.contains(&("escalation".into(), common::DIRECTOR.into())));
}

#[test]
fn daily_digest_runs_once_per_morning_and_once_after_downtime() {
    let s = Scenario::new("mzo");
    s.app
        .set_env("KLACHTD__SCHEDULE__DIGEST", "0 0 8 * * Mon-Fri");
    s.receive(
        "2026-12-23T10:00:00+01:00",
        "school@example.nl",
        "Les",
        "klacht",
    );
    s.new_mails();
    // Thu 24 Dec 08:00: the one open complaint is in the digest, green: its first reaction
    // (Thu 31 Dec) is not within 3 working days yet.
    assert_eq!(
        s.tick("2026-12-24T08:30:00+01:00"),
        pairs(&[("digest", common::RECEIVER)])
    );
    assert!(last_digest_subject(&s).ends_with(": 0 rood, 0 oranje, 1 groen"));
    // Tue 29 Dec 08:00: 31 Dec is within 3 working days (30, 31, 4 Jan): amber.
    assert_eq!(
        s.tick("2026-12-29T08:30:00+01:00"),
        pairs(&[("digest", common::RECEIVER)])
    );
    assert!(last_digest_subject(&s).ends_with(": 0 rood, 1 oranje, 0 groen"));
    assert!(
        s.tick("2026-12-29T09:30:00+01:00").is_empty(),
        "once per fire time"
    );
    // Off from Tue 29 Dec until Mon 4 Jan 10:00: one digest (for Mon 08:00), not one per day;
    // the reminder of 30 Dec is stale and skipped, the missed escalation waits for 6 Jan.
    let mails = s.tick("2027-01-04T10:00:00+01:00");
    assert_eq!(
        mails.iter().filter(|(t, _)| t == "digest").count(),
        1,
        "{mails:?}"
    );
    // The first reaction (Thu 31 Dec) was missed: red.
    assert!(last_digest_subject(&s).ends_with(": 1 rood, 0 oranje, 0 groen"));
}

/// The subject of the last digest queued (the outbox in queue order).
fn last_digest_subject(s: &Scenario) -> String {
    s.app
        .outbox()
        .iter()
        .rfind(|o| o["template"] == "digest")
        .and_then(|o| o["subject"].as_str())
        .expect("a digest was queued")
        .to_string()
}

/// The one digest in the outbox directory (file names do not follow the queue order).
fn the_digest(s: &Scenario) -> common::SentMail {
    let mut d: Vec<common::SentMail> = s
        .app
        .sent_to(common::RECEIVER)
        .into_iter()
        .filter(|m| {
            m.subject.starts_with("Overzicht klachten")
                || m.subject.starts_with("Complaints overview")
        })
        .collect();
    assert_eq!(d.len(), 1, "one digest");
    d.remove(0)
}

#[test]
fn an_empty_register_gets_no_digest_and_a_closed_or_voided_complaint_is_not_in_it() {
    let s = Scenario::new("mzo");
    s.app
        .set_env("KLACHTD__SCHEDULE__DIGEST", "0 0 8 * * Mon-Fri");
    // Mon 21 Dec: nothing registered yet, nothing to show: no mail.
    assert!(s.tick("2026-12-21T08:30:00+01:00").is_empty());
    let r = s.receive(
        "2026-12-21T10:00:00+01:00",
        "school@example.nl",
        "Les",
        "klacht",
    );
    s.app.set_now("2026-12-21T11:00:00+01:00");
    s.app
        .cmd_ok(&["void", &r, "--reason", "per ongeluk geregistreerd"]);
    s.new_mails();
    // Tue 22 Dec: the only complaint is voided: again no mail.
    assert!(s.tick("2026-12-22T08:30:00+01:00").is_empty());
    let open = s.receive(
        "2026-12-22T10:00:00+01:00",
        "ouder@example.nl",
        "Rooster",
        "klacht",
    );
    s.new_mails();
    // Wed 23 Dec: one open complaint, one row; the voided one is not in it.
    assert_eq!(
        s.tick("2026-12-23T08:30:00+01:00"),
        pairs(&[("digest", common::RECEIVER)])
    );
    let d = the_digest(&s);
    assert!(
        d.subject.ends_with(": 0 rood, 0 oranje, 1 groen"),
        "{}",
        d.subject
    );
    assert!(d.text.contains(&format!("[{open}]")), "{}", d.text);
    assert!(!d.text.contains(&format!("[{r}]")), "{}", d.text);
}

/// The HTML part of a sent mail.
fn html_of(m: &common::SentMail) -> String {
    mail_parser::MessageParser::default()
        .parse(&m.raw)
        .and_then(|p| p.body_html(0).map(|h| h.into_owned()))
        .unwrap_or_default()
}

/// Issue #11, the digest at a glance, through the binary. On Tue 8 Dec 2026 (3 working days
/// ahead: Fri 11 Dec), mzo (first reaction 5, solution 7, handled 14 working days):
/// - KL-2026-0001, Mon 23 Nov, assigned, reaction and solution done: handling Fri 11 Dec, at
///   the horizon: amber, resolved;
/// - KL-2026-0002, Thu 26 Nov, nobody assigned: reaction was due Thu 3 Dec: red, new;
/// - KL-2026-0003, Wed 2 Dec, assigned: reaction due Wed 9 Dec: amber, in progress;
/// - KL-2026-0004, Mon 7 Dec, assigned: reaction due Mon 14 Dec: green, in progress.
///
/// Red first, then amber by due date (0003 before 0001), then green.
fn digest_at_a_glance(lang: &str) -> common::SentMail {
    let s = Scenario::new("mzo");
    if lang == "en" {
        s.app.set_env("KLACHTD__ORGANISATION__LANGUAGE", "en");
    }
    let body = "De les is niet doorgegaan.";
    let a = s.receive(
        "2026-11-23T10:00:00+01:00",
        "school1@example.nl",
        "Les niet doorgegaan",
        body,
    );
    s.cli(
        "2026-11-23T11:00:00+01:00",
        &["set", &a, "handler", "docent@example.org"],
    );
    s.cli(
        "2026-11-24T10:00:00+01:00",
        &["complete", &a, "first_reaction"],
    );
    s.cli(
        "2026-11-25T10:00:00+01:00",
        &["complete", &a, "solution_proposed"],
    );
    let b = s.receive(
        "2026-11-26T10:00:00+01:00",
        "school2@example.nl",
        "Rooster klopt niet",
        body,
    );
    let c = s.receive(
        "2026-12-02T10:00:00+01:00",
        "school3@example.nl",
        "Geen antwoord",
        body,
    );
    s.cli(
        "2026-12-02T11:00:00+01:00",
        &["set", &c, "handler", "docent@example.org"],
    );
    let d = s.receive(
        "2026-12-07T10:00:00+01:00",
        "school4@example.nl",
        "Lokaal te koud",
        body,
    );
    s.cli(
        "2026-12-07T11:00:00+01:00",
        &["set", &d, "handler", "docent@example.org"],
    );
    assert_eq!(
        [&a, &b, &c, &d].map(|r| r.as_str()),
        [
            "KL-2026-0001",
            "KL-2026-0002",
            "KL-2026-0003",
            "KL-2026-0004"
        ]
    );
    s.new_mails();
    s.app
        .set_env("KLACHTD__SCHEDULE__DIGEST", "0 0 8 * * Mon-Fri");
    let mails = s.tick("2026-12-08T08:30:00+01:00");
    assert_eq!(
        mails.iter().filter(|(t, _)| t == "digest").count(),
        1,
        "{mails:?}"
    );
    the_digest(&s)
}

/// The rows of the HTML table, in order: (reference, the row's HTML).
fn html_rows(html: &str) -> Vec<(String, String)> {
    html.split("<tr>")
        .skip(1)
        .filter_map(|row| {
            let start = row.find("<td>KL-")? + 4;
            let end = start + row[start..].find('<')?;
            Some((row[start..end].to_string(), row.to_string()))
        })
        .collect()
}

/// Text blocks, in order: (reference, the block).
fn text_blocks(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(i) = line.find("  [KL-")
            && !line.starts_with(' ')
        {
            let r = line[i + 3..].split(']').next().unwrap_or("").to_string();
            out.push((r, format!("{line}\n")));
        } else if line.starts_with("  ")
            && let Some((_, block)) = out.last_mut()
        {
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

#[test]
fn the_digest_is_a_table_of_every_open_complaint_red_first_in_dutch() {
    let m = digest_at_a_glance("nl");
    assert_eq!(
        m.subject,
        "Overzicht klachten Muziekcentrum Zuidoost: 1 rood, 2 oranje, 1 groen"
    );
    let order = [
        "KL-2026-0002",
        "KL-2026-0003",
        "KL-2026-0001",
        "KL-2026-0004",
    ];

    let html = html_of(&m);
    assert!(html.contains("1 rood</span>"), "{html}");
    assert!(html.contains("2 oranje</span>"), "{html}");
    assert!(html.contains("1 groen</span>"), "{html}");
    assert!(!html.contains("<style"), "inline styles only: {html}");
    let rows = html_rows(&html);
    assert_eq!(
        rows.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        order
    );
    let colour = |row: &str, bg: &str, word: &str| {
        assert!(
            row.contains(&format!("bgcolor=\"{bg}\" style=\"background-color: {bg};"))
                && row.contains(&format!(">{word}</td>")),
            "{bg} {word}: {row}"
        );
    };
    colour(&rows[0].1, "#c62828", "ROOD");
    colour(&rows[1].1, "#f9a825", "ORANJE");
    colour(&rows[2].1, "#f9a825", "ORANJE");
    colour(&rows[3].1, "#2e7d32", "GROEN");
    assert!(rows[0].1.contains("niet toegewezen"), "{}", rows[0].1);
    assert!(rows[0].1.contains("<td>nieuw</td>"), "{}", rows[0].1);
    assert!(
        rows[0]
            .1
            .contains("eerste reactie: donderdag 3 december 2026 <strong>(verstreken)</strong>"),
        "{}",
        rows[0].1
    );
    assert!(
        rows[1].1.contains("<td>in behandeling</td>"),
        "{}",
        rows[1].1
    );
    assert!(
        rows[1].1.contains("<td>docent@example.org</td>"),
        "{}",
        rows[1].1
    );
    assert!(
        rows[1]
            .1
            .contains("eerste reactie: woensdag 9 december 2026</td>"),
        "{}",
        rows[1].1
    );
    assert!(rows[2].1.contains("<td>opgelost</td>"), "{}", rows[2].1);
    assert!(
        rows[2]
            .1
            .contains("afhandeling: vrijdag 11 december 2026</td>"),
        "{}",
        rows[2].1
    );
    assert!(
        rows[3]
            .1
            .contains("eerste reactie: maandag 14 december 2026</td>"),
        "{}",
        rows[3].1
    );
    for (r, row) in &rows[1..] {
        assert!(!row.contains("niet toegewezen"), "{r}: {row}");
    }

    let blocks = text_blocks(&m.text);
    assert_eq!(
        blocks.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        order,
        "{}",
        m.text
    );
    let words: Vec<&str> = blocks
        .iter()
        .map(|(_, b)| b.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(words, ["ROOD", "ORANJE", "ORANJE", "GROEN"], "{}", m.text);
    assert!(
        blocks[0].1.contains("behandelaar: NIET TOEGEWEZEN"),
        "{}",
        blocks[0].1
    );
    assert!(blocks[0].1.contains("status: nieuw"), "{}", blocks[0].1);
    assert!(blocks[0].1.contains("(verstreken)"), "{}", blocks[0].1);
    assert!(
        blocks[2]
            .1
            .contains("status: opgelost; behandelaar: docent@example.org"),
        "{}",
        blocks[2].1
    );
    assert_eq!(m.text.matches("NIET TOEGEWEZEN").count(), 1, "{}", m.text);
    assert!(
        m.text.contains("1 rood, 2 oranje, 1 groen (4 open)"),
        "{}",
        m.text
    );
    // Each row keeps its own tokened address for commands on that complaint.
    for (r, b) in &blocks {
        let line = b
            .lines()
            .find(|l| l.contains("opdrachten: antwoord aan"))
            .unwrap_or_else(|| panic!("{r}: no reply address: {b}"));
        assert!(
            line.contains(&format!("+c-{}-", r.to_ascii_lowercase())),
            "{line}"
        );
    }
    for (r, row) in &rows {
        assert!(
            row.contains(&format!("+c-{}-", r.to_ascii_lowercase())),
            "{r}: {row}"
        );
    }
}

#[test]
fn the_digest_is_a_table_of_every_open_complaint_red_first_in_english() {
    let m = digest_at_a_glance("en");
    assert_eq!(
        m.subject,
        "Complaints overview Muziekcentrum Zuidoost: 1 red, 2 amber, 1 green"
    );
    let order = [
        "KL-2026-0002",
        "KL-2026-0003",
        "KL-2026-0001",
        "KL-2026-0004",
    ];
    let html = html_of(&m);
    let rows = html_rows(&html);
    assert_eq!(
        rows.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        order
    );
    assert!(
        rows[0].1.contains("bgcolor=\"#c62828\"") && rows[0].1.contains(">RED</td>"),
        "{}",
        rows[0].1
    );
    assert!(
        rows[1].1.contains("bgcolor=\"#f9a825\"") && rows[1].1.contains(">AMBER</td>"),
        "{}",
        rows[1].1
    );
    assert!(
        rows[3].1.contains("bgcolor=\"#2e7d32\"") && rows[3].1.contains(">GREEN</td>"),
        "{}",
        rows[3].1
    );
    assert!(rows[0].1.contains("unassigned"), "{}", rows[0].1);
    assert!(rows[0].1.contains("<td>new</td>"), "{}", rows[0].1);
    assert!(rows[2].1.contains("<td>resolved</td>"), "{}", rows[2].1);
    assert!(rows[1].1.contains("<td>in progress</td>"), "{}", rows[1].1);
    let blocks = text_blocks(&m.text);
    assert_eq!(
        blocks.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        order,
        "{}",
        m.text
    );
    let words: Vec<&str> = blocks
        .iter()
        .map(|(_, b)| b.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(words, ["RED", "AMBER", "AMBER", "GREEN"], "{}", m.text);
    assert!(
        blocks[0].1.contains("handler: UNASSIGNED"),
        "{}",
        blocks[0].1
    );
    assert!(blocks[0].1.contains("(missed)"), "{}", blocks[0].1);
    assert_eq!(m.text.matches("UNASSIGNED").count(), 1, "{}", m.text);
    for (r, b) in &blocks {
        assert!(
            b.contains("commands: reply to ")
                && b.contains(&format!("+c-{}-", r.to_ascii_lowercase())),
            "{r}: {b}"
        );
    }
}

#[test]
fn a_withheld_acknowledgement_still_starts_the_procedure() {
    // A forged From (DMARC failed at our own receiving server) gets no acknowledgement, but
    // the receiver is told and a serious complaint still reaches the director at once.
    let s = Scenario::new("mzo");
    s.app
        .set_env("KLACHTD__INTAKE__TRUSTED_AUTHSERV_ID", "mx.example.org");
    let mail = Mail::new("ouder@example.nl", "Onveilige situatie")
        .header(
            "Authentication-Results",
            "mx.example.org; spf=fail; dmarc=fail (p=reject) header.from=example.nl",
        )
        .body("Er was geweld op het schoolplein.")
        .build();
    s.app.deliver_eml(&mail, ts("2026-11-24T10:00:00+01:00"));
    s.app.set_now("2026-11-24T10:00:00+01:00");
    s.app.run_once();
    let r = s.app.references()[0].clone();
    let mails: Vec<(String, String)> = s
        .new_mails()
        .into_iter()
        .map(|(t, to, _)| (t, to))
        .collect();
    assert!(
        !mails.iter().any(|(t, _)| t == "acknowledgement"),
        "{mails:?}"
    );
    assert!(
        mails.contains(&("new_complaint".into(), common::RECEIVER.into())),
        "{mails:?}"
    );
    assert!(
        mails.contains(&("serious_alert".into(), common::DIRECTOR.into())),
        "{mails:?}"
    );
    assert!(
        s.app
            .history_events(&r)
            .iter()
            .any(|e| e == "acknowledgement_withheld")
    );
}

#[test]
fn the_digest_goes_out_on_working_days_inside_working_hours_only() {
    let s = Scenario::new("mzo");
    // Every day at 08:00, also weekends: the calendar, not the cron line, decides.
    s.app.set_env("KLACHTD__SCHEDULE__DIGEST", "0 0 8 * * *");
    s.receive(
        "2026-12-23T10:00:00+01:00",
        "school@example.nl",
        "Les",
        "klacht",
    );
    s.new_mails();
    let digests =
        |mails: Vec<(String, String)>| mails.iter().filter(|(t, _)| t == "digest").count();
    // Thu 24 Dec: a working day, and one complaint is open.
    assert_eq!(digests(s.tick("2026-12-24T08:30:00+01:00")), 1);
    // Fri 25 Dec, Eerste Kerstdag: none.
    assert_eq!(digests(s.tick("2026-12-25T08:30:00+01:00")), 0);
    // Tue 29 Dec: the digest goes out.
    assert_eq!(digests(s.tick("2026-12-29T08:30:00+01:00")), 1);
    // Eerste Kerstdag was Friday; Nieuwjaarsdag Fri 1 Jan, then a weekend: no digest.
    assert_eq!(digests(s.tick("2027-01-01T08:30:00+01:00")), 0);
    assert_eq!(digests(s.tick("2027-01-01T17:00:00+01:00")), 0);
    assert_eq!(digests(s.tick("2027-01-02T08:30:00+01:00")), 0);
    // Down from Tue 29 Dec until Saturday evening: the missed digests are not caught up on
    // Saturday, but once on Monday morning.
    assert_eq!(digests(s.tick("2027-01-02T17:00:00+01:00")), 0);
    assert_eq!(digests(s.tick("2027-01-03T12:00:00+01:00")), 0);
    assert_eq!(digests(s.tick("2027-01-04T07:59:00+01:00")), 0);
    assert_eq!(digests(s.tick("2027-01-04T08:30:00+01:00")), 1);
    assert_eq!(digests(s.tick("2027-01-04T17:00:00+01:00")), 0);
}

/// Issue #9 findings 7 and 8: Awb 9:11(2) allows "ten hoogste vier weken" of delay in all, so
/// a second extension adds to the first and never moves the deadline earlier; 9:11(3) allows a
/// further delay only with the complainant's written agreement, recorded first. The person
/// complained about gets a copy of the complaint (9:10), the delay notices (9:11(2)) and the
/// outcome (9:12(1)).
#[test]
fn awb_extensions_add_up_and_the_person_complained_about_is_informed() {
    let s = Scenario::new("awb");
    // Mon 2 Nov 2026: 6 weeks is Mon 14 Dec.
    let r = s.receive(
        "2026-11-02T10:00:00+01:00",
        "burger@example.nl",
        "Bejegening",
        "Ik ben onheus bejegend door de baliemedewerker.",
    );
    s.new_mails();
    s.cli(
        "2026-11-03T10:00:00+01:00",
        &["set", &r, "subject_person", "ambtenaar@example.org"],
    );
    assert_eq!(
        s.sent_now(),
        pairs(&[("subject_copy", "ambtenaar@example.org")])
    );
    // Two weeks, then two more: Mon 28 Dec, then Mon 11 Jan; each time both are told.
    s.cli("2026-12-01T10:00:00+01:00", &["set", &r, "extension", "2"]);
    assert_eq!(
        s.sent_now(),
        pairs(&[
            ("delay_notice", "burger@example.nl"),
            ("subject_delay_notice", "ambtenaar@example.org")
        ])
    );
    s.cli("2026-12-02T10:00:00+01:00", &["set", &r, "extension", "2"]);
    s.new_mails();
    // Beyond four weeks in all: refused until the complainant's written agreement is recorded.
    s.app.set_now("2026-12-03T10:00:00+01:00");
    let refused = s.app.cmd(&["set", &r, "extension", "1"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("written agreement"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        s.new_mails().is_empty(),
        "a refused extension sends nothing"
    );
    s.cli(
        "2026-12-03T10:05:00+01:00",
        &[
            "set",
            &r,
            "extension_agreement",
            "e-mail van 3 december 2026: akkoord met twee weken extra",
        ],
    );
    s.cli("2026-12-03T10:10:00+01:00", &["set", &r, "extension", "2"]);
    assert_eq!(s.new_mails().len(), 2);
    // One agreement covers one further delay.
    s.app.set_now("2026-12-03T10:15:00+01:00");
    assert_eq!(
        s.app.cmd(&["set", &r, "extension", "1"]).status.code(),
        Some(2)
    );
    // Now due Mon 25 Jan 2027: no escalation on the old dates, one the day after.
    assert!(s.tick("2026-12-15T08:00:00+01:00").is_empty());
    assert!(
        !s.tick("2027-01-12T08:00:00+01:00")
            .iter()
            .any(|(t, _)| t == "escalation")
    );
    s.app.run_once();
    let notices: Vec<String> = s
        .app
        .sent_to("burger@example.nl")
        .into_iter()
        .filter(|m| m.subject.contains("meer tijd"))
        .map(|m| m.text)
        .collect();
    assert_eq!(notices.len(), 3, "{notices:?}");
    for date in [
        "maandag 28 december 2026",
        "maandag 11 januari 2027",
        "maandag 25 januari 2027",
    ] {
        assert!(
            notices.iter().filter(|n| n.contains(date)).count() == 1,
            "one notice names {date}: {notices:?}"
        );
    }
    let copy = s.app.sent_to("ambtenaar@example.org");
    assert!(
        copy.iter()
            .any(|m| m.text.contains("onheus bejegend door de baliemedewerker")),
        "the copy carries the complaint"
    );
    // Mon 18 Jan: the reminder, 5 working days before Mon 25 Jan.
    assert_eq!(
        s.tick("2027-01-18T08:30:00+01:00"),
        pairs(&[("reminder", common::RECEIVER)])
    );
    // The outcome goes to both.
    s.cli(
        "2027-01-20T10:00:00+01:00",
        &[
            "set",
            &r,
            "solution",
            "De klacht is gegrond; wij bieden excuses aan.",
        ],
    );
    s.cli("2027-01-20T10:01:00+01:00", &["complete", &r, "handled"]);
    let mut out = s.sent_now();
    out.sort();
    assert_eq!(
        out,
        pairs(&[
            ("outcome_awb", "burger@example.nl"),
            ("subject_outcome", "ambtenaar@example.org")
        ])
    );
    assert_eq!(s.app.show(&r)["complaint"]["status"], "closed");
    let events = s.app.history_events(&r);
    assert!(
        events.iter().any(|e| e == "extension_agreement_used"),
        "{events:?}"
    );
}

/// Issue #9 finding 6: seed 001 sets no limit on the delay ("Mocht de procedure langer duren,
/// dan wordt de cursist daarvan op de hoogte gebracht").
#[test]
fn academie_extends_as_long_as_needed() {
    let s = Scenario::new("academie");
    // Mon 2 Nov 2026 + 4 weeks: Mon 30 Nov; + 12 weeks: Mon 22 Feb 2027.
    let r = s.receive(
        "2026-11-02T10:00:00+01:00",
        "cursist@example.nl",
        "Examen",
        "Mijn examen is niet beoordeeld.",
    );
    s.new_mails();
    s.cli(
        "2026-11-05T10:00:00+01:00",
        &["complete", &r, "first_reaction"],
    );
    s.cli("2026-11-20T10:00:00+01:00", &["set", &r, "extension", "12"]);
    assert_eq!(
        s.sent_now(),
        pairs(&[("delay_notice", "cursist@example.nl")])
    );
    s.app.run_once();
    let notice = s
        .app
        .sent_to("cursist@example.nl")
        .into_iter()
        .find(|m| m.subject.contains("meer tijd"))
        .expect("delay notice");
    assert!(
        notice.text.contains("maandag 22 februari 2027"),
        "{}",
        notice.text
    );
    assert!(
        !s.tick("2026-12-01T08:30:00+01:00")
            .iter()
            .any(|(t, _)| t == "escalation"),
        "not escalated on the old date"
    );
}

/// Issue #9 finding 4: with `schedule.notify_staff_at_once`, the receiver hears of a Saturday
/// complaint at once; without it (the default, see friday_evening_...) on Monday morning.
#[test]
fn notify_staff_at_once_sends_new_complaint_notices_on_a_saturday() {
    let s = Scenario::new("mzo");
    s.app
        .set_env("KLACHTD__SCHEDULE__NOTIFY_STAFF_AT_ONCE", "true");
    s.receive(
        "2026-11-28T11:00:00+01:00",
        "b@example.nl",
        "Zaterdag",
        "klacht",
    );
    let mut mails = s.sent_now();
    mails.sort();
    assert_eq!(
        mails,
        pairs(&[
            ("acknowledgement", "b@example.nl"),
            ("new_complaint", common::RECEIVER)
        ])
    );
}

/// Issue #9 finding 9: korein's reminder about the solution goes to the handler; with none
/// assigned, the receiving role gets it and the history says so.
#[test]
fn korein_reminder_without_a_handler_reaches_the_receiver() {
    let s = Scenario::new("korein");
    // Mon 2 Nov 2026: a solution within 3 weeks, Mon 23 Nov; reminder 2 working days before.
    let r = s.receive(
        "2026-11-02T10:00:00+01:00",
        "ouder@example.nl",
        "Opvang",
        "De opvang sloot te vroeg.",
    );
    s.new_mails();
    // The handler notice was due Mon 9 Nov: the director hears on Tue 10 Nov.
    assert_eq!(
        s.tick("2026-11-10T08:30:00+01:00"),
        pairs(&[("escalation", common::DIRECTOR)])
    );
    let mails = s.tick("2026-11-19T08:30:00+01:00");
    assert_eq!(mails, pairs(&[("reminder", common::RECEIVER)]));
    let show = s.app.show(&r);
    let fallback = show["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["event"] == "action_fallback")
        .expect("the fallback is in the history");
    assert!(
        fallback["detail"]
            .as_str()
            .unwrap()
            .contains("role handler has no address"),
        "{fallback}"
    );
}

/// Issue #9 finding 10: the acknowledgement promises a delay notice beforehand. One working day
/// before the handling deadline the handler (here: the receiver in its place) is told, with the
/// command; when the deadline passes without one, the escalation says the promise was broken.
#[test]
fn the_acknowledgements_delay_promise_is_kept_or_reported_broken() {
    let s = Scenario::new("mzo");
    // Mon 2 Nov 2026: handled within 14 working days, Fri 20 Nov.
    let r = s.receive(
        "2026-11-02T10:00:00+01:00",
        "school@example.nl",
        "Les",
        "De les ging niet door.",
    );
    s.new_mails();
    assert!(
        s.tick("2026-11-19T08:30:00+01:00")
            .contains(&("delay_notice_due".into(), common::RECEIVER.into()))
    );
    assert!(
        s.tick("2026-11-23T08:30:00+01:00")
            .contains(&("escalation".into(), common::DIRECTOR.into()))
    );
    s.app.run_once();
    let due = s
        .app
        .sent_to(common::RECEIVER)
        .into_iter()
        .find(|m| m.subject.contains("bericht van uitstel"))
        .expect("delay-notice-due mail");
    assert!(
        due.text
            .contains(&format!("klachtd set {r} extension WEKEN")),
        "{}",
        due.text
    );
    let escalation = s
        .app
        .sent_to(common::DIRECTOR)
        .into_iter()
        .find(|m| m.text.contains("De termijn voor \"afhandeling\""))
        .expect("escalation");
    assert!(
        escalation.text.contains("belofte") && escalation.text.contains("niet nagekomen"),
        "{}",
        escalation.text
    );
}

/// `procedure explain` and the scheduler are one planner: a Saturday complaint's notice to
/// the receiver is explained for Monday 08:00, when the scheduler sends it.
#[test]
fn explain_shows_when_staff_notices_actually_go_out() {
    let s = Scenario::new("mzo");
    let e = s.app.json(&[
        "procedure",
        "explain",
        "mzo",
        "--received",
        "2027-05-01T11:00:00+02:00",
        "--format",
        "json",
    ]);
    let at = |id: &str| {
        e["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .and_then(|a| a["due_at"].as_str())
            .unwrap_or_else(|| panic!("{id} in {e}"))
            .to_string()
    };
    assert_eq!(at("acknowledge"), "2027-05-01T09:00:00Z");
    assert_eq!(at("notify_receiver"), "2027-05-03T06:00:00Z");
    assert_eq!(at("serious_alert"), "2027-05-01T09:00:00Z");
    s.receive(
        "2027-05-01T11:00:00+02:00",
        "a@example.nl",
        "Zaterdag",
        "klacht",
    );
    s.new_mails();
    assert!(s.tick("2027-05-03T07:59:00+02:00").is_empty());
    assert_eq!(
        s.tick("2027-05-03T08:00:00+02:00"),
        pairs(&[("new_complaint", common::RECEIVER)])
    );
}

/// Dates follow the language of the mail they are in: a Dutch notice to staff about an English
/// complaint says "maandag", the English acknowledgement "Monday".
#[test]
fn dates_follow_the_language_of_the_mail() {
    let s = Scenario::new("mzo");
    s.receive(
        "2026-11-23T10:00:00+01:00",
        "parent@example.com",
        "Cancelled lessons",
        "Dear Sir or Madam, the music lesson of my daughter was cancelled three times this month \
         and nobody told us why. I would like to know what you are going to do about it.",
    );
    s.app.run_once();
    let notice = s
        .app
        .sent_to(common::RECEIVER)
        .into_iter()
        .next()
        .expect("new-complaint notice");
    assert!(
        notice.text.contains("maandag 23 november 2026"),
        "{}",
        notice.text
    );
    assert!(!notice.text.contains("Monday"), "{}", notice.text);
    let ack = s
        .app
        .sent_to("parent@example.com")
        .into_iter()
        .next()
        .expect("acknowledgement");
    assert!(ack.text.contains("Monday 23 November 2026"), "{}", ack.text);
}

/// A register with more open complaints than a digest mail lists: the first 200 rows (red
/// first), the counts of all, and a line saying how many more there are.
#[test]
fn a_long_digest_lists_the_first_rows_and_counts_all() {
    let s = Scenario::new("mzo");
    s.app
        .set_env("KLACHTD__SCHEDULE__DIGEST", "0 0 8 * * Mon-Fri");
    for i in 0..230 {
        let mail = Mail::new(&format!("ouder{i}@example.nl"), &format!("Klacht {i}"))
            .message_id(&format!("long-digest-{i}@example.nl"))
            .body(&format!("Klacht nummer {i}."))
            .build();
        s.app.deliver_eml(&mail, ts("2026-12-21T10:00:00+01:00"));
    }
    s.app.set_now("2026-12-21T11:00:00+01:00");
    s.app.run_once();
    s.new_mails();
    s.tick("2026-12-22T08:30:00+01:00");
    let d = the_digest(&s);
    assert!(
        d.subject.contains("230") || d.text.contains("(230 open)"),
        "{}",
        d.text
    );
    assert_eq!(d.text.matches("[KL-2026-").count(), 200, "200 rows");
    assert!(d.text.contains("En nog 30 open klachten"), "{}", d.text);
    assert!(html_of(&d).contains("En nog 30 open klachten"));
}

//! Mail that comes back on a complaint (issue #10): the complainant's own reply reaches whoever
//! handles it, and a staff member's out-of-office to one of our mails tells the receiving role,
//! once, that the complaint may need someone else. Through the real binary on the embedded
//! default.

mod common;

use common::{DIRECTOR, Mail, RECEIVER, TestApp, ts};
use serde_json::Value;

fn outbox_of(app: &TestApp, template: &str) -> Vec<Value> {
    app.outbox()
        .into_iter()
        .filter(|o| o["template"] == template)
        .collect()
}

fn receive(app: &TestApp, mail: &[u8], at: &str) {
    app.deliver_eml(mail, ts(at));
    app.set_now(at);
    app.run_once();
}

#[test]
fn a_complainants_reply_reaches_the_receiver_then_the_handler() {
    let app = TestApp::spawn();
    receive(
        &app,
        &Mail::new("ouder@example.nl", "Les viel uit")
            .body("De les viel drie keer uit.")
            .build(),
        "2026-11-23T10:00:00+01:00",
    );
    let r = app.references()[0].clone();
    let reply = Mail::new("ouder@example.nl", &format!("Re: [{r}] Les viel uit"))
        .message_id("reply1@example.nl")
        .body("Vandaag is de les weer niet doorgegaan.")
        .build();
    receive(&app, &reply, "2026-11-24T10:00:00+01:00");
    let told = outbox_of(&app, "complainant_replied");
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        told[0]["recipients"], RECEIVER,
        "no handler yet: the receiver"
    );
    // With a handler assigned, the handler hears.
    app.set_now("2026-11-24T11:00:00+01:00");
    app.cmd_ok(&["set", &r, "handler", "docent@example.org"]);
    let again = Mail::new("ouder@example.nl", &format!("Re: [{r}] Les viel uit"))
        .message_id("reply2@example.nl")
        .body(
            "En morgen?\n\nOp di 24 nov. 2026 om 10:00 schreef ouder@example.nl:\n> Vandaag is de les weer niet doorgegaan.\n",
        )
        .build();
    receive(&app, &again, "2026-11-24T12:00:00+01:00");
    let told = outbox_of(&app, "complainant_replied");
    assert_eq!(told.len(), 2, "{told:?}");
    assert_eq!(told[1]["recipients"], "docent@example.org");
    let sent = app.sent_to("docent@example.org");
    let notice = sent
        .iter()
        .find(|m| m.text.contains("En morgen?"))
        .expect("the notice carries the reply");
    assert!(
        !notice.text.contains("weer niet doorgegaan"),
        "only the new part, not the quote: {}",
        notice.text
    );
}

#[test]
fn a_reply_on_saturday_is_announced_on_monday_morning() {
    let app = TestApp::spawn();
    receive(
        &app,
        &Mail::new("ouder@example.nl", "Les viel uit").build(),
        "2026-11-23T10:00:00+01:00",
    );
    let r = app.references()[0].clone();
    let reply = Mail::new("ouder@example.nl", &format!("Re: [{r}] Les viel uit"))
        .message_id("sat@example.nl")
        .body("Nog een vraag.")
        .build();
    receive(&app, &reply, "2026-11-28T11:00:00+01:00");
    let told = outbox_of(&app, "complainant_replied");
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["status"], "queued", "held until Monday");
    assert_eq!(told[0]["next_attempt_at"], "2026-11-30T07:00:00Z");
    app.set_now("2026-11-30T08:30:00+01:00");
    app.run_once();
    assert_eq!(outbox_of(&app, "complainant_replied")[0]["status"], "sent");
}

#[test]
fn an_out_of_office_to_our_notice_tells_once_that_the_complaint_may_need_another_handler() {
    let app = TestApp::spawn();
    receive(
        &app,
        &Mail::new("ouder@example.nl", "Les viel uit").build(),
        "2026-11-23T10:00:00+01:00",
    );
    let r = app.references()[0].clone();
    app.set_now("2026-11-23T11:00:00+01:00");
    app.cmd_ok(&["set", &r, "handler", "docent@example.org"]);
    // Our reminder to the handler, or here the receiver's notice: any mail of ours they got.
    let notice = outbox_of(&app, "new_complaint")[0]["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    for (i, from) in ["docent@example.org", "docent@example.org"]
        .iter()
        .enumerate()
    {
        let ooo = Mail::new(from, &format!("Automatisch antwoord: [{r}] Nieuwe klacht"))
            .message_id(&format!("ooo{i}@example.org"))
            .header("In-Reply-To", &notice)
            .header("References", &notice)
            .header("Auto-Submitted", "auto-replied")
            .body("Ik ben afwezig tot en met 4 december. Voor dringende zaken: de coördinator.")
            .build();
        receive(&app, &ooo, "2026-11-24T09:00:00+01:00");
    }
    let told = outbox_of(&app, "staff_absent");
    assert_eq!(told.len(), 1, "once per complaint: {told:?}");
    assert_eq!(told[0]["recipients"], RECEIVER);
    let events: Vec<String> = app.history_events(&r);
    assert_eq!(
        events.iter().filter(|e| *e == "staff_auto_reply").count(),
        2,
        "both are recorded on the complaint: {events:?}"
    );
    // The auto-reply is never answered and never a complaint of its own.
    assert_eq!(app.references().len(), 1);
    // The receiver's own out-of-office goes to the director, not back to the receiver.
    let app2 = TestApp::spawn();
    receive(
        &app2,
        &Mail::new("ouder@example.nl", "Les viel uit").build(),
        "2026-11-23T10:00:00+01:00",
    );
    let notice = outbox_of(&app2, "new_complaint")[0]["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    let ooo = Mail::new(RECEIVER, "Afwezig")
        .message_id("ooo-r@example.org")
        .header("In-Reply-To", &notice)
        .header("Auto-Submitted", "auto-replied")
        .body("Afwezig.")
        .build();
    receive(&app2, &ooo, "2026-11-24T09:00:00+01:00");
    let told = outbox_of(&app2, "staff_absent");
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["recipients"], DIRECTOR);
}

/// Outlook's "Janssen, Ruud" is greeted as Ruud Janssen; a department is no name to greet.
#[test]
fn the_acknowledgement_greets_people_by_name_and_departments_politely() {
    let app = TestApp::spawn();
    let person = Mail::new("r.janssen@example.nl", "Rooster")
        .header("From", "\"Janssen, Ruud\" <r.janssen@example.nl>")
        .body("Het rooster klopt niet.")
        .build();
    let department = Mail::new("planning@example.nl", "Rooster")
        .header("From", "Afdeling Planning <planning@example.nl>")
        .message_id("dept@example.nl")
        .body("Het rooster van de afdeling klopt niet.")
        .build();
    receive(&app, &person, "2026-11-23T10:00:00+01:00");
    receive(&app, &department, "2026-11-23T10:05:00+01:00");
    let ack = |to: &str| {
        app.sent_to(to)
            .into_iter()
            .next()
            .map(|m| m.text)
            .unwrap_or_default()
    };
    let p = ack("r.janssen@example.nl");
    assert!(p.contains("Beste Ruud Janssen,"), "{p}");
    let d = ack("planning@example.nl");
    assert!(d.contains("Geachte heer, mevrouw,"), "{d}");
    assert!(!d.contains("Beste Afdeling"), "{d}");
}

#[test]
fn klachtd_commands_prints_the_reference_in_either_language() {
    let app = TestApp::spawn();
    let nl = app.cmd_ok(&["commands"]);
    assert!(nl.contains("#behandelaar"), "{nl}");
    let en = app.cmd_ok(&["commands", "--lang", "en"]);
    assert!(en.contains("#assign"), "{en}");
    assert_eq!(
        app.cmd(&["commands", "--lang", "fr"]).status.code(),
        Some(2)
    );
}

/// A flood of replies on one complaint (or a forger using the complainant's From) is kept
/// whole, but staff hear of at most five a day.
#[test]
fn a_flood_of_replies_tells_staff_five_times_a_day() {
    let app = TestApp::spawn();
    receive(
        &app,
        &Mail::new("ouder@example.nl", "Les viel uit").build(),
        "2026-11-23T10:00:00+01:00",
    );
    let r = app.references()[0].clone();
    for i in 0..8 {
        let reply = Mail::new("ouder@example.nl", &format!("Re: [{r}] Les viel uit"))
            .message_id(&format!("flood{i}@example.nl"))
            .body(&format!("Bericht {i}"))
            .build();
        app.deliver_eml(&reply, ts("2026-11-24T10:00:00+01:00"));
    }
    app.set_now("2026-11-24T10:00:00+01:00");
    app.run_once();
    assert_eq!(outbox_of(&app, "complainant_replied").len(), 5);
    let show = app.show(&r);
    assert_eq!(
        show["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "in")
            .count(),
        9
    );
    assert!(app.history_events(&r).iter().any(|e| e == "notice_capped"));
    // The next day counts again.
    let next = Mail::new("ouder@example.nl", &format!("Re: [{r}] Les viel uit"))
        .message_id("nextday@example.nl")
        .body("Nog eentje")
        .build();
    receive(&app, &next, "2026-11-25T10:00:00+01:00");
    assert_eq!(outbox_of(&app, "complainant_replied").len(), 6);
}

//! Intake end to end, through the binary: dedupe, threading, automatic mail, bounces, caps,
//! quarantine, size limits, Maildir handling, void, config errors, crash safety and several
//! processes on one database. Each test fails when the feature it names breaks.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use common::{Mail, RECEIVER, SentMail, TestApp};
use serde_json::Value;

const JAN: &str = "jan.jansen@ouders.example.nl";
const PIET: &str = "piet.pieters@ouders.example.nl";

/// The acknowledgement file(s) sent to `addr`.
fn acks_to(app: &TestApp, addr: &str) -> Vec<SentMail> {
    let ack_ids: BTreeSet<String> = app
        .outbox()
        .into_iter()
        .filter(|o| o["template"] == "acknowledgement")
        .filter_map(|o| o["message_id"].as_str().map(str::to_string))
        .collect();
    app.sent_to(addr)
        .into_iter()
        .filter(|m| ack_ids.contains(&m.message_id))
        .collect()
}

/// The single acknowledgement for `reference`.
fn ack_of(app: &TestApp, reference: &str) -> SentMail {
    let row = app
        .outbox()
        .into_iter()
        .find(|o| o["template"] == "acknowledgement" && o["reference"] == reference)
        .unwrap_or_else(|| panic!("no acknowledgement queued for {reference}"));
    let mid = row["message_id"].as_str().unwrap_or_default().to_string();
    app.sent()
        .into_iter()
        .find(|m| m.message_id == mid)
        .unwrap_or_else(|| panic!("acknowledgement {mid} of {reference} not in the outbox dir"))
}

fn incoming(show: &Value) -> Vec<Value> {
    show["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| m["direction"] == "in")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn register_one(app: &TestApp, from: &str, subject: &str) -> String {
    let before: BTreeSet<String> = app.references().into_iter().collect();
    app.deliver(&Mail::new(from, subject).build());
    app.run_once();
    let after: Vec<String> = app
        .references()
        .into_iter()
        .filter(|r| !before.contains(r))
        .collect();
    assert_eq!(after.len(), 1, "expected one new complaint, got {after:?}");
    after[0].clone()
}

// ---- dedupe ----------------------------------------------------------------------------------

#[test]
fn same_file_delivered_twice_is_one_complaint_one_ack() {
    let app = TestApp::spawn();
    let mail = Mail::new(JAN, "Les groep 5 uitgevallen").build();
    app.deliver(&mail);
    app.deliver(&mail);
    app.run_once();
    // And once more, later, after the first copies were processed.
    app.deliver(&mail);
    app.run_once();
    assert_eq!(app.list().len(), 1, "{:#?}", app.list());
    assert_eq!(acks_to(&app, JAN).len(), 1);
    assert_eq!(app.maildir_files("new").len(), 0);
    assert_eq!(
        app.maildir_files("cur").len(),
        3,
        "every copy is marked processed"
    );
}

#[test]
fn the_same_mail_through_a_second_relay_is_one_complaint() {
    let app = TestApp::spawn();
    let a = Mail::new(JAN, "Factuur klopt niet").message_id("dup-1@ouders.example.nl");
    let b = a.clone().header(
        "Received",
        "from relay2.example.nl by mx.example.org; Mon, 23 Nov 2026",
    );
    app.deliver(&a.build());
    app.deliver(&b.build());
    app.run_once();
    assert_eq!(app.list().len(), 1);
    assert_eq!(acks_to(&app, JAN).len(), 1);
}

/// Issue #8 finding 4: badly written form mailers give every mail one Message-ID. Three
/// different people, three different texts: three complaints, the reuse recorded.
#[test]
fn different_mails_sharing_a_message_id_are_all_registered() {
    let app = TestApp::spawn();
    let people = [
        "a@ouders.example.nl",
        "b@ouders.example.nl",
        "c@ouders.example.nl",
    ];
    for (i, who) in people.iter().enumerate() {
        let mail = Mail::new(who, "Webformulier")
            .message_id("fixed@webform.example")
            .body(&format!("Bericht {i} van {who}: de bus kwam niet."));
        app.deliver(&mail.build());
    }
    let out = app.run_once();
    assert!(!out.contains("\"duplicate\""), "{out}");
    let list = app.list();
    assert_eq!(list.len(), 3, "{list:?}");
    let reused: usize = app
        .references()
        .iter()
        .filter(|r| {
            app.show(r)["history"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|h| h["detail"].as_str().unwrap_or("").contains("reused"))
        })
        .count();
    assert_eq!(reused, 2, "the second and third record the reuse");
    for who in people {
        assert_eq!(acks_to(&app, who).len(), 1, "{who}");
    }
}

#[test]
fn without_message_id_same_bytes_dedupe_but_different_bytes_do_not() {
    let app = TestApp::spawn();
    let m = Mail::new(JAN, "Geen Message-ID").without("Message-ID");
    app.deliver(&m.build());
    app.deliver(&m.build());
    app.run_once();
    assert_eq!(
        app.list().len(),
        1,
        "same bytes without Message-ID: one complaint"
    );
    assert_eq!(acks_to(&app, JAN).len(), 1);
    app.deliver(
        &m.clone()
            .body("Een ander bericht, ook zonder Message-ID.")
            .build(),
    );
    app.run_once();
    assert_eq!(app.list().len(), 2, "different bytes: a second complaint");
}

// ---- threading -------------------------------------------------------------------------------

#[test]
fn subject_reference_from_complainant_threads() {
    let app = TestApp::spawn();
    let r = register_one(&app, JAN, "Lesrooster");
    app.deliver(
        &Mail::new(JAN, &format!("Re: [{r}] Lesrooster"))
            .message_id("jan-2@ouders.example.nl")
            .body("Nog een aanvulling.")
            .build(),
    );
    app.run_once();
    assert_eq!(app.list().len(), 1);
    let show = app.show(&r);
    assert_eq!(incoming(&show).len(), 2);
    assert!(app.history_events(&r).contains(&"message_in".to_string()));
    assert_eq!(
        acks_to(&app, JAN).len(),
        1,
        "a reply is not acknowledged again"
    );
}

#[test]
fn in_reply_to_our_acknowledgement_threads() {
    let app = TestApp::spawn();
    let r = register_one(&app, JAN, "Lesrooster");
    let ack = ack_of(&app, &r);
    app.deliver(
        &Mail::new(JAN, "Re: uw bericht")
            .message_id("jan-irt@ouders.example.nl")
            .header("In-Reply-To", &format!("<{}>", ack.message_id))
            .build(),
    );
    app.run_once();
    assert_eq!(app.list().len(), 1);
    assert_eq!(incoming(&app.show(&r)).len(), 2);
}

#[test]
fn references_only_threads() {
    let app = TestApp::spawn();
    let r = register_one(&app, JAN, "Lesrooster");
    let ack = ack_of(&app, &r);
    app.deliver(
        &Mail::new(JAN, "Doorgestuurd")
            .message_id("jan-refs@ouders.example.nl")
            .header(
                "References",
                &format!("<unrelated@elsewhere.example> <{}>", ack.message_id),
            )
            .build(),
    );
    app.run_once();
    assert_eq!(app.list().len(), 1);
    assert_eq!(incoming(&app.show(&r)).len(), 2);
}

#[test]
fn subject_reference_from_stranger_is_a_new_related_complaint() {
    let app = TestApp::spawn();
    let r = register_one(&app, JAN, "Lesrooster");
    app.deliver(&Mail::new(PIET, &format!("Ook over [{r}]")).build());
    app.run_once();
    let list = app.list();
    assert_eq!(list.len(), 2);
    let other = list
        .iter()
        .find(|c| c["reference"] != r.as_str())
        .expect("new complaint");
    assert_eq!(other["complainant"], PIET);
    assert_eq!(other["related_reference"], r.as_str());
    assert_eq!(incoming(&app.show(&r)).len(), 1, "not added to {r}");
    assert_eq!(acks_to(&app, PIET).len(), 1);
}

#[test]
fn staff_reply_with_reference_threads() {
    let app = TestApp::spawn();
    let r = register_one(&app, JAN, "Lesrooster");
    app.deliver(
        &Mail::new(RECEIVER, &format!("Re: [{r}] Lesrooster"))
            .body("Intern: ik bel morgen.")
            .build(),
    );
    app.run_once();
    assert_eq!(app.list().len(), 1);
    assert_eq!(incoming(&app.show(&r)).len(), 2);
    assert!(acks_to(&app, RECEIVER).is_empty());
}

// ---- automatic mail and spam -----------------------------------------------------------------

#[test]
fn automatic_mail_is_kept_unfiled_and_never_acknowledged() {
    let app = TestApp::spawn();
    let variants: Vec<(&str, Mail)> = vec![
        (
            "auto-replied@x.example.nl",
            Mail::new("auto-replied@x.example.nl", "Afwezig")
                .header("Auto-Submitted", "auto-replied"),
        ),
        (
            "auto-generated@x.example.nl",
            Mail::new("auto-generated@x.example.nl", "Report").header(
                "Auto-Submitted",
                "auto-generated; owner-email=\"x@x.example.nl\"",
            ),
        ),
        (
            "bulk@x.example.nl",
            Mail::new("bulk@x.example.nl", "Nieuwsbrief").header("Precedence", "bulk"),
        ),
        (
            "junk@x.example.nl",
            Mail::new("junk@x.example.nl", "Aanbieding").header("Precedence", "junk"),
        ),
        (
            "list@x.example.nl",
            Mail::new("list@x.example.nl", "Lijst").header("Precedence", "list"),
        ),
        (
            "listid@x.example.nl",
            Mail::new("listid@x.example.nl", "Lijst 2").header("List-Id", "<ouders.x.example.nl>"),
        ),
        (
            "xautoreply@x.example.nl",
            Mail::new("xautoreply@x.example.nl", "Bedankt").header("X-Autoreply", "yes"),
        ),
        (
            "xautorespond@x.example.nl",
            Mail::new("xautorespond@x.example.nl", "Thanks").header("X-Autorespond", "Thanks"),
        ),
        (
            "nullsender@x.example.nl",
            Mail::new("nullsender@x.example.nl", "Herinnering").header("Return-Path", "<>"),
        ),
        (
            "mailer-daemon@x.example.nl",
            Mail::new("MAILER-DAEMON@x.example.nl", "Delayed mail"),
        ),
        (
            "postmaster@x.example.nl",
            Mail::new("postmaster@x.example.nl", "Quota"),
        ),
        (
            "spam@x.example.nl",
            Mail::new("spam@x.example.nl", "Prijs").header("X-Spam-Flag", "YES"),
        ),
    ];
    for (_, m) in &variants {
        app.deliver(&m.build());
    }
    app.run_once();
    assert!(app.list().is_empty(), "{:#?}", app.list());
    assert!(
        app.sent().is_empty(),
        "nothing may be sent: {:?}",
        app.sent()
    );
    let unfiled = app.unfiled();
    assert_eq!(unfiled.len(), variants.len(), "{unfiled:#?}");
    for (addr, _) in &variants {
        let row = unfiled
            .iter()
            .find(|u| u["from"] == *addr)
            .unwrap_or_else(|| panic!("{addr} not in unfiled list"));
        assert!(
            row["message_id"].as_str().is_some_and(|m| !m.is_empty()),
            "{row}"
        );
        assert!(!row["reason"].as_str().unwrap_or_default().is_empty());
    }
}

#[test]
fn not_automatic_markers_are_acknowledged() {
    let app = TestApp::spawn();
    let a = "autono@x.example.nl";
    let b = "suppress@x.example.nl";
    let c = "noreturnpath@x.example.nl";
    app.deliver(
        &Mail::new(a, "Klacht 1")
            .header("Auto-Submitted", "no")
            .build(),
    );
    app.deliver(
        &Mail::new(b, "Klacht 2")
            .header("X-Auto-Response-Suppress", "All")
            .build(),
    );
    app.deliver(&Mail::new(c, "Klacht 3").without("Return-Path").build());
    app.run_once();
    assert_eq!(app.list().len(), 3);
    for addr in [a, b, c] {
        assert_eq!(acks_to(&app, addr).len(), 1, "{addr}");
    }
}

#[test]
fn spam_false_positive_promoted_and_acknowledged() {
    let app = TestApp::spawn();
    app.deliver(
        &Mail::new(JAN, "Klacht over de les")
            .header("X-Spam-Flag", "YES")
            .build(),
    );
    app.run_once();
    assert!(app.list().is_empty());
    let unfiled = app.unfiled();
    assert_eq!(unfiled.len(), 1);
    assert!(
        unfiled[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("spam")
    );
    let id = unfiled[0]["id"].as_i64().expect("id").to_string();
    let out = app.cmd_ok(&["unfiled", "promote", &id]);
    let reference = out.trim().to_string();
    assert_eq!(app.references(), vec![reference.clone()]);
    assert!(app.unfiled().is_empty());
    assert_eq!(
        acks_to(&app, JAN).len(),
        1,
        "promoted spam false positive is acknowledged"
    );
    let ack = ack_of(&app, &reference);
    assert!(ack.subject.contains(&reference), "{}", ack.subject);
}

#[test]
fn promoted_automatic_mail_is_registered_without_acknowledgement() {
    let app = TestApp::spawn();
    app.deliver(
        &Mail::new(JAN, "Afwezig")
            .header("Auto-Submitted", "auto-replied")
            .build(),
    );
    app.run_once();
    let id = app.unfiled()[0]["id"].as_i64().expect("id").to_string();
    let reference = app.cmd_ok(&["unfiled", "promote", &id]).trim().to_string();
    assert_eq!(app.references(), vec![reference.clone()]);
    assert!(acks_to(&app, JAN).is_empty());
    assert!(
        app.history_events(&reference)
            .contains(&"acknowledgement_withheld".to_string())
    );
}

#[test]
fn promote_no_acknowledge_sends_nothing() {
    let app = TestApp::spawn();
    app.deliver(
        &Mail::new(JAN, "Klacht")
            .header("X-Spam-Flag", "YES")
            .build(),
    );
    app.run_once();
    let id = app.unfiled()[0]["id"].as_i64().expect("id").to_string();
    app.cmd_ok(&["unfiled", "promote", &id, "--no-acknowledge"]);
    assert_eq!(app.list().len(), 1);
    assert!(acks_to(&app, JAN).is_empty());
}

#[test]
fn web_form_mail_is_acknowledged_to_reply_to() {
    let app = TestApp::spawn();
    app.set_env(
        "KLACHTD__INTAKE__WEB_FORM_SENDERS",
        r#"["forms@web.example"]"#,
    );
    app.deliver(
        &Mail::new("forms@web.example", "Klachtenformulier")
            .header("Reply-To", "Lisa Mulder <person@x.example.nl>")
            .build(),
    );
    app.run_once();
    let list = app.list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["complainant"], "person@x.example.nl");
    assert_eq!(acks_to(&app, "person@x.example.nl").len(), 1);
    assert!(app.sent_to("forms@web.example").is_empty());
}

// ---- bounces ---------------------------------------------------------------------------------

fn exchange_ndr(verp: &str, rcpt: &str, marker: (&str, &str)) -> Vec<u8> {
    Mail::new("postmaster@outlook.example.com", "Onbestelbaar: uw klacht")
        .header("Return-Path", "<>")
        .header(marker.0, marker.1)
        .header("To", verp)
        .header("Delivered-To", verp)
        .header("X-MS-Exchange-Message-Is-Ndr", "")
        .message_id(&format!("ndr-{}@outlook.example.com", verp.len()))
        .body(&format!(
            "Uw bericht heeft de volgende ontvanger(s) niet bereikt: {rcpt}\n\n\
             Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound'"
        ))
        .build()
}

fn assert_bounced(app: &TestApp, reference: &str) {
    let show = app.show(reference);
    let ack_status: Vec<&Value> = show["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["direction"] == "out" && m["classification"] == "acknowledgement")
        .map(|m| &m["status"])
        .collect();
    assert_eq!(
        ack_status,
        vec!["bounced"],
        "{}",
        serde_json::to_string_pretty(&show).unwrap_or_default()
    );
    assert!(
        app.history_events(reference)
            .contains(&"bounce".to_string())
    );
    let alerts: Vec<SentMail> = app
        .sent_to(RECEIVER)
        .into_iter()
        .filter(|m| {
            m.subject.contains(reference) && m.subject.to_lowercase().contains("niet bezorgd")
        })
        .collect();
    assert_eq!(alerts.len(), 1, "one bounce_alert to the receiver");
    assert!(
        app.outbox()
            .iter()
            .any(|o| o["template"] == "bounce_alert" && o["recipients"] == RECEIVER)
    );
}

#[test]
fn exchange_ndr_matched_by_verp() {
    for marker in [("Auto-Submitted", "auto-replied"), ("X-Unused", "x")] {
        let app = TestApp::spawn();
        let r = register_one(&app, JAN, "Lesrooster");
        let ack = ack_of(&app, &r);
        assert!(
            ack.envelope_from.starts_with("service+b-"),
            "VERP envelope: {}",
            ack.envelope_from
        );
        app.deliver(&exchange_ndr(&ack.envelope_from, JAN, marker));
        app.run_once();
        assert_eq!(app.list().len(), 1, "a bounce is not a complaint");
        assert_bounced(&app, &r);
    }
}

#[test]
fn forged_verp_signature_is_not_matched() {
    let app = TestApp::spawn();
    let r = register_one(&app, JAN, "Lesrooster");
    let ack = ack_of(&app, &r);
    // Same outbox id, wrong signature.
    let (local, domain) = ack.envelope_from.split_once('@').expect("address");
    let (prefix, sig) = local.rsplit_once('-').expect("token");
    let flipped: String = sig
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    let forged = format!("{prefix}-{flipped}@{domain}");
    assert_ne!(forged, ack.envelope_from);
    app.deliver(&exchange_ndr(
        &forged,
        JAN,
        ("Auto-Submitted", "auto-replied"),
    ));
    app.run_once();
    let show = app.show(&r);
    assert!(
        show["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .all(|m| m["status"] != "bounced"),
        "{show}"
    );
    assert!(!app.history_events(&r).contains(&"bounce".to_string()));
    assert_eq!(app.unfiled().len(), 1, "kept as automatic mail");
    assert!(
        app.outbox().iter().all(|o| o["template"] != "bounce_alert"),
        "no alert for a forged bounce"
    );
}

fn rfc3464_dsn(to: &str, reference: &str, ack_message_id: &str) -> Vec<u8> {
    format!(
        "Return-Path: <>\r\n\
         From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n\
         To: {to}\r\n\
         Delivered-To: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: Mon, 23 Nov 2026 11:05:00 +0100\r\n\
         Message-Id: <20261123100500.DSN1@mx.example.org>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         <{JAN}>: host mx.ouders.example.nl said: 550 5.1.1 User unknown\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.org\r\n\
         \r\n\
         Final-Recipient: rfc822; {JAN}\r\n\
         Action: failed\r\n\
         Status: 5.1.1\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: message/rfc822\r\n\
         \r\n\
         From: service@example.org\r\n\
         To: {JAN}\r\n\
         Subject: [{reference}] Lesrooster\r\n\
         Message-ID: <{ack_message_id}>\r\n\
         \r\n\
         Wij hebben uw klacht ontvangen.\r\n\
         \r\n\
         --b1--\r\n"
    )
    .into_bytes()
}

#[test]
fn rfc3464_dsn_to_our_verp_address_marks_the_acknowledgement_bounced() {
    let app = TestApp::spawn();
    let r = register_one(&app, JAN, "Lesrooster");
    let ack = ack_of(&app, &r);
    app.deliver(&rfc3464_dsn(&ack.envelope_from, &r, &ack.message_id));
    app.run_once();
    assert_eq!(app.list().len(), 1);
    assert_bounced(&app, &r);
}

/// Issue #8 finding 9: the acknowledgement's Message-ID is visible to the complainant and to
/// anyone later in the thread; a report sent to the plain address that names it proves
/// nothing. It is kept unfiled, the acknowledgement stays sent, nobody is alerted.
#[test]
fn a_delivery_report_to_the_plain_address_marks_nothing_bounced() {
    let app = TestApp::spawn();
    let r = register_one(&app, JAN, "Lesrooster");
    let ack = ack_of(&app, &r);
    let staff_before = app.sent().len();
    app.deliver(&rfc3464_dsn(common::SERVICE, &r, &ack.message_id));
    app.run_once();
    assert_eq!(app.list().len(), 1);
    let unfiled = app.unfiled();
    assert_eq!(unfiled.len(), 1, "{unfiled:?}");
    assert!(
        unfiled[0]["reason"].as_str().unwrap_or("").contains("VERP"),
        "{unfiled:?}"
    );
    let show = app.show(&r);
    let statuses: Vec<&Value> = show["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["direction"] == "out" && m["classification"] == "acknowledgement")
        .map(|m| &m["status"])
        .collect();
    assert_eq!(statuses, vec!["sent"]);
    assert_eq!(app.sent().len(), staff_before, "no bounce alert");
}

// ---- acknowledgement cap ---------------------------------------------------------------------

#[test]
fn acknowledgements_capped_per_address_per_day() {
    let app = TestApp::spawn();
    let mut refs = Vec::new();
    for i in 1..=4 {
        refs.push(register_one(&app, JAN, &format!("Klacht nummer {i}")));
    }
    assert_eq!(acks_to(&app, JAN).len(), 3);
    for r in &refs[..3] {
        assert!(
            !app.history_events(r)
                .contains(&"acknowledgement_withheld".to_string())
        );
    }
    assert!(
        app.history_events(&refs[3])
            .contains(&"acknowledgement_withheld".to_string()),
        "{:?}",
        app.history_events(&refs[3])
    );
    // 25 hours later the window has passed.
    let later = app.now() + Duration::hours(25);
    app.set_now(&later.to_rfc3339());
    app.deliver_eml(
        &Mail::new(JAN, "Klacht nummer 5").build(),
        later - Duration::minutes(5),
    );
    app.run_once();
    assert_eq!(app.list().len(), 5);
    assert_eq!(acks_to(&app, JAN).len(), 4);
}

// ---- quarantine ------------------------------------------------------------------------------

#[test]
fn junk_is_quarantined_with_reason_and_release_keeps_it_held() {
    let app = TestApp::spawn();
    app.deliver(b"\x00\x01\x02\xff\xfe garbage from a broken scanner \x89PNG\r\n\x1a\n");
    app.deliver(
        &Mail::new(JAN, "Zonder afzender")
            .without("From")
            .without("Return-Path")
            .build(),
    );
    let summary = app.run_once();
    assert!(summary.contains("2 quarantined"), "{summary}");
    assert!(app.list().is_empty());
    let q = app.quarantine();
    assert_eq!(q.len(), 2, "{q:#?}");
    for row in &q {
        assert!(!row["reason"].as_str().unwrap_or_default().is_empty());
        assert_eq!(row["status"], "held");
    }
    let no_from = q
        .iter()
        .find(|r| r["reason"].as_str().unwrap_or_default().contains("From"))
        .expect("no-From entry");
    assert!(no_from["message_id"].as_str().is_some(), "{no_from}");
    let id = no_from["id"].as_i64().expect("id").to_string();
    let out = app.cmd(&["quarantine", "release", &id]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "release of an unreadable mail must fail"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stays held"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(app.quarantine().len(), 2, "still held");
    assert!(app.list().is_empty());
}

// ---- size limit and attachments --------------------------------------------------------------

fn with_attachment(from: &str, subject: &str, filename_param: &str, payload: &[u8]) -> Vec<u8> {
    use std::fmt::Write;
    let mut b64 = String::new();
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (i, chunk) in payload.chunks(3).enumerate() {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= n {
                b64.push(table[((v >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
        if (i + 1) % 19 == 0 {
            b64.push_str("\r\n");
        }
    }
    let mut s = String::new();
    let _ = write!(
        s,
        "From: {from}\r\nTo: service@example.org\r\nSubject: {subject}\r\n\
         Message-ID: <att.{}.{from}>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0100\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n\
         --XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Zie de bijlage bij mijn klacht over de les.\r\n\
         --XX\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; {filename_param}\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--XX--\r\n",
        subject.len()
    );
    s.into_bytes()
}

#[test]
fn oversize_mail_is_registered_with_text_and_attachment_refused() {
    let app = TestApp::spawn();
    app.set_env("KLACHTD__LIMITS__MAX_MAIL_BYTES", "2048");
    let payload: Vec<u8> = (0..10 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    app.deliver(&with_attachment(
        JAN,
        "Klacht met grote bijlage",
        "filename=\"scan.pdf\"",
        &payload,
    ));
    app.run_once();
    let list = app.list();
    assert_eq!(list.len(), 1);
    let r = list[0]["reference"].as_str().expect("reference");
    let show = app.show(r);
    let msg = &incoming(&show)[0];
    assert!(
        msg["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Zie de bijlage"),
        "{msg}"
    );
    let atts = msg["attachments"].as_array().expect("attachments");
    assert_eq!(atts.len(), 1, "{msg}");
    assert_eq!(atts[0]["name"], "scan.pdf");
    assert!(atts[0]["refused_reason"].as_str().is_some(), "{}", atts[0]);
    assert!(atts[0]["sha256"].is_null());
    assert!(
        app.history_events(r)
            .contains(&"attachments_refused".to_string())
    );
    assert!(
        !app.data_files()
            .iter()
            .any(|p| p.starts_with("attachments")),
        "a refused attachment is not stored: {:?}",
        app.data_files()
    );
    assert_eq!(acks_to(&app, JAN).len(), 1);
}

#[test]
fn traversal_filename_is_stored_by_hash_inside_data_dir() {
    let app = TestApp::spawn();
    let payload = b"root:x:0:0:root:/root:/bin/bash\n".to_vec();
    app.deliver(&with_attachment(
        JAN,
        "Bijlage",
        "filename*=us-ascii''..%2F..%2Fetc%2Fpasswd",
        &payload,
    ));
    app.deliver(&with_attachment(
        PIET,
        "Bijlage twee",
        "filename=\"../../../../tmp/klachtd-escape-test\"",
        b"escape attempt",
    ));
    app.run_once();
    assert_eq!(app.list().len(), 2);
    let everything = walk_all(&app.root);
    for p in &everything {
        assert!(
            !p.ends_with("passwd") && !p.ends_with("klachtd-escape-test"),
            "attachment written under its own name: {p:?}"
        );
    }
    assert!(!Path::new("/tmp/klachtd-escape-test").exists());
    for r in app.references() {
        let show = app.show(&r);
        let att = &incoming(&show)[0]["attachments"][0];
        let sha = att["sha256"]
            .as_str()
            .expect("stored attachment has a sha256");
        assert_eq!(sha.len(), 64);
        let stored = app.data_dir.join("attachments").join(&sha[..2]).join(sha);
        assert!(stored.is_file(), "{stored:?} missing");
        if att["name"] == "../../etc/passwd" {
            assert_eq!(std::fs::read(&stored).expect("read"), payload);
        }
    }
}

fn walk_all(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk_all(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

// ---- Maildir ---------------------------------------------------------------------------------

#[test]
fn processed_mail_moves_to_cur_with_seen_flag() {
    let app = TestApp::spawn();
    let path = app.deliver(&Mail::new(JAN, "Lesrooster").build());
    let unique = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    app.run_once();
    assert!(app.maildir_files("new").is_empty());
    assert_eq!(app.maildir_files("cur"), vec![format!("{unique}:2,S")]);
}

#[test]
fn mail_read_by_a_person_in_cur_is_still_registered() {
    let app = TestApp::spawn();
    app.deliver_cur(
        &Mail::new(JAN, "Al gelezen door een collega").build(),
        app.now() - Duration::hours(1),
        "S",
    );
    app.run_once();
    assert_eq!(app.list().len(), 1);
    assert_eq!(acks_to(&app, JAN).len(), 1);
    app.run_once();
    assert_eq!(app.list().len(), 1, "and only once");
}

// ---- void ------------------------------------------------------------------------------------

#[test]
fn void_removes_from_list_but_number_stays_taken() {
    let app = TestApp::spawn();
    let r1 = register_one(&app, JAN, "Eerste");
    let r2 = register_one(&app, PIET, "Tweede");
    assert!(r1.ends_with("-0001") && r2.ends_with("-0002"), "{r1} {r2}");
    app.cmd_ok(&["void", &r2, "--reason", "spam die erdoor kwam"]);
    assert_eq!(app.references(), vec![r1.clone()]);
    let r3 = register_one(&app, "derde@ouders.example.nl", "Derde");
    assert!(r3.ends_with("-0003"), "voided number reused: {r3}");
    let out = app.cmd(&["void", &r2, "--reason", "nogmaals"]);
    assert_ne!(out.status.code(), Some(0), "voiding twice fails");
}

// ---- command line ----------------------------------------------------------------------------

#[test]
fn bad_config_exits_2_naming_file_and_line() {
    let app = TestApp::spawn();
    let bad = app.root.join("bad.toml");
    std::fs::write(
        &bad,
        "data_dir = \"data\"\n\n[organisation]\nname = \"X\"\nmail_domain = example.org\n",
    )
    .expect("write");
    let out = std::process::Command::new(common::bin())
        .current_dir(&app.root)
        .env_remove("KLACHTD_CONFIG")
        .arg("--config")
        .arg(&bad)
        .arg("list")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.toml"), "{stderr}");
    assert!(stderr.contains(":5"), "line 5 named: {stderr}");
}

#[test]
fn unknown_subcommand_exits_2() {
    let app = TestApp::spawn();
    let out = app.cmd(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_reports_several_problems_at_once() {
    let app = TestApp::spawn();
    app.set_env("KLACHTD__ORGANISATION__TIME_ZONE", "Europe/Atlantis");
    app.set_env("KLACHTD__ORGANISATION__LANGUAGE", "fr");
    app.set_env("KLACHTD__ORGANISATION__MAIL_DOMAIN", "not a domain@");
    let out = app.cmd(&["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    for key in [
        "organisation.time_zone",
        "organisation.language",
        "organisation.mail_domain",
    ] {
        assert!(stdout.contains(key), "{key} missing in:\n{stdout}");
    }
    let ok = TestApp::spawn();
    assert_eq!(ok.cmd(&["check"]).status.code(), Some(0));
}

// ---- crash safety and concurrency ------------------------------------------------------------

fn count_eml(dir: &Path) -> usize {
    common::file_names(dir)
        .iter()
        .filter(|n| n.ends_with(".eml"))
        .count()
}

/// Start `run --once` and SIGKILL it once `ready()` holds (or give up waiting after 60 s).
/// Returns whether it was killed while still running.
fn kill_when(mut child: Child, ready: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if ready() || start.elapsed() > StdDuration::from_secs(60) {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
            return true;
        }
        std::thread::sleep(StdDuration::from_millis(10));
    }
}

fn quiet(app: &TestApp, args: &[&str]) -> Child {
    app.command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn klachtd")
}

fn complainant_mail(i: usize) -> Vec<u8> {
    Mail::new(
        &format!("ouder{i:04}@school{}.example.nl", i % 13),
        &format!("Klacht {i}: les niet doorgegaan"),
    )
    .build()
}

/// References must be PREFIX-YEAR-0001..=n, each once.
fn assert_gapless(refs: &[String], n: usize) {
    let mut numbers: Vec<usize> = refs
        .iter()
        .map(|r| {
            assert!(r.starts_with("KL-2026-"), "{r}");
            r.rsplit('-')
                .next()
                .and_then(|x| x.parse().ok())
                .expect("number")
        })
        .collect();
    numbers.sort_unstable();
    let expected: Vec<usize> = (1..=n).collect();
    if numbers != expected {
        let have: BTreeSet<usize> = numbers.iter().copied().collect();
        let missing: Vec<usize> = expected
            .iter()
            .filter(|x| !have.contains(x))
            .copied()
            .collect();
        let mut dups = BTreeMap::<usize, usize>::new();
        for x in &numbers {
            *dups.entry(*x).or_default() += 1;
        }
        dups.retain(|_, c| *c > 1);
        panic!(
            "{} references; missing {:?}; duplicated {:?}",
            numbers.len(),
            &missing[..missing.len().min(20)],
            dups
        );
    }
}

#[test]
fn kill_9_mid_run_then_rerun_registers_and_acknowledges_exactly_once() {
    const N: usize = 1000;
    let app = TestApp::spawn();
    let base = app.now() - Duration::hours(1);
    for i in 0..N {
        let at = base + Duration::seconds(i as i64);
        app.deliver_eml(&complainant_mail(i), at);
    }
    let cur = app.maildir.join("cur");
    let outbox = app.outbox_dir.clone();
    // First run: killed while ingesting (about 40% moved to cur/).
    let killed_ingest = kill_when(quiet(&app, &["run", "--once"]), || {
        common::file_names(&cur).len() >= N * 2 / 5
    });
    // Second run: killed while delivering the outbox.
    let killed_send = kill_when(quiet(&app, &["run", "--once"]), || {
        count_eml(&outbox) >= 100
    });
    eprintln!("killed during ingest: {killed_ingest}, during delivery: {killed_send}");
    // A mail claimed by the killed sender is retried after its lease (5 minutes): run later.
    app.set_now(&(app.now() + Duration::minutes(10)).to_rfc3339());
    app.run_once();

    let refs = app.references();
    assert_eq!(refs.len(), N);
    assert_gapless(&refs, N);
    assert!(app.maildir_files("new").is_empty());

    let sent = app.sent();
    let acks: Vec<&SentMail> = sent
        .iter()
        .filter(|m| m.envelope_to.iter().all(|t| t.starts_with("ouder")))
        .collect();
    let files: BTreeSet<&str> = acks.iter().map(|m| m.file.as_str()).collect();
    let ids: BTreeSet<&str> = acks.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(acks.len(), N, "acknowledgement files");
    assert_eq!(files.len(), N);
    assert_eq!(ids.len(), N, "distinct Message-IDs");
    let mut per = BTreeMap::<&str, usize>::new();
    for m in &acks {
        for t in &m.envelope_to {
            *per.entry(t.as_str()).or_default() += 1;
        }
    }
    assert_eq!(per.len(), N, "every complainant acknowledged");
    assert!(
        per.values().all(|c| *c == 1),
        "someone got two acknowledgements"
    );
    let outbox_rows = app.outbox();
    assert!(
        outbox_rows
            .iter()
            .filter(|o| o["template"] == "acknowledgement")
            .all(|o| o["status"] == "sent"),
        "every acknowledgement marked sent"
    );
}

#[test]
fn four_processes_four_maildirs_one_database() {
    let app = TestApp::spawn();
    // The database exists (migrated) before the four workers start.
    four_workers(&app, || {
        app.list();
    });
}

#[test]
fn four_processes_start_together_on_a_fresh_database() {
    let app = TestApp::spawn();
    four_workers(&app, || {});
}

/// 4 Maildirs of 250 mails, one database, four `run --once` started at the same moment.
fn four_workers(app: &TestApp, before_start: impl FnOnce()) {
    const PER: usize = 250;
    // On PostgreSQL the harness's database is already one every process reaches (and fresh
    // until the first command); a sqlite: URL here would quietly test SQLite instead.
    if !app.on_postgres() {
        let db = app.root.join("shared").join("klachtd.db");
        app.set_env(
            "KLACHTD__DATABASE__URL",
            &format!("sqlite://{}", db.display()),
        );
    }
    let base = app.now() - Duration::hours(1);
    let mut dirs = Vec::new();
    for w in 0..4 {
        let md = app.root.join(format!("maildir{w}"));
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(md.join(sub)).expect("maildir");
        }
        for i in 0..PER {
            let n = w * PER + i;
            common::write_maildir_file(
                &md,
                &format!("{}.M{n}P{w}.worker", base.timestamp()),
                "new",
                "",
                &complainant_mail(n),
                base + Duration::seconds(i as i64),
            );
        }
        dirs.push(md);
    }
    before_start();
    let children: Vec<Child> = dirs
        .iter()
        .map(|md| {
            app.command(&["run", "--once"])
                .env("KLACHTD__MAILBOX__PATH", md)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "a worker failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let refs = app.references();
    assert_eq!(refs.len(), 4 * PER);
    assert_gapless(&refs, 4 * PER);
    let unique: BTreeSet<&String> = refs.iter().collect();
    assert_eq!(unique.len(), 4 * PER);
    let complainants: BTreeSet<String> = app
        .list()
        .iter()
        .map(|c| c["complainant"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(complainants.len(), 4 * PER);
    for md in &dirs {
        assert!(common::file_names(&md.join("new")).is_empty());
    }
}

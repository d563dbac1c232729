//! The outbox sender on the embedded default: a transient failure is retried with backoff and
//! then delivered once; a mail that keeps failing past `give_up_after_hours` is kept as failed,
//! listed, and alerted to the admin, never deleted.

mod common;

use common::{Mail, TestApp, ts};

/// Make the file transport's writes fail: its temporary directory becomes a plain file.
fn break_outbox(app: &TestApp) {
    let tmp = app.outbox_dir.join(".tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&app.outbox_dir).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();
}

fn mend_outbox(app: &TestApp) {
    let tmp = app.outbox_dir.join(".tmp");
    std::fs::remove_file(&tmp).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
}

#[test]
fn transient_failure_retries_with_backoff_then_delivers_once() {
    let app = TestApp::spawn();
    // First run creates the outbox directory; then writes start failing.
    app.run_once();
    break_outbox(&app);
    app.deliver(&Mail::new("jan@example.nl", "Lesrooster").build());
    app.set_now("2026-11-23T12:00:00+01:00");
    app.run_once();
    let ack = app
        .outbox()
        .into_iter()
        .find(|o| o["template"] == "acknowledgement")
        .unwrap();
    assert_eq!(ack["status"], "queued", "{ack}");
    assert_eq!(ack["attempts"], 1);
    assert!(
        ack["last_error"].as_str().unwrap().contains("cannot write"),
        "{ack}"
    );
    // First retry after 30 s (outbox.retry_initial_seconds), not before.
    assert_eq!(
        ts(ack["next_attempt_at"].as_str().unwrap()),
        ts("2026-11-23T12:00:30+01:00")
    );
    app.set_now("2026-11-23T12:00:20+01:00");
    app.run_once();
    let ack = app
        .outbox()
        .into_iter()
        .find(|o| o["template"] == "acknowledgement")
        .unwrap();
    assert_eq!(ack["attempts"], 1, "not retried before its time");
    // Second failure doubles the wait (60 s).
    app.set_now("2026-11-23T12:00:31+01:00");
    app.run_once();
    let ack = app
        .outbox()
        .into_iter()
        .find(|o| o["template"] == "acknowledgement")
        .unwrap();
    assert_eq!(ack["attempts"], 2);
    assert_eq!(
        ts(ack["next_attempt_at"].as_str().unwrap()),
        ts("2026-11-23T12:01:31+01:00")
    );
    mend_outbox(&app);
    app.set_now("2026-11-23T12:02:00+01:00");
    app.run_once();
    let ack = app
        .outbox()
        .into_iter()
        .find(|o| o["template"] == "acknowledgement")
        .unwrap();
    assert_eq!(ack["status"], "sent", "{ack}");
    assert_eq!(app.sent_to("jan@example.nl").len(), 1);
    app.run_once();
    assert_eq!(app.sent_to("jan@example.nl").len(), 1, "exactly once");
}

#[test]
fn permanent_failure_is_kept_listed_and_alerted_to_the_admin() {
    let app = TestApp::spawn();
    app.set_env("KLACHTD__OUTBOX__GIVE_UP_AFTER_HOURS", "1");
    app.run_once();
    break_outbox(&app);
    app.deliver(&Mail::new("jan@example.nl", "Lesrooster").build());
    app.set_now("2026-11-23T12:00:00+01:00");
    app.run_once();
    // Two hours later it is still failing: given up, kept, alerted.
    app.set_now("2026-11-23T14:00:00+01:00");
    app.run_once();
    let failed = app.json(&["outbox", "list", "--status", "failed", "--format", "json"]);
    let templates: Vec<&str> = failed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["template"].as_str())
        .collect();
    assert!(templates.contains(&"acknowledgement"), "{failed}");
    let alerts: Vec<serde_json::Value> = app
        .outbox()
        .into_iter()
        .filter(|o| o["template"] == "delivery_failed")
        .collect();
    // The acknowledgement and the receiver's notice both failed: one alert each.
    assert_eq!(
        alerts.len(),
        templates.len(),
        "one alert per failed mail: {failed}"
    );
    assert_eq!(alerts[0]["recipients"], common::ADMIN);
    let r = app.references()[0].clone();
    assert!(
        app.history_events(&r)
            .iter()
            .any(|e| e == "delivery_failed")
    );
    // Once the outbox works again the alert reaches the admin; the failed mail stays failed
    // (visible, not retried behind anyone's back).
    mend_outbox(&app);
    app.set_now("2026-11-23T14:10:00+01:00");
    app.run_once();
    assert_eq!(app.sent_to(common::ADMIN).len(), templates.len());
    assert_eq!(app.sent_to("jan@example.nl").len(), 0);
}

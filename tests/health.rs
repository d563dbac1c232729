//! The health and metrics listener (issue #12) through the real daemon: `klachtd run` with
//! `[http] listen` on a free loopback port, a Maildir and the file outbox. The endpoints are
//! read with a plain HTTP/1.1 client over `std::net::TcpStream`, as a scraper would.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{Mail, TestApp};
use serde_json::Value;

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `GET path`: the status code and the body. None while nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

fn get_json(port: u16, path: &str) -> (u16, Value) {
    let (code, body) = get(port, path).unwrap_or_else(|| panic!("no answer on {path}"));
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (code, json)
}

/// The value of one sample line of a scrape (`name{labels} value`), 0 when absent.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}

fn scrape(port: u16) -> String {
    let (code, body) = get(port, "/metrics").expect("metrics answer");
    assert_eq!(code, 200, "{body}");
    body
}

/// Poll until `ok` holds, for at most `secs`.
fn wait_for<T>(secs: u64, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The daemon, killed when the test ends however it ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Daemon {
    /// SIGTERM, and the exit must be clean.
    fn stop(mut self) {
        let pid = self.0.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let started = Instant::now();
        let status = loop {
            if let Some(s) = self.0.try_wait().expect("wait") {
                break s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "daemon did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "exit {status:?}");
    }
}

fn start(app: &TestApp, system_clock: bool) -> Daemon {
    let mut c = app.command(&["run"]);
    if system_clock {
        // Ages (mailbox failing since, a mail waiting) then grow in real time.
        c.env_remove("KLACHTD_NOW");
    }
    Daemon(
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start daemon"),
    )
}

const THRESHOLDS: &str = "\n[http]\nmailbox_stale_seconds = 1\noutbox_stale_seconds = 2\n\n[outbox]\nretry_initial_seconds = 1\nretry_max_seconds = 1\n";

#[test]
fn metrics_move_and_healthz_says_why_it_is_unhealthy() {
    let app = TestApp::spawn_with_config(|c| c.push_str(THRESHOLDS));
    let port = free_port();
    // `listen` from the environment, as the other KLACHTD__SECTION__KEY overrides.
    app.set_env("KLACHTD__HTTP__LISTEN", &format!("127.0.0.1:{port}"));
    let daemon = start(&app, true);

    // Ready once the first mailbox pass is done; every counter is there at 0 already.
    wait_for(30, "/readyz 200", || {
        get(port, "/readyz").filter(|(c, _)| *c == 200)
    });
    let before = scrape(port);
    let registered = "klachtd_mails_ingested_total{result=\"registered\"}";
    let quarantined = "klachtd_mails_ingested_total{result=\"quarantined\"}";
    let acks = "klachtd_mails_sent_total{template=\"acknowledgement\"}";
    for series in [registered, quarantined, acks] {
        assert!(
            before.lines().any(|l| l == format!("{series} 0")),
            "{series} not at 0 before any mail:\n{before}"
        );
    }
    assert_eq!(sample(&before, "klachtd_leader"), 1.0, "{before}");
    let (code, health) = get_json(port, "/healthz");
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["reasons"], serde_json::json!([]));
    assert!(health["mailbox_reached_at"].is_string(), "{health}");

    // One complaint and one unreadable mail.
    app.deliver_eml(
        &Mail::new("jan@example.nl", "Lesrooster klopt niet")
            .body("Het rooster van mijn zoon klopt al weken niet.")
            .build(),
        Utc::now(),
    );
    app.deliver_eml(
        b"\x00\x01\x02\xff\xfe garbage from a broken scanner\r\n",
        Utc::now(),
    );
    let after = wait_for(
        30,
        "the two mails counted and the acknowledgement sent",
        || {
            let s = scrape(port);
            (sample(&s, registered) == 1.0
                && sample(&s, quarantined) == 1.0
                && sample(&s, acks) == 1.0)
                .then_some(s)
        },
    );
    // Shown with --nocapture (the README's sample scrape comes from here).
    println!("---- /metrics after one complaint and one unreadable mail\n{after}");
    assert_eq!(
        app.sent_to("jan@example.nl").len(),
        1,
        "the acknowledgement"
    );
    assert!(
        sample(&after, "klachtd_ingest_batch_duration_seconds_count") >= 1.0,
        "{after}"
    );
    assert!(
        sample(&after, "klachtd_send_duration_seconds_count") >= 1.0,
        "{after}"
    );
    assert!(
        after
            .lines()
            .any(|l| l.starts_with("klachtd_send_duration_seconds_bucket{le=\"+Inf\"}")),
        "a real histogram, not a summary:\n{after}"
    );
    assert!(after.contains("# TYPE klachtd_mails_ingested_total counter"));
    // Acknowledged at intake: its term met.
    assert_eq!(
        sample(&after, "klachtd_deadlines_total{result=\"met\"}"),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "klachtd_send_failures_total{kind=\"transient\"}"),
        0.0
    );
    let (code, health) = get_json(port, "/healthz");
    assert_eq!(code, 200, "{health}");

    // The outbox cannot be written: the next acknowledgement waits, and past
    // outbox_stale_seconds /healthz turns 503 and says so.
    let tmp = app.outbox_dir.join(".tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::write(&tmp, b"not a directory").expect("break the outbox");
    app.deliver_eml(
        &Mail::new("piet@example.nl", "Geen antwoord op mijn mail")
            .body("Ik wacht al drie weken op een antwoord.")
            .build(),
        Utc::now(),
    );
    let (_, health) = wait_for(30, "/healthz 503 for the waiting mail", || {
        Some(get_json(port, "/healthz")).filter(|(c, _)| *c == 503)
    });
    println!("---- /healthz with the outbox broken\n{health:#}");
    assert_eq!(health["status"], "unhealthy");
    let reasons = health["reasons"].to_string();
    assert!(
        reasons.contains("the oldest queued mail has waited"),
        "{health}"
    );
    assert!(
        health["oldest_queued_seconds"].as_i64().unwrap() >= 2,
        "{health}"
    );
    assert!(health["outbox_depth"].as_u64().unwrap() >= 1, "{health}");
    let broken = scrape(port);
    assert!(
        sample(&broken, "klachtd_send_failures_total{kind=\"transient\"}") >= 1.0,
        "{broken}"
    );
    assert!(sample(&broken, "klachtd_outbox_depth") >= 1.0, "{broken}");
    assert!(
        sample(&broken, "klachtd_outbox_oldest_seconds") >= 2.0,
        "{broken}"
    );

    // Mended: the retry delivers it and /healthz is 200 again.
    std::fs::remove_file(&tmp).expect("mend the outbox");
    wait_for(30, "/healthz 200 after the outbox drained", || {
        Some(get_json(port, "/healthz")).filter(|(c, _)| *c == 200)
    });
    assert_eq!(app.sent_to("piet@example.nl").len(), 1);
    let mended = scrape(port);
    assert_eq!(sample(&mended, registered), 2.0, "{mended}");
    assert_eq!(sample(&mended, acks), 2.0, "{mended}");
    assert_eq!(sample(&mended, "klachtd_outbox_oldest_seconds"), 0.0);

    // The mailbox goes away: past mailbox_stale_seconds, 503 with the time it was lost.
    let gone = app.root.join("maildir.gone");
    std::fs::rename(&app.maildir, &gone).expect("take the Maildir away");
    let (_, health) = wait_for(30, "/healthz 503 for the mailbox", || {
        Some(get_json(port, "/healthz")).filter(|(c, b)| {
            *c == 503
                && b["reasons"]
                    .to_string()
                    .contains("mailbox unreachable since")
        })
    });
    println!("---- /healthz with the Maildir gone\n{health:#}");
    assert!(health["mailbox_unreachable_since"].is_string(), "{health}");
    assert!(health["mailbox_reached_at"].is_string(), "{health}");
    std::fs::rename(&gone, &app.maildir).expect("Maildir back");
    wait_for(60, "/healthz 200 with the Maildir back", || {
        Some(get_json(port, "/healthz")).filter(|(c, _)| *c == 200)
    });
    daemon.stop();
}

/// With the settable clock: a mail queued at 12:00 that could not be written is an hour old
/// at 13:00, exactly, past the default limit (900 s).
#[test]
fn a_queued_mail_older_than_the_limit_is_unhealthy_by_the_settable_clock() {
    let app = TestApp::spawn();
    app.run_once();
    let tmp = app.outbox_dir.join(".tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::write(&tmp, b"not a directory").expect("break the outbox");
    app.deliver(&Mail::new("jan@example.nl", "Lesrooster").build());
    app.run_once(); // at 12:00: registered, its acknowledgement queued and failing
    app.set_now("2026-11-23T13:00:00+01:00");
    let port = free_port();
    app.set_env("KLACHTD__HTTP__LISTEN", &format!("127.0.0.1:{port}"));
    let daemon = start(&app, false);
    let (code, health) = wait_for(30, "/healthz", || {
        get(port, "/healthz").map(|(c, b)| (c, serde_json::from_str::<Value>(&b).unwrap()))
    });
    assert_eq!(code, 503, "{health}");
    assert_eq!(health["oldest_queued_seconds"], 3600, "{health}");
    assert_eq!(
        health["reasons"],
        serde_json::json!([
            "the oldest queued mail has waited 3600 s (outbox not drained; limit 900 s)"
        ])
    );
    // The clock stands still: the mailbox, reached, is no reason.
    assert_eq!(health["mailbox_unreachable_since"], Value::Null);
    daemon.stop();
}

#[test]
fn a_taken_port_is_a_clear_startup_error() {
    let app = TestApp::spawn();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    app.set_env("KLACHTD__HTTP__LISTEN", &format!("127.0.0.1:{port}"));
    let out = app
        .command(&["run"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "started on a taken port");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("http.listen 127.0.0.1:{port}: address in use")),
        "{stderr}"
    );
    drop(taken);
}

#[test]
fn a_bad_listen_value_is_named_with_file_and_key() {
    let app = TestApp::spawn_with_config(|c| c.push_str("\n[http]\nlisten = \"localhost\"\n"));
    let out = app.cmd(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = app.config_path.display().to_string();
    assert!(
        stderr.contains(&file) && stderr.contains("http.listen: expected an address and port"),
        "{stderr}"
    );
}

/// The scheduler's escalations are counted: a complaint left alone for a month gets the ones
/// `klachtd due` announces, and the counter shows that many.
#[test]
fn escalations_the_scheduler_sends_are_counted() {
    let app = TestApp::spawn();
    app.deliver(&Mail::new("jan@example.nl", "Lesrooster").build());
    app.run_once(); // 23 November: registered and acknowledged
    let later = "2026-12-23T10:00:00+01:00"; // a Wednesday, working hours
    let due = app.json(&["due", "--at", later, "--format", "json"]);
    let expected = due
        .as_array()
        .expect("a list")
        .iter()
        .filter(|a| a["template"] == "escalation")
        .count();
    assert!(expected >= 1, "nothing to escalate: {due:#}");
    app.set_now(later);
    let port = free_port();
    app.set_env("KLACHTD__HTTP__LISTEN", &format!("127.0.0.1:{port}"));
    let daemon = start(&app, false);
    let text = wait_for(30, "the escalations counted", || {
        get(port, "/metrics")
            .map(|(_, b)| b)
            .filter(|b| sample(b, "klachtd_escalations_total") >= expected as f64)
    });
    assert_eq!(
        sample(&text, "klachtd_escalations_total"),
        expected as f64,
        "{text}"
    );
    let sent = wait_for(30, "the escalations sent and the outbox empty", || {
        let s = scrape(port);
        (sample(&s, "klachtd_mails_sent_total{template=\"escalation\"}") >= 1.0
            && sample(&s, "klachtd_outbox_depth") == 0.0)
            .then_some(s)
    });
    // One counted per mail written (a role with two addresses gets two).
    let files = app
        .sent()
        .iter()
        .filter(|m| m.subject.contains("Termijn verstreken"))
        .count();
    assert_eq!(
        sample(&sent, "klachtd_mails_sent_total{template=\"escalation\"}"),
        files as f64,
        "{sent}"
    );
    daemon.stop();
}

/// An IMAP server that is not there: never ready, and past `mailbox_stale_seconds` unhealthy
/// with the time it was first tried and the error.
#[test]
fn an_imap_port_with_nothing_listening_is_not_ready_and_unhealthy() {
    let app = TestApp::spawn_with_config(|c| c.push_str(THRESHOLDS));
    let imap = free_port();
    for (key, value) in [
        ("KLACHTD__MAILBOX__KIND", "imap".to_string()),
        ("KLACHTD__MAILBOX__HOST", "127.0.0.1".to_string()),
        ("KLACHTD__MAILBOX__PORT", imap.to_string()),
        ("KLACHTD__MAILBOX__TLS", "none".to_string()),
        ("KLACHTD__MAILBOX__USERNAME", "service".to_string()),
        ("KLACHTD__MAILBOX__PASSWORD", "secret".to_string()),
    ] {
        app.set_env(key, &value);
    }
    let port = free_port();
    app.set_env("KLACHTD__HTTP__LISTEN", &format!("127.0.0.1:{port}"));
    let daemon = start(&app, true);
    let (_, health) = wait_for(30, "/healthz 503 for the IMAP server", || {
        get(port, "/healthz")
            .filter(|(c, _)| *c == 503)
            .map(|(c, b)| (c, serde_json::from_str::<Value>(&b).expect("JSON")))
    });
    println!("---- /healthz with no IMAP server\n{health:#}");
    let reasons = health["reasons"].to_string();
    assert!(reasons.contains("mailbox unreachable since"), "{health}");
    assert_eq!(health["mailbox_reached_at"], Value::Null, "{health}");
    let (code, ready) = get_json(port, "/readyz");
    assert_eq!(code, 503, "{ready}");
    assert_eq!(ready["status"], "starting");
    daemon.stop();
}

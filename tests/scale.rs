//! Crash and stop on the embedded default (issue 8, findings 13 and 14), through the binary:
//! after `kill -9` the mails the dead process had claimed go out at the next start, not after
//! their 5-minute lease; a live process's claim still holds; SIGTERM stops a daemon in the
//! middle of a large outbox within 5 s and the rest goes out on the next run, none twice.
//! Also the register's order and pagination (`list --limit/--offset`), and the scheduler's
//! stored next times against a full re-plan.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use common::{Mail, TestApp};
use serde_json::Value;

fn complainant_mail(i: usize) -> Vec<u8> {
    Mail::new(
        &format!("ouder{i:04}@school{}.example.nl", i % 7),
        &format!("Klacht {i}: rooster gewijzigd"),
    )
    .build()
}

/// Make the file transport's writes fail (its temporary directory becomes a plain file), so
/// a run queues its mail without sending it.
fn break_outbox(app: &TestApp) {
    let tmp = app.outbox_dir.join(".tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&app.outbox_dir).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();
}

fn mend_outbox(app: &TestApp) {
    let tmp = app.outbox_dir.join(".tmp");
    let _ = std::fs::remove_file(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
}

/// `n` complaints registered, all their mail queued and not sent; the clock then moves past
/// the first retry, so everything is due.
fn queued_outbox(n: usize) -> (TestApp, usize) {
    let app = TestApp::spawn();
    // The daemons here run on the wall clock: in working hours the daily digest (sent while
    // any complaint is open) would be one more mail than the count.
    app.set_env("KLACHTD__SCHEDULE__DIGEST", "");
    app.run_once();
    break_outbox(&app);
    let base = app.now() - Duration::hours(1);
    for i in 0..n {
        app.deliver_eml(&complainant_mail(i), base + Duration::seconds(i as i64));
    }
    app.run_once();
    mend_outbox(&app);
    app.set_now(&(app.now() + Duration::minutes(2)).to_rfc3339());
    let rows = app.outbox();
    assert!(rows.iter().all(|o| o["status"] == "queued"), "all queued");
    (app, rows.len())
}

fn count_eml(app: &TestApp) -> usize {
    common::file_names(&app.outbox_dir)
        .iter()
        .filter(|n| n.ends_with(".eml"))
        .count()
}

fn by_status(app: &TestApp, status: &str) -> Vec<Value> {
    app.outbox()
        .into_iter()
        .filter(|o| o["status"] == status)
        .collect()
}

fn daemon(app: &TestApp) -> Child {
    app.command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn daemon")
}

fn wait_until(what: &str, limit: StdDuration, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(StdDuration::from_millis(5));
    }
}

/// Every outbox row sent, and the outbox directory holds exactly one file per row.
fn assert_all_sent_once(app: &TestApp, total: usize) {
    let rows = app.outbox();
    let not_sent: Vec<&Value> = rows.iter().filter(|o| o["status"] != "sent").collect();
    assert!(
        not_sent.is_empty(),
        "{} of {total} not sent, e.g. {}",
        not_sent.len(),
        not_sent[0]
    );
    let sent = app.sent();
    let ids: BTreeSet<&str> = sent.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(sent.len(), total, "one file per queued mail");
    assert_eq!(ids.len(), total, "distinct Message-IDs");
}

#[test]
fn after_kill_9_the_dead_senders_claims_go_out_at_the_next_start() {
    let (app, total) = queued_outbox(400);
    let mut child = daemon(&app);
    wait_until("the daemon to send", StdDuration::from_secs(120), || {
        count_eml(&app) >= 60
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let claimed = by_status(&app, "sending");
    assert!(
        !claimed.is_empty() && count_eml(&app) < total,
        "killed while mails were claimed (sent {}, claimed {})",
        count_eml(&app),
        claimed.len()
    );
    // Same clock: the lease (5 minutes) has not run out; its holder is gone.
    let summary = app.run_once();
    eprintln!(
        "claimed by the killed daemon: {}; rerun: {summary}",
        claimed.len()
    );
    assert_all_sent_once(&app, total);
}

// ---- a slow SMTP sink --------------------------------------------------------------------------

/// A local SMTP server that takes `delay` to accept each mail (or, with `silent`, never says
/// anything), recording the Message-IDs it accepted.
struct Sink {
    port: u16,
    accepted: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Sink {
    fn start(delay: StdDuration, silent: bool) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (acc, st) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if silent {
                    held.push(conn);
                    continue;
                }
                let acc = acc.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, delay, &acc);
                });
            }
        });
        Sink {
            port,
            accepted,
            stop,
        }
    }

    fn accepted(&self) -> Vec<String> {
        self.accepted.lock().unwrap().clone()
    }

    /// `klachtd run` sending to this sink.
    fn daemon(&self, app: &TestApp) -> Child {
        app.command(&["run"])
            .env("KLACHTD__OUTGOING__KIND", "smtp")
            .env("KLACHTD__OUTGOING__HOST", "127.0.0.1")
            .env("KLACHTD__OUTGOING__PORT", self.port.to_string())
            .env("KLACHTD__OUTGOING__TLS", "none")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn daemon")
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    conn: TcpStream,
    delay: StdDuration,
    accepted: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    let mut lines = BufReader::new(conn);
    out.write_all(b"220 sink ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => out.write_all(b"250-sink\r\n250 8BITMIME\r\n")?,
            "DATA" => {
                out.write_all(b"354 go on\r\n")?;
                let mut id = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    if id.is_empty() && line.to_ascii_lowercase().starts_with("message-id:") {
                        id = line[11..].trim().trim_matches(['<', '>']).to_string();
                    }
                }
                std::thread::sleep(delay);
                out.write_all(b"250 queued\r\n")?;
                accepted.lock().unwrap().push(id);
            }
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"250 ok\r\n")?,
        }
    }
}

fn ids(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .map(|o| {
            o["message_id"]
                .as_str()
                .unwrap_or_default()
                .trim_matches(['<', '>'])
                .to_string()
        })
        .collect()
}

#[test]
fn sigterm_in_a_large_outbox_stops_within_5_s_and_the_rest_goes_out_next_time() {
    let (app, total) = queued_outbox(600);
    let all = ids(&app.outbox());
    assert_eq!(all.len(), total);
    // 2 connections, 25 ms a mail: the whole outbox takes about 8 s.
    let sink = Sink::start(StdDuration::from_millis(25), false);
    let child = sink.daemon(&app);
    wait_until("the daemon to send", StdDuration::from_secs(120), || {
        sink.accepted().len() >= 40
    });
    let pid = child.id().to_string();
    let asked = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let took = asked.elapsed();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let by_sink: Vec<String> = sink.accepted();
    assert!(
        took < StdDuration::from_secs(5),
        "SIGTERM took {took:?} ({} of {total} sent by then)",
        by_sink.len()
    );
    assert!(by_sink.len() < total, "stopped in the middle of the outbox");
    let sent_rows = ids(&by_status(&app, "sent"));
    let accepted: BTreeSet<String> = by_sink.iter().cloned().collect();
    assert_eq!(accepted.len(), by_sink.len(), "no mail accepted twice");
    assert_eq!(
        sent_rows, accepted,
        "what the sink took is what is marked sent"
    );
    assert!(
        by_status(&app, "sending").is_empty(),
        "claimed mails not sent were given back"
    );

    // The next run (the outbox directory this time) sends the rest at once, none again.
    drop(sink);
    app.run_once();
    let files: BTreeSet<String> = app.sent().into_iter().map(|m| m.message_id).collect();
    assert!(files.is_disjoint(&accepted), "a mail went out twice");
    let mut everything = files.clone();
    everything.extend(accepted);
    assert_eq!(everything, all, "every queued mail went out");
    assert!(by_status(&app, "sent").len() == total);
}

#[test]
fn a_live_processes_claim_holds_for_another_process() {
    let (app, total) = queued_outbox(60);
    // Daemon A claims mail and then hangs on an SMTP server that never answers.
    let sink = Sink::start(StdDuration::ZERO, true);
    let mut a = sink.daemon(&app);
    wait_until("daemon A to claim", StdDuration::from_secs(60), || {
        !by_status(&app, "sending").is_empty()
    });
    std::thread::sleep(StdDuration::from_millis(300));
    let claimed = ids(&by_status(&app, "sending"));
    // Process B on the same database, same clock: A's claims are not B's to send.
    app.run_once();
    let sent: BTreeSet<String> = app.sent().into_iter().map(|m| m.message_id).collect();
    let _ = a.kill();
    let _ = a.wait();
    assert!(sent.is_disjoint(&claimed), "B sent mail A holds");
    assert_eq!(sent.len() + claimed.len(), total);
    // Once A is gone its claims are free.
    app.run_once();
    assert_all_sent_once(&app, total);
}

// ---- the register's pages ------------------------------------------------------------------

#[test]
fn list_limit_and_offset_page_through_the_register_in_order() {
    let app = TestApp::spawn();
    let base = app.now() - Duration::hours(1);
    for i in 0..7 {
        app.deliver_eml(&complainant_mail(i), base + Duration::seconds(i as i64));
    }
    app.run_once();
    let all = app.references();
    assert_eq!(all.len(), 7);
    let page = |limit: &str, offset: &str| -> Vec<String> {
        let v = app.json(&[
            "list", "--format", "json", "--limit", limit, "--offset", offset,
        ]);
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["reference"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(page("3", "0"), all[..3]);
    assert_eq!(page("3", "3"), all[3..6]);
    assert_eq!(page("3", "6"), all[6..]);
    assert!(page("3", "9").is_empty());
    assert_eq!(page("100", "2"), all[2..]);
    let table = app.cmd_ok(&["list", "--limit", "2", "--offset", "1"]);
    assert!(table.contains(&all[1]) && table.contains(&all[2]) && !table.contains(&all[3]));
    assert!(table.trim_end().ends_with("2 complaint(s)"), "{table}");
    // The unpaginated JSON is byte for byte the pretty array it always was.
    let raw = app.cmd_ok(&["list", "--format", "json"]);
    let parsed: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 7);
    assert!(
        raw.starts_with("[\n  {\n    \"reference\": \"KL-2026-0001\",\n"),
        "{raw}"
    );
    assert!(raw.ends_with("\n    \"messages\": 3\n  }\n]\n"), "{raw}");
    assert_eq!(raw.matches("\n  },\n  {\n").count(), 6, "{raw}");
    let none = app.cmd_ok(&["list", "--format", "json", "--status", "closed"]);
    assert_eq!(none, "[]\n");
}

// ---- the scheduler's stored next times ---------------------------------------------------

/// `due` normally reads each complaint's stored next time; with another calendar
/// configuration it cannot trust them and plans every open complaint, as before they were
/// stored. An extra closing day long past changes no plan: both must agree, at every moment.
#[test]
fn stored_next_times_agree_with_planning_every_complaint() {
    let app = TestApp::spawn();
    let base = app.now() - Duration::days(3);
    for i in 0..6 {
        app.deliver_eml(&complainant_mail(i), base + Duration::hours(13 * i as i64));
    }
    app.run_once();
    let refs = app.references();
    app.cmd_ok(&["set", &refs[1], "handler", "docent@example.org"]);
    app.cmd_ok(&["set", &refs[2], "status", "closed"]);
    let times = [
        "2026-11-24T09:00:00+01:00",
        "2026-11-26T12:00:00+01:00",
        "2026-12-01T08:00:00+01:00",
        "2026-12-09T10:00:00+01:00",
        "2027-01-20T10:00:00+01:00",
    ];
    let mut seen = 0;
    for (k, t) in times.iter().enumerate() {
        let stored = app.cmd_ok(&["due", "--at", t, "--format", "json"]);
        seen += serde_json::from_str::<Value>(&stored)
            .unwrap()
            .as_array()
            .unwrap()
            .len();
        app.set_env("KLACHTD__CALENDAR__CLOSING_DAYS", "[2001-01-02]");
        let replanned = app.cmd_ok(&["due", "--at", t, "--format", "json"]);
        app.set_env("KLACHTD__CALENDAR__CLOSING_DAYS", "[]");
        assert_eq!(stored, replanned, "due --at {t}");
        // Move on: run what is due, so later moments see progress.
        if k % 2 == 1 {
            app.cmd_ok(&["tick", "--at", t]);
        }
    }
    assert!(seen > 10, "only {seen} due actions compared");
}

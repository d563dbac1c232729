//! Maildir at scale and across a crash, through the binary (issue #8, findings 20 and 22):
//!
//! - a poll costs O(new mail), not O(all mail): with 20,000 processed mails in `cur/` an empty
//!   `run --once` and the registration of a few new ones take seconds (the code that looked
//!   every known mail up by listing `cur/` again took minutes here);
//! - a mail a mail client moved from `new/` to `cur/` before we processed it (Dovecot does so
//!   when an IMAP client selects the folder) is still registered, by `run --once` and by the
//!   daemon, which notices the change of `cur/` without rescanning it on every poll;
//! - a crash right after the commit, before the move to `cur/`, ends with every mail moved and
//!   registered once (`KLACHTD_TEST_CRASH_AFTER_COMMIT=1` aborts the process at that point).

mod common;

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use common::{Mail, TestApp};

/// `run --once`, which must exit 0 within `bound` (it is killed otherwise: the quadratic code
/// took minutes on these mailboxes). Returns its summary line and how long it took.
fn run_once_within(app: &TestApp, bound: StdDuration) -> (String, StdDuration) {
    let started = Instant::now();
    let mut child = app
        .command(&["run", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn klachtd");
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!("run --once took more than {bound:?}: a poll must cost O(new mail)");
        }
        std::thread::sleep(StdDuration::from_millis(20));
    };
    let (stdout, stderr) = outputs(&mut child);
    assert!(
        status.success(),
        "run --once failed ({status}):\n{stdout}\n{stderr}"
    );
    (stdout.trim().to_string(), started.elapsed())
}

fn outputs(child: &mut Child) -> (String, String) {
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (out, err)
}

/// An out-of-office reply: kept unfiled, never answered, so that thousands are cheap to
/// register and leave no outbox behind.
fn auto_reply(i: usize) -> Vec<u8> {
    Mail::new(
        &format!("afwezig{i:05}@school.example.nl"),
        &format!("Afwezig: uw bericht {i}"),
    )
    .header("Auto-Submitted", "auto-replied")
    .build()
}

fn complaint(from: &str, subject: &str) -> Vec<u8> {
    Mail::new(from, subject).build()
}

/// `n` mails registered and moved to `cur/` (a Maildir of a few years).
fn with_processed_mails(app: &TestApp, n: usize) {
    let base = app.now() - Duration::days(400);
    for i in 0..n {
        app.deliver_eml(&auto_reply(i), base + Duration::minutes(i as i64));
    }
    let started = Instant::now();
    let summary = app.run_once();
    eprintln!(
        "{n} mails registered in {:?}: {}",
        started.elapsed(),
        summary.trim()
    );
    assert!(app.maildir_files("new").is_empty());
    assert_eq!(app.maildir_files("cur").len(), n);
    assert_eq!(app.unfiled().len(), n);
}

#[test]
fn empty_poll_and_new_mail_over_20000_processed_mails_in_cur_take_seconds() {
    const N: usize = 20_000;
    let app = TestApp::spawn();
    with_processed_mails(&app, N);

    // Nothing new: seconds, not the minutes of one listing of cur/ per known mail.
    let (summary, took) = run_once_within(&app, StdDuration::from_secs(60));
    eprintln!("empty run --once over {N} in cur/: {took:?}: {summary}");
    assert!(summary.starts_with("processed 0 mail(s)"), "{summary}");

    // One new in new/, one a mail client already moved to cur/ and flagged read.
    app.deliver(&complaint("jan@ouders.example.nl", "Lesrooster klopt niet"));
    app.deliver_cur(
        &complaint("piet@ouders.example.nl", "Al gelezen door een collega"),
        app.now() - Duration::hours(1),
        "S",
    );
    let (summary, took) = run_once_within(&app, StdDuration::from_secs(60));
    eprintln!("run --once with 2 new over {N} in cur/: {took:?}: {summary}");
    assert!(
        summary.starts_with("processed 2 mail(s): 2 registered"),
        "{summary}"
    );
    assert_eq!(app.list().len(), 2);
    assert_eq!(app.sent_to("jan@ouders.example.nl").len(), 1);
    assert_eq!(app.sent_to("piet@ouders.example.nl").len(), 1);
    assert!(app.maildir_files("new").is_empty());
    assert_eq!(app.maildir_files("cur").len(), N + 2);

    let (summary, _) = run_once_within(&app, StdDuration::from_secs(60));
    assert!(summary.starts_with("processed 0 mail(s)"), "{summary}");
    assert_eq!(app.list().len(), 2, "nothing registered twice");
}

/// `klachtd run` until `done()` holds (bounded), then SIGTERM.
fn daemon(app: &TestApp) -> Child {
    app.command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn klachtd run")
}

fn stop(mut child: Child) -> String {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + StdDuration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(StdDuration::from_millis(50));
    }
    let _ = child.wait();
    outputs(&mut child).1
}

fn wait_until(child: &mut Child, bound: StdDuration, what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + bound;
    while !f() {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("klachtd run exited ({status}) before {what}");
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {bound:?}: {what}"
        );
        std::thread::sleep(StdDuration::from_millis(100));
    }
}

#[test]
fn daemon_registers_mail_a_client_moved_to_cur_and_nothing_twice() {
    let app = TestApp::spawn();
    with_processed_mails(&app, 2_000);
    let mut child = daemon(&app);
    app.deliver(&complaint("jan@ouders.example.nl", "Eerste klacht"));
    wait_until(
        &mut child,
        StdDuration::from_secs(30),
        "the first complaint",
        || app.list().len() == 1,
    );
    // Quiet for a while: the daemon has settled on its view of cur/.
    std::thread::sleep(StdDuration::from_secs(4));

    // A person reads an old mail (its flags change: a rename inside cur/), and a mail client
    // takes a new mail from new/ to cur/ before klachtd saw it.
    let cur = app.maildir.join("cur");
    let old = app.maildir_files("cur")[0].clone();
    let (unique, _) = old.split_once(":2,").expect("a cur/ name");
    std::fs::rename(cur.join(&old), cur.join(format!("{unique}:2,RS"))).expect("rename");
    app.deliver_cur(
        &complaint("piet@ouders.example.nl", "Gelezen voordat klachtd hem zag"),
        app.now() - Duration::minutes(5),
        "S",
    );
    wait_until(
        &mut child,
        StdDuration::from_secs(30),
        "the mail moved to cur/ by a client",
        || app.list().len() == 2,
    );
    // And a later one in new/ as usual.
    app.deliver(&complaint("kees@ouders.example.nl", "Derde klacht"));
    wait_until(
        &mut child,
        StdDuration::from_secs(30),
        "the third complaint",
        || app.list().len() == 3,
    );
    std::thread::sleep(StdDuration::from_secs(3));
    let log = stop(child);
    assert_eq!(app.list().len(), 3, "nothing registered twice:\n{log}");
    assert_eq!(app.unfiled().len(), 2_000, "{log}");
    assert!(app.maildir_files("new").is_empty());
    assert_eq!(app.maildir_files("cur").len(), 2_003);
}

#[test]
fn crash_after_commit_before_the_move_then_rerun_moves_every_mail_and_registers_once() {
    let app = TestApp::spawn();
    let people = [
        "jan@ouders.example.nl",
        "piet@ouders.example.nl",
        "kees@ouders.example.nl",
    ];
    for p in people {
        app.deliver(&complaint(p, &format!("Klacht van {p}")));
    }
    let out = app
        .command(&["run", "--once"])
        .env("KLACHTD_TEST_CRASH_AFTER_COMMIT", "1")
        .output()
        .expect("run klachtd");
    assert!(
        !out.status.success(),
        "the test hook aborts right after the commit: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Committed, not moved.
    assert_eq!(app.list().len(), 3);
    assert_eq!(app.maildir_files("new").len(), 3);

    let summary = app.run_once();
    assert!(summary.starts_with("processed 0 mail(s)"), "{summary}");
    assert!(app.maildir_files("new").is_empty());
    let cur = app.maildir_files("cur");
    assert_eq!(cur.len(), 3);
    assert!(cur.iter().all(|n| n.ends_with(":2,S")), "{cur:?}");
    assert_eq!(app.list().len(), 3, "registered once");
    for p in people {
        assert_eq!(app.sent_to(p).len(), 1, "{p} acknowledged once");
    }
}

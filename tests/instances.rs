//! Several `klachtd run` instances on one PostgreSQL database (issue #12), through the real
//! binary: the leader is killed with SIGKILL at random moments during a backlog and restarted
//! (as systemd would), and the register, the outbox and the outbox directory must look exactly
//! as after one undisturbed instance; and a leader frozen with SIGSTOP past its lease, then
//! resumed, registers nothing and stops.
//!
//! Runs on PostgreSQL only (`KLACHTD_TEST_PG`, see scripts/pgcluster.sh); without it the tests
//! say they were skipped, and fail when `KLACHTD_REQUIRE_PG=1` (scripts/test.sh sets it).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::instances::{Outcome, assert_gapless, outcome_of};
use common::*;
use serde_json::Value;

/// Short, so a test waits seconds rather than tens of seconds for each takeover.
const FAILOVER_SECONDS: u64 = 4;

fn installation() -> TestApp {
    let app = TestApp::spawn_with_config(|c| {
        c.push_str(&format!(
            "\n[runtime]\nfailover_seconds = {FAILOVER_SECONDS}\n"
        ));
        // Info in JSON, for the `ingested` lines the SIGSTOP test reads.
        *c = c
            .replace("level = \"warn\"", "level = \"info\"")
            .replace("format = \"text\"", "format = \"json\"");
    });
    assert!(app.on_postgres());
    app
}

/// `n` complaints from `n` different people, received three weeks before the clock, so the
/// procedure's reminders and escalations are due at once: the scheduler works during the
/// backlog too.
fn deliver_backlog(app: &TestApp, n: usize) {
    let start: DateTime<Utc> = ts(DEFAULT_NOW) - chrono::Duration::days(21);
    for i in 0..n {
        let mail = Mail::new(
            &format!("ouder{i}@gezin.example.nl"),
            &format!("Klacht {i}"),
        )
        .message_id(&format!("backlog.{i}@gezin.example.nl"))
        .body(&format!("Mijn klacht nummer {i} over de lessen."))
        .build();
        app.deliver_eml(&mail, start + chrono::Duration::seconds(i as i64));
    }
}

struct Instance {
    child: Child,
    log: PathBuf,
}

/// A test that fails must not leave its daemons running (they would hold the machine and
/// their database): killed when dropped; one already stopped is only reaped.
impl Drop for Instance {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn start(app: &TestApp, name: &str) -> Instance {
    let log = app.root.join(format!("{name}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("instance log");
    let child = app
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("start klachtd run");
    Instance { child, log }
}

/// The instances' logs (all but the info lines), for a failure's message.
fn dump_logs(app: &TestApp) {
    for name in file_names(&app.root) {
        if !name.ends_with(".log") {
            continue;
        }
        let text = std::fs::read_to_string(app.root.join(&name)).unwrap_or_default();
        eprintln!("---- {name}");
        for line in text
            .lines()
            .filter(|l| !l.contains("\"level\":\"INFO\""))
            .take(40)
        {
            eprintln!("{line}");
        }
    }
}

fn status(app: &TestApp) -> Value {
    app.json(&["status", "--format", "json"])
}

/// The pid of the instance whose lease is current, waiting for one (other than `not`) to lead.
fn leader_pid(app: &TestApp, not: Option<u32>, within: Duration) -> u32 {
    let until = Instant::now() + within;
    loop {
        let s = status(app);
        let id = s["leader"]["instance"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if s["leader"]["expired"] == Value::Bool(false)
            && let Some(pid) = id.split('/').nth(1).and_then(|p| p.parse().ok())
            && Some(pid) != not
        {
            return pid;
        }
        if Instant::now() >= until {
            dump_logs(app);
            panic!("no leader within {within:?}: {s}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn signal(pid: u32, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success(), "kill {sig} {pid}");
}

/// Waits until nothing is left to do: every mail taken from new/, and the outbox empty.
fn wait_drained(app: &TestApp, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let left = app.maildir_files("new").len();
        let s = status(app);
        if left == 0 && s["outbox"]["depth"] == 0 {
            // Once more after a pause: the scheduler may queue more after the last send.
            std::thread::sleep(Duration::from_secs(2));
            if status(app)["outbox"]["depth"] == 0 {
                return;
            }
        }
        if Instant::now() >= until {
            dump_logs(app);
            panic!("not drained within {within:?}: {left} mails in new/, status {s}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn outcome(app: &TestApp) -> (Outcome, Vec<String>, Vec<Value>) {
    let outbox = app.outbox();
    let (outcome, references) = outcome_of(&app.list(), &outbox);
    (outcome, references, outbox)
}

fn message_id_files(dir: &Path) -> BTreeSet<String> {
    file_names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".eml"))
        .collect()
}

#[test]
fn three_instances_survive_their_leader_being_killed_again_and_again() {
    if common::pg::server_or_skip(
        "three_instances_survive_their_leader_being_killed_again_and_again",
    )
    .is_none()
    {
        return;
    }
    // 2,000 through IMAP and SMTP in tests/mail_stack/instances.rs; here, on a Maildir and the
    // file transport (exactly once), a backlog that still outlasts several kills.
    const MAILS: usize = 800;
    // The same backlog through one undisturbed instance: what the three must end up with.
    let reference = installation();
    deliver_backlog(&reference, MAILS);
    reference.run_once();
    reference.run_once();
    let (expected, expected_refs, _) = outcome(&reference);
    assert_gapless(&expected_refs, MAILS);
    // The scheduler's work is part of what is compared: every complaint of the backlog has
    // its escalations and the satisfaction survey due at once.
    let scheduled = expected
        .mails
        .values()
        .filter(|v| v.iter().any(|(t, _)| t == "escalation"))
        .filter(|v| v.iter().any(|(t, _)| t == "satisfaction_survey"))
        .count();
    assert_eq!(
        scheduled, MAILS,
        "scheduled mails missing from the reference run"
    );

    let app = installation();
    deliver_backlog(&app, MAILS);
    let mut instances: Vec<Instance> = (0..3).map(|i| start(&app, &format!("i{i}"))).collect();
    let mut kills = 0;
    let mut failovers = Vec::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let started = Instant::now();
    while kills < 5 && !app.maildir_files("new").is_empty() {
        let pid = leader_pid(&app, None, Duration::from_secs(30));
        // A random moment of its leadership: 0.5 to 3 s.
        std::thread::sleep(Duration::from_millis(500 + random(2500)));
        let before = app.maildir_files("new").len();
        signal(pid, "-KILL");
        kills += 1;
        let killed_at = Instant::now();
        let index = instances
            .iter()
            .position(|i| i.child.id() == pid)
            .expect("the leader is one of ours");
        let mut dead = instances.remove(index);
        let _ = dead.child.wait();
        // Restarted, as systemd would: it comes back as a standby.
        instances.push(start(&app, &format!("r{kills}")));
        leader_pid(&app, Some(pid), Duration::from_secs(30));
        if before > 0 {
            failovers.push(killed_at.elapsed());
        }
    }
    wait_drained(&app, Duration::from_secs(600));
    let took = started.elapsed();
    for mut i in instances {
        signal(i.child.id(), "-TERM");
        let st = i.child.wait().expect("wait");
        assert!(
            st.success(),
            "an instance stopped with {st:?}; log {}",
            i.log.display()
        );
    }
    eprintln!("{MAILS} mails, {kills} leaders killed, took {took:?}; failovers {failovers:?}");
    assert!(
        kills >= 2,
        "the backlog was gone before two kills: make it larger"
    );

    let (got, references, outbox) = outcome(&app);
    // Every mail registered once, with gapless references.
    assert_gapless(&references, MAILS);
    // Every mail the undisturbed instance sent, and nothing more (no acknowledgement and no
    // scheduled mail twice), for each complainant.
    let missing: Vec<_> = expected
        .mails
        .iter()
        .filter(|(k, v)| got.mails.get(*k) != Some(v))
        .take(3)
        .collect();
    assert!(
        missing.is_empty(),
        "outbox differs from one undisturbed instance's, e.g. expected {missing:?}, got {:?}",
        missing
            .iter()
            .map(|(k, _)| got.mails.get(*k))
            .collect::<Vec<_>>()
    );
    assert_eq!(got.mails.len(), expected.mails.len());
    // Each mail sent, and its file written once (one file per Message-ID, none extra).
    let unsent: Vec<_> = outbox.iter().filter(|o| o["status"] != "sent").collect();
    assert!(unsent.is_empty(), "not sent: {unsent:?}");
    let ids: BTreeSet<String> = outbox
        .iter()
        .map(|o| o["message_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), outbox.len(), "a Message-ID queued twice");
    let files = message_id_files(&app.outbox_dir);
    let about_complaints = outbox.iter().filter(|o| o["reference"].is_string()).count();
    assert!(
        files.len() >= about_complaints && files.len() == outbox.len(),
        "{} files for {} outbox mails",
        files.len(),
        outbox.len()
    );
}

#[test]
fn a_frozen_leader_that_wakes_after_losing_its_lease_registers_nothing() {
    if common::pg::server_or_skip(
        "a_frozen_leader_that_wakes_after_losing_its_lease_registers_nothing",
    )
    .is_none()
    {
        return;
    }
    const MAILS: usize = 600;
    let app = installation();
    let first = start(&app, "first");
    let leader = leader_pid(&app, None, Duration::from_secs(30));
    assert_eq!(leader, first.child.id());
    let mut standby = start(&app, "standby");
    // Standby registered: it shows in `status` before the leader is frozen.
    let until = Instant::now() + Duration::from_secs(20);
    while status(&app)["instances"].as_array().map_or(0, Vec::len) < 2 {
        assert!(Instant::now() < until, "the standby never showed");
        std::thread::sleep(Duration::from_millis(200));
    }
    deliver_backlog(&app, MAILS);
    // Frozen mid-backlog: most likely inside a registering transaction.
    let until = Instant::now() + Duration::from_secs(60);
    while app.list().len() < 20 {
        assert!(Instant::now() < until, "the leader registers nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(leader, "-STOP");
    let frozen_at = Instant::now();
    let next = leader_pid(&app, Some(leader), Duration::from_secs(30));
    assert_eq!(next, standby.child.id(), "the standby took over");
    // Past its lease by far, then woken.
    std::thread::sleep(Duration::from_secs(FAILOVER_SECONDS * 2));
    let woken_wall = Utc::now();
    signal(leader, "-CONT");
    let mut first = first;
    let until = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(st) = first.child.try_wait().expect("try_wait") {
            break st;
        }
        assert!(
            Instant::now() < until,
            "the woken leader still runs 30 s after it lost its lease"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        !exit.success(),
        "a leader that lost its lease stops with an error"
    );
    let log = std::fs::read_to_string(&first.log).expect("log");
    assert!(log.contains("lease"), "its log says why:\n{log}");
    // Nothing registered by it after it woke: its `ingested` lines (logged inside each
    // registering transaction, which begins with the lease check) all come before.
    let ingested: Vec<(DateTime<Utc>, &str)> = log
        .lines()
        .filter_map(|line| {
            let v = serde_json::from_str::<Value>(line).ok()?;
            if v["fields"]["message"] != "ingested" {
                return None;
            }
            let at = DateTime::parse_from_rfc3339(v["timestamp"].as_str()?).ok()?;
            Some((at.with_timezone(&Utc), line))
        })
        .collect();
    // It registered mail before it was frozen: so the lines are read, and none after is real.
    assert!(
        !ingested.is_empty(),
        "no `ingested` line read from its log: the check below would see nothing"
    );
    let late: Vec<&str> = ingested
        .iter()
        .filter(|(at, _)| *at > woken_wall)
        .map(|(_, line)| *line)
        .collect();
    assert!(
        late.is_empty(),
        "registered after waking without the lease: {late:?}"
    );
    wait_drained(&app, Duration::from_secs(300));
    signal(standby.child.id(), "-TERM");
    assert!(standby.child.wait().expect("wait").success());
    let (_, references, _) = outcome(&app);
    assert_gapless(&references, MAILS);
    eprintln!("frozen for {:?}", frozen_at.elapsed());
}

/// `database.blobs = "database"`: the raw mails live in PostgreSQL, so an instance on another
/// host, with an empty data directory, serves a person's export with her mails byte for byte.
#[test]
fn with_blobs_in_the_database_an_instance_without_the_files_serves_an_export() {
    if common::pg::server_or_skip(
        "with_blobs_in_the_database_an_instance_without_the_files_serves_an_export",
    )
    .is_none()
    {
        return;
    }
    let app = installation();
    app.set_env("KLACHTD__DATABASE__BLOBS", "database");
    let mail = Mail::new("ria@gezin.example.nl", "Klacht over de les")
        .message_id("blob.1@gezin.example.nl")
        .header("Content-Type", "multipart/mixed; boundary=\"b\"")
        .body(
            "--b\r\nContent-Type: text/plain\r\n\r\nZie de bijlage.\r\n\
             --b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"rooster.txt\"\r\n\r\nmaandag\r\n--b--\r\n",
        )
        .build();
    app.deliver(&mail);
    app.run_once();
    assert_eq!(app.references(), vec!["KL-2026-0001".to_string()]);
    for kind in ["raw", "attachments"] {
        assert!(
            !app.data_dir.join(kind).exists(),
            "{kind}/ was written to the data directory"
        );
    }
    // Another host: the same config and database, none of this data directory.
    std::fs::rename(&app.data_dir, app.root.join("data.elsewhere")).expect("move data dir");
    std::fs::create_dir_all(&app.data_dir).expect("empty data dir");
    let dir = app.root.join("inzage");
    app.cmd_ok(&[
        "export",
        "--email",
        "ria@gezin.example.nl",
        "--output",
        dir.to_str().expect("utf-8 path"),
    ]);
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("export.json")).expect("export.json"),
    )
    .expect("json");
    let mails: Vec<String> = doc["complaints"][0]["mails"]
        .as_array()
        .expect("mails")
        .iter()
        .filter_map(|m| m.as_str().map(str::to_string))
        .filter(|m| m.contains("-in-"))
        .collect();
    assert_eq!(mails.len(), 1, "{doc}");
    let exported = std::fs::read(dir.join(&mails[0])).expect("exported mail");
    assert_eq!(
        exported, mail,
        "the raw mail came back from the database unchanged"
    );
}

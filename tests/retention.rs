//! Retention and privacy requests (issue #11) through the real binary: `purge`, the daily job
//! under `tick`, `export --email` and `erase --email`. The personal data of a purged complaint
//! is checked to be gone from the bytes of every file under the data directory (the database,
//! its -wal and -shm, the raw mails and attachments), from the Maildir it came in through and
//! from the log, while its statistics row stays and is still counted. On PostgreSQL
//! (`KLACHTD_TEST_PG`) the database is not a file there: its live rows are read with
//! `pg_dump` instead, and the SQLite WAL check does not apply.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Mail, RECEIVER, TestApp, ts};
use serde_json::Value;

/// The complainant whose data goes, and words found only in what they wrote.
const NAME: &str = "Marieke van der Sluis";
const ADDRESS: &str = "marieke.vandersluis@voorbeeld.nl";
/// In the subject only.
const SUBJECT_WORD: &str = "Zwanenbloem";
/// In the body of the mail only.
const BODY_WORD: &str = "Kwartelkoningin";
/// In the text attachment only.
const ATTACHMENT_WORD: &str = "Boterbloemveld";
/// In her reply only.
const REPLY_WORD: &str = "Tureluurtje";
/// In the solution staff wrote (and so in the mail we sent her).
const SOLUTION_WORD: &str = "Grutto-oplossing";

/// Another complainant who sent the same attachment: the shared blob must stay.
const OTHER: &str = "kees@andere.example.nl";
const SHARED_ATTACHMENT: &str = "Gedeelde-bijlage-inhoud-7731 rooster voorjaar";

fn b64(bytes: &[u8]) -> String {
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(table[((v >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A mail with two attachments: a text one of her own and one shared with another sender
/// (both base64, so only the decoded blobs on disk hold their words in plain).
fn mail_with_attachments(
    from: &str,
    subject: &str,
    id: &str,
    body: &str,
    own: Option<&str>,
) -> Vec<u8> {
    let mut parts = format!(
        "--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
         --XX\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"rooster.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        b64(SHARED_ATTACHMENT.as_bytes())
    );
    if let Some(own) = own {
        parts.push_str(&format!(
            "--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename=\"verslag.txt\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            b64(own.as_bytes())
        ));
    }
    format!(
        "From: {from}\r\nTo: service@example.org\r\nSubject: {subject}\r\n\
         Message-ID: <{id}>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0100\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n{parts}--XX--\r\n"
    )
    .into_bytes()
}

fn academie() -> TestApp {
    TestApp::spawn_with_config(|c| {
        *c = c.replace("preset = \"mzo\"", "preset = \"academie\"");
    })
}

/// Run a command with its log appended to `log`, as when the service's stderr goes to a file
/// (systemd `StandardError=append:`); must exit 0. Returns stdout.
fn logged(app: &TestApp, log: &Path, args: &[&str]) -> String {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let out = app
        .command(args)
        .stderr(Stdio::from(file))
        .output()
        .expect("start klachtd");
    assert!(
        out.status.success(),
        "klachtd {args:?} failed with {:?}\nstdout:\n{}\nlog:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(log).unwrap_or_default()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn receive(app: &TestApp, log: &Path, mail: &[u8], at: &str) {
    app.deliver_eml(mail, ts(at));
    app.set_now(at);
    logged(app, log, &["run", "--once"]);
}

fn complaint_of(app: &TestApp, complainant: &str) -> Value {
    app.list()
        .into_iter()
        .find(|c| c["complainant"] == complainant)
        .unwrap_or_else(|| panic!("no complaint of {complainant}"))
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The files under `dir` whose raw bytes hold `needle` (ASCII case ignored), also as UTF-16
/// (how SQLite could store text in a UTF-16 database).
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let utf16: Vec<u8> = needle.encode_utf16().flat_map(u16::to_le_bytes).collect();
    files_under(dir)
        .into_iter()
        .filter(|p| {
            let bytes = std::fs::read(p).unwrap_or_default();
            contains(&bytes, needle.as_bytes()) || contains(&bytes, &utf16)
        })
        .map(|p| p.display().to_string())
        .collect()
}

/// Where the installation's data holds `needle`: the files under its data directory (on
/// SQLite the database is one of them) and, on PostgreSQL, the database's live rows.
fn stored_holding(app: &TestApp, needle: &str) -> Vec<String> {
    let mut found = files_holding(&app.data_dir, needle);
    if let Some(dump) = app.database_dump() {
        let utf16: Vec<u8> = needle.encode_utf16().flat_map(u16::to_le_bytes).collect();
        if contains(&dump, needle.as_bytes()) || contains(&dump, &utf16) {
            found.push("the PostgreSQL database (pg_dump)".to_string());
        }
    }
    found
}

/// The words of the purged complaint that must be nowhere.
fn personal() -> Vec<&'static str> {
    vec![
        ADDRESS,
        "vandersluis",
        "Marieke",
        SUBJECT_WORD,
        BODY_WORD,
        ATTACHMENT_WORD,
        REPLY_WORD,
        SOLUTION_WORD,
    ]
}

/// Two complaints under the academie procedure, both with the shared attachment: hers
/// (handled on Tue 24 Nov 2026, with a reply, a cause naming her and a solution) and Kees's
/// (still open). Returns (her reference, his reference).
fn two_complaints(app: &TestApp, log: &Path) -> (String, String) {
    receive(
        app,
        log,
        &mail_with_attachments(
            &format!("{NAME} <{ADDRESS}>"),
            &format!("Rooster {SUBJECT_WORD}"),
            "CAF3x9q2Lm0001@mail.voorbeeld.nl",
            &format!("De les viel uit. {BODY_WORD} is mijn wachtwoord niet."),
            Some(&format!("Verslag: {ATTACHMENT_WORD}")),
        ),
        "2026-11-23T10:00:00+01:00",
    );
    receive(
        app,
        log,
        &mail_with_attachments(
            OTHER,
            "Ook het rooster",
            "a81c2e77@andere.example.nl",
            "Hetzelfde rooster, hetzelfde probleem.",
            None,
        ),
        "2026-11-23T10:05:00+01:00",
    );
    let hers = complaint_of(app, ADDRESS)["reference"]
        .as_str()
        .unwrap()
        .to_string();
    let his = complaint_of(app, OTHER)["reference"]
        .as_str()
        .unwrap()
        .to_string();
    // Her reply to our acknowledgement threads into her complaint.
    let ack = app
        .sent_to(ADDRESS)
        .into_iter()
        .next()
        .expect("acknowledgement");
    receive(
        app,
        log,
        &Mail::new(ADDRESS, &format!("RE: {}", ack.subject))
            .header("From", &format!("{NAME} <{ADDRESS}>"))
            .header("To", &ack.reply_to)
            .header("In-Reply-To", &format!("<{}>", ack.message_id))
            .message_id("CAF3x9q2Lm0002@mail.voorbeeld.nl")
            .body(&format!("Nog iets: {REPLY_WORD}."))
            .build(),
        "2026-11-23T11:00:00+01:00",
    );
    app.set_now("2026-11-24T10:00:00+01:00");
    for (field, value) in [
        ("handler", RECEIVER),
        ("category", "Rooster"),
        ("cause", "Marieke van der Sluis meldde: docent ziek"),
        ("incident_kind", "incident"),
        (
            "solution",
            &format!("Beste Marieke, de les wordt ingehaald ({SOLUTION_WORD})."),
        ),
    ] {
        logged(app, log, &["set", &hers, field, value]);
    }
    logged(app, log, &["set", &hers, "satisfaction", "4"]);
    logged(app, log, &["set", &hers, "agreement", "yes"]);
    logged(app, log, &["complete", &hers, "first_reaction"]);
    logged(app, log, &["complete", &hers, "handled"]);
    (hers, his)
}

/// Her data is in the files before anything is removed: the checks after it can fail.
fn assert_present(app: &TestApp) {
    for w in personal() {
        assert!(
            !stored_holding(app, w).is_empty(),
            "{w} should be stored before the purge"
        );
    }
    assert!(!files_holding(&app.maildir, BODY_WORD).is_empty());
}

/// Nothing of hers anywhere: every file under the data directory (database, -wal, -shm,
/// raw mails, attachments, the log there), the Maildir, and the log.
fn assert_gone(app: &TestApp, log: &Path) {
    for w in personal() {
        let found = stored_holding(app, w);
        assert!(found.is_empty(), "{w} still in {found:?}");
        let found = files_holding(&app.maildir, w);
        assert!(found.is_empty(), "{w} still in the Maildir: {found:?}");
        let text = std::fs::read(log).unwrap_or_default();
        assert!(!contains(&text, w.as_bytes()), "{w} is in the log file");
    }
}

/// Right after a purge the WAL is empty: truncated, so it holds no page image from before
/// (or gone with the last connection). Later writes start it again from nothing.
fn assert_wal_empty(app: &TestApp) {
    if app.on_postgres() {
        // PostgreSQL's WAL is the server's, shared by every database on it; README,
        // "Guarantees per backend", says what a purge leaves there.
        return;
    }
    let wal = app.data_dir.join("klachtd.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()) == 0,
        "WAL not empty after the purge"
    );
}

fn events(show: &Value) -> Vec<Value> {
    show["history"].as_array().cloned().unwrap_or_default()
}

/// The statistics row of her purged complaint: counted, with what reports need, without her.
fn assert_statistics_row(app: &TestApp, hers: &str) {
    let list = app.list();
    assert_eq!(list.len(), 2, "both complaints still counted: {list:?}");
    let c = list
        .iter()
        .find(|c| c["reference"] == hers)
        .expect("her complaint is still in the register");
    assert_eq!(c["status"], "closed");
    assert_eq!(c["complainant"], "");
    assert!(c["complainant_name"].is_null());
    assert_eq!(c["subject"], "");
    assert!(c["handler"].is_null(), "{c}");
    assert_eq!(c["category"], "Rooster");
    assert_eq!(c["incident_kind"], "incident");
    assert_eq!(c["agreement"], "yes");
    assert_eq!(c["satisfaction"], "4");
    assert_eq!(c["kind"], "complaint");
    assert_eq!(c["channel"], "email");
    assert_eq!(c["received_at"], "2026-11-23T09:00:00Z");
    // Set texts stay set, empty; the cause stays, without her name.
    assert_eq!(c["solution"], "");
    assert_eq!(c["cause"], "[verwijderd] meldde: docent ziek");
    let show = app.show(hers);
    let h = events(&show);
    let last = h.last().expect("history");
    assert_eq!(last["event"], "personal_data_removed");
    assert_eq!(
        last["detail"],
        "personal data removed: retention 6 months after handled"
    );
    for e in &h[..h.len() - 1] {
        assert_eq!(e["detail"], "", "{e}");
    }
    assert!(
        h.iter()
            .all(|e| !e["actor"].as_str().unwrap().contains('@'))
    );
    // The milestones and when they were reached stay: registered, handled, closed.
    for event in ["registered", "milestone", "closed", "message_out"] {
        assert!(h.iter().any(|e| e["event"] == event), "{event} kept");
    }
    let messages = show["messages"].as_array().unwrap();
    assert!(!messages.is_empty(), "the record of what was sent stays");
    for m in messages {
        assert_eq!(m["direction"], "out", "{m}");
        assert_eq!(m["to"], "");
        assert_eq!(m["subject"], "");
        assert_eq!(m["text"], "");
        assert_eq!(m["status"], "sent");
    }
    assert!(messages.iter().any(|m| m["classification"] == "solution"));
}

/// His complaint is untouched, and the attachment they both sent is still on disk for him.
fn assert_his_intact(app: &TestApp, his: &str) {
    let show = app.show(his);
    assert_eq!(show["complaint"]["complainant"], OTHER);
    let first = &show["messages"][0];
    assert_eq!(first["direction"], "in");
    let sha = first["attachments"][0]["sha256"].as_str().unwrap();
    let path = app.data_dir.join("attachments").join(&sha[..2]).join(sha);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        SHARED_ATTACHMENT,
        "the shared attachment is kept"
    );
    assert!(!files_holding(&app.maildir, "hetzelfde probleem").is_empty());
}

#[test]
fn purge_removes_her_data_from_every_file_and_keeps_a_statistics_row() {
    let app = academie();
    let log = app.data_dir.join("klachtd.log");
    // Everything klachtd logs, at the most talkative level, goes to a file in the data dir.
    app.set_env("KLACHTD__LOGGING__LEVEL", "trace");
    let (hers, his) = two_complaints(&app, &log);
    assert_present(&app);

    // Handled Tue 24 Nov 2026: 6 months later is Mon 24 May 2027.
    app.set_now("2027-05-23T23:00:00+02:00");
    let due = app.json(&["purge", "--dry-run", "--format", "json"]);
    assert_eq!(due, serde_json::json!([]), "not due the day before");
    app.set_now("2027-05-24T09:00:00+02:00");
    let due = app.json(&["purge", "--dry-run", "--format", "json"]);
    let due = due.as_array().unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0]["reference"], hers.as_str());
    assert_eq!(due[0]["since"], "2027-05-24");
    assert_eq!(due[0]["rule"], "retention 6 months after handled");
    assert_eq!(due[0]["anchor"], "2026-11-24T09:00:00Z");
    let table = app.cmd_ok(&["purge", "--dry-run"]);
    assert!(
        table.contains(&hers) && table.contains("2027-05-24"),
        "{table}"
    );
    assert_present(&app);

    // The purge itself: JSON on stdout, plain progress lines on stderr (not a terminal).
    let out = app
        .command(&["purge", "--format", "json"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON only");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("purge: 1/1"), "{stderr}");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&out.stderr)
        .unwrap();
    assert_eq!(report["items"][0]["result"], "removed");
    let totals = &report["totals"];
    assert_eq!(totals["complaints"], 1);
    assert_eq!(totals["messages"], 2, "her mail and her reply");
    assert_eq!(totals["files_shared"], 1, "the attachment he sent too");
    assert_eq!(totals["source_files_deleted"], 2);
    assert_eq!(totals["wal_truncated"], true);
    assert_wal_empty(&app);

    assert_gone(&app, &log);
    assert_statistics_row(&app, &hers);
    assert_his_intact(&app, &his);
    // After the reads too: nothing came back into a -wal or -shm file.
    assert_gone(&app, &log);
    assert_eq!(
        app.json(&["purge", "--dry-run", "--format", "json"]),
        serde_json::json!([]),
        "nothing left to purge"
    );
}

fn tick_jobs(app: &TestApp, at: &str) -> Vec<String> {
    app.json(&["tick", "--at", at, "--format", "json"])["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_daily_job_removes_what_is_due_once_a_day() {
    let app = academie();
    let log = app.data_dir.join("klachtd.log");
    let (hers, his) = two_complaints(&app, &log);
    let jobs = tick_jobs(&app, "2027-05-23T09:00:00+02:00");
    assert!(jobs.iter().all(|j| !j.starts_with("retention")), "{jobs:?}");
    assert_present(&app);
    let jobs = tick_jobs(&app, "2027-05-24T09:00:00+02:00");
    assert!(
        jobs.contains(&"retention (1 purged, 0 failed)".to_string()),
        "{jobs:?}"
    );
    assert_gone(&app, &log);
    assert_statistics_row(&app, &hers);
    assert_his_intact(&app, &his);
    let h = events(&app.show(&hers));
    assert_eq!(h.last().unwrap()["actor"], "retention");
    // Once a day: the same day again does nothing.
    let jobs = tick_jobs(&app, "2027-05-24T15:00:00+02:00");
    assert!(jobs.iter().all(|j| !j.starts_with("retention")), "{jobs:?}");
    assert_eq!(
        events(&app.show(&hers))
            .iter()
            .filter(|e| e["event"] == "personal_data_removed")
            .count(),
        1
    );
    // She answers our old solution mail (its Message-ID is kept): it comes in, and goes
    // with the next day's run, since her retention period is over.
    let solution_id = app.show(&hers)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["classification"] == "solution")
        .unwrap()["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    receive(
        &app,
        &log,
        &Mail::new(ADDRESS, "RE: Ons voorstel")
            .header("In-Reply-To", &format!("<{solution_id}>"))
            .message_id("CAF3x9q2Lm0003@mail.voorbeeld.nl")
            .body(&format!("Alsnog: {BODY_WORD}"))
            .build(),
        "2027-05-24T16:00:00+02:00",
    );
    assert!(!stored_holding(&app, BODY_WORD).is_empty());
    app.set_now("2027-05-25T09:00:00+02:00");
    let due = app.json(&["purge", "--dry-run", "--format", "json"]);
    let again: Vec<&Value> = due
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["again"] == true)
        .collect();
    assert!(
        again.iter().any(|i| i["reference"] == hers.as_str()),
        "{due}"
    );
    let jobs = tick_jobs(&app, "2027-05-25T09:00:00+02:00");
    assert!(
        jobs.iter().any(|j| j.starts_with("retention (")),
        "{jobs:?}"
    );
    assert_gone(&app, &log);
}

#[test]
fn a_procedure_without_retention_keeps_everything() {
    // mzo names no retention period.
    let app = TestApp::spawn();
    let log = app.data_dir.join("klachtd.log");
    receive(
        &app,
        &log,
        &Mail::new(ADDRESS, "Les viel uit")
            .body(&format!("Het ging om {BODY_WORD}."))
            .build(),
        "2026-11-23T10:00:00+01:00",
    );
    let r = app.references()[0].clone();
    app.set_now("2026-11-24T10:00:00+01:00");
    app.cmd_ok(&["set", &r, "status", "closed"]);
    let jobs = tick_jobs(&app, "2031-01-06T09:00:00+01:00");
    assert!(jobs.iter().all(|j| !j.starts_with("retention")), "{jobs:?}");
    app.set_now("2031-01-06T10:00:00+01:00");
    assert_eq!(
        app.json(&["purge", "--dry-run", "--format", "json"]),
        serde_json::json!([])
    );
    app.cmd_ok(&["purge"]);
    assert!(!stored_holding(&app, BODY_WORD).is_empty());
    assert_eq!(app.show(&r)["complaint"]["complainant"], ADDRESS);
}

/// A person with a complaint of her own (her From in another case), one a colleague entered
/// for her after a phone call, and an automatic reply of hers kept unfiled.
const RIA: &str = "ria.bakker@voorbeeld.nl";
const RIA_WORD: &str = "Kievitsbloem";
const PHONE_WORD: &str = "Klaprozenweg";
const UNFILED_WORD: &str = "Afwezigheidsbericht-Zomer";

fn ria(app: &TestApp, log: &Path) -> (String, String) {
    receive(
        app,
        log,
        &Mail::new("Ria.Bakker@Voorbeeld.NL", "Zaal te koud")
            .header("From", "Ria Bakker <Ria.Bakker@Voorbeeld.NL>")
            .message_id("ab12cd34@voorbeeld.nl")
            .body(&format!("De zaal was koud. {RIA_WORD}."))
            .build(),
        "2026-11-23T10:00:00+01:00",
    );
    receive(
        app,
        log,
        &Mail::new(OTHER, "Parkeren")
            .message_id("ef56ab78@andere.example.nl")
            .body("Geen plek.")
            .build(),
        "2026-11-23T10:10:00+01:00",
    );
    let intake = app
        .sent_to(RECEIVER)
        .into_iter()
        .next()
        .expect("a staff mail")
        .text
        .split_whitespace()
        .find(|w| w.starts_with("service+i-"))
        .expect("intake address")
        .trim_end_matches(['.', ',', ')'])
        .to_string();
    receive(
        app,
        log,
        &Mail::new(RECEIVER, "Telefoontje mevrouw Bakker")
            .header("To", &intake)
            .message_id("9f8e7d6c@example.org")
            .body(&format!(
                "#nieuw\n#naam Ria Bakker\n#email {RIA}\n#kanaal telefoon\n\nMevrouw Bakker belde over de {PHONE_WORD}.\n\n-- \nCoördinator"
            ))
            .build(),
        "2026-11-24T10:00:00+01:00",
    );
    receive(
        app,
        log,
        &Mail::new(RIA, "Afwezig")
            .header("Auto-Submitted", "auto-replied")
            .message_id("0a0b0c0d@voorbeeld.nl")
            .body(&format!("{UNFILED_WORD}: ik ben er niet."))
            .build(),
        "2026-11-24T11:00:00+01:00",
    );
    let mine: Vec<String> = app
        .list()
        .iter()
        .filter(|c| c["complainant"] == RIA)
        .map(|c| c["reference"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(mine.len(), 2, "{:?}", app.list());
    assert_eq!(app.unfiled().len(), 1, "{:?}", app.unfiled());
    (mine[0].clone(), mine[1].clone())
}

#[test]
fn export_writes_everything_about_one_person_in_any_case() {
    let app = TestApp::spawn();
    let log = app.data_dir.join("klachtd.log");
    let (own, phoned) = ria(&app, &log);
    let dir = app.root.join("inzage");
    let out = app
        .command(&[
            "export",
            "--email",
            "RIA.BAKKER@voorbeeld.nl",
            "--output",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("exported 2 complaint(s)"), "{stdout}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("export: 3/3"),
        "progress lines on stderr"
    );
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("export.json")).unwrap()).unwrap();
    assert_eq!(doc["person"], RIA);
    let complaints = doc["complaints"].as_array().unwrap();
    let refs: Vec<&str> = complaints
        .iter()
        .map(|c| c["complaint"]["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs, vec![own.as_str(), phoned.as_str()]);
    let by_phone = &complaints[1];
    assert_eq!(by_phone["complaint"]["received_by"], RECEIVER);
    assert_eq!(by_phone["complaint"]["channel"], "phone");
    for c in complaints {
        assert!(!c["history"].as_array().unwrap().is_empty());
        assert!(!c["messages"].as_array().unwrap().is_empty());
    }
    let text = doc.to_string();
    assert!(
        text.contains(RIA_WORD) && text.contains(PHONE_WORD),
        "{text}"
    );
    assert!(!text.contains(OTHER), "nobody else's complaint is in it");
    let others = doc["other_messages"].as_array().unwrap();
    assert_eq!(others.len(), 1, "{others:?}");
    assert!(others[0]["text"].as_str().unwrap().contains(UNFILED_WORD));
    // Her mails as received, and ours to her as sent: readable .eml files.
    let mails: Vec<String> = complaints
        .iter()
        .flat_map(|c| c["mails"].as_array().unwrap().clone())
        .chain(others.iter().map(|o| o["mail"].clone()))
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    let mut bodies = String::new();
    for m in &mails {
        let raw = std::fs::read(dir.join(m)).unwrap();
        let parsed = mail_parser::MessageParser::default()
            .parse(&raw)
            .unwrap_or_else(|| panic!("{m} is not a mail"));
        bodies.push_str(&parsed.body_text(0).unwrap_or_default());
    }
    for w in [
        RIA_WORD,
        PHONE_WORD,
        UNFILED_WORD,
        "geregistreerd onder nummer",
    ] {
        assert!(bodies.contains(w), "{w} in no exported mail");
    }
    assert!(mails.iter().any(|m| m.contains("-out-")), "{mails:?}");
    // Never into a directory that holds something.
    let again = app.cmd(&["export", "--email", RIA, "--output", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    // Not for staff: their mail is in everybody's complaint.
    assert_eq!(
        app.cmd(&["export", "--email", RECEIVER]).status.code(),
        Some(2)
    );
}

/// Run `klachtd ARGS` on a pseudo-terminal (util-linux `script`), typing `input`.
fn on_terminal(app: &TestApp, args: &[&str], input: &str) -> Option<Output> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("no `script` on this machine: the terminal prompt is not tested");
        return None;
    }
    let inner = app.command(args);
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut line = quote(&inner.get_program().to_string_lossy());
    for a in inner.get_args() {
        line.push(' ');
        line.push_str(&quote(&a.to_string_lossy()));
    }
    let mut c = Command::new("script");
    c.args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(&app.root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let mut child = c.spawn().expect("start script");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Some(child.wait_with_output().unwrap())
}

#[test]
fn erase_asks_first_and_removes_everything_about_one_person() {
    let app = TestApp::spawn();
    let log = app.data_dir.join("klachtd.log");
    let (own, phoned) = ria(&app, &log);
    for w in [RIA_WORD, PHONE_WORD, UNFILED_WORD, RIA] {
        assert!(!stored_holding(&app, w).is_empty(), "{w} stored");
    }
    // Not on a terminal and no --yes: refused, nothing changed.
    let refused = app
        .command(&["erase", "--email", RIA])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert!(!stored_holding(&app, RIA_WORD).is_empty());
    // On a terminal: asked, and "no" keeps everything.
    if let Some(out) = on_terminal(&app, &["erase", "--email", RIA], "nee\n") {
        let screen = String::from_utf8_lossy(&out.stdout);
        assert!(screen.contains("Type yes"), "{screen}");
        assert!(
            screen.contains(&own) && screen.contains(&phoned),
            "{screen}"
        );
        assert_eq!(out.status.code(), Some(1), "{screen}");
        assert!(!stored_holding(&app, RIA_WORD).is_empty());
    }
    // "yes" on the terminal (progress bar and all), or --yes where there is no `script`.
    let args = [
        "erase",
        "--email",
        "Ria.Bakker@VOORBEELD.nl",
        "--reason",
        "Verzoek van Ria Bakker per brief van 1 december",
    ];
    let out = match on_terminal(&app, &args, "yes\n") {
        Some(out) => {
            let screen = String::from_utf8_lossy(&out.stdout).into_owned();
            assert_eq!(out.status.code(), Some(0), "{screen}");
            screen
        }
        None => app.cmd_ok(&[&args[..], &["--yes"]].concat()),
    };
    assert!(out.contains("from 2 complaint(s)"), "{out}");
    for w in [RIA_WORD, PHONE_WORD, UNFILED_WORD, RIA, "Bakker"] {
        let found = stored_holding(&app, w);
        assert!(found.is_empty(), "{w} still in {found:?}");
        assert!(
            files_holding(&app.maildir, w).is_empty(),
            "{w} in the Maildir"
        );
    }
    assert!(app.unfiled().is_empty());
    // Her complaints stay counted, without her; the history says why, without her name.
    let list = app.list();
    assert_eq!(list.len(), 3);
    for r in [&own, &phoned] {
        let show = app.show(r);
        assert_eq!(show["complaint"]["complainant"], "");
        assert!(show["complaint"]["received_by"].is_null());
        let last = events(&show).last().unwrap().clone();
        assert_eq!(last["event"], "erased");
        assert_eq!(
            last["detail"],
            "personal data removed at the person's request (AVG art. 17): Verzoek van [verwijderd] per brief van 1 december"
        );
    }
    let kees = app
        .list()
        .into_iter()
        .find(|c| c["complainant"] == OTHER)
        .expect("his complaint");
    assert_eq!(kees["subject"], "Parkeren");
    // Found nothing the second time.
    let again = app.cmd_ok(&["erase", "--email", RIA, "--yes"]);
    assert!(again.contains("no complaint or mail"), "{again}");
    assert_eq!(
        app.cmd(&["erase", "--email", RECEIVER, "--yes"])
            .status
            .code(),
        Some(2),
        "not for staff"
    );
}

/// Only the first purge ever VACUUMs; from then on `secure_delete` alone keeps what a purge
/// deletes out of the file. His complaint, purged after hers, is checked the same way, and the
/// attachment they shared goes with the last complaint that named it.
#[test]
fn a_later_purge_without_vacuum_leaves_nothing_either() {
    let app = academie();
    let log = app.data_dir.join("klachtd.log");
    let (_, his) = two_complaints(&app, &log);
    app.set_now("2027-05-24T09:00:00+02:00");
    let first = app.json(&["purge", "--format", "json"]);
    assert_eq!(first["totals"]["vacuumed"], true);
    app.set_now("2027-05-25T10:00:00+02:00");
    app.cmd_ok(&["set", &his, "solution", "Het rooster is aangepast."]);
    app.cmd_ok(&["complete", &his, "handled"]);
    let his_words = [
        OTHER,
        "hetzelfde probleem",
        SHARED_ATTACHMENT,
        "Ook het rooster",
    ];
    for w in his_words {
        assert!(!stored_holding(&app, w).is_empty(), "{w} stored");
    }
    app.set_now("2027-11-25T09:00:00+01:00");
    let second = app.json(&["purge", "--format", "json"]);
    assert_eq!(second["totals"]["complaints"], 1, "{second}");
    assert_eq!(second["totals"]["vacuumed"], false, "{second}");
    assert_eq!(second["totals"]["files_shared"], 0, "{second}");
    assert_wal_empty(&app);
    for w in his_words.iter().chain(personal().iter()) {
        let found = stored_holding(&app, w);
        assert!(found.is_empty(), "{w} still in {found:?}");
    }
    assert_eq!(app.list().len(), 2);
}

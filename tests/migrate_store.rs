//! `klachtd migrate-store` (issue #12): an installation built through the real binary on the
//! embedded SQLite store is copied to another SQLite file (and, with `KLACHTD_TEST_PG` set, to
//! PostgreSQL and back), and every view of it prints exactly what it printed before.
//!
//! `KLACHTD_TEST_PG`: a server URL without a database (`postgres://klachtd@127.0.0.1:5432`),
//! its password in `KLACHTD_TEST_PG_PASSWORD`; the role needs CREATEDB. The test makes a fresh
//! database with `psql` and drops it at the end.

mod common;

use std::process::Output;

use common::{Mail, TestApp};
use serde_json::Value;

/// An installation with something in every table: complaints (one voided, one with a handler
/// and a milestone done), a complainant's reply, an unfiled auto-reply, a quarantined mail,
/// acknowledgements and reminders in the outbox, actions and jobs the scheduler did.
fn installation() -> (TestApp, Vec<String>) {
    let app = TestApp::spawn_sqlite();
    for (from, subject) in [
        ("jan@example.nl", "Les viel uit"),
        ("piet@example.nl", "Geluidsoverlast na tienen"),
        ("kees@example.nl", "Factuur te hoog"),
        ("els@example.nl", "Parkeren bij de ingang"),
    ] {
        app.deliver(
            &Mail::new(from, subject)
                .body(&format!("{subject}.\n\nMet vriendelijke groet"))
                .build(),
        );
    }
    app.deliver(b"\x00\x01\x02\xff\xfe garbage from a broken scanner \x89PNG\r\n\x1a\n");
    app.deliver(
        &Mail::new("auto@x.example.nl", "Afwezig")
            .header("Auto-Submitted", "auto-replied")
            .build(),
    );
    app.run_once();
    let refs = app.references();
    assert_eq!(refs.len(), 4, "{refs:?}");
    app.deliver(
        &Mail::new("jan@example.nl", &format!("Re: [{}] Les viel uit", refs[0]))
            .message_id("reply1@example.nl")
            .body("Vandaag is de les weer niet doorgegaan.")
            .build(),
    );
    app.run_once();
    app.cmd_ok(&["set", &refs[1], "handler", "docent@example.org"]);
    app.cmd_ok(&["complete", &refs[1], "first_reaction"]);
    app.cmd_ok(&["void", &refs[2], "--reason", "dubbel ingediend"]);
    // Reminders and escalations fall due: actions done, jobs done, more outbox mail.
    app.cmd_ok(&["tick", "--at", "2026-12-04T09:00:00+01:00"]);
    assert_eq!(app.quarantine_all().len(), 1);
    assert_eq!(app.unfiled().len(), 1);
    (app, refs)
}

/// Everything a person can read of the installation, command by command.
fn views(app: &TestApp, refs: &[String]) -> Vec<(String, String)> {
    let mut commands: Vec<Vec<String>> = [
        &["list"][..],
        &["list", "--format", "json"],
        &["list", "--status", "open", "--format", "json"],
        &["register", "--format", "json"],
        &["quarantine", "list", "--all", "--format", "json"],
        &["unfiled", "list", "--format", "json"],
        &["outbox", "list", "--format", "json"],
        &[
            "due",
            "--at",
            "2027-01-10T09:00:00+01:00",
            "--format",
            "json",
        ],
    ]
    .iter()
    .map(|a| a.iter().map(|s| s.to_string()).collect())
    .collect();
    for r in refs {
        commands.push(vec!["show".into(), r.clone()]);
        commands.push(vec![
            "show".into(),
            r.clone(),
            "--format".into(),
            "json".into(),
        ]);
    }
    commands
        .into_iter()
        .map(|args| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            (args.join(" "), app.cmd_ok(&args))
        })
        .collect()
}

fn assert_same_views(before: &[(String, String)], after: &[(String, String)], what: &str) {
    assert_eq!(before.len(), after.len());
    for ((cmd, b), (_, a)) in before.iter().zip(after) {
        assert_eq!(b, a, "`klachtd {cmd}` prints something else {what}");
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn migrate(app: &TestApp, from: &str, to: &str, extra: &[&str]) -> Output {
    let mut args = vec!["migrate-store", "--from", from, "--to", to];
    args.extend(extra);
    app.cmd(&args)
}

/// `--format json`, which must exit 0 with every table matching.
fn migrate_json(app: &TestApp, from: &str, to: &str) -> Value {
    let out = migrate(app, from, to, &["--format", "json"]);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "migrate-store {from} -> {to} failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status.code()
    );
    let v: Value = serde_json::from_str(&stdout).expect("migrate-store --format json");
    assert_eq!(v["matches"], true, "{v:#}");
    v
}

fn table<'a>(outcome: &'a Value, name: &str) -> &'a Value {
    outcome["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == name))
        .unwrap_or_else(|| panic!("no table {name} in {outcome:#}"))
}

/// Every table copied whole, and the ones the installation filled are not empty.
fn assert_copied(outcome: &Value, complaints: u64) {
    for t in outcome["tables"].as_array().expect("tables") {
        assert_eq!(t["matches"], true, "{t:#}");
        assert_eq!(t["copied"], t["source"]["rows"], "{t:#}");
        assert_eq!(t["source"], t["target"], "{t:#}");
    }
    assert_eq!(table(outcome, "complaints")["copied"], complaints);
    for name in [
        "ref_counters",
        "procedure_versions",
        "settings_kv",
        "complaints",
        "messages",
        "source_keys",
        "quarantine",
        "outbox",
        "history",
        "milestones",
        "actions_done",
        "jobs_done",
    ] {
        let n = table(outcome, name)["copied"].as_u64().unwrap_or(0);
        assert!(n > 0, "nothing in {name}: {outcome:#}");
    }
    let names: Vec<&str> = outcome["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(|t| t["table"].as_str())
        .collect();
    for never in ["_sqlx_migrations", "leases", "instances"] {
        assert!(!names.contains(&never), "{names:?}");
    }
}

fn sqlite_url(app: &TestApp, name: &str) -> String {
    format!(
        "sqlite://{}",
        app.root.join(name).join("klachtd.db").display()
    )
}

#[test]
fn a_sqlite_installation_moves_to_another_sqlite_file_and_reads_the_same() {
    let (app, refs) = installation();
    let before = views(&app, &refs);
    let from = format!("sqlite://{}", app.data_dir.join("klachtd.db").display());
    let to = sqlite_url(&app, "moved");

    let out = migrate(&app, &from, &to, &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // A table of counts: source, copied, target, all ok.
    let row = |name: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{stdout}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("complaints"), ["complaints", "4", "4", "4", "ok"]);
    for name in ["messages", "outbox", "history", "quarantine", "milestones"] {
        let r = row(name);
        assert_eq!(r.len(), 5, "{r:?}");
        assert!(
            r[1] != "0" && r[1] == r[2] && r[2] == r[3] && r[4] == "ok",
            "{r:?}"
        );
    }
    assert!(stdout.contains("the target matches the source"), "{stdout}");

    app.set_env("KLACHTD__DATABASE__URL", &to);
    assert_same_views(&before, &views(&app, &refs), "on the copy");

    // A second run into the same target is refused, and changes nothing.
    let again = migrate(&app, &from, &to, &[]);
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("is not empty") && stderr.contains("complaints 4"),
        "{stderr}"
    );
    assert_same_views(&before, &views(&app, &refs), "after a refused second copy");

    // Refused while a klachtd process holds the installation (the daemon, or a `list`).
    let lock = std::fs::File::open(app.data_dir.join("klachtd.lock")).expect("lock file");
    lock.lock_shared().expect("hold the installation");
    let busy = migrate(&app, &from, &sqlite_url(&app, "busy"), &[]);
    assert_eq!(busy.status.code(), Some(2), "{:?}", text(&busy));
    assert!(
        text(&busy).1.contains("stop the daemon"),
        "{:?}",
        text(&busy)
    );
    drop(lock);

    // A source that is not there is not made.
    let missing = app.root.join("nothing").join("klachtd.db");
    let out = migrate(
        &app,
        &format!("sqlite://{}", missing.display()),
        &sqlite_url(&app, "other"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(!missing.exists());

    // The copy carries on where the source stopped: the next complaint gets the next number.
    app.deliver(&Mail::new("nieuw@example.nl", "Nog een klacht").build());
    app.run_once();
    let list = app.references();
    assert!(list.contains(&"KL-2026-0005".to_string()), "{list:?}");
}

/// Run SQL on a SQLite file behind klachtd's back (to break the source on purpose).
fn sqlite_exec(url: &str, sql: &str) {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
        conn.close().await.expect("close");
    });
}

/// A copy that fails half-way leaves the target as empty as it was: the next try, with the
/// source repaired, is not refused.
#[test]
fn a_failed_copy_leaves_the_target_empty() {
    let app = TestApp::spawn_sqlite();
    for from in ["a@example.nl", "b@example.nl"] {
        app.deliver(&Mail::new(from, "Klacht").build());
    }
    app.run_once();
    let refs = app.references();
    let before = views(&app, &refs);
    let from = format!("sqlite://{}", app.data_dir.join("klachtd.db").display());
    let to = sqlite_url(&app, "moved");
    // A message of a complaint that is not there: the target's foreign key refuses it, after
    // the counters, settings and complaints were written.
    sqlite_exec(
        &from,
        "PRAGMA foreign_keys = OFF; UPDATE messages SET complaint_id = 999 WHERE id = (SELECT MAX(id) FROM messages)",
    );
    let out = migrate(&app, &from, &to, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("writing messages"), "{stderr}");
    sqlite_exec(
        &from,
        "UPDATE messages SET complaint_id = (SELECT MAX(id) FROM complaints) WHERE complaint_id = 999",
    );
    let outcome = migrate_json(&app, &from, &to);
    assert_eq!(table(&outcome, "complaints")["copied"], 2);
    app.set_env("KLACHTD__DATABASE__URL", &to);
    assert_same_views(
        &before,
        &views(&app, &refs),
        "after a failed and a good copy",
    );
}

fn psql(server: &str, password: &str, sql: &str) {
    let out = std::process::Command::new("psql")
        .arg(format!("{server}/postgres"))
        .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .env("PGPASSWORD", password)
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql {sql}: {:?}", text(&out));
}

/// SQLite to PostgreSQL, the installation used there (ids go on past the copied ones), and
/// back to SQLite. Skipped without `KLACHTD_TEST_PG`.
#[test]
fn a_sqlite_installation_moves_to_postgresql_and_back() {
    let Ok(server) = std::env::var("KLACHTD_TEST_PG") else {
        eprintln!("KLACHTD_TEST_PG not set: migrate-store to PostgreSQL not tested");
        return;
    };
    let server = server.trim_end_matches('/').to_string();
    let password = std::env::var("KLACHTD_TEST_PG_PASSWORD").unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let db = format!("mig_it_{}_{nanos}", std::process::id());
    psql(&server, &password, &format!("CREATE DATABASE {db}"));
    let pg = format!("{server}/{db}");

    let (app, refs) = installation();
    let before = views(&app, &refs);
    let from = format!("sqlite://{}", app.data_dir.join("klachtd.db").display());

    // The password from a file for the target.
    let password_file = app.root.join("pg-password");
    std::fs::write(&password_file, format!("{password}\n")).expect("password file");
    let out = migrate(
        &app,
        &from,
        &pg,
        &[
            "--to-password-file",
            &password_file.display().to_string(),
            "--format",
            "json",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    if !password.is_empty() {
        assert!(
            !stdout.contains(&password) && !stderr.contains(&password),
            "the password is printed"
        );
    }
    let outcome: Value = serde_json::from_str(&stdout).expect("json");
    assert_copied(&outcome, 4);

    app.set_env("KLACHTD__DATABASE__URL", &pg);
    app.set_env("KLACHTD__DATABASE__PASSWORD", &password);
    assert_same_views(&before, &views(&app, &refs), "on PostgreSQL");

    // Refused a second time (the password from the environment this time).
    app.set_env("KLACHTD_MIGRATE_TO_PASSWORD", &password);
    let again = migrate(&app, &from, &pg, &[]);
    assert_eq!(again.status.code(), Some(2), "{:?}", text(&again));
    assert!(
        text(&again).1.contains("is not empty"),
        "{:?}",
        text(&again)
    );

    // Used on PostgreSQL: new rows get ids past the copied ones (the identities were moved).
    app.deliver(&Mail::new("nieuw@example.nl", "Nog een klacht").build());
    app.run_once();
    // (KL-2026-0003, voided, is not in the list but still shown.)
    assert!(app.references().contains(&"KL-2026-0005".to_string()));
    let moved_refs: Vec<String> = refs
        .iter()
        .cloned()
        .chain(["KL-2026-0005".into()])
        .collect();
    let on_pg = views(&app, &moved_refs);

    // And back to SQLite.
    app.set_env("KLACHTD_MIGRATE_FROM_PASSWORD", &password);
    let back = sqlite_url(&app, "back");
    let outcome = migrate_json(&app, &pg, &back);
    assert_copied(&outcome, 5);
    app.set_env("KLACHTD__DATABASE__URL", &back);
    assert_same_views(&on_pg, &views(&app, &moved_refs), "back on SQLite");

    psql(&server, &password, &format!("DROP DATABASE {db}"));
}

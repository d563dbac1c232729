//! `klachtd migrate-blobs` (issue #12), through the real binary: an installation on PostgreSQL
//! that kept its raw mails and attachments as files moves them into the database, switches
//! `database.blobs`, and with the files gone exports, releases from quarantine and shows
//! exactly what it did before; and back again. A damaged file is reported and refused.
//!
//! PostgreSQL only (`KLACHTD_TEST_PG`, scripts/pgcluster.sh) except the SQLite refusal; skipped
//! without it, failing instead when `KLACHTD_REQUIRE_PG=1`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Mail, TestApp, mail_with_attachment};
use serde_json::Value;

/// Complaints with attachments, a plain one, and a quarantined mail (its raw bytes kept).
fn installation() -> TestApp {
    let app = TestApp::spawn();
    assert!(app.on_postgres());
    app.deliver(&mail_with_attachment(
        "jan@example.nl",
        "Les viel uit",
        "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iago=",
    ));
    app.deliver(&mail_with_attachment(
        "piet@example.nl",
        "Factuur te hoog",
        "JVBERi0xLjQKJeLjz9MKMiAwIG9iago8PD4+CmVuZG9iago=",
    ));
    app.deliver(
        &Mail::new("kees@example.nl", "Parkeren")
            .body("Er is nooit plek.")
            .build(),
    );
    app.deliver(b"\x00\x01\x02\xff\xfe garbage from a broken scanner \x89PNG\r\n\x1a\n");
    app.run_once();
    assert_eq!(app.references().len(), 3);
    assert_eq!(app.quarantine().len(), 1);
    app
}

fn remove_blob_files(app: &TestApp) {
    for kind in ["raw", "attachments"] {
        let dir = app.data_dir.join(kind);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("remove blob files");
        }
    }
}

fn set_blobs(app: &TestApp, location: &str) {
    let config = std::fs::read_to_string(&app.config_path).expect("read config");
    let mut kept: Vec<&str> = config
        .lines()
        .filter(|l| !l.trim_start().starts_with("blobs ="))
        .collect();
    // The harness writes `[database]` last: the key goes into that table.
    assert!(
        kept.iter().any(|l| l.trim() == "[database]"),
        "no [database] table"
    );
    let line = format!("blobs = {location:?}");
    kept.push(&line);
    std::fs::write(&app.config_path, kept.join("\n") + "\n").expect("write config");
}

/// The files of a `klachtd export` directory, by relative path.
fn export(app: &TestApp, email: &str, name: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = app.root.join(name);
    let out = app.cmd_ok(&[
        "export",
        "--email",
        email,
        "--output",
        dir.to_str().expect("utf-8"),
    ]);
    assert!(!out.contains("not in the export"), "{out}");
    let mut files = BTreeMap::new();
    walk(&dir, &dir, &mut files);
    assert!(!files.is_empty(), "empty export");
    files
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).expect("read export") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let name = path
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            out.insert(name, std::fs::read(&path).expect("read"));
        }
    }
}

fn migrate(app: &TestApp, to: &str) -> (bool, Value, String) {
    let out = app.cmd(&["migrate-blobs", "--to", to, "--format", "json"]);
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn kind<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .find(|k| k["kind"] == name)
        .unwrap_or_else(|| panic!("no {name} in {json}"))
}

#[test]
fn blobs_move_into_the_database_and_back_and_nothing_is_lost() {
    if common::pg::server_or_skip("blobs_move").is_none() {
        return;
    }
    let app = installation();
    let files_before = app.blob_files();
    let raw_files = files_before.keys().filter(|p| p.starts_with("raw")).count();
    let attachment_files = files_before.len() - raw_files;
    assert_eq!(raw_files, 4, "3 complaints and the quarantined mail");
    assert_eq!(attachment_files, 2);
    let export_before = export(&app, "jan@example.nl", "export-before");
    let show_before = app.cmd_ok(&["show", &app.references()[0], "--format", "json"]);

    let (ok, json, err) = migrate(&app, "database");
    assert!(ok, "{err}\n{json}");
    let raw = kind(&json, "raw");
    assert_eq!(raw["in_source"], 4);
    assert_eq!(raw["copied"], 4);
    assert_eq!(raw["referenced"], 4);
    assert_eq!(raw["missing"], Value::Array(vec![]));
    let attachments = kind(&json, "attachments");
    assert_eq!(attachments["copied"], 2);
    assert_eq!(attachments["referenced"], 2);
    // Again: nothing new to copy, everything already there.
    let (ok, json, err) = migrate(&app, "database");
    assert!(ok, "{err}");
    assert_eq!(kind(&json, "raw")["copied"], 0);
    assert_eq!(kind(&json, "raw")["already_there"], 4);

    // Switched, with the files gone: everything that reads a blob reads the database.
    set_blobs(&app, "database");
    remove_blob_files(&app);
    assert_eq!(
        export(&app, "jan@example.nl", "export-database"),
        export_before
    );
    assert_eq!(
        app.cmd_ok(&["show", &app.references()[0], "--format", "json"]),
        show_before
    );
    // The quarantined garbage is read again from the database (and is still garbage): a
    // missing blob would say "is not stored".
    let held = app.quarantine();
    let id = held[0]["id"].to_string();
    let out = app.cmd(&["quarantine", "release", &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("still cannot be read: not a mail message") && !err.contains("not stored"),
        "{err}"
    );
    // New mail goes into the database too.
    app.deliver(&mail_with_attachment(
        "jan@example.nl",
        "Nog een bijlage",
        "JVBERi0xLjQKJfbk/N8KMyAwIG9iago8PD4+CmVuZG9iago=",
    ));
    app.run_once();
    assert_eq!(app.references().len(), 4);
    assert!(app.blob_files().is_empty(), "a blob was written as a file");
    let export_database = export(&app, "jan@example.nl", "export-database-2");
    assert!(
        export_database.len() > export_before.len(),
        "the new mail is not exported"
    );

    // And back: the files are what they were, byte for byte.
    let (ok, json, err) = migrate(&app, "files");
    assert!(ok, "{err}\n{json}");
    assert_eq!(kind(&json, "raw")["copied"], 5);
    assert_eq!(kind(&json, "attachments")["copied"], 3);
    set_blobs(&app, "files");
    let files_after = app.blob_files();
    for (path, bytes) in &files_before {
        assert_eq!(files_after.get(path), Some(bytes), "{}", path.display());
    }
    assert_eq!(files_after.len(), files_before.len() + 2);
    assert_eq!(
        export(&app, "jan@example.nl", "export-files"),
        export_database
    );
}

#[test]
fn a_damaged_file_is_reported_not_copied_and_the_switch_is_refused() {
    if common::pg::server_or_skip("damaged_blob").is_none() {
        return;
    }
    let app = installation();
    let files = app.blob_files();
    let (path, _) = files
        .iter()
        .find(|(p, _)| p.starts_with("attachments"))
        .expect("an attachment file");
    let sha = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    std::fs::write(app.data_dir.join(path), b"bit rot").expect("damage");
    let (ok, json, err) = migrate(&app, "database");
    assert!(!ok, "a damaged blob passed: {json}");
    let attachments = kind(&json, "attachments");
    assert_eq!(
        attachments["damaged"],
        Value::Array(vec![sha.clone().into()])
    );
    assert_eq!(
        attachments["missing"],
        Value::Array(vec![sha.clone().into()])
    );
    assert_eq!(attachments["copied"], 1);
    assert!(
        err.contains("do not switch database.blobs") && err.contains(&sha),
        "{err}"
    );
    // The raw mails were fine and are all there.
    assert_eq!(kind(&json, "raw")["missing"], Value::Array(vec![]));
}

#[test]
fn sqlite_keeps_no_blobs_and_says_so() {
    let app = TestApp::spawn_sqlite();
    app.run_once();
    let out = app.cmd(&["migrate-blobs", "--to", "database"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("migrate-store"), "{err}");
}

#[test]
fn refused_while_an_instance_runs_on_the_database() {
    if common::pg::server_or_skip("refused_while_running").is_none() {
        return;
    }
    let app = installation();
    let mut daemon = app
        .command(&["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start klachtd run");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = app.json(&["status", "--format", "json"]);
        if status["instances"]
            .as_array()
            .is_some_and(|all| all.iter().any(|i| i["alive"] == true))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no live instance: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = app.cmd(&["migrate-blobs", "--to", "database"]);
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stop every instance first"), "{err}");
}

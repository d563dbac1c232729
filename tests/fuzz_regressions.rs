//! Every crash fixture in `fuzz/regressions/` replayed in the ordinary test run, with the checks
//! of its fuzz target, so CI keeps them without building the fuzz crate (`scripts/fuzz.sh`
//! fuzzes; see the README, "Fuzzing").

mod common;

use std::path::PathBuf;

use common::{Mail, TestApp, repo};
use klachtd::domain::command::{CommandContext, parse_commands};
use klachtd::domain::procedure::Milestone;
use klachtd::domain::types::EmailAddress;
use klachtd::mail::html::{Converter, Limit, MAX_TEXT_BYTES, TRUNCATED, html_to_text_with};

fn fixtures(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = repo().join("fuzz/regressions").join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {}", dir.display());
    out
}

#[test]
fn parse_fixtures_parse_or_are_unreadable_without_a_panic() {
    for (path, bytes) in fixtures("parse") {
        let _ = klachtd::mail::parse::parse(&bytes);
        eprintln!("ok: {}", path.display());
    }
}

#[test]
fn html_fixtures_render_within_the_deadline_and_the_bound() {
    for (path, bytes) in fixtures("html") {
        let html = String::from_utf8_lossy(&bytes);
        let (text, converter) = html_to_text_with(&html);
        assert_ne!(
            converter,
            Converter::Strip(Limit::Time),
            "{}",
            path.display()
        );
        assert!(text.len() <= MAX_TEXT_BYTES + TRUNCATED.len());
    }
}

#[test]
fn command_fixtures_name_lines_that_exist() {
    let sender = EmailAddress::parse("staff@example.org").unwrap();
    let ctx = CommandContext {
        sender,
        staff: None,
        categories: Some(vec!["Planning".into(), "Bejegening".into()]),
        kinds: vec!["complaint".into(), "compliment".into()],
        milestones: Milestone::ALL.to_vec(),
    };
    for (path, bytes) in fixtures("commands") {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(errors) = parse_commands(&text, &ctx) {
            let lines = text
                .replace("\r\n", "\n")
                .replace('\r', "\n")
                .split('\n')
                .count();
            for e in &errors {
                assert!(e.line >= 1 && e.line <= lines + 1, "{}", path.display());
            }
        }
    }
}

/// The ingest fixtures through the real binary, in one batch with a good mail: intake goes
/// on, every fixture is accounted for, the good mail is registered.
#[test]
fn ingest_fixtures_never_stop_intake() {
    let app = TestApp::spawn();
    let fixtures = fixtures("ingest");
    for (_, bytes) in &fixtures {
        app.deliver(bytes);
    }
    app.deliver(
        &Mail::new("ouder@example.nl", "Gewone klacht na de vreemde")
            .message_id("good-after-fixtures@example.nl")
            .build(),
    );
    app.run_once();
    assert!(
        app.list()
            .iter()
            .any(|c| c["subject"] == "Gewone klacht na de vreemde"),
        "the good mail was registered"
    );
    let accounted = app.list().len() + app.unfiled().len() + app.quarantine().len();
    assert!(
        accounted > fixtures.len(),
        "{accounted} of {} mails accounted for",
        fixtures.len() + 1
    );
    assert!(app.maildir_files("new").is_empty(), "nothing left behind");
}

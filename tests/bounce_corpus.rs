//! Real automatic mail from many MTAs (tests/fixtures/bounces/{sisimai,mailbouncedetector},
//! see the README there for the sources and licences) must be classified automatic by `parse` + `automatic_reason`, so it is
//! never registered as a complaint nor answered; ordinary human mails (the complaint fixtures
//! of the golden corpus and tests/fixtures/bounces/not) must not be.
//!
//! `cargo test --test bounce_corpus -- --nocapture` prints the counts.

use std::path::{Path, PathBuf};

use klachtd::domain::classify::{AutomaticReason, automatic_reason};
use klachtd::mail::parse::parse;

fn dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(sub)
}

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// What the classifier says of one file: Ok(reason) or Err(why it is not automatic).
fn classify(path: &Path) -> Result<AutomaticReason, String> {
    let raw = std::fs::read(path).unwrap();
    let parsed = parse(&raw).map_err(|e| format!("parse failed: {e}"))?;
    automatic_reason(&parsed.facts).ok_or_else(|| {
        format!(
            "not automatic (from {}, subject {:?})",
            parsed.facts.from, parsed.facts.subject
        )
    })
}

/// The report-type the file itself declares: its top-level Content-Type, read here without
/// the parser under test (header lines unfolded, parameters split on `;`).
fn declared_report_type(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut unfolded: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        match (line.starts_with([' ', '\t']), unfolded.last_mut()) {
            (true, Some(last)) => last.push_str(line),
            _ => unfolded.push(line.to_string()),
        }
    }
    let ctype = unfolded.iter().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-type")
            .then(|| value.to_ascii_lowercase())
    })?;
    let mut params = ctype.split(';').map(str::trim);
    if params.next() != Some("multipart/report") {
        return None;
    }
    params.find_map(|p| {
        let v = p
            .strip_prefix("report-type")?
            .trim_start()
            .strip_prefix('=')?;
        Some(v.trim().trim_matches('"').to_string())
    })
}

#[test]
fn every_real_bounce_is_automatic() {
    let mut files = eml_files(&dir("bounces/sisimai"));
    files.extend(eml_files(&dir("bounces/mailbouncedetector")));
    assert!(files.len() >= 350, "corpus has only {} files", files.len());
    let mut failures = Vec::new();
    let mut by_reason = std::collections::BTreeMap::<String, usize>::new();
    let mut kinds_checked = 0;
    for f in &files {
        let n = name(f);
        let reason = match classify(f) {
            Ok(r) => r,
            Err(why) => {
                failures.push(format!("{n}: {why}"));
                continue;
            }
        };
        let variant = format!("{reason:?}");
        *by_reason
            .entry(variant.split('(').next().unwrap_or("").to_string())
            .or_default() += 1;
        // Where the file says which kind of report it is, the reason names that kind.
        let raw = std::fs::read(f).unwrap();
        let mut expected = match declared_report_type(&raw).as_deref() {
            Some("delivery-status") => Some(AutomaticReason::DeliveryReport),
            Some(t) => Some(AutomaticReason::Report(t.to_string())),
            None => None,
        };
        if n.starts_with("arf-") {
            expected = Some(AutomaticReason::Report("feedback-report".into()));
        }
        if let Some(want) = expected {
            kinds_checked += 1;
            if reason != want {
                failures.push(format!("{n}: {reason:?}, expected {want:?}"));
            }
        }
    }
    println!(
        "bounce corpus: {} of {} classified automatic ({kinds_checked} with their report type checked); by reason: {by_reason:?}",
        files.len() - failures.len(),
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} real bounces are misclassified:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// Mail fetched over IMAP from some servers carries no Return-Path: the corpus must be
/// recognised by its other signals too.
#[test]
fn every_real_bounce_is_automatic_without_return_path() {
    let mut files = eml_files(&dir("bounces/sisimai"));
    files.extend(eml_files(&dir("bounces/mailbouncedetector")));
    let mut failures = Vec::new();
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        let text = String::from_utf8_lossy(&raw);
        let stripped: String = text
            .split_inclusive('\n')
            .filter(|l| !l.to_ascii_lowercase().starts_with("return-path:"))
            .collect();
        match parse(stripped.as_bytes()) {
            Ok(m) if automatic_reason(&m.facts).is_some() => {}
            Ok(m) => failures.push(format!(
                "{}: not automatic ({:?})",
                name(f),
                m.facts.subject
            )),
            Err(e) => failures.push(format!("{}: {e}", name(f))),
        }
    }
    println!(
        "bounce corpus without Return-Path: {} of {} classified automatic",
        files.len() - failures.len(),
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Human mails: every complaint and reply fixture of the golden corpus (expected outcome
/// `registered+...` or `threaded`) and tests/fixtures/bounces/not (one forwards a mail as a
/// message/rfc822 attachment, as complainants do).
#[test]
fn human_mail_is_not_automatic() {
    let expected: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir("eml").join("expected.toml")).unwrap())
            .unwrap();
    let mut files: Vec<PathBuf> = expected["files"]
        .as_table()
        .unwrap()
        .iter()
        .filter(|(_, v)| {
            v["outcome"]
                .as_str()
                .is_some_and(|o| o.starts_with("registered") || o == "threaded")
        })
        .map(|(n, _)| dir("eml").join(n))
        .collect();
    assert!(files.len() >= 20, "only {} human fixtures", files.len());
    files.extend(eml_files(&dir("bounces/not")));
    let mut wrong = Vec::new();
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        let parsed = parse(&raw).unwrap_or_else(|e| panic!("{}: {e}", name(f)));
        if let Some(r) = automatic_reason(&parsed.facts) {
            wrong.push(format!("{}: {r}", name(f)));
        }
    }
    println!("human mails: {} checked", files.len());
    assert!(
        wrong.is_empty(),
        "human mails classified automatic:\n{}",
        wrong.join("\n")
    );
}

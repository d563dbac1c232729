//! The quote-stripping corpus (issue #10): real-looking replies per mail client, Dutch and
//! English, plain text and HTML, in tests/fixtures/replies. Each `NAME.eml` is parsed with the
//! project's parser and its new part must equal `NAME.expected.txt` exactly (line ends
//! normalised, the file's final line end ignored).
//!
//! `cargo test --test quote_corpus -- --nocapture` prints the cut of every case.

use std::path::{Path, PathBuf};

use klachtd::mail::parse::parse;
use klachtd::mail::reply::reply_of;

/// The corpus must not silently shrink.
const MIN_CASES: usize = 30;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replies")
}

fn cases() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
}

fn normalise(s: &str) -> String {
    let s = s.replace("\r\n", "\n");
    s.strip_suffix('\n').unwrap_or(&s).to_string()
}

/// A line diff: the common prefix once, then every line that differs.
fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.split('\n').collect();
    let a: Vec<&str> = actual.split('\n').collect();
    let mut out = String::new();
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => out.push_str(&format!("   {x}\n")),
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!(" - {x:?}\n"));
                }
                if let Some(y) = y {
                    out.push_str(&format!(" + {y:?}\n"));
                }
            }
        }
    }
    out
}

fn expected_of(eml: &Path) -> String {
    let path = eml.with_extension("expected.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (every case needs its expected text)",
            path.display()
        )
    });
    normalise(&text)
}

#[test]
fn every_reply_yields_its_expected_new_text() {
    let files = cases();
    let mut failures = Vec::new();
    for eml in &files {
        let name = eml.file_name().unwrap().to_string_lossy().into_owned();
        let raw = std::fs::read(eml).unwrap();
        let mail = parse(&raw).unwrap_or_else(|e| panic!("{name}: parse failed: {e}"));
        let reply = reply_of(&mail);
        let actual = normalise(&reply.text);
        let expected = expected_of(eml);
        println!("{name}: {:?} {:?}", reply.reason, reply.html_marker);
        if actual != expected {
            failures.push(format!(
                "{name} (cut: {:?}, html marker: {:?}):\n{}",
                reply.reason,
                reply.html_marker,
                diff(&expected, &actual)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ (- expected, + actual):\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    assert!(
        files.len() >= MIN_CASES,
        "only {} cases in {}, at least {MIN_CASES} expected",
        files.len(),
        dir().display()
    );
}

/// The command lines of the quoted parts never reach the new text, and the corpus has enough
/// of them to show it: a command line (`#...`, also behind `> `) in the decoded mail that the
/// expected text does not have must not be in the new text.
#[test]
fn quoted_command_lines_never_reach_the_new_text() {
    let mut cases_with_quoted_commands = 0;
    for eml in cases() {
        let name = eml.file_name().unwrap().to_string_lossy().into_owned();
        let mail = parse(&std::fs::read(&eml).unwrap()).unwrap();
        let new: Vec<String> = reply_of(&mail)
            .text
            .lines()
            .map(|l| l.trim().to_string())
            .collect();
        let expected = expected_of(&eml);
        let expected: Vec<&str> = expected.lines().map(str::trim).collect();
        let mut found = false;
        for line in mail.text.lines() {
            let t = line.trim_start_matches(['>', ' ']).trim();
            if !t.starts_with('#') || expected.contains(&t) {
                continue;
            }
            found = true;
            assert!(
                !new.iter().any(|l| l == t),
                "{name}: the quoted command line {t:?} is in the new text"
            );
        }
        cases_with_quoted_commands += usize::from(found);
    }
    assert!(
        cases_with_quoted_commands >= 5,
        "only {cases_with_quoted_commands} cases quote a command line"
    );
}

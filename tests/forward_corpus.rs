//! The forward corpus: real-looking forwards per mail client, Dutch and English, inline and as
//! attachment, in tests/fixtures/forwards. Each `NAME.eml` is parsed with the project's parser;
//! its original is `attached_messages[0]` when the mail has one, else
//! `forwarded_original(&parsed.text)`, and must match `NAME.expected.toml`: `from`, `subject`,
//! every line of `text_contains` in the text, and when given `from_name` and no line of
//! `text_not_contains` in the text.
//!
//! `cargo test --test forward_corpus -- --nocapture` prints the original read from every case.

use std::path::{Path, PathBuf};

use klachtd::domain::forward::forwarded_original;
use klachtd::mail::parse::parse;

/// The corpus must not silently shrink.
const MIN_CASES: usize = 8;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/forwards")
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

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    from: String,
    from_name: Option<String>,
    subject: String,
    text_contains: Vec<String>,
    #[serde(default)]
    text_not_contains: Vec<String>,
}

fn expected_of(eml: &Path) -> Expected {
    let path = eml.with_extension("expected.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (every case needs its expectations)",
            path.display()
        )
    });
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What a case reads as the original, from either source.
#[derive(Debug)]
struct Original {
    source: &'static str,
    from: Option<String>,
    from_name: Option<String>,
    subject: Option<String>,
    text: String,
}

fn original_of(raw: &[u8]) -> Result<Original, String> {
    let mail = parse(raw).map_err(|e| format!("parse failed: {e}"))?;
    if let Some(a) = mail.attached_messages.first() {
        return Ok(Original {
            source: "attached message",
            from: a.from.as_ref().map(|a| a.as_str().to_string()),
            from_name: a.from_name.clone(),
            subject: Some(a.subject.clone()),
            text: a.text.clone(),
        });
    }
    let f = forwarded_original(&mail.text)
        .ok_or_else(|| format!("no forward found in the text:\n{}", mail.text))?;
    Ok(Original {
        source: if mail.text_from_html {
            "inline forward (HTML converted)"
        } else {
            "inline forward"
        },
        from: f.from.as_ref().map(|a| a.as_str().to_string()),
        from_name: f.from_name,
        subject: f.subject,
        text: f.text,
    })
}

fn problems(o: &Original, e: &Expected) -> Vec<String> {
    let mut p = Vec::new();
    if o.from.as_deref() != Some(e.from.as_str()) {
        p.push(format!("from: expected {:?}, got {:?}", e.from, o.from));
    }
    if let Some(name) = &e.from_name
        && o.from_name.as_ref() != Some(name)
    {
        p.push(format!(
            "from_name: expected {name:?}, got {:?}",
            o.from_name
        ));
    }
    if o.subject.as_deref() != Some(e.subject.as_str()) {
        p.push(format!(
            "subject: expected {:?}, got {:?}",
            e.subject, o.subject
        ));
    }
    for want in &e.text_contains {
        if !o.text.contains(want.as_str()) {
            p.push(format!("text lacks {want:?}"));
        }
    }
    for unwanted in &e.text_not_contains {
        if o.text.contains(unwanted.as_str()) {
            p.push(format!("text has {unwanted:?}"));
        }
    }
    if !p.is_empty() {
        p.push(format!("text was:\n{}", o.text));
    }
    p
}

#[test]
fn every_forward_yields_its_original() {
    let files = cases();
    let mut failures = Vec::new();
    let mut attached = 0;
    for eml in &files {
        let name = eml.file_name().unwrap().to_string_lossy().into_owned();
        let expected = expected_of(eml);
        let original = match original_of(&std::fs::read(eml).unwrap()) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        println!(
            "{name}: {} from {:?} <{:?}>, subject {:?}, {} bytes of text",
            original.source,
            original.from_name,
            original.from,
            original.subject,
            original.text.len()
        );
        attached += usize::from(original.source == "attached message");
        let p = problems(&original, &expected);
        if !p.is_empty() {
            failures.push(format!(
                "{name} ({}):\n  {}",
                original.source,
                p.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
    assert!(
        files.len() >= MIN_CASES,
        "only {} cases in {}, at least {MIN_CASES} expected",
        files.len(),
        dir().display()
    );
    // Both sources are covered.
    assert!(attached >= 1, "no forward as attachment in the corpus");
    assert!(attached < files.len(), "no inline forward in the corpus");
}

/// The forwarder's own mail is never taken for the original: each case's outer sender is
/// someone else than the original's.
#[test]
fn the_forwarder_is_never_the_original_sender() {
    for eml in cases() {
        let name = eml.file_name().unwrap().to_string_lossy().into_owned();
        let raw = std::fs::read(&eml).unwrap();
        let mail = parse(&raw).unwrap();
        let original = original_of(&raw).unwrap();
        assert_ne!(
            original.from.as_deref(),
            Some(mail.facts.from.as_str()),
            "{name}"
        );
    }
}

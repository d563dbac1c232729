//! Golden corpus: every `tests/fixtures/eml/*.eml` is delivered alone into an empty register
//! (after the mails named in its `after` key, for replies and bounces) and what klachtd made of
//! it, read back through the CLI's JSON, is compared with `tests/fixtures/eml/expected.toml`.
//!
//! On a mismatch the observed record is written to `FILE.actual` next to the fixture and the
//! test fails with a field-by-field diff of every failing file.
//!
//! expected.toml, one table per file:
//!
//! ```toml
//! [files."26-dsn-postfix-our-ack.eml"]
//! after = ["01-nl-plain-qp.eml"]   # delivered and processed first (in this order)
//! env = { KLACHTD__X__Y = "..." }   # extra overrides for this case
//! outcome = "bounce"                # registered+acknowledged | registered+withheld |
//!                                   # threaded | bounce | unfiled | quarantined | nothing
//! reason_contains = "..."           # unfiled/quarantine reason
//! text_contains = ["..."]           # in the stored text of the new message
//! sent = ["jan@example.nl"]         # non-staff recipients of mail this fixture made us send
//! staff_mail = ["bounce_alert"]     # templates of mail it made us send to staff
//! # and any of: subject, complainant, complainant_name, language, related, threaded_into,
//! # attachments (names), ack_to
//! ```
//!
//! Placeholders in a fixture are filled from the acknowledgement the `after` mails produced:
//! `{{ACK_MESSAGE_ID}}`, `{{ACK_ENVELOPE_FROM}}` (our VERP address), `{{ACK_TO}}`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::TestApp;
use serde_json::Value;

fn fixtures() -> PathBuf {
    common::repo().join("tests/fixtures/eml")
}

#[derive(Debug, Clone, Default)]
struct Case {
    after: Vec<String>,
    env: Vec<(String, String)>,
    expect: toml::Table,
}

fn load_cases() -> BTreeMap<String, Case> {
    let path = fixtures().join("expected.toml");
    let text = std::fs::read_to_string(&path).expect("read expected.toml");
    let table: toml::Table = toml::from_str(&text).expect("expected.toml is TOML");
    let files = table
        .get("files")
        .and_then(|f| f.as_table())
        .expect("[files] table");
    let mut out = BTreeMap::new();
    for (name, v) in files {
        let mut t = v.as_table().expect("file entry is a table").clone();
        let after = match t.remove("after") {
            Some(toml::Value::String(s)) => vec![s],
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|x| x.as_str().expect("after: strings").to_string())
                .collect(),
            None => vec![],
            Some(other) => panic!("{name}: after must be a string or list, got {other}"),
        };
        let env = t
            .remove("env")
            .map(|e| {
                e.as_table()
                    .expect("env is a table")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("env values").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        out.insert(
            name.clone(),
            Case {
                after,
                env,
                expect: t,
            },
        );
    }
    out
}

struct Snapshot {
    refs: BTreeSet<String>,
    unfiled: BTreeSet<i64>,
    quarantine: BTreeSet<i64>,
    outbox: BTreeSet<i64>,
    /// Per complaint: incoming messages and bounced outgoing ones.
    messages: BTreeMap<String, (usize, usize)>,
    rows: Rows,
}

/// The JSON the snapshot read, kept so nothing is asked twice.
#[derive(Default)]
struct Rows {
    unfiled: Vec<Value>,
    quarantine: Vec<Value>,
    outbox: Vec<Value>,
    shows: BTreeMap<String, Value>,
}

impl Snapshot {
    fn empty() -> Self {
        Snapshot {
            refs: BTreeSet::new(),
            unfiled: BTreeSet::new(),
            quarantine: BTreeSet::new(),
            outbox: BTreeSet::new(),
            messages: BTreeMap::new(),
            rows: Rows::default(),
        }
    }
}

fn ids(rows: &[Value]) -> BTreeSet<i64> {
    rows.iter().filter_map(|r| r["id"].as_i64()).collect()
}

fn snapshot(app: &TestApp) -> Snapshot {
    let refs: BTreeSet<String> = app.references().into_iter().collect();
    let mut messages = BTreeMap::new();
    let mut shows = BTreeMap::new();
    for r in &refs {
        let show = app.show(r);
        let msgs = show["messages"].as_array().cloned().unwrap_or_default();
        let incoming = msgs.iter().filter(|m| m["direction"] == "in").count();
        let bounced = msgs.iter().filter(|m| m["status"] == "bounced").count();
        messages.insert(r.clone(), (incoming, bounced));
        shows.insert(r.clone(), show);
    }
    let rows = Rows {
        unfiled: app.unfiled(),
        quarantine: app.quarantine(),
        outbox: app.outbox(),
        shows,
    };
    Snapshot {
        refs,
        unfiled: ids(&rows.unfiled),
        quarantine: ids(&rows.quarantine),
        outbox: ids(&rows.outbox),
        messages,
        rows,
    }
}

fn s(v: &Value) -> toml::Value {
    toml::Value::String(v.as_str().unwrap_or_default().to_string())
}

fn strings(v: impl IntoIterator<Item = String>) -> toml::Value {
    toml::Value::Array(v.into_iter().map(toml::Value::String).collect())
}

/// What klachtd made of the last delivered mail, as a TOML table.
fn observe(app: &TestApp, before: &Snapshot) -> toml::Table {
    let mut t = toml::Table::new();
    let after = snapshot(app);
    let new_outbox: Vec<Value> = after
        .rows
        .outbox
        .iter()
        .filter(|r| !before.outbox.contains(&r["id"].as_i64().unwrap_or(-1)))
        .cloned()
        .collect();
    // Mail to the outside world (`sent`) and the templates of mail to staff (`staff_mail`).
    let staff = common::STAFF;
    let mut sent = Vec::new();
    let mut staff_mail = Vec::new();
    for r in &new_outbox {
        for to in r["recipients"].as_str().unwrap_or_default().split(',') {
            let to = to.trim().to_string();
            if staff.contains(&to.as_str()) {
                staff_mail.push(r["template"].as_str().unwrap_or_default().to_string());
            } else if !to.is_empty() {
                sent.push(to);
            }
        }
    }
    sent.sort();
    staff_mail.sort();
    t.insert("sent".into(), strings(sent));
    t.insert("staff_mail".into(), strings(staff_mail));

    let new_q: Vec<Value> = after
        .rows
        .quarantine
        .iter()
        .filter(|r| !before.quarantine.contains(&r["id"].as_i64().unwrap_or(-1)))
        .cloned()
        .collect();
    let new_u: Vec<Value> = after
        .rows
        .unfiled
        .iter()
        .filter(|r| !before.unfiled.contains(&r["id"].as_i64().unwrap_or(-1)))
        .cloned()
        .collect();
    let new_refs: Vec<&String> = after.refs.difference(&before.refs).collect();

    let mut message: Option<Value> = None;
    if let Some(q) = new_q.first() {
        t.insert("outcome".into(), "quarantined".into());
        t.insert("reason".into(), s(&q["reason"]));
    } else if let Some(u) = new_u.first() {
        t.insert("outcome".into(), "unfiled".into());
        t.insert("reason".into(), s(&u["reason"]));
        t.insert("complainant".into(), s(&u["from"]));
        t.insert("subject".into(), s(&u["subject"]));
    } else if let Some(r) = new_refs.first() {
        let show = &after.rows.shows[*r];
        let c = &show["complaint"];
        let ack: Vec<&Value> = new_outbox
            .iter()
            .filter(|o| o["template"] == "acknowledgement" && o["reference"] == **r)
            .collect();
        let outcome = if ack.is_empty() {
            "registered+withheld"
        } else {
            "registered+acknowledged"
        };
        t.insert("outcome".into(), outcome.into());
        if let Some(a) = ack.first() {
            t.insert("ack_to".into(), s(&a["recipients"]));
        }
        for k in ["subject", "complainant", "language"] {
            t.insert(k.into(), s(&c[k]));
        }
        if let Some(n) = c["complainant_name"].as_str() {
            t.insert("complainant_name".into(), n.into());
        }
        if let Some(rel) = c["related_reference"].as_str() {
            t.insert("related".into(), rel.into());
        }
        message = show["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["direction"] == "in").cloned());
    } else {
        // Threaded into, or bouncing, an existing complaint?
        for (r, (incoming, bounced)) in &after.messages {
            let (was_in, was_bounced) = before.messages.get(r).copied().unwrap_or((0, 0));
            if *bounced > was_bounced {
                t.insert("outcome".into(), "bounce".into());
                t.insert("threaded_into".into(), r.as_str().into());
                break;
            }
            if *incoming > was_in {
                t.insert("outcome".into(), "threaded".into());
                t.insert("threaded_into".into(), r.as_str().into());
                let show = &after.rows.shows[r];
                message = show["messages"].as_array().and_then(|m| {
                    m.iter()
                        .filter(|m| m["direction"] == "in")
                        .max_by_key(|m| m["id"].as_i64())
                        .cloned()
                });
                break;
            }
        }
        if !t.contains_key("outcome") {
            t.insert("outcome".into(), "nothing".into());
        }
    }
    if let Some(m) = message {
        t.insert("text".into(), s(&m["text"]));
        let names: Vec<String> = m["attachments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x["name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        if !names.is_empty() {
            t.insert("attachments".into(), strings(names));
        }
    }
    t
}

fn fill_placeholders(app: &TestApp, raw: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&raw);
    if !text.contains("{{ACK_") {
        return raw;
    }
    let ack = app
        .outbox()
        .into_iter()
        .find(|o| o["template"] == "acknowledgement")
        .expect("fixture uses {{ACK_*}} but the `after` mails produced no acknowledgement");
    let mid = ack["message_id"].as_str().unwrap_or_default().to_string();
    let sent = app
        .sent()
        .into_iter()
        .find(|m| m.message_id == mid)
        .expect("acknowledgement file in the outbox dir");
    // The placeholders are ASCII: replace on bytes so non-UTF-8 fixtures stay intact.
    let mut out = raw;
    for (k, v) in [
        ("{{ACK_MESSAGE_ID}}", mid.as_str()),
        ("{{ACK_ENVELOPE_FROM}}", sent.envelope_from.as_str()),
        ("{{ACK_TO}}", ack["recipients"].as_str().unwrap_or_default()),
    ] {
        out = replace_bytes(&out, k.as_bytes(), v.as_bytes());
    }
    out
}

fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("read fixture {name}: {e}"))
}

fn compare(expect: &toml::Table, actual: &toml::Table) -> Vec<String> {
    let mut diffs = Vec::new();
    for (k, want) in expect {
        match k.as_str() {
            "text_contains" => {
                let text = actual.get("text").and_then(|t| t.as_str()).unwrap_or("");
                for needle in want.as_array().expect("text_contains: list") {
                    let needle = needle.as_str().expect("text_contains: strings");
                    if !text.contains(needle) {
                        diffs.push(format!(
                            "  text: does not contain {needle:?}\n        text is {text:?}"
                        ));
                    }
                }
            }
            "reason_contains" => {
                let reason = actual.get("reason").and_then(|t| t.as_str()).unwrap_or("");
                let needle = want.as_str().expect("reason_contains: string");
                if !reason.contains(needle) {
                    diffs.push(format!(
                        "  reason: expected to contain {needle:?}\n          actual {reason:?}"
                    ));
                }
            }
            _ => {
                let got = actual.get(k);
                if got != Some(want) {
                    diffs.push(format!(
                        "  {k}:\n    - expected {want}\n    + actual   {}",
                        got.map(|g| g.to_string())
                            .unwrap_or_else(|| "(none)".into())
                    ));
                }
            }
        }
    }
    diffs
}

/// Runs one case; `Err` carries the readable diff.
fn run_case(name: &str, case: &Case) -> Result<(), String> {
    let app = TestApp::spawn();
    for (k, v) in &case.env {
        app.set_env(k, v);
    }
    for before in &case.after {
        app.deliver(&read_fixture(before));
        app.run_once();
    }
    let before = if case.after.is_empty() {
        Snapshot::empty()
    } else {
        snapshot(&app)
    };
    let raw = fill_placeholders(&app, read_fixture(name));
    app.deliver(&raw);
    app.run_once();
    let actual = observe(&app, &before);
    let actual_path = fixtures().join(format!("{name}.actual"));
    let diffs = compare(&case.expect, &actual);
    if diffs.is_empty() {
        let _ = std::fs::remove_file(&actual_path);
        return Ok(());
    }
    let mut doc = toml::Table::new();
    let mut files = toml::Table::new();
    files.insert(name.to_string(), toml::Value::Table(actual));
    doc.insert("files".into(), toml::Value::Table(files));
    let _ = std::fs::write(
        &actual_path,
        toml::to_string_pretty(&doc).unwrap_or_default(),
    );
    Err(format!(
        "{name} (actual written to {}):\n{}",
        display(&actual_path),
        diffs.join("\n")
    ))
}

fn display(p: &Path) -> String {
    p.strip_prefix(common::repo())
        .unwrap_or(p)
        .display()
        .to_string()
}

#[test]
fn every_fixture_has_an_expectation() {
    let cases = load_cases();
    let mut files: BTreeSet<String> = common::file_names(&fixtures())
        .into_iter()
        .filter(|n| n.ends_with(".eml"))
        .collect();
    assert!(
        files.len() >= 25,
        "corpus has only {} fixtures",
        files.len()
    );
    for (name, case) in &cases {
        assert!(
            files.remove(name),
            "expected.toml names {name}, which is not a fixture"
        );
        for a in &case.after {
            assert!(
                fixtures().join(a).is_file(),
                "{name}: after = {a:?} is not a fixture"
            );
        }
        assert!(
            case.expect.contains_key("outcome"),
            "{name}: no expected outcome"
        );
    }
    assert!(files.is_empty(), "fixtures without expectation: {files:?}");
}

#[test]
fn golden_corpus() {
    let cases: Vec<(String, Case)> = load_cases().into_iter().collect();
    // Cases are independent installations: run a few at a time.
    let workers = 4;
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((name, case)) = cases.get(i) else {
                        break;
                    };
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_case(name, case)
                    }));
                    let err = match result {
                        Ok(Ok(())) => continue,
                        Ok(Err(diff)) => diff,
                        Err(p) => format!(
                            "{name}: panicked: {}",
                            p.downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default()
                        ),
                    };
                    failures.lock().unwrap_or_else(|e| e.into_inner()).push(err);
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} golden fixtures differ:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

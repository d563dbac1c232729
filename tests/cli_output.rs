//! Output that cannot be abused (issue 8, finding 8): text from mail shown by the command line
//! never drives the admin's terminal. A display name and subject with CSI sequences
//! (`ESC[1A ESC[2K ESC[32m`: cursor up, erase line, green), an OSC title sequence, and an
//! attachment name with NUL and U+202E (right-to-left override) go through `run --once`;
//! every table and text output shows them escaped, JSON keeps them as data.

mod common;

use common::{Mail, TestApp};
use serde_json::Value;

/// What a terminal acts on (C0 but the line ends the output itself uses, DEL, C1, bidi
/// controls): stated here independently of the code under test.
fn unsafe_char(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{9}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn assert_clean(what: &str, out: &str) {
    let bad: Vec<(usize, char)> = out
        .char_indices()
        .filter(|(_, c)| unsafe_char(*c))
        .collect();
    assert!(
        bad.is_empty(),
        "`klachtd {what}` printed control characters {bad:?}:\n{}",
        out.escape_debug()
    );
}

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

/// An RFC 2047 encoded word (base64), so any character reaches the header decoded.
fn word(text: &str) -> String {
    format!("=?utf-8?b?{}?=", b64(text.as_bytes()))
}

const NAME: &str = "Jan\u{1b}[1A\u{1b}[2K\u{1b}[32mBeheerder";
const SUBJECT: &str = "Les\u{1b}]0;pwned\u{7} uitgevallen\u{1b}[2K\u{9b}31m";
const FILE: &str = "rekening\u{0}\u{202e}fdp.exe";

fn hostile_complaint() -> Vec<u8> {
    let file = FILE
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect::<String>();
    format!(
        "From: {} <jan@ouders.example.nl>\r\nTo: service@example.org\r\nSubject: {}\r\n\
         Message-ID: <hostile.1@ouders.example.nl>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0100\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n\
         --XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Zie de bijlage.\r\n\
         --XX\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename*=utf-8''{file}\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--XX--\r\n",
        word(NAME),
        word(SUBJECT),
        b64(b"MZ fake executable"),
    )
    .into_bytes()
}

/// Every string in a JSON value.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

#[test]
fn control_characters_from_mail_are_shown_escaped_in_every_text_output() {
    let app = TestApp::spawn();
    app.deliver(&hostile_complaint());
    app.deliver(
        &Mail::new("afwezig@school.example.nl", "unused")
            .header("Subject", &word("Afwezig\u{1b}[2J\u{1b}[H"))
            .header("Auto-Submitted", "auto-replied")
            .build(),
    );
    app.run_once();
    let reference = app.references()[0].clone();

    // The hostile text is in the register as data (JSON escapes it): the text outputs below
    // have something to escape.
    let show = app.show(&reference);
    let mut texts = Vec::new();
    strings(&show, &mut texts);
    let all = texts.join("\n");
    // Subjects and display names lose their control characters at intake (parse.rs); an
    // attachment name keeps them as data, so the text outputs have something to escape. A
    // NUL is read as U+FFFD on every backend (parse::without_nul).
    assert!(
        all.contains('\u{FFFD}') && all.contains('\u{202e}') && !all.contains('\u{0}'),
        "the attachment name's control characters did not reach the register: {}",
        all.escape_debug()
    );

    let outputs = [
        vec!["list"],
        vec!["list", "--limit", "5"],
        vec!["show", reference.as_str()],
        vec!["unfiled", "list"],
        vec!["quarantine", "list", "--all"],
        vec!["outbox", "list"],
        vec!["due", "--at", "2026-12-31T12:00:00+01:00"],
    ];
    for args in &outputs {
        let out = app.cmd_ok(args);
        assert_clean(&args.join(" "), &out);
    }
    let text = app.cmd_ok(&["show", &reference]);
    assert!(
        text.contains("rekening\u{FFFD}\\u{202e}fdp.exe"),
        "the attachment name is shown escaped in:\n{text}"
    );

    // JSON: the subject as stored, without the control characters intake removed.
    let raw = app.cmd_ok(&["list", "--format", "json"]);
    let list: Value = serde_json::from_str(&raw).unwrap();
    let subject = list[0]["subject"].as_str().unwrap();
    assert!(subject.starts_with("Les"), "{subject}");
    assert!(!subject.chars().any(|c| c.is_control()), "{subject:?}");
}

#[test]
fn an_error_message_naming_typed_text_is_escaped_too() {
    let app = TestApp::spawn();
    app.run_once();
    let out = app.cmd(&["show", "KL-2026-0001\u{1b}[2J"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_clean("show (stderr)", &err);
    assert!(err.contains("\\u{1b}[2J"), "{err}");
}

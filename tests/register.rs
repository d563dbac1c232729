//! `klachtd register` (issue #11) through the real binary: CSV that Excel and LibreOffice open
//! with Dutch characters (read back by a CSV parser), JSON, and a workbook read back.

mod common;

use common::{Mail, RECEIVER, SentMail, TestApp, ts};
use serde_json::Value;

fn receive(app: &TestApp, mail: &[u8], at: &str) {
    app.deliver_eml(mail, ts(at));
    app.set_now(at);
    app.run_once();
}

fn last_to(app: &TestApp, to: &str, needle: &str) -> SentMail {
    app.sent_to(to)
        .into_iter()
        .rfind(|m| m.subject.contains(needle) || m.text.contains(needle))
        .unwrap_or_else(|| panic!("no mail to {to} with {needle:?}"))
}

/// A staff reply to our notice with `commands` on top.
fn staff_reply(app: &TestApp, notice: &SentMail, commands: &str, id: &str, at: &str) {
    let mail = Mail::new(RECEIVER, &format!("RE: {}", notice.subject))
        .header("To", &notice.reply_to)
        .header("In-Reply-To", &format!("<{}>", notice.message_id))
        .message_id(id)
        .body(commands);
    receive(app, &mail.build(), at);
}

/// Two complaints: one handled with a cause, a solution, an agreement and a measure (with
/// Dutch characters), one left open.
fn two_complaints() -> (TestApp, String, String) {
    let app = TestApp::spawn();
    receive(
        &app,
        &Mail::new("ouder@example.nl", "Lesuitval groep 5")
            .message_id("reg1@example.nl")
            .build(),
        "2026-11-23T10:00:00+01:00",
    );
    receive(
        &app,
        &Mail::new("andere@example.nl", "Zaal te koud")
            .message_id("reg2@example.nl")
            .build(),
        "2026-11-24T10:00:00+01:00",
    );
    let refs = app.references();
    let (a, b) = (refs[0].clone(), refs[1].clone());
    let notice = last_to(&app, RECEIVER, &a);
    staff_reply(
        &app,
        &notice,
        "#behandelaar ik\n#categorie Roostering\n#oorzaak ziekte docent, geen vervanger\n#aard structureel\n#overeenstemming ja\n#maatregel invalpool opzetten; ouders één week vooraf mailen\n#oplossing Wij halen de lessen in, óók op woensdag.",
        "reg-cmd1@example.org",
        "2026-11-25T10:00:00+01:00",
    );
    staff_reply(
        &app,
        &notice,
        "#klaar afhandeling",
        "reg-cmd2@example.org",
        "2026-11-26T10:00:00+01:00",
    );
    (app, a, b)
}

fn output(app: &TestApp, args: &[&str]) -> Vec<u8> {
    let out = app.cmd(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn csv_has_a_bom_semicolons_dutch_characters_and_every_field() {
    let (app, a, b) = two_complaints();
    let bytes = output(&app, &["register", "--format", "csv"]);
    assert!(
        bytes.starts_with("\u{feff}".as_bytes()),
        "UTF-8 byte-order mark"
    );
    let text = String::from_utf8(bytes[3..].to_vec()).expect("UTF-8");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {header:?}"))
    };
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let row_a = rows.iter().find(|r| r[col("nummer")] == a).unwrap();
    let row_b = rows.iter().find(|r| r[col("nummer")] == b).unwrap();
    // Seed 004's fields.
    assert_eq!(&row_a[col("behandelaar")], RECEIVER);
    assert_eq!(&row_a[col("oorzaak")], "ziekte docent, geen vervanger");
    assert_eq!(
        &row_a[col("oplossing")],
        "Wij halen de lessen in, óók op woensdag."
    );
    assert_eq!(&row_a[col("overeenstemming")], "ja");
    assert_eq!(&row_a[col("afgehandeld op")], "2026-11-26");
    assert_eq!(
        &row_a[col("maatregelen")],
        "invalpool opzetten; ouders één week vooraf mailen"
    );
    assert_eq!(&row_a[col("aard")], "structural");
    assert_eq!(&row_a[col("categorie")], "Roostering");
    assert_eq!(&row_a[col("ontvangen")], "2026-11-23");
    assert_eq!(&row_a[col("kanaal")], "email");
    // Handled on Thursday 26 November, three working days after Monday's receipt, within
    // mzo's 14 working days.
    assert_eq!(&row_a[col("afhandeling: werkdagen")], "3");
    assert_eq!(&row_a[col("afhandeling: op tijd")], "ja");
    assert_eq!(&row_a[col("afhandeling: uiterlijk")], "2026-12-11");
    assert_eq!(&row_b[col("status")], "new");
    assert_eq!(&row_b[col("afhandeling: gedaan")], "");
    // --from/--to select by the day of receipt.
    let only_b = output(
        &app,
        &[
            "register",
            "--format",
            "csv",
            "--from",
            "2026-11-24",
            "--to",
            "2026-11-24",
        ],
    );
    let text = String::from_utf8_lossy(&only_b[3..]).into_owned();
    assert!(text.contains(&b) && !text.contains(&a), "{text}");
}

#[test]
fn the_separator_is_configurable_for_an_english_locale() {
    let (app, a, _) = two_complaints();
    app.set_env("KLACHTD__REGISTER__CSV_SEPARATOR", ",");
    let bytes = output(&app, &["register", "--format", "csv"]);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b',')
        .from_reader(&bytes[3..]);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert!(rows.iter().any(|r| &r[0] == a.as_str()));
    // The cause holds a comma: quoted, so it is still one field.
    assert!(
        rows.iter()
            .any(|r| r.iter().any(|f| f == "ziekte docent, geen vervanger"))
    );
}

#[test]
fn json_rows_carry_each_milestone() {
    let (app, a, _) = two_complaints();
    let rows: Value =
        serde_json::from_slice(&output(&app, &["register", "--format", "json"])).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let row = rows.iter().find(|r| r["reference"] == a.as_str()).unwrap();
    assert_eq!(row["agreement"], "yes");
    assert_eq!(row["verdict"], "agree");
    let handled = row["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["milestone"] == "handled")
        .unwrap();
    assert_eq!(handled["met"], true);
    assert_eq!(handled["working_days"], 3);
    let only_new: Value = serde_json::from_slice(&output(
        &app,
        &["register", "--format", "json", "--status", "new"],
    ))
    .unwrap();
    assert_eq!(only_new.as_array().unwrap().len(), 1);
}

#[test]
fn the_workbook_reads_back_with_dates_and_numbers() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let (app, a, _) = two_complaints();
    let path = app.dir.path().join("register.xlsx");
    let path_text = path.display().to_string();
    output(
        &app,
        &["register", "--format", "xlsx", "--output", &path_text],
    );
    let mut book: Xlsx<_> = open_workbook(&path).expect("an xlsx");
    let sheet = book.worksheet_range("Klachtenregister").expect("the sheet");
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(rows.len(), 3, "header and two complaints");
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let row = rows
        .iter()
        .find(|r| r[0].to_string() == a)
        .expect("complaint a");
    assert_eq!(
        row[col("oplossing")].to_string(),
        "Wij halen de lessen in, óók op woensdag."
    );
    assert!(
        matches!(row[col("afhandeling: werkdagen")], Data::Float(f) if f == 3.0),
        "a number: {:?}",
        row[col("afhandeling: werkdagen")]
    );
    assert!(
        matches!(row[col("ontvangen")], Data::DateTime(_)),
        "a date: {:?}",
        row[col("ontvangen")]
    );
    // Without --output there is nowhere to put a workbook.
    assert_eq!(
        app.cmd(&["register", "--format", "xlsx"]).status.code(),
        Some(2)
    );
}

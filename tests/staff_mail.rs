//! Staff work by email (issue #10), through the real binary on the embedded default: commands
//! in a reply to one of our mails, all or none; the error reply; the note; `#antwoord` to the
//! complainant; every spoofing case refused with nothing changed; a colleague answering a
//! forwarded notice; the complainant's verdict by link and by text; Cc to the complainant.

mod common;

use common::{DIRECTOR, Mail, RECEIVER, SERVICE, SentMail, TestApp, ts};
use serde_json::Value;

const PARENT: &str = "ouder@example.nl";

fn receive(app: &TestApp, mail: &[u8], at: &str) {
    app.deliver_eml(mail, ts(at));
    app.set_now(at);
    app.run_once();
}

/// A complaint from PARENT, registered and announced to the receiver; its reference.
fn complaint(app: &TestApp) -> String {
    receive(
        app,
        &Mail::new(PARENT, "Les viel uit")
            .message_id("first@example.nl")
            .body("De les van dinsdag viel drie keer uit.")
            .build(),
        "2026-11-23T10:00:00+01:00",
    );
    app.references()[0].clone()
}

/// The newest mail klachtd sent to `to` whose subject contains `needle`.
fn last_to(app: &TestApp, to: &str, needle: &str) -> SentMail {
    app.sent_to(to)
        .into_iter()
        .rfind(|m| m.subject.contains(needle) || m.text.contains(needle))
        .unwrap_or_else(|| panic!("no mail to {to} with {needle:?}"))
}

/// A reply as Outlook writes one: new text on top, then the quoted notice with its header
/// block (where the footer's commands also are: they must never be applied).
fn outlook_reply(from: &str, to_notice: &SentMail, new_text: &str, id: &str) -> Mail {
    let quoted = format!(
        "{new_text}\n\n________________________________\nVan: Klachtenregistratie <{SERVICE}>\nVerzonden: maandag 23 november 2026 10:01\nAan: {from}\nOnderwerp: {}\n\n{}",
        to_notice.subject, to_notice.text
    );
    Mail::new(from, &format!("RE: {}", to_notice.subject))
        .header("To", &to_notice.reply_to)
        .header("In-Reply-To", &format!("<{}>", to_notice.message_id))
        .header("References", &format!("<{}>", to_notice.message_id))
        .message_id(id)
        .body(&quoted)
}

fn complaint_json(app: &TestApp, r: &str) -> Value {
    app.show(r)["complaint"].clone()
}

fn history(app: &TestApp, r: &str) -> Vec<Value> {
    app.show(r)["history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn has_event(app: &TestApp, r: &str, event: &str) -> Vec<Value> {
    history(app, r)
        .into_iter()
        .filter(|h| h["event"] == event)
        .collect()
}

#[test]
fn every_mail_we_send_about_a_complaint_is_answerable_with_its_own_token() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let ack = last_to(&app, PARENT, &r);
    let notice = last_to(&app, RECEIVER, &r);
    let lower = r.to_ascii_lowercase();
    assert!(
        ack.reply_to.starts_with(&format!("service+c-{lower}-")),
        "{}",
        ack.reply_to
    );
    assert!(notice.reply_to.starts_with(&format!("service+c-{lower}-")));
    assert_ne!(
        ack.reply_to, notice.reply_to,
        "bound to the recipient: the complainant's token is not the receiver's"
    );
    assert!(
        notice.message_id.starts_with("kt."),
        "{}",
        notice.message_id
    );
    // Every staff mail shows the most used commands and the personal intake address.
    assert!(notice.text.contains("#behandelaar ik"), "{}", notice.text);
    assert!(notice.text.contains("service+i-"), "{}", notice.text);
    assert!(
        !ack.text.contains("#behandelaar"),
        "not in mail to complainants"
    );
}

#[test]
fn a_staff_reply_with_commands_applies_them_all_and_is_confirmed() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    let reply = outlook_reply(
        RECEIVER,
        &notice,
        "#behandelaar ik\n#Categorie: Roostering\n#oorzaak ziekte docent\n#aard structureel\n#notitie Gebeld met de ouder.\n\nGroet, Coördinator",
        "cmd1@example.org",
    );
    receive(&app, &reply.build(), "2026-11-23T11:00:00+01:00");
    let c = complaint_json(&app, &r);
    assert_eq!(c["handler"], RECEIVER);
    assert_eq!(c["category"], "Roostering");
    assert_eq!(c["cause"], "ziekte docent");
    let applied = has_event(&app, &r, "commands_applied");
    assert_eq!(applied.len(), 1, "{:?}", history(&app, &r));
    assert_eq!(applied[0]["actor"], format!("staff:{RECEIVER}"));
    let notes = has_event(&app, &r, "note");
    assert!(notes.iter().any(
        |n| n["detail"] == "Gebeld met de ouder." && n["actor"] == format!("staff:{RECEIVER}")
    ));
    let confirmation = last_to(&app, RECEIVER, "uitgevoerd");
    assert!(
        confirmation
            .text
            .contains("#behandelaar coordinator@example.org"),
        "{}",
        confirmation.text
    );
    assert_eq!(
        confirmation.in_reply_to,
        vec!["cmd1@example.org".to_string()]
    );
    // The footer's commands in the quoted notice were not applied: severity is unchanged.
    assert_eq!(c["severity"], "normal");
}

#[test]
fn one_bad_command_changes_nothing_and_the_answer_names_the_line() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    let reply = outlook_reply(
        RECEIVER,
        &notice,
        "#categorie Roostering\n#ernst heel erg\n#behandelaar ik",
        "bad1@example.org",
    );
    receive(&app, &reply.build(), "2026-11-23T11:00:00+01:00");
    let c = complaint_json(&app, &r);
    assert!(c["category"].is_null(), "nothing applied: {c}");
    assert!(c["handler"].is_null());
    assert_eq!(has_event(&app, &r, "commands_refused").len(), 1);
    let error = last_to(&app, RECEIVER, "Niet uitgevoerd");
    assert!(error.text.contains("regel 2"), "{}", error.text);
    assert!(error.text.contains("heel erg"), "{}", error.text);
    assert!(
        error.text.contains("ernstig"),
        "says how to write it: {}",
        error.text
    );
}

#[test]
fn a_command_the_rules_refuse_rolls_back_the_commands_before_it() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    // Linking to a complaint that does not exist is refused by the rules (the line reads
    // fine), and the category on the line before it is not kept either.
    let reply = outlook_reply(
        RECEIVER,
        &notice,
        "#categorie Roostering\n#koppel KL-2026-0099",
        "bad2@example.org",
    );
    receive(&app, &reply.build(), "2026-11-23T11:00:00+01:00");
    let c = complaint_json(&app, &r);
    assert!(c["category"].is_null(), "{c}");
    let error = last_to(&app, RECEIVER, "Niet uitgevoerd");
    assert!(error.text.contains("regel 2"), "{}", error.text);
    assert!(
        app.sent_to(PARENT)
            .iter()
            .all(|m| !m.subject.contains("voorstel"))
    );
}

#[test]
fn a_reply_without_commands_is_an_internal_note() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    let reply = outlook_reply(
        RECEIVER,
        &notice,
        "Ik bel de ouder morgen even.",
        "note1@example.org",
    );
    receive(&app, &reply.build(), "2026-11-23T11:00:00+01:00");
    let notes = has_event(&app, &r, "note");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["detail"], "Ik bel de ouder morgen even.");
    // Nothing of it reaches the complainant.
    assert!(
        app.sent_to(PARENT)
            .iter()
            .all(|m| !m.text.contains("morgen even"))
    );
}

#[test]
fn antwoord_goes_to_the_complainant_in_their_thread_and_gives_the_first_reaction() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    let reply = outlook_reply(
        RECEIVER,
        &notice,
        "#antwoord\nBeste ouder,\n\nDe lessen worden vanaf volgende week ingehaald.\n\nMet vriendelijke groet,\nDe coördinator",
        "answer1@example.org",
    );
    receive(&app, &reply.build(), "2026-11-23T11:00:00+01:00");
    let answer = last_to(&app, PARENT, "ingehaald");
    assert_eq!(answer.from, SERVICE);
    assert_eq!(answer.in_reply_to, vec!["first@example.nl".to_string()]);
    assert!(
        answer
            .text
            .contains("De lessen worden vanaf volgende week ingehaald.")
    );
    assert!(!answer.text.contains("#antwoord"));
    assert!(answer.reply_to.starts_with("service+c-"), "answerable too");
    let explain = app.json(&["show", &r, "--format", "json"]);
    let done: Vec<&Value> = explain["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["event"] == "milestone")
        .collect();
    assert!(
        done.iter().any(|h| h["detail"]
            .as_str()
            .unwrap_or("")
            .contains("first_reaction")),
        "{done:?}"
    );
}

#[test]
fn help_is_answered_with_the_command_reference_and_the_intake_address() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    receive(
        &app,
        &outlook_reply(RECEIVER, &notice, "#help", "help1@example.org").build(),
        "2026-11-23T11:00:00+01:00",
    );
    let help = last_to(&app, RECEIVER, "Opdrachten voor medewerkers");
    assert!(help.text.contains("#verleng"), "{}", help.text);
    assert!(help.text.contains("service+i-"), "{}", help.text);
}

/// The register's fields of a complaint, without its message count (a refused mail is kept).
fn fields(app: &TestApp, r: &str) -> Value {
    let mut c = complaint_json(app, r);
    if let Some(o) = c.as_object_mut() {
        o.remove("messages");
    }
    c
}

fn assert_refused(app: &TestApp, r: &str, before: &Value) {
    let after = fields(app, r);
    assert_eq!(&after, before, "nothing changed");
    assert!(
        has_event(app, r, "commands_applied").is_empty(),
        "{:?}",
        history(app, r)
    );
    assert!(!has_event(app, r, "security_refused").is_empty());
}

#[test]
fn a_forged_staff_from_without_a_token_is_never_a_command_and_the_receiver_is_told_once() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let before = fields(&app, &r);
    for (i, id) in ["forged1@evil.example", "forged2@evil.example"]
        .iter()
        .enumerate()
    {
        let forged = Mail::new(DIRECTOR, &format!("Re: [{r}] Les viel uit"))
            .message_id(id)
            .body(&format!("#status gesloten\n#behandelaar ik\n\nPoging {i}"));
        receive(&app, &forged.build(), "2026-11-23T11:00:00+01:00");
    }
    assert_refused(&app, &r, &before);
    let told: Vec<Value> = app
        .outbox()
        .into_iter()
        .filter(|o| o["template"] == "unverified_staff_mail")
        .collect();
    assert_eq!(told.len(), 1, "once per complaint: {told:?}");
    assert_eq!(told[0]["recipients"], RECEIVER);
    // The mails are kept on the complaint.
    assert!(app.show(&r)["messages"].as_array().unwrap().len() >= 3);
    assert!(
        app.sent_to(DIRECTOR)
            .iter()
            .all(|m| !m.subject.contains("uitgevoerd"))
    );
}

#[test]
fn the_complainants_own_token_does_not_make_a_staff_command() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let ack = last_to(&app, PARENT, &r);
    let before = fields(&app, &r);
    let forged = Mail::new(RECEIVER, &format!("Re: {}", ack.subject))
        .header("To", &ack.reply_to)
        .header("In-Reply-To", &format!("<{}>", ack.message_id))
        .message_id("own-token@evil.example")
        .body("#status gesloten");
    receive(&app, &forged.build(), "2026-11-23T11:00:00+01:00");
    assert_refused(&app, &r, &before);
    let reason = has_event(&app, &r, "security_refused")[0]["detail"].clone();
    assert!(reason.as_str().unwrap().contains("complainant"), "{reason}");
}

#[test]
fn an_edited_token_is_refused() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    let before = fields(&app, &r);
    // One hex digit of the MAC changed; no In-Reply-To to fall back on.
    let mut edited: Vec<char> = notice.reply_to.chars().collect();
    let at = notice.reply_to.find('@').unwrap();
    edited[at - 1] = if edited[at - 1] == '0' { '1' } else { '0' };
    let edited: String = edited.into_iter().collect();
    let mail = Mail::new(RECEIVER, &format!("RE: {}", notice.subject))
        .header("To", &edited)
        .message_id("edited@example.org")
        .body("#status gesloten");
    receive(&app, &mail.build(), "2026-11-23T11:00:00+01:00");
    assert_refused(&app, &r, &before);
}

#[test]
fn a_token_of_another_complaint_or_a_reply_moved_to_another_complaint_is_refused() {
    let app = TestApp::spawn();
    let a = complaint(&app);
    receive(
        &app,
        &Mail::new("ander@example.nl", "Rooster klopt niet")
            .message_id("second@example.nl")
            .build(),
        "2026-11-23T10:30:00+01:00",
    );
    let b = app
        .references()
        .into_iter()
        .find(|x| *x != a)
        .expect("a second complaint");
    let notice_a = last_to(&app, RECEIVER, &a);
    let before_a = fields(&app, &a);
    let before_b = fields(&app, &b);
    // The token of A, the subject of B: a staff reply replayed onto another complaint.
    let moved = outlook_reply(RECEIVER, &notice_a, "#status gesloten", "moved@example.org")
        .header("Subject", &format!("RE: [{b}] Rooster klopt niet"));
    receive(&app, &moved.build(), "2026-11-23T11:00:00+01:00");
    assert_eq!(fields(&app, &a), before_a);
    assert_eq!(fields(&app, &b), before_b);
    assert!(has_event(&app, &a, "commands_applied").is_empty());
    assert!(has_event(&app, &b, "commands_applied").is_empty());
    let refused = [
        has_event(&app, &a, "security_refused"),
        has_event(&app, &b, "security_refused"),
    ]
    .concat();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0]["detail"]
            .as_str()
            .unwrap()
            .contains("another complaint"),
        "{refused:?}"
    );
}

#[test]
fn a_colleague_answering_a_forwarded_notice_is_accepted_as_themselves() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    // The receiver forwarded the notice to the director, who answers it from their own
    // staff address: the token (issued to the receiver) is answered by the director.
    let reply = outlook_reply(
        DIRECTOR,
        &notice,
        "#behandelaar ik",
        "colleague@example.org",
    );
    receive(&app, &reply.build(), "2026-11-23T11:00:00+01:00");
    assert_eq!(complaint_json(&app, &r)["handler"], DIRECTOR);
    assert_eq!(
        has_event(&app, &r, "commands_applied")[0]["actor"],
        format!("staff:{DIRECTOR}")
    );
}

#[test]
fn a_reply_that_kept_only_in_reply_to_is_recognised_by_our_message_id() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    // Some clients answer the From address: the token is only in the Message-ID.
    let reply = outlook_reply(
        RECEIVER,
        &notice,
        "#categorie Vervoer",
        "mid-only@example.org",
    )
    .header("To", SERVICE);
    receive(&app, &reply.build(), "2026-11-23T11:00:00+01:00");
    assert_eq!(complaint_json(&app, &r)["category"], "Vervoer");
}

#[test]
fn staff_answering_the_complainant_directly_with_us_in_cc_is_recorded() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    // Authenticated: the References keep our tokened Message-ID of the notice.
    let direct = Mail::new(RECEIVER, &format!("Re: [{r}] Les viel uit"))
        .header("To", PARENT)
        .header("Cc", SERVICE)
        .header("In-Reply-To", "<first@example.nl>")
        .header(
            "References",
            &format!("<first@example.nl> <{}>", notice.message_id),
        )
        .message_id("direct1@example.org")
        .body("Beste ouder, ik bel u morgen. Groet, de coördinator");
    receive(&app, &direct.build(), "2026-11-23T11:00:00+01:00");
    assert_eq!(has_event(&app, &r, "staff_answered").len(), 1);
    assert!(has_event(&app, &r, "security_refused").is_empty());
    // Without a token: recorded, not counted, the receiver told.
    let app2 = TestApp::spawn();
    let r2 = complaint(&app2);
    let unverified = Mail::new(DIRECTOR, &format!("Re: [{r2}] Les viel uit"))
        .header("To", PARENT)
        .header("Cc", SERVICE)
        .message_id("direct2@example.org")
        .body("Beste ouder, ik bel u morgen.");
    receive(&app2, &unverified.build(), "2026-11-23T11:00:00+01:00");
    assert!(has_event(&app2, &r2, "staff_answered").is_empty());
    assert_eq!(has_event(&app2, &r2, "security_refused").len(), 1);
}

/// gelukwerkt (seed 003) has the verdict loop: a solution proposed, the complainant decides.
fn gelukwerkt() -> TestApp {
    TestApp::spawn_with_config(|c| {
        *c = c.replace("preset = \"mzo\"", "preset = \"gelukwerkt\"");
    })
}

fn propose_solution(app: &TestApp, r: &str) {
    let notice = last_to(app, "klachtenfunctionaris@example.org", r);
    let reply = outlook_reply(
        "klachtenfunctionaris@example.org",
        &notice,
        "#oplossing Wij halen de gemiste lessen in.\n#klaar oplossing",
        "solution@example.org",
    );
    receive(app, &reply.build(), "2026-11-24T10:00:00+01:00");
    assert_eq!(
        has_event(app, r, "commands_applied").len(),
        1,
        "{:?}",
        history(app, r)
    );
}

#[test]
fn a_verdict_by_mailto_link_both_ways() {
    for (agree, expect) in [(true, "agrees"), (false, "does not agree")] {
        let app = gelukwerkt();
        let r = complaint(&app);
        propose_solution(&app, &r);
        let solution = last_to(&app, PARENT, "gemiste lessen");
        let (line_word, address) = if agree {
            ("akkoord: ", "")
        } else {
            ("niet akkoord: ", "")
        };
        let _ = address;
        let link = solution
            .text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("- {line_word}")))
            .and_then(|l| l.split(": ").nth(1))
            .unwrap_or_else(|| panic!("verdict address in: {}", solution.text))
            .trim()
            .to_string();
        assert!(link.contains("+v-"), "{link}");
        // An empty mail to the link's address, as a mail client makes from the mailto.
        let answer = Mail::new(PARENT, &format!("Akkoord [{r}]"))
            .header("To", &link)
            .message_id(&format!("verdict-{agree}@example.nl"))
            .body("");
        receive(&app, &answer.build(), "2026-11-25T10:00:00+01:00");
        let verdicts = has_event(&app, &r, "verdict");
        assert_eq!(verdicts.len(), 1, "{:?}", history(&app, &r));
        assert!(
            verdicts[0]["detail"].as_str().unwrap().contains(expect),
            "{verdicts:?}"
        );
        if !agree {
            // Not agreeing is an escalation, and a new round for another proposal (003).
            assert!(
                app.outbox().iter().any(|o| o["template"] == "escalation"),
                "{:?}",
                app.outbox()
            );
        }
    }
}

#[test]
fn a_verdict_in_words_and_an_unclear_answer_the_handler_decides() {
    let app = gelukwerkt();
    let r = complaint(&app);
    propose_solution(&app, &r);
    let solution = last_to(&app, PARENT, "gemiste lessen");
    let answer = Mail::new(PARENT, &format!("Re: {}", solution.subject))
        .header("In-Reply-To", &format!("<{}>", solution.message_id))
        .message_id("words1@example.nl")
        .body("Misschien, ik weet het nog niet.\n\nOp 24 nov. 2026 schreef klachtd:\n> voorstel");
    receive(&app, &answer.build(), "2026-11-25T10:00:00+01:00");
    assert!(has_event(&app, &r, "verdict").is_empty(), "never guessed");
    assert_eq!(has_event(&app, &r, "verdict_unclear").len(), 1);
    assert!(
        app.outbox()
            .iter()
            .any(|o| o["template"] == "verdict_unclear"),
    );
    let clear = Mail::new(PARENT, &format!("Re: {}", solution.subject))
        .header("In-Reply-To", &format!("<{}>", solution.message_id))
        .message_id("words2@example.nl")
        .body("Akkoord, dank u wel.\n\nOp 24 nov. 2026 schreef klachtd:\n> voorstel");
    receive(&app, &clear.build(), "2026-11-25T11:00:00+01:00");
    let verdicts = has_event(&app, &r, "verdict");
    assert_eq!(verdicts.len(), 1, "{:?}", history(&app, &r));
    assert!(
        verdicts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("agrees (by text)")
    );
}

// ---- intake on behalf ------------------------------------------------------------------------

/// The receiver's personal intake address, from the footer of a mail klachtd sent them.
fn intake_address(app: &TestApp) -> String {
    let notice = app
        .sent_to(RECEIVER)
        .into_iter()
        .next()
        .expect("a staff mail to the receiver");
    notice
        .text
        .split_whitespace()
        .find(|w| w.starts_with("service+i-"))
        .unwrap_or_else(|| panic!("no intake address in: {}", notice.text))
        .trim_end_matches(['.', ',', ')'])
        .to_string()
}

fn complaint_by(app: &TestApp, complainant: &str) -> Option<Value> {
    app.list()
        .into_iter()
        .find(|c| c["complainant"] == complainant)
}

#[test]
fn a_phone_complaint_entered_with_nieuw_is_registered_for_the_caller_and_acknowledged() {
    let app = TestApp::spawn();
    complaint(&app);
    let intake = intake_address(&app);
    let mail = Mail::new(RECEIVER, "Telefoontje meneer Jansen")
        .header("To", &intake)
        .message_id("phone1@example.org")
        .body("#nieuw\n#naam Jan Jansen\n#email jan.jansen@example.nl\n#kanaal telefoon\n\nMeneer Jansen belde: de bus naar de muziekles kwam maandag niet.\n\n-- \nCoördinator");
    receive(&app, &mail.build(), "2026-11-24T10:00:00+01:00");
    let c = complaint_by(&app, "jan.jansen@example.nl").expect("registered for the caller");
    assert_eq!(c["channel"], "phone");
    assert_eq!(c["received_by"], RECEIVER);
    assert_eq!(c["complainant_name"], "Jan Jansen");
    let r = c["reference"].as_str().unwrap().to_string();
    let show = app.show(&r);
    assert!(
        show["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["event"] == "registered" && h["actor"] == format!("staff:{RECEIVER}")),
        "{show}"
    );
    let ack = last_to(&app, "jan.jansen@example.nl", &r);
    assert!(
        ack.text.contains("Jan Jansen") || ack.text.contains("Beste"),
        "{}",
        ack.text
    );
    let confirmation = last_to(&app, RECEIVER, "geregistreerd als");
    assert!(confirmation.text.contains(&r), "{}", confirmation.text);
}

#[test]
fn a_forwarded_complaint_takes_the_original_sender_date_and_text() {
    let app = TestApp::spawn();
    complaint(&app);
    let intake = intake_address(&app);
    let raw = std::fs::read_to_string(
        common::repo().join("tests/fixtures/forwards/outlook-desktop-nl-plain.eml"),
    )
    .expect("fixture");
    let (head, body) = raw
        .split_once("\n\n")
        .or_else(|| raw.split_once("\r\n\r\n"))
        .expect("header block");
    let head: String = head
        .lines()
        .map(|l| {
            if l.starts_with("From:") || l.starts_with("Return-Path:") {
                format!("From: {RECEIVER}")
            } else if l.starts_with("To:") {
                format!("To: {intake}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mail = format!("{head}\n\n{body}");
    receive(&app, mail.as_bytes(), "2026-12-02T09:00:00+01:00");
    let c = complaint_by(&app, "jannie.devries@example.nl")
        .unwrap_or_else(|| panic!("{:?}", app.list()));
    assert_eq!(c["subject"], "Lantaarnpaal Beukenlaan al een maand kapot");
    assert_eq!(c["complainant_name"], "Vries, Jannie de");
    assert_eq!(c["received_by"], RECEIVER);
    assert_eq!(c["channel"], "email");
    // Deadlines count from the original: Tuesday 1 December 21:14 Amsterdam.
    assert_eq!(c["received_at"], "2026-12-01T20:14:00Z");
    let ack = last_to(
        &app,
        "jannie.devries@example.nl",
        c["reference"].as_str().unwrap(),
    );
    assert!(!ack.text.contains("Oorspronkelijk bericht"));
}

#[test]
fn nieuw_without_the_personal_intake_address_registers_nothing() {
    let app = TestApp::spawn();
    complaint(&app);
    let before = app.list().len();
    // A forged staff From to the plain service address.
    let mail = Mail::new(RECEIVER, "Klacht namens iemand")
        .message_id("forged-intake@evil.example")
        .body("#nieuw\n#email slachtoffer@example.nl\n\nStuur deze persoon maar een bevestiging.");
    receive(&app, &mail.build(), "2026-11-24T10:00:00+01:00");
    assert_eq!(app.list().len(), before, "nothing registered");
    assert!(
        app.sent_to("slachtoffer@example.nl").is_empty(),
        "no mail to the named address"
    );
    let unfiled = app.unfiled();
    assert!(
        unfiled.iter().any(|u| u["reason"]
            .as_str()
            .unwrap_or("")
            .contains("personal intake address")),
        "{unfiled:?}"
    );
}

#[test]
fn nieuw_without_an_address_is_registered_and_nothing_is_mailed_to_the_complainant() {
    let app = TestApp::spawn();
    complaint(&app);
    let intake = intake_address(&app);
    let mail = Mail::new(RECEIVER, "Brief van mevrouw Bakker")
        .header("To", &intake)
        .message_id("letter1@example.org")
        .body("#nieuw\n#naam mevrouw Bakker\n#kanaal brief\n\nMevrouw Bakker schrijft dat de zaal te koud was.");
    receive(&app, &mail.build(), "2026-11-24T10:00:00+01:00");
    let c = app
        .list()
        .into_iter()
        .find(|c| c["channel"] == "letter")
        .unwrap_or_else(|| panic!("{:?}", app.list()));
    assert_eq!(c["complainant"], "");
    assert_eq!(c["complainant_name"], "mevrouw Bakker");
    let confirmation = last_to(&app, RECEIVER, "geregistreerd als");
    assert!(
        confirmation.text.contains("geen e-mailadres"),
        "{}",
        confirmation.text
    );
}

#[test]
fn a_bad_nieuw_is_answered_and_registers_nothing() {
    let app = TestApp::spawn();
    complaint(&app);
    let intake = intake_address(&app);
    let before = app.list().len();
    let mail = Mail::new(RECEIVER, "Klacht per fax")
        .header("To", &intake)
        .message_id("fax1@example.org")
        .body("#nieuw\n#kanaal fax\n\nIemand faxte een klacht.");
    receive(&app, &mail.build(), "2026-11-24T10:00:00+01:00");
    assert_eq!(app.list().len(), before);
    let error = last_to(&app, RECEIVER, "Niet uitgevoerd");
    assert!(error.text.contains("regel 2"), "{}", error.text);
}

// ---- every client format ---------------------------------------------------------------------

/// `raw` with the named headers replaced (folded continuation lines dropped with them).
fn with_headers(raw: &str, replace: &[(&str, String)]) -> String {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.replace("\r\n", "\n"), b.to_string()))
        .or_else(|| {
            raw.split_once("\n\n")
                .map(|(h, b)| (h.to_string(), b.to_string()))
        })
        .expect("a header block");
    let mut out: Vec<String> = Vec::new();
    let mut skipping = false;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if !skipping {
                out.push(line.to_string());
            }
            continue;
        }
        let name = line.split(':').next().unwrap_or("").trim();
        skipping = replace.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if !skipping {
            out.push(line.to_string());
        }
    }
    for (n, v) in replace {
        out.push(format!("{n}: {v}"));
    }
    let crlf = raw.contains("\r\n");
    let head = out.join(if crlf { "\r\n" } else { "\n" });
    format!("{head}{}{body}", if crlf { "\r\n\r\n" } else { "\n\n" })
}

/// Each reply of the corpus (tests/fixtures/replies: Outlook desktop, web, Mac, Android, iOS;
/// Gmail web and Android; Apple Mail, iOS Mail; Thunderbird; Windows Mail; Dutch and English;
/// plain text and HTML), sent by the receiver as an answer to our notice: its new text, and
/// only that, becomes the note; one with commands on top is applied or refused as a whole.
#[test]
fn a_reply_from_every_client_format_is_read_from_its_new_text_only() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    let dir = common::repo().join("tests/fixtures/replies");
    let mut names: Vec<String> = common::file_names(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "{names:?}");
    let mut seen = history(&app, &r).len();
    for (i, name) in names.iter().enumerate() {
        let raw = String::from_utf8_lossy(&std::fs::read(dir.join(name)).unwrap()).into_owned();
        let expected =
            std::fs::read_to_string(dir.join(name.replace(".eml", ".expected.txt"))).unwrap();
        let expected: String = expected
            .trim()
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n");
        let mail = with_headers(
            &raw,
            &[
                ("From", RECEIVER.to_string()),
                ("Return-Path", format!("<{RECEIVER}>")),
                ("To", notice.reply_to.clone()),
                ("Subject", format!("RE: {}", notice.subject)),
                ("In-Reply-To", format!("<{}>", notice.message_id)),
                ("References", format!("<{}>", notice.message_id)),
                ("Message-ID", format!("<client-{i}@example.org>")),
            ],
        );
        receive(&app, mail.as_bytes(), "2026-11-23T11:00:00+01:00");
        let all = history(&app, &r);
        let new: Vec<&Value> = all[seen..]
            .iter()
            .filter(|h| {
                ["note", "commands_applied", "commands_refused"]
                    .contains(&h["event"].as_str().unwrap_or(""))
            })
            .collect();
        seen = all.len();
        assert_eq!(new.len(), 1, "{name}: {new:?}");
        if expected.starts_with('#') {
            assert_ne!(new[0]["event"], "note", "{name}: commands are not a note");
        } else if expected.is_empty() {
            panic!("{name}: a fixture without new text");
        } else {
            assert_eq!(new[0]["event"], "note", "{name}");
            assert_eq!(new[0]["detail"].as_str().unwrap(), expected, "{name}");
        }
        assert_eq!(new[0]["actor"], format!("staff:{RECEIVER}"), "{name}");
    }
}

// ---- every command ---------------------------------------------------------------------------

#[test]
fn every_command_does_what_it_says() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    receive(
        &app,
        &Mail::new("ander@example.nl", "Ook een klacht")
            .message_id("other@example.nl")
            .build(),
        "2026-11-23T10:05:00+01:00",
    );
    let other = app
        .references()
        .into_iter()
        .find(|x| *x != r)
        .expect("second complaint");
    let notice = last_to(&app, RECEIVER, &r);
    let mut n = 0;
    let mut send = |body: &str| {
        n += 1;
        let mail = outlook_reply(RECEIVER, &notice, body, &format!("every-{n}@example.org"));
        // A minute apart: the history is in order.
        let at = format!("2026-11-23T11:{n:02}:00+01:00");
        receive(&app, &mail.build(), &at);
    };

    assert_eq!(complaint_json(&app, &r)["status"], "new");
    send(
        "#soort klacht\n#ernst ernstig\n#aard incident\n#overeenstemming ja\n#oplossing\nWe halen de gemiste lessen in.\nDe docent belt u.",
    );
    let c = complaint_json(&app, &r);
    assert_eq!(c["kind"], "complaint");
    assert_eq!(c["severity"], "serious");
    assert_eq!(c["incident_kind"], "incident");
    assert_eq!(c["agreement"], "yes");
    assert_eq!(
        c["solution"],
        "We halen de gemiste lessen in.\nDe docent belt u."
    );
    assert!(
        app.outbox()
            .iter()
            .any(|o| o["template"] == "serious_alert" && o["recipients"] == DIRECTOR),
        "a complaint made serious alerts the director: {:?}",
        app.outbox()
    );

    send("#verleng 2 weken: de docent is ziek");
    assert_eq!(complaint_json(&app, &r)["extended_weeks"], 2);
    let delay = last_to(&app, PARENT, "meer tijd");
    assert!(delay.to.contains(&PARENT.to_string()));
    assert!(
        has_event(&app, &r, "set").iter().any(|h| h["detail"]
            .as_str()
            .unwrap_or("")
            .contains("de docent is ziek")),
        "the reason is in the history: {:?}",
        history(&app, &r)
    );

    send(&format!("#koppel {other}"));
    assert_eq!(
        complaint_json(&app, &r)["related_reference"],
        other.as_str()
    );

    send("#klaar afhandeling");
    assert!(
        has_event(&app, &r, "milestone")
            .iter()
            .any(|h| h["detail"].as_str().unwrap_or("").contains("handled")),
        "{:?}",
        history(&app, &r)
    );

    assert_eq!(complaint_json(&app, &r)["status"], "resolved");
    send("#status gesloten");
    assert_eq!(complaint_json(&app, &r)["status"], "closed");

    // A closed complaint takes no changes, only a reopen (with its reason) or a note.
    send("#categorie Vervoer");
    assert!(complaint_json(&app, &r)["category"].is_null());
    let refused = last_to(&app, RECEIVER, "Niet uitgevoerd");
    assert!(refused.text.contains("heropen"), "{}", refused.text);

    send("#heropen De ouder belde opnieuw: de lessen zijn niet ingehaald.");
    assert_eq!(complaint_json(&app, &r)["status"], "reopened");
    assert_eq!(complaint_json(&app, &r)["stored_status"], "open");
    assert!(has_event(&app, &r, "reopened").iter().any(|h| {
        h["detail"]
            .as_str()
            .unwrap_or("")
            .contains("niet ingehaald")
    }));
}

#[test]
fn a_satisfaction_answer_to_the_follow_up_is_recorded() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    // mzo asks three weeks after receipt.
    app.set_now("2026-12-15T10:00:00+01:00");
    app.cmd_ok(&["tick", "--at", "2026-12-15T10:00:00+01:00"]);
    app.run_once();
    let survey = last_to(&app, PARENT, "verholpen");
    let answer = Mail::new(PARENT, &format!("Re: {}", survey.subject))
        .header("To", &survey.reply_to)
        .header("In-Reply-To", &format!("<{}>", survey.message_id))
        .message_id("score@example.nl")
        .body("4 van de 5, het is nu goed geregeld.\n\nOp 14 dec. 2026 schreef Muziekcentrum:\n> Bent u tevreden?");
    receive(&app, &answer.build(), "2026-12-16T10:00:00+01:00");
    assert_eq!(complaint_json(&app, &r)["satisfaction"], "4");
    assert_eq!(has_event(&app, &r, "satisfaction").len(), 1);
}

// ---- keys, DMARC, the digest -----------------------------------------------------------------

#[test]
fn tokens_of_a_rotated_key_are_accepted_until_the_configured_day() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    app.set_env("KLACHTD__ORGANISATION__SECRET", "a-new-secret");
    app.set_env(
        "KLACHTD__ORGANISATION__PREVIOUS_SECRETS",
        &format!("[\"{}\"]", common::SECRET),
    );
    app.set_env(
        "KLACHTD__ORGANISATION__PREVIOUS_SECRETS_UNTIL",
        "2026-12-31",
    );
    let reply = outlook_reply(
        RECEIVER,
        &notice,
        "#categorie Roostering",
        "rot1@example.org",
    );
    receive(&app, &reply.build(), "2026-12-31T16:00:00+01:00");
    assert_eq!(complaint_json(&app, &r)["category"], "Roostering");
    // After that day the old key proves nothing.
    let late = outlook_reply(RECEIVER, &notice, "#oorzaak te laat", "rot2@example.org");
    receive(&app, &late.build(), "2027-01-01T10:00:00+01:00");
    assert!(complaint_json(&app, &r)["cause"].is_null());
    assert_eq!(has_event(&app, &r, "security_refused").len(), 1);
    // Without the day the old keys are a configuration problem, not accepted forever.
    app.set_env("KLACHTD__ORGANISATION__PREVIOUS_SECRETS_UNTIL", "");
    let out = app.cmd(&["check"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn require_dmarc_pass_also_needs_our_servers_dmarc_verdict() {
    let app = TestApp::spawn();
    app.set_env("KLACHTD__INTAKE__TRUSTED_AUTHSERV_ID", "mx.example.org");
    app.set_env("KLACHTD__STAFF__REQUIRE_DMARC_PASS", "true");
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    let without = outlook_reply(RECEIVER, &notice, "#categorie Zonder", "dm1@example.org");
    receive(&app, &without.build(), "2026-11-23T11:00:00+01:00");
    assert!(complaint_json(&app, &r)["category"].is_null());
    let reason = has_event(&app, &r, "security_refused")[0]["detail"].clone();
    assert!(reason.as_str().unwrap().contains("DMARC"), "{reason}");
    // A pass written by another server is not ours.
    let theirs = outlook_reply(RECEIVER, &notice, "#categorie Vals", "dm2@example.org").header(
        "Authentication-Results",
        "evil.example; dmarc=pass header.from=example.org",
    );
    receive(&app, &theirs.build(), "2026-11-23T11:05:00+01:00");
    assert!(complaint_json(&app, &r)["category"].is_null());
    let ours = outlook_reply(RECEIVER, &notice, "#categorie Met", "dm3@example.org").header(
        "Authentication-Results",
        "mx.example.org; spf=pass smtp.mailfrom=example.org; dmarc=pass (p=reject) header.from=example.org",
    );
    receive(&app, &ours.build(), "2026-11-23T11:10:00+01:00");
    assert_eq!(complaint_json(&app, &r)["category"], "Met");
}

#[test]
fn a_digest_line_is_answered_through_its_own_link_and_a_reply_to_the_digest_registers_nothing() {
    let app = TestApp::spawn();
    let r = complaint(&app);
    // Thursday: the first reaction (Monday 30 November) is within the digest's 3 working days.
    app.set_now("2026-11-26T08:30:00+01:00");
    app.cmd_ok(&["tick", "--at", "2026-11-26T08:30:00+01:00"]);
    let digest = last_to(&app, RECEIVER, "Overzicht");
    let line = digest
        .text
        .lines()
        .find(|l| l.contains("antwoord aan"))
        .unwrap_or_else(|| panic!("no reply address in the digest: {}", digest.text));
    let address = line.rsplit(' ').next().unwrap().trim().to_string();
    assert!(
        address.contains(&format!("+c-{}", r.to_ascii_lowercase())),
        "{address}"
    );
    let answer = Mail::new(RECEIVER, &format!("Re: [{r}]"))
        .header("To", &address)
        .message_id("digest-line@example.org")
        .body("#categorie Uit het overzicht");
    receive(&app, &answer.build(), "2026-11-26T09:00:00+01:00");
    assert_eq!(complaint_json(&app, &r)["category"], "Uit het overzicht");
    let before = app.list().len();
    let to_digest = Mail::new(RECEIVER, &format!("RE: {}", digest.subject))
        .header("In-Reply-To", &format!("<{}>", digest.message_id))
        .message_id("digest-reply@example.org")
        .body("#categorie Welke?");
    receive(&app, &to_digest.build(), "2026-11-26T09:05:00+01:00");
    assert_eq!(
        app.list().len(),
        before,
        "no complaint from a reply to the digest"
    );
    let answer = last_to(&app, RECEIVER, "Niet uitgevoerd");
    assert!(answer.text.contains("overzicht"), "{}", answer.text);
}

/// A service address too long for its tokened addresses: RFC 5321 4.5.3.1.1 allows 64 octets
/// in a local part, and a verdict address adds `+v-kl-2026-0001-a-` and 22 hex digits (40
/// octets) to the service's. Mail would go out without tokened Reply-To and verdict links:
/// `klachtd check` (and every start) refuses it. Found by the mail stack e2e tests, whose
/// service addresses were 25 octets.
#[test]
fn check_reports_a_service_address_too_long_for_its_tokened_addresses() {
    // 30 octets: the reply address's local part is 68, the verdict address's 70.
    let long = "klachtenregistratie-zuidoost-x@example.org";
    let app = TestApp::spawn_with_config(|c| {
        *c = c.replace(&format!("from = {SERVICE:?}"), &format!("from = {long:?}"));
    });
    assert!(
        std::fs::read_to_string(&app.config_path)
            .unwrap()
            .contains(long),
        "the config names the long address"
    );
    let out = app.cmd(&["check"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("outgoing.from"), "{said}");
    assert!(said.contains("64"), "says the limit: {said}");
}

#[test]
fn not_agreeing_in_words_starts_another_round_and_alerts() {
    let app = gelukwerkt();
    let r = complaint(&app);
    propose_solution(&app, &r);
    let solution = last_to(&app, PARENT, "gemiste lessen");
    let answer = Mail::new(PARENT, &format!("Re: {}", solution.subject))
        .header("In-Reply-To", &format!("<{}>", solution.message_id))
        .message_id("words-no@example.nl")
        .body("Niet akkoord. Ik wil dat de docent vervangen wordt.\n\nOp 24 nov. 2026 schreef klachtd:\n> voorstel");
    receive(&app, &answer.build(), "2026-11-25T10:00:00+01:00");
    let verdicts = has_event(&app, &r, "verdict");
    assert_eq!(verdicts.len(), 1, "{:?}", history(&app, &r));
    assert!(
        verdicts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("does not agree (by text)")
    );
    assert_eq!(complaint_json(&app, &r)["agreement"], "no");
    // Seed 003: another proposal; the escalation roles hear at once.
    assert!(app.outbox().iter().any(|o| o["template"] == "escalation"));
    assert_eq!(complaint_json(&app, &r)["status"], "reopened");
}

#[test]
fn not_agreeing_points_the_complainant_to_the_appeal_body_the_procedure_names() {
    let app = TestApp::spawn_with_config(|c| {
        *c = c.replace("preset = \"mzo\"", "preset = \"leefstijlwijzer\"");
    });
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    let reply = outlook_reply(
        RECEIVER,
        &notice,
        "#oplossing Wij halen de gemiste lessen in.\n#klaar oplossing",
        "lsw-solution@example.org",
    );
    receive(&app, &reply.build(), "2026-11-24T10:00:00+01:00");
    let solution = last_to(&app, PARENT, "gemiste lessen");
    let disagree = solution
        .text
        .lines()
        .find(|l| l.trim_start().starts_with("- niet akkoord: "))
        .and_then(|l| l.split(": ").nth(1))
        .unwrap_or_else(|| panic!("{}", solution.text))
        .trim()
        .to_string();
    let answer = Mail::new(PARENT, &format!("Niet akkoord [{r}]"))
        .header("To", &disagree)
        .message_id("lsw-no@example.nl")
        .body("");
    receive(&app, &answer.build(), "2026-11-25T10:00:00+01:00");
    assert_eq!(complaint_json(&app, &r)["agreement"], "no");
    let appeal = last_to(&app, PARENT, "niet eens");
    assert!(appeal.text.contains("examencommissie"), "{}", appeal.text);
    assert!(app.outbox().iter().any(|o| o["template"] == "escalation"));
}

#[test]
fn a_complaint_forwarded_as_an_attachment_is_registered_for_its_original_sender() {
    let app = TestApp::spawn();
    complaint(&app);
    let intake = intake_address(&app);
    for name in ["outlook-desktop-nl-attachment", "thunderbird-en-attachment"] {
        let dir = common::repo().join("tests/fixtures/forwards");
        let raw = String::from_utf8_lossy(&std::fs::read(dir.join(format!("{name}.eml"))).unwrap())
            .into_owned();
        let expected = std::fs::read_to_string(dir.join(format!("{name}.expected.toml"))).unwrap();
        let from = expected
            .lines()
            .find_map(|l| l.strip_prefix("from = "))
            .map(|v| v.trim().trim_matches('"').to_string())
            .expect("expected sender");
        let mail = with_headers(
            &raw,
            &[
                ("From", RECEIVER.to_string()),
                ("Return-Path", format!("<{RECEIVER}>")),
                ("To", intake.clone()),
                ("Message-ID", format!("<{name}@example.org>")),
            ],
        );
        receive(&app, mail.as_bytes(), "2026-12-02T09:00:00+01:00");
        let c = complaint_by(&app, &from).unwrap_or_else(|| panic!("{name}: {:?}", app.list()));
        assert_eq!(c["received_by"], RECEIVER, "{name}");
        assert!(
            !app.sent_to(&from).is_empty(),
            "{name}: the original sender is acknowledged"
        );
    }
}

#[test]
fn confirmations_can_be_turned_off() {
    let app = TestApp::spawn();
    app.set_env("KLACHTD__STAFF__CONFIRM_COMMANDS", "false");
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    let reply = outlook_reply(RECEIVER, &notice, "#categorie Stil", "quiet@example.org");
    receive(&app, &reply.build(), "2026-11-23T11:00:00+01:00");
    assert_eq!(complaint_json(&app, &r)["category"], "Stil");
    assert!(
        app.outbox()
            .iter()
            .all(|o| o["template"] != "command_confirmation"),
        "{:?}",
        app.outbox()
    );
    // An error is still answered: the sender must know nothing happened.
    let bad = outlook_reply(
        RECEIVER,
        &notice,
        "#ernst heel erg",
        "quiet-bad@example.org",
    );
    receive(&app, &bad.build(), "2026-11-23T11:05:00+01:00");
    assert!(
        app.outbox()
            .iter()
            .any(|o| o["template"] == "command_refused")
    );
}

#[test]
fn listed_categories_are_the_only_ones_by_mail_and_on_the_command_line() {
    let app = TestApp::spawn();
    app.set_env(
        "KLACHTD__PROCEDURE__CATEGORIES",
        "[\"Roostering\", \"Vervoer\"]",
    );
    let r = complaint(&app);
    let notice = last_to(&app, RECEIVER, &r);
    let reply = outlook_reply(RECEIVER, &notice, "#categorie vervoer", "cat1@example.org");
    receive(&app, &reply.build(), "2026-11-23T11:00:00+01:00");
    assert_eq!(complaint_json(&app, &r)["category"], "Vervoer");
    let other = outlook_reply(RECEIVER, &notice, "#categorie Catering", "cat2@example.org");
    receive(&app, &other.build(), "2026-11-23T11:05:00+01:00");
    assert_eq!(complaint_json(&app, &r)["category"], "Vervoer");
    let error = last_to(&app, RECEIVER, "Niet uitgevoerd");
    assert!(
        error.text.contains("Roostering"),
        "lists them: {}",
        error.text
    );
    let out = app.cmd(&["set", &r, "category", "Catering"]);
    assert_eq!(out.status.code(), Some(2));
    app.cmd_ok(&["set", &r, "category", "roostering"]);
    assert_eq!(complaint_json(&app, &r)["category"], "Roostering");
}

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

/// A service address too long for its tokened addresses: RFC 5321 4.5.3.1.1 allows 64 octets
/// in a local part, and a verdict address adds `+v-kl-2026-0001-a-` and 22 hex digits (40
/// octets) to the service's. klachtd then sends the solution mail without its verdict links
/// (the scheduler drops them without a word) and every mail without a tokened Reply-To (a
/// warning in the log), while `klachtd check` says the configuration is valid; the comment in
/// `service/outbound.rs` says `check` reports it. Found by the mail stack e2e tests, whose
/// service addresses were 25 octets.
#[test]
#[ignore = "klachtd bug: `check` does not report a service address too long for its tokened addresses"]
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

//! `[[routing]]` (issue #10): the right manager hears first. Rules are tried in order; the
//! first whose conditions all hold names the handler and/or the roles told in place of the
//! receiving role. `klachtd route --explain FILE.eml` shows the choice; `klachtd check`
//! names a bad rule by its key.

mod common;

use common::{Mail, RECEIVER, TestApp, ts};

const RULES: &str = r#"
[[routing]]
name = "locatie noord"
sent_to = ["service+locatie-noord@example.org"]
notify = ["manager_noord"]

[[routing]]
name = "rooster"
words = ["rooster", "lesrooster"]
sender_domain = ["school.example.nl"]
handler = "planner@example.org"
"#;

fn app() -> TestApp {
    TestApp::spawn_with_config(|c| {
        *c = c.replace(
            "cluster_manager = [",
            "manager_noord = [\"noord@example.org\"]\ncluster_manager = [",
        );
        c.push_str(RULES);
    })
}

fn templates_to(app: &TestApp, template: &str) -> Vec<String> {
    app.outbox()
        .into_iter()
        .filter(|o| o["template"] == template)
        .map(|o| o["recipients"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_location_address_tells_its_manager_instead_of_the_receiver() {
    let app = app();
    let mail = Mail::new("ouder@example.nl", "Opvang sloot te vroeg")
        .header("To", "Klachten Noord <service+locatie-noord@example.org>")
        .body("De opvang in Noord sloot om vijf uur.")
        .build();
    app.deliver_eml(&mail, ts("2026-11-23T10:00:00+01:00"));
    app.run_once();
    assert_eq!(
        templates_to(&app, "new_complaint"),
        vec!["noord@example.org"]
    );
    let r = app.references()[0].clone();
    assert!(app.history_events(&r).iter().any(|e| e == "routed"));
    // Later mail for the receiving role (the reminder) goes to the manager too.
    app.set_now("2026-11-27T08:30:00+01:00");
    app.cmd_ok(&["tick", "--at", "2026-11-27T08:30:00+01:00"]);
    assert_eq!(templates_to(&app, "reminder"), vec!["noord@example.org"]);
}

#[test]
fn words_and_domain_together_assign_the_handler() {
    let app = app();
    let mail = Mail::new("juf@bs-oost.school.example.nl", "Lesrooster klopt niet")
        .body("Het rooster van groep 5 klopt niet.")
        .build();
    app.deliver_eml(&mail, ts("2026-11-23T10:00:00+01:00"));
    let other = Mail::new("ouder@example.nl", "Rooster")
        .body("Het rooster klopt niet.")
        .build();
    app.deliver_eml(&other, ts("2026-11-23T10:01:00+01:00"));
    app.run_once();
    let list = app.list();
    assert_eq!(list[0]["handler"], "planner@example.org");
    assert!(
        list[1]["handler"].is_null(),
        "domain does not match: {:?}",
        list[1]
    );
    // The receiver is still told of both (the rule names no roles).
    assert_eq!(
        templates_to(&app, "new_complaint"),
        vec![RECEIVER, RECEIVER]
    );
}

#[test]
fn route_explain_shows_the_rule_and_check_names_a_bad_one() {
    let app = app();
    let file = app.dir.path().join("probe.eml");
    std::fs::write(
        &file,
        Mail::new("juf@school.example.nl", "Vraag over het rooster").build(),
    )
    .unwrap();
    let out = app.cmd_ok(&["route", "--explain", file.to_str().unwrap()]);
    assert!(out.contains("rule 2 \"rooster\""), "{out}");
    assert!(out.contains("planner@example.org"), "{out}");
    let json = app.json(&[
        "route",
        "--explain",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(json["name"], "rooster");
    assert_eq!(json["handler"], "planner@example.org");
    std::fs::write(&file, Mail::new("x@example.com", "Iets anders").build()).unwrap();
    let out = app.cmd_ok(&["route", "--explain", file.to_str().unwrap()]);
    assert!(out.contains("no rule matches"), "{out}");

    let bad = TestApp::spawn_with_config(|c| {
        c.push_str("\n[[routing]]\nname = \"x\"\nwords = [\"a\"]\nnotify = [\"nobody\"]\nhandler = \"not an address\"\n");
    });
    let out = bad.cmd(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(err.contains("routing[0].notify"), "{err}");
    assert!(err.contains("routing[0].handler"), "{err}");
}

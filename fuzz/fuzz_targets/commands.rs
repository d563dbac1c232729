//! Staff commands, verdicts, satisfaction answers, signed tokens and greeting names on any
//! input: no panic, every error names a line that exists, and a token read from arbitrary
//! bytes never verifies.
#![no_main]

use klachtd::domain::command::{CommandContext, parse_commands, read_satisfaction, read_verdict};
use klachtd::domain::greeting::greeting_name;
use klachtd::domain::procedure::Milestone;
use klachtd::domain::token::{parse_address, parse_message_id};
use klachtd::domain::types::{EmailAddress, MessageId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(sender) = EmailAddress::parse("staff@example.org") else {
        return;
    };
    let ctx = CommandContext {
        sender: sender.clone(),
        staff: None,
        categories: Some(vec!["Planning".into(), "Bejegening".into()]),
        kinds: vec!["complaint".into(), "compliment".into()],
        milestones: Milestone::ALL.to_vec(),
    };
    if let Err(errors) = parse_commands(&text, &ctx) {
        // The parser reads CRLF and a lone CR (old Mac mail) as line ends, as clients show them.
        let lines = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .split('\n')
            .count();
        for e in &errors {
            assert!(
                e.line >= 1 && e.line <= lines + 1,
                "line {} of {lines}",
                e.line
            );
            let _ = e.message("nl");
        }
    }
    let _ = read_verdict(&text);
    if let Some(n) = read_satisfaction(&text) {
        assert!((1..=5).contains(&n));
    }
    let service = sender;
    for sep in ['+', '-', '='] {
        if let Some(t) = parse_address(&text, &service, sep) {
            let key: &[u8] = b"fuzz-key";
            assert!(
                t.verify(&[key], &[service.clone()]).is_none(),
                "a forged token verified"
            );
        }
    }
    if let Ok(id) = MessageId::parse(&text)
        && let Some(t) = parse_message_id(&id)
    {
        let key: &[u8] = b"fuzz-key";
        assert!(t.verify(&[key], &[service.clone()]).is_none());
    }
    let first_line = text.lines().next().unwrap_or("");
    if let Some(name) = greeting_name(Some(first_line), &service) {
        assert!(!name.contains('@') && !name.contains('\n'));
    }
});

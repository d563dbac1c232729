//! Routing: which handler and which roles hear first of a new complaint (seed 002: "de
//! betrokken manager(s)"; seed 003: the officer picks the handler by content). Rules from
//! `[[routing]]` in the config are tried in order; the first whose conditions all hold wins.
//! No rule: the receiving role, as without routing.

use serde::Serialize;

use super::procedure::words;
use super::types::EmailAddress;

/// One `[[routing]]` rule, validated. Every condition given must hold; within one condition
/// any of its values will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutingRule {
    pub name: String,
    /// Sender addresses (compared as one inbox: `+tags`, Gmail dots).
    pub senders: Vec<EmailAddress>,
    /// Sender domains, lower case; a subdomain matches too.
    pub sender_domains: Vec<String>,
    /// Words or phrases, whole words in the subject or the text, ignoring case and accents.
    pub words: Vec<String>,
    /// The address the mail was sent to (`service+locatie-noord@...`), exactly.
    pub sent_to: Vec<EmailAddress>,
    /// Kinds of the procedure (`complaint`, ...).
    pub kinds: Vec<String>,
    /// Made the complaint's handler.
    pub handler: Option<EmailAddress>,
    /// Roles told in place of the receiving role.
    pub notify: Vec<String>,
}

/// What a rule is matched against.
#[derive(Debug, Clone)]
pub struct RoutingFacts<'a> {
    pub from: &'a EmailAddress,
    /// Every address the mail was sent to (To, Cc, Delivered-To, X-Original-To).
    pub sent_to: &'a [EmailAddress],
    pub subject: &'a str,
    pub text: &'a str,
    pub kind: &'a str,
}

/// Why a rule matched, for `klachtd route --explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteMatch {
    pub rule: usize,
    pub name: String,
    pub because: Vec<String>,
}

impl RoutingRule {
    fn has_conditions(&self) -> bool {
        !(self.senders.is_empty()
            && self.sender_domains.is_empty()
            && self.words.is_empty()
            && self.sent_to.is_empty()
            && self.kinds.is_empty())
    }

    /// The reasons it matches, or None when a condition fails.
    fn check(&self, f: &RoutingFacts<'_>, text_words: &[String]) -> Option<Vec<String>> {
        if !self.has_conditions() {
            return None;
        }
        let mut because = Vec::new();
        if !self.senders.is_empty() {
            let key = f.from.mailbox_key();
            let hit = self.senders.iter().find(|s| s.mailbox_key() == key)?;
            because.push(format!("sender {hit}"));
        }
        if !self.sender_domains.is_empty() {
            let domain = f.from.domain().to_ascii_lowercase();
            let hit = self
                .sender_domains
                .iter()
                .find(|d| domain == **d || domain.ends_with(&format!(".{d}")))?;
            because.push(format!("sender domain {hit}"));
        }
        if !self.sent_to.is_empty() {
            let hit = self.sent_to.iter().find(|a| {
                f.sent_to
                    .iter()
                    .any(|t| t.as_str().eq_ignore_ascii_case(a.as_str()))
            })?;
            because.push(format!("sent to {hit}"));
        }
        if !self.kinds.is_empty() {
            let hit = self.kinds.iter().find(|k| k.eq_ignore_ascii_case(f.kind))?;
            because.push(format!("kind {hit}"));
        }
        if !self.words.is_empty() {
            let hit = self.words.iter().find(|w| {
                let phrase = words(w);
                !phrase.is_empty()
                    && text_words
                        .windows(phrase.len())
                        .any(|win| win == phrase.as_slice())
            })?;
            because.push(format!("word {hit:?}"));
        }
        Some(because)
    }
}

/// The first rule that matches, with why.
pub fn route(rules: &[RoutingRule], facts: &RoutingFacts<'_>) -> Option<RouteMatch> {
    // Words are read once for all rules: linear in the mail, whatever the number of rules.
    let text_words = words(&format!("{}\n{}", facts.subject, facts.text));
    rules.iter().enumerate().find_map(|(i, r)| {
        r.check(facts, &text_words).map(|because| RouteMatch {
            rule: i,
            name: r.name.clone(),
            because,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    fn rule(name: &str) -> RoutingRule {
        RoutingRule {
            name: name.into(),
            senders: vec![],
            sender_domains: vec![],
            words: vec![],
            sent_to: vec![],
            kinds: vec![],
            handler: None,
            notify: vec![],
        }
    }

    fn facts<'a>(
        from: &'a EmailAddress,
        to: &'a [EmailAddress],
        subject: &'a str,
        text: &'a str,
    ) -> RoutingFacts<'a> {
        RoutingFacts {
            from,
            sent_to: to,
            subject,
            text,
            kind: "complaint",
        }
    }

    #[test]
    fn first_matching_rule_wins_and_all_conditions_must_hold() {
        let noord = RoutingRule {
            sent_to: vec![a("service+locatie-noord@example.org")],
            notify: vec!["manager_noord".into()],
            ..rule("noord")
        };
        let school = RoutingRule {
            sender_domains: vec!["school.example.nl".into()],
            words: vec!["rooster".into()],
            handler: Some(a("planner@example.org")),
            ..rule("school")
        };
        let rules = vec![noord, school];
        let from = a("juf@bs.school.example.nl");
        let to = [a("service+locatie-noord@example.org")];
        let m = route(&rules, &facts(&from, &to, "Les", "x")).unwrap();
        assert_eq!((m.rule, m.name.as_str()), (0, "noord"));
        let to = [a("service@example.org")];
        let m = route(&rules, &facts(&from, &to, "Het Rooster klopt niet", "")).unwrap();
        assert_eq!(m.name, "school");
        assert_eq!(
            m.because,
            vec!["sender domain school.example.nl", "word \"rooster\""]
        );
        // Domain matches but the word is missing: no rule.
        assert!(route(&rules, &facts(&from, &to, "Les", "uitgevallen")).is_none());
        // A look-alike domain is not a subdomain.
        let other = a("x@evilschool.example.nl");
        assert!(route(&rules, &facts(&other, &to, "rooster", "")).is_none());
    }

    #[test]
    fn words_are_whole_words_ignoring_case_and_accents_and_phrases_work() {
        let r = RoutingRule {
            words: vec!["zwembad".into(), "naschoolse opvang".into()],
            ..rule("w")
        };
        let from = a("p@example.nl");
        let to = [];
        let hit = |t: &str| route(std::slice::from_ref(&r), &facts(&from, &to, "", t)).is_some();
        assert!(hit("Bij het ZWEMBAD ging het mis"));
        assert!(hit("de naschoolse\nopvang sloot te vroeg"));
        assert!(!hit("zwembaden"), "whole words only");
        assert!(!hit("opvang"));
    }

    #[test]
    fn senders_count_as_one_inbox_and_a_rule_without_conditions_never_matches() {
        let r = RoutingRule {
            senders: vec![a("jan.jansen@gmail.com")],
            ..rule("jan")
        };
        let to = [];
        let from = a("JanJansen+school@googlemail.com");
        assert!(route(std::slice::from_ref(&r), &facts(&from, &to, "", "")).is_some());
        let empty = rule("empty");
        assert!(route(&[empty], &facts(&from, &to, "", "")).is_none());
    }
}

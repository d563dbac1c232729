//! The name to greet someone by, from the display name of their mail (issue #10): Outlook's
//! `"Janssen, Ruud"` is "Ruud Janssen", `"Vries, Jan de"` is "Jan de Vries". A display name
//! that is no person's (an address, a department, a role, an organisation, a mailbox name) gives
//! `None`, and the caller writes "Geachte heer, mevrouw" instead: a wrong name in a greeting is
//! worse than none.

use super::text::{MAX_NAME_CHARS, single_line};
use super::types::EmailAddress;

/// Dutch (and some foreign) surname particles: they go with the surname, lower case after a
/// given name.
const PARTICLES: &[&str] = &[
    "van", "de", "der", "den", "het", "'t", "ten", "ter", "te", "in", "op", "aan", "bij", "uit",
    "onder", "over", "voor", "la", "le", "du", "da", "von", "zu", "vom", "di", "del", "della",
    "dos", "das", "d'",
];

/// Forms of address and titles before a name.
const TITLES: &[&str] = &[
    "dhr", "mevr", "mw", "mr", "mrs", "ms", "miss", "mister", "dr", "drs", "ir", "ing", "prof",
    "heer", "mevrouw", "meneer", "juffrouw", "sir", "madam", "madame", "bc", "ds",
];

/// Degrees after a name (`MSc`, `PhD`), removed only when written as abbreviations.
const DEGREES: &[&str] = &[
    "msc", "bsc", "mba", "phd", "llm", "ma", "ba", "ra", "rc", "mpa", "mphil", "md",
];

/// Words that make a display name a department, role, organisation or system, not a person.
const ROLE_WORDS: &[&str] = &[
    "afdeling",
    "team",
    "gemeente",
    "sales",
    "info",
    "informatie",
    "administratie",
    "klantenservice",
    "klantcontact",
    "service",
    "support",
    "helpdesk",
    "servicedesk",
    "secretariaat",
    "receptie",
    "redactie",
    "directie",
    "bestuur",
    "office",
    "admin",
    "administrator",
    "beheer",
    "beheerder",
    "noreply",
    "no-reply",
    "donotreply",
    "do-not-reply",
    "facturatie",
    "finance",
    "financien",
    "financiën",
    "hr",
    "personeelszaken",
    "planning",
    "marketing",
    "communicatie",
    "inkoop",
    "verkoop",
    "boekhouding",
    "debiteuren",
    "crediteuren",
    "stichting",
    "vereniging",
    "school",
    "college",
    "bv",
    "b.v.",
    "nv",
    "n.v.",
    "vof",
    "v.o.f.",
    "holding",
    "groep",
    "group",
    "department",
    "dept",
    "customer",
    "customers",
    "desk",
    "mailbox",
    "postbus",
    "contact",
    "webmaster",
    "postmaster",
    "mailer-daemon",
    "notification",
    "notifications",
    "newsletter",
    "nieuwsbrief",
    "klachten",
    "klacht",
    "meldpunt",
    "loket",
    "balie",
    "kantoor",
    "bureau",
    "praktijk",
    "apotheek",
    "ziekenhuis",
    "kliniek",
    "provincie",
    "waterschap",
    "ministerie",
    "politie",
    "belastingdienst",
    "accounts",
    "billing",
    "operations",
    "management",
    "board",
    "staff",
    "it",
    "ict",
    "company",
    "ltd",
    "inc",
    "gmbh",
    "llc",
    "corp",
    "outlook",
    "microsoft",
    "google",
    "forms",
    "formulier",
    "website",
    "online",
    "systeem",
    "system",
    "robot",
    "alert",
    "alerts",
    "monitor",
    "daemon",
    "reply",
    "team's",
    "unit",
    "afd",
    "afd.",
    "dienst",
    "zorg",
    "thuiszorg",
    "wijkteam",
    "kinderopvang",
    "opvang",
    "centrum",
    "center",
    "centre",
];

/// Beginnings and endings of compound words that name a department or role (Dutch compounds:
/// `Afdelingssecretariaat`, `Klachtenfunctionaris`, `Personeelszaken`, `Klantendienst`).
const ROLE_PREFIXES: &[&str] = &[
    "afdeling",
    "gemeente",
    "klantenservice",
    "klantcontact",
    "secretariaat",
    "administratie",
    "helpdesk",
    "servicedesk",
    "stichting",
    "team",
    "klachten",
    "directie",
    "bestuurs",
    "meldpunt",
];
const ROLE_SUFFIXES: &[&str] = &[
    "service",
    "desk",
    "beheer",
    "zaken",
    "dienst",
    "centrum",
    "administratie",
    "secretariaat",
    "team",
    "loket",
    "functionaris",
];

/// At most this many words (`Jan-Willem van der Berg tot Ter Horst` is six).
const MAX_WORDS: usize = 6;
const MAX_CHARS: usize = 60;

const QUOTES: &[char] = &[
    '"', '\'', '\u{201c}', '\u{201d}', '\u{201e}', '\u{2018}', '\u{2019}', '\u{00ab}', '\u{00bb}',
    '`',
];

/// The name to greet the sender of a mail by, or `None` when the display name is not clearly a
/// person's name.
pub fn greeting_name(display_name: Option<&str>, address: &EmailAddress) -> Option<String> {
    let name = single_line(display_name?, MAX_NAME_CHARS);
    let name = name.trim_matches(|c: char| QUOTES.contains(&c) || c.is_whitespace());
    if name.contains('@') || name.to_lowercase().contains("www.") || name.contains("://") {
        return None;
    }
    let name = drop_brackets(name);
    // `Ruud Janssen | MZO`, `Ruud Janssen - Planning`: the person comes first.
    let name = [" | ", " - ", " \u{2013} ", " \u{2014} ", " / "]
        .iter()
        .fold(name.as_str(), |n, sep| n.split(sep).next().unwrap_or(n))
        .trim()
        .to_string();

    let parts: Vec<&str> = name
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let words: Vec<String> = match parts.as_slice() {
        [] => return None,
        [one] => split_words(one),
        [first, rest @ ..] => {
            let first_words = split_words(first);
            let given_like = first_words.iter().filter(|w| !is_particle(w)).count();
            if given_like >= 2 {
                // `Ruud Janssen, MSc` or `Ruud Janssen, Planning`: the name is before the comma.
                first_words
            } else if rest.len() == 1 {
                // Outlook's `Surname, Given [particles]`.
                reorder(&first_words, &split_words(rest[0]))
            } else {
                return None;
            }
        }
    };
    let words = strip_titles(words);
    if words.is_empty() || words.len() > MAX_WORDS {
        return None;
    }
    let allowed = |c: char| c.is_alphabetic() || matches!(c, '-' | '\'' | '\u{2019}' | '.');
    if words.iter().any(|w| !w.chars().all(allowed)) {
        return None;
    }
    if words.iter().any(|w| is_role(w)) {
        return None;
    }
    // All capitals (`ADMINISTRATIE`, `PLANNING NOORD`) is how mailboxes are named.
    let shouted =
        |w: &String| w.chars().filter(|c| c.is_alphabetic()).count() >= 2 && !w.contains('.');
    let long_words: Vec<&String> = words.iter().filter(|w| shouted(w)).collect();
    if long_words.is_empty() && words.iter().all(|w| w.contains('.')) {
        // Initials only (`J.P.`): nobody to greet.
        return None;
    }
    if !long_words.is_empty()
        && long_words
            .iter()
            .all(|w| !w.chars().any(char::is_lowercase))
    {
        return None;
    }
    if words.len() == 1 {
        let w = &words[0];
        // A mailbox name shown as a name: `jjansen`, `j.jansen`, `ruud` for ruud@.
        let local = address.local_part();
        let local = local.split_once('+').map(|(l, _)| l).unwrap_or(local);
        let letters = |s: &str| {
            s.chars()
                .filter(|c| c.is_alphabetic())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        };
        let lower = !w.chars().any(char::is_uppercase);
        if (lower && letters(w) == letters(local)) || w.contains('.') {
            return None;
        }
    }
    let joined = capitalise(&words).join(" ");
    (joined.chars().count() <= MAX_CHARS).then_some(joined)
}

/// Removes `(…)` and `[…]` parts: `Ruud Janssen (MZO)`. An unclosed bracket ends the name.
fn drop_brackets(name: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn split_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| QUOTES.contains(&c) && c != '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn is_particle(word: &str) -> bool {
    PARTICLES.contains(&word.to_lowercase().as_str())
}

/// `Vries` + `Jan de` is `Jan de Vries`; `de Vries` + `Jan` is `Jan de Vries`.
fn reorder(surname: &[String], given: &[String]) -> Vec<String> {
    let split = given
        .iter()
        .rposition(|w| !is_particle(w))
        .map(|i| i + 1)
        .unwrap_or(0);
    let (given_names, particles) = given.split_at(split);
    let mut out: Vec<String> = given_names.to_vec();
    out.extend(particles.iter().map(|p| p.to_lowercase()));
    let mut leading = true;
    for w in surname {
        // `De Vries, Jan`: the particle is lower case once a given name precedes it.
        if leading && is_particle(w) && !out.is_empty() {
            out.push(w.to_lowercase());
        } else {
            leading = false;
            out.push(w.clone());
        }
    }
    out
}

fn strip_titles(mut words: Vec<String>) -> Vec<String> {
    while let Some(first) = words.first() {
        let bare = first.trim_end_matches('.').to_lowercase();
        if TITLES.contains(&bare.as_str()) {
            words.remove(0);
        } else if bare == "de" && words.get(1).is_some_and(|w| w.eq_ignore_ascii_case("heer")) {
            words.drain(..2);
        } else {
            break;
        }
    }
    while words.len() > 1 {
        let Some(last) = words.last() else { break };
        let bare: String = last.chars().filter(|c| *c != '.').collect();
        // `MSc`, `PhD`, `MA`, `M.Sc.`: an abbreviation; `Ma` alone is a surname.
        let abbreviated = last.contains('.') || bare.chars().skip(1).any(char::is_uppercase);
        if abbreviated && DEGREES.contains(&bare.to_lowercase().as_str()) {
            words.pop();
        } else {
            break;
        }
    }
    words
}

fn is_role(word: &str) -> bool {
    let w = word.to_lowercase();
    ROLE_WORDS.contains(&w.as_str())
        || ROLE_PREFIXES.iter().any(|p| w.starts_with(p))
        || ROLE_SUFFIXES
            .iter()
            .any(|s| w.len() > s.len() && w.ends_with(s))
}

/// `ruud janssen` is `Ruud Janssen`, `Ruud JANSSEN` is `Ruud Janssen`; particles stay lower
/// case after the first word, initials stay as written.
fn capitalise(words: &[String]) -> Vec<String> {
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if w.contains('.') {
                return w.clone();
            }
            if i > 0 && is_particle(w) {
                return w.to_lowercase();
            }
            let all_lower = !w.chars().any(char::is_uppercase);
            let all_upper = !w.chars().any(char::is_lowercase);
            if all_lower || all_upper {
                // Each part of `jan-willem` / `o'brien`.
                let mut out = String::with_capacity(w.len());
                let mut start = true;
                for c in w.chars() {
                    if start {
                        out.extend(c.to_uppercase());
                    } else {
                        out.extend(c.to_lowercase());
                    }
                    start = matches!(c, '-' | '\'' | '\u{2019}');
                }
                out
            } else {
                w.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn greet(name: &str) -> Option<String> {
        greeting_name(
            Some(name),
            &EmailAddress::parse("r.janssen@example.nl").unwrap(),
        )
    }

    #[test]
    fn people() {
        let cases = [
            ("\"Janssen, Ruud\"", "Ruud Janssen"),
            ("Janssen, Ruud", "Ruud Janssen"),
            ("Vries, Jan de", "Jan de Vries"),
            ("de Vries, Jan", "Jan de Vries"),
            ("De Vries, Jan", "Jan de Vries"),
            ("Berg, Anna van den", "Anna van den Berg"),
            ("van den Berg, Anna", "Anna van den Berg"),
            ("Hooft, Pieter Corneliszoon", "Pieter Corneliszoon Hooft"),
            ("Janssen, R.", "R. Janssen"),
            ("Janssen, R.J.M.", "R.J.M. Janssen"),
            ("Ruud Janssen", "Ruud Janssen"),
            ("  Ruud   Janssen  ", "Ruud Janssen"),
            ("'Ruud Janssen'", "Ruud Janssen"),
            ("\u{201c}Ruud Janssen\u{201d}", "Ruud Janssen"),
            ("Ruud Janssen (MZO)", "Ruud Janssen"),
            ("Ruud Janssen [extern]", "Ruud Janssen"),
            ("Ruud Janssen | Gemeente Utrecht", "Ruud Janssen"),
            ("Ruud Janssen - Planning", "Ruud Janssen"),
            ("Ruud Janssen / MZO", "Ruud Janssen"),
            ("Ruud Janssen, MSc", "Ruud Janssen"),
            ("Ruud Janssen, Planning", "Ruud Janssen"),
            ("Jan Jansen MSc", "Jan Jansen"),
            ("drs. Jan Jansen MBA", "Jan Jansen"),
            ("Dhr. R. Janssen", "R. Janssen"),
            ("Mevr. A. de Boer", "A. de Boer"),
            ("Mw. Anna de Boer", "Anna de Boer"),
            ("dr. ir. Jan Jansen", "Jan Jansen"),
            ("De heer Jansen", "Jansen"),
            ("Janssen, dhr. R.", "R. Janssen"),
            ("JANSSEN, Ruud", "Ruud Janssen"),
            ("Ruud JANSSEN", "Ruud Janssen"),
            ("ruud janssen", "Ruud Janssen"),
            ("jan de vries", "Jan de Vries"),
            ("Jan-Willem Bakker-de Jong", "Jan-Willem Bakker-de Jong"),
            ("jan-willem bakker", "Jan-Willem Bakker"),
            ("Zo\u{eb} \u{d6}zdemir", "Zo\u{eb} \u{d6}zdemir"),
            ("Jos\u{e9} Garc\u{ed}a", "Jos\u{e9} Garc\u{ed}a"),
            ("Mohamed El Amrani", "Mohamed El Amrani"),
            ("Li Ma", "Li Ma"),
            ("Sean O'Brien", "Sean O'Brien"),
            ("Anouk in 't Veld", "Anouk in 't Veld"),
            ("Ruud", "Ruud"),
            ("ruud", "Ruud"),
            ("J.P. Balkenende", "J.P. Balkenende"),
            ("Jan\u{202e}Jansen", "Jan Jansen"),
        ];
        for (display, want) in cases {
            assert_eq!(greet(display).as_deref(), Some(want), "{display:?}");
        }
    }

    #[test]
    fn not_people() {
        for display in [
            "",
            "   ",
            "\"\"",
            "''",
            "jan@example.nl",
            "'jan@example.nl'",
            "Jan Jansen <jan@example.nl>",
            "www.example.nl",
            "Afdeling Planning",
            "afdeling planning",
            "Sales",
            "info",
            "Info",
            "INFO",
            "Team Noord",
            "Gemeente Utrecht",
            "Gemeente X",
            "ADMINISTRATIE",
            "KLANTENSERVICE",
            "JAN JANSEN",
            "Klantenservice MZO",
            "Klantenservice",
            "Secretariaat",
            "Afdelingssecretariaat",
            "Personeelszaken",
            "Klantendienst",
            "Klachtenfunctionaris",
            "noreply",
            "no-reply",
            "Mailer-Daemon",
            "Stichting De Toekomst",
            "Jansen & Zn",
            "Bakkerij Jansen B.V.",
            "Customer Service",
            "HR Department",
            "Microsoft Outlook",
            "Helpdesk ICT",
            "Servicedesk",
            "Team",
            "Jan123",
            "Kamer 12",
            "Dhr.",
            "J.P.",
            "j.jansen",
            "Jansen, Jan, MZO",
            "Wijkteam Oost",
            "Planning: Noord",
            "Een naam met veel te veel woorden erin zeker",
        ] {
            assert_eq!(greet(display), None, "{display:?}");
        }
        assert_eq!(
            greeting_name(None, &EmailAddress::parse("a@b.nl").unwrap()),
            None
        );
    }

    #[test]
    fn mailbox_names_are_not_names() {
        let addr = |a: &str| EmailAddress::parse(a).unwrap();
        assert_eq!(greeting_name(Some("ruud"), &addr("ruud@mzo.nl")), None);
        assert_eq!(
            greeting_name(Some("jjansen"), &addr("jjansen@mzo.nl")),
            None
        );
        assert_eq!(
            greeting_name(Some("jjansen"), &addr("j.jansen+x@mzo.nl")),
            None
        );
        // Written with a capital by a person, or not the mailbox: a name.
        assert_eq!(
            greeting_name(Some("Ruud"), &addr("ruud@mzo.nl")).as_deref(),
            Some("Ruud")
        );
        assert_eq!(
            greeting_name(Some("ruud"), &addr("r.janssen@mzo.nl")).as_deref(),
            Some("Ruud")
        );
    }

    proptest! {
        /// Whatever a sender writes, the greeting is one short safe line without an address.
        #[test]
        fn output_is_safe(s in any::<String>()) {
            if let Some(g) = greet(&s) {
                prop_assert!(!g.contains('@'));
                prop_assert!(g.chars().count() <= MAX_CHARS);
                prop_assert!(!g.chars().any(crate::domain::text::is_unsafe_char));
                prop_assert_eq!(g.trim(), g.as_str());
                prop_assert!(!g.is_empty());
            }
        }
    }
}

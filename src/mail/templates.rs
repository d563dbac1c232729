//! Handlebars templates, one set per language: `DIR/LANG/NAME.subject.hbs`, `NAME.txt.hbs`,
//! `NAME.html.hbs`, and shared partials in `DIR/LANG/partials/`. Strict mode: a missing
//! variable is an error (found by `klachtd check`, which renders every template with complete
//! sample data), never a blank in a complainant's inbox. Files are re-read when they change;
//! a broken edit keeps the last good set and logs why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use handlebars::Handlebars;
use serde_json::{Value, json};

pub const LANGUAGES: &[&str] = &["nl", "en"];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("template {path} is invalid: {reason}")]
    Syntax { path: String, reason: String },
    #[error("template {name} ({lang}) is missing its {part} part")]
    Missing {
        lang: String,
        name: String,
        part: &'static str,
    },
    #[error("cannot render template {name} ({lang}, {part}): {reason}")]
    Render {
        lang: String,
        name: String,
        part: &'static str,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// One loaded set of templates: a registry for text parts (no escaping: a complainant must not
/// read `&amp;`) and one for HTML parts (escaped).
struct Loaded {
    text: Handlebars<'static>,
    html: Handlebars<'static>,
    /// (lang, name) of every complete email template.
    names: Vec<(String, String)>,
    fingerprint: Vec<(PathBuf, SystemTime, u64)>,
}

pub struct TemplateEngine {
    dir: PathBuf,
    current: RwLock<Loaded>,
    last_check: RwLock<Instant>,
}

const PARTS: [(&str, &str); 3] = [
    ("subject", "subject.hbs"),
    ("txt", "txt.hbs"),
    ("html", "html.hbs"),
];

impl TemplateEngine {
    pub fn load(dir: &Path) -> Result<Self, Vec<TemplateError>> {
        let loaded = load_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            current: RwLock::new(loaded),
            last_check: RwLock::new(Instant::now()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn has(&self, lang: &str, name: &str) -> bool {
        self.reload_if_changed();
        let cur = self.current.read().unwrap_or_else(|e| e.into_inner());
        cur.names.iter().any(|(l, n)| l == lang && n == name)
    }

    /// Every (language, template) pair that has all three parts.
    pub fn names(&self) -> Vec<(String, String)> {
        let cur = self.current.read().unwrap_or_else(|e| e.into_inner());
        cur.names.clone()
    }

    pub fn render(&self, lang: &str, name: &str, ctx: &Value) -> Result<Rendered, TemplateError> {
        self.reload_if_changed();
        let cur = self.current.read().unwrap_or_else(|e| e.into_inner());
        let key = |part: &str| format!("{lang}/{name}.{part}");
        // Converted once for the three parts: `Registry::render` would copy the data each time.
        let data = handlebars::Context::from(ctx.clone());
        let render = |reg: &Handlebars<'static>, part: &'static str| {
            if !reg.has_template(&key(part)) {
                return Err(TemplateError::Missing {
                    lang: lang.into(),
                    name: name.into(),
                    part,
                });
            }
            reg.render_with_context(&key(part), &data)
                .map_err(|e| TemplateError::Render {
                    lang: lang.into(),
                    name: name.into(),
                    part,
                    reason: e.to_string(),
                })
        };
        let subject = render(&cur.text, "subject")?;
        Ok(Rendered {
            // A header cannot hold a line break; templates often end with one.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: render(&cur.text, "txt")?,
            html: render(&cur.html, "html")?,
        })
    }

    /// Render every template with complete sample data: what `klachtd check` reports.
    pub fn check_all(&self, sample: &Value) -> Vec<TemplateError> {
        let mut errors = Vec::new();
        for (lang, name) in self.names() {
            if let Err(e) = self.render(&lang, &name, sample) {
                errors.push(e);
            }
        }
        errors
    }

    /// Re-read the directory when a file changed (checked at most once a second).
    pub fn reload_if_changed(&self) {
        {
            let last = self.last_check.read().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < Duration::from_secs(1) {
                return;
            }
        }
        *self.last_check.write().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let now = fingerprint(&self.dir);
        {
            let cur = self.current.read().unwrap_or_else(|e| e.into_inner());
            if cur.fingerprint == now {
                return;
            }
        }
        match load_dir(&self.dir) {
            Ok(fresh) => {
                tracing::info!(dir = %self.dir.display(), "templates changed: reloaded");
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
            }
            Err(errors) => {
                for e in &errors {
                    tracing::error!(error = %e, "template edit rejected: keeping the last good templates");
                }
                // Remember this fingerprint so the same broken edit is logged once, not every second.
                self.current
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .fingerprint = now;
            }
        }
    }
}

fn fingerprint(dir: &Path) -> Vec<(PathBuf, SystemTime, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(m) = e.metadata() {
                out.push((p, m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            }
        }
    }
    out.sort();
    out
}

fn new_registry(escape: bool) -> Handlebars<'static> {
    let mut h = Handlebars::new();
    h.set_strict_mode(true);
    h.set_dev_mode(false);
    if !escape {
        h.register_escape_fn(handlebars::no_escape);
    }
    h
}

fn load_dir(dir: &Path) -> Result<Loaded, Vec<TemplateError>> {
    let mut text = new_registry(false);
    let mut html = new_registry(true);
    let mut errors = Vec::new();
    let mut parts_seen: BTreeMap<(String, String), Vec<&'static str>> = BTreeMap::new();
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| TemplateError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    };
    for lang in LANGUAGES {
        let lang_dir = dir.join(lang);
        let Ok(entries) = std::fs::read_dir(&lang_dir) else {
            errors.push(TemplateError::Read {
                path: lang_dir.display().to_string(),
                reason: "directory missing".into(),
            });
            continue;
        };
        // Partials: `partials/NAME.txt.hbs` and `partials/NAME.html.hbs`, used as `{{> NAME}}`.
        if let Ok(partials) = std::fs::read_dir(lang_dir.join("partials")) {
            for p in partials.flatten() {
                let path = p.path();
                let file = p.file_name().to_string_lossy().into_owned();
                let (reg, stem) = if let Some(s) = file.strip_suffix(".txt.hbs") {
                    (&mut text, s.to_string())
                } else if let Some(s) = file.strip_suffix(".html.hbs") {
                    (&mut html, s.to_string())
                } else {
                    continue;
                };
                match read(&path) {
                    Ok(src) => {
                        // Partials are registered per language by prefixing the template name
                        // resolution below; handlebars partials are global per registry, so the
                        // language goes in the partial's name and templates are pre-processed.
                        if let Err(e) = reg.register_partial(&format!("{lang}_{stem}"), src) {
                            errors.push(TemplateError::Syntax {
                                path: path.display().to_string(),
                                reason: e.to_string(),
                            });
                        }
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
        for entry in entries.flatten() {
            let path = entry.path();
            let file = entry.file_name().to_string_lossy().into_owned();
            for (part, suffix) in PARTS {
                let Some(name) = file.strip_suffix(&format!(".{suffix}")) else {
                    continue;
                };
                let src = match read(&path) {
                    Ok(s) => localise_partials(&s, lang),
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                let reg = if part == "html" { &mut html } else { &mut text };
                match reg.register_template_string(&format!("{lang}/{name}.{part}"), src) {
                    Ok(()) => parts_seen
                        .entry((lang.to_string(), name.to_string()))
                        .or_default()
                        .push(part),
                    Err(e) => errors.push(TemplateError::Syntax {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    }),
                }
            }
        }
    }
    let mut names = Vec::new();
    for ((lang, name), parts) in parts_seen {
        let mut complete = true;
        for (part, _) in PARTS {
            if !parts.contains(&part) {
                complete = false;
                errors.push(TemplateError::Missing {
                    lang: lang.clone(),
                    name: name.clone(),
                    part,
                });
            }
        }
        if complete {
            names.push((lang, name));
        }
    }
    if errors.is_empty() {
        Ok(Loaded {
            text,
            html,
            names,
            fingerprint: fingerprint(dir),
        })
    } else {
        Err(errors)
    }
}

/// `{{> header}}` in `nl/x.txt.hbs` means the Dutch header partial: rewrite partial calls to
/// their language-specific registered name.
fn localise_partials(src: &str, lang: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(i) = rest.find("{{>") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let trimmed = rest.trim_start();
        out.push_str(&rest[..rest.len() - trimmed.len()]);
        out.push_str(lang);
        out.push('_');
        rest = trimmed;
    }
    out.push_str(rest);
    out
}

/// Complete sample data: every variable any shipped template may use (see templates/README.md).
pub fn sample_context() -> Value {
    let mut sample = json!({
        "organisation": { "name": "Muziekcentrum Zuidoost" },
        "complaint": {
            "reference": "KL-2026-0001",
            "subject": "Les gaat niet door",
            "received_date": "maandag 23 november 2026",
            "summary": "De muziekles van groep 5 is drie keer niet doorgegaan.",
            "kind": "klacht",
            "text": "De muziekles van groep 5 is drie keer niet doorgegaan.\nWie kan mij zeggen waarom?",
        },
        "complainant": { "name": "Jan Jansen", "address": "jan@example.nl", "greeting": "Jan Jansen" },
        "procedure": { "title": "Klachtenprocedure" },
        "deadlines": {
            "acknowledged": "maandag 30 november 2026",
            "first_reaction": "woensdag 2 december 2026",
            "handler_known": "maandag 30 november 2026",
            "procedure_explained": "maandag 7 december 2026",
            "solution_proposed": "maandag 14 december 2026",
            "handled": "vrijdag 11 december 2026",
            "follow_up": "maandag 14 december 2026",
        },
        "action": {
            "due_date": "maandag 30 november 2026",
            "concerns": "afgehandeld",
            "deadline": "vrijdag 11 december 2026",
            "promise_broken": true,
            "extended": false,
            "extend_command": "klachtd set KL-2026-0001 extension WEKEN",
        },
        "subject_person": { "address": "docent@example.nl" },
        "message": { "from": "jan@example.nl", "subject": "Re: [KL-2026-0001] Les gaat niet door", "text": "Er is nog steeds niets veranderd.", "reason": "it answers none of our mails (no token)" },
        "commands": {
            "applied": ["#behandelaar marieke@example.nl", "#categorie Roostering"],
            "late_lines": [7],
            "errors": ["regel 2: \"#ernst heel erg\": heel erg is geen ernst. Schrijf: #ernst ernstig | normaal"],
            "reference": "Opdrachten voor medewerkers\n...",
            "intake_address": "service+i-0a1b2c3d4e5f60718293a4@example.org",
        },
        "appeal": { "text": "Bent u het niet eens met de afhandeling, dan kunt u in beroep gaan bij de onafhankelijke examencommissie." },
        "answer": { "text": "Beste heer Jansen,\n\nDe lessen worden vanaf volgende week ingehaald." },
        "staff": {
            "address": "marieke@example.nl",
            "intake_address": "service+i-0a1b2c3d4e5f60718293a4@example.org",
            "commands": "#behandelaar ik   #notitie <tekst>",
        },
        "verdict": {
            "agree_address": "service+v-kl-2026-0001-a-0a1b2c3d4e5f60718293a4@example.org",
            "agree_mailto": "mailto:service+v-kl-2026-0001-a-0a1b2c3d4e5f60718293a4@example.org?subject=Akkoord%20%5BKL-2026-0001%5D",
            "disagree_address": "service+v-kl-2026-0001-d-0a1b2c3d4e5f60718293a4@example.org",
            "disagree_mailto": "mailto:service+v-kl-2026-0001-d-0a1b2c3d4e5f60718293a4@example.org?subject=Niet%20akkoord%20%5BKL-2026-0001%5D",
        },
        "extension": { "due": "vrijdag 8 januari 2027", "what": "afgehandeld" },
        "handler": { "name": "Marieke de Vries", "address": "marieke@example.nl" },
        "serious": { "keywords": "veiligheid, letsel" },
        "solution": { "text": "We plannen de gemiste lessen in overleg opnieuw in." },
        "digest": {
            "items": [
                { "reference": "KL-2026-0001", "subject": "Les gaat niet door", "status": "in behandeling", "status_id": "in_progress", "handler": "marieke@example.nl", "unassigned": false, "light": "red", "light_word": "ROOD", "what": "afgehandeld", "due": "vrijdag 11 december 2026", "missed": true, "reply_address": "service+c-kl-2026-0001-0a1b2c3d4e5f60718293a4@example.org" },
                { "reference": "KL-2026-0002", "subject": "Rooster klopt niet", "status": "nieuw", "status_id": "new", "handler": "", "unassigned": true, "light": "amber", "light_word": "ORANJE", "what": "eerste reactie", "due": "maandag 14 december 2026", "missed": false, "reply_address": "service+c-kl-2026-0002-0a1b2c3d4e5f60718293a4@example.org" },
                { "reference": "KL-2026-0003", "subject": "Geen antwoord op mijn mail", "status": "opgelost", "status_id": "resolved", "handler": "marieke@example.nl", "unassigned": false, "light": "green", "light_word": "GROEN", "what": "", "due": "", "missed": false, "reply_address": "service+c-kl-2026-0003-0a1b2c3d4e5f60718293a4@example.org" }
            ],
            "counts": { "red": 1, "amber": 1, "green": 1, "total": 3 },
            "more": 0,
            "date": "vrijdag 11 december 2026",
            "days_ahead": 3,
        },
        "links": { "reply_hint": "Antwoord op deze e-mail; laat het nummer in het onderwerp staan." },
        "bounce": { "recipient": "jan@example.nl", "reason": "mailbox unavailable" },
        "outbox": { "subject": "[KL-2026-0001] Les gaat niet door", "recipient": "jan@example.nl", "error": "550 5.1.1 user unknown" },
        "alert": { "subject": "Inloggen op de mailbox mislukt", "text": "cannot log in to mail server imap.example.org" },
    });
    // The reports' templates take their data under `report` and `public`.
    let (report, public) = super::report::sample_views("nl");
    sample["report"] = report;
    sample["public"] = public;
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, body: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn minimal(dir: &Path) {
        for lang in LANGUAGES {
            write(
                dir,
                &format!("{lang}/partials/footer.txt.hbs"),
                &format!("-- {lang} {{{{organisation.name}}}}"),
            );
            write(
                dir,
                &format!("{lang}/partials/footer.html.hbs"),
                "<hr>{{organisation.name}}",
            );
            write(
                dir,
                &format!("{lang}/ack.subject.hbs"),
                "[{{complaint.reference}}] {{complaint.subject}}\n",
            );
            write(
                dir,
                &format!("{lang}/ack.txt.hbs"),
                "Beste {{complainant.name}},\n{{> footer}}",
            );
            write(
                dir,
                &format!("{lang}/ack.html.hbs"),
                "<p>Beste {{complainant.name}}</p>{{> footer}}",
            );
        }
    }

    #[test]
    fn text_is_not_escaped_html_is_and_partials_are_per_language() {
        let d = tempfile::tempdir().unwrap();
        minimal(d.path());
        let e = TemplateEngine::load(d.path()).unwrap();
        let mut ctx = sample_context();
        ctx["complainant"]["name"] = json!("Ben & Jerry <b>");
        let r = e.render("nl", "ack", &ctx).unwrap();
        assert_eq!(r.subject, "[KL-2026-0001] Les gaat niet door");
        assert!(r.text.contains("Ben & Jerry <b>"), "{}", r.text);
        assert!(r.text.contains("-- nl Muziekcentrum"), "{}", r.text);
        assert!(r.html.contains("Ben &amp; Jerry &lt;b&gt;"), "{}", r.html);
        let en = e.render("en", "ack", &ctx).unwrap();
        assert!(en.text.contains("-- en "), "{}", en.text);
    }

    #[test]
    fn missing_variable_is_an_error_not_a_blank() {
        let d = tempfile::tempdir().unwrap();
        minimal(d.path());
        write(d.path(), "nl/ack.txt.hbs", "Beste {{complainant.nickname}}");
        let e = TemplateEngine::load(d.path()).unwrap();
        let errors = e.check_all(&sample_context());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].to_string().contains("ack"), "{}", errors[0]);
    }

    #[test]
    fn incomplete_and_broken_templates_are_reported() {
        let d = tempfile::tempdir().unwrap();
        minimal(d.path());
        std::fs::remove_file(d.path().join("en/ack.html.hbs")).unwrap();
        write(d.path(), "nl/other.subject.hbs", "{{#if x}}unclosed");
        let errors = match TemplateEngine::load(d.path()) {
            Err(e) => e,
            Ok(_) => panic!("should fail"),
        };
        let all = errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("en") && all.contains("html"), "{all}");
        assert!(all.contains("other.subject.hbs"), "{all}");
    }

    #[test]
    fn broken_edit_keeps_last_good_version_and_good_edit_reloads() {
        let d = tempfile::tempdir().unwrap();
        minimal(d.path());
        let e = TemplateEngine::load(d.path()).unwrap();
        write(d.path(), "nl/ack.txt.hbs", "{{#if}}broken");
        *e.last_check.write().unwrap() = Instant::now() - Duration::from_secs(5);
        let r = e.render("nl", "ack", &sample_context()).unwrap();
        assert!(r.text.starts_with("Beste Jan"), "{}", r.text);
        write(
            d.path(),
            "nl/ack.txt.hbs",
            "Geachte {{complainant.name}}, nieuw",
        );
        *e.last_check.write().unwrap() = Instant::now() - Duration::from_secs(5);
        let r = e.render("nl", "ack", &sample_context()).unwrap();
        assert_eq!(r.text, "Geachte Jan Jansen, nieuw");
    }
}

//! `klachtd check`: the configuration, the procedure and every template, all problems at once.

use std::process::ExitCode;

use klachtd::config::{Problem, Settings};
use klachtd::mail::templates::{LANGUAGES, TemplateEngine, sample_context};
use klachtd::procedure_runtime::ProcedureRuntime;

use super::{say, say_lines};

/// The templates every organisation needs, whatever its procedure.
const REQUIRED_TEMPLATES: [&str; 4] = [
    "acknowledgement",
    "bounce_alert",
    "delivery_failed",
    "operational_alert",
];

/// Exit 0 when all is valid, else 2 after listing every problem.
pub fn check(settings: &Settings, mut problems: Vec<Problem>) -> anyhow::Result<ExitCode> {
    problems.extend(template_problems(settings));
    problems.extend(procedure_problems(settings));
    if problems.is_empty() {
        say!("configuration, procedure and templates are valid");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            say_lines(&p.to_string());
        }
        say!("{} problem(s)", problems.len());
        Ok(ExitCode::from(2))
    }
}

/// Templates that do not render with the sample context, and required ones that are missing.
fn template_problems(settings: &Settings) -> Vec<Problem> {
    let problem = |m: String| Problem::new("templates.dir", m);
    let engine = match TemplateEngine::load(&settings.templates.dir) {
        Ok(engine) => engine,
        Err(errors) => return errors.iter().map(|e| problem(e.to_string())).collect(),
    };
    let mut problems: Vec<Problem> = engine
        .check_all(&sample_context())
        .iter()
        .map(|e| problem(e.to_string()))
        .collect();
    for lang in LANGUAGES {
        for name in REQUIRED_TEMPLATES {
            if !engine.has(lang, name) {
                problems.push(problem(format!("template {name} ({lang}) is missing")));
            }
        }
    }
    problems
}

/// The preset: it must load, and the templates and roles its steps use must exist.
fn procedure_problems(settings: &Settings) -> Vec<Problem> {
    let problem = |m: String| Problem::new("procedure.preset", m);
    let rt = match ProcedureRuntime::load(settings) {
        Ok(rt) => rt,
        Err(e) => return vec![problem(e.to_string())],
    };
    let engine = TemplateEngine::load(&settings.templates.dir).ok();
    let has_template = |t: &str| {
        engine
            .as_ref()
            .is_some_and(|e| LANGUAGES.iter().all(|l| e.has(l, t)))
    };
    let has_role = |r: &str| r == "handler" || settings.staff.has_role(r);
    rt.current()
        .check(&has_template, &has_role)
        .iter()
        .map(|e| problem(e.to_string()))
        .collect()
}

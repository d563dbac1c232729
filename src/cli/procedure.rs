//! `klachtd procedure list|explain`: the procedure presets.

use std::process::ExitCode;

use klachtd::config::Settings;
use klachtd::procedure_runtime::{ProcedureRuntime, list_presets};

use super::args::{Format, ProcedureCmd};
use super::{UsageError, parse_time, say, say_lines};

pub fn procedure(settings: &Settings, action: &ProcedureCmd) -> anyhow::Result<ExitCode> {
    match action {
        ProcedureCmd::List => list(settings),
        ProcedureCmd::Explain {
            preset,
            received,
            format,
            lang,
        } => explain(settings, preset, received, *format, lang.as_deref())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The presets that ship and any edited copies, an unreadable one with why.
fn list(settings: &Settings) {
    for (name, parsed) in list_presets(&settings.procedure.dir) {
        match parsed {
            Ok(p) => say!("{:<16} {}  ({})", name, p.title, p.version),
            Err(e) => say!("{:<16} INVALID: {}", name, e.join("; ")),
        }
    }
}

/// The timeline of a complaint received at `received` under `preset`.
fn explain(
    settings: &Settings,
    preset: &str,
    received: &str,
    format: Format,
    lang: Option<&str>,
) -> anyhow::Result<()> {
    let mut s = settings.clone();
    s.procedure.preset = preset.to_string();
    let rt = ProcedureRuntime::load(&s).map_err(|e| UsageError(e.to_string()))?;
    let received = parse_time(received)?;
    let lang = lang.unwrap_or(&settings.organisation.language);
    let e = rt.current().explain(
        &rt.calendar,
        rt.tz,
        rt.hours,
        received,
        lang,
        settings.schedule.notify_staff_at_once,
    );
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        say_lines(&e.to_text());
    }
    Ok(())
}

//! `klachtd report`: the analysis report or the public annual report of a period, printed,
//! written to a directory, or queued as a mail to a staff role.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use klachtd::domain::report::Period;
use klachtd::service::Context;
use klachtd::service::report::{
    load_facts, queue_report, render_analysis, render_public, report_mail, with_bom,
};
use klachtd::service::retention::Progress;

use super::UsageError;
use super::args::ReportFormat;
use super::progress::CliProgress;

pub struct ReportRequest {
    pub period: Option<String>,
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
    pub public: bool,
    pub format: ReportFormat,
    pub output: Option<PathBuf>,
    pub lang: Option<String>,
    pub mail_to: Option<String>,
}

fn period_of(r: &ReportRequest) -> Result<Period, UsageError> {
    match (&r.period, r.from, r.to) {
        (Some(p), None, None) => Period::parse(p).map_err(|e| UsageError(e.to_string())),
        (None, Some(from), Some(to)) => {
            Period::range(from, to).map_err(|e| UsageError(e.to_string()))
        }
        _ => Err(UsageError(
            "give --period (2026, 2026-Q3, 2026-11) or --from and --to".into(),
        )),
    }
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, bytes)
        .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

pub async fn report(ctx: &Context, r: ReportRequest) -> anyhow::Result<ExitCode> {
    let period = period_of(&r)?;
    let lang = r
        .lang
        .clone()
        .unwrap_or_else(|| ctx.settings.organisation.language.clone());
    if !matches!(lang.as_str(), "nl" | "en") {
        return Err(UsageError(format!("--lang {lang:?}: expected nl or en")).into());
    }
    if r.output.is_none() && r.mail_to.is_none() {
        match (r.format, r.public) {
            (ReportFormat::Markdown, false) => {
                return Err(UsageError("--format markdown is for --public".into()).into());
            }
            (ReportFormat::Csv, true) => {
                return Err(UsageError(
                    "--format csv is for the analysis; the public report is html, markdown or json"
                        .into(),
                )
                .into());
            }
            _ => {}
        }
    }
    if let Some(role) = &r.mail_to
        && ctx.settings.typed.staff(role).is_empty()
    {
        return Err(UsageError(format!("--mail-to {role:?}: no staff role with addresses")).into());
    }

    // Reading the register is the long part: a bar on a terminal, lines otherwise (stderr).
    let progress = CliProgress::new();
    progress.begin("report", ctx.store.complaint_count().await?);
    let mut shown = 0usize;
    let facts = load_facts(ctx, &period, |read| {
        while shown < read {
            progress.advance();
            shown += 1;
        }
    })
    .await?;
    progress.finish();

    if let Some(role) = &r.mail_to {
        let mail = report_mail(ctx, facts, &period, &lang, r.public)?;
        let mut tx = ctx.store.begin().await?;
        let n = queue_report(ctx, tx.as_mut(), role, &mail, ctx.clock.now()).await?;
        tx.commit().await?;
        eprintln!("report {period} queued to {n} address(es) of {role}");
        return Ok(ExitCode::SUCCESS);
    }

    if let Some(dir) = &r.output {
        std::fs::create_dir_all(dir)
            .map_err(|e| UsageError(format!("cannot create {}: {e}", dir.display())))?;
        let written = if r.public {
            let out = render_public(ctx, facts, &period, &lang)?;
            vec![
                write_file(dir, "report.html", out.html.as_bytes())?,
                write_file(dir, "report.md", out.markdown.as_bytes())?,
            ]
        } else {
            let out = render_analysis(ctx, &facts, &period, &lang)?;
            vec![
                write_file(dir, "report.html", out.html_file.as_bytes())?,
                write_file(dir, "report.txt", out.text.as_bytes())?,
                write_file(dir, "report.csv", &with_bom(&out.csv))?,
            ]
        };
        for path in written {
            eprintln!("written: {}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }

    let mut stdout = std::io::stdout().lock();
    if r.public {
        let out = render_public(ctx, facts, &period, &lang)?;
        match r.format {
            ReportFormat::Json => {
                serde_json::to_writer_pretty(&mut stdout, &out.report)?;
                writeln!(stdout)?;
            }
            ReportFormat::Html => stdout.write_all(out.html.as_bytes())?,
            _ => super::say_lines(&out.markdown),
        }
    } else {
        let out = render_analysis(ctx, &facts, &period, &lang)?;
        match r.format {
            ReportFormat::Json => {
                serde_json::to_writer_pretty(&mut stdout, &out.analysis)?;
                writeln!(stdout)?;
            }
            ReportFormat::Html => stdout.write_all(out.html_file.as_bytes())?,
            ReportFormat::Csv => stdout.write_all(&with_bom(&out.csv))?,
            _ => super::say_lines(&out.text),
        }
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

//! `klachtd export --email` and `klachtd erase --email`: a person's requests under the AVG
//! (GDPR): access (art. 15) and erasure (art. 17). See klachtd::service::retention.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use klachtd::domain::types::EmailAddress;
use klachtd::service::retention::{self, PersonFound};
use klachtd::service::{Context, ServiceError};

use super::progress::CliProgress;
use super::purge::print_totals;
use super::{UsageError, say};

fn address(email: &str) -> Result<EmailAddress, UsageError> {
    EmailAddress::parse(email)
        .map_err(|e| UsageError(format!("--email {email:?} is not an email address: {e}")))
}

/// The address to erase, if erasing may go on: with `--yes`, or on a terminal where the
/// admin is asked. Neither: refused (exit 2) before anything is opened.
pub fn confirmable(email: &str, yes: bool) -> anyhow::Result<EmailAddress> {
    let a = address(email)?;
    if !yes && !std::io::stdin().is_terminal() {
        return Err(UsageError(
            "erase asks for confirmation on a terminal; not on one, give --yes to erase without asking"
                .into(),
        )
        .into());
    }
    Ok(a)
}

/// `klachtd-export-jan_at_example.nl-20261123`: a directory name from the address that is
/// safe as one path component.
fn default_dir(ctx: &Context, address: &EmailAddress) -> PathBuf {
    let safe: String = address
        .as_str()
        .replace('@', "_at_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let day = klachtd::domain::calendar::local_date(ctx.clock.now(), ctx.procedure.tz);
    PathBuf::from(format!("klachtd-export-{safe}-{}", day.format("%Y%m%d")))
}

fn usage_if_invalid(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Invalid(m) => UsageError(m).into(),
        other => other.into(),
    }
}

fn describe(found: &PersonFound) {
    for c in &found.complaints {
        say!(
            "complaint {} received {} [{}]{}",
            c.reference,
            c.received_at,
            c.status,
            c.received_by
                .as_deref()
                .map(|b| format!(", entered by {b}"))
                .unwrap_or_default()
        );
    }
    for m in &found.messages {
        say!(
            "mail received {} {}",
            m.received_at,
            m.reference
                .as_deref()
                .map(|r| format!("in complaint {r} of someone else"))
                .unwrap_or_else(|| "not filed with a complaint".into())
        );
    }
}

pub async fn export(ctx: &Context, email: &str, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    let address = address(email)?;
    let found = retention::find_person(ctx, &address)
        .await
        .map_err(usage_if_invalid)?;
    let dir = output.map_or_else(|| default_dir(ctx, &address), Path::to_path_buf);
    let report = retention::export(ctx, &found, &dir, &CliProgress::new())
        .await
        .map_err(usage_if_invalid)?;
    say!(
        "exported {} complaint(s), {} message(s) and {} mail(s) about {} to {}",
        report.complaints,
        report.messages,
        report.mails,
        address,
        report.dir
    );
    for m in &report.missing {
        say!("not in the export: {m}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Ask on the terminal; true for yes.
fn ask(question: &str) -> anyhow::Result<bool> {
    let mut err = std::io::stderr();
    write!(err, "{question} Type yes to go on: ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_lowercase().as_str(),
        "yes" | "y" | "ja" | "j"
    ))
}

pub async fn erase(
    ctx: &Context,
    address: &EmailAddress,
    reason: Option<&str>,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let found = retention::find_person(ctx, address)
        .await
        .map_err(usage_if_invalid)?;
    let anything = !found.complaints.is_empty() || !found.messages.is_empty();
    if anything {
        describe(&found);
        if !yes
            && !ask(&format!(
                "Erase the personal data of {} complaint(s) and {} other mail(s) of {address}? This cannot be undone.",
                found.complaints.len(),
                found.messages.len()
            ))?
        {
            say!("nothing erased");
            return Ok(ExitCode::from(1));
        }
    } else {
        say!("no complaint or mail of {address} is stored");
    }
    // Also with nothing found: history lines that name the address (a refused mail) go.
    let totals = retention::erase(ctx, &found, reason, &CliProgress::new()).await?;
    print_totals(&totals);
    Ok(ExitCode::SUCCESS)
}

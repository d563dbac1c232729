//! `klachtd migrate-store --from URL --to URL` (issue #12): copy the installation's database
//! into an empty one and compare the two (see klachtd::store::copy). Works from the two URLs
//! alone, not from the configuration, which may already name the new database.

use std::path::Path;
use std::process::ExitCode;

use klachtd::store::copy::{self, Outcome};
use klachtd::store::{Backend, StoreError};

use super::args::{Format, MigrateStoreArgs};
use super::progress::CliProgress;
use super::{UsageError, say};

pub const FROM_PASSWORD_ENV: &str = "KLACHTD_MIGRATE_FROM_PASSWORD";
pub const TO_PASSWORD_ENV: &str = "KLACHTD_MIGRATE_TO_PASSWORD";

pub async fn migrate_store(args: &MigrateStoreArgs) -> anyhow::Result<ExitCode> {
    let from = backend(
        "--from",
        &args.from,
        args.from_password_file.as_deref(),
        FROM_PASSWORD_ENV,
    )?;
    let to = backend(
        "--to",
        &args.to,
        args.to_password_file.as_deref(),
        TO_PASSWORD_ENV,
    )?;
    let outcome = copy::migrate(&from, &to, &CliProgress::new())
        .await
        .map_err(classify)?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print_table(&outcome);
    }
    let differing = outcome.differing();
    if differing.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(anyhow::anyhow!(
            "the target differs from the source in {}: was the source written to during the copy (stop the daemon first)? The target keeps what was copied; empty it before trying again",
            differing.join(", ")
        ))
    }
}

/// Refusals that change nothing are usage errors (exit 2), as for backup and restore.
fn classify(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Conflict(_) | StoreError::NotFound(_) => UsageError(e.to_string()).into(),
        other => other.into(),
    }
}

/// A URL with its password from a file or the environment (never from the command line,
/// where every user of the machine sees it).
fn backend(
    flag: &str,
    url: &str,
    password_file: Option<&Path>,
    env: &str,
) -> anyhow::Result<Backend> {
    let from_env = std::env::var(env).ok().filter(|p| !p.is_empty());
    let password = match (password_file, from_env) {
        (Some(_), Some(_)) => {
            return Err(UsageError(format!(
                "{flag}-password-file and {env} are both set: use one"
            ))
            .into());
        }
        (Some(path), None) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("{flag}-password-file {}: {e}", path.display())))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ),
        (None, password) => password,
    };
    let backend =
        Backend::from_url(url, password.clone()).map_err(|e| UsageError(format!("{flag}: {e}")))?;
    if password_file.is_some() && !backend.is_postgres() {
        return Err(UsageError(format!(
            "{flag}-password-file is for a postgres:// database, not {}",
            backend.shown()
        ))
        .into());
    }
    Ok(backend)
}

fn print_table(o: &Outcome) {
    say!("{} -> {}", o.from, o.to);
    say!(
        "{:<20} {:>10} {:>10} {:>10}  {}",
        "TABLE",
        "SOURCE",
        "COPIED",
        "TARGET",
        "CHECK"
    );
    for t in &o.tables {
        let check = if t.matches {
            "ok".to_string()
        } else {
            let mut what = Vec::new();
            if t.source.rows != t.target.rows || t.copied != t.target.rows {
                what.push("rows");
            }
            if (t.source.id_sum, t.source.id_max) != (t.target.id_sum, t.target.id_max) {
                what.push("ids");
            }
            if t.source.checksum != t.target.checksum {
                what.push("checksum");
            }
            format!("DIFFERS ({})", what.join(", "))
        };
        say!(
            "{:<20} {:>10} {:>10} {:>10}  {check}",
            t.table,
            t.source.rows,
            t.copied,
            t.target.rows
        );
    }
    say!(
        "{} rows in {} tables copied in {:.1} s, checked in {:.1} s: {}",
        o.rows_copied(),
        o.tables.len(),
        o.copy_seconds,
        o.verify_seconds,
        if o.matches {
            "the target matches the source"
        } else {
            "THE TARGET DIFFERS"
        }
    );
}

//! `klachtd migrate-blobs --to database|files` (issue #12): copy the raw mails and attachments
//! of an installation to the other place `database.blobs` can name (see
//! klachtd::service::blob_move), and say whether the switch would lose anything.

use std::process::ExitCode;
use std::sync::Arc;

use klachtd::service::Context;
use klachtd::service::blob_move::{self, MoveOutcome};
use klachtd::store::blobs::{Blobs, FileBlobs};

use super::args::{BlobTarget, Format};
use super::progress::CliProgress;
use super::{UsageError, say};

/// At most this many damaged or missing names are listed (all are in the JSON).
const LISTED: usize = 20;

pub async fn migrate_blobs(
    ctx: &Context,
    to: BlobTarget,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let Some(database) = ctx.store.database_blobs() else {
        return Err(UsageError(
            "this database (SQLite) keeps no blobs: raw mails and attachments stay files in the data directory; move the database to PostgreSQL first (klachtd migrate-store)".into(),
        )
        .into());
    };
    // Mail taken in during the copy would be in the source only: refused while any instance
    // sent a heartbeat lately (as `klachtd status` counts them alive).
    if let Some(shared) = ctx.store.leadership() {
        let within = ctx.settings.runtime.failover_seconds as f64 * 0.5;
        let running: Vec<String> = shared
            .instances()
            .await?
            .into_iter()
            .filter(|i| i.seen_seconds_ago <= within)
            .map(|i| format!("{} (pid {} on {})", i.id, i.pid, i.host))
            .collect();
        if !running.is_empty() {
            return Err(UsageError(format!(
                "klachtd runs on this database: {}; stop every instance first (klachtd status shows them)",
                running.join(", ")
            ))
            .into());
        }
    }
    let files: Arc<dyn Blobs> = Arc::new(FileBlobs::new(&ctx.settings.data_dir));
    let files_name = format!("files ({})", ctx.settings.data_dir.display());
    let database_name = format!(
        "database ({})",
        klachtd::store::postgres::redact_url(&ctx.settings.database_url())
    );
    let (from, to_blobs, names, setting) = match to {
        BlobTarget::Database => (
            files,
            database,
            (files_name.as_str(), database_name.as_str()),
            "database",
        ),
        BlobTarget::Files => (
            database,
            files,
            (database_name.as_str(), files_name.as_str()),
            "files",
        ),
    };
    let outcome = blob_move::move_blobs(
        ctx.store.as_ref(),
        from.as_ref(),
        to_blobs.as_ref(),
        names,
        &CliProgress::new(),
    )
    .await?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print_table(&outcome, setting);
    }
    if outcome.complete() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut problems = Vec::new();
    for k in &outcome.kinds {
        if !k.damaged.is_empty() {
            problems.push(format!(
                "{} damaged {} in the source (bytes that do not hash to the name): {}",
                k.damaged.len(),
                k.kind,
                listed(&k.damaged)
            ));
        }
        if !k.missing.is_empty() {
            problems.push(format!(
                "{} {} the database names are not in the target: {}",
                k.missing.len(),
                k.kind,
                listed(&k.missing)
            ));
        }
    }
    Err(anyhow::anyhow!(
        "do not switch database.blobs yet: {}. Was mail taken in during the copy (stop every instance and run again)?",
        problems.join("; ")
    ))
}

fn listed(names: &[String]) -> String {
    let mut shown = names
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LISTED {
        shown.push_str(&format!(" and {} more", names.len() - LISTED));
    }
    shown
}

fn print_table(o: &MoveOutcome, setting: &str) {
    say!("{} -> {}", o.from, o.to);
    say!(
        "{:<12} {:>8} {:>8} {:>8} {:>8} {:>11} {:>8}",
        "KIND",
        "SOURCE",
        "COPIED",
        "ALREADY",
        "DAMAGED",
        "REFERENCED",
        "MISSING"
    );
    for k in &o.kinds {
        say!(
            "{:<12} {:>8} {:>8} {:>8} {:>8} {:>11} {:>8}",
            k.kind,
            k.in_source,
            k.copied,
            k.already_there,
            k.damaged.len(),
            k.referenced,
            k.missing.len()
        );
    }
    let copied: u64 = o.kinds.iter().map(|k| k.copied).sum();
    let bytes: u64 = o.kinds.iter().map(|k| k.bytes).sum();
    say!(
        "{copied} blobs ({:.1} MB) copied in {:.1} s: {}",
        bytes as f64 / 1_000_000.0,
        o.seconds,
        if o.complete() {
            format!(
                "the target holds every blob the database names; set database.blobs = \"{setting}\" and start klachtd again (the source is left as it is)"
            )
        } else {
            "THE TARGET IS INCOMPLETE".to_string()
        }
    );
}

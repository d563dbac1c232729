//! `klachtd purge [--dry-run]`: remove the personal data of complaints whose retention period
//! has passed, as the daemon's daily job does (see klachtd::service::retention).

use std::process::ExitCode;

use klachtd::domain::calendar::local_date;
use klachtd::service::Context;
use klachtd::service::retention::{self, CLI_ACTOR, PurgeItem, RemovalTotals};

use super::args::Format;
use super::progress::CliProgress;
use super::say;

pub async fn purge(ctx: &Context, dry_run: bool, format: Format) -> anyhow::Result<ExitCode> {
    let today = local_date(ctx.clock.now(), ctx.procedure.tz);
    let items = retention::due_for_purge(ctx, today).await?;
    if dry_run {
        if format == Format::Json {
            println!("{}", serde_json::to_string_pretty(&items)?);
        } else {
            print_items(&items, false);
            say!(
                "{} complaint(s) would have their personal data removed",
                items.len()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = retention::purge(ctx, CLI_ACTOR, items, &CliProgress::new()).await?;
    let failed = report.items.iter().any(|i| i.result.starts_with("failed"));
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_items(&report.items, true);
        print_totals(&report.totals);
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_items(items: &[PurgeItem], with_result: bool) {
    if items.is_empty() {
        return;
    }
    say!(
        "{:<14} {:<10} {:<16} {}",
        "REFERENCE",
        "SINCE",
        "PROCEDURE",
        if with_result { "RULE / RESULT" } else { "RULE" }
    );
    for i in items {
        let anchor = i.anchor.get(..10).unwrap_or(&i.anchor);
        let again = if i.again {
            "; again: new data since"
        } else {
            ""
        };
        if with_result {
            say!(
                "{:<14} {:<10} {:<16} {} (from {anchor}{again}): {}",
                i.reference,
                i.since,
                i.procedure,
                i.rule,
                i.result
            );
        } else {
            say!(
                "{:<14} {:<10} {:<16} {} (from {anchor}{again})",
                i.reference,
                i.since,
                i.procedure,
                i.rule
            );
        }
    }
}

pub fn print_totals(t: &RemovalTotals) {
    say!(
        "personal data removed from {} complaint(s): {} message(s), {} attachment(s), {} outbox copies, {} history line(s); {} file(s) deleted ({} kept, still used elsewhere), {} Maildir file(s)",
        t.complaints,
        t.messages,
        t.attachments,
        t.outbox,
        t.history,
        t.files_deleted,
        t.files_shared,
        t.source_files_deleted
    );
    if t.complaints > 0 || t.messages > 0 || t.history > 0 {
        say!(
            "database: {}{}",
            if t.wal_truncated {
                "WAL truncated"
            } else {
                "WAL NOT truncated (another process was reading; the next purge truncates it)"
            },
            if t.vacuumed { ", vacuumed" } else { "" }
        );
    }
}

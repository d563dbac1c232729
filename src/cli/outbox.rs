//! `klachtd outbox list`: the outgoing mail queue.

use std::process::ExitCode;

use klachtd::service::Context;

use super::args::{Format, OutboxCmd};
use super::{say, truncate};

pub async fn outbox(ctx: &Context, action: OutboxCmd) -> anyhow::Result<ExitCode> {
    match action {
        OutboxCmd::List { status, format } => list(ctx, status.as_deref(), format).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The queue, or the entries with one status (queued, sending, sent, failed).
async fn list(ctx: &Context, status: Option<&str>, format: Format) -> anyhow::Result<()> {
    let rows = ctx.store.list_outbox(status).await?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for r in &rows {
        say!(
            "{:>5} {:<7} {:<18} {:<14} {:<30} tries {} {}",
            r.id,
            r.status,
            r.template,
            r.reference.clone().unwrap_or_default(),
            truncate(&r.recipients, 30),
            r.attempts,
            r.last_error.clone().unwrap_or_default()
        );
    }
    say!("{} in outbox", rows.len());
    Ok(())
}

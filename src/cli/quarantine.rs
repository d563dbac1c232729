//! `klachtd quarantine list|release`: the mails that could not be read.

use std::process::ExitCode;

use klachtd::app::App;
use klachtd::service::{Context, admin};

use super::args::{Format, QuarantineCmd};
use super::{LOG_TARGET, say};

pub async fn quarantine(app: &App, action: QuarantineCmd) -> anyhow::Result<ExitCode> {
    match action {
        QuarantineCmd::List { all, format } => list(&app.ctx, all, format).await?,
        QuarantineCmd::Release { id } => release(app, id).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The held entries, and with `all` the released ones too.
async fn list(ctx: &Context, all: bool, format: Format) -> anyhow::Result<()> {
    let rows = ctx.store.list_quarantine(all).await?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for r in &rows {
        say!(
            "{:>5} {:<8} {} <{}> {}",
            r.id,
            r.status,
            r.received_at,
            r.message_id.clone().unwrap_or_default(),
            r.reason
        );
    }
    say!("{} held or listed", rows.len());
    Ok(())
}

/// Retry a quarantined mail and send what that queued; the outcome is printed as JSON.
async fn release(app: &App, id: i64) -> anyhow::Result<()> {
    let outcome = admin::release(&app.ctx, id).await?;
    let report = klachtd::service::outbox::deliver_due(&app.ctx, app.transport.as_ref()).await?;
    println!("{}", serde_json::to_string(&outcome)?);
    tracing::debug!(target: LOG_TARGET, ?report, "outbox after release");
    Ok(())
}

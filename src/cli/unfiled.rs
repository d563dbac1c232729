//! `klachtd unfiled list|promote`: the mails kept without a reference number.

use std::process::ExitCode;

use klachtd::app::App;
use klachtd::service::{Context, admin};

use super::args::{Format, UnfiledCmd};
use super::{say, truncate};

pub async fn unfiled(app: &App, action: UnfiledCmd) -> anyhow::Result<ExitCode> {
    match action {
        UnfiledCmd::List { format } => list(&app.ctx, format).await?,
        UnfiledCmd::Promote { id, no_acknowledge } => promote(app, id, !no_acknowledge).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(ctx: &Context, format: Format) -> anyhow::Result<()> {
    let rows = ctx.store.list_unfiled().await?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for r in &rows {
        say!(
            "{:>5} {} {:<30} <{}> {}  ({})",
            r.id,
            r.received_at,
            truncate(&r.from, 30),
            r.message_id.clone().unwrap_or_default(),
            truncate(&r.subject, 40),
            r.reason
        );
    }
    say!("{} unfiled", rows.len());
    Ok(())
}

/// Register an unfiled mail as a complaint, send what that queued, and print its reference.
async fn promote(app: &App, id: i64, acknowledge: bool) -> anyhow::Result<()> {
    let reference = admin::promote(&app.ctx, id, acknowledge).await?;
    klachtd::service::outbox::deliver_due(&app.ctx, app.transport.as_ref()).await?;
    say!("{reference}");
    Ok(())
}

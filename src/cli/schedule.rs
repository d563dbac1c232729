//! `klachtd due` and `klachtd tick`: the scheduler, as a dry run or carried out.

use std::process::ExitCode;

use klachtd::app::App;
use klachtd::service::Context;
use klachtd::service::scheduler::{self, DueAction};

use super::args::Format;
use super::{say, time_or_now, truncate};

/// What falls due at `at` (default now); nothing is written.
pub async fn due(ctx: &Context, at: Option<&str>, format: Format) -> anyhow::Result<ExitCode> {
    let at = time_or_now(at, ctx)?;
    let rows = scheduler::due(ctx, at).await?;
    print_actions(&rows, format)?;
    Ok(ExitCode::SUCCESS)
}

/// Carry out what is due at the app's now (the time `tick --at` set), then deliver the outbox.
pub async fn tick(app: &App, format: Format) -> anyhow::Result<ExitCode> {
    let ctx = &app.ctx;
    let now = ctx.clock.now();
    let report = scheduler::run_due(ctx, now).await?;
    let delivery = klachtd::service::outbox::deliver_due(ctx, app.transport.as_ref()).await?;
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "at": klachtd::store::ts(now), "actions": report.actions, "jobs": report.jobs, "outbox": delivery })
            )?
        );
    } else {
        print_actions(&report.actions, format)?;
        for j in &report.jobs {
            say!("job: {j}");
        }
        say!(
            "outbox: {} sent, {} retrying, {} failed",
            delivery.sent,
            delivery.retrying,
            delivery.failed
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_actions(rows: &[DueAction], format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    for r in rows {
        say!(
            "{:<14} {:<20} {:<26} {:<20} {:<30} {}",
            r.reference,
            r.due_at,
            r.action,
            r.template.clone().unwrap_or_default(),
            truncate(&r.to.join(","), 30),
            r.result
        );
    }
    say!("{} action(s)", rows.len());
    Ok(())
}

//! `klachtd run [--once]`: the daemon, or one pass of it.

use std::collections::BTreeMap;
use std::process::ExitCode;

use klachtd::app::App;
use klachtd::service::ingest::Outcome;

use super::{LOG_TARGET, say};

pub async fn run(app: App, once: bool) -> anyhow::Result<ExitCode> {
    if once {
        run_once(&app).await?;
    } else {
        run_until_signal(app).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Process everything waiting, deliver the outbox, and say what happened in one line.
async fn run_once(app: &App) -> anyhow::Result<()> {
    let (outcomes, report) = app.run_once().await?;
    let mut counts = BTreeMap::<&str, usize>::new();
    for o in &outcomes {
        *counts.entry(outcome_name(o)).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    say!(
        "processed {} mail(s){}{}; outbox: {} sent, {} retrying, {} failed",
        outcomes.len(),
        if parts.is_empty() { "" } else { ": " },
        parts.join(", "),
        report.sent,
        report.retrying,
        report.failed
    );
    Ok(())
}

/// How an outcome is counted in the `run --once` summary.
fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Registered { .. } => "registered",
        Outcome::Threaded { .. } => "threaded",
        Outcome::Bounce { .. } => "bounces",
        Outcome::Unfiled { .. } => "unfiled",
        Outcome::Quarantined { .. } => "quarantined",
        Outcome::Duplicate => "duplicates",
        Outcome::AlreadyProcessed => "already processed",
    }
}

/// Watch the mailbox and send the outbox until SIGTERM or SIGINT, then finish the mail in hand.
async fn run_until_signal(app: App) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        klachtd::notify::stopping();
        tracing::info!(target: LOG_TARGET, "stop requested: finishing the mail in hand");
        let _ = tx.send(true);
    });
    tracing::info!(target: LOG_TARGET, guarantee = app.transport.guarantee(), "klachtd running");
    app.run_until_stopped(rx).await?;
    tracing::info!(target: LOG_TARGET, "stopped cleanly");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

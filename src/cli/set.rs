//! `klachtd set` and `klachtd complete`: the staff steps on a complaint, from the command line.

use std::process::ExitCode;

use klachtd::app::App;
use klachtd::service::{ServiceError, scheduler};

use super::{UsageError, say, time_or_now};

/// Who the history says took the step.
const ACTOR: &str = "cli";

/// Set a field, send what that queued, and say what changed.
pub async fn set(app: &App, reference: &str, field: &str, value: &str) -> anyhow::Result<ExitCode> {
    let note = scheduler::set_field(&app.ctx, reference, field, value, ACTOR)
        .await
        .map_err(usage_if_invalid)?;
    klachtd::service::outbox::deliver_due(&app.ctx, app.transport.as_ref()).await?;
    say!("{reference}: {note}");
    Ok(ExitCode::SUCCESS)
}

/// Complete a milestone at `at` (default now), send what that queued, and say what changed.
pub async fn complete(
    app: &App,
    reference: &str,
    milestone: &str,
    at: Option<&str>,
    verdict: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let at = time_or_now(at, &app.ctx)?;
    let note = scheduler::complete(&app.ctx, reference, milestone, at, verdict, ACTOR)
        .await
        .map_err(usage_if_invalid)?;
    klachtd::service::outbox::deliver_due(&app.ctx, app.transport.as_ref()).await?;
    say!("{reference}: {note}");
    Ok(ExitCode::SUCCESS)
}

/// A refused staff step (unknown field, wrong milestone, ...) is bad usage: exit 2.
fn usage_if_invalid(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Invalid(m) => UsageError(m).into(),
        other => other.into(),
    }
}

//! `klachtd void REFERENCE --reason TEXT`: void a registration made by mistake or for spam.

use std::process::ExitCode;

use klachtd::service::{Context, admin};

use super::say;

/// The number stays taken: a voided complaint keeps its reference.
pub async fn void(ctx: &Context, reference: &str, reason: &str) -> anyhow::Result<ExitCode> {
    admin::void(ctx, reference, reason).await?;
    say!("{reference} voided");
    Ok(ExitCode::SUCCESS)
}

//! `klachtd backup --output FILE` and `klachtd restore --input FILE [--force]` (see
//! klachtd::backup for what the file holds and how restore checks it), and the shared hold on
//! the installation that every store-opening command keeps so that restore can refuse.

use std::path::Path;
use std::process::ExitCode;
use std::sync::OnceLock;

use klachtd::backup::{BackupError, Installation, InstallationLock};
use klachtd::config::Settings;

use super::progress::CliProgress;
use super::{UsageError, say};

/// Refusals that change nothing are usage errors (exit 2); the rest are failures (exit 1).
fn classify(e: BackupError) -> anyhow::Error {
    match e {
        BackupError::OutputExists(_)
        | BackupError::NotEmpty(_)
        | BackupError::InUse { .. }
        | BackupError::Restoring(_)
        | BackupError::NotSqlite(_)
        | BackupError::NewerBackup { .. } => UsageError(e.to_string()).into(),
        other => other.into(),
    }
}

fn installation(settings: &Settings) -> anyhow::Result<Installation> {
    Installation::new(&settings.data_dir, &settings.database_url()).map_err(classify)
}

pub async fn backup(settings: &Settings, output: &Path) -> anyhow::Result<ExitCode> {
    let inst = installation(settings)?;
    hold_shared(&inst.data_dir)?;
    let summary = klachtd::backup::backup(&inst, output, &CliProgress::new())
        .await
        .map_err(classify)?;
    let m = &summary.manifest;
    say!(
        "backup {}: {} bytes, {} files, migration {}, {} complaints, {} messages, {} outbox mails",
        output.display(),
        summary.bytes,
        m.files.len(),
        m.migration,
        m.counts.get("complaints").copied().unwrap_or(0),
        m.counts.get("messages").copied().unwrap_or(0),
        m.counts.get("outbox").copied().unwrap_or(0),
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn restore(settings: &Settings, input: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let inst = installation(settings)?;
    let summary = klachtd::backup::restore(&inst, input, force, &CliProgress::new())
        .await
        .map_err(classify)?;
    let m = &summary.manifest;
    say!(
        "restored {} (made {} by klachtd {}): {} files verified, migration {}, {} complaints, {} messages",
        input.display(),
        m.created_at,
        m.klachtd_version,
        m.files.len(),
        m.migration,
        m.counts.get("complaints").copied().unwrap_or(0),
        m.counts.get("messages").copied().unwrap_or(0),
    );
    Ok(ExitCode::SUCCESS)
}

/// Hold the installation shared for the rest of the process (refused while a restore runs).
pub fn hold_shared(data_dir: &Path) -> anyhow::Result<()> {
    static HELD: OnceLock<Option<InstallationLock>> = OnceLock::new();
    let lock = InstallationLock::shared(data_dir).map_err(classify)?;
    let _ = HELD.set(lock);
    Ok(())
}

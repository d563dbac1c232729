//! The commands of the `klachtd` binary, a function per subcommand, and what they share:
//! the escaped output, the usage error (exit 2) and reading a time from the command line.

use chrono::{DateTime, Utc};

pub mod args;
pub mod backup;
pub mod check;
pub mod commands;
pub mod list;
pub mod migrate_blobs;
pub mod migrate_store;
pub mod outbox;
pub mod privacy;
pub mod procedure;
pub mod progress;
pub mod purge;
pub mod quarantine;
pub mod register;
pub mod report;
pub mod route;
pub mod run;
pub mod schedule;
pub mod set;
pub mod show;
pub mod status;
pub mod unfiled;
pub mod void;

/// Every table and text line goes out through this: text from mail (names, subjects,
/// attachment names) shows its control characters escaped instead of driving the terminal
/// (see klachtd::domain::display). JSON output is left to serde, which escapes C0 itself.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", klachtd::domain::display::escape(&format!($($arg)*)))
    };
}
pub(crate) use say;

/// The target of the binary's own log lines: `klachtd`, as when all of it was in main.rs, so
/// log filters (`RUST_LOG=klachtd=...`) and whatever reads the logs see what they saw before.
pub const LOG_TARGET: &str = "klachtd";

/// Text of several lines, each escaped.
pub fn say_lines(text: &str) {
    for line in text.lines() {
        say!("{line}");
    }
}

/// An error that means "bad usage or config" (exit 2) rather than a failure (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn parse_time(t: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| {
            UsageError(format!(
                "time {t:?} is not RFC 3339 (e.g. 2026-12-23T10:00:00+01:00): {e}"
            ))
            .into()
        })
}

/// `--at TIME` if given, else the app's now.
pub fn time_or_now(
    at: Option<&str>,
    ctx: &klachtd::service::Context,
) -> anyhow::Result<DateTime<Utc>> {
    match at {
        Some(t) => parse_time(t),
        None => Ok(ctx.clock.now()),
    }
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!(
            "{}…",
            s.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    }
}

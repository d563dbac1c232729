//! The `klachtd` command line: parse arguments, load config, build the app, run. Exit codes:
//! 0 success, 1 failure, 2 bad usage or config.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use klachtd::app::App;
use klachtd::clock::{FixedClock, SharedClock, SystemClock};
use klachtd::config::{LogFormat, Settings};
use klachtd::mail::templates::sample_context;
use klachtd::service::admin;

/// Every table and text line goes out through this: text from mail (names, subjects,
/// attachment names) shows its control characters escaped instead of driving the terminal
/// (see klachtd::domain::display). JSON output is left to serde, which escapes C0 itself.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", klachtd::domain::display::escape(&format!($($arg)*)))
    };
}

/// Text of several lines, each escaped.
fn say_lines(text: &str) {
    for line in text.lines() {
        say!("{line}");
    }
}

#[derive(Parser)]
#[command(
    name = "klachtd",
    version,
    about = "Email-driven complaint intake daemon"
)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(
        long,
        global = true,
        env = "KLACHTD_CONFIG",
        default_value = "config/klachtd.toml"
    )]
    config: PathBuf,
    /// Pretend it is this time (RFC 3339); for tests and catching up.
    #[arg(long, global = true, env = "KLACHTD_NOW", hide = true)]
    now: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: watch the mailbox, send the outbox (SIGTERM/SIGINT stop it cleanly).
    Run {
        /// Process everything waiting, deliver the outbox, and exit (also for cron).
        #[arg(long)]
        once: bool,
    },
    /// Validate the configuration and every template; report all problems at once.
    Check,
    /// The register.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// At most this many complaints (default: all).
        #[arg(long)]
        limit: Option<u64>,
        /// Skip this many complaints first.
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    /// One complaint with its messages and full history.
    Show {
        reference: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Mails that could not be read.
    Quarantine {
        #[command(subcommand)]
        action: QuarantineCmd,
    },
    /// Mails kept without a reference number (automatic mail, spam).
    Unfiled {
        #[command(subcommand)]
        action: UnfiledCmd,
    },
    /// Void a registration made by mistake or for spam; its number stays taken.
    Void {
        reference: String,
        #[arg(long)]
        reason: String,
    },
    /// The outgoing mail queue.
    Outbox {
        #[command(subcommand)]
        action: OutboxCmd,
    },
    /// What falls due (a dry run of the scheduler).
    Due {
        /// As if it were this time (RFC 3339); default now.
        #[arg(long)]
        at: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Run the scheduler as if it were TIME and carry out what is due (then deliver the outbox).
    Tick {
        #[arg(long)]
        at: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// The reference of the commands staff write in their replies (`#behandelaar ik`, ...).
    Commands {
        #[arg(long, value_parser = ["nl", "en"])]
        lang: Option<String>,
    },
    /// Which `[[routing]]` rule a mail would match, and why.
    Route {
        /// The mail, as an .eml file.
        #[arg(long)]
        explain: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// The procedure presets.
    Procedure {
        #[command(subcommand)]
        action: ProcedureCmd,
    },
    /// Set a field of a complaint: handler, category, cause, solution, kind, incident_kind,
    /// agreement, satisfaction, status, extension (weeks).
    Set {
        reference: String,
        field: String,
        value: String,
    },
    /// Complete a milestone (one done by staff, by an email we send, or the complainant's verdict).
    Complete {
        reference: String,
        milestone: String,
        /// When it was completed (RFC 3339); default now.
        #[arg(long)]
        at: Option<String>,
        /// For the verdict milestone: agree or disagree (disagree reopens the loop and alerts).
        #[arg(long)]
        verdict: Option<String>,
    },
}

#[derive(Subcommand)]
enum ProcedureCmd {
    /// The presets that ship (and any edited copies in the procedure directory).
    List,
    /// The timeline of a complaint received at DATETIME under a preset, with concrete dates.
    Explain {
        preset: String,
        #[arg(long)]
        received: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// nl or en (default: the organisation's language).
        #[arg(long)]
        lang: Option<String>,
    },
}

#[derive(Subcommand)]
enum QuarantineCmd {
    List {
        /// Also released entries.
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Retry a quarantined mail.
    Release { id: i64 },
}

#[derive(Subcommand)]
enum UnfiledCmd {
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Register an unfiled mail as a complaint.
    Promote {
        id: i64,
        /// Do not send an acknowledgement.
        #[arg(long)]
        no_acknowledge: bool,
    },
}

#[derive(Subcommand)]
enum OutboxCmd {
    List {
        /// queued, sending, sent or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

/// An error that means "bad usage or config" (exit 2) rather than a failure (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn main() -> ExitCode {
    // Complaints are personal data: whatever umask klachtd is started with, every file and
    // directory it makes (database, raw mails, attachments, outbox) is for its own user only.
    // SAFETY: umask(2) only sets this process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
    // One thread is plenty for a mail daemon, and keeps the hand-overs to SQLite's worker
    // thread cheap (see klachtd::cpu).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("klachtd: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            for line in format!("{e:#}").lines() {
                eprintln!("klachtd: {}", klachtd::domain::display::escape(line));
            }
            if e.downcast_ref::<UsageError>().is_some()
                || e.downcast_ref::<klachtd::config::ConfigError>().is_some()
            {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn env_vars() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with(klachtd::config::ENV_PREFIX))
        .collect()
}

fn init_logging(settings: &Settings) {
    let filter = klachtd::logging::filter(
        std::env::var("RUST_LOG")
            .ok()
            .as_deref()
            .unwrap_or(&settings.logging.level),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.logging.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn clock(cli: &Cli) -> anyhow::Result<SharedClock> {
    Ok(match &cli.now {
        Some(t) => Arc::new(FixedClock::new(parse_time(t)?)),
        None => Arc::new(SystemClock),
    })
}

fn parse_time(t: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| {
            UsageError(format!(
                "time {t:?} is not RFC 3339 (e.g. 2026-12-23T10:00:00+01:00): {e}"
            ))
            .into()
        })
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(&cli.config, &env_vars())?;
    init_logging(&settings);
    if settings.runtime.single_cpu {
        // Before the database opens: SQLite's worker threads inherit the mask.
        match klachtd::cpu::pin_to_current_cpu() {
            Ok(cpu) => tracing::debug!(cpu, "running on one CPU ([runtime] single_cpu)"),
            Err(e) => tracing::debug!(error = %e, "not pinned to one CPU"),
        }
    }
    let problems = settings.problems();
    if let Command::Commands { lang } = &cli.command {
        let lang = lang.as_deref().unwrap_or(&settings.organisation.language);
        print!("{}", klachtd::domain::command::reference_text(lang));
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Check = cli.command {
        return check(&settings, problems).await;
    }
    if let Command::Procedure { action } = &cli.command {
        return procedure_cmd(&settings, action);
    }
    if !problems.is_empty() {
        return Err(klachtd::config::ConfigError::Invalid(problems).into());
    }
    if let Command::Route { explain, format } = &cli.command {
        return route_cmd(&settings, explain, *format);
    }
    // `tick --at` runs the whole app at that time.
    let clock: SharedClock = match &cli.command {
        Command::Tick { at, .. } => Arc::new(FixedClock::new(parse_time(at)?)),
        _ => clock(&cli)?,
    };
    let app = App::build(settings, clock).await?;
    let ctx = app.ctx.clone();
    match cli.command {
        Command::Check
        | Command::Procedure { .. }
        | Command::Route { .. }
        | Command::Commands { .. } => {
            unreachable!("handled above")
        }
        Command::Due { at, format } => {
            let at = match at {
                Some(t) => parse_time(&t)?,
                None => ctx.clock.now(),
            };
            let rows = klachtd::service::scheduler::due(&ctx, at).await?;
            print_actions(&rows, format)?;
        }
        Command::Tick { format, .. } => {
            let now = ctx.clock.now();
            let report = klachtd::service::scheduler::run_due(&ctx, now).await?;
            let delivery =
                klachtd::service::outbox::deliver_due(&ctx, app.transport.as_ref()).await?;
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
        }
        Command::Set {
            reference,
            field,
            value,
        } => {
            let note =
                klachtd::service::scheduler::set_field(&ctx, &reference, &field, &value, "cli")
                    .await
                    .map_err(usage_if_invalid)?;
            klachtd::service::outbox::deliver_due(&ctx, app.transport.as_ref()).await?;
            say!("{reference}: {note}");
        }
        Command::Complete {
            reference,
            milestone,
            at,
            verdict,
        } => {
            let at = match at {
                Some(t) => parse_time(&t)?,
                None => ctx.clock.now(),
            };
            let note = klachtd::service::scheduler::complete(
                &ctx,
                &reference,
                &milestone,
                at,
                verdict.as_deref(),
                "cli",
            )
            .await
            .map_err(usage_if_invalid)?;
            klachtd::service::outbox::deliver_due(&ctx, app.transport.as_ref()).await?;
            say!("{reference}: {note}");
        }
        Command::Run { once: true } => {
            let (outcomes, report) = app.run_once().await?;
            let mut counts = std::collections::BTreeMap::<&str, usize>::new();
            for o in &outcomes {
                let k = match o {
                    klachtd::service::ingest::Outcome::Registered { .. } => "registered",
                    klachtd::service::ingest::Outcome::Threaded { .. } => "threaded",
                    klachtd::service::ingest::Outcome::Bounce { .. } => "bounces",
                    klachtd::service::ingest::Outcome::Unfiled { .. } => "unfiled",
                    klachtd::service::ingest::Outcome::Quarantined { .. } => "quarantined",
                    klachtd::service::ingest::Outcome::Duplicate => "duplicates",
                    klachtd::service::ingest::Outcome::AlreadyProcessed => "already processed",
                };
                *counts.entry(k).or_default() += 1;
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
        }
        Command::Run { once: false } => {
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("stop requested: finishing the mail in hand");
                let _ = tx.send(true);
            });
            tracing::info!(guarantee = app.transport.guarantee(), "klachtd running");
            app.run_until_stopped(rx).await?;
            tracing::info!("stopped cleanly");
        }
        Command::List {
            status,
            format,
            limit,
            offset,
        } => {
            list(&ctx, status.as_deref(), format, limit, offset).await?;
        }
        Command::Show { reference, format } => {
            let Some(c) = ctx.store.complaint(&reference).await? else {
                return Err(UsageError(format!("no complaint {reference}")).into());
            };
            let messages = ctx.store.messages(c.id).await?;
            let history = ctx.store.history(c.id).await?;
            if format == Format::Json {
                let v =
                    serde_json::json!({ "complaint": c, "messages": messages, "history": history });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                say!(
                    "{}  {}  [{}{}]",
                    c.reference,
                    c.subject,
                    c.status,
                    if c.severity == "serious" {
                        ", SERIOUS"
                    } else {
                        ""
                    }
                );
                say!("received:    {}", c.received_at);
                say!(
                    "complainant: {}{}",
                    c.complainant_name
                        .as_deref()
                        .map(|n| format!("{n} "))
                        .unwrap_or_default(),
                    c.complainant
                );
                say!("procedure:   {} ({})", c.procedure, c.procedure_version);
                if let Some(r) = &c.related_reference {
                    say!("related:     {r}");
                }
                if let Some(r) = &c.void_reason {
                    say!("voided:      {r}");
                }
                println!();
                say!("messages:");
                for m in &messages {
                    say!(
                        "  {} {} {} -> {}  <{}>  {}{}",
                        m.at,
                        if m.direction == "in" { "IN " } else { "OUT" },
                        m.from,
                        m.to,
                        m.message_id.clone().unwrap_or_default(),
                        m.subject,
                        m.status
                            .as_ref()
                            .map(|s| format!("  [{s}]"))
                            .unwrap_or_default()
                    );
                    for a in &m.attachments {
                        say!(
                            "      attachment: {} ({}, {} bytes){}",
                            a.name,
                            a.content_type,
                            a.size,
                            a.refused_reason
                                .as_ref()
                                .map(|r| format!(" REFUSED: {r}"))
                                .unwrap_or_default()
                        );
                    }
                }
                println!();
                say!("history:");
                for h in &history {
                    say!("  {} {:<22} {:<28} {}", h.at, h.event, h.actor, h.detail);
                }
            }
        }
        Command::Quarantine {
            action: QuarantineCmd::List { all, format },
        } => {
            let rows = ctx.store.list_quarantine(all).await?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
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
            }
        }
        Command::Quarantine {
            action: QuarantineCmd::Release { id },
        } => {
            let outcome = admin::release(&ctx, id).await?;
            let report =
                klachtd::service::outbox::deliver_due(&ctx, app.transport.as_ref()).await?;
            println!("{}", serde_json::to_string(&outcome)?);
            tracing::debug!(?report, "outbox after release");
        }
        Command::Unfiled {
            action: UnfiledCmd::List { format },
        } => {
            let rows = ctx.store.list_unfiled().await?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
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
            }
        }
        Command::Unfiled {
            action: UnfiledCmd::Promote { id, no_acknowledge },
        } => {
            let reference = admin::promote(&ctx, id, !no_acknowledge).await?;
            klachtd::service::outbox::deliver_due(&ctx, app.transport.as_ref()).await?;
            say!("{reference}");
        }
        Command::Void { reference, reason } => {
            admin::void(&ctx, &reference, &reason).await?;
            say!("{reference} voided");
        }
        Command::Outbox {
            action: OutboxCmd::List { status, format },
        } => {
            let rows = ctx.store.list_outbox(status.as_deref()).await?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
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
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn check(
    settings: &Settings,
    mut problems: Vec<klachtd::config::Problem>,
) -> anyhow::Result<ExitCode> {
    match klachtd::mail::templates::TemplateEngine::load(&settings.templates.dir) {
        Ok(engine) => {
            for e in engine.check_all(&sample_context()) {
                problems.push(klachtd::config::Problem::new(
                    "templates.dir",
                    e.to_string(),
                ));
            }
            for lang in klachtd::mail::templates::LANGUAGES {
                for name in [
                    "acknowledgement",
                    "bounce_alert",
                    "delivery_failed",
                    "operational_alert",
                ] {
                    if !engine.has(lang, name) {
                        problems.push(klachtd::config::Problem::new(
                            "templates.dir",
                            format!("template {name} ({lang}) is missing"),
                        ));
                    }
                }
            }
        }
        Err(errors) => {
            for e in errors {
                problems.push(klachtd::config::Problem::new(
                    "templates.dir",
                    e.to_string(),
                ));
            }
        }
    }
    match klachtd::procedure_runtime::ProcedureRuntime::load(settings) {
        Ok(rt) => {
            let engine =
                klachtd::mail::templates::TemplateEngine::load(&settings.templates.dir).ok();
            let has_template = |t: &str| {
                engine.as_ref().is_some_and(|e| {
                    klachtd::mail::templates::LANGUAGES
                        .iter()
                        .all(|l| e.has(l, t))
                })
            };
            let has_role = |r: &str| r == "handler" || !settings.staff.addresses(r).is_empty();
            for e in rt.current().check(&has_template, &has_role) {
                problems.push(klachtd::config::Problem::new(
                    "procedure.preset",
                    e.to_string(),
                ));
            }
        }
        Err(e) => problems.push(klachtd::config::Problem::new(
            "procedure.preset",
            e.to_string(),
        )),
    }
    if problems.is_empty() {
        say!("configuration, procedure and templates are valid");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            say_lines(&p.to_string());
        }
        say!("{} problem(s)", problems.len());
        Ok(ExitCode::from(2))
    }
}

/// A refused staff step (unknown field, wrong milestone, ...) is bad usage: exit 2.
fn usage_if_invalid(e: klachtd::service::ServiceError) -> anyhow::Error {
    match e {
        klachtd::service::ServiceError::Invalid(m) => UsageError(m).into(),
        other => other.into(),
    }
}

fn print_actions(
    rows: &[klachtd::service::scheduler::DueAction],
    format: Format,
) -> anyhow::Result<()> {
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

fn procedure_cmd(settings: &Settings, action: &ProcedureCmd) -> anyhow::Result<ExitCode> {
    use klachtd::procedure_runtime::list_presets;
    match action {
        ProcedureCmd::List => {
            for (name, parsed) in list_presets(&settings.procedure.dir) {
                match parsed {
                    Ok(p) => say!("{:<16} {}  ({})", name, p.title, p.version),
                    Err(e) => say!("{:<16} INVALID: {}", name, e.join("; ")),
                }
            }
        }
        ProcedureCmd::Explain {
            preset,
            received,
            format,
            lang,
        } => {
            let mut s = settings.clone();
            s.procedure.preset = preset.clone();
            let rt = klachtd::procedure_runtime::ProcedureRuntime::load(&s)
                .map_err(|e| UsageError(e.to_string()))?;
            let received = parse_time(received)?;
            let lang = lang
                .clone()
                .unwrap_or_else(|| settings.organisation.language.clone());
            let e = rt.current().explain(
                &rt.calendar,
                rt.tz,
                rt.hours,
                received,
                &lang,
                settings.schedule.notify_staff_at_once,
            );
            if *format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                say_lines(&e.to_text());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `klachtd list`: the register, read a page at a time (each page one short read, so a long
/// listing never keeps the daemon's WAL from being checkpointed) and written as it comes.
/// The JSON is byte for byte what `serde_json::to_string_pretty` makes of the whole array.
async fn list(
    ctx: &klachtd::service::Context,
    status: Option<&str>,
    format: Format,
    limit: Option<u64>,
    offset: u64,
) -> anyhow::Result<()> {
    use klachtd::domain::display::escape;
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut remaining = limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let mut after: Option<klachtd::store::RegisterPosition> = None;
    let mut count = 0usize;
    if format != Format::Json {
        writeln!(
            out,
            "{:<14} {:<20} {:<8} {:<8} {:<30} SUBJECT",
            "REFERENCE", "RECEIVED", "STATUS", "SEVERITY", "COMPLAINANT"
        )?;
    }
    while remaining > 0 {
        let want = remaining.min(klachtd::store::PAGE_ROWS);
        let skip = if after.is_none() { offset } else { 0 };
        let rows = ctx
            .store
            .list_complaints_page(status, after.as_ref(), skip, want)
            .await?;
        for r in &rows {
            if format == Format::Json {
                let item = serde_json::to_string_pretty(r)?;
                out.write_all(if count == 0 { b"[\n" } else { b",\n" })?;
                for (i, line) in item.lines().enumerate() {
                    if i > 0 {
                        out.write_all(b"\n")?;
                    }
                    write!(out, "  {line}")?;
                }
            } else {
                let line = format!(
                    "{:<14} {:<20} {:<8} {:<8} {:<30} {}",
                    r.reference,
                    r.received_at,
                    r.status,
                    r.severity,
                    truncate(&r.complainant, 30),
                    truncate(&r.subject, 60)
                );
                writeln!(out, "{}", escape(&line))?;
            }
            count += 1;
        }
        remaining -= rows.len() as i64;
        match rows.last() {
            Some(last) if rows.len() as i64 == want => after = Some(last.position.clone()),
            _ => break,
        }
    }
    if format == Format::Json {
        out.write_all(if count == 0 { b"[]\n" } else { b"\n]\n" })?;
    } else {
        writeln!(out, "{count} complaint(s)")?;
    }
    out.flush()?;
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!(
            "{}…",
            s.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    }
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

/// `klachtd route --explain FILE.eml`: the rule a mail would match, without registering it.
fn route_cmd(
    settings: &Settings,
    file: &std::path::Path,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let rules = settings
        .routing_rules()
        .map_err(klachtd::config::ConfigError::Invalid)?;
    let raw =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let parsed = klachtd::mail::parse::parse(&raw)
        .map_err(|e| anyhow::anyhow!("{} is not a readable mail: {e}", file.display()))?;
    let sent_to = klachtd::service::ingest::sent_to_addresses(&parsed);
    let kind = klachtd::procedure_runtime::ProcedureRuntime::load(settings)?
        .current()
        .default_kind();
    let facts = klachtd::domain::routing::RoutingFacts {
        from: &parsed.facts.from,
        sent_to: &sent_to,
        subject: &parsed.facts.subject,
        text: &parsed.text,
        kind: &kind,
    };
    let m = klachtd::domain::routing::route(&rules, &facts);
    let rule = m.as_ref().and_then(|m| rules.get(m.rule));
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "matched": m.is_some(),
                "rule": m.as_ref().map(|m| m.rule),
                "name": m.as_ref().map(|m| m.name.clone()),
                "because": m.as_ref().map(|m| m.because.clone()).unwrap_or_default(),
                "handler": rule.and_then(|r| r.handler.as_ref()).map(|h| h.to_string()),
                "notify": rule.map(|r| r.notify.clone()).unwrap_or_else(|| vec!["receiver".into()]),
            }))?
        ),
        Format::Table | Format::Text => match (&m, rule) {
            (Some(m), Some(r)) => {
                say!("rule {} {:?}: {}", m.rule + 1, m.name, m.because.join(", "));
                say!(
                    "handler: {}",
                    r.handler
                        .as_ref()
                        .map(|h| h.as_str())
                        .unwrap_or("(unchanged)")
                );
                say!(
                    "told: {}",
                    if r.notify.is_empty() {
                        "receiver".to_string()
                    } else {
                        r.notify.join(", ")
                    }
                );
            }
            _ => say!("no rule matches: the receiving role is told"),
        },
    }
    Ok(ExitCode::SUCCESS)
}

//! The `klachtd` command line: parse arguments, load config, build the app, run. Exit codes:
//! 0 success, 1 failure, 2 bad usage or config. The commands themselves are in [`cli`], a
//! function per subcommand.

mod cli;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use klachtd::app::App;
use klachtd::clock::{FixedClock, SharedClock, SystemClock};
use klachtd::config::{ConfigError, LogFormat, Problem, Settings, Valid};

use cli::UsageError;
use cli::args::{Cli, Command};

fn main() -> ExitCode {
    // Complaints are personal data: whatever umask klachtd is started with, every file and
    // directory it makes (database, raw mails, attachments, outbox) is for its own user only.
    // SAFETY: umask(2) only sets this process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let args = Cli::parse();
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
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            for line in format!("{e:#}").lines() {
                eprintln!("klachtd: {}", klachtd::domain::display::escape(line));
            }
            if e.downcast_ref::<UsageError>().is_some() || e.downcast_ref::<ConfigError>().is_some()
            {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Load the settings and hand the command to its function. The first four work from the
/// configuration alone (`check` reports its problems itself); the others work on the register
/// and refuse an invalid configuration before anything is opened.
async fn run(args: Cli) -> anyhow::Result<ExitCode> {
    // migrate-store works from its two URLs, not from the configuration (which may already
    // name the new database, or not be there on the machine that does the move). Its checks
    // stream whole tables, each statement longer than sqlx's slow-statement warning (1 s).
    if let Command::MigrateStore(m) = &args.command {
        init_logging_with(
            std::env::var("RUST_LOG")
                .ok()
                .as_deref()
                .unwrap_or("warn,sqlx::query=error"),
            LogFormat::Text,
        );
        return cli::migrate_store::migrate_store(m).await;
    }
    let settings = Settings::load(&args.config, &env_vars())?;
    init_logging(&settings);
    pin_to_one_cpu(&settings);
    let problems = settings.problems();
    let now = args.now.as_deref();
    match args.command {
        Command::Commands { lang } => cli::commands::reference(&settings, lang.as_deref()),
        Command::Check => cli::check::check(&settings, problems),
        Command::Procedure { action } => cli::procedure::procedure(&settings, &action),
        Command::Route { explain, format } => {
            cli::route::route(&*valid(settings, problems)?, &explain, format)
        }
        Command::Run { once } => cli::run::run(open(settings, problems, now).await?, once).await,
        Command::List {
            status,
            format,
            limit,
            offset,
        } => {
            let app = open(settings, problems, now).await?;
            cli::list::list(&app.ctx, status.as_deref(), format, limit, offset).await
        }
        Command::Register {
            from,
            to,
            status,
            format,
            output,
        } => {
            let app = open(settings, problems, now).await?;
            let filter = klachtd::service::register_export::RegisterFilter {
                from,
                to,
                status,
                older_with_measure: false,
            };
            cli::register::register(&app.ctx, filter, format, output.as_deref()).await
        }
        Command::Report {
            period,
            from,
            to,
            public,
            format,
            output,
            lang,
            mail_to,
        } => {
            let app = open(settings, problems, now).await?;
            cli::report::report(
                &app.ctx,
                cli::report::ReportRequest {
                    period,
                    from,
                    to,
                    public,
                    format,
                    output,
                    lang,
                    mail_to,
                },
            )
            .await
        }
        Command::Show { reference, format } => {
            let app = open(settings, problems, now).await?;
            cli::show::show(&app.ctx, &reference, format).await
        }
        Command::Quarantine { action } => {
            let app = open(settings, problems, now).await?;
            cli::quarantine::quarantine(&app, action).await
        }
        Command::Unfiled { action } => {
            let app = open(settings, problems, now).await?;
            cli::unfiled::unfiled(&app, action).await
        }
        Command::Void { reference, reason } => {
            let app = open(settings, problems, now).await?;
            cli::void::void(&app.ctx, &reference, &reason).await
        }
        Command::Outbox { action } => {
            let app = open(settings, problems, now).await?;
            cli::outbox::outbox(&app.ctx, action).await
        }
        Command::Due { at, format } => {
            let app = open(settings, problems, now).await?;
            cli::schedule::due(&app.ctx, at.as_deref(), format).await
        }
        // `tick --at` runs the whole app at that time.
        Command::Tick { at, format } => {
            let app = open(settings, problems, Some(&at)).await?;
            cli::schedule::tick(&app, format).await
        }
        Command::Set {
            reference,
            field,
            value,
        } => {
            let app = open(settings, problems, now).await?;
            cli::set::set(&app, &reference, &field, &value).await
        }
        Command::Purge { dry_run, format } => {
            let app = open(settings, problems, now).await?;
            cli::purge::purge(&app.ctx, dry_run, format).await
        }
        Command::Export { email, output } => {
            let app = open(settings, problems, now).await?;
            cli::privacy::export(&app.ctx, &email, output.as_deref()).await
        }
        Command::Erase { email, reason, yes } => {
            // Refused before anything is opened: no terminal to ask on, and no --yes.
            let address = cli::privacy::confirmable(&email, yes)?;
            let app = open(settings, problems, now).await?;
            cli::privacy::erase(&app.ctx, &address, reason.as_deref(), yes).await
        }
        Command::Status { format } => {
            let app = open(settings, problems, now).await?;
            cli::status::status(&app.ctx, format).await
        }
        Command::Backup { output } => {
            cli::backup::backup(&*valid(settings, problems)?, &output).await
        }
        Command::Restore { input, force } => {
            cli::backup::restore(&*valid(settings, problems)?, &input, force).await
        }
        Command::MigrateStore(m) => cli::migrate_store::migrate_store(&m).await,
        Command::MigrateBlobs { to, format } => {
            let app = open(settings, problems, now).await?;
            cli::migrate_blobs::migrate_blobs(&app.ctx, to, format).await
        }
        Command::Complete {
            reference,
            milestone,
            at,
            verdict,
        } => {
            let app = open(settings, problems, now).await?;
            let (at, verdict) = (at.as_deref(), verdict.as_deref());
            cli::set::complete(&app, &reference, &milestone, at, verdict).await
        }
    }
}

/// The settings, if they have no problems (exit 2 listing them all otherwise).
fn valid(settings: Settings, problems: Vec<Problem>) -> Result<Valid, ConfigError> {
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    settings.validate().map_err(ConfigError::Invalid)
}

/// The app on a valid configuration, its clock at `at` (RFC 3339) when given, else now.
async fn open(settings: Settings, problems: Vec<Problem>, at: Option<&str>) -> anyhow::Result<App> {
    let settings = valid(settings, problems)?;
    // Held until the process ends, so that `klachtd restore` can tell the installation is used.
    cli::backup::hold_shared(&settings.data_dir)?;
    Ok(App::build(settings, clock(at)?).await?)
}

fn env_vars() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with(klachtd::config::ENV_PREFIX))
        .collect()
}

fn init_logging(settings: &Settings) {
    init_logging_with(
        std::env::var("RUST_LOG")
            .ok()
            .as_deref()
            .unwrap_or(&settings.logging.level),
        settings.logging.format,
    );
}

fn init_logging_with(directives: &str, format: LogFormat) {
    let filter = klachtd::logging::filter(directives);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// `[runtime] single_cpu`. Before the database opens: SQLite's worker threads inherit the mask.
fn pin_to_one_cpu(settings: &Settings) {
    if settings.runtime.single_cpu {
        match klachtd::cpu::pin_to_current_cpu() {
            Ok(cpu) => tracing::debug!(cpu, "running on one CPU ([runtime] single_cpu)"),
            Err(e) => tracing::debug!(error = %e, "not pinned to one CPU"),
        }
    }
}

fn clock(at: Option<&str>) -> anyhow::Result<SharedClock> {
    Ok(match at {
        Some(t) => Arc::new(FixedClock::new(cli::parse_time(t)?)),
        None => Arc::new(SystemClock),
    })
}

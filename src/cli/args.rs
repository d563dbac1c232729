//! The command line's arguments. The doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "klachtd",
    version,
    about = "Email-driven complaint intake daemon"
)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(
        long,
        global = true,
        env = "KLACHTD_CONFIG",
        default_value = "config/klachtd.toml"
    )]
    pub config: PathBuf,
    /// Pretend it is this time (RFC 3339); for tests and catching up.
    #[arg(long, global = true, env = "KLACHTD_NOW", hide = true)]
    pub now: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Text,
    Json,
}

/// `klachtd migrate-blobs --to`: where the raw mails and attachments go (`database.blobs`).
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum BlobTarget {
    /// Files under the data directory.
    Files,
    /// The `blobs` table of the PostgreSQL database.
    Database,
}

/// `klachtd register --format`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RegisterFormat {
    Table,
    /// UTF-8 with a byte-order mark, `register.csv_separator` (default `;`) between fields.
    Csv,
    Json,
    /// An Excel workbook; needs `--output FILE.xlsx`.
    Xlsx,
}

/// `klachtd report --format`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    /// The plain-text report (the mail's text part).
    Text,
    /// The HTML report with its charts embedded.
    Html,
    /// The public report as Markdown (with --public only).
    Markdown,
    /// The figures, `register.csv_separator` between fields, UTF-8 with a byte-order mark.
    Csv,
    /// The figures as computed (the analysis, or with --public the public report's cells).
    Json,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// Only complaints in this state: new, in_progress, resolved, closed, reopened,
        /// voided, or open (everything not closed or voided).
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
    /// The complaint register: one row per complaint with the fields of seed 004 (handler,
    /// cause, solution, agreement, date handled) and each milestone's due and done date.
    Register {
        /// Received on or after this day (YYYY-MM-DD, organisation time).
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Received on or before this day.
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        /// As `list --status`.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: RegisterFormat,
        /// Write to this file instead of standard output (required for xlsx).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// The analysis report of a period: counts by kind, category, severity, channel and
    /// incident/structural against the period before, times and deadlines in working days,
    /// escalations, verdicts, satisfaction, causes and measures. With --public: the anonymised
    /// annual report (aggregates only, small counts shown as "< 5").
    Report {
        /// A year (2026), a quarter (2026-Q3), a month (2026-11); or use --from/--to.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        period: Option<String>,
        /// First day (YYYY-MM-DD, organisation time), with --to.
        #[arg(long, requires = "to")]
        from: Option<chrono::NaiveDate>,
        /// Last day, included, with --from.
        #[arg(long, requires = "from")]
        to: Option<chrono::NaiveDate>,
        /// The public annual report instead of the analysis.
        #[arg(long)]
        public: bool,
        /// What to print on standard output (ignored with --output).
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        /// Write the report to this directory: report.html (charts embedded), report.txt and
        /// report.csv; with --public report.html and report.md.
        #[arg(long)]
        output: Option<PathBuf>,
        /// nl or en (default: the organisation's language).
        #[arg(long)]
        lang: Option<String>,
        /// Queue the report as a mail to this staff role now (sent by the outbox).
        #[arg(long)]
        mail_to: Option<String>,
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
    /// severity, agreement, satisfaction, status, reopen (a reason), extension (weeks, then
    /// an optional reason), extension_agreement, subject_person. The complaint's rules decide
    /// what may change, as for the staff commands by mail.
    Set {
        reference: String,
        field: String,
        value: String,
    },
    /// Remove the personal data of complaints whose retention period has passed (each
    /// procedure's `retention`; the daemon does this once a day). A statistics row without
    /// personal data stays, so the register and reports over past years still add up.
    Purge {
        /// Only list what would go and why; nothing is removed.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Everything stored about one person (AVG/GDPR art. 15): export.json with their
    /// complaints, messages and history, and their mails as .eml. The address matches in any
    /// case, also on complaints entered on their behalf.
    Export {
        #[arg(long)]
        email: String,
        /// The directory to write, new or empty (default: klachtd-export-ADDRESS-DATE).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Remove everything stored about one person (AVG/GDPR art. 17), as purge does; the
    /// history records it without their data. Asks first on a terminal.
    Erase {
        #[arg(long)]
        email: String,
        /// Why, for the history (their name and address are taken out of it).
        #[arg(long)]
        reason: Option<String>,
        /// Do not ask (for scripts; required when not on a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// The instances on this database, which one leads and how fresh its lease is, and the
    /// outbox queue (depth, oldest queued mail).
    Status {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// A consistent copy of the installation, also while the daemon runs: the database
    /// (VACUUM INTO), the raw mails and attachments, and a manifest with counts and checksums.
    Backup {
        /// The file to write (a tar; it must not exist yet).
        #[arg(long)]
        output: PathBuf,
    },
    /// Put a backup back, after checking every file against its manifest. Refused while any
    /// klachtd process uses the installation, and into a data directory that is not empty.
    Restore {
        /// The file `klachtd backup` wrote.
        #[arg(long)]
        input: PathBuf,
        /// Replace the database, raw mails, attachments and key that are there.
        #[arg(long)]
        force: bool,
    },
    /// Move the installation's database to another: SQLite to PostgreSQL, back, or to another
    /// SQLite file. Copies every table (complaints, messages, history, outbox, schedules,
    /// counters, settings) in one transaction, keeping ids, then reads both databases again and
    /// compares each table's rows, ids and a checksum of its keys (exit 1 when any differs).
    ///
    /// Stop the daemon, and every instance on the database, first: this is a move, and what
    /// the source records after the copy is not in the target (a SQLite source in use by a
    /// klachtd process is refused). The target must be empty: a new SQLite file, or a new
    /// PostgreSQL database (its tables are made); one with rows in it is refused. Raw mails and
    /// attachments stay where they are, in the data directory. Does not read the
    /// configuration: afterwards point `database.url` at the target.
    MigrateStore(MigrateStoreArgs),
    /// Copy the raw mails and attachments to the other place they can be kept: from the data
    /// directory into the PostgreSQL database (`--to database`) or back (`--to files`). Each
    /// one read is checked against its SHA-256 name; afterwards the target must hold every
    /// one the database names (exit 1 when any is damaged or missing). Stop every instance
    /// first, then set `database.blobs` to the target and start again. The source is left as
    /// it is; a run can be repeated.
    MigrateBlobs {
        #[arg(long, value_enum)]
        to: BlobTarget,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
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

/// `klachtd migrate-store`.
#[derive(Args)]
pub struct MigrateStoreArgs {
    /// The database to copy: `sqlite:///var/lib/klachtd/klachtd.db` or
    /// `postgres://user@host/database` (the password separately, see below).
    #[arg(long)]
    pub from: String,
    /// The database to copy into, empty or new, in the same form.
    #[arg(long)]
    pub to: String,
    /// A file holding the password for --from (or set KLACHTD_MIGRATE_FROM_PASSWORD).
    #[arg(long)]
    pub from_password_file: Option<PathBuf>,
    /// A file holding the password for --to (or set KLACHTD_MIGRATE_TO_PASSWORD).
    #[arg(long)]
    pub to_password_file: Option<PathBuf>,
    /// table (text) or json: each table's rows copied and both sides' counts and checksums.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Subcommand)]
pub enum ProcedureCmd {
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
pub enum QuarantineCmd {
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
pub enum UnfiledCmd {
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
pub enum OutboxCmd {
    List {
        /// queued, sending, sent or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

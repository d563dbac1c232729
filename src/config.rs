//! Settings: a TOML file, then `KLACHTD__SECTION__KEY` environment overrides (so secrets need
//! not be in the file), then validation of everything at once. Every problem is reported with
//! the key it concerns (and the file and line where TOML itself is wrong).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::types::EmailAddress;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: String,
        line: usize,
        message: String,
    },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("config is invalid:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

/// One thing wrong with the configuration, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// A password, token or key. Never printed: `Debug` and `Display` show `***`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where the database, raw mails, attachments and the outbox live by default.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    pub organisation: Organisation,
    pub mailbox: Mailbox,
    pub outgoing: Outgoing,
    #[serde(default)]
    pub database: Database,
    #[serde(default)]
    pub staff: Staff,
    #[serde(default)]
    pub procedure: ProcedureChoice,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub acknowledgement: AcknowledgementSettings,
    #[serde(default)]
    pub intake: Intake,
    #[serde(default)]
    pub templates: Templates,
    #[serde(default)]
    pub outbox: OutboxSettings,
    #[serde(default)]
    pub calendar: CalendarSettings,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub logging: Logging,
    #[serde(default)]
    pub runtime: RuntimeSettings,
    /// Who hears first of a new complaint: tried in order, the first match wins.
    #[serde(default)]
    pub routing: Vec<RoutingSetting>,
    #[serde(default)]
    pub register: RegisterSettings,
    #[serde(default)]
    pub reports: ReportSettings,
    /// `[http]`: health and metrics listener, off unless `listen` is set.
    #[serde(default)]
    pub http: HttpSettings,
}

/// One `[[routing]]` rule as written; [`Settings::routing_rules`] validates it.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RoutingSetting {
    pub name: String,
    /// Sender addresses.
    #[serde(default)]
    pub sender: Vec<String>,
    /// Sender domains (a subdomain matches too).
    #[serde(default)]
    pub sender_domain: Vec<String>,
    /// Words or phrases in the subject or text (whole words, any case, accents ignored).
    #[serde(default)]
    pub words: Vec<String>,
    /// The address the mail was sent to, e.g. `service+locatie-noord@example.org`.
    #[serde(default)]
    pub sent_to: Vec<String>,
    /// Kinds of the procedure.
    #[serde(default)]
    pub kind: Vec<String>,
    /// Made the complaint's handler.
    pub handler: Option<String>,
    /// Roles (of `[staff]`) told in place of the receiving role.
    #[serde(default)]
    pub notify: Vec<String>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    pub name: String,
    #[serde(default = "default_tz")]
    pub time_zone: String,
    #[serde(default = "default_language")]
    pub language: String,
    #[serde(default = "default_prefix")]
    pub reference_prefix: String,
    /// Our mail domain: Message-IDs and VERP addresses are made on it.
    pub mail_domain: String,
    /// Key for the HMAC tokens in our VERP addresses and Message-IDs. When empty, a random key
    /// is made once and kept in `DATA_DIR/secret.key`.
    #[serde(default)]
    pub secret: Secret,
    /// Keys used before `secret` (newest first): tokens made with them are still accepted
    /// until `previous_secrets_until`, so replies to mail sent before a rotation still work.
    #[serde(default)]
    pub previous_secrets: Vec<Secret>,
    /// The same, one key per file (first line).
    #[serde(default)]
    pub previous_secret_files: Vec<PathBuf>,
    /// The last day (organisation time) previous keys are accepted. Required with them: a key
    /// rotated out because it leaked must stop working.
    #[serde(default, deserialize_with = "date_or_text")]
    pub previous_secrets_until: Option<chrono::NaiveDate>,
    /// Between the service address's local part and a reply token: `+` (RFC 5233
    /// subaddressing) or `-` / `=` for servers configured so.
    #[serde(default = "default_separator")]
    pub address_separator: char,
}

/// A date as TOML writes it (`2027-03-31`, a local date) or as text (`"2027-03-31"`, also what
/// an environment override gives).
fn date_or_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<chrono::NaiveDate>, D::Error> {
    use serde::de::Error;
    let text = match toml::Value::deserialize(d)? {
        toml::Value::String(s) => s,
        toml::Value::Datetime(t) => t.to_string(),
        other => {
            return Err(D::Error::custom(format!(
                "expected a date YYYY-MM-DD, got {other}"
            )));
        }
    };
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(Some)
        .map_err(|_| D::Error::custom(format!("expected a date YYYY-MM-DD, got {text:?}")))
}

fn default_separator() -> char {
    '+'
}

fn default_tz() -> String {
    "Europe/Amsterdam".into()
}
fn default_language() -> String {
    "nl".into()
}
fn default_prefix() -> String {
    "KL".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailboxKind {
    Maildir,
    Imap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    #[default]
    Implicit,
    Starttls,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    #[default]
    Login,
    Plain,
    Xoauth2,
}

/// Where incoming mail is read. `kind = "maildir"` needs `path`; `kind = "imap"` needs `host`,
/// `username` and a password (or the OAuth2 keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mailbox {
    pub kind: MailboxKind,
    pub path: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    #[serde(default)]
    pub password: Secret,
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub auth: AuthMethod,
    #[serde(default = "default_folder")]
    pub folder: String,
    pub processed_folder: Option<String>,
    #[serde(default = "default_true")]
    pub idle: bool,
    /// Seconds between polls when IDLE is off or not offered (Maildir is always polled).
    #[serde(default = "default_poll")]
    pub poll_interval: u64,
    #[serde(flatten)]
    pub oauth2: OAuth2,
}

fn default_folder() -> String {
    "INBOX".into()
}
fn default_true() -> bool {
    true
}
fn default_poll() -> u64 {
    60
}

/// XOAUTH2 token settings (Microsoft 365, Gmail), shared by `[mailbox]` and `[outgoing]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OAuth2 {
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Secret,
    pub client_secret_file: Option<PathBuf>,
    /// klachtd rewrites this file when the provider rotates the refresh token.
    pub refresh_token_file: Option<PathBuf>,
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutgoingKind {
    File,
    Smtp,
}

/// How our mail leaves. `kind = "file"` writes one `.eml` per mail into `path` (exactly once);
/// `kind = "smtp"` sends through a server (at least once).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outgoing {
    pub kind: OutgoingKind,
    /// Our From address, e.g. `service@example.org`.
    pub from: String,
    /// Display name on our From header; defaults to the organisation's name.
    pub from_name: Option<String>,
    pub path: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    #[serde(default)]
    pub password: Secret,
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub auth: AuthMethod,
    /// SMTP only: mails sent at the same time, each over its own kept-open connection.
    #[serde(default = "default_connections")]
    pub connections: usize,
    #[serde(flatten)]
    pub oauth2: OAuth2,
}

fn default_connections() -> usize {
    2
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// `sqlite://PATH` (default: `DATA_DIR/klachtd.db`) or `postgres://USER@HOST/DB`.
    pub url: Option<Secret>,
    /// PostgreSQL: the password, kept out of the URL (or `KLACHTD__DATABASE__PASSWORD`).
    #[serde(default)]
    pub password: Secret,
    /// PostgreSQL: a file holding the password (a container or systemd credential).
    pub password_file: Option<PathBuf>,
    /// PostgreSQL TLS: `disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`.
    pub sslmode: Option<String>,
    /// PostgreSQL TLS: the CA certificate `verify-ca` / `verify-full` check against.
    pub ssl_root_cert: Option<PathBuf>,
    /// Where raw mails and attachments are kept: `files` under the data directory (the
    /// default), or `database` (PostgreSQL only: instances on several hosts then need no
    /// shared disk).
    #[serde(default)]
    pub blobs: BlobLocation,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobLocation {
    #[default]
    Files,
    Database,
}

/// Staff addresses per role. `admin` gets operational alerts, `receiver` registers and
/// coordinates, `director` gets escalations; any other role name may be added.
#[derive(Debug, Clone, Deserialize)]
pub struct Staff {
    /// Staff commands by mail also need a DMARC or DKIM pass for the From domain in the
    /// `Authentication-Results` of `intake.trusted_authserv_id` (RFC 8601).
    #[serde(default)]
    pub require_dmarc_pass: bool,
    /// A staff mail whose commands were applied is confirmed by a short reply.
    #[serde(default = "default_true")]
    pub confirm_commands: bool,
    #[serde(flatten)]
    pub roles: BTreeMap<String, Vec<String>>,
}

impl Default for Staff {
    fn default() -> Self {
        Self {
            require_dmarc_pass: false,
            confirm_commands: true,
            roles: BTreeMap::new(),
        }
    }
}

/// Keys of `[staff]` that are settings, not role names.
pub const STAFF_SETTING_KEYS: &[&str] = &["require_dmarc_pass", "confirm_commands"];

impl Staff {
    /// How many valid addresses `role` has (for the checks; the application reads them once
    /// into [`Typed::staff`]).
    fn valid_addresses(&self, role: &str) -> usize {
        self.roles
            .get(role)
            .map(|list| {
                list.iter()
                    .filter(|a| EmailAddress::parse(a).is_ok())
                    .count()
            })
            .unwrap_or(0)
    }

    /// Whether `role` has an address: for `klachtd check` on settings not yet validated.
    pub fn has_role(&self, role: &str) -> bool {
        self.valid_addresses(role) > 0
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcedureChoice {
    /// A preset name (`mzo`, `academie`, `korein`, `gelukwerkt`, `leefstijlwijzer`, `awb`) or
    /// the path of an edited copy ending in `.toml`.
    #[serde(default = "default_preset")]
    pub preset: String,
    /// Where presets are looked up by name.
    #[serde(default = "default_procedure_dir")]
    pub dir: PathBuf,
    /// The categories of the register (`#categorie`, `klachtd set REF category`). Empty: any
    /// text. Listed: only these (compared without regard to case; stored as written here).
    #[serde(default)]
    pub categories: Vec<String>,
}

impl Default for ProcedureChoice {
    fn default() -> Self {
        Self {
            preset: default_preset(),
            dir: default_procedure_dir(),
            categories: Vec::new(),
        }
    }
}

fn default_preset() -> String {
    "mzo".into()
}
fn default_procedure_dir() -> PathBuf {
    PathBuf::from("config/procedures")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// A mail larger than this is registered with its headers and text; attachments refused.
    #[serde(default = "default_max_mail")]
    pub max_mail_bytes: u64,
    /// Automatic acknowledgements to one address within 24 hours (stops auto-responder loops).
    #[serde(default = "default_ack_cap")]
    pub acknowledgements_per_address_per_day: u32,
    /// Acknowledgements released per hour in all (a flood of forged senders must not make us
    /// a backscatter amplifier); beyond it they wait in the outbox, they are not dropped.
    #[serde(default = "default_acks_per_hour")]
    pub acknowledgements_per_hour: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_mail_bytes: default_max_mail(),
            acknowledgements_per_address_per_day: default_ack_cap(),
            acknowledgements_per_hour: default_acks_per_hour(),
        }
    }
}

fn default_acks_per_hour() -> u32 {
    100
}

/// What the acknowledgement may say back.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgementSettings {
    /// Quote the complainant's text in the acknowledgement. Off by default: the From of a mail
    /// can be forged, and quoting a forged mail back sends the forger's text to a stranger
    /// (spam relayed through us). Never done when DMARC failed at our receiving server.
    #[serde(default)]
    pub quote_text: bool,
}

fn default_max_mail() -> u64 {
    25 * 1024 * 1024
}
fn default_ack_cap() -> u32 {
    3
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intake {
    /// Senders of web-form mail: the person is in the Reply-To, not the From.
    #[serde(default)]
    pub web_form_senders: Vec<String>,
    /// A header the receiving server sets on spam, and the value that means spam
    /// (compared case-insensitively; the value must start the header's text).
    #[serde(default = "default_spam_header")]
    pub spam_header: String,
    #[serde(default = "default_spam_value")]
    pub spam_value: String,
    /// The authserv-id of our own receiving server in `Authentication-Results`; only its
    /// verdicts are believed. Empty: no DMARC verdict is used.
    #[serde(default)]
    pub trusted_authserv_id: String,
    /// Whether a DMARC failure reported by that server keeps a mail from being acknowledged
    /// (a forged From would otherwise make us mail an innocent address).
    #[serde(default = "default_true")]
    pub dmarc_fail_blocks_acknowledgement: bool,
}

impl Default for Intake {
    fn default() -> Self {
        Self {
            web_form_senders: Vec::new(),
            spam_header: default_spam_header(),
            spam_value: default_spam_value(),
            trusted_authserv_id: String::new(),
            dmarc_fail_blocks_acknowledgement: true,
        }
    }
}

fn default_spam_header() -> String {
    "X-Spam-Flag".into()
}
fn default_spam_value() -> String {
    "YES".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Templates {
    /// Holds `nl/` and `en/`, each with `NAME.subject.hbs`, `NAME.txt.hbs`, `NAME.html.hbs`
    /// and `partials/`.
    #[serde(default = "default_templates_dir")]
    pub dir: PathBuf,
}

impl Default for Templates {
    fn default() -> Self {
        Self {
            dir: default_templates_dir(),
        }
    }
}

fn default_templates_dir() -> PathBuf {
    PathBuf::from("templates")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    /// First retry after a transient failure, in seconds; doubles each time.
    #[serde(default = "default_retry_initial")]
    pub retry_initial_seconds: u64,
    #[serde(default = "default_retry_max")]
    pub retry_max_seconds: u64,
    /// A mail still failing transiently after this many hours is given up as permanent.
    #[serde(default = "default_give_up")]
    pub give_up_after_hours: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            retry_initial_seconds: default_retry_initial(),
            retry_max_seconds: default_retry_max(),
            give_up_after_hours: default_give_up(),
        }
    }
}

fn default_retry_initial() -> u64 {
    30
}
fn default_retry_max() -> u64 {
    3600
}
fn default_give_up() -> u64 {
    72
}

/// Which days count as working days.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSettings {
    /// General holidays the organisation works on anyway, by name (e.g. `"bevrijdingsdag"`).
    #[serde(default)]
    pub drop_holidays: Vec<String>,
    /// Days equated with a general holiday by decree (Atw art. 3(3)), beyond the shipped ones.
    #[serde(default)]
    pub equated_days: Vec<chrono::NaiveDate>,
    /// The organisation's own closing days (not working days).
    #[serde(default)]
    pub closing_days: Vec<chrono::NaiveDate>,
    /// Whether a calendar-day deadline ending on a closing day moves to the next day, as it does
    /// for a weekend or general holiday (Atw art. 1). Off by default, as for Awb terms.
    #[serde(default)]
    pub closing_days_move_deadlines: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Mail to people waits for working hours on working days (`HH:MM`); serious-complaint
    /// alerts go out at once.
    #[serde(default = "default_hours_start")]
    pub working_hours_start: String,
    #[serde(default = "default_hours_end")]
    pub working_hours_end: String,
    /// Cron expression (Quartz syntax, seconds first; write weekdays by name) of the daily
    /// digest to the receiving role, in the organisation's time zone. Empty: no digest.
    #[serde(default = "default_digest")]
    pub digest: String,
    /// How many working days ahead the digest looks.
    #[serde(default = "default_digest_days")]
    pub digest_days_ahead: u32,
    /// New-complaint notices to staff go out at once, also at night and on weekends. Off: they
    /// wait for the next working moment unless the complaint is serious.
    #[serde(default)]
    pub notify_staff_at_once: bool,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            working_hours_start: default_hours_start(),
            working_hours_end: default_hours_end(),
            digest: default_digest(),
            digest_days_ahead: default_digest_days(),
            notify_staff_at_once: false,
        }
    }
}

fn default_hours_start() -> String {
    "08:00".into()
}
fn default_hours_end() -> String {
    "18:00".into()
}
fn default_digest() -> String {
    "0 0 8 * * Mon-Fri".into()
}
fn default_digest_days() -> u32 {
    3
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// How the process runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Keep all threads on the CPU klachtd starts on (see [`crate::cpu`]).
    #[serde(default = "default_true")]
    pub single_cpu: bool,
    /// PostgreSQL with several instances: within how many seconds a standby takes over from a
    /// leader that died (see [`crate::service::leader`]).
    #[serde(default = "default_failover_seconds")]
    pub failover_seconds: u64,
}

fn default_failover_seconds() -> u64 {
    10
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            single_cpu: true,
            failover_seconds: default_failover_seconds(),
        }
    }
}

/// `klachtd register`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterSettings {
    /// Between the fields of `register --format csv`: `;` is what Excel and LibreOffice
    /// expect with a Dutch locale (where `,` is the decimal separator); `,` for an English one.
    #[serde(default = "default_csv_separator")]
    pub csv_separator: char,
}

impl Default for RegisterSettings {
    fn default() -> Self {
        Self {
            csv_separator: default_csv_separator(),
        }
    }
}

fn default_csv_separator() -> char {
    ';'
}

/// `klachtd report` and the reports mailed on a schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// Counts from 1 to this minus one are not shown in the public report.
    #[serde(default = "default_public_threshold")]
    pub public_threshold: u32,
    /// A public body (Awb chapter 9): the public report cites article 9:12a. Unset: true
    /// under the `awb` procedure.
    #[serde(default)]
    pub public_body: Option<bool>,
    /// `[[reports.mail]]`: a report mailed on a schedule.
    #[serde(default)]
    pub mail: Vec<ReportMailSetting>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            public_threshold: default_public_threshold(),
            public_body: None,
            mail: Vec::new(),
        }
    }
}

fn default_public_threshold() -> u32 {
    5
}

/// One `[[reports.mail]]` as written; [`Settings::report_mailings`] reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportMailSetting {
    /// When, as a cron expression with seconds first in the organisation's time zone
    /// (`"0 0 8 15 1 *"`: 15 January, 08:00).
    pub schedule: String,
    /// Which period the report covers: the last full `year`, `quarter` or `month` before the
    /// moment it is sent.
    pub period: String,
    /// The staff role it goes to.
    pub to: String,
    /// The public annual report (HTML and Markdown attached) instead of the analysis.
    #[serde(default)]
    pub public: bool,
    /// `nl` or `en`; default the organisation's language.
    #[serde(default)]
    pub lang: Option<String>,
}

/// The period a scheduled report covers, relative to when it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportSpan {
    Year,
    Quarter,
    Month,
}

/// `[[reports.mail]]`, read.
#[derive(Debug, Clone)]
pub struct ReportMailing {
    /// Its position in the file: the job's name (`report-N`).
    pub index: usize,
    pub schedule: cron::Schedule,
    pub span: ReportSpan,
    pub role: String,
    pub public: bool,
    pub lang: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `klachtd=debug`. `RUST_LOG` wins when set.
    #[serde(default = "default_level")]
    pub level: String,
}

impl Default for Logging {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: default_level(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}

// ---- [http]: the health and metrics listener ----------------------------------------------

/// `[http]`: `/healthz`, `/readyz` and `/metrics` (see [`crate::http`]). Off while `listen`
/// is unset; loopback in the example, because the endpoints need no password and the metrics
/// tell how busy the complaint desk is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address and port, e.g. `127.0.0.1:9187`. A bad value is a syntax error naming the file,
    /// the line and this key.
    #[serde(default, deserialize_with = "listen_address")]
    pub listen: Option<std::net::SocketAddr>,
    /// `/healthz` turns 503 when every mailbox pass has failed for this long, counted from
    /// the first failure: IMAP reconnects with backoff, so one lost connection is no alarm.
    /// (A first pass still running, a large backlog, is `/readyz`'s business.)
    #[serde(default = "default_mailbox_stale", deserialize_with = "mailbox_stale")]
    pub mailbox_stale_seconds: u64,
    /// ... when a mail that is due has waited in the outbox for this long.
    #[serde(default = "default_outbox_stale", deserialize_with = "outbox_stale")]
    pub outbox_stale_seconds: u64,
    /// ... when the scheduler is this far behind its earliest due action.
    #[serde(default = "default_scheduler_lag", deserialize_with = "scheduler_lag")]
    pub scheduler_lag_seconds: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: None,
            mailbox_stale_seconds: default_mailbox_stale(),
            outbox_stale_seconds: default_outbox_stale(),
            scheduler_lag_seconds: default_scheduler_lag(),
        }
    }
}

fn default_mailbox_stale() -> u64 {
    300
}
fn default_outbox_stale() -> u64 {
    900
}
fn default_scheduler_lag() -> u64 {
    300
}

/// `http.listen` as a socket address. The messages name the key: serde's own ("invalid socket
/// address syntax") does not say which one, nor does it for an environment override.
fn listen_address<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::net::SocketAddr>, D::Error> {
    // Any value, so `KLACHTD__HTTP__LISTEN=9187` (read as a number) gets the same message.
    let value = toml::Value::deserialize(d)?;
    let parsed = match &value {
        toml::Value::String(text) => text.parse().ok(),
        _ => None,
    };
    parsed.map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "http.listen: expected an address and port such as \"127.0.0.1:9187\", got {value}"
        ))
    })
}

fn positive_seconds<'de, D: serde::Deserializer<'de>>(d: D, key: &str) -> Result<u64, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(serde::de::Error::custom(format!(
            "{key}: must be at least 1 second"
        ))),
        n => Ok(n),
    }
}

fn mailbox_stale<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    positive_seconds(d, "http.mailbox_stale_seconds")
}
fn outbox_stale<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    positive_seconds(d, "http.outbox_stale_seconds")
}
fn scheduler_lag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    positive_seconds(d, "http.scheduler_lag_seconds")
}

// ---- end of [http] ------------------------------------------------------------------------

pub const ENV_PREFIX: &str = "KLACHTD__";

impl Settings {
    /// Read the file, apply `KLACHTD__SECTION__KEY` overrides from `env`, and check the syntax
    /// and types. Semantic checks are in [`Settings::problems`].
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_text(&text, &path.display().to_string(), env)
    }

    pub fn from_text(
        text: &str,
        origin: &str,
        env: &[(String, String)],
    ) -> Result<Settings, ConfigError> {
        // Parse the file alone first, so an error in it is named with its line.
        let mut table: toml::Table = toml::from_str(text).map_err(|e| syntax(origin, text, &e))?;
        let _: Settings = toml::from_str(text).map_err(|e| syntax(origin, text, &e))?;
        let mut overridden = Vec::new();
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            if path.iter().any(|p| p.is_empty()) {
                return Err(ConfigError::Env {
                    var: var.clone(),
                    message: "expected KLACHTD__SECTION__KEY".into(),
                });
            }
            set_path(&mut table, &path, env_value(value)).map_err(|message| ConfigError::Env {
                var: var.clone(),
                message,
            })?;
            overridden.push(var.clone());
        }
        if overridden.is_empty() {
            return toml::from_str(text).map_err(|e| syntax(origin, text, &e));
        }
        Settings::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Env {
            var: overridden.join(", "),
            message: e.message().to_string(),
        })
    }

    /// Every semantic problem at once (addresses, time zone, required keys per kind, ...).
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.organisation.name.trim().is_empty() {
            p.push(Problem::new("organisation.name", "must not be empty"));
        }
        if let Err(problem) = self.time_zone() {
            p.push(problem);
        }
        if !matches!(self.organisation.language.as_str(), "nl" | "en") {
            p.push(Problem::new(
                "organisation.language",
                "must be \"nl\" or \"en\"",
            ));
        }
        let prefix = &self.organisation.reference_prefix;
        if prefix.is_empty()
            || prefix.len() > 16
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            p.push(Problem::new(
                "organisation.reference_prefix",
                "must be 1 to 16 letters, digits or dashes",
            ));
        }
        let domain = &self.organisation.mail_domain;
        if domain.is_empty() || domain.contains('@') || domain.contains(char::is_whitespace) {
            p.push(Problem::new(
                "organisation.mail_domain",
                "must be a domain such as example.org",
            ));
        }
        match self.mailbox.kind {
            MailboxKind::Maildir => {
                if self.mailbox.path.is_none() {
                    p.push(Problem::new(
                        "mailbox.path",
                        "required for kind = \"maildir\"",
                    ));
                }
            }
            MailboxKind::Imap => {
                remote_problems(
                    "mailbox",
                    &self.mailbox.host,
                    &self.mailbox.username,
                    &self.mailbox.password,
                    &self.mailbox.password_file,
                    self.mailbox.auth,
                    &self.mailbox.oauth2,
                    &mut p,
                );
                if self.mailbox.poll_interval == 0 {
                    p.push(Problem::new(
                        "mailbox.poll_interval",
                        "must be at least 1 second",
                    ));
                }
            }
        }
        match EmailAddress::parse(&self.outgoing.from) {
            Err(_) => p.push(Problem::new(
                "outgoing.from",
                format!("not an email address: {:?}", self.outgoing.from),
            )),
            Ok(service) => {
                if let Some(problem) = self.tokened_address_problem(&service) {
                    p.push(problem);
                }
            }
        }
        match self.outgoing.kind {
            OutgoingKind::File => {
                if self.outgoing.path.is_none() {
                    p.push(Problem::new(
                        "outgoing.path",
                        "required for kind = \"file\"",
                    ));
                }
            }
            OutgoingKind::Smtp => {
                if self.outgoing.host.is_none() {
                    p.push(Problem::new(
                        "outgoing.host",
                        "required for kind = \"smtp\"",
                    ));
                }
                if !(1..=16).contains(&self.outgoing.connections) {
                    p.push(Problem::new(
                        "outgoing.connections",
                        "must be between 1 and 16",
                    ));
                }
                if self.outgoing.auth == AuthMethod::Xoauth2 || self.outgoing.username.is_some() {
                    remote_problems(
                        "outgoing",
                        &self.outgoing.host,
                        &self.outgoing.username,
                        &self.outgoing.password,
                        &self.outgoing.password_file,
                        self.outgoing.auth,
                        &self.outgoing.oauth2,
                        &mut p,
                    );
                }
            }
        }
        if let Some(url) = &self.database.url {
            let u = url.expose();
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://"))
            {
                p.push(Problem::new(
                    "database.url",
                    "must start with sqlite: or postgres://",
                ));
            }
        }
        if !(3..=3600).contains(&self.runtime.failover_seconds) {
            p.push(Problem::new(
                "runtime.failover_seconds",
                "must be between 3 and 3600",
            ));
        }
        if let Some(mode) = &self.database.sslmode
            && let Err(e) = crate::store::postgres::parse_ssl_mode(mode)
        {
            p.push(Problem::new("database.sslmode", e));
        }
        // Read by the TLS handshake only, where a missing file is "No such file or directory"
        // without its name: named here, before anything connects.
        if let Some(cert) = &self.database.ssl_root_cert
            && let Err(e) = std::fs::File::open(cert)
        {
            p.push(Problem::new(
                "database.ssl_root_cert",
                format!("cannot read {}: {e}", cert.display()),
            ));
        }
        if self.database.blobs == BlobLocation::Database
            && !self
                .database
                .url
                .as_ref()
                .is_some_and(|u| u.expose().starts_with("postgres"))
        {
            p.push(Problem::new(
                "database.blobs",
                "\"database\" needs a PostgreSQL database.url; SQLite keeps them as files",
            ));
        }
        if !self.database.password.is_empty() && self.database.password_file.is_some() {
            p.push(Problem::new(
                "database.password_file",
                "set password or password_file, not both",
            ));
        }
        if !crate::domain::token::SEPARATORS.contains(&self.organisation.address_separator) {
            p.push(Problem::new(
                "organisation.address_separator",
                format!(
                    "must be \"+\", \"-\" or \"=\", got {:?}",
                    self.organisation.address_separator
                ),
            ));
        }
        let previous = self.organisation.previous_secrets.len()
            + self.organisation.previous_secret_files.len();
        if previous > 0 && self.organisation.previous_secrets_until.is_none() {
            p.push(Problem::new(
                "organisation.previous_secrets_until",
                "required with previous_secrets / previous_secret_files: the last day the old keys are accepted (YYYY-MM-DD)",
            ));
        }
        for (i, s) in self.organisation.previous_secrets.iter().enumerate() {
            if s.is_empty() {
                p.push(Problem::new(
                    format!("organisation.previous_secrets[{i}]"),
                    "must not be empty",
                ));
            }
        }
        if self.staff.require_dmarc_pass && self.intake.trusted_authserv_id.trim().is_empty() {
            p.push(Problem::new(
                "staff.require_dmarc_pass",
                "needs intake.trusted_authserv_id: only our own server's Authentication-Results are believed",
            ));
        }
        for (role, list) in &self.staff.roles {
            for a in list {
                if EmailAddress::parse(a).is_err() {
                    p.push(Problem::new(
                        format!("staff.{role}"),
                        format!("not an email address: {a:?}"),
                    ));
                }
            }
        }
        for role in ["admin", "receiver"] {
            if self.staff.valid_addresses(role) == 0 {
                p.push(Problem::new(
                    format!("staff.{role}"),
                    "needs at least one address",
                ));
            }
        }
        for (i, a) in self.intake.web_form_senders.iter().enumerate() {
            if EmailAddress::parse(a).is_err() {
                p.push(Problem::new(
                    format!("intake.web_form_senders[{i}]"),
                    format!("not an email address: {a:?}"),
                ));
            }
        }
        if self.intake.spam_header.contains(':') || self.intake.spam_header.contains(' ') {
            p.push(Problem::new(
                "intake.spam_header",
                "a header name, without ':'",
            ));
        }
        if self.limits.max_mail_bytes < 1024 {
            p.push(Problem::new(
                "limits.max_mail_bytes",
                "must be at least 1024",
            ));
        }
        if self.outbox.retry_initial_seconds == 0
            || self.outbox.retry_max_seconds < self.outbox.retry_initial_seconds
        {
            p.push(Problem::new(
                "outbox.retry_initial_seconds",
                "must be at least 1 and at most outbox.retry_max_seconds",
            ));
        }
        for (key, value) in [
            (
                "schedule.working_hours_start",
                &self.schedule.working_hours_start,
            ),
            (
                "schedule.working_hours_end",
                &self.schedule.working_hours_end,
            ),
        ] {
            if chrono::NaiveTime::parse_from_str(value, "%H:%M").is_err() {
                p.push(Problem::new(key, format!("expected HH:MM, got {value:?}")));
            }
        }
        if let Err(problem) = self.digest_schedule() {
            p.push(problem);
        }
        if let Err(problem) = self.report_mailings() {
            p.push(problem);
        }
        if !matches!(self.register.csv_separator, ';' | ',' | '\t' | '|') {
            p.push(Problem::new(
                "register.csv_separator",
                "must be \";\", \",\", \"|\" or a tab",
            ));
        }
        for (i, c) in self.procedure.categories.iter().enumerate() {
            if c.trim().is_empty() {
                p.push(Problem::new(
                    format!("procedure.categories[{i}]"),
                    "must not be empty",
                ));
            }
        }
        if let Err(routing) = self.routing_rules() {
            p.extend(routing);
        }
        p
    }

    /// `[[routing]]` as typed rules, or every problem with its key.
    pub fn routing_rules(&self) -> Result<Vec<crate::domain::routing::RoutingRule>, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        for (i, r) in self.routing.iter().enumerate() {
            let key = |field: &str| format!("routing[{i}].{field}");
            let addresses = |field: &str, list: &[String], problems: &mut Vec<Problem>| {
                list.iter()
                    .filter_map(|a| match EmailAddress::parse(a) {
                        Ok(a) => Some(a),
                        Err(e) => {
                            problems.push(Problem::new(key(field), format!("{a:?}: {e}")));
                            None
                        }
                    })
                    .collect::<Vec<_>>()
            };
            if r.name.trim().is_empty() {
                problems.push(Problem::new(key("name"), "must not be empty"));
            }
            let senders = addresses("sender", &r.sender, &mut problems);
            let sent_to = addresses("sent_to", &r.sent_to, &mut problems);
            let handler = r.handler.as_ref().and_then(|h| {
                addresses("handler", std::slice::from_ref(h), &mut problems)
                    .into_iter()
                    .next()
            });
            let sender_domains: Vec<String> = r
                .sender_domain
                .iter()
                .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
                .collect();
            if sender_domains
                .iter()
                .any(|d| d.is_empty() || !d.contains('.') || d.contains('@'))
            {
                problems.push(Problem::new(
                    key("sender_domain"),
                    "each is a domain such as \"school.example.nl\"",
                ));
            }
            if r.words.iter().any(|w| w.trim().is_empty()) {
                problems.push(Problem::new(key("words"), "an empty word matches nothing"));
            }
            if senders.is_empty()
                && r.sender.is_empty()
                && sender_domains.is_empty()
                && r.words.is_empty()
                && r.sent_to.is_empty()
                && r.kind.is_empty()
            {
                problems.push(Problem::new(
                    key("name"),
                    "needs at least one of sender, sender_domain, words, sent_to, kind",
                ));
            }
            if r.handler.is_none() && r.notify.is_empty() {
                problems.push(Problem::new(
                    key("notify"),
                    "give handler or notify (or both)",
                ));
            }
            for role in &r.notify {
                if self.staff.valid_addresses(role) == 0 {
                    problems.push(Problem::new(
                        key("notify"),
                        format!("role {role:?} has no address in [staff]"),
                    ));
                }
            }
            rules.push(crate::domain::routing::RoutingRule {
                name: r.name.trim().to_string(),
                senders,
                sender_domains,
                words: r.words.clone(),
                sent_to,
                kinds: r.kind.clone(),
                handler,
                notify: r.notify.clone(),
            });
        }
        if problems.is_empty() {
            Ok(rules)
        } else {
            Err(problems)
        }
    }

    /// The longest address klachtd makes on the service mailbox (a verdict link of a complaint
    /// numbered up to 9999) must fit RFC 5321 4.5.3.1.1's 64 octets, or mail would go out
    /// without its answer addresses.
    fn tokened_address_problem(&self, service: &EmailAddress) -> Option<Problem> {
        use crate::domain::token::{TokenError, TokenPurpose, reply_address};
        let prefix = &self.organisation.reference_prefix;
        let reference = crate::domain::types::ComplaintRef::new(prefix, 2026, 9999);
        let purpose = TokenPurpose::Verdict {
            reference,
            agree: true,
            recipient: service.clone(),
        };
        match reply_address(
            service,
            self.organisation.address_separator,
            &purpose,
            b"check",
        ) {
            Err(TokenError::TooLong { address, len }) => Some(Problem::new(
                "outgoing.from",
                format!(
                    "too long for the answer addresses klachtd makes on it: {address} has a local part of {len} octets, RFC 5321 allows 64 (shorten the local part of {:?} or organisation.reference_prefix)",
                    self.outgoing.from
                ),
            )),
            _ => None,
        }
    }

    /// `organisation.time_zone`, read.
    pub fn time_zone(&self) -> Result<chrono_tz::Tz, Problem> {
        self.organisation.time_zone.parse().map_err(|_| {
            Problem::new(
                "organisation.time_zone",
                format!("unknown time zone {:?}", self.organisation.time_zone),
            )
        })
    }

    /// The store to open, with the password read (from `database.password` or its file).
    pub fn database(&self) -> Result<crate::store::Backend, Problem> {
        let password = match &self.database.password_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        Problem::new("database.password_file", format!("{}: {e}", path.display()))
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
            None => Some(self.database.password.expose().to_string()).filter(|p| !p.is_empty()),
        };
        let mut backend = crate::store::Backend::from_url(&self.database_url(), password)
            .map_err(|e| Problem::new("database.url", e))?;
        if let crate::store::Backend::Postgres(target) = &mut backend {
            if let Some(mode) = &self.database.sslmode {
                target.ssl_mode = Some(
                    crate::store::postgres::parse_ssl_mode(mode)
                        .map_err(|e| Problem::new("database.sslmode", e))?,
                );
            }
            target.ssl_root_cert = self.database.ssl_root_cert.clone();
        }
        Ok(backend)
    }

    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(u) => u.expose().to_string(),
            None => format!("sqlite://{}", self.data_dir.join("klachtd.db").display()),
        }
    }

    /// `schedule.working_hours_start` / `_end`, read.
    pub fn working_hours(&self) -> Result<(chrono::NaiveTime, chrono::NaiveTime), Problem> {
        let parse = |key: &str, value: &str| {
            chrono::NaiveTime::parse_from_str(value, "%H:%M")
                .map_err(|_| Problem::new(key, format!("expected HH:MM, got {value:?}")))
        };
        Ok((
            parse(
                "schedule.working_hours_start",
                &self.schedule.working_hours_start,
            )?,
            parse(
                "schedule.working_hours_end",
                &self.schedule.working_hours_end,
            )?,
        ))
    }

    /// `schedule.digest`, read; `None` when empty (no digest).
    pub fn digest_schedule(&self) -> Result<Option<cron::Schedule>, Problem> {
        let expr = self.schedule.digest.trim();
        if expr.is_empty() {
            return Ok(None);
        }
        expr.parse::<cron::Schedule>().map(Some).map_err(|e| {
            Problem::new(
                "schedule.digest",
                format!("not a cron expression (seconds first, e.g. \"0 0 8 * * Mon-Fri\"): {e}"),
            )
        })
    }

    /// `[[reports.mail]]`, read: the first problem names its key.
    pub fn report_mailings(&self) -> Result<Vec<ReportMailing>, Problem> {
        let mut out = Vec::new();
        for (i, m) in self.reports.mail.iter().enumerate() {
            let key = |k: &str| format!("reports.mail[{i}].{k}");
            let schedule = m.schedule.trim().parse::<cron::Schedule>().map_err(|e| {
                Problem::new(
                    key("schedule"),
                    format!("not a cron expression (seconds first, e.g. \"0 0 8 15 1 *\"): {e}"),
                )
            })?;
            let span = match m.period.trim().to_ascii_lowercase().as_str() {
                "year" | "jaar" => ReportSpan::Year,
                "quarter" | "kwartaal" => ReportSpan::Quarter,
                "month" | "maand" => ReportSpan::Month,
                other => {
                    return Err(Problem::new(
                        key("period"),
                        format!("expected \"year\", \"quarter\" or \"month\", got {other:?}"),
                    ));
                }
            };
            if !self.staff.roles.contains_key(m.to.trim()) {
                return Err(Problem::new(
                    key("to"),
                    format!(
                        "no staff role {:?} (roles: {})",
                        m.to,
                        self.staff
                            .roles
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            let lang = m
                .lang
                .clone()
                .unwrap_or_else(|| self.organisation.language.clone());
            if !matches!(lang.as_str(), "nl" | "en") {
                return Err(Problem::new(key("lang"), "must be \"nl\" or \"en\""));
            }
            out.push(ReportMailing {
                index: i,
                schedule,
                span,
                role: m.to.trim().to_string(),
                public: m.public,
                lang,
            });
        }
        if self.reports.public_threshold > 1000 {
            return Err(Problem::new(
                "reports.public_threshold",
                "must be at most 1000",
            ));
        }
        Ok(out)
    }

    /// The settings once every check passed, with their values read into types: what the
    /// application is built from (see [`Valid`]). Every problem at once otherwise.
    pub fn validate(self) -> Result<Valid, Vec<Problem>> {
        let problems = self.problems();
        if !problems.is_empty() {
            return Err(problems);
        }
        let typed = Typed::read(&self).map_err(|p| vec![p])?;
        Ok(Valid {
            settings: self,
            typed,
        })
    }
}

/// Validated settings: the file's values plus [`Typed`], so nothing is read a second time with
/// a fallback. Dereferences to [`Settings`] for the plain values.
#[derive(Debug, Clone)]
pub struct Valid {
    settings: Settings,
    pub typed: Typed,
}

impl std::ops::Deref for Valid {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

/// The settings that are more than text, read once.
#[derive(Debug, Clone)]
pub struct Typed {
    pub time_zone: chrono_tz::Tz,
    pub working_hours: (chrono::NaiveTime, chrono::NaiveTime),
    pub digest: Option<cron::Schedule>,
    /// `[[reports.mail]]`.
    pub report_mailings: Vec<ReportMailing>,
    /// `outgoing.from`: our address, and the service mailbox tokens are made on.
    pub service_address: EmailAddress,
    /// `[staff]` roles and their addresses.
    pub staff: BTreeMap<String, Vec<EmailAddress>>,
    /// `intake.web_form_senders`.
    pub web_form_senders: Vec<EmailAddress>,
}

impl Typed {
    fn read(s: &Settings) -> Result<Typed, Problem> {
        let address = |key: String, a: &str| {
            EmailAddress::parse(a)
                .map_err(|_| Problem::new(key, format!("not an email address: {a:?}")))
        };
        let mut staff = BTreeMap::new();
        for (role, list) in &s.staff.roles {
            let mut out = Vec::new();
            for a in list {
                out.push(address(format!("staff.{role}"), a)?);
            }
            staff.insert(role.clone(), out);
        }
        Ok(Typed {
            time_zone: s.time_zone()?,
            working_hours: s.working_hours()?,
            digest: s.digest_schedule()?,
            report_mailings: s.report_mailings()?,
            service_address: address("outgoing.from".into(), &s.outgoing.from)?,
            staff,
            web_form_senders: s
                .intake
                .web_form_senders
                .iter()
                .enumerate()
                .map(|(i, a)| address(format!("intake.web_form_senders[{i}]"), a))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The addresses of a staff role (none when the role is not configured).
    pub fn staff(&self, role: &str) -> &[EmailAddress] {
        self.staff.get(role).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every staff address, any role, once.
    pub fn all_staff(&self) -> Vec<EmailAddress> {
        let mut all: Vec<EmailAddress> = self.staff.values().flatten().cloned().collect();
        all.sort();
        all.dedup();
        all
    }

    pub fn is_staff(&self, address: &EmailAddress) -> bool {
        self.staff.values().flatten().any(|a| a == address)
    }
}

#[allow(clippy::too_many_arguments)]
fn remote_problems(
    section: &str,
    host: &Option<String>,
    username: &Option<String>,
    password: &Secret,
    password_file: &Option<PathBuf>,
    auth: AuthMethod,
    oauth2: &OAuth2,
    p: &mut Vec<Problem>,
) {
    if host.as_deref().unwrap_or("").is_empty() {
        p.push(Problem::new(format!("{section}.host"), "required"));
    }
    if username.as_deref().unwrap_or("").is_empty() {
        p.push(Problem::new(format!("{section}.username"), "required"));
    }
    match auth {
        AuthMethod::Login | AuthMethod::Plain => {
            if password.is_empty() && password_file.is_none() {
                p.push(Problem::new(
                    format!("{section}.password"),
                    format!(
                        "set password, password_file or KLACHTD__{}__PASSWORD",
                        section.to_uppercase()
                    ),
                ));
            }
        }
        AuthMethod::Xoauth2 => {
            for (key, v) in [
                ("token_url", &oauth2.token_url),
                ("client_id", &oauth2.client_id),
            ] {
                if v.as_deref().unwrap_or("").is_empty() {
                    p.push(Problem::new(
                        format!("{section}.{key}"),
                        "required for auth = \"xoauth2\"",
                    ));
                }
            }
            if oauth2.refresh_token_file.is_none() {
                p.push(Problem::new(
                    format!("{section}.refresh_token_file"),
                    "required for auth = \"xoauth2\"",
                ));
            }
        }
    }
}

/// An environment value is read as a TOML value when it is one (`3`, `true`, `["a@b.nl"]`),
/// and as a plain string otherwise, so `KLACHTD__MAILBOX__PASSWORD=s3cr#t` needs no quoting.
fn env_value(raw: &str) -> toml::Value {
    let probe = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&probe) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    match path {
        [] => Err("empty key".into()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("{first} is not a section")),
            }
        }
    }
}

fn syntax(origin: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
        .unwrap_or(0);
    ConfigError::Syntax {
        path: origin.to_string(),
        line,
        message: e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[organisation]
name = "Test"
mail_domain = "example.org"

[mailbox]
kind = "maildir"
path = "mail"

[outgoing]
kind = "file"
path = "out"
from = "service@example.org"

[staff]
admin = ["admin@example.org"]
receiver = ["ontvangst@example.org"]
director = ["directeur@example.org"]
"#;

    #[test]
    fn database_settings_for_postgresql_are_checked_by_key() {
        let with = |extra: &str, env: &[(String, String)]| {
            Settings::from_text(&format!("{MINIMAL}\n{extra}"), "t.toml", env)
                .unwrap()
                .problems()
                .into_iter()
                .map(|p| p.key)
                .collect::<Vec<_>>()
        };
        let pg = "[database]\nurl = \"postgres://klachtd@db/klachtd\"\n";
        assert_eq!(with(pg, &[]), Vec::<String>::new());
        assert_eq!(
            with(&format!("{pg}sslmode = \"verify-all\"\n"), &[]),
            vec!["database.sslmode"]
        );
        assert_eq!(
            with(&format!("{pg}sslmode = \"verify-full\"\n"), &[]),
            Vec::<String>::new()
        );
        assert_eq!(
            with(
                &format!("{pg}password = \"x\"\npassword_file = \"/run/pw\"\n"),
                &[]
            ),
            vec!["database.password_file"]
        );
        assert_eq!(
            with(
                "[database]\nurl = \"sqlite:///var/lib/klachtd/klachtd.db\"\nblobs = \"database\"\n",
                &[]
            ),
            vec!["database.blobs"]
        );
        assert_eq!(
            with(&format!("{pg}blobs = \"database\"\n"), &[]),
            Vec::<String>::new()
        );
        assert_eq!(
            with("[runtime]\nfailover_seconds = 1\n", &[]),
            vec!["runtime.failover_seconds"]
        );
        // The password from the environment, and never shown.
        let env = vec![(
            "KLACHTD__DATABASE__PASSWORD".to_string(),
            "s3cr#t".to_string(),
        )];
        let s = Settings::from_text(&format!("{MINIMAL}\n{pg}"), "t.toml", &env).unwrap();
        assert!(!format!("{s:?}").contains("s3cr#t"));
        match s.database() {
            Ok(crate::store::Backend::Postgres(t)) => {
                assert_eq!(t.password.as_deref(), Some("s3cr#t"));
                assert_eq!(t.url, "postgres://klachtd@db/klachtd");
            }
            _ => panic!("a postgres backend"),
        }
    }

    #[test]
    fn a_password_in_a_database_url_is_never_shown() {
        let shown = crate::store::postgres::redact_url(
            "postgres://klachtd:s3cret@db:5432/k?sslmode=require",
        );
        assert_eq!(shown, "postgres://klachtd:***@db:5432/k?sslmode=require");
        assert_eq!(
            crate::store::postgres::redact_url("postgres://klachtd@db/k"),
            "postgres://klachtd@db/k"
        );
    }

    #[test]
    fn minimal_config_is_valid() {
        let s = Settings::from_text(MINIMAL, "t.toml", &[]).unwrap();
        assert_eq!(s.problems(), vec![]);
        assert_eq!(s.organisation.reference_prefix, "KL");
        assert_eq!(s.limits.acknowledgements_per_address_per_day, 3);
    }

    #[test]
    fn validated_settings_hold_the_values_read_once() {
        let s = Settings::from_text(MINIMAL, "t.toml", &[]).unwrap();
        let v = s.validate().unwrap();
        assert_eq!(v.typed.time_zone, chrono_tz::Europe::Amsterdam);
        assert_eq!(
            v.typed.staff("receiver")[0].as_str(),
            "ontvangst@example.org"
        );
        assert!(v.typed.staff("nobody").is_empty());
        assert_eq!(v.typed.service_address.as_str(), "service@example.org");
        assert!(v.typed.digest.is_some());
        assert_eq!(
            v.organisation.name, "Test",
            "the plain values through Deref"
        );
        // No silent fallback: a bad value is a problem, never a default.
        let bad = MINIMAL.replace(
            "name = \"Test\"",
            "name = \"Test\"\ntime_zone = \"Mars/Base\"",
        );
        let s = Settings::from_text(&bad, "t.toml", &[]).unwrap();
        assert!(s.time_zone().is_err());
        let problems = s.validate().unwrap_err();
        assert!(
            problems.iter().any(|p| p.key == "organisation.time_zone"),
            "{problems:?}"
        );
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let bad = MINIMAL.replace("kind = \"maildir\"", "kind = maildir");
        match Settings::from_text(&bad, "t.toml", &[]) {
            Err(ConfigError::Syntax { path, line, .. }) => {
                assert_eq!(path, "t.toml");
                assert_eq!(line, 7);
            }
            other => panic!("{other:?}"),
        }
        let unknown = MINIMAL
            .replace("[staff]", "[staff]\n")
            .replace("path = \"out\"", "paht = \"out\"");
        let e = Settings::from_text(&unknown, "t.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml:") && e.contains("paht"), "{e}");
    }

    #[test]
    fn env_overrides_win_and_secrets_stay_hidden() {
        let env = vec![
            (
                "KLACHTD__MAILBOX__PASSWORD".to_string(),
                "s3cr#t".to_string(),
            ),
            (
                "KLACHTD__LIMITS__ACKNOWLEDGEMENTS_PER_ADDRESS_PER_DAY".to_string(),
                "5".to_string(),
            ),
            (
                "KLACHTD__STAFF__DIRECTOR".to_string(),
                "[\"d@example.org\"]".to_string(),
            ),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let s = Settings::from_text(MINIMAL, "t.toml", &env).unwrap();
        assert_eq!(s.mailbox.password.expose(), "s3cr#t");
        assert_eq!(s.limits.acknowledgements_per_address_per_day, 5);
        assert_eq!(s.staff.roles["director"], ["d@example.org"]);
        let debug = format!("{s:?}");
        assert!(!debug.contains("s3cr#t"), "{debug}");
    }

    #[test]
    fn all_problems_reported_at_once() {
        let bad = MINIMAL
            .replace(
                "name = \"Test\"",
                "name = \"Test\"\ntime_zone = \"Mars/Base\"",
            )
            .replace("from = \"service@example.org\"", "from = \"nobody\"")
            .replace(
                "admin = [\"admin@example.org\"]",
                "admin = [\"not-an-address\"]",
            );
        let s = Settings::from_text(&bad, "t.toml", &[]).unwrap();
        let keys: Vec<String> = s.problems().into_iter().map(|p| p.key).collect();
        for k in ["organisation.time_zone", "outgoing.from", "staff.admin"] {
            assert!(keys.iter().any(|x| x == k), "{k} missing in {keys:?}");
        }
    }

    #[test]
    fn http_is_off_by_default_and_named_when_wrong() {
        let s = Settings::from_text(MINIMAL, "t.toml", &[]).unwrap();
        assert_eq!(s.http.listen, None);
        assert_eq!(s.http.outbox_stale_seconds, 900);
        let on =
            format!("{MINIMAL}\n[http]\nlisten = \"127.0.0.1:9187\"\nmailbox_stale_seconds = 60\n");
        let s = Settings::from_text(&on, "t.toml", &[]).unwrap();
        assert_eq!(s.http.listen, Some("127.0.0.1:9187".parse().unwrap()));
        assert_eq!(s.http.mailbox_stale_seconds, 60);
        let env = vec![(
            "KLACHTD__HTTP__LISTEN".to_string(),
            "[::1]:9200".to_string(),
        )];
        let s = Settings::from_text(MINIMAL, "t.toml", &env).unwrap();
        assert_eq!(s.http.listen, Some("[::1]:9200".parse().unwrap()));

        let bad = format!("{MINIMAL}\n[http]\nlisten = \"localhost\"\n");
        let e = Settings::from_text(&bad, "t.toml", &[])
            .unwrap_err()
            .to_string();
        let line = bad.lines().position(|l| l.starts_with("listen")).unwrap() + 1;
        assert!(
            e.starts_with(&format!("t.toml:{line}: http.listen:")),
            "{e}"
        );
        let env = vec![("KLACHTD__HTTP__LISTEN".to_string(), "9187".to_string())];
        let e = Settings::from_text(MINIMAL, "t.toml", &env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("KLACHTD__HTTP__LISTEN") && e.contains("http.listen"),
            "{e}"
        );
        let zero = format!("{MINIMAL}\n[http]\noutbox_stale_seconds = 0\n");
        let e = Settings::from_text(&zero, "t.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.toml:") && e.contains("http.outbox_stale_seconds: must be at least 1"),
            "{e}"
        );
    }
}

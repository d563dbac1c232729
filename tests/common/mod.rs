//! Shared harness for the integration tests: a throw-away klachtd installation driven through
//! its command line, exactly as an operator would.
//!
//! ```ignore
//! let app = TestApp::spawn();                       // temp dir, Maildir, config, fixed clock
//! app.deliver(&Mail::new("jan@example.nl", "Klacht").build());
//! app.run_once();                                   // `klachtd run --once`, must exit 0
//! let list = app.list();                            // `klachtd list --format json`
//! let sent = app.sent();                            // the .eml files in the outbox dir
//! app.set_now("2026-11-24T12:00:00+01:00");         // move the clock for later commands
//! ```
//!
//! * Every command runs the debug binary (`CARGO_BIN_EXE_klachtd`) with `--config` pointing at
//!   the generated TOML, the temp dir as working directory, and `KLACHTD_NOW` set to the test
//!   clock (default [`DEFAULT_NOW`]). Inherited `KLACHTD*` variables are removed first.
//! * [`TestApp::set_env`] adds `KLACHTD__SECTION__KEY` overrides for all later commands.
//! * [`TestApp::command`] gives the configured `std::process::Command` for tests that need a
//!   child process (crash, concurrency, daemon).
//! * Staff roles: every role the shipped presets use has an address (see [`STAFF`]), so
//!   `klachtd check` passes for any preset.
//! * Mail is delivered as Maildir files; the receipt time is the file's mtime.
//! * With `KLACHTD_TEST_PG` set (see `scripts/pgcluster.sh` and [`pg`]), every installation
//!   gets a fresh PostgreSQL database of its own (`[database] url`, the password in
//!   `KLACHTD__DATABASE__PASSWORD`), dropped with the [`TestApp`]; SQLite in `data_dir`
//!   otherwise.

#![allow(dead_code)]

pub mod instances;
pub mod pg;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration as StdDuration, SystemTime};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

/// The clock every command sees unless a test moves it: a Monday in 2026, 12:00 Amsterdam.
pub const DEFAULT_NOW: &str = "2026-11-23T12:00:00+01:00";
/// Our From address in the generated config.
pub const SERVICE: &str = "service@example.org";
pub const ADMIN: &str = "beheer@example.org";
pub const RECEIVER: &str = "coordinator@example.org";
pub const DIRECTOR: &str = "directeur@example.org";
pub const MANAGEMENT: &str = "mt@example.org";
/// Every staff address in the generated config (any role).
pub const STAFF: &[&str] = &[
    ADMIN,
    RECEIVER,
    DIRECTOR,
    MANAGEMENT,
    "clustermanager@example.org",
    "klachtenfunctionaris@example.org",
];
/// The HMAC secret in the generated config: VERP signatures are reproducible.
pub const SECRET: &str = "integration-test-secret";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_klachtd")
}

pub fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad test time {s:?}: {e}"))
        .with_timezone(&Utc)
}

pub struct TestApp {
    pub dir: tempfile::TempDir,
    /// The temp dir; also the working directory of every command.
    pub root: PathBuf,
    pub maildir: PathBuf,
    pub data_dir: PathBuf,
    pub outbox_dir: PathBuf,
    pub config_path: PathBuf,
    env: RefCell<Vec<(String, String)>>,
    now: RefCell<String>,
    seq: Cell<u64>,
    /// The receipt time the next [`TestApp::deliver`] uses (one minute apart).
    next_received: Cell<DateTime<Utc>>,
    /// This installation's database when the tests run on PostgreSQL.
    pub pg: Option<pg::PgDatabase>,
}

/// An installation's database, opened by a test ([`TestApp::open_database`]).
#[allow(dead_code)] // Not every test binary reads it.
pub enum Database {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl TestApp {
    /// A fresh installation with the default config (see [`TestApp::config_toml`]).
    pub fn spawn() -> Self {
        Self::spawn_with_config(|_| {})
    }

    /// Same, with a chance to edit the config text before it is written.
    pub fn spawn_with_config(edit: impl FnOnce(&mut String)) -> Self {
        Self::spawn_on(edit, pg::server())
    }

    /// An installation on SQLite whatever `KLACHTD_TEST_PG` says (a test of moving from it).
    pub fn spawn_sqlite() -> Self {
        Self::spawn_on(|_| {}, None)
    }

    fn spawn_on(edit: impl FnOnce(&mut String), server: Option<pg::PgServer>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("klachtd-it-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical tempdir");
        let maildir = root.join("maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
        }
        let data_dir = root.join("data");
        let outbox_dir = root.join("outbox");
        std::fs::create_dir_all(&data_dir).expect("data dir");
        let config_path = root.join("klachtd.toml");
        let mut config = Self::config_toml(&data_dir, &maildir, &outbox_dir);
        edit(&mut config);
        // After the edit, so a test that rewrites the whole config still gets its database.
        let pg = server.map(|server| server.create_database("it"));
        if let Some(db) = &pg {
            config.push_str(&format!("\n[database]\nurl = {:?}\n", db.url));
        }
        std::fs::write(&config_path, config).expect("write config");
        TestApp {
            dir,
            root,
            maildir,
            data_dir,
            outbox_dir,
            config_path,
            env: RefCell::new(Vec::new()),
            now: RefCell::new(DEFAULT_NOW.to_string()),
            seq: Cell::new(0),
            next_received: Cell::new(ts(DEFAULT_NOW) - Duration::hours(2)),
            pg,
        }
    }

    /// Whether this installation's database is PostgreSQL (`KLACHTD_TEST_PG`).
    pub fn on_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// A pool on this installation's own database, SQLite file or PostgreSQL: a test's look
    /// behind the CLI (write the SQL for both: `$N` placeholders, which SQLite reads by
    /// number too). Panics when it cannot be opened.
    #[allow(dead_code)] // Not every test binary reads it.
    pub async fn open_database(&self) -> Database {
        match &self.pg {
            Some(db) => {
                let mut options: sqlx::postgres::PgConnectOptions =
                    db.url.parse().expect("test database url");
                if let Some(p) = db.password() {
                    options = options.password(p);
                }
                Database::Postgres(
                    sqlx::PgPool::connect_with(options)
                        .await
                        .unwrap_or_else(|e| panic!("open {}: {e}", db.url)),
                )
            }
            None => {
                let url = format!("sqlite://{}", self.data_dir.join("klachtd.db").display());
                Database::Sqlite(
                    sqlx::SqlitePool::connect(&url)
                        .await
                        .unwrap_or_else(|e| panic!("open {url}: {e}")),
                )
            }
        }
    }

    /// One number from this installation's own database ([`TestApp::open_database`];
    /// `CAST(.. AS BIGINT)` for a count or a length). Panics when the query fails, so a check
    /// built on it cannot pass by reading nothing.
    #[allow(dead_code)] // Not every test binary reads it.
    pub fn query_i64(&self, sql: &str) -> Option<i64> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let value = match self.open_database().await {
                Database::Postgres(pool) => {
                    sqlx::query_scalar::<_, Option<i64>>(sql)
                        .fetch_one(&pool)
                        .await
                }
                Database::Sqlite(pool) => {
                    sqlx::query_scalar::<_, Option<i64>>(sql)
                        .fetch_one(&pool)
                        .await
                }
            };
            value.unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
    }

    /// On PostgreSQL, every live row of this installation's database (`pg_dump`); `None` on
    /// SQLite, whose database is a file under `data_dir`.
    #[allow(dead_code)] // Not every test binary reads it.
    pub fn database_dump(&self) -> Option<Vec<u8>> {
        self.pg.as_ref().map(|db| {
            db.dump()
                .unwrap_or_else(|e| panic!("dump the test database: {e}"))
        })
    }

    /// The config the harness writes: absolute paths everywhere, templates and procedures
    /// from the repository, a fixed secret, log level `warn`.
    pub fn config_toml(data_dir: &Path, maildir: &Path, outbox: &Path) -> String {
        let repo = repo();
        format!(
            r#"data_dir = {data:?}

[organisation]
name = "Muziekcentrum Zuidoost"
time_zone = "Europe/Amsterdam"
language = "nl"
reference_prefix = "KL"
mail_domain = "example.org"
secret = {SECRET:?}

[mailbox]
kind = "maildir"
path = {maildir:?}
poll_interval = 1

[outgoing]
kind = "file"
path = {outbox:?}
from = {SERVICE:?}

[staff]
admin = [{ADMIN:?}]
receiver = [{RECEIVER:?}]
director = [{DIRECTOR:?}]
management_team = [{MANAGEMENT:?}]
cluster_manager = ["clustermanager@example.org"]
complaints_officer = ["klachtenfunctionaris@example.org"]

[procedure]
preset = "mzo"
dir = {procedures:?}

[templates]
dir = {templates:?}

# The hourly acknowledgement cap (default 100) would hold back the bulk tests' acknowledgements;
# its own tests set it low.
[limits]
acknowledgements_per_hour = 1000000

[logging]
format = "text"
level = "warn"
"#,
            data = data_dir.display().to_string(),
            maildir = maildir.display().to_string(),
            outbox = outbox.display().to_string(),
            procedures = repo.join("config/procedures").display().to_string(),
            templates = repo.join("templates").display().to_string(),
        )
    }

    // ---- clock and environment -------------------------------------------------------------

    /// Set the clock (`KLACHTD_NOW`) for every later command.
    pub fn set_now(&self, rfc3339: &str) {
        ts(rfc3339);
        *self.now.borrow_mut() = rfc3339.to_string();
    }

    pub fn now(&self) -> DateTime<Utc> {
        ts(&self.now.borrow())
    }

    /// Add (or replace) an environment variable for every later command, e.g.
    /// `KLACHTD__LIMITS__MAX_MAIL_BYTES`.
    pub fn set_env(&self, key: &str, value: &str) {
        let mut env = self.env.borrow_mut();
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.to_string()));
    }

    // ---- running the binary ----------------------------------------------------------------

    /// The configured command (`klachtd --config ... ARGS`), not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("KLACHTD") {
                c.env_remove(k);
            }
        }
        c.env_remove("RUST_LOG");
        c.current_dir(&self.root)
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env("KLACHTD_NOW", self.now.borrow().as_str());
        if let Some(password) = self.pg.as_ref().and_then(|db| db.password()) {
            c.env("KLACHTD__DATABASE__PASSWORD", password);
        }
        for (k, v) in self.env.borrow().iter() {
            c.env(k, v);
        }
        c
    }

    /// Run a command to completion; whatever its exit code.
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("start klachtd")
    }

    /// Run a command that must exit 0; returns its stdout.
    pub fn cmd_ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "klachtd {args:?} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run a command that must exit 0 and print JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd_ok(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("klachtd {args:?} printed no JSON ({e}):\n{out}"))
    }

    /// `klachtd run --once`; must exit 0. Returns its summary line.
    pub fn run_once(&self) -> String {
        self.cmd_ok(&["run", "--once"])
    }

    /// `list --format json` (optionally `--status`).
    pub fn list(&self) -> Vec<Value> {
        as_array(self.json(&["list", "--format", "json"]))
    }

    pub fn list_status(&self, status: &str) -> Vec<Value> {
        as_array(self.json(&["list", "--status", status, "--format", "json"]))
    }

    /// References in the register, in list order.
    pub fn references(&self) -> Vec<String> {
        self.list()
            .iter()
            .map(|c| c["reference"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// `show REF --format json`: `{complaint, messages, history}`.
    pub fn show(&self, reference: &str) -> Value {
        self.json(&["show", reference, "--format", "json"])
    }

    /// History events (`event` names) of a complaint, in order.
    pub fn history_events(&self, reference: &str) -> Vec<String> {
        self.show(reference)["history"]
            .as_array()
            .map(|h| {
                h.iter()
                    .map(|e| e["event"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn unfiled(&self) -> Vec<Value> {
        as_array(self.json(&["unfiled", "list", "--format", "json"]))
    }

    pub fn quarantine(&self) -> Vec<Value> {
        as_array(self.json(&["quarantine", "list", "--format", "json"]))
    }

    pub fn quarantine_all(&self) -> Vec<Value> {
        as_array(self.json(&["quarantine", "list", "--all", "--format", "json"]))
    }

    pub fn outbox(&self) -> Vec<Value> {
        as_array(self.json(&["outbox", "list", "--format", "json"]))
    }

    // ---- delivering mail -------------------------------------------------------------------

    fn unique_name(&self, at: DateTime<Utc>) -> String {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        format!("{}.M{n}P{}.testhost", at.timestamp(), std::process::id())
    }

    /// Deliver into `new/` with receipt time `received_at` (the file's mtime). Returns the path.
    pub fn deliver_eml(&self, bytes: &[u8], received_at: DateTime<Utc>) -> PathBuf {
        let name = self.unique_name(received_at);
        write_maildir_file(&self.maildir, &name, "new", "", bytes, received_at)
    }

    /// Deliver into `new/`, each mail one minute after the previous one (starting two hours
    /// before [`DEFAULT_NOW`]).
    pub fn deliver(&self, bytes: &[u8]) -> PathBuf {
        let at = self.next_received.get();
        self.next_received.set(at + Duration::minutes(1));
        self.deliver_eml(bytes, at)
    }

    /// Put a mail straight into `cur/` with Maildir flags (e.g. `"S"`: a person read it).
    pub fn deliver_cur(&self, bytes: &[u8], received_at: DateTime<Utc>, flags: &str) -> PathBuf {
        let name = self.unique_name(received_at);
        write_maildir_file(&self.maildir, &name, "cur", flags, bytes, received_at)
    }

    /// File names in `new/` or `cur/`.
    pub fn maildir_files(&self, sub: &str) -> Vec<String> {
        file_names(&self.maildir.join(sub))
    }

    // ---- what we sent ----------------------------------------------------------------------

    /// Every mail in the outbox directory, sorted by file name.
    pub fn sent(&self) -> Vec<SentMail> {
        read_outbox(&self.outbox_dir)
    }

    /// Sent mails with `addr` among the envelope recipients.
    pub fn sent_to(&self, addr: &str) -> Vec<SentMail> {
        self.sent()
            .into_iter()
            .filter(|m| m.envelope_to.iter().any(|a| a.eq_ignore_ascii_case(addr)))
            .collect()
    }

    /// Files under `data_dir` (relative paths), recursively.
    /// The raw mails and attachments kept as files (`raw/`, `attachments/` under the data
    /// directory), by relative path and content.
    pub fn blob_files(&self) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        self.data_files()
            .into_iter()
            .filter(|p| p.starts_with("raw") || p.starts_with("attachments"))
            .map(|p| {
                let bytes = std::fs::read(self.data_dir.join(&p)).expect("read blob");
                (p, bytes)
            })
            .collect()
    }

    pub fn data_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.data_dir, &self.data_dir, &mut out);
        out
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.to_path_buf());
            }
        }
    }
}

fn as_array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => panic!("expected a JSON array, got {other}"),
    }
}

/// Write a Maildir file the way a delivery agent does: into `tmp/`, set the mtime, rename.
/// A tiny PDF, base64: the attachment of [`mail_with_attachment`].
pub const SMALL_PDF: &str = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iago=";

/// A complaint with a text part and one PDF attachment (`pdf_base64`, e.g. [`SMALL_PDF`]),
/// its Message-ID made from the subject.
pub fn mail_with_attachment(from: &str, subject: &str, pdf_base64: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {SERVICE}\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 09:14:02 +0100\r\n\
         Message-ID: <att.{slug}@example.nl>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nZie de bijlage.\r\n--b1\r\n\
         Content-Type: application/pdf; name=\"brief.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"brief.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{pdf_base64}\r\n--b1--\r\n",
        slug = subject.replace(' ', "")
    )
    .into_bytes()
}

pub fn write_maildir_file(
    maildir: &Path,
    unique: &str,
    sub: &str,
    flags: &str,
    bytes: &[u8],
    received_at: DateTime<Utc>,
) -> PathBuf {
    let tmp = maildir.join("tmp").join(unique);
    std::fs::write(&tmp, bytes).expect("write maildir tmp file");
    set_mtime(&tmp, received_at);
    let name = if sub == "cur" {
        format!("{unique}:2,{flags}")
    } else {
        unique.to_string()
    };
    let target = maildir.join(sub).join(name);
    std::fs::rename(&tmp, &target).expect("rename into maildir");
    target
}

pub fn set_mtime(path: &Path, at: DateTime<Utc>) {
    let secs = at.timestamp();
    let t = if secs >= 0 {
        SystemTime::UNIX_EPOCH + StdDuration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH
    };
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for set_modified");
    f.set_modified(t).expect("set mtime");
}

pub fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The name the test plan uses for [`SentMail`].
pub type ParsedSentMail = SentMail;

/// One mail klachtd wrote into the outbox directory.
#[derive(Debug, Clone)]
pub struct SentMail {
    pub file: String,
    pub message_id: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    /// The Reply-To address (our tokened answer address), empty when none.
    pub reply_to: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub auto_submitted: Option<String>,
    /// `X-Klachtd-Envelope-From`: our VERP bounce address for this mail.
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    /// The text/plain part.
    pub text: String,
    pub raw: Vec<u8>,
}

fn header_ids(v: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match v {
        mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
        mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => vec![],
    }
}

pub fn parse_sent(file: &str, raw: Vec<u8>) -> SentMail {
    let msg = mail_parser::MessageParser::default()
        .parse(&raw)
        .unwrap_or_else(|| panic!("outbox file {file} is not a mail"));
    let header = |name: &str| -> Option<String> {
        msg.headers_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let addrs = |a: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        a.map(|a| {
            a.iter()
                .filter_map(|x| x.address())
                .map(|s| s.to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default()
    };
    SentMail {
        file: file.to_string(),
        message_id: msg.message_id().unwrap_or_default().to_string(),
        from: addrs(msg.from()).into_iter().next().unwrap_or_default(),
        to: addrs(msg.to()),
        subject: msg.subject().unwrap_or_default().to_string(),
        reply_to: addrs(msg.reply_to()).into_iter().next().unwrap_or_default(),
        in_reply_to: header_ids(msg.in_reply_to()),
        references: header_ids(msg.references()),
        auto_submitted: header("Auto-Submitted"),
        envelope_from: header("X-Klachtd-Envelope-From").unwrap_or_default(),
        envelope_to: header("X-Klachtd-Envelope-To")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
        text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        raw,
    }
}

pub fn read_outbox(dir: &Path) -> Vec<SentMail> {
    file_names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".eml"))
        .map(|n| {
            let raw = std::fs::read(dir.join(&n)).expect("read outbox file");
            parse_sent(&n, raw)
        })
        .collect()
}

/// A plain incoming mail, built header by header. `build()` gives CRLF bytes.
#[derive(Debug, Clone)]
pub struct Mail {
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    /// From `from`, to our service address, with a Date and a Message-ID derived from the
    /// sender and subject (use [`Mail::message_id`] or [`Mail::without`] to change them).
    pub fn new(from: &str, subject: &str) -> Self {
        let local = from.split('@').next().unwrap_or("x");
        let domain = from.rsplit('@').next().unwrap_or("example.nl");
        let slug: String = subject
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(24)
            .collect();
        Mail {
            headers: vec![
                ("Return-Path".into(), format!("<{from}>")),
                ("From".into(), from.to_string()),
                ("To".into(), SERVICE.to_string()),
                ("Subject".into(), subject.to_string()),
                ("Date".into(), "Mon, 23 Nov 2026 09:14:02 +0100".into()),
                (
                    "Message-ID".into(),
                    format!("<{slug}.{local}.{}@{domain}>", subject.len()),
                ),
                ("MIME-Version".into(), "1.0".into()),
                ("Content-Type".into(), "text/plain; charset=utf-8".into()),
            ],
            body: "Geachte heer, mevrouw,\n\nIk wil een klacht indienen.\n\nMet vriendelijke groet"
                .into(),
        }
    }

    /// Set (replace) a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Some(h) = self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            h.1 = value.to_string();
        } else {
            self.headers.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// Remove a header.
    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Set the Message-ID (`<...>` added).
    pub fn message_id(self, id: &str) -> Self {
        self.header("Message-ID", &format!("<{}>", id.trim_matches(['<', '>'])))
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_string();
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut s = String::new();
        for (n, v) in &self.headers {
            s.push_str(&format!("{n}: {v}\r\n"));
        }
        s.push_str("\r\n");
        s.push_str(&self.body.replace("\r\n", "\n").replace('\n', "\r\n"));
        s.push_str("\r\n");
        s.into_bytes()
    }
}

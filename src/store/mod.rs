//! The store, split by capability: [`Store`] (transactions, and what only a shared database
//! has) over [`SourceKeys`], [`RegisterReads`], [`OutboxQueue`], [`SchedulerReads`] and
//! [`SettingsStore`]; and one transaction, [`StoreTx`], over [`IntakeTx`], [`ComplaintTx`],
//! [`OutboxTx`] and [`SchedulerTx`]. A `dyn Store` or `dyn StoreTx` has every method of its
//! parts. SQLite is the embedded default (`store::sqlite`); PostgreSQL (`store::postgres`)
//! serves several instances on one database, behind the same traits.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

pub mod blobs;
pub mod copy;
pub mod leadership;
pub mod lease;
pub mod postgres;
pub mod retention;
mod rows;
mod shared;
pub mod sqlite;

/// Which store a database URL names, parsed once where the settings are read.
#[derive(Clone)]
pub enum Backend {
    Sqlite { url: String },
    Postgres(postgres::PgTarget),
}

impl Backend {
    /// `sqlite:...` or `postgres://...` / `postgresql://...`; the password and TLS settings
    /// of a PostgreSQL URL may come beside it (`database.password`, `database.sslmode`).
    pub fn from_url(url: &str, password: Option<String>) -> Result<Backend, String> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite {
                url: url.to_string(),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres(postgres::PgTarget {
                url: url.to_string(),
                password,
                ssl_mode: None,
                ssl_root_cert: None,
            }))
        } else {
            Err("must start with sqlite: or postgres://".into())
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres(_))
    }

    /// The URL as it may be shown in logs and errors (no password).
    pub fn shown(&self) -> String {
        match self {
            Backend::Sqlite { url } => url.clone(),
            Backend::Postgres(t) => postgres::redact_url(&t.url),
        }
    }

    pub async fn open(&self) -> Result<std::sync::Arc<dyn Store>, StoreError> {
        Ok(match self {
            Backend::Sqlite { url } => std::sync::Arc::new(sqlite::SqliteStore::open(url).await?),
            Backend::Postgres(t) => std::sync::Arc::new(postgres::PgStore::open(t).await?),
        })
    }
}

/// Open the store a URL names (tests and tools; the daemon goes through [`Backend`]).
pub async fn open(
    url: &str,
    password: Option<&str>,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Backend::from_url(url, password.map(str::to_string))
        .map_err(|reason| StoreError::Open {
            url: postgres::redact_url(url),
            reason,
        })?
        .open()
        .await
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("cannot migrate database: {0}")]
    Migrate(String),
    /// What the driver said, kept whole: a caller tells a unique violation or a busy or
    /// serialization failure (to retry) from the rest by [`StoreError::is_unique_violation`]
    /// and [`StoreError::is_retryable`], not by the message.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// What we read back does not have the shape we wrote (a bad time, an overflow).
    #[error("database error: {0}")]
    Query(String),
    #[error("{0} not found")]
    NotFound(String),
    /// A fenced transaction of the leader found the lease gone (it ran out and another
    /// instance took it): nothing of that transaction was written.
    #[error("this instance no longer holds the {0} lease: nothing was written")]
    LeaseLost(String),
    #[error("{0}")]
    Conflict(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

impl StoreError {
    fn database_error(&self) -> Option<&dyn sqlx::error::DatabaseError> {
        match self {
            StoreError::Database(sqlx::Error::Database(d)) => Some(d.as_ref()),
            _ => None,
        }
    }

    /// A UNIQUE or PRIMARY KEY constraint refused the write.
    pub fn is_unique_violation(&self) -> bool {
        self.database_error()
            .is_some_and(|d| d.is_unique_violation())
    }

    /// The write may succeed when the whole transaction is tried again: SQLite's
    /// SQLITE_BUSY (5) or SQLITE_LOCKED (6), with their extended codes; PostgreSQL's
    /// serialization_failure (40001) or deadlock_detected (40P01).
    pub fn is_retryable(&self) -> bool {
        let Some(code) = self.database_error().and_then(|d| d.code()) else {
            return false;
        };
        match code.as_ref() {
            "40001" | "40P01" => true,
            other => other
                .parse::<i64>()
                .is_ok_and(|n| matches!(n & 0xff, 5 | 6)),
        }
    }
}

/// Times are stored as RFC 3339 UTC text with seconds, so they sort as text.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| StoreError::Query(format!("bad time {s:?} in database: {e}")))
}

#[derive(Debug, Clone)]
pub struct NewComplaint {
    pub prefix: String,
    pub year: i32,
    pub received_at: DateTime<Utc>,
    pub complainant_address: String,
    pub complainant_name: Option<String>,
    pub subject: String,
    pub kind: String,
    pub severity: String,
    pub serious_keywords: Option<String>,
    pub related_id: Option<i64>,
    pub language: String,
    pub procedure_name: String,
    pub procedure_version: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub complaint_id: Option<i64>,
    pub dedupe_key: String,
    pub message_id: Option<String>,
    pub source: String,
    pub source_key: String,
    pub received_at: DateTime<Utc>,
    pub sent_date: Option<DateTime<Utc>>,
    pub from_address: String,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub to_addresses: String,
    pub subject: String,
    pub in_reply_to: Option<String>,
    pub references_ids: Option<String>,
    pub body_text: String,
    pub raw_sha256: String,
    pub raw_size: i64,
    /// `whole`, or `headers` when the mail was over the size limit.
    pub raw_kept: String,
    pub classification: String,
    pub automatic: Option<String>,
    pub unfiled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: Option<String>,
    pub refused_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewOutbox {
    /// From [`StoreTx::reserve_outbox_id`]: the VERP envelope sender is made from it first.
    pub id: i64,
    pub envelope_from: String,
    pub complaint_id: Option<i64>,
    pub template: String,
    pub message_id: String,
    pub recipients: Vec<String>,
    pub recipient_role: Option<String>,
    pub subject: String,
    pub raw: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// Not sent before this time (the hourly acknowledgement cap); `created_at` when `None`.
    pub not_before: Option<DateTime<Utc>>,
    /// The normalised recipient the per-address cap counts (acknowledgements only).
    pub recipient_key: Option<String>,
}

/// What makes a stored mail the same mail again when its Message-ID comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContent {
    pub from_address: String,
    pub subject: String,
    pub body_text: String,
}

#[derive(Debug, Clone)]
pub struct NewQuarantine {
    pub source: String,
    pub source_key: String,
    pub message_id: Option<String>,
    pub received_at: DateTime<Utc>,
    pub reason: String,
    pub raw_sha256: String,
    pub raw_size: i64,
    pub created_at: DateTime<Utc>,
}

/// A complaint as the register shows it. Serialized as the stable JSON of `list`/`show`; read
/// by both backends with `FromRow` from the columns their `COMPLAINT_COLUMNS` name.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ComplaintRow {
    #[serde(skip)]
    pub id: i64,
    pub reference: String,
    pub received_at: String,
    /// Where the complaint stands (see [`crate::domain::complaint::Lifecycle`]): `new`,
    /// `in_progress`, `resolved`, `closed`, `reopened`, `voided`.
    #[sqlx(rename = "lifecycle")]
    pub status: String,
    /// What the register stores underneath: `open`, `closed`, `voided` (`--status` filters on
    /// either).
    pub stored_status: String,
    pub kind: String,
    pub severity: String,
    #[sqlx(rename = "complainant_address")]
    pub complainant: String,
    pub complainant_name: Option<String>,
    pub subject: String,
    pub related_reference: Option<String>,
    #[sqlx(rename = "procedure_name")]
    pub procedure: String,
    pub procedure_version: String,
    pub language: String,
    pub category: Option<String>,
    pub cause: Option<String>,
    pub solution: Option<String>,
    pub handler: Option<String>,
    pub void_reason: Option<String>,
    /// The person whose conduct the complaint is about (Awb 9:10), when recorded.
    pub subject_person: Option<String>,
    /// Weeks the term was extended by, all extensions together.
    pub extended_weeks: i64,
    /// `incident` or `structural` (`#aard`).
    pub incident_kind: Option<String>,
    /// Whether complainant and organisation agree on the solution: `yes` / `no`.
    pub agreement: Option<String>,
    /// The complainant's score, 1 to 5.
    pub satisfaction: Option<String>,
    /// How it reached us: `email` (the default), or what the staff member who registered it
    /// said: `phone`, `letter`, `desk`, `internal`.
    pub channel: Option<String>,
    /// The staff member who registered it on someone's behalf.
    pub received_by: Option<String>,
    /// Recommendations and measures recorded on it, one per line.
    pub measure: Option<String>,
    #[sqlx(rename = "message_count")]
    pub messages: i64,
    /// Where this row stands in the register's order, to read the next page after it.
    #[serde(skip)]
    #[sqlx(flatten)]
    pub position: RegisterPosition,
}

/// The register's order: year, prefix, number.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct RegisterPosition {
    #[sqlx(rename = "ref_year")]
    pub year: i64,
    #[sqlx(rename = "ref_prefix")]
    pub prefix: String,
    #[sqlx(rename = "ref_number")]
    pub number: i64,
}

/// Rows read per statement by the listing defaults: each page is its own short read
/// transaction, so a long listing never holds a snapshot that keeps the WAL from being
/// checkpointed (a reader pins the WAL while its transaction lasts).
pub const PAGE_ROWS: i64 = 1000;

/// A complaint's stored next scheduler time (see `complaints.next_due_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextDue {
    /// Not known: the scheduler should look at it now.
    Unknown,
    At(DateTime<Utc>),
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageRow {
    pub id: i64,
    pub direction: String,
    pub message_id: Option<String>,
    pub at: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub classification: String,
    pub text: String,
    pub attachments: Vec<AttachmentRow>,
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AttachmentRow {
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: Option<String>,
    pub refused_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct HistoryRow {
    pub at: String,
    pub actor: String,
    pub event: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct QuarantineRow {
    pub id: i64,
    pub status: String,
    pub received_at: String,
    pub message_id: Option<String>,
    pub reason: String,
    pub source: String,
    pub source_key: String,
    pub raw_sha256: String,
    pub raw_size: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct UnfiledRow {
    pub id: i64,
    pub received_at: String,
    pub message_id: Option<String>,
    #[sqlx(rename = "from_address")]
    pub from: String,
    pub subject: String,
    #[sqlx(rename = "unfiled_reason")]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub reference: Option<String>,
    pub template: String,
    pub message_id: String,
    pub recipients: String,
    pub subject: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub bounced_at: Option<String>,
}

/// An outbox entry claimed for one send attempt.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub complaint_id: Option<i64>,
    pub template: String,
    pub message_id: String,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub raw: Vec<u8>,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
}

impl OutboxItem {
    pub fn claim(&self) -> Claim {
        Claim {
            id: self.id,
            attempt: self.attempts,
        }
    }
}

/// One claim of an outbox mail: its id and the attempt number the claim gave it. Every update
/// after the send is fenced on both, so a sender whose lease ran out (paused, cut off) and was
/// claimed again by another sender cannot undo what that one recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub id: i64,
    pub attempt: i64,
}

/// A sent mail of ours that a bounce or reply points at.
#[derive(Debug, Clone)]
pub struct SentRef {
    pub outbox_id: i64,
    pub complaint_id: Option<i64>,
    pub template: String,
    pub recipients: String,
}

/// The outbox queue as health and metrics see it ([`Store::outbox_backlog`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxBacklog {
    /// Mails queued or being sent.
    pub depth: u64,
    /// When the oldest mail that should have gone by now was queued: due now, or tried
    /// before. A mail the hourly cap holds back, not due yet and never tried, is not late.
    pub oldest_waiting_since: Option<DateTime<Utc>>,
}

/// The store's entry points: transactions, and the capabilities only some databases have.
#[async_trait]
pub trait Store:
    SourceKeys
    + RegisterReads
    + OutboxQueue
    + SchedulerReads
    + SettingsStore
    + Send
    + Sync
    + retention::RetentionStore
{
    /// A write transaction. On SQLite it takes the write lock at once (BEGIN IMMEDIATE), so
    /// concurrent writers queue instead of failing on a lock upgrade.
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError>;

    /// A transaction that only reads (a dry run): no write lock is taken, nothing commits.
    async fn begin_read(&self) -> Result<Box<dyn StoreTx>, StoreError>;

    /// Leases, instances and notifications: only a database that several instances share
    /// has them (PostgreSQL); None on SQLite.
    fn leadership(&self) -> Option<Arc<dyn leadership::Leadership>> {
        None
    }

    /// Raw mails and attachments kept in this database (PostgreSQL's `blobs` table); None
    /// where they can only be files (SQLite).
    fn database_blobs(&self) -> Option<Arc<dyn blobs::Blobs>> {
        None
    }
}

/// What each mail source handed over (intake): committed keys, and which are marked
/// processed at the source.
#[async_trait]
pub trait SourceKeys: Send + Sync {
    async fn known_source_keys(
        &self,
        source: &str,
        keys: &[String],
    ) -> Result<HashSet<String>, StoreError>;

    async fn last_source_key(&self, source: &str) -> Result<Option<String>, StoreError>;

    /// Up to `limit` committed keys of `source` not yet marked processed at the source (a
    /// crash between the commit and `mark_processed`), oldest first.
    async fn unmarked_source_keys(
        &self,
        source: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Record that these keys are marked processed at the source (flagged, moved).
    async fn source_keys_marked(&self, source: &str, keys: &[String]) -> Result<(), StoreError>;
}

/// Reads of the register for the CLI, reports and exports: pages, one complaint, its messages
/// and history, the queues.
#[async_trait]
pub trait RegisterReads: Send + Sync {
    /// One page of the register in its order: `limit` rows after `after` (or from the start),
    /// skipping `offset` rows first. One statement: a short read transaction.
    async fn list_complaints_page(
        &self,
        status: Option<&str>,
        after: Option<&RegisterPosition>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ComplaintRow>, StoreError>;

    /// The register and the reports: up to `limit` complaints matching `query` after `after`,
    /// each with its milestones and round (without the message counts), in one statement.
    async fn register_page(
        &self,
        query: &RegisterQuery,
        after: Option<&RegisterPosition>,
        limit: i64,
    ) -> Result<Vec<RegisterEntry>, StoreError>;

    /// The whole register, read [`PAGE_ROWS`] at a time.
    async fn list_complaints(&self, status: Option<&str>) -> Result<Vec<ComplaintRow>, StoreError> {
        let mut out: Vec<ComplaintRow> = Vec::new();
        loop {
            let after = out.last().map(|r| r.position.clone());
            let page = self
                .list_complaints_page(status, after.as_ref(), 0, PAGE_ROWS)
                .await?;
            let done = (page.len() as i64) < PAGE_ROWS;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    async fn complaint(&self, reference: &str) -> Result<Option<ComplaintRow>, StoreError>;

    /// What the register adds to a page from the other tables: escalations and appeal
    /// pointers sent, and when a measure was recorded; two statements for the whole page.
    async fn add_register_extras(&self, page: &mut [RegisterEntry]) -> Result<(), StoreError>;

    async fn messages(&self, complaint_id: i64) -> Result<Vec<MessageRow>, StoreError>;

    async fn history(&self, complaint_id: i64) -> Result<Vec<HistoryRow>, StoreError>;

    /// Pages of the other listings: up to `limit` rows with an id above `after_id`.
    async fn list_quarantine_page(
        &self,
        all: bool,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<QuarantineRow>, StoreError>;

    async fn list_unfiled_page(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<UnfiledRow>, StoreError>;

    async fn list_outbox_page(
        &self,
        status: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError>;

    async fn list_quarantine(&self, all: bool) -> Result<Vec<QuarantineRow>, StoreError> {
        let mut out: Vec<QuarantineRow> = Vec::new();
        loop {
            let after = out.last().map_or(0, |r| r.id);
            let page = self.list_quarantine_page(all, after, PAGE_ROWS).await?;
            let done = (page.len() as i64) < PAGE_ROWS;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    async fn list_unfiled(&self) -> Result<Vec<UnfiledRow>, StoreError> {
        let mut out: Vec<UnfiledRow> = Vec::new();
        loop {
            let after = out.last().map_or(0, |r| r.id);
            let page = self.list_unfiled_page(after, PAGE_ROWS).await?;
            let done = (page.len() as i64) < PAGE_ROWS;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    async fn list_outbox(&self, status: Option<&str>) -> Result<Vec<OutboxRow>, StoreError> {
        let mut out: Vec<OutboxRow> = Vec::new();
        loop {
            let after = out.last().map_or(0, |r| r.id);
            let page = self.list_outbox_page(status, after, PAGE_ROWS).await?;
            let done = (page.len() as i64) < PAGE_ROWS;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    /// How many complaints the register holds, voided ones not counted (for progress bars).
    async fn complaint_count(&self) -> Result<u64, StoreError>;
}

/// The outbox as senders see it: claims with a lease, fenced results, what is due.
#[async_trait]
pub trait OutboxQueue: Send + Sync {
    /// Claim up to `limit` due outbox entries: the attempt is recorded (counter, lease until
    /// `lease_until`, holder `owner`, see [`lease`]) before any network call, so a crash
    /// mid-send retries after the lease, or at once when the holder is known to be gone.
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        owner: Option<&str>,
    ) -> Result<Vec<OutboxItem>, StoreError>;

    /// Give back claimed mails that were not tried (a stop between mails): due at `now`
    /// again, their attempt not counted.
    async fn outbox_release(&self, claims: &[Claim], now: DateTime<Utc>) -> Result<(), StoreError>;

    /// The holders of the outbox leases that have not run out at `now`.
    async fn outbox_lease_holders(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError>;

    /// Free every lease `owner` holds (it is gone): due at `now`. Returns how many.
    async fn outbox_free_leases_of(
        &self,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Mark these claimed mails sent, in one statement. Returns how many were still ours: a
    /// claim that was taken over (its lease ran out) is not touched.
    async fn outbox_sent(&self, claims: &[Claim], at: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Due again at `next`; false when the claim was taken over meanwhile.
    async fn outbox_retry(
        &self,
        claim: Claim,
        next: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError>;

    async fn next_outbox_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// The outbox depth and its oldest waiting mail at `now` (for `/healthz` and `/metrics`):
    /// one aggregate over the `outbox_due` index, cheap enough for every scrape.
    async fn outbox_backlog(&self, now: DateTime<Utc>) -> Result<OutboxBacklog, StoreError>;
}

/// What the scheduler looks at between its transactions: open and due complaints, jobs done.
#[async_trait]
pub trait SchedulerReads: Send + Sync {
    /// Ids of complaints whose procedure still runs (status open).
    async fn open_complaint_ids(&self) -> Result<Vec<i64>, StoreError>;

    /// Open complaints whose stored next scheduler time is unknown or at or before `at`, in
    /// id order: one range of an index, as long as the answer (not the register).
    async fn complaints_due(&self, at: DateTime<Utc>) -> Result<Vec<i64>, StoreError>;

    /// The earliest stored next scheduler time of an open complaint.
    async fn earliest_next_due(&self) -> Result<Option<NextDue>, StoreError>;

    /// Forget every open complaint's stored next time (what plans are made from changed).
    async fn forget_next_due(&self) -> Result<u64, StoreError>;

    /// Whether a periodic job has fired for `fire_at` (a read; [`StoreTx::mark_job_done`]
    /// decides).
    async fn job_done(&self, job: &str, fire_at: DateTime<Utc>) -> Result<bool, StoreError>;
}

/// Small named values the installation keeps (the shared key, markers).
#[async_trait]
pub trait SettingsStore: Send + Sync {
    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError>;

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// The setting, first stored as `value` when it has none: several processes starting at
    /// once all end up with the value the first one stored.
    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError>;
}

/// One transaction: committed whole or not at all (dropped = rolled back), with savepoints.
#[async_trait]
pub trait StoreTx:
    IntakeTx + ComplaintTx + OutboxTx + SchedulerTx + Send + retention::RetentionTx
{
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;

    async fn savepoint(&mut self) -> Result<(), StoreError>;

    /// Undoes everything since the latest [`StoreTx::savepoint`] and drops it.
    async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError>;

    /// Keeps everything since the latest [`StoreTx::savepoint`] and drops it.
    async fn release_savepoint(&mut self) -> Result<(), StoreError>;
}

/// Inside the registering transaction: source keys, dedupe, threading, messages, quarantine.
#[async_trait]
pub trait IntakeTx: Send {
    async fn dedupe_key_exists(&mut self, key: &str) -> Result<bool, StoreError>;

    async fn record_source_key(
        &mut self,
        source: &str,
        key: &str,
        outcome: &str,
    ) -> Result<bool, StoreError>;

    /// The complaint a stored incoming or sent outgoing mail with one of these ids belongs to.
    async fn complaint_by_message_ids(&mut self, ids: &[String])
    -> Result<Option<i64>, StoreError>;

    /// (complaint id, complainant address) of an existing, not voided reference.
    async fn complaint_by_reference(
        &mut self,
        reference: &str,
    ) -> Result<Option<(i64, String)>, StoreError>;

    async fn insert_message(&mut self, m: &NewMessage) -> Result<i64, StoreError>;

    async fn insert_attachment(
        &mut self,
        message_row: i64,
        a: &NewAttachment,
    ) -> Result<(), StoreError>;

    async fn insert_quarantine(&mut self, q: &NewQuarantine) -> Result<i64, StoreError>;

    /// The held quarantine entry (source, key, sha256), when it is held.
    async fn quarantine_entry(
        &mut self,
        id: i64,
    ) -> Result<Option<(String, String, String, DateTime<Utc>)>, StoreError>;

    async fn set_quarantine_status(
        &mut self,
        id: i64,
        status: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// A held quarantine entry with these raw bytes (the same mail delivered again).
    async fn held_quarantine_by_sha(&mut self, sha: &str) -> Result<Option<i64>, StoreError>;

    /// Stored incoming mails with this Message-ID (a few at most), to tell a redelivery from
    /// a form mailer that reuses one Message-ID for everybody.
    async fn messages_with_message_id(
        &mut self,
        message_id: &str,
    ) -> Result<Vec<StoredContent>, StoreError>;

    async fn unfiled_message(&mut self, id: i64) -> Result<Option<UnfiledMessage>, StoreError>;

    async fn file_message(&mut self, message_row: i64, complaint_id: i64)
    -> Result<(), StoreError>;
}

/// A complaint's record: its number, fields, progress, milestones and history.
#[async_trait]
pub trait ComplaintTx: Send {
    /// Next number for (prefix, year): gapless, since it rolls back with the transaction.
    async fn next_reference_number(&mut self, prefix: &str, year: i32) -> Result<u32, StoreError>;

    async fn insert_complaint(&mut self, c: &NewComplaint, number: u32) -> Result<i64, StoreError>;

    async fn complaint_reference(&mut self, id: i64) -> Result<String, StoreError>;

    async fn complaint_state(&mut self, id: i64) -> Result<Option<ComplaintState>, StoreError>;

    async fn complaint_id_by_reference(
        &mut self,
        reference: &str,
    ) -> Result<Option<i64>, StoreError>;

    /// The complainant address of a complaint.
    async fn complaint_complainant(&mut self, id: i64) -> Result<Option<String>, StoreError>;

    async fn void_complaint(
        &mut self,
        id: i64,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Set one of [`SETTABLE_FIELDS`].
    async fn set_field(
        &mut self,
        id: i64,
        field: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Record that complaint `id` is related to complaint `related_id` (an id, not text: on
    /// PostgreSQL the column is a BIGINT, and a text value is refused).
    async fn link_complaint(&mut self, id: i64, related_id: i64) -> Result<(), StoreError>;

    async fn set_progress(
        &mut self,
        id: i64,
        round: u32,
        extended_weeks: u32,
    ) -> Result<(), StoreError>;

    async fn milestones(
        &mut self,
        id: i64,
    ) -> Result<std::collections::BTreeMap<String, DateTime<Utc>>, StoreError>;

    async fn reset_milestone(
        &mut self,
        id: i64,
        milestone: &str,
        at: Option<DateTime<Utc>>,
        actor: &str,
    ) -> Result<(), StoreError>;

    async fn complete_milestone(
        &mut self,
        complaint_id: i64,
        milestone: &str,
        at: DateTime<Utc>,
        actor: &str,
    ) -> Result<bool, StoreError>;

    async fn history(
        &mut self,
        complaint_id: Option<i64>,
        at: DateTime<Utc>,
        actor: &str,
        event: &str,
        detail: &str,
    ) -> Result<(), StoreError>;

    async fn save_procedure_version(
        &mut self,
        name: &str,
        version: &str,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn procedure_text(
        &mut self,
        name: &str,
        version: &str,
    ) -> Result<Option<String>, StoreError>;
}

/// Queueing mail in the same transaction as what caused it (transactional outbox), and what
/// was sent.
#[async_trait]
pub trait OutboxTx: Send {
    async fn enqueue(&mut self, o: &NewOutbox) -> Result<i64, StoreError>;

    /// The id the next queued mail gets, so its envelope sender (which carries the id) is
    /// known before the insert. Valid until the transaction ends.
    async fn reserve_outbox_id(&mut self) -> Result<i64, StoreError>;

    async fn count_sent_to_since(
        &mut self,
        template: &str,
        recipient: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    async fn sent_by_message_ids(&mut self, ids: &[String]) -> Result<Option<SentRef>, StoreError>;

    async fn sent_by_id(&mut self, outbox_id: i64) -> Result<Option<SentRef>, StoreError>;

    async fn mark_bounced(
        &mut self,
        outbox_id: i64,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<bool, StoreError>;

    async fn mark_outbox_failed(&mut self, outbox_id: i64, error: &str) -> Result<(), StoreError>;

    /// Marks a point inside the transaction to roll back to: the staff commands of one mail
    /// are applied together or not at all, while the mail itself is kept either way.
    /// Savepoints nest (SQL `SAVEPOINT`).
    /// Who got our mail about a complaint, one row per distinct (recipient list, role,
    /// template): the candidates a reply token may have been issued to.
    async fn complaint_mail_recipients(
        &mut self,
        complaint_id: i64,
    ) -> Result<Vec<SentTo>, StoreError>;

    /// Acknowledgements queued since `since` to this normalised recipient.
    async fn count_acknowledgements_to_key_since(
        &mut self,
        recipient_key: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// The release time of the `n`-th latest acknowledgement recorded (1 is the latest), when
    /// it is after `after`: with `n` = the hourly cap, a new one may go one hour after it.
    /// One lookup (`ack_releases`, migrations */..._ack_releases.sql), whatever the cap.
    async fn nth_latest_acknowledgement_release(
        &mut self,
        after: DateTime<Utc>,
        n: i64,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Record that an acknowledgement was queued to go at `at`; the `keep` latest records are
    /// what [`Self::nth_latest_acknowledgement_release`] may ask for (the hourly cap).
    async fn record_acknowledgement_release(
        &mut self,
        at: DateTime<Utc>,
        keep: i64,
    ) -> Result<(), StoreError>;
}

/// What the scheduler records, once each: actions and jobs done, the next due time.
#[async_trait]
pub trait SchedulerTx: Send {
    async fn actions_done(&mut self, id: i64) -> Result<HashSet<String>, StoreError>;

    /// Record that an action ran; false when it already had (exactly once).
    async fn mark_action_done(
        &mut self,
        id: i64,
        key: &str,
        due_at: DateTime<Utc>,
        done_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Record that a periodic job fired for `fire_at`; false when it already had.
    async fn mark_job_done(
        &mut self,
        job: &str,
        fire_at: DateTime<Utc>,
        done_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Store when the scheduler next has something to do for this complaint (None: nothing
    /// planned any more).
    async fn set_next_due(
        &mut self,
        complaint_id: i64,
        next: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
}

/// What the scheduler and staff operations need of one complaint.
#[derive(Debug, Clone)]
pub struct ComplaintState {
    pub id: i64,
    pub reference: String,
    pub received_at: DateTime<Utc>,
    pub status: String,
    pub severity: String,
    pub serious_keywords: Option<String>,
    pub language: String,
    pub procedure_name: String,
    pub procedure_version: String,
    pub subject: String,
    pub complainant_address: String,
    pub complainant_name: Option<String>,
    pub handler: Option<String>,
    pub solution: Option<String>,
    pub round: u32,
    pub extended_weeks: u32,
    /// The person whose conduct the complaint is about (Awb 9:10), when staff named one.
    pub subject_person: Option<String>,
    /// The complainant's recorded written agreement to a further delay (Awb 9:11(3)), unused.
    pub extension_agreement: Option<String>,
    /// Roles told in place of the receiving role, chosen by a `[[routing]]` rule.
    pub routed_roles: Vec<String>,
    /// The text of the first mail, for summaries.
    pub text: String,
    /// Message-ID of the first mail, to thread our mail to the complainant under it.
    pub first_message_id: Option<String>,
    pub category: Option<String>,
    pub cause: Option<String>,
    pub incident_kind: Option<String>,
    pub agreement: Option<String>,
    pub satisfaction: Option<String>,
    pub reopen_reason: Option<String>,
    pub kind: String,
    pub related_reference: Option<String>,
    pub measure: Option<String>,
}

/// Which complaints a register page holds. Times are bounds on `received_at` (UTC); a
/// caller that filters on the organisation's dates widens them by a day and filters exactly
/// itself.
#[derive(Debug, Clone, Default)]
pub struct RegisterQuery {
    /// Either kind of status, as `list --status`; `None`: all but voided ones.
    pub status: Option<String>,
    /// Received at or after this.
    pub received_from: Option<DateTime<Utc>>,
    /// Received before this.
    pub received_before: Option<DateTime<Utc>>,
    /// Also complaints received before `received_from` that carry a measure (the reports'
    /// causes that came back after a measure).
    pub older_with_measure: bool,
}

/// What the register and the reports read of a complaint: the fields of [`ComplaintRow`]
/// they show, and none of the complainant's.
#[derive(Debug, Clone)]
pub struct RegisterComplaint {
    pub id: i64,
    pub reference: String,
    pub position: RegisterPosition,
    pub received_at: String,
    /// As [`ComplaintRow::status`].
    pub status: String,
    pub kind: String,
    pub severity: String,
    pub procedure: String,
    pub procedure_version: String,
    pub category: Option<String>,
    pub cause: Option<String>,
    pub solution: Option<String>,
    pub handler: Option<String>,
    pub extended_weeks: i64,
    pub incident_kind: Option<String>,
    pub agreement: Option<String>,
    pub satisfaction: Option<String>,
    pub channel: Option<String>,
    pub received_by: Option<String>,
    pub measure: Option<String>,
}

/// One complaint of a register page, with what the register adds to it.
#[derive(Debug, Clone)]
pub struct RegisterEntry {
    pub complaint: RegisterComplaint,
    pub extras: RegisterExtras,
}

/// See [`Store::register_page`] and [`Store::add_register_extras`].
#[derive(Debug, Clone, Default)]
pub struct RegisterExtras {
    pub milestones: std::collections::BTreeMap<String, DateTime<Utc>>,
    pub escalations: i64,
    pub round: u32,
    /// The complainant was pointed to the appeal body (an `appeal_info` mail was queued).
    pub appeal_pointed: bool,
    /// When the last measure was recorded (from the history; gone after a purge).
    pub measure_recorded: Option<DateTime<Utc>>,
}

/// One kind of mail we sent about a complaint (see [`StoreTx::complaint_mail_recipients`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentTo {
    /// As stored: comma-separated addresses.
    pub recipients: String,
    /// The staff role it went to; `None` for the complainant.
    pub role: Option<String>,
    pub template: String,
}

/// Columns staff may set (`klachtd set REF FIELD VALUE`); anything else is refused.
pub const SETTABLE_FIELDS: &[&str] = &[
    "handler",
    "category",
    "cause",
    "solution",
    "kind",
    "incident_kind",
    "agreement",
    "satisfaction",
    "status",
    "subject_person",
    "extension_agreement",
    "routed_roles",
    "routing_rule",
    "severity",
    "channel",
    "received_by",
    "reopen_reason",
    "measure",
];

/// An unfiled message, enough to register it as a complaint.
#[derive(Debug, Clone)]
pub struct UnfiledMessage {
    pub id: i64,
    pub message_id: Option<String>,
    pub received_at: DateTime<Utc>,
    pub from_address: String,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub automatic: Option<String>,
}

#[cfg(test)]
mod error_kind_tests {
    use super::StoreError;
    use sqlx::Connection;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
    use std::str::FromStr;

    async fn connect(path: &std::path::Path) -> SqliteConnection {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .unwrap()
            .create_if_missing(true)
            .busy_timeout(std::time::Duration::ZERO);
        SqliteConnection::connect_with(&options).await.unwrap()
    }

    /// The driver's error reaches the caller with its kind: a unique violation is one, and a
    /// database another connection holds is busy, to be retried; neither is the other.
    #[tokio::test]
    async fn unique_violations_and_busy_databases_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kinds.db");
        let mut a = connect(&path).await;
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .execute(&mut a)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES ('x')")
            .execute(&mut a)
            .await
            .unwrap();
        let twice: StoreError = sqlx::query("INSERT INTO t VALUES ('x')")
            .execute(&mut a)
            .await
            .unwrap_err()
            .into();
        assert!(twice.is_unique_violation(), "{twice:?}");
        assert!(!twice.is_retryable(), "{twice:?}");

        let mut b = connect(&path).await;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut a)
            .await
            .unwrap();
        let busy: StoreError = sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut b)
            .await
            .unwrap_err()
            .into();
        assert!(busy.is_retryable(), "{busy:?}");
        assert!(!busy.is_unique_violation(), "{busy:?}");
        assert!(busy.to_string().starts_with("database error: "), "{busy}");

        let shaped = StoreError::Query("bad time".into());
        assert!(!shaped.is_retryable() && !shaped.is_unique_violation());
    }
}

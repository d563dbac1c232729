//! PostgreSQL store, for several instances on one database (issue #12): the same traits as
//! the SQLite store, its own migrations (migrations/postgres). Where one SQLite writer under
//! `BEGIN IMMEDIATE` made things safe, this backend relies on row locks instead: the reference
//! counter row is locked by the registering transaction (gapless numbers), ids come from
//! identity columns, and outbox claims use `FOR UPDATE SKIP LOCKED`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{FromRow, PgPool, Postgres, Row, Transaction};

use super::leadership::Leadership;
use super::*;

mod blobs;
mod leadership;
mod retention;

pub use leadership::{OUTBOX_CHANNEL, SCHEDULER_CHANNEL};

pub struct PgStore {
    pool: PgPool,
    /// Set on the leader's view of the store ([`Leadership::fenced`]): every transaction it
    /// begins checks the lease first.
    fence: Option<std::sync::Arc<crate::store::leadership::Fence>>,
    /// Shared by every view of this store (fenced or not) in this process.
    outbox_ids: std::sync::Arc<OutboxIdBlock>,
}

/// Outbox ids taken from the identity's sequence a block at a time: each queued mail needs
/// one before its row is written (the VERP sender is made from it), and a round trip per mail
/// for it was 8 % of intake (bench.sh part p). Ids stay unique across instances (each block
/// is the sequence's); ids left unused when the process ends are a gap, which outbox ids may
/// have (reference numbers may not: see `next_reference_number`).
#[derive(Default)]
struct OutboxIdBlock {
    ids: std::sync::Mutex<VecDeque<i64>>,
}

/// How many outbox ids one trip to the sequence takes.
const OUTBOX_ID_BLOCK: i64 = 32;

impl OutboxIdBlock {
    fn take(&self) -> Option<i64> {
        self.ids.lock().ok()?.pop_front()
    }

    /// Keeps `rest` for later and returns the first.
    fn refill(&self, mut fetched: VecDeque<i64>) -> Option<i64> {
        let first = fetched.pop_front();
        if let Ok(mut ids) = self.ids.lock() {
            ids.extend(fetched);
        }
        first
    }
}

/// A transaction left open this long without a statement is ended by the server: a process
/// frozen mid-transaction (SIGSTOP, a paused VM) then cannot hold the lease row's lock, and a
/// takeover waits for it at most this long.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(10);

/// How long a statement waits for a row or table lock before it gives up (`lock_timeout`).
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Migrations of every instance on one database are serialised by this advisory lock key
/// (sqlx's own migrator takes one too; this one also covers the newer-database check).
const MIGRATE_LOCK: i64 = 0x6b6c_6163_6874_0001;

/// How to reach the server: the URL, with a password and TLS mode given beside it.
#[derive(Clone)]
pub struct PgTarget {
    pub url: String,
    /// From `database.password`, `password_file` or `KLACHTD__DATABASE__PASSWORD`: never in
    /// the URL of a config file.
    pub password: Option<String>,
    /// `database.sslmode`: overrides a `sslmode` in the URL.
    pub ssl_mode: Option<PgSslMode>,
    pub ssl_root_cert: Option<std::path::PathBuf>,
}

/// `disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full` (libpq's names).
pub fn parse_ssl_mode(s: &str) -> Result<PgSslMode, String> {
    PgSslMode::from_str(s).map_err(|_| {
        format!("unknown sslmode {s:?}: disable, allow, prefer, require, verify-ca or verify-full")
    })
}

impl PgStore {
    pub async fn open(target: &PgTarget) -> Result<Self, StoreError> {
        let shown = redact_url(&target.url);
        let open_err = |reason: String| StoreError::Open {
            url: shown.clone(),
            reason,
        };
        let mut options = PgConnectOptions::from_str(&target.url)
            .map_err(|e| open_err(redact_url(&e.to_string())))?
            .application_name("klachtd")
            .options([
                ("lock_timeout", format!("{}s", LOCK_TIMEOUT.as_secs())),
                // Every instance compares times as text in one fixed format (store::ts);
                // the server's own clock is only used for leases, in UTC.
                ("timezone", "UTC".to_string()),
                // The migrator's "relation already exists, skipping" notices are not news.
                ("client_min_messages", "warning".to_string()),
                (
                    "idle_in_transaction_session_timeout",
                    format!("{}s", IDLE_IN_TRANSACTION.as_secs()),
                ),
                // A peer that vanished (a cut network, a dead VM) is noticed by the server in
                // about 11 s instead of the kernel's two hours, and its locks are freed.
                ("tcp_keepalives_idle", "5".to_string()),
                ("tcp_keepalives_interval", "2".to_string()),
                ("tcp_keepalives_count", "3".to_string()),
            ]);
        if let Some(password) = &target.password {
            options = options.password(password);
        }
        if let Some(mode) = target.ssl_mode {
            options = options.ssl_mode(mode);
        }
        if let Some(cert) = &target.ssl_root_cert {
            options = options.ssl_root_cert(cert);
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        let migrate_err = |e: sqlx::Error| StoreError::Migrate(e.to_string());
        // One connection holds the advisory lock for the check and the run, so instances that
        // start together on a new database do not both create the tables.
        let mut conn = pool.acquire().await.map_err(migrate_err)?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATE_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(migrate_err)?;
        let migrated = async {
            let migrator = sqlx::migrate!("./migrations/postgres");
            let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
            let tracked: Option<String> =
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(migrate_err)?;
            if tracked.is_some() {
                let applied: Option<i64> =
                    sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(migrate_err)?;
                if let Some(applied) = applied.filter(|&a| a > known) {
                    return Err(StoreError::Migrate(format!(
                        "the database was made by a newer klachtd (migration {applied}); this binary knows up to {known}: upgrade klachtd"
                    )));
                }
            }
            migrator
                .run(&mut *conn)
                .await
                .map_err(|e| StoreError::Migrate(e.to_string()))
        }
        .await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATE_LOCK)
            .execute(&mut *conn)
            .await;
        migrated?;
        unlocked.map_err(migrate_err)?;
        Ok(Self {
            pool,
            fence: None,
            outbox_ids: Default::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// A database URL as it may be shown: any password in it replaced by `***`.
pub fn redact_url(url: &str) -> String {
    // scheme://user:password@host...: the password is between the first ':' after the
    // scheme's "//" and the last '@' before the path.
    let Some(rest_at) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[rest_at..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..rest_at],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

pub struct PgTx {
    tx: Transaction<'static, Postgres>,
    /// History rows are only written, never read, inside a transaction: they are kept here
    /// and inserted together at commit (each statement is a hand-over to SQLite's thread).
    history: Vec<HistoryEntry>,
    /// Procedure versions already stored in this transaction.
    saved_versions: HashSet<(String, String)>,
    /// Wake the other instances at commit (NOTIFY is delivered when the transaction
    /// commits, and not at all when it rolls back).
    notify_outbox: bool,
    notify_scheduler: bool,
    /// What the buffers above held at each open savepoint, innermost last.
    savepoints: Vec<BufferMark>,
    /// The reference counters this transaction has locked (by its first number of that
    /// prefix and year, see `next_reference_number`): the last number it gave out, and the
    /// one the row holds now. Written back at commit.
    counters: HashMap<(String, i32), CounterState>,
    /// References of complaints read or made in this transaction (a reference never changes
    /// once given): a queued mail about a complaint asks for it each time.
    references: HashMap<i64, String>,
    outbox_ids: std::sync::Arc<OutboxIdBlock>,
}

#[derive(Clone, Copy)]
struct CounterState {
    last: u32,
    stored: u32,
}

struct BufferMark {
    history_len: usize,
    saved_versions: HashSet<(String, String)>,
    counters: HashMap<(String, i32), CounterState>,
}

struct HistoryEntry {
    complaint_id: Option<i64>,
    at: String,
    actor: String,
    event: String,
    detail: String,
}

impl PgTx {
    async fn flush_history(&mut self) -> Result<(), StoreError> {
        // 5 parameters a row; PostgreSQL allows 65535 per statement.
        for chunk in self.history.chunks(200) {
            let rows = (0..chunk.len())
                .map(|i| {
                    let b = i * 5;
                    format!(
                        "(${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO history (complaint_id, at, actor, event, detail) VALUES {rows}"
            );
            let mut q = sqlx::query(&sql);
            for h in chunk {
                q = q
                    .bind(h.complaint_id)
                    .bind(&h.at)
                    .bind(nul_free(&h.actor))
                    .bind(&h.event)
                    .bind(nul_free(&h.detail));
            }
            q.execute(&mut *self.tx).await?;
        }
        self.history.clear();
        Ok(())
    }

    /// The counters numbered past what their rows hold, set to their last number (the rows
    /// are locked by this transaction since its first number of each).
    async fn flush_counters(&mut self) -> Result<(), StoreError> {
        for ((prefix, year), c) in &self.counters {
            if c.last != c.stored {
                sqlx::query("UPDATE ref_counters SET last = $3 WHERE prefix = $1 AND year = $2")
                    .bind(prefix)
                    .bind(year)
                    .bind(i64::from(c.last))
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        self.counters.clear();
        Ok(())
    }
}

const COMPLAINT_COLUMNS: &str = rows::complaint_columns!("strpos");
const REGISTER_COLUMNS: &str = rows::register_columns!("strpos", "string_agg");

/// The message count: two index searches per row (messages_complaint, outbox_complaint).
const MESSAGE_COUNT: &str = "(SELECT COUNT(*) FROM messages m WHERE m.complaint_id = c.id)
      + (SELECT COUNT(*) FROM outbox o WHERE o.complaint_id = c.id) AS message_count";

/// Text for a PostgreSQL text column, which cannot hold NUL (intake already reads NUL as
/// U+FFFD, `mail::parse::without_nul`; this keeps any other path, an error message quoting a
/// header for one, from failing the whole transaction on it).
fn nul_free(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn nul_free_opt(s: &Option<String>) -> Option<std::borrow::Cow<'_, str>> {
    s.as_deref().map(nul_free)
}

/// Claims as two arrays, for one `UNNEST` statement.
fn claim_columns(claims: &[Claim]) -> (Vec<i64>, Vec<i64>) {
    claims.iter().map(|c| (c.id, c.attempt)).unzip()
}

impl PgStore {
    async fn complaints_page(
        &self,
        status: Option<&str>,
        after: Option<&RegisterPosition>,
        offset: i64,
        limit: i64,
        message_count: &str,
    ) -> Result<Vec<ComplaintRow>, StoreError> {
        // Two texts rather than `?2 IS NULL OR ...`: the row-value range is then an index
        // range (complaints_register_order), so each page costs its own rows, not the ones
        // before it.
        let after_clause = if after.is_some() {
            "AND (c.ref_year, c.ref_prefix, c.ref_number) > ($4, $5, $6)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {COMPLAINT_COLUMNS}, {message_count} FROM complaints c LEFT JOIN complaints r ON r.id = c.related_id
             WHERE (($1 IS NULL AND c.status <> 'voided') OR c.status = $1 OR {lifecycle} = $1) {after_clause}
             ORDER BY c.ref_year, c.ref_prefix, c.ref_number LIMIT $2 OFFSET $3",
            lifecycle = rows::lifecycle_sql!("strpos")
        );
        let mut q = sqlx::query(&sql)
            .bind(status)
            .bind(limit.max(0))
            .bind(offset.max(0));
        if let Some(a) = after {
            q = q.bind(a.year).bind(&a.prefix).bind(a.number);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(rows::from_row).collect()
    }
}

#[async_trait]
impl Store for PgStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        // READ COMMITTED (the default): what must not race is serialised by row locks (the
        // reference counter row, unique keys, the mailbox lease row).
        let mut tx = self.pool.begin().await?;
        if let Some(fence) = &self.fence {
            Self::check_fence(&mut tx, fence).await?;
        }
        Ok(Box::new(PgTx {
            tx,
            history: Vec::new(),
            saved_versions: HashSet::new(),
            savepoints: Vec::new(),
            notify_outbox: false,
            notify_scheduler: false,
            counters: HashMap::new(),
            references: HashMap::new(),
            outbox_ids: self.outbox_ids.clone(),
        }))
    }

    async fn begin_read(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        // One snapshot for the whole dry run, which never commits.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(Box::new(PgTx {
            tx,
            history: Vec::new(),
            saved_versions: HashSet::new(),
            savepoints: Vec::new(),
            notify_outbox: false,
            notify_scheduler: false,
            counters: HashMap::new(),
            references: HashMap::new(),
            outbox_ids: self.outbox_ids.clone(),
        }))
    }

    fn leadership(&self) -> Option<std::sync::Arc<dyn Leadership>> {
        Some(std::sync::Arc::new(PgStore {
            pool: self.pool.clone(),
            fence: None,
            outbox_ids: self.outbox_ids.clone(),
        }))
    }

    fn database_blobs(&self) -> Option<std::sync::Arc<dyn crate::store::blobs::Blobs>> {
        Some(std::sync::Arc::new(blobs::PgBlobs {
            pool: self.pool.clone(),
        }))
    }
}

#[async_trait]
impl SourceKeys for PgStore {
    async fn known_source_keys(
        &self,
        source: &str,
        keys: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        let known: Vec<String> =
            sqlx::query_scalar("SELECT key FROM source_keys WHERE source = $1 AND key = ANY($2)")
                .bind(source)
                .bind(keys)
                .fetch_all(&self.pool)
                .await?;
        Ok(known.into_iter().collect())
    }

    async fn last_source_key(&self, source: &str) -> Result<Option<String>, StoreError> {
        shared::source_keys_last_source_key!(&self.pool, source)
    }

    async fn unmarked_source_keys(
        &self,
        source: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        shared::source_keys_unmarked_source_keys!(&self.pool, source, limit)
    }

    async fn source_keys_marked(&self, source: &str, keys: &[String]) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE source_keys SET marked = 1 WHERE source = $1 AND marked = 0 AND key = ANY($2)",
        )
        .bind(source)
        .bind(keys)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl RegisterReads for PgStore {
    async fn list_complaints_page(
        &self,
        status: Option<&str>,
        after: Option<&RegisterPosition>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ComplaintRow>, StoreError> {
        self.complaints_page(status, after, offset, limit, MESSAGE_COUNT)
            .await
    }

    async fn register_page(
        &self,
        query: &RegisterQuery,
        after: Option<&RegisterPosition>,
        limit: i64,
    ) -> Result<Vec<RegisterEntry>, StoreError> {
        // One row per complaint, its milestones folded into one text, and only the columns
        // the register shows: a page of 1,000 complaints is 1,000 lean rows through sqlx's
        // channel instead of 4,000 (copying each value is most of the cost at 100,000).
        // Times compare as text: `ts` writes one fixed format.
        let after_clause = if after.is_some() {
            "AND (c.ref_year, c.ref_prefix, c.ref_number) > ($5, $6, $7)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {REGISTER_COLUMNS} FROM complaints c
             WHERE (($1 IS NULL AND c.status <> 'voided') OR c.status = $1 OR {lifecycle} = $1)
               AND ($2 IS NULL OR c.received_at >= $2 OR ($4 AND c.measure IS NOT NULL))
               AND ($3 IS NULL OR c.received_at < $3) {after_clause}
             ORDER BY c.ref_year, c.ref_prefix, c.ref_number LIMIT $8",
            lifecycle = rows::lifecycle_sql!("strpos")
        );
        let mut q = sqlx::query(&sql)
            .bind(query.status.as_deref())
            .bind(query.received_from.map(ts))
            .bind(query.received_before.map(ts))
            .bind(query.older_with_measure);
        q = match after {
            Some(a) => q.bind(a.year).bind(&a.prefix).bind(a.number),
            None => q.bind(None::<i64>).bind(None::<String>).bind(None::<i64>),
        };
        let rows = q.bind(limit.max(0)).fetch_all(&self.pool).await?;
        rows.iter().map(rows::register_complaint).collect()
    }

    async fn complaint(&self, reference: &str) -> Result<Option<ComplaintRow>, StoreError> {
        shared::register_reads_complaint!(&self.pool, reference)
    }

    async fn add_register_extras(&self, page: &mut [RegisterEntry]) -> Result<(), StoreError> {
        let index: std::collections::HashMap<i64, usize> = page
            .iter()
            .enumerate()
            .map(|(i, e)| (e.complaint.id, i))
            .collect();
        let ids: Vec<i64> = page.iter().map(|e| e.complaint.id).collect();
        {
            let q = sqlx::query(
                "SELECT complaint_id,
                        COUNT(*) FILTER (WHERE template = 'escalation') AS escalations,
                        COUNT(*) FILTER (WHERE template = 'appeal_info') AS appeals
                 FROM outbox
                 WHERE template IN ('escalation', 'appeal_info') AND complaint_id = ANY($1)
                 GROUP BY complaint_id",
            )
            .bind(&ids);
            for r in q.fetch_all(&self.pool).await? {
                let id: i64 = r.try_get("complaint_id")?;
                if let Some(e) = index.get(&id).and_then(|i| page.get_mut(*i)) {
                    e.extras.escalations = r.try_get("escalations")?;
                    e.extras.appeal_pointed = r.try_get::<i64, _>("appeals")? > 0;
                }
            }
            // The line a recorded measure leaves in the history (domain::complaint, AddMeasure).
            let q = sqlx::query(
                "SELECT complaint_id, MAX(at) AS at FROM history
                 WHERE complaint_id = ANY($1) AND detail LIKE 'measure recorded:%'
                 GROUP BY complaint_id",
            )
            .bind(&ids);
            for r in q.fetch_all(&self.pool).await? {
                let id: i64 = r.try_get("complaint_id")?;
                let at: Option<String> = r.try_get("at")?;
                if let (Some(e), Some(at)) = (index.get(&id).and_then(|i| page.get_mut(*i)), at) {
                    e.extras.measure_recorded = Some(parse_ts(&at)?);
                }
            }
        }
        Ok(())
    }

    async fn messages(&self, complaint_id: i64) -> Result<Vec<MessageRow>, StoreError> {
        shared::register_reads_messages!(&self.pool, complaint_id)
    }

    async fn history(&self, complaint_id: i64) -> Result<Vec<HistoryRow>, StoreError> {
        shared::register_reads_history!(&self.pool, complaint_id)
    }

    async fn list_quarantine_page(
        &self,
        all: bool,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<QuarantineRow>, StoreError> {
        shared::register_reads_list_quarantine_page!(&self.pool, all, after_id, limit)
    }

    async fn list_unfiled_page(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<UnfiledRow>, StoreError> {
        shared::register_reads_list_unfiled_page!(&self.pool, after_id, limit)
    }

    async fn list_outbox_page(
        &self,
        status: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        shared::register_reads_list_outbox_page!(&self.pool, status, after_id, limit)
    }

    async fn complaint_count(&self) -> Result<u64, StoreError> {
        shared::register_reads_complaint_count!(&self.pool)
    }
}

#[async_trait]
impl OutboxQueue for PgStore {
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        owner: Option<&str>,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        // SKIP LOCKED: instances claiming at once each take other rows instead of waiting
        // for (and then double-claiming) the same ones. The attempt counter is the fence.
        let rows = sqlx::query(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = $1,
                    lease_owner = $2
             WHERE id IN (SELECT id FROM outbox
                          WHERE status IN ('queued', 'sending') AND next_attempt_at <= $3
                          ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)
             RETURNING id, complaint_id, template, message_id, envelope_from, recipients,
                       subject, raw, attempts, created_at",
        )
        .bind(ts(lease_until))
        .bind(owner)
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut items = rows
            .iter()
            .map(rows::outbox_item)
            .collect::<Result<Vec<_>, StoreError>>()?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn outbox_release(&self, claims: &[Claim], now: DateTime<Utc>) -> Result<(), StoreError> {
        let (ids, attempts) = claim_columns(claims);
        sqlx::query(
            "UPDATE outbox o SET status = 'queued', attempts = GREATEST(o.attempts - 1, 0),
                    next_attempt_at = $1, lease_owner = NULL
             FROM UNNEST($2::BIGINT[], $3::BIGINT[]) AS c(id, attempt)
             WHERE o.id = c.id AND o.status = 'sending' AND o.attempts = c.attempt",
        )
        .bind(ts(now))
        .bind(&ids)
        .bind(&attempts)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn outbox_lease_holders(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT lease_owner FROM outbox
             WHERE status = 'sending' AND next_attempt_at > $1 AND lease_owner IS NOT NULL",
        )
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn outbox_free_leases_of(
        &self,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        shared::outbox_queue_outbox_free_leases_of!(&self.pool, owner, now)
    }

    async fn outbox_sent(&self, claims: &[Claim], at: DateTime<Utc>) -> Result<u64, StoreError> {
        let (ids, attempts) = claim_columns(claims);
        let r = sqlx::query(
            "UPDATE outbox o SET status = 'sent', sent_at = $1, last_error = NULL, lease_owner = NULL
             FROM UNNEST($2::BIGINT[], $3::BIGINT[]) AS c(id, attempt)
             WHERE o.id = c.id AND o.status = 'sending' AND o.attempts = c.attempt",
        )
        .bind(ts(at))
        .bind(&ids)
        .bind(&attempts)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    async fn outbox_retry(
        &self,
        claim: Claim,
        next: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        shared::outbox_queue_outbox_retry!(&self.pool, claim, next, error)
    }

    async fn next_outbox_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        shared::outbox_queue_next_outbox_due!(&self.pool)
    }

    async fn outbox_backlog(&self, now: DateTime<Utc>) -> Result<OutboxBacklog, StoreError> {
        shared::outbox_queue_outbox_backlog!(&self.pool, now)
    }
}

#[async_trait]
impl SchedulerReads for PgStore {
    async fn open_complaint_ids(&self) -> Result<Vec<i64>, StoreError> {
        shared::scheduler_reads_open_complaint_ids!(&self.pool)
    }

    async fn complaints_due(&self, at: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        shared::scheduler_reads_complaints_due!(&self.pool, at)
    }

    async fn earliest_next_due(&self) -> Result<Option<NextDue>, StoreError> {
        shared::scheduler_reads_earliest_next_due!(&self.pool)
    }

    async fn forget_next_due(&self) -> Result<u64, StoreError> {
        shared::scheduler_reads_forget_next_due!(&self.pool)
    }

    async fn job_done(&self, job: &str, fire_at: DateTime<Utc>) -> Result<bool, StoreError> {
        shared::scheduler_reads_job_done!(&self.pool, job, fire_at)
    }
}

#[async_trait]
impl SettingsStore for PgStore {
    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        shared::settings_store_get_setting!(&self.pool, key)
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        shared::settings_store_put_setting!(&self.pool, key, value)
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        shared::settings_store_setting_or_insert!(&self.pool, key, value)
    }
}

#[async_trait]
impl StoreTx for PgTx {
    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.flush_history().await?;
        self.flush_counters().await?;
        for (wanted, channel) in [
            (self.notify_outbox, OUTBOX_CHANNEL),
            (self.notify_scheduler, SCHEDULER_CHANNEL),
        ] {
            if wanted {
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(channel)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        self.tx.commit().await?;
        Ok(())
    }

    async fn savepoint(&mut self) -> Result<(), StoreError> {
        let name = format!("sp{}", self.savepoints.len());
        sqlx::query(&format!("SAVEPOINT {name}"))
            .execute(&mut *self.tx)
            .await?;
        self.savepoints.push(BufferMark {
            history_len: self.history.len(),
            saved_versions: self.saved_versions.clone(),
            counters: self.counters.clone(),
        });
        Ok(())
    }

    async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        let Some(mark) = self.savepoints.pop() else {
            return Err(StoreError::Conflict("no savepoint to roll back to".into()));
        };
        let name = format!("sp{}", self.savepoints.len());
        sqlx::query(&format!("ROLLBACK TO {name}"))
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(&format!("RELEASE {name}"))
            .execute(&mut *self.tx)
            .await?;
        self.history.truncate(mark.history_len);
        self.saved_versions = mark.saved_versions;
        // A counter first locked after the savepoint is unlocked again and its row as it
        // was: the next number asks the row again. One locked before keeps its lock.
        self.counters = mark.counters;
        self.references.clear();
        Ok(())
    }

    async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        if self.savepoints.pop().is_none() {
            return Err(StoreError::Conflict("no savepoint to release".into()));
        }
        let name = format!("sp{}", self.savepoints.len());
        sqlx::query(&format!("RELEASE {name}"))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl IntakeTx for PgTx {
    async fn dedupe_key_exists(&mut self, key: &str) -> Result<bool, StoreError> {
        shared::intake_tx_dedupe_key_exists!(&mut *self.tx, key)
    }

    async fn record_source_key(
        &mut self,
        source: &str,
        key: &str,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO source_keys (source, key, outcome) VALUES ($1, $2, $3)
             ON CONFLICT (source, key) DO NOTHING",
        )
        .bind(source)
        .bind(key)
        .bind(outcome)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn complaint_by_message_ids(
        &mut self,
        ids: &[String],
    ) -> Result<Option<i64>, StoreError> {
        shared::intake_tx_complaint_by_message_ids!(&mut *self.tx, ids)
    }

    async fn complaint_by_reference(
        &mut self,
        reference: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        shared::intake_tx_complaint_by_reference!(&mut *self.tx, reference)
    }

    async fn insert_message(&mut self, m: &NewMessage) -> Result<i64, StoreError> {
        shared::intake_tx_insert_message!(&mut *self.tx, m)
    }

    async fn insert_attachment(
        &mut self,
        message_row: i64,
        a: &NewAttachment,
    ) -> Result<(), StoreError> {
        shared::intake_tx_insert_attachment!(&mut *self.tx, message_row, a)
    }

    async fn insert_quarantine(&mut self, q: &NewQuarantine) -> Result<i64, StoreError> {
        shared::intake_tx_insert_quarantine!(&mut *self.tx, q)
    }

    async fn quarantine_entry(
        &mut self,
        id: i64,
    ) -> Result<Option<(String, String, String, DateTime<Utc>)>, StoreError> {
        shared::intake_tx_quarantine_entry!(&mut *self.tx, id)
    }

    async fn set_quarantine_status(
        &mut self,
        id: i64,
        status: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        shared::intake_tx_set_quarantine_status!(&mut *self.tx, id, status, at)
    }

    async fn held_quarantine_by_sha(&mut self, sha: &str) -> Result<Option<i64>, StoreError> {
        shared::intake_tx_held_quarantine_by_sha!(&mut *self.tx, sha)
    }

    async fn messages_with_message_id(
        &mut self,
        message_id: &str,
    ) -> Result<Vec<StoredContent>, StoreError> {
        shared::intake_tx_messages_with_message_id!(&mut *self.tx, message_id)
    }

    async fn unfiled_message(&mut self, id: i64) -> Result<Option<UnfiledMessage>, StoreError> {
        shared::intake_tx_unfiled_message!(&mut *self.tx, id)
    }

    async fn file_message(
        &mut self,
        message_row: i64,
        complaint_id: i64,
    ) -> Result<(), StoreError> {
        shared::intake_tx_file_message!(&mut *self.tx, message_row, complaint_id)
    }
}

#[async_trait]
impl ComplaintTx for PgTx {
    async fn next_reference_number(&mut self, prefix: &str, year: i32) -> Result<u32, StoreError> {
        // The first number of a prefix and year in this transaction locks the counter row
        // (the upsert) until commit; the next ones are counted here under that lock and the
        // row is set to the last at commit (`flush_counters`). Gapless: no other transaction
        // can number in between, and a rollback drops both the row's change and these.
        let key = (prefix.to_string(), year);
        if let Some(c) = self.counters.get_mut(&key) {
            c.last = c.last.checked_add(1).ok_or_else(|| {
                StoreError::Query(format!("reference counter overflow: {prefix}-{year}"))
            })?;
            return Ok(c.last);
        }
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO ref_counters (prefix, year, last) VALUES ($1, $2, 1)
             ON CONFLICT (prefix, year) DO UPDATE SET last = ref_counters.last + 1
             RETURNING last",
        )
        .bind(prefix)
        .bind(year)
        .fetch_one(&mut *self.tx)
        .await?;
        let n = u32::try_from(n)
            .map_err(|_| StoreError::Query(format!("reference counter overflow: {n}")))?;
        self.counters
            .insert(key, CounterState { last: n, stored: n });
        Ok(n)
    }

    async fn insert_complaint(&mut self, c: &NewComplaint, number: u32) -> Result<i64, StoreError> {
        self.notify_scheduler = true;
        let reference =
            crate::domain::types::ComplaintRef::new(&c.prefix, c.year, number).to_string();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO complaints (reference, ref_prefix, ref_year, ref_number, received_at,
                complainant_address, complainant_name, subject, kind, severity, serious_keywords,
                related_id, language, procedure_name, procedure_version, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
        )
        .bind(&reference)
        .bind(&c.prefix)
        .bind(c.year)
        .bind(i64::from(number))
        .bind(ts(c.received_at))
        .bind(nul_free(&c.complainant_address))
        .bind(nul_free_opt(&c.complainant_name))
        .bind(nul_free(&c.subject))
        .bind(&c.kind)
        .bind(&c.severity)
        .bind(&c.serious_keywords)
        .bind(c.related_id)
        .bind(&c.language)
        .bind(&c.procedure_name)
        .bind(&c.procedure_version)
        .bind(ts(c.created_at))
        .fetch_one(&mut *self.tx)
        .await?;
        self.references.insert(id, reference);
        Ok(id)
    }

    async fn complaint_reference(&mut self, id: i64) -> Result<String, StoreError> {
        if let Some(r) = self.references.get(&id) {
            return Ok(r.clone());
        }
        let reference: String =
            sqlx::query_scalar("SELECT reference FROM complaints WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("complaint {id}")))?;
        self.references.insert(id, reference.clone());
        Ok(reference)
    }

    async fn complaint_state(&mut self, id: i64) -> Result<Option<ComplaintState>, StoreError> {
        shared::complaint_tx_complaint_state!(&mut *self.tx, id)
    }

    async fn complaint_id_by_reference(
        &mut self,
        reference: &str,
    ) -> Result<Option<i64>, StoreError> {
        shared::complaint_tx_complaint_id_by_reference!(&mut *self.tx, reference)
    }

    async fn complaint_complainant(&mut self, id: i64) -> Result<Option<String>, StoreError> {
        shared::complaint_tx_complaint_complainant!(&mut *self.tx, id)
    }

    async fn void_complaint(
        &mut self,
        id: i64,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.notify_scheduler = true;
        shared::complaint_tx_void_complaint!(&mut *self.tx, id, reason, at)
    }

    async fn set_field(
        &mut self,
        id: i64,
        field: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        self.notify_scheduler = true;
        shared::complaint_tx_set_field!(&mut *self.tx, id, field, value)
    }

    async fn link_complaint(&mut self, id: i64, related_id: i64) -> Result<(), StoreError> {
        self.notify_scheduler = true;
        shared::complaint_tx_link_complaint!(&mut *self.tx, id, related_id)
    }

    async fn set_progress(
        &mut self,
        id: i64,
        round: u32,
        extended_weeks: u32,
    ) -> Result<(), StoreError> {
        self.notify_scheduler = true;
        shared::complaint_tx_set_progress!(&mut *self.tx, id, round, extended_weeks)
    }

    async fn milestones(
        &mut self,
        id: i64,
    ) -> Result<std::collections::BTreeMap<String, DateTime<Utc>>, StoreError> {
        shared::complaint_tx_milestones!(&mut *self.tx, id)
    }

    async fn reset_milestone(
        &mut self,
        id: i64,
        milestone: &str,
        at: Option<DateTime<Utc>>,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.notify_scheduler = true;
        shared::complaint_tx_reset_milestone!(&mut *self.tx, id, milestone, at, actor)
    }

    async fn complete_milestone(
        &mut self,
        complaint_id: i64,
        milestone: &str,
        at: DateTime<Utc>,
        actor: &str,
    ) -> Result<bool, StoreError> {
        self.notify_scheduler = true;
        shared::complaint_tx_complete_milestone!(&mut *self.tx, complaint_id, milestone, at, actor)
    }

    async fn history(
        &mut self,
        complaint_id: Option<i64>,
        at: DateTime<Utc>,
        actor: &str,
        event: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.history.push(HistoryEntry {
            complaint_id,
            at: ts(at),
            actor: actor.to_string(),
            event: event.to_string(),
            detail: detail.to_string(),
        });
        Ok(())
    }

    async fn save_procedure_version(
        &mut self,
        name: &str,
        version: &str,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !self
            .saved_versions
            .insert((name.to_string(), version.to_string()))
        {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO procedure_versions (name, version, text, first_used) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name, version) DO NOTHING",
        )
        .bind(name)
        .bind(version)
        .bind(text)
        .bind(ts(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn procedure_text(
        &mut self,
        name: &str,
        version: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT text FROM procedure_versions WHERE name = $1 AND version = $2",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&mut *self.tx)
        .await?)
    }
}

#[async_trait]
impl OutboxTx for PgTx {
    async fn enqueue(&mut self, o: &NewOutbox) -> Result<i64, StoreError> {
        self.notify_outbox = true;
        sqlx::query(
            "INSERT INTO outbox (id, complaint_id, template, message_id, envelope_from, recipients,
                recipient_role, subject, raw, next_attempt_at, created_at, recipient_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(o.id)
        .bind(o.complaint_id)
        .bind(&o.template)
        .bind(&o.message_id)
        .bind(&o.envelope_from)
        .bind(o.recipients.join(","))
        .bind(&o.recipient_role)
        .bind(nul_free(&o.subject))
        .bind(&o.raw)
        .bind(ts(o.not_before.unwrap_or(o.created_at)))
        .bind(ts(o.created_at))
        .bind(&o.recipient_key)
        .execute(&mut *self.tx)
        .await?;
        Ok(o.id)
    }

    async fn reserve_outbox_id(&mut self) -> Result<i64, StoreError> {
        // The identity's sequence, a block at a time (OutboxIdBlock): unique across instances
        // (a rolled-back id leaves a gap, which outbox ids may have).
        if let Some(id) = self.outbox_ids.take() {
            return Ok(id);
        }
        let fetched: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval(pg_get_serial_sequence('outbox', 'id')) FROM generate_series(1, $1)",
        )
        .bind(OUTBOX_ID_BLOCK)
        .fetch_all(&mut *self.tx)
        .await?;
        self.outbox_ids
            .refill(fetched.into())
            .ok_or_else(|| StoreError::Query("the outbox id sequence gave no id".into()))
    }

    async fn count_sent_to_since(
        &mut self,
        template: &str,
        recipient: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        shared::outbox_tx_count_sent_to_since!(&mut *self.tx, template, recipient, since)
    }

    async fn sent_by_message_ids(&mut self, ids: &[String]) -> Result<Option<SentRef>, StoreError> {
        shared::outbox_tx_sent_by_message_ids!(&mut *self.tx, ids)
    }

    async fn sent_by_id(&mut self, outbox_id: i64) -> Result<Option<SentRef>, StoreError> {
        shared::outbox_tx_sent_by_id!(&mut *self.tx, outbox_id)
    }

    async fn mark_bounced(
        &mut self,
        outbox_id: i64,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<bool, StoreError> {
        shared::outbox_tx_mark_bounced!(&mut *self.tx, outbox_id, at, reason)
    }

    async fn mark_outbox_failed(&mut self, outbox_id: i64, error: &str) -> Result<(), StoreError> {
        shared::outbox_tx_mark_outbox_failed!(&mut *self.tx, outbox_id, error)
    }

    async fn complaint_mail_recipients(
        &mut self,
        complaint_id: i64,
    ) -> Result<Vec<SentTo>, StoreError> {
        shared::outbox_tx_complaint_mail_recipients!(&mut *self.tx, complaint_id)
    }

    async fn count_acknowledgements_to_key_since(
        &mut self,
        recipient_key: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox
             WHERE template = 'acknowledgement' AND recipient_key = $1 AND created_at >= $2",
        )
        // Planned for its values each time (an unnamed statement): a generic plan made while
        // the outbox was small scans all of it once it is big (bench.sh part p: 1.3 ms at
        // 10,000 complaints).
        .persistent(false)
        .bind(recipient_key)
        .bind(ts(since))
        .fetch_one(&mut *self.tx)
        .await?)
    }

    async fn nth_latest_acknowledgement_release(
        &mut self,
        after: DateTime<Utc>,
        n: i64,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        shared::outbox_tx_nth_latest_acknowledgement_release!(&mut *self.tx, after, n)
    }

    async fn record_acknowledgement_release(
        &mut self,
        at: DateTime<Utc>,
        keep: i64,
    ) -> Result<(), StoreError> {
        // One round trip: the next number, and the record that falls out of the `keep` latest.
        // Only the leader registers mail; a `quarantine release` on another host at the same
        // instant takes the same number and records nothing (the cap is one short for it).
        sqlx::query(
            "WITH next AS (SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM ack_releases),
                  added AS (INSERT INTO ack_releases (seq, release_at)
                            SELECT seq, $1 FROM next ON CONFLICT (seq) DO NOTHING)
             DELETE FROM ack_releases WHERE seq = (SELECT seq FROM next) - $2",
        )
        .bind(ts(at))
        .bind(keep.max(1))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl SchedulerTx for PgTx {
    async fn actions_done(&mut self, id: i64) -> Result<HashSet<String>, StoreError> {
        shared::scheduler_tx_actions_done!(&mut *self.tx, id)
    }

    async fn mark_action_done(
        &mut self,
        id: i64,
        key: &str,
        due_at: DateTime<Utc>,
        done_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        shared::scheduler_tx_mark_action_done!(&mut *self.tx, id, key, due_at, done_at)
    }

    async fn mark_job_done(
        &mut self,
        job: &str,
        fire_at: DateTime<Utc>,
        done_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        shared::scheduler_tx_mark_job_done!(&mut *self.tx, job, fire_at, done_at)
    }

    async fn set_next_due(
        &mut self,
        complaint_id: i64,
        next: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        shared::scheduler_tx_set_next_due!(&mut *self.tx, complaint_id, next)
    }
}

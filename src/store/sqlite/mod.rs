//! SQLite store: WAL, foreign keys on, migrations embedded and applied at start.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, Row, Sqlite, SqlitePool, Transaction};

use super::*;

mod retention;

pub struct SqliteStore {
    pool: SqlitePool,
}

/// How long a statement waits for another process's lock before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            url: url.to_string(),
            reason,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| open_err(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Personal data is removed for good (issue #11): deleted and overwritten content is
            // zeroed in the file, not left in free space (see sqlite/retention.rs).
            .pragma("secure_delete", "ON")
            // Several processes (a cron `run --once` beside the daemon) may write at once.
            .busy_timeout(BUSY_TIMEOUT)
            // SQLite's thread may run a whole page ahead of ours (the default of 50 rows made
            // it wait for us, with a wake-up per row, while a register page was worked on).
            .row_buffer_size(PAGE_ROWS as usize);
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| open_err(e.to_string()))?;
        }
        // Opening runs the connection's pragmas (journal_mode among them), and the open was
        // once refused with SQLITE_BUSY despite the busy timeout while another process held
        // the file (tests/deploy.rs: a `list` beside a daemon that was starting; not
        // reproduced on its own). Tried again for as long as a busy statement would wait.
        let started = std::time::Instant::now();
        let pool = loop {
            match SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.clone())
                .await
            {
                Ok(pool) => break pool,
                Err(e) => {
                    let e = StoreError::from(e);
                    if !e.is_retryable() || started.elapsed() >= BUSY_TIMEOUT {
                        return Err(open_err(match e {
                            StoreError::Database(e) => e.to_string(),
                            other => other.to_string(),
                        }));
                    }
                    tracing::debug!(error = %e, "database busy at open: trying again");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        // Several processes may start together on a new database (a cron `run --once` beside
        // the daemon): migrations run under an exclusive file lock, or two of them would both
        // try to create the tables.
        let lock_path = {
            let mut p = options.get_filename().as_os_str().to_owned();
            p.push(".migrate-lock");
            std::path::PathBuf::from(p)
        };
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| open_err(format!("cannot open {}: {e}", lock_path.display())))?;
        let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
            .await
            .map_err(|e| open_err(e.to_string()))?
            .map_err(|e| open_err(format!("cannot lock {}: {e}", lock_path.display())))?;
        let migrated = async {
            let migrator = sqlx::migrate!("./migrations/sqlite");
            // A database that a newer klachtd migrated is refused, naming both versions: left
            // to sqlx, an older binary fails with "previously applied but missing" at best.
            let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
            let migrate_err = |e: sqlx::Error| StoreError::Migrate(e.to_string());
            let tracked: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_one(&pool)
            .await
            .map_err(migrate_err)?;
            if tracked > 0 {
                let applied: Option<i64> =
                    sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                        .fetch_one(&pool)
                        .await
                        .map_err(migrate_err)?;
                if let Some(applied) = applied.filter(|&a| a > known) {
                    return Err(StoreError::Migrate(format!(
                        "the database was made by a newer klachtd (migration {applied}); this binary knows up to {known}: upgrade klachtd"
                    )));
                }
            }
            migrator
                .run(&pool)
                .await
                .map_err(|e| StoreError::Migrate(e.to_string()))
        }
        .await;
        drop(lock);
        migrated?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

pub struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    /// History rows are only written, never read, inside a transaction: they are kept here
    /// and inserted together at commit (each statement is a hand-over to SQLite's thread).
    history: Vec<HistoryEntry>,
    /// The next outbox id. BEGIN IMMEDIATE holds the write lock, so nobody else inserts.
    next_outbox_id: Option<i64>,
    /// Procedure versions already stored in this transaction.
    saved_versions: HashSet<(String, String)>,
    /// What the buffers above held at each open savepoint, innermost last.
    savepoints: Vec<BufferMark>,
}

struct BufferMark {
    history_len: usize,
    next_outbox_id: Option<i64>,
    saved_versions: HashSet<(String, String)>,
}

struct HistoryEntry {
    complaint_id: Option<i64>,
    at: String,
    actor: String,
    event: String,
    detail: String,
}

impl SqliteTx {
    async fn flush_history(&mut self) -> Result<(), StoreError> {
        // 5 parameters a row; SQLite allows 32766 per statement.
        for chunk in self.history.chunks(200) {
            let rows = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO history (complaint_id, at, actor, event, detail) VALUES {rows}"
            );
            let mut q = sqlx::query(&sql);
            for h in chunk {
                q = q
                    .bind(h.complaint_id)
                    .bind(&h.at)
                    .bind(&h.actor)
                    .bind(&h.event)
                    .bind(&h.detail);
            }
            q.execute(&mut *self.tx).await?;
        }
        self.history.clear();
        Ok(())
    }
}

const COMPLAINT_COLUMNS: &str = rows::complaint_columns!("instr");
const REGISTER_COLUMNS: &str = rows::register_columns!("instr", "group_concat");

/// The message count: two index searches per row (messages_complaint, outbox_complaint).
const MESSAGE_COUNT: &str = "(SELECT COUNT(*) FROM messages m WHERE m.complaint_id = c.id)
      + (SELECT COUNT(*) FROM outbox o WHERE o.complaint_id = c.id) AS message_count";

/// Text as SQLite stores it: NUL and all. The PostgreSQL store's `nul_free` replaces NUL,
/// which its text columns cannot hold; the methods both stores share (`shared.rs`) call
/// whichever is in scope.
fn nul_free(s: &str) -> std::borrow::Cow<'_, str> {
    std::borrow::Cow::Borrowed(s)
}

fn nul_free_opt(s: &Option<String>) -> Option<std::borrow::Cow<'_, str>> {
    s.as_deref().map(nul_free)
}

/// `?` placeholders for an IN list.
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl SqliteStore {
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
            "AND (c.ref_year, c.ref_prefix, c.ref_number) > (?4, ?5, ?6)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {COMPLAINT_COLUMNS}, {message_count} FROM complaints c LEFT JOIN complaints r ON r.id = c.related_id
             WHERE ((?1 IS NULL AND c.status <> 'voided') OR c.status = ?1 OR lifecycle = ?1) {after_clause}
             ORDER BY c.ref_year, c.ref_prefix, c.ref_number LIMIT ?2 OFFSET ?3"
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
impl Store for SqliteStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Box::new(SqliteTx {
            tx,
            history: Vec::new(),
            next_outbox_id: None,
            saved_versions: HashSet::new(),
            savepoints: Vec::new(),
        }))
    }

    async fn begin_read(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        // Deferred: a read snapshot at the first statement, no write lock. Dropped, never
        // committed, by the dry runs that use it.
        let tx = self.pool.begin().await?;
        Ok(Box::new(SqliteTx {
            tx,
            history: Vec::new(),
            next_outbox_id: None,
            saved_versions: HashSet::new(),
            savepoints: Vec::new(),
        }))
    }
}

#[async_trait]
impl SourceKeys for SqliteStore {
    async fn known_source_keys(
        &self,
        source: &str,
        keys: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        let mut known = HashSet::new();
        // Chunked: SQLite limits the number of bound parameters.
        for chunk in keys.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(",");
            let sql =
                format!("SELECT key FROM source_keys WHERE source = ? AND key IN ({placeholders})");
            let mut q = sqlx::query(&sql).bind(source);
            for k in chunk {
                q = q.bind(k);
            }
            for row in q.fetch_all(&self.pool).await? {
                known.insert(row.try_get::<String, _>("key")?);
            }
        }
        Ok(known)
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
        // Chunked: SQLite limits the number of bound parameters.
        for chunk in keys.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "UPDATE source_keys SET marked = 1
                 WHERE source = ? AND marked = 0 AND key IN ({placeholders})"
            );
            let mut q = sqlx::query(&sql).bind(source);
            for k in chunk {
                q = q.bind(k);
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl RegisterReads for SqliteStore {
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
            "AND (c.ref_year, c.ref_prefix, c.ref_number) > (?5, ?6, ?7)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {REGISTER_COLUMNS} FROM complaints c
             WHERE ((?1 IS NULL AND c.status <> 'voided') OR c.status = ?1 OR {lifecycle} = ?1)
               AND (?2 IS NULL OR c.received_at >= ?2 OR (?4 AND c.measure IS NOT NULL))
               AND (?3 IS NULL OR c.received_at < ?3) {after_clause}
             ORDER BY c.ref_year, c.ref_prefix, c.ref_number LIMIT ?8",
            lifecycle = rows::lifecycle_sql!("instr")
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
        // SQLite allows 32766 parameters a statement; pages are far smaller.
        for chunk in ids.chunks(5000) {
            let list = marks(chunk.len());
            let sql = format!(
                "SELECT complaint_id,
                        SUM(template = 'escalation') AS escalations,
                        SUM(template = 'appeal_info') AS appeals
                 FROM outbox
                 WHERE template IN ('escalation', 'appeal_info') AND complaint_id IN ({list})
                 GROUP BY complaint_id"
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&self.pool).await? {
                let id: i64 = r.try_get("complaint_id")?;
                if let Some(e) = index.get(&id).and_then(|i| page.get_mut(*i)) {
                    e.extras.escalations = r.try_get("escalations")?;
                    e.extras.appeal_pointed = r.try_get::<i64, _>("appeals")? > 0;
                }
            }
            // The line a recorded measure leaves in the history (domain::complaint, AddMeasure).
            let sql = format!(
                "SELECT complaint_id, MAX(at) AS at FROM history
                 WHERE complaint_id IN ({list}) AND detail LIKE 'measure recorded:%'
                 GROUP BY complaint_id"
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
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
impl OutboxQueue for SqliteStore {
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        owner: Option<&str>,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = ?,
                    lease_owner = ?
             WHERE id IN (SELECT id FROM outbox
                          WHERE status IN ('queued', 'sending') AND next_attempt_at <= ?
                          ORDER BY id LIMIT ?)
             RETURNING id, complaint_id, template, message_id, envelope_from, recipients,
                       subject, raw, attempts, created_at",
        )
        .bind(ts(lease_until))
        .bind(owner)
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut items = rows
            .iter()
            .map(rows::outbox_item)
            .collect::<Result<Vec<_>, StoreError>>()?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn outbox_release(&self, claims: &[Claim], now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for c in claims {
            sqlx::query(
                "UPDATE outbox SET status = 'queued', attempts = MAX(attempts - 1, 0),
                        next_attempt_at = ?, lease_owner = NULL
                 WHERE id = ? AND status = 'sending' AND attempts = ?",
            )
            .bind(ts(now))
            .bind(c.id)
            .bind(c.attempt)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn outbox_lease_holders(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        // The mails in flight: an index range of outbox_due, a round or two per sender.
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT lease_owner FROM outbox
             WHERE status = 'sending' AND next_attempt_at > ? AND lease_owner IS NOT NULL",
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
        // One transaction (one commit, one fsync) for the round; each row fenced on its claim.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut marked = 0;
        for c in claims {
            marked += sqlx::query(
                "UPDATE outbox SET status = 'sent', sent_at = ?, last_error = NULL, lease_owner = NULL
                 WHERE id = ? AND status = 'sending' AND attempts = ?",
            )
            .bind(ts(at))
            .bind(c.id)
            .bind(c.attempt)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(marked)
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
impl SchedulerReads for SqliteStore {
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
impl SettingsStore for SqliteStore {
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
impl StoreTx for SqliteTx {
    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.flush_history().await?;
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
            next_outbox_id: self.next_outbox_id,
            saved_versions: self.saved_versions.clone(),
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
        self.next_outbox_id = mark.next_outbox_id;
        self.saved_versions = mark.saved_versions;
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
impl IntakeTx for SqliteTx {
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
            "INSERT INTO source_keys (source, key, seq, outcome)
             VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM source_keys WHERE source = ?1), ?3)
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
impl ComplaintTx for SqliteTx {
    async fn next_reference_number(&mut self, prefix: &str, year: i32) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO ref_counters (prefix, year, last) VALUES (?, ?, 1)
             ON CONFLICT (prefix, year) DO UPDATE SET last = last + 1
             RETURNING last",
        )
        .bind(prefix)
        .bind(year)
        .fetch_one(&mut *self.tx)
        .await?;
        u32::try_from(n).map_err(|_| StoreError::Query(format!("reference counter overflow: {n}")))
    }

    async fn insert_complaint(&mut self, c: &NewComplaint, number: u32) -> Result<i64, StoreError> {
        let reference =
            crate::domain::types::ComplaintRef::new(&c.prefix, c.year, number).to_string();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO complaints (reference, ref_prefix, ref_year, ref_number, received_at,
                complainant_address, complainant_name, subject, kind, severity, serious_keywords,
                related_id, language, procedure_name, procedure_version, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&reference)
        .bind(&c.prefix)
        .bind(c.year)
        .bind(number)
        .bind(ts(c.received_at))
        .bind(&c.complainant_address)
        .bind(&c.complainant_name)
        .bind(&c.subject)
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
        Ok(id)
    }

    async fn complaint_reference(&mut self, id: i64) -> Result<String, StoreError> {
        sqlx::query_scalar("SELECT reference FROM complaints WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("complaint {id}")))
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
        shared::complaint_tx_void_complaint!(&mut *self.tx, id, reason, at)
    }

    async fn set_field(
        &mut self,
        id: i64,
        field: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        shared::complaint_tx_set_field!(&mut *self.tx, id, field, value)
    }

    async fn link_complaint(&mut self, id: i64, related_id: i64) -> Result<(), StoreError> {
        shared::complaint_tx_link_complaint!(&mut *self.tx, id, related_id)
    }

    async fn set_progress(
        &mut self,
        id: i64,
        round: u32,
        extended_weeks: u32,
    ) -> Result<(), StoreError> {
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
        shared::complaint_tx_reset_milestone!(&mut *self.tx, id, milestone, at, actor)
    }

    async fn complete_milestone(
        &mut self,
        complaint_id: i64,
        milestone: &str,
        at: DateTime<Utc>,
        actor: &str,
    ) -> Result<bool, StoreError> {
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
            "INSERT INTO procedure_versions (name, version, text, first_used) VALUES (?, ?, ?, ?)
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
        Ok(
            sqlx::query_scalar(
                "SELECT text FROM procedure_versions WHERE name = ? AND version = ?",
            )
            .bind(name)
            .bind(version)
            .fetch_optional(&mut *self.tx)
            .await?,
        )
    }
}

#[async_trait]
impl OutboxTx for SqliteTx {
    async fn enqueue(&mut self, o: &NewOutbox) -> Result<i64, StoreError> {
        sqlx::query(
            "INSERT INTO outbox (id, complaint_id, template, message_id, envelope_from, recipients,
                recipient_role, subject, raw, next_attempt_at, created_at, recipient_key)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(o.id)
        .bind(o.complaint_id)
        .bind(&o.template)
        .bind(&o.message_id)
        .bind(&o.envelope_from)
        .bind(o.recipients.join(","))
        .bind(&o.recipient_role)
        .bind(&o.subject)
        .bind(&o.raw)
        .bind(ts(o.not_before.unwrap_or(o.created_at)))
        .bind(ts(o.created_at))
        .bind(&o.recipient_key)
        .execute(&mut *self.tx)
        .await?;
        if self.next_outbox_id == Some(o.id) {
            self.next_outbox_id = Some(o.id + 1);
        }
        Ok(o.id)
    }

    async fn reserve_outbox_id(&mut self) -> Result<i64, StoreError> {
        let next = match self.next_outbox_id {
            Some(n) => n,
            None => {
                let max: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM outbox")
                    .fetch_one(&mut *self.tx)
                    .await?;
                max + 1
            }
        };
        self.next_outbox_id = Some(next);
        Ok(next)
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
             WHERE template = 'acknowledgement' AND recipient_key = ? AND created_at >= ?",
        )
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
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO ack_releases (seq, release_at)
             SELECT COALESCE(MAX(seq), 0) + 1, ?1 FROM ack_releases RETURNING seq",
        )
        .bind(ts(at))
        .fetch_one(&mut *self.tx)
        .await?;
        // One record falls out of the `keep` latest with each new one.
        sqlx::query("DELETE FROM ack_releases WHERE seq = ?1")
            .bind(seq - keep.max(1))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl SchedulerTx for SqliteTx {
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

//! PostgreSQL side of [`crate::store::leadership`]: the `leases` and `instances` tables of
//! migrations/postgres/0001_init.sql, and LISTEN/NOTIFY.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgListener;

use super::PgStore;
use crate::store::leadership::{Fence, InstanceInfo, Leadership, LeaseInfo};
use crate::store::{Store, StoreError};

/// Channels another instance is woken on (the payload is empty).
pub const OUTBOX_CHANNEL: &str = "klachtd_outbox";
pub const SCHEDULER_CHANNEL: &str = "klachtd_scheduler";

#[async_trait]
impl Leadership for PgStore {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<i64>, StoreError> {
        // A run-out lease is deleted and inserted anew, not updated: a DELETE waits for every
        // transaction that key-share-locked the row (the old leader's fenced ones, see
        // `check_fence`), while the holder's renewal (an UPDATE of non-key columns) does not,
        // so the leader's own work never starves its renewal. The server's clock decides.
        let mut tx = self.pool.begin().await?;
        let gone: Option<i64> = sqlx::query_scalar(
            "DELETE FROM leases WHERE name = $1 AND expires_at <= clock_timestamp()
             RETURNING token",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let token: Option<i64> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, token, acquired_at, renewed_at, expires_at)
             VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp(),
                     clock_timestamp() + make_interval(secs => $4))
             ON CONFLICT (name) DO NOTHING
             RETURNING token",
        )
        .bind(name)
        .bind(holder)
        .bind(gone.unwrap_or(0) + 1)
        .bind(ttl.as_secs_f64())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    async fn renew(
        &self,
        name: &str,
        holder: &str,
        token: i64,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        // Still ours while holder and token are: a takeover replaces the row (new token), and
        // it and this update lock the row against each other, so one of them goes first.
        let r = sqlx::query(
            "UPDATE leases SET renewed_at = clock_timestamp(),
                    expires_at = clock_timestamp() + make_interval(secs => $4)
             WHERE name = $1 AND holder = $2 AND token = $3",
        )
        .bind(name)
        .bind(holder)
        .bind(token)
        .bind(ttl.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn release(&self, name: &str, holder: &str, token: i64) -> Result<(), StoreError> {
        // Expired now rather than deleted: the token keeps counting up.
        sqlx::query(
            "UPDATE leases SET expires_at = clock_timestamp()
             WHERE name = $1 AND holder = $2 AND token = $3",
        )
        .bind(name)
        .bind(holder)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn lease(&self, name: &str) -> Result<Option<LeaseInfo>, StoreError> {
        let row = sqlx::query(
            "SELECT name, holder, token, acquired_at, renewed_at, expires_at,
                    EXTRACT(EPOCH FROM clock_timestamp() - renewed_at)::float8 AS age,
                    expires_at <= clock_timestamp() AS expired
             FROM leases WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(LeaseInfo {
                name: r.try_get("name")?,
                holder: r.try_get("holder")?,
                token: r.try_get("token")?,
                acquired_at: r.try_get::<DateTime<Utc>, _>("acquired_at")?,
                renewed_at: r.try_get("renewed_at")?,
                expires_at: r.try_get("expires_at")?,
                age_seconds: r.try_get("age")?,
                expired: r.try_get("expired")?,
            })
        })
        .transpose()
    }

    async fn instance_seen(
        &self,
        id: &str,
        host: &str,
        pid: i64,
        version: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (id, host, pid, version, started_at, seen_at)
             VALUES ($1, $2, $3, $4, clock_timestamp(), clock_timestamp())
             ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at",
        )
        .bind(id)
        .bind(host)
        .bind(pid)
        .bind(version)
        .execute(&self.pool)
        .await?;
        // Instances gone for a day are forgotten.
        sqlx::query("DELETE FROM instances WHERE seen_at < clock_timestamp() - interval '1 day'")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn instance_stopped(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn instances(&self) -> Result<Vec<InstanceInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, host, pid, version, started_at, seen_at,
                    EXTRACT(EPOCH FROM clock_timestamp() - seen_at)::float8 AS ago
             FROM instances ORDER BY seen_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InstanceInfo {
                    id: r.try_get("id")?,
                    host: r.try_get("host")?,
                    pid: r.try_get("pid")?,
                    version: r.try_get("version")?,
                    started_at: r.try_get("started_at")?,
                    seen_at: r.try_get("seen_at")?,
                    seen_seconds_ago: r.try_get("ago")?,
                })
            })
            .collect()
    }

    fn fenced(&self, fence: Arc<Fence>) -> Arc<dyn Store> {
        Arc::new(PgStore {
            pool: self.pool.clone(),
            fence: Some(fence),
            outbox_ids: self.outbox_ids.clone(),
        })
    }

    async fn listen(
        &self,
        outbox: Arc<tokio::sync::Notify>,
        scheduler: Arc<tokio::sync::Notify>,
    ) -> Result<(), StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener
            .listen_all([OUTBOX_CHANNEL, SCHEDULER_CHANNEL])
            .await?;
        loop {
            // `recv` reconnects by itself after a dropped connection (and then may have
            // missed notifications: the sender's and scheduler's own timers cover that).
            let n = listener.recv().await?;
            match n.channel() {
                OUTBOX_CHANNEL => outbox.notify_one(),
                SCHEDULER_CHANNEL => scheduler.notify_one(),
                _ => {}
            }
        }
    }
}

impl PgStore {
    /// The fence check at the start of a leader's transaction: the lease row is key-share
    /// locked until the transaction ends, so a takeover (which deletes the row) waits for it,
    /// while the holder's renewal (which updates no key) goes on.
    pub(super) async fn check_fence(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        fence: &Fence,
    ) -> Result<(), StoreError> {
        let token = fence.token();
        let held: Option<i64> = if token == 0 {
            None
        } else {
            sqlx::query(
                "SELECT token FROM leases
                 WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > clock_timestamp()
                 FOR KEY SHARE",
            )
            .bind(&fence.name)
            .bind(&fence.holder)
            .bind(token)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
        };
        match held {
            Some(_) => Ok(()),
            None => Err(StoreError::LeaseLost(fence.name.clone())),
        }
    }
}

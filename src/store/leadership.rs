//! Several instances on one database (issue #12): which one leads (watches the mailbox, runs
//! the scheduler and the cron jobs), and who runs at all. Only a shared database has this
//! capability ([`crate::store::Store::leadership`]): on SQLite one process owns the file.
//!
//! The lease is a row with a holder, a token and an expiry in the database server's clock, so
//! instances on hosts whose clocks differ agree on it. Every transaction of the leader's work
//! is fenced: it key-share-locks the lease row and checks holder, token and expiry first, so
//! a leader that was paused past its lease (SIGSTOP, a frozen VM) and wakes up commits
//! nothing, and a takeover (which replaces the row) waits for a transaction that is still
//! running to end.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Store, StoreError};

/// The lease of the instance that leads.
pub const LEADER: &str = "leader";

/// What a lease row says, with its age in the server's clock.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseInfo {
    pub name: String,
    pub holder: String,
    pub token: i64,
    pub acquired_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Seconds since the last renewal.
    pub age_seconds: f64,
    pub expired: bool,
}

/// One running (or recently running) instance.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceInfo {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    /// Seconds since its last heartbeat, in the server's clock.
    pub seen_seconds_ago: f64,
}

/// The lease a leader's transactions are fenced on. The token is 0 until the lease is held.
#[derive(Debug)]
pub struct Fence {
    pub name: String,
    pub holder: String,
    token: AtomicI64,
}

impl Fence {
    pub fn new(name: &str, holder: &str) -> Arc<Fence> {
        Arc::new(Fence {
            name: name.to_string(),
            holder: holder.to_string(),
            token: AtomicI64::new(0),
        })
    }

    pub fn token(&self) -> i64 {
        self.token.load(Ordering::SeqCst)
    }

    pub fn set_token(&self, token: i64) {
        self.token.store(token, Ordering::SeqCst);
    }
}

#[async_trait]
pub trait Leadership: Send + Sync {
    /// Take the lease when it is free or has run out; the new token when taken.
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<i64>, StoreError>;
    /// Extend a held lease; false when it is no longer ours (ran out and taken, or gone).
    async fn renew(
        &self,
        name: &str,
        holder: &str,
        token: i64,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    /// Give the lease up at once (a clean stop), so another instance need not wait.
    async fn release(&self, name: &str, holder: &str, token: i64) -> Result<(), StoreError>;
    async fn lease(&self, name: &str) -> Result<Option<LeaseInfo>, StoreError>;
    /// This instance still runs (a heartbeat), for `klachtd status`.
    async fn instance_seen(
        &self,
        id: &str,
        host: &str,
        pid: i64,
        version: &str,
    ) -> Result<(), StoreError>;
    async fn instance_stopped(&self, id: &str) -> Result<(), StoreError>;
    /// Every instance seen in the last day, most recent first.
    async fn instances(&self) -> Result<Vec<InstanceInfo>, StoreError>;
    /// The same store whose `begin` fences every transaction on `fence`.
    fn fenced(&self, fence: Arc<Fence>) -> Arc<dyn Store>;
    /// Wake `wake` whenever another instance queues outbox mail or changes what the
    /// scheduler plans (`LISTEN`), until the connection fails.
    async fn listen(
        &self,
        outbox: Arc<tokio::sync::Notify>,
        scheduler: Arc<tokio::sync::Notify>,
    ) -> Result<(), StoreError>;
}

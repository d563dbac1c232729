//! Mail sources: where incoming mail comes from. Every source lists what is waiting by a stable
//! key, hands over the raw bytes with the time *we* received the mail, and is told to mark a mail
//! processed only after the transaction that registered it has committed.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub mod imap;
pub mod maildir;

/// One mail as the source holds it.
#[derive(Debug, Clone)]
pub struct RawMail {
    /// Stable key within the source: the Maildir unique name, or `UIDVALIDITY:UID` over IMAP.
    pub key: String,
    pub bytes: Vec<u8>,
    /// When our side received it (file delivery time, IMAP INTERNALDATE), never the Date header.
    pub received_at: DateTime<Utc>,
}

/// A mail waiting in the source, before it is fetched: its key, and its size as the source
/// reports it (IMAP RFC822.SIZE, the file length in a Maildir), so that the caller can bound a
/// batch by bytes and a backlog of large mails does not all sit in memory at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub key: String,
    pub size: u64,
}

/// The keys of `waiting`, in order.
pub fn keys(waiting: &[Waiting]) -> Vec<String> {
    waiting.iter().map(|w| w.key.clone()).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("cannot read mailbox {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to mail server {server}: {reason}")]
    Connect { server: String, reason: String },
    #[error("cannot log in to mail server {server} as {user}: {reason}")]
    Auth {
        server: String,
        user: String,
        reason: String,
    },
    #[error("mail server {server} failed: {reason}")]
    Protocol { server: String, reason: String },
}

impl MailboxError {
    /// Authentication failures are alerted to the admin (peers lost mail for days here).
    pub fn is_auth(&self) -> bool {
        matches!(self, MailboxError::Auth { .. })
    }
}

#[async_trait]
pub trait MailSource: Send {
    /// A stable identity for this source in the database, e.g. `maildir:/srv/mail` or
    /// `imap:service@example.org@imap.example.org/INBOX`.
    fn id(&self) -> &str;

    /// The mails waiting, in arrival order. `last_key` is the key of the last mail this
    /// source committed (a cursor: IMAP uses it to fetch only newer UIDs). A source may offer
    /// keys the store already knows (Maildir offers all of `new/`, and the mails in `cur/`
    /// it has not yet been told are committed); the caller drops those and passes them to
    /// [`MailSource::mark_processed`], after which the source stops offering them. A poll
    /// costs O(new mail), not O(all mail): Maildir lists `cur/` only when it may have
    /// changed.
    async fn pending(&mut self, last_key: Option<&str>) -> Result<Vec<Waiting>, MailboxError>;

    /// The mails for these keys. A key that vanished meanwhile is skipped (Maildir: a mail
    /// client moved it; it is offered again under its new name).
    async fn fetch(&mut self, keys: &[String]) -> Result<Vec<RawMail>, MailboxError>;

    /// Called only with keys the store has committed (flag seen, move). Idempotent, and may
    /// be given keys that were never offered by this instance: those the store recorded as
    /// committed but not yet marked when an earlier process died (see
    /// `service::ingest::drain`). A key no longer at the source is no error.
    async fn mark_processed(&mut self, keys: &[String]) -> Result<(), MailboxError>;

    /// Wait until new mail may have arrived, at most `max` (IDLE, or a plain sleep when polling).
    async fn wait_for_mail(&mut self, max: Duration) -> Result<(), MailboxError>;
}

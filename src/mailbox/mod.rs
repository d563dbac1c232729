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
    /// source committed (a cursor: IMAP uses it to fetch only newer UIDs; Maildir lists all and
    /// the caller filters what the store already knows).
    async fn pending(&mut self, last_key: Option<&str>) -> Result<Vec<Waiting>, MailboxError>;

    /// The mails for these keys. A key that vanished meanwhile is skipped.
    async fn fetch(&mut self, keys: &[String]) -> Result<Vec<RawMail>, MailboxError>;

    /// Called only after the mails with these keys are committed (flag seen, move).
    async fn mark_processed(&mut self, keys: &[String]) -> Result<(), MailboxError>;

    /// Wait until new mail may have arrived, at most `max` (IDLE, or a plain sleep when polling).
    async fn wait_for_mail(&mut self, max: Duration) -> Result<(), MailboxError>;
}

//! What retention, export and erasure (issue #11) need of the store, as traits of their own so
//! the main store traits stay as they are: [`Store`](super::Store) and
//! [`StoreTx`](super::StoreTx) require them, so `dyn Store` and `dyn StoreTx` have them too.
//!
//! Removing a complaint's personal data keeps a statistics row: the complaint's reference,
//! dates, kind, category, severity, channel, incident kind, agreement, satisfaction, rounds and
//! extensions, its milestones and their dates, the actions done (escalations among them) and
//! its outbox rows as a record of what was sent when (template, role, status, dates), and its
//! history events with their times. What goes: every message (text, addresses, subjects,
//! Message-IDs), their attachment rows, the raw mails and attachments on disk once no other
//! row names them, the outbox copies (raw mail, recipients, subject, errors), the
//! complainant's name and address, the person complained about, the handler and whoever
//! registered it, the solution, void and reopen texts, the routing, and every history detail
//! and address in an actor. Texts that are set stay set (`''`), so "had a solution" still
//! counts. Cause (and a measure column, when there is one) stays, cleared of the names and
//! addresses of the people in the complaint: the yearly analysis needs it past the retention
//! period (see [`crate::service::retention`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// The kinds of content-addressed blobs under the data directory (see
/// [`crate::store::blobs`]).
pub const RAW: &str = "raw";
pub const ATTACHMENTS: &str = "attachments";

/// One complaint the retention rule may apply to: not yet purged, or purged and since then
/// given new data (a reply to an old mail).
#[derive(Debug, Clone)]
pub struct RetentionCandidate {
    pub id: i64,
    pub reference: String,
    pub procedure_name: String,
    pub procedure_version: String,
    pub status: String,
    pub milestones: std::collections::BTreeMap<String, DateTime<Utc>>,
    /// The latest `closed` history event.
    pub closed_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
    pub purged_at: Option<DateTime<Utc>>,
}

/// The people named in one complaint and the kept texts to clear of them.
#[derive(Debug, Clone, Default)]
pub struct PersonalData {
    pub reference: String,
    pub status: String,
    /// Purged before, and nothing came in since: there is nothing to remove.
    pub nothing_left: bool,
    /// (address, display name) of the complainant and of every sender of a message.
    pub people: Vec<(Option<String>, Option<String>)>,
    /// Staff and others named by name or address: handler, received_by, subject_person.
    pub others: Vec<String>,
    /// The free-text columns the statistics row keeps, cleared by the caller: (column,
    /// value). Only columns in [`KEPT_TEXT_COLUMNS`] that the table has.
    pub kept_text: Vec<(String, String)>,
}

/// Free-text columns of `complaints` kept after a purge, cleared of names: the analysis of
/// causes and measures over past years needs them. A column not in the table is skipped.
pub const KEPT_TEXT_COLUMNS: &[&str] = &["cause", "measure"];

/// What a removal took away, and what is left to delete on disk after the commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub messages: u64,
    pub attachments: u64,
    pub outbox: u64,
    pub history: u64,
    /// SHA-256 of raw mails the removed rows named: delete each when no row names it now.
    pub raw: Vec<String>,
    /// SHA-256 of attachments the removed rows named.
    pub attachment_blobs: Vec<String>,
    /// (source, key) of the removed messages: a Maildir source's file is deleted too.
    pub source_keys: Vec<(String, String)>,
}

impl Removed {
    pub fn add(&mut self, other: Removed) {
        self.messages += other.messages;
        self.attachments += other.attachments;
        self.outbox += other.outbox;
        self.history += other.history;
        self.raw.extend(other.raw);
        self.attachment_blobs.extend(other.attachment_blobs);
        self.source_keys.extend(other.source_keys);
    }
}

/// A stored mail of one person, for an export.
#[derive(Debug, Clone)]
pub struct PersonMessage {
    pub id: i64,
    /// The complaint it belongs to, if any (unfiled otherwise).
    pub reference: Option<String>,
    pub complaint_id: Option<i64>,
    pub received_at: String,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub raw_sha256: String,
    /// `whole`, or `headers` when the mail was over the size limit.
    pub raw_kept: String,
}

/// One stored raw mail of a complaint: an incoming one (a blob) or one we sent (in the row).
#[derive(Debug, Clone)]
pub enum StoredMail {
    Incoming {
        message_row: i64,
        raw_sha256: String,
        raw_kept: String,
    },
    Outgoing {
        outbox_id: i64,
        raw: Vec<u8>,
    },
}

/// How a TRUNCATE checkpoint went (`PRAGMA wal_checkpoint(TRUNCATE)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The WAL is empty (truncated to 0 bytes); false when a reader kept it.
    pub truncated: bool,
}

/// The SQL of [`RetentionStore::referenced_blobs`], the same on both backends (no parameters);
/// `None` for a kind nobody names.
pub fn referenced_blobs_sql(kind: &str) -> Option<&'static str> {
    match kind {
        RAW => Some(
            "SELECT raw_sha256 FROM messages WHERE raw_sha256 IS NOT NULL AND raw_sha256 <> ''
             UNION
             SELECT raw_sha256 FROM quarantine WHERE raw_sha256 IS NOT NULL AND raw_sha256 <> ''
             ORDER BY 1",
        ),
        ATTACHMENTS => Some(
            "SELECT DISTINCT sha256 FROM attachments
             WHERE sha256 IS NOT NULL AND sha256 <> '' ORDER BY 1",
        ),
        _ => None,
    }
}

#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Every complaint not yet purged, and every purged one that has data again, with what
    /// the retention rule looks at. One read.
    async fn retention_candidates(&self) -> Result<Vec<RetentionCandidate>, StoreError>;
    /// (id, reference) of the complaints whose complainant is `address` (compared in lower
    /// case), in register order.
    async fn complaints_of_address(&self, address: &str) -> Result<Vec<(i64, String)>, StoreError>;
    /// Messages from `address` that do not belong to one of `except` (other people's
    /// complaints and unfiled mail).
    async fn messages_from_address(
        &self,
        address: &str,
        except: &[i64],
    ) -> Result<Vec<PersonMessage>, StoreError>;
    /// The raw mails of a complaint, in order.
    async fn complaint_mails(&self, complaint_id: i64) -> Result<Vec<StoredMail>, StoreError>;
    /// Whether any row still names this blob.
    async fn blob_referenced(&self, kind: &str, sha: &str) -> Result<bool, StoreError>;
    /// Every blob of `kind` some row names, sorted and once each (`klachtd migrate-blobs`
    /// checks the target holds them all); empty for a kind nobody names.
    async fn referenced_blobs(&self, kind: &str) -> Result<Vec<String>, StoreError>;
    /// Copy the WAL into the database and truncate it, so no old page image stays in it.
    async fn checkpoint_truncate(&self) -> Result<Checkpoint, StoreError>;
    /// Rebuild the database file (VACUUM): no free page or free space is left that could
    /// hold deleted content written before `secure_delete` was on.
    async fn vacuum(&self) -> Result<(), StoreError>;
}

#[async_trait]
pub trait RetentionTx: Send {
    /// The people and kept texts of a complaint, before its data is removed.
    async fn personal_data(
        &mut self,
        complaint_id: i64,
    ) -> Result<Option<PersonalData>, StoreError>;
    /// Remove the complaint's personal data (see the module comment), writing the cleared
    /// `kept_text` values back. The caller records the removal in the history.
    async fn remove_personal_data(
        &mut self,
        complaint_id: i64,
        kept_text: &[(String, String)],
    ) -> Result<Removed, StoreError>;
    /// Remove single messages (a person's mail in someone else's complaint, or unfiled).
    async fn remove_messages(&mut self, ids: &[i64]) -> Result<Removed, StoreError>;
    /// Empty the detail and take the address out of the actor of every history row, of any
    /// complaint or none, that names `address` (as a whole address, any case): the mails of a
    /// person in other people's complaints, security events, quarantine notes.
    async fn redact_history_mentioning(&mut self, address: &str) -> Result<u64, StoreError>;
}

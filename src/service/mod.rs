//! Services: the I/O-doing steps around the pure core. `ingest` turns mails into one
//! transaction each batch, `outbound` renders and queues our mail, `outbox` delivers it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::config::Valid;
use crate::domain::types::EmailAddress;
use crate::mail::templates::TemplateEngine;
use crate::store::Store;

pub mod admin;
pub mod health;
pub mod ingest;
pub mod leader;
pub mod outbound;
pub mod outbox;
pub mod register;
pub mod register_export;
pub mod report;
pub mod retention;
pub mod scheduler;
pub mod staff_mail;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Template(#[from] crate::mail::templates::TemplateError),
    #[error(transparent)]
    Compose(#[from] crate::mail::compose::ComposeError),
    #[error(transparent)]
    Mailbox(#[from] crate::mailbox::MailboxError),
    #[error("cannot write {path}: {reason}")]
    Disk { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    /// The complaint's rules refused an event (see [`crate::domain::complaint::Refusal`]):
    /// nothing of it was applied.
    #[error(transparent)]
    Refused(crate::domain::complaint::Refusal),
}

/// Everything the services share.
#[derive(Clone)]
pub struct Context {
    /// Validated: the values that are more than text are in `settings.typed`.
    pub settings: Valid,
    pub store: Arc<dyn Store>,
    pub templates: Arc<TemplateEngine>,
    pub clock: SharedClock,
    /// HMAC key for VERP tokens, reply tokens and our Message-IDs.
    pub key: Vec<u8>,
    /// Keys from before a rotation, still accepted for a while.
    pub previous_keys: PreviousKeys,
    pub blobs: BlobStore,
    pub procedure: Arc<crate::procedure_runtime::ProcedureRuntime>,
    /// `[[routing]]`, validated.
    pub routing: Vec<crate::domain::routing::RoutingRule>,
}

/// `organisation.previous_secrets`, accepted up to and including `until` (organisation time).
#[derive(Debug, Clone, Default)]
pub struct PreviousKeys {
    pub keys: Vec<Vec<u8>>,
    pub until: Option<chrono::NaiveDate>,
}

impl Context {
    /// The keys a token may be signed with now: the current key first, then the previous
    /// ones while their period lasts.
    pub fn token_keys(&self) -> Vec<&[u8]> {
        let mut keys: Vec<&[u8]> = vec![&self.key];
        let today = self
            .clock
            .now()
            .with_timezone(&self.procedure.tz)
            .date_naive();
        if self.previous_keys.until.is_some_and(|until| today <= until) {
            keys.extend(self.previous_keys.keys.iter().map(Vec::as_slice));
        }
        keys
    }

    /// The separator of tokened addresses, validated by the config.
    pub fn separator(&self) -> char {
        self.settings.organisation.address_separator
    }

    /// Our address (`outgoing.from`, validated): the service mailbox tokens are made on.
    pub fn from_address(&self) -> Result<EmailAddress, ServiceError> {
        Ok(self.settings.typed.service_address.clone())
    }

    pub fn from_name(&self) -> String {
        self.settings
            .outgoing
            .from_name
            .clone()
            .unwrap_or_else(|| self.settings.organisation.name.clone())
    }
}

/// Content-addressed files under the data directory: raw mails and attachments, named by their
/// SHA-256, so a file name from a mail is never used as a path and a retry writes nothing twice.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(target_os = "linux")]
fn sync_file_system(dir: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `dir` keeps open for the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn sync_file_system(dir: &std::fs::File) -> std::io::Result<()> {
    // Without syncfs: the directory entry; `put` synced each file.
    dir.sync_all()
}

impl BlobStore {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    pub fn path(&self, kind: &str, sha: &str) -> PathBuf {
        let prefix = sha.get(..2).unwrap_or("00");
        self.root.join(kind).join(prefix).join(sha)
    }

    /// Write once (temporary file, then rename); returns the SHA-256.
    pub fn put(&self, kind: &str, bytes: &[u8]) -> Result<String, ServiceError> {
        let sha = sha256_hex(bytes);
        let path = self.path(kind, &sha);
        if path.exists() {
            return Ok(sha);
        }
        let disk = |e: std::io::Error| ServiceError::Disk {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(disk)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::fs::File::create(&tmp).map_err(disk)?;
        std::io::Write::write_all(&mut file, bytes).map_err(disk)?;
        // Elsewhere there is no syncfs for `sync` to call: each file is made durable here.
        #[cfg(not(target_os = "linux"))]
        file.sync_all().map_err(disk)?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(disk)?;
        Ok(sha)
    }

    /// Make every file written so far durable: called once per batch, before the database row
    /// that names them commits and so before the mail is flagged at its source, so a power cut
    /// cannot leave a row pointing at nothing. One syncfs(2) for the whole batch costs a
    /// fraction of an fsync per file (measured: bench-results.md).
    pub fn sync(&self) -> Result<(), ServiceError> {
        let disk = |e: std::io::Error| ServiceError::Disk {
            path: self.root.display().to_string(),
            reason: e.to_string(),
        };
        let dir = std::fs::File::open(&self.root).map_err(disk)?;
        sync_file_system(&dir).map_err(disk)
    }

    pub fn get(&self, kind: &str, sha: &str) -> Result<Vec<u8>, ServiceError> {
        let path = self.path(kind, sha);
        std::fs::read(&path).map_err(|e| ServiceError::Disk {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }
}

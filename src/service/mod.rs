//! Services: the I/O-doing steps around the pure core. `ingest` turns mails into one
//! transaction each batch, `outbound` renders and queues our mail, `outbox` delivers it.

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Valid;
use crate::domain::types::EmailAddress;
use crate::mail::templates::TemplateEngine;
use crate::store::Store;

pub mod admin;
pub mod blob_move;
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
    #[error("blob: {0}")]
    Blob(String),
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
    pub blobs: std::sync::Arc<dyn crate::store::blobs::Blobs>,
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

pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::store::blobs::sha256_hex(bytes)
}

impl From<crate::store::blobs::BlobError> for ServiceError {
    fn from(e: crate::store::blobs::BlobError) -> Self {
        use crate::store::blobs::BlobError;
        match e {
            BlobError::Disk { path, reason } => ServiceError::Disk { path, reason },
            BlobError::Store(e) => ServiceError::Store(e),
            other => ServiceError::Blob(other.to_string()),
        }
    }
}

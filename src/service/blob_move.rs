//! `klachtd migrate-blobs` (issue #12): copy an installation's raw mails and attachments from
//! one blob location to the other (files under the data directory, or PostgreSQL's `blobs`
//! table), so an installation that began on files can move to `database.blobs = "database"`
//! and run instances on hosts that share no disk.
//!
//! Every blob read is checked against its name (content-addressed: a file whose bytes do not
//! hash to its name is damaged, and is reported, not copied). Putting is idempotent, so an
//! interrupted run is simply run again. Afterwards every blob a row of the database names must
//! be in the target: that, not the count of what was copied, says the switch loses nothing.
//! The source is left as it is.

use std::collections::BTreeSet;

use serde::Serialize;

use super::retention::Progress;
use crate::store::Store;
use crate::store::blobs::{ATTACHMENTS, BlobError, Blobs, RAW, sha256_hex};

/// What happened to one kind of blob.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct KindOutcome {
    pub kind: String,
    /// Blobs of this kind in the source.
    pub in_source: u64,
    /// Written to the target by this run.
    pub copied: u64,
    /// Already in the target (an earlier run, or the same mail kept twice).
    pub already_there: u64,
    /// Source blobs whose bytes do not hash to their name: not copied.
    pub damaged: Vec<String>,
    /// Blobs the database names.
    pub referenced: u64,
    /// Named by the database but in the target neither before nor after this run (in the
    /// source neither, or damaged there): what a switch to the target would lose.
    pub missing: Vec<String>,
    /// Bytes copied.
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MoveOutcome {
    pub from: String,
    pub to: String,
    pub kinds: Vec<KindOutcome>,
    pub seconds: f64,
}

impl MoveOutcome {
    /// Nothing damaged and nothing the database names is missing from the target.
    pub fn complete(&self) -> bool {
        self.kinds
            .iter()
            .all(|k| k.damaged.is_empty() && k.missing.is_empty())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Copy every raw mail and attachment from `from` to `to`, then check that `to` holds every
/// blob `store` names. `from_name` and `to_name` are what the outcome calls the two places.
pub async fn move_blobs(
    store: &dyn Store,
    from: &dyn Blobs,
    to: &dyn Blobs,
    (from_name, to_name): (&str, &str),
    progress: &dyn Progress,
) -> Result<MoveOutcome, MoveError> {
    let started = std::time::Instant::now();
    let mut kinds = Vec::new();
    for kind in [RAW, ATTACHMENTS] {
        let mut outcome = KindOutcome {
            kind: kind.to_string(),
            ..KindOutcome::default()
        };
        let source = from.list(kind).await?;
        let held: BTreeSet<String> = to.list(kind).await?.into_iter().collect();
        outcome.in_source = source.len() as u64;
        progress.begin(kind, outcome.in_source);
        for sha in &source {
            progress.advance();
            if held.contains(sha) {
                outcome.already_there += 1;
                continue;
            }
            let bytes = from.get(kind, sha).await?;
            if sha256_hex(&bytes) != *sha {
                outcome.damaged.push(sha.clone());
                continue;
            }
            to.put(kind, &bytes).await?;
            outcome.copied += 1;
            outcome.bytes += bytes.len() as u64;
        }
        progress.finish();
        to.sync().await?;
        // Read again from the target, not assumed from the puts.
        let now_held: BTreeSet<String> = to.list(kind).await?.into_iter().collect();
        let referenced = store.referenced_blobs(kind).await?;
        outcome.referenced = referenced.len() as u64;
        outcome.missing = referenced
            .into_iter()
            .filter(|sha| !now_held.contains(sha))
            .collect();
        kinds.push(outcome);
    }
    Ok(MoveOutcome {
        from: from_name.to_string(),
        to: to_name.to_string(),
        kinds,
        seconds: started.elapsed().as_secs_f64(),
    })
}

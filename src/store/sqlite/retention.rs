//! SQLite side of [`crate::store::retention`]. Every connection has `secure_delete` on (see
//! [`super::SqliteStore::open`]): what a purge deletes or overwrites is zeroed in the page,
//! and a freed page is zeroed too, so it does not linger in the file; a TRUNCATE checkpoint
//! then empties the WAL, which held the older page images.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, SqliteTx, marks};
use crate::domain::retention::mentions_address;
use crate::store::retention::*;
use crate::store::{StoreError, parse_ts};

/// `actor` without an address: `mail:a@b` and `staff:a@b` keep what they were (`mail`,
/// `staff`); anything else with an `@` in it becomes `person`.
const ACTOR_WITHOUT_ADDRESS: &str = "CASE
      WHEN instr(actor, '@') = 0 THEN actor
      WHEN instr(actor, ':') > 1 AND instr(substr(actor, 1, instr(actor, ':') - 1), '@') = 0
        THEN substr(actor, 1, instr(actor, ':') - 1)
      ELSE 'person'
    END";

fn opt_ts(s: Option<String>) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
    s.filter(|s| !s.is_empty())
        .map(|s| parse_ts(&s))
        .transpose()
}

impl SqliteTx {
    /// Which of `columns` the complaints table has (a measure column may come later).
    async fn complaint_columns(&mut self, columns: &[&str]) -> Result<Vec<String>, StoreError> {
        let present: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('complaints')")
                .fetch_all(&mut *self.tx)
                .await?;
        Ok(columns
            .iter()
            .filter(|c| present.iter().any(|p| p == *c))
            .map(|c| c.to_string())
            .collect())
    }

    /// Delete these message rows and their attachment rows; what they named on disk is
    /// returned for deletion after the commit.
    async fn delete_messages(&mut self, ids: &[i64]) -> Result<Removed, StoreError> {
        let mut removed = Removed::default();
        for chunk in ids.chunks(500) {
            let list = marks(chunk.len());
            let sql =
                format!("SELECT raw_sha256, source, source_key FROM messages WHERE id IN ({list})");
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                removed.raw.push(r.try_get("raw_sha256")?);
                removed
                    .source_keys
                    .push((r.try_get("source")?, r.try_get("source_key")?));
            }
            let sql = format!(
                "SELECT sha256 FROM attachments WHERE message_row IN ({list}) AND sha256 IS NOT NULL"
            );
            let mut q = sqlx::query_scalar::<_, String>(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            removed
                .attachment_blobs
                .extend(q.fetch_all(&mut *self.tx).await?);
            let sql = format!("DELETE FROM attachments WHERE message_row IN ({list})");
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            removed.attachments += q.execute(&mut *self.tx).await?.rows_affected();
            let sql = format!("DELETE FROM messages WHERE id IN ({list})");
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            removed.messages += q.execute(&mut *self.tx).await?.rows_affected();
        }
        // A released quarantine entry is the same raw mail as the message it became: its
        // work is done, and it would keep the raw mail on disk.
        let shas: Vec<String> = dedup(&removed.raw);
        for chunk in shas.chunks(500) {
            let sql = format!(
                "DELETE FROM quarantine WHERE status = 'released' AND raw_sha256 IN ({})",
                marks(chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for s in chunk {
                q = q.bind(s);
            }
            q.execute(&mut *self.tx).await?;
        }
        removed.raw = shas;
        removed.attachment_blobs = dedup(&removed.attachment_blobs);
        Ok(removed)
    }
}

fn dedup(v: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    v.iter()
        .filter(|s| seen.insert(s.as_str()))
        .cloned()
        .collect()
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn retention_candidates(&self) -> Result<Vec<RetentionCandidate>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.id, c.reference, c.procedure_name, c.procedure_version, c.status,
                    c.voided_at,
                    (SELECT group_concat(m.milestone || '=' || m.completed_at, char(10))
                       FROM milestones m WHERE m.complaint_id = c.id) AS milestones,
                    CASE WHEN c.status = 'closed' THEN
                      (SELECT MAX(h.at) FROM history h WHERE h.complaint_id = c.id AND h.event = 'closed')
                    END AS closed_at
             FROM complaints c
             WHERE NOT EXISTS (SELECT 1 FROM milestones p
                               WHERE p.complaint_id = c.id AND p.milestone = 'purged')
                OR EXISTS (SELECT 1 FROM messages m WHERE m.complaint_id = c.id)
                OR EXISTS (SELECT 1 FROM outbox o
                           WHERE o.complaint_id = c.id AND (length(o.raw) > 0 OR o.recipients <> ''))
             ORDER BY c.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut milestones = BTreeMap::new();
            let text: Option<String> = r.try_get("milestones")?;
            for line in text.as_deref().unwrap_or_default().lines() {
                if let Some((k, v)) = line.split_once('=') {
                    milestones.insert(k.to_string(), parse_ts(v)?);
                }
            }
            out.push(RetentionCandidate {
                id: r.try_get("id")?,
                reference: r.try_get("reference")?,
                procedure_name: r.try_get("procedure_name")?,
                procedure_version: r.try_get("procedure_version")?,
                status: r.try_get("status")?,
                purged_at: milestones.get("purged").copied(),
                milestones,
                closed_at: opt_ts(r.try_get("closed_at")?)?,
                voided_at: opt_ts(r.try_get("voided_at")?)?,
            });
        }
        Ok(out)
    }

    async fn complaints_of_address(&self, address: &str) -> Result<Vec<(i64, String)>, StoreError> {
        crate::store::shared::retention_store_complaints_of_address!(&self.pool, address)
    }

    async fn messages_from_address(
        &self,
        address: &str,
        except: &[i64],
    ) -> Result<Vec<PersonMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id, m.complaint_id, c.reference, m.received_at, m.from_address, m.subject,
                    m.body_text, m.raw_sha256, m.raw_kept
             FROM messages m LEFT JOIN complaints c ON c.id = m.complaint_id
             WHERE lower(m.from_address) = lower(?1) OR lower(COALESCE(m.reply_to, '')) = lower(?1)
             ORDER BY m.received_at, m.id",
        )
        .bind(address)
        .fetch_all(&self.pool)
        .await?;
        let except: HashSet<i64> = except.iter().copied().collect();
        let mut out = Vec::new();
        for r in rows {
            let complaint_id: Option<i64> = r.try_get("complaint_id")?;
            if complaint_id.is_some_and(|c| except.contains(&c)) {
                continue;
            }
            out.push(PersonMessage {
                id: r.try_get("id")?,
                reference: r.try_get("reference")?,
                complaint_id,
                received_at: r.try_get("received_at")?,
                from: r.try_get("from_address")?,
                subject: r.try_get("subject")?,
                text: r.try_get("body_text")?,
                raw_sha256: r.try_get("raw_sha256")?,
                raw_kept: r.try_get("raw_kept")?,
            });
        }
        Ok(out)
    }

    async fn complaint_mails(&self, complaint_id: i64) -> Result<Vec<StoredMail>, StoreError> {
        crate::store::shared::retention_store_complaint_mails!(&self.pool, complaint_id)
    }

    async fn blob_referenced(&self, kind: &str, sha: &str) -> Result<bool, StoreError> {
        let sql = match kind {
            RAW => {
                "SELECT EXISTS (SELECT 1 FROM messages WHERE raw_sha256 = ?1)
                     OR EXISTS (SELECT 1 FROM quarantine WHERE raw_sha256 = ?1)"
            }
            ATTACHMENTS => "SELECT EXISTS (SELECT 1 FROM attachments WHERE sha256 = ?1)",
            // A kind nobody names is never deleted.
            _ => return Ok(true),
        };
        let n: i64 = sqlx::query_scalar(sql)
            .bind(sha)
            .fetch_one(&self.pool)
            .await?;
        Ok(n != 0)
    }

    async fn referenced_blobs(&self, kind: &str) -> Result<Vec<String>, StoreError> {
        crate::store::shared::retention_store_referenced_blobs!(&self.pool, kind)
    }

    async fn checkpoint_truncate(&self) -> Result<Checkpoint, StoreError> {
        // (busy, log frames, checkpointed frames); busy = 1 when a reader or writer kept the
        // checkpoint from finishing (the busy timeout was waited first).
        let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.pool)
            .await?;
        let busy: i64 = row.try_get(0)?;
        Ok(Checkpoint {
            truncated: busy == 0,
        })
    }

    async fn vacuum(&self) -> Result<(), StoreError> {
        sqlx::query("VACUUM").execute(&self.pool).await?;
        Ok(())
    }
}

#[async_trait]
impl RetentionTx for SqliteTx {
    async fn personal_data(
        &mut self,
        complaint_id: i64,
    ) -> Result<Option<PersonalData>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT c.reference, c.status, c.complainant_address, c.complainant_name, c.handler,
                    c.received_by, c.subject_person,
                    EXISTS (SELECT 1 FROM milestones p
                            WHERE p.complaint_id = c.id AND p.milestone = 'purged')
                    AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.complaint_id = c.id)
                    AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.complaint_id = c.id
                                    AND (length(o.raw) > 0 OR o.recipients <> '')) AS nothing_left
             FROM complaints c WHERE c.id = ?",
        )
        .bind(complaint_id)
        .fetch_optional(&mut *self.tx)
        .await?
        else {
            return Ok(None);
        };
        let address: String = r.try_get("complainant_address")?;
        let mut people = vec![(
            Some(address).filter(|a| !a.is_empty()),
            r.try_get::<Option<String>, _>("complainant_name")?,
        )];
        for m in sqlx::query(
            "SELECT DISTINCT from_address, from_name, reply_to FROM messages WHERE complaint_id = ?",
        )
        .bind(complaint_id)
        .fetch_all(&mut *self.tx)
        .await?
        {
            people.push((Some(m.try_get("from_address")?), m.try_get("from_name")?));
            if let Some(reply_to) = m.try_get::<Option<String>, _>("reply_to")? {
                people.push((Some(reply_to), None));
            }
        }
        let others = ["handler", "received_by", "subject_person"]
            .iter()
            .map(|c| r.try_get::<Option<String>, _>(*c))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        let mut kept_text = Vec::new();
        for column in self.complaint_columns(KEPT_TEXT_COLUMNS).await? {
            // The column name comes from the fixed list, checked against the table.
            let sql = format!("SELECT CAST({column} AS TEXT) FROM complaints WHERE id = ?");
            let value: Option<String> = sqlx::query_scalar(&sql)
                .bind(complaint_id)
                .fetch_one(&mut *self.tx)
                .await?;
            if let Some(v) = value {
                kept_text.push((column, v));
            }
        }
        Ok(Some(PersonalData {
            reference: r.try_get("reference")?,
            status: r.try_get("status")?,
            nothing_left: r.try_get("nothing_left")?,
            people,
            others,
            kept_text,
        }))
    }

    async fn remove_personal_data(
        &mut self,
        complaint_id: i64,
        kept_text: &[(String, String)],
    ) -> Result<Removed, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM messages WHERE complaint_id = ?")
            .bind(complaint_id)
            .fetch_all(&mut *self.tx)
            .await?;
        let mut removed = self.delete_messages(&ids).await?;
        removed.outbox = sqlx::query(
            "UPDATE outbox SET recipients = '', subject = '', raw = x'', recipient_key = NULL,
                    lease_owner = NULL,
                    last_error = CASE
                      WHEN status IN ('queued', 'sending') THEN 'not sent: personal data removed'
                      WHEN last_error IS NULL THEN NULL ELSE '' END,
                    bounce_reason = CASE WHEN bounce_reason IS NULL THEN NULL ELSE '' END,
                    status = CASE WHEN status IN ('queued', 'sending') THEN 'failed' ELSE status END
             WHERE complaint_id = ?",
        )
        .bind(complaint_id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        let sql = format!(
            "UPDATE history SET detail = '', actor = {ACTOR_WITHOUT_ADDRESS}
             WHERE complaint_id = ? AND (detail <> '' OR instr(actor, '@') > 0)"
        );
        removed.history = sqlx::query(&sql)
            .bind(complaint_id)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        let sql = format!(
            "UPDATE milestones SET actor = {ACTOR_WITHOUT_ADDRESS}
             WHERE complaint_id = ? AND instr(actor, '@') > 0"
        );
        sqlx::query(&sql)
            .bind(complaint_id)
            .execute(&mut *self.tx)
            .await?;
        // A text that was set stays set, empty: "had a solution", "was reopened" still count.
        sqlx::query(
            "UPDATE complaints SET complainant_address = '', complainant_name = NULL, subject = '',
                    subject_person = NULL, handler = NULL, received_by = NULL,
                    extension_agreement = NULL, routed_roles = NULL, routing_rule = NULL,
                    solution = CASE WHEN solution IS NULL THEN NULL ELSE '' END,
                    void_reason = CASE WHEN void_reason IS NULL THEN NULL ELSE '' END,
                    reopen_reason = CASE WHEN reopen_reason IS NULL THEN NULL ELSE '' END
             WHERE id = ?",
        )
        .bind(complaint_id)
        .execute(&mut *self.tx)
        .await?;
        let allowed = self.complaint_columns(KEPT_TEXT_COLUMNS).await?;
        for (column, value) in kept_text {
            if !allowed.contains(column) {
                return Err(StoreError::Conflict(format!(
                    "column {column} is not a kept text"
                )));
            }
            let sql = format!("UPDATE complaints SET {column} = ? WHERE id = ?");
            sqlx::query(&sql)
                .bind(value)
                .bind(complaint_id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(removed)
    }

    async fn remove_messages(&mut self, ids: &[i64]) -> Result<Removed, StoreError> {
        self.delete_messages(ids).await
    }

    async fn redact_history_mentioning(&mut self, address: &str) -> Result<u64, StoreError> {
        let needle = address.trim().to_lowercase();
        if needle.is_empty() {
            return Ok(0);
        }
        // A substring search finds the candidates; the whole-address check drops
        // `bjan@x.nl` for `jan@x.nl`.
        let rows = sqlx::query(
            "SELECT id, detail, actor FROM history
             WHERE instr(lower(detail), ?1) > 0 OR instr(lower(actor), ?1) > 0",
        )
        .bind(&needle)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut ids = Vec::new();
        for r in rows {
            let detail: String = r.try_get("detail")?;
            let actor: String = r.try_get("actor")?;
            if mentions_address(&detail, &needle) || mentions_address(&actor, &needle) {
                ids.push(r.try_get::<i64, _>("id")?);
            }
        }
        let mut total = 0;
        for chunk in ids.chunks(500) {
            let sql = format!(
                "UPDATE history SET detail = '', actor = {ACTOR_WITHOUT_ADDRESS} WHERE id IN ({})",
                marks(chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            total += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(total)
    }
}

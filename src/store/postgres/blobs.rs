//! Raw mails and attachments in the `blobs` table (migrations/postgres/0002_blobs.sql), for
//! instances on several hosts that share no disk (`database.blobs = "database"`).

use async_trait::async_trait;
use sqlx::PgPool;

use crate::store::blobs::{BlobError, Blobs, sha256_hex};

pub struct PgBlobs {
    pub(super) pool: PgPool,
}

#[async_trait]
impl Blobs for PgBlobs {
    async fn put(&self, kind: &str, bytes: &[u8]) -> Result<String, BlobError> {
        let sha = sha256_hex(bytes);
        // Committed on its own, before the rows that name it: a rolled-back registration
        // leaves at most an unreferenced blob, never a row pointing at nothing.
        sqlx::query(
            "INSERT INTO blobs (kind, sha256, bytes) VALUES ($1, $2, $3)
             ON CONFLICT (kind, sha256) DO NOTHING",
        )
        .bind(kind)
        .bind(&sha)
        .bind(bytes)
        .execute(&self.pool)
        .await
        .map_err(crate::store::StoreError::from)?;
        Ok(sha)
    }

    async fn get(&self, kind: &str, sha: &str) -> Result<Vec<u8>, BlobError> {
        let bytes: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT bytes FROM blobs WHERE kind = $1 AND sha256 = $2")
                .bind(kind)
                .bind(sha)
                .fetch_optional(&self.pool)
                .await
                .map_err(crate::store::StoreError::from)?;
        bytes.ok_or_else(|| BlobError::Missing {
            kind: kind.to_string(),
            sha: sha.to_string(),
        })
    }

    async fn sync(&self) -> Result<(), BlobError> {
        // Each put committed: durable as the server makes commits durable.
        Ok(())
    }

    async fn delete(&self, kind: &str, sha: &str) -> Result<bool, BlobError> {
        let r = sqlx::query("DELETE FROM blobs WHERE kind = $1 AND sha256 = $2")
            .bind(kind)
            .bind(sha)
            .execute(&self.pool)
            .await
            .map_err(crate::store::StoreError::from)?;
        Ok(r.rows_affected() == 1)
    }

    async fn list(&self, kind: &str) -> Result<Vec<String>, BlobError> {
        Ok(
            sqlx::query_scalar("SELECT sha256 FROM blobs WHERE kind = $1 ORDER BY sha256")
                .bind(kind)
                .fetch_all(&self.pool)
                .await
                .map_err(crate::store::StoreError::from)?,
        )
    }
}

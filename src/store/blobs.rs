//! Raw mails and attachments, content-addressed by SHA-256 (so a file name from a mail is
//! never used as a path, and a retry writes nothing twice), behind one trait: files under the
//! data directory (the default, on either backend), or the `blobs` table of a PostgreSQL
//! database, for instances on several hosts that share no disk (`database.blobs`).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::StoreError;

pub use super::retention::{ATTACHMENTS, RAW};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("{path}: {reason}")]
    Disk { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{kind} {sha} is not stored")]
    Missing { kind: String, sha: String },
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[async_trait]
pub trait Blobs: Send + Sync {
    /// Store once; returns the SHA-256 (hex) it is found by.
    async fn put(&self, kind: &str, bytes: &[u8]) -> Result<String, BlobError>;
    async fn get(&self, kind: &str, sha: &str) -> Result<Vec<u8>, BlobError>;
    /// Make everything put so far durable: called once per batch, before the database rows
    /// that name the blobs commit.
    async fn sync(&self) -> Result<(), BlobError>;
    /// Remove one; false when it was not there.
    async fn delete(&self, kind: &str, sha: &str) -> Result<bool, BlobError>;
    /// The SHA-256 of every blob of `kind` held, sorted (`klachtd migrate-blobs`).
    async fn list(&self, kind: &str) -> Result<Vec<String>, BlobError>;
}

/// A file name `put` could have written: 64 lower-case hex digits (not a temporary file).
pub fn is_sha256_hex(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Files under the data directory: `KIND/PREFIX/SHA`.
#[derive(Debug, Clone)]
pub struct FileBlobs {
    root: PathBuf,
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

fn disk(path: &Path) -> impl Fn(std::io::Error) -> BlobError + '_ {
    move |e| BlobError::Disk {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl FileBlobs {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    pub fn path(&self, kind: &str, sha: &str) -> PathBuf {
        let prefix = sha.get(..2).unwrap_or("00");
        self.root.join(kind).join(prefix).join(sha)
    }

    fn put_sync(&self, kind: &str, bytes: &[u8]) -> Result<String, BlobError> {
        let sha = sha256_hex(bytes);
        let path = self.path(kind, &sha);
        if path.exists() {
            return Ok(sha);
        }
        let err = disk(&path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(&err)?;
        }
        // Temporary file, then rename: a reader sees no file or the whole file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::fs::File::create(&tmp).map_err(&err)?;
        std::io::Write::write_all(&mut file, bytes).map_err(&err)?;
        // Elsewhere there is no syncfs for `sync` to call: each file is made durable here.
        #[cfg(not(target_os = "linux"))]
        file.sync_all().map_err(&err)?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(&err)?;
        Ok(sha)
    }
}

#[async_trait]
impl Blobs for FileBlobs {
    async fn put(&self, kind: &str, bytes: &[u8]) -> Result<String, BlobError> {
        self.put_sync(kind, bytes)
    }

    async fn get(&self, kind: &str, sha: &str) -> Result<Vec<u8>, BlobError> {
        let path = self.path(kind, sha);
        std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BlobError::Missing {
                    kind: kind.to_string(),
                    sha: sha.to_string(),
                }
            } else {
                disk(&path)(e)
            }
        })
    }

    /// One syncfs(2) for the whole batch costs a fraction of an fsync per file (measured:
    /// bench-results.md).
    async fn sync(&self) -> Result<(), BlobError> {
        let dir = std::fs::File::open(&self.root).map_err(disk(&self.root))?;
        sync_file_system(&dir).map_err(disk(&self.root))
    }

    async fn delete(&self, kind: &str, sha: &str) -> Result<bool, BlobError> {
        let path = self.path(kind, sha);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(disk(&path)(e)),
        }
    }

    /// `KIND/PREFIX/SHA` files whose name is a SHA-256 under the prefix it starts with;
    /// anything else there (a temporary file of a crashed put, a stray copy) is not a blob.
    async fn list(&self, kind: &str) -> Result<Vec<String>, BlobError> {
        let root = self.root.join(kind);
        let mut found = Vec::new();
        let prefixes = match std::fs::read_dir(&root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(disk(&root)(e)),
        };
        for prefix in prefixes {
            let prefix = prefix.map_err(disk(&root))?;
            let dir = prefix.path();
            let Some(prefix_name) = prefix.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !dir.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(&dir).map_err(disk(&dir))? {
                let entry = entry.map_err(disk(&dir))?;
                if let Some(name) = entry.file_name().to_str()
                    && is_sha256_hex(name)
                    && name.starts_with(&prefix_name)
                    && entry.file_type().map_err(disk(&dir))?.is_file()
                {
                    found.push(name.to_string());
                }
            }
        }
        found.sort();
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_blob_is_stored_once_found_by_its_hash_and_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = FileBlobs::new(dir.path());
        let sha = blobs.put(RAW, b"mail").await.expect("put");
        assert_eq!(sha, sha256_hex(b"mail"));
        assert_eq!(blobs.put(RAW, b"mail").await.expect("again"), sha);
        blobs.sync().await.expect("sync");
        assert_eq!(blobs.get(RAW, &sha).await.expect("get"), b"mail");
        assert!(matches!(
            blobs.get(ATTACHMENTS, &sha).await,
            Err(BlobError::Missing { .. })
        ));
        assert_eq!(blobs.list(RAW).await.expect("list"), vec![sha.clone()]);
        assert!(blobs.list(ATTACHMENTS).await.expect("none").is_empty());
        assert!(blobs.delete(RAW, &sha).await.expect("delete"));
        assert!(!blobs.delete(RAW, &sha).await.expect("gone"));
        assert!(blobs.list(RAW).await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn listing_skips_temporary_and_misplaced_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = FileBlobs::new(dir.path());
        let a = blobs.put(RAW, b"a").await.expect("put");
        let b = blobs.put(RAW, b"b").await.expect("put");
        let prefix = dir.path().join(RAW).join(&a[..2]);
        std::fs::write(prefix.join(format!("{a}.tmp123")), b"half").expect("tmp");
        // A blob name under the wrong prefix is not where `get` looks: not listed.
        let wrong = if a.starts_with("00") { "01" } else { "00" };
        std::fs::create_dir_all(dir.path().join(RAW).join(wrong)).expect("dir");
        std::fs::write(dir.path().join(RAW).join(wrong).join(&a), b"a").expect("copy");
        let mut expected = vec![a, b];
        expected.sort();
        assert_eq!(blobs.list(RAW).await.expect("list"), expected);
        assert!(!is_sha256_hex(&"A".repeat(64)));
        assert!(!is_sha256_hex("abc"));
    }
}

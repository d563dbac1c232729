//! `klachtd backup` and `klachtd restore`: one tar file with a consistent copy of a SQLite
//! installation, made while the daemon runs.
//!
//! The archive holds, in this order:
//!
//! - `database.sqlite`: a snapshot made with `VACUUM INTO`, which reads in one transaction, so
//!   it is consistent whatever the daemon commits meanwhile;
//! - `data/raw/..`, `data/attachments/..`: the raw mails and attachments, copied after the
//!   snapshot. They are content-addressed and written before the row that names them commits,
//!   so every file the snapshot names is there (the snapshot may name fewer than are copied);
//! - `data/secret.key` when the key is kept there (tokens in sent mail are signed with it);
//! - `manifest.json`: the format, klachtd's version, the database's migration, row counts and
//!   the size and SHA-256 of every file above. Last, because the checksums are computed while
//!   the files are written: one pass over the data.
//!
//! Not in it: the mailbox (a Maildir under the data directory is the mail server's), the file
//! transport's delivered copies, and the configuration and secrets outside the data directory.
//!
//! Restore unpacks into a staging directory inside the data directory, checks every file
//! against the manifest and the database's counts and integrity, and only then moves the files
//! into place. It refuses a data directory that is not empty (without `force`) and one that a
//! klachtd process holds: every command that opens the store holds `klachtd.lock` in the data
//! directory shared, restore takes it exclusively.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::service::retention::Progress;

pub const FORMAT: &str = "klachtd-backup";
pub const FORMAT_VERSION: u32 = 1;
const DATABASE_ENTRY: &str = "database.sqlite";
const MANIFEST_ENTRY: &str = "manifest.json";
const DATA_PREFIX: &str = "data";
/// The data directory's entries a backup carries (the blob directories and the key file).
const DATA_ENTRIES: &[&str] = &["raw", "attachments", "secret.key"];
/// The lock every store-opening command holds shared, and restore exclusively.
pub const LOCK_FILE: &str = "klachtd.lock";
/// Entries of a data directory that do not make it "not empty".
const IGNORED: &[&str] = &[LOCK_FILE, "lost+found"];
/// Tables whose row counts the manifest records and restore compares.
const COUNTED: &[&str] = &[
    "complaints",
    "messages",
    "attachments",
    "outbox",
    "history",
    "quarantine",
];

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "the database {0} is not SQLite: klachtd backup copies SQLite installations (for PostgreSQL use pg_dump)"
    )]
    NotSqlite(String),
    #[error("database {path}: {reason}")]
    Database { path: String, reason: String },
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("{0} exists already: give a new file to --output")]
    OutputExists(String),
    #[error("{path} is not a klachtd backup: {reason}")]
    NotABackup { path: String, reason: String },
    #[error("the backup {path} is damaged: {reason}")]
    Damaged { path: String, reason: String },
    #[error(
        "the backup was made by a newer klachtd (migration {backup}); this binary knows up to {known}: upgrade klachtd first"
    )]
    NewerBackup { backup: i64, known: i64 },
    #[error(
        "the data directory {0} is not empty: restore does not overwrite it unless --force is given"
    )]
    NotEmpty(String),
    #[error(
        "a klachtd process is using {dir} (it holds {lock}): stop the daemon and every other klachtd command first"
    )]
    InUse { dir: String, lock: String },
    #[error("a restore is running on {0}: wait until it has finished")]
    Restoring(String),
}

fn read_err(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// What the archive says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub klachtd_version: String,
    pub created_at: String,
    /// The highest migration applied to the database.
    pub migration: i64,
    pub counts: BTreeMap<String, i64>,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The installation's places: the data directory and the SQLite database file.
#[derive(Debug, Clone)]
pub struct Installation {
    pub data_dir: PathBuf,
    pub database: PathBuf,
}

impl Installation {
    pub fn new(data_dir: &Path, database_url: &str) -> Result<Installation, BackupError> {
        if !database_url.starts_with("sqlite:") {
            // The URL may hold a password: only its scheme is named.
            let scheme = database_url.split(':').next().unwrap_or("");
            return Err(BackupError::NotSqlite(format!("{scheme}:...")));
        }
        let options =
            SqliteConnectOptions::from_str(database_url).map_err(|e| BackupError::Database {
                path: database_url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Installation {
            data_dir: data_dir.to_path_buf(),
            database: options.get_filename().to_path_buf(),
        })
    }
}

/// A hold on the installation's lock, released when dropped (or when the process ends).
pub struct InstallationLock {
    _file: File,
}

impl InstallationLock {
    /// Shared: held by every command that opens the store, so restore can tell that one runs.
    /// None when the lock file cannot be made (a read-only data directory, where nothing can
    /// be restored either); an error only when a restore holds it.
    pub fn shared(data_dir: &Path) -> Result<Option<InstallationLock>, BackupError> {
        let path = data_dir.join(LOCK_FILE);
        let Ok(file) = open_lock(data_dir, &path) else {
            return Ok(None);
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(InstallationLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(BackupError::Restoring(data_dir.display().to_string()))
            }
            Err(std::fs::TryLockError::Error(_)) => Ok(None),
        }
    }

    /// Exclusive: restore's, refused while any klachtd process holds the installation.
    pub fn exclusive(data_dir: &Path) -> Result<InstallationLock, BackupError> {
        let path = data_dir.join(LOCK_FILE);
        let file = open_lock(data_dir, &path).map_err(write_err(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(InstallationLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(BackupError::InUse {
                dir: data_dir.display().to_string(),
                lock: path.display().to_string(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(write_err(&path)(e)),
        }
    }
}

fn open_lock(data_dir: &Path, path: &Path) -> std::io::Result<File> {
    std::fs::create_dir_all(data_dir)?;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// The highest migration this binary knows.
pub fn known_migration() -> i64 {
    sqlx::migrate!("./migrations/sqlite")
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

async fn connect(path: &Path, create: bool) -> Result<sqlx::SqliteConnection, BackupError> {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        // The daemon may hold the write lock for a batch; VACUUM INTO only needs to read.
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|e| BackupError::Database {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// The migration and row counts of a database file.
async fn describe(path: &Path) -> Result<(i64, BTreeMap<String, i64>), BackupError> {
    let db_err = |e: sqlx::Error| BackupError::Database {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut conn = connect(path, false).await?;
    let migration: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .map_err(db_err)?;
    let mut counts = BTreeMap::new();
    for table in COUNTED {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .map_err(db_err)?;
        counts.insert((*table).to_string(), n);
    }
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .map_err(db_err)?;
    if check != "ok" {
        return Err(BackupError::Database {
            path: path.display().to_string(),
            reason: format!("integrity check failed: {check}"),
        });
    }
    let _ = conn.close().await;
    Ok((migration.unwrap_or(0), counts))
}

/// Every regular file under `dir` (sorted, relative to `base`), leaving out the temporary files
/// a writer has not yet renamed into place (`SHA.tmpPID`).
fn files_under(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BackupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(read_err(dir)(e)),
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(read_err(dir))?.path());
    }
    paths.sort();
    for path in paths {
        let meta = std::fs::symlink_metadata(&path).map_err(read_err(&path))?;
        if meta.is_dir() {
            files_under(base, &path, out)?;
        } else if meta.is_file() {
            let temporary = path
                .extension()
                .is_some_and(|e| e.to_string_lossy().starts_with("tmp"));
            if !temporary && let Ok(rel) = path.strip_prefix(base) {
                out.push(rel.to_path_buf());
            }
        }
    }
    Ok(())
}

/// Reads through, hashing what passes.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    size: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o600);
    h.set_mtime(u64::try_from(Utc::now().timestamp()).unwrap_or(0));
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// Append one file, returning its manifest entry.
fn append_file(
    tar: &mut tar::Builder<BufWriter<File>>,
    name: &str,
    source: &Path,
    output: &Path,
) -> Result<FileEntry, BackupError> {
    let file = File::open(source).map_err(read_err(source))?;
    let size = file.metadata().map_err(read_err(source))?.len();
    let mut reader = Hashing {
        inner: file.take(size),
        hash: Sha256::new(),
        size: 0,
    };
    let mut h = header(size);
    tar.append_data(&mut h, name, &mut reader)
        .map_err(write_err(output))?;
    if reader.size != size {
        return Err(BackupError::Read {
            path: source.display().to_string(),
            reason: format!(
                "it shrank while being copied ({size} -> {} bytes)",
                reader.size
            ),
        });
    }
    Ok(FileEntry {
        path: name.to_string(),
        size,
        sha256: hex::encode(reader.hash.finalize()),
    })
}

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupSummary {
    pub manifest: Manifest,
    pub bytes: u64,
}

/// Write a backup of `inst` to `output` (a new file). The daemon may run meanwhile.
pub async fn backup(
    inst: &Installation,
    output: &Path,
    progress: &dyn Progress,
) -> Result<BackupSummary, BackupError> {
    if output.exists() {
        return Err(BackupError::OutputExists(output.display().to_string()));
    }
    if !inst.database.exists() {
        return Err(BackupError::Database {
            path: inst.database.display().to_string(),
            reason: "no such file (nothing to back up yet)".into(),
        });
    }
    let partial = sibling(output, "partial");
    let snapshot = sibling(output, "snapshot");
    let result = write_backup(inst, output, &partial, &snapshot, progress).await;
    let _ = std::fs::remove_file(&snapshot);
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// `FILE.WHAT-PID` beside `path`.
fn sibling(path: &Path, what: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{what}-{}", std::process::id()));
    PathBuf::from(name)
}

async fn write_backup(
    inst: &Installation,
    output: &Path,
    partial: &Path,
    snapshot: &Path,
    progress: &dyn Progress,
) -> Result<BackupSummary, BackupError> {
    let db_err = |e: sqlx::Error| BackupError::Database {
        path: inst.database.display().to_string(),
        reason: e.to_string(),
    };
    // The snapshot first: the blobs copied after it include every one it names.
    let mut conn = connect(&inst.database, false).await?;
    sqlx::query("VACUUM INTO ?")
        .bind(snapshot.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await
        .map_err(db_err)?;
    let _ = conn.close().await;
    let (migration, counts) = describe(snapshot).await?;

    let mut data_files = Vec::new();
    for entry in DATA_ENTRIES {
        let path = inst.data_dir.join(entry);
        if path.is_file() {
            data_files.push(PathBuf::from(entry));
        } else {
            files_under(&inst.data_dir, &path, &mut data_files)?;
        }
    }
    progress.begin("backup", data_files.len() as u64 + 1);
    let file = File::create(partial).map_err(write_err(partial))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    let mut files = vec![append_file(&mut tar, DATABASE_ENTRY, snapshot, output)?];
    progress.advance();
    for rel in &data_files {
        let name = format!("{DATA_PREFIX}/{}", rel.to_string_lossy());
        files.push(append_file(
            &mut tar,
            &name,
            &inst.data_dir.join(rel),
            output,
        )?);
        progress.advance();
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        klachtd_version: env!("CARGO_PKG_VERSION").into(),
        created_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        migration,
        counts,
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Write {
        path: output.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut h = header(json.len() as u64);
    tar.append_data(&mut h, MANIFEST_ENTRY, json.as_slice())
        .map_err(write_err(output))?;
    let writer = tar.into_inner().map_err(write_err(output))?;
    let file = writer
        .into_inner()
        .map_err(|e| write_err(output)(e.into_error()))?;
    file.sync_all().map_err(write_err(output))?;
    let bytes = file.metadata().map_err(write_err(output))?.len();
    drop(file);
    std::fs::rename(partial, output).map_err(write_err(output))?;
    progress.finish();
    Ok(BackupSummary { manifest, bytes })
}

/// What a restore put back.
#[derive(Debug)]
pub struct RestoreSummary {
    pub manifest: Manifest,
}

/// The data directory holds something a restore would overwrite or mix with.
fn in_use_paths(inst: &Installation) -> Result<Vec<PathBuf>, BackupError> {
    let mut found = Vec::new();
    match std::fs::read_dir(&inst.data_dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(read_err(&inst.data_dir))?;
                let name = entry.file_name();
                if !IGNORED.iter().any(|i| name == *i) {
                    found.push(entry.path());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(read_err(&inst.data_dir)(e)),
    }
    if inst.database.exists() && !inst.database.starts_with(&inst.data_dir) {
        found.push(inst.database.clone());
    }
    Ok(found)
}

/// A tar entry's name, if it is one a backup may hold: `database.sqlite`, `manifest.json`,
/// or a plain relative path under `data/` to one of [`DATA_ENTRIES`].
fn safe_name(path: &Path) -> Option<String> {
    let parts: Vec<String> = path
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str().map(str::to_string),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    let ok = match parts.as_slice() {
        [one] => one == DATABASE_ENTRY || one == MANIFEST_ENTRY,
        [data, entry, ..] => data == DATA_PREFIX && DATA_ENTRIES.contains(&entry.as_str()),
        _ => false,
    };
    ok.then(|| parts.join("/"))
}

/// Put the backup `input` back into `inst`. Refused while a klachtd process holds the
/// installation, and into a data directory that is not empty unless `force`.
pub async fn restore(
    inst: &Installation,
    input: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<RestoreSummary, BackupError> {
    let _lock = InstallationLock::exclusive(&inst.data_dir)?;
    let existing = in_use_paths(inst)?;
    if !existing.is_empty() && !force {
        return Err(BackupError::NotEmpty(inst.data_dir.display().to_string()));
    }
    let staging = inst
        .data_dir
        .join(format!(".restore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let result = stage_and_verify(inst, input, &staging, progress).await;
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // Verified: what the backup replaces goes, then the staged files move into place.
    if force {
        remove_replaced(inst)?;
    }
    let moved = move_into_place(inst, &staging);
    let _ = std::fs::remove_dir_all(&staging);
    moved?;
    sync_dir(&inst.data_dir)?;
    Ok(RestoreSummary { manifest })
}

async fn stage_and_verify(
    inst: &Installation,
    input: &Path,
    staging: &Path,
    progress: &dyn Progress,
) -> Result<Manifest, BackupError> {
    let not_a_backup = |reason: String| BackupError::NotABackup {
        path: input.display().to_string(),
        reason,
    };
    let damaged = |reason: String| BackupError::Damaged {
        path: input.display().to_string(),
        reason,
    };
    std::fs::create_dir_all(staging).map_err(write_err(staging))?;
    let file = File::open(input).map_err(read_err(input))?;
    let total = file.metadata().map_err(read_err(input))?.len();
    progress.begin("restore (bytes read / 1 MiB)", total.div_ceil(1 << 20));
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut seen: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    let mut read_mib = 0u64;
    let entries = archive.entries().map_err(|e| not_a_backup(e.to_string()))?;
    for (n, entry) in entries.enumerate() {
        // An unreadable first header: some other file, not a damaged backup.
        let mut entry = entry.map_err(|e| match n {
            0 => not_a_backup(e.to_string()),
            _ => damaged(e.to_string()),
        })?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(not_a_backup("it holds an entry that is not a file".into()));
        }
        let raw = entry
            .path()
            .map_err(|e| damaged(e.to_string()))?
            .into_owned();
        let name = safe_name(&raw)
            .ok_or_else(|| not_a_backup(format!("unexpected entry {:?}", raw.display())))?;
        if name == MANIFEST_ENTRY {
            let mut text = Vec::new();
            entry
                .read_to_end(&mut text)
                .map_err(|e| damaged(e.to_string()))?;
            let m: Manifest = serde_json::from_slice(&text)
                .map_err(|e| not_a_backup(format!("manifest.json: {e}")))?;
            if m.format != FORMAT || m.format_version > FORMAT_VERSION {
                return Err(not_a_backup(format!(
                    "format {} version {} (this klachtd reads {FORMAT} up to version {FORMAT_VERSION})",
                    m.format, m.format_version
                )));
            }
            manifest = Some(m);
            continue;
        }
        let target = staging.join(&name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        let mut out = File::create(&target).map_err(write_err(&target))?;
        let mut reader = Hashing {
            inner: &mut entry,
            hash: Sha256::new(),
            size: 0,
        };
        std::io::copy(&mut reader, &mut out).map_err(|e| damaged(format!("{name}: {e}")))?;
        out.flush().map_err(write_err(&target))?;
        let (size, sha) = (reader.size, hex::encode(reader.hash.finalize()));
        seen.insert(name, (size, sha));
        let mib = entry.raw_header_position() >> 20;
        while read_mib < mib {
            read_mib += 1;
            progress.advance();
        }
    }
    let manifest = manifest.ok_or_else(|| not_a_backup("it has no manifest.json".into()))?;
    for f in &manifest.files {
        match seen.remove(&f.path) {
            None => return Err(damaged(format!("{} is missing", f.path))),
            Some((size, _)) if size != f.size => {
                return Err(damaged(format!(
                    "{} has {size} bytes, the manifest says {}",
                    f.path, f.size
                )));
            }
            Some((_, sha)) if sha != f.sha256 => {
                return Err(damaged(format!(
                    "{}: checksum {sha} differs from the manifest's {}",
                    f.path, f.sha256
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = seen.keys().next() {
        return Err(damaged(format!("{extra} is not in the manifest")));
    }
    let known = known_migration();
    if manifest.migration > known {
        return Err(BackupError::NewerBackup {
            backup: manifest.migration,
            known,
        });
    }
    let (migration, counts) = describe(&staging.join(DATABASE_ENTRY)).await?;
    if migration != manifest.migration || counts != manifest.counts {
        return Err(damaged(format!(
            "the database holds migration {migration} and {counts:?}, the manifest says migration {} and {:?}",
            manifest.migration, manifest.counts
        )));
    }
    let _ = inst;
    progress.finish();
    Ok(manifest)
}

/// Remove what a restore replaces (with --force): the database and its WAL, the blobs, the key.
fn remove_replaced(inst: &Installation) -> Result<(), BackupError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = inst.database.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(write_err(&p)(e)),
        }
    }
    for entry in DATA_ENTRIES {
        let p = inst.data_dir.join(entry);
        let removed = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(write_err(&p)(e)),
        }
    }
    Ok(())
}

fn move_into_place(inst: &Installation, staging: &Path) -> Result<(), BackupError> {
    let db = staging.join(DATABASE_ENTRY);
    if let Some(parent) = inst.database.parent() {
        std::fs::create_dir_all(parent).map_err(write_err(parent))?;
    }
    // The database may live outside the data directory, on another file system.
    if std::fs::rename(&db, &inst.database).is_err() {
        std::fs::copy(&db, &inst.database).map_err(write_err(&inst.database))?;
    }
    let data = staging.join(DATA_PREFIX);
    for entry in DATA_ENTRIES {
        let from = data.join(entry);
        if from.exists() {
            let to = inst.data_dir.join(entry);
            std::fs::rename(&from, &to).map_err(write_err(&to))?;
        }
    }
    Ok(())
}

/// Make the restored files durable: one syncfs(2) for the file system of the data directory.
fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    let f = File::open(dir).map_err(read_err(dir))?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs only reads the descriptor, which `f` keeps open for the call.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(write_err(dir)(std::io::Error::last_os_error()));
        }
    }
    #[cfg(not(target_os = "linux"))]
    f.sync_all().map_err(write_err(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_expected_names_are_unpacked() {
        assert_eq!(
            safe_name(Path::new("database.sqlite")).as_deref(),
            Some("database.sqlite")
        );
        assert_eq!(
            safe_name(Path::new("data/raw/ab/abcdef")).as_deref(),
            Some("data/raw/ab/abcdef")
        );
        assert_eq!(
            safe_name(Path::new("data/secret.key")).as_deref(),
            Some("data/secret.key")
        );
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "data/../x",
            "data/outbox/x.eml",
            "data",
            "other.txt",
        ] {
            assert_eq!(safe_name(Path::new(bad)), None, "{bad}");
        }
    }

    #[test]
    fn a_postgres_url_is_named_without_its_password() {
        let e = Installation::new(Path::new("/d"), "postgres://u:secret@h/db")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("postgres:..."), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }
}

//! Maildir source, the format Dovecot and Postfix deliver to. A mail is known by its unique
//! name (the file name up to `:2,`), never by a flag: a person reading the folder in a mail
//! client must not hide a complaint. After commit, a mail in `new/` moves to `cur/` with `S`.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MailSource, MailboxError, RawMail, Waiting};

/// `cur/` is listed again at least this often even when nothing says it changed: a safety net
/// for file systems whose directory times cannot be trusted (some network file systems, a
/// backup tool that restores them). With the names known in memory it is one directory
/// listing, without a stat or a store lookup per known mail.
const RESCAN_EVERY: Duration = Duration::from_secs(60 * 60);

/// A directory time this close to now may not show a change made in the same clock tick
/// (Linux stamps with a coarse clock; FAT has 2 s): `cur/` is listed once more after it
/// settles.
const SETTLE: Duration = Duration::from_secs(2);

/// A poll costs O(mail in `new/`), not O(all mail): `new/` is listed on every poll, `cur/`
/// only at the first poll, when its directory time changed since it was last listed (a mail
/// client moved a mail there, changed flags, or we moved mail there), and every
/// [`RESCAN_EVERY`]. A listing of `cur/` skips, without a stat, every name already known
/// committed (`done`), so the caller looks up in the store only names it has not seen.
pub struct MaildirSource {
    id: String,
    root: PathBuf,
    poll: Duration,
    /// Unique names confirmed committed (passed to `mark_processed`). Pruned to what is still
    /// in `cur/` at every listing of it, so it is bounded by the size of the folder.
    done: HashSet<Box<str>>,
    /// Mails in `cur/` that are not (yet) confirmed committed: offered by every `pending`
    /// until marked or gone. After the first listing this is all of `cur/` until the caller
    /// has checked it against the store.
    cur_open: HashMap<String, Entry>,
    /// Mails the last `pending` found in `new/`.
    new_listed: HashMap<String, Entry>,
    /// The time of `cur/` taken just before its last listing: any change after it moves the
    /// time on (or falls in the settle window, see `cur_dirty`).
    cur_time: Option<SystemTime>,
    /// List `cur/` at the next poll whatever its time says.
    cur_dirty: bool,
    last_cur_listing: Option<Instant>,
    /// Directory listings so far (for the tests and the benchmark: a poll must not list
    /// `cur/` once per mail).
    listings: u64,
    settle: Duration,
}

/// One mail file as listed.
#[derive(Debug, Clone)]
struct Entry {
    /// The file name as it is on disk (not necessarily UTF-8; the key is its lossy form).
    file: OsString,
    in_new: bool,
    size: u64,
    received_at: DateTime<Utc>,
}

impl MaildirSource {
    /// Opens (and, when missing, creates) the Maildir at `root`.
    pub fn open(root: &Path, poll: Duration) -> Result<Self, MailboxError> {
        for sub in ["new", "cur", "tmp"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(|source| io(&dir, source))?;
        }
        let canonical = root.canonicalize().map_err(|source| io(root, source))?;
        Ok(Self {
            id: format!("maildir:{}", canonical.display()),
            root: canonical,
            poll,
            done: HashSet::new(),
            cur_open: HashMap::new(),
            new_listed: HashMap::new(),
            cur_time: None,
            cur_dirty: true,
            last_cur_listing: None,
            listings: 0,
            settle: SETTLE,
        })
    }

    /// How many directories this source has listed so far.
    pub fn listings(&self) -> u64 {
        self.listings
    }

    fn dir_time(&self, dir: &Path) -> Result<SystemTime, MailboxError> {
        std::fs::metadata(dir)
            .and_then(|m| m.modified())
            .map_err(|source| io(dir, source))
    }

    fn cur_needs_listing(&self) -> Result<bool, MailboxError> {
        let (Some(seen), Some(listed)) = (self.cur_time, self.last_cur_listing) else {
            return Ok(true);
        };
        if self.cur_dirty || listed.elapsed() >= RESCAN_EVERY {
            return Ok(true);
        }
        Ok(self.dir_time(&self.root.join("cur"))? != seen)
    }

    /// Lists `cur/`: names known committed are kept in `done` untouched, every other mail is
    /// (again) open. Off the async thread: the first listing of a large folder stats every
    /// file (1.4 s for 100,000), which must not hold up IDLE, the outbox or a SIGTERM.
    async fn list_cur(&mut self) -> Result<(), MailboxError> {
        let cur = self.root.join("cur");
        // On an error the known names are lost: the next listing offers all of cur/ to the
        // caller again, which costs a store lookup per mail once, and loses nothing.
        let known = std::mem::take(&mut self.done);
        let started = Instant::now();
        let dir = cur.clone();
        let listing = tokio::task::spawn_blocking(move || list_cur_dir(&dir, known))
            .await
            .map_err(|e| io(&cur, std::io::Error::other(e.to_string())))??;
        self.listings += 1;
        tracing::debug!(
            known = listing.done.len(),
            open = listing.open.len(),
            ms = started.elapsed().as_millis() as u64,
            "listed cur/"
        );
        self.done = listing.done;
        self.cur_open = listing.open;
        self.cur_time = Some(listing.time);
        self.cur_dirty = SystemTime::now()
            .duration_since(listing.time)
            .map_or(true, |age| age < self.settle);
        self.last_cur_listing = Some(Instant::now());
        Ok(())
    }

    fn list_new(&mut self) -> Result<(), MailboxError> {
        let new = self.root.join("new");
        let entries = std::fs::read_dir(&new).map_err(|source| io(&new, source))?;
        self.listings += 1;
        self.new_listed.clear();
        for entry in entries {
            let entry = entry.map_err(|source| io(&new, source))?;
            let file = entry.file_name();
            let name = file.to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let Ok(modified) = meta.modified() else {
                continue;
            };
            self.new_listed.insert(
                unique_name(&name).to_string(),
                Entry {
                    file,
                    in_new: true,
                    size: meta.len(),
                    received_at: DateTime::<Utc>::from(modified),
                },
            );
        }
        Ok(())
    }

    /// Where the mail with this unique name was listed; a key not listed (one committed by a
    /// run that crashed before moving it) is looked for in `new/` only: in `cur/` it needs
    /// nothing more.
    fn entry(&self, key: &str) -> Option<Entry> {
        if let Some(e) = self.new_listed.get(key).or_else(|| self.cur_open.get(key)) {
            return Some(e.clone());
        }
        let path = self.root.join("new").join(key);
        let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
        Some(Entry {
            file: key.into(),
            in_new: true,
            size: meta.len(),
            received_at: DateTime::<Utc>::from(meta.modified().ok()?),
        })
    }

    fn path(&self, e: &Entry) -> PathBuf {
        self.root
            .join(if e.in_new { "new" } else { "cur" })
            .join(&e.file)
    }
}

/// What a listing of `cur/` found.
struct CurListing {
    /// The known names still there.
    done: HashSet<Box<str>>,
    /// Every other mail.
    open: HashMap<String, Entry>,
    /// The directory's time, taken before the listing: a change during the listing then shows
    /// as a newer time at the next poll.
    time: SystemTime,
}

fn list_cur_dir(cur: &Path, mut known: HashSet<Box<str>>) -> Result<CurListing, MailboxError> {
    let time = std::fs::metadata(cur)
        .and_then(|m| m.modified())
        .map_err(|source| io(cur, source))?;
    let mut done = HashSet::with_capacity(known.len());
    let mut open = HashMap::new();
    let entries = std::fs::read_dir(cur).map_err(|source| io(cur, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| io(cur, source))?;
        let file = entry.file_name();
        let name = file.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let key = unique_name(&name);
        if let Some(k) = known.take(key) {
            done.insert(k);
            continue;
        }
        if done.contains(key) {
            continue;
        }
        // A file can vanish between listing and stat (moved by a mail client).
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let Ok(modified) = meta.modified() else {
            continue;
        };
        open.insert(
            key.to_string(),
            Entry {
                file: file.clone(),
                in_new: false,
                size: meta.len(),
                received_at: DateTime::<Utc>::from(modified),
            },
        );
    }
    Ok(CurListing { done, open, time })
}

fn io(path: &Path, source: std::io::Error) -> MailboxError {
    MailboxError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The Maildir unique name: everything before the `:2,` info part (or `!2,` as some Windows
/// deliverers write it).
pub fn unique_name(file_name: &str) -> &str {
    file_name
        .split_once(":2,")
        .or_else(|| file_name.split_once("!2,"))
        .map(|(u, _)| u)
        .unwrap_or(file_name)
}

#[async_trait]
impl MailSource for MaildirSource {
    fn id(&self) -> &str {
        &self.id
    }

    async fn pending(&mut self, _last_key: Option<&str>) -> Result<Vec<Waiting>, MailboxError> {
        // new/ always, cur/ only when it may have changed; mails in cur/ that are known
        // committed are not offered (the caller drops the other known ones and marks them).
        if self.cur_needs_listing()? {
            self.list_cur().await?;
        }
        self.list_new()?;
        let mut found: Vec<(DateTime<Utc>, &str, u64)> = self
            .new_listed
            .iter()
            .chain(
                self.cur_open
                    .iter()
                    .filter(|(k, _)| !self.new_listed.contains_key(*k)),
            )
            .map(|(k, e)| (e.received_at, k.as_str(), e.size))
            .collect();
        found.sort_unstable();
        Ok(found
            .into_iter()
            .map(|(_, key, size)| Waiting {
                key: key.to_string(),
                size,
            })
            .collect())
    }

    async fn fetch(&mut self, keys: &[String]) -> Result<Vec<RawMail>, MailboxError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(e) = self.entry(key) else {
                continue;
            };
            let path = self.path(&e);
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    // Moved since it was listed: a mail client took it from new/ to cur/, or
                    // changed its flags (its name) in cur/. The next poll lists cur/ and
                    // offers it under its new name.
                    self.cur_open.remove(key.as_str());
                    self.cur_dirty = true;
                    continue;
                }
                Err(source) => return Err(io(&path, source)),
            };
            out.push(RawMail {
                key: key.clone(),
                bytes,
                received_at: e.received_at,
            });
        }
        Ok(out)
    }

    async fn mark_processed(&mut self, keys: &[String]) -> Result<(), MailboxError> {
        for key in keys {
            if let Some(e) = self.entry(key)
                && e.in_new
            {
                let path = self.path(&e);
                let target = self.root.join("cur").join(format!("{key}:2,S"));
                match std::fs::rename(&path, &target) {
                    Ok(()) => {}
                    // Someone else moved it meanwhile: it is still recorded, nothing is lost.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(io(&path, source)),
                }
            }
            self.new_listed.remove(key.as_str());
            self.cur_open.remove(key.as_str());
            self.done.insert(key.as_str().into());
        }
        // After the first listing of a large cur/ every mail in it was open: give that back.
        if self.cur_open.capacity() > 4 * self.cur_open.len() + 1024 {
            self.cur_open.shrink_to_fit();
        }
        Ok(())
    }

    async fn wait_for_mail(&mut self, max: Duration) -> Result<(), MailboxError> {
        tokio::time::sleep(self.poll.min(max)).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, sub: &str, name: &str, age_secs: u64) {
        let path = root.join(sub).join(name);
        std::fs::write(&path, format!("Subject: {name}\r\n\r\nbody\r\n")).expect("write");
        let t = SystemTime::now() - Duration::from_secs(age_secs);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(t))
            .expect("mtime");
    }

    /// Sets the time of `cur/` well in the past, as if nothing had touched it for a minute.
    fn settle_cur(root: &Path) {
        let t = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::open(root.join("cur"))
            .and_then(|d| d.set_modified(t))
            .expect("dir mtime");
    }

    fn keys(w: &[Waiting]) -> Vec<String> {
        w.iter().map(|w| w.key.clone()).collect()
    }

    #[tokio::test]
    async fn fetch_and_mark_use_the_listing_and_quiet_polls_list_only_new() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut src = MaildirSource::open(dir.path(), Duration::from_secs(1)).expect("open");
        for i in 0..300 {
            put(dir.path(), "cur", &format!("old{i:03}.host:2,S"), 3600);
        }
        put(dir.path(), "new", "new1.host", 10);
        put(dir.path(), "new", "new2.host", 5);

        // First poll: new/ and cur/ listed once each; all of cur/ is offered for the caller
        // to check against the store.
        let waiting = src.pending(None).await.expect("pending");
        assert_eq!(waiting.len(), 302);
        assert_eq!(src.listings(), 2);
        let all = keys(&waiting);
        let fresh = vec!["new1.host".to_string(), "new2.host".to_string()];
        let old: Vec<String> = all.iter().filter(|k| !fresh.contains(k)).cloned().collect();
        // The caller found the old ones in the store and marks them; it fetches and marks the
        // new ones. No listing per mail.
        src.mark_processed(&old).await.expect("mark old");
        let mails = src.fetch(&fresh).await.expect("fetch");
        assert_eq!(mails.len(), 2);
        src.mark_processed(&fresh).await.expect("mark new");
        assert_eq!(src.listings(), 2, "fetch and mark list no directory");
        let mut cur = std::fs::read_dir(dir.path().join("cur"))
            .expect("cur")
            .count();
        assert_eq!(cur, 302);

        // Our own moves changed cur/: it is listed again, and offers nothing known.
        src.settle = Duration::ZERO;
        assert!(src.pending(None).await.expect("pending").is_empty());
        assert_eq!(src.listings(), 4);
        // Quiet: only new/ is listed, however many mails cur/ holds.
        settle_cur(dir.path());
        assert!(src.pending(None).await.expect("pending").is_empty());
        assert_eq!(
            src.listings(),
            6,
            "cur/ changed once more (its time was set)"
        );
        for _ in 0..5 {
            assert!(src.pending(None).await.expect("pending").is_empty());
        }
        assert_eq!(src.listings(), 11, "one listing (new/) per quiet poll");

        // A mail client moves a mail we never saw from new/ to cur/: cur/'s time changes and
        // the next poll offers it.
        put(dir.path(), "cur", "client.host:2,S", 60);
        let waiting = src.pending(None).await.expect("pending");
        assert_eq!(keys(&waiting), vec!["client.host".to_string()]);
        cur += 1;
        assert_eq!(
            std::fs::read_dir(dir.path().join("cur"))
                .expect("cur")
                .count(),
            cur
        );
    }

    #[tokio::test]
    async fn a_mail_moved_by_a_client_after_listing_is_offered_again_from_cur() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut src = MaildirSource::open(dir.path(), Duration::from_secs(1)).expect("open");
        src.settle = Duration::ZERO;
        put(dir.path(), "new", "moved.host", 30);
        let waiting = src.pending(None).await.expect("pending");
        assert_eq!(keys(&waiting), vec!["moved.host".to_string()]);
        // Between our listing and our fetch a mail client takes it to cur/ (Dovecot does
        // when an IMAP client selects the folder); the directory time is then set back, so
        // only the vanished file can tell.
        std::fs::rename(
            dir.path().join("new/moved.host"),
            dir.path().join("cur/moved.host:2,S"),
        )
        .expect("rename");
        settle_cur(dir.path());
        let before = src.cur_time;
        assert!(src.fetch(&keys(&waiting)).await.expect("fetch").is_empty());
        let again = src.pending(None).await.expect("pending");
        assert_ne!(src.cur_time, before, "cur/ listed again");
        assert_eq!(keys(&again), vec!["moved.host".to_string()]);
        let mails = src.fetch(&keys(&again)).await.expect("fetch");
        assert_eq!(mails.len(), 1);
        src.mark_processed(&keys(&again)).await.expect("mark");
        settle_cur(dir.path());
        assert!(src.pending(None).await.expect("pending").is_empty());
    }

    #[tokio::test]
    async fn a_committed_key_left_in_new_by_a_crash_is_moved_without_a_listing() {
        let dir = tempfile::tempdir().expect("tempdir");
        MaildirSource::open(dir.path(), Duration::from_secs(1)).expect("create");
        put(dir.path(), "new", "crashed.host", 30);
        // A new process: nothing listed yet, as at the start of a drain.
        let mut src = MaildirSource::open(dir.path(), Duration::from_secs(1)).expect("open");
        src.mark_processed(&["crashed.host".to_string(), "gone.host".to_string()])
            .await
            .expect("mark");
        assert_eq!(src.listings(), 0);
        assert!(!dir.path().join("new/crashed.host").exists());
        assert!(dir.path().join("cur/crashed.host:2,S").exists());
        assert!(src.pending(None).await.expect("pending").is_empty());
    }

    #[test]
    fn unique_names() {
        assert_eq!(
            unique_name("1700000000.M1P2.host:2,S"),
            "1700000000.M1P2.host"
        );
        assert_eq!(
            unique_name("1700000000.M1P2.host!2,RS"),
            "1700000000.M1P2.host"
        );
        assert_eq!(unique_name("1700000000.M1P2.host"), "1700000000.M1P2.host");
    }
}

//! Maildir source, the format Dovecot and Postfix deliver to. A mail is known by its unique
//! name (the file name up to `:2,`), never by a flag: a person reading the folder in a mail
//! client must not hide a complaint. After commit, a mail in `new/` moves to `cur/` with `S`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MailSource, MailboxError, RawMail, Waiting};

pub struct MaildirSource {
    id: String,
    root: PathBuf,
    poll: Duration,
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
        })
    }

    /// Where the file with this unique name is now (it may have moved from `new/` to `cur/`,
    /// or gained flags, since it was listed).
    fn locate(&self, key: &str) -> Result<Option<(PathBuf, bool)>, MailboxError> {
        let in_new = self.root.join("new").join(key);
        if in_new.is_file() {
            return Ok(Some((in_new, true)));
        }
        for (name, path) in list_dir(&self.root.join("cur"))? {
            if unique_name(&name) == key {
                return Ok(Some((path, false)));
            }
        }
        Ok(None)
    }
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

fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>, MailboxError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|source| io(dir, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| io(dir, source))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        out.push((name, entry.path()));
    }
    Ok(out)
}

fn delivery_time(path: &Path) -> Result<DateTime<Utc>, MailboxError> {
    Ok(delivery_time_and_size(path)?.0)
}

fn delivery_time_and_size(path: &Path) -> Result<(DateTime<Utc>, u64), MailboxError> {
    let meta = std::fs::metadata(path).map_err(|source| io(path, source))?;
    let modified = meta.modified().map_err(|source| io(path, source))?;
    Ok((DateTime::<Utc>::from(modified), meta.len()))
}

#[async_trait]
impl MailSource for MaildirSource {
    fn id(&self) -> &str {
        &self.id
    }

    async fn pending(&mut self, _last_key: Option<&str>) -> Result<Vec<Waiting>, MailboxError> {
        // Every mail in new/ and cur/; the caller drops the ones the store already knows.
        let mut found: Vec<(DateTime<Utc>, String, u64)> = Vec::new();
        for sub in ["new", "cur"] {
            for (name, path) in list_dir(&self.root.join(sub))? {
                if !path.is_file() {
                    continue;
                }
                // A file can vanish between listing and stat (moved by a mail client).
                let Ok((t, size)) = delivery_time_and_size(&path) else {
                    continue;
                };
                found.push((t, unique_name(&name).to_string(), size));
            }
        }
        found.sort();
        found.dedup_by(|a, b| a.1 == b.1);
        Ok(found
            .into_iter()
            .map(|(_, key, size)| Waiting { key, size })
            .collect())
    }

    async fn fetch(&mut self, keys: &[String]) -> Result<Vec<RawMail>, MailboxError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Some((path, _)) = self.locate(key)? else {
                continue;
            };
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(io(&path, source)),
            };
            out.push(RawMail {
                key: key.clone(),
                bytes,
                received_at: delivery_time(&path)?,
            });
        }
        Ok(out)
    }

    async fn mark_processed(&mut self, keys: &[String]) -> Result<(), MailboxError> {
        for key in keys {
            if let Some((path, true)) = self.locate(key)? {
                let target = self.root.join("cur").join(format!("{key}:2,S"));
                match std::fs::rename(&path, &target) {
                    Ok(()) => {}
                    // Someone else moved it meanwhile: it is still recorded, nothing is lost.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(io(&path, source)),
                }
            }
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

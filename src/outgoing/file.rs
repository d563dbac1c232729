//! The embedded default transport: an outbox directory with one `.eml` per mail, named by its
//! Message-ID and written atomically (temporary file, then rename). A mail whose file already
//! exists was delivered before a crash: that is success, so a resend never makes a second copy.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{Envelope, SendError, Transport};

pub struct FileTransport {
    dir: PathBuf,
}

impl FileTransport {
    pub fn open(dir: &Path) -> Result<Self, std::io::Error> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The file name for a Message-ID: safe on every file system, and the same every time.
    pub fn file_name(message_id: &str) -> String {
        let safe: String = message_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "@.-_+=".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{safe}.eml")
    }
}

#[async_trait]
impl Transport for FileTransport {
    async fn send(
        &self,
        message_id: &str,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), SendError> {
        let target = self.dir.join(Self::file_name(message_id));
        if target.exists() {
            return Ok(());
        }
        let tmp = self.dir.join(".tmp").join(format!(
            "{}.{}",
            Self::file_name(message_id),
            std::process::id()
        ));
        let envelope_header = format!(
            "X-Klachtd-Envelope-From: {}\r\nX-Klachtd-Envelope-To: {}\r\n",
            envelope.mail_from,
            envelope.rcpt_to.join(", ")
        );
        let write = || -> std::io::Result<()> {
            // Made here rather than at start: a directory removed while the daemon runs comes
            // back, and a broken one is a retryable send failure, not a crash.
            std::fs::create_dir_all(self.dir.join(".tmp"))?;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(envelope_header.as_bytes())?;
            f.write_all(raw)?;
            f.sync_all()?;
            // rename is atomic within one file system: readers see no file or the whole file.
            std::fs::rename(&tmp, &target)?;
            Ok(())
        };
        write().map_err(|e| SendError::Transient(format!("cannot write {}: {e}", target.display())))
    }

    fn guarantee(&self) -> &'static str {
        "exactly once"
    }
}

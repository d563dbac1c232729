//! The mail stack: a real Dovecot (IMAP, IMAPS, LMTP) and Postfix (SMTP, SMTPS) on 127.0.0.1,
//! started by `scripts/mailstack.sh` once for this test binary, on first use, and shared by
//! every test in it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The tests that stop a server or load the machine take the write half, all the others the
/// read half. One lock for both kinds of test, since they share the stack and the process: a
/// tokio lock, so the async tests hold it across `.await` (`.read().await`,
/// `.write().await`) and the blocking tests, which run outside any runtime, through
/// [`shared`] and [`exclusive`].
pub static DISRUPT: RwLock<()> = RwLock::const_new(());

/// Blocking tests that only add mail to their own mailboxes.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    DISRUPT.blocking_read()
}

/// Blocking tests that stop a server or load the machine: alone.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    DISRUPT.blocking_write()
}

pub struct Stack {
    pub dir: PathBuf,
    /// The variables of `DIR/stack.env` (ports, CA_FILE, DOVECOT_CONF, REJECT_RCPT, ...).
    pub env: HashMap<String, String>,
}

impl Stack {
    pub fn port(&self, key: &str) -> u16 {
        self.env
            .get(key)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{key} missing in stack.env"))
    }

    pub fn ca(&self) -> PathBuf {
        PathBuf::from(&self.env["CA_FILE"])
    }

    /// `mailstack.sh CMD DIR`: dovecot-stop, dovecot-start, dovecot-restart, postfix-stop, ...
    pub fn script(&self, cmd: &str) {
        let status = Command::new("bash")
            .arg(script_path())
            .arg(cmd)
            .arg(&self.dir)
            .status()
            .expect("run mailstack.sh");
        assert!(status.success(), "mailstack.sh {cmd} failed");
    }

    /// A guard for a test that stops a server: when it is dropped, even by a failing test,
    /// Dovecot and Postfix are started again if they are down, so one failure does not take
    /// every later test in this binary with it.
    pub fn servers_back(&self) -> ServersBack<'_> {
        ServersBack(self)
    }

    /// `doveadm ARGS` against the stack's Dovecot; returns its stdout.
    pub fn doveadm(&self, args: &[&str]) -> String {
        let out = Command::new("doveadm")
            .arg("-c")
            .arg(&self.env["DOVECOT_CONF"])
            .args(args)
            .output()
            .expect("run doveadm");
        assert!(
            out.status.success(),
            "doveadm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

pub struct ServersBack<'a>(&'a Stack);

impl Drop for ServersBack<'_> {
    fn drop(&mut self) {
        // No panic here: this may run while a failing test unwinds.
        for cmd in ["dovecot-start", "postfix-start"] {
            let ok = Command::new("bash")
                .arg(script_path())
                .arg(cmd)
                .arg(&self.0.dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("mailstack.sh {cmd} failed: later tests will fail too");
            }
        }
    }
}

pub fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mailstack.sh")
}

fn start_stack() -> Result<Stack, String> {
    // KLACHTD_STACK_DIR: use (and keep) a stack in that directory, to read its logs afterwards.
    let keep = std::env::var_os("KLACHTD_STACK_DIR").map(PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("klachtd-mailstack-{}", std::process::id()))
    });
    start_in(dir, keep.is_none(), &[])
}

/// `mailstack.sh start DIR` with extra environment; stopped when this process exits unless
/// `keep`.
fn start_in(dir: PathBuf, reap: bool, env: &[(&str, &str)]) -> Result<Stack, String> {
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(script_path())
        .arg("start")
        .arg(&dir)
        .envs(env.iter().copied())
        .output()
        .map_err(|e| format!("cannot run mailstack.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mailstack.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!("mail stack started in {:?}", started.elapsed());
    if reap {
        spawn_reaper(&dir);
    }
    let text = std::fs::read_to_string(dir.join("stack.env"))
        .map_err(|e| format!("cannot read stack.env: {e}"))?;
    let env = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect();
    Ok(Stack { dir, env })
}

/// The servers outlive this process unless stopped, and statics are never dropped (so no Drop
/// can do it): a watcher stops them when this process exits.
fn spawn_reaper(dir: &Path) {
    let _ = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; bash {script} stop {dir} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            script = script_path().display(),
            dir = dir.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// A second stack whose Dovecot does not offer MOVE (RFC 6851), as some servers do not: for
/// the COPY + UID EXPUNGE fallback. Started on first use, like [`stack`].
pub fn stack_without_move() -> Option<&'static Stack> {
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    let started = STACK.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("klachtd-mailstack-nomove-{}", std::process::id()));
        start_in(
            dir,
            true,
            &[(
                "IMAP_CAPABILITY",
                "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE UIDPLUS",
            )],
        )
    });
    required(started)
}

/// The stack, started on first use; `None` (after a loud notice) when it cannot start, so the
/// test skips, unless `KLACHTD_REQUIRE_STACK` is set: then it panics.
pub fn stack() -> Option<&'static Stack> {
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    required(STACK.get_or_init(start_stack))
}

fn required(started: &'static Result<Stack, String>) -> Option<&'static Stack> {
    match started {
        Ok(s) => Some(s),
        Err(e) if std::env::var_os("KLACHTD_REQUIRE_STACK").is_some() => {
            panic!("KLACHTD_REQUIRE_STACK is set and the mail stack cannot start: {e}")
        }
        Err(e) => {
            eprintln!(
                "\n!!!!! SKIPPED: real mail servers unavailable ({e}); set KLACHTD_REQUIRE_STACK=1 to fail instead !!!!!\n"
            );
            None
        }
    }
}

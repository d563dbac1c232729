//! Deployment (issue #12): the systemd notify protocol spoken by the real binary, the unit
//! file checked by systemd-analyze, the container file linted, the binary run as a non-root
//! user on a read-only root, the refusal of a database from a newer klachtd, and backup and
//! restore by a round trip that `list` and `show` cannot tell apart.
//!
//! Tools (systemd-analyze, hadolint, bwrap) are installed by scripts/test.sh; without them
//! those tests skip, unless `KLACHTD_REQUIRE_STACK` is set (as CI does): then they fail.

mod common;

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

// ---- a service manager's notify socket, in a test ------------------------------------------

/// A unix datagram socket standing in for systemd's: every line of every datagram, with when
/// it came.
struct NotifySocket {
    path: PathBuf,
    rx: mpsc::Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
}

impl NotifySocket {
    fn bind(path: &Path) -> NotifySocket {
        let sock = UnixDatagram::bind(path).expect("bind notify socket");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let at = Instant::now();
                for line in String::from_utf8_lossy(&buf[..n]).lines() {
                    if tx.send((at, line.to_string())).is_err() {
                        return;
                    }
                }
            }
        });
        NotifySocket {
            path: path.to_path_buf(),
            rx,
            seen: Vec::new(),
        }
    }

    /// The first line (from now on) that `pred` accepts, within `timeout`.
    fn wait(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            let (at, line) = self.rx.recv_timeout(left).ok()?;
            self.seen.push((at, line.clone()));
            if pred(&line) {
                return Some(line);
            }
        }
    }

    /// Every line that comes within `d`.
    fn collect(&mut self, d: Duration) -> Vec<(Instant, String)> {
        let end = Instant::now() + d;
        let mut out = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(item) => {
                    self.seen.push(item.clone());
                    out.push(item);
                }
                Err(_) => break,
            }
        }
        out
    }

    fn all_seen(&self) -> String {
        self.seen
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `klachtd run` under the fake service manager, its log in `daemon.log`.
fn spawn_notified(app: &TestApp, sock: &NotifySocket, extra: &[(&str, &str)]) -> Child {
    let log = std::fs::File::create(app.root.join("daemon.log")).expect("daemon log");
    let mut c = app.command(&["run"]);
    c.env("NOTIFY_SOCKET", &sock.path)
        .env("WATCHDOG_USEC", "2000000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in extra {
        c.env(k, v);
    }
    c.spawn().expect("start klachtd run")
}

fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own child's pid; no memory is touched.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn daemon_log(app: &TestApp) -> String {
    std::fs::read_to_string(app.root.join("daemon.log")).unwrap_or_default()
}

#[test]
fn under_a_service_manager_klachtd_says_ready_status_watchdog_and_stopping() {
    let app = TestApp::spawn();
    app.deliver(&Mail::new("jan@example.nl", "Klacht over de les").build());
    let mut sock = NotifySocket::bind(&app.root.join("notify.sock"));
    let mut child = spawn_notified(&app, &sock, &[]);

    let ready = sock.wait(Duration::from_secs(60), |l| l == "READY=1");
    assert!(
        ready.is_some(),
        "no READY=1; got:\n{}\nlog:\n{}",
        sock.all_seen(),
        daemon_log(&app)
    );
    // READY came after the mailbox was read: the mail waiting there is registered.
    assert_eq!(app.list().len(), 1, "READY=1 before the mailbox was read");

    // WATCHDOG_USEC=2 s: a ping each second, and the status line.
    let lines = sock.collect(Duration::from_millis(3500));
    let pings: Vec<Instant> = lines
        .iter()
        .filter(|(_, l)| l == "WATCHDOG=1")
        .map(|(at, _)| *at)
        .collect();
    assert!(
        pings.len() >= 3,
        "expected a WATCHDOG=1 each second, got {}:\n{}",
        pings.len(),
        sock.all_seen()
    );
    for pair in pings.windows(2) {
        assert!(
            pair[1] - pair[0] < Duration::from_millis(1900),
            "pings further apart than the timeout allows"
        );
    }
    let status = sock.seen.iter().map(|(_, l)| l.as_str()).find(|l| {
        l.starts_with("STATUS=idle, ") && l.ends_with(" queued")
            || l.starts_with("STATUS=working, ")
    });
    assert!(status.is_some(), "no STATUS= line:\n{}", sock.all_seen());
    assert!(
        sock.seen.iter().any(|(_, l)| l == "STATUS=idle, 0 queued"),
        "the acknowledgement was sent, so: idle, 0 queued\n{}",
        sock.all_seen()
    );

    signal(&child, libc::SIGTERM);
    let stopping = sock.wait(Duration::from_secs(10), |l| l == "STOPPING=1");
    assert!(stopping.is_some(), "no STOPPING=1:\n{}", sock.all_seen());
    let status = child.wait().expect("wait for klachtd");
    assert!(status.success(), "klachtd exited {status:?}");
}

/// An unreachable mailbox (IMAP on a closed port): no READY=1, the status line says since when
/// (the test clock's 12:00, organisation time), and the watchdog is still fed: the watcher
/// waits out its backoff, which is progress, not a hang.
#[test]
fn while_the_mailbox_is_unreachable_there_is_no_ready_and_the_status_says_since_when() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let app = TestApp::spawn_with_config(|c| {
        let (start, end) = (
            c.find("[mailbox]").expect("mailbox section"),
            c.find("[outgoing]").expect("outgoing section"),
        );
        c.replace_range(
            start..end,
            &format!(
                "[mailbox]\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
                 username = \"service@example.org\"\npassword = \"x\"\nidle = true\npoll_interval = 600\n\n"
            ),
        );
    });
    let mut sock = NotifySocket::bind(&app.root.join("notify.sock"));
    let mut child = spawn_notified(&app, &sock, &[]);
    let down = sock.wait(Duration::from_secs(30), |l| {
        l.starts_with("STATUS=mailbox unreachable since 12:00")
    });
    assert!(
        down.is_some(),
        "no unreachable status:\n{}\n{}",
        sock.all_seen(),
        daemon_log(&app)
    );
    let later = sock.collect(Duration::from_secs(3));
    assert!(
        later.iter().any(|(_, l)| l == "WATCHDOG=1"),
        "a waiting watcher is not a hung one:\n{}",
        sock.all_seen()
    );
    assert!(
        !sock.seen.iter().any(|(_, l)| l == "READY=1"),
        "READY=1 without a mailbox:\n{}",
        sock.all_seen()
    );
    signal(&child, libc::SIGTERM);
    assert!(
        sock.wait(Duration::from_secs(10), |l| l == "STOPPING=1")
            .is_some()
    );
    assert!(child.wait().expect("wait").success());
}

/// A task that stops making progress (here the mailbox watcher, by a debug-build hook) stops
/// the pings, although the runtime and the pinger still run: systemd would restart klachtd.
#[cfg(debug_assertions)]
#[test]
fn a_hung_task_stops_the_watchdog_pings() {
    let app = TestApp::spawn();
    let mut sock = NotifySocket::bind(&app.root.join("notify.sock"));
    let mut child = spawn_notified(&app, &sock, &[("KLACHTD_TEST_TASK_HANG", "watcher")]);
    assert!(
        sock.wait(Duration::from_secs(60), |l| l == "READY=1")
            .is_some(),
        "no READY=1:\n{}\n{}",
        sock.all_seen(),
        daemon_log(&app)
    );
    assert!(
        sock.wait(Duration::from_secs(5), |l| l == "WATCHDOG=1")
            .is_some(),
        "no ping while healthy"
    );
    // The next round of the watcher (woken by this mail) hangs.
    app.deliver(&Mail::new("piet@example.nl", "Nog een klacht").build());
    let hung = sock.wait(Duration::from_secs(15), |l| {
        l.starts_with("STATUS=no progress in mailbox watcher")
    });
    assert!(hung.is_some(), "no hung status:\n{}", sock.all_seen());
    let after = sock.collect(Duration::from_secs(3));
    assert!(
        !after.iter().any(|(_, l)| l == "WATCHDOG=1"),
        "pings went on while the watcher hung:\n{}",
        sock.all_seen()
    );
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    assert!(
        daemon_log(&app).contains("watchdog pings stopped"),
        "the log does not say why:\n{}",
        daemon_log(&app)
    );
}

// ---- upgrades: a database from a newer klachtd ---------------------------------------------

fn known_migration() -> i64 {
    std::fs::read_dir(repo().join("migrations/sqlite"))
        .expect("migrations dir")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.split('_').next()?.parse::<i64>().ok()
        })
        .max()
        .expect("a migration")
}

fn sql(db: &Path, statement: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use sqlx::{ConnectOptions, Connection};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .connect()
            .await
            .expect("open database");
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .expect("statement");
        conn.close().await.expect("close");
    });
}

#[test]
fn a_database_from_a_newer_klachtd_is_refused_by_name() {
    let app = TestApp::spawn();
    app.run_once();
    let known = known_migration();
    let newer = known + 1;
    sql(
        &app.data_dir.join("klachtd.db"),
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
             VALUES ({newer}, 'from a newer klachtd', CURRENT_TIMESTAMP, 1, x'00', 0)"
        ),
    );
    let out = app.cmd(&["list"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "the database was made by a newer klachtd (migration {newer}); this binary knows up to {known}: upgrade klachtd"
    );
    assert!(stderr.contains(&expected), "{stderr}");
    // The database is left as it was: nothing was migrated or changed.
    let out = app.cmd(&["run", "--once"]);
    assert!(!out.status.success());
}

// ---- backup and restore ----------------------------------------------------------------------

/// Everything `list` and `show` say about an installation, and what `quarantine`, `unfiled`
/// and `outbox` list.
fn observed(app: &TestApp) -> BTreeMap<String, String> {
    let mut seen = BTreeMap::new();
    seen.insert("list".into(), app.cmd_ok(&["list", "--format", "json"]));
    for reference in app.references() {
        seen.insert(
            format!("show {reference}"),
            app.cmd_ok(&["show", &reference, "--format", "json"]),
        );
    }
    for what in ["quarantine", "unfiled", "outbox"] {
        seen.insert(what.into(), app.cmd_ok(&[what, "list", "--format", "json"]));
    }
    seen
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn backup_of_a_running_daemon_restores_to_what_list_and_show_cannot_tell_apart() {
    let t0 = Instant::now();
    let phase = |what: &str| eprintln!("{:>6.1} s  {what}", t0.elapsed().as_secs_f64());
    let a = TestApp::spawn();
    for i in 0..5 {
        a.deliver(&Mail::new(&format!("eerste{i}@example.nl"), &format!("Klacht {i}")).build());
    }
    a.deliver(&mail_with_attachment(
        "bijlage@example.nl",
        "Met bijlage",
        SMALL_PDF,
    ));
    let log = std::fs::File::create(a.root.join("daemon.log")).expect("log");
    let mut daemon = a
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("daemon");
    wait_until("the first mails", Duration::from_secs(60), || {
        a.list().len() == 6
    });

    phase("first mails in");
    // Mail keeps flowing while the first backup is made.
    let maildir = a.maildir.clone();
    let flow = std::thread::spawn(move || {
        for i in 0..30 {
            let bytes = Mail::new(&format!("stroom{i}@example.nl"), &format!("Stroom {i}")).build();
            let at = ts(DEFAULT_NOW) - chrono::Duration::minutes(30) + chrono::Duration::seconds(i);
            write_maildir_file(
                &maildir,
                &format!("flow{i}.M1P1.host"),
                "new",
                "",
                &bytes,
                at,
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    // Some of the flow is in, more is coming.
    wait_until("the flow to start", Duration::from_secs(30), || {
        a.list().len() > 6
    });
    let during = a.root.join("during.tar");
    let out = a.cmd(&["backup", "--output", during.to_str().expect("path")]);
    assert!(out.status.success(), "backup failed: {}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("klachtd: backup: "),
        "no progress lines on stderr: {}",
        stderr_of(&out)
    );
    flow.join().expect("flow");
    wait_until(
        "all mail registered and sent",
        Duration::from_secs(120),
        || a.list().len() == 36 && a.outbox().iter().all(|o| o["status"] == "sent"),
    );

    phase("flow registered");
    // A quiet moment, the daemon still running: this backup must restore to the same state.
    let quiet = a.root.join("quiet.tar");
    let out = a.cmd(&["backup", "--output", quiet.to_str().expect("path")]);
    assert!(out.status.success(), "backup failed: {}", stderr_of(&out));
    let again = a.cmd(&["backup", "--output", quiet.to_str().expect("path")]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "an existing file is never overwritten"
    );
    assert!(stderr_of(&again).contains("exists already"));

    // Restoring under the running daemon is refused.
    let out = a.cmd(&[
        "restore",
        "--input",
        quiet.to_str().expect("path"),
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("a klachtd process is using"),
        "{}",
        stderr_of(&out)
    );
    signal(&daemon, libc::SIGTERM);
    assert!(daemon.wait().expect("daemon").success());
    let expected = observed(&a);
    let expected_blobs = a.blob_files();
    assert!(
        expected_blobs.keys().any(|p| p.starts_with("attachments")),
        "the fixture has an attachment"
    );

    phase("observed A");
    // Into a fresh installation: the same, to the byte.
    let b = TestApp::spawn();
    let out = b.cmd(&["restore", "--input", quiet.to_str().expect("path")]);
    assert!(out.status.success(), "restore failed: {}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("klachtd: restore"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(observed(&b), expected);
    assert_eq!(b.blob_files(), expected_blobs);

    phase("restored and compared B");
    // Not over what is there, unless --force; with it, the backup's state replaces it.
    b.deliver(&Mail::new("later@example.nl", "Na het terugzetten").build());
    b.run_once();
    let out = b.cmd(&["restore", "--input", quiet.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("is not empty"),
        "{}",
        stderr_of(&out)
    );
    let out = b.cmd(&[
        "restore",
        "--input",
        quiet.to_str().expect("path"),
        "--force",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        b.cmd_ok(&["list", "--format", "json"]),
        expected["list"],
        "--force put the backup's register back"
    );
    assert_eq!(b.blob_files(), expected_blobs);

    phase("force");
    // The backup made while mail flowed is consistent: it restores, and holds a prefix of the
    // register, each complaint as it was then.
    let c = TestApp::spawn();
    let out = c.cmd(&["restore", "--input", during.to_str().expect("path")]);
    assert!(out.status.success(), "restore failed: {}", stderr_of(&out));
    let then = c.list();
    let now = a.list();
    phase(&format!(
        "the backup made during the flow holds {} of {} complaints",
        then.len(),
        now.len()
    ));
    assert!(
        then.len() > 6 && then.len() <= now.len(),
        "{} of {}",
        then.len(),
        now.len()
    );
    for complaint in &then {
        let same = now
            .iter()
            .find(|n| n["reference"] == complaint["reference"])
            .expect("every restored complaint is in the register");
        for field in ["complainant", "subject", "received_at"] {
            assert_eq!(same[field], complaint[field], "{field}");
        }
        // Its raw mail came along.
        c.cmd_ok(&["show", complaint["reference"].as_str().expect("ref")]);
    }

    phase("during");
    // A damaged file is refused by name, and nothing is changed.
    let mut bytes = std::fs::read(&quiet).expect("read backup");
    // The first entry is the database: its data starts after the 512-byte header.
    bytes[512 + 2000] ^= 0xff;
    let damaged = a.root.join("damaged.tar");
    std::fs::write(&damaged, &bytes).expect("write");
    let d = TestApp::spawn();
    let out = d.cmd(&["restore", "--input", damaged.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("is damaged") && err.contains("database.sqlite: checksum"),
        "{err}"
    );
    assert!(
        d.data_files()
            .iter()
            .all(|p| p.as_os_str() == "klachtd.lock"),
        "{:?}",
        d.data_files()
    );
    let out = d.cmd(&["restore", "--input", a.config_path.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("is not a klachtd backup"),
        "{}",
        stderr_of(&out)
    );
}

// ---- the unit file, the container file, a read-only root -----------------------------------

fn required() -> bool {
    std::env::var_os("KLACHTD_REQUIRE_STACK").is_some()
}

/// The tool's path, or None (the test skips) when it is missing and not required.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !required(),
            "{name} is not installed (scripts/test.sh installs it)"
        );
        eprintln!("skipped: {name} is not installed");
    }
    found
}

/// `systemd-analyze verify` needs the unit's programs to exist: it checks a copy of the unit
/// whose /usr/local/bin/klachtd is the binary under test, every other line as shipped.
fn unit_under_test(dir: &Path) -> PathBuf {
    let unit = std::fs::read_to_string(repo().join("deploy/klachtd.service")).expect("unit");
    assert!(unit.contains("ExecStart=/usr/local/bin/klachtd run"));
    let path = dir.join("klachtd.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/klachtd", bin())).expect("write unit");
    path
}

#[test]
fn the_systemd_unit_verifies_and_scores_ok() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_under_test(dir.path());
    let out = Command::new(&analyze)
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze verify");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "verify: {}",
        stderr_of(&out)
    );
    let text = std::fs::read_to_string(repo().join("deploy/klachtd.service")).expect("unit");
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "User=klachtd",
        "StateDirectory=klachtd",
        "ProtectSystem=strict",
        "ProtectHome=true",
        "PrivateTmp=true",
        "NoNewPrivileges=true",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=",
    ] {
        assert!(text.contains(line), "the unit lacks {line:?}");
    }
    let out = Command::new(&analyze)
        .args(["security", "--offline=true", "--threshold=15"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze security");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exposure over 1.5:\n{report}");
    let score = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for klachtd.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
        .expect("an exposure score");
    // README.md and deploy/INSTALL.md give this number.
    assert!(
        score <= 1.2,
        "exposure {score}: update README.md and INSTALL.md"
    );
}

#[test]
fn the_containerfile_lints_clean() {
    let Some(hadolint) = tool("hadolint") else {
        return;
    };
    let out = Command::new(hadolint)
        .arg(repo().join("deploy/Containerfile"))
        .output()
        .expect("hadolint");
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
    let text = std::fs::read_to_string(repo().join("deploy/Containerfile")).expect("file");
    assert!(text.matches("\nFROM ").count() >= 2, "multi-stage");
    assert!(text.contains("\nUSER 10001"), "non-root");
    assert!(
        text.contains("VOLUME [\"/var/lib/klachtd\"]"),
        "data volume"
    );
    let compose = std::fs::read_to_string(repo().join("deploy/compose.yaml")).expect("compose");
    for part in [
        "image: docker.io/library/postgres",
        "klachtd-1:",
        "klachtd-2:",
        "read_only: true",
    ] {
        assert!(compose.contains(part), "compose lacks {part}");
    }
}

/// What the image does, on this machine: the binary as uid 10001 on a read-only root (the
/// host's, mounted read-only by bwrap: the image itself cannot be built here), a tmpfs on
/// /tmp, the config read-only, and only the data directory writable.
#[test]
fn runs_as_a_non_root_user_on_a_read_only_root_with_only_the_data_dir_writable() {
    let Some(bwrap) = tool("bwrap") else {
        return;
    };
    if !nix_root() {
        assert!(!required(), "needs root to switch users");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let host = dir.path();
    let (etc, data) = (host.join("etc"), host.join("data"));
    std::fs::create_dir_all(&etc).expect("etc");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(data.join("maildir").join(sub)).expect("maildir");
    }
    for m in 0..2 {
        let bytes = Mail::new(&format!("ro{m}@example.nl"), &format!("Klacht {m}")).build();
        write_maildir_file(
            &data.join("maildir"),
            &format!("m{m}.M1P1.host"),
            "new",
            "",
            &bytes,
            ts(DEFAULT_NOW),
        );
    }
    // Inside the sandbox: /tmp/etc (read-only) and /tmp/data (the volume).
    // The binary, templates and procedures are mounted in as the image has them, so that no
    // directory above them (a CI checkout's, say) needs to be open to uid 10001.
    let config = TestApp::config_toml(
        Path::new("/tmp/data"),
        Path::new("/tmp/data/maildir"),
        Path::new("/tmp/data/outbox"),
    )
    .replace(
        &format!("{:?}", repo().join("templates").display().to_string()),
        "\"/tmp/share/templates\"",
    )
    .replace(
        &format!(
            "{:?}",
            repo().join("config/procedures").display().to_string()
        ),
        "\"/tmp/share/procedures\"",
    );
    assert!(config.contains("/tmp/share/templates") && config.contains("/tmp/share/procedures"));
    std::fs::write(etc.join("klachtd.toml"), config).expect("config");
    let uid = 10001;
    chown_tree(&data, uid);
    for p in [host, etc.as_path(), etc.join("klachtd.toml").as_path()] {
        set_mode(p, 0o755);
    }
    let run = |args: &[&str]| {
        Command::new(&bwrap)
            .args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"])
            .args(["--perms", "01777", "--tmpfs", "/tmp"])
            // bwrap makes missing parents 0700: these must be open to uid 10001.
            .args(["--perms", "0755", "--dir", "/tmp/bin"])
            .args(["--perms", "0755", "--dir", "/tmp/share"])
            .arg("--ro-bind")
            .arg(&etc)
            .arg("/tmp/etc")
            .arg("--bind")
            .arg(&data)
            .arg("/tmp/data")
            .arg("--ro-bind")
            .arg(bin())
            .arg("/tmp/bin/klachtd")
            .arg("--ro-bind")
            .arg(repo().join("templates"))
            .arg("/tmp/share/templates")
            .arg("--ro-bind")
            .arg(repo().join("config/procedures"))
            .arg("/tmp/share/procedures")
            .args([
                "--unshare-pid",
                "--unshare-ipc",
                "--unshare-uts",
                "--chdir",
                "/tmp/data",
            ])
            .args([
                "--",
                "setpriv",
                "--reuid=10001",
                "--regid=10001",
                "--clear-groups",
            ])
            .args(["--inh-caps=-all", "--bounding-set=-all", "--"])
            .arg("/tmp/bin/klachtd")
            .args(["--config", "/tmp/etc/klachtd.toml"])
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("KLACHTD_NOW", DEFAULT_NOW)
            .output()
            .expect("bwrap")
    };
    let out = run(&["check"]);
    assert!(
        out.status.success(),
        "check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
    let out = run(&["run", "--once"]);
    assert!(out.status.success(), "run --once: {}", stderr_of(&out));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("processed 2 mail(s): 2 registered"),
        "{summary}"
    );
    let out = run(&["list", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    // What it made is its own, for it alone; nothing was written outside the volume.
    use std::os::unix::fs::MetadataExt;
    let db = std::fs::metadata(data.join("klachtd.db")).expect("database");
    assert_eq!((db.uid(), db.mode() & 0o777), (uid, 0o600));
    let acknowledged = read_outbox(&data.join("outbox"))
        .iter()
        .filter(|m| m.envelope_to.iter().any(|a| a.starts_with("ro")))
        .count();
    assert_eq!(acknowledged, 2, "an acknowledgement to each");
    // The same sandbox refuses a write anywhere else (the proof that the root is read-only).
    let probe = Command::new(&bwrap)
        .args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"])
        .args([
            "--",
            "setpriv",
            "--reuid=10001",
            "--regid=10001",
            "--clear-groups",
            "--",
        ])
        .args(["sh", "-c", "touch /usr/klachtd-probe"])
        .output()
        .expect("probe");
    assert!(!probe.status.success());
}

fn nix_root() -> bool {
    // SAFETY: geteuid(2) only reads the process's credentials.
    unsafe { libc::geteuid() == 0 }
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).expect("chown");
    if path.is_dir() {
        for e in std::fs::read_dir(path).expect("read dir").flatten() {
            chown_tree(&e.path(), uid);
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

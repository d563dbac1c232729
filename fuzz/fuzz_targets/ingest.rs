//! The whole intake path on any bytes: one raw mail through `ingest_batch` (parse, classify,
//! dedupe, register, render the acknowledgement and staff mail, compose them with lettre, store
//! them in the outbox) on a real `Context` (SQLite in a temp dir, the repo's templates and the
//! `mzo` preset), then the outbox delivered through the file transport. A returned error is
//! fine (the mail is refused); a panic is the bug. With `KLACHTD_FUZZ_STRICT=1` a returned
//! error is a crash too: once ingest quarantines every mail it cannot take, an error means a
//! mail held up the batch (issue #8, finding 2).
//!
//! The installation is made once per process and made again every `RESET_EVERY` inputs, so the
//! database and the outbox directory stay small and the speed steady.
#![no_main]

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use klachtd::app::App;
use klachtd::clock::FixedClock;
use klachtd::config::Settings;
use klachtd::mailbox::RawMail;
use klachtd::service::ingest::ingest_batch;
use klachtd::service::outbox::deliver_due;
use libfuzzer_sys::fuzz_target;

const RESET_EVERY: u64 = 2_000;

struct State {
    rt: tokio::runtime::Runtime,
    app: Option<App>,
    dir: PathBuf,
    generation: u64,
    count: u64,
    strict: bool,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

const PREFIX: &str = "klachtd-fuzz-ingest-";

fn base_dir() -> PathBuf {
    // tmpfs when there is one: SQLite commits on every input.
    let shm = PathBuf::from("/dev/shm");
    let root = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    // libFuzzer ends a process with exit(), so its directory stays behind: the directories of
    // processes that are gone (a crash in -fork mode, an earlier run) are removed here.
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(PREFIX)
                && !PathBuf::from(format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    root.join(format!("{PREFIX}{}", std::process::id()))
}

fn config(dir: &std::path::Path) -> String {
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    format!(
        r#"data_dir = {data:?}

[organisation]
name = "Muziekcentrum Zuidoost"
time_zone = "Europe/Amsterdam"
language = "nl"
reference_prefix = "KL"
mail_domain = "example.org"
secret = "fuzz-secret"

[mailbox]
kind = "maildir"
path = {maildir:?}

[outgoing]
kind = "file"
path = {outbox:?}
from = "service@example.org"

[staff]
admin = ["beheer@example.org"]
receiver = ["coordinator@example.org"]
director = ["directeur@example.org"]
management_team = ["mt@example.org"]
cluster_manager = ["clustermanager@example.org"]
complaints_officer = ["klachtenfunctionaris@example.org"]

[procedure]
preset = "mzo"
dir = {procedures:?}

[templates]
dir = {templates:?}

[limits]
# Every sender is acknowledged (the cap would stop compose from running after 3 mails).
acknowledgements_per_address_per_day = 1000000000

[intake]
web_form_senders = ["formulier@example.org", "noreply@webform.example"]
trusted_authserv_id = "mx.example.org"
"#,
        data = dir.display().to_string(),
        maildir = dir.join("maildir").display().to_string(),
        outbox = dir.join("outbox").display().to_string(),
        procedures = repo.join("config/procedures").display().to_string(),
        templates = repo.join("templates").display().to_string(),
    )
}

fn build(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> App {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("fuzz: cannot create the data dir");
    let settings = Settings::from_text(&config(dir), "fuzz.toml", &[]).expect("fuzz: config");
    let settings = settings
        .validate()
        .unwrap_or_else(|problems| panic!("fuzz: config problems {problems:?}"));
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 11, 0, 0).unwrap();
    let clock = Arc::new(FixedClock::new(now));
    rt.block_on(App::build(settings, clock))
        .unwrap_or_else(|e| panic!("fuzz: cannot build the app: {e}"))
}

fuzz_target!(|data: &[u8]| {
    STATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let state = slot.get_or_insert_with(|| State {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fuzz: tokio runtime"),
            app: None,
            dir: base_dir(),
            generation: 0,
            count: 0,
            strict: std::env::var("KLACHTD_FUZZ_STRICT").is_ok_and(|v| v == "1"),
        });
        if state.app.is_none() || state.count % RESET_EVERY == 0 {
            state.app = None;
            state.generation += 1;
            let dir = state.dir.join(state.generation.to_string());
            let _ = std::fs::remove_dir_all(state.dir.join((state.generation - 1).to_string()));
            state.app = Some(build(&state.rt, &dir));
        }
        state.count += 1;
        let Some(app) = state.app.as_ref() else {
            return;
        };
        let mail = RawMail {
            key: format!("fuzz-{}", state.count),
            bytes: data.to_vec(),
            received_at: Utc.with_ymd_and_hms(2026, 11, 23, 10, 59, 0).unwrap(),
        };
        let strict = state.strict;
        state.rt.block_on(async {
            let ingested = ingest_batch(&app.ctx, "fuzz", vec![mail]).await;
            if strict && let Err(e) = &ingested {
                panic!("ingest_batch returned an error: {e}");
            }
            let delivered = deliver_due(&app.ctx, app.transport.as_ref()).await;
            if strict && let Err(e) = &delivered {
                panic!("deliver_due returned an error: {e}");
            }
        });
    });
});

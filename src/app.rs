//! `App::build(settings)` wires the adapters; `run_until_stopped` supervises the long-running
//! tasks (mailbox watcher, outbox sender) until the shutdown signal, which comes from outside so
//! tests can drive it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::clock::SharedClock;
use crate::config::{MailboxKind, OutgoingKind, Settings, Valid};
use crate::mail::templates::TemplateEngine;
use crate::mailbox::MailSource;
use crate::mailbox::maildir::MaildirSource;
use crate::outgoing::Transport;
use crate::outgoing::file::FileTransport;
use crate::procedure_runtime::ProcedureRuntime;
use crate::service::ingest::{Outcome, drain};
use crate::service::leader::{Gate, Instance, Keeper, RoleListener};
use crate::service::outbox::{
    DeliveryReport, alert_admin, deliver_due, deliver_due_until, deliver_for,
};
use crate::service::{Context, PreviousKeys, ServiceError};
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("templates are invalid:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Templates(Vec<crate::mail::templates::TemplateError>),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("cannot set up {what}: {reason}")]
    Setup { what: String, reason: String },
    /// A long-running task ended while the daemon should have gone on: the daemon stops with
    /// this error (and a non-zero exit, so systemd restarts it) instead of running half-alive.
    #[error("the {task} stopped unexpectedly: {reason}")]
    TaskDied { task: String, reason: String },
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
}

pub struct App {
    pub ctx: Arc<Context>,
    pub transport: Arc<dyn Transport>,
    /// The SMTP side's OAuth2 token source, shared with IMAP when both use the same grant:
    /// one refresh, and a rotated refresh token is never used by one side after the other
    /// replaced it.
    outgoing_tokens: Option<Arc<crate::oauth2::TokenSource>>,
    /// What `/healthz` and `/readyz` judge (issue #12): the tasks report into it.
    pub health: Arc<crate::service::health::Health>,
}

impl App {
    /// Only validated settings ([`Settings::validate`]) build an app.
    pub async fn build(settings: Valid, clock: SharedClock) -> Result<App, AppError> {
        std::fs::create_dir_all(&settings.data_dir).map_err(|e| AppError::Setup {
            what: format!("data_dir {}", settings.data_dir.display()),
            reason: e.to_string(),
        })?;
        // Personal data: the data directory is for klachtd's user only, also when an older
        // version or a hand-made directory left it open (main sets umask 077 for new files).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&settings.data_dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| AppError::Setup {
                    what: format!("data_dir {} permissions", settings.data_dir.display()),
                    reason: e.to_string(),
                })?;
        }
        let backend = settings.database().map_err(|p| AppError::Setup {
            what: p.key.clone(),
            reason: p.message.clone(),
        })?;
        let store: Arc<dyn Store> = backend.open().await?;
        let templates =
            Arc::new(TemplateEngine::load(&settings.templates.dir).map_err(AppError::Templates)?);
        let key = match store.leadership() {
            // Several instances on one database sign and check the same tokens: a key made
            // here lives in the database (seeded from this data directory's secret.key when
            // there is one, as after `migrate-store`), the first instance's for all.
            Some(_) if settings.organisation.secret.is_empty() => {
                let candidate = load_key(&settings)?;
                let candidate = String::from_utf8_lossy(&candidate).into_owned();
                store
                    .setting_or_insert(SHARED_KEY_SETTING, &candidate)
                    .await?
                    .into_bytes()
            }
            _ => load_key(&settings)?,
        };
        let mut outgoing_tokens = None;
        let transport: Arc<dyn Transport> = match settings.outgoing.kind {
            OutgoingKind::File => {
                let path = settings
                    .outgoing
                    .path
                    .clone()
                    .unwrap_or_else(|| settings.data_dir.join("outbox"));
                Arc::new(FileTransport::open(&path).map_err(|e| AppError::Setup {
                    what: format!("outbox directory {}", path.display()),
                    reason: e.to_string(),
                })?)
            }
            OutgoingKind::Smtp => {
                outgoing_tokens = token_source(
                    &settings.outgoing.oauth2,
                    settings.outgoing.auth,
                    "outgoing",
                )?;
                let tokens = outgoing_tokens.clone();
                Arc::new(
                    crate::outgoing::smtp::SmtpTransport::new(&settings.outgoing, tokens).map_err(
                        |e| AppError::Setup {
                            what: "outgoing SMTP".into(),
                            reason: e.to_string(),
                        },
                    )?,
                )
            }
        };
        let procedure = ProcedureRuntime::load(&settings).map_err(|e| AppError::Setup {
            what: "procedure".into(),
            reason: e.to_string(),
        })?;
        let blobs: Arc<dyn crate::store::blobs::Blobs> = match settings.database.blobs {
            crate::config::BlobLocation::Files => {
                Arc::new(crate::store::blobs::FileBlobs::new(&settings.data_dir))
            }
            crate::config::BlobLocation::Database => {
                store.database_blobs().ok_or_else(|| AppError::Setup {
                    what: "database.blobs".into(),
                    reason: "this database cannot keep them: use files".into(),
                })?
            }
        };
        let previous_keys = load_previous_keys(&settings)?;
        let routing = settings
            .routing_rules()
            .map_err(|problems| AppError::Setup {
                what: "routing".into(),
                reason: problems
                    .iter()
                    .map(|p| format!("{}: {}", p.key, p.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            })?;
        let health = Arc::new(crate::service::health::Health::new(clock.now()));
        Ok(App {
            health,
            ctx: Arc::new(Context {
                settings,
                store,
                templates,
                clock,
                key,
                previous_keys,
                blobs,
                procedure: Arc::new(procedure),
                routing,
            }),
            transport,
            outgoing_tokens,
        })
    }

    pub fn open_source(&self) -> Result<Box<dyn MailSource>, AppError> {
        let m = &self.ctx.settings.mailbox;
        match m.kind {
            MailboxKind::Maildir => {
                let path = m
                    .path
                    .clone()
                    .unwrap_or_else(|| self.ctx.settings.data_dir.join("maildir"));
                let poll = Duration::from_secs(m.poll_interval.clamp(1, 5));
                Ok(Box::new(MaildirSource::open(&path, poll).map_err(|e| {
                    AppError::Setup {
                        what: "mailbox".into(),
                        reason: e.to_string(),
                    }
                })?))
            }
            MailboxKind::Imap => {
                let tokens = match &self.outgoing_tokens {
                    Some(shared)
                        if m.auth == crate::config::AuthMethod::Xoauth2
                            && same_grant(&m.oauth2, &self.ctx.settings.outgoing.oauth2) =>
                    {
                        Some(shared.clone())
                    }
                    _ => token_source(&m.oauth2, m.auth, "mailbox")?,
                };
                Ok(Box::new(
                    crate::mailbox::imap::ImapSource::new(m, tokens).map_err(|e| {
                        AppError::Setup {
                            what: "mailbox IMAP".into(),
                            reason: e.to_string(),
                        }
                    })?,
                ))
            }
        }
    }

    /// Process everything waiting, deliver the outbox, return.
    pub async fn run_once(&self) -> Result<(Vec<Outcome>, DeliveryReport), AppError> {
        let mut source = self.open_source()?;
        let started = std::time::Instant::now();
        let outcomes = drain(&self.ctx, source.as_mut(), &|| false).await?;
        tracing::info!(
            mails = outcomes.len(),
            seconds = started.elapsed().as_secs_f64(),
            "mailbox drained"
        );
        let started = std::time::Instant::now();
        let report = deliver_due(&self.ctx, self.transport.as_ref()).await?;
        tracing::info!(
            sent = report.sent,
            retrying = report.retrying,
            failed = report.failed,
            seconds = started.elapsed().as_secs_f64(),
            "outbox delivered"
        );
        Ok((outcomes, report))
    }

    /// Run the watcher and the sender until `shutdown` turns true. The mail in hand is
    /// finished first: shutdown is checked between batches, never inside a transaction.
    pub async fn run_until_stopped(
        self,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), AppError> {
        // The tasks stop on this: the outside shutdown, or one of them dying.
        let (stop_all, stop) = watch::channel(false);
        // ---- health and metrics listener (issue #12): bound before anything runs, so a
        // taken port is a startup error.
        let http = match self.ctx.settings.http.listen {
            Some(addr) => {
                let listener = crate::http::bind(addr).await?;
                let router = crate::http::router(
                    self.ctx.clone(),
                    self.health.clone(),
                    crate::http::recorder()?,
                );
                Some(crate::http::serve(listener, router, stop.clone()))
            }
            None => None,
        };
        // ---- end of the listener's setup
        let wake_outbox = Arc::new(Notify::new());
        let wake_outbox_for_scheduler = wake_outbox.clone();
        let wake_scheduler = Arc::new(Notify::new());
        let mut source = self.open_source()?;
        // systemd notify (deploy/klachtd.service): each task's heartbeat, READY/STATUS/WATCHDOG.
        let supervisor = crate::notify::Supervisor::from_env(&[WATCHER, SENDER, SCHEDULER]);
        // ---- several instances on one database (issue #12): the leader watches the mailbox
        // and runs the scheduler through a store fenced on its lease; every instance sends.
        let shared = self.ctx.store.leadership();
        let (keeper, gate) = match &shared {
            Some(leadership) => {
                let (keeper, gate) = Keeper::new(
                    leadership.clone(),
                    Instance::current(),
                    Duration::from_secs(self.ctx.settings.runtime.failover_seconds),
                );
                (Some(Arc::new(keeper)), gate)
            }
            None => {
                metrics::gauge!(crate::service::health::names::LEADER).set(1.0);
                (None, Gate::open(self.ctx.store.clone()))
            }
        };
        // Another instance's queued mail and changes wake this one's sender and scheduler.
        let listener = shared.map(|leadership| {
            let (outbox, scheduler) = (wake_outbox.clone(), wake_scheduler.clone());
            tokio::spawn(async move {
                loop {
                    if let Err(e) = leadership.listen(outbox.clone(), scheduler.clone()).await {
                        tracing::warn!(error = %e, "LISTEN for other instances' work failed; trying again");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        });
        // With LISTEN the sender's own timer is only a safety net.
        let poll_cap = if keeper.is_some() {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(5)
        };
        // ---- end of the several-instances setup
        let pinger = {
            let ctx = self.ctx.clone();
            let tz = ctx
                .settings
                .time_zone()
                .unwrap_or(chrono_tz::Europe::Amsterdam);
            let queued = move || {
                let ctx = ctx.clone();
                async move { crate::notify::Supervisor::count_queued(ctx.store.as_ref()).await }
            };
            tokio::spawn(supervisor.clone().run(tz, queued, stop.clone()))
        };
        let (watch_sup, beat) = (supervisor.clone(), supervisor.beat(WATCHER));
        // end systemd notify
        let ctx = self.ctx.clone();
        let notify = wake_outbox.clone();
        let mut stop_watch = stop.clone();
        let health = self.health.clone();
        let watcher_gate = gate.clone();
        let watcher = tokio::spawn(async move {
            // A standby waits here until it leads (at once on SQLite).
            beat.waiting(STANDBY_PATIENCE);
            let Some(ctx) = watcher_gate.leader_context(&ctx, &mut stop_watch).await else {
                return;
            };
            let mut alerted = false;
            let mut failures: u32 = 0;
            let mut rounds: u64 = 0;
            loop {
                beat.working();
                test_task_hook("watcher");
                test_task_hang("watcher", &mut rounds).await;
                if *stop_watch.borrow() {
                    break;
                }
                let stop_flag = stop_watch.clone();
                let beat_between_batches = beat.clone();
                let stop = move || {
                    beat_between_batches.working();
                    *stop_flag.borrow()
                };
                match drain(&ctx, source.as_mut(), &stop).await {
                    Ok(outcomes) => {
                        watch_sup.mailbox_up();
                        health.mailbox_reached(ctx.clock.now());
                        failures = 0;
                        alerted = false;
                        if !outcomes.is_empty() {
                            notify.notify_one();
                        }
                    }
                    Err(e) => {
                        watch_sup.mailbox_down(ctx.clock.now());
                        health.mailbox_failed(ctx.clock.now(), &e.to_string());
                        failures += 1;
                        tracing::error!(error = %e, failures, "mailbox run failed; retrying with backoff");
                        let auth = matches!(&e, ServiceError::Mailbox(m) if m.is_auth());
                        if (auth || failures == 3) && !alerted {
                            alerted = true;
                            let subject = if auth {
                                "Inloggen op de mailbox mislukt / mailbox login failed"
                            } else {
                                "Mailbox niet bereikbaar / mailbox unreachable"
                            };
                            if let Err(a) = alert_admin(&ctx, subject, &e.to_string()).await {
                                tracing::error!(error = %a, "cannot queue admin alert");
                            }
                            notify.notify_one();
                        }
                        let wait = Duration::from_secs(2u64.saturating_pow(failures.min(8)));
                        beat.waiting(wait);
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = stop_watch.changed() => {}
                        }
                        continue;
                    }
                }
                let idle = Duration::from_secs(25 * 60);
                beat.waiting(idle);
                tokio::select! {
                    r = source.wait_for_mail(idle) => {
                        if let Err(e) = r {
                            tracing::warn!(error = %e, "waiting for mail failed");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                    _ = stop_watch.changed() => {}
                }
            }
        });
        let ctx = self.ctx.clone();
        let transport = self.transport.clone();
        let mut stop_send = stop.clone();
        let beat = supervisor.beat(SENDER);
        let sender = tokio::spawn(async move {
            loop {
                beat.working();
                // A stop is honoured between mails; what was claimed and not sent is given
                // back for the next start.
                match deliver_due_until(&ctx, transport.as_ref(), &stop_send).await {
                    Ok(r) if r != DeliveryReport::default() => tracing::info!(?r, "outbox run"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "outbox run failed"),
                }
                if *stop_send.borrow() {
                    break;
                }
                ctx.templates.reload_if_changed();
                let wait = match ctx.store.next_outbox_due().await {
                    Ok(Some(t)) => (t - ctx.clock.now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(poll_cap),
                    _ => poll_cap,
                };
                beat.waiting(wait);
                tokio::select! {
                    _ = tokio::time::sleep(wait.max(Duration::from_millis(50))) => {}
                    _ = wake_outbox.notified() => {}
                    _ = stop_send.changed() => {}
                }
                if *stop_send.borrow() {
                    // Deliver what the last batch queued before leaving, within a second.
                    if let Err(e) =
                        deliver_for(&ctx, transport.as_ref(), Duration::from_secs(1)).await
                    {
                        tracing::error!(error = %e, "final outbox run failed");
                    }
                    break;
                }
            }
        });
        let ctx = self.ctx.clone();
        let mut stop_sched = stop.clone();
        let notify = wake_outbox_for_scheduler;
        let beat = supervisor.beat(SCHEDULER);
        let health = self.health.clone();
        let scheduler_gate = gate;
        let scheduler = tokio::spawn(async move {
            beat.waiting(STANDBY_PATIENCE);
            let Some(ctx) = scheduler_gate.leader_context(&ctx, &mut stop_sched).await else {
                return;
            };
            loop {
                beat.working();
                let now = ctx.clock.now();
                match crate::service::scheduler::run_due(&ctx, now).await {
                    Ok(r) if !r.actions.is_empty() || !r.jobs.is_empty() => {
                        tracing::info!(actions = r.actions.len(), jobs = ?r.jobs, "scheduler run");
                        notify.notify_one();
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "scheduler run failed"),
                }
                // Sleep until the next due action (no busy polling); wake at least hourly so
                // changes made by another process (`klachtd complete`) are seen.
                let next = crate::service::scheduler::next_wakeup(&ctx).await;
                if let Ok(due) = &next {
                    health.scheduler_ran(now, *due);
                }
                let wait = match next {
                    Ok(Some(t)) => (t - ctx.clock.now()).to_std().unwrap_or(Duration::ZERO),
                    _ => Duration::from_secs(3600),
                }
                .clamp(Duration::from_secs(1), Duration::from_secs(3600));
                beat.waiting(wait);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = wake_scheduler.notified() => {}
                    _ = stop_sched.changed() => {}
                }
                if *stop_sched.borrow() {
                    break;
                }
            }
        });
        let mut tasks = vec![(WATCHER, watcher), (SENDER, sender), (SCHEDULER, scheduler)];
        let lease_error = Arc::new(std::sync::Mutex::new(None::<String>));
        if let Some(keeper) = keeper.clone() {
            let roles = Roles {
                supervisor: supervisor.clone(),
                health: self.health.clone(),
            };
            let stop = stop.clone();
            let lease_error = lease_error.clone();
            // Supervised: a lost lease stops the daemon with that reason.
            tasks.push((
                LEASE_KEEPER,
                tokio::spawn(async move {
                    if let Err(e) = keeper.run(&roles, stop).await {
                        *lease_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    }
                }),
            ));
        }
        if let Some(serve) = http {
            // Supervised like the others: a listener that fails stops the daemon loudly.
            tasks.push((
                "HTTP listener",
                tokio::spawn(async move {
                    // Before the stop it only returns on a failure: the supervisor then
                    // stops the daemon as for any task that dies.
                    if let Err(e) = serve.await {
                        tracing::error!(error = %e, "HTTP listener failed");
                    }
                }),
            ));
        }
        let died = tokio::select! {
            _ = shutdown.changed() => None,
            (result, index, _) = futures_util::future::select_all(tasks.iter_mut().map(|(_, t)| t)) => {
                let lost = lease_error.lock().unwrap_or_else(|p| p.into_inner()).take();
                let reason = match (result, lost) {
                    (Ok(()), Some(lost)) => lost,
                    (Ok(()), None) => "it returned".to_string(),
                    (Err(e), _) if e.is_panic() => format!("it panicked: {}", crate::panics::panic_message(e.into_panic())),
                    (Err(e), _) => e.to_string(),
                };
                Some((tasks[index].0, reason))
            }
        };
        let _ = stop_all.send(true);
        pinger.abort();
        if let Some(listener) = listener {
            listener.abort();
        }
        let finished = died.as_ref().map(|(name, _)| *name);
        for (name, task) in tasks {
            if Some(name) == finished {
                continue;
            }
            // A finished handle resolves at once; the others finish the mail in hand.
            match tokio::time::timeout(Duration::from_secs(10), task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(task = name, error = %e, "task ended abnormally"),
                Err(_) => tracing::error!(task = name, "task did not stop within 10 s"),
            }
        }
        // The leader's tasks have finished: its lease is given up for a standby to take.
        if let Some(keeper) = &keeper {
            keeper.release().await;
        }
        let Some((task, reason)) = died else {
            return Ok(());
        };
        tracing::error!(task, %reason, "task died: klachtd stops so that it is restarted");
        let text = format!(
            "The {task} of klachtd stopped unexpectedly ({reason}). klachtd has stopped with an error so that systemd (or your supervisor) restarts it; check the log."
        );
        let alerted = async {
            alert_admin(&self.ctx, "klachtd gestopt / klachtd stopped", &text).await?;
            deliver_due(&self.ctx, self.transport.as_ref()).await
        };
        match tokio::time::timeout(Duration::from_secs(10), alerted).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot alert the admin"),
            Err(_) => tracing::error!("alerting the admin took longer than 10 s"),
        }
        Err(AppError::TaskDied {
            task: task.to_string(),
            reason,
        })
    }
}

/// Debug builds only: `KLACHTD_TEST_TASK_PANIC=watcher` makes that task panic, so a test can
/// prove that a dying task stops the daemon loudly. Release builds have no such hook.
#[cfg(debug_assertions)]
fn test_task_hook(task: &str) {
    if std::env::var("KLACHTD_TEST_TASK_PANIC").is_ok_and(|t| t == task) {
        panic!("test hook: {task} task panics");
    }
}

#[cfg(not(debug_assertions))]
fn test_task_hook(_task: &str) {}

/// The long-running tasks, by the names their errors and heartbeats carry.
const WATCHER: &str = "mailbox watcher";
const LEASE_KEEPER: &str = "leader lease keeper";
/// How long a standby's leader tasks may wait for the lease without counting as hung.
const STANDBY_PATIENCE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Where a change of role shows: the systemd status line, `/healthz` and `klachtd_leader`.
struct Roles {
    supervisor: Arc<crate::notify::Supervisor>,
    health: Arc<crate::service::health::Health>,
}

impl RoleListener for Roles {
    fn leading(&self, leading: bool) {
        self.supervisor.set_standby(!leading);
        self.health.set_standby(!leading);
        metrics::gauge!(crate::service::health::names::LEADER).set(if leading { 1.0 } else { 0.0 });
    }
}
const SENDER: &str = "outbox sender";
const SCHEDULER: &str = "scheduler";

/// Debug builds only: `KLACHTD_TEST_TASK_HANG=watcher` makes the watcher hang (never return,
/// never mark its heartbeat) at the start of its second round, after the first mail, so a test
/// can prove that a hung task stops the watchdog pings.
#[cfg(debug_assertions)]
async fn test_task_hang(task: &str, rounds: &mut u64) {
    *rounds += 1;
    if *rounds >= 2 && std::env::var("KLACHTD_TEST_TASK_HANG").is_ok_and(|t| t == task) {
        std::future::pending::<()>().await;
    }
}

#[cfg(not(debug_assertions))]
async fn test_task_hang(_task: &str, _rounds: &mut u64) {}

/// Both sections refresh the same token (same endpoint, client, scope and token file).
fn same_grant(a: &crate::config::OAuth2, b: &crate::config::OAuth2) -> bool {
    a.refresh_token_file.is_some()
        && a.refresh_token_file == b.refresh_token_file
        && a.token_url == b.token_url
        && a.client_id == b.client_id
        && a.scope == b.scope
}

/// An XOAUTH2 token source when the section authenticates with OAuth2.
fn token_source(
    oauth2: &crate::config::OAuth2,
    auth: crate::config::AuthMethod,
    section: &str,
) -> Result<Option<Arc<crate::oauth2::TokenSource>>, AppError> {
    if auth != crate::config::AuthMethod::Xoauth2 {
        return Ok(None);
    }
    crate::oauth2::TokenSource::new(oauth2)
        .map(|t| Some(Arc::new(t)))
        .map_err(|e| AppError::Setup {
            what: format!("{section} OAuth2"),
            reason: e.to_string(),
        })
}

/// The HMAC key: from config (or `KLACHTD__ORGANISATION__SECRET`), else made once and kept in
/// `DATA_DIR/secret.key` (mode 0600).
/// The settings row of the generated HMAC key on a shared database.
const SHARED_KEY_SETTING: &str = "secret_key";

fn load_key(settings: &Settings) -> Result<Vec<u8>, AppError> {
    if !settings.organisation.secret.is_empty() {
        return Ok(settings.organisation.secret.expose().as_bytes().to_vec());
    }
    let path = settings.data_dir.join("secret.key");
    read_or_create_key(&path).map_err(|e| AppError::Setup {
        what: format!("secret key {}", path.display()),
        reason: e.to_string(),
    })
}

/// Keys from before a rotation, with the last day they are accepted.
fn load_previous_keys(settings: &Settings) -> Result<PreviousKeys, AppError> {
    let o = &settings.organisation;
    let mut keys: Vec<Vec<u8>> = o
        .previous_secrets
        .iter()
        .map(|s| s.expose().as_bytes().to_vec())
        .collect();
    for path in &o.previous_secret_files {
        let text = std::fs::read_to_string(path).map_err(|e| AppError::Setup {
            what: format!("organisation.previous_secret_files: {}", path.display()),
            reason: e.to_string(),
        })?;
        let key = text.lines().next().unwrap_or("").trim();
        if key.is_empty() {
            return Err(AppError::Setup {
                what: format!("organisation.previous_secret_files: {}", path.display()),
                reason: "the file is empty".into(),
            });
        }
        keys.push(key.as_bytes().to_vec());
    }
    Ok(PreviousKeys {
        keys,
        until: o.previous_secrets_until,
    })
}

fn read_or_create_key(path: &Path) -> std::io::Result<Vec<u8>> {
    if let Ok(k) = std::fs::read_to_string(path) {
        return Ok(k.trim().as_bytes().to_vec());
    }
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let key = hex::encode(bytes);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &key)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    // Another process may have made one meanwhile: hard_link fails then, and theirs wins.
    match std::fs::hard_link(&tmp, path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let _ = std::fs::remove_file(&tmp);
    Ok(std::fs::read_to_string(path)?.trim().as_bytes().to_vec())
}

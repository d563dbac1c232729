//! systemd's notify protocol (sd_notify(3)) for `klachtd run` under `Type=notify`: `READY=1`
//! once the store is open and the mailbox was read, `STATUS=` lines ("idle, 3 queued",
//! "mailbox unreachable since 10:02"), `WATCHDOG=1` while every long-running task shows
//! progress, and `STOPPING=1` on SIGTERM. The datagrams are sent by the `sd-notify` crate;
//! without `NOTIFY_SOCKET` nothing is sent and no task is started.
//!
//! Why heartbeats: a ping from a free-running timer only proves that the runtime's thread
//! runs. Each task instead says when it must be heard from again: while it works, within the
//! watchdog timeout; while it waits on a bounded wait (a sleep, an IDLE of at most 25 minutes),
//! by the end of that wait plus the timeout. The pinger pings only while no task is overdue, so
//! a task stuck in a call that never returns stops the pings, and systemd restarts the daemon
//! after `WatchdogSec`. A thread blocked outright stops the pinger itself, with the same result.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sd_notify::NotifyState;

/// How often the status line is refreshed when there is no watchdog.
const STATUS_EVERY: Duration = Duration::from_secs(5);
/// Outbox rows counted for the status line at most ("1000+ queued" beyond).
const QUEUED_COUNTED: i64 = 1000;

/// Whether a service manager listens (`NOTIFY_SOCKET` is set).
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty())
}

/// Send states to the service manager; a failure to send is logged, never fatal (the daemon
/// works the same under a manager that does not listen).
fn send(states: &[NotifyState<'_>]) {
    if !enabled() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(target: "klachtd", error = %e, "cannot notify the service manager");
    }
}

/// `STOPPING=1`: the stop was asked for and the mail in hand is being finished.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// One task's heartbeat: the moment (milliseconds after `base`) by which it must mark again.
pub struct Beat {
    name: &'static str,
    base: Instant,
    /// Patience for work between two marks: the watchdog timeout.
    work_limit: Duration,
    due_by_ms: AtomicU64,
    working: AtomicBool,
}

impl Beat {
    fn at(&self, d: Duration) -> u64 {
        u64::try_from((self.base.elapsed() + d).as_millis()).unwrap_or(u64::MAX)
    }

    /// The task is working: it marks again (between batches, at its loop's top) within the
    /// watchdog timeout, or it counts as hung.
    pub fn working(&self) {
        self.working.store(true, Ordering::Relaxed);
        self.due_by_ms
            .store(self.at(self.work_limit), Ordering::Relaxed);
    }

    /// The task waits, at most `wait` (its own timeout); it counts as hung only after that
    /// wait and the watchdog timeout have passed without a mark.
    pub fn waiting(&self, wait: Duration) {
        self.working.store(false, Ordering::Relaxed);
        self.due_by_ms.store(
            self.at(wait.saturating_add(self.work_limit)),
            Ordering::Relaxed,
        );
    }

    fn overdue(&self) -> bool {
        self.at(Duration::ZERO) > self.due_by_ms.load(Ordering::Relaxed)
    }
}

/// The daemon's side of the protocol: the tasks' heartbeats and what the status line says.
pub struct Supervisor {
    enabled: bool,
    /// `WATCHDOG_USEC` (when meant for this process): ping at half of it.
    watchdog: Option<Duration>,
    beats: Vec<Arc<Beat>>,
    ready: AtomicBool,
    /// Another instance leads: this one only sends (service::leader).
    standby: AtomicBool,
    mailbox_down_since: Mutex<Option<DateTime<Utc>>>,
}

impl Supervisor {
    /// From the environment systemd sets (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`),
    /// with a heartbeat per task name.
    pub fn from_env(tasks: &[&'static str]) -> Arc<Supervisor> {
        let enabled = enabled();
        let watchdog = if enabled {
            sd_notify::watchdog_enabled()
        } else {
            None
        };
        // Without a watchdog the beats only feed the status line: any long patience will do.
        let work_limit = watchdog.unwrap_or(Duration::from_secs(120));
        let base = Instant::now();
        let beats = tasks
            .iter()
            .map(|name| {
                let beat = Beat {
                    name,
                    base,
                    work_limit,
                    due_by_ms: AtomicU64::new(0),
                    working: AtomicBool::new(true),
                };
                beat.working();
                Arc::new(beat)
            })
            .collect();
        Arc::new(Supervisor {
            enabled,
            watchdog,
            beats,
            ready: AtomicBool::new(false),
            standby: AtomicBool::new(false),
            mailbox_down_since: Mutex::new(None),
        })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The heartbeat of the task named so (a fresh, unwatched one for an unknown name).
    pub fn beat(&self, name: &str) -> Arc<Beat> {
        self.beats
            .iter()
            .find(|b| b.name == name)
            .cloned()
            .unwrap_or_else(|| {
                Arc::new(Beat {
                    name: "unwatched",
                    base: Instant::now(),
                    work_limit: Duration::MAX,
                    due_by_ms: AtomicU64::new(u64::MAX),
                    working: AtomicBool::new(false),
                })
            })
    }

    /// The mailbox was read: the first time, `READY=1`.
    pub fn mailbox_up(&self) {
        *self
            .mailbox_down_since
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        if !self.ready.swap(true, Ordering::Relaxed) {
            send(&[NotifyState::Ready, NotifyState::Status("started")]);
        }
    }

    /// Another instance leads (`true`) or this one does now (`false`). A standby is ready at
    /// once: its store is up, and the mailbox is not its to read.
    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::Relaxed);
        if standby && !self.ready.swap(true, Ordering::Relaxed) {
            send(&[NotifyState::Ready, NotifyState::Status("standby")]);
        }
    }

    /// Reading the mailbox failed at `now`; the status says since when while it lasts.
    pub fn mailbox_down(&self, now: DateTime<Utc>) {
        let mut since = self
            .mailbox_down_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        since.get_or_insert(now);
    }

    /// The tasks that are overdue (hung), by name.
    pub fn hung(&self) -> Vec<&'static str> {
        self.beats
            .iter()
            .filter(|b| b.overdue())
            .map(|b| b.name)
            .collect()
    }

    /// The status line: "idle, 3 queued", "working, 3 queued", "mailbox unreachable since
    /// 10:02, 3 queued" (organisation time), "no progress in mailbox watcher".
    pub fn status_line(&self, queued: &str, tz: chrono_tz::Tz) -> String {
        let hung = self.hung();
        if !hung.is_empty() {
            return format!("no progress in {}, {queued} queued", hung.join(", "));
        }
        let down = *self
            .mailbox_down_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(since) = down {
            let at = since.with_timezone(&tz).format("%H:%M");
            return format!("mailbox unreachable since {at}, {queued} queued");
        }
        if self.standby.load(Ordering::Relaxed) {
            return format!("standby, {queued} queued");
        }
        let working = self.beats.iter().any(|b| b.working.load(Ordering::Relaxed));
        let what = if working { "working" } else { "idle" };
        format!("{what}, {queued} queued")
    }

    /// Ping and refresh the status line until `stop`: `WATCHDOG=1` at half the timeout, and
    /// only while no task is overdue. `queued()` counts the outbox's queued mails.
    pub async fn run<F, Fut>(
        self: Arc<Self>,
        tz: chrono_tz::Tz,
        queued: F,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Option<usize>>,
    {
        if !self.enabled {
            return;
        }
        let every = self
            .watchdog
            .map_or(STATUS_EVERY, |t| (t / 2).min(STATUS_EVERY));
        let mut last_status = String::new();
        let mut silent = false;
        loop {
            let count = match queued().await {
                Some(n) if n as i64 >= QUEUED_COUNTED => format!("{QUEUED_COUNTED}+"),
                Some(n) => n.to_string(),
                None => "?".to_string(),
            };
            let status = self.status_line(&count, tz);
            let hung = self.hung();
            let mut states = Vec::new();
            if status != last_status {
                states.push(NotifyState::Status(&status));
            }
            if self.watchdog.is_some() {
                if hung.is_empty() {
                    states.push(NotifyState::Watchdog);
                    silent = false;
                } else if !silent {
                    silent = true;
                    tracing::error!(target: "klachtd", tasks = ?hung, "a task makes no progress: watchdog pings stopped, so systemd restarts klachtd");
                }
            }
            if !states.is_empty() {
                send(&states);
            }
            last_status = status;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// The queued mails of the outbox, counted up to [`QUEUED_COUNTED`].
    pub async fn count_queued(store: &dyn crate::store::Store) -> Option<usize> {
        store
            .list_outbox_page(Some("queued"), 0, QUEUED_COUNTED)
            .await
            .ok()
            .map(|rows| rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supervisor(limit: Duration) -> Supervisor {
        let base = Instant::now();
        let beat = |name| {
            Arc::new(Beat {
                name,
                base,
                work_limit: limit,
                due_by_ms: AtomicU64::new(0),
                working: AtomicBool::new(false),
            })
        };
        Supervisor {
            enabled: false,
            watchdog: Some(limit),
            beats: vec![beat("a"), beat("b")],
            ready: AtomicBool::new(false),
            standby: AtomicBool::new(false),
            mailbox_down_since: Mutex::new(None),
        }
    }

    #[test]
    fn a_task_that_stops_marking_is_hung_and_a_waiting_one_is_not() {
        let s = supervisor(Duration::from_millis(30));
        s.beat("a").working();
        s.beat("b").waiting(Duration::from_secs(60));
        assert!(s.hung().is_empty());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(s.hung(), vec!["a"]);
        s.beat("a").working();
        assert!(s.hung().is_empty());
    }

    #[test]
    fn status_lines() {
        let s = supervisor(Duration::from_secs(60));
        s.beat("a").waiting(Duration::from_secs(1));
        s.beat("b").waiting(Duration::from_secs(1));
        let tz = chrono_tz::Europe::Amsterdam;
        assert_eq!(s.status_line("3", tz), "idle, 3 queued");
        s.beat("a").working();
        assert_eq!(s.status_line("0", tz), "working, 0 queued");
        let at = DateTime::parse_from_rfc3339("2026-11-23T09:02:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        s.mailbox_down(at);
        assert_eq!(
            s.status_line("1", tz),
            "mailbox unreachable since 10:02, 1 queued"
        );
        s.mailbox_up();
        assert_eq!(s.status_line("1", tz), "working, 1 queued");
    }
}

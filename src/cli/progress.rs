//! Progress of long command-line work (purge, erase, export): a bar on a terminal, plain
//! lines when stderr is not one (a cron mail, a log). Always on stderr, so stdout stays what
//! `--format json` promises.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use klachtd::service::retention::Progress;

/// Plain lines at most this often, and at every tenth of the work.
const LINE_EVERY: Duration = Duration::from_secs(2);

pub struct CliProgress {
    bar: Option<ProgressBar>,
    plain: Mutex<Plain>,
}

#[derive(Default)]
struct Plain {
    what: String,
    done: u64,
    total: u64,
    /// The tenth last reported, and when.
    tenth: u64,
    at: Option<Instant>,
}

impl CliProgress {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        Self::with_terminal(std::io::stderr().is_terminal())
    }

    fn with_terminal(terminal: bool) -> Self {
        Self {
            bar: terminal
                .then(|| ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())),
            plain: Mutex::new(Plain::default()),
        }
    }

    fn line(p: &Plain) {
        eprintln!("klachtd: {}: {}/{}", p.what, p.done, p.total);
    }
}

impl Progress for CliProgress {
    fn begin(&self, what: &str, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(0);
            bar.set_message(what.to_string());
            if let Ok(style) =
                ProgressStyle::with_template("{msg:8} [{bar:40}] {pos}/{len} ({eta} left)")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            return;
        }
        let mut p = self.plain.lock().unwrap_or_else(|e| e.into_inner());
        *p = Plain {
            what: what.to_string(),
            total,
            at: Some(Instant::now()),
            ..Plain::default()
        };
        Self::line(&p);
    }

    fn advance(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            return;
        }
        let mut p = self.plain.lock().unwrap_or_else(|e| e.into_inner());
        p.done += 1;
        let tenth = (p.done * 10).checked_div(p.total).unwrap_or(10);
        let due = p.at.is_none_or(|t| t.elapsed() >= LINE_EVERY);
        if tenth > p.tenth || due {
            p.tenth = tenth;
            p.at = Some(Instant::now());
            Self::line(&p);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            return;
        }
        let p = self.plain.lock().unwrap_or_else(|e| e.into_inner());
        // The last step already said done/total when it was the tenth that completed it.
        if p.tenth < 10 && p.total > 0 {
            Self::line(&p);
        }
    }
}

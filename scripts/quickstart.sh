#!/usr/bin/env bash
# Quick start on the embedded default (no server needed): builds klachtd, delivers the sample
# mails in examples/mail/ into a fresh Maildir (one "received" per minute, in file order),
# runs `klachtd run --once`, and prints the register, the unfiled mails, the quarantine and
# the outbox. Everything lives in ./demo (removed and made anew on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo is needed: https://rustup.rs" >&2; exit 1; }
cargo build --quiet
bin=target/debug/klachtd
rm -rf demo
mkdir -p demo/maildir/{new,cur,tmp}
i=0
for f in examples/mail/*.eml; do
  i=$((i + 1))
  name="$(date +%s).M${i}P$$.quickstart"
  cp "$f" "demo/maildir/new/$name"
  # The time of receipt is the file's delivery time: one minute apart, in file order.
  touch -d "@$(( $(date +%s) - 3600 + i * 60 ))" "demo/maildir/new/$name"
done
export KLACHTD_CONFIG=config/klachtd.example.toml
export KLACHTD__DATA_DIR=demo/data KLACHTD__MAILBOX__PATH=demo/maildir KLACHTD__OUTGOING__PATH=demo/outbox
"$bin" check
"$bin" run --once
echo; echo "== register (klachtd list)"; "$bin" list
echo; echo "== unfiled (klachtd unfiled list)"; "$bin" unfiled list
echo; echo "== quarantine (klachtd quarantine list)"; "$bin" quarantine list
echo; echo "== outbox (klachtd outbox list)"; "$bin" outbox list
first=$("$bin" list --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["reference"])' 2>/dev/null || true)
if [ -n "$first" ]; then echo; echo "== klachtd show $first"; "$bin" show "$first"; fi
echo; echo "Sent mail is in demo/outbox/ (one .eml per mail). Try: KLACHTD_CONFIG=$KLACHTD_CONFIG KLACHTD__DATA_DIR=demo/data $bin --help"

#!/usr/bin/env bash
# bench_scale.sh: the command line and the scheduler on a large register (issue 8, "Scale and
# load"), on the embedded default (SQLite, Maildir, outbox directory). No mail servers needed.
#
#   1. builds release, makes a register of N complaints (BENCH_SCALE_N, 100,000) by real
#      ingest: generated complaint mails (distinct senders, 1 KB bodies) delivered into a
#      Maildir and taken in by `klachtd run --once`, BENCH_SCALE_CHUNK (2,000) at a time
#      (cur/ is emptied between chunks: a poll costs O(cur/) until the Maildir fix lands,
#      finding 20, which is not what is measured here); each registration writes what it
#      always writes (complaint, message, history, milestones, actions, acknowledgement and
#      receiver notice in the outbox, sent to an outbox directory on tmpfs when there is one);
#   2. times `list --limit 50`, the full `list` (table) and `list --format json`, `register
#      --format csv` (with its peak RSS), `show REF`,
#      `due`, `tick --at` (the scheduler's scan and the outbox run), and the daemon's
#      scheduler wake-up (`next_wakeup`, from its debug log line);
#   3. ingest of BENCH_SCALE_INGEST (5,000) more mails (`run --once`, its "mailbox drained"
#      time) alone, and with `klachtd list --format json` started every second beside it.
#
# Prints a table and appends it to bench-results.md (BENCH_OUT) under "Scale".
# Usage: scripts/bench_scale.sh    Environment: BENCH_SCALE_N, BENCH_SCALE_CHUNK,
#   BENCH_SCALE_INGEST, BENCH_OUT, BENCH_KEEP=1 keeps the work directory, CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${BENCH_SCALE_N:-100000}
CHUNK=${BENCH_SCALE_CHUNK:-2000}
INGEST=${BENCH_SCALE_INGEST:-5000}
OUT=${BENCH_OUT:-$ROOT/bench-results.md}
NOW=2026-11-23T12:00:00+01:00

say() { printf '%s bench_scale: %s\n' "$(date +%T)" "$*" >&2; }

say "release build"
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
WORK=$(mktemp -d /tmp/klachtd-scale.XXXXXX)
cleanup() { if [ "${BENCH_KEEP:-}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
# A copy: another build must not replace the binary in the middle of the run.
cp "${CARGO_TARGET_DIR:-$ROOT/target}/release/klachtd" "$WORK/klachtd"
BIN=$WORK/klachtd
# Several checkouts may share one target directory: make sure this is this checkout's build.
"$BIN" list --help | grep -q -- '--offset' || { say "$BIN is not this checkout's build"; exit 1; }
if [ -d /dev/shm ] && [ -w /dev/shm ]; then OUTBOX=$(mktemp -d /dev/shm/klachtd-scale-outbox.XXXXXX); else OUTBOX=$WORK/outbox; fi
MD=$WORK/maildir
mkdir -p "$MD/new" "$MD/cur" "$MD/tmp" "$WORK/data" "$OUTBOX"
cat > "$WORK/klachtd.toml" <<EOF
data_dir = "$WORK/data"
[organisation]
name = "Bench"
time_zone = "Europe/Amsterdam"
language = "nl"
reference_prefix = "KL"
mail_domain = "example.org"
secret = "bench-secret"
[mailbox]
kind = "maildir"
path = "$MD"
poll_interval = 1
[outgoing]
kind = "file"
path = "$OUTBOX"
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
dir = "$ROOT/config/procedures"
[templates]
dir = "$ROOT/templates"
[logging]
format = "json"
level = "warn"
EOF
k() { KLACHTD_NOW=$NOW "$BIN" --config "$WORK/klachtd.toml" "$@"; }

# deliver FROM COUNT: complaint mails FROM..FROM+COUNT-1 into new/, received in the two hours
# before NOW (mtime), one sender each.
deliver() {
    python3 - "$MD" "$1" "$2" <<'PY'
import os, sys, time
md, start, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = 1795431600  # 2026-11-23T12:00:00+01:00
body = ("Geachte heer, mevrouw,\r\n\r\nDe les van mijn dochter is weer niet doorgegaan en "
        "niemand heeft ons iets laten weten. " * 8)[:1000]
for i in range(start, start + count):
    at = now - 7200 + (i % 7000)
    name = f"{at}.M{i}P1.bench"
    mail = (f"From: Ouder {i} <ouder{i}@school{i % 97}.example.nl>\r\n"
            f"To: service@example.org\r\nSubject: Klacht {i}: les uitgevallen\r\n"
            f"Date: Mon, 23 Nov 2026 09:00:00 +0100\r\nMessage-ID: <bench.{i}@school.example.nl>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
            f"Met vriendelijke groet,\r\nOuder {i}\r\n")
    tmp = os.path.join(md, "tmp", name)
    with open(tmp, "w") as f:
        f.write(mail)
    os.utime(tmp, (at, at))
    os.rename(tmp, os.path.join(md, "new", name))
PY
}

# secs CMD...: wall seconds of a command, output discarded.
secs() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > /dev/null
    t1=$(date +%s.%N)
    python3 -c "print(f'{$t1 - $t0:.3f}')"
}

say "registering $N complaints by ingest, $CHUNK at a time"
t0=$(date +%s)
done_n=0
while [ "$done_n" -lt "$N" ]; do
    n=$(( N - done_n < CHUNK ? N - done_n : CHUNK ))
    deliver "$done_n" "$n"
    k run --once > /dev/null
    find "$MD/cur" -type f -delete
    find "$OUTBOX" -maxdepth 1 -name '*.eml' -delete
    done_n=$(( done_n + n ))
    [ $(( done_n % 20000 )) -eq 0 ] && say "  $done_n registered"
done
build_s=$(( $(date +%s) - t0 ))
count=$(k list --limit 1 --offset $(( N - 1 )) | tail -1)
say "register built in ${build_s} s ($count at offset N-1); database $(du -h "$WORK/data/klachtd.db" | cut -f1)"
REF=$(printf 'KL-2026-%04d' $(( N / 2 )))

say "timing the read commands"
t_limit=$(secs k list --limit 50)
t_list=$(secs k list)
t_json=$(secs k list --format json)
t_register=$(secs k register --format csv --output "$WORK/register.csv")
rss_register=$( { KLACHTD_NOW=$NOW /usr/bin/time -v "$BIN" --config "$WORK/klachtd.toml" register --format csv > /dev/null; } 2>&1 | awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}')
# The analysis report of the year every complaint came in (all N read, charts drawn).
t_report=$(secs k report --period 2026 --output "$WORK/report")
rss_report=$( { KLACHTD_NOW=$NOW /usr/bin/time -v "$BIN" --config "$WORK/klachtd.toml" report --period 2026 --format json > /dev/null; } 2>&1 | awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}')
t_public=$(secs k report --period 2026 --public --output "$WORK/public")
t_show=$(secs k show "$REF")
t_due=$(secs k due)
# The first tick of the day also sends the daily digest (08:00), which reads every open
# complaint's deadlines; the second is the scan alone.
t_tick1=$(secs k tick --at "$NOW")
t_tick2=$(secs k tick --at "$NOW")
rows_json=$(k list --format json | grep -c '"reference"')
# The daemon's wake-up scan: its debug line says how long next_wakeup took.
: > "$WORK/daemon.log"
RUST_LOG=klachtd::service::scheduler=debug KLACHTD_NOW=$NOW "$BIN" --config "$WORK/klachtd.toml" run 2> "$WORK/daemon.log" &
dpid=$!
for _ in $(seq 1 100); do grep -q 'scheduler wake-up computed' "$WORK/daemon.log" && break; sleep 0.1; done
kill -TERM "$dpid"; wait "$dpid" || true
t_wakeup=$(python3 - "$WORK/daemon.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        v = json.loads(line)
    except ValueError:
        continue
    if v.get("fields", {}).get("message") == "scheduler wake-up computed":
        print(f"{v['fields']['seconds']:.4f}"); break
else:
    print("n/a")
PY
)

# ingest_run START: deliver INGEST mails, `run --once` at info level; prints the drain time.
ingest_run() {
    deliver "$1" "$INGEST"
    RUST_LOG=klachtd=info KLACHTD_NOW=$NOW "$BIN" --config "$WORK/klachtd.toml" run --once 2> "$WORK/ingest.log" > /dev/null
    find "$MD/cur" -type f -delete
    find "$OUTBOX" -maxdepth 1 -name '*.eml' -delete
    python3 - "$WORK/ingest.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        v = json.loads(line)
    except ValueError:
        continue
    f = v.get("fields", {})
    if f.get("message") == "mailbox drained":
        print(f"{f['seconds']:.2f}"); break
PY
}

say "ingest of $INGEST mails alone, and with a list every second beside it (3 times each, alternating)"
next=$N
alone_runs=()
beside_runs=()
for _ in 1 2 3; do
    alone_runs+=("$(ingest_run "$next")"); next=$(( next + INGEST ))
    ( while :; do k list --format json > /dev/null; sleep 1; done ) &
    lister=$!
    beside_runs+=("$(ingest_run "$next")"); next=$(( next + INGEST ))
    kill "$lister"; wait "$lister" 2>/dev/null || true
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
rate() { python3 -c "print(f'{$INGEST / $1:.0f}')"; }
alone=$(median "${alone_runs[@]}")
beside=$(median "${beside_runs[@]}")
slow=$(python3 -c "print(f'{($beside / $alone - 1) * 100:+.1f}')")
rm -rf "$OUTBOX"

host="$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
table=$(cat <<EOF

## Scale: $N complaints (bench_scale.sh)

Command: \`scripts/bench_scale.sh\` (BENCH_SCALE_N=$N). Release build, embedded default. The
register was made by real ingest (\`run --once\` on generated complaint mails, $CHUNK a run,
$build_s s in all); the database is $(du -h "$WORK/data/klachtd.db" | cut -f1). Wall times of
one run each, on a shared machine ($host). Target: each under 1 s.

| what | seconds |
|---|---|
| \`list --limit 50\` | $t_limit |
| \`list\` (table, all $N rows) | $t_list |
| \`list --format json\` (all, $rows_json rows) | $t_json |
| \`register --format csv\` (all $N rows, every milestone; peak RSS ${rss_register} MB, target < 5 s and < 128 MB) | $t_register |
| \`report --period 2026 --output DIR\` (all $N complaints, three charts, HTML/text/CSV; peak RSS ${rss_report} MB, target < 5 s and < 128 MB) | $t_report |
| \`report --period 2026 --public --output DIR\` | $t_public |
| \`show $REF\` | $t_show |
| \`due\` | $t_due |
| \`tick --at\`, first of the day (scan, daily digest over every open complaint, outbox) | $t_tick1 |
| \`tick --at\` again (scheduler scan and outbox run) | $t_tick2 |
| daemon wake-up (\`next_wakeup\`, debug log) | $t_wakeup |

Ingest of $INGEST more mails into that register (\`run --once\`, its "mailbox drained" seconds,
three runs each, alternating): alone ${alone_runs[*]} s (median $alone s, $(rate "$alone")
mails/s); with \`klachtd list --format json\` (all $N rows) started every second beside it
${beside_runs[*]} s (median $beside s, $(rate "$beside") mails/s): $slow %.
EOF
)
printf '%s\n' "$table"
printf '%s\n' "$table" >> "$OUT"
say "appended to $OUT"

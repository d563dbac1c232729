#!/usr/bin/env bash
# bench.sh: klachtd's throughput, latency and memory against a real Dovecot + Postfix on
# loopback (scripts/mailstack.sh, mdbox storage), each set against what a plain client does
# on the same stack. Prints a table and writes bench-results.md (BENCH_OUT).
#
#   (a) ingest: N complaints waiting in IMAP (1 KB bodies, every tenth with a 100 KB
#       attachment, distinct senders; appended first, not timed), timed `klachtd run --once`
#       with outgoing kind = "file": IMAP -> registered with the acknowledgement queued (and
#       written as .eml), in mails/s, for N = 1,000 and 10,000;
#   (b) the physical limit on the same mailbox: a plain client (python imaplib, STARTTLS) doing
#       per mail `UID FETCH n BODY.PEEK[]` then `UID STORE n +FLAGS (\Seen)`; target a/b >= 0.5;
#   (c) delivery: acks queued with SMTP unreachable, then a timed `klachtd run --once` that only
#       drains the outbox into the stack's Postfix (STARTTLS), in mails/s, against
#   (d) python smtplib sending the same raw mails over as many connections; target c/d >= 0.8;
#   (e) latency under IDLE: `klachtd run` daemon, one complaint APPENDed at a time, time until
#       its acknowledgement is accepted by an SMTP sink (bench_client.py); p50, p99 over
#       BENCH_LATENCY_N (200) mails; target p99 < 1 s;
#   (f) peak RSS of `klachtd run --once` at N = 10,000 (/usr/bin/time -v); target < 64 MB;
#   (g) staff mail under IDLE: `klachtd run` daemon, 3 complaints registered first (their
#       new-complaint notices taken from the SMTP sink: Reply-To, Message-ID), then one staff
#       reply APPENDed at a time ("#notitie meting N", From the receiver, To the notice's
#       tokened Reply-To, In-Reply-To its Message-ID), time until its confirmation (matched on
#       In-Reply-To) is accepted by the sink; p50, p99 over BENCH_LATENCY_N replies; target
#       p99 < 1 s.
#   (p) PostgreSQL (issue #12), on the bench's own PostgreSQL 15 cluster (scripts/pgcluster.sh
#       with PGCLUSTER_DURABLE=1: fsync, synchronous_commit and full_page_writes on, as
#       PostgreSQL's defaults; loopback TCP, the same disk as the SQLite files):
#       (a_pg) (a) with the database on PostgreSQL, same N and mailbox contents, against (b)
#       run on that mailbox right after; target a_pg/b >= 0.5;
#       (c_pg) (c) with the database on PostgreSQL, against (d) on its outbox's mails;
#       (two) two `klachtd run` daemons on one database ingesting an N backlog (IMAP, file
#       outgoing; BENCH_PG_PAIR_N, default the last of BENCH_NS): seconds from their start to
#       the last mail registered (the JSON log's `ingested` lines, checked against the
#       database), against one daemon doing the same, BENCH_PG_REPEAT (2) times each,
#       alternating; target one/two >= 1.0 (two no slower);
#       (failover) two daemons, one mail APPENDed every 100-200 ms, the leader killed with
#       SIGKILL BENCH_PG_KILLS (3) times (at a random moment of its 2-s renewal period; the
#       killed one restarted as a standby each time): seconds from the kill to the first
#       `ingested` line of a registered mail in the other's log, failover_seconds = 10;
#       target < 10 s.
#       BENCH_PG_PARTS ("ingest delivery two failover") runs only some of them; BENCH_PG_TOP (8):
#       how many of the busiest statements each (a_pg) run lists; BENCH_PG_LOG=1
#       logs every statement (log_min_duration_statement = 0) and summarises, per (a_pg) run,
#       the ingest backend's time in the server and waiting for klachtd between statements
#       (a diagnosis: the logging slows the server, so its figures are not the ones to quote);
#       BENCH_PG_EXPLAIN=MS logs the plans of statements slower than MS ms (auto_explain) and
#       groups them per (a_pg) run by statement and the scans their plans chose.
#       BENCH_PERF=1 samples each ingest run of klachtd with `perf record -g` into that run's
#       work directory (a diagnosis: sampling costs the run time). BENCH_PG_PIN=CPU pins the
#       bench's PostgreSQL cluster (every process; the backends it forks inherit it) to CPU and
#       starts klachtd there: what `CPUAffinity=` in both units does on one VM.
#
# Usage: scripts/bench.sh            (release build in $CARGO_TARGET_DIR, default target/)
# Environment: BENCH_NS ("1000 10000"), BENCH_DELIVERY_N (1000), BENCH_LATENCY_N (200),
#   BENCH_OUT (bench-results.md in the repository), BENCH_KEEP=1 keeps the work directory,
#   BENCH_ONLY ("g", "e g", "a,c", "p": only those parts; b, a' and f come with a, d with c).
#   With BENCH_ONLY the table is only printed, unless BENCH_OUT is set: bench-results.md holds
#   the whole set. Written, BENCH_OUT keeps the sections of other scripts (from its first
#   "## " heading on).
# Needs root (the mail stack, the PostgreSQL cluster), python3, /usr/bin/time, PostgreSQL 15
# (pgcluster.sh installs it). About 20 minutes on 2 cores (part p about 12).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NS=${BENCH_NS:-"1000 10000"}
DELIVERY_N=${BENCH_DELIVERY_N:-1000}
LATENCY_N=${BENCH_LATENCY_N:-200}
ONLY=$(printf '%s' "${BENCH_ONLY:-}" | tr ',' ' ' | sed "s/a'/a/g")
if [ -n "$ONLY" ]; then OUT=${BENCH_OUT:-}; else OUT=${BENCH_OUT:-$ROOT/bench-results.md}; fi
PY=(python3 "$ROOT/scripts/bench_client.py")

say() { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }
die() { say "$*"; exit 1; }
# want PART: whether BENCH_ONLY (unset: everything) asks for PART (a, c, e, g or p).
want() {
    local p
    [ -z "$ONLY" ] && return 0
    for p in $ONLY; do
        case "$p" in
            a | b | f) p=a ;;
            c | d) p=c ;;
            e | g | p) ;;
            *) die "BENCH_ONLY: unknown part $p (a b c d e f g p)" ;;
        esac
        [ "$p" = "$1" ] && return 0
    done
    return 1
}
want none || true   # an unknown part fails here, before the build

[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
say "release build"
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/klachtd
[ -x "$BIN" ] || die "no binary at $BIN"

WORK=$(mktemp -d /tmp/klachtd-bench.XXXXXX)
chmod o+x "$WORK"   # postfix and dovecot run as other users below it
STACK=$WORK/stack
DAEMON_PID=
DAEMON_PIDS=()   # (p): the daemons started there, and the trickle appender
PG_STATE=$WORK/pgcluster   # (p): the bench's own PostgreSQL cluster (pgcluster.sh's state)
cleanup() {
    local pid
    if [ -n "$DAEMON_PID" ]; then kill -TERM "$DAEMON_PID" 2>/dev/null || true; fi
    for pid in "${DAEMON_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${DAEMON_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -d "$PG_STATE" ]; then
        KLACHTD_PGCLUSTER_DIR=$PG_STATE bash "$ROOT/scripts/pgcluster.sh" stop >/dev/null 2>&1 || true
    fi
    bash "$ROOT/scripts/mailstack.sh" stop "$STACK" >/dev/null 2>&1 || true
    if [ "${BENCH_KEEP:-}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
say "starting the mail stack (mdbox) in $STACK"
MAIL_LOCATION='mdbox:~/mdbox' bash "$ROOT/scripts/mailstack.sh" start "$STACK" >/dev/null
# shellcheck disable=SC1091
. "$STACK/stack.env"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
# log_time FILE MESSAGE [AFTER]: the time (epoch seconds) of the first JSON log line with that
# message (stamped after AFTER, epoch seconds, when given); for "ingested", the first of a mail
# registered (outcome Registered, not a duplicate or a threaded mail).
log_time() {
    python3 - "$1" "$2" "${3:-0}" <<'PY'
import json, sys
from datetime import datetime
for line in open(sys.argv[1]):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    fields = event.get("fields", {})
    if fields.get("message") != sys.argv[2]:
        continue
    if sys.argv[2] == "ingested" and not str(fields.get("outcome", "")).startswith("Registered"):
        continue
    t = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
    if t > float(sys.argv[3]):
        print(t)
        break
else:
    sys.exit("no log line " + repr(sys.argv[2]) + " in " + sys.argv[1])
PY
}
calc() { python3 -c "print($1)"; }
now() { date +%s.%N; }

# write_config NAME USER SMTP_PORT|file [TLS]: an installation in $WORK/NAME.
write_config() {
    local name=$1 user=$2 out=$3 tls=${4:-starttls} d=$WORK/$1 outgoing
    mkdir -p "$d"
    if [ "$out" = file ]; then
        outgoing="kind = \"file\"
path = \"$d/outbox-files\"
from = \"$user\""
    else
        outgoing="kind = \"smtp\"
host = \"127.0.0.1\"
port = $out
tls = \"$tls\"
ca_file = \"$CA_FILE\"
from = \"$user\""
    fi
    cat > "$d/klachtd.toml" <<TOML
data_dir = "$d/data"
[organisation]
name = "Benchmark"
time_zone = "Europe/Amsterdam"
language = "nl"
reference_prefix = "KL"
mail_domain = "example.test"
secret = "bench-secret"
[mailbox]
kind = "imap"
host = "127.0.0.1"
port = $IMAP_PORT
tls = "starttls"
ca_file = "$CA_FILE"
username = "$user"
password = "$MAIL_PASSWORD"
folder = "INBOX"
idle = true
poll_interval = 600
[outgoing]
$outgoing
[staff]
admin = ["admin-$name@example.test"]
receiver = ["receiver-$name@example.test"]
director = ["director-$name@example.test"]
management_team = ["mt-$name@example.test"]
[procedure]
preset = "mzo"
dir = "$ROOT/config/procedures"
[templates]
dir = "$ROOT/templates"
[limits]
acknowledgements_per_hour = 1000000
# The new-complaint notice to staff is queued with the acknowledgement at any hour, as it is
# in working hours: without this a run at night or at the weekend queues half the mail (and
# (g), which waits for those notices, fails).
[schedule]
notify_staff_at_once = true
[logging]
format = "json"
level = "info"
TOML
    echo "$d/klachtd.toml"
}

klachtd() { env -u RUST_LOG NO_COLOR=1 "$BIN" "$@"; }

# fill_mailbox N USER TAG: N complaints APPENDed to USER's INBOX (not timed), then a sync, so
# Dovecot's writes of the fixture reach the disk now, not during the timed run (klachtd's
# per-batch syncfs would otherwise pay for them); sets FILL_S and FILL_BYTES.
fill_mailbox() {
    local fill
    fill=$("${PY[@]}" fill --port "$IMAP_PORT" --user "$2" --n "$1" --tag "$3" --attach-every 10)
    FILL_S=$(calc "round($(json seconds <<<"$fill"), 2)")
    FILL_BYTES=$(json bytes <<<"$fill")
    sync
}

# ingest_once N CFG DIR: a timed `run --once` on CFG that must register all N waiting mails
# (output in DIR); sets IG_SECS and IG_RATE (from the start to its "mailbox drained" log line:
# every mail committed with its acknowledgement queued), IG_RUN (the whole run, which then also
# writes the queued mails), IG_RSS (peak, kB) and IG_CPU (user + system seconds of the run).
ingest_once() {
    local n=$1 cfg=$2 d=$3 t0 t1 drained
    t0=$(now)
    local wrap=()
    # A diagnosis, not a figure: BENCH_PERF=1 samples klachtd's CPU (perf record) into
    # $d/perf.data; read it with `perf report -i $d/perf.data --no-children`.
    [ "${BENCH_PERF:-}" = 1 ] && wrap=(perf record -q -F 999 -g -o "$d/perf.data" --)
    # BENCH_PG_PIN=CPU (part p): klachtd started on that CPU (single_cpu keeps it there), as the
    # PostgreSQL cluster is pinned to it below.
    [ -n "${BENCH_PG_PIN:-}" ] && wrap=(taskset -c "$BENCH_PG_PIN" "${wrap[@]}")
    /usr/bin/time -v -o "$d/time.txt" env -u RUST_LOG NO_COLOR=1 "${wrap[@]}" "$BIN" --config "$cfg" run --once \
        >"$d/stdout" 2>"$d/stderr" || die "run --once failed: $(tail -5 "$d/stderr")"
    t1=$(now)
    grep -q "processed $n mail(s): $n registered" "$d/stdout" ||
        die "not all registered: $(cat "$d/stdout")"
    drained=$(log_time "$d/stderr" "mailbox drained")
    IG_SECS=$(calc "round($drained - $t0, 2)")
    IG_RATE=$(calc "round($n / ($drained - $t0), 1)")
    IG_RUN=$(calc "round($t1 - $t0, 2)")
    IG_RSS=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$d/time.txt")
    IG_CPU=$(awk -F: '/(User|System) time \(seconds\)/ {s += $2} END {print s}' "$d/time.txt")
}

# plain_client N USER: (b) on USER's mailbox, its \Seen flags cleared first; sets PL_SECS and
# PL_RATE.
plain_client() {
    local b
    sync   # klachtd's writes reach the disk before, not during, the plain client's run
    b=$("${PY[@]}" fetchflag --port "$IMAP_PORT" --ca "$CA_FILE" --user "$2" --unseen-first)
    [ "$(json mails <<<"$b")" = "$1" ] || die "fetchflag saw $(json mails <<<"$b") mails"
    PL_SECS=$(calc "round($(json seconds <<<"$b"), 2)")
    PL_RATE=$(calc "round($1 / $(json seconds <<<"$b"), 1)")
}

declare -A A_RATE A_SECS RUN_SECS RSS B_RATE B_SECS FILL_SECS
if want a; then
for n in $NS; do
    user="bench-a$n-$RANDOM@example.test"
    cfg=$(write_config "ingest-$n" "$user" file)
    say "(a) N=$n: appending (not timed)"
    fill_mailbox "$n" "$user" "a$n-$RANDOM"
    FILL_SECS[$n]=$FILL_S
    say "(a) N=$n: appended $FILL_BYTES bytes in ${FILL_SECS[$n]} s; klachtd run --once"
    d=$WORK/ingest-$n
    ingest_once "$n" "$cfg" "$d"
    A_SECS[$n]=$IG_SECS A_RATE[$n]=$IG_RATE RUN_SECS[$n]=$IG_RUN RSS[$n]=$IG_RSS
    say "(a) N=$n: ingest ${A_SECS[$n]} s, ${A_RATE[$n]} mails/s (whole run ${RUN_SECS[$n]} s, CPU $IG_CPU s), peak RSS ${RSS[$n]} kB; $(cat "$d/stdout")"

    say "(b) N=$n: plain client fetch + flag, one command at a time"
    plain_client "$n" "$user"
    B_SECS[$n]=$PL_SECS B_RATE[$n]=$PL_RATE
    say "(b) N=$n: ${B_SECS[$n]} s, ${B_RATE[$n]} mails/s"
done

# (a') the same ingest with [runtime] single_cpu = false: what pinning to one CPU buys.
n=${NS%% *}
user="bench-u$n-$RANDOM@example.test"
cfg=$(write_config "unpinned-$n" "$user" file)
fill_mailbox "$n" "$user" "u$n-$RANDOM"
d=$WORK/unpinned-$n
t0=$(now)
KLACHTD__RUNTIME__SINGLE_CPU=false klachtd --config "$cfg" run --once >"$d/stdout" 2>"$d/stderr" ||
    die "run --once failed: $(tail -5 "$d/stderr")"
drained=$(log_time "$d/stderr" "mailbox drained")
U_SECS=$(calc "round($drained - $t0, 2)")
U_RATE=$(calc "round($n / ($drained - $t0), 1)")
say "(a') N=$n with single_cpu = false: ingest $U_SECS s, $U_RATE mails/s"
fi

postfix_idle() {
    for _ in $(seq 1 240); do
        postqueue -c "$POSTFIX_DIR" -p 2>/dev/null | grep -q "Mail queue is empty" && return 0
        sleep 0.5
    done
}

# delivery N CFG CFG0 DIR SOURCE: (c) and (d). N complaints APPENDed and registered by a
# `run --once` with SMTP unreachable (a closed port), so their mails are queued; then a timed
# `run --once` that only drains the outbox into Postfix; then python smtplib sending the same
# raw mails (from SOURCE: the SQLite file, or `pg:DB` for a PostgreSQL database) over as many
# connections. CFG0: an installation with nothing to do, for the fixed cost of a run. Sets
# DL_SENT DL_SECS DL_RATE DL_CONN DL_FIXED, and DD_SECS DD_RATE for (d).
delivery() {
    local n=$1 cfg=$2 cfg0=$3 d=$4 source=$5 user closed queued t0 t1 conn_before conn_after
    local dres from conns
    user=$(sed -n 's/^username = "\(.*\)"$/\1/p' "$cfg")
    "${PY[@]}" fill --port "$IMAP_PORT" --user "$user" --n "$n" --tag "c-$RANDOM" --attach-every 10 >/dev/null
    closed=$(free_port)
    # Each mail is tried once against the closed port and due again RETRY seconds later. A
    # retry shorter than one pass over the outbox keeps `run --once` trying (on PostgreSQL on
    # a loaded machine a pass over 2,000 mails took ~5 s: with 1 s it went on for 90 s).
    local retry=10
    KLACHTD__OUTGOING__PORT=$closed KLACHTD__OUTBOX__RETRY_INITIAL_SECONDS=$retry \
        KLACHTD__OUTBOX__RETRY_MAX_SECONDS=$retry klachtd --config "$cfg" run --once \
        >"$d/queue.stdout" 2>"$d/queue.stderr" || die "queueing failed: $(tail -5 "$d/queue.stderr")"
    t1=$(now)
    grep -q "processed $n mail(s): $n registered" "$d/queue.stdout" || die "$(cat "$d/queue.stdout")"
    queued=$(klachtd --config "$cfg" outbox list --status queued --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
    sleep "$(calc "max(0, $t1 + $retry + 0.2 - $(now))")"   # all due again
    # An empty run (nothing waiting, nothing due) for the fixed cost of a run --once: the
    # second one, on a database that exists already, as the timed run's does.
    klachtd --config "$cfg0" run --once >/dev/null 2>&1
    t0=$(now); klachtd --config "$cfg0" run --once >/dev/null 2>&1; t1=$(now)
    DL_FIXED=$(calc "round($t1 - $t0, 3)")
    conn_before=$(grep -c "smtpd.*: connect from" "$STACK/postfix/postfix.log" || true)
    say "(c) draining $queued queued mails into Postfix"
    t0=$(now)
    klachtd --config "$cfg" run --once >"$d/send.stdout" 2>"$d/send.stderr" || die "send failed"
    t1=$(now)
    conn_after=$(grep -c "smtpd.*: connect from" "$STACK/postfix/postfix.log" || true)
    DL_CONN=$((conn_after - conn_before))
    DL_SENT=$(sed -n 's/.*outbox: \([0-9]*\) sent.*/\1/p' "$d/send.stdout")
    [ "$DL_SENT" = "$queued" ] || die "sent $DL_SENT of $queued: $(cat "$d/send.stdout")"
    DL_SECS=$(calc "round($t1 - $t0, 2)")
    DL_RATE=$(calc "round($DL_SENT / ($t1 - $t0), 1)")
    say "(c) $DL_SENT mails in $DL_SECS s over $DL_CONN connection(s): $DL_RATE mails/s"
    postfix_idle
    conns=$((DL_CONN > 0 ? DL_CONN : 1))
    case "$source" in
        pg:*)
            pgq "${source#pg:}" "SELECT envelope_from, recipients, raw FROM outbox ORDER BY id LIMIT $DL_SENT" \
                >"$d/outbox.tsv"
            from=(--tsv "$d/outbox.tsv") ;;
        *) from=(--db "$source") ;;
    esac
    say "(d) python smtplib, the same $DL_SENT raw mails over $conns connection(s)"
    dres=$("${PY[@]}" smtpsend --port "$SMTP_PORT" --ca "$CA_FILE" "${from[@]}" \
        --n "$DL_SENT" --connections "$conns")
    DD_SECS=$(calc "round($(json seconds <<<"$dres"), 2)")
    DD_RATE=$(calc "round($(json sent <<<"$dres") / $(json seconds <<<"$dres"), 1)")
    say "(d) $(json sent <<<"$dres") mails in $DD_SECS s: $DD_RATE mails/s"
    postfix_idle
}

# (c) delivery: queue with SMTP unreachable (a closed port), then drain into Postfix.
if want c; then
user="bench-c-$RANDOM@example.test"
cfg=$(write_config delivery "$user" "$SMTP_PORT")
cfg0=$(write_config empty "bench-c0-$RANDOM@example.test" "$SMTP_PORT")
d=$WORK/delivery
say "(c) queueing $DELIVERY_N acknowledgements with SMTP unreachable"
delivery "$DELIVERY_N" "$cfg" "$cfg0" "$d" "$d/data/klachtd.db"
C_SENT=$DL_SENT C_SECS=$DL_SECS C_RATE=$DL_RATE C_CONN=$DL_CONN C_FIXED=$DL_FIXED
D_SECS=$DD_SECS D_RATE=$DD_RATE
fi

# with_daemon DIR CFG OUT CLIENT ARGS...: start bench_client.py CLIENT (an SMTP sink that
# waits for DIR/go), then `klachtd run` on CFG; go once the daemon idles; the client's JSON
# goes to OUT; the daemon is stopped when the client is done.
with_daemon() {
    local d=$1 cfg=$2 out=$3 client
    shift 3
    "${PY[@]}" "$@" --ready "$d/ready" --go "$d/go" >"$out" &
    client=$!
    for _ in $(seq 1 100); do [ -e "$d/ready" ] && break; sleep 0.1; done
    # The binary itself in the background, not the klachtd() function: a function runs in a
    # subshell, and SIGTERM to that subshell's PID would leave the daemon running.
    env -u RUST_LOG NO_COLOR=1 "$BIN" --config "$cfg" run >"$d/daemon.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 1 100); do grep -q "klachtd running" "$d/daemon.log" && break; sleep 0.1; done
    sleep 2   # drained the empty mailbox, IDLE
    touch "$d/go"
    wait "$client" || die "$1 run failed: $(tail -5 "$d/daemon.log")"
    kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || true; DAEMON_PID=
}
ms() { calc "round($(json "$1" <"$2") * 1000)"; }

# (e) latency under IDLE, against an SMTP sink that timestamps each accepted DATA.
if want e; then
user="bench-e-$RANDOM@example.test"
sink=$(free_port)
cfg=$(write_config latency "$user" "$sink" none)
d=$WORK/latency
say "(e) latency over $LATENCY_N mails, one at a time"
with_daemon "$d" "$cfg" "$d/latency.json" latency --port "$IMAP_PORT" --user "$user" \
    --sink-port "$sink" --n "$LATENCY_N" --tag "e-$RANDOM"
E_P50=$(ms p50 "$d/latency.json")
E_P99=$(ms p99 "$d/latency.json")
E_MAX=$(ms max "$d/latency.json")
say "(e) p50 $E_P50 ms, p99 $E_P99 ms, max $E_MAX ms"
fi

# (g) staff mail under IDLE: a staff reply APPENDed -> its confirmation accepted by the sink.
if want g; then
user="bench-g-$RANDOM@example.test"
sink=$(free_port)
cfg=$(write_config staffreply "$user" "$sink" none)
d=$WORK/staffreply
G_COMPLAINTS=3
say "(g) staff reply -> confirmation over $LATENCY_N replies on $G_COMPLAINTS complaints, one at a time"
with_daemon "$d" "$cfg" "$d/staffreply.json" staffreply --port "$IMAP_PORT" --user "$user" \
    --receiver "receiver-staffreply@example.test" --complaints "$G_COMPLAINTS" \
    --sink-port "$sink" --n "$LATENCY_N" --tag "g-$RANDOM"
G_P50=$(ms p50 "$d/staffreply.json")
G_P99=$(ms p99 "$d/staffreply.json")
G_MAX=$(ms max "$d/staffreply.json")
# Every reply was applied: one note each in the register.
notes=$(klachtd --config "$cfg" list --format json | python3 -c 'import json,sys; print(" ".join(r["reference"] for r in json.load(sys.stdin)))')
G_NOTES=0
for r in $notes; do
    c=$(klachtd --config "$cfg" show "$r" --format json |
        python3 -c 'import json,sys; print(sum(1 for h in json.load(sys.stdin)["history"] if h["event"] == "note" and "meting" in (h.get("detail") or "")))')
    G_NOTES=$((G_NOTES + c))
done
[ "$G_NOTES" = "$LATENCY_N" ] || die "(g) $G_NOTES notes recorded for $LATENCY_N staff replies"
say "(g) p50 $G_P50 ms, p99 $G_P99 ms, max $G_MAX ms ($G_NOTES notes recorded)"
fi

# ---- (p) PostgreSQL (issue #12) ----
PGBIN=/usr/lib/postgresql/15/bin
PG_PARTS=${BENCH_PG_PARTS:-"ingest delivery two failover"}
PAIR_N=${BENCH_PG_PAIR_N:-$(echo "$NS" | awk '{print $NF}')}
PG_REPEAT=${BENCH_PG_REPEAT:-2}
PG_KILLS=${BENCH_PG_KILLS:-3}
pg_part() { case " $PG_PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# pgq DB SQL: a query as klachtd's role over TCP (unaligned, tab-separated).
pgq() {
    PGPASSWORD=$KLACHTD_TEST_PG_PASSWORD "$PGBIN/psql" "$KLACHTD_TEST_PG/$1" -XAtq -F $'\t' \
        -v ON_ERROR_STOP=1 -c "$2"
}
# pgsu DB SQL: as the superuser, through the cluster's own socket (extensions, statistics).
pgsu() {
    as_postgres "$PGBIN/psql" -h "$PG_CLUSTER_DIR/sock" -p "$PG_PORT" -U postgres -d "$1" -XAtq \
        -F $'\t' -v ON_ERROR_STOP=1 -c "$2"
}
# pg_install CFG DB: a new database DB, CFG's [database]; the first `list` makes its tables,
# as an installation's are made before it takes mail (not timed; the seconds in PG_MIGRATE).
pg_install() {
    local t0
    pgq postgres "CREATE DATABASE $2" >/dev/null
    printf '[database]\nurl = "%s/%s"\n' "$KLACHTD_TEST_PG" "$2" >>"$1"
    t0=$(now)
    klachtd --config "$1" list --format json >/dev/null || die "cannot open database $2"
    PG_MIGRATE=$(calc "round($(now) - $t0, 2)")
}
# pg_stats_reset DB / pg_stats DB FILE: the server's side of a run. pg_stats sets PS_COMMITS
# (transactions committed in DB), PS_WALSYNC (WAL flushes, cluster-wide), PS_WALSYNC_MS,
# PS_CALLS and PS_EXEC_MS (statements executed in DB and their execution time, from
# pg_stat_statements, COMMIT's WAL flush included) and writes the top statements by total time
# to FILE (calls, total ms, mean ms, statement).
pg_stats_reset() {
    pgsu "$1" "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
    pgsu "$1" "SELECT pg_stat_statements_reset(), pg_stat_reset(), pg_stat_reset_shared('wal')" >/dev/null
}
pg_stats() {
    sleep 1   # a backend reports its counters when its connection ends, or within a second
    PS_COMMITS=$(pgsu "$1" "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    read -r PS_WALSYNC PS_WALSYNC_MS <<<"$(pgsu "$1" "SELECT wal_sync, round(wal_sync_time) FROM pg_stat_wal")"
    read -r PS_CALLS PS_EXEC_MS <<<"$(pgsu "$1" "SELECT sum(calls), round(sum(total_exec_time)) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())")"
    pgsu "$1" "SELECT calls, round(total_exec_time), round(mean_exec_time::numeric, 3),
                      left(regexp_replace(query, '\s+', ' ', 'g'), 90)
               FROM pg_stat_statements
               WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               ORDER BY total_exec_time DESC LIMIT ${BENCH_PG_TOP:-8}" >"$2"
}
# pg_cpu: CPU seconds (user + system) the cluster's processes have used so far: the
# postmaster, its live children, and the children it reaped (backends of ended connections).
pg_cpu() {
    python3 - "$PG_CLUSTER_DIR/data/postmaster.pid" <<'PY'
import os, sys
master = int(open(sys.argv[1]).readline())
tick = os.sysconf("SC_CLK_TCK")
def fields(pid):
    stat = open(f"/proc/{pid}/stat").read()
    return stat[stat.rindex(")") + 2 :].split()
f = fields(master)
total = sum(int(x) for x in f[11:15])  # utime stime cutime cstime
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != master:
        try:
            f = fields(pid)
        except OSError:
            continue
        if int(f[1]) == master:
            total += int(f[11]) + int(f[12])
print(round(total / tick, 2))
PY
}
# start_daemon CFG LOG: `klachtd run` in the background (the binary itself, see with_daemon);
# its PID in STARTED.
start_daemon() {
    env -u RUST_LOG NO_COLOR=1 "$BIN" --config "$1" run >"$2" 2>&1 &
    STARTED=$!
    DAEMON_PIDS+=("$STARTED")
}
# forget PID: a process that ended is no longer one to stop in cleanup (its PID may be reused).
forget() {
    local pid kept=()
    for pid in "${DAEMON_PIDS[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
    DAEMON_PIDS=("${kept[@]}")
}
stop_daemons() {
    local pid
    for pid; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid; do wait "$pid" 2>/dev/null || true; forget "$pid"; done
}
# wait_log FILE TEXT SECONDS: until FILE has a line containing TEXT.
wait_log() {
    local until=$((SECONDS + $3))
    until grep -qF "$2" "$1" 2>/dev/null; do
        [ "$SECONDS" -lt "$until" ] || die "no \"$2\" in $1 within $3 s: $(tail -5 "$1")"
        sleep 0.1
    done
}
# registered LOG...: "COUNT LAST" over the JSON logs: mails registered (`ingested` lines with
# outcome Registered; a line is written just before its batch commits) and the epoch time of
# the last of them.
registered() {
    python3 - "$@" <<'PY'
import json, sys
from datetime import datetime
count, last = 0, 0.0
for name in sys.argv[1:]:
    for line in open(name):
        if '"ingested"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        fields = event.get("fields", {})
        if fields.get("message") == "ingested" and str(fields.get("outcome", "")).startswith("Registered"):
            count += 1
            last = max(last, datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp())
print(count, last)
PY
}
# pg_log_summary DB OFFSET: with BENCH_PG_LOG=1 (every statement logged with its duration), a
# summary of the server log from byte OFFSET on, for DB's busiest backend: its protocol steps
# (parse, bind, execute), the time they took, and the time the backend waited for the client
# between them (our side, the network, the scheduler).
pg_log_summary() {
    python3 - "$PG_CLUSTER_DIR/postgres.log" "$2" "$1" <<'PY'
import re, sys
from collections import Counter, defaultdict
from datetime import datetime
line_re = re.compile(r"^(\S+ \S+) \S+ \[(\d+)\] (\S*) LOG:  duration: ([\d.]+) ms  (parse|bind|execute|statement)")
steps = defaultdict(list)
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2]))
    for raw in f:
        m = line_re.match(raw.decode("utf-8", "replace"))
        if not m or m.group(3) != sys.argv[3]:
            continue
        end = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        ms = float(m.group(4))
        steps[m.group(2)].append((end - ms / 1000, end, m.group(5)))
if not steps:
    sys.exit("no logged statements for " + sys.argv[3])
pid, rows = max(steps.items(), key=lambda kv: len(kv[1]))
rows.sort()
kinds = Counter(r[2] for r in rows)
busy = sum(r[1] - r[0] for r in rows)
waited = sum(max(0.0, b[0] - a[1]) for a, b in zip(rows, rows[1:]))
span = rows[-1][1] - rows[0][0]
print(f"backend {pid}: {len(rows)} protocol steps ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}) "
      f"over {span:.2f} s: {busy:.2f} s in the server, {waited:.2f} s waiting for the client between them; "
      f"{len(steps) - 1} other backend(s) of this database")
PY
}
# pg_explain_summary DB OFFSET: with BENCH_PG_EXPLAIN, the slow statements auto_explain logged
# from byte OFFSET on, grouped by statement and the scans of their plan (node type, index).
pg_explain_summary() {
    python3 - "$PG_CLUSTER_DIR/postgres.log" "$2" "$1" <<'PY'
import json, re, sys
from collections import defaultdict
head = re.compile(r"^\S+ \S+ \S+ \[\d+\] (\S*) LOG:  duration: ([\d.]+) ms  plan:$")
groups = defaultdict(lambda: [0, 0.0])
def scans(node, out):
    kind = node.get("Node Type", "")
    if "Scan" in kind:
        out.append(kind + (" " + node["Index Name"] if "Index Name" in node else "") +
                   (" " + node["Relation Name"] if "Relation Name" in node and "Index Name" not in node else ""))
    for child in node.get("Plans", []):
        scans(child, out)
    return out
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2]))
    lines = f.read().decode("utf-8", "replace").split("\n")
i = 0
while i < len(lines):
    m = head.match(lines[i])
    i += 1
    if not m or m.group(1) != sys.argv[3]:
        continue
    body = []
    while i < len(lines) and not re.match(r"^\S+ \S+ \S+ \[", lines[i]):
        body.append(lines[i])
        i += 1
    try:
        plan = json.loads("\n".join(body))
    except ValueError:
        continue
    query = " ".join(plan.get("Query Text", "").split())[:70]
    key = (query, ", ".join(scans(plan["Plan"], [])))
    groups[key][0] += 1
    groups[key][1] += float(m.group(2))
for (query, plan), (count, ms) in sorted(groups.items(), key=lambda kv: -kv[1][1])[:12]:
    print(f"    {count}\t{ms:.0f}\t{query}\t{plan}")
PY
}
# pg_round_trip: the mean latency of `SELECT 1` over the same loopback TCP, one client, 3 s
# (pgbench): one round trip to the server as the machine is loaded now.
pg_round_trip() {
    printf 'SELECT 1;\n' >"$WORK/select1.sql"
    PGPASSWORD=$KLACHTD_TEST_PG_PASSWORD "$PGBIN/pgbench" -n -c 1 -T 3 -f "$WORK/select1.sql" \
        "$KLACHTD_TEST_PG/postgres" 2>/dev/null | sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p'
}
LEADS="this instance leads: it watches the mailbox and runs the scheduler"
STANDBY="standby: another instance leads"

declare -A PA_RATE PA_SECS PA_RUN PA_RSS PA_MIGRATE PB_RATE PB_SECS PA_COMMITS PA_WALSYNC PA_WALSYNC_MS
declare -A PA_CALLS PA_EXEC_MS PA_CPU PA_PGCPU
declare -A PI_SECS PI_SENT PI_SPLIT
FO_TIMES=() FO_LEASE=()
if want p; then
say "(p) starting the bench's own PostgreSQL 15 cluster (fsync, synchronous_commit, full_page_writes on)"
pg_conf="shared_preload_libraries = 'pg_stat_statements'
track_wal_io_timing = on"
if [ "${BENCH_PG_LOG:-}" = 1 ]; then
    # A diagnosis, not a figure: logging every statement costs the server time.
    pg_conf="$pg_conf
log_min_duration_statement = 0
log_line_prefix = '%m [%p] %d '"
fi
if [ -n "${BENCH_PG_EXPLAIN:-}" ]; then
    # A diagnosis: the plan of every statement slower than BENCH_PG_EXPLAIN ms goes to the log.
    pg_conf="$pg_conf
session_preload_libraries = 'auto_explain'
auto_explain.log_min_duration = '${BENCH_PG_EXPLAIN}ms'
auto_explain.log_format = 'json'
log_line_prefix = '%m [%p] %d '"
fi
KLACHTD_PGCLUSTER_DIR=$PG_STATE PGCLUSTER_DURABLE=1 PGCLUSTER_PORT=$(free_port) \
    PGCLUSTER_CONF=$pg_conf bash "$ROOT/scripts/pgcluster.sh" start >/dev/null
# shellcheck disable=SC1091
. "$PG_STATE/env"   # KLACHTD_TEST_PG, KLACHTD_TEST_PG_PASSWORD
# shellcheck disable=SC1091
. "$PG_STATE/cluster"   # CLUSTER_DIR, PORT
PG_CLUSTER_DIR=$CLUSTER_DIR PG_PORT=$PORT
if [ -n "${BENCH_PG_PIN:-}" ]; then
    # Every process of the cluster on one CPU (the backends it forks later inherit it), the
    # one klachtd is started on: a statement's hand-over to the backend and back is then a
    # wake-up on the same CPU instead of one across CPUs.
    pg_master=$(head -1 "$PG_CLUSTER_DIR/data/postmaster.pid")
    for pid in $pg_master $(pgrep -P "$pg_master"); do taskset -a -p -c "$BENCH_PG_PIN" "$pid" >/dev/null; done
    say "(p) PostgreSQL's processes and klachtd pinned to CPU $BENCH_PG_PIN"
fi
export KLACHTD__DATABASE__PASSWORD=$KLACHTD_TEST_PG_PASSWORD
PG_VERSION=$(pgq postgres "SHOW server_version")
PG_SETTINGS=$(pgq postgres "SELECT string_agg(name || ' = ' || setting, ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'shared_buffers')")
say "(p) PostgreSQL $PG_VERSION: $PG_SETTINGS"

if pg_part ingest; then
for n in $NS; do
    user="bench-pa$n-$RANDOM@example.test"
    cfg=$(write_config "pg-ingest-$n" "$user" file)
    d=$WORK/pg-ingest-$n
    pg_install "$cfg" "ingest_$n"
    PA_MIGRATE[$n]=$PG_MIGRATE
    pg_stats_reset "ingest_$n"
    say "(a_pg) N=$n: appending (not timed)"
    fill_mailbox "$n" "$user" "pa$n-$RANDOM"
    say "(a_pg) N=$n: appended $FILL_BYTES bytes in $FILL_S s; klachtd run --once on PostgreSQL"
    log_offset=$(stat -c %s "$PG_CLUSTER_DIR/postgres.log")
    cpu0=$(pg_cpu)
    ingest_once "$n" "$cfg" "$d"
    PA_PGCPU[$n]=$(calc "round($(pg_cpu) - $cpu0, 2)")
    if [ "${BENCH_PG_LOG:-}" = 1 ]; then
        say "(a_pg) N=$n, statement log: $(pg_log_summary "ingest_$n" "$log_offset")"
    fi
    if [ -n "${BENCH_PG_EXPLAIN:-}" ]; then
        say "(a_pg) N=$n, statements over ${BENCH_PG_EXPLAIN} ms by plan (count, total ms, statement, scans):"
        pg_explain_summary "ingest_$n" "$log_offset" >&2
    fi
    PA_SECS[$n]=$IG_SECS PA_RATE[$n]=$IG_RATE PA_RUN[$n]=$IG_RUN PA_RSS[$n]=$IG_RSS
    pg_stats "ingest_$n" "$d/statements.tsv"
    PA_COMMITS[$n]=$PS_COMMITS PA_WALSYNC[$n]=$PS_WALSYNC PA_WALSYNC_MS[$n]=$PS_WALSYNC_MS
    PA_CALLS[$n]=$PS_CALLS PA_EXEC_MS[$n]=$PS_EXEC_MS PA_CPU[$n]=$IG_CPU
    say "(a_pg) N=$n: ingest ${PA_SECS[$n]} s, ${PA_RATE[$n]} mails/s (whole run ${PA_RUN[$n]} s, CPU klachtd $IG_CPU s, PostgreSQL ${PA_PGCPU[$n]} s), peak RSS ${PA_RSS[$n]} kB; server: $PS_COMMITS commits, $PS_WALSYNC WAL flushes ($PS_WALSYNC_MS ms), $PS_CALLS statements in $PS_EXEC_MS ms; $(cat "$d/stdout")"
    say "(a_pg) N=$n: top statements (calls, total ms, mean ms):"
    sed 's/^/    /' "$d/statements.tsv" >&2
    say "(b) N=$n: plain client on the same mailbox"
    plain_client "$n" "$user"
    PB_SECS[$n]=$PL_SECS PB_RATE[$n]=$PL_RATE
    say "(b) N=$n: ${PB_SECS[$n]} s, ${PB_RATE[$n]} mails/s"
done
PG_RTT=$(pg_round_trip)
say "(a_pg) one round trip (SELECT 1, pgbench, one client): $PG_RTT ms"
# (a_pg') as (a'): the same ingest on PostgreSQL with [runtime] single_cpu = false.
n=${NS%% *}
user="bench-pu$n-$RANDOM@example.test"
cfg=$(write_config "pg-unpinned-$n" "$user" file)
d=$WORK/pg-unpinned-$n
pg_install "$cfg" "unpinned_$n"
fill_mailbox "$n" "$user" "pu$n-$RANDOM"
KLACHTD__RUNTIME__SINGLE_CPU=false ingest_once "$n" "$cfg" "$d"
PU_SECS=$IG_SECS PU_RATE=$IG_RATE
say "(a_pg') N=$n with single_cpu = false: ingest $PU_SECS s, $PU_RATE mails/s"
fi

if pg_part delivery; then
user="bench-pc-$RANDOM@example.test"
cfg=$(write_config pg-delivery "$user" "$SMTP_PORT")
pg_install "$cfg" delivery
cfg0=$(write_config pg-empty "bench-pc0-$RANDOM@example.test" "$SMTP_PORT")
pg_install "$cfg0" empty
d=$WORK/pg-delivery
say "(c_pg) queueing $DELIVERY_N acknowledgements with SMTP unreachable, on PostgreSQL"
delivery "$DELIVERY_N" "$cfg" "$cfg0" "$d" pg:delivery
CP_SENT=$DL_SENT CP_SECS=$DL_SECS CP_RATE=$DL_RATE CP_CONN=$DL_CONN CP_FIXED=$DL_FIXED
DP_SECS=$DD_SECS DP_RATE=$DD_RATE
fi

# (two) K daemons on one database, an N backlog waiting: from their start to the last mail
# registered, and to the outbox empty (every mail written as .eml).
pair_run() {
    local k=$1 r=$2 n=$PAIR_N user cfg d db t0 until pids=() logs=() i count last sent_at split
    user="bench-pi$k$r-$RANDOM@example.test"
    cfg=$(write_config "pg-inst$k-$r" "$user" file)
    d=$WORK/pg-inst$k-$r
    db=inst${k}_$r
    pg_install "$cfg" "$db"
    fill_mailbox "$n" "$user" "pi$k$r-$RANDOM"
    say "(two) run $r, $k daemon(s): $n mails waiting"
    t0=$(now)
    for i in $(seq 1 "$k"); do
        start_daemon "$cfg" "$d/daemon$i.log"
        pids+=("$STARTED") logs+=("$d/daemon$i.log")
    done
    until=$((SECONDS + 900))
    # Polled with grep (cheap beside the daemons on 2 cores); the times come from the log.
    while :; do
        count=$(cat "${logs[@]}" | grep -F '"ingested"' | grep -c 'Registered' || true)
        [ "$count" -ge "$n" ] && break
        [ "$SECONDS" -lt "$until" ] || die "(two) $count of $n registered after 900 s"
        for i in "${pids[@]}"; do
            kill -0 "$i" 2>/dev/null || die "(two) a daemon stopped: $(tail -5 "${logs[@]}")"
        done
        sleep 0.5
    done
    read -r count last <<<"$(registered "${logs[@]}")"
    while [ "$(pgq "$db" "SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending')")" != 0 ]; do
        [ "$SECONDS" -lt "$until" ] || die "(two) the outbox did not empty within 900 s"
        sleep 0.25
    done
    sent_at=$(now)
    [ "$(pgq "$db" "SELECT count(*) FROM complaints")" = "$n" ] ||
        die "(two) the database holds $(pgq "$db" "SELECT count(*) FROM complaints") complaints, not $n"
    [ "$count" = "$n" ] || die "(two) $count registrations logged for $n mails"
    split=""
    for i in "${logs[@]}"; do split="$split${split:+/}$(registered "$i" | cut -d' ' -f1)"; done
    stop_daemons "${pids[@]}"
    PI_SECS[$k,$r]=$(calc "round($last - $t0, 2)")
    PI_SENT[$k,$r]=$(calc "round($sent_at - $t0, 2)")
    PI_SPLIT[$k,$r]=$split
    say "(two) run $r, $k daemon(s): all $n registered after ${PI_SECS[$k,$r]} s (registered by each: $split), outbox empty after ${PI_SENT[$k,$r]} s"
}
median() { python3 -c "import statistics, sys; print(round(statistics.median(map(float, sys.argv[1:])), 2))" "$@"; }
if pg_part two; then
for r in $(seq 1 "$PG_REPEAT"); do
    pair_run 1 "$r"
    pair_run 2 "$r"
done
ONE=() TWO=() ONE_SENT=() TWO_SENT=()
for r in $(seq 1 "$PG_REPEAT"); do
    ONE+=("${PI_SECS[1,$r]}") TWO+=("${PI_SECS[2,$r]}")
    ONE_SENT+=("${PI_SENT[1,$r]}") TWO_SENT+=("${PI_SENT[2,$r]}")
done
PI_ONE=$(median "${ONE[@]}") PI_TWO=$(median "${TWO[@]}")
PI_ONE_SENT=$(median "${ONE_SENT[@]}") PI_TWO_SENT=$(median "${TWO_SENT[@]}")
fi

# (failover) two daemons, a trickle of mail, the leader killed PG_KILLS times.
if pg_part failover; then
user="bench-pf-$RANDOM@example.test"
cfg=$(write_config pg-failover "$user" file)
d=$WORK/pg-failover
pg_install "$cfg" failover
declare -A LOG_OF   # daemon PID -> its log
start_daemon "$cfg" "$d/i0.log"; LOG_OF[$STARTED]=$d/i0.log
wait_log "$d/i0.log" "$LEADS" 60
start_daemon "$cfg" "$d/i1.log"; LOG_OF[$STARTED]=$d/i1.log
wait_log "$d/i1.log" "$STANDBY" 60
"${PY[@]}" trickle --port "$IMAP_PORT" --user "$user" --tag "pf-$RANDOM" --stop "$d/stop" \
    --log "$d/trickle.log" >"$d/trickle.json" &
TRICKLE=$!
DAEMON_PIDS+=("$TRICKLE")
until [ "$(registered "$d/i0.log" | cut -d' ' -f1)" -ge 10 ]; do sleep 0.2; done
for k in $(seq 1 "$PG_KILLS"); do
    # A random moment of the leader's renewal period (0.2 x failover_seconds = 2 s).
    sleep "$(python3 -c 'import random; print(round(random.uniform(0, 2), 2))')"
    leader=$(klachtd --config "$cfg" status --format json | python3 -c '
import json, sys
lease = json.load(sys.stdin)["leader"]
print(lease["instance"].split("/")[1] if lease and not lease["expired"] else "")')
    if [ -z "$leader" ] || [ -z "${LOG_OF[$leader]:-}" ]; then
        die "(failover) no leader among ours: ${leader:-none}"
    fi
    t_kill=$(now)
    kill -KILL "$leader"
    wait "$leader" 2>/dev/null || true
    forget "$leader"
    unset "LOG_OF[$leader]"
    other=${!LOG_OF[*]}
    other_log=${LOG_OF[$other]}
    until=$((SECONDS + 60))
    until first=$(log_time "$other_log" ingested "$t_kill" 2>/dev/null); do
        [ "$SECONDS" -lt "$until" ] || die "(failover) nothing registered by $other within 60 s of the kill"
        sleep 0.1
    done
    leads=$(log_time "$other_log" "$LEADS" "$t_kill")
    FO_TIMES+=("$(calc "round($first - $t_kill, 2)")")
    FO_LEASE+=("$(calc "round($leads - $t_kill, 2)")")
    say "(failover) kill $k: ${LOG_OF[$other]##*/} leads ${FO_LEASE[-1]} s after the kill, its first mail registered after ${FO_TIMES[-1]} s"
    start_daemon "$cfg" "$d/r$k.log"; LOG_OF[$STARTED]=$d/r$k.log
    wait_log "$d/r$k.log" "$STANDBY" 60
    sleep 2
done
touch "$d/stop"
wait "$TRICKLE" || die "(failover) the appender failed"
forget "$TRICKLE"
FO_APPENDED=$(json appended <"$d/trickle.json")
until=$((SECONDS + 120))
until [ "$(pgq failover "SELECT count(*) FROM complaints")" = "$FO_APPENDED" ]; do
    [ "$SECONDS" -lt "$until" ] ||
        die "(failover) $(pgq failover "SELECT count(*) FROM complaints") of $FO_APPENDED registered after 120 s"
    sleep 0.2
done
# Each once, references without a gap.
[ "$(pgq failover "SELECT count(DISTINCT complainant_address) || ' ' || max(ref_number) FROM complaints")" = "$FO_APPENDED $FO_APPENDED" ] ||
    die "(failover) not each once or not gapless: $(pgq failover "SELECT count(*), count(DISTINCT complainant_address), max(ref_number) FROM complaints")"
stop_daemons "${!LOG_OF[@]}"
FO_MAX=$(python3 -c "print(max(map(float, '${FO_TIMES[*]}'.split())))")
say "(failover) ${FO_TIMES[*]} s (max $FO_MAX s); $FO_APPENDED mails appended meanwhile, each registered once"
fi
fi

# ---- report ----
last=$(echo "$NS" | awk '{print $NF}')
pass() { if python3 -c "import sys; sys.exit(0 if $1 else 1)"; then echo "met"; else echo "**missed**"; fi; }
{
    echo "# klachtd benchmark"
    echo
    echo "Measured by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores, $(uname -sr)),"
    echo "release build, Dovecot $(dovecot --version | cut -d' ' -f1) (mdbox) and Postfix $(postconf -d -h mail_version 2>/dev/null) on loopback,"
    echo "IMAP over STARTTLS, SMTP over STARTTLS (the latency sink: plain SMTP)."
    echo
    echo "| | measure | klachtd | plain client | ratio | target | |"
    echo "|---|---|---|---|---|---|---|"
    if want a; then
    for n in $NS; do
        r=$(calc "round(${A_RATE[$n]} / ${B_RATE[$n]}, 2)")
        echo "| a/b | ingest N=$n (mails/s; s) | ${A_RATE[$n]} (${A_SECS[$n]} s; whole run ${RUN_SECS[$n]} s) | ${B_RATE[$n]} (${B_SECS[$n]} s) | $r | >= 0.5 | $(pass "$r >= 0.5") |"
    done
    first=${NS%% *}
    r=$(calc "round($U_RATE / ${B_RATE[$first]}, 2)")
    echo "| a'/b | ingest N=$first with \`[runtime] single_cpu = false\` | $U_RATE ($U_SECS s) | ${B_RATE[$first]} | $r | (for comparison) | |"
    fi
    if want c; then
    r=$(calc "round($C_RATE / $D_RATE, 2)")
    echo "| c/d | delivery of $C_SENT mails to Postfix (mails/s; s) | $C_RATE ($C_SECS s, $C_CONN conn.) | $D_RATE ($D_SECS s) | $r | >= 0.8 | $(pass "$r >= 0.8") |"
    fi
    if want e; then
    echo "| e | APPEND -> ack accepted by SMTP, IDLE, $LATENCY_N mails | p50 $E_P50 ms, p99 $E_P99 ms (max $E_MAX ms) | | | p99 < 1000 ms | $(pass "$E_P99 < 1000") |"
    fi
    if want a; then
    for n in $NS; do
        mb=$(calc "round(${RSS[$n]} / 1024, 1)")
        if [ "$n" = "$last" ]; then
            echo "| f | peak RSS, run --once N=$n | $mb MB | | | < 64 MB | $(pass "$mb < 64") |"
        else
            echo "| f | peak RSS, run --once N=$n | $mb MB | | | | |"
        fi
    done
    fi
    if want g; then
    echo "| g | APPEND staff reply -> confirmation accepted by SMTP, IDLE, $LATENCY_N replies | p50 $G_P50 ms, p99 $G_P99 ms (max $G_MAX ms) | | | p99 < 1000 ms | $(pass "$G_P99 < 1000") |"
    fi
    if want p && pg_part ingest; then
    for n in $NS; do
        r=$(calc "round(${PA_RATE[$n]} / ${PB_RATE[$n]}, 2)")
        echo "| p: a_pg/b | ingest N=$n, PostgreSQL (fsync on) (mails/s; s) | ${PA_RATE[$n]} (${PA_SECS[$n]} s; whole run ${PA_RUN[$n]} s) | ${PB_RATE[$n]} (${PB_SECS[$n]} s) | $r | >= 0.5 | $(pass "$r >= 0.5") |"
    done
    fi
    if want p && pg_part ingest; then
    first=${NS%% *}
    r=$(calc "round($PU_RATE / ${PB_RATE[$first]}, 2)")
    echo "| p: a_pg'/b | ingest N=$first on PostgreSQL with \`[runtime] single_cpu = false\` | $PU_RATE ($PU_SECS s) | ${PB_RATE[$first]} | $r | (for comparison) | |"
    fi
    if want p && pg_part delivery; then
    r=$(calc "round($CP_RATE / $DP_RATE, 2)")
    echo "| p: c_pg/d | delivery of $CP_SENT mails to Postfix, PostgreSQL (fsync on) (mails/s; s) | $CP_RATE ($CP_SECS s, $CP_CONN conn.) | $DP_RATE ($DP_SECS s) | $r | >= 0.8 | $(pass "$r >= 0.8") |"
    fi
    if want p && pg_part two; then
    r=$(calc "round($PI_ONE / $PI_TWO, 2)")
    echo "| p: two | $PAIR_N waiting, start -> all registered, two daemons on one PostgreSQL database (fsync on) vs one (median of $PG_REPEAT; s) | two: $PI_TWO s (${TWO[*]}) | one: $PI_ONE s (${ONE[*]}) | $r (one/two) | >= 1.0 | $(pass "$r >= 1.0") |"
    r=$(calc "round($PI_ONE_SENT / $PI_TWO_SENT, 2)")
    echo "| p: two | the same, start -> outbox empty (every mail written) | two: $PI_TWO_SENT s (${TWO_SENT[*]}) | one: $PI_ONE_SENT s (${ONE_SENT[*]}) | $r (one/two) | (for comparison) | |"
    fi
    if want p && pg_part failover; then
    echo "| p: failover | \`kill -9\` of the leader -> first mail registered by the other, failover_seconds = 10, ${#FO_TIMES[@]} kills, a mail APPENDed every 100-200 ms | ${FO_TIMES[*]} s (max $FO_MAX s) | | | < 10 s | $(pass "$FO_MAX < 10") |"
    fi
    echo
    echo "Notes:"
    if want a; then
    echo "- (a) runs from the start of \`run --once\` (config, database, IMAP login, search) to"
    echo "  its \"mailbox drained\" log line: every mail fetched, parsed, stored (raw mail and"
    echo "  attachments to disk, SQLite), its acknowledgement (and the staff notification the mzo"
    printf '%s\n' '  procedure sends) queued, committed, and flagged \\Seen. The whole run, which then also'
    echo "  writes every queued mail as .eml (fsync each), is given after it. The mailbox was"
    echo "  filled by a pipelined APPEND (not timed: N=1000"
    printf '%s\n' "  ${FILL_SECS[${NS%% *}]} s). (b) runs on the same mailbox right after, its \\\\Seen flags"
    echo "  cleared first."
    echo "- (a') is (a) on a fresh mailbox of the same size with the process free to use both"
    echo "  CPUs: every SQL statement is a hand-over to SQLite's worker thread, and waking a thread"
    echo "  on the other CPU is what costs the difference."
    fi
    if want c; then
    echo "- (c) is a \`run --once\` with nothing to ingest and $C_SENT mails due; a run with nothing"
    echo "  to do costs $C_FIXED s, which is included. (d) sends the same raw mails from the"
    echo "  outbox table over as many connections as klachtd used, at the same time."
    fi
    if want g; then
    echo "- (g) replies to the new-complaint notices of $G_COMPLAINTS complaints in turn, each"
    echo "  \"#notitie meting N\" From the receiver to the notice's tokened Reply-To; timed from the"
    echo "  start of its APPEND to the sink's 250 for the confirmation whose In-Reply-To is the"
    echo "  reply's Message-ID (IDLE wake-up, fetch, token check, the note applied and committed,"
    echo "  the confirmation rendered, queued and sent). All $G_NOTES notes were recorded."
    fi
    if want p; then
    echo "- (p) ran on the bench's own PostgreSQL $PG_VERSION cluster (scripts/pgcluster.sh,"
    echo "  \`PGCLUSTER_DURABLE=1\`): $PG_SETTINGS; loopback TCP without TLS, data on the same"
    echo "  disk as the SQLite files of (a) and (c) (SQLite: \`synchronous = FULL\`). Loaded for the"
    echo "  server-side figures: pg_stat_statements, \`track_wal_io_timing = on\`. Each run has its"
    echo "  own database, its tables made before the timed run (by a \`klachtd list\`, as an"
    echo "  installation's are before it takes mail), and the database password in"
    echo "  \`KLACHTD__DATABASE__PASSWORD\`."
    fi
    if want p && pg_part ingest; then
    echo "- (a_pg) is (a) with \`[database] url\` on PostgreSQL: a fresh mailbox filled the same way,"
    echo "  its (b) run on it right after. Making the tables took ${PA_MIGRATE[$last]} s (not timed). On the"
    echo "  server during the N=$last run: ${PA_COMMITS[$last]} commits, ${PA_WALSYNC[$last]} WAL flushes"
    echo "  (${PA_WALSYNC_MS[$last]} ms), ${PA_CALLS[$last]} statements ($(calc "round(${PA_CALLS[$last]} / $last, 1)") a mail) executed in ${PA_EXEC_MS[$last]} ms in all"
    echo "  (pg_stat_statements, COMMIT's flush included) of ${PA_SECS[$last]} s; one round trip (\`SELECT 1\`,"
    echo "  pgbench, one client, right after) took $PG_RTT ms. CPU (user + system) in the whole run"
    echo "  (${PA_RUN[$last]} s): klachtd ${PA_CPU[$last]} s, PostgreSQL's processes ${PA_PGCPU[$last]} s. Its top statements by"
    echo "  total time:"
    echo
    echo "  | calls | total ms | mean ms | statement |"
    echo "  |---|---|---|---|"
    while IFS=$'\t' read -r calls total mean query; do
        echo "  | $calls | $total | $mean | \`${query//|/\\|}\` |"
    done <"$WORK/pg-ingest-$last/statements.tsv"
    echo
    fi
    if want p && pg_part delivery; then
    echo "- (c_pg) is (c) with the database on PostgreSQL ($CP_FIXED s for a run with nothing to do, included);"
    echo "  its (d) sends the same raw mails, read from the PostgreSQL outbox."
    fi
    if want p && pg_part two; then
    echo "- (two): an N=$PAIR_N backlog (filled as in (a)), \`klachtd run\` daemons started together on"
    echo "  one fresh database (IMAP, file outgoing, failover_seconds = 10), timed from their start to"
    echo "  the JSON log's last \`ingested\` line of a registered mail (written just before its batch"
    echo "  commits; the count is checked against the database); runs one, two, one, two... Mails"
    echo "  registered by daemon 1/daemon 2 in each run of two: $(for r in $(seq 1 "$PG_REPEAT"); do printf '%s ' "${PI_SPLIT[2,$r]}"; done)(the"
    echo "  one that leads ingests alone by design; every instance sends from the outbox)."
    fi
    if want p && pg_part failover; then
    echo "- (failover): two daemons (failover_seconds = 10: lease 6 s, renewed every 2 s, standby"
    echo "  tries every 1 s), \`bench_client.py trickle\` APPENDing a mail every 100-200 ms; the"
    echo "  leader (from \`klachtd status --format json\`) killed with SIGKILL at a random moment of"
    echo "  its renewal period, then restarted as the new standby, ${#FO_TIMES[@]} times. Measured from"
    echo "  the kill to the first \`ingested\` line (outcome Registered) in the survivor's JSON log;"
    echo "  it took the lease ${FO_LEASE[*]} s after the kills. $FO_APPENDED mails were appended"
    echo "  meanwhile: every one registered once, references gapless."
    fi
} >"$WORK/report.md"
if [ -n "$OUT" ]; then
    # The sections other scripts wrote (bench_scale.sh, bench_maildir.sh: from the first
    # "## " heading on) stay.
    if [ -f "$OUT" ]; then sed -n '/^## /,$p' "$OUT" >"$WORK/report.tail"; else : >"$WORK/report.tail"; fi
    if [ -s "$WORK/report.tail" ]; then
        { cat "$WORK/report.md"; echo; cat "$WORK/report.tail"; } >"$OUT"
    else
        cp "$WORK/report.md" "$OUT"
    fi
fi
cat "$WORK/report.md"

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
#
# Usage: scripts/bench.sh            (release build in $CARGO_TARGET_DIR, default target/)
# Environment: BENCH_NS ("1000 10000"), BENCH_DELIVERY_N (1000), BENCH_LATENCY_N (200),
#   BENCH_OUT (bench-results.md in the repository), BENCH_KEEP=1 keeps the work directory,
#   BENCH_ONLY ("g", "e g", "a,c": only those parts; b, a' and f come with a, d with c).
#   With BENCH_ONLY the table is only printed, unless BENCH_OUT is set: bench-results.md holds
#   the whole set.
# Needs root (the mail stack), python3, /usr/bin/time. About 5-10 minutes on 2 cores.
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
# want PART: whether BENCH_ONLY (unset: everything) asks for PART (a, c, e or g).
want() {
    local p
    [ -z "$ONLY" ] && return 0
    for p in $ONLY; do
        case "$p" in
            a | b | f) p=a ;;
            c | d) p=c ;;
            e | g) ;;
            *) die "BENCH_ONLY: unknown part $p (a b c d e f g)" ;;
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
cleanup() {
    [ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null || true
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
# log_time FILE MESSAGE: the time (epoch seconds) of the first JSON log line with that message.
log_time() {
    python3 - "$1" "$2" <<'PY'
import json, sys
from datetime import datetime
for line in open(sys.argv[1]):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    if event.get("fields", {}).get("message") == sys.argv[2]:
        print(datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp())
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
[logging]
format = "json"
level = "info"
TOML
    echo "$d/klachtd.toml"
}

klachtd() { env -u RUST_LOG NO_COLOR=1 "$BIN" "$@"; }

declare -A A_RATE A_SECS RUN_SECS RSS B_RATE B_SECS FILL_SECS
if want a; then
for n in $NS; do
    user="bench-a$n-$RANDOM@example.test"
    cfg=$(write_config "ingest-$n" "$user" file)
    say "(a) N=$n: appending (not timed)"
    fill=$("${PY[@]}" fill --port "$IMAP_PORT" --user "$user" --n "$n" --tag "a$n-$RANDOM" --attach-every 10)
    FILL_SECS[$n]=$(calc "round($(json seconds <<<"$fill"), 2)")
    # Dovecot's writes of the fixture reach the disk now, not during the timed run (klachtd's
    # per-batch syncfs would otherwise pay for them).
    sync
    say "(a) N=$n: appended $(json bytes <<<"$fill") bytes in ${FILL_SECS[$n]} s; klachtd run --once"
    d=$WORK/ingest-$n
    t0=$(now)
    /usr/bin/time -v -o "$d/time.txt" env -u RUST_LOG NO_COLOR=1 "$BIN" --config "$cfg" run --once \
        >"$d/stdout" 2>"$d/stderr" || die "run --once failed: $(tail -5 "$d/stderr")"
    t1=$(now)
    grep -q "processed $n mail(s): $n registered" "$d/stdout" ||
        die "not all registered: $(cat "$d/stdout")"
    # (a) ends when the last mail is committed with its acknowledgement queued ("mailbox
    # drained"); the whole run --once, which then also writes the queued mails, is reported too.
    drained=$(log_time "$d/stderr" "mailbox drained")
    A_SECS[$n]=$(calc "round($drained - $t0, 2)")
    A_RATE[$n]=$(calc "round($n / ($drained - $t0), 1)")
    RUN_SECS[$n]=$(calc "round($t1 - $t0, 2)")
    RSS[$n]=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$d/time.txt")
    say "(a) N=$n: ingest ${A_SECS[$n]} s, ${A_RATE[$n]} mails/s (whole run ${RUN_SECS[$n]} s), peak RSS ${RSS[$n]} kB; $(cat "$d/stdout")"

    say "(b) N=$n: plain client fetch + flag, one command at a time"
    sync   # klachtd's writes reach the disk before, not during, the plain client's run
    b=$("${PY[@]}" fetchflag --port "$IMAP_PORT" --ca "$CA_FILE" --user "$user" --unseen-first)
    [ "$(json mails <<<"$b")" = "$n" ] || die "fetchflag saw $(json mails <<<"$b") mails"
    B_SECS[$n]=$(calc "round($(json seconds <<<"$b"), 2)")
    B_RATE[$n]=$(calc "round($n / $(json seconds <<<"$b"), 1)")
    say "(b) N=$n: ${B_SECS[$n]} s, ${B_RATE[$n]} mails/s"
done

# (a') the same ingest with [runtime] single_cpu = false: what pinning to one CPU buys.
n=${NS%% *}
user="bench-u$n-$RANDOM@example.test"
cfg=$(write_config "unpinned-$n" "$user" file)
"${PY[@]}" fill --port "$IMAP_PORT" --user "$user" --n "$n" --tag "u$n-$RANDOM" --attach-every 10 >/dev/null
sync
d=$WORK/unpinned-$n
t0=$(now)
KLACHTD__RUNTIME__SINGLE_CPU=false klachtd --config "$cfg" run --once >"$d/stdout" 2>"$d/stderr" ||
    die "run --once failed: $(tail -5 "$d/stderr")"
drained=$(log_time "$d/stderr" "mailbox drained")
U_SECS=$(calc "round($drained - $t0, 2)")
U_RATE=$(calc "round($n / ($drained - $t0), 1)")
say "(a') N=$n with single_cpu = false: ingest $U_SECS s, $U_RATE mails/s"
fi

# (c) delivery: queue with SMTP unreachable (a closed port), then drain into Postfix.
if want c; then
n=$DELIVERY_N
user="bench-c-$RANDOM@example.test"
cfg=$(write_config delivery "$user" "$SMTP_PORT")
d=$WORK/delivery
say "(c) queueing $n acknowledgements with SMTP unreachable"
"${PY[@]}" fill --port "$IMAP_PORT" --user "$user" --n "$n" --tag "c-$RANDOM" --attach-every 10 >/dev/null
closed=$(free_port)
KLACHTD__OUTGOING__PORT=$closed KLACHTD__OUTBOX__RETRY_INITIAL_SECONDS=1 \
    KLACHTD__OUTBOX__RETRY_MAX_SECONDS=1 klachtd --config "$cfg" run --once \
    >"$d/queue.stdout" 2>"$d/queue.stderr" || die "queueing failed: $(tail -5 "$d/queue.stderr")"
grep -q "processed $n mail(s): $n registered" "$d/queue.stdout" || die "$(cat "$d/queue.stdout")"
queued=$(klachtd --config "$cfg" outbox list --status queued --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
sleep 1.2
# An empty run (nothing waiting, nothing due) for the fixed cost of a run --once.
user0="bench-c0-$RANDOM@example.test"
cfg0=$(write_config empty "$user0" "$SMTP_PORT")
t0=$(now); klachtd --config "$cfg0" run --once >/dev/null 2>&1; t1=$(now)
C_FIXED=$(calc "round($t1 - $t0, 3)")
conn_before=$(grep -c "smtpd.*: connect from" "$STACK/postfix/postfix.log" || true)
say "(c) draining $queued queued mails into Postfix"
t0=$(now)
klachtd --config "$cfg" run --once >"$d/send.stdout" 2>"$d/send.stderr" || die "send failed"
t1=$(now)
conn_after=$(grep -c "smtpd.*: connect from" "$STACK/postfix/postfix.log" || true)
C_CONN=$((conn_after - conn_before))
C_SENT=$(sed -n 's/.*outbox: \([0-9]*\) sent.*/\1/p' "$d/send.stdout")
[ "$C_SENT" = "$queued" ] || die "sent $C_SENT of $queued: $(cat "$d/send.stdout")"
C_SECS=$(calc "round($t1 - $t0, 2)")
C_RATE=$(calc "round($C_SENT / ($t1 - $t0), 1)")
say "(c) $C_SENT mails in $C_SECS s over $C_CONN connection(s): $C_RATE mails/s"
for _ in $(seq 1 240); do
    postqueue -c "$POSTFIX_DIR" -p 2>/dev/null | grep -q "Mail queue is empty" && break
    sleep 0.5
done
say "(d) python smtplib, the same $C_SENT raw mails over $((C_CONN > 0 ? C_CONN : 1)) connection(s)"
dres=$("${PY[@]}" smtpsend --port "$SMTP_PORT" --ca "$CA_FILE" --db "$d/data/klachtd.db" \
    --n "$C_SENT" --connections $((C_CONN > 0 ? C_CONN : 1)))
D_SECS=$(calc "round($(json seconds <<<"$dres"), 2)")
D_RATE=$(calc "round($(json sent <<<"$dres") / $(json seconds <<<"$dres"), 1)")
say "(d) $(json sent <<<"$dres") mails in $D_SECS s: $D_RATE mails/s"
for _ in $(seq 1 240); do
    postqueue -c "$POSTFIX_DIR" -p 2>/dev/null | grep -q "Mail queue is empty" && break
    sleep 0.5
done
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
    echo
    echo "Notes:"
    if want a; then
    echo "- (a) runs from the start of \`run --once\` (config, database, IMAP login, search) to"
    echo "  its \"mailbox drained\" log line: every mail fetched, parsed, stored (raw mail and"
    echo "  attachments to disk, SQLite), its acknowledgement (and the staff notification the mzo"
    echo "  procedure sends) queued, committed, and flagged \\\\Seen. The whole run, which then also"
    echo "  writes every queued mail as .eml (fsync each), is given after it. The mailbox was"
    echo "  filled by a pipelined APPEND (not timed: N=1000"
    echo "  ${FILL_SECS[${NS%% *}]} s). (b) runs on the same mailbox right after, its \\\\Seen flags"
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
} >"$WORK/report.md"
[ -n "$OUT" ] && cp "$WORK/report.md" "$OUT"
cat "$WORK/report.md"

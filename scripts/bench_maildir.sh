#!/usr/bin/env bash
# bench_maildir.sh: what a poll of a Maildir costs when cur/ holds many processed mails (issue
# #8, finding 20: the old code listed cur/ again for every known mail, 15 s per empty poll at
# 4,000 mails). For each N in BENCH_MAILDIR_NS ("1000 10000 100000"), in a fresh installation:
#
#   setup  N out-of-office replies (distinct senders, 1 KB, `Auto-Submitted: auto-replied`)
#          delivered to new/ and registered (kept unfiled, never answered: cheap to set up, and
#          to the Maildir any processed mail is alike) by one `klachtd run --once`; printed for
#          reference, not a figure of this benchmark. new/ is then made anew (see below);
#   empty  `klachtd run --once` with nothing new: median wall time of 3 runs and peak RSS (a
#          new process lists cur/ once at start: linear in N, done once);
#   poll   the daemon (`klachtd run`, poll every 1 s) left idle for BENCH_IDLE_SECS (30 s)
#          after it settled: CPU time of its threads (/proc/PID/task/*/schedstat, ns) per poll
#          second; the polls themselves plus the scheduler and outbox wake-ups;
#   new100 at the largest N: 100 new complaints in new/, `klachtd run --once` (registered,
#          acknowledged, moved), and another 100 through the running daemon (time from the
#          end of the delivery until all 100 are committed and moved to cur/).
#
# Usage: scripts/bench_maildir.sh   (release build in $CARGO_TARGET_DIR, default target/;
#        BENCH_BIN=path uses that binary instead of building)
# Environment: BENCH_MAILDIR_NS, BENCH_IDLE_SECS, BENCH_KEEP=1 keeps the work directory.
# Needs python3 and /usr/bin/time. About 5 minutes on 2 cores (mostly the setup of 100,000).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NS=${BENCH_MAILDIR_NS:-"1000 10000 100000"}
IDLE=${BENCH_IDLE_SECS:-30}

say() { printf '%s bench_maildir: %s\n' "$(date +%T)" "$*" >&2; }
die() { say "$*"; exit 1; }

[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$BENCH_BIN
else
    say "release build"
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/klachtd
fi
[ -x "$BIN" ] || die "no binary at $BIN"

WORK=$(mktemp -d /tmp/klachtd-bench-maildir.XXXXXX)
DAEMON_PID=
cleanup() {
    [ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null || true
    if [ "${BENCH_KEEP:-}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

calc() { python3 -c "print($1)"; }
now() { date +%s.%N; }

# install DIR: config, Maildir, outbox directory.
install() {
    local d=$1
    mkdir -p "$d/maildir/new" "$d/maildir/cur" "$d/maildir/tmp" "$d/data" "$d/outbox"
    cat >"$d/klachtd.toml" <<EOF
data_dir = "$d/data"

[organisation]
name = "Muziekcentrum Zuidoost"
time_zone = "Europe/Amsterdam"
language = "nl"
reference_prefix = "KL"
mail_domain = "example.org"
secret = "bench-maildir-secret"

[mailbox]
kind = "maildir"
path = "$d/maildir"
poll_interval = 1

[outgoing]
kind = "file"
path = "$d/outbox"
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
format = "text"
level = "warn"
EOF
}

# deliver DIR FIRST COUNT TAG [auto]: COUNT complaints (or out-of-office replies) into new/
# the way a delivery agent does (tmp/, then rename), each with its own sender and Message-ID.
deliver() {
    python3 - "$1" "$2" "$3" "$4" "${5:-}" <<'PY'
import os, sys, time
d, first, count, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
auto = "Auto-Submitted: auto-replied\r\n" if sys.argv[5] == "auto" else ""
body = ("Ik wil een klacht indienen over de gang van zaken bij de les. " * 16 + "\r\n")
base = time.time() - 86400
for i in range(first, first + count):
    name = f"{int(base) + i}.M{i}P{tag}.bench"
    tmp = os.path.join(d, "maildir", "tmp", name)
    with open(tmp, "w") as f:
        f.write(f"From: Ouder {i} <ouder{i}.{tag}@ouders.example.nl>\r\n"
                f"To: service@example.org\r\nSubject: Klacht {tag} {i}\r\n"
                f"Message-ID: <{tag}.{i}@ouders.example.nl>\r\n" + auto +
                "Date: Mon, 23 Nov 2026 09:14:02 +0100\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body)
    os.utime(tmp, (base + i, base + i))
    os.rename(tmp, os.path.join(d, "maildir", "new", name))
PY
}

# once DIR: `run --once`; prints "seconds peak_kb summary".
once() {
    local d=$1 out
    out=$(cd "$d" && /usr/bin/time -f '%e %M' -o "$d/time" "$BIN" --config "$d/klachtd.toml" run --once)
    printf '%s %s\n' "$(cat "$d/time")" "$out"
}

# cpu_snap PID: "tid ns" for every thread (/proc/PID/task/*/schedstat, ns on the CPU).
cpu_snap() {
    for t in /proc/"$1"/task/*; do
        printf '%s %s\n' "${t##*/}" "$(cut -d' ' -f1 "$t/schedstat" 2>/dev/null || echo 0)"
    done
}
# cpu_delta BEFORE AFTER: ns spent between the two snapshots by the threads of AFTER (a thread
# started meanwhile counts whole; one that ended meanwhile, an idle blocking-pool thread, is
# missing: the clock-tick count of /proc/PID/stat keeps it but is only good to 10 ms, so both
# are printed).
cpu_delta() {
    python3 - "$1" "$2" <<'PY'
import sys
def snap(s):
    return {t: int(v) for t, v in (l.split() for l in s.splitlines() if l.strip())}
a, b = snap(sys.argv[1]), snap(sys.argv[2])
print(sum(v - a.get(t, 0) for t, v in b.items()))
PY
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
# moved DIR: mails in cur/, 0 while any is still in new/ (a mail moves only after its commit).
moved() {
    if [ -n "$(ls -A "$1/maildir/new")" ]; then echo 0; else ls -f "$1/maildir/cur" | grep -vc '^\.'; fi
}

ROWS=()
LAST=
for n in $NS; do
    d=$WORK/n$n
    install "$d"
    say "N=$n: delivering and registering (setup)"
    deliver "$d" 0 "$n" s auto
    read -r setup_s _ setup_out < <(once "$d")
    say "N=$n: setup run --once ${setup_s} s: $setup_out"
    [ "$(find "$d/maildir/new" -type f | wc -l)" = 0 ] || die "N=$n: new/ not empty after setup"
    # A directory never shrinks on ext4: the new/ that held N mails at once stays N entries
    # large (5 MB at 100,000; listing it empty costs 1.7 ms). A Maildir of a few years never
    # had them all in new/ at once: start the polls with a new/ of ordinary size.
    rmdir "$d/maildir/new" && mkdir "$d/maildir/new"
    times=()
    for _ in 1 2 3; do
        read -r s kb out < <(once "$d")
        case $out in "processed 0 mail(s)"*) ;; *) die "N=$n: not an empty run: $out" ;; esac
        times+=("$s")
    done
    empty=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
    say "N=$n: empty run --once ${times[*]} s (median $empty), peak RSS $kb kB"

    (cd "$d" && exec "$BIN" --config "$d/klachtd.toml" run >"$d/daemon.log" 2>&1) &
    DAEMON_PID=$!
    sleep 5 # the first listing of cur/ and the first drains
    t0=$(cpu_snap "$DAEMON_PID")
    k0=$(cpu_ticks "$DAEMON_PID")
    sleep "$IDLE"
    t1=$(cpu_snap "$DAEMON_PID")
    k1=$(cpu_ticks "$DAEMON_PID")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$DAEMON_PID/status")
    poll_ms=$(calc "round($(cpu_delta "$t0" "$t1") / 1e6 / $IDLE, 3)")
    tick_ms=$(calc "round(($k1 - $k0) * 1000 / $TICK / $IDLE, 2)")
    say "N=$n: idle daemon ${poll_ms} ms CPU per 1-s poll (clock ticks: $tick_ms ms), RSS $rss kB"
    ROWS+=("| $n | $empty s (peak RSS $((kb / 1024)) MB) | $poll_ms ms (ticks: $tick_ms ms; RSS $((rss / 1024)) MB) |")
    if [ "$n" = "${NS##* }" ]; then
        deliver "$d" "$n" 100 d
        started=$(now)
        until [ "$(moved "$d")" -ge "$((n + 100))" ]; do
            kill -0 "$DAEMON_PID" 2>/dev/null || die "daemon died: $(tail -5 "$d/daemon.log")"
            sleep 0.2
        done
        daemon_new=$(calc "round($(now) - $started, 2)")
        say "N=$n: daemon registered 100 new in ${daemon_new} s"
    fi
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID" || true
    DAEMON_PID=
    if [ "$n" = "${NS##* }" ]; then
        deliver "$d" "$((n + 100))" 100 o
        read -r s kb out < <(once "$d")
        say "N=$n: run --once with 100 new: $s s: $out"
        LAST="100 new complaints at $n in cur/: \`run --once\` $s s ($out); the daemon, from the end of the delivery until all 100 were committed and moved: $daemon_new s"
    fi
done

echo
echo "| mails in cur/ (processed) | empty \`run --once\` (median of 3) | idle daemon: CPU per 1-s poll |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "$LAST"

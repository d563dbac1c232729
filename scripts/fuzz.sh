#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer), on the stable toolchain without a sanitizer; see
# the README ("Fuzzing") for the targets, the results of the long runs and how to add a crash fixture.
#
#   bash scripts/fuzz.sh short          replay fuzz/regressions, then each target for a few
#                                       seconds (FUZZ_SHORT_SECONDS, default 10); scripts/test.sh
#   bash scripts/fuzz.sh long SECONDS   every target at once for SECONDS each, under nice -n 19,
#                                       crashes collected without stopping (-fork=1
#                                       -ignore_crashes=1); logs in fuzz/logs/TARGET.log
#   bash scripts/fuzz.sh replay         only replay the crash fixtures in fuzz/regressions
#   bash scripts/fuzz.sh build          only build the targets
#
# Exits non-zero when a target crashes (a panic, a timeout of FUZZ_TIMEOUT seconds, or more
# than 2 GB of memory). The working corpus (fuzz/corpus, seeded from the test fixtures) and
# the crash artifacts (fuzz/artifacts) are not committed; a crash worth keeping is copied to
# fuzz/regressions/TARGET/. FUZZ_SANITIZER=address runs with ASan (needs RUSTC_BOOTSTRAP=1 or
# a nightly toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

TARGETS=(parse html html_amplified procedure_toml config_toml ingest quote commands forward)
SANITIZER=${FUZZ_SANITIZER:-none}
SHORT_SECONDS=${FUZZ_SHORT_SECONDS:-10}
TIMEOUT=${FUZZ_TIMEOUT:-10}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
# cargo fuzz puts its binaries under CARGO_TARGET_DIR when that is set.
BIN_DIR="${CARGO_TARGET_DIR:-$root/fuzz/target}/$TRIPLE/release"

die() {
    echo "fuzz.sh: $*" >&2
    exit 1
}

install() {
    command -v cargo >/dev/null || die "cargo is needed"
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "fuzz.sh: installing cargo-fuzz"
        cargo install cargo-fuzz --locked
    fi
}

build() {
    install
    local started=$SECONDS
    # -O: optimised without debug assertions, like the release binary. With them, a
    # dependency's debug_assert! (mail-parser's on a multipart nesting it cannot place,
    # fuzz/regressions/parse/mail-parser-debug-assert-multipart) stops the run although the
    # release binary has no such check; the harnesses' own assert!s stay on.
    (cd fuzz && nice -n 10 cargo fuzz build -O --sanitizer "$SANITIZER")
    echo "fuzz.sh: built the targets in $((SECONDS - started)) s"
}

# The seed corpus of each target: the repository's own fixtures.
seeds() {
    case "$1" in
        parse | ingest) ls tests/fixtures/eml/*.eml examples/mail/*.eml ;;
        html) ls templates/*/*.html.hbs templates/*/partials/*.hbs tests/fixtures/eml/*.eml \
            examples/mail/*.eml 2>/dev/null ;;
        html_amplified) ls fuzz/seeds/html_amplified/* ;;
        procedure_toml) ls config/procedures/*.toml ;;
        config_toml) ls config/*.toml ;;
        quote) ls tests/fixtures/replies/*.expected.txt tests/fixtures/replies/*.eml ;;
        commands) ls tests/fixtures/replies/*.expected.txt ;;
        forward) ls tests/fixtures/forwards/*.eml tests/fixtures/replies/*.eml ;;
        *) die "no seeds for $1" ;;
    esac
}

prepare() {
    local target=$1
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target" "fuzz/regressions/$target"
    local seed
    while read -r seed; do
        cp -n "$seed" "fuzz/corpus/$target/seed-$(basename "$seed")"
    done < <(seeds "$target")
}

# Run every crash fixture of every target once; fail on the first target that crashes.
replay() {
    local target files
    for target in "${TARGETS[@]}"; do
        mapfile -t files < <(find "fuzz/regressions/$target" -type f ! -name '*.md' | sort)
        [ "${#files[@]}" -gt 0 ] || continue
        mkdir -p "fuzz/artifacts/$target"
        echo "fuzz.sh: replaying ${#files[@]} regression(s) of $target"
        # The ingest fixtures are replayed strictly: a mail that makes the batch fail (an
        # error, not only a panic) holds up every mail behind it (issue #8, finding 2).
        KLACHTD_FUZZ_STRICT=$([ "$target" = ingest ] && echo 1 || echo 0) \
            "$BIN_DIR/$target" -timeout="$TIMEOUT" -rss_limit_mb=2048 "${files[@]}" \
            >"fuzz/artifacts/$target/replay.log" 2>&1 || {
            tail -n 40 "fuzz/artifacts/$target/replay.log" >&2
            die "$target crashes on a regression in fuzz/regressions/$target (log: fuzz/artifacts/$target/replay.log)"
        }
    done
}

run_short() {
    local target dirs
    for target in "${TARGETS[@]}"; do
        echo "fuzz.sh: $target for $SHORT_SECONDS s"
        dirs=("fuzz/corpus/$target")
        [ "${FUZZ_REPLAY:-1}" = 0 ] || dirs+=("fuzz/regressions/$target")
        nice -n 10 "$BIN_DIR/$target" "${dirs[@]}" \
            -max_total_time="$SHORT_SECONDS" -timeout="$TIMEOUT" -rss_limit_mb=2048 \
            -artifact_prefix="fuzz/artifacts/$target/" -print_final_stats=1 \
            >"fuzz/artifacts/$target/short.log" 2>&1 || {
            tail -n 60 "fuzz/artifacts/$target/short.log" >&2
            die "$target crashed; the input is in fuzz/artifacts/$target/"
        }
        grep -E '^#[0-9]+ *DONE|stat::number_of_executed_units' "fuzz/artifacts/$target/short.log" |
            sed "s/^/fuzz.sh:   /" || true
    done
}

run_long() {
    local seconds=$1 target pids=() failed=0 runs=("${TARGETS[@]}")
    mkdir -p fuzz/logs
    # FUZZ_STRICT_INGEST=1 adds a run of the ingest target where a returned error is a crash
    # too (KLACHTD_FUZZ_STRICT=1): it collects the mails that make a whole batch fail.
    if [ "${FUZZ_STRICT_INGEST:-0}" = 1 ]; then
        runs+=(ingest_strict)
        mkdir -p fuzz/corpus/ingest_strict fuzz/artifacts/ingest_strict
        cp -n fuzz/corpus/ingest/* fuzz/corpus/ingest_strict/ 2>/dev/null || true
    fi
    for target in "${runs[@]}"; do
        local bin=$target
        [ "$target" = ingest_strict ] && bin=ingest
        echo "fuzz.sh: $target for $seconds s (log: fuzz/logs/$target.log)"
        KLACHTD_FUZZ_STRICT=$([ "$target" = ingest_strict ] && echo 1 || echo 0) \
            nice -n 19 "$BIN_DIR/$bin" "fuzz/corpus/$target" "fuzz/regressions/$bin" \
            -max_total_time="$seconds" -timeout="$TIMEOUT" -rss_limit_mb=2048 \
            -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
            -artifact_prefix="fuzz/artifacts/$target/" -print_final_stats=1 \
            >"fuzz/logs/$target.log" 2>&1 &
        pids+=($!)
    done
    local i
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || true
    done
    for target in "${runs[@]}"; do
        local found
        found=$(find "fuzz/artifacts/$target" -type f \( -name 'crash-*' -o -name 'timeout-*' \
            -o -name 'oom-*' \) | wc -l)
        echo "fuzz.sh: $target: $(grep -E '^#[0-9]+' "fuzz/logs/$target.log" | tail -n 1)"
        echo "fuzz.sh: $target: $found crash/timeout/oom input(s) in fuzz/artifacts/$target/"
        [ "$found" -eq 0 ] || failed=1
    done
    return "$failed"
}

cleanup() {
    # The ingest target's installations of processes that are gone.
    local d
    for d in /dev/shm/klachtd-fuzz-ingest-* "${TMPDIR:-/tmp}"/klachtd-fuzz-ingest-*; do
        [ -e "$d" ] || continue
        [ -e "/proc/${d##*-}" ] || rm -rf "$d"
    done
}
trap cleanup EXIT

case "${1:-}" in
    build) build ;;
    replay)
        build
        replay
        ;;
    short)
        build
        for t in "${TARGETS[@]}"; do prepare "$t"; done
        # FUZZ_REPLAY=0 skips the crash fixtures (only while a known crash waits for its fix).
        [ "${FUZZ_REPLAY:-1}" = 0 ] || replay
        run_short
        echo "fuzz.sh: short pass done, no crash"
        ;;
    long)
        [ -n "${2:-}" ] || die "usage: fuzz.sh long SECONDS"
        build
        for t in "${TARGETS[@]}"; do prepare "$t"; done
        run_long "$2"
        ;;
    *) die "usage: fuzz.sh short | long SECONDS | replay | build" ;;
esac

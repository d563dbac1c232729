#!/usr/bin/env bash
# pgcluster.sh: a throwaway PostgreSQL 15 cluster on loopback for klachtd's tests, without
# systemd: data, socket and log in one temporary directory, owned by the `postgres` user (when
# run as root; otherwise by whoever runs it). Never for production.
#
# Usage:
#   pgcluster.sh start   install postgresql-15 if initdb is missing, then start the cluster (or
#                        reuse the one an earlier `start` left running); prints the exports
#   pgcluster.sh stop    stop the cluster `start` started and remove its directory
#   pgcluster.sh env     print the exports of the running cluster (fails when none runs)
#
# The exports (also in $STATE_DIR/env, shell-sourceable):
#   KLACHTD_TEST_PG=postgres://klachtd@127.0.0.1:PORT   (no database, no password)
#   KLACHTD_TEST_PG_PASSWORD=...                         (role klachtd, LOGIN CREATEDB)
#   KLACHTD_TEST_PG_TLS_ROLE=klachtd_tls                 (same password; TLS only)
#   KLACHTD_TEST_PG_CA=.../tls/ca.crt                    (the CA of the server's certificate)
# TCP on 127.0.0.1 only, scram-sha-256; the superuser `postgres` is reachable only through the
# socket inside the cluster directory. TLS is on (ssl = on) with a certificate of the cluster's
# own CA, for the name `localhost` only (not 127.0.0.1, so a test can see verify-full check the
# name); the role klachtd_tls is refused without TLS (pg_hba `hostnossl ... reject`), so a
# connection that works as it has used TLS.
#
# Environment: KLACHTD_PGCLUSTER_DIR (default /tmp/klachtd-pgcluster): where the state and the
#   env file live; PGCLUSTER_PORT (default 55432): the port to try first;
#   PGCLUSTER_DURABLE=1: fsync, synchronous_commit and full_page_writes on (PostgreSQL's
#   defaults, for benchmarks: scripts/bench.sh); unset, all three are off (tests);
#   PGCLUSTER_CONF: more postgresql.conf lines (e.g. "log_min_duration_statement = 0") for a
#   new cluster. A running cluster is reused (its settings as they are), unless its
#   durability differs: then start fails rather than stopping a cluster tests may be using.
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
STATE_DIR=${KLACHTD_PGCLUSTER_DIR:-/tmp/klachtd-pgcluster}
ENV_FILE=$STATE_DIR/env
PREFERRED_PORT=${PGCLUSTER_PORT:-55432}
ROLE=klachtd
TLS_ROLE=klachtd_tls
DURABLE=${PGCLUSTER_DURABLE:-0}
case "$DURABLE" in 0 | 1) ;; *) echo "pgcluster: PGCLUSTER_DURABLE must be 0 or 1" >&2; exit 1 ;; esac

die() { echo "pgcluster: $*" >&2; exit 1; }

# initdb and postgres refuse to run as root: as root everything server-side runs as `postgres`.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# apt may be busy (unattended upgrades, mailstack.sh installing beside us): wait, bounded.
wait_for_apt() {
    for _ in $(seq 1 120); do
        if ! fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock \
            >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    die "apt/dpkg lock still held after 120 s"
}

install_packages() {
    if [ -x "$PGBIN/initdb" ] && command -v openssl >/dev/null; then return 0; fi
    [ "$(id -u)" = 0 ] || die "$PGBIN/initdb or openssl is missing and installing them needs root"
    echo "pgcluster: installing postgresql-15 and openssl (the test CA)" >&2
    export DEBIAN_FRONTEND=noninteractive
    wait_for_apt
    if ! apt-get install -y -q postgresql-15 openssl >&2; then
        wait_for_apt
        apt-get update -q >&2
        apt-get install -y -q postgresql-15 openssl >&2
    fi
    [ -x "$PGBIN/initdb" ] || die "postgresql-15 installed but $PGBIN/initdb is missing"
}

# Free as the server sees it: it binds with SO_REUSEADDR, so connections of an earlier cluster
# still in TIME_WAIT do not count, a listener does.
port_free() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
}

# Reads CLUSTER_DIR and PORT of the cluster an earlier `start` made (if any).
load_state() {
    CLUSTER_DIR="" PORT="" CLUSTER_DURABLE=0
    if [ -s "$STATE_DIR/cluster" ]; then
        # shellcheck disable=SC1091
        . "$STATE_DIR/cluster"
    fi
}

# The cluster `start` made still runs and lets klachtd in with the password in the env file.
cluster_usable() {
    [ -n "$CLUSTER_DIR" ] && [ -n "$PORT" ] && [ -s "$ENV_FILE" ] || return 1
    # A cluster an older version of this script made (without TLS) is made again.
    grep -q '^export KLACHTD_TEST_PG_CA=' "$ENV_FILE" || return 1
    [ -d "$CLUSTER_DIR/data" ] || return 1
    as_owner "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" status >/dev/null 2>&1 || return 1
    local url password
    url=$(sed -n 's/^export KLACHTD_TEST_PG=//p' "$ENV_FILE")
    password=$(sed -n 's/^export KLACHTD_TEST_PG_PASSWORD=//p' "$ENV_FILE")
    [ "$(PGPASSWORD=$password PGCONNECT_TIMEOUT=5 "$PGBIN/psql" "$url/postgres" -XtAqw \
        -c 'SELECT 1' 2>/dev/null)" = 1 ]
}

# Stop whatever an earlier `start` left (running or not) and remove its directory.
teardown() {
    if [ -n "$CLUSTER_DIR" ] && [ -d "$CLUSTER_DIR/data" ]; then
        if as_owner "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" status >/dev/null 2>&1; then
            as_owner "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w -t 30 stop >&2 ||
                as_owner "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -m immediate -w -t 30 stop >&2 ||
                die "cannot stop the cluster in $CLUSTER_DIR"
        fi
    fi
    # Only a directory this script made (mktemp's pattern), never whatever the state names.
    case "$CLUSTER_DIR" in
        */klachtd-pg.??????) rm -rf "$CLUSTER_DIR" ;;
    esac
    rm -f "$ENV_FILE" "$STATE_DIR/cluster"
}

# make_certificates DIR: a CA and a server certificate it signed for DNS:localhost, in DIR
# (the key readable by the server's user alone, as PostgreSQL demands).
make_certificates() {
    local dir=$1
    command -v openssl >/dev/null || die "openssl is missing (apt-get install openssl)"
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=klachtd pgcluster test CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
        >/dev/null 2>&1 || die "openssl could not make the test CA"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1 ||
        die "openssl could not make the server key"
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 30 -extfile "$dir/server.ext" -out "$dir/server.crt" \
        >/dev/null 2>&1 || die "openssl could not sign the server certificate"
    rm -f "$dir/ca.key" "$dir/server.csr" "$dir/ca.srl"
    chmod 0644 "$dir/ca.crt" "$dir/server.crt"
    chmod 0600 "$dir/server.key"
    if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$dir"; fi
    chmod 0755 "$dir"
}

# start_server PORT: 0 when it runs; 1 when it did not start (log shown).
start_server() {
    local port=$1 durability
    if [ "$DURABLE" = 1 ]; then
        durability="# Durable, as PostgreSQL's defaults: for benchmarks set against SQLite's
# synchronous = FULL.
fsync = on
synchronous_commit = on
full_page_writes = on"
    else
        durability="# A throwaway cluster: durability buys nothing, speed does.
fsync = off
synchronous_commit = off
full_page_writes = off"
    fi
    # Settings in postgresql.conf rather than on the command line: a `pg_ctl restart` by hand
    # keeps them.
    sed -i '/^# klachtd-pgcluster$/,$d' "$CLUSTER_DIR/data/postgresql.conf"
    cat >> "$CLUSTER_DIR/data/postgresql.conf" <<CONF
# klachtd-pgcluster
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$CLUSTER_DIR/sock'
$durability
# Tests run many harnesses (each daemon with its own pool) at once.
max_connections = 300
password_encryption = 'scram-sha-256'
ssl = on
ssl_cert_file = '$CLUSTER_DIR/tls/server.crt'
ssl_key_file = '$CLUSTER_DIR/tls/server.key'
${PGCLUSTER_CONF:-}
CONF
    # 9>&-: the server must not inherit the lock this script holds, or it holds it for good.
    if as_owner "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/postgres.log" -w -t 60 \
        start >&2 9>&-; then
        return 0
    fi
    tail -n 20 "$CLUSTER_DIR/postgres.log" >&2 || true
    return 1
}

start() {
    install_packages
    id postgres >/dev/null 2>&1 || [ "$(id -u)" != 0 ] || die "no postgres user to run the server as"
    mkdir -p "$STATE_DIR"
    # One start or stop at a time (several test runs may start together).
    exec 9>"$STATE_DIR/lock"
    flock 9
    load_state
    if cluster_usable; then
        # Never torn down for another durability: tests may be using it.
        [ "$CLUSTER_DURABLE" = "$DURABLE" ] ||
            die "the cluster in $CLUSTER_DIR runs with PGCLUSTER_DURABLE=$CLUSTER_DURABLE; use another KLACHTD_PGCLUSTER_DIR"
        echo "pgcluster: reusing the cluster in $CLUSTER_DIR on 127.0.0.1:$PORT" >&2
        cat "$ENV_FILE"
        return 0
    fi
    teardown
    CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/klachtd-pg.XXXXXX")
    mkdir -p "$CLUSTER_DIR/data" "$CLUSTER_DIR/sock"
    if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$CLUSTER_DIR"; fi
    chmod 0700 "$CLUSTER_DIR/data" "$CLUSTER_DIR/sock"
    # The tests (another user, when this runs as root) read the CA through the directory.
    chmod 0755 "$CLUSTER_DIR"
    make_certificates "$CLUSTER_DIR/tls"
    # The directory is recorded first, so a failed start is cleaned up by the next one.
    echo "CLUSTER_DIR=$CLUSTER_DIR" > "$STATE_DIR/cluster"
    # trust for the superuser on the socket only: its directory is the owner's alone.
    as_owner "$PGBIN/initdb" -D "$CLUSTER_DIR/data" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync >"$CLUSTER_DIR/initdb.log" 2>&1 ||
        { cat "$CLUSTER_DIR/initdb.log" >&2; die "initdb failed in $CLUSTER_DIR"; }
    cat > "$CLUSTER_DIR/data/pg_hba.conf" <<HBA
# Generated by pgcluster.sh.
local     all postgres                 trust
hostnossl all $TLS_ROLE 127.0.0.1/32 reject
host      all all         127.0.0.1/32 scram-sha-256
HBA
    local attempt
    PORT=$PREFERRED_PORT
    port_free "$PORT" || PORT=$(free_port)
    for attempt in 1 2 3; do
        start_server "$PORT" && break
        [ "$attempt" = 3 ] && die "PostgreSQL did not start (see $CLUSTER_DIR/postgres.log)"
        # Most likely the port was taken between our check and the server's bind.
        echo "pgcluster: start attempt $attempt on port $PORT failed; trying another port" >&2
        PORT=$(free_port)
    done
    printf 'CLUSTER_DIR=%s\nPORT=%s\nCLUSTER_DURABLE=%s\n' "$CLUSTER_DIR" "$PORT" "$DURABLE" \
        > "$STATE_DIR/cluster"
    local password
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    as_owner "$PGBIN/psql" -h "$CLUSTER_DIR/sock" -p "$PORT" -U postgres -d postgres -XqAw \
        -v ON_ERROR_STOP=1 -v role="$ROLE" -v tls_role="$TLS_ROLE" -v password="$password" >&2 <<'SQL' ||
CREATE ROLE :"role" LOGIN CREATEDB PASSWORD :'password';
CREATE ROLE :"tls_role" LOGIN CREATEDB PASSWORD :'password';
SQL
        die "cannot create role $ROLE"
    local url="postgres://$ROLE@127.0.0.1:$PORT"
    # Proven, not assumed: the password lets klachtd in over TCP, and a wrong one does not.
    [ "$(PGPASSWORD=$password "$PGBIN/psql" "$url/postgres" -XtAqw -c 'SELECT 1')" = 1 ] ||
        die "role $ROLE cannot log in over TCP with its password"
    if PGPASSWORD=wrong-$password "$PGBIN/psql" "$url/postgres" -XtAqw -c 'SELECT 1' \
        >/dev/null 2>&1; then
        die "a wrong password is accepted: pg_hba.conf is not in force"
    fi
    local tls_url="postgres://$TLS_ROLE@localhost:$PORT/postgres"
    [ "$(PGPASSWORD=$password PGSSLMODE=verify-full PGSSLROOTCERT=$CLUSTER_DIR/tls/ca.crt \
        "$PGBIN/psql" "$tls_url" -XtAqw -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')" = t ] ||
        die "role $TLS_ROLE cannot log in over TLS (verify-full)"
    if PGPASSWORD=$password PGSSLMODE=disable "$PGBIN/psql" "$tls_url" -XtAqw -c 'SELECT 1' \
        >/dev/null 2>&1; then
        die "role $TLS_ROLE logs in without TLS: pg_hba.conf is not in force"
    fi
    umask 077
    cat > "$ENV_FILE.tmp" <<ENV
export KLACHTD_TEST_PG=$url
export KLACHTD_TEST_PG_PASSWORD=$password
export KLACHTD_TEST_PG_TLS_ROLE=$TLS_ROLE
export KLACHTD_TEST_PG_CA=$CLUSTER_DIR/tls/ca.crt
ENV
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    echo "pgcluster: PostgreSQL 15 in $CLUSTER_DIR on 127.0.0.1:$PORT" >&2
    cat "$ENV_FILE"
}

stop() {
    [ -d "$STATE_DIR" ] || { echo "pgcluster: nothing to stop" >&2; return 0; }
    exec 9>"$STATE_DIR/lock"
    flock 9
    load_state
    if [ -z "$CLUSTER_DIR" ]; then
        echo "pgcluster: nothing to stop" >&2
        return 0
    fi
    teardown
    echo "pgcluster: stopped and removed $CLUSTER_DIR" >&2
}

env_cmd() {
    load_state
    cluster_usable || die "no cluster runs (bash scripts/pgcluster.sh start)"
    cat "$ENV_FILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env) env_cmd ;;
    *) die "usage: pgcluster.sh start|stop|env" ;;
esac

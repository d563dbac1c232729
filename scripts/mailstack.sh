#!/usr/bin/env bash
# mailstack.sh: a throwaway Dovecot (IMAP, LMTP) + Postfix (SMTP) on loopback, without systemd,
# everything (config, certs, mail, queue, logs) inside one directory. For klachtd's integration
# tests and for trying the daemon by hand; never for production.
#
# Usage:
#   mailstack.sh install              install the Debian packages if the binaries are missing
#   mailstack.sh start DIR            install if needed, then (re)start the stack in DIR; prints
#                                     and writes DIR/stack.env (ports are kept across restarts)
#   mailstack.sh stop DIR             stop what `start` started in DIR (and nothing else)
#   mailstack.sh dovecot-stop DIR     stop only Dovecot  (tests: connection loss)
#   mailstack.sh dovecot-start DIR    start only Dovecot again, on the same ports
#   mailstack.sh dovecot-restart DIR  both of the above
#   mailstack.sh postfix-stop DIR     stop only Postfix  (tests: SMTP unreachable)
#   mailstack.sh postfix-start DIR    start only Postfix again, on the same ports
#   mailstack.sh status DIR           say what runs
#
# DIR/stack.env (shell-sourceable): IMAP_PORT (STARTTLS), IMAPS_PORT (implicit TLS), LMTP_PORT,
# SMTP_PORT (STARTTLS), SMTPS_PORT (implicit TLS, "wrappermode"), OAUTH_PORT, CA_FILE,
# DOVECOT_CONF, POSTFIX_DIR, DOVEADM, MAIL_PASSWORD, REJECT_RCPT, STACK_DIR.
#
# Users: any user@example.test logs in with password `secret` (any other password or domain
# fails); every such address has a mailbox, created on first use. XOAUTH2 and OAUTHBEARER (IMAP,
# and SMTP AUTH through Dovecot's SASL) are checked by POSTing the token to
# http://127.0.0.1:$OAUTH_PORT/introspect (RFC 7662): whoever serves that port (a test) answers
# {"active": true, "username": "user@example.test"} for a valid token. Handy doveadm calls:
#   . DIR/stack.env
#   $DOVEADM expunge -u a@example.test mailbox INBOX all          # empty a folder
#   $DOVEADM mailbox delete -u a@example.test -s Folder           # delete (new UIDVALIDITY on create)
#   $DOVEADM mailbox create -u a@example.test Folder
#   $DOVEADM mailbox status -u a@example.test 'messages uidvalidity' INBOX
#   $DOVEADM save -u a@example.test -m INBOX < mail.eml            # deliver without SMTP
# Postfix rejects RCPT TO:<$REJECT_RCPT> with 550 and relaying to other domains with 554.
#
# Environment: MAIL_LOCATION (default mdbox:~/mdbox; e.g. maildir:~/Maildir);
#   IMAP_CAPABILITY replaces the advertised IMAP capabilities (tests: a server without MOVE).
set -euo pipefail

DOMAIN=example.test
PASSWORD=secret
REJECT_RCPT=reject@example.test

die() { echo "mailstack: $*" >&2; exit 1; }

have_binaries() {
    command -v dovecot >/dev/null && command -v doveadm >/dev/null &&
        [ -x /usr/lib/dovecot/lmtp ] && [ -x /usr/lib/dovecot/imap ] &&
        command -v postfix >/dev/null && command -v openssl >/dev/null
}

# apt may be busy (unattended upgrades, a parallel test run): wait for its locks, bounded.
wait_for_apt() {
    local i
    for i in $(seq 1 120); do
        if ! fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock \
            >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    die "apt/dpkg lock still held after 120 s"
}

install_packages() {
    if have_binaries; then
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "need root to install packages"
    # Serialise concurrent installers (several test binaries may start at once).
    exec 9>/tmp/klachtd-mailstack-install.lock
    flock 9
    if have_binaries; then
        return 0
    fi
    echo "mailstack: installing dovecot-imapd dovecot-lmtpd postfix openssl" >&2
    export DEBIAN_FRONTEND=noninteractive
    # "No configuration": the package must not set up (or start) a system-wide MTA.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    wait_for_apt
    if ! apt-get install -y -q dovecot-imapd dovecot-lmtpd postfix openssl >&2; then
        wait_for_apt
        apt-get update -q >&2
        apt-get install -y -q dovecot-imapd dovecot-lmtpd postfix openssl >&2
    fi
    have_binaries || die "packages installed but binaries missing"
}

# N distinct free loopback ports: bound together so they differ, then released.
free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A killed process stays a zombie until PID 1 reaps it, which in a container can take seconds;
# `kill -0` still succeeds on a zombie. Alive means: exists and is not a zombie.
pid_alive() {
    [ -n "${1:-}" ] || return 1
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# wait_port PORT WHAT PID LOG: until PORT accepts, up to 30 s (a loaded CI machine starts
# slowly); fails at once, with the end of LOG, when PID (the server) has exited.
wait_port() {
    local port=$1 what=$2 pid=${3:-} log=${4:-} i
    for i in $(seq 1 1200); do
        port_open "$port" && return 0
        if [ -n "$pid" ] && ! pid_alive "$pid"; then
            echo "mailstack: $what exited before listening on 127.0.0.1:$port" >&2
            [ -n "$log" ] && tail -n 20 "$log" >&2
            return 1
        fi
        sleep 0.025
    done
    echo "mailstack: $what did not listen on 127.0.0.1:$port within 30 s (see logs in $DIR)" >&2
    [ -n "$log" ] && tail -n 20 "$log" >&2
    return 1
}

# wait_gone SECONDS PID...: until none of the PIDs is alive; returns 1 if some still are.
wait_gone() {
    local ticks=$(($1 * 40)) i p left
    shift
    for i in $(seq 1 "$ticks"); do
        left=""
        for p in "$@"; do pid_alive "$p" && left="$left $p"; done
        [ -z "$left" ] && return 0
        sleep 0.025
    done
    return 1
}

# wait_ports_free PORT...: until nothing accepts on any of them (up to 10 s).
wait_ports_free() {
    local i p busy
    for i in $(seq 1 400); do
        busy=""
        for p in "$@"; do port_open "$p" && busy="$busy $p"; done
        [ -z "$busy" ] && return 0
        sleep 0.025
    done
    echo "mailstack: ports$busy still in use after 10 s" >&2
    return 1
}

make_certs() {
    local t="$DIR/tls"
    [ -s "$t/server.pem" ] && [ -s "$t/ca.pem" ] && return 0
    mkdir -p "$t"
    # rustls rejects a self-signed certificate that is its own CA (CaUsedAsEndEntity): make a
    # CA and sign a leaf for localhost and 127.0.0.1 with it.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$t/ca.key" -out "$t/ca.pem" -days 3650 -subj "/CN=klachtd test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$t/server.key" -out "$t/server.csr" -subj "/CN=localhost" 2>/dev/null
    cat > "$t/leaf.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" \
        -CAcreateserial -out "$t/server.pem" -days 3650 -extfile "$t/leaf.ext" 2>/dev/null
    chmod 0644 "$t/server.key"   # postfix/dovecot read it as root; the dir is ours alone
}

load_or_pick_ports() {
    if [ -s "$DIR/ports" ]; then
        # shellcheck disable=SC1091
        . "$DIR/ports"
        # A directory kept from before the introspection endpoint existed.
        if [ -z "${OAUTH_PORT:-}" ]; then
            OAUTH_PORT=$(free_ports 1)
            echo "OAUTH_PORT=$OAUTH_PORT" >> "$DIR/ports"
        fi
    else
        read -r IMAP_PORT IMAPS_PORT LMTP_PORT SMTP_PORT SMTPS_PORT OAUTH_PORT <<<"$(free_ports 6)"
        cat > "$DIR/ports" <<P
IMAP_PORT=$IMAP_PORT
IMAPS_PORT=$IMAPS_PORT
LMTP_PORT=$LMTP_PORT
SMTP_PORT=$SMTP_PORT
SMTPS_PORT=$SMTPS_PORT
OAUTH_PORT=$OAUTH_PORT
P
    fi
}

write_dovecot_conf() {
    local d="$DIR/dovecot" dh=""
    mkdir -p "$d/run" "$d/state" "$DIR/mail"
    chown nobody:nogroup "$DIR/mail"
    if [ -s /usr/share/dovecot/dh.pem ]; then dh="ssl_dh = </usr/share/dovecot/dh.pem"; fi
    cat > "$d/dovecot.conf" <<CONF
# Generated by mailstack.sh; do not edit (rewritten on every start).
instance_name = klachtd-$(basename "$DIR")-$$
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
listen = 127.0.0.1
protocols = imap lmtp
ssl = yes
ssl_cert = <$DIR/tls/server.pem
ssl_key = <$DIR/tls/server.key
$dh
# Loopback test stack: tls = "none" must be testable too.
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
# Otherwise every wrong password costs 2 s.
auth_failure_delay = 0
first_valid_uid = 1
mail_location = ${MAIL_LOCATION:-mdbox:~/mdbox}
${IMAP_CAPABILITY:+imap_capability = $IMAP_CAPABILITY}
postmaster_address = postmaster@$DOMAIN
namespace inbox {
  inbox = yes
  separator = /
}
# XOAUTH2 and OAUTHBEARER: Dovecot asks the token's owner at an introspection endpoint that
# the tests serve on 127.0.0.1:$OAUTH_PORT (nothing listens there otherwise).
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $d/oauth2.conf.ext
}
# Any user@$DOMAIN with password "$PASSWORD"; other domains get a password nobody knows.
passdb {
  driver = static
  mechanisms = plain login
  args = password=%{if;%d;eq;$DOMAIN;$PASSWORD;no-such-password-$(openssl rand -hex 16)}
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$DIR/mail/%d/%n allow_all_users=yes
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $LMTP_PORT
  }
}
service auth {
  unix_listener auth-client {
    mode = 0666
  }
}
protocol imap {
  mail_max_userip_connections = 200
}
CONF
    # RFC 7662 introspection by POST; the answer names the user and whether the token is live.
    cat > "$d/oauth2.conf.ext" <<OAUTH
introspection_mode = post
introspection_url = http://127.0.0.1:$OAUTH_PORT/introspect
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
OAUTH
}

start_dovecot() {
    local d="$DIR/dovecot" pid attempt
    if pid_alive "$(cat "$d/dovecot.pid" 2>/dev/null || true)"; then
        return 0
    fi
    for attempt in 1 2 3; do
        # Dovecot refuses to start while run/master.pid names a live process; a master we
        # stopped may still be an unreaped zombie there.
        pid=$(cat "$d/run/master.pid" 2>/dev/null || true)
        pid_alive "$pid" || rm -f "$d/run/master.pid"
        dovecot -F -c "$d/dovecot.conf" >>"$d/dovecot.out" 2>&1 &
        pid=$!
        echo "$pid" > "$d/dovecot.pid"
        if wait_port "$IMAP_PORT" dovecot "$pid" "$d/dovecot.out" &&
            wait_port "$IMAPS_PORT" dovecot "$pid" "$d/dovecot.out" &&
            wait_port "$LMTP_PORT" dovecot "$pid" "$d/dovecot.out"; then
            return 0
        fi
        tail -n 5 "$d/dovecot.log" >&2 2>/dev/null || true
        echo "mailstack: dovecot start attempt $attempt failed; retrying" >&2
        stop_dovecot
    done
    die "dovecot did not start (see $d/dovecot.out and $d/dovecot.log)"
}

stop_dovecot() {
    local d="$DIR/dovecot" pid children
    pid=$(cat "$d/dovecot.pid" 2>/dev/null || true)
    if pid_alive "$pid"; then
        # The master's children (login, auth, imap sessions) may outlive it and keep serving
        # open connections, or keep a listening socket: end them too, and only them.
        children=$(cat /proc/"$pid"/task/*/children 2>/dev/null || pgrep -P "$pid" || true)
        # shellcheck disable=SC2086
        kill "$pid" $children 2>/dev/null || true
        # shellcheck disable=SC2086
        if ! wait_gone 3 "$pid" $children; then
            # shellcheck disable=SC2086
            kill -9 "$pid" $children 2>/dev/null || true
            # shellcheck disable=SC2086
            wait_gone 5 "$pid" $children || echo "mailstack: dovecot processes survive SIGKILL" >&2
        fi
    fi
    rm -f "$d/dovecot.pid"
    pid=$(cat "$d/run/master.pid" 2>/dev/null || true)
    pid_alive "$pid" || rm -f "$d/run/master.pid"
    wait_ports_free "$IMAP_PORT" "$IMAPS_PORT" "$LMTP_PORT" || true
}

write_postfix_conf() {
    local p="$DIR/postfix"
    mkdir -p "$p/etc" "$p/queue" "$p/data"
    chown postfix "$p/data"
    cat > "$p/etc/recipient_access" <<RA
/^$(printf '%s' "$REJECT_RCPT" | sed 's/\./\\./g')\$/ 550 5.1.1 rejected by the klachtd test stack
RA
    cat > "$p/etc/main.cf" <<CF
# Generated by mailstack.sh; do not edit (rewritten on every start).
compatibility_level = 3.6
queue_directory = $p/queue
data_directory = $p/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.$DOMAIN
mydomain = $DOMAIN
myorigin = \$mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
biff = no
# Everything for $DOMAIN goes to Dovecot over LMTP; nothing leaves the machine.
virtual_mailbox_domains = $DOMAIN
virtual_alias_domains =
virtual_alias_maps =
virtual_transport = lmtp:inet:127.0.0.1:$LMTP_PORT
default_transport = error:the klachtd test stack delivers nowhere else
relay_transport = error:the klachtd test stack delivers nowhere else
smtpd_recipient_restrictions = check_recipient_access regexp:$p/etc/recipient_access, reject_unauth_destination, permit
smtpd_tls_cert_file = $DIR/tls/server.pem
smtpd_tls_key_file = $DIR/tls/server.key
smtpd_tls_security_level = may
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $DIR/dovecot/run/auth-client
smtpd_tls_auth_only = no
# No syslog here: without a log file every error vanishes.
maillog_file = $p/postfix.log
maillog_file_prefixes = $p
CF
    cat > "$p/etc/master.cf" <<MC
# Generated by mailstack.sh. No chroot (the paths live in $DIR), no pipe transports.
127.0.0.1:$SMTP_PORT  inet  n  -  n  -  -  smtpd
127.0.0.1:$SMTPS_PORT inet  n  -  n  -  -  smtpd
  -o smtpd_tls_wrappermode=yes
pickup    unix  n  -  n  60   1  pickup
cleanup   unix  n  -  n  -    0  cleanup
qmgr      unix  n  -  n  300  1  qmgr
tlsmgr    unix  -  -  n  1000? 1 tlsmgr
rewrite   unix  -  -  n  -    -  trivial-rewrite
bounce    unix  -  -  n  -    0  bounce
defer     unix  -  -  n  -    0  bounce
trace     unix  -  -  n  -    0  bounce
verify    unix  -  -  n  -    1  verify
flush     unix  n  -  n  1000? 0 flush
proxymap  unix  -  -  n  -    -  proxymap
proxywrite unix -  -  n  -    1  proxymap
smtp      unix  -  -  n  -    -  smtp
relay     unix  -  -  n  -    -  smtp
showq     unix  n  -  n  -    -  showq
error     unix  -  -  n  -    -  error
retry     unix  -  -  n  -    -  error
discard   unix  -  -  n  -    -  discard
local     unix  -  n  n  -    -  local
virtual   unix  -  n  n  -    -  virtual
lmtp      unix  -  -  n  -    -  lmtp
anvil     unix  -  -  n  -    1  anvil
scache    unix  -  -  n  -    1  scache
postlog   unix-dgram n - n -  1  postlogd
MC
}

postfix_master_pid() { cat "$DIR/postfix/queue/pid/master.pid" 2>/dev/null | tr -d ' ' || true; }

start_postfix() {
    local p="$DIR/postfix"
    if pid_alive "$(postfix_master_pid)"; then
        return 0
    fi
    postfix -c "$p/etc" start-fg >>"$p/postfix.out" 2>&1 &
    echo $! > "$p/start-fg.pid"
    wait_port "$SMTP_PORT" postfix "" "$p/postfix.out" || die "postfix did not start"
    wait_port "$SMTPS_PORT" postfix "" "$p/postfix.out" || die "postfix did not start"
}

stop_postfix() {
    local p="$DIR/postfix" pid i
    pid=$(postfix_master_pid)
    if pid_alive "$pid"; then
        postfix -c "$p/etc" stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
        wait_gone 5 "$pid" || kill -9 "$pid" 2>/dev/null || true
        wait_gone 5 "$pid" || true
    fi
    pid=$(cat "$p/start-fg.pid" 2>/dev/null || true)
    pid_alive "$pid" && kill "$pid" 2>/dev/null || true
    rm -f "$p/start-fg.pid"
    wait_ports_free "$SMTP_PORT" "$SMTPS_PORT" || true
}

write_env() {
    {
        echo "STACK_DIR=$DIR"
        cat "$DIR/ports"
    } > "$DIR/stack.env"
    cat >> "$DIR/stack.env" <<ENV
CA_FILE=$DIR/tls/ca.pem
DOVECOT_CONF=$DIR/dovecot/dovecot.conf
POSTFIX_DIR=$DIR/postfix/etc
DOVEADM="doveadm -c $DIR/dovecot/dovecot.conf"
MAIL_DOMAIN=$DOMAIN
MAIL_PASSWORD=$PASSWORD
REJECT_RCPT=$REJECT_RCPT
ENV
}

need_dir() {
    [ -n "${1:-}" ] || die "usage: mailstack.sh $CMD DIR"
    mkdir -p "$1"
    DIR=$(cd "$1" && pwd)
    # Mail is stored as user nobody: it must be able to reach DIR/mail (tempdirs are 0700).
    chmod o+x "$DIR"
}

need_env() {
    need_dir "$@"
    [ -s "$DIR/ports" ] || die "no stack in $DIR (run start first)"
    # shellcheck disable=SC1091
    . "$DIR/ports"
}

CMD=${1:-}
shift || true
case "$CMD" in
    install)
        install_packages
        ;;
    start)
        need_dir "$@"
        install_packages
        load_or_pick_ports
        stop_postfix
        stop_dovecot
        make_certs
        write_dovecot_conf
        write_postfix_conf
        start_dovecot
        start_postfix
        write_env
        cat "$DIR/stack.env"
        ;;
    stop)
        need_env "$@"
        stop_postfix
        stop_dovecot
        ;;
    dovecot-stop) need_env "$@"; stop_dovecot ;;
    dovecot-start) need_env "$@"; start_dovecot ;;
    dovecot-restart) need_env "$@"; stop_dovecot; start_dovecot ;;
    postfix-stop) need_env "$@"; stop_postfix ;;
    postfix-start) need_env "$@"; start_postfix ;;
    status)
        need_env "$@"
        pid_alive "$(cat "$DIR/dovecot/dovecot.pid" 2>/dev/null || true)" &&
            echo "dovecot running" || echo "dovecot stopped"
        pid_alive "$(postfix_master_pid)" && echo "postfix running" || echo "postfix stopped"
        ;;
    *)
        sed -n '2,32p' "$0" >&2
        exit 2
        ;;
esac

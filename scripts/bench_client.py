#!/usr/bin/env python3
"""Plain IMAP/SMTP clients for scripts/bench.sh (Python standard library only).

  fill      APPEND N complaints to a mailbox, pipelined (LITERAL+) on one connection: the
            setup, not timed by the benchmark.
  fetchflag the physical limit of reading: per mail `UID FETCH n BODY.PEEK[]` then
            `UID STORE n +FLAGS (\\Seen)`, one command at a time, over STARTTLS like klachtd.
  smtpsend  send the raw mails of a klachtd outbox (sqlite, or rows exported from PostgreSQL
            as tab-separated envelope_from, recipients, hex raw) with smtplib over STARTTLS on
            C connections at the same time (one thread each).
  trickle   APPEND one complaint at a time, a random 100-200 ms apart, until a stop file
            exists; each APPEND's index and end time go to a file (for the failover figure).
  latency   a minimal SMTP sink plus an appender: APPEND one complaint, wait until its
            acknowledgement is accepted by the sink, repeat; prints p50/p99.
  staffreply the same sink and appender for staff mail: APPEND a few complaints, take the
            new-complaint notices the sink accepts (their Reply-To and Message-ID), then APPEND
            one staff reply at a time ("#notitie meting N") and wait until the sink accepts its
            confirmation (matched on In-Reply-To); prints p50/p99.

Every command prints one JSON object on stdout.
"""

import argparse
import json
import os
import socket
import socketserver
import sqlite3
import ssl
import sys
import threading
import time
import imaplib
import smtplib
from email.parser import BytesHeaderParser
from email.utils import formatdate, parseaddr

ATTACHMENT = None


def attachment_b64():
    """100 KB of binary data, base64, 76-character lines."""
    global ATTACHMENT
    if ATTACHMENT is None:
        import base64

        data = base64.b64encode(os.urandom(100 * 1024)).decode()
        ATTACHMENT = "\r\n".join(data[i : i + 76] for i in range(0, len(data), 76))
    return ATTACHMENT


def complaint(tag, i, to, attach):
    """A complaint of about 1 KB, from a distinct address; with a 100 KB PDF when `attach`."""
    sender = f"{tag}-{i}@example.test"
    body = (
        f"Geachte heer, mevrouw,\r\n\r\nKlacht nummer {i}. "
        + "Ik ben niet tevreden over de gang van zaken bij het concert. " * 14
        + "\r\n\r\nMet vriendelijke groet,\r\nKlager {i}\r\n"
    )
    head = (
        f"From: Klager {i} <{sender}>\r\nTo: <{to}>\r\nSubject: Klacht {tag} {i}\r\n"
        f"Message-ID: <{tag}-{i}@klager.example.test>\r\nDate: {formatdate(localtime=True)}\r\n"
        "MIME-Version: 1.0\r\n"
    )
    if not attach:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()
    b = f"b-{tag}-{i}"
    return (
        head
        + f'Content-Type: multipart/mixed; boundary="{b}"\r\n\r\n'
        + f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        + f'--{b}\r\nContent-Type: application/pdf; name="bijlage-{i}.pdf"\r\n'
        + f'Content-Disposition: attachment; filename="bijlage-{i}.pdf"\r\n'
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + attachment_b64()
        + f"\r\n--{b}--\r\n"
    ).encode()


class RawImap:
    """Plain-TCP IMAP for bulk APPEND (the test stack allows plaintext login on loopback)."""

    def __init__(self, port, user):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.f = self.sock.makefile("rb")
        greeting = self.f.readline()
        assert greeting.startswith(b"* OK"), greeting
        self.tag = 0
        self.command(f'LOGIN "{user}" "secret"')

    def wait(self, tag):
        while True:
            line = self.f.readline()
            if not line:
                raise SystemExit("IMAP server closed the connection")
            if line.startswith(tag.encode() + b" "):
                if not line[len(tag) + 1 :].startswith(b"OK"):
                    raise SystemExit(f"IMAP: {line!r}")
                return

    def command(self, cmd):
        self.tag += 1
        tag = f"c{self.tag}"
        self.sock.sendall(f"{tag} {cmd}\r\n".encode())
        self.wait(tag)

    def append_all(self, folder, mails, per_command=100):
        """MULTIAPPEND (RFC 3502) with LITERAL+: `per_command` mails per command, which
        Dovecot stores in one transaction; all commands pipelined."""
        groups = [mails[i : i + per_command] for i in range(0, len(mails), per_command)]
        first = self.tag + 1
        self.tag += len(groups)

        def writer():
            for n, group in enumerate(groups):
                parts = [f'c{first + n} APPEND "{folder}"'.encode()]
                for m in group:
                    parts.append(f" {{{len(m)}+}}\r\n".encode())
                    parts.append(m)
                parts.append(b"\r\n")
                self.sock.sendall(b"".join(parts))

        t = threading.Thread(target=writer)
        t.start()
        for n in range(len(groups)):
            self.wait(f"c{first + n}")
        t.join()


def cmd_fill(a):
    started = time.time()
    imap = RawImap(a.port, a.user)
    total = 0
    chunk = 500
    for start in range(0, a.n, chunk):
        mails = [
            complaint(a.tag, i, a.user, a.attach_every and i % a.attach_every == a.attach_every - 1)
            for i in range(start, min(a.n, start + chunk))
        ]
        total += sum(len(m) for m in mails)
        imap.append_all(a.folder, mails)
    imap.command("LOGOUT")
    print(json.dumps({"appended": a.n, "bytes": total, "seconds": time.time() - started}))


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    return ctx


def cmd_fetchflag(a):
    imap = imaplib.IMAP4("127.0.0.1", a.port)
    imap.starttls(ssl_context=tls_context(a.ca))
    imap.login(a.user, "secret")
    imap.select(a.folder)
    if a.unseen_first:
        # Not timed: every mail unread again, so each STORE below really changes a flag.
        imap.uid("STORE", "1:*", "-FLAGS.SILENT", "(\\Seen)")
    started = time.time()
    typ, data = imap.uid("SEARCH", None, "ALL")
    uids = data[0].split()
    size = 0
    for uid in uids:
        typ, data = imap.uid("FETCH", uid, "(BODY.PEEK[])")
        assert typ == "OK", data
        size += len(data[0][1])
        typ, data = imap.uid("STORE", uid, "+FLAGS", "(\\Seen)")
        assert typ == "OK", data
    seconds = time.time() - started
    imap.logout()
    print(json.dumps({"mails": len(uids), "bytes": size, "seconds": seconds}))


def outbox_rows(a):
    """(envelope_from, recipients, raw) of the first `a.n` outbox mails, in id order."""
    if a.tsv:
        rows = []
        with open(a.tsv) as f:
            for line in f:
                env_from, recipients, raw_hex = line.rstrip("\n").split("\t")
                # psql shows bytea as \x followed by hex digits.
                rows.append((env_from, recipients, bytes.fromhex(raw_hex.removeprefix("\\x"))))
        return rows[: a.n]
    db = sqlite3.connect(a.db)
    rows = db.execute(
        "SELECT envelope_from, recipients, raw FROM outbox ORDER BY id LIMIT ?", (a.n,)
    ).fetchall()
    db.close()
    return rows


def cmd_smtpsend(a):
    rows = outbox_rows(a)
    ctx = tls_context(a.ca)
    per = -(-len(rows) // a.connections)
    parts = [rows[c * per : (c + 1) * per] for c in range(a.connections)]
    sent = [0] * len(parts)
    errors = []

    def one_connection(c):
        try:
            s = smtplib.SMTP("127.0.0.1", a.port)
            s.starttls(context=ctx)
            s.ehlo()
            for env_from, recipients, raw in parts[c]:
                rcpts = json.loads(recipients) if recipients.startswith("[") else recipients.split(",")
                s.sendmail(env_from, [r.strip() for r in rcpts], raw)
                sent[c] += 1
            s.quit()
        except Exception as e:  # reported below, and the run fails
            errors.append(repr(e))

    # The connections run at the same time, as klachtd's do ([outgoing] connections).
    threads = [threading.Thread(target=one_connection, args=(c,)) for c in range(len(parts)) if parts[c]]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.time() - started
    if errors:
        sys.exit("smtpsend failed: " + "; ".join(errors))
    print(json.dumps({"sent": sum(sent), "seconds": seconds}))


def cmd_trickle(a):
    import random

    imap = RawImap(a.port, a.user)
    started = time.time()
    i = 0
    with open(a.log, "w") as log:
        while not os.path.exists(a.stop):
            imap.append_all(a.folder, [complaint(a.tag, i, a.user, False)], 1)
            log.write(f"{i} {time.time():.6f}\n")
            log.flush()
            i += 1
            time.sleep(random.uniform(a.gap_min, a.gap_max))
    imap.command("LOGOUT")
    print(json.dumps({"appended": i, "seconds": time.time() - started}))


class Sink(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port):
        super().__init__(("127.0.0.1", port), SinkHandler)
        self.accepted = {}  # recipient -> time the DATA was accepted
        self.by_in_reply_to = {}  # In-Reply-To header value -> time the DATA was accepted
        self.messages = []  # (time, recipients, headers) of every accepted mail
        self.cond = threading.Condition()


class SinkHandler(socketserver.StreamRequestHandler):
    def handle(self):
        w = self.wfile
        w.write(b"220 bench sink ESMTP\r\n")
        rcpts = []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                w.write(b"250-bench sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"MAIL":
                rcpts = []
                w.write(b"250 2.1.0 Ok\r\n")
            elif verb == b"RCPT":
                addr = line.split(b":", 1)[1].strip().split(b">")[0].lstrip(b"<")
                rcpts.append(addr.decode().lower())
                w.write(b"250 2.1.5 Ok\r\n")
            elif verb == b"DATA":
                w.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                w.flush()
                head, in_head = [], True
                while True:
                    l = self.rfile.readline()
                    if not l or l == b".\r\n":
                        break
                    if in_head:
                        if l in (b"\r\n", b"\n"):
                            in_head = False
                        else:
                            # RFC 5321 section 4.5.2: a leading dot was doubled.
                            head.append(l[1:] if l.startswith(b"..") else l)
                now = time.time()
                w.write(b"250 2.0.0 Ok: queued\r\n")
                w.flush()
                # The headers are read after the 250, outside the measured time.
                headers = BytesHeaderParser().parsebytes(b"".join(head) + b"\r\n")
                srv = self.server
                with srv.cond:
                    for r in rcpts:
                        srv.accepted[r] = now
                    irt = unfold(headers.get("In-Reply-To"))
                    if irt:
                        srv.by_in_reply_to[irt] = now
                    srv.messages.append((now, list(rcpts), headers))
                    srv.cond.notify_all()
            elif verb == b"QUIT":
                w.write(b"221 2.0.0 Bye\r\n")
                return
            elif verb in (b"RSET", b"NOOP"):
                w.write(b"250 2.0.0 Ok\r\n")
            else:
                w.write(b"502 5.5.2 Error: command not recognized\r\n")
            w.flush()


def percentile(sorted_values, p):
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def cmd_latency(a):
    sink = Sink(a.sink_port)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    with open(a.ready, "w") as f:
        f.write("ready\n")
    # Wait until the daemon is up and idling (the caller touches this file).
    while not os.path.exists(a.go):
        time.sleep(0.05)
    imap = RawImap(a.port, a.user)
    latencies = []
    tag = a.tag
    for i in range(a.n):
        sender = f"{tag}-{i}@example.test"
        mail = complaint(tag, i, a.user, False)
        t0 = time.time()
        imap.append_all("INBOX", [mail], 1)
        with sink.cond:
            ok = sink.cond.wait_for(lambda: sender in sink.accepted, timeout=a.timeout)
        if not ok:
            raise SystemExit(f"no acknowledgement for mail {i} within {a.timeout} s")
        latencies.append(sink.accepted[sender] - t0)
        time.sleep(a.gap)
    imap.command("LOGOUT")
    s = sorted(latencies)
    print(
        json.dumps(
            {
                "mails": len(s),
                "p50": percentile(s, 50),
                "p99": percentile(s, 99),
                "max": s[-1],
                "min": s[0],
            }
        )
    )
    sink.shutdown()


def unfold(value):
    """A header value on one line (RFC 5322 section 2.2.3), runs of whitespace as one space."""
    return " ".join((value or "").split())


def staff_reply(tag, i, receiver, notice):
    """A staff reply to a new-complaint notice: to its tokened Reply-To, in its thread."""
    _, reply_to = parseaddr(unfold(notice["Reply-To"]))
    notice_id = unfold(notice["Message-ID"])
    message_id = f"<{tag}-{i}@medewerker.example.test>"
    mail = (
        f"From: Receptie <{receiver}>\r\nTo: <{reply_to}>\r\n"
        f"Subject: RE: {unfold(notice['Subject'])}\r\nMessage-ID: {message_id}\r\n"
        f"In-Reply-To: {notice_id}\r\nReferences: {notice_id}\r\n"
        f"Date: {formatdate(localtime=True)}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"#notitie meting {i}\r\n"
    )
    return mail.encode(), message_id


def cmd_staffreply(a):
    sink = Sink(a.sink_port)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    with open(a.ready, "w") as f:
        f.write("ready\n")
    while not os.path.exists(a.go):
        time.sleep(0.05)
    imap = RawImap(a.port, a.user)
    receiver = a.receiver.lower()
    # Setup, not timed: a few complaints and the notices the receiver gets for them.
    notices = []
    for c in range(a.complaints):
        imap.append_all("INBOX", [complaint(a.tag, c, a.user, False)], 1)
        subject_part = f"Klacht {a.tag} {c}"

        def notice():
            for _, rcpts, h in sink.messages:
                if receiver in rcpts and subject_part in unfold(h["Subject"]):
                    return h
            return None

        with sink.cond:
            ok = sink.cond.wait_for(lambda: notice() is not None, timeout=a.timeout)
        if not ok:
            raise SystemExit(f"no new-complaint notice for complaint {c} within {a.timeout} s")
        h = notice()
        if not h["Reply-To"] or not h["Message-ID"]:
            raise SystemExit(f"notice without Reply-To or Message-ID: {dict(h)}")
        notices.append(h)
    latencies = []
    for i in range(a.n):
        mail, message_id = staff_reply(a.tag, i, receiver, notices[i % len(notices)])
        t0 = time.time()
        imap.append_all("INBOX", [mail], 1)
        with sink.cond:
            ok = sink.cond.wait_for(lambda: message_id in sink.by_in_reply_to, timeout=a.timeout)
        if not ok:
            raise SystemExit(f"no confirmation for staff reply {i} within {a.timeout} s")
        latencies.append(sink.by_in_reply_to[message_id] - t0)
        time.sleep(a.gap)
    imap.command("LOGOUT")
    s = sorted(latencies)
    print(
        json.dumps(
            {
                "replies": len(s),
                "complaints": len(notices),
                "p50": percentile(s, 50),
                "p99": percentile(s, 99),
                "max": s[-1],
                "min": s[0],
            }
        )
    )
    sink.shutdown()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fill")
    f.add_argument("--port", type=int, required=True)
    f.add_argument("--user", required=True)
    f.add_argument("--folder", default="INBOX")
    f.add_argument("--n", type=int, required=True)
    f.add_argument("--tag", required=True)
    f.add_argument("--attach-every", type=int, default=10)
    f.set_defaults(fn=cmd_fill)
    g = sub.add_parser("fetchflag")
    g.add_argument("--port", type=int, required=True)
    g.add_argument("--ca", required=True)
    g.add_argument("--user", required=True)
    g.add_argument("--folder", default="INBOX")
    g.add_argument("--unseen-first", action="store_true")
    g.set_defaults(fn=cmd_fetchflag)
    s = sub.add_parser("smtpsend")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--ca", required=True)
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", help="the outbox of a klachtd SQLite database")
    src.add_argument("--tsv", help="outbox rows exported from PostgreSQL (psql -At, tab)")
    s.add_argument("--n", type=int, default=1 << 30)
    s.add_argument("--connections", type=int, default=1)
    s.set_defaults(fn=cmd_smtpsend)
    t = sub.add_parser("trickle")
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--user", required=True)
    t.add_argument("--folder", default="INBOX")
    t.add_argument("--tag", required=True)
    t.add_argument("--stop", required=True)
    t.add_argument("--log", required=True)
    t.add_argument("--gap-min", type=float, default=0.1)
    t.add_argument("--gap-max", type=float, default=0.2)
    t.set_defaults(fn=cmd_trickle)
    l = sub.add_parser("latency")
    l.add_argument("--port", type=int, required=True)
    l.add_argument("--user", required=True)
    l.add_argument("--sink-port", type=int, required=True)
    l.add_argument("--n", type=int, default=200)
    l.add_argument("--tag", required=True)
    l.add_argument("--ready", required=True)
    l.add_argument("--go", required=True)
    l.add_argument("--gap", type=float, default=0.05)
    l.add_argument("--timeout", type=float, default=30)
    l.set_defaults(fn=cmd_latency)
    r = sub.add_parser("staffreply")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--user", required=True)
    r.add_argument("--receiver", required=True)
    r.add_argument("--sink-port", type=int, required=True)
    r.add_argument("--n", type=int, default=200)
    r.add_argument("--complaints", type=int, default=3)
    r.add_argument("--tag", required=True)
    r.add_argument("--ready", required=True)
    r.add_argument("--go", required=True)
    r.add_argument("--gap", type=float, default=0.05)
    r.add_argument("--timeout", type=float, default=30)
    r.set_defaults(fn=cmd_staffreply)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()

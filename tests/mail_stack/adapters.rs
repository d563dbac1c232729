//! The IMAP source and the SMTP transport, called directly, against the stack's Dovecot and
//! Postfix.
//!
//! Every test uses its own mailbox address, so they run in parallel (with each other and with
//! the end-to-end tests); the tests that stop a server take the write half of `DISRUPT`, the
//! others the read half.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use futures_util::TryStreamExt;
use klachtd::config::{
    AuthMethod, Mailbox, MailboxKind, OAuth2, Outgoing, OutgoingKind, Secret, TlsMode,
};
use klachtd::mailbox::imap::ImapSource;
use klachtd::mailbox::{self, MailSource, MailboxError};
use klachtd::oauth2::TokenSource;
use klachtd::outgoing::smtp::SmtpTransport;
use klachtd::outgoing::{Envelope, SendError, Transport};

use super::provider::Provider;
use super::stack::{DISRUPT, Stack, stack, stack_without_move};

fn mailbox(stack: &Stack, user: &str, tls: TlsMode, auth: AuthMethod) -> Mailbox {
    let port = match tls {
        TlsMode::Implicit => stack.port("IMAPS_PORT"),
        _ => stack.port("IMAP_PORT"),
    };
    Mailbox {
        kind: MailboxKind::Imap,
        path: None,
        host: Some("127.0.0.1".into()),
        port: Some(port),
        tls,
        ca_file: Some(stack.ca()),
        username: Some(user.into()),
        password: Secret::new("secret"),
        password_file: None,
        auth,
        folder: "INBOX".into(),
        processed_folder: None,
        idle: true,
        poll_interval: 600,
        oauth2: OAuth2::default(),
    }
}

fn outgoing(stack: &Stack, tls: TlsMode, user: Option<&str>) -> Outgoing {
    let port = match tls {
        TlsMode::Implicit => stack.port("SMTPS_PORT"),
        _ => stack.port("SMTP_PORT"),
    };
    Outgoing {
        kind: OutgoingKind::Smtp,
        from: "service@example.test".into(),
        from_name: None,
        path: None,
        host: Some("127.0.0.1".into()),
        port: Some(port),
        tls,
        ca_file: Some(stack.ca()),
        username: user.map(str::to_string),
        password: Secret::new("secret"),
        password_file: None,
        auth: AuthMethod::Plain,
        connections: 2,
        oauth2: OAuth2::default(),
    }
}

type Helper = async_imap::Session<tokio::net::TcpStream>;

/// A second, independent IMAP connection (plain, loopback) playing the other side.
async fn helper(stack: &Stack, user: &str) -> Helper {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", stack.port("IMAP_PORT")))
        .await
        .expect("connect");
    let mut client = async_imap::Client::new(tcp);
    client
        .read_response()
        .await
        .expect("greeting")
        .expect("greeting");
    client
        .login(user, "secret")
        .await
        .map_err(|(e, _)| e)
        .expect("login")
}

async fn append(h: &mut Helper, folder: &str, mail: &str, date: Option<&str>) {
    let quoted = date.map(|d| format!("\"{d}\""));
    h.append(folder, None, quoted.as_deref(), mail.replace('\n', "\r\n"))
        .await
        .expect("APPEND");
}

async fn seen_flags(h: &mut Helper, folder: &str) -> Vec<(u32, bool)> {
    h.select(folder).await.expect("select");
    let fetches: Vec<_> = h
        .uid_fetch("1:*", "(UID FLAGS)")
        .await
        .expect("fetch")
        .try_collect()
        .await
        .expect("fetch");
    let mut out: Vec<(u32, bool)> = fetches
        .iter()
        .map(|f| {
            let seen = f
                .flags()
                .any(|fl| matches!(fl, async_imap::types::Flag::Seen));
            (f.uid.unwrap_or(0), seen)
        })
        .collect();
    out.sort();
    out
}

fn mail(id: &str, body: &str) -> String {
    format!(
        "From: Klager <klager@example.org>\nTo: klachten@example.test\nSubject: Klacht {id}\nMessage-ID: <{id}@example.org>\nDate: Mon, 1 Jan 2024 09:00:00 +0100\n\n{body}\n"
    )
}

#[tokio::test]
async fn imap_pending_fetch_and_mark_over_starttls() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.read().await;
    let user = "starttls@example.test";
    let mut h = helper(stack, user).await;
    append(
        &mut h,
        "INBOX",
        &mail("a1", "eerste"),
        Some("01-Jan-2024 10:00:00 +0100"),
    )
    .await;
    append(
        &mut h,
        "INBOX",
        &mail("a2", "tweede"),
        Some("02-Jan-2024 11:30:00 +0000"),
    )
    .await;

    let mut src = ImapSource::new(
        &mailbox(stack, user, TlsMode::Starttls, AuthMethod::Login),
        None,
    )
    .expect("new");
    assert_eq!(src.id(), format!("imap:{user}@127.0.0.1/INBOX"));
    let waiting = src.pending(None).await.expect("pending");
    let keys = mailbox::keys(&waiting);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let mails = src.fetch(&keys).await.expect("fetch");
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].key, keys[0]);
    // RFC822.SIZE, known before the fetch: what batches are bounded by.
    for (w, m) in waiting.iter().zip(&mails) {
        assert_eq!(w.size, m.bytes.len() as u64, "{}", w.key);
    }
    assert!(String::from_utf8_lossy(&mails[0].bytes).contains("eerste"));
    assert!(String::from_utf8_lossy(&mails[1].bytes).contains("tweede"));
    // INTERNALDATE, not the Date header.
    assert_eq!(
        mails[0].received_at,
        Utc.with_ymd_and_hms(2024, 1, 1, 9, 0, 0).unwrap()
    );
    assert_eq!(
        mails[1].received_at,
        Utc.with_ymd_and_hms(2024, 1, 2, 11, 30, 0).unwrap()
    );
    // BODY.PEEK: fetching does not mark read.
    assert!(seen_flags(&mut h, "INBOX").await.iter().all(|(_, s)| !s));

    // The cursor: nothing new after the last key, then only the newer mail.
    let last = keys.last().cloned();
    assert!(
        src.pending(last.as_deref())
            .await
            .expect("pending")
            .is_empty()
    );
    append(&mut h, "INBOX", &mail("a3", "derde"), None).await;
    let newer = mailbox::keys(&src.pending(last.as_deref()).await.expect("pending"));
    assert_eq!(newer.len(), 1, "{newer:?}");
    assert_ne!(newer[0], keys[1]);

    // A mail someone read is still pending (never rely on \Seen).
    h.select("INBOX").await.expect("select");
    let _: Vec<_> = h
        .uid_store("1:*", "+FLAGS (\\Seen)")
        .await
        .expect("store")
        .try_collect()
        .await
        .expect("store");
    assert_eq!(src.pending(None).await.expect("pending").len(), 3);
    let _: Vec<_> = h
        .uid_store("1:*", "-FLAGS (\\Seen)")
        .await
        .expect("store")
        .try_collect()
        .await
        .expect("store");

    src.mark_processed(&keys).await.expect("mark");
    let flags = seen_flags(&mut h, "INBOX").await;
    assert_eq!(
        flags.len(),
        3,
        "nothing moved or deleted without processed_folder"
    );
    assert!(flags[0].1 && flags[1].1 && !flags[2].1, "{flags:?}");
}

#[tokio::test]
async fn imap_mark_processed_moves_to_processed_folder_over_implicit_tls() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.read().await;
    let user = "move@example.test";
    let mut h = helper(stack, user).await;
    append(&mut h, "INBOX", &mail("m1", "een"), None).await;
    append(&mut h, "INBOX", &mail("m2", "twee"), None).await;
    let mut settings = mailbox(stack, user, TlsMode::Implicit, AuthMethod::Plain);
    settings.processed_folder = Some("Verwerkt/2024".into());
    let mut src = ImapSource::new(&settings, None).expect("new");
    let keys = mailbox::keys(&src.pending(None).await.expect("pending"));
    assert_eq!(keys.len(), 2);
    src.mark_processed(&keys[..1]).await.expect("mark");
    let inbox = seen_flags(&mut h, "INBOX").await;
    assert_eq!(inbox.len(), 1, "one moved, one left: {inbox:?}");
    assert!(!inbox[0].1);
    let done = seen_flags(&mut h, "Verwerkt/2024").await;
    assert_eq!(done.len(), 1);
    assert!(done[0].1, "moved mail is \\Seen");
    // The folder exists now; a second batch uses it as is.
    src.mark_processed(&keys[1..]).await.expect("mark");
    assert!(seen_flags(&mut h, "INBOX").await.is_empty());
    assert_eq!(seen_flags(&mut h, "Verwerkt/2024").await.len(), 2);
    assert!(src.pending(None).await.expect("pending").is_empty());
}

#[tokio::test]
async fn imap_without_move_copies_and_expunges_only_our_mails() {
    let Some(stack) = stack_without_move() else {
        return;
    };
    let user = "copy@example.test";
    let mut h = helper(stack, user).await;
    let caps = h.capabilities().await.expect("capabilities");
    assert!(!caps.has_str("MOVE"), "this Dovecot must not offer MOVE");
    assert!(caps.has_str("UIDPLUS"));
    append(&mut h, "INBOX", &mail("c1", "een"), None).await;
    append(&mut h, "INBOX", &mail("c2", "twee"), None).await;
    // A person's mail marked \Deleted by their own client: a plain EXPUNGE would remove it.
    h.append(
        "INBOX",
        Some("(\\Deleted)"),
        None,
        mail("c3", "van-iemand-anders").replace('\n', "\r\n"),
    )
    .await
    .expect("APPEND");
    let mut settings = mailbox(stack, user, TlsMode::Starttls, AuthMethod::Login);
    settings.processed_folder = Some("Verwerkt".into());
    let mut src = ImapSource::new(&settings, None).expect("new");
    let keys = mailbox::keys(&src.pending(None).await.expect("pending"));
    assert_eq!(keys.len(), 3);
    src.mark_processed(&keys[..2]).await.expect("mark");
    let inbox = seen_flags(&mut h, "INBOX").await;
    assert_eq!(
        inbox.len(),
        1,
        "ours copied and expunged, the other left: {inbox:?}"
    );
    let done = seen_flags(&mut h, "Verwerkt").await;
    assert_eq!(done.len(), 2);
    assert!(
        done.iter().all(|(_, seen)| *seen),
        "copies are \\Seen: {done:?}"
    );
}

#[tokio::test]
async fn imap_uidvalidity_change_gives_new_keys() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.read().await;
    let user = "uidvalidity@example.test";
    stack.doveadm(&["mailbox", "create", "-u", user, "Klachten"]);
    let mut h = helper(stack, user).await;
    append(&mut h, "Klachten", &mail("u1", "een"), None).await;
    let mut settings = mailbox(stack, user, TlsMode::Starttls, AuthMethod::Login);
    settings.folder = "Klachten".into();
    let mut src = ImapSource::new(&settings, None).expect("new");
    let before = mailbox::keys(&src.pending(None).await.expect("pending"));
    assert_eq!(before.len(), 1);
    h.logout().await.ok();

    stack.doveadm(&["mailbox", "delete", "-u", user, "-s", "Klachten"]);
    // Dovecot derives UIDVALIDITY from the clock: let a second pass.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    stack.doveadm(&["mailbox", "create", "-u", user, "Klachten"]);
    let mut h = helper(stack, user).await;
    append(&mut h, "Klachten", &mail("u1", "een"), None).await;
    append(&mut h, "Klachten", &mail("u2", "twee"), None).await;

    let after = mailbox::keys(
        &src.pending(before.last().map(String::as_str))
            .await
            .expect("pending"),
    );
    assert_eq!(
        after.len(),
        2,
        "all mail is pending under the new UIDVALIDITY: {after:?}"
    );
    let (old_v, _) = before[0].split_once(':').unwrap();
    let (new_v, _) = after[0].split_once(':').unwrap();
    assert_ne!(old_v, new_v);
    // A key of the old UIDVALIDITY is skipped, not mistaken for the new UID 1.
    assert!(src.fetch(&before).await.expect("fetch").is_empty());
    assert_eq!(src.fetch(&after).await.expect("fetch").len(), 2);
}

#[tokio::test]
async fn imap_idle_wakes_on_new_mail() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.read().await;
    let user = "idle@example.test";
    let settings = mailbox(stack, user, TlsMode::Implicit, AuthMethod::Login);
    assert_eq!(settings.poll_interval, 600);
    let mut src = ImapSource::new(&settings, None).expect("new");
    let last = mailbox::keys(&src.pending(None).await.expect("pending"));
    assert!(last.is_empty());

    let appender = {
        let mut h = helper(stack, user).await;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            append(&mut h, "INBOX", &mail("i1", "wakker"), None).await;
        })
    };
    let started = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(30),
        src.wait_for_mail(Duration::from_secs(120)),
    )
    .await
    .expect("IDLE did not wake within 30 s")
    .expect("wait_for_mail");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1000),
        "woke before the mail came: {waited:?}"
    );
    appender.await.expect("appender");
    assert_eq!(src.pending(None).await.expect("pending").len(), 1);

    // Nothing new: it waits out `max` (and returns Ok), instead of returning at once.
    let started = Instant::now();
    src.wait_for_mail(Duration::from_secs(2))
        .await
        .expect("wait");
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn imap_mail_arriving_before_idle_is_not_slept_through() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.read().await;
    let user = "race@example.test";
    let mut src = ImapSource::new(
        &mailbox(stack, user, TlsMode::Starttls, AuthMethod::Login),
        None,
    )
    .expect("new");
    assert!(src.pending(None).await.expect("pending").is_empty());
    let mut h = helper(stack, user).await;
    append(&mut h, "INBOX", &mail("r1", "tussendoor"), None).await;
    let started = Instant::now();
    src.wait_for_mail(Duration::from_secs(20))
        .await
        .expect("wait");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn imap_reconnects_after_dovecot_restart() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.write().await;
    let user = "reconnect@example.test";
    let mut h = helper(stack, user).await;
    append(&mut h, "INBOX", &mail("c1", "een"), None).await;
    drop(h);
    let mut src = ImapSource::new(
        &mailbox(stack, user, TlsMode::Implicit, AuthMethod::Login),
        None,
    )
    .expect("new");
    assert_eq!(src.pending(None).await.expect("pending").len(), 1);

    let _back = stack.servers_back();
    stack.script("dovecot-stop");
    let err = src.pending(None).await.expect_err("server is down");
    assert!(matches!(err, MailboxError::Connect { .. }), "{err:?}");
    stack.script("dovecot-start");
    // The backoff after one failure is a second; the next call connects again.
    let keys = mailbox::keys(&src.pending(None).await.expect("pending after restart"));
    assert_eq!(keys.len(), 1);

    // A restart between two calls is invisible to the caller: reconnect and retry once.
    stack.script("dovecot-restart");
    assert_eq!(
        src.fetch(&keys).await.expect("fetch after restart").len(),
        1
    );
}

#[tokio::test]
async fn imap_wrong_password_is_auth_error() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.read().await;
    for auth in [AuthMethod::Login, AuthMethod::Plain] {
        let mut settings = mailbox(stack, "wrong@example.test", TlsMode::Starttls, auth);
        settings.password = Secret::new("wrong password");
        let mut src = ImapSource::new(&settings, None).expect("new");
        let err = src.pending(None).await.expect_err("must fail");
        assert!(err.is_auth(), "{auth:?}: {err:?}");
        assert!(
            !err.to_string().contains("wrong password"),
            "password in error: {err}"
        );
    }
    // Right password, unknown domain.
    let settings = mailbox(
        stack,
        "wrong@other.test",
        TlsMode::Implicit,
        AuthMethod::Login,
    );
    let err = ImapSource::new(&settings, None)
        .expect("new")
        .pending(None)
        .await
        .expect_err("must fail");
    assert!(err.is_auth(), "{err:?}");
}

#[tokio::test]
async fn imap_unreachable_port_is_connect_error_quickly() {
    let Some(stack) = stack() else { return };
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut settings = mailbox(
        stack,
        "nobody@example.test",
        TlsMode::Implicit,
        AuthMethod::Login,
    );
    settings.port = Some(free);
    let mut src = ImapSource::new(&settings, None).expect("new");
    let started = Instant::now();
    let err = src.pending(None).await.expect_err("nothing listens");
    assert!(matches!(err, MailboxError::Connect { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn imap_tls_without_our_ca_is_refused() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.read().await;
    let mut settings = mailbox(
        stack,
        "ca@example.test",
        TlsMode::Implicit,
        AuthMethod::Login,
    );
    settings.ca_file = None;
    let err = ImapSource::new(&settings, None)
        .expect("new")
        .pending(None)
        .await
        .expect_err("certificate must not verify");
    assert!(matches!(err, MailboxError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("TLS"), "{err}");
}

async fn wait_for_delivery(stack: &Stack, user: &str, marker: &str) -> Vec<u8> {
    let mut src = ImapSource::new(
        &mailbox(stack, user, TlsMode::Implicit, AuthMethod::Login),
        None,
    )
    .expect("new");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let keys = mailbox::keys(&src.pending(None).await.expect("pending"));
        for m in src.fetch(&keys).await.expect("fetch") {
            if String::from_utf8_lossy(&m.bytes).contains(marker) {
                return m.bytes;
            }
        }
        assert!(
            Instant::now() < deadline,
            "mail {marker} not delivered to {user} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn envelope(to: &str) -> Envelope {
    Envelope {
        mail_from: "bounces+x@example.test".into(),
        rcpt_to: vec![to.into()],
    }
}

#[tokio::test]
async fn smtp_starttls_with_auth_delivers_to_imap() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.read().await;
    let t = SmtpTransport::new(
        &outgoing(stack, TlsMode::Starttls, Some("service@example.test")),
        None,
    )
    .expect("new");
    assert_eq!(t.guarantee(), "at least once");
    let raw = mail("s1", "verzonden-over-starttls");
    t.send(
        "s1@example.org",
        &envelope("ontvanger@example.test"),
        raw.replace('\n', "\r\n").as_bytes(),
    )
    .await
    .expect("send");
    let got = wait_for_delivery(stack, "ontvanger@example.test", "verzonden-over-starttls").await;
    assert!(String::from_utf8_lossy(&got).contains("Message-ID: <s1@example.org>"));
}

#[tokio::test]
async fn smtp_implicit_tls_without_auth_delivers() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.read().await;
    let t = SmtpTransport::new(&outgoing(stack, TlsMode::Implicit, None), None).expect("new");
    let raw = mail("s2", "verzonden-over-smtps");
    t.send(
        "s2@example.org",
        &envelope("smtps@example.test"),
        raw.replace('\n', "\r\n").as_bytes(),
    )
    .await
    .expect("send");
    wait_for_delivery(stack, "smtps@example.test", "verzonden-over-smtps").await;
}

#[tokio::test]
async fn smtp_wrong_password_fails() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.read().await;
    let mut settings = outgoing(stack, TlsMode::Starttls, Some("service@example.test"));
    settings.password = Secret::new("wrong");
    let t = SmtpTransport::new(&settings, None).expect("new");
    let err = t
        .send(
            "s3@example.org",
            &envelope("x@example.test"),
            b"Subject: x\r\n\r\nx\r\n",
        )
        .await
        .expect_err("must fail");
    // 535 (RFC 4954) is our configuration, not the mail: the mail stays queued and is retried
    // until the password is fixed, and the error says what to check.
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("login refused"), "{err}");
}

#[tokio::test]
async fn smtp_rejected_recipient_is_permanent() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.read().await;
    let t = SmtpTransport::new(&outgoing(stack, TlsMode::Starttls, None), None).expect("new");
    let rejected = stack.env["REJECT_RCPT"].clone();
    let err = t
        .send(
            "p1@example.org",
            &envelope(&rejected),
            b"Subject: x\r\n\r\nx\r\n",
        )
        .await
        .expect_err("rejected");
    assert!(matches!(err, SendError::Permanent(_)), "{err:?}");
    assert!(!err.is_transient());
    // Relaying elsewhere is refused with 554 too.
    let err = t
        .send(
            "p2@example.org",
            &envelope("someone@elsewhere.invalid"),
            b"Subject: x\r\n\r\nx\r\n",
        )
        .await
        .expect_err("relay denied");
    assert!(matches!(err, SendError::Permanent(_)), "{err:?}");
}

#[tokio::test]
async fn smtp_server_down_is_transient() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.write().await;
    let t = SmtpTransport::new(&outgoing(stack, TlsMode::Starttls, None), None).expect("new");
    let _back = stack.servers_back();
    stack.script("postfix-stop");
    let result = t
        .send(
            "d1@example.org",
            &envelope("down@example.test"),
            b"Subject: x\r\n\r\nx\r\n",
        )
        .await;
    stack.script("postfix-start");
    let err = result.expect_err("postfix is down");
    assert!(err.is_transient(), "{err:?}");
    // Back up: the same transport sends again.
    t.send(
        "d1@example.org",
        &envelope("down@example.test"),
        b"Subject: x\r\n\r\nweer-op\r\n",
    )
    .await
    .expect("send after restart");
}

#[tokio::test]
async fn imap_plain_tcp_when_tls_is_none() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.read().await;
    let user = "plain@example.test";
    let mut h = helper(stack, user).await;
    append(&mut h, "INBOX", &mail("n1", "zonder-tls"), None).await;
    let mut src = ImapSource::new(
        &mailbox(stack, user, TlsMode::None, AuthMethod::Plain),
        None,
    )
    .expect("new");
    let keys = mailbox::keys(&src.pending(None).await.expect("pending"));
    let mails = src.fetch(&keys).await.expect("fetch");
    assert_eq!(mails.len(), 1);
    assert!(String::from_utf8_lossy(&mails[0].bytes).contains("zonder-tls"));
}

/// How many SMTP connections carried the mails of this SASL user: Postfix's log names the user
/// on each accepted mail; an smtpd process serves one connection after another, each opened by
/// a "connect from" line.
fn smtp_connections_of(stack: &Stack, sasl_user: &str) -> usize {
    let log =
        std::fs::read_to_string(stack.dir.join("postfix").join("postfix.log")).unwrap_or_default();
    let mut connection_of_pid = std::collections::HashMap::<String, usize>::new();
    let mut used = std::collections::HashSet::new();
    for line in log.lines() {
        let Some(pid) = line
            .split("postfix/smtpd[")
            .nth(1)
            .and_then(|r| r.split(']').next())
        else {
            continue;
        };
        if line.contains("]: connect from") {
            *connection_of_pid.entry(pid.to_string()).or_default() += 1;
        } else if line.ends_with(&format!("sasl_username={sasl_user}")) {
            used.insert((pid.to_string(), connection_of_pid.get(pid).copied()));
        }
    }
    used.len()
}

#[tokio::test]
async fn smtp_connection_is_kept_for_the_next_mail_and_renewed_when_dropped() {
    let Some(stack) = stack() else { return };
    // Write half: Postfix is restarted below.
    let _g = DISRUPT.write().await;
    let user = "pool@example.test";
    let t = SmtpTransport::new(&outgoing(stack, TlsMode::Starttls, Some(user)), None).expect("new");
    for i in 0..5 {
        let raw = mail(&format!("k{i}"), &format!("hergebruik-{i}"));
        t.send(
            &format!("k{i}@example.org"),
            &envelope("hergebruik@example.test"),
            raw.replace('\n', "\r\n").as_bytes(),
        )
        .await
        .expect("send");
    }
    for i in 0..5 {
        wait_for_delivery(stack, "hergebruik@example.test", &format!("hergebruik-{i}")).await;
    }
    assert_eq!(
        smtp_connections_of(stack, user),
        1,
        "five mails in a row must share one connection"
    );
    // Postfix restarted: the kept connection is dead; the next mail still goes, at once.
    let _back = stack.servers_back();
    stack.script("postfix-stop");
    stack.script("postfix-start");
    let raw = mail("k9", "na-herstart");
    t.send(
        "k9@example.org",
        &envelope("hergebruik@example.test"),
        raw.replace('\n', "\r\n").as_bytes(),
    )
    .await
    .expect("a dropped pooled connection is replaced, not reported");
    wait_for_delivery(stack, "hergebruik@example.test", "na-herstart").await;
    assert_eq!(smtp_connections_of(stack, user), 2);
}

/// XOAUTH2 as Microsoft 365 and Gmail use it, against Dovecot (IMAP) and Postfix (SMTP AUTH
/// through Dovecot's SASL), both checking the token at the test provider's introspection
/// endpoint: one refresh serves IMAP and SMTP, the rotated refresh token is stored, and a token
/// revoked at the provider is refused once and then replaced.
#[tokio::test]
async fn xoauth2_logs_in_to_dovecot_and_postfix_and_recovers_from_a_revoked_token() {
    let Some(stack) = stack() else { return };
    // The provider owns OAUTH_PORT: one at a time.
    let _g = DISRUPT.write().await;
    let user = format!("oauth-{}@example.test", std::process::id());
    let provider = Provider::start(stack, &user);
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("refresh-token");
    std::fs::write(&token_file, "rt-1\n").expect("write token");
    let settings = provider.settings(&token_file);
    let tokens = Arc::new(TokenSource::new(&settings).expect("token source"));

    let mut h = helper(stack, &user).await;
    append(&mut h, "INBOX", &mail("o1", "via-oauth"), None).await;
    let mut imap = mailbox(stack, &user, TlsMode::Starttls, AuthMethod::Xoauth2);
    imap.password = Secret::default();
    imap.oauth2 = settings.clone();
    let mut src = ImapSource::new(&imap, Some(tokens.clone())).expect("new");
    let keys = mailbox::keys(&src.pending(None).await.expect("pending over XOAUTH2"));
    assert_eq!(keys.len(), 1);
    assert_eq!(src.fetch(&keys).await.expect("fetch").len(), 1);
    assert_eq!(provider.refreshes(), 1);
    assert!(provider.introspections() >= 1, "Dovecot checked the token");
    assert_eq!(
        std::fs::read_to_string(&token_file).expect("read").trim(),
        "rt-2",
        "the rotated refresh token is stored"
    );

    // SMTP with the same grant: the same token, no second refresh.
    let mut smtp = outgoing(stack, TlsMode::Starttls, Some(&user));
    smtp.password = Secret::default();
    smtp.auth = AuthMethod::Xoauth2;
    smtp.oauth2 = settings.clone();
    let introspected = provider.introspections();
    let t = SmtpTransport::new(&smtp, Some(tokens.clone())).expect("new");
    let raw = mail("o2", "verzonden-met-xoauth2");
    t.send(
        "o2@example.org",
        &envelope("oauth-rcpt@example.test"),
        raw.replace('\n', "\r\n").as_bytes(),
    )
    .await
    .expect("send over XOAUTH2");
    wait_for_delivery(stack, "oauth-rcpt@example.test", "verzonden-met-xoauth2").await;
    assert_eq!(provider.refreshes(), 1);
    assert!(
        provider.introspections() > introspected,
        "Postfix had Dovecot check the token"
    );

    // Revoked at the provider: a new IMAP login is refused, reported as a login failure, and
    // the next attempt refreshes and gets in.
    provider.revoke_access_tokens();
    drop(src);
    let mut src = ImapSource::new(&imap, Some(tokens.clone())).expect("new");
    let err = src.pending(None).await.expect_err("revoked token");
    eprintln!("IMAP with a revoked token: {err}");
    assert!(err.is_auth(), "{err:?}");
    assert_eq!(src.pending(None).await.expect("after refresh").len(), 1);
    assert_eq!(provider.refreshes(), 2);
    assert_eq!(
        std::fs::read_to_string(&token_file).expect("read").trim(),
        "rt-3"
    );

    // The same over SMTP, on a new connection: refused once (transient: retried from the
    // outbox), then sent with a fresh token.
    provider.revoke_access_tokens();
    let t = SmtpTransport::new(&smtp, Some(tokens.clone())).expect("new");
    let raw = mail("o3", "na-intrekking");
    let err = t
        .send(
            "o3@example.org",
            &envelope("oauth-rcpt@example.test"),
            raw.replace('\n', "\r\n").as_bytes(),
        )
        .await
        .expect_err("revoked token");
    eprintln!("SMTP with a revoked token: {err}");
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("XOAUTH2 login refused"), "{err}");
    t.send(
        "o3@example.org",
        &envelope("oauth-rcpt@example.test"),
        raw.replace('\n', "\r\n").as_bytes(),
    )
    .await
    .expect("send after refresh");
    wait_for_delivery(stack, "oauth-rcpt@example.test", "na-intrekking").await;
    assert_eq!(provider.refreshes(), 3);
    assert_eq!(provider.refused_refreshes(), 0);
}

/// Marks, from a fresh source that never offered them, keys committed by a process that died
/// before marking them (issue #8, finding 22), then marks them once more (it died after the
/// marking, before the store recorded it): the first flags and moves them, the second is no
/// error and changes nothing.
async fn mark_left_over_keys_twice(stack: &Stack, user: &str) {
    let mut h = helper(stack, user).await;
    append(&mut h, "INBOX", &mail(&format!("{user}-1"), "een"), None).await;
    append(&mut h, "INBOX", &mail(&format!("{user}-2"), "twee"), None).await;
    let mut settings = mailbox(stack, user, TlsMode::Starttls, AuthMethod::Login);
    settings.processed_folder = Some("Verwerkt".into());
    let keys = {
        let mut first = ImapSource::new(&settings, None).expect("new");
        mailbox::keys(&first.pending(None).await.expect("pending"))
    };
    assert_eq!(keys.len(), 2);
    let mut restarted = ImapSource::new(&settings, None).expect("new");
    restarted.mark_processed(&keys).await.expect("mark");
    assert!(seen_flags(&mut h, "INBOX").await.is_empty());
    let done = seen_flags(&mut h, "Verwerkt").await;
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|(_, seen)| *seen), "{done:?}");
    let mut again = ImapSource::new(&settings, None).expect("new");
    again
        .mark_processed(&keys)
        .await
        .expect("marking keys no longer in the folder is no error");
    assert!(seen_flags(&mut h, "INBOX").await.is_empty());
    assert_eq!(seen_flags(&mut h, "Verwerkt").await.len(), 2);
}

#[tokio::test]
async fn imap_marking_left_over_keys_from_a_new_process_is_idempotent() {
    let Some(stack) = stack() else { return };
    let _g = DISRUPT.read().await;
    mark_left_over_keys_twice(stack, "leftover@example.test").await;
}

#[tokio::test]
async fn imap_marking_left_over_keys_without_move_is_idempotent() {
    let Some(stack) = stack_without_move() else {
        return;
    };
    mark_left_over_keys_twice(stack, "leftover-copy@example.test").await;
}

//! IMAP source (RFC 3501) over tokio and rustls. A mail is known by `UIDVALIDITY:UID`, never by
//! the \Seen flag: a person reading the mailbox must not hide a complaint (freescout#2416). After
//! commit a mail is flagged \Seen and, when configured, moved to the processed folder; nothing is
//! ever deleted otherwise. New mail is awaited with IDLE (RFC 2177) where offered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_imap::error::Error as ImapError;
use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response};
use async_imap::types::UnsolicitedResponse;
use async_trait::async_trait;
use chrono::Utc;
use futures_util::TryStreamExt;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;

use super::{MailSource, MailboxError, RawMail, Waiting};
use crate::config::{AuthMethod, Mailbox, Secret, TlsMode};
use crate::oauth2::TokenSource;

/// Any byte stream the session runs over (plain TCP or TLS), boxed so STARTTLS and implicit TLS
/// give one session type.
trait ImapIo: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug> ImapIo for T {}
type Session = async_imap::Session<Box<dyn ImapIo>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// An IMAP command (a fetch of one batch of up to 8 MB included) that gets no answer for this
/// long is taken as a lost connection: a server that hangs must not stop intake for good.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// TCP keepalive: a connection a NAT or firewall dropped silently (no RST), which is common
/// under a long IDLE, is noticed within about two minutes instead of at the next IDLE renewal
/// or never.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
const KEEPALIVE_PROBES: u32 = 4;
/// RFC 2177 section 3: clients should re-issue IDLE at least every 29 minutes.
const MAX_IDLE: Duration = Duration::from_secs(25 * 60);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// UIDs per command, to keep command lines short (RFC 7162 section 4 recommends < 8192 octets).
const BATCH: usize = 500;

pub struct ImapSource {
    id: String,
    server: String,
    host: String,
    port: u16,
    tls: TlsMode,
    tls_config: Option<Arc<ClientConfig>>,
    user: String,
    auth: AuthMethod,
    password: Secret,
    tokens: Option<Arc<TokenSource>>,
    folder: String,
    processed_folder: Option<String>,
    idle: bool,
    poll: Duration,
    conn: Option<Conn>,
    /// UIDVALIDITY and UIDNEXT at the last `pending`: a mail that arrives before IDLE starts
    /// changes UIDNEXT, so it is not slept through.
    seen_next: Option<(u32, Option<u32>)>,
    /// Consecutive failed connection attempts, for the backoff.
    failures: u32,
    last_failure: Option<Instant>,
    /// [`COMMAND_TIMEOUT`]; shorter in tests.
    command_timeout: Duration,
}

struct Conn {
    session: Session,
    can_idle: bool,
    can_move: bool,
    can_uidplus: bool,
    processed_folder_ready: bool,
}

impl ImapSource {
    /// Checks the settings and prepares TLS; connects lazily, on the first call that needs the
    /// server, so the daemon starts (and alerts) even while the server is down.
    pub fn new(settings: &Mailbox, tokens: Option<Arc<TokenSource>>) -> Result<Self, MailboxError> {
        let host = settings
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| MailboxError::Connect {
                server: "(none)".into(),
                reason: "mailbox.host is required".into(),
            })?;
        // RFC 8314 section 3.3 (993, implicit TLS), RFC 3501 (143, plain or STARTTLS).
        let port = settings.port.unwrap_or(match settings.tls {
            TlsMode::Implicit => 993,
            _ => 143,
        });
        let server = format!("{host}:{port}");
        let config_err = |reason: String| MailboxError::Connect {
            server: server.clone(),
            reason,
        };
        let user = settings
            .username
            .clone()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| config_err("mailbox.username is required".into()))?;
        let password = match &settings.password_file {
            Some(path) if settings.password.is_empty() => Secret::new(
                std::fs::read_to_string(path)
                    .map_err(|e| config_err(format!("password_file {}: {e}", path.display())))?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
            _ => settings.password.clone(),
        };
        if settings.auth == AuthMethod::Xoauth2 && tokens.is_none() {
            return Err(config_err(
                "auth = \"xoauth2\" needs the OAuth2 settings".into(),
            ));
        }
        let tls_config = match settings.tls {
            TlsMode::None => None,
            _ => Some(crate::tls::client_config(settings.ca_file.as_deref()).map_err(config_err)?),
        };
        Ok(Self {
            id: format!("imap:{user}@{host}/{}", settings.folder),
            server,
            host,
            port,
            tls: settings.tls,
            tls_config,
            user,
            auth: settings.auth,
            password,
            tokens,
            folder: settings.folder.clone(),
            processed_folder: settings.processed_folder.clone().filter(|f| !f.is_empty()),
            idle: settings.idle,
            poll: Duration::from_secs(settings.poll_interval.max(1)),
            conn: None,
            seen_next: None,
            failures: 0,
            last_failure: None,
            command_timeout: COMMAND_TIMEOUT,
        })
    }

    fn connect_err(&self, reason: impl std::fmt::Display) -> MailboxError {
        MailboxError::Connect {
            server: self.server.clone(),
            reason: reason.to_string(),
        }
    }

    fn protocol_err(&self, reason: impl std::fmt::Display) -> MailboxError {
        MailboxError::Protocol {
            server: self.server.clone(),
            reason: reason.to_string(),
        }
    }

    fn auth_err(&self, reason: impl std::fmt::Display) -> MailboxError {
        MailboxError::Auth {
            server: self.server.clone(),
            user: self.user.clone(),
            reason: reason.to_string(),
        }
    }

    /// A lost connection is a `Connect` error (retried later); anything the server said is a
    /// `Protocol` error.
    fn map_err(&self, e: ImapError) -> MailboxError {
        match e {
            ImapError::Io(_) | ImapError::ConnectionLost => self.connect_err(e),
            other => self.protocol_err(other),
        }
    }

    /// How long to wait before the next connection attempt: nothing after a success, then
    /// 1, 2, 4, ... seconds up to a minute, so a server that is down is not hammered.
    fn backoff_left(&self) -> Duration {
        let Some(at) = self.last_failure else {
            return Duration::ZERO;
        };
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let wait =
            Duration::from_secs(1u64 << self.failures.saturating_sub(1).min(6)).min(MAX_BACKOFF);
        wait.saturating_sub(at.elapsed())
    }

    /// Connects when not connected. Returns whether the connection is new.
    async fn ensure_connected(&mut self) -> Result<bool, MailboxError> {
        if self.conn.is_some() {
            return Ok(false);
        }
        let wait = self.backoff_left();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        match self.connect().await {
            Ok(conn) => {
                self.conn = Some(conn);
                self.failures = 0;
                self.last_failure = None;
                Ok(true)
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                self.last_failure = Some(Instant::now());
                Err(e)
            }
        }
    }

    async fn connect(&self) -> Result<Conn, MailboxError> {
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| self.connect_err("timed out"))?
        .map_err(|e| self.connect_err(e))?;
        let _ = tcp.set_nodelay(true);
        // Also bounds writes nobody acknowledges (TCP_USER_TIMEOUT), where keepalive does not
        // apply; failing to set either only loses the early warning.
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_PROBES);
        let sock = socket2::SockRef::from(&tcp);
        let _ = sock.set_tcp_keepalive(&keepalive);
        let _ =
            sock.set_tcp_user_timeout(Some(KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_PROBES));
        let stream: Box<dyn ImapIo> = match self.tls {
            TlsMode::None => Box::new(tcp),
            TlsMode::Implicit => Box::new(self.tls_handshake(tcp).await?),
            TlsMode::Starttls => {
                let mut tcp = tcp;
                tokio::time::timeout(CONNECT_TIMEOUT, self.starttls(&mut tcp))
                    .await
                    .map_err(|_| self.connect_err("STARTTLS timed out"))??;
                Box::new(self.tls_handshake(tcp).await?)
            }
        };
        let mut client = async_imap::Client::new(stream);
        if self.tls != TlsMode::Starttls {
            // async-imap does not read the greeting (RFC 3501 section 7.1) itself; after
            // STARTTLS there is none.
            let greeting = tokio::time::timeout(CONNECT_TIMEOUT, client.read_response())
                .await
                .map_err(|_| self.connect_err("no greeting"))?;
            match greeting {
                Some(Ok(r)) => {
                    if let Response::Data {
                        status: async_imap::imap_proto::Status::Bye,
                        ..
                    } = r.parsed()
                    {
                        return Err(self.connect_err("server said BYE in its greeting"));
                    }
                }
                Some(Err(e)) => return Err(self.connect_err(e)),
                None => return Err(self.connect_err("connection closed before the greeting")),
            }
        }
        let mut session = self.login(client).await?;
        // Capabilities are asked after login: servers announce more (MOVE, IDLE) then, and any
        // list from before STARTTLS must be discarded (RFC 3501 section 6.2.1).
        let caps = session.capabilities().await.map_err(|e| self.map_err(e))?;
        Ok(Conn {
            can_idle: caps.has_str("IDLE"),
            can_move: caps.has_str("MOVE"),
            can_uidplus: caps.has_str("UIDPLUS"),
            processed_folder_ready: false,
            session,
        })
    }

    async fn tls_handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, MailboxError> {
        let config = self
            .tls_config
            .clone()
            .ok_or_else(|| self.connect_err("TLS is not configured"))?;
        let name = ServerName::try_from(self.host.clone())
            .map_err(|e| self.connect_err(format!("invalid host name for TLS: {e}")))?;
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|_| self.connect_err("TLS handshake timed out"))?
        .map_err(|e| self.connect_err(format!("TLS: {e}")))
    }

    /// RFC 3501 section 6.2.1 / RFC 2595: read the greeting, ask for STARTTLS, wait for the
    /// tagged OK; the caller then starts TLS on the same socket. Read byte by byte so that not a
    /// byte of the TLS handshake is swallowed by a buffer.
    async fn starttls(&self, tcp: &mut TcpStream) -> Result<(), MailboxError> {
        let greeting = read_line(tcp).await.map_err(|e| self.connect_err(e))?;
        if !greeting.starts_with("* OK") {
            return Err(self.connect_err(format!("unexpected greeting: {}", greeting.trim_end())));
        }
        tcp.write_all(b"k0 STARTTLS\r\n")
            .await
            .map_err(|e| self.connect_err(e))?;
        loop {
            let line = read_line(tcp).await.map_err(|e| self.connect_err(e))?;
            if let Some(rest) = line.strip_prefix("k0 ") {
                if rest.to_ascii_uppercase().starts_with("OK") {
                    return Ok(());
                }
                return Err(self.connect_err(format!("STARTTLS refused: {}", rest.trim_end())));
            }
        }
    }

    async fn login(
        &self,
        client: async_imap::Client<Box<dyn ImapIo>>,
    ) -> Result<Session, MailboxError> {
        // A NO or BAD answer to the login is an authentication failure, alerted to the admin;
        // a broken connection meanwhile is not.
        let classify = |e: ImapError| match e {
            ImapError::No(_) | ImapError::Bad(_) => self.auth_err(e),
            ImapError::Io(_) | ImapError::ConnectionLost => self.connect_err(e),
            other => self.auth_err(other),
        };
        match self.auth {
            AuthMethod::Login => client
                .login(&self.user, self.password.expose())
                .await
                .map_err(|(e, _)| classify(e)),
            AuthMethod::Plain => client
                .authenticate(
                    "PLAIN",
                    SaslPlain {
                        user: self.user.clone(),
                        password: self.password.clone(),
                    },
                )
                .await
                .map_err(|(e, _)| classify(e)),
            AuthMethod::Xoauth2 => {
                let tokens = self
                    .tokens
                    .as_ref()
                    .ok_or_else(|| self.auth_err("XOAUTH2 without OAuth2 settings"))?;
                let token = tokens.access_token().await.map_err(|e| self.auth_err(e))?;
                let result = client
                    .authenticate(
                        "XOAUTH2",
                        Xoauth2 {
                            user: self.user.clone(),
                            token,
                            rounds: 0,
                        },
                    )
                    .await
                    .map_err(|(e, _)| classify(e));
                if result.is_err() {
                    // Revoked early or expired: refresh before the next attempt.
                    tokens.invalidate().await;
                }
                result
            }
        }
    }

    /// SELECT the folder (read-write: we set flags): (UIDVALIDITY, UIDNEXT), and the number of
    /// mails in it.
    async fn select_counting(&mut self) -> Result<((u32, Option<u32>), u32), ImapError> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(ImapError::ConnectionLost);
        };
        let mailbox = conn.session.select(&self.folder).await?;
        drain_unsolicited(&conn.session);
        let validity = mailbox
            .uid_validity
            .ok_or_else(|| ImapError::Bad(format!("no UIDVALIDITY for folder {}", self.folder)))?;
        Ok(((validity, mailbox.uid_next), mailbox.exists))
    }

    async fn select(&mut self) -> Result<(u32, Option<u32>), ImapError> {
        Ok(self.select_counting().await?.0)
    }

    async fn try_pending(&mut self, last: Option<(u32, u32)>) -> Result<Vec<Waiting>, ImapError> {
        let ((validity, uid_next), exists) = self.select_counting().await?;
        self.seen_next = Some((validity, uid_next));
        let Some(conn) = self.conn.as_mut() else {
            return Err(ImapError::ConnectionLost);
        };
        let first = match last {
            Some((v, uid)) if v == validity => match uid.checked_add(1) {
                Some(next) => next,
                None => return Ok(Vec::new()),
            },
            // First run or a new UIDVALIDITY (RFC 3501 section 2.3.1.1): every UID is new to
            // us; the caller dedupes on Message-ID, so nothing is registered twice.
            _ => 1,
        };
        // Some servers answer `1:*` on an empty folder with BAD.
        if exists == 0 {
            return Ok(Vec::new());
        }
        // UIDs and sizes in one command; the sizes let the caller bound a batch by bytes.
        // Taken one response at a time: each holds on to a read buffer of several KB, which
        // for a backlog of 10,000 mails came to 60 MB when collected first.
        let mut waiting: Vec<(u32, u64)> = Vec::new();
        {
            let mut fetches = conn
                .session
                .uid_fetch(format!("{first}:*"), "(UID RFC822.SIZE)")
                .await?;
            while let Some(f) = fetches.try_next().await? {
                // RFC 3501 section 6.4.8: `N:*` includes the highest UID even when it is
                // below N.
                if let Some(uid) = f.uid.filter(|u| *u >= first) {
                    waiting.push((uid, f.size.unwrap_or(0).into()));
                }
            }
        }
        drain_unsolicited(&conn.session);
        waiting.sort_unstable();
        waiting.dedup_by_key(|w| w.0);
        Ok(waiting
            .into_iter()
            .map(|(uid, size)| Waiting {
                key: format!("{validity}:{uid}"),
                size,
            })
            .collect())
    }

    async fn try_fetch(&mut self, keys: &[String]) -> Result<Vec<RawMail>, ImapError> {
        let (validity, _) = self.select().await?;
        let uids = uids_for(keys, validity);
        let Some(conn) = self.conn.as_mut() else {
            return Err(ImapError::ConnectionLost);
        };
        let mut found: HashMap<u32, RawMail> = HashMap::new();
        for chunk in uids.chunks(BATCH) {
            // BODY.PEEK does not set \Seen (RFC 3501 section 6.4.5); INTERNALDATE is when the
            // server received the mail (section 2.3.3).
            let fetches: Vec<_> = conn
                .session
                .uid_fetch(uid_set(chunk), "(UID BODY.PEEK[] INTERNALDATE)")
                .await?
                .try_collect()
                .await?;
            for f in fetches {
                let (Some(uid), Some(body)) = (f.uid, f.body()) else {
                    continue;
                };
                let received_at = f
                    .internal_date()
                    .map(|d| d.with_timezone(&Utc))
                    .unwrap_or_else(Utc::now);
                found.insert(
                    uid,
                    RawMail {
                        key: format!("{validity}:{uid}"),
                        bytes: body.to_vec(),
                        received_at,
                    },
                );
            }
        }
        drain_unsolicited(&conn.session);
        // In the order asked; a UID expunged meanwhile is simply missing.
        Ok(uids.iter().filter_map(|u| found.remove(u)).collect())
    }

    async fn try_mark(&mut self, keys: &[String]) -> Result<(), ImapError> {
        let (validity, _) = self.select().await?;
        let uids = uids_for(keys, validity);
        if uids.is_empty() {
            return Ok(());
        }
        let processed = self.processed_folder.clone();
        let Some(conn) = self.conn.as_mut() else {
            return Err(ImapError::ConnectionLost);
        };
        if let Some(target) = &processed
            && !conn.processed_folder_ready
        {
            match conn.session.create(target).await {
                Ok(()) => {}
                // Exists already ([ALREADYEXISTS], RFC 5530); any other problem shows at MOVE.
                Err(ImapError::No(_)) => {}
                Err(e) => return Err(e),
            }
            conn.processed_folder_ready = true;
        }
        for chunk in uids.chunks(BATCH) {
            let set = uid_set(chunk);
            let _: Vec<_> = conn
                .session
                .uid_store(&set, "+FLAGS.SILENT (\\Seen)")
                .await?
                .try_collect()
                .await?;
            let Some(target) = &processed else { continue };
            if conn.can_move {
                // RFC 6851: atomic, and expunges only these UIDs.
                conn.session.uid_mv(&set, target).await?;
            } else {
                conn.session.uid_copy(&set, quote(target)).await?;
                let _: Vec<_> = conn
                    .session
                    .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                    .await?
                    .try_collect()
                    .await?;
                if conn.can_uidplus {
                    // RFC 4315 section 2.1: removes only our UIDs, not mail others marked
                    // \Deleted. Without UIDPLUS the copies stay flagged \Deleted in the folder
                    // rather than risk a plain EXPUNGE of someone else's mail.
                    let _: Vec<_> = conn.session.uid_expunge(&set).await?.try_collect().await?;
                }
            }
        }
        drain_unsolicited(&conn.session);
        Ok(())
    }

    /// IDLE until the server reports new mail or `max` passes. `Ok(true)` when woken by mail.
    async fn idle_once(&mut self, max: Duration) -> Result<bool, ImapError> {
        let current = self.select().await?;
        if self.seen_next.is_some_and(|seen| seen != current) {
            return Ok(true);
        }
        let Some(conn) = self.conn.take() else {
            return Err(ImapError::ConnectionLost);
        };
        let Conn {
            session,
            can_idle,
            can_move,
            can_uidplus,
            processed_folder_ready,
        } = conn;
        let deadline = tokio::time::Instant::now() + max.min(MAX_IDLE);
        let mut handle = session.idle();
        handle.init().await?;
        let mut woken = false;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let (wait, _stop) = handle.wait_with_timeout(left);
            // The outer deadline also covers the server's periodic "* OK Still here", which
            // resets async-imap's own timeout.
            match tokio::time::timeout_at(deadline, wait).await {
                Err(_) => break,
                Ok(Ok(IdleResponse::NewData(data))) => {
                    if matches!(
                        data.parsed(),
                        Response::MailboxData(MailboxDatum::Exists(_) | MailboxDatum::Recent(_))
                    ) {
                        woken = true;
                        break;
                    }
                    // EXPUNGE, FETCH (flag changes by a person): keep waiting.
                }
                Ok(Ok(IdleResponse::Timeout | IdleResponse::ManualInterrupt)) => break,
                Ok(Err(e)) => return Err(e),
            }
        }
        let session = handle.done().await?;
        drain_unsolicited(&session);
        self.conn = Some(Conn {
            session,
            can_idle,
            can_move,
            can_uidplus,
            processed_folder_ready,
        });
        Ok(woken)
    }
}

/// Runs one IMAP operation, bounded by `timeout` (default: the command timeout); when it fails
/// on a connection that was already open (the server restarted, a NAT dropped it, no answer),
/// reconnects and tries once more before giving up.
macro_rules! with_retry {
    ($self:ident, $op:expr) => {{
        let timeout = $self.command_timeout;
        with_retry!($self, $op, timeout)
    }};
    ($self:ident, $op:expr, $timeout:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let fresh = $self.ensure_connected().await?;
            let answered = tokio::time::timeout($timeout, $op).await.unwrap_or_else(|_| {
                Err(ImapError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} s", $timeout.as_secs()),
                )))
            });
            match answered {
                Ok(v) => break Ok(v),
                Err(e) => {
                    let lost = matches!(e, ImapError::Io(_) | ImapError::ConnectionLost);
                    // After any error the session state is unknown: start over next time.
                    $self.conn = None;
                    if !lost || fresh || attempt > 1 {
                        break Err($self.map_err(e));
                    }
                    tracing::info!(server = %$self.server, "IMAP connection lost, reconnecting: {e}");
                }
            }
        }
    }};
}

#[async_trait]
impl MailSource for ImapSource {
    fn id(&self) -> &str {
        &self.id
    }

    async fn pending(&mut self, last_key: Option<&str>) -> Result<Vec<Waiting>, MailboxError> {
        let last = last_key.and_then(parse_key);
        with_retry!(self, self.try_pending(last))
    }

    async fn fetch(&mut self, keys: &[String]) -> Result<Vec<RawMail>, MailboxError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        with_retry!(self, self.try_fetch(keys))
    }

    async fn mark_processed(&mut self, keys: &[String]) -> Result<(), MailboxError> {
        if keys.is_empty() {
            return Ok(());
        }
        with_retry!(self, self.try_mark(keys))
    }

    async fn wait_for_mail(&mut self, max: Duration) -> Result<(), MailboxError> {
        if self.conn.is_none() && self.failures > 0 {
            // Not connected after a failure: wait out the backoff (the next pending() connects).
            tokio::time::sleep(self.backoff_left().max(Duration::from_secs(1)).min(max)).await;
            return Ok(());
        }
        let can_idle = self.conn.as_ref().map(|c| c.can_idle).unwrap_or(true);
        if !self.idle || !can_idle {
            tokio::time::sleep(self.poll.min(max)).await;
            return Ok(());
        }
        let started = Instant::now();
        // The IDLE itself lasts up to `max` (at most MAX_IDLE); the command timeout is for the
        // SELECT before it and the DONE after it.
        let bound = max.min(MAX_IDLE) + self.command_timeout;
        let result: Result<bool, MailboxError> = with_retry!(self, self.idle_once(max), bound);
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                // Return the error, but not at once: a caller looping on wait_for_mail must not
                // spin while the server is away.
                let left = max
                    .saturating_sub(started.elapsed())
                    .min(Duration::from_secs(1));
                tokio::time::sleep(left).await;
                Err(e)
            }
        }
    }
}

async fn read_line(tcp: &mut TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    loop {
        let b = tcp.read_u8().await?;
        line.push(b);
        if b == b'\n' {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        if line.len() > 8192 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "line too long before STARTTLS",
            ));
        }
    }
}

/// Untagged responses we did not ask for are queued in a bounded channel; empty it so that an
/// old EXISTS cannot look like new mail later.
fn drain_unsolicited(session: &Session) -> bool {
    let mut new_mail = false;
    while let Ok(r) = session.unsolicited_responses.try_recv() {
        if matches!(
            r,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        ) {
            new_mail = true;
        }
    }
    new_mail
}

/// `UIDVALIDITY:UID`.
fn parse_key(key: &str) -> Option<(u32, u32)> {
    let (v, u) = key.split_once(':')?;
    Some((v.parse().ok()?, u.parse().ok()?))
}

/// The UIDs of the keys that belong to this UIDVALIDITY; keys of an older one are skipped.
fn uids_for(keys: &[String], validity: u32) -> Vec<u32> {
    keys.iter()
        .filter_map(|k| parse_key(k))
        .filter(|(v, _)| *v == validity)
        .map(|(_, u)| u)
        .collect()
}

fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// An IMAP quoted string (RFC 3501 section 4.3).
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// SASL PLAIN (RFC 4616): authzid empty, then user and password.
struct SaslPlain {
    user: String,
    password: Secret,
}

impl async_imap::Authenticator for SaslPlain {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        format!("\0{}\0{}", self.user, self.password.expose()).into_bytes()
    }
}

/// SASL XOAUTH2 (Google's and Microsoft's documentation): on failure the server sends a JSON
/// error as a challenge, to be answered with an empty line before it says NO.
struct Xoauth2 {
    user: String,
    token: Secret,
    rounds: u32,
}

impl async_imap::Authenticator for Xoauth2 {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        self.rounds += 1;
        if self.rounds > 1 {
            return Vec::new();
        }
        format!(
            "user={}\x01auth=Bearer {}\x01\x01",
            self.user,
            self.token.expose()
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_sets() {
        assert_eq!(parse_key("17:42"), Some((17, 42)));
        assert_eq!(parse_key("17"), None);
        assert_eq!(parse_key("a:1"), None);
        let keys = vec!["5:1".to_string(), "6:2".into(), "5:3".into(), "x".into()];
        assert_eq!(uids_for(&keys, 5), vec![1, 3]);
        assert_eq!(uid_set(&[1, 3]), "1,3");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn xoauth2_string() {
        let mut x = Xoauth2 {
            user: "u@example.org".into(),
            token: Secret::new("T"),
            rounds: 0,
        };
        use async_imap::Authenticator;
        assert_eq!(
            x.process(b""),
            b"user=u@example.org\x01auth=Bearer T\x01\x01".to_vec()
        );
        assert_eq!(x.process(b"{\"status\":\"400\"}"), Vec::<u8>::new());
    }

    /// A server that logs in, selects and starts IDLE, then never answers DONE (hung, or the
    /// connection silently dropped): counts its connections.
    async fn silent_after_idle() -> (u16, Arc<std::sync::atomic::AtomicU32>) {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let (read, mut write) = sock.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"* OK fake IMAP ready\r\n").await;
                    let mut idling = false;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if idling {
                            // DONE: no answer, ever.
                            continue;
                        }
                        let mut words = line.split_whitespace();
                        let tag = words.next().unwrap_or("*").to_string();
                        let reply = match words.next().unwrap_or("").to_ascii_uppercase().as_str() {
                            "CAPABILITY" => {
                                format!("* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK done\r\n")
                            }
                            "SELECT" => format!(
                                "* 0 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 1] ok\r\n{tag} OK [READ-WRITE] done\r\n"
                            ),
                            "IDLE" => {
                                idling = true;
                                "+ idling\r\n".to_string()
                            }
                            _ => format!("{tag} OK done\r\n"),
                        };
                        let _ = write.write_all(reply.as_bytes()).await;
                    }
                });
            }
        });
        (port, connections)
    }

    #[tokio::test]
    async fn a_server_that_stops_answering_is_a_lost_connection_not_a_hang() {
        let (port, connections) = silent_after_idle().await;
        let settings = Mailbox {
            kind: crate::config::MailboxKind::Imap,
            path: None,
            host: Some("127.0.0.1".into()),
            port: Some(port),
            tls: TlsMode::None,
            ca_file: None,
            username: Some("svc@example.test".into()),
            password: Secret::new("pw"),
            password_file: None,
            auth: AuthMethod::Login,
            folder: "INBOX".into(),
            processed_folder: None,
            idle: true,
            poll_interval: 600,
            oauth2: crate::config::OAuth2::default(),
        };
        let mut src = ImapSource::new(&settings, None).expect("new");
        src.command_timeout = Duration::from_millis(500);
        assert!(src.pending(None).await.expect("pending").is_empty());
        let started = Instant::now();
        let err = src
            .wait_for_mail(Duration::from_millis(200))
            .await
            .expect_err("DONE is never answered");
        assert!(
            matches!(err, MailboxError::Connect { .. }),
            "reported as a lost connection: {err:?}"
        );
        assert!(err.to_string().contains("no answer"), "{err}");
        // Reconnected once and tried again before giving up; bounded, not hung.
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}

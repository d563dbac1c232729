//! SMTP transport: lettre's SMTP client over connections we open and pool ourselves. Sends the
//! queued bytes unchanged with the envelope the outbox chose. A reply lost after the server
//! accepted DATA makes the outbox send again, so this transport delivers at least once (the
//! fixed Message-ID lets receivers recognise the duplicate).
//!
//! Why not `AsyncSmtpTransport`: lettre writes the message and its terminating `.` as two
//! writes and never sets TCP_NODELAY, so every mail waited for the server's delayed ACK (about
//! 40 ms on Linux; measured 44 ms per mail, see bench-results.md). Here the socket is ours, with
//! TCP_NODELAY, and lettre's `AsyncSmtpConnection` speaks the protocol on it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lettre::address::{Address, Envelope as LettreEnvelope};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;

use super::{Envelope, SendError, Transport};
use crate::config::{AuthMethod, Outgoing, Secret, TlsMode};
use crate::oauth2::TokenSource;

/// Connect, TLS and login together; and one whole mail transaction.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const SEND_TIMEOUT: Duration = Duration::from_secs(120);
/// A pooled connection idle longer than this is closed rather than reused: servers drop idle
/// clients (RFC 5321 section 4.5.3.2.7 allows 5 minutes), and a fresh one is cheap.
const MAX_IDLE: Duration = Duration::from_secs(60);

type Auth = Option<(String, AuthMethod, Secret)>;

struct Idle {
    conn: AsyncSmtpConnection,
    since: Instant,
}

pub struct SmtpTransport {
    server: String,
    host: String,
    port: u16,
    mode: TlsMode,
    /// Implicit TLS: our rustls handshake before the greeting.
    tls_config: Option<Arc<ClientConfig>>,
    /// STARTTLS: lettre upgrades the connection after EHLO.
    starttls: Option<TlsParameters>,
    auth: Auth,
    tokens: Option<Arc<TokenSource>>,
    hello: ClientId,
    /// Connections kept open between mails; never locked across an await.
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
}

/// Why a mail could not go: the stage tells a login problem (our configuration, retried) from
/// a refusal of this mail (5xx, permanent).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connect,
    Login,
    Transaction,
}

impl SmtpTransport {
    pub fn new(settings: &Outgoing, tokens: Option<Arc<TokenSource>>) -> Result<Self, SendError> {
        let config = |m: &str| SendError::Permanent(format!("outgoing SMTP settings: {m}"));
        let host = settings
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| config("host is required"))?;
        // RFC 8314 section 3.3 (465, implicit TLS), RFC 6409 (587, submission), RFC 5321 (25).
        let port = settings.port.unwrap_or(match settings.tls {
            TlsMode::Implicit => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        });
        let (tls_config, starttls) = match settings.tls {
            TlsMode::None => (None, None),
            TlsMode::Implicit => (
                Some(
                    crate::tls::client_config(settings.ca_file.as_deref())
                        .map_err(|e| config(&e))?,
                ),
                None,
            ),
            TlsMode::Starttls => {
                let mut params = TlsParameters::builder(host.clone());
                if let Some(ca) = &settings.ca_file {
                    let pem = std::fs::read(ca)
                        .map_err(|e| config(&format!("ca_file {}: {e}", ca.display())))?;
                    let cert = Certificate::from_pem(&pem)
                        .map_err(|e| config(&format!("ca_file {}: {e}", ca.display())))?;
                    params = params.add_root_certificate(cert);
                }
                let params = params
                    .build_rustls()
                    .map_err(|e| config(&format!("TLS: {e}")))?;
                (None, Some(params))
            }
        };
        let auth = match (&settings.username, settings.auth) {
            (Some(user), AuthMethod::Xoauth2) => {
                if tokens.is_none() {
                    return Err(config("auth = \"xoauth2\" needs the OAuth2 settings"));
                }
                Some((user.clone(), AuthMethod::Xoauth2, Secret::default()))
            }
            (Some(user), method) => {
                let password = match &settings.password_file {
                    Some(path) if settings.password.is_empty() => Secret::new(
                        std::fs::read_to_string(path)
                            .map_err(|e| config(&format!("password_file {}: {e}", path.display())))?
                            .trim_end_matches(['\r', '\n'])
                            .to_string(),
                    ),
                    _ => settings.password.clone(),
                };
                Some((user.clone(), method, password))
            }
            (None, AuthMethod::Xoauth2) => return Err(config("auth = \"xoauth2\" needs username")),
            (None, _) => None,
        };
        Ok(Self {
            server: format!("{host}:{port}"),
            host,
            port,
            mode: settings.tls,
            tls_config,
            starttls,
            auth,
            tokens,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            max_idle: settings.connections.max(1),
        })
    }

    fn error(&self, stage: Stage, e: impl std::fmt::Display) -> SendError {
        let what = match stage {
            Stage::Connect => "connecting",
            Stage::Login => "login refused (check [outgoing] username and password)",
            Stage::Transaction => "sending",
        };
        SendError::Transient(format!("SMTP {} {what}: {e}", self.server))
    }

    /// A lettre error, told apart by RFC 5321 section 4.2.1: 5yz during the mail transaction
    /// is permanent for this mail; 4yz, timeouts and connection trouble are worth another try.
    /// A refused login is our configuration, not the mail: retried (and logged) until fixed,
    /// so no acknowledgement is given up because of a changed password.
    fn classify(&self, stage: Stage, e: lettre::transport::smtp::Error) -> SendError {
        if stage == Stage::Transaction && (e.is_permanent() || e.is_client()) {
            SendError::Permanent(format!("SMTP {}: {e}", self.server))
        } else {
            self.error(stage, e)
        }
    }

    /// A pooled connection that was used recently, or none.
    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(i) = idle.pop() {
            if i.since.elapsed() < MAX_IDLE && !i.conn.has_broken() {
                return Some(i.conn);
            }
            // Too old: dropped without QUIT; the server times it out on its side as well.
        }
        None
    }

    fn put_idle(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, SendError> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.open_inner())
            .await
            .map_err(|_| self.error(Stage::Connect, "timed out"))?
    }

    async fn open_inner(&self) -> Result<AsyncSmtpConnection, SendError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.error(Stage::Connect, e))?;
        // The reason this transport exists: see the module comment.
        tcp.set_nodelay(true)
            .map_err(|e| self.error(Stage::Connect, e))?;
        let stream: Box<dyn AsyncTokioStream> = match (&self.mode, &self.tls_config) {
            (TlsMode::Implicit, Some(config)) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| self.error(Stage::Connect, format!("host name for TLS: {e}")))?;
                let tls = TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| self.error(Stage::Connect, format!("TLS: {e}")))?;
                Box::new(TlsOverTcp(tls))
            }
            _ => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| self.classify(Stage::Connect, e))?;
        if let Some(params) = &self.starttls {
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(|e| self.classify(Stage::Connect, e))?;
        }
        if let Some((user, method, password)) = &self.auth {
            let (secret, mechanism) = match method {
                AuthMethod::Login => (password.clone(), Mechanism::Login),
                AuthMethod::Plain => (password.clone(), Mechanism::Plain),
                AuthMethod::Xoauth2 => {
                    let tokens = self.tokens.as_ref().ok_or_else(|| {
                        self.error(Stage::Login, "XOAUTH2 without OAuth2 settings")
                    })?;
                    let token = tokens
                        .access_token()
                        .await
                        .map_err(|e| self.error(Stage::Login, e))?;
                    (token, Mechanism::Xoauth2)
                }
            };
            let credentials = Credentials::new(user.clone(), secret.expose().to_string());
            if let Err(e) = conn.auth(&[mechanism], &credentials).await {
                conn.abort().await;
                if *method == AuthMethod::Xoauth2
                    && let Some(tokens) = &self.tokens
                {
                    // The token may have been revoked before its time: get a new one next try.
                    tokens.invalidate().await;
                    // A refused XOAUTH2 token comes back as a 334 challenge carrying a JSON
                    // status, which lettre reports as an unexpected challenge: say what it is.
                    let reason = if e.is_client() {
                        "the server refused the access token".to_string()
                    } else {
                        e.to_string()
                    };
                    return Err(SendError::Transient(format!(
                        "SMTP {} XOAUTH2 login refused for {user}: {reason}; a new access token \
                         is fetched for the next try (if this repeats: check that the app may \
                         send mail for this mailbox, e.g. SMTP.Send and SMTP AUTH enabled)",
                        self.server
                    )));
                }
                return Err(self.classify(Stage::Login, e));
            }
        }
        Ok(conn)
    }

    async fn transaction(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &LettreEnvelope,
        raw: &[u8],
    ) -> Result<(), SendError> {
        match tokio::time::timeout(SEND_TIMEOUT, conn.send(envelope, raw)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.classify(Stage::Transaction, e)),
            Err(_) => {
                conn.abort().await;
                Err(self.error(Stage::Transaction, "timed out"))
            }
        }
    }
}

fn parse_address(a: &str, what: &str) -> Result<Address, SendError> {
    a.parse::<Address>()
        .map_err(|e| SendError::Permanent(format!("invalid {what} address {a:?}: {e}")))
}

#[async_trait]
impl Transport for SmtpTransport {
    async fn send(
        &self,
        message_id: &str,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), SendError> {
        // An empty reverse path (RFC 5321 section 4.5.5) is a bounce: MAIL FROM:<>.
        let from = if envelope.mail_from.is_empty() {
            None
        } else {
            Some(parse_address(&envelope.mail_from, "sender")?)
        };
        let to = envelope
            .rcpt_to
            .iter()
            .map(|a| parse_address(a, "recipient"))
            .collect::<Result<Vec<_>, _>>()?;
        let env = LettreEnvelope::new(from, to)
            .map_err(|e| SendError::Permanent(format!("invalid envelope: {e}")))?;
        if let Some(mut conn) = self.take_idle() {
            match self.transaction(&mut conn, &env, raw).await {
                Ok(()) => {
                    tracing::debug!(message_id, server = %self.server, "sent over SMTP (reused connection)");
                    self.put_idle(conn);
                    return Ok(());
                }
                Err(e @ SendError::Permanent(_)) => {
                    // lettre quits the connection after any error; nothing to return.
                    return Err(e);
                }
                Err(e) => {
                    // A pooled connection the server closed meanwhile: one fresh try.
                    tracing::debug!(message_id, error = %e, "reused SMTP connection failed; reconnecting");
                }
            }
        }
        let mut conn = self.open().await?;
        self.transaction(&mut conn, &env, raw).await?;
        tracing::debug!(message_id, server = %self.server, "sent over SMTP");
        self.put_idle(conn);
        Ok(())
    }

    fn guarantee(&self) -> &'static str {
        "at least once"
    }
}

/// Implicit TLS (RFC 8314): the TLS stream lettre speaks SMTP over, as its stream trait wants.
#[derive(Debug)]
struct TlsOverTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsOverTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsOverTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsOverTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

//! SMTP transport through lettre's pooled async client. Sends the queued bytes unchanged with
//! the envelope the outbox chose. A reply lost after the server accepted DATA makes the outbox
//! send again, so this transport delivers at least once (the fixed Message-ID lets receivers
//! recognise the duplicate).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::address::{Address, Envelope as LettreEnvelope};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Envelope, SendError, Transport};
use crate::config::{AuthMethod, Outgoing, Secret, TlsMode};
use crate::oauth2::TokenSource;

type Inner = AsyncSmtpTransport<Tokio1Executor>;

pub struct SmtpTransport {
    server: String,
    host: String,
    port: u16,
    tls: Option<Tls>,
    auth: Auth,
    tokens: Option<Arc<TokenSource>>,
    // With XOAUTH2 the credentials change when the access token does; lettre fixes them per
    // transport, so the pooled transport is rebuilt for each new token.
    current: tokio::sync::Mutex<(Option<Secret>, Inner)>,
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
        let tls = match settings.tls {
            TlsMode::None => None,
            mode => {
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
                Some(match mode {
                    TlsMode::Implicit => Tls::Wrapper(params),
                    _ => Tls::Required(params),
                })
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
        let first = build(&host, port, &tls, &auth, None);
        Ok(Self {
            server: format!("{host}:{port}"),
            host,
            port,
            tls,
            auth,
            tokens,
            current: tokio::sync::Mutex::new((None, first)),
        })
    }

    fn build(&self, token: Option<&Secret>) -> Inner {
        build(&self.host, self.port, &self.tls, &self.auth, token)
    }

    async fn transport(&self) -> Result<Inner, SendError> {
        let mut current = self.current.lock().await;
        if let Some(tokens) = &self.tokens
            && matches!(self.auth, Some((_, AuthMethod::Xoauth2, _)))
        {
            let token = tokens
                .access_token()
                .await
                .map_err(|e| SendError::Transient(format!("SMTP {}: {e}", self.server)))?;
            if current.0.as_ref() != Some(&token) {
                let fresh = self.build(Some(&token));
                *current = (Some(token), fresh);
            }
        }
        Ok(current.1.clone())
    }
}

type Auth = Option<(String, AuthMethod, Secret)>;

fn build(host: &str, port: u16, tls: &Option<Tls>, auth: &Auth, token: Option<&Secret>) -> Inner {
    // builder_dangerous: TLS is configured right below, from the `tls` setting.
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(Duration::from_secs(30)));
    b = match tls {
        Some(tls) => b.tls(tls.clone()),
        None => b.tls(Tls::None),
    };
    if let Some((user, method, password)) = auth {
        let (secret, mechanism) = match method {
            AuthMethod::Login => (password.expose(), Mechanism::Login),
            AuthMethod::Plain => (password.expose(), Mechanism::Plain),
            AuthMethod::Xoauth2 => (token.map(Secret::expose).unwrap_or(""), Mechanism::Xoauth2),
        };
        b = b
            .credentials(Credentials::new(user.clone(), secret.to_string()))
            .authentication(vec![mechanism]);
    }
    b.build()
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
        let transport = self.transport().await?;
        match transport.send_raw(&env, raw).await {
            Ok(_) => {
                tracing::debug!(message_id, server = %self.server, "sent over SMTP");
                Ok(())
            }
            Err(e) => {
                if matches!(self.auth, Some((_, AuthMethod::Xoauth2, _)))
                    && let Some(tokens) = &self.tokens
                {
                    // The token may have been revoked before its time: get a new one next try.
                    tokens.invalidate().await;
                }
                let text = format!("SMTP {}: {e}", self.server);
                // RFC 5321 section 4.2.1: 5yz is a permanent negative reply; 4yz, timeouts and
                // connection trouble are worth another try.
                if e.is_permanent() {
                    Err(SendError::Permanent(text))
                } else {
                    Err(SendError::Transient(text))
                }
            }
        }
    }

    fn guarantee(&self) -> &'static str {
        "at least once"
    }
}

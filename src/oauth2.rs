//! OAuth2 access tokens for XOAUTH2 (Microsoft 365, Gmail), shared by the IMAP source and the
//! SMTP transport. Refreshes with the refresh token grant (RFC 6749 section 6), caches the access
//! token until shortly before it expires, and stores a rotated refresh token at once: peers lost
//! access for good because they kept using the old one (zammad#3411). Tokens are never logged.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::{OAuth2, Secret};

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("OAuth2 settings incomplete: {0}")]
    Config(String),
    #[error("cannot use OAuth2 file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reach OAuth2 token endpoint {url}: {reason}")]
    Http { url: String, reason: String },
    /// The provider said no (RFC 6749 section 5.2), e.g. `invalid_grant` when the refresh token
    /// was revoked or expired: an admin must authorise klachtd again.
    #[error("OAuth2 token endpoint {url} refused the refresh (HTTP {status}): {error}{}",
        .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        url: String,
        status: u16,
        error: String,
        description: Option<String>,
    },
    #[error("OAuth2 token endpoint {url} answered something unexpected: {reason}")]
    BadResponse { url: String, reason: String },
}

/// Renew this long before the provider's expiry, so a token never dies mid-session.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

struct Cached {
    token: Secret,
    valid_until: Instant,
}

pub struct TokenSource {
    token_url: String,
    client_id: String,
    client_secret: Secret,
    refresh_token_file: PathBuf,
    scope: Option<String>,
    http: reqwest::Client,
    // One lock for the cache *and* the refresh: with rotating refresh tokens two concurrent
    // refreshes would race, and the loser's token may already be invalidated by the winner.
    cache: tokio::sync::Mutex<Option<Cached>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenSource {
    pub fn new(settings: &OAuth2) -> Result<Self, OAuthError> {
        let token_url = settings
            .token_url
            .clone()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| OAuthError::Config("token_url is required".into()))?;
        let client_id = settings
            .client_id
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::Config("client_id is required".into()))?;
        let refresh_token_file = settings
            .refresh_token_file
            .clone()
            .ok_or_else(|| OAuthError::Config("refresh_token_file is required".into()))?;
        let client_secret = match &settings.client_secret_file {
            Some(path) if settings.client_secret.is_empty() => Secret::new(read_trimmed(path)?),
            _ => settings.client_secret.clone(),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| OAuthError::Http {
                url: token_url.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            token_url,
            client_id,
            client_secret,
            refresh_token_file,
            scope: settings.scope.clone().filter(|s| !s.is_empty()),
            http,
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid access token, refreshed when the cached one is (nearly) expired.
    pub async fn access_token(&self) -> Result<Secret, OAuthError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.valid_until
        {
            return Ok(c.token.clone());
        }
        let fresh = self.refresh().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// Forget the cached token, e.g. after the server rejected it: the next call refreshes.
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    async fn refresh(&self) -> Result<Cached, OAuthError> {
        let refresh_token = read_trimmed(&self.refresh_token_file)?;
        if refresh_token.is_empty() {
            return Err(OAuthError::Config(format!(
                "refresh_token_file {} is empty",
                self.refresh_token_file.display()
            )));
        }
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
            ("client_id", &self.client_id),
        ];
        if !self.client_secret.is_empty() {
            form.push(("client_secret", self.client_secret.expose()));
        }
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let started = Instant::now();
        let http_err = |e: reqwest::Error| OAuthError::Http {
            url: self.token_url.clone(),
            // Without the URL: reqwest's message would repeat it; the body holds no secret.
            reason: e.without_url().to_string(),
        };
        let response = self
            .http
            .post(&self.token_url)
            .header("Accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(http_err)?;
        let status = response.status();
        let body = response.bytes().await.map_err(http_err)?;
        if !status.is_success() {
            // RFC 6749 section 5.2: errors come as JSON with `error` and `error_description`.
            return Err(match serde_json::from_slice::<ErrorResponse>(&body) {
                Ok(e) => OAuthError::Rejected {
                    url: self.token_url.clone(),
                    status: status.as_u16(),
                    error: e.error,
                    description: e.error_description,
                },
                Err(_) => OAuthError::Rejected {
                    url: self.token_url.clone(),
                    status: status.as_u16(),
                    error: "no OAuth2 error in the response".into(),
                    description: None,
                },
            });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| OAuthError::BadResponse {
                url: self.token_url.clone(),
                reason: format!("not a token response: {e}"),
            })?;
        if let Some(new_refresh) = parsed.refresh_token.as_deref()
            && !new_refresh.is_empty()
            && new_refresh != refresh_token
        {
            write_atomically(&self.refresh_token_file, new_refresh)?;
            tracing::info!(file = %self.refresh_token_file.display(), "stored rotated OAuth2 refresh token");
        }
        // `expires_in` is a number per RFC 6749, but some providers send it as a string.
        let lifetime = match &parsed.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(3600));
        let usable = if lifetime > EXPIRY_MARGIN * 2 {
            lifetime - EXPIRY_MARGIN
        } else {
            lifetime / 2
        };
        Ok(Cached {
            token: Secret::new(parsed.access_token),
            valid_until: started + usable,
        })
    }
}

fn read_trimmed(path: &Path) -> Result<String, OAuthError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| OAuthError::Io {
            path: path.display().to_string(),
            source,
        })
}

/// Replace `path` with `content` so that a crash leaves the old or the new token, never half of
/// one: write a private temporary file beside it, flush it to disk, rename it over the original.
fn write_atomically(path: &Path, content: &str) -> Result<(), OAuthError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| OAuthError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "refresh_token".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    let written = file
        .write_all(content.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

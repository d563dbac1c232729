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
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
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

// Shared with the stand-in provider of the mail-stack tests.
#[cfg(test)]
#[path = "../tests/support/http_form.rs"]
mod http_form;

#[cfg(test)]
mod tests {
    use super::http_form;
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;
    use std::collections::HashMap;

    /// A token endpoint speaking just enough HTTP/1.1: `rt-N` is exchanged for `at-N` and a
    /// rotated `rt-(N+1)`; anything else is `invalid_grant`.
    async fn token_endpoint() -> (String, Seen) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let request = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(r) = http_form::parse_request(&buf) {
                        break Some(r);
                    }
                };
                let Some(request) = request else { continue };
                if request.path != "/token" {
                    let reply = http_form::json_response("404 Not Found", "{}");
                    let _ = sock.write_all(reply.as_bytes()).await;
                    continue;
                }
                let form = request.form;
                let rt = form.get("refresh_token").cloned().unwrap_or_default();
                log.lock().unwrap().push(form);
                let (status, json) = match rt.strip_prefix("rt-").and_then(|n| n.parse::<u32>().ok()) {
                    Some(n) => (
                        "200 OK",
                        format!(
                            r#"{{"access_token":"at-{n}","token_type":"Bearer","expires_in":3599,"refresh_token":"rt-{}"}}"#,
                            n + 1
                        ),
                    ),
                    None => (
                        "400 Bad Request",
                        r#"{"error":"invalid_grant","error_description":"AADSTS70000: The refresh token was revoked."}"#.to_string(),
                    ),
                };
                let reply = http_form::json_response(status, &json);
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        (url, seen)
    }

    fn settings(url: &str, file: &Path) -> OAuth2 {
        OAuth2 {
            token_url: Some(url.to_string()),
            client_id: Some("klachtd-client".into()),
            client_secret: Secret::new("s3cret value"),
            client_secret_file: None,
            refresh_token_file: Some(file.to_path_buf()),
            scope: Some("https://outlook.office.com/IMAP.AccessAsUser.All offline_access".into()),
        }
    }

    #[tokio::test]
    async fn refresh_rotates_and_stores_the_refresh_token() {
        let (url, seen) = token_endpoint().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("refresh_token");
        std::fs::write(&file, "rt-1\n").unwrap();
        let tokens = TokenSource::new(&settings(&url, &file)).unwrap();

        assert_eq!(tokens.access_token().await.unwrap().expose(), "at-1");
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), "rt-2");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        {
            let log = seen.lock().unwrap();
            assert_eq!(log.len(), 1);
            assert_eq!(log[0]["grant_type"], "refresh_token");
            assert_eq!(log[0]["client_id"], "klachtd-client");
            assert_eq!(log[0]["client_secret"], "s3cret value");
            assert!(log[0]["scope"].ends_with("offline_access"));
        }

        // Cached: no second request while the token is valid.
        assert_eq!(tokens.access_token().await.unwrap().expose(), "at-1");
        assert_eq!(seen.lock().unwrap().len(), 1);

        // After invalidation the refresh uses the rotated token from the file.
        tokens.invalidate().await;
        assert_eq!(tokens.access_token().await.unwrap().expose(), "at-2");
        let log = seen.lock().unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[1]["refresh_token"], "rt-2");
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), "rt-3");
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn invalid_grant_is_a_clear_error_without_the_token() {
        let (url, _) = token_endpoint().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("refresh_token");
        std::fs::write(&file, "revoked-token-123").unwrap();
        let tokens = TokenSource::new(&settings(&url, &file)).unwrap();
        let err = tokens.access_token().await.unwrap_err();
        match &err {
            OAuthError::Rejected { status, error, .. } => {
                assert_eq!(*status, 400);
                assert_eq!(error, "invalid_grant");
            }
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("invalid_grant") && text.contains("revoked"),
            "{text}"
        );
        assert!(!text.contains("revoked-token-123"), "{text}");
        // The file is left as it was.
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "revoked-token-123");
    }

    #[tokio::test]
    async fn unreachable_endpoint_and_missing_settings() {
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rt");
        std::fs::write(&file, "rt-1").unwrap();
        let tokens =
            TokenSource::new(&settings(&format!("http://127.0.0.1:{free}/token"), &file)).unwrap();
        assert!(matches!(
            tokens.access_token().await,
            Err(OAuthError::Http { .. })
        ));
        let mut s = settings("http://x", &file);
        s.client_id = None;
        assert!(matches!(TokenSource::new(&s), Err(OAuthError::Config(_))));
    }
}

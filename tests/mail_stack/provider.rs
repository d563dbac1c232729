//! A stand-in OAuth2 provider on the stack's `OAUTH_PORT`: the token endpoint klachtd refreshes
//! its access token at, and the RFC 7662 introspection endpoint that the stack's Dovecot asks
//! (for IMAP, and for Postfix's SMTP AUTH through Dovecot's SASL) whether a token is live.
//!
//! Like Microsoft's and Google's, the refresh token rotates: `rt-N` is good once, and is
//! answered with a fresh access token and `rt-(N+1)`. Access tokens are live until
//! [`Provider::revoke_access_tokens`].
//!
//! One provider at a time (it owns the port): callers hold the write half of
//! [`super::stack::DISRUPT`].

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use klachtd::config::{OAuth2, Secret};

use super::stack::Stack;

#[derive(Default)]
struct State {
    user: String,
    /// The one refresh token number accepted next.
    next: u32,
    live: HashSet<String>,
    refreshes: u32,
    refused_refreshes: u32,
    introspections: u32,
}

pub struct Provider {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl Provider {
    /// Serve for `user`, whose first refresh token is `rt-1`.
    pub fn start(stack: &Stack, user: &str) -> Provider {
        let port = stack.port("OAUTH_PORT");
        // The previous provider's socket may still be closing.
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("provider: bind {port}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("provider: cannot bind 127.0.0.1:{port}: {e}"),
            }
        };
        let state = Arc::new(Mutex::new(State {
            user: user.to_string(),
            next: 1,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        serve(conn, &state);
                    }
                }
            })
        };
        Provider {
            state,
            stop,
            port,
            thread: Some(thread),
        }
    }

    pub fn token_url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// klachtd's `[mailbox]`/`[outgoing]` OAuth2 settings for this provider.
    pub fn settings(&self, refresh_token_file: &Path) -> OAuth2 {
        OAuth2 {
            token_url: Some(self.token_url()),
            client_id: Some("klachtd-test".into()),
            client_secret: Secret::new("client-secret"),
            client_secret_file: None,
            refresh_token_file: Some(refresh_token_file.to_path_buf()),
            scope: Some("mail offline_access".into()),
        }
    }

    /// Whose tokens it issues from now on (a test app's service address is made with the app).
    pub fn set_user(&self, user: &str) {
        self.state.lock().expect("provider state").user = user.to_string();
    }

    /// Every access token issued so far stops working (as when an admin revokes sessions).
    pub fn revoke_access_tokens(&self) {
        self.state.lock().expect("provider state").live.clear();
    }

    /// Refresh requests answered with a token.
    pub fn refreshes(&self) -> u32 {
        self.state.lock().expect("provider state").refreshes
    }

    /// Refresh requests refused (`invalid_grant`).
    pub fn refused_refreshes(&self) -> u32 {
        self.state.lock().expect("provider state").refused_refreshes
    }

    /// Introspection requests, i.e. XOAUTH2 logins the mail servers checked.
    pub fn introspections(&self) -> u32 {
        self.state.lock().expect("provider state").introspections
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request per connection (`Connection: close`), which both klachtd and Dovecot accept.
fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let Some((path, form)) = read_request(&mut conn) else {
        return;
    };
    let (status, json) = {
        let mut s = state.lock().expect("provider state");
        match path.as_str() {
            "/token" => {
                let wanted = format!("rt-{}", s.next);
                let ok = form.get("grant_type").map(String::as_str) == Some("refresh_token")
                    && form.get("refresh_token") == Some(&wanted);
                if ok {
                    let n = s.next;
                    s.next += 1;
                    s.refreshes += 1;
                    let access = format!("at-{n}-{}", s.refreshes);
                    s.live.insert(access.clone());
                    (
                        "200 OK",
                        format!(
                            r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":3599,"refresh_token":"rt-{}"}}"#,
                            n + 1
                        ),
                    )
                } else {
                    s.refused_refreshes += 1;
                    (
                        "400 Bad Request",
                        r#"{"error":"invalid_grant","error_description":"The refresh token was revoked."}"#
                            .to_string(),
                    )
                }
            }
            "/introspect" => {
                s.introspections += 1;
                let token = form.get("token").cloned().unwrap_or_default();
                if s.live.contains(&token) {
                    (
                        "200 OK",
                        format!(r#"{{"active":true,"username":"{}"}}"#, s.user),
                    )
                } else {
                    ("200 OK", r#"{"active":false}"#.to_string())
                }
            }
            _ => ("404 Not Found", "{}".to_string()),
        }
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    let _ = conn.write_all(reply.as_bytes());
    let _ = conn.flush();
}

/// The path and the url-encoded form body of one POST.
fn read_request(conn: &mut TcpStream) -> Option<(String, HashMap<String, String>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        if body.len() < len {
            continue;
        }
        let path = head.split_whitespace().nth(1)?.to_string();
        let form = body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect();
        return Some((path, form));
    }
}

/// application/x-www-form-urlencoded.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

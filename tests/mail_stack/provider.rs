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

#[path = "../support/http_form.rs"]
mod http_form;

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
    let reply = http_form::json_response(status, &json);
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
        if let Some(r) = http_form::parse_request(&buf) {
            return Some((r.path, r.form));
        }
    }
}

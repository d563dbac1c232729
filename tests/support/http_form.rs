//! Just enough HTTP/1.1 for the stand-in OAuth2 endpoints of the tests: one POST with an
//! `application/x-www-form-urlencoded` body, answered with JSON and `Connection: close`.
//! Shared by the unit tests of `src/oauth2.rs` and by `tests/mail_stack/provider.rs`.

use std::collections::HashMap;

pub struct FormRequest {
    pub path: String,
    pub form: HashMap<String, String>,
}

/// The request in `buf`, once its head and its whole body (by Content-Length) have arrived;
/// `None` while more is to come.
pub fn parse_request(buf: &[u8]) -> Option<FormRequest> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    if body.len() < len {
        return None;
    }
    let path = head.split_whitespace().nth(1)?.to_string();
    let form = body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    Some(FormRequest { path, form })
}

/// The whole response for `status` (e.g. "200 OK") with a JSON body.
pub fn json_response(status: &str, json: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )
}

/// application/x-www-form-urlencoded: `+` is a space, `%XX` a byte.
pub fn decode(s: &str) -> String {
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

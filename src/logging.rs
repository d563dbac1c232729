//! The log filter. Whatever level the admin asks for, dependencies that write protocol traffic
//! at debug or trace level are capped, because that traffic holds secrets: async-imap logs
//! every command it encodes (`LOGIN "user" "password"`, `AUTHENTICATE PLAIN` with the base64
//! of the password, XOAUTH2 with the access token), and the HTTP stack under the OAuth2 token
//! refresh can log request bodies. Our own code never logs a secret. Handlebars logs, at
//! debug level, every value it renders into a mail: the complainant's name, subject and text,
//! which must not outlive their retention period in a log file (issue #11).

use tracing_subscriber::EnvFilter;

/// Targets capped at `info`, with why: see the module comment.
pub const CAPPED_TARGETS: &[&str] = &[
    "async_imap",
    "imap_proto",
    "lettre",
    "rustls",
    "tokio_rustls",
    "reqwest",
    "hyper",
    "hyper_util",
    "h2",
    "handlebars",
];

/// The filter for `directives` (RUST_LOG syntax, or the config's `logging.level`), with the
/// caps applied after them so that `trace` or `async_imap=trace` cannot lift them. An
/// unreadable directive string falls back to `info` rather than logging everything.
pub fn filter(directives: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    for target in CAPPED_TARGETS {
        if let Ok(d) = format!("{target}=info").parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caps hold against a blanket `trace` and against a directive for the target itself.
    #[test]
    fn capped_targets_stay_at_info() {
        for user in [
            "trace",
            "async_imap=trace",
            "trace,async_imap=trace,klachtd=trace",
        ] {
            let shown = filter(user).to_string();
            assert!(shown.contains("async_imap=info"), "{user}: {shown}");
            assert!(!shown.contains("async_imap=trace"), "{user}: {shown}");
        }
    }

    /// Handlebars logs the values it renders (names, text of complaints) at debug level.
    #[test]
    fn template_values_stay_out_of_the_log() {
        let shown = filter("trace,handlebars=trace").to_string();
        assert!(shown.contains("handlebars=info"), "{shown}");
        assert!(!shown.contains("handlebars=trace"), "{shown}");
    }
}

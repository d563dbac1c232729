//! Outgoing transports: how a queued mail leaves. The outbox (in the store) owns retries; a
//! transport only tries once and says whether a failure is worth retrying.

use async_trait::async_trait;

pub mod file;
pub mod smtp;

/// SMTP envelope of one queued mail (the envelope sender is our per-message VERP address).
#[derive(Debug, Clone)]
pub struct Envelope {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// 4xx, connection trouble, a full disk: try again later.
    #[error("cannot send mail now (will retry): {0}")]
    Transient(String),
    /// 5xx: retrying will not help; kept and alerted.
    #[error("cannot send mail (permanent): {0}")]
    Permanent(String),
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }
}

#[async_trait]
pub trait Transport: Send + Sync {
    /// Deliver one fully formatted message. `message_id` is fixed at enqueue (without `<>`), so a
    /// resend after a lost reply is recognisably the same mail.
    async fn send(
        &self,
        message_id: &str,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), SendError>;

    /// What this transport guarantees, for logs and docs: "exactly once" or "at least once".
    fn guarantee(&self) -> &'static str;
}

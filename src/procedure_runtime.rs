//! The procedure as the services use it: the chosen preset loaded from disk with its calendar.
//! (Interim: Monday-to-Friday counting until the procedure engine lands.)

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use serde_json::{Value, json};

use crate::domain::types::EmailAddress;
use crate::service::{Context, ServiceError};
use crate::store::StoreTx;

pub struct ProcedureRuntime {
    name: String,
    version: String,
    tz: chrono_tz::Tz,
}

impl ProcedureRuntime {
    pub fn new(name: &str, tz: chrono_tz::Tz) -> Self {
        Self {
            name: name.to_string(),
            version: "interim".into(),
            tz,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn serious_keywords(&self, _subject: &str, _body: &str) -> Vec<String> {
        Vec::new()
    }

    fn add_weekdays(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut d = from;
        let mut left = n;
        while left > 0 {
            d += Duration::days(1);
            if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
                left -= 1;
            }
        }
        d
    }

    #[allow(clippy::too_many_arguments)]
    pub fn complaint_context(
        &self,
        organisation: &str,
        reference: &str,
        subject: &str,
        received_at: DateTime<Utc>,
        text: &str,
        complainant: &(EmailAddress, Option<String>),
        _lang: &str,
    ) -> Value {
        let day = received_at.with_timezone(&self.tz).date_naive();
        json!({
            "organisation": { "name": organisation },
            "complaint": {
                "reference": reference,
                "subject": subject,
                "received_date": day.to_string(),
                "summary": text.lines().take(5).collect::<Vec<_>>().join("\n"),
            },
            "complainant": { "name": complainant.1.clone().unwrap_or_default(), "address": complainant.0.to_string() },
            "procedure": { "title": self.name },
            "deadlines": {
                "first_reaction": self.add_weekdays(day, 5).to_string(),
                "handled": self.add_weekdays(day, 14).to_string(),
            },
            "links": { "reply_hint": "" },
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn on_registered(
        &self,
        _ctx: &Context,
        _tx: &mut dyn StoreTx,
        _complaint_id: i64,
        _reference: &str,
        _context: &Value,
        _serious: &[String],
        _now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        Ok(())
    }
}

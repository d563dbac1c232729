//! The procedure as the services use it: the configured preset (or edited copy) read from
//! disk, its calendar and working hours, and the versions complaints started with. Open
//! complaints keep the procedure text they were registered under (stored in the database).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::config::Settings;
use crate::domain::calendar::{Calendar, format_date, local_date};
use crate::domain::procedure::{Procedure, Progress};
use crate::store::StoreTx;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot read procedure {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("procedure is invalid:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
    #[error("calendar: {0}")]
    Calendar(String),
}

pub struct ProcedureRuntime {
    current: Arc<Procedure>,
    current_text: String,
    pub calendar: Calendar,
    pub tz: Tz,
    pub hours: (NaiveTime, NaiveTime),
    cache: Mutex<HashMap<(String, String), Arc<Procedure>>>,
}

/// Preset name or path: a value ending in `.toml` is a path, anything else a preset in `dir`.
pub fn procedure_path(settings: &Settings) -> PathBuf {
    let p = &settings.procedure.preset;
    if p.ends_with(".toml") {
        PathBuf::from(p)
    } else {
        settings.procedure.dir.join(format!("{p}.toml"))
    }
}

/// Presets shipped in the procedure directory, by name.
pub fn list_presets(dir: &std::path::Path) -> Vec<(String, Result<Procedure, Vec<String>>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| vec![e.to_string()])
            .and_then(|t| {
                Procedure::parse(&name, &t, &path.display().to_string())
                    .map_err(|es| es.iter().map(|e| e.to_string()).collect())
            });
        out.push((name, parsed));
    }
    out
}

impl ProcedureRuntime {
    pub fn load(settings: &Settings) -> Result<Self, RuntimeError> {
        let path = procedure_path(settings);
        let text = std::fs::read_to_string(&path).map_err(|e| RuntimeError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| settings.procedure.preset.clone());
        let procedure = Procedure::parse(&name, &text, &path.display().to_string())
            .map_err(|es| RuntimeError::Invalid(es.iter().map(|e| e.to_string()).collect()))?;
        let calendar =
            Calendar::new(&settings.calendar).map_err(|e| RuntimeError::Calendar(e.to_string()))?;
        Ok(Self {
            current: Arc::new(procedure),
            current_text: text,
            calendar,
            tz: settings
                .time_zone()
                .map_err(|p| RuntimeError::Invalid(vec![format!("{}: {}", p.key, p.message)]))?,
            hours: settings
                .working_hours()
                .map_err(|p| RuntimeError::Invalid(vec![format!("{}: {}", p.key, p.message)]))?,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn current(&self) -> &Arc<Procedure> {
        &self.current
    }

    pub fn name(&self) -> &str {
        &self.current.name
    }

    pub fn version(&self) -> &str {
        &self.current.version
    }

    pub fn serious_keywords(&self, subject: &str, body: &str) -> Vec<String> {
        self.current.is_serious(subject, body)
    }

    /// Remember the current procedure text under its version (once), so complaints registered
    /// now keep it when the file is edited later.
    pub async fn record_current(
        &self,
        tx: &mut dyn StoreTx,
        now: DateTime<Utc>,
    ) -> Result<(), crate::store::StoreError> {
        tx.save_procedure_version(
            &self.current.name,
            &self.current.version,
            &self.current_text,
            now,
        )
        .await
    }

    /// The procedure a complaint started with.
    pub async fn for_complaint(
        &self,
        tx: &mut dyn StoreTx,
        name: &str,
        version: &str,
    ) -> Result<Arc<Procedure>, crate::store::StoreError> {
        if name == self.current.name && version == self.current.version {
            return Ok(self.current.clone());
        }
        let key = (name.to_string(), version.to_string());
        if let Some(p) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(p.clone());
        }
        let Some(text) = tx.procedure_text(name, version).await? else {
            tracing::warn!(
                name,
                version,
                "procedure version not stored: using the current one"
            );
            return Ok(self.current.clone());
        };
        match Procedure::parse(name, &text, &format!("{name}@{version}")) {
            Ok(p) => {
                let p = Arc::new(p);
                self.cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, p.clone());
                Ok(p)
            }
            Err(_) => Ok(self.current.clone()),
        }
    }

    /// Formatted due dates of a complaint's milestones, for templates.
    pub fn deadline_map(
        &self,
        procedure: &Procedure,
        progress: &Progress,
        lang: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        for d in procedure.deadlines(&self.calendar, self.tz, progress) {
            if let Some(due) = d.due {
                map.insert(
                    d.milestone.to_string(),
                    serde_json::Value::String(format_date(due, lang)),
                );
            }
        }
        map
    }

    pub fn format_day(&self, at: DateTime<Utc>, lang: &str) -> String {
        format_date(local_date(at, self.tz), lang)
    }
}

//! `klachtd route --explain FILE.eml`: the rule a mail would match, without registering it.

use std::path::Path;
use std::process::ExitCode;

use klachtd::config::{ConfigError, Settings};
use klachtd::domain::routing::{RouteMatch, RoutingFacts, RoutingRule};
use klachtd::procedure_runtime::ProcedureRuntime;

use super::args::Format;
use super::say;

pub fn route(settings: &Settings, file: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let rules = settings.routing_rules().map_err(ConfigError::Invalid)?;
    let raw =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let parsed = klachtd::mail::parse::parse(&raw)
        .map_err(|e| anyhow::anyhow!("{} is not a readable mail: {e}", file.display()))?;
    let sent_to = klachtd::service::ingest::sent_to_addresses(&parsed);
    let kind = ProcedureRuntime::load(settings)?.current().default_kind();
    let facts = RoutingFacts {
        from: &parsed.facts.from,
        sent_to: &sent_to,
        subject: &parsed.facts.subject,
        text: &parsed.text,
        kind: &kind,
    };
    let m = klachtd::domain::routing::route(&rules, &facts);
    let rule = m.as_ref().and_then(|m| rules.get(m.rule));
    match format {
        Format::Json => print_json(m.as_ref(), rule)?,
        Format::Table | Format::Text => print_text(m.as_ref(), rule),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json(m: Option<&RouteMatch>, rule: Option<&RoutingRule>) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "matched": m.is_some(),
            "rule": m.map(|m| m.rule),
            "name": m.map(|m| m.name.clone()),
            "because": m.map(|m| m.because.clone()).unwrap_or_default(),
            "handler": rule.and_then(|r| r.handler.as_ref()).map(|h| h.to_string()),
            "notify": rule.map(|r| r.notify.clone()).unwrap_or_else(|| vec!["receiver".into()]),
        }))?
    );
    Ok(())
}

fn print_text(m: Option<&RouteMatch>, rule: Option<&RoutingRule>) {
    let (Some(m), Some(r)) = (m, rule) else {
        say!("no rule matches: the receiving role is told");
        return;
    };
    say!("rule {} {:?}: {}", m.rule + 1, m.name, m.because.join(", "));
    say!(
        "handler: {}",
        r.handler
            .as_ref()
            .map(|h| h.as_str())
            .unwrap_or("(unchanged)")
    );
    say!(
        "told: {}",
        if r.notify.is_empty() {
            "receiver".to_string()
        } else {
            r.notify.join(", ")
        }
    );
}

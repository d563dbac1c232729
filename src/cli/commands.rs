//! `klachtd commands`: the reference of the commands staff write in their replies.

use std::process::ExitCode;

use klachtd::config::Settings;

/// Printed as it is: the reference text is ours, not from mail.
pub fn reference(settings: &Settings, lang: Option<&str>) -> anyhow::Result<ExitCode> {
    let lang = lang.unwrap_or(&settings.organisation.language);
    print!("{}", klachtd::domain::command::reference_text(lang));
    Ok(ExitCode::SUCCESS)
}

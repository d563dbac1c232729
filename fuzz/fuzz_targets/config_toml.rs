//! A config TOML from a string: parsed with and without environment overrides, checked, and
//! the derived values (time zone, hours, database URL, calendar) computed.
#![no_main]

use klachtd::config::Settings;
use klachtd::domain::calendar::Calendar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The last line, when it looks like KEY=VALUE, is also tried as an environment override.
    let env: Vec<(String, String)> = text
        .lines()
        .last()
        .and_then(|l| l.split_once('='))
        .map(|(k, v)| vec![(format!("KLACHTD__{k}"), v.to_string())])
        .unwrap_or_default();
    for env in [&[][..], &env[..]] {
        let Ok(settings) = Settings::from_text(text, "fuzz.toml", env) else {
            continue;
        };
        let _ = settings.problems();
        let _ = settings.time_zone();
        let _ = settings.working_hours();
        let _ = settings.database_url();
        let _ = Calendar::new(&settings.calendar);
    }
});

//! A procedure TOML from a string: parsed, checked and, when valid, planned and explained
//! (the deadline engine runs on whatever terms the file gives).
#![no_main]

use std::collections::BTreeMap;

use chrono::{NaiveTime, TimeZone, Utc};
use klachtd::config::CalendarSettings;
use klachtd::domain::calendar::Calendar;
use klachtd::domain::procedure::{Procedure, Progress};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(procedure) = Procedure::parse("fuzz", text, "fuzz.toml") else {
        return;
    };
    let _ = procedure.check(&|_| true, &|_| true);
    let _ = procedure.is_serious("Klacht over de les", "Ik wil een klacht indienen.");
    let Ok(cal) = Calendar::new(&CalendarSettings::default()) else {
        return;
    };
    let tz = chrono_tz::Europe::Amsterdam;
    let hours = (
        NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
        NaiveTime::from_hms_opt(17, 0, 0).unwrap_or_default(),
    );
    let received_at = Utc.with_ymd_and_hms(2026, 11, 23, 11, 0, 0).unwrap();
    let mut progress = Progress {
        received_at,
        completed: BTreeMap::new(),
        round: 0,
        serious: true,
        extended_weeks: 1,
    };
    let _ = procedure.deadlines(&cal, tz, &progress);
    let _ = procedure.plan(&cal, tz, hours, &progress, false);
    procedure.reopen(&mut progress, received_at + chrono::Duration::days(30));
    let _ = procedure.plan(&cal, tz, hours, &progress, true);
    let _ = procedure.extend(&progress, 3, true);
    let _ = procedure
        .explain(&cal, tz, hours, received_at, "nl", false)
        .to_text();
});

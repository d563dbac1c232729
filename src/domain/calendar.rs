//! Dutch working-day calendar: general holidays of the Algemene termijnenwet (Atw), days equated
//! with them, the organisation's closing days, and date arithmetic on working and calendar days.
//!
//! Pure: every function takes the date or instant it works on; nothing reads a clock.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

use crate::config::CalendarSettings;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar.drop_holidays: unknown holiday {name:?} (known: {known})")]
    UnknownHoliday { name: String, known: String },
}

/// How a general holiday or equated day falls in a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Fixed {
        month: u32,
        day: u32,
    },
    /// Days after Easter Sunday (negative: before).
    Easter(i64),
    /// 27 April, or 26 April when the 27th is a Sunday (Atw art. 3(1)).
    Koningsdag,
}

/// A general holiday (Atw art. 3(1),(2)) or a day equated with one by rule (art. 3(3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holiday {
    /// Stable lowercase id, as written in `calendar.drop_holidays`.
    pub id: &'static str,
    /// Dutch display name.
    pub name: &'static str,
    /// Equated by decree (art. 3(3)) rather than named in the law itself.
    pub equated: bool,
    rule: Rule,
}

/// The holidays of Atw art. 3(1) and 3(2), then the equated days that recur by rule.
pub const HOLIDAYS: &[Holiday] = &[
    h(
        "nieuwjaarsdag",
        "Nieuwjaarsdag",
        Rule::Fixed { month: 1, day: 1 },
    ),
    h("goede_vrijdag", "Goede Vrijdag", Rule::Easter(-2)),
    h("tweede_paasdag", "Tweede Paasdag", Rule::Easter(1)),
    h("koningsdag", "Koningsdag", Rule::Koningsdag),
    h(
        "bevrijdingsdag",
        "Bevrijdingsdag",
        Rule::Fixed { month: 5, day: 5 },
    ),
    h("hemelvaartsdag", "Hemelvaartsdag", Rule::Easter(39)),
    h("tweede_pinksterdag", "Tweede Pinksterdag", Rule::Easter(50)),
    h(
        "eerste_kerstdag",
        "Eerste Kerstdag",
        Rule::Fixed { month: 12, day: 25 },
    ),
    h(
        "tweede_kerstdag",
        "Tweede Kerstdag",
        Rule::Fixed { month: 12, day: 26 },
    ),
    // The Friday after Hemelvaartsdag: every decree under art. 3(3) so far has named it (see
    // EQUATING_DECREES), so it is also kept for years no decree covers yet. Other equated days
    // (a Friday after a Thursday holiday) come only from the decrees or `calendar.equated_days`.
    // An organisation that works that day drops it by name.
    Holiday {
        id: "vrijdag_na_hemelvaart",
        name: "Vrijdag na Hemelvaartsdag",
        equated: true,
        rule: Rule::Easter(40),
    },
];

const fn h(id: &'static str, name: &'static str, rule: Rule) -> Holiday {
    Holiday {
        id,
        name,
        equated: false,
        rule,
    }
}

/// A decree under Atw art. 3(3) that equates days with a general holiday, as published in the
/// Staatsblad (title as published; days as (year, month, day)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EquatingDecree {
    pub title: &'static str,
    pub days: &'static [(i32, u32, u32)],
}

/// The decrees known to this version. An admin adds the days of the next decree before an update
/// with `calendar.equated_days` (README, "Working days").
pub const EQUATING_DECREES: &[EquatingDecree] = &[
    EquatingDecree {
        title: "Besluit gelijkstelling van 28 april 2023, 19 mei 2023, 10 mei 2024, 27 december 2024 en 30 mei 2025 met een algemeen erkende feestdag",
        days: &[
            (2023, 4, 28),
            (2023, 5, 19),
            (2024, 5, 10),
            (2024, 12, 27),
            (2025, 5, 30),
        ],
    },
    EquatingDecree {
        title: "Besluit gelijkstelling van 2 januari 2026, 15 mei 2026, 7 mei 2027, 28 april 2028 en 26 mei 2028 met een algemeen erkende feestdag",
        days: &[
            (2026, 1, 2),
            (2026, 5, 15),
            (2027, 5, 7),
            (2028, 4, 28),
            (2028, 5, 26),
        ],
    },
];

/// The decree that equates `d`, if any.
pub fn equating_decree(d: NaiveDate) -> Option<&'static EquatingDecree> {
    EQUATING_DECREES.iter().find(|decree| {
        decree
            .days
            .iter()
            .any(|&(y, m, day)| NaiveDate::from_ymd_opt(y, m, day) == Some(d))
    })
}

/// Display name of a day equated by configuration rather than by a named rule.
const EQUATED_NAME: &str = "Gelijkgestelde dag";
const CLOSING_NAME: &str = "Sluitingsdag";

impl Holiday {
    /// The date of this holiday in `year`, if that year can be represented.
    pub fn date_in(&self, year: i32) -> Option<NaiveDate> {
        match self.rule {
            Rule::Fixed { month, day } => NaiveDate::from_ymd_opt(year, month, day),
            Rule::Easter(offset) => easter_sunday(year).checked_add_signed(TimeDelta::days(offset)),
            Rule::Koningsdag => {
                let d = NaiveDate::from_ymd_opt(year, 4, 27)?;
                if d.weekday() == Weekday::Sun {
                    d.pred_opt()
                } else {
                    Some(d)
                }
            }
        }
    }
}

/// The years whose Easter is looked up rather than computed.
const EASTER_TABLE_YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

/// Easter Sunday in the Gregorian calendar. Every holiday check asks for it, so counting the
/// working days of a register's deadlines asks millions of times: the years 1900 to 2200 come
/// from a table made once.
pub fn easter_sunday(year: i32) -> NaiveDate {
    static TABLE: std::sync::OnceLock<Vec<NaiveDate>> = std::sync::OnceLock::new();
    if EASTER_TABLE_YEARS.contains(&year) {
        let table = TABLE.get_or_init(|| EASTER_TABLE_YEARS.map(compute_easter).collect());
        if let Some(d) = table.get((year - EASTER_TABLE_YEARS.start()) as usize) {
            return *d;
        }
    }
    compute_easter(year)
}

/// Anonymous Gregorian computus.
fn compute_easter(year: i32) -> NaiveDate {
    let y = i64::from(year);
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    // month is 3 or 4 and day 1..=31 by construction; only a year outside chrono's range fails.
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).unwrap_or(NaiveDate::MIN)
}

/// Where a calendar-day or week term that ends on a non-working day ends up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Roll {
    /// The end stays where it falls.
    #[default]
    None,
    /// Atw art. 1: an end on a Saturday, Sunday or general holiday moves to the next day that is
    /// none of those (closing days too when the organisation says so).
    NextWorkingDay,
}

/// Which days are working days for one organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    dropped: BTreeSet<&'static str>,
    equated: BTreeSet<NaiveDate>,
    closing: BTreeSet<NaiveDate>,
    closing_days_move_deadlines: bool,
    days: DayCache,
}

/// The years whose days are kept in a [`DayCache`]; others are worked out each time.
const CACHED_YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;
const HOLIDAY: u8 = 1;
const CLOSING: u8 = 2;

/// What each day of a year is ([`HOLIDAY`], [`CLOSING`]), made the first time a day of that
/// year is asked about. A register of 100,000 complaints asks about millions of days; asking
/// every holiday rule each time was a tenth of `klachtd register`. Shared by clones; made
/// anew whenever the calendar's days change (only in [`Calendar::new`]). Two calendars are
/// equal by their days, whatever either has cached.
#[derive(Clone)]
struct DayCache(std::sync::Arc<[std::sync::OnceLock<[u8; 366]>]>);

impl DayCache {
    fn new() -> DayCache {
        DayCache(CACHED_YEARS.map(|_| std::sync::OnceLock::new()).collect())
    }
}

impl PartialEq for DayCache {
    fn eq(&self, _: &DayCache) -> bool {
        true
    }
}

impl Eq for DayCache {}

impl std::fmt::Debug for DayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DayCache")
    }
}

impl Default for Calendar {
    fn default() -> Self {
        Self::dutch()
    }
}

impl Calendar {
    /// All general holidays, the Friday after Hemelvaartsdag and the days of the known
    /// equating decrees; no closing days.
    pub fn dutch() -> Calendar {
        Calendar {
            dropped: BTreeSet::new(),
            equated: EQUATING_DECREES
                .iter()
                .flat_map(|decree| decree.days.iter())
                .filter_map(|&(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
                .collect(),
            closing: BTreeSet::new(),
            closing_days_move_deadlines: false,
            days: DayCache::new(),
        }
    }

    pub fn new(settings: &CalendarSettings) -> Result<Calendar, CalendarError> {
        let mut cal = Calendar::dutch();
        for name in &settings.drop_holidays {
            let wanted = name.trim().to_lowercase();
            match HOLIDAYS.iter().find(|h| h.id == wanted) {
                Some(h) => {
                    cal.dropped.insert(h.id);
                }
                None => {
                    return Err(CalendarError::UnknownHoliday {
                        name: name.clone(),
                        known: HOLIDAYS.iter().map(|h| h.id).collect::<Vec<_>>().join(", "),
                    });
                }
            }
        }
        // Dropping the Friday after Hemelvaartsdag by name drops it in the decreed years too.
        if let Some(friday) = HOLIDAYS
            .iter()
            .find(|h| h.id == "vrijdag_na_hemelvaart" && cal.dropped.contains(h.id))
        {
            cal.equated.retain(|d| friday.date_in(d.year()) != Some(*d));
        }
        cal.equated.extend(settings.equated_days.iter().copied());
        cal.closing.extend(settings.closing_days.iter().copied());
        cal.closing_days_move_deadlines = settings.closing_days_move_deadlines;
        cal.days = DayCache::new();
        Ok(cal)
    }

    /// [`HOLIDAY`] and [`CLOSING`] of `d`, from the cache where the year is in it.
    fn day_flags(&self, d: NaiveDate) -> u8 {
        let year = d.year();
        let index = usize::try_from(year - CACHED_YEARS.start()).ok();
        let Some(cell) = index.and_then(|i| self.days.0.get(i)) else {
            return self.day_flags_uncached(d);
        };
        let table = cell.get_or_init(|| {
            let mut table = [0u8; 366];
            let mut day = NaiveDate::from_yo_opt(year, 1);
            while let Some(current) = day.filter(|c| c.year() == year) {
                table[current.ordinal0() as usize] = self.day_flags_uncached(current);
                day = current.succ_opt();
            }
            table
        });
        table[d.ordinal0() as usize]
    }

    fn day_flags_uncached(&self, d: NaiveDate) -> u8 {
        let mut flags = 0;
        if self.holiday(d).is_some() || self.equated.contains(&d) {
            flags |= HOLIDAY;
        }
        if self.closing.contains(&d) {
            flags |= CLOSING;
        }
        flags
    }

    /// The named holiday on `d`, unless the organisation dropped it.
    pub fn holiday(&self, d: NaiveDate) -> Option<&'static Holiday> {
        HOLIDAYS
            .iter()
            .filter(|h| !self.dropped.contains(h.id))
            .find(|h| h.date_in(d.year()) == Some(d))
    }

    /// A general holiday or a day equated with one (Atw art. 3), as this organisation keeps them.
    pub fn is_general_holiday(&self, d: NaiveDate) -> bool {
        self.day_flags(d) & HOLIDAY != 0
    }

    pub fn is_closing_day(&self, d: NaiveDate) -> bool {
        self.day_flags(d) & CLOSING != 0
    }

    /// Dutch name of the holiday, equated day or closing day on `d`.
    pub fn holiday_name(&self, d: NaiveDate) -> Option<&'static str> {
        if let Some(h) = self.holiday(d) {
            Some(h.name)
        } else if self.equated.contains(&d) {
            Some(EQUATED_NAME)
        } else if self.closing.contains(&d) {
            Some(CLOSING_NAME)
        } else {
            None
        }
    }

    /// Every holiday and equated day kept in `year`, in date order, with its Dutch name.
    pub fn holidays_in_year(&self, year: i32) -> Vec<(NaiveDate, &'static str)> {
        let mut out: Vec<(NaiveDate, &'static str)> = HOLIDAYS
            .iter()
            .filter(|h| !self.dropped.contains(h.id))
            .filter_map(|h| h.date_in(year).map(|d| (d, h.name)))
            .collect();
        let named: BTreeSet<NaiveDate> = out.iter().map(|(d, _)| *d).collect();
        out.extend(
            self.equated
                .iter()
                .filter(|d| d.year() == year && !named.contains(d))
                .map(|&d| (d, EQUATED_NAME)),
        );
        out.sort();
        out.dedup_by_key(|(d, _)| *d);
        out
    }

    /// Monday to Friday, not a general holiday or equated day, not a closing day.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        !is_weekend(d) && self.day_flags(d) == 0
    }

    /// A day a term may not end on under Atw art. 1 (and, when configured, a closing day).
    fn blocks_term_end(&self, d: NaiveDate) -> bool {
        is_weekend(d)
            || self.is_general_holiday(d)
            || (self.closing_days_move_deadlines && self.is_closing_day(d))
    }

    /// The first working day strictly after `d`.
    pub fn next_working_day(&self, d: NaiveDate) -> NaiveDate {
        let mut day = d;
        loop {
            match day.succ_opt() {
                Some(next) => day = next,
                None => return day,
            }
            if self.is_working_day(day) {
                return day;
            }
        }
    }

    /// `d` itself when it is a working day, else the next one.
    pub fn working_day_on_or_after(&self, d: NaiveDate) -> NaiveDate {
        if self.is_working_day(d) {
            d
        } else {
            self.next_working_day(d)
        }
    }

    /// The `n`th working day after `from`; `from` itself never counts, so a mail received on
    /// Friday evening and one received on Saturday get the same result.
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut day = from;
        for _ in 0..n {
            day = self.next_working_day(day);
        }
        day
    }

    /// The `n`th working day before `from` (`from` itself never counts); for reminders.
    pub fn sub_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut day = from;
        for _ in 0..n {
            loop {
                match day.pred_opt() {
                    Some(prev) => day = prev,
                    None => return day,
                }
                if self.is_working_day(day) {
                    break;
                }
            }
        }
        day
    }

    /// `n` calendar days after `from`, then rolled as `roll` says.
    pub fn add_calendar_days(&self, from: NaiveDate, n: u32, roll: Roll) -> NaiveDate {
        let end = from
            .checked_add_days(Days::new(u64::from(n)))
            .unwrap_or(NaiveDate::MAX);
        self.roll(end, roll)
    }

    /// `n` weeks of seven days after `from`, then rolled as `roll` says.
    pub fn add_weeks(&self, from: NaiveDate, n: u32, roll: Roll) -> NaiveDate {
        self.add_calendar_days(from, n.saturating_mul(7), roll)
    }

    /// Move the end of a term as Atw art. 1 does (or not at all).
    pub fn roll(&self, end: NaiveDate, roll: Roll) -> NaiveDate {
        match roll {
            Roll::None => end,
            Roll::NextWorkingDay => {
                let mut day = end;
                while self.blocks_term_end(day) {
                    match day.succ_opt() {
                        Some(next) => day = next,
                        None => break,
                    }
                }
                day
            }
        }
    }

    /// The number of working days `d` with `from < d <= to`; negative when `to` is before `from`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        if to < from {
            return -self.working_days_between(to, from);
        }
        from.iter_days()
            .skip(1)
            .take_while(|d| *d <= to)
            .filter(|d| self.is_working_day(*d))
            .count() as i64
    }
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

const DAYS_NL: [&str; 7] = [
    "maandag",
    "dinsdag",
    "woensdag",
    "donderdag",
    "vrijdag",
    "zaterdag",
    "zondag",
];
const DAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS_NL: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The name of month `m` (1 to 12): Dutch unless `lang` is `en`.
pub fn month_name(m: u32, lang: &str) -> &'static str {
    let i = (m.clamp(1, 12) - 1) as usize;
    if lang.eq_ignore_ascii_case("en") {
        MONTHS_EN[i]
    } else {
        MONTHS_NL[i]
    }
}

/// A date as people write it: nl `donderdag 31 december 2026`, en `Thursday 31 December 2026`.
/// Any language other than English gets Dutch, the organisation's own language.
pub fn format_date(d: NaiveDate, lang: &str) -> String {
    let (days, months) = if lang.eq_ignore_ascii_case("en") {
        (&DAYS_EN, &MONTHS_EN)
    } else {
        (&DAYS_NL, &MONTHS_NL)
    };
    let weekday = days[d.weekday().num_days_from_monday() as usize];
    let month = months[d.month0() as usize];
    format!("{weekday} {} {month} {}", d.day(), d.year())
}

/// The date on the organisation's wall calendar at instant `at`.
pub fn local_date(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// The end of local day `d`: the first instant of the next local day.
pub fn end_of_day(d: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let next = d.succ_opt().unwrap_or(NaiveDate::MAX);
    at_local(next, NaiveTime::MIN, tz)
}

/// The instant local `time` on `d` happens. In a DST gap the time moves forward to the first
/// instant that exists; when the clock goes back, the earlier of the two instants is taken.
pub fn at_local(d: NaiveDate, time: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let naive = d.and_time(time);
    // Gaps are at most a few hours in any real zone; stepping by minutes finds the end.
    for minutes in 0..=(26 * 60) {
        let Some(candidate) = naive.checked_add_signed(TimeDelta::minutes(minutes)) else {
            break;
        };
        match tz.from_local_datetime(&candidate) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(early, _) => return early.with_timezone(&Utc),
            LocalResult::None => continue,
        }
    }
    Utc.from_utc_datetime(&naive)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Issue #9 finding 5: the decrees equate Fridays after a Thursday holiday too, not only
    /// the Friday after Hemelvaartsdag.
    #[test]
    fn decreed_days_are_not_working_days() {
        let cal = Calendar::dutch();
        for (y, m, d) in [
            (2023, 4, 28),
            (2023, 5, 19),
            (2024, 5, 10),
            (2024, 12, 27),
            (2025, 5, 30),
            (2026, 1, 2),
            (2026, 5, 15),
            (2027, 5, 7),
            (2028, 4, 28),
            (2028, 5, 26),
        ] {
            let day = ymd(y, m, d);
            assert!(!cal.is_working_day(day), "{day}");
            assert!(equating_decree(day).is_some(), "{day}");
        }
        assert_eq!(cal.add_working_days(ymd(2025, 12, 31), 5), ymd(2026, 1, 9));
        assert_eq!(cal.add_working_days(ymd(2028, 4, 26), 5), ymd(2028, 5, 8));
        // A Friday no decree names is a working day.
        assert!(cal.is_working_day(ymd(2026, 1, 9)));
        assert!(equating_decree(ymd(2026, 1, 9)).is_none());
    }
    use chrono_tz::Europe::Amsterdam;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn easter_known_years() {
        for (y, m, day) in [
            (1990, 4, 15),
            (2000, 4, 23),
            (2008, 3, 23),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
            (2285, 3, 22),
        ] {
            assert_eq!(easter_sunday(y), d(y, m, day), "{y}");
            assert_eq!(easter_sunday(y).weekday(), Weekday::Sun);
            assert_eq!(compute_easter(y), d(y, m, day), "{y}");
        }
    }

    #[test]
    fn holidays_2026_and_2027() {
        let cal = Calendar::dutch();
        let names: Vec<(NaiveDate, &str)> = cal.holidays_in_year(2026);
        let expected = [
            (d(2026, 1, 1), "Nieuwjaarsdag"),
            (d(2026, 1, 2), "Gelijkgestelde dag"),
            (d(2026, 4, 3), "Goede Vrijdag"),
            (d(2026, 4, 6), "Tweede Paasdag"),
            (d(2026, 4, 27), "Koningsdag"),
            (d(2026, 5, 5), "Bevrijdingsdag"),
            (d(2026, 5, 14), "Hemelvaartsdag"),
            (d(2026, 5, 15), "Vrijdag na Hemelvaartsdag"),
            (d(2026, 5, 25), "Tweede Pinksterdag"),
            (d(2026, 12, 25), "Eerste Kerstdag"),
            (d(2026, 12, 26), "Tweede Kerstdag"),
        ];
        assert_eq!(names, expected);
        assert_eq!(d(2026, 5, 14).weekday(), Weekday::Thu);
        assert!(cal.is_general_holiday(d(2027, 3, 26)));
        assert!(cal.is_general_holiday(d(2027, 3, 29)));
        assert!(
            !cal.is_general_holiday(d(2027, 3, 28)),
            "Easter Sunday is not named"
        );
    }

    #[test]
    fn koningsdag_moves_only_off_sunday() {
        let cal = Calendar::dutch();
        // 27 April 2025 was a Sunday: Koningsdag was Saturday 26 April.
        assert_eq!(d(2025, 4, 27).weekday(), Weekday::Sun);
        assert_eq!(cal.holiday_name(d(2025, 4, 26)), Some("Koningsdag"));
        assert_eq!(cal.holiday_name(d(2025, 4, 27)), None);
        // 27 April 2027 is a Tuesday: it stays.
        assert_eq!(d(2027, 4, 27).weekday(), Weekday::Tue);
        assert_eq!(cal.holiday_name(d(2027, 4, 27)), Some("Koningsdag"));
        assert_eq!(cal.holiday_name(d(2027, 4, 26)), None);
    }

    #[test]
    fn working_day_table() {
        let cal = Calendar::dutch();
        let cases = [
            // Wed 23 Dec 2026: 24, 28, 29, 30, 31 (Christmas Fri 25 + weekend skipped).
            (d(2026, 12, 23), 5, d(2026, 12, 31)),
            // Goede Vrijdag 26 Mar and Tweede Paasdag 29 Mar 2027.
            (d(2027, 3, 25), 5, d(2027, 4, 5)),
            // Hemelvaart Thu 14 May 2026 and equated Fri 15 May.
            (d(2026, 5, 13), 1, d(2026, 5, 18)),
            (d(2026, 5, 13), 0, d(2026, 5, 13)),
            // Saturday as from-day: Monday is day 1.
            (d(2026, 3, 7), 1, d(2026, 3, 9)),
        ];
        for (from, n, want) in cases {
            assert_eq!(cal.add_working_days(from, n), want, "{from} + {n}");
        }
    }

    #[test]
    fn friday_evening_and_saturday_receipt_same_deadline() {
        let cal = Calendar::dutch();
        let friday_evening = local_date(utc("2026-03-06T21:30:00Z"), Amsterdam);
        let saturday = local_date(utc("2026-03-07T10:00:00Z"), Amsterdam);
        assert_eq!(friday_evening, d(2026, 3, 6));
        assert_eq!(
            cal.add_working_days(friday_evening, 5),
            cal.add_working_days(saturday, 5)
        );
        assert_eq!(cal.add_working_days(saturday, 5), d(2026, 3, 13));
    }

    #[test]
    fn dropping_and_adding_days() {
        let settings = CalendarSettings {
            drop_holidays: vec!["bevrijdingsdag".into(), "vrijdag_na_hemelvaart".into()],
            equated_days: vec![d(2026, 5, 4)],
            closing_days: vec![d(2026, 12, 31)],
            closing_days_move_deadlines: false,
        };
        let cal = Calendar::new(&settings).unwrap();
        assert!(cal.is_working_day(d(2026, 5, 5)));
        assert!(cal.is_working_day(d(2026, 5, 15)));
        assert!(!cal.is_working_day(d(2026, 5, 4)));
        assert_eq!(cal.holiday_name(d(2026, 5, 4)), Some("Gelijkgestelde dag"));
        assert!(!cal.is_working_day(d(2026, 12, 31)));
        // A closing day is no working day but does not move a term unless configured.
        assert_eq!(
            cal.add_calendar_days(d(2026, 12, 30), 1, Roll::NextWorkingDay),
            d(2026, 12, 31)
        );
        let moving = Calendar::new(&CalendarSettings {
            closing_days_move_deadlines: true,
            ..settings
        })
        .unwrap();
        assert_eq!(
            moving.add_calendar_days(d(2026, 12, 30), 1, Roll::NextWorkingDay),
            d(2027, 1, 4)
        );
    }

    #[test]
    fn unknown_holiday_is_named() {
        let e = Calendar::new(&CalendarSettings {
            drop_holidays: vec!["koninginnedag".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("\"koninginnedag\""), "{e}");
    }

    #[test]
    fn rolling_terms() {
        let cal = Calendar::dutch();
        // Six weeks after Mon 13 Apr 2026 is Mon 25 May 2026, Tweede Pinksterdag.
        let from = d(2026, 4, 13);
        assert_eq!(cal.add_weeks(from, 6, Roll::None), d(2026, 5, 25));
        assert_eq!(cal.add_weeks(from, 6, Roll::NextWorkingDay), d(2026, 5, 26));
        // Seven days after Sat 19 Dec 2026 is Sat 26 Dec; roll past the weekend to Mon 28.
        assert_eq!(
            cal.add_calendar_days(d(2026, 12, 19), 7, Roll::NextWorkingDay),
            d(2026, 12, 28)
        );
        // Hemelvaart Thu + equated Fri + weekend.
        assert_eq!(
            cal.add_calendar_days(d(2026, 5, 7), 7, Roll::NextWorkingDay),
            d(2026, 5, 18)
        );
    }

    #[test]
    fn between_and_next() {
        let cal = Calendar::dutch();
        assert_eq!(
            cal.working_days_between(d(2026, 12, 23), d(2026, 12, 31)),
            5
        );
        assert_eq!(
            cal.working_days_between(d(2026, 12, 31), d(2026, 12, 23)),
            -5
        );
        assert_eq!(
            cal.working_days_between(d(2026, 12, 23), d(2026, 12, 23)),
            0
        );
        assert_eq!(cal.next_working_day(d(2026, 12, 24)), d(2026, 12, 28));
        assert_eq!(cal.sub_working_days(d(2026, 12, 28), 2), d(2026, 12, 23));
        assert_eq!(cal.sub_working_days(d(2026, 12, 28), 0), d(2026, 12, 28));
    }

    #[test]
    fn dates_in_words() {
        assert_eq!(
            format_date(d(2026, 12, 31), "nl"),
            "donderdag 31 december 2026"
        );
        assert_eq!(
            format_date(d(2026, 12, 31), "en"),
            "Thursday 31 December 2026"
        );
        assert_eq!(format_date(d(2027, 3, 1), "nl"), "maandag 1 maart 2027");
    }

    #[test]
    fn time_zone_helpers() {
        // 23:30 UTC on 31 Dec is already 1 Jan in Amsterdam.
        assert_eq!(
            local_date(utc("2026-12-31T23:30:00Z"), Amsterdam),
            d(2027, 1, 1)
        );
        assert_eq!(
            end_of_day(d(2026, 1, 15), Amsterdam),
            utc("2026-01-15T23:00:00Z")
        );
        assert_eq!(
            end_of_day(d(2026, 7, 15), Amsterdam),
            utc("2026-07-15T22:00:00Z")
        );
        // Day of the spring change (29 March 2026) has 23 hours.
        assert_eq!(
            end_of_day(d(2026, 3, 29), Amsterdam),
            utc("2026-03-29T22:00:00Z")
        );
        let eight = NaiveTime::from_hms_opt(8, 0, 0).unwrap();
        assert_eq!(
            at_local(d(2026, 3, 30), eight, Amsterdam),
            utc("2026-03-30T06:00:00Z")
        );
        // 02:30 does not exist on 29 March 2026: it becomes 03:00 CEST.
        let half_past_two = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        assert_eq!(
            at_local(d(2026, 3, 29), half_past_two, Amsterdam),
            utc("2026-03-29T01:00:00Z")
        );
        // 02:30 happens twice on 25 October 2026: the first one (CEST) is taken.
        assert_eq!(
            at_local(d(2026, 10, 25), half_past_two, Amsterdam),
            utc("2026-10-25T00:30:00Z")
        );
    }

    fn any_date() -> impl Strategy<Value = NaiveDate> {
        (0i64..(110 * 365)).prop_map(|off| d(1990, 1, 1) + TimeDelta::days(off))
    }

    proptest! {
        #[test]
        fn added_working_day_is_working_day(from in any_date(), n in 1u32..400) {
            let cal = Calendar::dutch();
            prop_assert!(cal.is_working_day(cal.add_working_days(from, n)));
        }

        #[test]
        fn working_days_monotonic(from in any_date(), n in 0u32..300) {
            let cal = Calendar::dutch();
            prop_assert!(cal.add_working_days(from, n) < cal.add_working_days(from, n + 1));
        }

        #[test]
        fn working_days_additive(from in any_date(), a in 0u32..100, b in 0u32..100) {
            let cal = Calendar::dutch();
            prop_assert_eq!(
                cal.add_working_days(cal.add_working_days(from, a), b),
                cal.add_working_days(from, a + b)
            );
        }

        #[test]
        fn between_inverts_add(from in any_date(), n in 0u32..400) {
            let cal = Calendar::dutch();
            let to = cal.add_working_days(from, n);
            prop_assert_eq!(cal.working_days_between(from, to), i64::from(n));
        }

        /// The day cache answers as the holiday rules do, for any organisation's calendar and
        /// any day (years outside the cache included), and a clone answers the same.
        #[test]
        fn cached_days_match_the_rules(
            day in (-3000i64..(400 * 365)).prop_map(|off| d(1880, 1, 1) + TimeDelta::days(off)),
            drop_liberation in any::<bool>(),
            drop_friday in any::<bool>(),
            closing_offsets in proptest::collection::vec(-10i64..10, 0..4),
        ) {
            let mut drop_holidays = Vec::new();
            if drop_liberation { drop_holidays.push("bevrijdingsdag".to_string()); }
            if drop_friday { drop_holidays.push("vrijdag_na_hemelvaart".to_string()); }
            let cal = Calendar::new(&CalendarSettings {
                drop_holidays,
                closing_days: closing_offsets.iter().map(|o| day + TimeDelta::days(*o)).collect(),
                ..CalendarSettings::default()
            }).unwrap();
            let clone = cal.clone();
            for probe in [day, day + TimeDelta::days(1), day - TimeDelta::days(1)] {
                let flags = cal.day_flags_uncached(probe);
                prop_assert_eq!(cal.day_flags(probe), flags);
                prop_assert_eq!(clone.day_flags(probe), flags);
                prop_assert_eq!(cal.is_general_holiday(probe), cal.holiday(probe).is_some() || cal.equated.contains(&probe));
                prop_assert_eq!(cal.is_closing_day(probe), cal.closing.contains(&probe));
            }
        }

        #[test]
        fn rolled_end_is_no_weekend_or_holiday(from in any_date(), n in 0u32..200) {
            let cal = Calendar::dutch();
            let end = cal.add_calendar_days(from, n, Roll::NextWorkingDay);
            prop_assert!(!is_weekend(end) && !cal.is_general_holiday(end));
            prop_assert!(end >= from + TimeDelta::days(i64::from(n)));
        }
    }
}

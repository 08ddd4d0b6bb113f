//! Wall-clock time as the updater reasons about it: whole seconds since the Unix epoch, in UTC.
//!
//! Reboot windows, rollout waves and the state file need a date, a weekday and RFC 3339 text;
//! nothing more, so this is plain integer arithmetic (Howard Hinnant's `days_from_civil` and
//! `civil_from_days`) rather than a date crate. Time is always an argument: no function here
//! reads the clock.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds in a minute, an hour, a day and a week.
pub const MINUTE: i64 = 60;
/// Seconds in an hour.
pub const HOUR: i64 = 60 * MINUTE;
/// Seconds in a day.
pub const DAY: i64 = 24 * HOUR;
/// Seconds in a week.
pub const WEEK: i64 = 7 * DAY;

/// A day of the week, Sunday first (as locksmith and Go's `time.Weekday` number them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    /// Sunday (0).
    Sun,
    /// Monday (1).
    Mon,
    /// Tuesday (2).
    Tue,
    /// Wednesday (3).
    Wed,
    /// Thursday (4).
    Thu,
    /// Friday (5).
    Fri,
    /// Saturday (6).
    Sat,
}

impl Weekday {
    /// All days, Sunday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Sun,
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
    ];

    /// 0 for Sunday … 6 for Saturday.
    pub fn number(self) -> i64 {
        self as i64
    }

    /// The three-letter English name (`Thu`).
    pub fn name(self) -> &'static str {
        ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][self as usize]
    }

    /// The day named by its three-letter English abbreviation, in any case (`thu`, `THU`).
    pub fn from_abbrev(s: &str) -> Option<Weekday> {
        Weekday::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s))
    }
}

/// A UTC instant, in whole seconds since 1970-01-01T00:00:00Z. In JSON it is RFC 3339 text
/// (`"2024-05-02T04:00:00Z"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(i64);

impl UtcTime {
    /// The instant `secs` seconds after the epoch.
    pub const fn from_unix(secs: i64) -> Self {
        UtcTime(secs)
    }

    /// Seconds since the epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// The instant `secs` seconds later (earlier when negative).
    pub const fn plus(self, secs: i64) -> Self {
        UtcTime(self.0 + secs)
    }

    /// Midnight UTC on the given date; `None` for a day that does not exist.
    pub fn from_date(year: i64, month: u32, day: u32) -> Option<Self> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(UtcTime(days_from_civil(year, month, day) * DAY))
    }

    /// Midnight UTC on the given date plus `hh:mm:ss`; `None` for an impossible date or time.
    pub fn from_parts(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<Self> {
        if h > 23 || m > 59 || s > 59 {
            return None;
        }
        Some(Self::from_date(year, month, day)?.plus(i64::from(h * 3600 + m * 60 + s)))
    }

    /// The day of the week (1970-01-01 was a Thursday).
    pub fn weekday(self) -> Weekday {
        Weekday::ALL[(self.0.div_euclid(DAY) + 4).rem_euclid(7) as usize]
    }

    /// Seconds since this day's midnight, 0..86400.
    pub fn second_of_day(self) -> i64 {
        self.0.rem_euclid(DAY)
    }

    /// Midnight at the start of this instant's day.
    pub fn midnight(self) -> Self {
        UtcTime(self.0 - self.second_of_day())
    }

    /// Year, month (1–12), day (1–31).
    pub fn date(self) -> (i64, u32, u32) {
        civil_from_days(self.0.div_euclid(DAY))
    }
}

impl fmt::Display for UtcTime {
    /// RFC 3339 in UTC: `2024-05-02T04:00:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d) = self.date();
        let s = self.second_of_day();
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
            s / HOUR,
            s % HOUR / MINUTE,
            s % MINUTE
        )
    }
}

/// Text that is not an RFC 3339 date-time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an RFC 3339 time such as 2024-05-02T04:00:00Z: {why}")]
pub struct TimeError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl FromStr for UtcTime {
    type Err = TimeError;

    /// `YYYY-MM-DDTHH:MM:SS` with optional fractional seconds (dropped) and `Z` or `±HH:MM`.
    fn from_str(text: &str) -> Result<Self, TimeError> {
        let err = |why| TimeError {
            text: text.to_string(),
            why,
        };
        let b = text.as_bytes();
        if b.len() < 20 || !b.is_ascii() {
            return Err(err("too short"));
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32, TimeError> {
            let s = &text[r];
            if s.bytes().all(|c| c.is_ascii_digit()) {
                Ok(s.parse().expect("digits"))
            } else {
                Err(err("a field is not a number"))
            }
        };
        if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return Err(err("separators must be YYYY-MM-DDTHH:MM:SS"));
        }
        if !matches!(b[10], b'T' | b't' | b' ') {
            return Err(err("date and time must be joined by T"));
        }
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let mut rest = &text[19..];
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err("a decimal point needs digits"));
            }
            rest = &frac[digits..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
                let sign = match rest.as_bytes()[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return Err(err("the zone must be Z or ±HH:MM")),
                };
                let at = text.len() - 6;
                let (oh, om) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
                if oh > 23 || om > 59 {
                    return Err(err("the zone offset is out of range"));
                }
                sign * i64::from(oh * 3600 + om * 60)
            }
            _ => return Err(err("the zone must be Z or ±HH:MM")),
        };
        let t = UtcTime::from_parts(i64::from(y), mo, d, h, mi, s)
            .ok_or_else(|| err("no such date or time of day"))?;
        Ok(t.plus(-offset))
    }
}

impl Serialize for UtcTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UtcTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number counted from 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Case {
        name: &'static str,
        input: &'static str,
        want: Result<i64, &'static str>,
    }

    #[test]
    fn parses_rfc3339() {
        let cases = [
            Case {
                name: "epoch",
                input: "1970-01-01T00:00:00Z",
                want: Ok(0),
            },
            Case {
                name: "a Thursday",
                input: "2024-05-02T04:00:00Z",
                want: Ok(1_714_622_400),
            },
            Case {
                name: "fraction dropped, lower-case z",
                input: "2024-05-02T04:00:00.999z",
                want: Ok(1_714_622_400),
            },
            Case {
                name: "offset east",
                input: "2024-05-02T06:00:00+02:00",
                want: Ok(1_714_622_400),
            },
            Case {
                name: "offset west",
                input: "2024-05-01T23:00:00-05:00",
                want: Ok(1_714_622_400),
            },
            Case {
                name: "leap day",
                input: "2024-02-29T00:00:00Z",
                want: Ok(1_709_164_800),
            },
            Case {
                name: "no leap day in 2023",
                input: "2023-02-29T00:00:00Z",
                want: Err("no such date"),
            },
            Case {
                name: "no zone",
                input: "2024-05-02T04:00:00",
                want: Err("too short"),
            },
            Case {
                name: "bad zone",
                input: "2024-05-02T04:00:00+0200",
                want: Err("the zone"),
            },
            Case {
                name: "hour 24",
                input: "2024-05-02T24:00:00Z",
                want: Err("no such date"),
            },
            Case {
                name: "letters",
                input: "2024-0x-02T04:00:00Z",
                want: Err("not a number"),
            },
            Case {
                name: "slashes",
                input: "2024/05/02T04:00:00Z",
                want: Err("separators"),
            },
        ];
        for c in cases {
            let got = c.input.parse::<UtcTime>().map(UtcTime::unix);
            match (&got, &c.want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{}", c.name),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{}: {e}", c.name),
                _ => panic!("{}: got {got:?}, want {:?}", c.name, c.want),
            }
        }
    }

    #[test]
    fn weekdays_and_dates() {
        assert_eq!(UtcTime::from_unix(0).weekday(), Weekday::Thu);
        assert_eq!(UtcTime::from_unix(-1).weekday(), Weekday::Wed);
        let t: UtcTime = "2024-05-05T23:59:59Z".parse().unwrap();
        assert_eq!(t.weekday(), Weekday::Sun);
        assert_eq!(t.plus(1).weekday(), Weekday::Mon);
        assert_eq!(t.date(), (2024, 5, 5));
        assert_eq!(t.to_string(), "2024-05-05T23:59:59Z");
        assert_eq!(Weekday::from_abbrev("tHU"), Some(Weekday::Thu));
        assert_eq!(Weekday::from_abbrev("Thursday"), None);
    }

    #[test]
    fn json_is_rfc3339_text() {
        let t = UtcTime::from_unix(1_714_622_400);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2024-05-02T04:00:00Z\"");
        assert_eq!(serde_json::from_str::<UtcTime>(&json).unwrap(), t);
        assert!(serde_json::from_str::<UtcTime>("1714622400").is_err());
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(secs in -62_135_596_800i64..253_402_300_799) {
            let t = UtcTime::from_unix(secs);
            prop_assert_eq!(t.to_string().parse::<UtcTime>().unwrap(), t);
        }

        #[test]
        fn civil_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

//! Reboot windows as locksmith defines them: `REBOOT_WINDOW_START=Thu 04:00` (or `04:00` for a
//! window every day) and `REBOOT_WINDOW_LENGTH=1h30m` (a Go duration). A window combines with
//! any reboot strategy: the node reboots only while it is open.
//!
//! Times are UTC (Keel, like Container Linux by default, runs its clock in UTC). The window is
//! half open: it opens at the start minute and is closed again `length` seconds later.
//! Locksmith's rules are kept: the day is a three-letter English name in any case, the time
//! is `H:MM` or `HH:MM`, and the length must be shorter than the period (a day without a day
//! name, a week with one). A zero length is refused, since such a window never opens.

use std::fmt;

use crate::utc::{UtcTime, Weekday, DAY, HOUR, MINUTE, WEEK};

/// A repeating reboot window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The day it opens on; `None` for every day.
    pub day: Option<Weekday>,
    /// Hour it opens, 0–23.
    pub hour: u8,
    /// Minute it opens, 0–59.
    pub minute: u8,
    /// How long it stays open, in seconds (0 < length < period).
    pub length: i64,
}

/// Why a window's start or length was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// The start is not `[DAY] HH:MM`.
    #[error("start {text:?} is not [Day] HH:MM (e.g. \"Thu 04:00\" or \"04:00\"): {why}")]
    Start {
        /// The text given.
        text: String,
        /// What is wrong.
        why: String,
    },
    /// The length is not a positive duration such as `1h30m`.
    #[error("length {text:?} is not a duration such as 1h, 45m or 1h30m: {why}")]
    Length {
        /// The text given.
        text: String,
        /// What is wrong.
        why: String,
    },
    /// The window would never close.
    #[error("length {length} is not shorter than the window's period ({period})")]
    TooLong {
        /// The length, as given.
        length: String,
        /// `1 day` or `1 week`.
        period: &'static str,
    },
}

impl Window {
    /// Parse locksmith's two settings.
    pub fn parse(start: &str, length: &str) -> Result<Window, WindowError> {
        let (day, hour, minute) = parse_start(start)?;
        let secs = parse_duration(length).map_err(|why| WindowError::Length {
            text: length.to_string(),
            why,
        })?;
        if secs <= 0 {
            return Err(WindowError::Length {
                text: length.to_string(),
                why: "a window of no length never opens".to_string(),
            });
        }
        let w = Window {
            day,
            hour,
            minute,
            length: secs,
        };
        if secs >= w.period() {
            return Err(WindowError::TooLong {
                length: length.to_string(),
                period: if day.is_some() { "1 week" } else { "1 day" },
            });
        }
        Ok(w)
    }

    /// A week when a day is named, else a day.
    pub fn period(&self) -> i64 {
        if self.day.is_some() {
            WEEK
        } else {
            DAY
        }
    }

    /// Seconds since the most recent opening at or before `now`.
    fn since_opening(&self, now: UtcTime) -> i64 {
        // Weeks are counted from Sunday 00:00; the epoch was a Thursday.
        let (pos, start) = match self.day {
            Some(d) => (
                (now.unix() + 4 * DAY).rem_euclid(WEEK),
                d.number() * DAY + self.start_of_day(),
            ),
            None => (now.second_of_day(), self.start_of_day()),
        };
        (pos - start).rem_euclid(self.period())
    }

    fn start_of_day(&self) -> i64 {
        i64::from(self.hour) * HOUR + i64::from(self.minute) * MINUTE
    }

    /// Whether the window is open at `now`.
    pub fn is_open(&self, now: UtcTime) -> bool {
        self.since_opening(now) < self.length
    }

    /// The earliest instant at or after `now` when the window is open: `now` itself while it
    /// is open, else the next opening.
    pub fn next_opening(&self, now: UtcTime) -> UtcTime {
        let since = self.since_opening(now);
        if since < self.length {
            now
        } else {
            now.plus(self.period() - since)
        }
    }

    /// When the window open at `now` closes; `None` while it is closed.
    pub fn closes_at(&self, now: UtcTime) -> Option<UtcTime> {
        let since = self.since_opening(now);
        (since < self.length).then(|| now.plus(self.length - since))
    }

    /// The start as locksmith writes it: `Thu 04:00` or `04:00`.
    pub fn start_text(&self) -> String {
        let time = format!("{:02}:{:02}", self.hour, self.minute);
        match self.day {
            Some(d) => format!("{} {time}", d.name()),
            None => time,
        }
    }

    /// The length as a Go duration: `1h30m`, `45m`, `1h0m5s`.
    pub fn length_text(&self) -> String {
        format_duration(self.length)
    }
}

impl fmt::Display for Window {
    /// `Thu 04:00 for 1h30m` / `04:00 for 1h` (UTC).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} for {} UTC", self.start_text(), self.length_text())
    }
}

fn parse_start(text: &str) -> Result<(Option<Weekday>, u8, u8), WindowError> {
    let err = |why: &str| WindowError::Start {
        text: text.to_string(),
        why: why.to_string(),
    };
    let fields: Vec<&str> = text.split_whitespace().collect();
    let (day, time) = match fields[..] {
        [time] => (None, time),
        [day, time] => (
            Some(Weekday::from_abbrev(day).ok_or_else(|| {
                err(&format!(
                    "{day:?} is not a day (Sun, Mon, Tue, Wed, Thu, Fri, Sat)"
                ))
            })?),
            time,
        ),
        [] => return Err(err("empty")),
        _ => return Err(err("too many fields")),
    };
    let (h, m) = time
        .split_once(':')
        .ok_or_else(|| err("the time needs a colon"))?;
    let number = |s: &str, max: u8, what: &str| -> Result<u8, WindowError> {
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err(&format!("the {what} {s:?} is not a number")));
        }
        let n: u8 = s.parse().expect("one or two digits");
        if n > max {
            return Err(err(&format!("the {what} must be 0 to {max}")));
        }
        Ok(n)
    };
    Ok((day, number(h, 23, "hour")?, number(m, 59, "minute")?))
}

/// A Go duration (`1h30m`, `90m`, `1.5h`, `3600s`) in whole seconds. Units are `h`, `m` and
/// `s`; fractions of a second are dropped. Negative durations are refused.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    if text == "0" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err("empty".to_string());
    }
    if text.starts_with('-') {
        return Err("a length cannot be negative".to_string());
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    // Milliseconds of the whole, so 1.5h and 0.5s add up exactly enough.
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{rest:?} has no unit (h, m or s)"))?;
        let (num, tail) = rest.split_at(n);
        let u = tail.find(|c: char| c.is_ascii_digit() || c == '.');
        let (unit, tail) = tail.split_at(u.unwrap_or(tail.len()));
        let scale: i128 = match unit {
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            _ => return Err(format!("unknown unit {unit:?}; use h, m or s")),
        };
        let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
        if whole.is_empty() && frac.is_empty() || frac.contains('.') {
            return Err(format!("{num:?} is not a number"));
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| format!("{whole:?} is too large"))?
        };
        let mut part = whole * scale;
        let mut div = 1i128;
        for c in frac.bytes().take(9) {
            div *= 10;
            part += i128::from(c - b'0') * scale / div;
        }
        total += part;
        if total > i128::from(i64::MAX / 1000) * 1000 {
            return Err("too large".to_string());
        }
        rest = tail;
    }
    Ok((total / 1000) as i64)
}

/// Whole seconds as a Go duration without zero trailing units: `1h30m`, `45m`, `1h0m5s`.
pub fn format_duration(secs: i64) -> String {
    let (h, m, s) = (secs / HOUR, secs % HOUR / MINUTE, secs % MINUTE);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 || (h > 0 && s > 0) {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(text: &str) -> UtcTime {
        text.parse().unwrap()
    }

    struct Case {
        name: &'static str,
        input: (&'static str, &'static str),
        want: Result<(Option<Weekday>, u8, u8, i64), &'static str>,
    }

    #[test]
    fn parses_locksmith_windows() {
        use Weekday::*;
        let cases = [
            Case {
                name: "daily",
                input: ("14:00", "1h"),
                want: Ok((None, 14, 0, 3600)),
            },
            Case {
                name: "weekly, any case",
                input: ("thu 04:00", "1h30m"),
                want: Ok((Some(Thu), 4, 0, 5400)),
            },
            Case {
                name: "single-digit hour, spaces",
                input: ("  Sat   4:05 ", "90m"),
                want: Ok((Some(Sat), 4, 5, 5400)),
            },
            Case {
                name: "fractional hours",
                input: ("Mon 00:00", "1.5h"),
                want: Ok((Some(Mon), 0, 0, 5400)),
            },
            Case {
                name: "six days 23 hours",
                input: ("Sun 23:59", "167h"),
                want: Ok((Some(Sun), 23, 59, 167 * 3600)),
            },
            Case {
                name: "hour out of range",
                input: ("25:00", "1h"),
                want: Err("hour must be 0 to 23"),
            },
            Case {
                name: "minute out of range",
                input: ("23:61", "1h"),
                want: Err("minute must be 0 to 59"),
            },
            Case {
                name: "no colon",
                input: ("14", "1h"),
                want: Err("needs a colon"),
            },
            Case {
                name: "bad day",
                input: ("foo 14:00", "1h"),
                want: Err("\"foo\" is not a day"),
            },
            Case {
                name: "full day name",
                input: ("Thursday 14:00", "1h"),
                want: Err("is not a day"),
            },
            Case {
                name: "a day alone",
                input: ("sat", "1h"),
                want: Err("needs a colon"),
            },
            Case {
                name: "too many fields",
                input: ("sat 14:00 1234", "1h"),
                want: Err("too many fields"),
            },
            Case {
                name: "bad unit",
                input: ("sat 14:00", "1j"),
                want: Err("unknown unit \"j\""),
            },
            Case {
                name: "days are not a Go unit",
                input: ("sat 14:00", "1d"),
                want: Err("unknown unit"),
            },
            Case {
                name: "negative",
                input: ("sat 14:00", "-1h"),
                want: Err("negative"),
            },
            Case {
                name: "no unit",
                input: ("sat 14:00", "60"),
                want: Err("no unit"),
            },
            Case {
                name: "zero",
                input: ("sat 14:00", "0"),
                want: Err("never opens"),
            },
            Case {
                name: "a daily window of a day",
                input: ("14:00", "24h"),
                want: Err("not shorter than the window's period (1 day)"),
            },
            Case {
                name: "a weekly window of a week",
                input: ("Sun 14:00", "168h"),
                want: Err("(1 week)"),
            },
        ];
        for c in cases {
            let got =
                Window::parse(c.input.0, c.input.1).map(|w| (w.day, w.hour, w.minute, w.length));
            match (&got, &c.want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{}", c.name),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{}: {e}", c.name),
                _ => panic!("{}: got {got:?}, want {:?}", c.name, c.want),
            }
        }
    }

    struct When {
        name: &'static str,
        input: (&'static str, &'static str, &'static str),
        /// (open, next opening, closes at)
        want: (bool, &'static str, Option<&'static str>),
    }

    #[test]
    fn opens_and_closes_across_day_and_week_ends() {
        // 2024-05-02 is a Thursday; 2024-05-04 a Saturday; 2024-05-05 a Sunday.
        let cases = [
            When {
                name: "daily, before",
                input: ("04:00", "1h", "2024-05-02T03:59:59Z"),
                want: (false, "2024-05-02T04:00:00Z", None),
            },
            When {
                name: "daily, at the opening",
                input: ("04:00", "1h", "2024-05-02T04:00:00Z"),
                want: (true, "2024-05-02T04:00:00Z", Some("2024-05-02T05:00:00Z")),
            },
            When {
                name: "daily, at the closing: next day",
                input: ("04:00", "1h", "2024-05-02T05:00:00Z"),
                want: (false, "2024-05-03T04:00:00Z", None),
            },
            When {
                name: "daily, across midnight",
                input: ("23:05", "11h", "2024-05-02T09:33:01Z"),
                want: (true, "2024-05-02T09:33:01Z", Some("2024-05-02T10:05:00Z")),
            },
            When {
                name: "weekly, earlier in the week",
                input: ("Thu 04:00", "1h", "2024-04-29T12:00:00Z"),
                want: (false, "2024-05-02T04:00:00Z", None),
            },
            When {
                name: "weekly, just missed: next week",
                input: ("Thu 04:00", "1h", "2024-05-02T05:00:00Z"),
                want: (false, "2024-05-09T04:00:00Z", None),
            },
            When {
                name: "Saturday night into Sunday (week wrap), inside",
                input: ("Sat 22:00", "4h", "2024-05-05T01:00:00Z"),
                want: (true, "2024-05-05T01:00:00Z", Some("2024-05-05T02:00:00Z")),
            },
            When {
                name: "Saturday night into Sunday, after",
                input: ("Sat 22:00", "4h", "2024-05-05T02:00:00Z"),
                want: (false, "2024-05-11T22:00:00Z", None),
            },
            When {
                name: "Sunday window seen from Saturday",
                input: ("Sun 01:00", "30m", "2024-05-04T23:00:00Z"),
                want: (false, "2024-05-05T01:00:00Z", None),
            },
            When {
                name: "before the epoch",
                input: ("Wed 23:00", "2h", "1969-12-31T23:30:00Z"),
                want: (true, "1969-12-31T23:30:00Z", Some("1970-01-01T01:00:00Z")),
            },
        ];
        for c in cases {
            let (start, length, now) = c.input;
            let w = Window::parse(start, length).unwrap();
            let now = at(now);
            let got = (w.is_open(now), w.next_opening(now), w.closes_at(now));
            let want = (c.want.0, at(c.want.1), c.want.2.map(at));
            assert_eq!(got, want, "{}", c.name);
        }
    }

    #[test]
    fn durations_as_go_writes_them() {
        for (secs, text) in [
            (3600, "1h"),
            (5400, "1h30m"),
            (2700, "45m"),
            (3605, "1h0m5s"),
            (5, "5s"),
        ] {
            assert_eq!(format_duration(secs), text);
            assert_eq!(parse_duration(text), Ok(secs));
        }
        assert_eq!(parse_duration("+1m0.5s"), Ok(60));
        assert_eq!(parse_duration(".5h"), Ok(1800));
        assert!(parse_duration("1.2.3h").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    fn any_window() -> impl Strategy<Value = Window> {
        (proptest::option::of(0usize..7), 0u8..24, 0u8..60).prop_flat_map(|(day, hour, minute)| {
            let period = if day.is_some() { WEEK } else { DAY };
            (1..period).prop_map(move |length| Window {
                day: day.map(|d| Weekday::ALL[d]),
                hour,
                minute,
                length,
            })
        })
    }

    proptest! {
        #[test]
        fn text_round_trip(w in any_window()) {
            prop_assert_eq!(Window::parse(&w.start_text(), &w.length_text()), Ok(w));
        }

        #[test]
        fn next_opening_is_open_and_nothing_before_it(
            w in any_window(),
            now in -10 * WEEK..(60 * 365 * DAY),
        ) {
            let now = UtcTime::from_unix(now);
            let next = w.next_opening(now);
            prop_assert!(next >= now && next.unix() - now.unix() < w.period());
            prop_assert!(w.is_open(next));
            if next > now {
                // Closed just before it opens, and the opening is on the configured minute.
                prop_assert!(!w.is_open(next.plus(-1)));
                prop_assert_eq!(next.second_of_day(), i64::from(w.hour) * HOUR + i64::from(w.minute) * MINUTE);
                if let Some(d) = w.day {
                    prop_assert_eq!(next.weekday(), d);
                }
            }
        }

        #[test]
        fn parsing_never_panics(start in ".{0,20}", length in ".{0,12}") {
            let _ = Window::parse(&start, &length);
        }
    }
}

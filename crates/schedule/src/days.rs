//! The two day fields of a cron expression — day-of-month (`? L L-n LW nW` or a list) and
//! day-of-week (`? L nL n#k` or a list) — and which days of a given month they select.
//!
//! Semantics chosen where AWS's documentation is silent (following Quartz):
//! - `L`, `L-n` (n = 1–30, "n days before the last day"), `LW` and `nW` must be the whole
//!   day-of-month field; they cannot be combined with lists, ranges or steps. `L-n` selects
//!   nothing in a month with `n` or fewer days after the 1st.
//! - `nW` is the weekday (Monday–Friday) nearest day `n`, never leaving the month: `1W` on a
//!   Saturday the 1st is Monday the 3rd, `31W` on a Sunday the 31st is Friday the 29th. In a
//!   month without day `n` (`31W` in April), `nW` selects nothing.
//! - `LW` is the last weekday of the month.
//! - In day-of-week, `L` alone is the last day of the week, Saturday (7); `nL` is the last
//!   weekday `n` of the month (`6L` last Friday); `n#k` (k = 1–5) is the k-th weekday `n` of
//!   the month and selects nothing in months without one. `L`, `nL` and `n#k` must be the whole
//!   field — AWS documents `3#1,6#3` as invalid.
//! - Plain day-of-month values beyond the month's length (31 in April) select nothing.

use std::fmt;

use crate::calendar::{days_in_month, weekday};
use crate::error::{CronField, ScheduleError};
use crate::field::{parse_digits, parse_list, parse_value, Val, ValueList};

const DOM: CronField = CronField::DayOfMonth;
const DOW: CronField = CronField::DayOfWeek;
const SATURDAY: u16 = 7;
const SUNDAY: u16 = 1;

/// The day-of-month field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DayOfMonth {
    /// `?`
    Unspecified,
    List(ValueList),
    /// `L` (offset 0) or `L-n`
    Last {
        offset: u16,
    },
    /// `LW`
    LastWeekday,
    /// `nW`
    NearestWeekday(u16),
}

/// The day-of-week field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DayOfWeek {
    /// `?`
    Unspecified,
    List(ValueList),
    /// `L` alone: the last day of the week, Saturday.
    LastOfWeek,
    /// `nL`: the last weekday `n` of the month.
    LastOf(Val),
    /// `n#k`: the k-th weekday `n` of the month.
    Nth(Val, u16),
}

/// Parses the day-of-month field (`L` and `W` in either case).
pub(crate) fn parse_day_of_month(text: &str) -> Result<DayOfMonth, ScheduleError> {
    // ASCII upper-casing keeps byte offsets, so slices of `upper` map onto `text`.
    let upper = text.to_ascii_uppercase();
    match upper.as_str() {
        "?" => return Ok(DayOfMonth::Unspecified),
        "L" => return Ok(DayOfMonth::Last { offset: 0 }),
        "LW" => return Ok(DayOfMonth::LastWeekday),
        _ => {}
    }
    if upper.starts_with("L-") && !upper[2..].contains(['L', 'W']) {
        return match parse_digits(&text[2..]) {
            Some(n @ 1..=30) => Ok(DayOfMonth::Last { offset: n as u16 }),
            _ => Err(ScheduleError::in_field(
                DOM,
                format!("offset in '{text}' in the day-of-month field must be a number from 1 to 30"),
            )),
        };
    }
    if let Some(day) = upper.strip_suffix('W').map(|d| &text[..d.len()]) {
        if parse_digits(day).is_some() {
            return Ok(DayOfMonth::NearestWeekday(parse_value(day, DOM)?.n));
        }
    }
    if upper.contains(['L', 'W']) {
        return Err(ScheduleError::in_field(
            DOM,
            format!("'{text}' is not valid in the day-of-month field: L and W must be used alone, as L, L-n, LW or nW"),
        ));
    }
    parse_list(text, DOM).map(DayOfMonth::List)
}

/// Parses the day-of-week field (names and `L` in either case).
pub(crate) fn parse_day_of_week(text: &str) -> Result<DayOfWeek, ScheduleError> {
    let upper = text.to_ascii_uppercase();
    match upper.as_str() {
        "?" => return Ok(DayOfWeek::Unspecified),
        "L" => return Ok(DayOfWeek::LastOfWeek),
        _ => {}
    }
    let combined = text.contains([',', '-', '*', '/', '?']);
    if let Some((day, nth)) = text.split_once('#') {
        if combined || nth.contains('#') || upper.contains('L') {
            return Err(ScheduleError::in_field(
                DOW,
                format!("'{text}' is not valid in the day-of-week field: # must be used alone, as in 3#2"),
            ));
        }
        let day = parse_value(day, DOW)?;
        return match parse_digits(nth) {
            Some(k @ 1..=5) => Ok(DayOfWeek::Nth(day, k as u16)),
            _ => Err(ScheduleError::in_field(
                DOW,
                format!("the occurrence in '{text}' in the day-of-week field must be a number from 1 to 5"),
            )),
        };
    }
    if upper.contains('L') {
        return match upper.strip_suffix('L') {
            Some(day) if !combined && !day.contains('L') => {
                Ok(DayOfWeek::LastOf(parse_value(&text[..day.len()], DOW)?))
            }
            _ => Err(ScheduleError::in_field(
                DOW,
                format!("'{text}' is not valid in the day-of-week field: L must be used alone, as L or nL"),
            )),
        };
    }
    parse_list(text, DOW).map(DayOfWeek::List)
}

impl DayOfMonth {
    /// Bit `d` set for every day `d` of the month this field selects.
    pub(crate) fn mask(&self, year: u16, month: u16) -> u32 {
        let last = days_in_month(year, month);
        match self {
            DayOfMonth::Unspecified => 0,
            DayOfMonth::List(list) => {
                // Offset 0 is day 1, so shifting by one puts day d at bit d; keep days 1..=last.
                let in_month = (1u64 << (last + 1)) - 2;
                ((list.offset_bits() << 1) & in_month) as u32
            }
            DayOfMonth::Last { offset } if *offset < last => 1 << (last - offset),
            DayOfMonth::Last { .. } => 0,
            DayOfMonth::LastWeekday => {
                let day = match weekday(year, month, last) {
                    SATURDAY => last - 1,
                    SUNDAY => last - 2,
                    _ => last,
                };
                1 << day
            }
            DayOfMonth::NearestWeekday(n) if *n > last => 0,
            DayOfMonth::NearestWeekday(n) => {
                let n = *n;
                let day = match weekday(year, month, n) {
                    SATURDAY if n == 1 => 3,
                    SATURDAY => n - 1,
                    SUNDAY if n == last => n - 2,
                    SUNDAY => n + 1,
                    _ => n,
                };
                1 << day
            }
        }
    }
}

impl DayOfWeek {
    /// Bit `d` set for every day `d` of the month this field selects.
    pub(crate) fn mask(&self, year: u16, month: u16) -> u32 {
        let last = days_in_month(year, month);
        let first = weekday(year, month, 1);
        let weekday_of = |d: u16| (first - 1 + d - 1) % 7 + 1;
        let days_where = |pred: &dyn Fn(u16) -> bool| (1..=last).filter(|&d| pred(d)).fold(0, |m, d| m | 1 << d);
        match self {
            DayOfWeek::Unspecified => 0,
            DayOfWeek::List(list) => days_where(&|d| list.contains(weekday_of(d))),
            DayOfWeek::LastOfWeek => days_where(&|d| weekday_of(d) == SATURDAY),
            DayOfWeek::LastOf(v) => days_where(&|d| weekday_of(d) == v.n && d + 7 > last),
            DayOfWeek::Nth(v, k) => {
                let first_match = 1 + (v.n + 7 - first) % 7;
                let day = first_match + 7 * (k - 1);
                if day <= last {
                    1 << day
                } else {
                    0
                }
            }
        }
    }
}

impl fmt::Display for DayOfMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DayOfMonth::Unspecified => f.write_str("?"),
            DayOfMonth::List(list) => list.fmt(f),
            DayOfMonth::Last { offset: 0 } => f.write_str("L"),
            DayOfMonth::Last { offset } => write!(f, "L-{offset}"),
            DayOfMonth::LastWeekday => f.write_str("LW"),
            DayOfMonth::NearestWeekday(n) => write!(f, "{n}W"),
        }
    }
}

impl fmt::Display for DayOfWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DayOfWeek::Unspecified => f.write_str("?"),
            DayOfWeek::List(list) => list.fmt(f),
            DayOfWeek::LastOfWeek => f.write_str("L"),
            DayOfWeek::LastOf(v) => {
                v.write(DOW, f)?;
                f.write_str("L")
            }
            DayOfWeek::Nth(v, k) => {
                v.write(DOW, f)?;
                write!(f, "#{k}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(mask: u32) -> Vec<u16> {
        (1..=31).filter(|d| mask & (1 << d) != 0).collect()
    }

    #[test]
    fn day_of_month_specials() {
        // 2022-10-01 is a Saturday, 2022-10-31 a Monday; 2021-10-31 is a Sunday.
        let dom = |t| parse_day_of_month(t).unwrap();
        assert_eq!(days(dom("1W").mask(2022, 10)), [3]);
        assert_eq!(days(dom("L").mask(2024, 2)), [29]);
        assert_eq!(days(dom("L-3").mask(2023, 2)), [25]);
        assert_eq!(days(dom("LW").mask(2021, 10)), [29]);
        assert_eq!(days(dom("31W").mask(2021, 10)), [29]);
        assert_eq!(days(dom("31W").mask(2021, 4)), Vec::<u16>::new());
        assert_eq!(days(dom("15W").mask(2024, 6)), [14]); // Saturday the 15th -> Friday
        assert_eq!(days(dom("16W").mask(2024, 6)), [17]); // Sunday the 16th -> Monday
        assert_eq!(days(dom("29-2").mask(2023, 2)), [1, 2]);
    }

    #[test]
    fn day_of_week_specials() {
        // March 2024 starts on a Friday; it has five Fridays, Saturdays and Sundays.
        let dow = |t| parse_day_of_week(t).unwrap();
        assert_eq!(days(dow("6L").mask(2024, 3)), [29]);
        assert_eq!(days(dow("FRIL").mask(2024, 3)), [29]);
        assert_eq!(days(dow("3#2").mask(2024, 3)), [12]);
        assert_eq!(days(dow("3#5").mask(2024, 3)), Vec::<u16>::new());
        assert_eq!(days(dow("6#5").mask(2024, 3)), [29]);
        assert_eq!(days(dow("L").mask(2024, 3)), [2, 9, 16, 23, 30]);
        assert_eq!(days(dow("MON-FRI").mask(2024, 3)).len(), 21);
    }

    #[test]
    fn display_round_trips() {
        for t in ["?", "L", "L-3", "LW", "15W", "1,15", "*/5"] {
            assert_eq!(parse_day_of_month(t).unwrap().to_string(), t);
        }
        for t in ["?", "L", "6L", "FRIL", "3#2", "TUE#5", "MON-FRI", "1,7"] {
            assert_eq!(parse_day_of_week(t).unwrap().to_string(), t);
        }
    }

    #[test]
    fn errors() {
        let dom = |t| parse_day_of_month(t).unwrap_err().detail().to_string();
        let dow = |t| parse_day_of_week(t).unwrap_err().detail().to_string();
        assert!(dom("L-31").contains("from 1 to 30"));
        assert!(dom("L-0").contains("from 1 to 30"));
        assert!(dom("1,LW").contains("L and W must be used alone"));
        assert!(dom("L-3W").contains("L and W must be used alone"));
        assert_eq!(dom("32W"), "value 32 is out of range in the day-of-month field (1-31)");
        assert_eq!(dom("0W"), "value 0 is out of range in the day-of-month field (1-31)");
        assert!(dow("3#1,6#3").contains("# must be used alone"));
        assert!(dow("3#6").contains("from 1 to 5"));
        assert!(dow("3#0").contains("from 1 to 5"));
        assert!(dow("1,6L").contains("L must be used alone"));
        assert!(dow("LL").contains("L must be used alone"));
        assert_eq!(dow("8L"), "value 8 is out of range in the day-of-week field (1-7)");
        assert_eq!(dow("0"), "value 0 is out of range in the day-of-week field (1-7)");
    }
}

//! `cron(Minutes Hours Day-of-month Month Day-of-week Year)` schedules: splitting the six
//! fields, the rule that exactly one day field is `?`, matching a minute, and the fast search
//! for the next fire time.
//!
//! The search never walks minute by minute: it finds the next allowed year, then month, then
//! day (from a per-month bitmask of selected days), then hour, then minute, and restarts at the
//! next larger unit whenever a unit has no value left. Each restart moves forward by at least
//! one day-or-larger boundary inside the selected year/month sets, so a search costs at most a
//! few thousand steps even when nothing ever matches (`cron(0 0 30 2 ? *)`), and it ends at the
//! last minute of 2199, the largest year the year field accepts.

use std::fmt;

use crate::calendar::{Civil, MS_PER_MINUTE};
use crate::days::{parse_day_of_month, parse_day_of_week, DayOfMonth, DayOfWeek};
use crate::error::{CronField, ScheduleError};
use crate::field::{parse_list, ValueList};

/// A parsed `cron(...)` expression. Times are UTC with one-minute precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    pub(crate) minutes: ValueList,
    pub(crate) hours: ValueList,
    pub(crate) day_of_month: DayOfMonth,
    pub(crate) months: ValueList,
    pub(crate) day_of_week: DayOfWeek,
    pub(crate) years: ValueList,
}

impl CronSchedule {
    /// Parses the text between `cron(` and `)`.
    pub(crate) fn parse_fields(inner: &str) -> Result<CronSchedule, ScheduleError> {
        let fields: Vec<&str> = inner.split_ascii_whitespace().collect();
        if fields.len() != 6 {
            return Err(ScheduleError::whole(format!(
                "a cron expression needs exactly 6 fields (minutes hours day-of-month month day-of-week year), found {}",
                fields.len()
            )));
        }
        let schedule = CronSchedule {
            minutes: parse_list(fields[0], CronField::Minutes)?,
            hours: parse_list(fields[1], CronField::Hours)?,
            day_of_month: parse_day_of_month(fields[2])?,
            months: parse_list(fields[3], CronField::Month)?,
            day_of_week: parse_day_of_week(fields[4])?,
            years: parse_list(fields[5], CronField::Year)?,
        };
        match (&schedule.day_of_month, &schedule.day_of_week) {
            (DayOfMonth::Unspecified, DayOfWeek::Unspecified) => {
                Err(ScheduleError::whole("day-of-month and day-of-week cannot both be ?; specify one of them"))
            }
            (DayOfMonth::Unspecified, _) | (_, DayOfWeek::Unspecified) => Ok(schedule),
            _ => {
                Err(ScheduleError::whole("day-of-month and day-of-week cannot both be specified; use ? in one of them"))
            }
        }
    }

    /// Bit `d` set for every day `d` of the month selected by the day fields.
    fn day_mask(&self, year: u16, month: u16) -> u32 {
        match self.day_of_month {
            DayOfMonth::Unspecified => self.day_of_week.mask(year, month),
            _ => self.day_of_month.mask(year, month),
        }
    }

    /// Whether `ms` is the start of a minute that matches every field.
    pub fn matches(&self, ms: i64) -> bool {
        if ms.rem_euclid(MS_PER_MINUTE) != 0 || ms < 0 {
            return false;
        }
        let Some(c) = Civil::from_ms(ms) else { return false };
        self.years.contains(c.year)
            && self.months.contains(c.month)
            && self.day_mask(c.year, c.month) & (1 << c.day) != 0
            && self.hours.contains(c.hour)
            && self.minutes.contains(c.minute)
    }

    /// The first matching minute strictly after `after_ms`, or `None` if there is none up to
    /// the end of 2199.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        // First whole minute after `after_ms`; nothing before 1970 can match anyway.
        let start = after_ms.max(-1).div_euclid(MS_PER_MINUTE).checked_add(1)?.checked_mul(MS_PER_MINUTE)?;
        if start > LAST_MINUTE_MS {
            return None;
        }
        let Civil { mut year, mut month, mut day, mut hour, mut minute } = Civil::from_ms(start)?;
        loop {
            let y = self.years.next_from(year)?;
            if y != year {
                (year, month, day, hour, minute) = (y, 1, 1, 0, 0);
            }
            let Some(m) = self.months.next_from(month) else {
                (year, month, day, hour, minute) = (year + 1, 1, 1, 0, 0);
                continue;
            };
            if m != month {
                (month, day, hour, minute) = (m, 1, 0, 0);
            }
            let Some(d) = next_bit(self.day_mask(year, month), day) else {
                (month, day, hour, minute) = (month + 1, 1, 0, 0);
                continue;
            };
            if d != day {
                (day, hour, minute) = (d, 0, 0);
            }
            let Some(h) = self.hours.next_from(hour) else {
                (day, hour, minute) = (day + 1, 0, 0);
                continue;
            };
            if h != hour {
                (hour, minute) = (h, 0);
            }
            let Some(mi) = self.minutes.next_from(minute) else {
                (hour, minute) = (hour + 1, 0);
                continue;
            };
            return Civil { year, month, day, hour, minute: mi }.to_ms();
        }
    }
}

/// 2199-12-31T23:59:00Z, the last minute the year field can select.
const LAST_MINUTE_MS: i64 = 7_258_118_340_000;

/// The smallest set bit `>= from` of a day mask (bits 1..=31).
fn next_bit(mask: u32, from: u16) -> Option<u16> {
    if from > 31 {
        return None;
    }
    let rest = mask >> from;
    (rest != 0).then(|| from + rest.trailing_zeros() as u16)
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cron({} {} {} {} {} {})",
            self.minutes, self.hours, self.day_of_month, self.months, self.day_of_week, self.years
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_minute_constant_is_the_end_of_2199() {
        let c = Civil { year: 2199, month: 12, day: 31, hour: 23, minute: 59 };
        assert_eq!(c.to_ms(), Some(LAST_MINUTE_MS));
    }

    #[test]
    fn next_bit_edges() {
        assert_eq!(next_bit(0b1010, 0), Some(1));
        assert_eq!(next_bit(0b1010, 2), Some(3));
        assert_eq!(next_bit(0b1010, 4), None);
        assert_eq!(next_bit(1 << 31, 31), Some(31));
        assert_eq!(next_bit(u32::MAX, 32), None);
    }

    #[test]
    fn field_count_and_day_rule() {
        let err = |t| CronSchedule::parse_fields(t).unwrap_err().detail().to_string();
        assert!(err("0 12 * * ?").contains("exactly 6 fields"));
        assert!(err("0 12 * * ? * *").contains("found 7"));
        assert!(err("0 12 * * * *").contains("cannot both be specified"));
        assert!(err("0 12 ? * ? *").contains("cannot both be ?"));
        assert!(CronSchedule::parse_fields("0 12 * * ? *").is_ok());
    }

    #[test]
    fn no_fire_time_ends_quickly() {
        let s = CronSchedule::parse_fields("0 0 30 2 ? *").unwrap();
        assert_eq!(s.next_after(0), None);
        let s = CronSchedule::parse_fields("* * ? * 3#5 2199").unwrap();
        // December 2199 has five Tuesdays (Dec 3, 10, 17, 24, 31).
        assert_eq!(s.next_after(LAST_MINUTE_MS - 1), Some(LAST_MINUTE_MS));
        assert_eq!(s.next_after(LAST_MINUTE_MS), None);
        assert_eq!(s.next_after(i64::MAX), None);
    }

    #[test]
    fn before_1970_starts_at_the_epoch() {
        let s = CronSchedule::parse_fields("* * * * ? *").unwrap();
        assert_eq!(s.next_after(i64::MIN), Some(0));
        assert_eq!(s.next_after(-1), Some(0));
        assert_eq!(s.next_after(0), Some(60_000));
        assert_eq!(s.next_after(59_999), Some(60_000));
        assert!(s.matches(60_000) && !s.matches(60_001) && !s.matches(-60_000));
    }
}

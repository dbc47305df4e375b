//! `rate(N unit)` schedules: parsing, the anchored fire grid and their description.
//!
//! A rate schedule fires at `anchor + k × period` for k = 1, 2, … where the anchor is the
//! rule's creation time, so the first fire is one period after creation. The unit must be
//! singular exactly when N = 1 (`rate(1 minutes)` and `rate(2 minute)` are rejected, as on
//! AWS). Keywords and units are lowercase; N is a decimal integer from 1 to 4294967295 (leading
//! zeros are accepted and dropped from the normalized form).

use std::fmt;

use crate::error::ScheduleError;

/// The unit of a rate expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateUnit {
    Minute,
    Hour,
    Day,
}

impl RateUnit {
    /// Length of one unit in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            RateUnit::Minute => 60_000,
            RateUnit::Hour => 3_600_000,
            RateUnit::Day => 86_400_000,
        }
    }

    fn word(self, value: u64) -> &'static str {
        match (self, value == 1) {
            (RateUnit::Minute, true) => "minute",
            (RateUnit::Minute, false) => "minutes",
            (RateUnit::Hour, true) => "hour",
            (RateUnit::Hour, false) => "hours",
            (RateUnit::Day, true) => "day",
            (RateUnit::Day, false) => "days",
        }
    }
}

/// A parsed `rate(...)` expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateSchedule {
    value: u32,
    unit: RateUnit,
}

impl RateSchedule {
    /// Parses the text between `rate(` and `)`.
    pub(crate) fn parse_inner(inner: &str) -> Result<RateSchedule, ScheduleError> {
        let parts: Vec<&str> = inner.split_ascii_whitespace().collect();
        let [value_text, unit_text] = parts.as_slice() else {
            return Err(ScheduleError::whole(format!(
                "a rate expression must be rate(value unit), for example rate(5 minutes); found {} parts",
                parts.len()
            )));
        };
        if value_text.is_empty() || !value_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ScheduleError::whole(format!("the rate value '{value_text}' is not a positive integer")));
        }
        let significant = value_text.trim_start_matches('0');
        if significant.is_empty() {
            return Err(ScheduleError::whole("the rate value must be a positive integer, not 0"));
        }
        let Ok(value) = significant.parse::<u32>() else {
            return Err(ScheduleError::whole(format!(
                "the rate value {value_text} is too large (at most {})",
                u32::MAX
            )));
        };
        let (unit, plural) = match *unit_text {
            "minute" => (RateUnit::Minute, false),
            "minutes" => (RateUnit::Minute, true),
            "hour" => (RateUnit::Hour, false),
            "hours" => (RateUnit::Hour, true),
            "day" => (RateUnit::Day, false),
            "days" => (RateUnit::Day, true),
            other => {
                return Err(ScheduleError::whole(format!(
                    "the rate unit '{other}' is not one of minute, minutes, hour, hours, day, days"
                )))
            }
        };
        if plural != (value != 1) {
            let expected = unit.word(value.into());
            return Err(ScheduleError::whole(format!(
                "the rate unit must be '{expected}' for a value of {value}, not '{unit_text}'"
            )));
        }
        Ok(RateSchedule { value, unit })
    }

    /// N in `rate(N unit)`.
    pub fn value(&self) -> u32 {
        self.value
    }

    /// The unit in `rate(N unit)`.
    pub fn unit(&self) -> RateUnit {
        self.unit
    }

    /// The period between fires in milliseconds.
    pub fn period_ms(&self) -> i64 {
        i64::from(self.value) * self.unit.millis()
    }

    /// The first `anchor_ms + k × period` (k ≥ 1) strictly after `after_ms`; `None` only if it
    /// does not fit in an `i64`.
    pub fn next_after(&self, after_ms: i64, anchor_ms: i64) -> Option<i64> {
        let period = i128::from(self.period_ms());
        let first = i128::from(anchor_ms) + period;
        let after = i128::from(after_ms);
        let next = if after < first { first } else { first + ((after - first) / period + 1) * period };
        i64::try_from(next).ok()
    }

    /// `every minute`, `every 5 minutes`, `every day`, …
    pub fn describe(&self) -> String {
        match self.value {
            1 => format!("every {}", self.unit.word(1)),
            n => format!("every {n} {}", self.unit.word(n.into())),
        }
    }
}

impl fmt::Display for RateSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate({} {})", self.value, self.unit.word(self.value.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_anchored() {
        let r = RateSchedule::parse_inner("5 minutes").unwrap();
        let anchor = 1_000_123;
        let p = 300_000;
        assert_eq!(r.next_after(anchor, anchor), Some(anchor + p));
        assert_eq!(r.next_after(anchor - 10 * p, anchor), Some(anchor + p));
        assert_eq!(r.next_after(anchor + p - 1, anchor), Some(anchor + p));
        assert_eq!(r.next_after(anchor + p, anchor), Some(anchor + 2 * p));
        assert_eq!(r.next_after(anchor + 7 * p + 1, anchor), Some(anchor + 8 * p));
        assert_eq!(r.next_after(i64::MAX - 1, 0), None);
    }

    #[test]
    fn leading_zeros_and_limits() {
        assert_eq!(RateSchedule::parse_inner("0005 hours").unwrap().to_string(), "rate(5 hours)");
        assert_eq!(RateSchedule::parse_inner("01 day").unwrap().to_string(), "rate(1 day)");
        assert_eq!(RateSchedule::parse_inner("4294967295 days").unwrap().value(), u32::MAX);
        let e = RateSchedule::parse_inner("4294967296 days").unwrap_err();
        assert!(e.detail().contains("too large"), "{e}");
        let e = RateSchedule::parse_inner("0000000000000 days").unwrap_err();
        assert_eq!(e.detail(), "the rate value must be a positive integer, not 0");
        assert_eq!(RateSchedule::parse_inner("00000000000007 days").unwrap().value(), 7);
    }
}

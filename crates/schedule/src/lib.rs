//! EventBridge schedule expressions: `rate(N unit)` and AWS `cron(...)`.
//!
//! [`Schedule::parse`] validates an expression the way `PutRule`'s `ScheduleExpression` is
//! validated; [`Schedule::next_after`] computes the next fire time (epoch milliseconds, UTC);
//! [`catch_up`] decides what to do after downtime; [`Schedule::describe`] gives a short English
//! description and `Display` the normalized expression (`cron(0 8 ? * mon-fri *)` becomes
//! `cron(0 8 ? * MON-FRI *)`, `rate(05 minutes)` becomes `rate(5 minutes)`).
//!
//! | module | owns |
//! |---|---|
//! | `error` | [`ScheduleError`], [`CronField`] |
//! | `rate` | [`RateSchedule`]: the anchored fire grid |
//! | `cron` | [`CronSchedule`]: field splitting, the `?` rule, the next-fire search |
//! | `field` | `, - * /` lists, names, wrap-around ranges |
//! | `days` | day-of-month `L L-n LW nW` and day-of-week `L nL n#k` |
//! | `calendar` | UTC civil-time arithmetic |
//! | `describe` | English descriptions of cron schedules |
//!
//! Where AWS's documentation is silent, the choices (Quartz's, which AWS cron derives from)
//! are documented at the top of `field` and `days`.
//!
//! ```
//! use lookout_schedule::{catch_up, Schedule};
//!
//! let s = Schedule::parse("cron(0 8 ? * mon-fri *)").unwrap();
//! assert_eq!(s.to_string(), "cron(0 8 ? * MON-FRI *)");
//! assert_eq!(s.describe(), "at 08:00 UTC, on weekdays");
//! // Friday 2024-03-01T08:00Z -> Monday 2024-03-04T08:00Z
//! assert_eq!(s.next_after(1_709_280_000_000, 0), Some(1_709_539_200_000));
//!
//! // Down from Friday 08:00 until Tuesday 12:00: fire once now, then Wednesday 08:00.
//! let c = catch_up(&s, 0, Some(1_709_280_000_000), 1_709_640_000_000);
//! assert!(c.fire_now);
//! assert_eq!(c.next_ms, Some(1_709_712_000_000));
//!
//! let err = Schedule::parse("rate(1 minutes)").unwrap_err();
//! assert!(err.to_string().starts_with("Parameter ScheduleExpression is not valid"));
//! ```

mod calendar;
mod cron;
mod days;
mod describe;
mod error;
mod field;
mod rate;

use std::fmt;

pub use cron::CronSchedule;
pub use error::{CronField, ScheduleError, AWS_INVALID_MESSAGE};
pub use rate::{RateSchedule, RateUnit};

/// Longest schedule expression AWS accepts.
pub const MAX_EXPRESSION_LEN: usize = 256;

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Rate(RateSchedule),
    /// Boxed: a cron schedule carries six value sets and is much larger than a rate.
    Cron(Box<CronSchedule>),
}

impl Schedule {
    /// Parses `rate(N unit)` or `cron(Minutes Hours Day-of-month Month Day-of-week Year)`.
    ///
    /// Surrounding whitespace is ignored, as is extra whitespace between the parts inside the
    /// parentheses. The keywords `rate`/`cron` and rate units are lowercase; month and weekday
    /// names and the `L`/`W` letters are case-insensitive.
    pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
        if expr.len() > MAX_EXPRESSION_LEN {
            return Err(ScheduleError::whole(format!("the expression is longer than {MAX_EXPRESSION_LEN} characters")));
        }
        let expr = expr.trim();
        let (keyword, rest) = if let Some(rest) = expr.strip_prefix("rate(") {
            ("rate", rest)
        } else if let Some(rest) = expr.strip_prefix("cron(") {
            ("cron", rest)
        } else {
            return Err(ScheduleError::whole("the expression must be rate(value unit) or cron(fields)"));
        };
        let Some(inner) = rest.strip_suffix(')') else {
            return Err(ScheduleError::whole(format!("the {keyword}( expression must end with ')'")));
        };
        if inner.contains(['(', ')']) {
            return Err(ScheduleError::whole(format!("unbalanced parentheses in the {keyword} expression")));
        }
        if keyword == "rate" {
            RateSchedule::parse_inner(inner).map(Schedule::Rate)
        } else {
            CronSchedule::parse_fields(inner).map(|cron| Schedule::Cron(Box::new(cron)))
        }
    }

    /// The first fire time strictly after `after_ms` (epoch milliseconds, UTC).
    ///
    /// `anchor_ms` is the rule's creation time: rate schedules fire at `anchor_ms + k × period`
    /// for k ≥ 1; cron schedules ignore it. `None` when no fire time exists (a cron year range in
    /// the past, `cron(0 0 30 2 ? *)`, anything after 2199, or a rate time beyond `i64`).
    pub fn next_after(&self, after_ms: i64, anchor_ms: i64) -> Option<i64> {
        match self {
            Schedule::Rate(rate) => rate.next_after(after_ms, anchor_ms),
            Schedule::Cron(cron) => cron.next_after(after_ms),
        }
    }

    /// A short English description, e.g. `every 5 minutes` or `at 08:00 UTC, on weekdays`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Rate(rate) => rate.describe(),
            Schedule::Cron(cron) => describe::describe_cron(cron),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Rate(rate) => rate.fmt(f),
            Schedule::Cron(cron) => cron.fmt(f),
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

/// What to do with a schedule when the scheduler (re)starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// One or more fire times were missed: fire once now.
    pub fire_now: bool,
    /// The next regular fire time strictly after now, if any.
    pub next_ms: Option<i64>,
}

/// The restart rule: if one or more fire times fell in `(last_fired_ms, now_ms]` — or, for a
/// rule that never fired, in `(anchor_ms, now_ms]` — fire **once** now (not once per missed
/// tick), then continue with the first fire time after `now_ms`.
pub fn catch_up(schedule: &Schedule, anchor_ms: i64, last_fired_ms: Option<i64>, now_ms: i64) -> CatchUp {
    let since = last_fired_ms.unwrap_or(anchor_ms);
    let fire_now = since < now_ms && schedule.next_after(since, anchor_ms).is_some_and(|t| t <= now_ms);
    CatchUp { fire_now, next_ms: schedule.next_after(now_ms, anchor_ms) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expression_framing() {
        let err = |t: &str| Schedule::parse(t).unwrap_err().detail().to_string();
        assert!(err("every 5 minutes").contains("must be rate(value unit) or cron(fields)"));
        assert!(err("Rate(5 minutes)").contains("must be rate(value unit) or cron(fields)"));
        assert!(err("cron(0 12 * * ? *").contains("must end with ')'"));
        assert!(err("rate((5 minutes))").contains("unbalanced parentheses"));
        assert!(err(&format!("rate({} minutes)", "0".repeat(300))).contains("longer than 256"));
        assert_eq!(Schedule::parse("  rate(5   minutes)  ").unwrap().to_string(), "rate(5 minutes)");
        assert_eq!(Schedule::parse("cron( 0  8 ? * mon-fri * )").unwrap().to_string(), "cron(0 8 ? * MON-FRI *)");
        assert_eq!("rate(1 day)".parse::<Schedule>().unwrap().describe(), "every day");
    }
}

//! Short English descriptions of cron schedules for the CLI and console, such as
//! `at 08:00 UTC on weekdays` or `every 15 minutes, during hours 8 through 17 UTC, on Monday
//! through Friday`. The wording is informative, not a stable format.

use crate::cron::CronSchedule;
use crate::days::{DayOfMonth, DayOfWeek};
use crate::error::CronField;
use crate::field::{english_name, Base, Item, Val, ValueList};

/// Joins phrases as `a`, `a and b`, `a, b and c`.
fn join(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn value_name(field: CronField, v: u16) -> String {
    english_name(field, v).map_or_else(|| v.to_string(), str::to_string)
}

fn unit(field: CronField) -> (&'static str, &'static str) {
    match field {
        CronField::Minutes => ("minute", "minutes"),
        CronField::Hours => ("hour", "hours"),
        CronField::DayOfMonth | CronField::DayOfWeek => ("day", "days"),
        CronField::Month => ("month", "months"),
        CronField::Year => ("year", "years"),
    }
}

fn ordinal(n: u16) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn item_phrase(item: &Item, field: CronField) -> String {
    let name = |v: Val| value_name(field, v.n);
    let (one, many) = unit(field);
    let every = |step: u16| if step == 1 { format!("every {one}") } else { format!("every {step} {many}") };
    match (item.base, item.step) {
        (Base::Star, None) => format!("every {one}"),
        (Base::Star, Some(s)) => every(s),
        (Base::One(v), None) => name(v),
        (Base::One(v), Some(s)) => format!("{} from {}", every(s), name(v)),
        (Base::Range(a, b), None) => format!("{} through {}", name(a), name(b)),
        (Base::Range(a, b), Some(s)) => format!("{} from {} through {}", every(s), name(a), name(b)),
    }
}

fn list_phrase(list: &ValueList) -> String {
    let parts: Vec<String> = list.items().iter().map(|i| item_phrase(i, list.field())).collect();
    join(&parts)
}

/// `every minute`, `every 15 minutes`, `at minutes 0 and 30`, … (without the hour part).
fn minutes_phrase(minutes: &ValueList) -> String {
    match minutes.items() {
        [Item { base: Base::Star, step: None }] => "every minute".to_string(),
        [Item { base: Base::Star | Base::One(Val { n: 0, .. }), step: Some(s) }] => {
            if *s == 1 {
                "every minute".to_string()
            } else {
                format!("every {s} minutes")
            }
        }
        [Item { base: Base::One(v), step: None }] => format!("at minute {}", v.n),
        _ => format!("at minutes {}", list_phrase(minutes)),
    }
}

fn time_phrase(cron: &CronSchedule) -> String {
    if let (Some(h), Some(m)) = (cron.hours.single(), cron.minutes.single()) {
        return format!("at {h:02}:{m:02} UTC");
    }
    let minutes = minutes_phrase(&cron.minutes);
    if cron.hours.is_star() {
        // No particular hour: the time zone does not matter to the reader.
        return if minutes.starts_with("every") { minutes } else { format!("{minutes} past every hour") };
    }
    match cron.hours.single() {
        Some(h) => format!("{minutes}, during hour {h} UTC"),
        None => format!("{minutes}, during hours {} UTC", list_phrase(&cron.hours)),
    }
}

fn day_phrase(cron: &CronSchedule) -> Option<String> {
    let phrase = match (&cron.day_of_month, &cron.day_of_week) {
        (DayOfMonth::List(list), _) if list.is_star() => return None,
        (_, DayOfWeek::List(list)) if list.is_star() => return None,
        (DayOfMonth::List(list), _) => match list.single() {
            Some(d) => format!("on day {d} of the month"),
            None => format!("on days {} of the month", list_phrase(list)),
        },
        (DayOfMonth::Last { offset: 0 }, _) => "on the last day of the month".to_string(),
        (DayOfMonth::Last { offset: 1 }, _) => "1 day before the last day of the month".to_string(),
        (DayOfMonth::Last { offset }, _) => format!("{offset} days before the last day of the month"),
        (DayOfMonth::LastWeekday, _) => "on the last weekday of the month".to_string(),
        (DayOfMonth::NearestWeekday(n), _) => format!("on the weekday nearest day {n} of the month"),
        (DayOfMonth::Unspecified, DayOfWeek::List(list)) => {
            let values: Vec<u16> = list.values().collect();
            match values.as_slice() {
                [2, 3, 4, 5, 6] => "on weekdays".to_string(),
                [1, 7] => "on weekends".to_string(),
                _ => format!("on {}", list_phrase(list)),
            }
        }
        (DayOfMonth::Unspecified, DayOfWeek::LastOfWeek) => "on Saturday".to_string(),
        (DayOfMonth::Unspecified, DayOfWeek::LastOf(v)) => {
            format!("on the last {} of the month", value_name(CronField::DayOfWeek, v.n))
        }
        (DayOfMonth::Unspecified, DayOfWeek::Nth(v, k)) => {
            format!("on the {} {} of the month", ordinal(*k), value_name(CronField::DayOfWeek, v.n))
        }
        (DayOfMonth::Unspecified, DayOfWeek::Unspecified) => return None,
    };
    Some(phrase)
}

/// The English description of a cron schedule.
pub(crate) fn describe_cron(cron: &CronSchedule) -> String {
    let mut out = time_phrase(cron);
    match day_phrase(cron) {
        Some(days) => {
            out.push_str(", ");
            out.push_str(&days);
        }
        None if !cron.hours.is_star() && cron.months.is_star() && cron.years.is_star() => {
            out.push_str(", every day");
        }
        None => {}
    }
    if !cron.months.is_star() {
        out.push_str(", in ");
        out.push_str(&list_phrase(&cron.months));
    }
    if !cron.years.is_star() {
        out.push_str(", in ");
        out.push_str(&list_phrase(&cron.years));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(fields: &str) -> String {
        describe_cron(&CronSchedule::parse_fields(fields).unwrap())
    }

    #[test]
    fn descriptions() {
        assert_eq!(describe("0 8 ? * MON-FRI *"), "at 08:00 UTC, on weekdays");
        assert_eq!(describe("0 10 * * ? *"), "at 10:00 UTC, every day");
        assert_eq!(describe("*/5 * * * ? *"), "every 5 minutes");
        assert_eq!(describe("* * * * ? *"), "every minute");
        assert_eq!(describe("0 * * * ? *"), "at minute 0 past every hour");
        assert_eq!(describe("0/15 8-17 ? * 2-6 *"), "every 15 minutes, during hours 8 through 17 UTC, on weekdays");
        assert_eq!(
            describe("15 10 ? * 6L 2022-2023"),
            "at 10:15 UTC, on the last Friday of the month, in 2022 through 2023"
        );
        assert_eq!(describe("0 9 ? * 3#2 *"), "at 09:00 UTC, on the 2nd Tuesday of the month");
        assert_eq!(describe("30 * L * ? *"), "at minute 30 past every hour, on the last day of the month");
        assert_eq!(
            describe("0,30 6 1W JAN,JUL ? *"),
            "at minutes 0 and 30, during hour 6 UTC, on the weekday nearest day 1 of the month, in January and July"
        );
        assert_eq!(describe("0 0 L-3 * ? *"), "at 00:00 UTC, 3 days before the last day of the month");
        assert_eq!(describe("0 0 ? * SAT,SUN *"), "at 00:00 UTC, on weekends");
        assert_eq!(describe("0 0 ? * FRI-MON *"), "at 00:00 UTC, on Friday through Monday");
        assert_eq!(describe("0 0 1,15 * ? *"), "at 00:00 UTC, on days 1 and 15 of the month");
        assert_eq!(ordinal(1) + &ordinal(11) + &ordinal(22) + &ordinal(3), "1st11th22nd3rd");
    }
}

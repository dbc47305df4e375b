//! Table tests through the public API: next fire times of tricky expressions from given
//! instants (calendar facts checked against GNU `date`), invalid expressions with the
//! message fragment they must produce, normalization, descriptions and the restart rule.

use lookout_schedule::{catch_up, CatchUp, CronField, Schedule, AWS_INVALID_MESSAGE};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `2024-02-29T12:00` or `2024-02-29T12:00:30.5` (UTC) as epoch milliseconds.
fn ms(iso: &str) -> i64 {
    let full = match iso.len() {
        16 => format!("{iso}:00Z"),
        _ => format!("{iso}Z"),
    };
    let dt = OffsetDateTime::parse(&full, &Rfc3339).unwrap_or_else(|e| panic!("bad test instant {iso}: {e}"));
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn iso(ms: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    dt.format(&Rfc3339).unwrap()
}

#[test]
fn next_fire_times() {
    // (expression, after, expected next fire or None)
    let rows: &[(&str, &str, Option<&str>)] = &[
        // Leap years: Feb 29 only in leap years, and 2100 is not one.
        ("cron(0 12 29 2 ? *)", "2023-03-01T00:00", Some("2024-02-29T12:00")),
        ("cron(0 12 29 2 ? *)", "2024-02-29T12:00", Some("2028-02-29T12:00")),
        ("cron(0 12 29 FEB ? *)", "2096-03-01T00:00", Some("2104-02-29T12:00")),
        ("cron(0 0 29 FEB ? 2100-2103)", "2000-01-01T00:00", None),
        ("cron(0 0 L 2 ? 2000,2100)", "1999-01-01T00:00", Some("2000-02-29T00:00")),
        ("cron(0 0 L 2 ? 2000,2100)", "2000-02-29T00:00", Some("2100-02-28T00:00")),
        // Month ends and L.
        ("cron(0 0 L * ? *)", "2023-02-15T00:00", Some("2023-02-28T00:00")),
        ("cron(0 0 L * ? *)", "2024-02-28T00:00", Some("2024-02-29T00:00")),
        ("cron(59 23 L * ? *)", "2024-12-31T23:58", Some("2024-12-31T23:59")),
        ("cron(59 23 L * ? *)", "2024-12-31T23:59", Some("2025-01-31T23:59")),
        ("cron(0 0 31 * ? *)", "2024-04-01T00:00", Some("2024-05-31T00:00")),
        ("cron(0 9 L-3 * ? *)", "2023-02-01T00:00", Some("2023-02-25T09:00")),
        ("cron(0 9 L-3 * ? *)", "2024-02-26T09:00", Some("2024-03-28T09:00")),
        ("cron(0 0 L-30 * ? *)", "2024-02-01T00:00", Some("2024-03-01T00:00")),
        ("cron(0 0 L-30 * ? *)", "2024-03-01T00:00", Some("2024-05-01T00:00")),
        // W: nearest weekday, never leaving the month.
        ("cron(0 9 1W * ? *)", "2022-09-30T00:00", Some("2022-10-03T09:00")), // Sat 1st -> Mon 3rd
        ("cron(0 9 1W * ? *)", "2022-10-03T09:00", Some("2022-11-01T09:00")), // Tue 1st
        ("cron(0 0 1W * ? *)", "2023-12-31T00:00", Some("2024-01-01T00:00")), // Mon 1st
        ("cron(0 9 31W * ? *)", "2021-10-01T00:00", Some("2021-10-29T09:00")), // Sun 31st -> Fri 29th
        ("cron(0 9 15W * ? *)", "2024-06-01T00:00", Some("2024-06-14T09:00")), // Sat -> Fri
        ("cron(0 9 16W * ? *)", "2024-06-01T00:00", Some("2024-06-17T09:00")), // Sun -> Mon
        ("cron(0 0 30W * ? *)", "2024-02-01T00:00", Some("2024-03-29T00:00")), // no Feb 30; Sat Mar 30 -> Fri
        ("cron(0 9 LW * ? *)", "2024-03-01T00:00", Some("2024-03-29T09:00")), // Sun 31st
        ("cron(0 9 LW * ? *)", "2024-08-01T00:00", Some("2024-08-30T09:00")), // Sat 31st
        ("cron(0 0 LW 2 ? *)", "2024-03-01T00:00", Some("2025-02-28T00:00")), // Fri 28th
        // Day-of-week specials.
        ("cron(15 10 ? * 6L *)", "2024-03-01T00:00", Some("2024-03-29T10:15")),
        ("cron(15 10 ? * 6L *)", "2024-03-29T10:15", Some("2024-04-26T10:15")),
        ("cron(0 0 ? * 1L *)", "2024-03-01T00:00", Some("2024-03-31T00:00")),
        ("cron(0 0 ? * L *)", "2024-03-01T00:00", Some("2024-03-02T00:00")), // L alone = Saturday
        ("cron(0 9 ? * 3#2 *)", "2024-03-01T00:00", Some("2024-03-12T09:00")),
        ("cron(0 9 ? * 3#5 *)", "2024-03-01T00:00", Some("2024-04-30T09:00")), // March has 4 Tuesdays
        ("cron(0 9 ? * 2#1 *)", "2024-09-01T00:00", Some("2024-09-02T09:00")),
        ("cron(0 0 ? 2 6#5 *)", "2024-01-01T00:00", Some("2036-02-29T00:00")), // a fifth Friday in February
        ("cron(0 12 ? DEC-FEB 2#1 *)", "2024-02-06T00:00", Some("2024-12-02T12:00")),
        ("cron(0 8 ? * MON-FRI *)", "2024-03-01T08:00", Some("2024-03-04T08:00")), // Fri -> Mon
        ("cron(0 8 ? * FRI-MON *)", "2024-03-04T08:00", Some("2024-03-08T08:00")), // wraps
        ("cron(5 4 ? * sun *)", "2024-03-09T12:00", Some("2024-03-10T04:05")),
        // Minute and hour lists, steps, wrap-around.
        ("cron(0/15 * * * ? *)", "2024-01-01T00:14:59.999", Some("2024-01-01T00:15")),
        ("cron(0/15 * * * ? *)", "2024-01-01T00:15", Some("2024-01-01T00:30")),
        ("cron(*/5 * * * ? *)", "2023-12-31T23:58", Some("2024-01-01T00:00")),
        ("cron(10-50/20 * * * ? *)", "2024-01-01T00:50", Some("2024-01-01T01:10")),
        ("cron(0 22-2 * * ? *)", "2024-01-01T02:00", Some("2024-01-01T22:00")),
        ("cron(0 22-2 * * ? *)", "2024-01-01T23:00", Some("2024-01-02T00:00")),
        ("cron(* * * * ? *)", "2024-01-01T00:00:30", Some("2024-01-01T00:01")),
        ("cron(0 0 1 * ? *)", "2023-12-31T23:59:59.999", Some("2024-01-01T00:00")),
        // Year field.
        ("cron(0 0 1 JAN ? 2025)", "2024-06-01T00:00", Some("2025-01-01T00:00")),
        ("cron(0 0 1 JAN ? 2025)", "2025-01-01T00:00", None),
        ("cron(0 0 * * ? 2020-2022)", "2024-01-01T00:00", None),
        ("cron(0 0 1 1 ? 2000/50)", "2001-01-01T00:00", Some("2050-01-01T00:00")),
        ("cron(0 0 2-4 * ? 1970)", "1969-12-31T00:00", Some("1970-01-02T00:00")),
        ("cron(0 0 1 * ? *)", "2199-12-01T00:00", None),
        ("cron(0 0 30 2 ? *)", "1970-01-01T00:00", None),
        // UTC has no DST: US and EU switch days behave like any other day.
        ("cron(0 2 * * ? *)", "2024-03-10T01:59", Some("2024-03-10T02:00")),
        ("cron(30 1 * * ? *)", "2024-11-03T01:30", Some("2024-11-04T01:30")),
        ("cron(30 2 * * ? *)", "2024-03-31T00:00", Some("2024-03-31T02:30")),
    ];
    for (expr, after, expected) in rows {
        let schedule = Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let got = schedule.next_after(ms(after), 0);
        assert_eq!(got.map(iso), expected.map(|e| iso(ms(e))), "{expr} after {after}");
        if let (Some(t), Schedule::Cron(cron)) = (got, &schedule) {
            assert!(cron.matches(t), "{expr}: {} does not match its own fields", iso(t));
        }
    }
    assert!(rows.len() >= 40);
}

#[test]
fn rate_fire_times_are_anchored() {
    let anchor = ms("2024-01-01T13:37:11.5");
    let day = Schedule::parse("rate(1 day)").unwrap();
    assert_eq!(day.next_after(ms("2024-01-05T00:00"), anchor), Some(ms("2024-01-05T13:37:11.5")));
    assert_eq!(day.next_after(anchor, anchor), Some(ms("2024-01-02T13:37:11.5")));
    assert_eq!(day.next_after(ms("2024-01-02T13:37:11.5"), anchor), Some(ms("2024-01-03T13:37:11.5")));
    // Across a leap day and a DST switch day nothing shifts: periods are exact.
    assert_eq!(day.next_after(ms("2024-03-10T00:00"), anchor), Some(ms("2024-03-10T13:37:11.5")));
    let five = Schedule::parse("rate(5 minutes)").unwrap();
    assert_eq!(five.next_after(anchor + 12 * 60_000, anchor), Some(anchor + 15 * 60_000));
    let two_hours = Schedule::parse("rate(2 hours)").unwrap();
    assert_eq!(two_hours.next_after(anchor - 86_400_000, anchor), Some(anchor + 2 * 3_600_000));
    let minute = Schedule::parse("rate(1 minute)").unwrap();
    assert_eq!(minute.next_after(anchor + 60_000, anchor), Some(anchor + 120_000));
}

#[test]
fn invalid_expressions() {
    let rows: &[(&str, &str)] = &[
        ("rate(1 minutes)", "must be 'minute' for a value of 1, not 'minutes'"),
        ("rate(2 minute)", "must be 'minutes' for a value of 2, not 'minute'"),
        ("rate(1 hours)", "must be 'hour' for a value of 1"),
        ("rate(3 day)", "must be 'days' for a value of 3"),
        ("rate(0 minutes)", "positive integer, not 0"),
        ("rate(-5 minutes)", "'-5' is not a positive integer"),
        ("rate(1.5 hours)", "'1.5' is not a positive integer"),
        ("rate(5 weeks)", "'weeks' is not one of minute, minutes, hour, hours, day, days"),
        ("rate(5 Minutes)", "'Minutes' is not one of"),
        ("rate(5)", "rate(value unit)"),
        ("rate(99999999999 days)", "too large"),
        ("", "must be rate(value unit) or cron(fields)"),
        ("at(2024-01-01T00:00:00)", "must be rate(value unit) or cron(fields)"),
        ("CRON(0 12 * * ? *)", "must be rate(value unit) or cron(fields)"),
        ("cron(0 12 * * ? *", "must end with ')'"),
        ("cron(0 12 * * ?)", "exactly 6 fields"),
        ("cron(0 0 12 * * ? *)", "found 7"),
        ("cron(0 12 * * * *)", "day-of-month and day-of-week cannot both be specified; use ? in one of them"),
        ("cron(0 12 1 * MON *)", "cannot both be specified"),
        ("cron(0 12 ? * ? *)", "cannot both be ?"),
        ("cron(60 12 * * ? *)", "value 60 is out of range in the minutes field (0-59)"),
        ("cron(0 24 * * ? *)", "value 24 is out of range in the hours field (0-23)"),
        ("cron(0 0 32 * ? *)", "value 32 is out of range in the day-of-month field (1-31)"),
        ("cron(0 0 0 * ? *)", "value 0 is out of range in the day-of-month field (1-31)"),
        ("cron(0 0 1 13 ? *)", "value 13 is out of range in the month field (1-12)"),
        ("cron(0 0 ? * 0 *)", "value 0 is out of range in the day-of-week field (1-7)"),
        ("cron(0 0 ? * 8 *)", "value 8 is out of range in the day-of-week field (1-7)"),
        ("cron(0 0 1 * ? 1969)", "value 1969 is out of range in the year field (1970-2199)"),
        ("cron(0 0 1 * ? 2200)", "value 2200 is out of range in the year field (1970-2199)"),
        ("cron(0 0 1 FOO ? *)", "invalid value 'FOO' in the month field"),
        ("cron(0 0 ? * MONDAY *)", "invalid value 'MONDAY' in the day-of-week field"),
        ("cron(0 0 ? MON * *)", "invalid value 'MON' in the month field"),
        ("cron(0 0 ? * JAN *)", "invalid value 'JAN' in the day-of-week field"),
        ("cron(0 0 ? * 3#1,6#3 *)", "# must be used alone"),
        ("cron(0 0 ? * 3#6 *)", "must be a number from 1 to 5"),
        ("cron(0 0 ? * */2 *)", "'/' is not supported in the day-of-week field"),
        ("cron(0 0 ? * 1,6L *)", "L must be used alone"),
        ("cron(0 0 L-31 * ? *)", "must be a number from 1 to 30"),
        ("cron(0 0 1,LW * ? *)", "L and W must be used alone"),
        ("cron(0 0 W * ? *)", "L and W must be used alone"),
        ("cron(0 0 1-5W * ? *)", "L and W must be used alone"),
        ("cron(0 0 32W * ? *)", "value 32 is out of range in the day-of-month field"),
        ("cron(0 0 1 * ? 2030-2020)", "range '2030-2020' in the year field ends before it starts"),
        ("cron(0/0 * * * ? *)", "increment 0 in the minutes field must be at least 1"),
        ("cron(0/61 * * * ? *)", "increment 61 in the minutes field is larger than"),
        ("cron(0/x * * * ? *)", "increment 'x' in the minutes field is not a positive integer"),
        ("cron(0 ? * * ? *)", "'?' is only allowed in the day-of-month and day-of-week fields, not the hours field"),
        ("cron(0 0 1? * ? *)", "'?' must be the whole day-of-month field"),
        ("cron(1,,2 0 * * ? *)", "empty value in the minutes field"),
        ("cron(5- * * * ? *)", "incomplete range '5-' in the minutes field"),
        ("cron(L * * * ? *)", "invalid value 'L' in the minutes field"),
    ];
    for (expr, fragment) in rows {
        let err = Schedule::parse(expr).expect_err(expr);
        let text = err.to_string();
        assert!(text.starts_with("Parameter ScheduleExpression is not valid: "), "{expr}: {text}");
        assert!(text.contains(fragment), "{expr}: {text:?} lacks {fragment:?}");
    }
    assert_eq!(AWS_INVALID_MESSAGE, "Parameter ScheduleExpression is not valid.");
    let err = Schedule::parse("cron(0 0 1 13 ? *)").unwrap_err();
    assert_eq!(err.field(), Some(CronField::Month));
}

#[test]
fn valid_expressions_from_the_aws_documentation() {
    for expr in [
        "cron(0 10 * * ? *)",
        "cron(15 12 * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
        "cron(0/15 * * * ? *)",
        "cron(0/10 * ? * MON-FRI *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "cron(0 9 ? * 2#1 *)",
        "cron(15 10 ? * 6L 2022-2023)",
        "cron(0 0 1 JAN,FEB,MAR ? *)",
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 hour)",
        "rate(7 days)",
    ] {
        assert!(Schedule::parse(expr).is_ok(), "{expr}");
    }
}

#[test]
fn display_normalizes() {
    let rows = [
        ("cron(0 8 ? * mon-fri *)", "cron(0 8 ? * MON-FRI *)"),
        ("  cron(0   8 ? *  2-6 *)  ", "cron(0 8 ? * 2-6 *)"),
        ("cron(05 08 1w jan,Jul ? 2024-2030/2)", "cron(5 8 1W JAN,JUL ? 2024-2030/2)"),
        ("cron(0 0 l-3 * ? *)", "cron(0 0 L-3 * ? *)"),
        ("cron(0 0 ? * fri#3 *)", "cron(0 0 ? * FRI#3 *)"),
        ("cron(0 0 ? * 6l *)", "cron(0 0 ? * 6L *)"),
        ("rate(010 minutes)", "rate(10 minutes)"),
        ("rate( 1 day )", "rate(1 day)"),
    ];
    for (input, normalized) in rows {
        let s = Schedule::parse(input).unwrap();
        assert_eq!(s.to_string(), normalized);
        assert_eq!(Schedule::parse(normalized).unwrap(), s, "{normalized} re-parses to the same schedule");
    }
}

#[test]
fn descriptions() {
    let rows = [
        ("rate(1 minute)", "every minute"),
        ("rate(5 minutes)", "every 5 minutes"),
        ("rate(1 hour)", "every hour"),
        ("rate(2 days)", "every 2 days"),
        ("cron(0 8 ? * MON-FRI *)", "at 08:00 UTC, on weekdays"),
        ("cron(0/5 * * * ? *)", "every 5 minutes"),
        ("cron(0 10 * * ? *)", "at 10:00 UTC, every day"),
        ("cron(0 0 LW * ? *)", "at 00:00 UTC, on the last weekday of the month"),
        ("cron(0 12 29 2 ? *)", "at 12:00 UTC, on day 29 of the month, in February"),
    ];
    for (expr, description) in rows {
        assert_eq!(Schedule::parse(expr).unwrap().describe(), description);
    }
}

#[test]
fn catch_up_fires_once_for_many_missed_ticks() {
    let hourly = Schedule::parse("cron(0 * * * ? *)").unwrap();
    let anchor = ms("2024-01-01T09:10");
    let c = |last: Option<&str>, now: &str| catch_up(&hourly, anchor, last.map(ms), ms(now));
    // Three ticks missed (11:00, 12:00, 13:00): one fire now.
    assert_eq!(
        c(Some("2024-01-01T10:00"), "2024-01-01T13:30"),
        CatchUp { fire_now: true, next_ms: Some(ms("2024-01-01T14:00")) }
    );
    // Nothing missed.
    assert_eq!(
        c(Some("2024-01-01T13:00"), "2024-01-01T13:30"),
        CatchUp { fire_now: false, next_ms: Some(ms("2024-01-01T14:00")) }
    );
    // A tick exactly at `now` counts as due.
    assert_eq!(
        c(Some("2024-01-01T13:00"), "2024-01-01T14:00"),
        CatchUp { fire_now: true, next_ms: Some(ms("2024-01-01T15:00")) }
    );
    // Never fired: missed ticks are counted from the rule's creation.
    assert!(!c(None, "2024-01-01T09:59").fire_now);
    assert!(c(None, "2024-01-01T10:00").fire_now);
    // Clock went backwards: nothing to catch up.
    assert!(!c(Some("2024-01-01T13:00"), "2024-01-01T12:00").fire_now);

    let rate = Schedule::parse("rate(10 minutes)").unwrap();
    let r = catch_up(&rate, anchor, Some(anchor + 10 * 60_000), anchor + 55 * 60_000);
    assert_eq!(r, CatchUp { fire_now: true, next_ms: Some(anchor + 60 * 60_000) });
    let r = catch_up(&rate, anchor, None, anchor + 9 * 60_000);
    assert_eq!(r, CatchUp { fire_now: false, next_ms: Some(anchor + 10 * 60_000) });

    // A schedule whose last fire time passed while down fires once, then never again.
    let once = Schedule::parse("cron(0 0 1 1 ? 2020)").unwrap();
    let r = catch_up(&once, ms("2019-06-01T00:00"), None, ms("2024-01-01T00:00"));
    assert_eq!(r, CatchUp { fire_now: true, next_ms: None });
    let r = catch_up(&once, ms("2019-06-01T00:00"), Some(ms("2020-01-01T00:00")), ms("2024-01-01T00:00"));
    assert_eq!(r, CatchUp { fire_now: false, next_ms: None });
}

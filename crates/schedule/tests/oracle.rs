//! Property tests: for random valid cron expressions and random instants, `next_after` equals
//! a brute-force minute-by-minute search over a bounded window, and every returned time
//! matches all fields. The oracle is written from the field semantics directly (membership
//! by arithmetic on the generated model, day rules by scanning calendar dates with the `time`
//! crate) and shares no code with the crate's fast path. Also: random strings never panic.

use lookout_schedule::Schedule;
use proptest::prelude::*;
use time::{Date, Month, OffsetDateTime, Weekday};

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;
/// How far the brute-force search looks: a bit over four years.
const WINDOW: i64 = 1_500 * DAY;

// ----- model -------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Item {
    Star(Option<u16>),
    One(u16, Option<u16>),
    Range(u16, u16, Option<u16>),
}

#[derive(Debug, Clone)]
enum Dom {
    Unspecified,
    List(Vec<Item>),
    Last(u16),
    LastWeekday,
    NearestWeekday(u16),
}

#[derive(Debug, Clone)]
enum Dow {
    Unspecified,
    List(Vec<Item>),
    Saturday,
    LastOf(u16),
    Nth(u16, u16),
}

#[derive(Debug, Clone)]
struct Model {
    minutes: Vec<Item>,
    hours: Vec<Item>,
    dom: Dom,
    months: Vec<Item>,
    dow: Dow,
    years: Vec<Item>,
    /// 0: numbers, 1: upper-case names, 2: lower-case names (month and day-of-week only).
    names: u8,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn render_value(v: u16, names: Option<&[&str]>, style: u8) -> String {
    match (names, style) {
        (Some(n), 1) => n[usize::from(v - 1)].to_string(),
        (Some(n), 2) => n[usize::from(v - 1)].to_lowercase(),
        _ => v.to_string(),
    }
}

fn render_list(items: &[Item], names: Option<&[&str]>, style: u8) -> String {
    let v = |n| render_value(n, names, style);
    let step = |s: &Option<u16>| s.map(|s| format!("/{s}")).unwrap_or_default();
    items
        .iter()
        .map(|item| match item {
            Item::Star(s) => format!("*{}", step(s)),
            Item::One(a, s) => format!("{}{}", v(*a), step(s)),
            Item::Range(a, b, s) => format!("{}-{}{}", v(*a), v(*b), step(s)),
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Model {
    fn render(&self) -> String {
        let dom = match &self.dom {
            Dom::Unspecified => "?".to_string(),
            Dom::List(items) => render_list(items, None, 0),
            Dom::Last(0) => "L".to_string(),
            Dom::Last(n) => format!("L-{n}"),
            Dom::LastWeekday => "LW".to_string(),
            Dom::NearestWeekday(n) => format!("{n}W"),
        };
        let day = |n| render_value(n, Some(&DAYS), self.names);
        let dow = match &self.dow {
            Dow::Unspecified => "?".to_string(),
            Dow::List(items) => render_list(items, Some(&DAYS), self.names),
            Dow::Saturday => "L".to_string(),
            Dow::LastOf(n) => format!("{}L", day(*n)),
            Dow::Nth(n, k) => format!("{}#{k}", day(*n)),
        };
        format!(
            "cron({} {} {} {} {} {})",
            render_list(&self.minutes, None, 0),
            render_list(&self.hours, None, 0),
            dom,
            render_list(&self.months, Some(&MONTHS), self.names),
            dow,
            render_list(&self.years, None, 0),
        )
    }
}

// ----- oracle ------------------------------------------------------------------------------

/// Whether `v` is in a list for a field whose values are `lo..=hi`, by arithmetic.
fn in_list(items: &[Item], lo: u16, hi: u16, v: u16) -> bool {
    let span = hi - lo + 1;
    items.iter().any(|item| match *item {
        Item::Star(step) => (v - lo) % step.unwrap_or(1) == 0,
        Item::One(a, None) => v == a,
        Item::One(a, Some(s)) => v >= a && (v - a) % s == 0,
        Item::Range(a, b, step) => {
            let position = if a <= b {
                (a..=b).contains(&v).then(|| v - a)
            } else if v >= a {
                Some(v - a)
            } else if v <= b {
                Some(v + span - a)
            } else {
                None
            };
            position.is_some_and(|p| p % step.unwrap_or(1) == 0)
        }
    })
}

fn is_weekday(d: Date) -> bool {
    !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// All dates of the month containing `d`.
fn month_dates(d: Date) -> Vec<Date> {
    let mut out = Vec::new();
    let mut cur = d.replace_day(1).unwrap();
    while cur.month() == d.month() {
        out.push(cur);
        match cur.next_day() {
            Some(n) => cur = n,
            None => break,
        }
    }
    out
}

fn day_matches(m: &Model, d: Date) -> bool {
    let dates = month_dates(d);
    let last = dates.len() as u16;
    let day = u16::from(d.day());
    let dow = u16::from(d.weekday().number_from_sunday());
    let dom_ok = match &m.dom {
        Dom::Unspecified => true,
        Dom::List(items) => in_list(items, 1, 31, day),
        Dom::Last(n) => day + n == last,
        Dom::LastWeekday => dates.iter().rev().find(|x| is_weekday(**x)) == Some(&d),
        Dom::NearestWeekday(n) => {
            let n = i32::from(*n);
            n <= i32::from(last)
                && dates.iter().filter(|x| is_weekday(**x)).min_by_key(|x| (i32::from(x.day()) - n).abs()) == Some(&d)
        }
    };
    let dow_ok = match &m.dow {
        Dow::Unspecified => true,
        Dow::List(items) => in_list(items, 1, 7, dow),
        Dow::Saturday => d.weekday() == Weekday::Saturday,
        Dow::LastOf(n) => dow == *n && day + 7 > last,
        Dow::Nth(n, k) => dow == *n && (day - 1) / 7 + 1 == *k,
    };
    dom_ok && dow_ok
}

fn date_matches(m: &Model, d: Date) -> bool {
    let year = d.year();
    (1970..=2199).contains(&year)
        && in_list(&m.years, 1970, 2199, year as u16)
        && in_list(&m.months, 1, 12, u16::from(u8::from(d.month())))
        && day_matches(m, d)
}

fn time_matches(m: &Model, ms: i64) -> bool {
    let dt = OffsetDateTime::from_unix_timestamp(ms / 1000).unwrap();
    ms % MINUTE == 0
        && date_matches(m, dt.date())
        && in_list(&m.hours, 0, 23, u16::from(dt.hour()))
        && in_list(&m.minutes, 0, 59, u16::from(dt.minute()))
}

/// The first matching minute in `(after, after + WINDOW]`, checking every minute in order.
/// The date part of the check is cached per day; the hour and minute part runs every minute.
fn brute_force(m: &Model, after: i64) -> Option<i64> {
    let mut t = (after.div_euclid(MINUTE) + 1) * MINUTE;
    let mut cached: Option<(i64, bool)> = None;
    while t <= after + WINDOW {
        let day_index = t.div_euclid(DAY);
        let date_ok = match cached {
            Some((index, ok)) if index == day_index => ok,
            _ => {
                let date = OffsetDateTime::from_unix_timestamp(t / 1000).unwrap().date();
                let ok = date_matches(m, date);
                cached = Some((day_index, ok));
                ok
            }
        };
        if date_ok {
            let minute_of_day = t.rem_euclid(DAY) / MINUTE;
            let (hour, minute) = ((minute_of_day / 60) as u16, (minute_of_day % 60) as u16);
            if in_list(&m.hours, 0, 23, hour) && in_list(&m.minutes, 0, 59, minute) {
                return Some(t);
            }
        }
        t += MINUTE;
    }
    None
}

// ----- generators --------------------------------------------------------------------------

fn item(lo: u16, hi: u16, steps: bool, wrap: bool) -> BoxedStrategy<Item> {
    let span = hi - lo + 1;
    let step = move || {
        if steps {
            prop_oneof![2 => Just(None), 1 => (1..=span).prop_map(Some)].boxed()
        } else {
            Just(None).boxed()
        }
    };
    let range = (lo..=hi, lo..=hi, step()).prop_filter_map("backwards range", move |(a, b, s)| {
        if a <= b || wrap {
            Some(Item::Range(a, b, s))
        } else {
            Some(Item::Range(b, a, s))
        }
    });
    prop_oneof![
        3 => step().prop_map(Item::Star),
        3 => (lo..=hi, step()).prop_map(|(a, s)| Item::One(a, s)),
        3 => range,
    ]
    .boxed()
}

fn list(lo: u16, hi: u16, steps: bool, wrap: bool) -> BoxedStrategy<Vec<Item>> {
    prop::collection::vec(item(lo, hi, steps, wrap), 1..=3).boxed()
}

/// Minute and hour lists biased towards few values (plain values) so that the window search
/// stays meaningful, with the full syntax still reachable.
fn time_list(lo: u16, hi: u16) -> BoxedStrategy<Vec<Item>> {
    prop_oneof![
        2 => prop::collection::vec((lo..=hi).prop_map(|a| Item::One(a, None)), 1..=3),
        3 => list(lo, hi, true, true),
    ]
    .boxed()
}

fn years() -> BoxedStrategy<Vec<Item>> {
    prop_oneof![
        4 => Just(vec![Item::Star(None)]),
        3 => list(2015, 2040, true, false),
        1 => list(1970, 2199, true, false),
    ]
    .boxed()
}

fn days() -> BoxedStrategy<(Dom, Dow)> {
    let dom = prop_oneof![
        4 => list(1, 31, true, true).prop_map(Dom::List),
        1 => prop_oneof![0u16..=3, 0u16..=30].prop_map(Dom::Last),
        1 => Just(Dom::LastWeekday),
        2 => prop_oneof![Just(1u16), 28u16..=31, 1u16..=31].prop_map(Dom::NearestWeekday),
    ];
    let dow = prop_oneof![
        4 => list(1, 7, false, true).prop_map(Dow::List),
        1 => Just(Dow::Saturday),
        2 => (1u16..=7).prop_map(Dow::LastOf),
        2 => (1u16..=7, 1u16..=5).prop_map(|(n, k)| Dow::Nth(n, k)),
    ];
    prop_oneof![dom.prop_map(|d| (d, Dow::Unspecified)), dow.prop_map(|w| (Dom::Unspecified, w))].boxed()
}

fn model() -> impl Strategy<Value = Model> {
    (time_list(0, 59), time_list(0, 23), days(), list(1, 12, true, true), years(), 0u8..3).prop_map(
        |(minutes, hours, (dom, dow), months, years, names)| Model { minutes, hours, dom, months, dow, years, names },
    )
}

fn instant() -> impl Strategy<Value = i64> {
    let start = Date::from_calendar_date(2020, Month::January, 1).unwrap().midnight().assume_utc();
    let start = start.unix_timestamp() * 1000;
    prop_oneof![
        3 => start..start + 10 * 365 * DAY,
        1 => (0i64..10 * 365).prop_map(move |d| start + d * DAY - 1),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn next_after_equals_brute_force(m in model(), after in instant()) {
        let expr = m.render();
        let schedule = Schedule::parse(&expr).map_err(|e| TestCaseError::fail(format!("{expr}: {e}")))?;
        let Schedule::Cron(cron) = &schedule else { return Err(TestCaseError::fail("not a cron schedule")) };
        let fast = schedule.next_after(after, 0);
        match brute_force(&m, after) {
            Some(expected) => prop_assert_eq!(fast, Some(expected), "{}", expr),
            None => prop_assert!(
                fast.is_none_or(|t| t > after + WINDOW),
                "{expr}: fast path found {fast:?} inside the window where brute force found nothing"
            ),
        }
        if let Some(t) = fast {
            prop_assert!(t > after);
            prop_assert!(time_matches(&m, t), "{}: {} does not match the model", expr, t);
            prop_assert!(cron.matches(t), "{}: {} does not match per the crate", expr, t);
            // The normalized form is the same schedule.
            let again = Schedule::parse(&schedule.to_string()).unwrap();
            prop_assert_eq!(&again, &schedule);
        }
    }

    #[test]
    fn random_strings_never_panic(s in ".{0,80}", after in any::<i64>(), anchor in any::<i64>()) {
        exercise(&s, after, anchor);
    }

    #[test]
    fn cron_like_strings_never_panic(
        body in "[0-9*/,?#LWlw -]{0,12}( [0-9A-Za-z*/,?#-]{1,8}){0,7}",
        rate in "[0-9]{0,12} ?(minutes?|hours?|days?|weeks)?",
        after in any::<i64>(),
        anchor in any::<i64>(),
    ) {
        exercise(&format!("cron({body})"), after, anchor);
        exercise(&format!("rate({rate})"), after, anchor);
    }
}

/// Parses `s` and, if valid, runs every operation on it; nothing may panic.
fn exercise(s: &str, after: i64, anchor: i64) {
    if let Ok(schedule) = Schedule::parse(s) {
        let _ = schedule.next_after(after, anchor);
        let _ = schedule.next_after(0, 0);
        let _ = schedule.describe();
        let normalized = schedule.to_string();
        assert_eq!(Schedule::parse(&normalized).as_ref(), Ok(&schedule), "{s} -> {normalized}");
        let _ = lookout_schedule::catch_up(&schedule, anchor, Some(after), after.saturating_add(DAY));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Any text (as a PutRule ScheduleExpression from the network) parses or is refused without a
    /// panic, and a parsed schedule's next fire time is found (or known absent) quickly.
    #[test]
    fn arbitrary_expressions_never_panic_or_hang(
        text in prop_oneof![
            "\\PC{0,40}",
            "(cron|rate)\\([-0-9A-Za-z,/*?#LW ]{0,40}\\)",
            "cron\\(([-0-9*/,?LW#]{1,6} ){5}[-0-9*/,?]{1,9}\\)",
        ],
        after in 0i64..4_102_444_800_000,
    ) {
        if let Ok(s) = lookout_schedule::Schedule::parse(&text) {
            let started = std::time::Instant::now();
            let _ = s.next_after(after, 0);
            let _ = s.describe();
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(1), "{text}: next_after took {:?}", started.elapsed());
        }
    }
}

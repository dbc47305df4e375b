//! Value lists of one cron field: the `, - * /` syntax shared by all six fields, month and
//! weekday names, and the expansion of a list into the set of values it matches.
//!
//! Semantics chosen where AWS's documentation is silent (they follow Quartz, which AWS cron
//! expressions derive from):
//! - `a/s` means `a`, `a+s`, … up to the field's maximum; `*/s` starts at the field's minimum.
//! - A range whose end is below its start wraps around in every field that is a cycle
//!   (minutes, hours, day-of-month, month, day-of-week): `22-2` is hours 22, 23, 0, 1, 2 and
//!   `FRI-MON` is Friday through Monday. Steps keep counting across the wrap (`50-10/15` is
//!   minutes 50 and 5). In the year field a backwards range is an error.
//! - An increment must be between 1 and the number of values of the field.
//! - Numbers may have leading zeros (`05`); names are three letters, case-insensitive.
//! - `*` may appear in a list (`*,5`); the list is the union of its items.

use std::fmt::{self, Write as _};

use crate::error::{CronField, ScheduleError};

const MONTH_NAMES: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A set of up to 256 small integers, stored as offsets from a field's minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Bits([u64; 4]);

impl Bits {
    pub(crate) fn insert(&mut self, offset: u16) {
        let i = usize::from(offset);
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub(crate) fn contains(&self, offset: u16) -> bool {
        let i = usize::from(offset);
        i < 256 && self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// The smallest member `>= offset`.
    pub(crate) fn first_at_or_after(&self, offset: u16) -> Option<u16> {
        let mut i = usize::from(offset);
        while i < 256 {
            let word = self.0[i / 64] >> (i % 64);
            if word != 0 {
                let found = i + word.trailing_zeros() as usize;
                return u16::try_from(found).ok();
            }
            i = (i / 64 + 1) * 64;
        }
        None
    }
}

/// One number or name written in a field, remembering which of the two it was for `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Val {
    pub(crate) n: u16,
    pub(crate) named: bool,
}

impl Val {
    pub(crate) fn write(self, field: CronField, f: &mut impl fmt::Write) -> fmt::Result {
        match (self.named, field) {
            (true, CronField::Month) => f.write_str(MONTH_NAMES[usize::from(self.n - 1)]),
            (true, CronField::DayOfWeek) => f.write_str(DAY_NAMES[usize::from(self.n - 1)]),
            _ => write!(f, "{}", self.n),
        }
    }
}

/// What an item ranges over before its increment is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    /// `*`
    Star,
    /// `5` (or `5/s`, which runs to the field's maximum)
    One(Val),
    /// `a-b`
    Range(Val, Val),
}

/// One comma-separated item: a base and an optional `/increment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) base: Base,
    pub(crate) step: Option<u16>,
}

impl Item {
    /// Adds every value this item matches to `bits` (as offsets from the field minimum).
    fn expand_into(&self, field: CronField, bits: &mut Bits) {
        let min = field.min();
        let span = field.span();
        let (start, end) = match self.base {
            Base::Star => (min, field.max()),
            Base::One(v) if self.step.is_some() => (v.n, field.max()),
            Base::One(v) => (v.n, v.n),
            Base::Range(a, b) => (a.n, b.n),
        };
        let step = usize::from(self.step.unwrap_or(1));
        // Distance travelled from start to end going upwards, wrapping past the maximum.
        let distance = if end >= start { end - start } else { end + span - start };
        for travelled in (0..=distance).step_by(step) {
            bits.insert((start - min + travelled) % span);
        }
    }

    fn write(&self, field: CronField, f: &mut impl fmt::Write) -> fmt::Result {
        match self.base {
            Base::Star => f.write_char('*')?,
            Base::One(v) => v.write(field, f)?,
            Base::Range(a, b) => {
                a.write(field, f)?;
                f.write_char('-')?;
                b.write(field, f)?;
            }
        }
        if let Some(step) = self.step {
            write!(f, "/{step}")?;
        }
        Ok(())
    }
}

/// A parsed `, - * /` list for one field plus the set of values it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueList {
    field: CronField,
    items: Vec<Item>,
    bits: Bits,
}

impl ValueList {
    pub(crate) fn items(&self) -> &[Item] {
        &self.items
    }

    pub(crate) fn field(&self) -> CronField {
        self.field
    }

    /// Whether the field value `v` is matched.
    pub(crate) fn contains(&self, v: u16) -> bool {
        v >= self.field.min() && v <= self.field.max() && self.bits.contains(v - self.field.min())
    }

    /// The smallest matched value `>= v`; values below the field minimum start at the minimum.
    pub(crate) fn next_from(&self, v: u16) -> Option<u16> {
        let min = self.field.min();
        let offset = v.saturating_sub(min);
        self.bits.first_at_or_after(offset).map(|o| o + min).filter(|&n| n <= self.field.max())
    }

    /// The matched values as bits of offsets from the field minimum, for fields with at most
    /// 64 values (all but the year).
    pub(crate) fn offset_bits(&self) -> u64 {
        debug_assert!(self.field.span() <= 64);
        self.bits.0[0]
    }

    /// True for a bare `*`.
    pub(crate) fn is_star(&self) -> bool {
        matches!(self.items.as_slice(), [Item { base: Base::Star, step: None }])
    }

    /// The value, when the list is one plain value.
    pub(crate) fn single(&self) -> Option<u16> {
        match self.items.as_slice() {
            [Item { base: Base::One(v), step: None }] => Some(v.n),
            _ => None,
        }
    }

    /// Every matched value in increasing order.
    pub(crate) fn values(&self) -> impl Iterator<Item = u16> + '_ {
        (self.field.min()..=self.field.max()).filter(|&v| self.contains(v))
    }
}

impl fmt::Display for ValueList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            item.write(self.field, f)?;
        }
        Ok(())
    }
}

/// Parses a list field such as `0,15,30-45/5` or `MON-FRI`.
pub(crate) fn parse_list(text: &str, field: CronField) -> Result<ValueList, ScheduleError> {
    let mut items = Vec::new();
    let mut bits = Bits::default();
    for part in text.split(',') {
        let item = parse_item(part, field)?;
        item.expand_into(field, &mut bits);
        items.push(item);
    }
    Ok(ValueList { field, items, bits })
}

fn parse_item(part: &str, field: CronField) -> Result<Item, ScheduleError> {
    let name = field.name();
    if part.is_empty() {
        return Err(ScheduleError::in_field(field, format!("empty value in the {name} field")));
    }
    if part.contains('?') {
        let detail = match field {
            CronField::DayOfMonth | CronField::DayOfWeek => {
                format!("'?' must be the whole {name} field, not combined with other values")
            }
            _ => format!("'?' is only allowed in the day-of-month and day-of-week fields, not the {name} field"),
        };
        return Err(ScheduleError::in_field(field, detail));
    }
    let (base_text, step) = match part.split_once('/') {
        Some(_) if field == CronField::DayOfWeek => {
            return Err(ScheduleError::in_field(field, "'/' is not supported in the day-of-week field"));
        }
        Some((base_text, step_text)) => (base_text, Some(parse_step(step_text, field)?)),
        None => (part, None),
    };
    let base = if base_text == "*" {
        Base::Star
    } else if let Some((a, b)) = base_text.split_once('-') {
        if a.is_empty() || b.is_empty() {
            return Err(ScheduleError::in_field(field, format!("incomplete range '{base_text}' in the {name} field")));
        }
        let (a, b) = (parse_value(a, field)?, parse_value(b, field)?);
        if field == CronField::Year && b.n < a.n {
            return Err(ScheduleError::in_field(
                field,
                format!("range '{base_text}' in the year field ends before it starts"),
            ));
        }
        Base::Range(a, b)
    } else {
        Base::One(parse_value(base_text, field)?)
    };
    Ok(Item { base, step })
}

fn parse_step(text: &str, field: CronField) -> Result<u16, ScheduleError> {
    let name = field.name();
    let span = field.span();
    match parse_digits(text) {
        None => Err(ScheduleError::in_field(
            field,
            format!("increment '{text}' in the {name} field is not a positive integer"),
        )),
        Some(0) => Err(ScheduleError::in_field(field, format!("increment 0 in the {name} field must be at least 1"))),
        Some(step) if step > u32::from(span) => Err(ScheduleError::in_field(
            field,
            format!("increment {step} in the {name} field is larger than the field's {span} values"),
        )),
        Some(step) => Ok(step as u16),
    }
}

/// Parses a number or (for month and day-of-week) a three-letter name.
pub(crate) fn parse_value(text: &str, field: CronField) -> Result<Val, ScheduleError> {
    let name = field.name();
    if let Some(n) = parse_digits(text) {
        let (min, max) = (field.min(), field.max());
        return match u16::try_from(n) {
            Ok(v) if (min..=max).contains(&v) => Ok(Val { n: v, named: false }),
            _ => Err(ScheduleError::in_field(
                field,
                format!("value {n} is out of range in the {name} field ({min}-{max})"),
            )),
        };
    }
    let names: &[&str] = match field {
        CronField::Month => &MONTH_NAMES,
        CronField::DayOfWeek => &DAY_NAMES,
        _ => &[],
    };
    match names.iter().position(|candidate| candidate.eq_ignore_ascii_case(text)) {
        Some(i) => Ok(Val { n: i as u16 + 1, named: true }),
        None if text.len() > 9 && text.bytes().all(|b| b.is_ascii_digit()) => Err(ScheduleError::in_field(
            field,
            format!("value {text} is out of range in the {name} field ({}-{})", field.min(), field.max()),
        )),
        None => Err(ScheduleError::in_field(field, format!("invalid value '{text}' in the {name} field"))),
    }
}

/// A non-empty run of ASCII digits of at most 9 characters (so it fits in a `u32`).
pub(crate) fn parse_digits(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// English name of a month (1-12) or weekday (1 = Sunday).
pub(crate) fn english_name(field: CronField, n: u16) -> Option<&'static str> {
    const MONTHS: [&str; 12] = [
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
    const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    let i = usize::from(n.checked_sub(1)?);
    match field {
        CronField::Month => MONTHS.get(i).copied(),
        CronField::DayOfWeek => DAYS.get(i).copied(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str, field: CronField) -> Vec<u16> {
        parse_list(text, field).unwrap().values().collect()
    }

    #[test]
    fn bits_scan_across_words() {
        let mut b = Bits::default();
        b.insert(3);
        b.insert(70);
        b.insert(229);
        assert_eq!(b.first_at_or_after(0), Some(3));
        assert_eq!(b.first_at_or_after(4), Some(70));
        assert_eq!(b.first_at_or_after(71), Some(229));
        assert_eq!(b.first_at_or_after(230), None);
        assert!(b.contains(70) && !b.contains(71) && !b.contains(300));
    }

    #[test]
    fn lists_ranges_and_steps() {
        assert_eq!(values("0,15,30", CronField::Minutes), [0, 15, 30]);
        assert_eq!(values("*/20", CronField::Minutes), [0, 20, 40]);
        assert_eq!(values("1/10", CronField::Minutes), [1, 11, 21, 31, 41, 51]);
        assert_eq!(values("10-50/10", CronField::Minutes), [10, 20, 30, 40, 50]);
        assert_eq!(values("*/5", CronField::DayOfMonth), [1, 6, 11, 16, 21, 26, 31]);
        assert_eq!(values("*/100", CronField::Year), [1970, 2070, 2170]);
        assert_eq!(values("JAN/4", CronField::Month), [1, 5, 9]);
    }

    #[test]
    fn wrapping_ranges() {
        assert_eq!(values("22-2", CronField::Hours), [0, 1, 2, 22, 23]);
        assert_eq!(values("FRI-MON", CronField::DayOfWeek), [1, 2, 6, 7]);
        assert_eq!(values("NOV-FEB", CronField::Month), [1, 2, 11, 12]);
        assert_eq!(values("50-10/15", CronField::Minutes), [5, 50]);
        assert_eq!(values("30-2", CronField::DayOfMonth), [1, 2, 30, 31]);
    }

    #[test]
    fn next_from_respects_bounds() {
        let l = parse_list("5,40", CronField::Minutes).unwrap();
        assert_eq!(l.next_from(0), Some(5));
        assert_eq!(l.next_from(6), Some(40));
        assert_eq!(l.next_from(41), None);
        assert_eq!(l.next_from(60), None);
        let d = parse_list("*", CronField::DayOfMonth).unwrap();
        assert_eq!(d.next_from(0), Some(1));
        assert_eq!(d.next_from(32), None);
    }

    #[test]
    fn display_round_trips_the_written_form() {
        for text in ["0,15,30-45/5", "*/5", "MON-FRI", "JAN,3,DEC/1", "*"] {
            let field = if text.contains("MON") { CronField::DayOfWeek } else { CronField::Month };
            let field = if text.contains("0,15") || text == "*/5" { CronField::Minutes } else { field };
            assert_eq!(parse_list(text, field).unwrap().to_string(), text);
        }
        assert_eq!(parse_list("05", CronField::Minutes).unwrap().to_string(), "5");
    }

    #[test]
    fn errors() {
        let err = |text, field| parse_list(text, field).unwrap_err().detail().to_string();
        assert_eq!(err("61", CronField::Minutes), "value 61 is out of range in the minutes field (0-59)");
        assert_eq!(err("1,,2", CronField::Minutes), "empty value in the minutes field");
        assert_eq!(err("MON", CronField::Month), "invalid value 'MON' in the month field");
        assert_eq!(err("5-", CronField::Hours), "incomplete range '5-' in the hours field");
        assert_eq!(err("0/0", CronField::Minutes), "increment 0 in the minutes field must be at least 1");
        assert_eq!(
            err("0/61", CronField::Minutes),
            "increment 61 in the minutes field is larger than the field's 60 values"
        );
        assert_eq!(err("2030-2020", CronField::Year), "range '2030-2020' in the year field ends before it starts");
        assert_eq!(err("1/2", CronField::DayOfWeek), "'/' is not supported in the day-of-week field");
        assert_eq!(
            err("99999999999", CronField::Year),
            "value 99999999999 is out of range in the year field (1970-2199)"
        );
        assert!(err("?", CronField::Hours).contains("only allowed in the day-of-month and day-of-week"));
    }
}

//! UTC calendar arithmetic on epoch milliseconds: splitting a minute into its civil fields,
//! building the epoch time of a civil minute, month lengths and weekdays (1 = Sunday, as in
//! AWS cron). UTC has no daylight-saving time, so every day has exactly 1440 minutes.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

pub(crate) const MS_PER_MINUTE: i64 = 60_000;

/// A UTC minute split into its calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: u16,
    pub(crate) month: u16,
    pub(crate) day: u16,
    pub(crate) hour: u16,
    pub(crate) minute: u16,
}

impl Civil {
    /// The calendar fields of the minute starting at `ms` (which must be minute-aligned and
    /// within years 1970..=2199 — callers clamp before calling).
    pub(crate) fn from_ms(ms: i64) -> Option<Civil> {
        let dt = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok()?;
        Some(Civil {
            year: u16::try_from(dt.year()).ok()?,
            month: u8::from(dt.month()).into(),
            day: dt.day().into(),
            hour: dt.hour().into(),
            minute: dt.minute().into(),
        })
    }

    /// Epoch milliseconds of this minute; `None` if the fields do not form a real date.
    pub(crate) fn to_ms(self) -> Option<i64> {
        let month = Month::try_from(u8::try_from(self.month).ok()?).ok()?;
        let date = Date::from_calendar_date(self.year.into(), month, u8::try_from(self.day).ok()?).ok()?;
        let time = Time::from_hms(u8::try_from(self.hour).ok()?, u8::try_from(self.minute).ok()?, 0).ok()?;
        Some(PrimitiveDateTime::new(date, time).assume_utc().unix_timestamp() * 1000)
    }
}

/// Number of days in `month` (1-12) of `year`.
pub(crate) fn days_in_month(year: u16, month: u16) -> u16 {
    match Month::try_from(month as u8) {
        Ok(m) => m.length(year.into()).into(),
        Err(_) => 0,
    }
}

/// Weekday of the given date, 1 = Sunday … 7 = Saturday.
pub(crate) fn weekday(year: u16, month: u16, day: u16) -> u16 {
    let date = Month::try_from(month as u8)
        .ok()
        .and_then(|m| Date::from_calendar_date(year.into(), m, u8::try_from(day).ok()?).ok());
    date.map_or(0, |d| d.weekday().number_from_sunday().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_helpers() {
        // 2024-02-29T12:34:00Z
        let ms = 1_709_210_040_000;
        let c = Civil::from_ms(ms).unwrap();
        assert_eq!(c, Civil { year: 2024, month: 2, day: 29, hour: 12, minute: 34 });
        assert_eq!(c.to_ms(), Some(ms));
        assert_eq!(Civil { day: 30, ..c }.to_ms(), None);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2023, 12), 31);
        assert_eq!(weekday(2024, 2, 29), 5); // Thursday
        assert_eq!(weekday(1970, 1, 1), 5); // Thursday
        assert_eq!(weekday(2022, 10, 1), 7); // Saturday
        assert_eq!(Civil::from_ms(0).unwrap(), Civil { year: 1970, month: 1, day: 1, hour: 0, minute: 0 });
    }
}

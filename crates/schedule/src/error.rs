//! The error returned for an invalid schedule expression, and the names of the six cron fields
//! that error messages (and the rest of the crate) refer to.

use std::fmt;

/// The message AWS returns (as a `ValidationException`) for any invalid schedule expression.
pub const AWS_INVALID_MESSAGE: &str = "Parameter ScheduleExpression is not valid.";

/// One of the six fields of a `cron(...)` expression, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronField {
    Minutes,
    Hours,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

impl CronField {
    /// All fields in expression order.
    pub const ALL: [CronField; 6] = [
        CronField::Minutes,
        CronField::Hours,
        CronField::DayOfMonth,
        CronField::Month,
        CronField::DayOfWeek,
        CronField::Year,
    ];

    /// The field's name as used in AWS documentation and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            CronField::Minutes => "minutes",
            CronField::Hours => "hours",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
            CronField::Year => "year",
        }
    }

    /// Smallest value the field accepts.
    pub fn min(self) -> u16 {
        match self {
            CronField::Minutes | CronField::Hours => 0,
            CronField::DayOfMonth | CronField::Month | CronField::DayOfWeek => 1,
            CronField::Year => 1970,
        }
    }

    /// Largest value the field accepts.
    pub fn max(self) -> u16 {
        match self {
            CronField::Minutes => 59,
            CronField::Hours => 23,
            CronField::DayOfMonth => 31,
            CronField::Month => 12,
            CronField::DayOfWeek => 7,
            CronField::Year => 2199,
        }
    }

    /// How many distinct values the field has (`max - min + 1`).
    pub fn span(self) -> u16 {
        self.max() - self.min() + 1
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a schedule expression was rejected.
///
/// `Display` starts with AWS's wording and then says precisely what is wrong, e.g.
/// `Parameter ScheduleExpression is not valid: value 61 is out of range in the minutes field
/// (0-59)`. Use [`AWS_INVALID_MESSAGE`] when only AWS's exact text is wanted on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Parameter ScheduleExpression is not valid: {detail}")]
pub struct ScheduleError {
    detail: String,
    field: Option<CronField>,
}

impl ScheduleError {
    /// An error about the expression as a whole (or about a rate expression).
    pub(crate) fn whole(detail: impl Into<String>) -> Self {
        Self { detail: detail.into(), field: None }
    }

    /// An error located in one cron field.
    pub(crate) fn in_field(field: CronField, detail: impl Into<String>) -> Self {
        Self { detail: detail.into(), field: Some(field) }
    }

    /// What is wrong, without AWS's leading sentence (lowercase, no trailing period).
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The cron field the problem was found in, when it is confined to one field.
    pub fn field(&self) -> Option<CronField> {
        self.field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_starts_with_the_aws_sentence() {
        let e = ScheduleError::in_field(CronField::Minutes, "value 61 is out of range in the minutes field (0-59)");
        assert_eq!(
            e.to_string(),
            "Parameter ScheduleExpression is not valid: value 61 is out of range in the minutes field (0-59)"
        );
        assert!(e.to_string().starts_with(AWS_INVALID_MESSAGE.trim_end_matches('.')));
        assert_eq!(e.field(), Some(CronField::Minutes));
        assert_eq!(ScheduleError::whole("x").field(), None);
    }

    #[test]
    fn field_bounds() {
        for f in CronField::ALL {
            assert_eq!(f.span(), f.max() - f.min() + 1);
        }
        assert_eq!(CronField::Year.span(), 230);
        assert_eq!(CronField::DayOfWeek.to_string(), "day-of-week");
    }
}

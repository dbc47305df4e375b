//! UTC civil time for SigV4: the ISO 8601 basic form (`20150830T123600Z`) used by `x-amz-date`,
//! `X-Amz-Date` and the string to sign, the HTTP `Date` header's RFC 1123 / IMF-fixdate form, and
//! conversions to and from seconds since the Unix epoch. Hand-written (Howard Hinnant's
//! days-from-civil algorithms) so that no input can make it panic.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, negative before it (never panics).
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12, day 1..=31).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let d = i64::from(d);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number from [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Seconds since the epoch of a validated civil date-time, or None when a field is out of range.
fn to_seconds(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s))
}

/// Formats seconds since the epoch as `yyyymmddThhmmssZ`. Years outside 0..=9999 are clamped to
/// that range's ends (such times are only ever shown in error messages).
pub(crate) fn format_amz(secs: i64) -> String {
    let min = days_from_civil(0, 1, 1) * 86_400;
    let max = days_from_civil(9999, 12, 31) * 86_400 + 86_399;
    let secs = secs.clamp(min, max);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", tod / 3600, tod % 3600 / 60, tod % 60)
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `yyyymmddThhmmssZ` exactly (the form of `x-amz-date` and `X-Amz-Date`).
pub(crate) fn parse_amz(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let y = digits(s.get(0..4)?)?;
    to_seconds(
        i64::from(y),
        digits(s.get(4..6)?)?,
        digits(s.get(6..8)?)?,
        digits(s.get(9..11)?)?,
        digits(s.get(11..13)?)?,
        digits(s.get(13..15)?)?,
    )
}

/// Whether `s` is a valid `yyyymmdd` date (the credential scope's date).
pub(crate) fn is_scope_date(s: &str) -> bool {
    s.len() == 8 && parse_amz(&format!("{s}T000000Z")).is_some()
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// Parses an HTTP `Date` header: RFC 1123 / IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) and
/// the RFC 5322 variants clients produce (weekday optional and not checked, one- or two-digit
/// day, zone `GMT`/`UT`/`UTC`/`Z` or a numeric offset such as Python's `-0000`).
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    let mut parts: Vec<&str> = s.split_ascii_whitespace().collect();
    if parts.first().is_some_and(|p| p.ends_with(',')) {
        parts.remove(0);
    }
    let [day, month, year, time, zone] = parts.as_slice() else { return None };
    let day = digits(day).filter(|_| day.len() <= 2)?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u32 + 1;
    let year = digits(year).filter(|_| year.len() == 4)?;
    let mut hms = time.split(':');
    let (h, mi, sec) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() || h.len() != 2 || mi.len() != 2 || sec.len() != 2 {
        return None;
    }
    let local = to_seconds(i64::from(year), month, day, digits(h)?, digits(mi)?, digits(sec)?)?;
    let offset = match *zone {
        z if ["GMT", "UT", "UTC", "Z"].iter().any(|n| n.eq_ignore_ascii_case(z)) => 0,
        z => {
            let (sign, hhmm) = match z.as_bytes().first()? {
                b'+' => (1, z.get(1..)?),
                b'-' => (-1, z.get(1..)?),
                _ => return None,
            };
            if hhmm.len() != 4 {
                return None;
            }
            let (oh, om) = (digits(hhmm.get(..2)?)?, digits(hhmm.get(2..)?)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * i64::from(oh * 3600 + om * 60)
        }
    };
    Some(local - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_round_trip() {
        for s in ["19700101T000000Z", "20150830T123600Z", "20000229T235959Z", "20261123T110000Z"] {
            let secs = parse_amz(s).unwrap();
            assert_eq!(format_amz(secs), s);
        }
        assert_eq!(parse_amz("20150830T123600Z"), Some(1_440_938_160));
    }

    #[test]
    fn amz_rejects() {
        for s in [
            "",
            "20150830T123600",
            "20150830 123600Z",
            "20150230T123600Z",
            "20150830T243600Z",
            "2015083OT123600Z",
            "+0150830T123600Z",
            "20150830T1236\u{e9}Z",
        ] {
            assert_eq!(parse_amz(s), None, "{s}");
        }
        assert!(is_scope_date("20150830"));
        assert!(!is_scope_date("2015083"));
        assert!(!is_scope_date("20151330"));
    }

    #[test]
    fn http_dates() {
        let want = Some(1_440_938_160);
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"), want);
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 -0000"), want);
        assert_eq!(parse_http_date("30 Aug 2015 14:36:00 +0200"), want);
        assert_eq!(parse_http_date("Mon, 30 aug 2015 12:36:00 UTC"), want);
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36 GMT"), None);
        assert_eq!(parse_http_date("Sunday, 30-Aug-15 12:36:00 GMT"), None);
        assert_eq!(parse_http_date("Sun, 31 Sep 2015 12:36:00 GMT"), None);
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 +99"), None);
    }

    #[test]
    fn format_clamps() {
        assert_eq!(format_amz(i64::MIN), "00000101T000000Z");
        assert_eq!(format_amz(i64::MAX), "99991231T235959Z");
        assert_eq!(format_amz(-1), "19691231T235959Z");
    }
}

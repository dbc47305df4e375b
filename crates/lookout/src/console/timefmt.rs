//! Times in the console: the range inputs people type (`15m`, `2026-11-23T10:00`, epoch ms) and
//! `<time>` elements the script turns into the reader's local time.

use maud::{html, Markup};
use time::macros::format_description;
use time::{PrimitiveDateTime, UtcOffset};

use crate::time_util::{format_ms, parse_since};

/// Reads a range bound. Empty → `None`. Accepted: a duration ago (`30s`, `15m`, `1h`, `7d`, `2w`),
/// epoch milliseconds, RFC 3339 (`2026-11-23T10:00:00Z`), or a local date-time
/// (`2026-11-23T10:00[:ss]`, or with a space) at `offset_minutes` east of UTC (the browser's,
/// sent by the script; UTC without it).
pub fn parse_bound(text: &str, now: i64, offset_minutes: i32) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() >= 10 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().map(Some).map_err(|e| format!("{text:?}: {e}"));
    }
    let local = text.replace(' ', "T");
    let with_secs = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let without_secs = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let parsed =
        PrimitiveDateTime::parse(&local, with_secs).or_else(|_| PrimitiveDateTime::parse(&local, without_secs));
    if let Ok(t) = parsed {
        let offset = UtcOffset::from_whole_seconds(offset_minutes.saturating_mul(60)).unwrap_or(UtcOffset::UTC);
        return Ok(Some((t.assume_offset(offset).unix_timestamp_nanos() / 1_000_000) as i64));
    }
    parse_since(text, now).map(Some).map_err(|_| {
        format!("cannot read {text:?} as a time: use 15m, 1h, 7d, 2026-11-23T10:00 (local) or epoch milliseconds")
    })
}

/// A `<time>`: UTC text the script rewrites in the reader's zone.
pub fn time(ms: i64) -> Markup {
    let iso = format_ms(ms);
    html! { time datetime=(iso) data-ms=(ms) { (iso.replace('T', " ")) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_bound("", now, 0).unwrap(), None);
        assert_eq!(parse_bound("15m", now, 0).unwrap(), Some(now - 900_000));
        assert_eq!(parse_bound("1700000000000", now, 0).unwrap(), Some(1_700_000_000_000));
        assert_eq!(parse_bound("1970-01-01T00:01", now, 0).unwrap(), Some(60_000));
        assert_eq!(parse_bound("1970-01-01 01:01:01", now, 60).unwrap(), Some(61_000));
        assert_eq!(parse_bound("1970-01-01T00:00:02Z", now, 60).unwrap(), Some(2_000));
        let err = parse_bound("yesterday-ish", now, 0).unwrap_err();
        assert!(err.contains("15m"), "{err}");
    }
}

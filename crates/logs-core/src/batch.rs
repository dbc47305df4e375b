//! The PutLogEvents batch rules: what rejects a whole batch, and which leading and trailing
//! events are set aside as too old, expired or too new (AWS's `rejectedLogEventsInfo`).

use lookout_logstore::EventBatch;

use crate::LogsError;

/// Largest batch: the sum over events of (UTF-8 bytes of the message + 26).
pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const EVENT_OVERHEAD_BYTES: usize = 26;
pub const MAX_BATCH_EVENTS: usize = 10_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Events older than this are refused (`tooOldLogEventEndIndex`).
pub const MAX_AGE_MS: i64 = 14 * DAY_MS;
/// Events further in the future than this are refused (`tooNewLogEventStartIndex`).
pub const MAX_FUTURE_MS: i64 = 2 * HOUR_MS;
/// The accepted events of one batch may span at most this.
pub const MAX_BATCH_SPAN_MS: i64 = DAY_MS;

/// Which events of a batch were set aside. The end indexes are EXCLUSIVE (the number of leading
/// events rejected) — the service model calls the field "exclusive"; moto returns the last index
/// instead. The start index is inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RejectedInfo {
    pub too_old_end_index: Option<usize>,
    pub expired_end_index: Option<usize>,
    pub too_new_start_index: Option<usize>,
}

impl RejectedInfo {
    pub fn is_empty(&self) -> bool {
        *self == RejectedInfo::default()
    }
}

/// The verdict on a batch: the accepted index range and what was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    pub accepted: std::ops::Range<usize>,
    pub rejected: RejectedInfo,
}

/// Checks a batch of (timestamp ms, message) against AWS's rules at time `now`.
pub fn plan_batch(events: &EventBatch, now: i64, retention_days: Option<u32>) -> Result<BatchPlan, LogsError> {
    if events.is_empty() {
        return Err(LogsError::InvalidParameter(
            "1 validation error detected: Value '[]' at 'logEvents' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
        ));
    }
    if events.len() > MAX_BATCH_EVENTS {
        return Err(LogsError::InvalidParameter(format!(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_EVENTS} (the batch has {} events)",
            events.len()
        )));
    }
    let size = events.message_bytes() + events.len() * EVENT_OVERHEAD_BYTES;
    if size > MAX_BATCH_BYTES {
        return Err(LogsError::InvalidParameter(format!(
            "Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}"
        )));
    }
    for (i, (&ts, len)) in events.timestamps().iter().zip(events.message_lens()).enumerate() {
        if len == 0 {
            return Err(LogsError::InvalidParameter(format!(
                "1 validation error detected: Value '' at 'logEvents.{}.member.message' failed to satisfy constraint: Member must have length greater than or equal to 1",
                i + 1
            )));
        }
        if ts < 0 {
            return Err(LogsError::InvalidParameter(format!(
                "1 validation error detected: Value '{ts}' at 'logEvents.{}.member.timestamp' failed to satisfy constraint: Member must have value greater than or equal to 0",
                i + 1
            )));
        }
    }
    let timestamps = events.timestamps();
    if timestamps.windows(2).any(|w| w[1] < w[0]) {
        return Err(LogsError::InvalidParameter(
            "Log events in a single PutLogEvents request must be in chronological order.".into(),
        ));
    }
    let count_before = |limit: i64| timestamps.partition_point(|&ts| ts < limit);
    let too_old_end = count_before(now - MAX_AGE_MS);
    let expired_end = retention_days.map_or(0, |d| count_before(now - i64::from(d) * DAY_MS));
    let too_new_start = timestamps.partition_point(|&ts| ts <= now + MAX_FUTURE_MS);
    let rejected = RejectedInfo {
        too_old_end_index: (too_old_end > 0).then_some(too_old_end),
        expired_end_index: (expired_end > 0).then_some(expired_end),
        too_new_start_index: (too_new_start < events.len()).then_some(too_new_start),
    };
    let start = too_old_end.max(expired_end).min(too_new_start);
    let accepted = start..too_new_start;
    if let (Some(first), Some(last)) =
        (timestamps.get(accepted.start), accepted.end.checked_sub(1).and_then(|i| timestamps.get(i)))
    {
        if accepted.end > accepted.start && last - first > MAX_BATCH_SPAN_MS {
            return Err(LogsError::InvalidParameter(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.".into(),
            ));
        }
    }
    Ok(BatchPlan { accepted, rejected })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn ev(ts: &[i64]) -> EventBatch {
        ts.iter().map(|t| (*t, "m")).collect()
    }

    fn err(events: &EventBatch) -> String {
        match plan_batch(events, NOW, None) {
            Err(LogsError::InvalidParameter(m)) => m,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_clean_batch_is_accepted_whole() {
        let p = plan_batch(&ev(&[NOW - 5, NOW, NOW]), NOW, None).unwrap();
        assert_eq!(p.accepted, 0..3);
        assert!(p.rejected.is_empty());
    }

    #[test]
    fn whole_batch_rejections() {
        assert!(err(&ev(&[NOW, NOW - 1])).contains("chronological order"));
        assert!(err(&ev(&[NOW - 25 * 3_600_000, NOW])).contains("cannot span more than 24 hours"));
        assert!(err(&EventBatch::default()).contains("greater than or equal to 1"));
        assert!(err(&ev(&vec![NOW; 10_001])).contains("less than or equal to 10000"));
        let big = EventBatch::from(vec![(NOW, "x".repeat(MAX_BATCH_BYTES - EVENT_OVERHEAD_BYTES + 1))]);
        assert_eq!(err(&big), "Upload too large: 1048577 bytes exceeds limit of 1048576");
        let exact = EventBatch::from(vec![(NOW, "x".repeat(MAX_BATCH_BYTES - EVENT_OVERHEAD_BYTES))]);
        assert!(plan_batch(&exact, NOW, None).is_ok());
        assert!(err(&EventBatch::from(vec![(NOW, String::new())])).contains("logEvents.1.member.message"));
    }

    #[test]
    fn too_old_and_too_new_are_set_aside() {
        let old = NOW - 15 * DAY_MS;
        let new = NOW + 3 * HOUR_MS;
        let p = plan_batch(&ev(&[old, old + 1, NOW, new]), NOW, None).unwrap();
        assert_eq!(p.accepted, 2..3);
        assert_eq!(p.rejected.too_old_end_index, Some(2));
        assert_eq!(p.rejected.too_new_start_index, Some(3));
        assert_eq!(p.rejected.expired_end_index, None);
    }

    #[test]
    fn the_span_rule_only_counts_accepted_events() {
        // 15 days old + now: the old one is set aside, so the span rule does not apply.
        let p = plan_batch(&ev(&[NOW - 15 * DAY_MS, NOW]), NOW, None).unwrap();
        assert_eq!(p.accepted, 1..2);
    }

    #[test]
    fn retention_expires_events() {
        let p = plan_batch(&ev(&[NOW - 2 * DAY_MS, NOW]), NOW, Some(1)).unwrap();
        assert_eq!(p.rejected.expired_end_index, Some(1));
        assert_eq!(p.accepted, 1..2);
    }

    #[test]
    fn everything_rejected_accepts_nothing() {
        let p = plan_batch(&ev(&[NOW + 5 * HOUR_MS]), NOW, None).unwrap();
        assert!(p.accepted.is_empty());
    }
}

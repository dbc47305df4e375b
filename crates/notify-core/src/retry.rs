//! Retry schedules: how many times a failed delivery is tried again and how long lookout waits
//! before each retry (exponential backoff from `min_delay`, capped at `max_delay`, with jitter that
//! only shortens a wait, so a schedule's total is a hard bound).

use std::time::Duration;

/// When to retry a delivery that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `retries + 1` attempts in all).
    pub retries: u32,
    /// Wait before the first retry; each later wait doubles, up to `max_delay`.
    pub min_delay: Duration,
    pub max_delay: Duration,
}

/// The share of a wait that jitter may take away (waits are in `[(1 - JITTER) × d, d]`).
pub const JITTER: f64 = 0.2;

impl RetryPolicy {
    /// AWS's default for HTTP/S endpoints: 3 retries, 20 s apart (4 attempts in all).
    pub const HTTP_DEFAULT: RetryPolicy =
        RetryPolicy { retries: 3, min_delay: Duration::from_secs(20), max_delay: Duration::from_secs(20) };

    /// Email, after AWS's 50 attempts over about 6 hours: 49 retries, 10 s doubling up to 7.5 min
    /// (about 5.5 hours in all).
    pub const EMAIL_DEFAULT: RetryPolicy =
        RetryPolicy { retries: 49, min_delay: Duration::from_secs(10), max_delay: Duration::from_secs(450) };

    /// The wait before retry number `retry` (1-based), before jitter.
    pub fn delay(&self, retry: u32) -> Duration {
        let shift = retry.saturating_sub(1).min(31);
        let d = self.min_delay.saturating_mul(1u32 << shift);
        d.min(self.max_delay).max(self.min_delay.min(self.max_delay))
    }

    /// The wait before retry number `retry`, shortened by jitter; `unit` is uniform in `[0, 1)`.
    pub fn jittered_delay(&self, retry: u32, unit: f64) -> Duration {
        let d = self.delay(retry);
        d.mul_f64(1.0 - JITTER * unit.clamp(0.0, 1.0))
    }

    /// The longest a delivery can take from its first attempt to its last (without jitter).
    pub fn total(&self) -> Duration {
        (1..=self.retries).map(|r| self.delay(r)).sum()
    }

    /// Whether a delivery that has made `attempts` attempts may try again.
    pub fn may_retry(&self, attempts: u32) -> bool {
        attempts <= self.retries
    }

    /// The policy in the JSON shape of SNS's `EffectiveDeliveryPolicy` topic attribute.
    pub fn effective_delivery_policy_json(&self) -> String {
        let secs = |d: Duration| d.as_secs_f64().ceil().max(1.0) as u64;
        serde_json::json!({
            "http": {
                "defaultHealthyRetryPolicy": {
                    "minDelayTarget": secs(self.min_delay),
                    "maxDelayTarget": secs(self.max_delay),
                    "numRetries": self.retries,
                    "numMaxDelayRetries": 0,
                    "numNoDelayRetries": 0,
                    "numMinDelayRetries": 0,
                    "backoffFunction": if self.min_delay == self.max_delay { "linear" } else { "exponential" },
                },
                "disableSubscriptionOverrides": false,
                "defaultRequestPolicy": { "headerContentType": "text/plain; charset=UTF-8" },
            }
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_default_is_three_retries_twenty_seconds_apart() {
        let p = RetryPolicy::HTTP_DEFAULT;
        assert_eq!((1..=3).map(|r| p.delay(r).as_secs()).collect::<Vec<_>>(), [20, 20, 20]);
        assert_eq!(p.total(), Duration::from_secs(60));
        assert!(p.may_retry(1) && p.may_retry(3));
        assert!(!p.may_retry(4), "the fourth failed attempt is the last");
    }

    #[test]
    fn email_default_is_fifty_attempts_within_six_hours() {
        let p = RetryPolicy::EMAIL_DEFAULT;
        assert_eq!(p.retries + 1, 50);
        let delays: Vec<u64> = (1..=8).map(|r| p.delay(r).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 450, 450]);
        assert!(p.total() <= Duration::from_secs(6 * 3600), "{:?}", p.total());
        assert!(p.total() >= Duration::from_secs(5 * 3600), "{:?}", p.total());
    }

    #[test]
    fn backoff_doubles_and_stops_at_the_cap_without_overflow() {
        let p = RetryPolicy { retries: 100, min_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(4), Duration::from_millis(800));
        assert_eq!(p.delay(5), Duration::from_secs(1));
        assert_eq!(p.delay(100), Duration::from_secs(1));
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(1));
        // A cap below the minimum wins: every wait is the cap.
        let q = RetryPolicy { retries: 2, min_delay: Duration::from_secs(5), max_delay: Duration::from_secs(1) };
        assert_eq!(q.delay(1), Duration::from_secs(1));
    }

    #[test]
    fn jitter_only_shortens_a_wait_by_at_most_a_fifth() {
        let p = RetryPolicy::HTTP_DEFAULT;
        assert_eq!(p.jittered_delay(1, 0.0), Duration::from_secs(20));
        assert_eq!(p.jittered_delay(1, 1.0), Duration::from_secs(16));
        for i in 0..100 {
            let d = p.jittered_delay(2, i as f64 / 100.0);
            assert!(d <= Duration::from_secs(20) && d >= Duration::from_secs(16), "{d:?}");
        }
    }

    #[test]
    fn effective_policy_reads_like_aws() {
        let v: serde_json::Value =
            serde_json::from_str(&RetryPolicy::HTTP_DEFAULT.effective_delivery_policy_json()).unwrap();
        let p = &v["http"]["defaultHealthyRetryPolicy"];
        assert_eq!(p["numRetries"], 3);
        assert_eq!(p["minDelayTarget"], 20);
        assert_eq!(p["maxDelayTarget"], 20);
        assert_eq!(p["backoffFunction"], "linear");
    }
}

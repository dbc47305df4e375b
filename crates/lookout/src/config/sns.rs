//! SNS delivery settings of `lookout serve`: the SMTP relay and sender, and the retry schedules of
//! HTTP(S) and email deliveries. Flags and `LOOKOUT_*` variables (flattened into `serve`'s), then
//! the `[sns]` table of `lookout.toml`, then AWS's defaults.

use std::time::Duration;

use anyhow::{bail, Context};
use lookout_notify::RetryPolicy;
use serde::Deserialize;

#[derive(Debug, Default, clap::Args)]
pub struct SnsArgs {
    /// SMTP relay for email subscriptions: `smtp://[user:pass@]host[:port]` (plain SMTP),
    /// `smtp://...?tls=required` (STARTTLS), or `smtps://...` (TLS). Without it, email
    /// subscriptions are accepted but their deliveries fail (and are kept as failed).
    #[arg(long, env = "LOOKOUT_SMTP_URL", value_name = "URL")]
    pub smtp_url: Option<String>,
    /// Sender of SNS mails: `lookout@localhost` (the default) or `Alerts <alerts@example.com>`.
    #[arg(long, env = "LOOKOUT_SMTP_FROM", value_name = "ADDRESS")]
    pub smtp_from: Option<String>,
    /// Retries of a failed HTTP(S) delivery after the first attempt (AWS: 3).
    #[arg(long, env = "LOOKOUT_SNS_HTTP_RETRIES", value_name = "N")]
    pub sns_http_retries: Option<u32>,
    /// Wait before the first HTTP(S) retry, e.g. 20s or 250ms (AWS: 20s); each later wait
    /// doubles up to --sns-http-max-delay.
    #[arg(long, env = "LOOKOUT_SNS_HTTP_MIN_DELAY", value_name = "DURATION")]
    pub sns_http_min_delay: Option<String>,
    /// Longest wait between HTTP(S) retries (AWS: 20s).
    #[arg(long, env = "LOOKOUT_SNS_HTTP_MAX_DELAY", value_name = "DURATION")]
    pub sns_http_max_delay: Option<String>,
    /// Retries of a failed email delivery after the first attempt (default 49: 50 attempts, as AWS).
    #[arg(long, env = "LOOKOUT_SNS_EMAIL_RETRIES", value_name = "N")]
    pub sns_email_retries: Option<u32>,
    /// Wait before the first email retry (default 10s), doubling up to --sns-email-max-delay.
    #[arg(long, env = "LOOKOUT_SNS_EMAIL_MIN_DELAY", value_name = "DURATION")]
    pub sns_email_min_delay: Option<String>,
    /// Longest wait between email retries (default 450s: about 5.5 hours over 50 attempts).
    #[arg(long, env = "LOOKOUT_SNS_EMAIL_MAX_DELAY", value_name = "DURATION")]
    pub sns_email_max_delay: Option<String>,
}

/// The `[sns]` table of `lookout.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsFileConfig {
    smtp_url: Option<String>,
    smtp_from: Option<String>,
    http_retries: Option<u32>,
    http_min_delay: Option<String>,
    http_max_delay: Option<String>,
    email_retries: Option<u32>,
    email_min_delay: Option<String>,
    email_max_delay: Option<String>,
}

/// Resolved SNS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsSettings {
    pub smtp_url: Option<String>,
    pub smtp_from: String,
    pub http_retry: RetryPolicy,
    pub email_retry: RetryPolicy,
}

/// `250ms`, `20s`, `5m`, `6h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

fn policy(
    kind: &str,
    default: RetryPolicy,
    retries: Option<u32>,
    min: Option<String>,
    max: Option<String>,
) -> anyhow::Result<RetryPolicy> {
    let duration = |flag: &str, v: Option<String>, d: Duration| -> anyhow::Result<Duration> {
        match v {
            None => Ok(d),
            Some(text) => parse_duration(&text)
                .with_context(|| format!("--sns-{kind}-{flag} must be a duration such as 20s or 250ms, not {text:?}")),
        }
    };
    let p = RetryPolicy {
        retries: retries.unwrap_or(default.retries),
        min_delay: duration("min-delay", min, default.min_delay)?,
        max_delay: duration("max-delay", max, default.max_delay)?,
    };
    if p.retries > 1000 {
        bail!("--sns-{kind}-retries must be at most 1000");
    }
    if p.max_delay > Duration::from_secs(24 * 3600) {
        bail!("--sns-{kind}-max-delay must be at most 24h");
    }
    Ok(p)
}

impl SnsSettings {
    pub fn resolve(args: SnsArgs, file: Option<SnsFileConfig>) -> anyhow::Result<SnsSettings> {
        let file = file.unwrap_or_default();
        let smtp_url = args.smtp_url.or(file.smtp_url).filter(|u| !u.is_empty());
        if let Some(url) = &smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                bail!("--smtp-url must start with smtp:// or smtps://");
            }
        }
        let smtp_from =
            args.smtp_from.or(file.smtp_from).unwrap_or_else(|| lookout_notify::DEFAULT_SMTP_FROM.to_owned());
        Ok(SnsSettings {
            smtp_url,
            smtp_from,
            http_retry: policy(
                "http",
                RetryPolicy::HTTP_DEFAULT,
                args.sns_http_retries.or(file.http_retries),
                args.sns_http_min_delay.or(file.http_min_delay),
                args.sns_http_max_delay.or(file.http_max_delay),
            )?,
            email_retry: policy(
                "email",
                RetryPolicy::EMAIL_DEFAULT,
                args.sns_email_retries.or(file.email_retries),
                args.sns_email_min_delay.or(file.email_min_delay),
                args.sns_email_max_delay.or(file.email_max_delay),
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("20s"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("20"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("1.5m"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("6h"), Some(Duration::from_secs(6 * 3600)));
        for bad in ["", "s", "20 parsecs", "-1s", "1d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn defaults_are_aws_and_flags_beat_the_file() {
        let s = SnsSettings::resolve(SnsArgs::default(), None).unwrap();
        assert_eq!(s.http_retry, RetryPolicy::HTTP_DEFAULT);
        assert_eq!(s.email_retry, RetryPolicy::EMAIL_DEFAULT);
        assert_eq!((s.smtp_url, s.smtp_from.as_str()), (None, "lookout@localhost"));
        let file: SnsFileConfig =
            toml::from_str("smtp_url = \"smtp://mail:25\"\nhttp_retries = 5\nhttp_min_delay = \"1s\"\n").unwrap();
        let args = SnsArgs { sns_http_min_delay: Some("100ms".into()), ..SnsArgs::default() };
        let s = SnsSettings::resolve(args, Some(file)).unwrap();
        assert_eq!(s.smtp_url.as_deref(), Some("smtp://mail:25"));
        assert_eq!(s.http_retry.retries, 5);
        assert_eq!(s.http_retry.min_delay, Duration::from_millis(100));
        assert_eq!(s.http_retry.max_delay, Duration::from_secs(20));
    }

    #[test]
    fn bad_values_are_explained() {
        let args = SnsArgs { smtp_url: Some("mail.example.com:25".into()), ..SnsArgs::default() };
        assert!(SnsSettings::resolve(args, None).unwrap_err().to_string().contains("smtp://"));
        let args = SnsArgs { sns_email_min_delay: Some("soon".into()), ..SnsArgs::default() };
        assert!(format!("{:#}", SnsSettings::resolve(args, None).unwrap_err()).contains("--sns-email-min-delay"));
        assert!(toml::from_str::<SnsFileConfig>("smtp = \"x\"").is_err());
    }
}

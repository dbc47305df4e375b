//! Who may do what: the configured access keys (id, secret, policy), the policies (full access,
//! read-only, per-service and per-log-group-prefix grants), and the decision for one action.
//! Signature checking itself is `lookout_sigv4`; the front (`server.rs`) and the console ask
//! this module whether a verified key may perform an action. Secrets never reach a log: their
//! `Debug` prints `***`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Whether requests must be signed.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// `--no-auth`: nothing is verified; every request may do anything.
    Open,
    /// SigV4 on every API request, the console behind a login.
    SigV4(Arc<Keyring>),
}

impl AuthMode {
    pub fn keyring(&self) -> Option<&Keyring> {
        match self {
            AuthMode::Open => None,
            AuthMode::SigV4(k) => Some(k),
        }
    }
}

/// A secret access key: compared, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Constant-time equality with a candidate (the console's login).
    pub fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone)]
pub struct AccessKey {
    pub id: String,
    pub secret: Secret,
    pub policy: Policy,
    /// Requests per second this key may make (a token bucket), if limited.
    pub rate: Option<RateLimit>,
}

/// A token bucket's settings: `per_second` refill, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

/// One key's bucket: tokens left and when they were counted.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

impl RateLimit {
    /// Takes one token at `now`; `Err(seconds until one is there)` when the bucket is empty.
    fn take(&self, bucket: &mut Bucket, now: std::time::Instant) -> Result<(), f64> {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - bucket.tokens) / self.per_second)
        }
    }
}

/// The configured keys by id, and the rate-limit buckets of those that have one.
#[derive(Debug, Default)]
pub struct Keyring {
    keys: HashMap<String, Arc<AccessKey>>,
    buckets: HashMap<String, parking_lot::Mutex<Bucket>>,
}

impl Keyring {
    pub fn new(keys: Vec<AccessKey>) -> Keyring {
        let now = std::time::Instant::now();
        let buckets = keys
            .iter()
            .filter_map(|k| {
                k.rate.map(|r| (k.id.clone(), parking_lot::Mutex::new(Bucket { tokens: r.burst, at: now })))
            })
            .collect();
        Keyring { keys: keys.into_iter().map(|k| (k.id.clone(), Arc::new(k))).collect(), buckets }
    }

    /// Counts one request of `key` against its rate limit: `Err(seconds to wait)` when over it.
    pub fn admit(&self, key: &AccessKey) -> Result<(), f64> {
        match (key.rate, self.buckets.get(&key.id)) {
            (Some(rate), Some(bucket)) => rate.take(&mut bucket.lock(), std::time::Instant::now()),
            _ => Ok(()),
        }
    }
    pub fn get(&self, id: &str) -> Option<Arc<AccessKey>> {
        self.keys.get(id).cloned()
    }
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// What a key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Every operation of every service.
    Full,
    /// The reading operations of every service (Describe*, Get*, List*, Filter*, Test*), like
    /// AWS's *ReadOnlyAccess managed policies.
    ReadOnly,
    /// Allowed when any grant allows.
    Grants(Vec<Grant>),
}

/// One grant: some services, read or full access, optionally only log groups under prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `logs`, `ecs`, `events`, `sns`, `sts`; empty means every service.
    pub services: Vec<String>,
    pub access: Access,
    /// For CloudWatch Logs: only groups whose names start with one of these (empty: all groups).
    pub log_group_prefixes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Full,
}

/// One thing a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action<'a> {
    /// The IAM service prefix: `logs`, `ecs`, `events`, `sns`, `sts`.
    pub service: &'a str,
    /// The operation, e.g. `PutLogEvents`.
    pub operation: &'a str,
    /// The log group the operation names (CloudWatch Logs), or for DescribeLogGroups its prefix.
    pub log_group: Option<&'a str>,
}

impl<'a> Action<'a> {
    /// An operation that names no log group.
    pub fn of(service: &'a str, operation: &'a str) -> Action<'a> {
        Action { service, operation, log_group: None }
    }

    /// A CloudWatch Logs operation on one group.
    pub fn logs(operation: &'a str, group: &'a str) -> Action<'a> {
        Action { service: "logs", operation, log_group: Some(group) }
    }
}

/// Reading operations: they change nothing.
pub fn is_read(operation: &str) -> bool {
    ["Describe", "Get", "List", "Filter", "Test"].iter().any(|p| operation.starts_with(p))
}

impl Policy {
    pub fn allows(&self, action: &Action<'_>) -> bool {
        // Anyone with a valid key may ask who they are.
        if action.service == "sts" && action.operation == "GetCallerIdentity" {
            return true;
        }
        match self {
            Policy::Full => true,
            Policy::ReadOnly => is_read(action.operation),
            Policy::Grants(grants) => grants.iter().any(|g| g.allows(action)),
        }
    }
}

impl Grant {
    fn covers_service(&self, service: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == "*" || s == service)
    }

    fn allows(&self, action: &Action<'_>) -> bool {
        if !self.covers_service(action.service) {
            return false;
        }
        if self.access == Access::Read && !is_read(action.operation) {
            return false;
        }
        if action.service == "logs" && !self.log_group_prefixes.is_empty() {
            return action.log_group.is_some_and(|g| self.log_group_prefixes.iter().any(|p| g.starts_with(p.as_str())));
        }
        true
    }
}

/// The principal of a request once verified: a key (and its policy), or anyone when auth is off.
#[derive(Debug, Clone)]
pub enum Principal {
    Anyone,
    Key(Arc<AccessKey>),
}

impl Principal {
    pub fn allows(&self, action: &Action<'_>) -> bool {
        match self {
            Principal::Anyone => true,
            Principal::Key(k) => k.policy.allows(action),
        }
    }

    /// The IAM-style name AWS puts in AccessDenied messages.
    pub fn arn(&self, account_id: &str) -> String {
        match self {
            Principal::Anyone => format!("arn:aws:iam::{account_id}:root"),
            Principal::Key(k) => format!("arn:aws:iam::{account_id}:user/{}", k.id),
        }
    }
}

/// AWS's AccessDenied message: `User: ARN is not authorized to perform: logs:PutLogEvents on resource: ...`.
pub fn denied_message(principal: &Principal, account_id: &str, region: &str, action: &Action<'_>) -> String {
    let resource = match (action.service, action.log_group) {
        ("logs", Some(g)) => format!("arn:aws:logs:{region}:{account_id}:log-group:{g}"),
        (service, _) => format!("arn:aws:{service}:{region}:{account_id}:*"),
    };
    format!(
        "User: {} is not authorized to perform: {}:{} on resource: {resource}",
        principal.arn(account_id),
        action.service,
        action.operation
    )
}

/// The log group a CloudWatch Logs request body names: `logGroupName`, `logGroupIdentifier` (a
/// name or an ARN) or, for DescribeLogGroups, `logGroupNamePrefix`. Reads only what it needs.
pub fn log_group_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Names {
        #[serde(rename = "logGroupName")]
        name: Option<String>,
        #[serde(rename = "logGroupIdentifier")]
        identifier: Option<String>,
        #[serde(rename = "logGroupNamePrefix")]
        prefix: Option<String>,
        #[serde(rename = "resourceArn")]
        resource_arn: Option<String>,
    }
    let n: Names = serde_json::from_slice(body).ok()?;
    let from_arn = |arn: String| -> String {
        match arn.split_once(":log-group:") {
            Some((_, rest)) => rest.trim_end_matches(":*").to_owned(),
            None => arn,
        }
    };
    n.name.or(n.identifier.map(from_arn)).or(n.resource_arn.map(from_arn)).or(n.prefix)
}

/// Checks a request's SigV4 signature (header or presigned form) against the keyring.
/// `Ok((principal, service from the credential scope))`; with auth off, `(Anyone, scope service
/// if the request carries one)`.
pub fn authenticate(
    mode: &AuthMode,
    method: &str,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(Principal, Option<String>), lookout_sigv4::SigError> {
    let header_list: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
    let req = lookout_sigv4::Request {
        method,
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &header_list,
        body,
    };
    match mode {
        AuthMode::Open => Ok((Principal::Anyone, scope_service(headers, uri))),
        AuthMode::SigV4(keys) => {
            let secret_for = |id: &str| keys.get(id).map(|k| k.secret.expose().to_owned());
            let v = lookout_sigv4::verify(&req, std::time::SystemTime::now(), &secret_for)?;
            let key = keys
                .get(&v.access_key_id)
                .ok_or_else(|| lookout_sigv4::SigError::UnknownKey(v.access_key_id.clone()))?;
            Ok((Principal::Key(key), Some(v.service)))
        }
    }
}

/// The service named by a request's credential scope, unverified (routing when auth is off).
fn scope_service(headers: &axum::http::HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    let from_header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split([',', ' ']).next())
        .map(str::to_owned);
    let from_query = || {
        uri.query().and_then(|q| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .ok()?
                .into_iter()
                .find(|(k, _)| k == "X-Amz-Credential")
                .map(|(_, v)| v)
        })
    };
    // key / date / region (may be empty for old SDKs) / service / aws4_request
    from_header.or_else(from_query).and_then(|c| c.split('/').nth(3).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act<'a>(service: &'a str, operation: &'a str, log_group: Option<&'a str>) -> Action<'a> {
        Action { service, operation, log_group }
    }

    #[test]
    fn read_only_reads_everything_and_writes_nothing() {
        let p = Policy::ReadOnly;
        for op in ["DescribeLogGroups", "GetLogEvents", "FilterLogEvents", "ListTasks", "TestEventPattern"] {
            assert!(p.allows(&act("logs", op, None)), "{op}");
        }
        for op in ["PutLogEvents", "CreateLogGroup", "RunTask", "StopTask", "PutRule", "Publish", "DeleteLogGroup"] {
            assert!(!p.allows(&act("logs", op, None)), "{op}");
        }
        assert!(p.allows(&act("sts", "GetCallerIdentity", None)));
    }

    #[test]
    fn grants_by_service_and_log_group_prefix() {
        let p = Policy::Grants(vec![
            Grant { services: vec!["logs".into()], access: Access::Full, log_group_prefixes: vec!["/team-a/".into()] },
            Grant { services: vec!["ecs".into()], access: Access::Read, log_group_prefixes: vec![] },
        ]);
        assert!(p.allows(&act("logs", "PutLogEvents", Some("/team-a/web"))));
        assert!(!p.allows(&act("logs", "PutLogEvents", Some("/team-b/web"))));
        assert!(!p.allows(&act("logs", "DescribeLogGroups", None)), "no prefix named: not within the grant");
        assert!(p.allows(&act("logs", "DescribeLogGroups", Some("/team-a/"))));
        assert!(p.allows(&act("ecs", "DescribeTasks", None)));
        assert!(!p.allows(&act("ecs", "RunTask", None)));
        assert!(!p.allows(&act("events", "ListRules", None)));
    }

    #[test]
    fn log_groups_are_read_from_names_identifiers_and_arns() {
        assert_eq!(log_group_of(br#"{"logGroupName":"/a","x":[1,2]}"#).as_deref(), Some("/a"));
        assert_eq!(
            log_group_of(br#"{"logGroupIdentifier":"arn:aws:logs:us-east-1:000000000000:log-group:/b:*"}"#).as_deref(),
            Some("/b")
        );
        assert_eq!(log_group_of(br#"{"logGroupNamePrefix":"/c"}"#).as_deref(), Some("/c"));
        assert_eq!(log_group_of(b"not json"), None);
    }

    #[test]
    fn secrets_compare_and_hide() {
        let s = Secret::new("wJalrXUtnFEMI");
        assert!(s.matches("wJalrXUtnFEMI"));
        assert!(!s.matches("wJalrXUtnFEMX") && !s.matches("short"));
        assert_eq!(format!("{s:?}"), "***");
    }

    #[test]
    fn denial_names_the_user_action_and_resource() {
        let key = AccessKey { id: "reader".into(), secret: Secret::new("x"), policy: Policy::ReadOnly, rate: None };
        let m = denied_message(
            &Principal::Key(Arc::new(key)),
            "000000000000",
            "us-east-1",
            &act("logs", "PutLogEvents", Some("/g")),
        );
        assert_eq!(
            m,
            "User: arn:aws:iam::000000000000:user/reader is not authorized to perform: logs:PutLogEvents on resource: arn:aws:logs:us-east-1:000000000000:log-group:/g"
        );
    }

    #[test]
    fn rate_limits_refill_and_say_how_long_to_wait() {
        let r = RateLimit { per_second: 2.0, burst: 3.0 };
        let t0 = std::time::Instant::now();
        let mut b = Bucket { tokens: 3.0, at: t0 };
        for _ in 0..3 {
            assert!(r.take(&mut b, t0).is_ok());
        }
        let wait = r.take(&mut b, t0).unwrap_err();
        assert!((wait - 0.5).abs() < 1e-9, "{wait}");
        assert!(r.take(&mut b, t0 + std::time::Duration::from_millis(500)).is_ok());
        assert!(r.take(&mut b, t0 + std::time::Duration::from_millis(500)).is_err());
        // A long pause refills only up to the burst.
        let later = t0 + std::time::Duration::from_secs(60);
        for _ in 0..3 {
            assert!(r.take(&mut b, later).is_ok());
        }
        assert!(r.take(&mut b, later).is_err());
    }
}

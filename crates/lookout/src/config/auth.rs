//! Authentication settings: `--no-auth`, `--access-keys` / `LOOKOUT_ACCESS_KEYS`, and in
//! `lookout.toml` `auth = "sigv4" | "none"` with `[[access_keys]]` tables (id, secret, policy or
//! grants). Without any key configured, lookout accepts the conventional local-development key
//! `test` / `test` (full access) and says so at start.

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::auth::{Access, AccessKey, Grant, Policy, RateLimit, Secret};

/// The key lookout accepts when none is configured.
pub const DEFAULT_KEY_ID: &str = "test";
pub const DEFAULT_KEY_SECRET: &str = "test";

#[derive(Debug, Default, clap::Args)]
pub struct AuthArgs {
    /// Accept every request without checking signatures, and open the console without a login
    /// (local development). The environment variable takes true/false, 1/0, yes/no or on/off.
    #[arg(long, env = "LOOKOUT_NO_AUTH", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_auth: bool,
    /// Access keys as `ID:SECRET[:POLICY]` separated by commas; POLICY is `full` (the default) or
    /// `read-only`. Replaces the file's keys. Per-service and per-log-group grants are set in
    /// lookout.toml. Prefer the environment variable: command lines are visible to other users.
    #[arg(long, env = "LOOKOUT_ACCESS_KEYS", value_name = "ID:SECRET[:POLICY],...", hide_env_values = true)]
    pub access_keys: Option<String>,
}

/// `[[access_keys]]` in lookout.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyFile {
    id: String,
    secret: String,
    /// `full` or `read-only`; not with `grants`.
    policy: Option<String>,
    grants: Option<Vec<GrantFile>>,
    /// Requests per second this key may make; over it, ThrottlingException (clients retry).
    requests_per_second: Option<f64>,
    /// Requests allowed at once before the rate applies (default: one second's worth, at least 1).
    burst: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantFile {
    /// `logs`, `ecs`, `events`, `sns`, `sts` or `*` (the default: every service).
    #[serde(default)]
    services: Vec<String>,
    /// `read` or `full`.
    access: String,
    /// CloudWatch Logs: only groups whose names start with one of these.
    #[serde(default)]
    log_group_prefixes: Vec<String>,
}

const SERVICES: [&str; 6] = ["logs", "ecs", "events", "sns", "sts", "*"];

fn policy_named(name: &str, key: &str) -> anyhow::Result<Policy> {
    match name {
        "full" => Ok(Policy::Full),
        "read-only" | "readonly" => Ok(Policy::ReadOnly),
        other => bail!("access key {key:?}: policy must be full or read-only (or give grants), not {other:?}"),
    }
}

fn check_key(id: &str, secret: &str) -> anyhow::Result<()> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        bail!("access key id {id:?} must be 1-128 letters, digits, '_' or '-'");
    }
    if secret.is_empty() {
        bail!("access key {id:?} has an empty secret");
    }
    Ok(())
}

impl AccessKeyFile {
    fn into_key(self) -> anyhow::Result<AccessKey> {
        check_key(&self.id, &self.secret)?;
        let policy = match (self.policy, self.grants) {
            (Some(_), Some(_)) => bail!("access key {:?}: give policy or grants, not both", self.id),
            (Some(p), None) => policy_named(&p, &self.id)?,
            (None, None) => Policy::Full,
            (None, Some(grants)) => {
                let mut out = Vec::with_capacity(grants.len());
                for g in grants {
                    if let Some(s) = g.services.iter().find(|s| !SERVICES.contains(&s.as_str())) {
                        bail!("access key {:?}: unknown service {s:?} in a grant (use {SERVICES:?})", self.id);
                    }
                    let access = match g.access.as_str() {
                        "read" => Access::Read,
                        "full" => Access::Full,
                        other => bail!("access key {:?}: grant access must be read or full, not {other:?}", self.id),
                    };
                    out.push(Grant { services: g.services, access, log_group_prefixes: g.log_group_prefixes });
                }
                Policy::Grants(out)
            }
        };
        let rate = match (self.requests_per_second, self.burst) {
            (None, None) => None,
            (None, Some(_)) => bail!("access key {:?}: burst needs requests_per_second", self.id),
            (Some(rps), _) if !(rps > 0.0 && rps.is_finite()) => {
                bail!("access key {:?}: requests_per_second must be a positive number", self.id)
            }
            (Some(rps), burst) => {
                Some(RateLimit { per_second: rps, burst: burst.map_or(rps.ceil().max(1.0), |b| f64::from(b.max(1))) })
            }
        };
        Ok(AccessKey { id: self.id, secret: Secret::new(self.secret), policy, rate })
    }
}

/// `ID:SECRET[:POLICY],...` (the secret may not contain `:` or `,` in this form).
pub fn parse_key_list(text: &str) -> anyhow::Result<Vec<AccessKey>> {
    let mut keys = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mut parts = item.splitn(3, ':');
        let (id, secret) = match (parts.next(), parts.next()) {
            (Some(id), Some(secret)) => (id, secret),
            _ => bail!("LOOKOUT_ACCESS_KEYS items are ID:SECRET[:POLICY]; one has no ':'"),
        };
        check_key(id, secret)?;
        let policy = policy_named(parts.next().unwrap_or("full"), id)?;
        keys.push(AccessKey { id: id.to_owned(), secret: Secret::new(secret), policy, rate: None });
    }
    if keys.is_empty() {
        bail!("LOOKOUT_ACCESS_KEYS / --access-keys names no key");
    }
    Ok(keys)
}

/// The resolved settings: `None` keys means auth is off.
#[derive(Debug)]
pub struct AuthSettings {
    pub keys: Option<Vec<AccessKey>>,
    /// No key was configured: the default `test` key is in use.
    pub default_key: bool,
}

pub fn resolve(
    args: AuthArgs,
    mode: Option<String>,
    file_keys: Option<Vec<AccessKeyFile>>,
) -> anyhow::Result<AuthSettings> {
    let open = match mode.as_deref() {
        None | Some("sigv4") => args.no_auth,
        Some("none") => true,
        Some(other) => bail!("auth in lookout.toml must be \"sigv4\" or \"none\", not {other:?}"),
    };
    if open {
        return Ok(AuthSettings { keys: None, default_key: false });
    }
    let keys = match (args.access_keys, file_keys) {
        (Some(list), _) => parse_key_list(&list).context("in --access-keys / LOOKOUT_ACCESS_KEYS")?,
        (None, Some(file)) => file.into_iter().map(AccessKeyFile::into_key).collect::<anyhow::Result<Vec<_>>>()?,
        (None, None) => vec![],
    };
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = keys.iter().find(|k| !seen.insert(k.id.clone())) {
        bail!("access key id {:?} is configured twice", dup.id);
    }
    if keys.is_empty() {
        let key = AccessKey {
            id: DEFAULT_KEY_ID.into(),
            secret: Secret::new(DEFAULT_KEY_SECRET),
            policy: Policy::Full,
            rate: None,
        };
        return Ok(AuthSettings { keys: Some(vec![key]), default_key: true });
    }
    Ok(AuthSettings { keys: Some(keys), default_key: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lists() {
        let keys = parse_key_list("admin:s3cret, reader:r:read-only").unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].policy, Policy::Full);
        assert_eq!(keys[1].policy, Policy::ReadOnly);
        assert!(parse_key_list("nocolon").is_err());
        assert!(parse_key_list("a:b:admin").is_err());
        assert!(parse_key_list("bad id:x").is_err());
        assert!(!format!("{keys:?}").contains("s3cret"), "secrets never print");
    }

    #[test]
    fn defaults_open_mode_and_file_grants() {
        let s = resolve(AuthArgs::default(), None, None).unwrap();
        assert!(s.default_key);
        assert_eq!(s.keys.unwrap()[0].id, "test");
        let s = resolve(AuthArgs { no_auth: true, ..Default::default() }, None, None).unwrap();
        assert!(s.keys.is_none());
        assert!(resolve(AuthArgs::default(), Some("none".into()), None).unwrap().keys.is_none());
        assert!(resolve(AuthArgs::default(), Some("iam".into()), None).is_err());
        let file: Vec<AccessKeyFile> = toml::from_str::<toml::Table>(
            r#"
            [[k]]
            id = "team-a"
            secret = "x"
            grants = [{ services = ["logs"], access = "full", log_group_prefixes = ["/team-a/"] }]
            "#,
        )
        .unwrap()["k"]
            .clone()
            .try_into()
            .unwrap();
        let s = resolve(AuthArgs::default(), None, Some(file)).unwrap();
        assert!(!s.default_key);
        assert!(matches!(&s.keys.unwrap()[0].policy, Policy::Grants(g) if g[0].log_group_prefixes == ["/team-a/"]));
    }
}

//! `lookout serve` configuration: flags, then `LOOKOUT_*` environment variables (both through
//! clap), then `lookout.toml`, then defaults. Owns nothing else.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

pub mod auth;
pub mod sns;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4566";
pub const DEFAULT_DATA_DIR: &str = "./lookout-data";
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";
pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_CONFIG_FILE: &str = "lookout.toml";

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on, for every API and /health.
    #[arg(long, env = "LOOKOUT_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Directory holding all of lookout's state (catalog, write-ahead log, parts). Created if missing.
    #[arg(long, env = "LOOKOUT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// AWS account id lookout answers as (in ARNs and STS GetCallerIdentity).
    #[arg(long, env = "LOOKOUT_ACCOUNT_ID", value_name = "ID")]
    pub account_id: Option<String>,
    /// AWS region lookout answers as (in ARNs).
    #[arg(long, env = "LOOKOUT_REGION", value_name = "REGION")]
    pub region: Option<String>,
    /// Configuration file; defaults to ./lookout.toml when it exists. Flags and environment win over it.
    #[arg(long, env = "LOOKOUT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Longest time, in seconds, that acknowledged events live only in the write-ahead log before
    /// being flushed into compressed parts (bounds restart time).
    #[arg(long, env = "LOOKOUT_FLUSH_INTERVAL_SECS", value_name = "SECS")]
    pub flush_interval_secs: Option<u64>,
    /// Memory, in MiB, of recent events that triggers a flush into parts.
    #[arg(long, env = "LOOKOUT_FLUSH_MIB", value_name = "MIB")]
    pub flush_mib: Option<usize>,
    /// Memory, in MiB, of acknowledged events not yet flushed into parts beyond which
    /// PutLogEvents waits for the flusher (up to 2 s, then ThrottlingException, which clients
    /// retry) [default: 128]. A flush starts at half of it at the latest.
    #[arg(long, env = "LOOKOUT_MAX_UNFLUSHED_MIB", value_name = "MIB")]
    pub max_unflushed_mib: Option<usize>,
    /// Seconds a day of a log group must go without new data before its parts, written fast at
    /// flush time, are recompressed harder in the background (smaller on disk, no slower to scan);
    /// 0 never recompresses [default: 300].
    #[arg(long, env = "LOOKOUT_COMPACT_AT_REST_AFTER_SECS", value_name = "SECS")]
    pub compact_at_rest_after_secs: Option<u64>,
    /// PEM certificate (chain, leaf first) for HTTPS, served on the same port as plain HTTP: a
    /// connection that opens with a TLS ClientHello gets TLS. Requires --tls-key. Without both,
    /// lookout generates a self-signed certificate on first start and keeps it in
    /// <data-dir>/tls/cert.pem (its SHA-256 fingerprint is logged at start).
    #[arg(long, env = "LOOKOUT_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert. Requires --tls-cert.
    #[arg(long, env = "LOOKOUT_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP only: no certificate is loaded or generated, and a connection that opens
    /// with a TLS ClientHello is closed. The environment variable takes true/false, 1/0, yes/no or on/off.
    #[arg(long, env = "LOOKOUT_NO_TLS", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_tls: bool,
    /// What runs ECS tasks: `docker` (the Docker Engine API: Docker, or Podman's compatible
    /// socket), `process` (each container's command as a local child process; no image, no
    /// limits), or `auto` (the default: docker when an engine answers, else process).
    #[arg(long, env = "LOOKOUT_RUNTIME", value_name = "auto|docker|process")]
    pub runtime: Option<String>,
    /// The container engine's API: `unix:///path/to.sock` or `tcp://host:port`. Defaults to
    /// DOCKER_HOST, else /var/run/docker.sock if it exists, else /run/podman/podman.sock.
    #[arg(long, value_name = "URL")]
    pub docker_host: Option<String>,
    /// How long stopped tasks stay describable (DescribeTasks, ListTasks), in hours.
    #[arg(long, env = "LOOKOUT_STOPPED_TASK_RETENTION_HOURS", value_name = "HOURS")]
    pub stopped_task_retention_hours: Option<u64>,
    /// Where people and webhooks reach this lookout, for links in SNS messages (confirm,
    /// unsubscribe, signing certificate). Defaults to http://<listen address>.
    #[arg(long, env = "LOOKOUT_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub sns: Box<sns::SnsArgs>,
    #[command(flatten)]
    pub auth: auth::AuthArgs,
    /// First delay, in milliseconds, before an EventBridge delivery is retried; it doubles (with
    /// jitter) at each retry, up to 5 minutes, within each target's RetryPolicy.
    #[arg(long, env = "LOOKOUT_DELIVERY_RETRY_BASE_MS", value_name = "MS")]
    pub delivery_retry_base_ms: Option<u64>,
    #[command(flatten)]
    pub connections: Box<ConnectionArgs>,
}

/// Slow-client protection: deadlines and the connection cap (`ConnectionLimits`).
#[derive(Debug, Default, clap::Args)]
pub struct ConnectionArgs {
    /// Longest a connection may go without sending a complete request head (an idle keep-alive
    /// connection, or a client sending its headers slowly) before it is closed [default: 60].
    #[arg(long, env = "LOOKOUT_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Longest a request body may take to arrive, counted from its head; past it the request is
    /// answered 408 RequestTimeoutException [default: 60].
    #[arg(long, env = "LOOKOUT_BODY_TIMEOUT_SECS", value_name = "SECS")]
    pub body_timeout_secs: Option<u64>,
    /// Longest a response may wait on a client that does not read it before the connection is
    /// closed [default: 30].
    #[arg(long, env = "LOOKOUT_WRITE_TIMEOUT_SECS", value_name = "SECS")]
    pub write_timeout_secs: Option<u64>,
    /// Most connections served at once; past it, new connections wait in the listen queue [default: 4096].
    #[arg(long, env = "LOOKOUT_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
}

/// What `lookout.toml` may set (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    account_id: Option<String>,
    region: Option<String>,
    flush_interval_secs: Option<u64>,
    flush_mib: Option<usize>,
    max_unflushed_mib: Option<usize>,
    compact_at_rest_after_secs: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    no_tls: Option<bool>,
    runtime: Option<String>,
    docker_host: Option<String>,
    stopped_task_retention_hours: Option<u64>,
    public_url: Option<String>,
    sns: Option<sns::SnsFileConfig>,
    delivery_retry_base_ms: Option<u64>,
    idle_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    write_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    /// `sigv4` (the default) or `none`.
    auth: Option<String>,
    access_keys: Option<Vec<auth::AccessKeyFile>>,
}

/// Which container runtime runs tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeChoice {
    Auto,
    Docker,
    Process,
}

/// Where the TLS certificate comes from (TLS is always served on the listen port unless `Off`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// `--no-tls`: plain HTTP only.
    Off,
    /// A self-signed certificate generated on first start and kept in `<data-dir>/tls/`.
    Generated,
    /// `--tls-cert` and `--tls-key`.
    Files { cert: PathBuf, key: PathBuf },
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub account_id: String,
    pub region: String,
    pub flush_interval: Duration,
    pub flush_bytes: usize,
    pub max_unflushed_bytes: usize,
    /// None: never recompress partitions at rest.
    pub compact_at_rest_after: Option<Duration>,
    pub tls: TlsMode,
    pub runtime: RuntimeChoice,
    /// `--docker-host` or the file's `docker_host` (DOCKER_HOST is read where the engine is resolved).
    pub docker_host: Option<String>,
    pub stopped_task_retention: Duration,
    /// `--public-url` without a trailing slash.
    pub public_url: String,
    pub sns: sns::SnsSettings,
    pub delivery_retry_base: Duration,
    pub auth: crate::auth::AuthMode,
    /// No key was configured: the default `test` key is accepted.
    pub default_key: bool,
    pub connections: ConnectionLimits,
}

/// How long lookout waits on a client, and how many it serves at once (slow-client protection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Until a complete request head has arrived (idle keep-alive included).
    pub idle_timeout: Duration,
    /// For a request's body, counted from its head.
    pub body_timeout: Duration,
    /// For a response write that makes no progress.
    pub write_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

impl ConnectionLimits {
    fn resolve(args: &ConnectionArgs, file: &FileConfig) -> anyhow::Result<ConnectionLimits> {
        let default = ConnectionLimits::default();
        let secs = |flag: &str, arg: Option<u64>, file: Option<u64>, default: Duration| match arg.or(file) {
            None => Ok(default),
            Some(0) => bail!("--{flag} must be at least 1"),
            Some(s) => Ok(Duration::from_secs(s)),
        };
        let max_connections = args.max_connections.or(file.max_connections).unwrap_or(default.max_connections);
        if max_connections == 0 {
            bail!("--max-connections must be at least 1");
        }
        Ok(ConnectionLimits {
            idle_timeout: secs(
                "idle-timeout-secs",
                args.idle_timeout_secs,
                file.idle_timeout_secs,
                default.idle_timeout,
            )?,
            body_timeout: secs(
                "body-timeout-secs",
                args.body_timeout_secs,
                file.body_timeout_secs,
                default.body_timeout,
            )?,
            write_timeout: secs(
                "write-timeout-secs",
                args.write_timeout_secs,
                file.write_timeout_secs,
                default.write_timeout,
            )?,
            max_connections,
        })
    }
}

fn read_file_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration in {}", path.display()))
}

impl ServeConfig {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<ServeConfig> {
        let file = match &args.config {
            Some(path) => read_file_config(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => read_file_config(Path::new(DEFAULT_CONFIG_FILE))?,
            None => FileConfig::default(),
        };
        let connections = ConnectionLimits::resolve(&args.connections, &file)?;
        let listen_text = args.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text
            .parse()
            .with_context(|| format!("--listen must be ADDR:PORT such as 127.0.0.1:4566, not {listen_text:?}"))?;
        let account_id = args.account_id.or(file.account_id).unwrap_or_else(|| DEFAULT_ACCOUNT_ID.to_owned());
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("--account-id must be 12 digits, not {account_id:?}");
        }
        let region = args.region.or(file.region).unwrap_or_else(|| DEFAULT_REGION.to_owned());
        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            bail!("--region must look like us-east-1, not {region:?}");
        }
        let flush_interval_secs = args.flush_interval_secs.or(file.flush_interval_secs).unwrap_or(60);
        if flush_interval_secs == 0 {
            bail!("--flush-interval-secs must be at least 1");
        }
        let flush_mib = args.flush_mib.or(file.flush_mib).unwrap_or(64);
        if flush_mib == 0 {
            bail!("--flush-mib must be at least 1");
        }
        let max_unflushed_mib = args.max_unflushed_mib.or(file.max_unflushed_mib).unwrap_or(128);
        if max_unflushed_mib == 0 {
            bail!("--max-unflushed-mib must be at least 1");
        }
        let tls_cert = args.tls_cert.or(file.tls_cert);
        let tls_key = args.tls_key.or(file.tls_key);
        let no_tls = args.no_tls || file.no_tls.unwrap_or(false);
        let tls = match (no_tls, tls_cert, tls_key) {
            (true, None, None) => TlsMode::Off,
            (true, _, _) => bail!("--no-tls contradicts --tls-cert/--tls-key: give either, not both"),
            (false, None, None) => TlsMode::Generated,
            (false, Some(cert), Some(key)) => TlsMode::Files { cert, key },
            (false, Some(_), None) => {
                bail!("--tls-cert needs --tls-key (its private key): give both, or neither for a generated certificate")
            }
            (false, None, Some(_)) => {
                bail!("--tls-key needs --tls-cert (its certificate): give both, or neither for a generated certificate")
            }
        };
        let runtime = match args.runtime.or(file.runtime).as_deref() {
            None | Some("auto") => RuntimeChoice::Auto,
            Some("docker") => RuntimeChoice::Docker,
            Some("process") => RuntimeChoice::Process,
            Some(other) => bail!("--runtime must be auto, docker or process, not {other:?}"),
        };
        let retention_hours = args.stopped_task_retention_hours.or(file.stopped_task_retention_hours).unwrap_or(24);
        if retention_hours == 0 {
            bail!("--stopped-task-retention-hours must be at least 1 (clients poll stopped tasks for a while)");
        }
        let retry_base_ms = args.delivery_retry_base_ms.or(file.delivery_retry_base_ms).unwrap_or(1000);
        if retry_base_ms == 0 {
            bail!("--delivery-retry-base-ms must be at least 1");
        }
        let public_url = match args.public_url.or(file.public_url) {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                url.trim_end_matches('/').to_owned()
            }
            Some(url) => bail!("--public-url must start with http:// or https://, not {url:?}"),
            // An unspecified address (0.0.0.0) is no place to send people: name the loopback one.
            None if listen.ip().is_unspecified() => format!("http://127.0.0.1:{}", listen.port()),
            None => format!("http://{listen}"),
        };
        let sns = sns::SnsSettings::resolve(*args.sns, file.sns)?;
        let auth_settings = auth::resolve(args.auth, file.auth, file.access_keys)?;
        let default_key = auth_settings.default_key;
        let auth = match auth_settings.keys {
            None => crate::auth::AuthMode::Open,
            Some(keys) => crate::auth::AuthMode::SigV4(std::sync::Arc::new(crate::auth::Keyring::new(keys))),
        };
        Ok(ServeConfig {
            connections,
            auth,
            default_key,
            public_url,
            sns,
            delivery_retry_base: Duration::from_millis(retry_base_ms),
            runtime,
            docker_host: args.docker_host.or(file.docker_host),
            stopped_task_retention: Duration::from_secs(retention_hours * 3600),
            listen,
            data_dir: args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            account_id,
            region,
            flush_interval: Duration::from_secs(flush_interval_secs),
            flush_bytes: flush_mib << 20,
            max_unflushed_bytes: max_unflushed_mib << 20,
            compact_at_rest_after: match args.compact_at_rest_after_secs.or(file.compact_at_rest_after_secs) {
                Some(0) => None,
                Some(secs) => Some(Duration::from_secs(secs)),
                None => Some(lookout_logstore::DEFAULT_COMPACT_AT_REST_AFTER),
            },
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServeArgs {
        ServeArgs {
            listen: None,
            data_dir: None,
            account_id: None,
            region: None,
            config: None,
            flush_interval_secs: None,
            flush_mib: None,
            max_unflushed_mib: None,
            compact_at_rest_after_secs: None,
            tls_cert: None,
            tls_key: None,
            no_tls: false,
            runtime: None,
            docker_host: None,
            stopped_task_retention_hours: None,
            public_url: None,
            sns: Default::default(),
            delivery_retry_base_ms: None,
            connections: Default::default(),
            auth: Default::default(),
        }
    }

    #[test]
    fn runtime_choice_and_task_retention() {
        let c = ServeConfig::resolve(args()).unwrap();
        assert_eq!(c.runtime, RuntimeChoice::Auto);
        assert_eq!(c.stopped_task_retention, Duration::from_secs(24 * 3600));
        let mut a = args();
        a.runtime = Some("process".into());
        a.stopped_task_retention_hours = Some(2);
        let c = ServeConfig::resolve(a).unwrap();
        assert_eq!(c.runtime, RuntimeChoice::Process);
        assert_eq!(c.stopped_task_retention, Duration::from_secs(7200));
        let mut a = args();
        a.runtime = Some("kubernetes".into());
        assert!(ServeConfig::resolve(a).unwrap_err().to_string().contains("auto, docker or process"));
    }

    #[test]
    fn compaction_at_rest_defaults_to_five_minutes_and_zero_turns_it_off() {
        let c = ServeConfig::resolve(args()).unwrap();
        assert_eq!(c.compact_at_rest_after, Some(Duration::from_secs(300)));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lookout.toml");
        std::fs::write(&file, "compact_at_rest_after_secs = 0\n").unwrap();
        let mut a = args();
        a.config = Some(file);
        assert_eq!(ServeConfig::resolve(a).unwrap().compact_at_rest_after, None);
        let mut a = args();
        a.compact_at_rest_after_secs = Some(7);
        assert_eq!(ServeConfig::resolve(a).unwrap().compact_at_rest_after, Some(Duration::from_secs(7)));
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lookout.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9999\"\nregion = \"eu-west-1\"\n").unwrap();
        let mut a = args();
        a.config = Some(file);
        a.region = Some("ap-south-1".into());
        let c = ServeConfig::resolve(a).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.region, "ap-south-1");
        assert_eq!(c.account_id, DEFAULT_ACCOUNT_ID);
    }

    #[test]
    fn bad_values_are_explained() {
        let mut a = args();
        a.listen = Some("localhost".into());
        assert!(ServeConfig::resolve(a).unwrap_err().to_string().contains("ADDR:PORT"));
        let mut a = args();
        a.account_id = Some("12".into());
        assert!(ServeConfig::resolve(a).unwrap_err().to_string().contains("12 digits"));
    }

    #[test]
    fn connection_limits_default_and_come_from_flags_or_the_file() {
        assert_eq!(ServeConfig::resolve(args()).unwrap().connections, ConnectionLimits::default());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lookout.toml");
        std::fs::write(&file, "idle_timeout_secs = 5\nmax_connections = 10\nwrite_timeout_secs = 7\n").unwrap();
        let mut a = args();
        a.config = Some(file);
        a.connections.idle_timeout_secs = Some(3);
        a.connections.body_timeout_secs = Some(4);
        let c = ServeConfig::resolve(a).unwrap().connections;
        assert_eq!(
            c,
            ConnectionLimits {
                idle_timeout: Duration::from_secs(3),
                body_timeout: Duration::from_secs(4),
                write_timeout: Duration::from_secs(7),
                max_connections: 10,
            }
        );
        let mut a = args();
        a.connections.body_timeout_secs = Some(0);
        assert!(ServeConfig::resolve(a).unwrap_err().to_string().contains("--body-timeout-secs must be at least 1"));
        let mut a = args();
        a.connections.max_connections = Some(0);
        assert!(ServeConfig::resolve(a).unwrap_err().to_string().contains("--max-connections"));
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let mut a = args();
        a.config = Some(file);
        assert!(format!("{:#}", ServeConfig::resolve(a).unwrap_err()).contains("lisen"));
    }

    #[test]
    fn tls_is_generated_by_default() {
        assert_eq!(ServeConfig::resolve(args()).unwrap().tls, TlsMode::Generated);
        let mut a = args();
        a.no_tls = true;
        assert_eq!(ServeConfig::resolve(a).unwrap().tls, TlsMode::Off);
        let mut a = args();
        a.tls_cert = Some("c.pem".into());
        a.tls_key = Some("k.pem".into());
        assert_eq!(ServeConfig::resolve(a).unwrap().tls, TlsMode::Files { cert: "c.pem".into(), key: "k.pem".into() });
    }

    #[test]
    fn tls_cert_and_key_come_together() {
        let mut a = args();
        a.tls_cert = Some("c.pem".into());
        assert!(ServeConfig::resolve(a).unwrap_err().to_string().contains("--tls-cert needs --tls-key"));
        let mut a = args();
        a.tls_key = Some("k.pem".into());
        assert!(ServeConfig::resolve(a).unwrap_err().to_string().contains("--tls-key needs --tls-cert"));
        let mut a = args();
        a.no_tls = true;
        a.tls_cert = Some("c.pem".into());
        a.tls_key = Some("k.pem".into());
        assert!(ServeConfig::resolve(a).unwrap_err().to_string().contains("--no-tls contradicts"));
    }

    #[test]
    fn tls_keys_in_the_file_combine_with_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lookout.toml");
        std::fs::write(&file, "tls_cert = \"/etc/c.pem\"\n").unwrap();
        let mut a = args();
        a.config = Some(file.clone());
        assert!(ServeConfig::resolve(a).unwrap_err().to_string().contains("needs --tls-key"));
        let mut a = args();
        a.config = Some(file);
        a.tls_key = Some("/etc/k.pem".into());
        assert_eq!(
            ServeConfig::resolve(a).unwrap().tls,
            TlsMode::Files { cert: "/etc/c.pem".into(), key: "/etc/k.pem".into() }
        );
        let file = dir.path().join("off.toml");
        std::fs::write(&file, "no_tls = true\n").unwrap();
        let mut a = args();
        a.config = Some(file);
        assert_eq!(ServeConfig::resolve(a).unwrap().tls, TlsMode::Off);
    }
}

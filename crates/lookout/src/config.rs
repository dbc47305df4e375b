//! `lookout serve` configuration: flags, then `LOOKOUT_*` environment variables (both through
//! clap), then `lookout.toml`, then defaults. Owns nothing else.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

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
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub account_id: String,
    pub region: String,
    pub flush_interval: Duration,
    pub flush_bytes: usize,
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
        Ok(ServeConfig {
            listen,
            data_dir: args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            account_id,
            region,
            flush_interval: Duration::from_secs(flush_interval_secs),
            flush_bytes: flush_mib << 20,
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
        }
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
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let mut a = args();
        a.config = Some(file);
        assert!(format!("{:#}", ServeConfig::resolve(a).unwrap_err()).contains("lisen"));
    }
}

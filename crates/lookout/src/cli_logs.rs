//! `lookout logs ...`: groups, streams and tail (like `aws logs tail`) against a running server.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::client::{ClientError, LogsClient, DEFAULT_ENDPOINT};
use crate::time_util::{format_ms, now_ms, parse_since};

#[derive(Debug, clap::Subcommand)]
pub enum LogsCommand {
    /// List log groups, one name per line.
    Groups {
        /// Only groups whose name starts with this.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// List the streams of a log group, one name per line.
    Streams {
        group: String,
        /// Only streams whose name starts with this.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Print a group's events, oldest first: `TIME STREAM MESSAGE`; --follow keeps printing new ones.
    Tail {
        group: String,
        /// Keep polling for new events (about once a second) until interrupted.
        #[arg(long, short)]
        follow: bool,
        /// How far back to start: 10m, 2h, 3d, 1w, or an RFC 3339 time.
        #[arg(long, default_value = "10m")]
        since: String,
        /// A CloudWatch Logs filter pattern (e.g. ERROR, "?ERROR ?WARN", '{ $.status = 500 }').
        #[arg(long)]
        filter: Option<String>,
        /// Only streams whose name starts with this.
        #[arg(long)]
        stream_prefix: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// lookout's address.
    #[arg(long, env = "LOOKOUT_ENDPOINT", default_value = DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
    #[command(subcommand)]
    pub command: LogsCommand,
}

fn explain(err: ClientError, group: Option<&str>) -> anyhow::Error {
    match (&err, group) {
        (ClientError::Aws { code, .. }, Some(g)) if code == "ResourceNotFoundException" => {
            anyhow!("log group {g:?} does not exist (list them with `lookout logs groups`)")
        }
        _ => anyhow!(err),
    }
}

fn pages(
    client: &LogsClient,
    operation: &str,
    mut body: Value,
    list: &str,
    group: Option<&str>,
    mut each: impl FnMut(&Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    loop {
        let resp = client.call(operation, &body).map_err(|e| explain(e, group))?;
        for item in resp[list].as_array().into_iter().flatten() {
            each(item)?;
        }
        match resp["nextToken"].as_str() {
            Some(t) => body["nextToken"] = json!(t),
            None => return Ok(()),
        }
    }
}

pub fn run(args: LogsArgs) -> anyhow::Result<()> {
    let client = LogsClient::new(&args.endpoint);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.command {
        LogsCommand::Groups { prefix } => {
            let mut body = json!({});
            if let Some(p) = prefix {
                body["logGroupNamePrefix"] = json!(p);
            }
            pages(&client, "DescribeLogGroups", body, "logGroups", None, |g| {
                writeln!(out, "{}", g["logGroupName"].as_str().unwrap_or_default())?;
                Ok(())
            })
        }
        LogsCommand::Streams { group, prefix } => {
            let mut body = json!({ "logGroupName": group });
            if let Some(p) = prefix {
                body["logStreamNamePrefix"] = json!(p);
            }
            pages(&client, "DescribeLogStreams", body, "logStreams", Some(&group), |s| {
                writeln!(out, "{}", s["logStreamName"].as_str().unwrap_or_default())?;
                Ok(())
            })
        }
        LogsCommand::Tail { group, follow, since, filter, stream_prefix } => {
            let start = parse_since(&since, now_ms()).map_err(|e| anyhow!(e))?;
            tail(&client, &group, start, follow, filter.as_deref(), stream_prefix.as_deref(), &mut out)
        }
    }
}

/// Prints events from `start`, then (with `follow`) polls from the newest timestamp seen,
/// de-duplicating by eventId as `aws logs tail --follow` does.
fn tail(
    client: &LogsClient,
    group: &str,
    mut start: i64,
    follow: bool,
    filter: Option<&str>,
    stream_prefix: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    // Ids already printed whose timestamp is >= `start` (older ones can no longer come back).
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        let mut body = json!({ "logGroupName": group, "startTime": start, "interleaved": true });
        if let Some(f) = filter {
            body["filterPattern"] = json!(f);
        }
        if let Some(p) = stream_prefix {
            body["logStreamNamePrefix"] = json!(p);
        }
        let mut newest = start;
        let mut batch: Vec<(i64, String)> = Vec::new();
        pages(client, "FilterLogEvents", body, "events", Some(group), |e| {
            let id = e["eventId"].as_str().unwrap_or_default().to_owned();
            let ts = e["timestamp"].as_i64().unwrap_or(0);
            if seen.contains(&id) {
                return Ok(());
            }
            writeln!(
                out,
                "{} {} {}",
                format_ms(ts),
                e["logStreamName"].as_str().unwrap_or_default(),
                e["message"].as_str().unwrap_or_default().trim_end_matches('\n')
            )
            .context("cannot write to standard output")?;
            newest = newest.max(ts);
            batch.push((ts, id));
            Ok(())
        })?;
        out.flush()?;
        if !follow {
            return Ok(());
        }
        if newest > start {
            start = newest;
            seen.retain(|_| false);
        }
        seen.extend(batch.into_iter().filter(|(ts, _)| *ts >= start).map(|(_, id)| id));
        std::thread::sleep(Duration::from_millis(1000));
        if seen.len() > 1_000_000 {
            bail!("too many events share one timestamp to follow reliably");
        }
    }
}

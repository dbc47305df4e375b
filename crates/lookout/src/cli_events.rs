//! `lookout events ...`: why a rule does or does not match an event (`explain`), and the deliveries
//! of a running server — pending, finished, and the dead-letter store.

use std::io::Write;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::client::DEFAULT_ENDPOINT;
use crate::time_util::format_ms;

#[derive(Debug, clap::Subcommand)]
pub enum EventsCommand {
    /// Say, field by field, why an event matches a pattern or not. Exits 0 when it matches, 1 when
    /// it does not.
    Explain {
        /// A file holding the event pattern (JSON); `-` reads standard input.
        #[arg(long, conflicts_with = "rule", required_unless_present = "rule")]
        pattern: Option<String>,
        /// Use the pattern of this rule on the running server instead.
        #[arg(long)]
        rule: Option<String>,
        /// The rule's event bus.
        #[arg(long)]
        bus: Option<String>,
        /// A file holding the event (JSON); `-` reads standard input.
        #[arg(long)]
        event: String,
    },
    /// List the deliveries that ended in the dead-letter store, newest first.
    DeadLetters {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// List deliveries: pending (waiting for an attempt), or finished (succeeded or dead-lettered).
    Deliveries {
        #[arg(long, default_value = "finished", value_name = "pending|finished|dead-lettered")]
        state: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// lookout's address.
    #[arg(long, env = "LOOKOUT_ENDPOINT", default_value = DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
    #[command(subcommand)]
    pub command: EventsCommand,
}

fn read_arg(path: &str) -> anyhow::Result<String> {
    if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(60)).build()
}

/// A signed request to lookout's own JSON endpoints (`path` with its encoded query).
fn call(endpoint: &str, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let creds = crate::client::Credentials::from_env();
    let url = format!("{endpoint}{path}");
    let result = match body {
        Some(b) => crate::client::send_signed(
            &agent(),
            &creds,
            "events",
            method,
            &url,
            &[("content-type", "application/json")],
            b.to_string().as_bytes(),
        ),
        None => crate::client::send_signed(&agent(), &creds, "events", method, &url, &[], &[]),
    };
    match result.map_err(|e| *e) {
        Ok(r) => Ok(r.into_json()?),
        Err(ureq::Error::Status(_, r)) => {
            let v: Value = r.into_json().unwrap_or(Value::Null);
            Err(anyhow!("{}", v["error"].as_str().unwrap_or("lookout refused the request")))
        }
        Err(e) => Err(anyhow!(
            "cannot reach lookout at {endpoint}: {e} (is `lookout serve` running? set --endpoint or LOOKOUT_ENDPOINT)"
        )),
    }
}

pub fn run(args: EventsArgs) -> anyhow::Result<std::process::ExitCode> {
    let endpoint = args.endpoint.trim_end_matches('/').to_owned();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.command {
        EventsCommand::Explain { pattern, rule, bus, event } => {
            let event_text = read_arg(&event)?;
            let event: Value = serde_json::from_str(&event_text).with_context(|| format!("{event} is not JSON"))?;
            let result = match (pattern, rule) {
                (Some(p), _) => {
                    // No server needed for a pattern file.
                    let text = read_arg(&p)?;
                    let pattern = lookout_event_pattern::EventPattern::parse(&text).map_err(|e| anyhow!("{p}: {e}"))?;
                    let x = pattern.explain(&event);
                    json!({ "matched": x.matched, "report": x.to_string() })
                }
                (None, Some(r)) => {
                    let mut body = json!({ "rule": r, "event": event });
                    if let Some(b) = bus {
                        body["bus"] = json!(b);
                    }
                    call(&endpoint, "POST", "/_lookout/events/explain", Some(body))?
                }
                (None, None) => bail!("give --pattern FILE or --rule NAME"),
            };
            writeln!(out, "{}", result["report"].as_str().unwrap_or_default().trim_end())?;
            Ok(if result["matched"].as_bool() == Some(true) {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            })
        }
        EventsCommand::DeadLetters { limit } => {
            list(&endpoint, "dead-lettered", limit, &mut out)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        EventsCommand::Deliveries { state, limit } => {
            list(&endpoint, &state, limit, &mut out)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

fn list(endpoint: &str, state: &str, limit: usize, out: &mut impl Write) -> anyhow::Result<()> {
    let query = serde_urlencoded::to_string([("state", state), ("limit", &limit.to_string())])?;
    let v = call(endpoint, "GET", &format!("/_lookout/events/deliveries?{query}"), None)?;
    let list = v["deliveries"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        eprintln!("(no {state} deliveries)");
    }
    for d in &list {
        let when = d["finishedAt"].as_i64().or(d["nextAttemptAt"].as_i64()).or(d["createdAt"].as_i64()).unwrap_or(0);
        writeln!(
            out,
            "{}  {:<13}  rule {}  target {} ({})  attempts {}{}{}",
            format_ms(when),
            d["state"].as_str().unwrap_or_default(),
            d["rule"].as_str().unwrap_or_default(),
            d["targetId"].as_str().unwrap_or_default(),
            d["targetArn"].as_str().unwrap_or_default(),
            d["attempts"],
            d["errorCode"]
                .as_str()
                .map(|c| format!("  {c}: {}", d["errorMessage"].as_str().unwrap_or_default()))
                .unwrap_or_default(),
            d["exhaustedRetryCondition"].as_str().map(|c| format!("  [{c}]")).unwrap_or_default(),
        )?;
    }
    Ok(())
}

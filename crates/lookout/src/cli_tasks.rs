//! `lookout tasks ...`: run a task definition (and follow its output to the end), list recent
//! tasks, print a task's logs — through the ECS and CloudWatch Logs APIs of a running server.

use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::client::{ClientError, LogsClient, DEFAULT_ENDPOINT};
use crate::time_util::format_ms;

#[derive(Debug, clap::Subcommand)]
pub enum TasksCommand {
    /// Run a task definition (FAMILY, FAMILY:REVISION or its ARN) and print the task's id.
    /// With --follow, print its containers' output as it runs and exit with the essential
    /// container's exit code once the task stops.
    Run {
        task_definition: String,
        /// Print the task's logs until it stops, then how it ended.
        #[arg(long, short)]
        follow: bool,
        /// Replace the command of the (first) container: the remaining arguments after `--`.
        #[arg(last = true)]
        command: Vec<String>,
        /// Set an environment variable in every container: NAME=VALUE (repeatable).
        #[arg(long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// Recorded as the task's startedBy.
        #[arg(long, default_value = "lookout-cli")]
        started_by: String,
    },
    /// List recent tasks, newest first: id, definition, status, exit codes, duration, reason.
    List {
        /// Only running (or only stopped) tasks.
        #[arg(long, value_name = "RUNNING|STOPPED")]
        status: Option<String>,
        /// Only tasks of this family.
        #[arg(long)]
        family: Option<String>,
    },
    /// Print a task's logs (every container that logs with awslogs); --follow until it stops.
    Logs {
        /// Task id or ARN.
        task: String,
        #[arg(long, short)]
        follow: bool,
    },
    /// Stop a running task (SIGTERM, then SIGKILL after the container's stopTimeout).
    Stop {
        task: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct TasksArgs {
    /// lookout's address.
    #[arg(long, env = "LOOKOUT_ENDPOINT", default_value = DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
    /// The cluster (name or ARN).
    #[arg(long, default_value = "default", global = true)]
    pub cluster: String,
    #[command(subcommand)]
    pub command: TasksCommand,
}

struct Clients {
    ecs: LogsClient,
    logs: LogsClient,
    cluster: String,
}

impl Clients {
    fn ecs(&self, op: &str, body: Value) -> anyhow::Result<Value> {
        self.ecs.call(op, &body).map_err(|e| anyhow!(e))
    }

    fn describe(&self, task: &str) -> anyhow::Result<Value> {
        let r = self.ecs("DescribeTasks", json!({ "cluster": self.cluster, "tasks": [task] }))?;
        r["tasks"].get(0).cloned().ok_or_else(|| {
            anyhow!("no task {task:?} in cluster {:?} (list them with `lookout tasks list`)", self.cluster)
        })
    }
}

pub fn run(args: TasksArgs) -> anyhow::Result<std::process::ExitCode> {
    let c =
        Clients { ecs: LogsClient::ecs(&args.endpoint), logs: LogsClient::new(&args.endpoint), cluster: args.cluster };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.command {
        TasksCommand::Run { task_definition, follow, command, env, started_by } => {
            let def = c.ecs("DescribeTaskDefinition", json!({ "taskDefinition": task_definition }))?;
            let containers = def["taskDefinition"]["containerDefinitions"].as_array().cloned().unwrap_or_default();
            let environment: Vec<Value> = env
                .iter()
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| json!({ "name": k, "value": v }))
                        .ok_or_else(|| anyhow!("--env takes NAME=VALUE, not {kv:?}"))
                })
                .collect::<anyhow::Result<_>>()?;
            let overrides: Vec<Value> = containers
                .iter()
                .enumerate()
                .filter(|(i, _)| !environment.is_empty() || (*i == 0 && !command.is_empty()))
                .map(|(i, cd)| {
                    let mut o = json!({ "name": cd["name"], "environment": environment });
                    if i == 0 && !command.is_empty() {
                        o["command"] = json!(command);
                    }
                    o
                })
                .collect();
            let r = c.ecs(
                "RunTask",
                json!({
                    "cluster": c.cluster,
                    "taskDefinition": task_definition,
                    "startedBy": started_by,
                    "overrides": { "containerOverrides": overrides },
                }),
            )?;
            if let Some(f) = r["failures"].as_array().and_then(|f| f.first()) {
                bail!("RunTask failed: {} ({})", f["reason"], f["arn"]);
            }
            let task = &r["tasks"][0];
            let arn = task["taskArn"].as_str().unwrap_or_default().to_owned();
            let id = arn.rsplit('/').next().unwrap_or_default().to_owned();
            if !follow {
                writeln!(out, "{id}")?;
                return Ok(std::process::ExitCode::SUCCESS);
            }
            eprintln!("task {id} started ({})", task["taskDefinitionArn"].as_str().unwrap_or_default());
            let done = follow_logs(&c, &arn, &containers, true, &mut out)?;
            Ok(report_end(&done, &containers))
        }
        TasksCommand::List { status, family } => {
            let statuses = match status.as_deref() {
                None => vec!["RUNNING", "STOPPED"],
                Some(s) if s.eq_ignore_ascii_case("running") => vec!["RUNNING"],
                Some(s) if s.eq_ignore_ascii_case("stopped") => vec!["STOPPED"],
                Some(s) => bail!("--status takes RUNNING or STOPPED, not {s:?}"),
            };
            let mut arns: Vec<String> = Vec::new();
            for s in statuses {
                let mut body = json!({ "cluster": c.cluster, "desiredStatus": s });
                if let Some(f) = &family {
                    body["family"] = json!(f);
                }
                loop {
                    let r = c.ecs("ListTasks", body.clone())?;
                    arns.extend(
                        r["taskArns"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(str::to_owned)),
                    );
                    match r["nextToken"].as_str() {
                        Some(t) => body["nextToken"] = json!(t),
                        None => break,
                    }
                }
            }
            let mut tasks: Vec<Value> = Vec::new();
            for chunk in arns.chunks(100) {
                let r = c.ecs("DescribeTasks", json!({ "cluster": c.cluster, "tasks": chunk }))?;
                tasks.extend(r["tasks"].as_array().cloned().unwrap_or_default());
            }
            tasks.sort_by(|a, b| {
                b["createdAt"].as_f64().partial_cmp(&a["createdAt"].as_f64()).unwrap_or(std::cmp::Ordering::Equal)
            });
            writeln!(
                out,
                "{:<32}  {:<24}  {:<14}  {:<8}  {:<23}  {:>8}  REASON",
                "TASK", "DEFINITION", "STATUS", "EXIT", "CREATED", "DURATION"
            )?;
            for t in &tasks {
                writeln!(out, "{}", list_row(t))?;
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        TasksCommand::Logs { task, follow } => {
            let t = c.describe(&task)?;
            let arn = t["taskArn"].as_str().unwrap_or_default().to_owned();
            let def = c.ecs("DescribeTaskDefinition", json!({ "taskDefinition": t["taskDefinitionArn"] }))?;
            let containers = def["taskDefinition"]["containerDefinitions"].as_array().cloned().unwrap_or_default();
            follow_logs(&c, &arn, &containers, follow, &mut out)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        TasksCommand::Stop { task, reason } => {
            let mut body = json!({ "cluster": c.cluster, "task": task });
            if let Some(r) = reason {
                body["reason"] = json!(r);
            }
            let r = c.ecs.call("StopTask", &body).map_err(|e| match e {
                ClientError::Aws { code, .. } if code == "InvalidParameterException" => {
                    anyhow!("no task {task:?} in cluster {:?}", c.cluster)
                }
                other => anyhow!(other),
            })?;
            writeln!(
                out,
                "{} {}",
                r["task"]["taskArn"].as_str().unwrap_or_default(),
                r["task"]["desiredStatus"].as_str().unwrap_or_default()
            )?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

fn list_row(t: &Value) -> String {
    let id = t["taskArn"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default();
    let def = t["taskDefinitionArn"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default();
    let exits: Vec<String> = t["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["exitCode"].as_i64().map(|e| e.to_string()))
        .collect();
    let created = t["createdAt"].as_f64().unwrap_or(0.0);
    let end = t["stoppedAt"].as_f64().unwrap_or_else(|| crate::time_util::now_ms() as f64 / 1000.0);
    let reason = t["stoppedReason"].as_str().unwrap_or("");
    format!(
        "{:<32}  {:<24}  {:<14}  {:<8}  {:<23}  {:>7.1}s  {}",
        id,
        def,
        t["lastStatus"].as_str().unwrap_or_default(),
        if exits.is_empty() { "-".to_owned() } else { exits.join(",") },
        format_ms((created * 1000.0) as i64),
        (end - created).max(0.0),
        reason
    )
}

/// The log streams of a task: (container name, group, stream) for each awslogs container.
fn streams_of(task_arn: &str, containers: &[Value]) -> Vec<(String, String, String)> {
    let id = task_arn.rsplit('/').next().unwrap_or_default();
    containers
        .iter()
        .filter(|c| c["logConfiguration"]["logDriver"] == "awslogs")
        .filter_map(|c| {
            let name = c["name"].as_str()?.to_owned();
            let opts = &c["logConfiguration"]["options"];
            let group = opts["awslogs-group"].as_str()?.to_owned();
            let stream = match opts["awslogs-stream-prefix"].as_str().filter(|p| !p.is_empty()) {
                Some(p) => format!("{p}/{name}/{id}"),
                None => format!("{name}/{id}"),
            };
            Some((name, group, stream))
        })
        .collect()
}

/// Prints every stream's events from the start; with `follow`, keeps polling until the task has
/// stopped and its output is drained. Returns the task as last described.
fn follow_logs(
    c: &Clients,
    task_arn: &str,
    containers: &[Value],
    follow: bool,
    out: &mut impl Write,
) -> anyhow::Result<Value> {
    let streams = streams_of(task_arn, containers);
    if streams.is_empty() {
        eprintln!("(no container of this task logs with the awslogs driver)");
    }
    let prefix_names = streams.len() > 1;
    let mut tokens: Vec<Option<String>> = vec![None; streams.len()];
    loop {
        // Read the status first: output written before STOPPED is stored before STOPPED.
        let task = c.describe(task_arn)?;
        let stopped = task["lastStatus"] == "STOPPED";
        for (i, (name, group, stream)) in streams.iter().enumerate() {
            loop {
                let mut body = json!({ "logGroupName": group, "logStreamName": stream, "startFromHead": true });
                if let Some(t) = &tokens[i] {
                    body["nextToken"] = json!(t);
                }
                let r = match c.logs.call("GetLogEvents", &body) {
                    Ok(r) => r,
                    // Not created yet (the task is starting), or never (it failed to start).
                    Err(ClientError::Aws { code, .. }) if code == "ResourceNotFoundException" => break,
                    Err(e) => return Err(anyhow!(e)),
                };
                let events = r["events"].as_array().cloned().unwrap_or_default();
                for e in &events {
                    let msg = e["message"].as_str().unwrap_or_default();
                    if prefix_names { writeln!(out, "{name} | {msg}") } else { writeln!(out, "{msg}") }
                        .context("cannot write to standard output")?;
                }
                let next = r["nextForwardToken"].as_str().map(str::to_owned);
                let same = next == tokens[i];
                tokens[i] = next;
                if events.is_empty() || same {
                    break;
                }
            }
        }
        out.flush()?;
        if !follow || stopped {
            return Ok(task);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Prints how a task ended and gives the exit code the CLI should end with: the first essential
/// container's code (1 when unknown, as ECS clients count it; 1 when the task failed to start).
fn report_end(task: &Value, definitions: &[Value]) -> std::process::ExitCode {
    let id = task["taskArn"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default();
    let containers = task["containers"].as_array().cloned().unwrap_or_default();
    let codes: Vec<String> = containers
        .iter()
        .map(|c| {
            format!(
                "{} exited {}{}",
                c["name"].as_str().unwrap_or_default(),
                c["exitCode"].as_i64().map_or("without an exit code".to_owned(), |e| e.to_string()),
                c["reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default()
            )
        })
        .collect();
    eprintln!(
        "task {id} {}: {} — {}",
        task["lastStatus"].as_str().unwrap_or_default(),
        task["stoppedReason"].as_str().unwrap_or_default(),
        codes.join(", ")
    );
    let failed_to_start = task["stopCode"] == "TaskFailedToStart";
    let essential =
        |c: &&Value| definitions.iter().any(|d| d["name"] == c["name"] && d["essential"].as_bool().unwrap_or(true));
    let code = containers.iter().find(essential).map_or(1, |c| c["exitCode"].as_i64().unwrap_or(1));
    let code = if failed_to_start { 1 } else { code };
    std::process::ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}

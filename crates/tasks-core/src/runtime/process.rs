//! The local-process runtime, for hosts without a container engine: a container's `entryPoint` +
//! `command` runs as a child process (in its own process group) with `PATH` and the task's
//! environment, in its working directory. The image is not used. Its stdout and stderr are read
//! line by line, stamped when read.
//!
//! What it cannot do, by nature: apply cpu/memory limits, or reattach after lookout restarts (the
//! pipes die with lookout). Each started process leaves `<state dir>/<id>` holding its pid and start
//! time, so a restarted lookout can tell its orphans from unrelated processes that reuse the pid:
//! `inspect` kills such an orphan's process group and reports it exited with no exit code and a
//! reason that says why.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use crate::now_ms;
use async_trait::async_trait;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch, Mutex};

use super::{
    finish_lines, split_lines, ContainerRuntime, ContainerSpec, ContainerState, ExitStatus, OutputLine, OutputStream,
    RuntimeError,
};

/// Bound on the output channel (lines): a reader that falls behind slows the child, not memory.
const OUTPUT_CHANNEL: usize = 4096;

struct Proc {
    spec: ContainerSpec,
    pid: Option<u32>,
    started_at_ms: Option<i64>,
    /// Taken by the first `follow_output`.
    output: Option<mpsc::Receiver<OutputLine>>,
    /// Set once the child has exited.
    exit: watch::Receiver<Option<ExitStatus>>,
    exit_tx: Option<watch::Sender<Option<ExitStatus>>>,
    child: Option<Child>,
}

pub struct ProcessRuntime {
    procs: Mutex<HashMap<String, Arc<Mutex<Proc>>>>,
    /// One small file per started process: `<pid> <start time>`.
    state_dir: std::path::PathBuf,
}

impl ProcessRuntime {
    pub fn new(state_dir: std::path::PathBuf) -> std::io::Result<ProcessRuntime> {
        std::fs::create_dir_all(&state_dir)?;
        Ok(ProcessRuntime { procs: Mutex::new(HashMap::new()), state_dir })
    }

    fn state_file(&self, id: &str) -> Option<std::path::PathBuf> {
        // Ids are ours (`proc-<uuid>`); anything else never names a file.
        let ok = id.starts_with("proc-") && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| self.state_dir.join(id))
    }

    async fn get(&self, id: &str) -> Option<Arc<Mutex<Proc>>> {
        self.procs.lock().await.get(id).cloned()
    }
}

/// Field 22 of `/proc/<pid>/stat`: the process's start time in clock ticks since boot.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

fn parse_state(text: &str) -> Option<(u32, u64)> {
    let (pid, start) = text.trim().split_once(' ')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

fn exit_status_of(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    let (code, reason) = match (status.code(), status.signal()) {
        (Some(c), _) => (Some(c), None),
        (None, Some(sig)) => (Some(128 + sig), Some(format!("killed by signal {sig}"))),
        (None, None) => (None, Some("the process ended without an exit code".to_owned())),
    };
    ExitStatus { exit_code: code, reason, finished_at_ms: Some(now_ms()) }
}

async fn pump<R: tokio::io::AsyncRead + Unpin>(mut reader: R, stream: OutputStream, tx: mpsc::Sender<OutputLine>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = Vec::new();
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let ts = now_ms();
        let mut lines = Vec::new();
        split_lines(&mut pending, &buf[..n], |l| lines.push(l));
        // A line without its end is cut at 256 KiB rather than held without bound.
        if pending.len() > 256 * 1024 {
            lines.push(String::from_utf8_lossy(&pending).into_owned());
            pending.clear();
        }
        for line in lines {
            if tx.send(OutputLine { timestamp_ms: ts, stream, line }).await.is_err() {
                return;
            }
        }
    }
    let mut rest = Vec::new();
    finish_lines(&mut pending, |l| rest.push(l));
    for line in rest {
        let _ = tx.send(OutputLine { timestamp_ms: now_ms(), stream, line }).await;
    }
}

#[async_trait]
impl ContainerRuntime for ProcessRuntime {
    fn kind(&self) -> &'static str {
        "process"
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let argv: Vec<String> =
            spec.entry_point.iter().flatten().chain(spec.command.iter().flatten()).cloned().collect();
        if argv.is_empty() {
            return Err(RuntimeError::CannotStart(format!(
                "CannotStartContainerError: container {} has neither entryPoint nor command, and the local-process runtime has no image to take one from",
                spec.runtime_name
            )));
        }
        let id = format!("proc-{}", uuid::Uuid::new_v4().simple());
        let (exit_tx, exit) = watch::channel(None);
        let proc = Proc {
            spec: spec.clone(),
            pid: None,
            started_at_ms: None,
            output: None,
            exit,
            exit_tx: Some(exit_tx),
            child: None,
        };
        self.procs.lock().await.insert(id.clone(), Arc::new(Mutex::new(proc)));
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let proc = self.get(id).await.ok_or_else(|| RuntimeError::NoSuchContainer(id.to_owned()))?;
        let mut p = proc.lock().await;
        if p.pid.is_some() {
            return Ok(());
        }
        let argv: Vec<String> =
            p.spec.entry_point.iter().flatten().chain(p.spec.command.iter().flatten()).cloned().collect();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()))
            .envs(p.spec.environment.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        if let Some(dir) = &p.spec.working_directory {
            if !std::path::Path::new(dir).is_dir() {
                return Err(RuntimeError::CannotStart(format!(
                    "CannotStartContainerError: working directory {dir:?} does not exist on this host"
                )));
            }
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|e| {
            RuntimeError::CannotStart(format!("CannotStartContainerError: cannot run {:?}: {e}", argv[0]))
        })?;
        let pid = child.id().unwrap_or(0);
        if let (Some(path), Some(start)) = (self.state_file(id), process_start_time(pid)) {
            if let Err(e) = std::fs::write(&path, format!("{pid} {start}")) {
                tracing::warn!(path = %path.display(), error = %e, "cannot record a process for a later restart");
            }
        }
        let (tx, rx) = mpsc::channel(OUTPUT_CHANNEL);
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        tokio::spawn(pump(stdout, OutputStream::Stdout, tx.clone()));
        tokio::spawn(pump(stderr, OutputStream::Stderr, tx));
        p.pid = Some(pid);
        p.started_at_ms = Some(now_ms());
        p.output = Some(rx);
        p.child = Some(child);
        Ok(())
    }

    async fn follow_output(
        &self,
        id: &str,
        _since_ms: Option<i64>,
    ) -> Result<mpsc::Receiver<OutputLine>, RuntimeError> {
        let proc = self.get(id).await.ok_or_else(|| RuntimeError::NoSuchContainer(id.to_owned()))?;
        let mut p = proc.lock().await;
        p.output.take().ok_or_else(|| {
            RuntimeError::Other(format!("the output of {id} is already followed, or the process never started"))
        })
    }

    async fn wait(&self, id: &str) -> Result<ExitStatus, RuntimeError> {
        let proc = self.get(id).await.ok_or_else(|| RuntimeError::NoSuchContainer(id.to_owned()))?;
        let (child, exit_tx, mut exit) = {
            let mut p = proc.lock().await;
            (p.child.take(), p.exit_tx.take(), p.exit.clone())
        };
        if let (Some(mut child), Some(exit_tx)) = (child, exit_tx) {
            // The first waiter reaps the child and tells every other waiter.
            let status = match child.wait().await {
                Ok(s) => exit_status_of(s),
                Err(e) => ExitStatus {
                    exit_code: None,
                    reason: Some(format!("cannot wait for the process: {e}")),
                    finished_at_ms: Some(now_ms()),
                },
            };
            let _ = exit_tx.send(Some(status.clone()));
            return Ok(status);
        }
        loop {
            if let Some(s) = exit.borrow().clone() {
                return Ok(s);
            }
            if exit.changed().await.is_err() {
                return Err(RuntimeError::Other(format!("{id} was never started")));
            }
        }
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let proc = self.get(id).await.ok_or_else(|| RuntimeError::NoSuchContainer(id.to_owned()))?;
        let (pid, mut exit) = {
            let p = proc.lock().await;
            (p.pid, p.exit.clone())
        };
        let Some(pid) = pid else { return Ok(()) };
        if exit.borrow().is_some() {
            return Ok(());
        }
        let group = Pid::from_raw(pid as i32);
        let _ = killpg(group, Signal::SIGTERM);
        let exited = tokio::time::timeout(grace, async {
            while exit.borrow().is_none() {
                if exit.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        if exited.is_err() {
            let _ = killpg(group, Signal::SIGKILL);
        }
        Ok(())
    }

    async fn inspect(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        if let Some(proc) = self.get(id).await {
            let p = proc.lock().await;
            if let Some(s) = p.exit.borrow().clone() {
                return Ok(ContainerState::Exited(s));
            }
            return Ok(match p.pid {
                None => ContainerState::Created,
                Some(_) => ContainerState::Running { started_at_ms: p.started_at_ms },
            });
        }
        // Not ours in this run: an orphan of an earlier lookout, or gone.
        let recorded = self.state_file(id).and_then(|p| std::fs::read_to_string(p).ok());
        let Some((pid, start)) = recorded.as_deref().and_then(parse_state) else { return Ok(ContainerState::Gone) };
        if process_start_time(pid) != Some(start) {
            return Ok(ContainerState::Gone);
        }
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        Ok(ContainerState::Exited(ExitStatus {
            exit_code: None,
            reason: Some(
                "lookout restarted while this process ran; the local-process runtime cannot reattach to a process, so it was killed"
                    .to_owned(),
            ),
            finished_at_ms: Some(now_ms()),
        }))
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.procs.lock().await.remove(id);
        if let Some(path) = self.state_file(id) {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }
}

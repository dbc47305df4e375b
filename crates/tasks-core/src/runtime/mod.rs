//! `ContainerRuntime`: what the task supervisor needs from whatever runs containers — create,
//! start, follow output, wait, stop, inspect after a restart, remove. Two implementations:
//! `docker` (the Docker Engine API over a unix socket: Docker or Podman) and `process` (the
//! container's command as a local child process, for hosts without containers).
//!
//! Runtimes know nothing of ECS: no ARNs, no task states. They speak of one container at a time,
//! identified by the runtime's own id (a Docker container id, a process id).

pub mod docker;
pub mod process;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

/// Labels every container lookout starts carries, so that a restarted lookout finds its own.
pub const LABEL_TASK_ARN: &str = "lookout.task-arn";
pub const LABEL_CONTAINER_NAME: &str = "lookout.container-name";

/// One container to create.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// A name for the runtime's own listing (`lookout-<task id>-<container name>`, sanitized).
    pub runtime_name: String,
    pub image: String,
    /// Replaces the image's entrypoint when set.
    pub entry_point: Option<Vec<String>>,
    /// Replaces the image's command when set.
    pub command: Option<Vec<String>>,
    pub environment: Vec<(String, String)>,
    pub working_directory: Option<String>,
    /// ECS CPU units (1024 = one vCPU); applied as a CPU quota where the runtime can.
    pub cpu_units: Option<u32>,
    /// Hard memory limit in MiB; applied where the runtime can.
    pub memory_mib: Option<u64>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// One line a container wrote, without its line terminator, stamped with when it was written
/// (the engine's timestamp where it records one, else when lookout read it).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputLine {
    pub timestamp_ms: i64,
    pub stream: OutputStream,
    pub line: String,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ExitStatus {
    /// None when the runtime could not learn it (ECS clients read a missing code as a failure).
    pub exit_code: Option<i32>,
    /// Why, when there is more to say than the code (`OutOfMemoryError: Container killed due to memory usage`).
    pub reason: Option<String>,
    pub finished_at_ms: Option<i64>,
}

/// What a runtime knows of a container it was asked about after a restart.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerState {
    /// Created, not started.
    Created,
    Running {
        started_at_ms: Option<i64>,
    },
    Exited(ExitStatus),
    /// The runtime has no such container (removed, or the host restarted).
    Gone,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum RuntimeError {
    /// The image is not present and cannot be pulled. The message names the image.
    #[error("{0}")]
    ImageNotFound(String),
    /// The runtime refused the container as specified (bad command, bad working directory...).
    #[error("{0}")]
    CannotStart(String),
    /// The runtime itself cannot be reached (socket gone, engine down).
    #[error("{0}")]
    Unavailable(String),
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("{0}")]
    Other(String),
}

/// Something that runs containers. All methods are cancel-safe enough for a supervisor task:
/// dropping a future leaves the container as it was.
#[async_trait]
pub trait ContainerRuntime: Send + Sync + 'static {
    /// `docker` or `process`, for logs and error messages.
    fn kind(&self) -> &'static str;

    /// Creates a container (not started) and returns the runtime's id for it. A missing image is
    /// `ImageNotFound`; the runtime may try to pull it first.
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;

    async fn start(&self, id: &str) -> Result<(), RuntimeError>;

    /// Follows the container's stdout and stderr from `since_ms` (inclusive; None = from the
    /// beginning) until it exits. Lines arrive in the order they were written; the channel closes
    /// when the output ends. Lines longer than the runtime's buffer may arrive split.
    async fn follow_output(&self, id: &str, since_ms: Option<i64>) -> Result<mpsc::Receiver<OutputLine>, RuntimeError>;

    /// Waits until the container exits.
    async fn wait(&self, id: &str) -> Result<ExitStatus, RuntimeError>;

    /// SIGTERM, then SIGKILL after `grace` if it is still running. Stopping a stopped container is fine.
    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError>;

    async fn inspect(&self, id: &str) -> Result<ContainerState, RuntimeError>;

    /// Removes a stopped container and what the runtime kept of it. Removing a gone one is fine.
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;
}

/// Name a runtime can use for a container: lowercase alphanumerics, `-`, `_`, `.`.
pub fn runtime_name(task_id: &str, container_name: &str) -> String {
    let clean: String = container_name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' })
        .collect();
    format!("lookout-{task_id}-{clean}")
}

/// Splits output bytes into lines: `\n` ends a line (a `\r` before it is dropped), a trailing
/// partial line stays in `pending` until more bytes or the end. Invalid UTF-8 is replaced.
pub fn split_lines(pending: &mut Vec<u8>, bytes: &[u8], mut emit: impl FnMut(String)) {
    pending.extend_from_slice(bytes);
    let mut start = 0;
    while let Some(pos) = memchr::memchr(b'\n', &pending[start..]) {
        let end = start + pos;
        let line = &pending[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        emit(String::from_utf8_lossy(line).into_owned());
        start = end + 1;
    }
    pending.drain(..start);
}

/// Flushes what `split_lines` kept back once the output has ended.
pub fn finish_lines(pending: &mut Vec<u8>, mut emit: impl FnMut(String)) {
    if !pending.is_empty() {
        let line = pending.strip_suffix(b"\r").unwrap_or(pending);
        emit(String::from_utf8_lossy(line).into_owned());
        pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_and_crlf() {
        let mut pending = Vec::new();
        let mut out = Vec::new();
        split_lines(&mut pending, b"one\r\ntw", |l| out.push(l));
        split_lines(&mut pending, b"o\n\nthr", |l| out.push(l));
        finish_lines(&mut pending, |l| out.push(l));
        assert_eq!(out, ["one", "two", "", "thr"]);
        assert!(pending.is_empty());
    }

    #[test]
    fn runtime_names_are_safe() {
        assert_eq!(runtime_name("abc", "web app/1"), "lookout-abc-web_app_1");
    }
}

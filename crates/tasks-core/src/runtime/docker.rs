//! Docker Engine API runtime: `DockerRuntime` runs each container through the Engine API of Docker
//! or of Podman's Docker-compatible service (`podman system service`), over a unix socket or plain
//! HTTP. It owns finding the engine (`resolve_docker_host`), negotiating the API version, turning a
//! `ContainerSpec` into a create request (limits included where the engine takes them), following
//! the multiplexed, timestamped log stream as lines, and mapping the engine's answers onto
//! `RuntimeError` and `ContainerState`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::now_ms;
use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::errors::Error as EngineError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, LogsOptions, RemoveContainerOptions, StopContainerOptions,
    WaitContainerOptions,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::StreamExt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::{
    finish_lines, split_lines, ContainerRuntime, ContainerSpec, ContainerState, ExitStatus, OutputLine, OutputStream,
    RuntimeError,
};

/// Docker's own socket, used when nothing else is configured and it exists.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// Where `scripts/setup-podman.sh` starts Podman's Docker-compatible service.
pub const PODMAN_SOCKET: &str = "/run/podman/podman.sock";
/// Docker's conventional plain-HTTP port, for `tcp://host` without one.
const DEFAULT_TCP_PORT: u16 = 2375;

/// How long `connect` waits for the engine to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout for requests that answer at once (create, start, inspect, remove...).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Requests whose answer comes when the container does something (wait, logs, pull) are not
/// timed out: the supervisor drops their future when it stops caring.
const NO_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// Lines buffered between the log-reading task and the consumer.
const OUTPUT_CHANNEL_CAPACITY: usize = 256;
/// How often `wait` looks again at a container that was created but not started.
const NOT_STARTED_POLL: Duration = Duration::from_millis(250);
/// Engines refuse a CPU quota below a hundredth of a CPU.
const MIN_NANO_CPUS: i64 = 10_000_000;

/// The reason ECS gives a container the kernel killed for its memory limit.
pub const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// Where the Engine API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerHost {
    /// A unix socket (`unix:///var/run/docker.sock`).
    Unix(PathBuf),
    /// Plain HTTP over TCP (`tcp://host:port`), kept as `host:port`.
    Tcp(String),
}

impl DockerHost {
    /// Parses `unix:///path`, `tcp://host[:port]` or `http://host[:port]` (port 2375 when
    /// missing), or a bare absolute socket path.
    pub fn parse(value: &str) -> Result<DockerHost, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("empty docker host".to_string());
        }
        if let Some(path) = value.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "{value}: a unix socket needs an absolute path, as in unix:///var/run/docker.sock"
                ));
            }
            return Ok(DockerHost::Unix(PathBuf::from(path)));
        }
        if value.starts_with('/') {
            return Ok(DockerHost::Unix(PathBuf::from(value)));
        }
        let authority = match value.strip_prefix("tcp://").or_else(|| value.strip_prefix("http://")) {
            Some(rest) => rest.strip_suffix('/').unwrap_or(rest),
            None => {
                return Err(format!(
                    "{value}: unsupported docker host; use unix:///path/to/socket or tcp://host:port (plain HTTP)"
                ))
            }
        };
        if authority.is_empty() || authority.contains('/') || authority.contains('@') {
            return Err(format!("{value}: expected tcp://host:port"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| format!("{value}: expected tcp://host:port"))?;
        Ok(DockerHost::Tcp(format!("{host}:{port}")))
    }
}

/// `host:port`, `host`, `[v6]:port` or `[v6]` into a host and a port.
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    if authority.starts_with('[') {
        let close = authority.find(']')?;
        let host = &authority[..=close];
        return match &authority[close + 1..] {
            "" => Some((host, DEFAULT_TCP_PORT)),
            rest => Some((host, rest.strip_prefix(':')?.parse().ok()?)),
        };
    }
    match authority.rsplit_once(':') {
        None => Some((authority, DEFAULT_TCP_PORT)),
        Some((host, port)) if !host.is_empty() && !host.contains(':') => Some((host, port.parse().ok()?)),
        Some(_) => None,
    }
}

impl fmt::Display for DockerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerHost::Unix(path) => write!(f, "unix://{}", path.display()),
            DockerHost::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// Picks the engine to talk to: `explicit` (`--docker-host`) wins, then `DOCKER_HOST`, then
/// Docker's socket if it `exists`, else Podman's. Empty values count as unset.
pub fn resolve_docker_host(
    explicit: Option<&str>,
    env_docker_host: Option<&str>,
    exists: impl Fn(&Path) -> bool,
) -> Result<DockerHost, String> {
    if let Some(value) = explicit.filter(|v| !v.trim().is_empty()) {
        return DockerHost::parse(value).map_err(|e| format!("--docker-host: {e}"));
    }
    if let Some(value) = env_docker_host.filter(|v| !v.trim().is_empty()) {
        return DockerHost::parse(value).map_err(|e| format!("DOCKER_HOST: {e}"));
    }
    if exists(Path::new(DOCKER_SOCKET)) {
        return Ok(DockerHost::Unix(PathBuf::from(DOCKER_SOCKET)));
    }
    Ok(DockerHost::Unix(PathBuf::from(PODMAN_SOCKET)))
}

/// A `ContainerRuntime` over the Docker Engine API.
pub struct DockerRuntime {
    host: DockerHost,
    /// For requests that answer at once.
    docker: Docker,
    /// The same connection without a request timeout, for wait, logs and pulls.
    streaming: Docker,
    api_version: String,
    host_cpus: Option<u32>,
    limits_warned: AtomicBool,
    limits_dropped: AtomicU64,
}

impl fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("host", &self.host)
            .field("api_version", &self.api_version)
            .field("host_cpus", &self.host_cpus)
            .finish()
    }
}

impl DockerRuntime {
    /// Connects to the engine at `host`, negotiates the API version (Podman 4 speaks 1.41, Docker
    /// newer ones) and pings it. An engine that is not there is `Unavailable`, with a message that
    /// names the socket and says how to start one.
    pub async fn connect(host: DockerHost) -> Result<DockerRuntime, RuntimeError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_inner(&host)).await {
            Ok(result) => result,
            Err(_) => Err(not_there(&host, &format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))),
        }
    }

    async fn connect_inner(host: &DockerHost) -> Result<DockerRuntime, RuntimeError> {
        let timeout = REQUEST_TIMEOUT.as_secs();
        let docker = match host {
            DockerHost::Unix(path) => {
                let path = path.to_str().ok_or_else(|| not_there(host, "the socket path is not UTF-8"))?;
                Docker::connect_with_unix(path, timeout, API_DEFAULT_VERSION)
            }
            DockerHost::Tcp(addr) => Docker::connect_with_http(&format!("http://{addr}"), timeout, API_DEFAULT_VERSION),
        }
        .map_err(|e| not_there(host, &describe(&e)))?;
        // Podman answers /version in ~0.6 s and /info in ~0.4 s: ask both at once (lookout's
        // start waits for this).
        let (negotiated, info) = tokio::join!(docker.clone().negotiate_version(), docker.info());
        let docker = negotiated.map_err(|e| not_there(host, &describe(&e)))?;
        docker.ping().await.map_err(|e| not_there(host, &describe(&e)))?;
        let host_cpus = match info {
            Ok(info) => info.ncpu.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0),
            Err(e) => {
                tracing::debug!(host = %host, error = %describe(&e), "engine info unreadable; CPU quotas not capped at the host's CPUs");
                None
            }
        };
        let version = docker.client_version();
        let api_version = format!("{}.{}", version.major_version, version.minor_version);
        tracing::info!(host = %host, api_version = %api_version, "connected to the container engine");
        let streaming = docker.clone().with_timeout(NO_TIMEOUT);
        Ok(DockerRuntime {
            host: host.clone(),
            docker,
            streaming,
            api_version,
            host_cpus,
            limits_warned: AtomicBool::new(false),
            limits_dropped: AtomicU64::new(0),
        })
    }

    pub fn host(&self) -> &DockerHost {
        &self.host
    }

    /// The Engine API version in use after negotiation (`1.41` for Podman 4).
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// How many containers were created without their CPU/memory limits because the engine
    /// refused them.
    pub fn limits_dropped(&self) -> u64 {
        self.limits_dropped.load(Ordering::Relaxed)
    }

    /// Whether the engine has `image` locally.
    pub async fn image_exists(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            // The engine answered 200 with a body this client's models do not fit: it is there.
            Err(EngineError::JsonDataError { .. }) => Ok(true),
            Err(EngineError::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
            Err(e) => Err(self.engine_error(e)),
        }
    }

    /// Makes sure `image` is present, pulling it when it is not. A failed pull is
    /// `ImageNotFound` worded like ECS's `CannotPullContainerError`.
    async fn ensure_image(&self, image: &str) -> Result<(), RuntimeError> {
        if self.image_exists(image).await? {
            return Ok(());
        }
        let (from_image, tag) = pull_reference(image);
        tracing::info!(image, "image not present; pulling it");
        let options = CreateImageOptions { from_image: Some(from_image), tag: Some(tag), ..Default::default() };
        let mut progress = self.streaming.create_image(Some(options), None, None);
        let mut failure = None;
        while let Some(item) = progress.next().await {
            match item {
                Ok(_) => {}
                Err(EngineError::DockerStreamError { error }) => failure = Some(error),
                Err(EngineError::DockerResponseServerError { message, .. }) => failure = Some(message),
                Err(e) if is_connection_error(&e) => return Err(self.engine_error(e)),
                Err(e) => failure = Some(describe(&e)),
            }
            if failure.is_some() {
                break;
            }
        }
        if failure.is_none() && !self.image_exists(image).await? {
            failure = Some("the pull ended without the image".to_string());
        }
        match failure {
            None => Ok(()),
            Some(message) => Err(RuntimeError::ImageNotFound(cannot_pull_message(image, &message))),
        }
    }

    /// Creates `spec` under its name; a container left with that name by a crashed earlier
    /// attempt is removed and the create tried once more.
    async fn create_named(&self, spec: &ContainerSpec, limits: &Limits) -> Result<String, EngineError> {
        let options = || CreateContainerOptions { name: Some(spec.runtime_name.clone()), ..Default::default() };
        let body = create_body(spec, limits);
        let response = match self.docker.create_container(Some(options()), body.clone()).await {
            Err(e) if is_name_conflict(&e) => {
                tracing::warn!(name = %spec.runtime_name, "a container with this name exists already (left by an earlier attempt); removing it");
                match self.docker.remove_container(&spec.runtime_name, Some(remove_options())).await {
                    Ok(()) | Err(EngineError::DockerResponseServerError { status_code: 404, .. }) => {}
                    Err(e) => return Err(e),
                }
                self.docker.create_container(Some(options()), body).await?
            }
            other => other?,
        };
        for warning in response.warnings.iter().filter(|w| !w.is_empty()) {
            tracing::warn!(name = %spec.runtime_name, "container engine: {warning}");
        }
        Ok(response.id)
    }

    /// The container's state as the engine reports it.
    async fn engine_state(&self, id: &str) -> Result<EngineState, RuntimeError> {
        match self.docker.inspect_container(id, None).await {
            Ok(response) => Ok(response.state.map(EngineState::from_model).unwrap_or_default()),
            // Podman reports states Docker does not have (`stopped`, `stopping`...) which this
            // client's models refuse: read the few fields needed from the raw answer instead.
            Err(EngineError::JsonDataError { contents, message, .. }) => {
                serde_json::from_str::<serde_json::Value>(&contents)
                    .ok()
                    .and_then(|v| EngineState::from_json(&v))
                    .ok_or_else(|| {
                        RuntimeError::Other(format!("unreadable inspect answer for container {id}: {message}"))
                    })
            }
            Err(e) => Err(self.container_error(id, e)),
        }
    }

    /// One `wait` request: the exit code the engine gave, if any.
    async fn wait_once(&self, id: &str) -> Result<Option<i64>, RuntimeError> {
        let options = WaitContainerOptions { condition: "not-running".to_string() };
        let mut answers = self.streaming.wait_container(id, Some(options));
        match answers.next().await {
            Some(Ok(answer)) => Ok(Some(answer.status_code)),
            // bollard turns a non-zero exit into an error; it is an answer here.
            Some(Err(EngineError::DockerContainerWaitError { code, .. })) => Ok(Some(code)),
            Some(Err(e)) => Err(self.container_error(id, e)),
            None => Ok(None),
        }
    }

    fn container_error(&self, id: &str, e: EngineError) -> RuntimeError {
        match e {
            EngineError::DockerResponseServerError { status_code: 404, .. } => {
                RuntimeError::NoSuchContainer(id.to_string())
            }
            e => self.engine_error(e),
        }
    }

    fn engine_error(&self, e: EngineError) -> RuntimeError {
        if is_connection_error(&e) {
            return RuntimeError::Unavailable(format!(
                "container engine at {} is unavailable: {}",
                self.host,
                describe(&e)
            ));
        }
        match e {
            EngineError::DockerResponseServerError { status_code, message } => {
                RuntimeError::Other(format!("container engine answered {status_code}: {message}"))
            }
            e => RuntimeError::Other(describe(&e)),
        }
    }

    fn limits_for(&self, spec: &ContainerSpec) -> Limits {
        Limits {
            nano_cpus: spec.cpu_units.and_then(|units| nano_cpus(units, self.host_cpus)),
            memory_bytes: spec.memory_mib.and_then(memory_bytes),
        }
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    fn kind(&self) -> &'static str {
        "docker"
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        self.ensure_image(&spec.image).await?;
        let limits = self.limits_for(spec);
        let result = match self.create_named(spec, &limits).await {
            // Refused: if the same container without limits is accepted, the limits were the
            // problem; if not, the second refusal is the one to report.
            Err(refusal) if !limits.is_none() && is_refusal(&refusal) && !is_name_conflict(&refusal) => {
                let without = self.create_named(spec, &Limits::default()).await;
                if without.is_ok() {
                    let message = server_message(&refusal);
                    if !self.limits_warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            host = %self.host,
                            "the container engine refused CPU/memory limits ({message}); containers it refuses them for run without"
                        );
                    } else {
                        tracing::debug!(name = %spec.runtime_name, "limits refused again ({message}); running without");
                    }
                    self.limits_dropped.fetch_add(1, Ordering::Relaxed);
                }
                without
            }
            other => other,
        };
        result.map_err(|e| match e {
            EngineError::DockerResponseServerError { status_code: 404, message } => {
                RuntimeError::ImageNotFound(cannot_pull_message(&spec.image, &message))
            }
            e if is_refusal(&e) => RuntimeError::CannotStart(server_message(&e)),
            e => self.engine_error(e),
        })
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        // 304 (already started) is a success for the client too.
        self.docker.start_container(id, None).await.map_err(|e| match e {
            EngineError::DockerResponseServerError { status_code: 404, .. } => {
                RuntimeError::NoSuchContainer(id.to_string())
            }
            e if is_refusal(&e) => RuntimeError::CannotStart(server_message(&e)),
            e => self.engine_error(e),
        })
    }

    /// Call after `start`: Docker ends a follow at once for a container that is not running (after
    /// sending what it has), which is also what makes a container that exited before this call safe.
    async fn follow_output(&self, id: &str, since_ms: Option<i64>) -> Result<mpsc::Receiver<OutputLine>, RuntimeError> {
        // The log stream reports a missing container only once read, from the spawned task:
        // ask first so the caller gets the error.
        self.engine_state(id).await?;
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            timestamps: true,
            // The engine's `since` is in whole seconds; finer filtering happens per line.
            since: since_ms.map(|ms| i32::try_from(ms.div_euclid(1000)).unwrap_or(i32::MAX)).unwrap_or(0).max(0),
            ..Default::default()
        };
        let mut frames = self.streaming.logs(id, Some(options));
        let (tx, rx) = mpsc::channel(OUTPUT_CHANNEL_CAPACITY);
        let id = id.to_string();
        let host = self.host.clone();
        let docker = self.streaming.clone();
        tokio::spawn(async move {
            let mut assembler = LineAssembler::new(since_ms);
            let mut lines = Vec::new();
            // Podman 4 sometimes never ends a followed log stream when the container exits. A
            // watchdog waits for the exit; after it, the stream gets EXITED_STREAM_GRACE of
            // silence to end by itself, else the rest is read without following (below).
            let mut exited = Box::pin(async {
                let options = WaitContainerOptions { condition: "not-running".to_string() };
                let _ = docker.wait_container(&id, Some(options)).next().await;
            });
            let mut has_exited = false;
            let mut ended = false;
            // What was sent at the newest timestamp, to skip it if the rest is read again.
            let mut last_ms: Option<i64> = None;
            let mut sent_at_last: Vec<(OutputStream, String)> = Vec::new();
            loop {
                let frame = if has_exited {
                    match tokio::time::timeout(EXITED_STREAM_GRACE, frames.next()).await {
                        Ok(f) => f,
                        Err(_) => break,
                    }
                } else {
                    tokio::select! {
                        f = frames.next() => f,
                        () = &mut exited => {
                            has_exited = true;
                            continue;
                        }
                    }
                };
                let Some(frame) = frame else {
                    ended = true;
                    break;
                };
                match frame {
                    Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                        assembler.push(OutputStream::Stdout, &message, now_ms(), &mut lines)
                    }
                    Ok(LogOutput::StdErr { message }) => {
                        assembler.push(OutputStream::Stderr, &message, now_ms(), &mut lines)
                    }
                    Ok(LogOutput::StdIn { .. }) => {}
                    Err(e) => {
                        tracing::warn!(container = %id, host = %host, error = %describe(&e), "container log stream broke off");
                        ended = true;
                        break;
                    }
                }
                for line in lines.drain(..) {
                    note_sent(&mut last_ms, &mut sent_at_last, &line);
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
            }
            if !ended {
                // The followed stream outlived its container: read what is left without following.
                drop(frames);
                tracing::debug!(container = %id, "log stream did not end after the container exited; reading the rest");
                let options = LogsOptions {
                    follow: false,
                    stdout: true,
                    stderr: true,
                    timestamps: true,
                    since: last_ms.map(|ms| i32::try_from(ms.div_euclid(1000)).unwrap_or(i32::MAX)).unwrap_or(0).max(0),
                    ..Default::default()
                };
                let mut rest = docker.logs(&id, Some(options));
                let mut again = LineAssembler::new(last_ms.or(since_ms));
                let mut fresh = Vec::new();
                while let Some(Ok(frame)) = rest.next().await {
                    match frame {
                        LogOutput::StdOut { message } | LogOutput::Console { message } => {
                            again.push(OutputStream::Stdout, &message, now_ms(), &mut fresh)
                        }
                        LogOutput::StdErr { message } => {
                            again.push(OutputStream::Stderr, &message, now_ms(), &mut fresh)
                        }
                        LogOutput::StdIn { .. } => {}
                    }
                }
                again.finish(now_ms(), &mut fresh);
                // The partial lines of the followed stream are superseded by the re-read.
                let mut skip = sent_at_last.clone();
                for line in fresh {
                    if Some(line.timestamp_ms) == last_ms {
                        if let Some(pos) = skip.iter().position(|(s, l)| *s == line.stream && *l == line.line) {
                            skip.remove(pos);
                            continue;
                        }
                    }
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
                return;
            }
            assembler.finish(now_ms(), &mut lines);
            for line in lines.drain(..) {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    async fn wait(&self, id: &str) -> Result<ExitStatus, RuntimeError> {
        loop {
            let code = self.wait_once(id).await?;
            match self.engine_state(id).await {
                Ok(state) => match state.to_container_state() {
                    ContainerState::Exited(mut status) => {
                        if status.exit_code.is_none() {
                            status.exit_code = code.and_then(|c| i32::try_from(c).ok()).filter(|c| *c >= 0);
                        }
                        return Ok(status);
                    }
                    // Docker's wait answers at once for a container never started (Podman with -1):
                    // it has not exited, so keep waiting.
                    ContainerState::Created | ContainerState::Running { .. } | ContainerState::Gone => {
                        tokio::time::sleep(NOT_STARTED_POLL).await
                    }
                },
                // Removed between the wait answer and the inspect: the wait's code is all there is.
                Err(RuntimeError::NoSuchContainer(_)) if code.is_some_and(|c| c >= 0) => {
                    return Ok(ExitStatus {
                        exit_code: code.and_then(|c| i32::try_from(c).ok()),
                        reason: None,
                        finished_at_ms: Some(now_ms()),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let seconds = i32::try_from(grace.as_secs() + u64::from(grace.subsec_nanos() > 0)).unwrap_or(i32::MAX);
        // The engine answers once the container is down, up to `grace` plus the kill.
        let client = self.docker.clone().with_timeout(REQUEST_TIMEOUT.saturating_add(grace));
        let options = StopContainerOptions { t: Some(seconds), signal: None };
        // 304 (not running) is a success for the client.
        client.stop_container(id, Some(options)).await.map_err(|e| self.container_error(id, e))
    }

    async fn inspect(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        match self.engine_state(id).await {
            Ok(state) => Ok(state.to_container_state()),
            Err(RuntimeError::NoSuchContainer(_)) => Ok(ContainerState::Gone),
            Err(e) => Err(e),
        }
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        match self.docker.remove_container(id, Some(remove_options())).await {
            Ok(()) | Err(EngineError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(self.engine_error(e)),
        }
    }
}

fn remove_options() -> RemoveContainerOptions {
    RemoveContainerOptions { force: true, v: true, link: false }
}

/// CPU and memory limits for one create request.
#[derive(Debug, Clone, Default, PartialEq)]
struct Limits {
    nano_cpus: Option<i64>,
    memory_bytes: Option<i64>,
}

impl Limits {
    fn is_none(&self) -> bool {
        self.nano_cpus.is_none() && self.memory_bytes.is_none()
    }
}

/// ECS CPU units as a CPU quota in billionths of a CPU (1024 units = one CPU), at least the
/// engines' minimum and at most the host's CPUs. Zero units is no limit.
fn nano_cpus(units: u32, host_cpus: Option<u32>) -> Option<i64> {
    if units == 0 {
        return None;
    }
    let nano = (i64::from(units) * 1_000_000_000 / 1024).max(MIN_NANO_CPUS);
    Some(match host_cpus {
        Some(cpus) => nano.min(i64::from(cpus) * 1_000_000_000),
        None => nano,
    })
}

fn memory_bytes(mib: u64) -> Option<i64> {
    (mib > 0).then(|| i64::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX))
}

fn create_body(spec: &ContainerSpec, limits: &Limits) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entry_point.clone(),
        cmd: spec.command.clone(),
        env: Some(spec.environment.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: spec.working_directory.clone(),
        labels: Some(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>()),
        host_config: Some(HostConfig {
            nano_cpus: limits.nano_cpus,
            memory: limits.memory_bytes,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Splits an image reference into the `fromImage` and `tag` of a pull: a digest goes in `tag`
/// (the API takes either there), and a reference without either pulls `latest` (an empty tag
/// would pull every tag).
fn pull_reference(image: &str) -> (String, String) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name.to_string(), digest.to_string());
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(colon) => {
            let colon = name_start + colon;
            (image[..colon].to_string(), image[colon + 1..].to_string())
        }
        None => (image.to_string(), "latest".to_string()),
    }
}

/// ECS's wording for an image that could not be had.
fn cannot_pull_message(image: &str, engine_message: &str) -> String {
    format!(
        "CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {image}: {}",
        engine_message.trim()
    )
}

fn not_there(host: &DockerHost, detail: &str) -> RuntimeError {
    RuntimeError::Unavailable(format!(
        "no container engine answers at {host} ({detail}); start Docker, or Podman's Docker-compatible service with \
         `podman system service --time=0 unix://{PODMAN_SOCKET} &` (scripts/setup-podman.sh does it), or point \
         --docker-host or DOCKER_HOST at a running engine"
    ))
}

/// Whether the engine could not be reached or the connection broke, as opposed to an answer.
fn is_connection_error(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::HyperLegacyError { .. }
            | EngineError::HyperResponseError { .. }
            | EngineError::IOError { .. }
            | EngineError::RequestTimeoutError
            | EngineError::SocketNotFoundError(_)
    )
}

/// An answer refusing what was asked (4xx other than 404, or a 5xx), as opposed to a missing
/// object or an unreachable engine.
fn is_refusal(e: &EngineError) -> bool {
    matches!(e, EngineError::DockerResponseServerError { status_code, .. } if *status_code != 404 && *status_code >= 400)
}

/// Docker answers 409; Podman 4 answers 500 with the same words.
fn is_name_conflict(e: &EngineError) -> bool {
    matches!(e, EngineError::DockerResponseServerError { status_code, message }
        if *status_code == 409 || message.contains("already in use"))
}

/// The engine's own message for an error answer, else the error described.
fn server_message(e: &EngineError) -> String {
    match e {
        EngineError::DockerResponseServerError { message, .. } if !message.is_empty() => message.clone(),
        e => describe(e),
    }
}

/// An error with its sources, which is where hyper keeps the useful part ("connection refused").
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// An engine timestamp (RFC 3339, any precision) in ms; Go's zero time and anything before 1970
/// mean "never".
fn parse_engine_time(value: &str) -> Option<i64> {
    let parsed = OffsetDateTime::parse(value.trim(), &Rfc3339).ok()?;
    let ms = parsed.unix_timestamp_nanos().div_euclid(1_000_000);
    (ms > 0).then(|| i64::try_from(ms).ok()).flatten()
}

/// The few fields of an inspect answer's `State` that matter here.
#[derive(Debug, Clone, Default, PartialEq)]
struct EngineState {
    status: String,
    running: bool,
    oom_killed: bool,
    exit_code: Option<i64>,
    error: Option<String>,
    started_at: Option<String>,
    finished_at: Option<String>,
}

impl EngineState {
    fn from_model(state: bollard::models::ContainerState) -> EngineState {
        EngineState {
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            running: state.running.unwrap_or(false),
            oom_killed: state.oom_killed.unwrap_or(false),
            exit_code: state.exit_code,
            error: state.error,
            started_at: state.started_at,
            finished_at: state.finished_at,
        }
    }

    fn from_json(inspect: &serde_json::Value) -> Option<EngineState> {
        let state = inspect.get("State")?.as_object()?;
        let text = |key: &str| state.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let flag = |key: &str| state.get(key).and_then(|v| v.as_bool()).unwrap_or(false);
        Some(EngineState {
            status: text("Status").unwrap_or_default(),
            running: flag("Running"),
            oom_killed: flag("OOMKilled"),
            exit_code: state.get("ExitCode").and_then(|v| v.as_i64()),
            error: text("Error"),
            started_at: text("StartedAt"),
            finished_at: text("FinishedAt"),
        })
    }

    fn exit_status(&self) -> ExitStatus {
        let reason = if self.oom_killed {
            Some(OOM_REASON.to_string())
        } else {
            self.error.clone().filter(|e| !e.trim().is_empty())
        };
        ExitStatus {
            exit_code: self.exit_code.and_then(|c| i32::try_from(c).ok()).filter(|c| *c >= 0),
            reason,
            finished_at_ms: self.finished_at.as_deref().and_then(parse_engine_time),
        }
    }

    fn to_container_state(&self) -> ContainerState {
        let running =
            || ContainerState::Running { started_at_ms: self.started_at.as_deref().and_then(parse_engine_time) };
        match self.status.as_str() {
            // Podman: `configured` before the OCI runtime has it, `initialized` just before start.
            "created" | "configured" | "initialized" => ContainerState::Created,
            "running" | "paused" | "restarting" | "stopping" => running(),
            // Podman: `stopped` is exited but not yet cleaned up.
            "exited" | "dead" | "stopped" | "removing" => ContainerState::Exited(self.exit_status()),
            _ if self.running => running(),
            _ if self.finished_at.as_deref().and_then(parse_engine_time).is_some() => {
                ContainerState::Exited(self.exit_status())
            }
            _ => ContainerState::Created,
        }
    }
}

/// How long a followed log stream may stay silent after its container exited before the rest is
/// read without following (Podman 4 sometimes never ends it).
const EXITED_STREAM_GRACE: Duration = Duration::from_secs(2);

/// Remembers the lines sent at the newest timestamp (engine timestamps may be whole seconds).
fn note_sent(last_ms: &mut Option<i64>, sent: &mut Vec<(OutputStream, String)>, line: &OutputLine) {
    if *last_ms != Some(line.timestamp_ms) {
        if last_ms.is_some_and(|l| l > line.timestamp_ms) {
            return;
        }
        *last_ms = Some(line.timestamp_ms);
        sent.clear();
    }
    sent.push((line.stream, line.line.clone()));
}

/// Turns the log stream's frames (`<RFC 3339 timestamp> <bytes>` each, per stream) into lines:
/// a line takes the timestamp of the frame it began in, stdout and stderr keep separate partial
/// lines, and lines stamped before `since_ms` are dropped.
#[derive(Debug)]
struct LineAssembler {
    since_ms: Option<i64>,
    stdout: Partial,
    stderr: Partial,
}

#[derive(Debug, Default)]
struct Partial {
    bytes: Vec<u8>,
    /// When the kept bytes began, and whether the engine said so (else it is when they were read).
    stamp: Option<Stamp>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Stamp {
    ms: i64,
    from_engine: bool,
}

impl LineAssembler {
    fn new(since_ms: Option<i64>) -> LineAssembler {
        LineAssembler { since_ms, stdout: Partial::default(), stderr: Partial::default() }
    }

    fn push(&mut self, stream: OutputStream, frame: &[u8], read_at_ms: i64, out: &mut Vec<OutputLine>) {
        let (stamp, payload) = match split_timestamp(frame) {
            Some((ms, payload)) => (Stamp { ms, from_engine: true }, payload),
            None => (Stamp { ms: read_at_ms, from_engine: false }, frame),
        };
        let since_ms = self.since_ms;
        let partial = match stream {
            OutputStream::Stdout => &mut self.stdout,
            OutputStream::Stderr => &mut self.stderr,
        };
        let started_empty = partial.bytes.is_empty();
        let mut first_stamp = if started_empty { stamp } else { partial.stamp.unwrap_or(stamp) };
        let mut emitted = false;
        split_lines(&mut partial.bytes, payload, |line| {
            emit(out, since_ms, stream, first_stamp, line);
            first_stamp = stamp;
            emitted = true;
        });
        if started_empty || emitted {
            partial.stamp = Some(stamp);
        }
    }

    /// Flushes both streams' partial lines once the output has ended.
    fn finish(&mut self, read_at_ms: i64, out: &mut Vec<OutputLine>) {
        let since_ms = self.since_ms;
        for (stream, partial) in [(OutputStream::Stdout, &mut self.stdout), (OutputStream::Stderr, &mut self.stderr)] {
            let stamp = partial.stamp.take().unwrap_or(Stamp { ms: read_at_ms, from_engine: false });
            finish_lines(&mut partial.bytes, |line| emit(out, since_ms, stream, stamp, line));
        }
    }
}

fn emit(out: &mut Vec<OutputLine>, since_ms: Option<i64>, stream: OutputStream, stamp: Stamp, line: String) {
    // Only the engine's own stamps are compared: a line without one cannot be placed.
    if stamp.from_engine && since_ms.is_some_and(|since| stamp.ms < since) {
        return;
    }
    out.push(OutputLine { timestamp_ms: stamp.ms, stream, line });
}

/// `2024-05-01T10:00:00.123456789Z rest` into the timestamp in ms and `rest`.
fn split_timestamp(frame: &[u8]) -> Option<(i64, &[u8])> {
    // RFC 3339 with nanoseconds and an offset is at most 35 bytes.
    let space = memchr::memchr(b' ', &frame[..frame.len().min(40)])?;
    let text = std::str::from_utf8(&frame[..space]).ok()?;
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    let ms = i64::try_from(parsed.unix_timestamp_nanos().div_euclid(1_000_000)).ok()?;
    Some((ms, &frame[space + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(path: &str) -> DockerHost {
        DockerHost::Unix(PathBuf::from(path))
    }

    #[test]
    fn explicit_host_wins_over_env_and_sockets() {
        let host = resolve_docker_host(Some("unix:///tmp/a.sock"), Some("tcp://h:1"), |_| true).unwrap();
        assert_eq!(host, unix("/tmp/a.sock"));
    }

    #[test]
    fn env_host_comes_next() {
        let host = resolve_docker_host(None, Some("tcp://10.0.0.1:2376"), |_| true).unwrap();
        assert_eq!(host, DockerHost::Tcp("10.0.0.1:2376".to_string()));
        let host = resolve_docker_host(Some("  "), Some("unix:///x.sock"), |_| true).unwrap();
        assert_eq!(host, unix("/x.sock"), "a blank --docker-host counts as unset");
    }

    #[test]
    fn docker_socket_when_it_exists_else_podman() {
        let host = resolve_docker_host(None, Some(""), |p| p == Path::new(DOCKER_SOCKET)).unwrap();
        assert_eq!(host, unix(DOCKER_SOCKET));
        let host = resolve_docker_host(None, None, |_| false).unwrap();
        assert_eq!(host, unix(PODMAN_SOCKET));
    }

    #[test]
    fn bad_values_name_their_source() {
        let err = resolve_docker_host(Some("ssh://me@box"), None, |_| true).unwrap_err();
        assert!(err.starts_with("--docker-host: ssh://me@box"), "{err}");
        let err = resolve_docker_host(None, Some("unix://relative.sock"), |_| true).unwrap_err();
        assert!(err.starts_with("DOCKER_HOST:") && err.contains("absolute"), "{err}");
    }

    #[test]
    fn host_forms() {
        assert_eq!(DockerHost::parse("tcp://localhost").unwrap(), DockerHost::Tcp("localhost:2375".into()));
        assert_eq!(DockerHost::parse("http://127.0.0.1:2380/").unwrap(), DockerHost::Tcp("127.0.0.1:2380".into()));
        assert_eq!(DockerHost::parse("tcp://[::1]:2375").unwrap(), DockerHost::Tcp("[::1]:2375".into()));
        assert_eq!(DockerHost::parse("tcp://[::1]").unwrap(), DockerHost::Tcp("[::1]:2375".into()));
        assert_eq!(DockerHost::parse("/run/podman/podman.sock").unwrap(), unix("/run/podman/podman.sock"));
        for bad in [
            "",
            "tcp://",
            "tcp://h:port",
            "tcp://h:99999",
            "tcp://h:1/path",
            "tcp://::1",
            "https://h:2376",
            "npipe:////./pipe/docker",
        ] {
            assert!(DockerHost::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(unix("/var/run/docker.sock").to_string(), "unix:///var/run/docker.sock");
        assert_eq!(DockerHost::Tcp("h:1".into()).to_string(), "tcp://h:1");
    }

    #[tokio::test]
    async fn connecting_to_nothing_is_unavailable_and_says_what_to_do() {
        let dir = std::env::temp_dir().join(format!("lookout-docker-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A socket path nothing listens on, and a socket file left by a dead engine.
        let missing = dir.join("missing.sock");
        let stale = dir.join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        for path in [missing, stale.clone()] {
            let host = DockerHost::Unix(path.clone());
            match DockerRuntime::connect(host).await {
                Err(RuntimeError::Unavailable(message)) => {
                    assert!(message.contains(&format!("unix://{}", path.display())), "{message}");
                    assert!(message.contains("podman system service"), "{message}");
                }
                other => panic!("expected Unavailable, got {other:?}"),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cpu_units_become_a_quota() {
        assert_eq!(nano_cpus(1024, None), Some(1_000_000_000));
        assert_eq!(nano_cpus(256, Some(2)), Some(250_000_000));
        assert_eq!(nano_cpus(4096, Some(2)), Some(2_000_000_000), "capped at the host's CPUs");
        assert_eq!(nano_cpus(2, None), Some(MIN_NANO_CPUS), "raised to the engines' minimum");
        assert_eq!(nano_cpus(0, Some(2)), None);
        assert_eq!(memory_bytes(64), Some(64 << 20));
        assert_eq!(memory_bytes(0), None);
        assert_eq!(memory_bytes(u64::MAX), Some(i64::MAX));
    }

    #[test]
    fn pull_references() {
        let split = |s: &str| {
            let (a, b) = pull_reference(s);
            (a, b)
        };
        assert_eq!(split("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(split("busybox:1.36"), ("busybox".into(), "1.36".into()));
        assert_eq!(split("localhost:5000/app"), ("localhost:5000/app".into(), "latest".into()));
        assert_eq!(split("localhost:5000/team/app:v2"), ("localhost:5000/team/app".into(), "v2".into()));
        assert_eq!(split("app@sha256:abcd"), ("app".into(), "sha256:abcd".into()));
    }

    #[test]
    fn pull_failures_read_like_ecs() {
        let message = cannot_pull_message("localhost/nope:1", "no such host\n");
        assert_eq!(
            message,
            "CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref localhost/nope:1: no such host"
        );
    }

    #[test]
    fn engine_errors_are_classified() {
        let answer = |status_code: u16, message: &str| EngineError::DockerResponseServerError {
            status_code,
            message: message.to_string(),
        };
        assert!(is_name_conflict(&answer(409, "Conflict. The container name \"/x\" is already in use")));
        assert!(is_name_conflict(&answer(
            500,
            "creating container storage: the container name \"x\" is already in use by abc"
        )));
        assert!(!is_name_conflict(&answer(500, "runc create failed")));
        assert!(is_refusal(&answer(400, "bad")) && is_refusal(&answer(500, "bad")));
        assert!(!is_refusal(&answer(404, "no such container")));
        assert!(is_connection_error(&EngineError::RequestTimeoutError));
        assert!(!is_connection_error(&answer(500, "x")));
        assert_eq!(server_message(&answer(500, "runc: exec failed")), "runc: exec failed");
    }

    fn state(status: &str) -> EngineState {
        EngineState { status: status.to_string(), ..Default::default() }
    }

    #[test]
    fn engine_states_map_to_container_states() {
        assert_eq!(state("created").to_container_state(), ContainerState::Created);
        assert_eq!(state("configured").to_container_state(), ContainerState::Created);
        let running = EngineState { started_at: Some("2024-05-01T10:00:00.5Z".into()), ..state("running") };
        assert_eq!(running.to_container_state(), ContainerState::Running { started_at_ms: Some(1_714_557_600_500) });
        let exited = EngineState {
            exit_code: Some(3),
            finished_at: Some("2024-05-01T10:00:01.25Z".into()),
            started_at: Some("2024-05-01T10:00:00Z".into()),
            error: Some(String::new()),
            ..state("exited")
        };
        let expected = ExitStatus { exit_code: Some(3), reason: None, finished_at_ms: Some(1_714_557_601_250) };
        assert_eq!(exited.to_container_state(), ContainerState::Exited(expected.clone()));
        // Podman's not-yet-cleaned-up state, and one this code has never heard of.
        assert_eq!(
            EngineState { status: "stopped".into(), ..exited.clone() }.to_container_state(),
            ContainerState::Exited(expected.clone())
        );
        assert_eq!(
            EngineState { status: "odd".into(), ..exited }.to_container_state(),
            ContainerState::Exited(expected)
        );
        let never =
            EngineState { finished_at: Some("0001-01-01T00:00:00Z".into()), exit_code: Some(0), ..state("exited") };
        assert_eq!(never.exit_status().finished_at_ms, None);
    }

    #[test]
    fn oom_kills_and_engine_errors_give_a_reason() {
        let oom = EngineState { oom_killed: true, exit_code: Some(137), ..state("exited") };
        assert_eq!(oom.exit_status().reason.as_deref(), Some(OOM_REASON));
        assert_eq!(oom.exit_status().exit_code, Some(137));
        let failed = EngineState { error: Some("exec: not found".into()), exit_code: Some(127), ..state("exited") };
        assert_eq!(failed.exit_status().reason.as_deref(), Some("exec: not found"));
        let unknown = EngineState { exit_code: Some(-1), ..state("exited") };
        assert_eq!(unknown.exit_status().exit_code, None);
    }

    #[test]
    fn raw_inspect_answers_are_read() {
        let raw = serde_json::json!({"Id": "abc", "State": {"Status": "stopped", "Running": false, "OOMKilled": true,
            "ExitCode": 137, "Error": "", "StartedAt": "2024-05-01T10:00:00Z", "FinishedAt": "2024-05-01T10:00:02Z"}});
        let state = EngineState::from_json(&raw).unwrap();
        assert_eq!(
            state.to_container_state(),
            ContainerState::Exited(ExitStatus {
                exit_code: Some(137),
                reason: Some(OOM_REASON.into()),
                finished_at_ms: Some(1_714_557_602_000)
            })
        );
        assert_eq!(EngineState::from_json(&serde_json::json!({"Id": "abc"})), None);
        // Why the raw reading exists: Podman's transient `stopped` state (seen on this engine right
        // after an exit) is not in the client's models, so the typed inspect fails on it.
        let typed = serde_json::from_value::<bollard::models::ContainerInspectResponse>(raw);
        assert!(typed.is_err());
    }

    fn lines(out: &[OutputLine]) -> Vec<(OutputStream, i64, &str)> {
        out.iter().map(|l| (l.stream, l.timestamp_ms, l.line.as_str())).collect()
    }

    #[test]
    fn docker_frames_become_lines() {
        use OutputStream::{Stderr, Stdout};
        let mut assembler = LineAssembler::new(None);
        let mut out = Vec::new();
        assembler.push(Stdout, b"2024-05-01T10:00:00.001000000Z one\n", 9, &mut out);
        assembler.push(Stderr, b"2024-05-01T10:00:00.002Z err\r\n", 9, &mut out);
        // A long line Docker cut into partial messages, interleaved with stderr.
        assembler.push(Stdout, b"2024-05-01T10:00:00.003Z par", 9, &mut out);
        assembler.push(Stderr, b"2024-05-01T10:00:00.004Z half", 9, &mut out);
        assembler.push(Stdout, b"2024-05-01T10:00:00.005Z tial\n", 9, &mut out);
        assembler.push(Stdout, b"2024-05-01T10:00:00.006Z \n", 9, &mut out);
        assembler.finish(99, &mut out);
        let base = 1_714_557_600_000;
        assert_eq!(
            lines(&out),
            [
                (Stdout, base + 1, "one"),
                (Stderr, base + 2, "err"),
                (Stdout, base + 3, "partial"),
                (Stdout, base + 6, ""),
                (Stderr, base + 4, "half"),
            ]
        );
    }

    #[test]
    fn podman_frames_with_whole_second_stamps() {
        // Podman 4.3 stamps frames to the second and sends a partial line as its own frame.
        let mut assembler = LineAssembler::new(None);
        let mut out = Vec::new();
        assembler.push(OutputStream::Stdout, b"2026-11-23T00:13:43Z partial", 9, &mut out);
        assembler.push(OutputStream::Stdout, b"2026-11-23T00:13:44Z tail", 9, &mut out);
        assert!(out.is_empty());
        assembler.finish(99, &mut out);
        assert_eq!(lines(&out), [(OutputStream::Stdout, 1_795_392_823_000, "partialtail")]);
    }

    #[test]
    fn lines_before_since_are_dropped() {
        let mut assembler = LineAssembler::new(Some(1_714_557_600_500));
        let mut out = Vec::new();
        assembler.push(OutputStream::Stdout, b"2024-05-01T10:00:00.499Z early\n", 9, &mut out);
        assembler.push(OutputStream::Stdout, b"2024-05-01T10:00:00.500Z on time\n", 9, &mut out);
        // Without an engine stamp a line cannot be placed, so it is kept.
        assembler.push(OutputStream::Stdout, b"no stamp here\n", 7, &mut out);
        assembler.finish(99, &mut out);
        assert_eq!(
            lines(&out),
            [(OutputStream::Stdout, 1_714_557_600_500, "on time"), (OutputStream::Stdout, 7, "no stamp here")]
        );
    }

    #[test]
    fn timestamps_parse_at_any_precision() {
        assert_eq!(split_timestamp(b"2024-05-01T10:00:00Z x"), Some((1_714_557_600_000, &b"x"[..])));
        assert_eq!(split_timestamp(b"2024-05-01T12:00:00.123456789+02:00 y z"), Some((1_714_557_600_123, &b"y z"[..])));
        assert_eq!(split_timestamp(b"not a stamp x"), None);
        assert_eq!(split_timestamp(b"2024-05-01T10:00:00Z"), None);
        assert_eq!(parse_engine_time("0001-01-01T00:00:00Z"), None);
    }
}

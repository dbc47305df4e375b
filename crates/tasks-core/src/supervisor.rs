//! One supervisor per task: the lifecycle from PROVISIONING to STOPPED. It prepares the log
//! streams, creates and starts the containers, pumps their output into the log store while they
//! run, waits for them, stops the rest when an essential one exits or StopTask asks, and records
//! every step through `Inner::change` (persisted, then published). `resume` picks a task up again
//! after lookout restarts: it reattaches to containers that still run and closes out the rest.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::logsink::{pump_output, ReplaySkip, SinkError};
use crate::model::*;
use crate::now_ms;
use crate::runtime::{
    runtime_name, ContainerRuntime, ContainerSpec, ContainerState, ExitStatus, RuntimeError, LABEL_CONTAINER_NAME,
    LABEL_TASK_ARN,
};
use crate::service::{Inner, Publish, StopRequest};

/// ECS's default grace between SIGTERM and SIGKILL.
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a container's output to drain after it exited.
const OUTPUT_DRAIN: Duration = Duration::from_secs(10);
/// How long a running task waits for its container engine to answer again (a restarted Podman
/// service, a socket briefly gone) before it is stopped as lost.
const ENGINE_OUTAGE_GRACE: Duration = Duration::from_secs(30);

/// `runtime.wait`, riding out an engine that is briefly unreachable: its containers keep running
/// meanwhile, and the wait resumes when it answers again.
async fn wait_through_outages(
    runtime: &Arc<dyn ContainerRuntime>,
    id: &str,
    task: &str,
) -> Result<ExitStatus, RuntimeError> {
    let mut outage_since: Option<std::time::Instant> = None;
    loop {
        match runtime.wait(id).await {
            Err(RuntimeError::Unavailable(message)) => {
                let since = *outage_since.get_or_insert_with(|| {
                    tracing::warn!(task, error = %message, "the container engine is unreachable; waiting for it to come back");
                    std::time::Instant::now()
                });
                if since.elapsed() >= ENGINE_OUTAGE_GRACE {
                    return Err(RuntimeError::Unavailable(message));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => {
                if outage_since.is_some() {
                    tracing::info!(task, "the container engine answers again");
                }
                return other;
            }
        }
    }
}

/// Runs a task that was just created (PROVISIONING).
pub(crate) async fn run(inner: Arc<Inner>, id: String, stop: watch::Receiver<Option<StopRequest>>) {
    let Some(task) = inner.task(&id) else { return };
    let mut sup = Supervisor { inner: inner.clone(), id: id.clone(), stop, pumps: JoinSet::new() };
    match sup.start(&task).await {
        Ok(running) => sup.watch(running).await,
        Err(failure) => sup.fail_to_start(failure).await,
    }
    inner.state.lock().stop_signals.remove(&id);
}

/// Picks up a task that was not stopped when lookout last ran.
pub(crate) async fn resume(inner: Arc<Inner>, id: String, stop: watch::Receiver<Option<StopRequest>>) {
    let Some(task) = inner.task(&id) else { return };
    let mut sup = Supervisor { inner: inner.clone(), id: id.clone(), stop, pumps: JoinSet::new() };
    let started =
        matches!(task.last_status, Status::Running | Status::Stopping | Status::Deactivating | Status::Deprovisioning);
    if !started {
        // It never ran: clean up what was created and say why it did not start.
        for c in &task.containers {
            if let Some(rid) = &c.runtime_id {
                let _ = inner.runtime.remove(rid).await;
            }
        }
        sup.fail_to_start(StartFailure {
            reason: "TaskFailedToStart: lookout restarted before the task started".into(),
            container: None,
        })
        .await;
    } else {
        let mut running = Vec::new();
        for c in task.containers.iter().filter(|c| c.last_status != Status::Stopped) {
            let Some(rid) = c.runtime_id.clone() else {
                sup.container_exited(&c.name, exited(None, "the container was never created")).await;
                continue;
            };
            match inner.runtime.inspect(&rid).await {
                Ok(ContainerState::Running { .. }) => {
                    sup.follow(c, &rid, true).await;
                    running.push((c.name.clone(), rid));
                }
                Ok(ContainerState::Exited(status)) => {
                    // Its last lines may not be stored yet: drain them (before STOPPED), record the exit.
                    sup.follow(c, &rid, true).await;
                    sup.container_exited(&c.name, status).await;
                }
                Ok(ContainerState::Created) => {
                    let _ = inner.runtime.remove(&rid).await;
                    sup.container_exited(&c.name, exited(None, "the container was created but never started")).await;
                }
                Ok(ContainerState::Gone) => {
                    sup.container_exited(
                        &c.name,
                        exited(
                            None,
                            &format!(
                                "the container vanished from the {} runtime while lookout was not running",
                                inner.runtime.kind()
                            ),
                        ),
                    )
                    .await;
                }
                Err(e) => {
                    sup.container_exited(
                        &c.name,
                        exited(None, &format!("cannot inspect the container after a restart: {e}")),
                    )
                    .await;
                }
            }
        }
        tracing::info!(task = %id, reattached = running.len(), "task resumed");
        sup.watch(running).await;
    }
    inner.state.lock().stop_signals.remove(&id);
}

fn exited(code: Option<i32>, reason: &str) -> ExitStatus {
    ExitStatus { exit_code: code, reason: Some(reason.to_owned()), finished_at_ms: Some(now_ms()) }
}

struct StartFailure {
    reason: String,
    /// The container the failure belongs to, and its own reason.
    container: Option<(String, String)>,
}

struct Supervisor {
    inner: Arc<Inner>,
    id: String,
    stop: watch::Receiver<Option<StopRequest>>,
    pumps: JoinSet<u64>,
}

impl Supervisor {
    fn stop_requested(&self) -> Option<StopRequest> {
        self.stop.borrow().clone()
    }

    /// PROVISIONING → PENDING → RUNNING. Returns the (container name, runtime id) pairs started.
    async fn start(&mut self, task: &Task) -> Result<Vec<(String, String)>, StartFailure> {
        let inner = self.inner.clone();
        // Log streams first, as the awslogs driver does: a missing group fails the task.
        for c in &task.containers {
            if let Some(target) = &c.log_target {
                if let Err(e) = inner.logs.prepare(target).await {
                    let reason = match e {
                        SinkError::GroupMissing(m) => format!(
                            "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: {m} (log group {:?}; set awslogs-create-group to \"true\" or create the group)",
                            target.group
                        ),
                        other => format!("ResourceInitializationError: cannot create the log stream {:?} in {:?}: {other}", target.stream, target.group),
                    };
                    return Err(StartFailure { reason, container: None });
                }
            }
        }
        if let Some(req) = self.stop_requested() {
            return Err(StartFailure { reason: req.reason, container: None });
        }
        inner
            .change(&self.id, Publish::Yes, |t| {
                t.last_status = Status::Pending;
                t.pull_started_at_ms = Some(now_ms());
            })
            .await;
        let definition = inner.task(&self.id).map(|t| t.task_definition_arn).unwrap_or_default();
        let def = {
            let st = inner.state.lock();
            st.definitions.get(&task.family).and_then(|v| v.iter().find(|d| d.revision == task.revision)).cloned()
        };
        let Some(def) = def else {
            return Err(StartFailure {
                reason: format!("TaskFailedToStart: the task definition {definition} is gone"),
                container: None,
            });
        };
        let mut created: Vec<(String, String)> = Vec::new();
        for c in &task.containers {
            let cdef = def.containers.iter().find(|d| d.name == c.name).cloned().unwrap_or_default();
            let spec = container_spec(task, c, &cdef);
            match inner.runtime.create(&spec).await {
                Ok(rid) => {
                    inner
                        .change(&self.id, Publish::No, |t| {
                            if let Some(tc) = t.containers.iter_mut().find(|x| x.name == c.name) {
                                tc.runtime_id = Some(rid.clone());
                            }
                        })
                        .await;
                    created.push((c.name.clone(), rid));
                }
                Err(e) => {
                    for (_, rid) in &created {
                        let _ = inner.runtime.remove(rid).await;
                    }
                    let msg = match &e {
                        RuntimeError::ImageNotFound(m) => m.clone(),
                        other => format!("CannotCreateContainerError: {other}"),
                    };
                    return Err(StartFailure { reason: msg.clone(), container: Some((c.name.clone(), msg)) });
                }
            }
        }
        inner.change(&self.id, Publish::No, |t| t.pull_stopped_at_ms = Some(now_ms())).await;
        for (i, (name, rid)) in created.iter().enumerate() {
            let result = match inner.runtime.start(rid).await {
                Ok(()) => {
                    let c = task.containers.iter().find(|c| &c.name == name).expect("created from this task");
                    self.follow(c, rid, false).await;
                    Ok(())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                for (_, started) in &created[..i] {
                    let _ = inner.runtime.stop(started, Duration::from_secs(0)).await;
                }
                self.drain_output().await;
                for (_, r) in &created {
                    let _ = inner.runtime.remove(r).await;
                }
                let msg = match &e {
                    RuntimeError::CannotStart(m) if m.starts_with("CannotStartContainerError") => m.clone(),
                    other => format!("CannotStartContainerError: {other}"),
                };
                return Err(StartFailure { reason: msg.clone(), container: Some((name.clone(), msg)) });
            }
        }
        inner
            .change(&self.id, Publish::Yes, |t| {
                t.last_status = Status::Running;
                t.started_at_ms = Some(now_ms());
                for c in &mut t.containers {
                    c.last_status = Status::Running;
                }
            })
            .await;
        Ok(created)
    }

    /// Starts pumping a container's output into its log stream (if it has one). On `resume`,
    /// lines already stored are skipped.
    async fn follow(&mut self, c: &TaskContainer, rid: &str, resume: bool) {
        let Some(target) = c.log_target.clone() else { return };
        let skip = if resume {
            match self.inner.logs.tail_position(&target).await {
                Ok(Some((ts, at))) => Some(ReplaySkip { before_ms: ts, at: VecDeque::from(at) }),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(task = %self.id, container = %c.name, error = %e, "cannot read the stored log position; replayed lines may be duplicated");
                    None
                }
            }
        } else {
            None
        };
        let since = skip.as_ref().map(|s| s.before_ms);
        match self.inner.runtime.follow_output(rid, since).await {
            Ok(lines) => {
                self.pumps.spawn(pump_output(self.inner.logs.clone(), target, lines, skip));
            }
            Err(e) => {
                tracing::warn!(task = %self.id, container = %c.name, error = %e, "cannot follow the container's output");
            }
        }
    }

    async fn drain_output(&mut self) {
        let drained =
            tokio::time::timeout(OUTPUT_DRAIN, async { while self.pumps.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(task = %self.id, "container output did not end in time after the containers exited");
            self.pumps.abort_all();
        }
    }

    async fn fail_to_start(&mut self, failure: StartFailure) {
        let user_stop = self.stop_requested();
        self.inner
            .change(&self.id, Publish::Yes, |t| {
                let now = now_ms();
                t.last_status = Status::Stopped;
                t.desired_status = Status::Stopped;
                match &user_stop {
                    Some(req) => {
                        t.stop_code = Some(req.code);
                        t.stopped_reason = Some(req.reason.clone());
                    }
                    None => {
                        t.stop_code = Some(StopCode::TaskFailedToStart);
                        t.stopped_reason = Some(failure.reason.clone());
                    }
                }
                t.stopping_at_ms.get_or_insert(now);
                t.execution_stopped_at_ms = Some(now);
                t.stopped_at_ms = Some(now);
                for c in &mut t.containers {
                    c.last_status = Status::Stopped;
                    if let Some((name, reason)) = &failure.container {
                        if &c.name == name {
                            c.reason = Some(reason.clone());
                        }
                    }
                }
            })
            .await;
    }

    async fn container_exited(&mut self, name: &str, status: ExitStatus) {
        self.inner
            .change(&self.id, Publish::Yes, |t| {
                if let Some(c) = t.containers.iter_mut().find(|c| c.name == name) {
                    c.last_status = Status::Stopped;
                    c.exit_code = status.exit_code;
                    c.reason = status.reason.clone();
                }
            })
            .await;
    }

    /// Marks the task as stopping (once) with the given code and reason; returns whether this call
    /// did it.
    async fn begin_stopping(&mut self, code: StopCode, reason: &str) -> bool {
        let mut began = false;
        self.inner
            .change(&self.id, Publish::Yes, |t| {
                if t.stopping_at_ms.is_none() {
                    began = true;
                    t.stopping_at_ms = Some(now_ms());
                    t.desired_status = Status::Stopped;
                    t.last_status = Status::Stopping;
                    // A StopTask that arrived first keeps its code and reason.
                    if t.stop_code.is_none() || code == StopCode::UserInitiated {
                        t.stop_code = Some(code);
                        t.stopped_reason = Some(reason.to_owned());
                    }
                }
            })
            .await;
        began
    }

    fn stop_all(&self, running: &HashMap<String, String>) {
        let task = self.inner.task(&self.id);
        for (name, rid) in running {
            let grace = task
                .as_ref()
                .and_then(|t| {
                    let st = self.inner.state.lock();
                    st.definitions
                        .get(&t.family)
                        .and_then(|v| v.iter().find(|d| d.revision == t.revision))
                        .and_then(|d| d.containers.iter().find(|c| &c.name == name))
                        .and_then(|c| c.stop_timeout)
                })
                .map_or(DEFAULT_STOP_TIMEOUT, |s| Duration::from_secs(u64::from(s)));
            let runtime = self.inner.runtime.clone();
            let rid = rid.clone();
            tokio::spawn(async move {
                if let Err(e) = runtime.stop(&rid, grace).await {
                    tracing::warn!(container = %rid, error = %e, "cannot stop a container");
                }
            });
        }
    }

    /// RUNNING until every container has exited, then DEPROVISIONING → STOPPED.
    async fn watch(&mut self, started: Vec<(String, String)>) {
        let inner = self.inner.clone();
        let mut waits = JoinSet::new();
        let mut running: HashMap<String, String> = HashMap::new();
        for (name, rid) in started {
            let runtime = inner.runtime.clone();
            let n = name.clone();
            let r = rid.clone();
            let task_id = self.id.clone();
            waits.spawn(async move { (n, wait_through_outages(&runtime, &r, &task_id).await) });
            running.insert(name, rid);
        }
        // A stop requested while the task was starting (or before a restart) applies now.
        let mut stopping = false;
        if let Some(req) = self.stop_requested() {
            stopping = true;
            self.begin_stopping(req.code, &req.reason).await;
            self.stop_all(&running);
        } else if inner.task(&self.id).is_some_and(|t| t.desired_status == Status::Stopped) {
            stopping = true;
            let t = inner.task(&self.id).expect("checked");
            let reason = t.stopped_reason.unwrap_or_else(|| "Task stopped by user".into());
            self.begin_stopping(t.stop_code.unwrap_or(StopCode::UserInitiated), &reason).await;
            self.stop_all(&running);
        }
        // Essential containers already stopped (recorded before a restart) stop the task too.
        if !stopping
            && inner
                .task(&self.id)
                .is_some_and(|t| t.containers.iter().any(|c| c.essential && c.last_status == Status::Stopped))
        {
            stopping = true;
            self.begin_stopping(StopCode::EssentialContainerExited, "Essential container in task exited").await;
            self.stop_all(&running);
        }
        while !running.is_empty() {
            tokio::select! {
                joined = waits.join_next() => {
                    let Some(joined) = joined else { break };
                    let mut engine_lost = None;
                    let (name, status) = match joined {
                        Ok((name, Ok(status))) => (name, status),
                        Ok((name, Err(RuntimeError::Unavailable(m)))) => {
                            let reason = format!(
                                "The container engine has been unreachable for {} s ({m}); the container's outcome is unknown",
                                ENGINE_OUTAGE_GRACE.as_secs()
                            );
                            engine_lost = Some(reason.clone());
                            (name, exited(None, &reason))
                        }
                        Ok((name, Err(e))) => (name, exited(None, &format!("lost track of the container: {e}"))),
                        Err(e) => {
                            tracing::error!(task = %self.id, error = %e, "a container waiter failed");
                            continue;
                        }
                    };
                    running.remove(&name);
                    let essential = inner.task(&self.id).is_some_and(|t| t.containers.iter().any(|c| c.name == name && c.essential));
                    self.container_exited(&name, status).await;
                    if essential && !stopping {
                        stopping = true;
                        let reason = engine_lost.as_deref().unwrap_or("Essential container in task exited");
                        self.begin_stopping(StopCode::EssentialContainerExited, reason).await;
                        self.stop_all(&running);
                    }
                }
                changed = self.stop.changed(), if !stopping => {
                    if changed.is_err() {
                        continue;
                    }
                    if let Some(req) = self.stop_requested() {
                        stopping = true;
                        self.begin_stopping(req.code, &req.reason).await;
                        self.stop_all(&running);
                    }
                }
            }
        }
        self.drain_output().await;
        inner
            .change(&self.id, Publish::Yes, |t| {
                t.last_status = Status::Deprovisioning;
                t.desired_status = Status::Stopped;
                t.execution_stopped_at_ms = Some(now_ms());
                t.stopping_at_ms.get_or_insert(now_ms());
            })
            .await;
        if let Some(task) = inner.task(&self.id) {
            for c in &task.containers {
                if let Some(rid) = &c.runtime_id {
                    if let Err(e) = inner.runtime.remove(rid).await {
                        tracing::warn!(task = %self.id, container = %c.name, error = %e, "cannot remove a finished container");
                    }
                }
            }
        }
        inner
            .change(&self.id, Publish::Yes, |t| {
                t.last_status = Status::Stopped;
                t.stopped_at_ms = Some(now_ms());
                if t.stop_code.is_none() {
                    t.stop_code = Some(StopCode::EssentialContainerExited);
                    t.stopped_reason = Some("Essential container in task exited".into());
                }
            })
            .await;
    }
}

/// What the runtime is asked to create for one container of a task.
fn container_spec(task: &Task, c: &TaskContainer, def: &ContainerDefinition) -> ContainerSpec {
    let o = task.overrides.container_overrides.iter().find(|o| o.name == c.name);
    let mut environment = def.environment.clone();
    if let Some(o) = o {
        for (k, v) in &o.environment {
            match environment.iter_mut().find(|(ek, _)| ek == k) {
                Some(e) => e.1 = v.clone(),
                None => environment.push((k.clone(), v.clone())),
            }
        }
    }
    let mut labels = std::collections::BTreeMap::new();
    labels.insert(LABEL_TASK_ARN.to_owned(), task.arn.clone());
    labels.insert(LABEL_CONTAINER_NAME.to_owned(), c.name.clone());
    ContainerSpec {
        runtime_name: runtime_name(&task.id, &c.name),
        image: c.image.clone(),
        entry_point: def.entry_point.clone(),
        command: o.and_then(|o| o.command.clone()).or_else(|| def.command.clone()),
        environment,
        working_directory: def.working_directory.clone(),
        cpu_units: c.cpu,
        memory_mib: c.memory,
        labels,
    }
}

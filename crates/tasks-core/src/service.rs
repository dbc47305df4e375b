//! `TasksService`: the ECS rules over the task store — clusters, task definition revisions, RunTask
//! / DescribeTasks / StopTask / ListTasks — and the bookkeeping every task state change goes
//! through (`Inner::change`: apply, persist, publish, in that order, one change at a time).
//! The lifecycle of a running task lives in `supervisor.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::events::TaskEventSink;
use crate::logsink::LogSink;
use crate::model::*;
use crate::now_ms;
use crate::runtime::ContainerRuntime;
use crate::store::TaskStore;
use crate::supervisor;

/// How long stopped tasks stay describable unless configured otherwise.
pub const DEFAULT_STOPPED_TASK_RETENTION: Duration = Duration::from_secs(24 * 3600);
pub const MAX_RUN_COUNT: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TasksError {
    #[error("{0}")]
    InvalidParameter(String),
    /// ECS's catch-all client error (unknown task definition...).
    #[error("{0}")]
    Client(String),
    #[error("Cluster not found.")]
    ClusterNotFound,
    #[error("{0}")]
    ClusterContainsTasks(String),
    #[error("{0}")]
    Internal(String),
}

#[derive(Debug, Clone)]
pub struct Identity {
    pub account_id: String,
    pub region: String,
}

impl Identity {
    pub fn cluster_arn(&self, name: &str) -> String {
        format!("arn:aws:ecs:{}:{}:cluster/{name}", self.region, self.account_id)
    }
    pub fn task_arn(&self, cluster: &str, id: &str) -> String {
        format!("arn:aws:ecs:{}:{}:task/{cluster}/{id}", self.region, self.account_id)
    }
    pub fn definition_arn(&self, family: &str, revision: u32) -> String {
        format!("arn:aws:ecs:{}:{}:task-definition/{family}:{revision}", self.region, self.account_id)
    }
    pub fn container_arn(&self, cluster: &str, task_id: &str) -> String {
        format!(
            "arn:aws:ecs:{}:{}:container/{cluster}/{task_id}/{}",
            self.region,
            self.account_id,
            uuid::Uuid::new_v4()
        )
    }
}

/// What RunTask asks for, validated by the API layer for shape, here for meaning.
#[derive(Debug, Clone, Default)]
pub struct RunTaskRequest {
    pub cluster: Option<String>,
    pub task_definition: String,
    pub count: u32,
    pub overrides: TaskOverrides,
    pub launch_type: Option<String>,
    pub started_by: Option<String>,
    pub group: Option<String>,
    pub tags: Vec<(String, String)>,
    pub client_token: Option<String>,
}

/// A request to stop a task, delivered to its supervisor.
#[derive(Debug, Clone, PartialEq)]
pub struct StopRequest {
    pub code: StopCode,
    pub reason: String,
}

#[derive(Debug, Default, Clone)]
pub struct ListTasksQuery {
    pub cluster: Option<String>,
    pub family: Option<String>,
    pub started_by: Option<String>,
    /// RUNNING (the default: anything not stopped) or STOPPED.
    pub desired_status: Option<Status>,
    pub launch_type: Option<String>,
}

pub(crate) struct State {
    pub clusters: BTreeMap<String, Cluster>,
    pub definitions: BTreeMap<String, Vec<TaskDefinition>>,
    pub tasks: HashMap<String, Task>,
    pub stop_signals: HashMap<String, watch::Sender<Option<StopRequest>>>,
}

pub(crate) struct Inner {
    pub identity: Identity,
    pub store: Arc<dyn TaskStore>,
    pub runtime: Arc<dyn ContainerRuntime>,
    pub logs: Arc<dyn LogSink>,
    pub state: Mutex<State>,
    /// Serializes apply → persist → publish, so that stored and published versions never go back.
    pub change_lock: tokio::sync::Mutex<()>,
    pub sinks: Mutex<Vec<Arc<dyn TaskEventSink>>>,
}

/// Whether a change is a state change worth an event (and a new `version`), or bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publish {
    Yes,
    No,
}

impl Inner {
    /// Applies `f` to the task, persists the result and (for `Publish::Yes`) bumps the version
    /// and publishes it. Returns the task as changed, or None if it no longer exists.
    pub async fn change(&self, id: &str, publish: Publish, f: impl FnOnce(&mut Task)) -> Option<Task> {
        let _serial = self.change_lock.lock().await;
        let snapshot = {
            let mut st = self.state.lock();
            let task = st.tasks.get_mut(id)?;
            f(task);
            if publish == Publish::Yes {
                task.version += 1;
            }
            task.clone()
        };
        self.persist(&snapshot).await;
        if publish == Publish::Yes {
            self.publish(&snapshot);
        }
        Some(snapshot)
    }

    pub async fn persist(&self, task: &Task) {
        let store = self.store.clone();
        let t = task.clone();
        let r = tokio::task::spawn_blocking(move || store.put_task(&t)).await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(task = %task.id, error = %e, "cannot persist a task state change"),
            Err(e) => tracing::error!(task = %task.id, error = %e, "cannot persist a task state change"),
        }
    }

    pub fn publish(&self, task: &Task) {
        tracing::info!(
            task = %task.id,
            family = %task.family,
            last_status = task.last_status.as_str(),
            version = task.version,
            stop_code = task.stop_code.map(|c| c.as_str()),
            "task state change"
        );
        for sink in self.sinks.lock().iter() {
            sink.task_state_changed(task);
        }
    }

    pub fn task(&self, id: &str) -> Option<Task> {
        self.state.lock().tasks.get(id).cloned()
    }
}

/// The task domain. Cheap to clone.
#[derive(Clone)]
pub struct TasksService {
    pub(crate) inner: Arc<Inner>,
}

fn valid_name(name: &str) -> bool {
    (1..=255).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl TasksService {
    /// Loads the stored state. Call `resume` next (on the async runtime) to reattach to tasks that
    /// were running when lookout stopped.
    pub fn open(
        identity: Identity,
        store: Arc<dyn TaskStore>,
        runtime: Arc<dyn ContainerRuntime>,
        logs: Arc<dyn LogSink>,
    ) -> Result<TasksService, TasksError> {
        let snap = store.load().map_err(|e| TasksError::Internal(e.to_string()))?;
        let mut definitions: BTreeMap<String, Vec<TaskDefinition>> = BTreeMap::new();
        for d in snap.definitions {
            definitions.entry(d.family.clone()).or_default().push(d);
        }
        let state = State {
            clusters: snap.clusters.into_iter().map(|c| (c.name.clone(), c)).collect(),
            definitions,
            tasks: snap.tasks.into_iter().map(|t| (t.id.clone(), t)).collect(),
            stop_signals: HashMap::new(),
        };
        Ok(TasksService {
            inner: Arc::new(Inner {
                identity,
                store,
                runtime,
                logs,
                state: Mutex::new(state),
                change_lock: tokio::sync::Mutex::new(()),
                sinks: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// Every later state change also goes to `sink` (the event bus).
    pub fn add_event_sink(&self, sink: Arc<dyn TaskEventSink>) {
        self.inner.sinks.lock().push(sink);
    }

    /// Reattaches to the tasks that were not stopped when lookout last ran.
    pub async fn resume(&self) {
        let ids: Vec<String> =
            self.inner.state.lock().tasks.values().filter(|t| !t.is_stopped()).map(|t| t.id.clone()).collect();
        if !ids.is_empty() {
            tracing::info!(tasks = ids.len(), runtime = self.inner.runtime.kind(), "reattaching to unfinished tasks");
        }
        for id in ids {
            let rx = self.stop_channel(&id);
            tokio::spawn(supervisor::resume(self.inner.clone(), id, rx));
        }
    }

    fn stop_channel(&self, id: &str) -> watch::Receiver<Option<StopRequest>> {
        let (tx, rx) = watch::channel(None);
        self.inner.state.lock().stop_signals.insert(id.to_owned(), tx);
        rx
    }

    // ---- clusters

    /// Resolves a cluster name or ARN (None = `default`) to its name; `default` always exists.
    fn cluster_name(&self, cluster: Option<&str>) -> Result<String, TasksError> {
        let name = match cluster {
            None | Some("") => "default",
            Some(c) => c.rsplit_once(":cluster/").map(|(_, n)| n).unwrap_or(c),
        };
        if name == "default" || self.inner.state.lock().clusters.contains_key(name) {
            Ok(name.to_owned())
        } else {
            Err(TasksError::ClusterNotFound)
        }
    }

    fn default_cluster(&self) -> Cluster {
        Cluster {
            name: "default".into(),
            arn: self.inner.identity.cluster_arn("default"),
            created_at_ms: 0,
            tags: vec![],
        }
    }

    pub async fn create_cluster(&self, name: Option<&str>, tags: Vec<(String, String)>) -> Result<Cluster, TasksError> {
        let name = name.unwrap_or("default");
        if !valid_name(name) {
            return Err(TasksError::InvalidParameter(
                "Cluster name should only contain letters (uppercase and lowercase), numbers, underscores and hyphens, and be up to 255 characters long.".into(),
            ));
        }
        if let Some(c) = self.inner.state.lock().clusters.get(name) {
            return Ok(c.clone());
        }
        let cluster = Cluster {
            name: name.to_owned(),
            arn: self.inner.identity.cluster_arn(name),
            created_at_ms: now_ms(),
            tags,
        };
        let c = cluster.clone();
        self.blocking_store(move |s| s.put_cluster(&c)).await?;
        self.inner.state.lock().clusters.insert(name.to_owned(), cluster.clone());
        Ok(cluster)
    }

    pub async fn delete_cluster(&self, cluster: &str) -> Result<Cluster, TasksError> {
        let name = self.cluster_name(Some(cluster))?;
        let c = {
            let st = self.inner.state.lock();
            if st.tasks.values().any(|t| t.cluster == name && !t.is_stopped()) {
                return Err(TasksError::ClusterContainsTasks(
                    "The Cluster cannot be deleted while Tasks are active.".into(),
                ));
            }
            st.clusters.get(&name).cloned()
        };
        let c = c.unwrap_or_else(|| self.default_cluster());
        let n = name.clone();
        self.blocking_store(move |s| s.delete_cluster(&n)).await?;
        self.inner.state.lock().clusters.remove(&name);
        Ok(c)
    }

    /// Clusters by name or ARN; the names not found come back separately (ECS reports them as
    /// `MISSING` failures). No names = `default`.
    pub fn describe_clusters(&self, names: &[String]) -> (Vec<(Cluster, ClusterCounts)>, Vec<String>) {
        let names = if names.is_empty() { vec!["default".to_owned()] } else { names.to_vec() };
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for n in names {
            match self.cluster_name(Some(&n)) {
                Ok(name) => {
                    let st = self.inner.state.lock();
                    let c = st.clusters.get(&name).cloned().unwrap_or_else(|| self.default_cluster());
                    let mut counts = ClusterCounts::default();
                    for t in st.tasks.values().filter(|t| t.cluster == name) {
                        match t.last_status {
                            Status::Running => counts.running += 1,
                            Status::Stopped => {}
                            _ => counts.pending += 1,
                        }
                    }
                    found.push((c, counts));
                }
                Err(_) => missing.push(n),
            }
        }
        (found, missing)
    }

    pub fn list_clusters(&self) -> Vec<String> {
        let st = self.inner.state.lock();
        let mut arns: Vec<String> = st.clusters.values().map(|c| c.arn.clone()).collect();
        if !st.clusters.contains_key("default") {
            arns.push(self.inner.identity.cluster_arn("default"));
        }
        arns.sort();
        arns
    }

    // ---- task definitions

    pub async fn register_definition(
        &self,
        family: &str,
        containers: Vec<ContainerDefinition>,
        extra: DefinitionExtras,
    ) -> Result<TaskDefinition, TasksError> {
        if !valid_name(family) {
            return Err(TasksError::Client(
                "Family contains invalid characters: up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.".into(),
            ));
        }
        if containers.is_empty() {
            return Err(TasksError::Client("Container list cannot be empty.".into()));
        }
        let mut names = std::collections::HashSet::new();
        for c in &containers {
            if !valid_name(&c.name) {
                return Err(TasksError::Client(format!(
                    "Container name {:?} is invalid: up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.",
                    c.name
                )));
            }
            if !names.insert(c.name.as_str()) {
                return Err(TasksError::Client(format!(
                    "Duplicate container name {:?} in the task definition.",
                    c.name
                )));
            }
            if c.image.is_empty() {
                return Err(TasksError::Client(format!("Container.image should not be null or empty ({}).", c.name)));
            }
            if let Some(lc) = &c.log_configuration {
                if lc.log_driver == "awslogs" && lc.option("awslogs-group").is_none_or(str::is_empty) {
                    return Err(TasksError::Client(format!(
                        "Log driver awslogs option 'awslogs-group' should not be null or empty (container {}).",
                        c.name
                    )));
                }
            }
        }
        if !containers.iter().any(ContainerDefinition::is_essential) {
            return Err(TasksError::Client("A task definition must have at least one essential container.".into()));
        }
        let _serial = self.inner.change_lock.lock().await;
        let revision =
            self.inner.state.lock().definitions.get(family).and_then(|v| v.last()).map_or(1, |d| d.revision + 1);
        let def = TaskDefinition {
            family: family.to_owned(),
            revision,
            arn: self.inner.identity.definition_arn(family, revision),
            containers,
            cpu: extra.cpu,
            memory: extra.memory,
            network_mode: extra.network_mode,
            requires_compatibilities: extra.requires_compatibilities,
            task_role_arn: extra.task_role_arn,
            execution_role_arn: extra.execution_role_arn,
            status: DefinitionStatus::Active,
            registered_at_ms: now_ms(),
            deregistered_at_ms: None,
            tags: extra.tags,
        };
        let d = def.clone();
        self.blocking_store(move |s| s.put_definition(&d)).await?;
        self.inner.state.lock().definitions.entry(family.to_owned()).or_default().push(def.clone());
        Ok(def)
    }

    /// `family`, `family:revision` or a task definition ARN. `family` alone is the latest ACTIVE
    /// revision.
    pub fn definition(&self, reference: &str) -> Result<TaskDefinition, TasksError> {
        let r = reference.rsplit_once(":task-definition/").map(|(_, r)| r).unwrap_or(reference);
        let st = self.inner.state.lock();
        let found = match r.rsplit_once(':') {
            Some((family, rev)) => {
                let rev: u32 =
                    rev.parse().map_err(|_| TasksError::Client(format!("Invalid revision number. Number: {rev}")))?;
                st.definitions.get(family).and_then(|v| v.iter().find(|d| d.revision == rev)).cloned()
            }
            None => st
                .definitions
                .get(r)
                .and_then(|v| v.iter().rev().find(|d| d.status == DefinitionStatus::Active))
                .cloned(),
        };
        found.ok_or_else(|| TasksError::Client("Unable to describe task definition.".into()))
    }

    /// Task definition ARNs, filtered, ordered by family then revision (descending with `desc`).
    pub fn list_definitions(
        &self,
        family_prefix: Option<&str>,
        status: Option<DefinitionStatus>,
        desc: bool,
    ) -> Vec<String> {
        let st = self.inner.state.lock();
        let mut arns: Vec<String> = st
            .definitions
            .iter()
            .filter(|(f, _)| family_prefix.is_none_or(|p| f.as_str() == p))
            .flat_map(|(_, v)| v.iter())
            .filter(|d| d.status == status.clone().unwrap_or(DefinitionStatus::Active))
            .map(|d| d.arn.clone())
            .collect();
        if desc {
            arns.reverse();
        }
        arns
    }

    pub fn list_families(&self, prefix: Option<&str>, status: Option<DefinitionStatus>) -> Vec<String> {
        let st = self.inner.state.lock();
        st.definitions
            .iter()
            .filter(|(f, _)| prefix.is_none_or(|p| f.starts_with(p)))
            .filter(|(_, v)| match &status {
                None => true,
                Some(DefinitionStatus::Active) => v.iter().any(|d| d.status == DefinitionStatus::Active),
                Some(DefinitionStatus::Inactive) => v.iter().all(|d| d.status == DefinitionStatus::Inactive),
            })
            .map(|(f, _)| f.clone())
            .collect()
    }

    pub async fn deregister_definition(&self, reference: &str) -> Result<TaskDefinition, TasksError> {
        let r = reference.rsplit_once(":task-definition/").map(|(_, r)| r).unwrap_or(reference);
        if !r.contains(':') {
            return Err(TasksError::InvalidParameter(
                "Invalid revision number. A task definition revision must be specified to deregister it.".into(),
            ));
        }
        let mut def = self.definition(reference)?;
        if def.status == DefinitionStatus::Inactive {
            return Ok(def);
        }
        def.status = DefinitionStatus::Inactive;
        def.deregistered_at_ms = Some(now_ms());
        let d = def.clone();
        self.blocking_store(move |s| s.put_definition(&d)).await?;
        let mut st = self.inner.state.lock();
        if let Some(d) =
            st.definitions.get_mut(&def.family).and_then(|v| v.iter_mut().find(|d| d.revision == def.revision))
        {
            *d = def.clone();
        }
        Ok(def)
    }

    // ---- tasks

    pub async fn run_task(&self, req: RunTaskRequest) -> Result<Vec<Task>, TasksError> {
        let cluster = self.cluster_name(req.cluster.as_deref())?;
        if req.count == 0 || req.count > MAX_RUN_COUNT {
            return Err(TasksError::InvalidParameter("Count must be between 1 and 10.".into()));
        }
        let def = self
            .definition(&req.task_definition)
            .map_err(|_| TasksError::Client("TaskDefinition not found.".into()))?;
        if def.status == DefinitionStatus::Inactive {
            return Err(TasksError::Client(format!("TaskDefinition is inactive: {}", def.arn)));
        }
        for o in &req.overrides.container_overrides {
            if !def.containers.iter().any(|c| c.name == o.name) {
                return Err(TasksError::InvalidParameter(format!(
                    "Override for container named {} is not a container in the TaskDefinition.",
                    o.name
                )));
            }
        }
        if let Some(token) = &req.client_token {
            let st = self.inner.state.lock();
            let mut same: Vec<Task> =
                st.tasks.values().filter(|t| t.client_token.as_deref() == Some(token)).cloned().collect();
            if !same.is_empty() {
                same.sort_by(|a, b| a.created_at_ms.cmp(&b.created_at_ms).then(a.id.cmp(&b.id)));
                return Ok(same);
            }
        }
        let mut tasks = Vec::new();
        for _ in 0..req.count {
            let task = self.new_task(&cluster, &def, &req);
            {
                let _serial = self.inner.change_lock.lock().await;
                self.inner.state.lock().tasks.insert(task.id.clone(), task.clone());
                self.inner.persist(&task).await;
                self.inner.publish(&task);
            }
            let rx = self.stop_channel(&task.id);
            tokio::spawn(supervisor::run(self.inner.clone(), task.id.clone(), rx));
            tasks.push(task);
        }
        Ok(tasks)
    }

    fn new_task(&self, cluster: &str, def: &TaskDefinition, req: &RunTaskRequest) -> Task {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let identity = &self.inner.identity;
        let containers = def
            .containers
            .iter()
            .map(|c| {
                let o = req.overrides.container_overrides.iter().find(|o| o.name == c.name);
                let log_target = c.log_configuration.as_ref().filter(|l| l.log_driver == "awslogs").map(|l| {
                    let group = l.option("awslogs-group").unwrap_or_default().to_owned();
                    let stream = match l.option("awslogs-stream-prefix").filter(|p| !p.is_empty()) {
                        Some(p) => format!("{p}/{}/{id}", c.name),
                        None => format!("{}/{id}", c.name),
                    };
                    let create_group = l.option("awslogs-create-group").is_some_and(|v| v.eq_ignore_ascii_case("true"));
                    LogTarget { group, stream, create_group }
                });
                TaskContainer {
                    name: c.name.clone(),
                    arn: identity.container_arn(cluster, &id),
                    image: c.image.clone(),
                    essential: c.is_essential(),
                    last_status: Status::Pending,
                    exit_code: None,
                    reason: None,
                    cpu: o.and_then(|o| o.cpu).or(c.cpu),
                    memory: o.and_then(|o| o.memory).or(c.memory),
                    runtime_id: None,
                    log_target,
                }
            })
            .collect();
        Task {
            arn: identity.task_arn(cluster, &id),
            id,
            cluster: cluster.to_owned(),
            cluster_arn: identity.cluster_arn(cluster),
            task_definition_arn: def.arn.clone(),
            family: def.family.clone(),
            revision: def.revision,
            last_status: Status::Provisioning,
            desired_status: Status::Running,
            launch_type: req.launch_type.clone().unwrap_or_else(|| "FARGATE".into()),
            started_by: req.started_by.clone(),
            group: req.group.clone().unwrap_or_else(|| format!("family:{}", def.family)),
            cpu: req.overrides.cpu.clone().or_else(|| def.cpu.clone()),
            memory: req.overrides.memory.clone().or_else(|| def.memory.clone()),
            overrides: req.overrides.clone(),
            containers,
            created_at_ms: now_ms(),
            pull_started_at_ms: None,
            pull_stopped_at_ms: None,
            started_at_ms: None,
            stopping_at_ms: None,
            execution_stopped_at_ms: None,
            stopped_at_ms: None,
            stop_code: None,
            stopped_reason: None,
            version: 1,
            tags: req.tags.clone(),
            client_token: req.client_token.clone(),
            runtime: self.inner.runtime.kind().to_owned(),
        }
    }

    /// Task id or ARN → id (the id is the ARN's last segment).
    fn task_id(reference: &str) -> &str {
        reference.rsplit('/').next().unwrap_or(reference)
    }

    /// Tasks by id or ARN in the given cluster; the references not found come back separately.
    pub fn describe_tasks(
        &self,
        cluster: Option<&str>,
        refs: &[String],
    ) -> Result<(Vec<Task>, Vec<String>), TasksError> {
        let cluster = self.cluster_name(cluster)?;
        let st = self.inner.state.lock();
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for r in refs {
            match st.tasks.get(Self::task_id(r)).filter(|t| t.cluster == cluster) {
                Some(t) => found.push(t.clone()),
                None => missing.push(r.clone()),
            }
        }
        Ok((found, missing))
    }

    pub async fn stop_task(
        &self,
        cluster: Option<&str>,
        reference: &str,
        reason: Option<&str>,
    ) -> Result<Task, TasksError> {
        let cluster = self.cluster_name(cluster)?;
        let id = Self::task_id(reference).to_owned();
        let sender = {
            let st = self.inner.state.lock();
            match st.tasks.get(&id).filter(|t| t.cluster == cluster) {
                None => return Err(TasksError::InvalidParameter("The referenced task was not found.".into())),
                Some(t) if t.is_stopped() => return Ok(t.clone()),
                Some(_) => st.stop_signals.get(&id).cloned(),
            }
        };
        let reason = reason.filter(|r| !r.is_empty()).unwrap_or("Task stopped by user").to_owned();
        let task = self
            .inner
            .change(&id, Publish::No, |t| {
                if t.desired_status != Status::Stopped {
                    t.desired_status = Status::Stopped;
                    t.stop_code = Some(StopCode::UserInitiated);
                    t.stopped_reason = Some(reason.clone());
                }
            })
            .await
            .ok_or_else(|| TasksError::InvalidParameter("The referenced task was not found.".into()))?;
        if let Some(tx) = sender {
            let _ = tx.send(Some(StopRequest { code: StopCode::UserInitiated, reason }));
        }
        Ok(task)
    }

    /// Task ARNs matching the query, newest first.
    pub fn list_tasks(&self, q: &ListTasksQuery) -> Result<Vec<String>, TasksError> {
        let cluster = self.cluster_name(q.cluster.as_deref())?;
        let st = self.inner.state.lock();
        let want_stopped = q.desired_status == Some(Status::Stopped);
        let mut tasks: Vec<&Task> = st
            .tasks
            .values()
            .filter(|t| t.cluster == cluster)
            .filter(|t| (t.desired_status == Status::Stopped) == want_stopped)
            .filter(|t| q.family.as_deref().is_none_or(|f| t.family == f))
            .filter(|t| q.started_by.as_deref().is_none_or(|s| t.started_by.as_deref() == Some(s)))
            .filter(|t| q.launch_type.as_deref().is_none_or(|l| t.launch_type == l))
            .collect();
        tasks.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then(a.id.cmp(&b.id)));
        Ok(tasks.into_iter().map(|t| t.arn.clone()).collect())
    }

    /// Every known task (for the CLI and console), newest first.
    /// One task by id (running or stopped within the retention).
    pub fn task(&self, id: &str) -> Option<Task> {
        self.inner.task(id)
    }

    pub fn all_tasks(&self) -> Vec<Task> {
        let mut v: Vec<Task> = self.inner.state.lock().tasks.values().cloned().collect();
        v.sort_by_key(|t| std::cmp::Reverse(t.created_at_ms));
        v
    }

    /// Forgets stopped tasks older than `retention`; returns how many.
    pub async fn expire_stopped(&self, retention: Duration) -> usize {
        let cutoff = now_ms() - retention.as_millis() as i64;
        let ids: Vec<String> = self
            .inner
            .state
            .lock()
            .tasks
            .values()
            .filter(|t| t.is_stopped() && t.stopped_at_ms.unwrap_or(t.created_at_ms) < cutoff)
            .map(|t| t.id.clone())
            .collect();
        if ids.is_empty() {
            return 0;
        }
        let store = self.inner.store.clone();
        let del = ids.clone();
        match tokio::task::spawn_blocking(move || store.delete_tasks(&del)).await {
            Ok(Ok(())) => {
                let mut st = self.inner.state.lock();
                for id in &ids {
                    st.tasks.remove(id);
                }
                ids.len()
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot expire stopped tasks");
                0
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot expire stopped tasks");
                0
            }
        }
    }

    /// Runs `expire_stopped` every minute for as long as the runtime lives.
    pub fn spawn_janitor(&self, retention: Duration) {
        let svc = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let n = svc.expire_stopped(retention).await;
                if n > 0 {
                    tracing::info!(tasks = n, "forgot stopped tasks past their retention");
                }
            }
        });
    }

    async fn blocking_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn TaskStore) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, TasksError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| TasksError::Internal(e.to_string()))?
            .map_err(|e| TasksError::Internal(e.to_string()))
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct ClusterCounts {
    pub running: usize,
    pub pending: usize,
}

/// The optional task-level members of RegisterTaskDefinition.
#[derive(Debug, Default, Clone)]
pub struct DefinitionExtras {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub network_mode: Option<String>,
    pub requires_compatibilities: Vec<String>,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    pub tags: Vec<(String, String)>,
}

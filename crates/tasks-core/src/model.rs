//! The task domain's data: clusters, task definitions, tasks and their containers, statuses and
//! stop codes. Serde here is the **storage** format of `store.rs`, not the wire: the ECS API layer
//! has its own DTOs and maps to and from these types.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub arn: String,
    pub created_at_ms: i64,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DefinitionStatus {
    Active,
    Inactive,
}

impl DefinitionStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DefinitionStatus::Active => "ACTIVE",
            DefinitionStatus::Inactive => "INACTIVE",
        }
    }
}

/// `logConfiguration` of a container definition. Only the `awslogs` driver ships output into
/// lookout's log store; other drivers are kept and reported but their output is dropped.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LogConfiguration {
    pub log_driver: String,
    pub options: Vec<(String, String)>,
}

impl LogConfiguration {
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HealthCheck {
    pub command: Vec<String>,
    pub interval: Option<u32>,
    pub timeout: Option<u32>,
    pub retries: Option<u32>,
    pub start_period: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entry_point: Option<Vec<String>>,
    pub environment: Vec<(String, String)>,
    /// Defaults to true when not given.
    pub essential: Option<bool>,
    pub cpu: Option<u32>,
    pub memory: Option<u64>,
    pub memory_reservation: Option<u64>,
    /// Seconds between SIGTERM and SIGKILL when the task stops.
    pub stop_timeout: Option<u32>,
    pub working_directory: Option<String>,
    pub health_check: Option<HealthCheck>,
    pub log_configuration: Option<LogConfiguration>,
}

impl ContainerDefinition {
    pub fn is_essential(&self) -> bool {
        self.essential.unwrap_or(true)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinition {
    pub family: String,
    pub revision: u32,
    pub arn: String,
    pub containers: Vec<ContainerDefinition>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub network_mode: Option<String>,
    pub requires_compatibilities: Vec<String>,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    pub status: DefinitionStatus,
    pub registered_at_ms: i64,
    pub deregistered_at_ms: Option<i64>,
    pub tags: Vec<(String, String)>,
}

/// A task's or a container's status. Tasks walk PROVISIONING → PENDING → RUNNING → (STOPPING) →
/// DEPROVISIONING → STOPPED; containers PENDING → RUNNING → STOPPED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Provisioning => "PROVISIONING",
            Status::Pending => "PENDING",
            Status::Activating => "ACTIVATING",
            Status::Running => "RUNNING",
            Status::Deactivating => "DEACTIVATING",
            Status::Stopping => "STOPPING",
            Status::Deprovisioning => "DEPROVISIONING",
            Status::Stopped => "STOPPED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
    ServiceSchedulerInitiated,
}

impl StopCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            StopCode::TaskFailedToStart => "TaskFailedToStart",
            StopCode::EssentialContainerExited => "EssentialContainerExited",
            StopCode::UserInitiated => "UserInitiated",
            StopCode::ServiceSchedulerInitiated => "ServiceSchedulerInitiated",
        }
    }
}

/// RunTask's per-container overrides.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContainerOverride {
    pub name: String,
    pub command: Option<Vec<String>>,
    pub environment: Vec<(String, String)>,
    pub cpu: Option<u32>,
    pub memory: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskOverrides {
    pub container_overrides: Vec<ContainerOverride>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

/// Where a container's output goes in the log store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogTarget {
    pub group: String,
    pub stream: String,
    pub create_group: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskContainer {
    pub name: String,
    pub arn: String,
    pub image: String,
    pub essential: bool,
    pub last_status: Status,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub cpu: Option<u32>,
    pub memory: Option<u64>,
    /// The runtime's id for it, once created.
    pub runtime_id: Option<String>,
    pub log_target: Option<LogTarget>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub arn: String,
    pub cluster: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    pub family: String,
    pub revision: u32,
    pub last_status: Status,
    pub desired_status: Status,
    pub launch_type: String,
    pub started_by: Option<String>,
    pub group: String,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub overrides: TaskOverrides,
    pub containers: Vec<TaskContainer>,
    pub created_at_ms: i64,
    pub pull_started_at_ms: Option<i64>,
    pub pull_stopped_at_ms: Option<i64>,
    pub started_at_ms: Option<i64>,
    pub stopping_at_ms: Option<i64>,
    pub execution_stopped_at_ms: Option<i64>,
    pub stopped_at_ms: Option<i64>,
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    /// Increments on every persisted change; state-change events carry it.
    pub version: u64,
    pub tags: Vec<(String, String)>,
    pub client_token: Option<String>,
    /// Which runtime runs it (`docker` or `process`): a restarted lookout reattaches through it.
    pub runtime: String,
}

impl Task {
    pub fn is_stopped(&self) -> bool {
        self.last_status == Status::Stopped
    }
}

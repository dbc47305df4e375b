//! lookout's task runtime (the ECS-compatible part): clusters, task definitions and tasks, their
//! persisted state machine, the supervisor that runs each task's containers through a
//! `ContainerRuntime`, streams their output into the log store and publishes every state change.
//!
//! - `model`: the domain types; `store`: their durable home (`TaskStore`, redb);
//! - `service`: `TasksService`, the ECS rules and the apply → persist → publish path;
//! - `supervisor`: one task's lifecycle; `runtime`: Docker Engine API and local processes;
//! - `logsink`: container output → log store; `events`: the "ECS Task State Change" event.

pub mod events;
pub mod logsink;
pub mod model;
pub mod runtime;
pub mod service;
pub mod store;
mod supervisor;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub use service::{
    ClusterCounts, DefinitionExtras, Identity, ListTasksQuery, RunTaskRequest, TasksError, TasksService,
    DEFAULT_STOPPED_TASK_RETENTION,
};

//! ECS task state changes onto the default bus, without losing one across a crash. The task domain
//! calls `TaskEventSink` synchronously after each persisted change; this queues the task (in order)
//! and one async task puts its event on the bus, recording the task's version in the same commit
//! as the event's deliveries. At start, `catch_up` puts the current state of every task whose
//! stored version is newer than what reached the bus (the change a crash interrupted), once.

use lookout_tasks::events::{state_change_event, TaskEventSink};
use lookout_tasks::model::Task;
use lookout_tasks::TasksService;
use tokio::sync::mpsc;

use crate::service::{EventsService, DEFAULT_BUS};

pub struct TaskEventsToBus {
    tx: mpsc::UnboundedSender<Task>,
}

impl TaskEventsToBus {
    /// Starts the forwarding task (call on the async runtime).
    pub fn start(events: EventsService) -> TaskEventsToBus {
        let (tx, mut rx) = mpsc::unbounded_channel::<Task>();
        tokio::spawn(async move {
            while let Some(task) = rx.recv().await {
                forward(&events, &task).await;
            }
        });
        TaskEventsToBus { tx }
    }
}

async fn forward(events: &EventsService, task: &Task) {
    let id = events.identity();
    let event = state_change_event(task, &id.account_id, &id.region);
    if let Err(e) = events.publish_source_event(DEFAULT_BUS, &task.arn, task.version, event).await {
        tracing::error!(task = %task.id, error = %e, "cannot put an ECS task state change on the default bus");
    }
}

/// Puts the latest state of every task whose last change never reached the bus (lookout stopped
/// between the two commits), and forgets the positions of tasks no longer kept. Call at start,
/// before tasks resume.
pub async fn catch_up(events: &EventsService, tasks: &TasksService) {
    let all = tasks.all_tasks();
    let mut put = 0;
    // A data directory from before the event bus: its tasks' changes are history, not news.
    let baseline = events.store_created_now();
    for task in &all {
        if baseline {
            if let Err(e) = events.set_source_position(&task.arn, task.version).await {
                tracing::warn!(task = %task.id, error = %e, "cannot record a task's bus position");
            }
            continue;
        }
        if events.source_position(&task.arn).is_none_or(|v| v < task.version) {
            forward(events, task).await;
            put += 1;
        }
    }
    if put > 0 {
        tracing::info!(tasks = put, "task state changes that had not reached the event bus were put on it");
    }
    let known: std::collections::HashSet<String> = all.into_iter().map(|t| t.arn).collect();
    if let Err(e) = events.retain_source_positions(move |k| known.contains(k)).await {
        tracing::warn!(error = %e, "cannot forget the bus positions of expired tasks");
    }
}

impl TaskEventSink for TaskEventsToBus {
    fn task_state_changed(&self, task: &Task) {
        let _ = self.tx.send(task.clone());
    }
}

//! ECS task state changes onto the default bus. The task domain calls `TaskEventSink` synchronously
//! after each persisted change; this queues the event (unbounded, in order) and one async task puts
//! it on the bus, so the task supervisor never waits for rule matching.

use lookout_tasks::events::{state_change_event, TaskEventSink};
use lookout_tasks::model::Task;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::service::{EventsService, DEFAULT_BUS};

pub struct TaskEventsToBus {
    tx: mpsc::UnboundedSender<Value>,
    account: String,
    region: String,
}

impl TaskEventsToBus {
    /// Starts the forwarding task (call on the async runtime).
    pub fn start(events: EventsService) -> TaskEventsToBus {
        let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
        let account = events.identity().account_id.clone();
        let region = events.identity().region.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if let Err(e) = events.publish_event(DEFAULT_BUS, event).await {
                    tracing::error!(error = %e, "cannot put an ECS task state change on the default bus");
                }
            }
        });
        TaskEventsToBus { tx, account, region }
    }
}

impl TaskEventSink for TaskEventsToBus {
    fn task_state_changed(&self, task: &Task) {
        let _ = self.tx.send(state_change_event(task, &self.account, &self.region));
    }
}

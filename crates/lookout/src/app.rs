//! `App`: the state every request handler shares (the domain services), cheap to clone.

use lookout_events::EventsService;
use lookout_logs::{Identity, LogsService};
use lookout_notify::NotifyService;
use lookout_tasks::TasksService;

#[derive(Clone)]
pub struct App {
    pub logs: LogsService,
    pub tasks: TasksService,
    pub notify: NotifyService,
    pub events: EventsService,
    pub identity: Identity,
    /// The log store's intake over the last hour, for the console's overview.
    pub ingest: std::sync::Arc<crate::console::IngestHistory>,
}

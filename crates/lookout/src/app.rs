//! `App`: the state every request handler shares (the domain services), cheap to clone.

use lookout_logs::{Identity, LogsService};
use lookout_tasks::TasksService;

#[derive(Clone)]
pub struct App {
    pub logs: LogsService,
    pub tasks: TasksService,
    pub identity: Identity,
}

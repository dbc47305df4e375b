//! `App`: the state every request handler shares (the domain services), cheap to clone.

use lookout_logs::{Identity, LogsService};

#[derive(Clone)]
pub struct App {
    pub logs: LogsService,
    pub identity: Identity,
}

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
    /// The console's ingest history and session key.
    pub console: std::sync::Arc<crate::console::ConsoleState>,
    /// Whether requests must be signed, and by which keys.
    pub auth: crate::auth::AuthMode,
    /// Request counters and latencies for `/metrics`.
    pub metrics: std::sync::Arc<crate::metrics::RequestMetrics>,
    /// The threads that decode PutLogEvents bodies.
    pub decode: crate::decode_pool::DecodePool,
}

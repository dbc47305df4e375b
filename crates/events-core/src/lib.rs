//! lookout's event bus (the EventBridge-compatible part): buses, rules with event patterns or
//! schedules, targets, and durable delivery.
//!
//! - `model`: the domain types; `store`: their durable home (`EventStore`, redb), including the
//!   delivery outbox and the finished/dead-lettered deliveries;
//! - `service`: `EventsService` — the EventBridge rules, PutEvents and internal events, matching
//!   with `lookout-event-pattern`'s `RuleSet`;
//! - `input`: Input / InputPath / InputTransformer; `delivery`: workers, retries, dead letters,
//!   and the target kinds; `scheduler`: rate/cron rules (`lookout-schedule`);
//! - `task_events`: ECS task state changes onto the default bus.

pub mod delivery;
pub mod input;
pub mod model;
mod scheduler;
pub mod service;
pub mod store;
pub mod task_events;

pub use delivery::{DeliveryConfig, TopicPublisher};
pub use service::{EntryResult, EventsError, EventsService, Identity, NewEvent, RuleSpec, DEFAULT_BUS};

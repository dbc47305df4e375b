//! The API layers: one module per AWS service, each the only code that knows its wire format.

pub mod admin;
pub mod ecs;
pub mod events;
pub mod logs;
pub mod sns;
pub mod sts;

//! The API layers: one module per AWS service, each the only code that knows its wire format.

pub mod ecs;
pub mod logs;
pub mod sts;

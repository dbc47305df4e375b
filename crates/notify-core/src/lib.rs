//! lookout's notification domain (the SNS-compatible part): topics, subscriptions (email,
//! email-json, http, https) with their confirmation, and durable delivery — Publish writes one
//! delivery per confirmed subscription to an outbox before it returns; a worker sends them (SMTP
//! relay, signed HTTP(S) POSTs) with bounded retries and keeps the ones that fail for good.
//!
//! - `model`: the types; `store`: their durable home (`NotifyStore`, redb);
//! - `service`: `NotifyService`, SNS's rules and Publish (what other domains call);
//! - `delivery`: the outbox worker; `retry`: retry schedules; `transport`: HTTP and SMTP;
//! - `message`: the documents and mails subscribers receive; `signing`: SignatureVersion 2.
//!
//! No HTTP server types here: the API layer serves the links this crate builds.

mod delivery;
pub mod error;
pub mod message;
pub mod model;
pub mod retry;
pub mod service;
#[cfg(test)]
mod service_tests;
pub mod signing;
pub mod store;
pub mod transport;

pub use error::NotifyError;
pub use model::{Delivery, Identity, MessageKind, Protocol, Subscription, SubscriptionStatus, Topic};
pub use retry::RetryPolicy;
pub use service::{NotifyConfig, NotifyService, TopicAttributes, DEFAULT_SMTP_FROM, PAGE_SIZE};

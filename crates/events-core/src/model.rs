//! The event-bus domain's data: buses, rules, targets, events in flight (deliveries) and dead
//! letters. Serde here is the **storage** encoding of `store.rs`; the EventBridge API layer has its
//! own DTOs.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBus {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub created_ms: i64,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleState {
    Enabled,
    Disabled,
}

impl RuleState {
    pub fn as_str(&self) -> &'static str {
        match self {
            RuleState::Enabled => "ENABLED",
            RuleState::Disabled => "DISABLED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub bus: String,
    pub arn: String,
    pub event_pattern: Option<String>,
    pub schedule: Option<String>,
    pub state: RuleState,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    pub created_ms: i64,
    /// When the schedule counts from (rate expressions fire every period after it).
    pub schedule_anchor_ms: i64,
    /// The last time the schedule fired (restart-safe catch-up counts from it).
    pub last_fired_ms: Option<i64>,
    pub targets: Vec<Target>,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InputTransformer {
    pub paths_map: Vec<(String, String)>,
    pub template: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0–185).
    pub maximum_retry_attempts: u32,
    /// How long an event may wait for delivery (60–86,400 s).
    pub maximum_event_age_secs: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { maximum_retry_attempts: 185, maximum_event_age_secs: 86_400 }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EcsParameters {
    pub task_definition_arn: String,
    pub task_count: Option<u32>,
    pub launch_type: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HttpParameters {
    pub header_parameters: Vec<(String, String)>,
    pub query_string_parameters: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub arn: String,
    pub role_arn: Option<String>,
    pub input: Option<String>,
    pub input_path: Option<String>,
    pub input_transformer: Option<InputTransformer>,
    pub retry_policy: Option<RetryPolicy>,
    pub dead_letter_arn: Option<String>,
    pub ecs_parameters: Option<EcsParameters>,
    pub http_parameters: Option<HttpParameters>,
}

/// An API destination: an HTTP endpoint with its connection's authorization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiDestination {
    pub name: String,
    pub arn: String,
    pub connection_arn: String,
    pub endpoint: String,
    pub http_method: String,
    pub created_ms: i64,
}

/// How a connection authorizes requests to an API destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConnectionAuth {
    ApiKey { name: String, value: String },
    Basic { username: String, password: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub name: String,
    pub arn: String,
    pub auth: ConnectionAuth,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryState {
    Pending,
    Succeeded,
    DeadLettered,
}

impl DeliveryState {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryState::Pending => "PENDING",
            DeliveryState::Succeeded => "SUCCEEDED",
            DeliveryState::DeadLettered => "DEAD_LETTERED",
        }
    }
}

/// One event on its way to one target: persisted before the first attempt, updated after each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub rule_arn: String,
    pub rule_name: String,
    pub target: Target,
    /// What the target receives (after Input / InputPath / InputTransformer).
    pub payload: String,
    pub created_ms: i64,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<DeliveryError>,
    pub state: DeliveryState,
    pub finished_ms: Option<i64>,
    /// Why it was dead-lettered: `MaximumRetryAttemptsExhausted`, `MaximumEventAgeExceeded` or
    /// `NonRetryableError`.
    pub exhausted_condition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DeliveryError {
    pub code: String,
    pub message: String,
    /// Whether trying again may help (network errors, 5xx, throttling) or not (4xx, bad input).
    pub retryable: bool,
}

impl DeliveryError {
    pub fn retryable(code: &str, message: impl Into<String>) -> DeliveryError {
        DeliveryError { code: code.to_owned(), message: message.into(), retryable: true }
    }
    pub fn fatal(code: &str, message: impl Into<String>) -> DeliveryError {
        DeliveryError { code: code.to_owned(), message: message.into(), retryable: false }
    }
}

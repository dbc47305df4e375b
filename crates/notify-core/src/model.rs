//! The notification domain's types: topics, subscriptions and deliveries (the outbox), with their
//! ARNs and naming rules. serde here is the storage encoding (redb rows), not a wire format.

use serde::{Deserialize, Serialize};

/// Who lookout answers as: the account and region in every ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account_id: String,
    pub region: String,
}

impl Identity {
    pub fn topic_arn(&self, name: &str) -> String {
        format!("arn:aws:sns:{}:{}:{name}", self.region, self.account_id)
    }
}

/// A topic name: 1–256 of `A-Z a-z 0-9 _ -` (standard topics; FIFO topics are not served).
pub fn valid_topic_name(name: &str) -> bool {
    (1..=256).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The parts of an SNS ARN: `arn:aws:sns:{region}:{account}:{topic}[:{subscription id}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsArn<'a> {
    pub region: &'a str,
    pub account_id: &'a str,
    pub topic: &'a str,
    pub subscription_id: Option<&'a str>,
}

impl<'a> SnsArn<'a> {
    pub fn parse(arn: &'a str) -> Option<SnsArn<'a>> {
        let mut parts = arn.split(':');
        let (Some("arn"), Some(_partition), Some("sns"), Some(region), Some(account_id), Some(topic)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let subscription_id = parts.next();
        if parts.next().is_some() || topic.is_empty() || subscription_id == Some("") {
            return None;
        }
        Some(SnsArn { region, account_id, topic, subscription_id })
    }
}

/// How a subscription receives messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    Email,
    EmailJson,
    Http,
    Https,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [Protocol::Email, Protocol::EmailJson, Protocol::Http, Protocol::Https];

    /// The name on the wire and in MessageStructure=json keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Email => "email",
            Protocol::EmailJson => "email-json",
            Protocol::Http => "http",
            Protocol::Https => "https",
        }
    }

    /// AWS accepts protocol names in any case.
    pub fn parse(s: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(s))
    }

    pub fn is_email(self) -> bool {
        matches!(self, Protocol::Email | Protocol::EmailJson)
    }
}

/// A topic and its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub name: String,
    pub arn: String,
    /// Empty when unset (AWS reports it as an empty string then).
    pub display_name: String,
    /// The access policy as given (stored and returned; lookout does not enforce policies).
    pub policy: Option<String>,
    /// The delivery policy as given (stored and returned; deliveries follow the server's policy).
    pub delivery_policy: Option<String>,
    pub created_at_ms: i64,
    /// Subscriptions removed from this topic so far (GetTopicAttributes' SubscriptionsDeleted).
    pub subscriptions_deleted: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubscriptionStatus {
    /// Waiting for the endpoint's owner to confirm with the token.
    PendingConfirmation,
    Confirmed,
}

/// A subscription of an endpoint to a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// `{topic arn}:{uuid}`, given at Subscribe even while pending.
    pub arn: String,
    pub topic_arn: String,
    pub protocol: Protocol,
    pub endpoint: String,
    pub status: SubscriptionStatus,
    /// The confirmation token (kept after confirmation: confirming again is idempotent).
    pub token: String,
    pub created_at_ms: i64,
    pub confirmed_at_ms: Option<i64>,
}

impl Subscription {
    pub fn is_confirmed(&self) -> bool {
        self.status == SubscriptionStatus::Confirmed
    }
}

/// What a delivery carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageKind {
    SubscriptionConfirmation,
    Notification,
}

impl MessageKind {
    /// The `Type` of the JSON document and the `x-amz-sns-message-type` header.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::SubscriptionConfirmation => "SubscriptionConfirmation",
            MessageKind::Notification => "Notification",
        }
    }
}

/// A delivery's content, rendered (and signed) once when it is enqueued, so that every attempt sends
/// the same bytes (same MessageId, Timestamp and Signature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// An HTTP(S) POST of this JSON document.
    Http { body: String },
    /// A plain-text mail.
    Email { from_name: Option<String>, subject: String, body: String },
}

/// One message to one endpoint: a row of the outbox until it is delivered (then removed) or has
/// exhausted its attempts (then moved to the failed deliveries, never dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Sortable by creation: `{created ms, 13 digits}-{uuid}`.
    pub id: String,
    pub kind: MessageKind,
    pub message_id: String,
    pub topic_arn: String,
    pub subscription_arn: String,
    pub protocol: Protocol,
    pub endpoint: String,
    pub payload: Payload,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_at_ms: i64,
    /// When the next attempt is due (epoch ms).
    pub next_attempt_at_ms: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Set when the delivery gave up (it then lives among the failed deliveries).
    pub failed_at_ms: Option<i64>,
}

pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn new_delivery_id(created_at_ms: i64) -> String {
    format!("{created_at_ms:013}-{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_parse_topics_and_subscriptions() {
        let t = SnsArn::parse("arn:aws:sns:us-east-1:000000000000:alerts").unwrap();
        assert_eq!((t.region, t.account_id, t.topic, t.subscription_id), ("us-east-1", "000000000000", "alerts", None));
        let s = SnsArn::parse("arn:aws:sns:us-east-1:000000000000:alerts:5f1c").unwrap();
        assert_eq!(s.subscription_id, Some("5f1c"));
        for bad in ["", "alerts", "arn:aws:sqs:us-east-1:0:q", "arn:aws:sns:us-east-1:0:", "arn:aws:sns:r:a:t:s:x"] {
            assert_eq!(SnsArn::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn topic_names_follow_aws() {
        assert!(valid_topic_name("a"));
        assert!(valid_topic_name("My_Topic-1"));
        assert!(valid_topic_name(&"x".repeat(256)));
        assert!(!valid_topic_name(&"x".repeat(257)));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name("orders.fifo"));
        assert!(!valid_topic_name("a b"));
    }

    #[test]
    fn protocols_parse_in_any_case() {
        assert_eq!(Protocol::parse("EMAIL-JSON"), Some(Protocol::EmailJson));
        assert_eq!(Protocol::parse("https"), Some(Protocol::Https));
        assert_eq!(Protocol::parse("sqs"), None);
    }
}

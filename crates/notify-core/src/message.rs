//! What subscribers receive: Publish's validation (message size, subject, MessageStructure=json),
//! the JSON documents SNS posts to HTTP(S) endpoints and sends to email-json addresses
//! (`Notification`, `SubscriptionConfirmation`) with their string to sign, the plain-text mails,
//! and the links lookout serves for confirming and unsubscribing. These documents are SNS's
//! delivery format, produced here because the domain delivers them; the API layer never sees them.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::NotifyError;
use crate::model::Protocol;
use crate::signing::Signer;

/// Publish's limit on a message, in bytes (256 KiB).
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// A subject must be shorter than 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;
/// The subject of a notification mail when Publish gives none (AWS's default).
pub const DEFAULT_EMAIL_SUBJECT: &str = "AWS Notification Message";
pub const CONFIRMATION_EMAIL_SUBJECT: &str = "AWS Notification - Subscription Confirmation";
/// The From name of a mail when the topic has no DisplayName.
pub const DEFAULT_EMAIL_FROM_NAME: &str = "AWS Notifications";
pub const SIGNATURE_VERSION: &str = "2";

/// Paths lookout serves on its own port for subscribers (the API layer routes them).
pub const CONFIRM_PAGE_PATH: &str = "/sns/confirm";
pub const UNSUBSCRIBE_PAGE_PATH: &str = "/sns/unsubscribe";
pub const SIGNING_CERT_PATH: &str = "/sns/SimpleNotificationService-lookout.pem";

/// Checks a Publish subject: printable ASCII, not starting with a space, under 100 characters.
pub fn validate_subject(subject: &str) -> Result<(), NotifyError> {
    let printable = subject.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if subject.is_empty() || subject.len() > MAX_SUBJECT_CHARS || !printable || subject.starts_with(' ') {
        return Err(NotifyError::invalid("Subject"));
    }
    Ok(())
}

/// A Publish message as each protocol will receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Messages {
    pub default: String,
    pub per_protocol: HashMap<Protocol, String>,
}

impl Messages {
    /// Checks a Publish message and, for `MessageStructure=json`, splits it per protocol: a JSON
    /// object of strings with a `default` entry, other keys overriding it for their protocol.
    pub fn parse(message: &str, json_structure: bool) -> Result<Messages, NotifyError> {
        if message.is_empty() {
            return Err(NotifyError::invalid("Empty message"));
        }
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(NotifyError::invalid("Message too long"));
        }
        if !json_structure {
            return Ok(Messages { default: message.to_owned(), per_protocol: HashMap::new() });
        }
        let failed = || NotifyError::invalid("Message Structure - JSON message body failed to parse");
        let serde_json::Value::Object(map) = serde_json::from_str(message).map_err(|_| failed())? else {
            return Err(failed());
        };
        let mut default = None;
        let mut per_protocol = HashMap::new();
        for (key, value) in map {
            let serde_json::Value::String(text) = value else {
                return Err(failed());
            };
            if key == "default" {
                default = Some(text);
            } else if let Some(p) = Protocol::ALL.into_iter().find(|p| p.as_str() == key) {
                per_protocol.insert(p, text);
            }
            // Keys for protocols lookout does not deliver (sqs, lambda, APNS...) are accepted and unused.
        }
        let default =
            default.ok_or_else(|| NotifyError::invalid("Message Structure - No default entry in JSON message body"))?;
        Ok(Messages { default, per_protocol })
    }

    pub fn for_protocol(&self, p: Protocol) -> &str {
        self.per_protocol.get(&p).map_or(&self.default, String::as_str)
    }
}

/// `2012-04-26T20:45:04.751Z`, SNS's timestamp format.
pub fn timestamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&f).expect("a UTC time formats")
}

/// `key\nvalue\n` for each pair, in the order given.
fn string_to_sign(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (k, v) in pairs {
        s.push_str(k);
        s.push('\n');
        s.push_str(v);
        s.push('\n');
    }
    s
}

/// A `Notification` before it is signed.
#[derive(Debug, Clone)]
pub struct NotificationFields<'a> {
    pub message_id: &'a str,
    pub topic_arn: &'a str,
    pub subject: Option<&'a str>,
    pub message: &'a str,
    pub timestamp: &'a str,
}

impl NotificationFields<'_> {
    /// AWS's string to sign for a Notification: Message, MessageId, Subject (only if present),
    /// Timestamp, TopicArn, Type.
    pub fn string_to_sign(&self) -> String {
        let mut pairs = vec![("Message", self.message), ("MessageId", self.message_id)];
        if let Some(s) = self.subject {
            pairs.push(("Subject", s));
        }
        pairs.extend([("Timestamp", self.timestamp), ("TopicArn", self.topic_arn), ("Type", "Notification")]);
        string_to_sign(&pairs)
    }
}

/// A `SubscriptionConfirmation` before it is signed.
#[derive(Debug, Clone)]
pub struct ConfirmationFields<'a> {
    pub message_id: &'a str,
    pub token: &'a str,
    pub topic_arn: &'a str,
    pub message: &'a str,
    pub subscribe_url: &'a str,
    pub timestamp: &'a str,
}

impl ConfirmationFields<'_> {
    /// AWS's string to sign for a SubscriptionConfirmation: Message, MessageId, SubscribeURL,
    /// Timestamp, Token, TopicArn, Type.
    pub fn string_to_sign(&self) -> String {
        string_to_sign(&[
            ("Message", self.message),
            ("MessageId", self.message_id),
            ("SubscribeURL", self.subscribe_url),
            ("Timestamp", self.timestamp),
            ("Token", self.token),
            ("TopicArn", self.topic_arn),
            ("Type", "SubscriptionConfirmation"),
        ])
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NotificationDoc<'a> {
    r#type: &'a str,
    message_id: &'a str,
    topic_arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    message: &'a str,
    timestamp: &'a str,
    signature_version: &'a str,
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    #[serde(rename = "UnsubscribeURL")]
    unsubscribe_url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ConfirmationDoc<'a> {
    r#type: &'a str,
    message_id: &'a str,
    token: &'a str,
    topic_arn: &'a str,
    message: &'a str,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: &'a str,
    timestamp: &'a str,
    signature_version: &'a str,
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
}

/// Builds the URLs subscribers see, all on lookout's public URL.
#[derive(Debug, Clone)]
pub struct Links {
    base: String,
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

impl Links {
    /// `public_url` such as `http://127.0.0.1:4566` (a trailing slash is dropped).
    pub fn new(public_url: &str) -> Links {
        Links { base: public_url.trim_end_matches('/').to_owned() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The API's GET form, as AWS's SubscribeURL: answers ConfirmSubscription's XML.
    pub fn subscribe_url(&self, topic_arn: &str, token: &str) -> String {
        format!(
            "{}/?{}",
            self.base,
            query(&[("Action", "ConfirmSubscription"), ("TopicArn", topic_arn), ("Token", token)])
        )
    }

    /// The page a confirmation mail links to: answers "Subscription confirmed!".
    pub fn confirm_page_url(&self, topic_arn: &str, token: &str) -> String {
        format!("{}{CONFIRM_PAGE_PATH}?{}", self.base, query(&[("TopicArn", topic_arn), ("Token", token)]))
    }

    /// The API's GET form of Unsubscribe, as AWS's UnsubscribeURL in JSON documents.
    pub fn unsubscribe_url(&self, subscription_arn: &str) -> String {
        format!("{}/?{}", self.base, query(&[("Action", "Unsubscribe"), ("SubscriptionArn", subscription_arn)]))
    }

    /// The page a notification mail's footer links to.
    pub fn unsubscribe_page_url(&self, subscription_arn: &str) -> String {
        format!("{}{UNSUBSCRIBE_PAGE_PATH}?{}", self.base, query(&[("SubscriptionArn", subscription_arn)]))
    }

    pub fn signing_cert_url(&self) -> String {
        format!("{}{SIGNING_CERT_PATH}", self.base)
    }
}

/// The signed `Notification` JSON document.
pub fn notification_json(f: &NotificationFields<'_>, subscription_arn: &str, signer: &Signer, links: &Links) -> String {
    let doc = NotificationDoc {
        r#type: "Notification",
        message_id: f.message_id,
        topic_arn: f.topic_arn,
        subject: f.subject,
        message: f.message,
        timestamp: f.timestamp,
        signature_version: SIGNATURE_VERSION,
        signature: signer.sign(f.string_to_sign().as_bytes()),
        signing_cert_url: links.signing_cert_url(),
        unsubscribe_url: links.unsubscribe_url(subscription_arn),
    };
    serde_json::to_string_pretty(&doc).expect("a notification serializes")
}

/// The text of a SubscriptionConfirmation's `Message`.
pub fn confirmation_message(topic_arn: &str) -> String {
    format!(
        "You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message."
    )
}

/// The signed `SubscriptionConfirmation` JSON document.
pub fn confirmation_json(f: &ConfirmationFields<'_>, signer: &Signer, links: &Links) -> String {
    let doc = ConfirmationDoc {
        r#type: "SubscriptionConfirmation",
        message_id: f.message_id,
        token: f.token,
        topic_arn: f.topic_arn,
        message: f.message,
        subscribe_url: f.subscribe_url,
        timestamp: f.timestamp,
        signature_version: SIGNATURE_VERSION,
        signature: signer.sign(f.string_to_sign().as_bytes()),
        signing_cert_url: links.signing_cert_url(),
    };
    serde_json::to_string_pretty(&doc).expect("a confirmation serializes")
}

/// The body of a confirmation mail (protocol `email`).
pub fn confirmation_email_body(topic_arn: &str, confirm_url: &str) -> String {
    format!(
        "You have chosen to subscribe to the topic:\n{topic_arn}\n\n\
         To confirm this subscription, click or visit the link below (If this was in error no action is necessary):\n\
         {confirm_url}\n\n\
         Please do not reply directly to this email.\n"
    )
}

/// The body of a notification mail (protocol `email`): the message, then an unsubscribe footer.
pub fn notification_email_body(message: &str, unsubscribe_url: &str) -> String {
    format!(
        "{message}\n\n--\n\
         If you wish to stop receiving notifications from this topic, please click or visit the link below to unsubscribe:\n\
         {unsubscribe_url}\n\n\
         Please do not reply directly to this email.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{test_signer, verify_with_cert};

    #[test]
    fn notification_string_to_sign_is_aws_format() {
        // The layout of AWS's "Verifying the signatures of Amazon SNS messages": Message,
        // MessageId, Subject (when present), Timestamp, TopicArn, Type, each "key\nvalue\n".
        let f = NotificationFields {
            message_id: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            topic_arn: "arn:aws:sns:us-west-2:123456789012:MyTopic",
            subject: Some("My First Message"),
            message: "Hello world!",
            timestamp: "2012-05-02T00:54:06.655Z",
        };
        assert_eq!(
            f.string_to_sign(),
            "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nMy First Message\n\
             Timestamp\n2012-05-02T00:54:06.655Z\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n"
        );
        let no_subject = NotificationFields { subject: None, ..f };
        assert!(!no_subject.string_to_sign().contains("Subject"));
    }

    #[test]
    fn confirmation_string_to_sign_is_aws_format() {
        let f = ConfirmationFields {
            message_id: "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            token: "2336412f37",
            topic_arn: "arn:aws:sns:us-west-2:123456789012:MyTopic",
            message: "You have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
            subscribe_url: "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37",
            timestamp: "2012-04-26T20:45:04.751Z",
        };
        assert_eq!(
            f.string_to_sign(),
            format!(
                "Message\n{}\nMessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\nSubscribeURL\n{}\n\
                 Timestamp\n2012-04-26T20:45:04.751Z\nToken\n2336412f37\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
                 Type\nSubscriptionConfirmation\n",
                f.message, f.subscribe_url
            )
        );
        assert_eq!(confirmation_message("arn:aws:sns:us-west-2:123456789012:MyTopic"), f.message);
    }

    /// What a subscriber does: rebuild the string to sign from the JSON it received and verify
    /// the signature with the certificate.
    fn subscriber_verifies(doc: &serde_json::Value, cert_der: &[u8]) -> bool {
        let keys: &[&str] = if doc["Type"] == "Notification" {
            &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        } else {
            &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        };
        let mut s = String::new();
        for k in keys {
            if let Some(v) = doc[*k].as_str() {
                s.push_str(&format!("{k}\n{v}\n"));
            }
        }
        verify_with_cert(cert_der, s.as_bytes(), doc["Signature"].as_str().unwrap())
    }

    #[test]
    fn documents_carry_every_field_and_verify() {
        let signer = test_signer();
        let links = Links::new("http://lookout.example:4566/");
        let f = NotificationFields {
            message_id: "m-1",
            topic_arn: "arn:aws:sns:us-east-1:000000000000:alerts",
            subject: Some("disk full"),
            message: "{\"a\": \"é\\n<x>\"}",
            timestamp: "2026-01-02T03:04:05.678Z",
        };
        let doc: serde_json::Value = serde_json::from_str(&notification_json(
            &f,
            "arn:aws:sns:us-east-1:000000000000:alerts:s1",
            &signer,
            &links,
        ))
        .unwrap();
        assert_eq!(doc["Type"], "Notification");
        assert_eq!(doc["Message"], f.message);
        assert_eq!(doc["SignatureVersion"], "2");
        assert_eq!(doc["SigningCertURL"], "http://lookout.example:4566/sns/SimpleNotificationService-lookout.pem");
        assert_eq!(
            doc["UnsubscribeURL"],
            "http://lookout.example:4566/?Action=Unsubscribe&SubscriptionArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3Aalerts%3As1"
        );
        assert!(subscriber_verifies(&doc, &signer.cert_der()));
        let mut tampered = doc.clone();
        tampered["Message"] = "other".into();
        assert!(!subscriber_verifies(&tampered, &signer.cert_der()));

        let no_subject = NotificationFields { subject: None, ..f };
        let doc: serde_json::Value =
            serde_json::from_str(&notification_json(&no_subject, "s", &signer, &links)).unwrap();
        assert!(doc.get("Subject").is_none());
        assert!(subscriber_verifies(&doc, &signer.cert_der()));

        let url = links.subscribe_url("arn:aws:sns:us-east-1:000000000000:alerts", "tok");
        let c = ConfirmationFields {
            message_id: "m-2",
            token: "tok",
            topic_arn: "arn:aws:sns:us-east-1:000000000000:alerts",
            message: &confirmation_message("arn:aws:sns:us-east-1:000000000000:alerts"),
            subscribe_url: &url,
            timestamp: "2026-01-02T03:04:05.678Z",
        };
        let doc: serde_json::Value = serde_json::from_str(&confirmation_json(&c, &signer, &links)).unwrap();
        assert_eq!(doc["Type"], "SubscriptionConfirmation");
        assert_eq!(doc["Token"], "tok");
        assert_eq!(
            doc["SubscribeURL"],
            "http://lookout.example:4566/?Action=ConfirmSubscription&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3Aalerts&Token=tok"
        );
        assert!(subscriber_verifies(&doc, &signer.cert_der()));
    }

    #[test]
    fn subjects_are_checked_like_aws() {
        assert!(validate_subject("Disk full on host-1 (95%)").is_ok());
        assert!(validate_subject(&"s".repeat(99)).is_ok());
        for bad in ["", " leading space", "line\nbreak", "tab\there", "caf\u{e9}", &"s".repeat(100)] {
            assert_eq!(
                validate_subject(bad),
                Err(NotifyError::InvalidParameter("Invalid parameter: Subject".into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn messages_are_checked_and_split_per_protocol() {
        assert_eq!(
            Messages::parse("", false),
            Err(NotifyError::InvalidParameter("Invalid parameter: Empty message".into()))
        );
        assert!(Messages::parse(&"x".repeat(MAX_MESSAGE_BYTES), false).is_ok());
        assert_eq!(
            Messages::parse(&"x".repeat(MAX_MESSAGE_BYTES + 1), false),
            Err(NotifyError::InvalidParameter("Invalid parameter: Message too long".into()))
        );
        let plain = Messages::parse("{not json", false).unwrap();
        assert_eq!(plain.for_protocol(Protocol::Http), "{not json");

        let m = Messages::parse(r#"{"default":"d","email":"e","https":"s","sqs":"q"}"#, true).unwrap();
        assert_eq!(m.for_protocol(Protocol::Email), "e");
        assert_eq!(m.for_protocol(Protocol::EmailJson), "d");
        assert_eq!(m.for_protocol(Protocol::Http), "d");
        assert_eq!(m.for_protocol(Protocol::Https), "s");

        let no_default = Messages::parse(r#"{"email":"e"}"#, true).unwrap_err();
        assert_eq!(
            no_default.to_string(),
            "Invalid parameter: Message Structure - No default entry in JSON message body"
        );
        for bad in ["{not json", "[\"default\"]", r#"{"default": 1}"#] {
            assert_eq!(
                Messages::parse(bad, true).unwrap_err().to_string(),
                "Invalid parameter: Message Structure - JSON message body failed to parse",
                "{bad}"
            );
        }
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        assert_eq!(timestamp(1_335_473_104_751), "2012-04-26T20:45:04.751Z");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn links_encode_their_parameters() {
        let l = Links::new("https://alerts.example.com");
        assert_eq!(
            l.confirm_page_url("arn:aws:sns:r:1:t", "a+b&c"),
            "https://alerts.example.com/sns/confirm?TopicArn=arn%3Aaws%3Asns%3Ar%3A1%3At&Token=a%2Bb%26c"
        );
        assert_eq!(
            l.unsubscribe_page_url("arn:aws:sns:r:1:t:x"),
            "https://alerts.example.com/sns/unsubscribe?SubscriptionArn=arn%3Aaws%3Asns%3Ar%3A1%3At%3Ax"
        );
    }
}

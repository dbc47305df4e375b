//! SNS over the Query protocol (form-encoded `Action=...&Version=2010-03-31`, XML responses in
//! `http://sns.amazonaws.com/doc/2010-03-31/`), plus what subscribers reach with a browser or a
//! webhook handler: the confirmation and unsubscribe pages a mail links to, the signing
//! certificate, and lookout's own list of failed deliveries (`/_lookout/sns/failed-deliveries`).
//! The only place that knows SNS's wire format; the rules live in `lookout-notify`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use lookout_notify::message::{CONFIRM_PAGE_PATH, SIGNING_CERT_PATH, UNSUBSCRIBE_PAGE_PATH};
use lookout_notify::{Delivery, NotifyError, Subscription};

use crate::api::sts::xml_escape;
use crate::app::App;

pub const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";
/// lookout's JSON list of deliveries that exhausted their retries (not an AWS API).
pub const FAILED_DELIVERIES_PATH: &str = "/_lookout/sns/failed-deliveries";

/// Every SNS action lookout serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnsOperation {
    CreateTopic,
    DeleteTopic,
    ListTopics,
    GetTopicAttributes,
    SetTopicAttributes,
    Subscribe,
    ConfirmSubscription,
    Unsubscribe,
    ListSubscriptions,
    ListSubscriptionsByTopic,
    GetSubscriptionAttributes,
    Publish,
}

impl SnsOperation {
    pub const ALL: [(&'static str, SnsOperation); 12] = {
        use SnsOperation::*;
        [
            ("CreateTopic", CreateTopic),
            ("DeleteTopic", DeleteTopic),
            ("ListTopics", ListTopics),
            ("GetTopicAttributes", GetTopicAttributes),
            ("SetTopicAttributes", SetTopicAttributes),
            ("Subscribe", Subscribe),
            ("ConfirmSubscription", ConfirmSubscription),
            ("Unsubscribe", Unsubscribe),
            ("ListSubscriptions", ListSubscriptions),
            ("ListSubscriptionsByTopic", ListSubscriptionsByTopic),
            ("GetSubscriptionAttributes", GetSubscriptionAttributes),
            ("Publish", Publish),
        ]
    };

    pub fn parse(name: &str) -> Option<SnsOperation> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, op)| *op == self).map(|(n, _)| *n).expect("every operation is listed")
    }
}

/// Whether an unsigned Query request (no credential scope to route by) is for SNS: the
/// SubscribeURL and UnsubscribeURL that subscribers open are such requests.
pub fn is_sns_action(action: &str) -> bool {
    SnsOperation::parse(action).is_some()
}

/// An SNS answer: HTTP status and XML body.
#[derive(Debug)]
pub struct SnsResponse {
    pub status: u16,
    pub body: String,
}

/// An SNS error on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsApiError {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

impl SnsApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> SnsApiError {
        SnsApiError { code, status, message: message.into() }
    }

    /// AWS's answer to a missing required parameter.
    fn missing(member: &str) -> SnsApiError {
        let mut camel = member.to_owned();
        if let Some(first) = camel.get_mut(0..1) {
            first.make_ascii_lowercase();
        }
        SnsApiError::new(
            400,
            "ValidationError",
            format!("1 validation error detected: Value null at '{camel}' failed to satisfy constraint: Member must not be null"),
        )
    }

    fn invalid(message: impl Into<String>) -> SnsApiError {
        SnsApiError::new(400, "InvalidParameter", message)
    }
}

impl From<NotifyError> for SnsApiError {
    fn from(e: NotifyError) -> SnsApiError {
        match e {
            NotifyError::NotFound(m) => SnsApiError::new(404, "NotFound", m),
            NotifyError::InvalidParameter(m) => SnsApiError::new(400, "InvalidParameter", m),
            NotifyError::Internal(m) => SnsApiError::new(500, "InternalError", m),
        }
    }
}

/// `<ErrorResponse>` in SNS's namespace.
pub fn error_body(e: &SnsApiError, request_id: &str) -> String {
    let kind = if e.status >= 500 { "Receiver" } else { "Sender" };
    format!(
        "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        e.code,
        xml_escape(&e.message),
        xml_escape(request_id)
    )
}

/// `<{Op}Response><{Op}Result>{result}</{Op}Result><ResponseMetadata>...` (no Result element
/// when `result` is None, as for DeleteTopic).
fn success_body(op: SnsOperation, result: Option<&str>, request_id: &str) -> String {
    let name = op.name();
    let result = result.map(|r| format!("<{name}Result>{r}</{name}Result>")).unwrap_or_default();
    format!(
        "<{name}Response xmlns=\"{XMLNS}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{name}Response>",
        xml_escape(request_id)
    )
}

fn element(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", xml_escape(value))
}

/// `<Attributes><entry><key>k</key><value>v</value></entry>...</Attributes>`.
fn attributes_xml(entries: &[(&str, String)]) -> String {
    let mut s = String::from("<Attributes>");
    for (k, v) in entries {
        s.push_str(&format!("<entry>{}{}</entry>", element("key", k), element("value", v)));
    }
    s.push_str("</Attributes>");
    s
}

/// The request's parameters, with typed access.
struct Params<'a>(&'a HashMap<String, String>);

impl Params<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn required(&self, name: &str) -> Result<&str, SnsApiError> {
        self.get(name).ok_or_else(|| SnsApiError::missing(name))
    }

    fn flag(&self, name: &str) -> Result<bool, SnsApiError> {
        match self.get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(SnsApiError::invalid(format!("Invalid parameter: {name}"))),
        }
    }

    /// A Query map: `{prefix}.entry.N.key` / `{prefix}.entry.N.value`, in N order.
    fn map(&self, prefix: &str) -> Vec<(String, String)> {
        let mut entries: Vec<(u32, String, String)> = Vec::new();
        let head = format!("{prefix}.entry.");
        for (k, key) in self.0 {
            let Some(rest) = k.strip_prefix(&head) else { continue };
            let Some(n) = rest.strip_suffix(".key").and_then(|n| n.parse::<u32>().ok()) else { continue };
            let value = self.get(&format!("{head}{n}.value")).unwrap_or_default();
            entries.push((n, key.clone(), value.to_owned()));
        }
        entries.sort();
        entries.into_iter().map(|(_, k, v)| (k, v)).collect()
    }
}

fn subscription_member(s: &Subscription, owner: &str) -> String {
    let arn = if s.is_confirmed() { s.arn.as_str() } else { "PendingConfirmation" };
    format!(
        "<member>{}{}{}{}{}</member>",
        element("TopicArn", &s.topic_arn),
        element("Protocol", s.protocol.as_str()),
        element("SubscriptionArn", arn),
        element("Owner", owner),
        element("Endpoint", &s.endpoint)
    )
}

fn next_token_xml(next: Option<String>) -> String {
    next.map(|t| element("NextToken", &t)).unwrap_or_default()
}

/// Serves one SNS action.
pub async fn handle(app: &App, params: &HashMap<String, String>, request_id: &str) -> SnsResponse {
    let action = params.get("Action").map(String::as_str).unwrap_or_default();
    let result = match SnsOperation::parse(action) {
        Some(op) => run(app, op, &Params(params)).await.map(|r| success_body(op, r.as_deref(), request_id)),
        None if action.is_empty() => {
            Err(SnsApiError::new(400, "MissingAction", "The request must contain the parameter Action."))
        }
        None => {
            Err(SnsApiError::new(400, "InvalidAction", format!("The action {action} is not valid for this endpoint.")))
        }
    };
    match result {
        Ok(body) => SnsResponse { status: 200, body },
        Err(mut e) => {
            if e.status >= 500 {
                tracing::error!(request_id, action, code = e.code, message = %e.message, "request failed");
                e.message = format!("lookout could not complete the request (request id {request_id})");
            }
            SnsResponse { status: e.status, body: error_body(&e, request_id) }
        }
    }
}

async fn run(app: &App, op: SnsOperation, p: &Params<'_>) -> Result<Option<String>, SnsApiError> {
    let sns = &app.notify;
    let owner = sns.identity().account_id.clone();
    Ok(match op {
        SnsOperation::CreateTopic => {
            let name = p.required("Name")?;
            let arn = sns.create_topic(name, &p.map("Attributes")).await?;
            Some(element("TopicArn", &arn))
        }
        SnsOperation::DeleteTopic => {
            sns.delete_topic(p.required("TopicArn")?).await?;
            None
        }
        SnsOperation::ListTopics => {
            let (arns, next) = sns.list_topics(p.get("NextToken"))?;
            let members: String = arns.iter().map(|a| format!("<member>{}</member>", element("TopicArn", a))).collect();
            Some(format!("<Topics>{members}</Topics>{}", next_token_xml(next)))
        }
        SnsOperation::GetTopicAttributes => {
            let a = sns.topic_attributes(p.required("TopicArn")?)?;
            let mut entries = vec![
                ("Policy", a.policy),
                ("Owner", owner),
                ("SubscriptionsPending", a.subscriptions_pending.to_string()),
                ("TopicArn", a.topic.arn.clone()),
                ("EffectiveDeliveryPolicy", a.effective_delivery_policy),
                ("SubscriptionsConfirmed", a.subscriptions_confirmed.to_string()),
                ("DisplayName", a.topic.display_name.clone()),
                ("SubscriptionsDeleted", a.subscriptions_deleted.to_string()),
                ("SignatureVersion", lookout_notify::message::SIGNATURE_VERSION.to_owned()),
            ];
            if let Some(d) = &a.topic.delivery_policy {
                entries.push(("DeliveryPolicy", d.clone()));
            }
            Some(attributes_xml(&entries))
        }
        SnsOperation::SetTopicAttributes => {
            let arn = p.required("TopicArn")?;
            let name = p.required("AttributeName")?;
            sns.set_topic_attribute(arn, name, p.get("AttributeValue").unwrap_or_default()).await?;
            None
        }
        SnsOperation::Subscribe => {
            let topic = p.required("TopicArn")?;
            let protocol = p.required("Protocol")?;
            let attributes = p.map("Attributes");
            if let Some((name, _)) = attributes.first() {
                return Err(SnsApiError::invalid(format!(
                    "Invalid parameter: Attributes Reason: lookout does not support the subscription attribute {name}"
                )));
            }
            let endpoint = p.get("Endpoint").unwrap_or_default();
            let sub = sns.subscribe(topic, protocol, endpoint).await?;
            let arn = if sub.is_confirmed() || p.flag("ReturnSubscriptionArn")? {
                sub.arn.as_str()
            } else {
                "pending confirmation"
            };
            Some(element("SubscriptionArn", arn))
        }
        SnsOperation::ConfirmSubscription => {
            let arn = sns.confirm_subscription(p.required("TopicArn")?, p.required("Token")?).await?;
            Some(element("SubscriptionArn", &arn))
        }
        SnsOperation::Unsubscribe => {
            sns.unsubscribe(p.required("SubscriptionArn")?).await?;
            None
        }
        SnsOperation::ListSubscriptions | SnsOperation::ListSubscriptionsByTopic => {
            let topic = if op == SnsOperation::ListSubscriptionsByTopic { Some(p.required("TopicArn")?) } else { None };
            let (subs, next) = sns.list_subscriptions(topic, p.get("NextToken"))?;
            let members: String = subs.iter().map(|s| subscription_member(s, &owner)).collect();
            Some(format!("<Subscriptions>{members}</Subscriptions>{}", next_token_xml(next)))
        }
        SnsOperation::GetSubscriptionAttributes => {
            let s = sns.subscription(p.required("SubscriptionArn")?)?;
            let mut entries = vec![
                ("Owner", owner),
                ("RawMessageDelivery", "false".to_owned()),
                ("TopicArn", s.topic_arn.clone()),
                ("Endpoint", s.endpoint.clone()),
                ("Protocol", s.protocol.as_str().to_owned()),
                ("PendingConfirmation", (!s.is_confirmed()).to_string()),
                ("ConfirmationWasAuthenticated", "false".to_owned()),
                ("SubscriptionArn", s.arn.clone()),
            ];
            if !s.protocol.is_email() {
                entries.push(("EffectiveDeliveryPolicy", sns.effective_delivery_policy()));
            }
            Some(attributes_xml(&entries))
        }
        SnsOperation::Publish => {
            if p.get("PhoneNumber").is_some() {
                return Err(SnsApiError::invalid("Invalid parameter: PhoneNumber Reason: lookout does not send SMS"));
            }
            let topic = match (p.get("TopicArn"), p.get("TargetArn")) {
                (Some(t), _) | (None, Some(t)) => t,
                (None, None) => {
                    return Err(SnsApiError::invalid(
                        "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter",
                    ))
                }
            };
            let json = match p.get("MessageStructure") {
                None => false,
                Some("json") => true,
                Some(_) => return Err(SnsApiError::invalid("Invalid parameter: MessageStructure")),
            };
            let message_id = sns.publish(topic, p.get("Subject"), p.required("Message")?, json).await?;
            Some(element("MessageId", &message_id))
        }
    })
}

// ----- what subscribers open --------------------------------------------------------------------

/// The pages subscribers open outside the Query API (no credentials: the token or the
/// subscription's random id is the secret).
pub fn routes() -> Router<App> {
    Router::new()
        .route(CONFIRM_PAGE_PATH, get(confirm_page))
        .route(UNSUBSCRIBE_PAGE_PATH, get(unsubscribe_page))
        .route(SIGNING_CERT_PATH, get(signing_cert))
}

/// What operators read (signed requests: the server puts it behind its admin check).
pub fn admin_routes() -> Router<App> {
    Router::new().route(FAILED_DELIVERIES_PATH, get(failed_deliveries))
}

fn page(status: StatusCode, title: &str, paragraphs: &[String]) -> Response {
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head>\n<body>\n<h1>{t}</h1>\n{body}</body></html>\n",
        t = xml_escape(title)
    );
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

fn error_page(e: SnsApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let message = if e.status >= 500 {
        tracing::error!(message = %e.message, "subscriber page failed");
        "lookout could not complete the request; try again later.".to_owned()
    } else {
        e.message
    };
    page(status, "Request failed", &[xml_escape(&message)])
}

/// `GET /sns/confirm?TopicArn=...&Token=...`: the link of a confirmation mail.
async fn confirm_page(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> Response {
    let p = Params(&q);
    let confirmed = async {
        let arn = app.notify.confirm_subscription(p.required("TopicArn")?, p.required("Token")?).await?;
        Ok::<_, SnsApiError>(arn)
    };
    match confirmed.await {
        Ok(arn) => {
            let unsubscribe = app.notify.links().unsubscribe_page_url(&arn);
            page(
                StatusCode::OK,
                "Subscription confirmed!",
                &[
                    format!("You have successfully subscribed.<br>Your subscription's id is:<br>{}", xml_escape(&arn)),
                    format!(
                        "If it was not your intention to subscribe, <a href=\"{}\">click here to unsubscribe</a>.",
                        xml_escape(&unsubscribe)
                    ),
                ],
            )
        }
        Err(e) => error_page(e),
    }
}

/// `GET /sns/unsubscribe?SubscriptionArn=...`: the footer link of a notification mail.
async fn unsubscribe_page(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> Response {
    let p = Params(&q);
    let arn = match p.required("SubscriptionArn") {
        Ok(a) => a.to_owned(),
        Err(e) => return error_page(e),
    };
    match app.notify.unsubscribe(&arn).await {
        Ok(()) => page(
            StatusCode::OK,
            "Subscription removed!",
            &[format!(
                "Your subscription {} has been removed. You will no longer receive notifications from this topic.",
                xml_escape(&arn)
            )],
        ),
        Err(e) => error_page(e.into()),
    }
}

/// `GET /sns/SimpleNotificationService-lookout.pem`: what SigningCertURL points to.
async fn signing_cert(State(app): State<App>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-pem-file")], app.notify.signing_cert_pem().to_owned())
        .into_response()
}

fn delivery_json(d: &Delivery) -> serde_json::Value {
    serde_json::json!({
        "id": d.id,
        "kind": d.kind.as_str(),
        "messageId": d.message_id,
        "topicArn": d.topic_arn,
        "subscriptionArn": d.subscription_arn,
        "protocol": d.protocol.as_str(),
        "endpoint": d.endpoint,
        "attempts": d.attempts,
        "createdAt": d.created_at_ms,
        "failedAt": d.failed_at_ms,
        "lastError": d.last_error,
    })
}

/// `GET /_lookout/sns/failed-deliveries`: deliveries that exhausted their retries, oldest first.
async fn failed_deliveries(State(app): State<App>) -> Response {
    let (status, body) = match app.notify.failed_deliveries().await {
        Ok(list) => (
            StatusCode::OK,
            serde_json::json!({ "failedDeliveries": list.iter().map(delivery_json).collect::<Vec<_>>() }),
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot list failed deliveries");
            (StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({ "error": "cannot list failed deliveries" }))
        }
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_have_the_sns_shape_and_escape_text() {
        let body = success_body(SnsOperation::CreateTopic, Some(&element("TopicArn", "a<&>\"'b")), "rid-1");
        assert_eq!(
            body,
            "<CreateTopicResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><CreateTopicResult>\
             <TopicArn>a&lt;&amp;&gt;&quot;&apos;b</TopicArn></CreateTopicResult><ResponseMetadata>\
             <RequestId>rid-1</RequestId></ResponseMetadata></CreateTopicResponse>"
        );
        assert_eq!(
            success_body(SnsOperation::DeleteTopic, None, "r"),
            "<DeleteTopicResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><ResponseMetadata>\
             <RequestId>r</RequestId></ResponseMetadata></DeleteTopicResponse>"
        );
        let e = SnsApiError::from(NotifyError::NotFound("Topic <does> not exist".into()));
        assert_eq!(e.status, 404);
        assert_eq!(
            error_body(&e, "r"),
            "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type>\
             <Code>NotFound</Code><Message>Topic &lt;does&gt; not exist</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        );
        let internal = SnsApiError::from(NotifyError::Internal("disk".into()));
        assert!(error_body(&internal, "r").contains("<Type>Receiver</Type><Code>InternalError</Code>"));
    }

    #[test]
    fn query_maps_are_read_in_entry_order() {
        let q: HashMap<String, String> = [
            ("Attributes.entry.2.key", "Policy"),
            ("Attributes.entry.2.value", "{}"),
            ("Attributes.entry.1.key", "DisplayName"),
            ("Attributes.entry.1.value", "Ops & <Co>"),
            ("Attributes.entry.x.key", "Ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            Params(&q).map("Attributes"),
            [("DisplayName".to_owned(), "Ops & <Co>".to_owned()), ("Policy".to_owned(), "{}".to_owned())]
        );
        assert_eq!(
            SnsApiError::missing("TopicArn").message,
            "1 validation error detected: Value null at 'topicArn' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn every_operation_round_trips_its_name() {
        for (name, op) in SnsOperation::ALL {
            assert_eq!(SnsOperation::parse(name), Some(op));
            assert_eq!(op.name(), name);
        }
        assert!(is_sns_action("ConfirmSubscription") && is_sns_action("Unsubscribe"));
        assert!(!is_sns_action("GetCallerIdentity"));
    }
}

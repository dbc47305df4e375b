//! In-process API tests: the real router (front + API layers + core + embedded store) driven with
//! real wire bytes through `tower::ServiceExt::oneshot`, without a socket. They pin the wire
//! contract that every client relies on, and fuzz every operation with random bodies.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use lookout_logs::{Identity, LogsService};
use lookout_logstore::{EmbeddedStore, StoreConfig};
use proptest::prelude::*;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::api::logs::LogsOperation;
use crate::app::App;

struct Harness {
    router: Router,
    runtime: tokio::runtime::Runtime,
    notify: lookout_notify::NotifyService,
    _dir: tempfile::TempDir,
}

/// The notification service over `dir/notify`, its worker on `runtime`, with one signing key for
/// every test (RSA generation is slow).
fn test_notify(
    identity: &Identity,
    dir: &std::path::Path,
    runtime: &tokio::runtime::Runtime,
) -> lookout_notify::NotifyService {
    static SIGNER: std::sync::OnceLock<lookout_notify::signing::Signer> = std::sync::OnceLock::new();
    let signer = SIGNER.get_or_init(|| lookout_notify::signing::Signer::generate().unwrap()).clone();
    let config = lookout_notify::NotifyConfig::new(
        lookout_notify::Identity { account_id: identity.account_id.clone(), region: identity.region.clone() },
        "http://lookout.test:4566",
    );
    let store = lookout_notify::store::RedbNotifyStore::open(&dir.join("notify")).unwrap();
    let notify = lookout_notify::NotifyService::with_store(Arc::new(store), signer, config).unwrap();
    runtime.block_on(async { notify.start() });
    notify
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(StoreConfig::new(dir.path())).unwrap());
        let identity = Identity { account_id: "000000000000".into(), region: "us-east-1".into() };
        let logs = LogsService::new(store, identity.clone());
        let tasks = crate::tasks_service(
            &identity,
            dir.path(),
            logs.clone(),
            std::sync::Arc::new(
                lookout_tasks::runtime::process::ProcessRuntime::new(dir.path().join("tasks/processes")).unwrap(),
            ),
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let notify = test_notify(&identity, dir.path(), &runtime);
        let events = runtime
            .block_on(async {
                crate::events_service(
                    &identity,
                    dir.path(),
                    logs.clone(),
                    tasks.clone(),
                    std::time::Duration::from_secs(1),
                )
            })
            .unwrap();
        events.set_topic_publisher(std::sync::Arc::new(crate::SnsTopics(notify.clone())));
        let ingest = std::sync::Arc::new(crate::console::IngestHistory::default());
        let console = crate::console::ConsoleState::new(ingest);
        let app = App {
            logs,
            tasks,
            notify: notify.clone(),
            events,
            identity,
            console,
            auth: crate::auth::AuthMode::Open,
            metrics: Default::default(),
            decode: crate::decode_pool::DecodePool::start().unwrap(),
        };
        Harness { router: crate::server::router(app), runtime, notify, _dir: dir }
    }

    fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        self.runtime.block_on(async {
            let resp = self.router.clone().oneshot(req).await.unwrap();
            let (parts, body) = resp.into_parts();
            (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
        })
    }

    fn logs_raw(&self, operation: &str, body: impl Into<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        self.send(
            Request::post("/")
                .header("X-Amz-Target", format!("Logs_20140328.{operation}"))
                .header("Content-Type", "application/x-amz-json-1.1")
                .body(body.into())
                .unwrap(),
        )
    }

    fn logs(&self, operation: &str, body: Value) -> (StatusCode, Value) {
        let (status, headers, bytes) = self.logs_raw(operation, body.to_string());
        assert!(headers.contains_key("x-amzn-requestid"), "{operation}: no request id");
        (status, serde_json::from_slice(&bytes).unwrap())
    }
}

fn now_ms() -> i64 {
    crate::time_util::now_ms()
}

#[test]
fn every_response_has_a_request_id_and_errors_have_the_aws_shape() {
    let h = Harness::new();
    let (status, headers, body) = h.send(Request::get("/health").body(Body::empty()).unwrap());
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("x-amzn-requestid"));
    assert_eq!(body, br#"{"status":"ok"}"#);

    let (status, v) = h.logs("DescribeLogStreams", json!({"logGroupName": "missing"}));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v, json!({"__type": "ResourceNotFoundException", "message": "The specified log group does not exist."}));

    let (status, headers, body) = h.logs_raw("StartQuery", "{}");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-amzn-errortype"], "UnknownOperationException");
    assert!(String::from_utf8(body).unwrap().contains("StartQuery"));

    let (status, _, body) = h.logs_raw("CreateLogGroup", "{not json");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["__type"], "SerializationException");

    let (status, headers, _) =
        h.send(Request::post("/").header("X-Amz-Target", "NoSuchService_2020.Op").body(Body::from("{}")).unwrap());
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(headers.contains_key("x-amzn-requestid"));
}

#[test]
fn sts_answers_in_xml_over_the_query_protocol() {
    let h = Harness::new();
    let (status, headers, body) = h.send(
        Request::post("/")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDTEST/20261122/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=x")
            .body(Body::from("Action=GetCallerIdentity&Version=2011-06-15"))
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    let rid = headers["x-amzn-requestid"].to_str().unwrap().to_owned();
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("<Account>000000000000</Account>"));
    assert!(body.contains("<UserId>AKIDTEST</UserId>"));
    assert!(body.contains(&format!("<RequestId>{rid}</RequestId>")));
}

/// An SNS Query request, signed for `sns` (as boto3 does) or unsigned.
fn sns_request(form: &str, signed: bool) -> Request<Body> {
    let mut r = Request::post("/").header("Content-Type", "application/x-www-form-urlencoded");
    if signed {
        r = r.header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=x",
        );
    }
    r.body(Body::from(form.to_owned())).unwrap()
}

#[test]
fn sns_answers_in_its_xml_namespace_and_routes_by_scope_or_action() {
    let h = Harness::new();
    let (status, headers, body) = h.send(sns_request("Action=CreateTopic&Version=2010-03-31&Name=alerts", true));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/xml");
    let rid = headers["x-amzn-requestid"].to_str().unwrap().to_owned();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        format!(
            "<CreateTopicResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><CreateTopicResult>\
             <TopicArn>arn:aws:sns:us-east-1:000000000000:alerts</TopicArn></CreateTopicResult>\
             <ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></CreateTopicResponse>"
        )
    );
    // Unsigned: an action only SNS has is routed to SNS.
    let (status, _, body) = h.send(sns_request("Action=ListTopics", false));
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("<member><TopicArn>arn:aws:sns:us-east-1:000000000000:alerts</TopicArn></member>"));
    // Errors: AWS's codes, statuses and namespace.
    let (status, _, body) = h
        .send(sns_request("Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3Anope&Message=m", true));
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body = String::from_utf8(body).unwrap();
    assert!(body.starts_with("<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message>"), "{body}");
    let (status, _, body) = h.send(sns_request("Action=CreateTopic&Name=bad%20name", true));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("<Code>InvalidParameter</Code><Message>Invalid parameter: Topic Name</Message>"));
    let (status, _, body) = h.send(sns_request("Action=CreateTopic", true));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8(body).unwrap().contains("<Code>ValidationError</Code>"));
    let (status, _, body) = h.send(sns_request("Action=CreatePlatformApplication", true));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8(body).unwrap().contains("<Code>InvalidAction</Code>"));
}

#[test]
fn sns_subscribe_url_is_a_get_that_confirms() {
    let h = Harness::new();
    h.send(sns_request("Action=CreateTopic&Name=t", true));
    let arn = "arn:aws:sns:us-east-1:000000000000:t";
    let (status, _, body) = h.send(sns_request(
        "Action=Subscribe&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3At&Protocol=email&Endpoint=ops%40example.com",
        true,
    ));
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("<SubscriptionArn>pending confirmation</SubscriptionArn>"));
    let (subs, _) = h.notify.list_subscriptions(Some(arn), None).unwrap();
    let token = subs[0].token.clone();
    // What a subscriber's browser does with the SubscribeURL.
    let url = h.notify.links().subscribe_url(arn, &token);
    let path = url.strip_prefix("http://lookout.test:4566").unwrap();
    let (status, _, body) = h.send(Request::get(path).body(Body::empty()).unwrap());
    assert_eq!(status, StatusCode::OK);
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.contains(&format!("<ConfirmSubscriptionResult><SubscriptionArn>{}</SubscriptionArn>", subs[0].arn)),
        "{body}"
    );
    // And the unsubscribe page of a mail's footer.
    let page = h.notify.links().unsubscribe_page_url(&subs[0].arn);
    let (status, headers, body) =
        h.send(Request::get(page.strip_prefix("http://lookout.test:4566").unwrap()).body(Body::empty()).unwrap());
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(String::from_utf8(body).unwrap().contains("Subscription removed!"));
    // The signing certificate and the failed deliveries are served too.
    let (status, _, body) =
        h.send(Request::get("/sns/SimpleNotificationService-lookout.pem").body(Body::empty()).unwrap());
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    let (status, _, body) = h.send(Request::get("/_lookout/sns/failed-deliveries").body(Body::empty()).unwrap());
    assert_eq!(status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&body).unwrap()["failedDeliveries"].is_array());
    // A plain GET / is still the banner.
    let (status, _, body) = h.send(Request::get("/").body(Body::empty()).unwrap());
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().starts_with("lookout is running"));
}

#[test]
fn put_then_read_back_through_both_read_apis() {
    let h = Harness::new();
    assert_eq!(h.logs("CreateLogGroup", json!({"logGroupName": "/app"})).0, StatusCode::OK);
    assert_eq!(h.logs("CreateLogStream", json!({"logGroupName": "/app", "logStreamName": "s"})).0, StatusCode::OK);
    let t = now_ms();
    let events: Vec<Value> =
        (0..5).map(|i| json!({"timestamp": t + i, "message": format!("line {i} ERROR")})).collect();
    let (status, put) =
        h.logs("PutLogEvents", json!({"logGroupName": "/app", "logStreamName": "s", "logEvents": events}));
    assert_eq!(status, StatusCode::OK);
    assert!(put.get("rejectedLogEventsInfo").is_none());
    assert!(!put["nextSequenceToken"].as_str().unwrap().is_empty());

    let (_, got) = h.logs("GetLogEvents", json!({"logGroupName": "/app", "logStreamName": "s", "startFromHead": true}));
    assert_eq!(got["events"].as_array().unwrap().len(), 5);
    let fwd = got["nextForwardToken"].as_str().unwrap().to_owned();
    let (_, again) = h.logs(
        "GetLogEvents",
        json!({"logGroupName": "/app", "logStreamName": "s", "startFromHead": true, "nextToken": fwd}),
    );
    assert!(again["events"].as_array().unwrap().is_empty());
    assert_eq!(again["nextForwardToken"], fwd.as_str(), "the end-of-stream token comes back unchanged");

    let (_, filtered) =
        h.logs("FilterLogEvents", json!({"logGroupName": "/app", "filterPattern": "ERROR", "limit": 2}));
    assert_eq!(filtered["events"].as_array().unwrap().len(), 2);
    assert!(filtered["nextToken"].is_string());
    let (_, rest) = h.logs(
        "FilterLogEvents",
        json!({"logGroupName": "/app", "filterPattern": "ERROR", "nextToken": filtered["nextToken"]}),
    );
    assert_eq!(rest["events"].as_array().unwrap().len(), 3);
    assert!(rest.get("nextToken").is_none(), "no nextToken on the last page");

    let (status, bad) = h.logs("FilterLogEvents", json!({"logGroupName": "/app", "filterPattern": "{ $.x = "}));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["__type"], "InvalidParameterException");
    assert!(bad["message"].as_str().unwrap().starts_with("Invalid filter pattern"));
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9/_.:*# -]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("logGroupName".to_string()),
                    Just("logStreamName".to_string()),
                    Just("logEvents".to_string()),
                    Just("limit".to_string()),
                    Just("nextToken".to_string()),
                    Just("filterPattern".to_string()),
                    Just("tags".to_string()),
                    Just("resourceArn".to_string()),
                    "[a-zA-Z]{1,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Random bodies never crash the server or produce a 5xx: bad input gets an AWS 4xx error.
    #[test]
    fn random_bodies_get_aws_errors_not_crashes(op in 0..LogsOperation::ALL.len(), body in json_value(), raw in proptest::collection::vec(any::<u8>(), 0..64)) {
        thread_local!(static H: Harness = Harness::new());
        H.with(|h| {
            for bytes in [body.to_string().into_bytes(), raw.clone()] {
                let (status, headers, out) = h.logs_raw(LogsOperation::ALL[op].0, bytes);
                prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{} -> {}", LogsOperation::ALL[op].0, status);
                prop_assert!(headers.contains_key("x-amzn-requestid"));
                let v: Value = serde_json::from_slice(&out).unwrap();
                if status != StatusCode::OK {
                    prop_assert!(v["__type"].is_string() && v["message"].is_string());
                }
            }
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The same for ECS and EventBridge (except RunTask, which would start processes).
    #[test]
    fn random_ecs_and_events_bodies_get_aws_errors_not_crashes(
        which in 0..2usize,
        op in 0..64usize,
        body in json_value(),
        raw in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        thread_local!(static H: Harness = Harness::new());
        let (prefix, name) = if which == 0 {
            let ops = &crate::api::ecs::EcsOperation::ALL;
            ("AmazonEC2ContainerServiceV20141113", ops[op % ops.len()].0)
        } else {
            let ops = &crate::api::events::EventsOperation::ALL;
            ("AWSEvents", ops[op % ops.len()].0)
        };
        if name == "RunTask" {
            return Ok(());
        }
        H.with(|h| {
            for bytes in [body.to_string().into_bytes(), raw.clone()] {
                let req = Request::post("/")
                    .header("x-amz-target", format!("{prefix}.{name}"))
                    .header("content-type", "application/x-amz-json-1.1")
                    .body(Body::from(bytes))
                    .unwrap();
                let (status, headers, out) = h.send(req);
                prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{name} -> {status}");
                prop_assert!(headers.contains_key("x-amzn-requestid"));
                let v: Value = serde_json::from_slice(&out).unwrap();
                if status != StatusCode::OK {
                    prop_assert!(v["__type"].is_string() && v["message"].is_string(), "{name}: {v}");
                }
            }
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Query-protocol forms (SNS, STS) with random actions and parameters: never a 5xx or a
    /// crash; every refusal is an `<ErrorResponse>` with a code.
    #[test]
    fn random_query_forms_get_xml_errors_not_crashes(
        op in 0..16usize,
        params in proptest::collection::vec(
            (prop_oneof![
                Just("Name".to_string()), Just("TopicArn".to_string()), Just("Protocol".to_string()),
                Just("Endpoint".to_string()), Just("Message".to_string()), Just("Subject".to_string()),
                Just("SubscriptionArn".to_string()), Just("Token".to_string()), Just("NextToken".to_string()),
                Just("AttributeName".to_string()), Just("AttributeValue".to_string()),
                Just("Attributes.entry.1.key".to_string()), Just("MessageStructure".to_string()),
                "[A-Za-z.0-9]{1,12}",
            ], "\\PC{0,40}"),
            0..6,
        ),
        raw in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        thread_local!(static H: Harness = Harness::new());
        let ops = &crate::api::sns::SnsOperation::ALL;
        let action = if op < ops.len() { ops[op].0 } else if op == ops.len() { "GetCallerIdentity" } else { "NoSuchAction" };
        let mut form: Vec<(String, String)> = vec![("Action".into(), action.into())];
        form.extend(params);
        let encoded = serde_urlencoded::to_string(&form).unwrap();
        let mut bodies = vec![encoded.into_bytes()];
        let mut raw_with_action = b"Action=".to_vec();
        raw_with_action.extend_from_slice(action.as_bytes());
        raw_with_action.push(b'&');
        raw_with_action.extend_from_slice(&raw);
        bodies.push(raw_with_action);
        H.with(|h| {
            for body in bodies {
                let req = Request::post("/")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from(body))
                    .unwrap();
                let (status, headers, out) = h.send(req);
                prop_assert!(status.as_u16() < 500, "{action} -> {status}: {}", String::from_utf8_lossy(&out));
                prop_assert!(headers.contains_key("x-amzn-requestid"));
                if !status.is_success() {
                    let text = String::from_utf8_lossy(&out);
                    prop_assert!(text.contains("<ErrorResponse") && text.contains("<Code>"), "{action}: {text}");
                }
            }
            Ok(())
        })?;
    }

    /// The console's pages with random query strings: never a 5xx, and a page comes back.
    #[test]
    fn random_console_queries_never_fail_the_server(
        page in 0..7usize,
        params in proptest::collection::vec(
            (prop_oneof![
                Just("group"), Just("stream"), Just("pattern"), Just("start"), Just("end"), Just("token"),
                Just("at"), Just("tzo"), Just("since"), Just("prefix"), Just("sort"), Just("rule"), Just("recent"),
            ], "\\PC{0,30}"),
            0..6,
        ),
    ) {
        thread_local!(static H: Harness = Harness::new());
        let path = ["/console/logs", "/console/logs/group", "/console/logs/stream", "/console/logs/search",
                    "/console/logs/tail", "/console/api/tail", "/console/playground"][page];
        let query = serde_urlencoded::to_string(&params).unwrap();
        H.with(|h| {
            let req = Request::get(format!("{path}?{query}")).body(Body::empty()).unwrap();
            let (status, _, out) = h.send(req);
            prop_assert!(status.as_u16() < 500, "{path}?{query} -> {status}: {}", String::from_utf8_lossy(&out));
            Ok(())
        })?;
    }
}

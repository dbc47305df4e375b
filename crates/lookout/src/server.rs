//! The front: one HTTP listener for every service. It gives each request an id (sent back as
//! `x-amzn-RequestId` on every response), bounds the body size, and routes: JSON 1.1 services by
//! `X-Amz-Target`, Query-protocol services (STS, SNS) by `Action` and the SigV4 credential scope.
//! It knows no operation's semantics.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use crate::api;
use crate::app::App;
use crate::auth::{self, Action, Principal};
use crate::metrics::OperationLabel;

/// Largest request body accepted: a 1 MiB PutLogEvents batch, JSON-escaped, with room to spare.
pub const MAX_BODY_BYTES: usize = 8 << 20;

#[derive(Clone)]
pub struct RequestId(pub String);

pub fn router(app: App) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(crate::ready))
        .route("/metrics", get(crate::metrics::serve))
        .merge(api::sns::routes())
        .merge(
            Router::new()
                .route("/_lookout/events/deliveries", get(api::admin::deliveries))
                .route("/_lookout/events/explain", axum::routing::post(api::admin::explain))
                .merge(api::sns::admin_routes())
                .route_layer(middleware::from_fn_with_state(app.clone(), admin_auth)),
        )
        .route("/", get(root).post(aws_entry))
        .merge(crate::console::routes(app.clone()))
        .fallback(fallback)
        .layer(middleware::from_fn(request_id))
        .with_state(app)
}

async fn request_id(mut req: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-amzn-RequestId", v);
    }
    resp
}

/// lookout's own JSON endpoints under `/_lookout/` take the same SigV4 signatures as the APIs (the
/// CLI signs them) and need read access to the service they show (`events` or `sns`).
async fn admin_auth(State(app): State<App>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            let (status, _, message) = body_read_failure(&e);
            return admin_error(status, &message);
        }
    };
    let principal = match auth::authenticate(&app.auth, parts.method.as_str(), &parts.uri, &parts.headers, &body) {
        Ok((p, _)) => p,
        Err(e) => return admin_error(StatusCode::UNAUTHORIZED, &sig_error_text(&e)),
    };
    let service = if parts.uri.path().starts_with("/_lookout/sns/") { "sns" } else { "events" };
    let operation = if parts.uri.path().ends_with("/explain") { "TestEventPattern" } else { "ListDeliveries" };
    if let Some(denied) = authorize(&app, &principal, service, operation, &[]) {
        return admin_error(StatusCode::FORBIDDEN, &denied);
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

fn admin_error(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], serde_json::json!({ "error": message }).to_string())
        .into_response()
}

async fn health() -> Response {
    json_response(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())
}

/// `GET /`: the Query protocol when the URL names an Action (SNS's SubscribeURL and
/// UnsubscribeURL are GETs that subscribers open), the console's overview for a browser, else a
/// short text.
async fn root(app: State<App>, rid: Extension<RequestId>, headers: HeaderMap, uri: Uri) -> Response {
    if uri.query().is_some_and(|q| q.split('&').any(|kv| kv.starts_with("Action="))) {
        return aws_entry(app, rid, Method::GET, headers, uri, Body::empty()).await;
    }
    if crate::console::wants_html(&headers) {
        return crate::console::home(app, &headers).await;
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "lookout is running. Point AWS clients here (AWS_ENDPOINT_URL); open this address in a browser for the console; GET /ready for readiness, GET /health for liveness.\n",
    )
        .into_response()
}

async fn fallback(uri: Uri) -> Response {
    json_error(StatusCode::NOT_FOUND, "UnknownOperationException", &format!("lookout serves nothing at {}", uri.path()))
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/x-amz-json-1.1")], body).into_response()
}

/// AWS's JSON error: `{"__type": "<BareName>", "message": "..."}` plus `X-Amzn-ErrorType`.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "__type": code, "message": message });
    let mut resp = json_response(status, body.to_string().into_bytes());
    if let Ok(v) = HeaderValue::from_str(code) {
        resp.headers_mut().insert("x-amzn-ErrorType", v);
    }
    resp
}

/// The SigV4 credential of a request: (access key id, service), from the Authorization header
/// (unverified: for choosing the error format, and the key id when auth is off).
fn credential(headers: &HeaderMap) -> Option<(String, String)> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    let mut parts = cred.split('/');
    let key = parts.next()?.to_owned();
    // key / date / region (may be empty for old SDKs) / service / aws4_request
    let service = parts.nth(2)?.to_owned();
    Some((key, service))
}

async fn aws_entry(
    State(app): State<App>,
    Extension(RequestId(rid)): Extension<RequestId>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let started = Instant::now();
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            let (status, code, message) = body_read_failure(&e);
            tracing::warn!(request_id = %rid, "request refused: {message}");
            return json_error(status, code, &message);
        }
    };
    let label = operation_label(&headers, &uri, &body);
    let metrics = app.metrics.clone();
    let resp = answer_aws(app, rid, method, headers, uri, body, started).await;
    if let Some(label) = label {
        metrics.record(&label, resp.status().as_u16(), started.elapsed());
    }
    resp
}

/// Why a request body could not be read: too slow (408), too large (413), or cut off (400).
fn body_read_failure(e: &axum::Error) -> (StatusCode, &'static str, String) {
    if crate::tls::BodyTimedOut::is_cause_of(e) {
        return (StatusCode::REQUEST_TIMEOUT, "RequestTimeoutException", e.to_string());
    }
    let too_large = std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |e| e.source())
        .any(|e| e.is::<http_body_util::LengthLimitError>());
    if too_large {
        let message = format!("the request body is larger than lookout accepts ({MAX_BODY_BYTES} bytes)");
        return (StatusCode::PAYLOAD_TOO_LARGE, "InvalidParameterException", message);
    }
    (StatusCode::BAD_REQUEST, "SerializationException", format!("the request body could not be read: {e}"))
}

/// The service and operation a request names, for the metrics (None when it names none).
fn operation_label(headers: &HeaderMap, uri: &Uri, body: &[u8]) -> Option<OperationLabel> {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (prefix, operation) = target.split_once('.')?;
        let service = match prefix {
            api::logs::TARGET_PREFIX => "logs",
            api::events::TARGET_PREFIX => "events",
            api::ecs::TARGET_PREFIX => "ecs",
            _ => "other",
        };
        return Some(OperationLabel { service, operation: operation.to_owned() });
    }
    let find = |pairs: Vec<(String, String)>| pairs.into_iter().find(|(k, _)| k == "Action").map(|(_, v)| v);
    let action = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()
        .and_then(find)
        .or_else(|| uri.query().and_then(|q| serde_urlencoded::from_str(q).ok()).and_then(find))?;
    let scope = credential(headers).map(|(_, s)| s);
    let service = match scope.as_deref() {
        Some("sts") => "sts",
        Some("sns") => "sns",
        _ if action == "GetCallerIdentity" => "sts",
        _ if api::sns::is_sns_action(&action) => "sns",
        _ => "other",
    };
    Some(OperationLabel { service, operation: action })
}

async fn answer_aws(
    app: App,
    rid: String,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
    started: Instant,
) -> Response {
    let authenticated = auth::authenticate(&app.auth, method.as_str(), &uri, &headers, &body);
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
        let principal = match authenticated {
            Ok((p, _)) => p,
            Err(e) => return json_auth_error(&e, &rid),
        };
        if let Some(wait) = over_rate(&app, &principal) {
            let mut resp = json_error(StatusCode::BAD_REQUEST, "ThrottlingException", "Rate exceeded");
            retry_after(&mut resp, wait);
            return resp;
        }
        let service = match prefix {
            api::logs::TARGET_PREFIX => "logs",
            api::events::TARGET_PREFIX => "events",
            api::ecs::TARGET_PREFIX => "ecs",
            _ => "",
        };
        if !service.is_empty() {
            if let Some(denied) = authorize(&app, &principal, service, operation, &body) {
                return json_error(StatusCode::BAD_REQUEST, "AccessDeniedException", &denied);
            }
        }
        let resp = match prefix {
            api::logs::TARGET_PREFIX => match api::logs::handle(app, operation, body).await {
                Ok(bytes) => json_response(StatusCode::OK, bytes),
                Err(e) => {
                    if e.http_status().is_server_error() {
                        tracing::error!(request_id = %rid, operation, code = e.code, message = %e.message, "request failed");
                    }
                    let mut resp = json_error(e.http_status(), e.code, &e.message);
                    if e.code == "ThrottlingException" {
                        // The store is shedding load until its flush catches up: about a second.
                        retry_after(&mut resp, 1.0);
                    }
                    resp
                }
            },
            api::events::TARGET_PREFIX => match api::events::handle(app, operation, body).await {
                Ok(bytes) => json_response(StatusCode::OK, bytes),
                Err(e) => {
                    if e.http_status().is_server_error() {
                        tracing::error!(request_id = %rid, operation, code = e.code, message = %e.message, "request failed");
                    }
                    json_error(e.http_status(), e.code, &e.message)
                }
            },
            api::ecs::TARGET_PREFIX => match api::ecs::handle(app, operation, body).await {
                Ok(bytes) => json_response(StatusCode::OK, bytes),
                Err(e) => {
                    if e.http_status().is_server_error() {
                        tracing::error!(request_id = %rid, operation, code = e.code, message = %e.message, "request failed");
                    }
                    json_error(e.http_status(), e.code, &e.message)
                }
            },
            _ => json_error(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                &format!("lookout does not serve the API {prefix:?} (X-Amz-Target {target:?}) yet"),
            ),
        };
        tracing::debug!(
            request_id = %rid,
            target,
            status = resp.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
        return resp;
    }
    // Query protocol: form body and/or URL query.
    let mut params: HashMap<String, String> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .collect();
    if let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) {
        params.extend(form);
    }
    let action = params.get("Action").cloned().unwrap_or_default();
    // Subscribers open SubscribeURL and UnsubscribeURL links without credentials, as with AWS
    // (the token or the subscription's random id is the secret).
    let link_action = method == Method::GET && (action == "ConfirmSubscription" || action == "Unsubscribe");
    let (principal, service) = match authenticated {
        Ok(ok) => ok,
        Err(lookout_sigv4::SigError::Missing) if link_action => (Principal::Anyone, None),
        Err(e) => return query_auth_error(&e, &rid),
    };
    if let Some(wait) = over_rate(&app, &principal) {
        let r = api::sts::error(400, "Throttling", "Rate exceeded", &rid);
        let mut resp = (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/xml")], r.body).into_response();
        retry_after(&mut resp, wait);
        return resp;
    }
    let service = service.as_deref();
    let is_sts = service == Some("sts") || (service.is_none() && action == "GetCallerIdentity");
    let is_sns = service == Some("sns") || (service.is_none() && api::sns::is_sns_action(&action));
    let iam_service = if is_sts { "sts" } else { "sns" };
    if (is_sts || is_sns) && !link_action {
        if let Some(denied) = authorize(&app, &principal, iam_service, &action, &body) {
            let (status, code) = if is_sts { (403, "AccessDenied") } else { (403, "AuthorizationError") };
            let r = api::sts::error(status, code, &denied, &rid);
            return (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/xml")], r.body).into_response();
        }
    }
    let (status, body) = if is_sts {
        let key_id = match &principal {
            Principal::Key(k) => Some(k.id.clone()),
            Principal::Anyone => credential(&headers).map(|(k, _)| k),
        };
        let r = api::sts::handle(&params, &app.identity.account_id, key_id.as_deref(), &rid);
        (r.status, r.body)
    } else if is_sns {
        let r = api::sns::handle(&app, &params, &rid).await;
        (r.status, r.body)
    } else {
        let r = api::sts::error(
            400,
            "InvalidAction",
            &format!("lookout does not serve action {action:?} for service {:?} yet", service.unwrap_or("unknown")),
            &rid,
        );
        (r.status, r.body)
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

/// `Some(seconds to wait)` when the principal's key is over its configured rate.
fn over_rate(app: &App, principal: &Principal) -> Option<f64> {
    match (principal, app.auth.keyring()) {
        (Principal::Key(k), Some(keys)) => keys.admit(k).err(),
        _ => None,
    }
}

/// `Retry-After` in whole seconds (at least 1), as throttled clients may honour it.
fn retry_after(resp: &mut Response, wait_secs: f64) {
    let secs = wait_secs.ceil().max(1.0) as u64;
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

/// Whether `principal` may perform `operation` of `service`; `Some(AWS's denial text)` if not.
/// The request body is read for the log group only when the key's grants depend on it.
fn authorize(app: &App, principal: &Principal, service: &str, operation: &str, body: &[u8]) -> Option<String> {
    let needs_group =
        service == "logs" && matches!(principal, Principal::Key(k) if matches!(k.policy, auth::Policy::Grants(_)));
    let group = if needs_group { auth::log_group_of(body) } else { None };
    let action = Action { service, operation, log_group: group.as_deref() };
    (!principal.allows(&action))
        .then(|| auth::denied_message(principal, &app.identity.account_id, &app.identity.region, &action))
}

/// What a person reads about a signature failure (AWS's wording, which `SigError` displays,
/// except for an unsigned request, where it says what to do).
fn sig_error_text(e: &lookout_sigv4::SigError) -> String {
    match e {
        lookout_sigv4::SigError::Missing => {
            "the request is not signed (SigV4): sign it with an access key of this server".into()
        }
        e => e.to_string(),
    }
}

/// A signature failure as the JSON services (CloudWatch Logs, EventBridge, ECS) answer it.
fn json_auth_error(e: &lookout_sigv4::SigError, rid: &str) -> Response {
    use lookout_sigv4::SigError;
    let code = match e {
        SigError::Missing => "MissingAuthenticationTokenException",
        SigError::Malformed(_) => "IncompleteSignatureException",
        SigError::UnknownKey(_) => "UnrecognizedClientException",
        SigError::Mismatch | SigError::Expired(_) => "InvalidSignatureException",
    };
    tracing::info!(request_id = %rid, code, "request refused: {e}");
    json_error(StatusCode::BAD_REQUEST, code, &e.to_string())
}

/// A signature failure as the Query services (SNS, STS) answer it.
fn query_auth_error(e: &lookout_sigv4::SigError, rid: &str) -> Response {
    use lookout_sigv4::SigError;
    let (status, code) = match e {
        SigError::Missing => (StatusCode::FORBIDDEN, "MissingAuthenticationToken"),
        SigError::Malformed(_) => (StatusCode::BAD_REQUEST, "IncompleteSignature"),
        SigError::UnknownKey(_) => (StatusCode::FORBIDDEN, "InvalidClientTokenId"),
        SigError::Mismatch | SigError::Expired(_) => (StatusCode::FORBIDDEN, "SignatureDoesNotMatch"),
    };
    let text = match e {
        SigError::Missing => "Request is missing Authentication Token".to_owned(),
        e => e.to_string(),
    };
    tracing::info!(request_id = %rid, code, "request refused: {text}");
    let r = api::sts::error(status.as_u16(), code, &text, rid);
    (status, [(header::CONTENT_TYPE, "text/xml")], r.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_read_even_with_an_empty_region() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20261122//logs/aws4_request, SignedHeaders=host, Signature=abc",
            ),
        );
        assert_eq!(credential(&h), Some(("AKID".into(), "logs".into())));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("garbage"));
        assert_eq!(credential(&h), None);
    }
}

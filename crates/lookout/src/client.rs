//! A small blocking client for lookout's JSON 1.1 APIs (CloudWatch Logs, ECS) and its own
//! `/_lookout/` endpoints, used by the CLI. Every request is signed with SigV4, with the
//! credentials AWS's tools read from the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` / `AWS_DEFAULT_REGION`), else lookout's default key.

use std::time::SystemTime;

use serde_json::Value;

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4566";

/// The key the CLI signs with.
#[derive(Clone)]
pub struct Credentials {
    pub key_id: String,
    pub secret: String,
    pub region: String,
}

impl Credentials {
    pub fn from_env() -> Credentials {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Credentials {
            key_id: var("AWS_ACCESS_KEY_ID").unwrap_or_else(|| crate::config::auth::DEFAULT_KEY_ID.to_owned()),
            secret: var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| crate::config::auth::DEFAULT_KEY_SECRET.to_owned()),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".to_owned()),
        }
    }
}

/// Sends one signed request: `url` is absolute (`http://host:port/path?query`, query already
/// encoded), `headers` are signed along with `host` and `x-amz-date`.
pub fn send_signed(
    agent: &ureq::Agent,
    creds: &Credentials,
    service: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<ureq::Response, Box<ureq::Error>> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (host, path_and_query) = match after_scheme.find('/') {
        Some(i) => (&after_scheme[..i], &after_scheme[i..]),
        None => (after_scheme, "/"),
    };
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut signed: Vec<(&str, &str)> = vec![("host", host)];
    signed.extend_from_slice(headers);
    let added = lookout_sigv4::sign(
        method,
        path,
        query,
        &signed,
        body,
        &creds.key_id,
        &creds.secret,
        &creds.region,
        service,
        SystemTime::now(),
    );
    let mut req = agent.request(method, url);
    for (k, v) in headers.iter().copied().chain(added.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        req = req.set(k, v);
    }
    let sent = if body.is_empty() && method == "GET" { req.call() } else { req.send_bytes(body) };
    sent.map_err(Box::new)
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{code}: {message}")]
    Aws { code: String, message: String },
    #[error(
        "cannot reach lookout at {endpoint}: {detail} (is `lookout serve` running? set --endpoint or LOOKOUT_ENDPOINT)"
    )]
    Transport { endpoint: String, detail: String },
}

pub struct LogsClient {
    endpoint: String,
    agent: ureq::Agent,
    /// `X-Amz-Target` prefix of the service this client calls.
    target_prefix: &'static str,
    /// The service name in the signature's scope.
    service: &'static str,
    creds: Credentials,
}

impl LogsClient {
    /// A CloudWatch Logs client.
    pub fn new(endpoint: &str) -> LogsClient {
        Self::for_service(endpoint, "Logs_20140328", "logs")
    }

    /// An ECS client.
    pub fn ecs(endpoint: &str) -> LogsClient {
        Self::for_service(endpoint, "AmazonEC2ContainerServiceV20141113", "ecs")
    }

    fn for_service(endpoint: &str, target_prefix: &'static str, service: &'static str) -> LogsClient {
        let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(60)).build();
        LogsClient {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            agent,
            target_prefix,
            service,
            creds: Credentials::from_env(),
        }
    }

    pub fn call(&self, operation: &str, body: &Value) -> Result<Value, ClientError> {
        let target = format!("{}.{operation}", self.target_prefix);
        let result = send_signed(
            &self.agent,
            &self.creds,
            self.service,
            "POST",
            &format!("{}/", self.endpoint),
            &[("x-amz-target", &target), ("content-type", "application/x-amz-json-1.1")],
            body.to_string().as_bytes(),
        );
        match result.map_err(|e| *e) {
            Ok(resp) => resp.into_json().map_err(|e| self.transport(e.to_string())),
            Err(ureq::Error::Status(_, resp)) => {
                let v: Value = resp.into_json().unwrap_or(Value::Null);
                let code = v["__type"].as_str().unwrap_or("UnknownError").to_owned();
                let mut message = v["message"].as_str().unwrap_or("").to_owned();
                if matches!(
                    code.as_str(),
                    "InvalidSignatureException" | "UnrecognizedClientException" | "MissingAuthenticationTokenException"
                ) {
                    message.push_str(&format!(
                        " (lookout's CLI signs with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, now {:?}: use a key of this server)",
                        self.creds.key_id
                    ));
                }
                Err(ClientError::Aws { code, message })
            }
            Err(e) => Err(self.transport(e.to_string())),
        }
    }

    fn transport(&self, detail: String) -> ClientError {
        ClientError::Transport { endpoint: self.endpoint.clone(), detail }
    }
}

//! A small blocking client for lookout's JSON 1.1 APIs (CloudWatch Logs, ECS), used by the CLI.

use serde_json::Value;

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4566";

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
}

impl LogsClient {
    /// A CloudWatch Logs client.
    pub fn new(endpoint: &str) -> LogsClient {
        Self::for_service(endpoint, "Logs_20140328")
    }

    /// An ECS client.
    pub fn ecs(endpoint: &str) -> LogsClient {
        Self::for_service(endpoint, "AmazonEC2ContainerServiceV20141113")
    }

    fn for_service(endpoint: &str, target_prefix: &'static str) -> LogsClient {
        let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(60)).build();
        LogsClient { endpoint: endpoint.trim_end_matches('/').to_owned(), agent, target_prefix }
    }

    pub fn call(&self, operation: &str, body: &Value) -> Result<Value, ClientError> {
        let result = self
            .agent
            .post(&format!("{}/", self.endpoint))
            .set("X-Amz-Target", &format!("{}.{operation}", self.target_prefix))
            .set("Content-Type", "application/x-amz-json-1.1")
            .send_string(&body.to_string());
        match result {
            Ok(resp) => resp.into_json().map_err(|e| self.transport(e.to_string())),
            Err(ureq::Error::Status(_, resp)) => {
                let v: Value = resp.into_json().unwrap_or(Value::Null);
                Err(ClientError::Aws {
                    code: v["__type"].as_str().unwrap_or("UnknownError").to_owned(),
                    message: v["message"].as_str().unwrap_or("").to_owned(),
                })
            }
            Err(e) => Err(self.transport(e.to_string())),
        }
    }

    fn transport(&self, detail: String) -> ClientError {
        ClientError::Transport { endpoint: self.endpoint.clone(), detail }
    }
}

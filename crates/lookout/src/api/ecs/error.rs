//! `EcsApiError`: the one error type of the ECS API, with its AWS code and HTTP status, rendered as
//! the JSON 1.1 error body `{"__type": "<BareName>", "message": "..."}`.

use axum::http::StatusCode;
use lookout_tasks::TasksError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsApiError {
    pub code: &'static str,
    pub message: String,
}

impl EcsApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        EcsApiError { code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }

    pub fn client(message: impl Into<String>) -> Self {
        Self::new("ClientException", message)
    }

    pub fn server() -> Self {
        Self::new("ServerException", "The service cannot complete the request.")
    }

    pub fn http_status(&self) -> StatusCode {
        match self.code {
            "ServerException" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<TasksError> for EcsApiError {
    fn from(e: TasksError) -> Self {
        match e {
            TasksError::InvalidParameter(m) => EcsApiError::invalid(m),
            TasksError::Client(m) => EcsApiError::client(m),
            TasksError::ClusterNotFound => EcsApiError::new("ClusterNotFoundException", "Cluster not found."),
            TasksError::ClusterContainsTasks(m) => EcsApiError::new("ClusterContainsTasksException", m),
            TasksError::Internal(m) => {
                tracing::error!(error = %m, "task service failure");
                EcsApiError::server()
            }
        }
    }
}

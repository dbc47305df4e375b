//! `LogsApiError`: the one error type of the CloudWatch Logs API, with its AWS code and HTTP status,
//! rendered as AWS's JSON 1.1 error body `{"__type": "<BareName>", "message": "..."}`.

use axum::http::StatusCode;
use lookout_logs::LogsError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsApiError {
    pub code: &'static str,
    pub message: String,
}

impl LogsApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        LogsApiError { code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }

    pub fn http_status(&self) -> StatusCode {
        match self.code {
            "ServiceUnavailableException" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<LogsError> for LogsApiError {
    fn from(e: LogsError) -> Self {
        let code = match &e {
            LogsError::InvalidParameter(_) => "InvalidParameterException",
            LogsError::ResourceNotFound(_) => "ResourceNotFoundException",
            LogsError::ResourceAlreadyExists(_) => "ResourceAlreadyExistsException",
            LogsError::LimitExceeded(_) => "LimitExceededException",
            LogsError::Throttling(_) => "ThrottlingException",
            LogsError::ServiceUnavailable(_) => "ServiceUnavailableException",
        };
        LogsApiError::new(code, e.to_string())
    }
}

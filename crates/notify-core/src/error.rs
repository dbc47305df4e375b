//! `NotifyError`: what the notification domain refuses, with AWS's wording for what a client did
//! wrong (the API layer maps each variant to an SNS error code) and lowercase text for internal
//! failures (logged, never sent as is).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// SNS `NotFound` (404), e.g. "Topic does not exist".
    #[error("{0}")]
    NotFound(String),
    /// SNS `InvalidParameter` (400), e.g. "Invalid parameter: Email address".
    #[error("{0}")]
    InvalidParameter(String),
    /// A storage failure or a bug: SNS `InternalError` (500).
    #[error("{0}")]
    Internal(String),
}

impl NotifyError {
    pub(crate) fn invalid(what: impl std::fmt::Display) -> NotifyError {
        NotifyError::InvalidParameter(format!("Invalid parameter: {what}"))
    }

    pub(crate) fn topic_not_found() -> NotifyError {
        NotifyError::NotFound("Topic does not exist".into())
    }

    pub(crate) fn subscription_not_found() -> NotifyError {
        NotifyError::NotFound("Subscription does not exist".into())
    }
}

impl From<crate::store::StoreError> for NotifyError {
    fn from(e: crate::store::StoreError) -> Self {
        NotifyError::Internal(e.to_string())
    }
}

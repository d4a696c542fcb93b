//! The API's error body, `{"error": {"code", "message", "field"}}`, with the HTTP status
//! that fits the code. Codes are the ones the library and the JS packages use.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::engine::EngineError;
use crate::error::ErrorCode;
use crate::jobs::JobError;

/// An error answered by the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (`INVALID_JOB`, `JOB_NOT_FOUND`, …).
    pub code: &'static str,
    /// What happened, for people.
    pub message: String,
    /// The field of the request at fault, when one is.
    pub field: Option<String>,
}

/// The JSON body of an error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's code, message and field.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `INVALID_JOB`, `JOB_NOT_FOUND`, `PAYLOAD_TOO_LARGE`.
    pub code: String,
    /// What happened.
    pub message: String,
    /// The request field at fault (`jobs[3].replicationTarget`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error with a status and a code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 400 naming a field.
    pub fn invalid(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::BAD_REQUEST, code, message)
        }
    }

    /// 404 for a route or resource that is not there.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = e.code();
        let message = e.to_string();
        match &e {
            EngineError::Job(JobError::Invalid { field, .. }) => {
                ApiError::invalid(code, field.clone(), message)
            }
            EngineError::Job(JobError::InvalidCid(_)) => ApiError::invalid(code, "cid", message),
            EngineError::InvalidArgument { field, .. } => ApiError::invalid(code, *field, message),
            EngineError::Options(_) => ApiError::new(StatusCode::BAD_REQUEST, code, message),
            EngineError::JobNotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, code, message),
            EngineError::Store(crate::store::StoreError::QuotaExceeded { .. }) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
            }
            // The chain or the store is unreachable: try again later.
            EngineError::Store(_)
            | EngineError::Evm(_)
            | EngineError::Lotus(_)
            | EngineError::Stopped => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message),
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, status = %self.status, "request failed: {}", self.message);
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

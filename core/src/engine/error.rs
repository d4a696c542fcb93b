//! Errors of the node API: each keeps the stable code of its cause.

use crate::chain::evm::EvmError;
use crate::chain::lotus::LotusError;
use crate::chain::options::{BuildError, OptionsError};
use crate::error::ErrorCode;
use crate::jobs::JobError;
use crate::store::StoreError;

/// A node operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Bad configuration (`INVALID_OPTIONS`).
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// A chain client could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A job that cannot be registered (`INVALID_JOB`, `INVALID_CID`).
    #[error(transparent)]
    Job(#[from] JobError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A DealStatus read failed.
    #[error(transparent)]
    Evm(#[from] EvmError),
    /// A Lotus read failed.
    #[error(transparent)]
    Lotus(#[from] LotusError),
    /// No job with this id (`JOB_NOT_FOUND`).
    #[error("no job {job_id}")]
    JobNotFound {
        /// The id asked for.
        job_id: String,
    },
    /// No API key with this id (`KEY_NOT_FOUND`).
    #[error("no API key {id}")]
    KeyNotFound {
        /// The id asked for.
        id: String,
    },
    /// An argument that is not valid (`INVALID_ARGUMENT`), naming the field.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A task of the node ended abnormally (`INTERNAL`); its work is retried.
    #[error("internal error: {reason}")]
    Internal {
        /// What happened.
        reason: String,
    },
    /// The node was stopped (`NODE_STOPPED`).
    #[error("the node is stopped")]
    Stopped,
}

impl ErrorCode for EngineError {
    fn code(&self) -> &'static str {
        match self {
            EngineError::Options(e) => e.code(),
            EngineError::Build(e) => e.code(),
            EngineError::Job(e) => e.code(),
            EngineError::Store(e) => e.code(),
            EngineError::Evm(e) => e.code(),
            EngineError::Lotus(e) => e.code(),
            EngineError::JobNotFound { .. } => "JOB_NOT_FOUND",
            EngineError::KeyNotFound { .. } => "KEY_NOT_FOUND",
            EngineError::InvalidArgument { .. } => "INVALID_ARGUMENT",
            EngineError::Internal { .. } => "INTERNAL",
            EngineError::Stopped => "NODE_STOPPED",
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            EngineError::Store(e) => e.is_retryable(),
            EngineError::Evm(e) => e.is_retryable(),
            EngineError::Lotus(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl EngineError {
    /// `code: message`, the form stored as a job's last error.
    pub fn describe(&self) -> String {
        format!("{}: {self}", self.code())
    }
}

impl From<super::source::SourceError> for EngineError {
    fn from(e: super::source::SourceError) -> Self {
        match e {
            super::source::SourceError::Evm(e) => EngineError::Evm(e),
            super::source::SourceError::Lotus(e) => EngineError::Lotus(e),
        }
    }
}

//! Errors of the block store and of uploads, each with a stable code.

use crate::error::ErrorCode;

/// Why a block store operation or an upload failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// The store could not read or write (`BLOCK_STORE_ERROR`); `what` names the operation.
    #[error("block store: {what}: {reason}")]
    Store {
        /// The operation.
        what: String,
        /// The underlying error.
        reason: String,
    },
    /// An upload over the configured limit (`TOO_LARGE`); nothing of it is kept.
    #[error("too large: the upload is over the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The uploaded stream failed or was cut off (`UPLOAD_ABORTED`); nothing of it is kept.
    #[error("upload aborted: {reason}")]
    Aborted {
        /// Why.
        reason: String,
    },
    /// The argument is not a CID (`INVALID_CID`).
    #[error("invalid cid: {reason}")]
    InvalidCid {
        /// Why.
        reason: String,
    },
    /// Pinning a CID the node did not hold failed to retrieve it (the retrieval's code).
    #[error(transparent)]
    Retrieve(#[from] crate::retrieve::RetrieveError),
}

impl BlockError {
    /// A store error from an I/O error (paths are the node's own, never secrets).
    pub(crate) fn io(what: impl Into<String>, e: &std::io::Error) -> Self {
        BlockError::Store {
            what: what.into(),
            reason: e.to_string(),
        }
    }
}

impl ErrorCode for BlockError {
    fn code(&self) -> &'static str {
        match self {
            BlockError::Store { .. } => "BLOCK_STORE_ERROR",
            BlockError::TooLarge { .. } => "TOO_LARGE",
            BlockError::Aborted { .. } => "UPLOAD_ABORTED",
            BlockError::InvalidCid { .. } => "INVALID_CID",
            BlockError::Retrieve(e) => e.code(),
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            BlockError::Store { .. } => true,
            BlockError::Retrieve(e) => e.is_retryable(),
            _ => false,
        }
    }
}

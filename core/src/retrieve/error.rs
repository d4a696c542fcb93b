//! Errors of retrieval, each with a stable code.

use crate::error::ErrorCode;

/// Why a retrieval failed. Per source the same type says what that source did; the error of
/// a whole retrieval is the most telling one of its sources, with what each said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetrieveError {
    /// The argument is not a CID (`INVALID_CID`).
    #[error("invalid cid: {reason}")]
    InvalidCid {
        /// Why.
        reason: String,
    },
    /// A source URL that is not http(s) (`INVALID_URL`).
    #[error("invalid url: {reason}")]
    InvalidUrl {
        /// Why.
        reason: String,
    },
    /// No source has it (`NOT_FOUND`).
    #[error("{cid} not found: {tried}")]
    NotFound {
        /// The CID asked for.
        cid: String,
        /// What each source said.
        tried: String,
    },
    /// A block's bytes do not match its CID, or the DAG is malformed (`INTEGRITY`).
    #[error("integrity: block {cid} from {origin}: {reason}")]
    Integrity {
        /// The block.
        cid: String,
        /// Who sent it.
        origin: String,
        /// What was wrong.
        reason: String,
    },
    /// A block the DAG needs never came (`INCOMPLETE`).
    #[error("incomplete: block {cid} never came from {origin}: {reason}")]
    Incomplete {
        /// The missing block.
        cid: String,
        /// The source that stopped short.
        origin: String,
        /// What happened.
        reason: String,
    },
    /// Over a configured cap (`TOO_LARGE`).
    #[error("too large: {reason}")]
    TooLarge {
        /// Which cap.
        reason: String,
    },
    /// A source's reply was over its ceiling and was cut (`REPLY_TOO_LARGE`).
    #[error("reply too large: {origin} sent over {limit} bytes")]
    ReplyTooLarge {
        /// The source.
        origin: String,
        /// The ceiling, in bytes.
        limit: u64,
    },
    /// A DAG this retrieval cannot verify or is not a file (`UNSUPPORTED`).
    #[error("unsupported: {reason}")]
    Unsupported {
        /// What.
        reason: String,
    },
    /// A source did not answer in time (`TIMEOUT`).
    #[error("timeout: {origin}: {reason}")]
    Timeout {
        /// The source.
        origin: String,
        /// What was waited for.
        reason: String,
    },
    /// A source could not be reached (`NETWORK`).
    #[error("network: {origin}: {reason}")]
    Network {
        /// The source.
        origin: String,
        /// The transport's words.
        reason: String,
    },
    /// A source answered with an error status (`HTTP_ERROR`).
    #[error("http error: {origin} answered {status}")]
    Http {
        /// The source.
        origin: String,
        /// The status.
        status: u16,
    },
    /// Every source failed; `first` is the most telling error (`INTEGRITY` or `INCOMPLETE`
    /// before the others), `tried` what each source said. Its code is `first`'s code.
    #[error("{first} (sources tried: {tried})")]
    AllFailed {
        /// The most telling error.
        first: Box<RetrieveError>,
        /// Every source's error, in order.
        tried: String,
    },
}

impl RetrieveError {
    /// A source's transport failure: `TIMEOUT` or `NETWORK`, without the URL (a source URL
    /// may carry a key in its query).
    pub(super) fn transport(origin: &str, e: crate::net::NetError) -> Self {
        let timeout = e.timeout;
        let reason = e.reason;
        let origin = origin.to_string();
        if timeout {
            RetrieveError::Timeout { origin, reason }
        } else {
            RetrieveError::Network { origin, reason }
        }
    }

    /// How telling an error is when choosing what a failed retrieval reports: a source
    /// that sent wrong or partial data says more than one that had nothing.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            RetrieveError::Integrity { .. } => 6,
            RetrieveError::Incomplete { .. } => 5,
            RetrieveError::TooLarge { .. } | RetrieveError::Unsupported { .. } => 4,
            RetrieveError::Timeout { .. } | RetrieveError::ReplyTooLarge { .. } => 3,
            RetrieveError::Http { .. } | RetrieveError::Network { .. } => 2,
            RetrieveError::NotFound { .. } => 1,
            RetrieveError::InvalidCid { .. }
            | RetrieveError::InvalidUrl { .. }
            | RetrieveError::AllFailed { .. } => 0,
        }
    }

    /// Errors that are about the DAG itself, not a source: no other source can do better.
    pub(crate) fn is_final(&self) -> bool {
        matches!(
            self,
            RetrieveError::TooLarge { .. }
                | RetrieveError::Unsupported { .. }
                | RetrieveError::InvalidCid { .. }
                | RetrieveError::InvalidUrl { .. }
        ) || matches!(self, RetrieveError::Integrity { origin, .. } if origin == "the DAG")
    }
}

impl ErrorCode for RetrieveError {
    fn code(&self) -> &'static str {
        match self {
            RetrieveError::InvalidCid { .. } => "INVALID_CID",
            RetrieveError::InvalidUrl { .. } => "INVALID_URL",
            RetrieveError::NotFound { .. } => "NOT_FOUND",
            RetrieveError::Integrity { .. } => "INTEGRITY",
            RetrieveError::Incomplete { .. } => "INCOMPLETE",
            RetrieveError::TooLarge { .. } => "TOO_LARGE",
            RetrieveError::ReplyTooLarge { .. } => "REPLY_TOO_LARGE",
            RetrieveError::Unsupported { .. } => "UNSUPPORTED",
            RetrieveError::Timeout { .. } => "TIMEOUT",
            RetrieveError::Network { .. } => "NETWORK",
            RetrieveError::Http { .. } => "HTTP_ERROR",
            RetrieveError::AllFailed { first, .. } => first.code(),
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            RetrieveError::Timeout { .. }
            | RetrieveError::Network { .. }
            | RetrieveError::Http { .. }
            | RetrieveError::Incomplete { .. } => true,
            RetrieveError::AllFailed { first, .. } => first.is_retryable(),
            _ => false,
        }
    }
}

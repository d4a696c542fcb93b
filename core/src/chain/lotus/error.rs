//! Errors of the Lotus client, classified as the lotus-api notes advise: by message for
//! generic errors (Lotus says code 1, Forest -32603), by code where codes are stable.

use crate::error::ErrorCode;

/// A Lotus call that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LotusError {
    /// `StateMarketStorageDeal`: no such deal now (`DEAL_NOT_FOUND`). Since nv22 this also
    /// means terminated, or completed and settled.
    #[error("deal {deal_id} not found")]
    DealNotFound {
        /// The deal asked for.
        deal_id: u64,
    },
    /// An address without an actor (`ACTOR_NOT_FOUND`).
    #[error("{method}: actor not found: {message}")]
    ActorNotFound {
        /// The method called.
        method: &'static str,
        /// Lotus's message.
        message: String,
    },
    /// The endpoint does not serve the method, as gateways lack the fault methods
    /// (`METHOD_NOT_AVAILABLE`).
    #[error("{method} is not available on this endpoint")]
    MethodNotAvailable {
        /// The method called.
        method: &'static str,
    },
    /// No answer in time (`RPC_TIMEOUT`).
    #[error("{method} timed out after {millis} ms")]
    Timeout {
        /// The method called.
        method: &'static str,
        /// The limit.
        millis: u64,
    },
    /// HTTP 401: the token is missing or wrong (`UNAUTHORIZED`). The token is never shown.
    #[error("{method}: unauthorized (check the Lotus API token)")]
    Unauthorized {
        /// The method called.
        method: &'static str,
    },
    /// A reply that is not the JSON it should be (`MALFORMED_REPLY`).
    #[error("{method}: malformed reply: {reason}")]
    Malformed {
        /// The method called.
        method: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// Any other JSON-RPC error (`RPC_ERROR`).
    #[error("{method}: error {code}: {message}")]
    Rpc {
        /// The method called.
        method: &'static str,
        /// JSON-RPC error code.
        code: i64,
        /// Lotus's message.
        message: String,
    },
    /// HTTP failure (`HTTP_ERROR`): 429, 502, 503, 504 whatever the body (rate limits and
    /// overloaded proxies answer them with JSON-RPC error bodies too), or any other status
    /// >= 400 without a JSON-RPC answer.
    #[error("{method}: HTTP {status}")]
    Http {
        /// The method called.
        method: &'static str,
        /// HTTP status.
        status: u16,
        /// What the server's `Retry-After` header asked for (seconds, or an HTTP date
        /// turned into a delay), in milliseconds.
        retry_after_ms: Option<u64>,
    },
    /// Could not reach the endpoint (`NETWORK`).
    #[error("{method}: cannot reach the endpoint: {reason}")]
    Network {
        /// The method called.
        method: &'static str,
        /// Why.
        reason: String,
    },
    /// The configured URL cannot be used (`INVALID_URL`).
    #[error("invalid Lotus URL: {0}")]
    InvalidUrl(String),
    /// The reply was larger than `max_reply_bytes` and was cut (`REPLY_TOO_LARGE`); not
    /// retried, as it would be as large again.
    #[error("{method}: the reply is over the limit of {limit} bytes")]
    ReplyTooLarge {
        /// The method called.
        method: &'static str,
        /// The limit, in bytes.
        limit: u64,
    },
}

impl ErrorCode for LotusError {
    fn code(&self) -> &'static str {
        match self {
            LotusError::DealNotFound { .. } => "DEAL_NOT_FOUND",
            LotusError::ActorNotFound { .. } => "ACTOR_NOT_FOUND",
            LotusError::MethodNotAvailable { .. } => "METHOD_NOT_AVAILABLE",
            LotusError::Timeout { .. } => "RPC_TIMEOUT",
            LotusError::Unauthorized { .. } => "UNAUTHORIZED",
            LotusError::Malformed { .. } => "MALFORMED_REPLY",
            LotusError::Rpc { .. } => "RPC_ERROR",
            LotusError::Http { .. } => "HTTP_ERROR",
            LotusError::Network { .. } => "NETWORK",
            LotusError::InvalidUrl(_) => "INVALID_URL",
            LotusError::ReplyTooLarge { .. } => "REPLY_TOO_LARGE",
        }
    }

    /// Transient failures only: a method-level error would fail the same way again.
    fn is_retryable(&self) -> bool {
        match self {
            LotusError::Timeout { .. } | LotusError::Network { .. } => true,
            LotusError::Http { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// HTTP statuses that mean "try again later" whatever the body says: rate limited, bad
/// gateway, unavailable, gateway timeout.
pub(crate) fn is_transient_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

impl LotusError {
    /// How long the server asked to wait before the next attempt (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            LotusError::Http {
                retry_after_ms: Some(ms),
                ..
            } => Some(std::time::Duration::from_millis(*ms)),
            _ => None,
        }
    }

    /// Classifies a JSON-RPC error object of `method`.
    pub(crate) fn from_rpc(
        method: &'static str,
        code: i64,
        message: String,
        deal_id: Option<u64>,
    ) -> Self {
        if code == -32601 {
            return LotusError::MethodNotAvailable { method };
        }
        if let Some(deal_id) = deal_id {
            if message.contains("not found") && message.contains("deal") {
                return LotusError::DealNotFound { deal_id };
            }
        }
        if code == 11 || message.contains("actor not found") {
            return LotusError::ActorNotFound { method, message };
        }
        LotusError::Rpc {
            method,
            code,
            message,
        }
    }
}

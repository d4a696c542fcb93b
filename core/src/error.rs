//! Stable error codes shared by every error type of the core.
//!
//! Each domain has its own `thiserror` enum; all of them implement [`ErrorCode`], so the
//! bindings can map any core error to a JS error with a `code` property in one place.

/// An error with a stable, documented string code (for example `INVALID_CID`).
///
/// Codes never change once released: hosts match on them, and they survive into JS as
/// `err.code`.
pub trait ErrorCode: std::error::Error {
    /// The stable code of this error.
    fn code(&self) -> &'static str;

    /// Whether retrying the same operation later may succeed.
    fn is_retryable(&self) -> bool {
        false
    }
}

/// Any coded error, flattened to its code and message: what crosses into JS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CodedError {
    /// The stable code.
    pub code: &'static str,
    /// The message.
    pub message: String,
}

impl ErrorCode for CodedError {
    fn code(&self) -> &'static str {
        self.code
    }
}

/// Flattens any coded error (for `map_err`).
pub fn coded<E: ErrorCode>(e: E) -> CodedError {
    CodedError {
        code: e.code(),
        message: e.to_string(),
    }
}

/// An argument that is not what the function takes (code `INVALID_ARGUMENT`).
pub fn invalid_argument(field: &str, reason: impl std::fmt::Display) -> CodedError {
    CodedError {
        code: "INVALID_ARGUMENT",
        message: format!("invalid {field}: {reason}"),
    }
}

/// Argument `field` read from JSON (`INVALID_ARGUMENT` naming the path inside it, e.g.
/// `invalid pieces: [2].pieceSize: …`).
#[cfg(feature = "chain")]
pub fn json_arg<T: serde::de::DeserializeOwned>(
    field: &str,
    v: serde_json::Value,
) -> Result<T, CodedError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            invalid_argument(field, e.inner())
        } else {
            invalid_argument(field, format!("{path}: {}", e.inner()))
        }
    })
}

/// A JS number that must be a non-negative integer (deal ids, epochs): exact up to 2^53.
pub fn integer_arg(field: &str, v: f64) -> Result<u64, CodedError> {
    crate::serde_num::whole(v)
        .ok_or_else(|| invalid_argument(field, format!("expected a non-negative integer, got {v}")))
}

/// Optional JS epochs (`null` allowed per entry), each a non-negative integer.
pub fn epochs_arg(field: &str, values: Vec<Option<f64>>) -> Result<Vec<Option<i64>>, CodedError> {
    values
        .into_iter()
        .map(|v| {
            v.map(|e| integer_arg(field, e).map(|e| e as i64))
                .transpose()
        })
        .collect()
}

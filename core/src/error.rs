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

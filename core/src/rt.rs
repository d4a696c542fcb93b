//! Runtime shims: timers that work under tokio natively and in browsers (wasm).

use std::future::Future;
use std::time::Duration;

/// Waits for `d`.
pub async fn sleep(d: Duration) {
    #[cfg(not(target_family = "wasm"))]
    tokio::time::sleep(d).await;
    #[cfg(target_family = "wasm")]
    wasmtimer::tokio::sleep(d).await;
}

/// Runs `fut`, or gives up after `d` (returns `None`).
pub async fn timeout<F: Future>(d: Duration, fut: F) -> Option<F::Output> {
    #[cfg(not(target_family = "wasm"))]
    return tokio::time::timeout(d, fut).await.ok();
    #[cfg(target_family = "wasm")]
    return wasmtimer::tokio::timeout(d, fut).await.ok();
}

/// A uniformly random fraction in `[0, 1)`, for retry jitter.
pub fn jitter() -> f64 {
    // Falls back to the middle of the range: jitter only spreads retries, it need not be secret.
    getrandom::u64().map_or(0.5, |v| (v >> 11) as f64 / (1u64 << 53) as f64)
}

/// Milliseconds since the Unix epoch (the browser's clock in wasm, where `std` has none).
pub fn now_ms() -> i64 {
    #[cfg(not(target_family = "wasm"))]
    use std::time::{SystemTime, UNIX_EPOCH};
    #[cfg(target_family = "wasm")]
    use wasmtimer::std::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

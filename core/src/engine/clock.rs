//! Time and chance as the engine sees them, behind a seam: the system clock in production,
//! a simulated one in the deterministic simulation (years of a job's life in seconds).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future of the clock.
pub type ClockFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What the engine reads the time and draws jitter from.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// A uniformly random fraction in `[0, 1)`, to spread retries.
    fn jitter(&self) -> f64;
    /// Completes once `d` has passed on this clock.
    fn sleep(&self, d: Duration) -> ClockFuture<'_>;
}

/// The system clock and the OS's randomness.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    fn jitter(&self) -> f64 {
        crate::rt::jitter()
    }

    fn sleep(&self, d: Duration) -> ClockFuture<'_> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// Milliseconds of a duration, saturating.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Runs `work` while calling `renew` every `every`, and returns the work's result once
/// the renewal in progress, if any, has finished.
///
/// The renewal runs beside the work (`join!`), never awaited inside a `select!` branch's
/// body: there it would stop the work, which may hold the store's only connection the
/// renewal waits for (a deadlock on SQLite). A renewal is never cancelled mid-query either:
/// the end of the work is only looked at between renewals. A failed renewal is logged and
/// ends the renewing: the lease then lapses, and the work's own writes, which need the
/// lease, are refused.
pub(crate) async fn while_renewing<T, E, W, F, Fut>(
    clock: &dyn Clock,
    every: Duration,
    work: W,
    mut renew: F,
) -> T
where
    W: Future<Output = T>,
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let done = tokio::sync::Notify::new();
    let work = async {
        let out = work.await;
        done.notify_one();
        out
    };
    let renewing = async {
        loop {
            tokio::select! {
                biased;
                _ = done.notified() => return,
                _ = clock.sleep(every) => {}
            }
            if let Err(e) = renew().await {
                tracing::warn!("lease renewal failed: {e}");
                return;
            }
        }
    };
    tokio::join!(work, renewing).0
}

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

/// Calls `renew` every `every` until `done` is notified, or until a renewal fails (logged:
/// the lease then lapses, and the work's own writes, which need the lease, are refused).
///
/// Run it beside the work it guards (`join!`), never awaited inside a `select!` branch's
/// body: there it would stop the work, which may hold the store's only connection the
/// renewal waits for (a deadlock on SQLite). A renewal in progress is never cancelled
/// mid-query either: `done` is only looked at between renewals.
pub(crate) async fn renew_until<E, F, Fut>(
    clock: &dyn Clock,
    every: Duration,
    done: &tokio::sync::Notify,
    mut renew: F,
) where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
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
}

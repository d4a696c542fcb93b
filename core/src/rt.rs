//! Runtime shims: timers that work under tokio natively and in browsers (wasm), where they are
//! the host's own `setTimeout` (a timer crate with its own wheel cost 16 KB of the module).

use std::future::Future;
use std::time::Duration;

/// Waits for `d`.
pub async fn sleep(d: Duration) {
    #[cfg(not(target_family = "wasm"))]
    tokio::time::sleep(d).await;
    #[cfg(target_family = "wasm")]
    js_timer::sleep(d).await;
}

/// Runs `fut`, or gives up after `d` (returns `None`).
pub async fn timeout<F: Future>(d: Duration, fut: F) -> Option<F::Output> {
    #[cfg(not(target_family = "wasm"))]
    return tokio::time::timeout(d, fut).await.ok();
    #[cfg(target_family = "wasm")]
    {
        let fut = std::pin::pin!(fut);
        let timer = std::pin::pin!(js_timer::sleep(d));
        match futures::future::select(fut, timer).await {
            futures::future::Either::Left((out, _)) => Some(out),
            futures::future::Either::Right(_) => None,
        }
    }
}

#[cfg(target_family = "wasm")]
mod js_timer {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    /// The longest delay `setTimeout` takes (2^31 - 1 ms); a longer one fires at once.
    const MAX_DELAY_MS: u128 = i32::MAX as u128;

    /// Waits for `d`, in steps `setTimeout` can take.
    pub(super) async fn sleep(d: Duration) {
        let mut left = d.as_millis();
        loop {
            let step = left.min(MAX_DELAY_MS);
            Timer::new(step as f64).await;
            left -= step;
            if left == 0 {
                break;
            }
        }
    }

    fn global_fn(name: &str) -> Option<js_sys::Function> {
        js_sys::Reflect::get(&js_sys::global(), &name.into())
            .ok()?
            .dyn_into()
            .ok()
    }

    /// One `setTimeout`, cleared when dropped first (a request that answered in time does
    /// not leave its timeout pending, which would keep Node's event loop alive).
    struct Timer {
        id: JsValue,
        fired: JsFuture,
    }

    impl Timer {
        fn new(ms: f64) -> Self {
            let mut id = JsValue::UNDEFINED;
            let promise = js_sys::Promise::new(&mut |resolve, _reject| {
                // Without a setTimeout (no such host is known) the timer never fires: no
                // timeouts, rather than every one at once.
                if let Some(set) = global_fn("setTimeout") {
                    id = set
                        .call2(&js_sys::global(), &resolve, &JsValue::from_f64(ms))
                        .unwrap_or(JsValue::UNDEFINED);
                }
            });
            Timer {
                id,
                fired: JsFuture::from(promise),
            }
        }
    }

    impl Future for Timer {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            Pin::new(&mut self.fired).poll(cx).map(|_| ())
        }
    }

    impl Drop for Timer {
        fn drop(&mut self) {
            if self.id.is_undefined() {
                return;
            }
            if let Some(clear) = global_fn("clearTimeout") {
                let _ = clear.call1(&js_sys::global(), &self.id);
            }
        }
    }
}

/// A uniformly random fraction in `[0, 1)`, for retry jitter.
pub fn jitter() -> f64 {
    // Falls back to the middle of the range: jitter only spreads retries, it need not be secret.
    getrandom::u64().map_or(0.5, |v| (v >> 11) as f64 / (1u64 << 53) as f64)
}

/// Milliseconds since the Unix epoch (the browser's clock in wasm, where `std` has none).
pub fn now_ms() -> i64 {
    #[cfg(not(target_family = "wasm"))]
    {
        use std::time::{SystemTime, UNIX_EPOCH};
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
    #[cfg(target_family = "wasm")]
    {
        js_sys::Date::now() as i64
    }
}

//! Who is calling: the API key (`Authorization: Bearer …` or `X-API-Key`), checked before
//! any handler runs, then the key's rate limit (a token bucket per key, `governor`). The
//! handlers get the [`Caller`] and scope every read and write to its tenant.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::error::ApiError;
use super::Service;
use crate::engine::{Caller, KeyRefusal};

/// Routes anyone may call, key or not: probes and the API document.
pub(super) const OPEN_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/openapi.json"];

/// One token bucket per key (keys are few: the operator makes them).
#[derive(Default)]
pub(super) struct Limiters {
    buckets: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
}

impl Limiters {
    /// `Err(seconds to wait)` when the key is over its rate.
    fn check(&self, key: &str, per_second: u32, burst: u32) -> Result<(), u64> {
        let bucket = {
            let mut b = match self.buckets.lock() {
                Ok(b) => b,
                Err(p) => p.into_inner(),
            };
            b.entry(key.to_string())
                .or_insert_with(|| {
                    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
                    let burst = NonZeroU32::new(burst).unwrap_or(rate);
                    Arc::new(RateLimiter::direct(
                        Quota::per_second(rate).allow_burst(burst),
                    ))
                })
                .clone()
        };
        bucket.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Retry-After is whole seconds; never 0 (that would invite a retry storm).
            (wait.as_secs_f64().ceil() as u64).max(1)
        })
    }
}

/// The key a request presents, if any.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn unauthorized(code: &'static str, message: &str) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, code, message).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"raas\""),
    );
    r
}

/// The middleware: 401 without a valid key (once any key exists), 429 over the rate;
/// otherwise the [`Caller`] goes to the handler as an extension.
pub(super) async fn authenticate(
    State(svc): State<Arc<Service>>,
    mut req: Request,
    next: Next,
) -> Response {
    if OPEN_ROUTES.contains(&req.uri().path())
        || req.method() == axum::http::Method::OPTIONS
        || (svc.settings.public_gateway && req.uri().path().starts_with("/ipfs/"))
    {
        return next.run(req).await;
    }
    let key = presented(req.headers());
    let caller = if key.is_none() && svc.settings.auth_none {
        Ok(Caller::Open)
    } else {
        match svc.node.authenticate(key).await {
            Ok(c) => c,
            Err(e) => return ApiError::from(e).into_response(),
        }
    };
    let caller = match caller {
        Ok(c) => c,
        Err(KeyRefusal::Missing) => {
            return unauthorized(
                "UNAUTHENTICATED",
                "an API key is needed: send Authorization: Bearer <key> or X-API-Key",
            )
        }
        Err(KeyRefusal::Invalid) => {
            return unauthorized("INVALID_API_KEY", "the API key is not valid or was revoked")
        }
    };
    if let Caller::Key(k) = &caller {
        let (node_rate, node_burst) = (svc.settings.rate_per_second, svc.settings.rate_burst);
        let rate = k.rate_per_second.unwrap_or(node_rate);
        // A key's own rate keeps the node's ratio of burst to rate.
        let burst = (u64::from(rate) * u64::from(node_burst) / u64::from(node_rate.max(1)))
            .clamp(1, u64::from(u32::MAX)) as u32;
        if let Err(wait) = svc.limiters.check(&k.id, rate, burst) {
            let mut r = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!("over {rate} requests per second for this key; retry in {wait} s"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// 403 unless the caller may use admin routes.
pub(super) fn admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "this route needs an admin key",
        ))
    }
}

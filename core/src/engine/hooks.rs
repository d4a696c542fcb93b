//! Hooks: where deal requests go. The outbox calls one hook per request until it
//! acknowledges; a hook sees the request's idempotency key and should drop a redelivery of a
//! key it already acted on (a node that dies between the hook's success and the
//! acknowledgement delivers again).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::chain::evm::DealStatusClient;
use crate::error::ErrorCode;
use crate::store::DealRequest;

/// A boxed future returned by hooks.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, HookError>> + Send + 'a>>;

/// A hook refused or failed a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HookError {
    /// Stable code (`HOOK_FAILED`, `HOOK_TIMEOUT`, or the code of the underlying error).
    pub code: &'static str,
    /// Why (never a secret).
    pub message: String,
    /// Whether delivering again later may succeed (false: the request is dead at once).
    pub retryable: bool,
}

impl HookError {
    /// A failure worth retrying.
    pub fn retry(message: impl Into<String>) -> Self {
        HookError {
            code: "HOOK_FAILED",
            message: message.into(),
            retryable: true,
        }
    }

    /// A refusal that retrying will not change.
    pub fn fatal(message: impl Into<String>) -> Self {
        HookError {
            code: "HOOK_REJECTED",
            message: message.into(),
            retryable: false,
        }
    }
}

impl ErrorCode for HookError {
    fn code(&self) -> &'static str {
        self.code
    }

    fn is_retryable(&self) -> bool {
        self.retryable
    }
}

/// Receives deal requests. `Ok(receipt)` acknowledges the request (the receipt is stored
/// with it); an error leaves it for another attempt with backoff.
pub trait DealRequestHook: Send + Sync {
    /// Delivers one request.
    fn deliver<'a>(&'a self, request: &'a DealRequest) -> HookFuture<'a>;
}

/// A hook from an async closure.
pub struct FnHook<F>(pub F);

impl<F, Fut> DealRequestHook for FnHook<F>
where
    F: Fn(DealRequest) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Value, HookError>> + Send + 'static,
{
    fn deliver<'a>(&'a self, request: &'a DealRequest) -> HookFuture<'a> {
        Box::pin((self.0)(request.clone()))
    }
}

/// Sends `submitRaaS(cid, copiesNeeded, 0, 0)` to the DealStatus contract and waits for the
/// receipt: the aggregator picks the request up from the contract's event.
pub struct SubmitRaasHook {
    client: DealStatusClient,
}

impl SubmitRaasHook {
    /// A hook signing with `client`'s key.
    pub fn new(client: DealStatusClient) -> Self {
        SubmitRaasHook { client }
    }
}

impl DealRequestHook for SubmitRaasHook {
    fn deliver<'a>(&'a self, r: &'a DealRequest) -> HookFuture<'a> {
        Box::pin(async move {
            let receipt = self
                .client
                .submit_raas(&r.cid, u64::from(r.copies_needed), 0, 0)
                .await
                .map_err(|e| HookError {
                    code: e.code(),
                    message: e.to_string(),
                    retryable: e.is_retryable() || e.code() != "TX_REVERTED",
                })?;
            serde_json::to_value(receipt).map_err(|e| HookError::retry(e.to_string()))
        })
    }
}

/// A Lighthouse-style pin request over HTTP.
pub struct PinHook {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    token: Option<String>,
    network: String,
}

impl std::fmt::Debug for PinHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinHook")
            .field("endpoint", &self.endpoint.as_str())
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl PinHook {
    /// A hook posting to `endpoint` (http or https) with an optional bearer `token`.
    pub fn new(
        endpoint: &str,
        token: Option<String>,
        network: Option<String>,
    ) -> Result<Self, HookError> {
        let url: reqwest::Url = endpoint
            .parse()
            .map_err(|e| HookError::fatal(format!("hook.endpoint is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HookError::fatal("hook.endpoint must be http(s)"));
        }
        Ok(PinHook {
            http: reqwest::Client::new(),
            endpoint: url,
            token,
            network: network.unwrap_or_else(|| "calibration".into()),
        })
    }
}

impl DealRequestHook for PinHook {
    fn deliver<'a>(&'a self, r: &'a DealRequest) -> HookFuture<'a> {
        Box::pin(async move {
            let body = json!({
                "cid": r.cid,
                "raas": {
                    "network": self.network,
                    "copies": r.copies_needed,
                    "reason": r.reason.as_str(),
                    "idempotencyKey": r.idempotency_key,
                },
            });
            let mut req = self
                .http
                .post(self.endpoint.clone())
                .header("Idempotency-Key", &r.idempotency_key)
                .json(&body);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            // Without the URL: reqwest puts it in errors, and it may carry a key.
            let resp = req.send().await.map_err(|e| {
                HookError::retry(format!("pin request failed: {}", e.without_url()))
            })?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let reply: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if status.is_success() {
                Ok(json!({ "status": status.as_u16(), "reply": reply }))
            } else if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                Err(HookError::retry(format!("pin service answered {status}")))
            } else {
                Err(HookError::fatal(format!("pin service refused: {status}")))
            }
        })
    }
}

/// A shared hook.
pub type SharedHook = Arc<dyn DealRequestHook>;

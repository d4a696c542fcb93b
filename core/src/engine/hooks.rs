//! Hooks: where deal requests go. The outbox calls one hook per request until it
//! acknowledges; a hook sees the request's idempotency key and should drop a redelivery of a
//! key it already acted on (a node that dies between the hook's success and the
//! acknowledgement delivers again). A hook that takes steps which must not be repeated
//! records them with a [`Checkpoint`]; the next attempt gets them back in
//! [`DealRequest::checkpoint`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::request::DealRequest;
use crate::bounded::{read_body, BodyError, DEFAULT_MAX_RECEIPT};
use crate::chain::evm::{DealStatusClient, SignedTx, TxStatus};
use crate::error::ErrorCode;
use crate::store::Store;

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

/// Records a hook's progress on the request it is delivering, under the delivery's lease.
pub struct Checkpoint {
    store: Store,
    owner: String,
    key: String,
}

impl Checkpoint {
    pub(super) fn new(store: Store, owner: String, key: String) -> Self {
        Checkpoint { store, owner, key }
    }

    /// Stores `value` with the request (replacing an earlier one); the next attempt finds it
    /// in [`DealRequest::checkpoint`]. Fails when the lease was lost: stop then.
    pub async fn save(&self, value: &Value) -> Result<(), HookError> {
        match self
            .store
            .checkpoint_request(&self.key, &self.owner, value)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(HookError::retry(
                "the delivery's lease was lost: another attempt owns the request",
            )),
            Err(e) => Err(HookError {
                code: e.code(),
                message: e.to_string(),
                retryable: true,
            }),
        }
    }
}

/// Receives deal requests. `Ok(receipt)` acknowledges the request (the receipt is stored
/// with it); a retryable error leaves it for another attempt with backoff; a refusal
/// (`HOOK_REJECTED`, [`HookError::fatal`]) makes it dead at once.
pub trait DealRequestHook: Send + Sync {
    /// Delivers one request.
    fn deliver<'a>(&'a self, request: &'a DealRequest) -> HookFuture<'a>;

    /// Delivers one request, with a way to record progress. Defaults to
    /// [`DealRequestHook::deliver`].
    fn deliver_with<'a>(
        &'a self,
        request: &'a DealRequest,
        checkpoint: &'a Checkpoint,
    ) -> HookFuture<'a> {
        let _ = checkpoint;
        self.deliver(request)
    }

    /// How long one delivery may take, if not the node's `hookTimeoutSecs`.
    fn time_limit(&self) -> Option<Duration> {
        None
    }
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
///
/// Sent once: the transaction is signed here and its hash and bytes recorded in the outbox
/// before it is broadcast. A later attempt looks the hash up first: mined, it is the
/// receipt; pending, it waits on; unknown to the node, the same bytes are sent again (the
/// chain runs a transaction once). Only when the chain refuses those bytes for good (their
/// nonce was used by another transaction while they were dropped) is a new one signed.
pub struct SubmitRaasHook {
    client: DealStatusClient,
    receipt_timeout: Duration,
    poll: Duration,
}

impl SubmitRaasHook {
    /// A hook signing with `client`'s key, waiting up to `receipt_timeout` for a receipt
    /// (Filecoin needs one or two 30 s epochs, more under load).
    pub fn new(client: DealStatusClient, receipt_timeout: Duration) -> Self {
        SubmitRaasHook {
            client,
            receipt_timeout,
            poll: Duration::from_secs(1),
        }
    }

    fn evm_error(e: crate::chain::evm::EvmError) -> HookError {
        HookError {
            code: e.code(),
            message: e.to_string(),
            retryable: e.code() != "TX_REVERTED" && e.code() != "NO_SIGNER",
        }
    }

    async fn sign_and_record(
        &self,
        r: &DealRequest,
        checkpoint: &Checkpoint,
    ) -> Result<SignedTx, HookError> {
        let tx = self
            .client
            .sign_submit_raas(&r.cid, u64::from(r.copies_needed), 0, 0)
            .await
            .map_err(Self::evm_error)?;
        let value = serde_json::to_value(&tx).map_err(|e| HookError::retry(e.to_string()))?;
        checkpoint.save(&value).await?;
        Ok(tx)
    }

    async fn wait(&self, tx: &SignedTx) -> Result<Value, HookError> {
        let started = std::time::Instant::now();
        loop {
            match self.client.tx_status(&tx.tx_hash).await {
                Ok(TxStatus::Mined(receipt)) => {
                    return serde_json::to_value(receipt)
                        .map_err(|e| HookError::retry(e.to_string()))
                }
                Ok(TxStatus::Reverted) => {
                    return Err(HookError {
                        code: "TX_REVERTED",
                        message: format!("submitRaaS transaction {} failed on chain", tx.tx_hash),
                        retryable: false,
                    })
                }
                Ok(TxStatus::Pending | TxStatus::Unknown) => {}
                // A read error is not the transaction's: keep waiting within the limit.
                Err(e) => tracing::debug!(code = e.code(), "receipt lookup failed: {e}"),
            }
            if started.elapsed() >= self.receipt_timeout {
                return Err(HookError::retry(format!(
                    "no receipt for {} after {} s; the next attempt looks it up first",
                    tx.tx_hash,
                    self.receipt_timeout.as_secs()
                )));
            }
            crate::rt::sleep(self.poll).await;
        }
    }
}

impl DealRequestHook for SubmitRaasHook {
    fn deliver<'a>(&'a self, _r: &'a DealRequest) -> HookFuture<'a> {
        Box::pin(async move {
            Err(HookError::retry(
                "the submitRaaS hook needs a checkpoint (delivered by the node)",
            ))
        })
    }

    fn deliver_with<'a>(
        &'a self,
        r: &'a DealRequest,
        checkpoint: &'a Checkpoint,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            let earlier: Option<SignedTx> = r
                .checkpoint
                .as_ref()
                .and_then(|v| serde_json::from_value(v.clone()).ok());
            let tx = match earlier {
                Some(tx) => match self
                    .client
                    .tx_status(&tx.tx_hash)
                    .await
                    .map_err(Self::evm_error)?
                {
                    TxStatus::Mined(receipt) => {
                        return serde_json::to_value(receipt)
                            .map_err(|e| HookError::retry(e.to_string()))
                    }
                    TxStatus::Reverted => {
                        return Err(HookError {
                            code: "TX_REVERTED",
                            message: format!(
                                "submitRaaS transaction {} failed on chain",
                                tx.tx_hash
                            ),
                            retryable: false,
                        })
                    }
                    TxStatus::Pending => tx,
                    TxStatus::Unknown => match self.client.broadcast(&tx).await {
                        Ok(()) => tx,
                        // Refused for good (its nonce is spent): only now a new transaction.
                        Err(e) if e.code() == "RPC_ERROR" && e.to_string().contains("nonce") => {
                            let tx = self.sign_and_record(r, checkpoint).await?;
                            self.client.broadcast(&tx).await.map_err(Self::evm_error)?;
                            tx
                        }
                        Err(e) => return Err(Self::evm_error(e)),
                    },
                },
                None => {
                    let tx = self.sign_and_record(r, checkpoint).await?;
                    self.client.broadcast(&tx).await.map_err(Self::evm_error)?;
                    tx
                }
            };
            self.wait(&tx).await
        })
    }

    fn time_limit(&self) -> Option<Duration> {
        Some(self.receipt_timeout + Duration::from_secs(120))
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
            .field(
                "endpoint",
                &crate::redact::redact_url(self.endpoint.as_str()),
            )
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
            // The reply becomes the receipt: read it bounded, and keep only a note of an
            // oversized one.
            let reply = match read_body(resp, DEFAULT_MAX_RECEIPT).await {
                Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&bytes).into_owned())
                }),
                Err(BodyError::TooLarge(e)) => too_large_note(e.limit),
                Err(BodyError::Transport(_)) => Value::Null,
            };
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

/// What stands in for a reply or receipt over its ceiling: nothing of it is stored.
fn too_large_note(limit: u64) -> Value {
    json!({ "error": { "code": "REPLY_TOO_LARGE", "limit": limit } })
}

/// A hook's receipt as it is stored: itself, or a note when its JSON is over
/// [`DEFAULT_MAX_RECEIPT`] bytes (a host's hook may return anything).
pub(crate) fn bounded_receipt(receipt: Value) -> Value {
    let size = serde_json::to_vec(&receipt).map_or(u64::MAX, |v| v.len() as u64);
    if size > DEFAULT_MAX_RECEIPT {
        too_large_note(DEFAULT_MAX_RECEIPT)
    } else {
        receipt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_over_the_ceiling_is_replaced_by_a_note() {
        let small = json!({"ok": true, "id": "x".repeat(1000)});
        assert_eq!(bounded_receipt(small.clone()), small);
        let big = json!({"blob": "x".repeat(DEFAULT_MAX_RECEIPT as usize)});
        let kept = bounded_receipt(big);
        assert_eq!(kept["error"]["code"], "REPLY_TOO_LARGE");
        assert_eq!(kept["error"]["limit"], DEFAULT_MAX_RECEIPT);
    }
}

//! Delivery of the outbox: pending deal requests are leased, handed to the hook, and
//! acknowledged (or retried with backoff, then parked as dead).

use serde::Serialize;

use super::check::backoff;
use super::hooks::HookError;
use super::{now_ms, EngineError, Inner};

/// What one delivery pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    /// Requests the hook acknowledged.
    pub delivered: u64,
    /// Attempts that failed (retried later).
    pub failed: u64,
    /// Requests parked as dead.
    pub dead: u64,
    /// Acknowledgements refused because the lease was lost meanwhile.
    pub lease_lost: u64,
}

impl Inner {
    /// Delivers what is due now, a few at a time, until nothing is due. Without a hook,
    /// requests wait in the outbox.
    pub(super) async fn deliver_due(&self) -> Result<DeliveryReport, EngineError> {
        let mut report = DeliveryReport::default();
        let Some(hook) = self.hook() else {
            return Ok(report);
        };
        let s = &self.settings;
        let lease = (s.hook_timeout.as_millis() as i64).saturating_mul(2) + 10_000;
        loop {
            let batch = self
                .store
                .claim_requests(&s.node_id, now_ms(), lease, 16)
                .await?;
            if batch.is_empty() {
                return Ok(report);
            }
            for r in batch {
                let outcome = crate::rt::timeout(s.hook_timeout, hook.deliver(&r.request))
                    .await
                    .unwrap_or_else(|| {
                        Err(HookError {
                            code: "HOOK_TIMEOUT",
                            message: format!("no answer in {} s", s.hook_timeout.as_secs()),
                            retryable: true,
                        })
                    });
                let key = &r.request.idempotency_key;
                match outcome {
                    Ok(receipt) => {
                        if self
                            .store
                            .ack_request(key, &s.node_id, &receipt, now_ms())
                            .await?
                        {
                            report.delivered += 1;
                        } else {
                            report.lease_lost += 1;
                        }
                    }
                    Err(e) => {
                        let dead = !e.retryable || r.attempts >= i64::from(s.max_delivery_attempts);
                        let next = now_ms() + backoff(r.attempts as u32, s).as_millis() as i64;
                        tracing::warn!(key = %key, attempts = r.attempts, dead, "delivery failed: {e}");
                        self.store
                            .fail_request(key, &s.node_id, &e.to_string(), next, dead)
                            .await?;
                        report.failed += 1;
                        report.dead += u64::from(dead);
                    }
                }
            }
        }
    }
}

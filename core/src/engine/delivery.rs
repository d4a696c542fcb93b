//! Delivery of the outbox. Each pending request is leased on its own, by this process (node
//! id + a token unique to the process), and the lease is extended while its hook runs; a
//! node that lost the lease never acknowledges. A delivery that times out is recorded as
//! failed and retried later, but the attempt still running is kept ("straggler"): its key is
//! not delivered again by this process while it runs, and if it succeeds late its receipt
//! acknowledges the request.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;

use futures::FutureExt;
use serde::Serialize;
use serde_json::Value;

use super::backoff::backoff;
use super::clock::{self, ms};
use super::hooks::{Checkpoint, HookError, SharedHook};
use super::request::DealRequest;
use super::{EngineError, Inner};
use crate::error::ErrorCode;
use crate::store::OutboxRecord;

/// What one delivery pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DeliveryReport {
    /// Requests the hook acknowledged.
    pub delivered: u64,
    /// Attempts that failed (retried later).
    pub failed: u64,
    /// Requests parked as dead (refused, or too many attempts).
    pub dead: u64,
    /// Acknowledgements refused because the lease was lost meanwhile.
    pub lease_lost: u64,
    /// Timed-out attempts that finished later and were acknowledged then.
    pub late: u64,
}

impl DeliveryReport {
    fn add(&mut self, o: &DeliveryReport) {
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.dead += o.dead;
        self.lease_lost += o.lease_lost;
        self.late += o.late;
    }
}

type HookRun = Pin<Box<dyn Future<Output = Result<Value, HookError>> + Send>>;

/// A timed-out attempt still running.
pub(super) struct Straggler {
    record: OutboxRecord,
    run: HookRun,
}

/// The stragglers of one process.
#[derive(Default)]
pub(super) struct Stragglers(Mutex<Vec<Straggler>>);

impl Stragglers {
    fn with<T>(&self, f: impl FnOnce(&mut Vec<Straggler>) -> T) -> T {
        match self.0.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    pub(super) fn keys(&self) -> Vec<String> {
        self.with(|v| v.iter().map(|s| s.record.idempotency_key.clone()).collect())
    }
}

impl Inner {
    /// Delivers what is due now, `deliveryConcurrency` at a time, until nothing is due.
    /// Without a hook, requests wait in the outbox.
    pub(super) async fn deliver_due(self: &Arc<Self>) -> Result<DeliveryReport, EngineError> {
        let mut report = DeliveryReport::default();
        let Some(hook) = self.hook() else {
            return Ok(report);
        };
        self.settle_stragglers(&mut report).await?;
        // Each delivery is a task of its own: a delivery waiting for a store connection is
        // never starved by the claim that waits for the same connection.
        let mut running = JoinSet::new();
        let mut exhausted = false;
        loop {
            while !exhausted && running.len() < self.settings.delivery_concurrency {
                let now = self.clock.now_ms();
                let lease = ms(self.settings.lease);
                let busy = self.stragglers.keys();
                match self
                    .store
                    .claim_request(&self.owner, now, lease, &busy)
                    .await?
                {
                    Some(r) => {
                        let (me, hook) = (self.clone(), hook.clone());
                        running.spawn(async move {
                            let t = std::time::Instant::now();
                            let out = me.deliver_one(hook, r).await;
                            if let Ok(rep) = &out {
                                me.metrics.delivery(rep, t.elapsed());
                            }
                            out
                        });
                    }
                    None => exhausted = true,
                }
            }
            match running.join_next().await {
                Some(Ok(r)) => report.add(&r?),
                Some(Err(join)) => {
                    return Err(EngineError::Internal {
                        reason: format!("delivery task ended abnormally: {join}"),
                    })
                }
                None => return Ok(report),
            }
        }
    }

    /// One attempt at one leased request.
    async fn deliver_one(
        &self,
        hook: SharedHook,
        r: OutboxRecord,
    ) -> Result<DeliveryReport, EngineError> {
        let s = &self.settings;
        let mut report = DeliveryReport::default();
        let key = r.idempotency_key.clone();
        let request = DealRequest::from(&r);
        let checkpoint = Checkpoint::new(self.store.clone(), self.owner.clone(), key.clone());
        let limit = hook.time_limit().unwrap_or(s.hook_timeout);
        let h = hook.clone();
        let mut run: HookRun = Box::pin(async move { h.deliver_with(&request, &checkpoint).await });
        let mut deadline = self.clock.sleep(limit);
        let attempt = async {
            tokio::select! {
                biased;
                out = &mut run => Some(out),
                _ = &mut deadline => None,
            }
        };
        let outcome = clock::while_renewing(&*self.clock, s.lease / 3, attempt, || async {
            let until = self.clock.now_ms().saturating_add(ms(s.lease));
            if !self
                .store
                .extend_request_lease(&key, &self.owner, until)
                .await?
            {
                tracing::warn!(key = %key, "delivery lease lost while the hook runs");
            }
            Ok::<(), crate::store::StoreError>(())
        })
        .await;
        let outcome = match outcome {
            Some(out) => out,
            None => {
                // The attempt goes on; this process does not start another one meanwhile.
                self.stragglers.with(|v| {
                    v.push(Straggler {
                        record: r.clone(),
                        run,
                    })
                });
                Err(HookError {
                    code: "HOOK_TIMEOUT",
                    message: format!("no answer in {} s", limit.as_secs()),
                    retryable: true,
                })
            }
        };
        match outcome {
            Ok(receipt) => {
                let receipt = super::hooks::bounded_receipt(receipt);
                let now = self.clock.now_ms();
                if self
                    .store
                    .ack_request(
                        &key,
                        &self.owner,
                        &s.node_id,
                        &receipt,
                        self.fulfil_by(&r, now),
                        now,
                    )
                    .await?
                {
                    tracing::info!(key = %key, job = %r.job_id, attempt = r.attempts, copies = r.copies_needed, "delivered");
                    report.delivered += 1;
                } else {
                    tracing::warn!(key = %key, "delivered, but the lease was lost: not acknowledged");
                    report.lease_lost += 1;
                }
            }
            Err(e) => {
                let dead = !e.retryable || r.attempts >= i64::from(s.max_delivery_attempts);
                let delay = backoff(
                    u32::try_from(r.attempts).unwrap_or(u32::MAX),
                    s.backoff_base,
                    s.backoff_max,
                    self.clock.jitter(),
                );
                let now = self.clock.now_ms();
                let next = now.saturating_add(ms(delay));
                tracing::warn!(key = %key, attempts = r.attempts, dead, code = e.code(), "delivery failed: {}", e.message);
                if self
                    .store
                    .fail_request(&key, &self.owner, &e.to_string(), next, dead, now)
                    .await?
                {
                    report.failed += 1;
                    report.dead += u64::from(dead);
                } else {
                    report.lease_lost += 1;
                }
            }
        }
        Ok(report)
    }

    /// The epoch by which a request delivered now must see its copies.
    fn fulfil_by(&self, r: &OutboxRecord, now_ms: i64) -> Option<i64> {
        let epoch_ms = ms(self.settings.epoch).max(1);
        let created = r.created_epoch?;
        let elapsed = (now_ms - r.created_ms).max(0) / epoch_ms;
        Some(
            created
                .saturating_add(elapsed)
                .saturating_add(self.settings.fulfilment_window_epochs),
        )
    }

    /// Acknowledges timed-out attempts that have succeeded since; drops those that failed.
    async fn settle_stragglers(&self, report: &mut DeliveryReport) -> Result<(), EngineError> {
        let done: Vec<(OutboxRecord, Result<Value, HookError>)> = self.stragglers.with(|v| {
            let mut done = Vec::new();
            let mut i = 0;
            while i < v.len() {
                match (&mut v[i].run).now_or_never() {
                    Some(out) => {
                        let s = v.swap_remove(i);
                        done.push((s.record, out));
                    }
                    None => i += 1,
                }
            }
            done
        });
        for (r, out) in done {
            if let Ok(receipt) = out {
                let receipt = super::hooks::bounded_receipt(receipt);
                let now = self.clock.now_ms();
                if self
                    .store
                    .ack_late(
                        &r.idempotency_key,
                        &self.owner,
                        &self.settings.node_id,
                        &receipt,
                        self.fulfil_by(&r, now),
                        now,
                    )
                    .await?
                {
                    report.late += 1;
                    report.delivered += 1;
                }
            }
        }
        Ok(())
    }
}

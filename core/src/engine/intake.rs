//! On-chain intake: jobs requested on chain with `submitRaaS(cid, replicationTarget,
//! repairThreshold, renewThreshold)` become jobs of the configured tenant. The scan runs
//! behind a confirmation depth over bounded block ranges from a cursor kept in the store,
//! so events emitted while the node was down are taken after it restarts. Anyone can
//! call `submitRaaS`: an event that does not decode, is out of range, or is over the cap
//! is recorded and skipped, and never holds the cursor back. The node's own requests
//! (its `submitRaaS` hook's transactions) are recognised by hash and not taken.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use super::{EngineError, Inner, RaasNode};
use crate::chain::evm::{AggregatorRequest, EventCursor};
use crate::error::ErrorCode;
use crate::jobs::{JobSpec, JobSpecInput};
use crate::store::{SkippedEvent, StoreError};

/// The cursor's name in the store.
pub const INTAKE_CURSOR: &str = "raas.intake.next_block";

/// One step of on-chain intake: what it did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct IntakeReport {
    /// First block scanned.
    pub from_block: u64,
    /// First block of the next scan.
    pub next_block: u64,
    /// Jobs registered from events.
    pub registered: u64,
    /// Events whose job existed already (seen again after a restart).
    pub existing: u64,
    /// Events of this node's own requests.
    pub own: u64,
    /// Events recorded and skipped.
    pub skipped: u64,
    /// Plain `submit` requests (no RaaS parameters: not jobs).
    pub plain: u64,
    /// Whether the scan reached the confirmed head.
    pub caught_up: bool,
    /// The cursor before it was moved back: the confirmed head went below blocks already
    /// scanned (a reorg deeper than the confirmations), which are read again.
    pub rewound_from: Option<u64>,
}

fn as_epochs(v: u64, field: &str) -> Result<Option<i64>, String> {
    match v {
        0 => Ok(None),
        n => i64::try_from(n)
            .map(Some)
            .map_err(|_| format!("INVALID_JOB: {field} {n} is out of range")),
    }
}

impl Inner {
    /// The job an event asks for, or why it is skipped.
    fn job_of(&self, r: &AggregatorRequest) -> Result<Option<JobSpec>, String> {
        let Some(p) = r.raas else {
            return Ok(None);
        };
        let cid = r
            .cid
            .clone()
            .ok_or_else(|| "INVALID_CID: the event's key is not a CID".to_string())?;
        let replication = match p.replication_target {
            0 => None,
            n => Some(
                u32::try_from(n)
                    .map_err(|_| format!("INVALID_JOB: replicationTarget {n} is out of range"))?,
            ),
        };
        let mut repair = as_epochs(p.repair_threshold, "repairThreshold")?;
        if repair.is_some() && !self.source.has_lotus() {
            // Repair reads Lotus: without it the rest of the job is still kept.
            tracing::warn!(tx = %r.tx_hash, "intake: repair asked on chain, but no Lotus is configured; registered without repair");
            repair = None;
        }
        JobSpec::validate(
            JobSpecInput {
                cid,
                replication_target: replication,
                renew_threshold_epochs: as_epochs(p.renew_threshold, "renewThreshold")?,
                repair_threshold_epochs: repair,
                end_epoch: None,
            },
            &self.settings.limits,
        )
        .map(Some)
        .map_err(|e| format!("{}: {e}", e.code()))
    }
}

impl RaasNode {
    /// Scans the next block range for `submitRaaS` events and registers their jobs (see
    /// the module). Call again while `caughtUp` is false; the started node does this on
    /// its own when `intake` is configured.
    pub async fn intake_once(&self) -> Result<IntakeReport, EngineError> {
        let inner = &self.inner;
        let not_on = |reason: &str| EngineError::InvalidArgument {
            field: "intake",
            reason: reason.into(),
        };
        let s = inner
            .settings
            .intake
            .clone()
            .ok_or_else(|| not_on("on-chain intake is not configured"))?;
        let client = inner
            .intake_client
            .get()
            .ok_or_else(|| not_on("this node has no DealStatus client to scan with"))?;
        let next = match inner.store.cursor(INTAKE_CURSOR).await? {
            Some(n) => u64::try_from(n).unwrap_or(0),
            None => {
                let start = match s.from_block {
                    Some(b) => b,
                    None => client.block_number().await?.saturating_sub(s.confirmations) + 1,
                };
                inner
                    .store
                    .set_cursor(
                        INTAKE_CURSOR,
                        i64::try_from(start).unwrap_or(i64::MAX),
                        inner.clock.now_ms(),
                    )
                    .await?;
                start
            }
        };
        let scan = client
            .scan_requests(
                EventCursor { next_block: next },
                s.confirmations,
                s.max_range,
            )
            .await?;
        if let Some(from) = scan.rewound_from {
            tracing::warn!(
                from,
                to = scan.cursor.next_block,
                "intake: the chain's confirmed head is below blocks already scanned; reading them again"
            );
        }
        let mut report = IntakeReport {
            from_block: next,
            next_block: scan.cursor.next_block,
            caught_up: scan.caught_up,
            rewound_from: scan.rewound_from,
            ..Default::default()
        };
        let now = inner.clock.now_ms();
        for l in &scan.skipped {
            inner
                .store
                .record_skipped(&SkippedEvent {
                    tx_hash: l.tx_hash.clone(),
                    log_index: l.log_index,
                    block: l.block_number,
                    reason: format!("MALFORMED_EVENT: {}", l.reason),
                    data: None,
                    created_ms: now,
                })
                .await?;
            report.skipped += 1;
        }
        for r in &scan.requests {
            if r.raas.is_none() {
                report.plain += 1;
                continue;
            }
            if inner.store.is_own_transaction(&r.tx_hash).await? {
                report.own += 1;
                continue;
            }
            let outcome = match inner.job_of(r) {
                Ok(Some(spec)) => {
                    match self
                        .register_specs_for(Some(&s.tenant), Some(s.max_jobs), vec![spec])
                        .await
                    {
                        Ok(regs) => {
                            if regs.iter().any(|g| g.created) {
                                report.registered += 1;
                            } else {
                                report.existing += 1;
                            }
                            Ok(())
                        }
                        Err(EngineError::Store(e @ StoreError::QuotaExceeded { .. })) => {
                            Err(format!("{}: {e}", e.code()))
                        }
                        Err(EngineError::Job(e)) => Err(format!("{}: {e}", e.code())),
                        // The store is down: the cursor stays, the range is scanned again.
                        Err(e) => return Err(e),
                    }
                }
                Ok(None) => Ok(()),
                Err(reason) => Err(reason),
            };
            if let Err(reason) = outcome {
                tracing::warn!(tx = %r.tx_hash, "intake: event skipped: {reason}");
                let mut key = r.cid_key.clone();
                key.truncate(200);
                inner
                    .store
                    .record_skipped(&SkippedEvent {
                        tx_hash: r.tx_hash.clone(),
                        log_index: r.log_index,
                        block: r.block_number,
                        reason,
                        data: Some(serde_json::json!({
                            "requestId": r.request_id, "cidKey": key, "raas": r.raas,
                        })),
                        created_ms: now,
                    })
                    .await?;
                report.skipped += 1;
            }
        }
        inner
            .store
            .set_cursor(
                INTAKE_CURSOR,
                i64::try_from(scan.cursor.next_block).unwrap_or(i64::MAX),
                inner.clock.now_ms(),
            )
            .await?;
        if report.registered + report.skipped > 0 {
            tracing::info!(
                from = report.from_block,
                next = report.next_block,
                registered = report.registered,
                skipped = report.skipped,
                own = report.own,
                "intake"
            );
        }
        Ok(report)
    }

    /// Events intake skipped, newest first.
    pub async fn skipped_events(&self, limit: u32) -> Result<Vec<SkippedEvent>, EngineError> {
        Ok(self.inner.store.skipped_events(limit).await?)
    }
}

/// Scans until caught up, then every `intake.pollSecs`, until stopped.
pub(super) async fn intake_loop(node: RaasNode, mut stop: watch::Receiver<bool>) {
    let Some(poll) = node.inner.settings.intake.as_ref().map(|s| s.poll) else {
        return;
    };
    while !*stop.borrow() {
        match node.intake_once().await {
            Ok(r) if !r.caught_up => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(code = e.code(), "intake failed: {e}"),
        }
        super::sleep_or_stop(poll, &mut stop).await;
    }
}

/// A node handle for the loop (shares the node's state).
pub(super) fn handle(inner: &Arc<Inner>) -> RaasNode {
    RaasNode {
        inner: inner.clone(),
        running: std::sync::Mutex::new(None),
    }
}

//! What a hook is handed: one deal request, with its place in the job's lineage.

use serde::{Deserialize, Serialize};

use crate::jobs::ShortfallReason;
use crate::store::OutboxRecord;

/// What the aggregator's hook is asked: make `copiesNeeded` new deals for `cid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DealRequest {
    /// The job short of copies.
    pub job_id: String,
    /// The data.
    pub cid: String,
    /// Why.
    pub reason: ShortfallReason,
    /// New deals wanted.
    pub copies_needed: u32,
    /// Deals being replaced (renewal, repair).
    pub replacing: Vec<u64>,
    /// One request per key: drop a redelivery of a key you already acted on.
    pub idempotency_key: String,
    /// The job's n-th request.
    pub seq: i64,
    /// The unfulfilled request this one follows (its copies never appeared in time).
    pub follows: Option<String>,
    /// Delivery attempt, from 1.
    pub attempt: i64,
    /// Progress a built-in hook recorded on an earlier attempt.
    #[cfg_attr(feature = "ts", ts(type = "unknown"))]
    pub checkpoint: Option<serde_json::Value>,
}

impl From<&OutboxRecord> for DealRequest {
    fn from(r: &OutboxRecord) -> Self {
        DealRequest {
            job_id: r.job_id.clone(),
            cid: r.cid.clone(),
            reason: r.reason,
            copies_needed: r.copies_needed,
            replacing: r.replacing.clone(),
            idempotency_key: r.idempotency_key.clone(),
            seq: r.seq,
            follows: r.follows.clone(),
            attempt: r.attempts,
            checkpoint: r.checkpoint.clone(),
        }
    }
}

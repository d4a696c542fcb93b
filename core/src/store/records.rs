//! What the store holds, as the host sees it (camelCase JSON through the bindings).

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::jobs::{JobSpec, ShortfallReason};

/// Where a job is in its life (`state` in JS): active, cancelled, retired or dead. Not to be
/// confused with its `status` (a [`CheckStatus`]), the outcome of its last check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "JobState"))]
pub enum JobLifecycle {
    /// Checked when due.
    Active,
    /// Cancelled by the host: never checked again (registering it again revives it).
    Cancelled,
    /// Past its end epoch.
    Retired,
    /// Failed too many checks in a row: parked for the operator (registering it again
    /// revives it).
    Dead,
}

impl JobLifecycle {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            JobLifecycle::Active => "active",
            JobLifecycle::Cancelled => "cancelled",
            JobLifecycle::Retired => "retired",
            JobLifecycle::Dead => "dead",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => JobLifecycle::Active,
            "cancelled" => JobLifecycle::Cancelled,
            "retired" => JobLifecycle::Retired,
            "dead" => JobLifecycle::Dead,
            _ => return None,
        })
    }
}

/// The outcome of a job's last check, in one word (`status` in JS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "JobStatus"))]
pub enum CheckStatus {
    /// Enough healthy copies.
    Satisfied,
    /// Copies are missing: a deal request exists for the shortfall.
    Short,
    /// Past its end epoch.
    Retired,
    /// The check failed (chain unreachable, bad reply): retried with backoff.
    Error,
}

impl CheckStatus {
    /// Its name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Satisfied => "satisfied",
            CheckStatus::Short => "short",
            CheckStatus::Retired => "retired",
            CheckStatus::Error => "error",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "satisfied" => CheckStatus::Satisfied,
            "short" => CheckStatus::Short,
            "retired" => CheckStatus::Retired,
            "error" => CheckStatus::Error,
            _ => return None,
        })
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "Job"))]
pub struct JobRecord {
    /// Stable id (`job_<hex>`), derived from the normalised spec.
    pub job_id: String,
    /// What was asked, normalised.
    #[cfg_attr(feature = "ts", ts(inline))]
    pub spec: JobSpec,
    /// Where it is in its life.
    pub state: JobLifecycle,
    /// Registration time (ms since the Unix epoch).
    pub created_ms: i64,
    /// Last change.
    pub updated_ms: i64,
    /// When it is next checked.
    pub next_due_ms: i64,
    /// Chain epoch at which a deal of it next needs attention (priority among due jobs).
    pub due_epoch: Option<i64>,
    /// Checks that failed in a row for a reason of this job's own (outages do not count).
    pub failures: i64,
    /// The last failure, if the last check failed.
    pub last_error: Option<String>,
    /// Checks made so far.
    pub checks: i64,
    /// Time of the last check.
    pub last_checked_ms: Option<i64>,
    /// Outcome of the last check.
    pub status: Option<CheckStatus>,
    /// Copies kept: `replicationTarget`, or for a job without one the copies it had when it
    /// was first checked (at least 1). Never grows from history.
    pub target: Option<u32>,
    /// Deal requests made for this job so far (the sequence number of the last one).
    pub requests: i64,
    /// The last verdict (a `JobVerdict`).
    #[cfg_attr(feature = "ts", ts(type = "JobVerdict | null"))]
    pub verdict: Option<serde_json::Value>,
    /// What earlier checks learnt about the job's deals.
    #[serde(skip)]
    pub memory: JobMemory,
    /// Lease holder (node id and process token) while a node checks it.
    #[serde(skip)]
    pub lease_owner: Option<String>,
}

/// What checks remember between them about a job's deals: end epochs seen while the deal
/// was on the market (after nv22 a settled deal vanishes, and only its end tells an expiry
/// from a termination) and when a sector was first seen faulty (when the chain cannot say).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMemory {
    /// Deal id -> end epoch.
    #[serde(default)]
    pub deal_ends: BTreeMap<u64, i64>,
    /// Deal id -> epoch its sector was first seen faulty.
    #[serde(default)]
    pub faulty_since: BTreeMap<u64, i64>,
    /// The last request that closed unfulfilled, which the next request follows.
    #[serde(default)]
    pub last_unfulfilled: Option<String>,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
pub struct JobFilter {
    /// Only jobs in this state.
    #[serde(default)]
    pub state: Option<JobLifecycle>,
    /// Only jobs whose last check had this outcome.
    #[serde(default)]
    pub status: Option<CheckStatus>,
    /// Only jobs on this CID (any form; normalised before matching).
    #[serde(default)]
    pub cid: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Jobs after this id (the last id of the previous page).
    #[serde(default)]
    pub after: Option<String>,
    /// Only this tenant's jobs.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// One entry of a job's check history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CheckRecord {
    /// The job.
    pub job_id: String,
    /// Its n-th check (1-based).
    pub seq: i64,
    /// The node that checked.
    pub node_id: String,
    /// When.
    pub checked_ms: i64,
    /// Chain head of the check, when it got that far.
    pub head: Option<i64>,
    /// Outcome.
    pub status: CheckStatus,
    /// The verdict (a `JobVerdict`), or the error with its code.
    #[cfg_attr(
        feature = "ts",
        ts(type = "JobVerdict | { error: string, code: string } | null")
    )]
    pub detail: Option<serde_json::Value>,
}

/// Where a deal request stands.
///
/// `pending` (waiting for delivery) -> `delivered` (the hook acknowledged it; awaiting
/// fulfilment) -> `fulfilled` (the copies it asked for appeared on the CID) or `unfulfilled`
/// (the fulfilment window passed first; the job asks again with a request that follows it).
/// `dead`: the hook refused it, or delivery failed too often (it still holds its copies, so
/// the job does not ask again until an operator retries it or cancels the job).
/// `cancelled`: the job was cancelled, or the shortfall healed before delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum RequestState {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// The hook acknowledged it: awaiting fulfilment.
    Delivered,
    /// Its copies appeared.
    Fulfilled,
    /// The fulfilment window passed before its copies appeared.
    Unfulfilled,
    /// Refused by the hook, or delivery failed too often: parked for the operator.
    Dead,
    /// Its job was cancelled, or the shortfall healed before delivery.
    Cancelled,
}

impl RequestState {
    /// Its name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Delivered => "delivered",
            RequestState::Fulfilled => "fulfilled",
            RequestState::Unfulfilled => "unfulfilled",
            RequestState::Dead => "dead",
            RequestState::Cancelled => "cancelled",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => RequestState::Pending,
            "delivered" => RequestState::Delivered,
            "fulfilled" => RequestState::Fulfilled,
            "unfulfilled" => RequestState::Unfulfilled,
            "dead" => RequestState::Dead,
            "cancelled" => RequestState::Cancelled,
            _ => return None,
        })
    }

    /// Whether the request still holds copies of its job's shortfall.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RequestState::Pending | RequestState::Delivered | RequestState::Dead
        )
    }
}

/// A deal request to write with the check that found the shortfall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// Its idempotency key (unique; derived from the job and the request's sequence number).
    pub idempotency_key: String,
    /// The job.
    pub job_id: String,
    /// The job's n-th request.
    pub seq: i64,
    /// The data.
    pub cid: String,
    /// Why.
    pub reason: ShortfallReason,
    /// New deals asked for.
    pub copies_needed: u32,
    /// Deals being replaced.
    pub replacing: Vec<u64>,
    /// Every deal of the CID when it was made: a deal not among them fulfils it.
    pub known_deals: Vec<u64>,
    /// The unfulfilled request it follows.
    pub follows: Option<String>,
    /// Head epoch of the check that made it.
    pub created_epoch: i64,
}

/// A change a check makes to one of its job's open requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUpdate {
    /// The request.
    pub idempotency_key: String,
    /// Deals now counted as its fulfilment (all of them, not only the new ones).
    pub fulfilled_by: Vec<u64>,
    /// A new state (`fulfilled`, `unfulfilled`, `cancelled` when the shortfall healed).
    pub state: Option<RequestState>,
    /// Why, for the record (for example "superseded: the shortfall healed").
    pub note: Option<String>,
}

/// A deal request in the outbox, with its lineage and outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "DealRequestRecord"))]
pub struct OutboxRecord {
    /// Its idempotency key: one request per key, and hooks drop a redelivered key.
    pub idempotency_key: String,
    /// The job short of copies.
    pub job_id: String,
    /// The job's n-th request.
    pub seq: i64,
    /// The data.
    pub cid: String,
    /// Why.
    pub reason: ShortfallReason,
    /// New deals asked for.
    pub copies_needed: u32,
    /// Deals being replaced (renewal, repair).
    pub replacing: Vec<u64>,
    /// The unfulfilled request this one follows.
    pub follows: Option<String>,
    /// Where it stands.
    pub state: RequestState,
    /// Written at.
    pub created_ms: i64,
    /// Head epoch of the check that made it.
    pub created_epoch: Option<i64>,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Next attempt, while pending.
    pub next_attempt_ms: i64,
    /// Last delivery error, or why it closed.
    pub last_error: Option<String>,
    /// When the hook acknowledged it.
    pub delivered_ms: Option<i64>,
    /// The node that delivered it.
    pub delivered_by: Option<String>,
    /// What the hook resolved with (for example the on-chain request id).
    #[cfg_attr(feature = "ts", ts(type = "unknown"))]
    pub receipt: Option<serde_json::Value>,
    /// Deals counted as its fulfilment.
    pub fulfilled_by: Vec<u64>,
    /// Epoch by which its copies must appear (set on delivery).
    pub fulfil_by_epoch: Option<i64>,
    /// When it was fulfilled, found unfulfilled, or cancelled.
    pub closed_ms: Option<i64>,
    /// Progress a hook recorded during delivery (the submitRaaS hook's transaction hash).
    #[cfg_attr(feature = "ts", ts(type = "unknown"))]
    pub checkpoint: Option<serde_json::Value>,
    /// Every deal of the CID when it was made.
    #[serde(skip)]
    pub known_deals: Vec<u64>,
    /// Lease holder while being delivered.
    #[serde(skip)]
    pub lease_owner: Option<String>,
    /// Lease end while being delivered.
    #[serde(skip)]
    pub lease_until_ms: Option<i64>,
}

/// Counts for operators.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct StoreStats {
    /// Active jobs.
    pub active: i64,
    /// Cancelled jobs.
    pub cancelled: i64,
    /// Retired jobs.
    pub retired: i64,
    /// Dead jobs (need the operator).
    pub dead: i64,
    /// Deal requests waiting for delivery.
    pub requests_pending: i64,
    /// Deal requests delivered and awaiting fulfilment.
    pub requests_delivered: i64,
    /// Deal requests whose copies appeared.
    pub requests_fulfilled: i64,
    /// Deal requests whose fulfilment window passed.
    pub requests_unfulfilled: i64,
    /// Deal requests refused or failed for good.
    pub requests_dead: i64,
    /// Deal requests withdrawn.
    pub requests_cancelled: i64,
}

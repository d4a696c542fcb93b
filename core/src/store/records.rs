//! What the store holds, as the host sees it (camelCase JSON through the bindings).

use serde::{Deserialize, Serialize};

use crate::jobs::{JobSpec, ShortfallReason};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobState {
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

impl JobState {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            JobState::Active => "active",
            JobState::Cancelled => "cancelled",
            JobState::Retired => "retired",
            JobState::Dead => "dead",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => JobState::Active,
            "cancelled" => JobState::Cancelled,
            "retired" => JobState::Retired,
            "dead" => JobState::Dead,
            _ => return None,
        })
    }
}

/// The outcome of the last check, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobStatus {
    /// Enough healthy copies.
    Satisfied,
    /// Copies are missing: a deal request exists for the shortfall.
    Short,
    /// Past its end epoch.
    Retired,
    /// The check failed (chain unreachable, bad reply): retried with backoff.
    Error,
}

impl JobStatus {
    /// Its name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Satisfied => "satisfied",
            JobStatus::Short => "short",
            JobStatus::Retired => "retired",
            JobStatus::Error => "error",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "satisfied" => JobStatus::Satisfied,
            "short" => JobStatus::Short,
            "retired" => JobStatus::Retired,
            "error" => JobStatus::Error,
            _ => return None,
        })
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    /// Stable id (`job_<hex>`), derived from the normalised spec.
    pub job_id: String,
    /// What was asked.
    pub spec: JobSpec,
    /// Where it stands.
    pub state: JobState,
    /// Registration time (ms since the Unix epoch).
    pub created_ms: i64,
    /// Last change.
    pub updated_ms: i64,
    /// When it is next checked.
    pub next_due_ms: i64,
    /// Chain epoch at which a deal of it next needs attention (priority among due jobs).
    pub due_epoch: Option<i64>,
    /// Checks that failed in a row.
    pub failures: i64,
    /// The last failure, if the last check failed.
    pub last_error: Option<String>,
    /// Checks made so far.
    pub checks: i64,
    /// Time of the last check.
    pub last_checked_ms: Option<i64>,
    /// Outcome of the last check.
    pub status: Option<JobStatus>,
    /// Idempotency key of the current shortfall, if short.
    pub shortfall_key: Option<String>,
    /// The last verdict (see [`crate::jobs::JobVerdict`]).
    pub verdict: Option<serde_json::Value>,
    /// Node holding the job's lease (PostgreSQL, several nodes).
    #[serde(skip)]
    pub lease_owner: Option<String>,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobFilter {
    /// Only jobs in this state.
    #[serde(default)]
    pub state: Option<JobState>,
    /// Only jobs whose last check had this outcome.
    #[serde(default)]
    pub status: Option<JobStatus>,
    /// Only jobs on this CID (any form; normalised before matching).
    #[serde(default)]
    pub cid: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Jobs after this id (the last id of the previous page).
    #[serde(default)]
    pub after: Option<String>,
}

/// One entry of a job's check history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
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
    pub status: JobStatus,
    /// The verdict, or the error.
    pub detail: Option<serde_json::Value>,
}

/// Where a deal request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RequestState {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// The hook acknowledged it.
    Delivered,
    /// Delivery failed too often: parked for the operator.
    Dead,
    /// Its job was cancelled before delivery.
    Cancelled,
}

impl RequestState {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Delivered => "delivered",
            RequestState::Dead => "dead",
            RequestState::Cancelled => "cancelled",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => RequestState::Pending,
            "delivered" => RequestState::Delivered,
            "dead" => RequestState::Dead,
            "cancelled" => RequestState::Cancelled,
            _ => return None,
        })
    }
}

/// What the aggregator is asked to do: make `copies_needed` new deals for `cid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
    /// One request per key: hooks use it to drop a redelivery.
    pub idempotency_key: String,
}

/// A deal request in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxRecord {
    /// The request.
    #[serde(flatten)]
    pub request: DealRequest,
    /// Where it stands.
    pub state: RequestState,
    /// Written at.
    pub created_ms: i64,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Next attempt, while pending.
    pub next_attempt_ms: i64,
    /// Last delivery error.
    pub last_error: Option<String>,
    /// When the hook acknowledged it.
    pub delivered_ms: Option<i64>,
    /// The node that delivered it.
    pub delivered_by: Option<String>,
    /// What the hook answered (for example the on-chain request id).
    pub receipt: Option<serde_json::Value>,
}

/// Counts for operators.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStats {
    /// Jobs by state.
    pub active: i64,
    /// Cancelled jobs.
    pub cancelled: i64,
    /// Retired jobs.
    pub retired: i64,
    /// Dead jobs (need the operator).
    pub dead: i64,
    /// Deal requests waiting for delivery.
    pub requests_pending: i64,
    /// Deal requests delivered.
    pub requests_delivered: i64,
    /// Deal requests that failed delivery for good.
    pub requests_dead: i64,
}

//! Verdict-change events: what a host subscribes to (dashboards, alerts, its own records).

use serde::Serialize;

use crate::jobs::Shortfall;
use crate::store::JobStatus;

/// A job's verdict changed: its status, or the shortfall it is in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictEvent {
    /// The job.
    pub job_id: String,
    /// Its CID.
    pub cid: String,
    /// The node that checked.
    pub node_id: String,
    /// Status before (none for a first check).
    pub previous: Option<JobStatus>,
    /// Status now.
    pub status: JobStatus,
    /// Chain head of the check.
    pub head: Option<i64>,
    /// Healthy deals counted.
    pub healthy: Vec<u64>,
    /// The shortfall, when short.
    pub shortfall: Option<Shortfall>,
    /// The error, when the check failed.
    pub error: Option<String>,
    /// Whether the job was parked as dead by this check.
    pub dead: bool,
    /// When (ms since the Unix epoch).
    pub at_ms: i64,
}

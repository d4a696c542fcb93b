//! What a host subscribes to: verdict changes of jobs, and endpoints going down or coming
//! back (dashboards, alerts, its own records).

use serde::Serialize;

use crate::jobs::Shortfall;
use crate::store::CheckStatus;

use super::outage::Endpoint;

/// An event of the node (`kind` tells which).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum NodeEvent {
    /// A job's verdict changed.
    Verdict(VerdictEvent),
    /// A shared endpoint went down or came back: checks pause meanwhile, and no job
    /// counts it as a failure of its own.
    Endpoint(EndpointEvent),
}

/// A job's verdict changed: its status, or the shortfall it is in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct VerdictEvent {
    /// The job.
    pub job_id: String,
    /// The job's tenant (absent for the operator's jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub tenant: Option<String>,
    /// Its CID.
    pub cid: String,
    /// The node that checked.
    pub node_id: String,
    /// Status before (none for a first check).
    pub previous: Option<CheckStatus>,
    /// Status now.
    pub status: CheckStatus,
    /// Chain head of the check.
    pub head: Option<i64>,
    /// Healthy deals counted.
    pub healthy: Vec<u64>,
    /// The shortfall, when short.
    pub shortfall: Option<Shortfall>,
    /// The key of the request this check made, if any.
    pub request: Option<String>,
    /// The error, when the check failed.
    pub error: Option<String>,
    /// Whether the job was parked as dead by this check.
    pub dead: bool,
    /// When (ms since the Unix epoch).
    pub at_ms: i64,
}

/// A shared endpoint's state changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EndpointEvent {
    /// Which.
    pub endpoint: Endpoint,
    /// Whether it answers now.
    pub up: bool,
    /// Down since (ms since the Unix epoch), when down.
    pub down_since_ms: Option<i64>,
    /// The error that took it down (code and message), when down.
    pub error: Option<String>,
    /// The node that saw it.
    pub node_id: String,
    /// When.
    pub at_ms: i64,
}

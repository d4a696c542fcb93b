//! Job specifications: parsed from what a host sends (JSON, camelCase), validated with
//! errors naming the field, and normalised so that registering the same job twice gives the
//! same job id.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cid::{parse_cid, CidError};
use crate::error::ErrorCode;

/// The longest deal term since nv21 (1278 days): no threshold beyond it makes sense.
pub const MAX_DEAL_EPOCHS: i64 = 3_680_640;

/// A job that cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The CID is not one (`INVALID_CID`).
    #[error(transparent)]
    InvalidCid(#[from] CidError),
    /// A field is missing, unknown or out of bounds (`INVALID_JOB`).
    #[error("invalid job: {field}: {reason}")]
    Invalid {
        /// The field (camelCase, as sent).
        field: String,
        /// Why.
        reason: String,
    },
}

impl ErrorCode for JobError {
    fn code(&self) -> &'static str {
        match self {
            JobError::InvalidCid(e) => e.code(),
            JobError::Invalid { .. } => "INVALID_JOB",
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> JobError {
    JobError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Bounds an operator sets on what clients may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Most copies a job may ask for.
    pub max_replication_target: u32,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits {
            max_replication_target: 10,
        }
    }
}

/// A job as a host registers it: at least one of the three kinds (replication, renewal,
/// repair). Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(
    feature = "ts",
    derive(ts_rs::TS),
    ts(rename = "JobSpec", optional_fields)
)]
pub struct JobSpecInput {
    /// The data's CID (any version or multibase); stored as CIDv1 base32.
    pub cid: String,
    /// Keep at least this many active deals (1 to the node's `maxReplicationTarget`).
    #[serde(default)]
    pub replication_target: Option<u32>,
    /// Replace a deal when it ends within this many epochs.
    #[serde(default)]
    pub renew_threshold_epochs: Option<i64>,
    /// Replace a deal whose sector has not been proven for this many epochs, or that was
    /// terminated or vanished (needs `lotus`).
    #[serde(default)]
    pub repair_threshold_epochs: Option<i64>,
    /// Epoch after which the job retires.
    #[serde(default)]
    pub end_epoch: Option<i64>,
}

/// A validated, normalised job (inline as `Job.spec` in TypeScript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "NormalisedJobSpec"))]
pub struct JobSpec {
    /// CIDv1, base32.
    pub cid: String,
    /// Copies to keep (absent: keep as many as exist when checked).
    pub replication_target: Option<u32>,
    /// Renewal window in epochs.
    pub renew_threshold_epochs: Option<i64>,
    /// Repair threshold in epochs.
    pub repair_threshold_epochs: Option<i64>,
    /// Retirement epoch.
    pub end_epoch: Option<i64>,
    /// Whose job it is: the tenant of the API key that registered it (absent for the
    /// operator's own jobs). Never taken from the job a client sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub tenant: Option<String>,
}

impl JobSpec {
    /// Parses and validates a job from JSON.
    pub fn from_json(v: serde_json::Value, limits: &JobLimits) -> Result<Self, JobError> {
        let input: JobSpecInput = serde_path_to_error::deserialize(v).map_err(|e| {
            let reason = e.inner().to_string();
            let path = e.path().to_string();
            // Unknown and missing fields are named in serde's message, not in the path.
            let field = if path == "." {
                reason.split('`').nth(1).unwrap_or("job").to_string()
            } else {
                path
            };
            JobError::Invalid { field, reason }
        })?;
        Self::validate(input, limits)
    }

    /// Validates and normalises a parsed job.
    pub fn validate(input: JobSpecInput, limits: &JobLimits) -> Result<Self, JobError> {
        let cid = parse_cid(&input.cid)?.cid.to_string();
        if let Some(t) = input.replication_target {
            if t == 0 || t > limits.max_replication_target {
                return Err(invalid(
                    "replicationTarget",
                    format!("must be in 1..={}, got {t}", limits.max_replication_target),
                ));
            }
        }
        for (field, v) in [
            ("renewThresholdEpochs", input.renew_threshold_epochs),
            ("repairThresholdEpochs", input.repair_threshold_epochs),
        ] {
            if let Some(v) = v {
                if !(1..=MAX_DEAL_EPOCHS).contains(&v) {
                    return Err(invalid(
                        field,
                        format!("must be in 1..={MAX_DEAL_EPOCHS} epochs, got {v}"),
                    ));
                }
            }
        }
        if let Some(end) = input.end_epoch {
            if end < 0 {
                return Err(invalid(
                    "endEpoch",
                    format!("must not be negative, got {end}"),
                ));
            }
        }
        if input.replication_target.is_none()
            && input.renew_threshold_epochs.is_none()
            && input.repair_threshold_epochs.is_none()
        {
            return Err(invalid(
                "replicationTarget",
                "a job asks for at least one of replicationTarget, renewThresholdEpochs, repairThresholdEpochs",
            ));
        }
        Ok(JobSpec {
            cid,
            replication_target: input.replication_target,
            renew_threshold_epochs: input.renew_threshold_epochs,
            repair_threshold_epochs: input.repair_threshold_epochs,
            end_epoch: input.end_epoch,
            tenant: None,
        })
    }

    /// Stable id: the same normalised job always gets the same id (registration is
    /// idempotent), whatever form the CID was sent in.
    pub fn job_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.cid.as_bytes());
        for v in [
            self.replication_target.map(i64::from),
            self.renew_threshold_epochs,
            self.repair_threshold_epochs,
            self.end_epoch,
        ] {
            match v {
                Some(x) => h.update(format!("|{x}")),
                None => h.update("|-"),
            }
        }
        // Two tenants asking the same are two jobs; an operator's job keeps the id it had
        // before tenants existed.
        if let Some(t) = &self.tenant {
            h.update(format!("|tenant:{t}"));
        }
        let digest = h.finalize();
        format!("job_{}", alloy::hex::encode(&digest[..12]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<JobSpec, JobError> {
        JobSpec::from_json(v, &JobLimits::default())
    }

    #[test]
    fn valid_jobs_normalise_and_ids_are_stable() {
        let a = parse(
            json!({"cid": "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", "replicationTarget": 3,
            "renewThresholdEpochs": 86400, "repairThresholdEpochs": 2880}),
        )
        .unwrap();
        assert_eq!(
            a.cid,
            "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        let b = parse(
            json!({"cid": "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
            "repairThresholdEpochs": 2880, "renewThresholdEpochs": 86400, "replicationTarget": 3}),
        )
        .unwrap();
        assert_eq!(a.job_id(), b.job_id(), "same job in another form, same id");
        let c = parse(json!({"cid": a.cid, "replicationTarget": 4})).unwrap();
        assert_ne!(a.job_id(), c.job_id());
    }

    #[test]
    fn bad_jobs_name_the_field() {
        let cases = [
            (
                json!({"cid": "x", "replicationTarget": 2}),
                "INVALID_CID",
                "cid",
            ),
            (json!({"replicationTarget": 2}), "INVALID_JOB", "cid"),
            (
                json!({"cid": "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", "replicationTarget": 0}),
                "INVALID_JOB",
                "replicationTarget",
            ),
            (
                json!({"cid": "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", "replicationTarget": 11}),
                "INVALID_JOB",
                "replicationTarget",
            ),
            (
                json!({"cid": "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", "renewThresholdEpochs": 0}),
                "INVALID_JOB",
                "renewThresholdEpochs",
            ),
            (
                json!({"cid": "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", "repairThresholdEpochs": 9_999_999}),
                "INVALID_JOB",
                "repairThresholdEpochs",
            ),
            (
                json!({"cid": "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", "replicationTarget": 2, "endEpoch": -5}),
                "INVALID_JOB",
                "endEpoch",
            ),
            (
                json!({"cid": "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", "replication": 2}),
                "INVALID_JOB",
                "replication",
            ),
            (
                json!({"cid": "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", "replicationTarget": "3"}),
                "INVALID_JOB",
                "replicationTarget",
            ),
            (
                json!({"cid": "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"}),
                "INVALID_JOB",
                "replicationTarget",
            ),
        ];
        for (input, code, field) in cases {
            let e = parse(input.clone()).unwrap_err();
            assert_eq!(e.code(), code, "{input}");
            if let JobError::Invalid { field: f, .. } = &e {
                assert_eq!(f, field, "{input}: {e}");
            }
        }
    }
}

//! Jobs: registration (idempotent), reads, cancellation, claiming due jobs under a lease,
//! and recording checks with their deal requests in one transaction.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::records::{CheckRecord, DealRequest, JobFilter, JobRecord, JobState, JobStatus};
use super::{query_err, Store, StoreError};
use crate::jobs::JobSpec;

const JOB_COLS: &str = "job_id, spec, state, created_ms, updated_ms, next_due_ms, due_epoch, \
    failures, last_error, checks, last_checked_ms, status, shortfall_key, verdict, lease_owner";

/// What a check found, to be recorded for a job leased by this node.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckWrite {
    /// The job.
    pub job_id: String,
    /// Head epoch of the check (absent if the check failed before reading it).
    pub head: Option<i64>,
    /// Outcome.
    pub status: JobStatus,
    /// The job's state after the check (`Active`, `Retired`, or `Dead` after too many
    /// failures).
    pub state: JobState,
    /// Next check.
    pub next_due_ms: i64,
    /// Epoch at which a deal next needs attention.
    pub due_epoch: Option<i64>,
    /// Failures in a row (0 after a good check).
    pub failures: i64,
    /// The error, for a failed check (the previous verdict is kept).
    pub error: Option<String>,
    /// The verdict, for a good check.
    pub verdict: Option<serde_json::Value>,
    /// The shortfall's key, when short.
    pub shortfall_key: Option<String>,
    /// The deal request of the shortfall (written once per key).
    pub request: Option<DealRequest>,
}

/// What became of one [`CheckWrite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Recorded; `request_created` when its deal request is new to the outbox.
    Recorded {
        /// A new deal request was written.
        request_created: bool,
    },
    /// The job's lease is no longer ours (expired and taken, or the job was cancelled):
    /// nothing was written.
    LeaseLost,
}

/// The outcomes of a batch of checks, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSummary {
    /// One per write.
    pub outcomes: Vec<CheckOutcome>,
}

pub(super) fn col<T>(r: &AnyRow, name: &str) -> Result<T, StoreError>
where
    T: for<'a> sqlx::Decode<'a, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    r.try_get(name).map_err(query_err("decode"))
}

fn json_col(r: &AnyRow, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
    col::<Option<String>>(r, name)?
        .map(|s| {
            serde_json::from_str(&s).map_err(|e| StoreError::Corrupt {
                what: "verdict",
                reason: e.to_string(),
            })
        })
        .transpose()
}

pub(super) fn job_from_row(r: &AnyRow) -> Result<JobRecord, StoreError> {
    let spec: String = col(r, "spec")?;
    let spec: JobSpec = serde_json::from_str(&spec).map_err(|e| StoreError::Corrupt {
        what: "job spec",
        reason: e.to_string(),
    })?;
    let state: String = col(r, "state")?;
    let status: Option<String> = col(r, "status")?;
    Ok(JobRecord {
        job_id: col(r, "job_id")?,
        spec,
        state: JobState::parse(&state).ok_or_else(|| StoreError::Corrupt {
            what: "job state",
            reason: state.clone(),
        })?,
        created_ms: col(r, "created_ms")?,
        updated_ms: col(r, "updated_ms")?,
        next_due_ms: col(r, "next_due_ms")?,
        due_epoch: col(r, "due_epoch")?,
        failures: col(r, "failures")?,
        last_error: col(r, "last_error")?,
        checks: col(r, "checks")?,
        last_checked_ms: col(r, "last_checked_ms")?,
        status: status.as_deref().and_then(JobStatus::parse),
        shortfall_key: col(r, "shortfall_key")?,
        verdict: json_col(r, "verdict")?,
        lease_owner: col(r, "lease_owner")?,
    })
}

pub(super) fn to_json(what: &'static str, v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

impl Store {
    /// Registers `spec` (already validated). Idempotent: the same spec gives the same job;
    /// a cancelled or dead job is revived and due at once. Returns the job and whether it
    /// is new.
    pub async fn register_job(
        &self,
        spec: &JobSpec,
        now_ms: i64,
    ) -> Result<(JobRecord, bool), StoreError> {
        let mut all = self
            .register_jobs(std::slice::from_ref(spec), now_ms)
            .await?;
        all.pop().ok_or_else(|| StoreError::Query {
            op: "register_job",
            reason: "no row written".into(),
        })
    }

    /// Registers many jobs in one transaction (all or none), each as
    /// [`Store::register_job`] does.
    pub async fn register_jobs(
        &self,
        specs: &[JobSpec],
        now_ms: i64,
    ) -> Result<Vec<(JobRecord, bool)>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_err("register_job"))?;
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            let id = spec.job_id();
            let spec_json = to_json("job spec", spec)?;
            let created = sqlx::query(
                "INSERT INTO raas_jobs (job_id, cid, spec, state, created_ms, updated_ms, next_due_ms) \
                 VALUES ($1, $2, $3, 'active', $4, $4, $4) ON CONFLICT (job_id) DO NOTHING",
            )
            .bind(&id)
            .bind(&spec.cid)
            .bind(&spec_json)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(query_err("register_job"))?
            .rows_affected()
                == 1;
            if !created {
                sqlx::query(
                    "UPDATE raas_jobs SET state = 'active', failures = 0, last_error = NULL, \
                     next_due_ms = $2, updated_ms = $2, lease_owner = NULL, lease_until_ms = NULL \
                     WHERE job_id = $1 AND state IN ('cancelled', 'dead')",
                )
                .bind(&id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(query_err("register_job"))?;
            }
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {JOB_COLS} FROM raas_jobs WHERE job_id = $1"
            )))
            .bind(&id)
            .fetch_one(&mut *tx)
            .await
            .map_err(query_err("register_job"))?;
            out.push((job_from_row(&row)?, created));
        }
        tx.commit().await.map_err(query_err("register_job"))?;
        Ok(out)
    }

    /// The job `job_id`, if stored.
    pub async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLS} FROM raas_jobs WHERE job_id = $1"
        )))
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("get_job"))?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Jobs matching `filter`, by id, one page. The CID filter matches the normalised form
    /// (see [`JobSpec::cid`]).
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, StoreError> {
        let limit = i64::from(filter.limit.unwrap_or(100).clamp(1, 1000));
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLS} FROM raas_jobs WHERE ($1 IS NULL OR state = $1) \
             AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR cid = $3) \
             AND ($4 IS NULL OR job_id > $4) ORDER BY job_id LIMIT $5"
        )))
        .bind(filter.state.map(|s| s.as_str()))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.cid.as_deref())
        .bind(filter.after.as_deref())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list_jobs"))?;
        rows.iter().map(job_from_row).collect()
    }

    /// Cancels a job: it is never checked again and its undelivered deal requests are
    /// withdrawn. `None` if there is no such job.
    pub async fn cancel_job(
        &self,
        job_id: &str,
        now_ms: i64,
    ) -> Result<Option<JobRecord>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_err("cancel_job"))?;
        sqlx::query(
            "UPDATE raas_jobs SET state = 'cancelled', updated_ms = $2, lease_owner = NULL, \
             lease_until_ms = NULL WHERE job_id = $1 AND state IN ('active', 'dead')",
        )
        .bind(job_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err("cancel_job"))?;
        sqlx::query(
            "UPDATE raas_outbox SET state = 'cancelled', lease_owner = NULL \
             WHERE job_id = $1 AND state = 'pending'",
        )
        .bind(job_id)
        .execute(&mut *tx)
        .await
        .map_err(query_err("cancel_job"))?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLS} FROM raas_jobs WHERE job_id = $1"
        )))
        .bind(job_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("cancel_job"))?;
        let job = row.as_ref().map(job_from_row).transpose()?;
        tx.commit().await.map_err(query_err("cancel_job"))?;
        Ok(job)
    }

    /// Leases up to `limit` active jobs that are due at `now_ms` to `node_id` until
    /// `now_ms + lease_ms`, earliest due first (then earliest deal attention epoch). Jobs
    /// leased by a live node are skipped; an expired lease is taken over.
    pub async fn claim_due_jobs(
        &self,
        node_id: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let lock = self.claim_lock();
        let sql = format!(
            "UPDATE raas_jobs SET lease_owner = $1, lease_until_ms = $2 WHERE job_id IN (\
               SELECT job_id FROM raas_jobs WHERE state = 'active' AND next_due_ms <= $3 \
               AND (lease_until_ms IS NULL OR lease_until_ms < $3) \
               ORDER BY next_due_ms, due_epoch LIMIT $4 {lock}) \
             RETURNING {JOB_COLS}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(node_id)
            .bind(now_ms + lease_ms)
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("claim_due_jobs"))?;
        let mut jobs = rows
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        jobs.sort_by(|a, b| {
            (a.next_due_ms, a.due_epoch.unwrap_or(i64::MAX))
                .cmp(&(b.next_due_ms, b.due_epoch.unwrap_or(i64::MAX)))
        });
        Ok(jobs)
    }

    /// Records checks of jobs leased by `node_id`, all in one transaction: for each, the
    /// new verdict (or failure), a history entry and, for a shortfall, its deal request
    /// (written once per idempotency key). A job whose lease is no longer ours is left
    /// untouched.
    pub async fn record_checks(
        &self,
        node_id: &str,
        writes: &[CheckWrite],
        now_ms: i64,
    ) -> Result<RecordSummary, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query_err("record_checks"))?;
        let mut summary = RecordSummary::default();
        for w in writes {
            let row = if w.error.is_none() {
                sqlx::query(
                    "UPDATE raas_jobs SET state = $3, status = $4, verdict = $5, \
                     shortfall_key = $6, next_due_ms = $7, due_epoch = $8, failures = 0, \
                     last_error = NULL, checks = checks + 1, last_checked_ms = $9, \
                     updated_ms = $9, lease_owner = NULL, lease_until_ms = NULL \
                     WHERE job_id = $1 AND lease_owner = $2 AND state = 'active' RETURNING checks",
                )
                .bind(&w.job_id)
                .bind(node_id)
                .bind(w.state.as_str())
                .bind(w.status.as_str())
                .bind(w.verdict.as_ref().map(|v| v.to_string()))
                .bind(w.shortfall_key.as_deref())
                .bind(w.next_due_ms)
                .bind(w.due_epoch)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await
            } else {
                sqlx::query(
                    "UPDATE raas_jobs SET state = $3, status = 'error', next_due_ms = $4, \
                     failures = $5, last_error = $6, checks = checks + 1, last_checked_ms = $7, \
                     updated_ms = $7, lease_owner = NULL, lease_until_ms = NULL \
                     WHERE job_id = $1 AND lease_owner = $2 AND state = 'active' RETURNING checks",
                )
                .bind(&w.job_id)
                .bind(node_id)
                .bind(w.state.as_str())
                .bind(w.next_due_ms)
                .bind(w.failures)
                .bind(w.error.as_deref())
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await
            }
            .map_err(query_err("record_checks"))?;
            let Some(row) = row else {
                summary.outcomes.push(CheckOutcome::LeaseLost);
                continue;
            };
            let seq: i64 = col(&row, "checks")?;
            let detail = match (&w.verdict, &w.error) {
                (_, Some(e)) => Some(serde_json::json!({ "error": e }).to_string()),
                (Some(v), None) => Some(v.to_string()),
                (None, None) => None,
            };
            sqlx::query(
                "INSERT INTO raas_checks (job_id, seq, node_id, checked_ms, head, status, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&w.job_id)
            .bind(seq)
            .bind(node_id)
            .bind(now_ms)
            .bind(w.head)
            .bind(w.status.as_str())
            .bind(detail)
            .execute(&mut *tx)
            .await
            .map_err(query_err("record_checks"))?;
            let request_created = match &w.request {
                Some(r) => self.insert_request(&mut tx, r, now_ms).await?,
                None => false,
            };
            summary
                .outcomes
                .push(CheckOutcome::Recorded { request_created });
        }
        tx.commit().await.map_err(query_err("record_checks"))?;
        Ok(summary)
    }

    /// The last `limit` checks of a job, newest first.
    pub async fn job_history(
        &self,
        job_id: &str,
        limit: u32,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT job_id, seq, node_id, checked_ms, head, status, detail FROM raas_checks \
             WHERE job_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(job_id)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("job_history"))?;
        rows.iter()
            .map(|r| {
                let status: String = col(r, "status")?;
                Ok(CheckRecord {
                    job_id: col(r, "job_id")?,
                    seq: col(r, "seq")?,
                    node_id: col(r, "node_id")?,
                    checked_ms: col(r, "checked_ms")?,
                    head: col(r, "head")?,
                    status: JobStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                        what: "check status",
                        reason: status.clone(),
                    })?,
                    detail: json_col(r, "detail")?,
                })
            })
            .collect()
    }

    /// Every check recorded since `since_ms`, as (job id, node id) pairs: what an operator
    /// (or a test) uses to see who checked what.
    pub async fn checks_since(&self, since_ms: i64) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT job_id, node_id FROM raas_checks WHERE checked_ms >= $1 ORDER BY job_id, seq",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("checks_since"))?;
        rows.iter()
            .map(|r| Ok((col(r, "job_id")?, col(r, "node_id")?)))
            .collect()
    }
}

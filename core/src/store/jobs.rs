//! Jobs: registration (idempotent), reads, cancellation, claiming due jobs under a lease,
//! and recording checks with their deal requests in one transaction.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::events::NewEvent;
use super::records::{
    CheckRecord, CheckStatus, JobFilter, JobLifecycle, JobMemory, JobRecord, NewRequest,
    RequestUpdate,
};
use super::{query_err, Bind, Marks, Store, StoreError};
use crate::jobs::JobSpec;

const JOB_COLS: &str = "job_id, spec, state, created_ms, updated_ms, next_due_ms, due_epoch, \
    failures, last_error, checks, last_checked_ms, status, target, request_seq, memory, verdict, \
    lease_owner";

/// Why a check failed, kept with the job: a stable code and a message without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    /// Stable code (`RPC_TIMEOUT`, `MALFORMED_REPLY`, …).
    pub code: &'static str,
    /// What happened.
    pub message: String,
}

impl CheckFailure {
    /// The failure of a typed error.
    pub fn of(e: &(impl crate::error::ErrorCode + std::fmt::Display)) -> Self {
        CheckFailure {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// What a check found, to be recorded for a job leased by this node.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckWrite {
    /// The job.
    pub job_id: String,
    /// Head epoch of the check (absent if the check failed before reading it).
    pub head: Option<i64>,
    /// Outcome.
    pub status: CheckStatus,
    /// The job's state after the check (`Active`, `Retired`, or `Dead` after too many
    /// failures of its own).
    pub state: JobLifecycle,
    /// Next check.
    pub next_due_ms: i64,
    /// Epoch at which a deal next needs attention.
    pub due_epoch: Option<i64>,
    /// Failures in a row (0 after a good check).
    pub failures: i64,
    /// The error, for a failed check (the previous verdict is kept).
    pub error: Option<CheckFailure>,
    /// The verdict, for a good check.
    pub verdict: Option<serde_json::Value>,
    /// The job's fixed target, once known.
    pub target: Option<u32>,
    /// What the check learnt about the deals.
    pub memory: Option<JobMemory>,
    /// A new deal request for the shortfall (its sequence number becomes the job's).
    pub new_request: Option<NewRequest>,
    /// Changes to the job's open requests (fulfilment, windows passed, withdrawn).
    pub request_updates: Vec<RequestUpdate>,
    /// The verdict change to log as an event (camelCase JSON), when the verdict changed.
    pub event: Option<serde_json::Value>,
}

/// What became of one [`CheckWrite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
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
    pub outcomes: Vec<RecordOutcome>,
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

/// The record of a job as its registering `INSERT` wrote it (the columns' defaults), so a
/// registration need not read its new rows back. `store::jobs_register_returns_stored` holds
/// it equal to what is read.
fn new_job_record(job_id: &str, spec: &JobSpec, now_ms: i64) -> JobRecord {
    JobRecord {
        job_id: job_id.to_string(),
        spec: spec.clone(),
        state: JobLifecycle::Active,
        created_ms: now_ms,
        updated_ms: now_ms,
        next_due_ms: now_ms,
        due_epoch: None,
        failures: 0,
        last_error: None,
        checks: 0,
        last_checked_ms: None,
        status: None,
        target: None,
        requests: 0,
        verdict: None,
        memory: JobMemory::default(),
        lease_owner: None,
    }
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
        state: JobLifecycle::parse(&state).ok_or_else(|| StoreError::Corrupt {
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
        status: status.as_deref().and_then(CheckStatus::parse),
        target: col::<Option<i64>>(r, "target")?.and_then(|t| u32::try_from(t).ok()),
        requests: col(r, "request_seq")?,
        verdict: json_col(r, "verdict")?,
        memory: match col::<Option<String>>(r, "memory")? {
            Some(m) => serde_json::from_str(&m).map_err(|e| StoreError::Corrupt {
                what: "job memory",
                reason: e.to_string(),
            })?,
            None => JobMemory::default(),
        },
        lease_owner: col(r, "lease_owner")?,
    })
}

pub(super) fn to_json(what: &'static str, v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

/// Jobs per registration statement (7 values each): bounds a statement's size and its
/// parameter count (SQLite allows 32 766), while keeping statements, each a round trip to
/// the database, few.
const REGISTER_CHUNK: usize = 250;

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
        self.register_jobs_within(specs, now_ms, None).await
    }

    /// [`Store::register_jobs`] under a quota: when `quota` is `(tenant, max)`, the call
    /// fails with `QUOTA_EXCEEDED` (and writes nothing) if the tenant would then have more
    /// than `max` live (active or dead) jobs. Counted inside the writing transaction.
    ///
    /// Calls that arrive while another is writing commit together ([`super::group`]): one
    /// commit for many callers, each still all or none.
    pub async fn register_jobs_within(
        &self,
        specs: &[JobSpec],
        now_ms: i64,
        quota: Option<(&str, u64)>,
    ) -> Result<Vec<(JobRecord, bool)>, StoreError> {
        self.group
            .register(
                self,
                specs.to_vec(),
                now_ms,
                quota.map(|(t, m)| (t.to_string(), m)),
            )
            .await
    }

    /// The job `job_id`, if stored.
    pub async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLS} FROM raas_jobs WHERE job_id = $1"
        )))
        .bind(job_id)
        .fetch_optional(&self.reads)
        .await
        .map_err(query_err("get_job"))?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Jobs matching `filter`, by id, one page. The CID filter matches the normalised form
    /// (see [`JobSpec::cid`]).
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, StoreError> {
        let (sql, binds) = list_sql(filter);
        let rows = Bind::all(sqlx::query(sqlx::AssertSqlSafe(sql)), binds)
            .fetch_all(&self.reads)
            .await
            .map_err(query_err("list_jobs"))?;
        rows.iter().map(job_from_row).collect()
    }

    /// Cancels a job: it is never checked again and its open deal requests are closed
    /// (registering it again starts a new lineage). `None` if there is no such job.
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
        let closing: Vec<String> = sqlx::query(
            "UPDATE raas_outbox SET state = 'cancelled', lease_owner = NULL, lease_until_ms = NULL, \
             closed_ms = $2, last_error = 'job cancelled' \
             WHERE job_id = $1 AND state IN ('pending', 'delivered', 'dead') \
             RETURNING idempotency_key",
        )
        .bind(job_id)
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await
        .map_err(query_err("cancel_job"))?
        .iter()
        .map(|r| col(r, "idempotency_key"))
        .collect::<Result<_, _>>()?;
        self.request_events(&mut tx, &closing, "cancelled", now_ms)
            .await?;
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

    /// Leases up to `limit` active jobs due by `due_ms` to `owner` until
    /// `now_ms + lease_ms` (dated from the claim, not from the sweep's start), earliest due
    /// first (then earliest deal attention epoch). Jobs leased by a live owner are skipped;
    /// an expired lease is taken over.
    pub async fn claim_due_jobs(
        &self,
        owner: &str,
        due_ms: i64,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let lock = self.claim_lock();
        let sql = format!(
            "UPDATE raas_jobs SET lease_owner = $1, lease_until_ms = $2 WHERE job_id IN (\
               SELECT job_id FROM raas_jobs WHERE state = 'active' AND next_due_ms <= $3 \
               AND (lease_until_ms IS NULL OR lease_until_ms < $4) \
               ORDER BY next_due_ms, due_epoch {} {lock}) \
             RETURNING {JOB_COLS}",
            super::limit_sql(i64::from(limit))
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(now_ms.saturating_add(lease_ms))
            .bind(due_ms)
            .bind(now_ms)
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

    /// Extends `owner`'s leases of these jobs to `until_ms` (a batch still being checked).
    /// Returns how many are still held.
    pub async fn extend_job_leases(
        &self,
        owner: &str,
        job_ids: &[String],
        until_ms: i64,
    ) -> Result<u64, StoreError> {
        self.set_job_leases(owner, job_ids, Some(until_ms)).await
    }

    /// Gives back `owner`'s leases of these jobs without recording a check (an outage
    /// deferred them): they stay due as they were.
    pub async fn release_jobs(&self, owner: &str, job_ids: &[String]) -> Result<u64, StoreError> {
        self.set_job_leases(owner, job_ids, None).await
    }

    /// Gives back `owner`'s leases of these jobs, due again at `next_due_ms`, without
    /// recording a check or a failure (a read of theirs did not get through).
    pub async fn defer_jobs(
        &self,
        owner: &str,
        job_ids: &[String],
        next_due_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        for chunk in job_ids.chunks(500) {
            let mut m = Marks::new(self.backend());
            let (due, lease_owner) = (m.next(), m.next());
            let sql = format!(
                "UPDATE raas_jobs SET lease_owner = NULL, lease_until_ms = NULL, next_due_ms = {due} \
                 WHERE lease_owner = {lease_owner} AND job_id IN ({})",
                m.list(chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(next_due_ms)
                .bind(owner);
            for id in chunk {
                q = q.bind(id);
            }
            n += q
                .execute(&self.pool)
                .await
                .map_err(query_err("defer_jobs"))?
                .rows_affected();
        }
        Ok(n)
    }

    async fn set_job_leases(
        &self,
        owner: &str,
        job_ids: &[String],
        until_ms: Option<i64>,
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        for chunk in job_ids.chunks(500) {
            let mut m = Marks::new(self.backend());
            let set = match until_ms {
                Some(_) => format!("lease_until_ms = {}", m.next()),
                None => "lease_owner = NULL, lease_until_ms = NULL".to_string(),
            };
            let sql = format!(
                "UPDATE raas_jobs SET {set} WHERE lease_owner = {} AND job_id IN ({})",
                m.next(),
                m.list(chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            if let Some(until) = until_ms {
                q = q.bind(until);
            }
            q = q.bind(owner);
            for id in chunk {
                q = q.bind(id);
            }
            n += q
                .execute(&self.pool)
                .await
                .map_err(query_err("job_leases"))?
                .rows_affected();
        }
        Ok(n)
    }

    /// Records checks of jobs leased by `owner`, all in one transaction: for each, the new
    /// verdict (or failure), a history entry, its new deal request and the changes to its
    /// open requests. A job whose lease is no longer ours is left untouched.
    pub async fn record_checks(
        &self,
        owner: &str,
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
        let mut events = Vec::new();
        let mut checks = Vec::with_capacity(writes.len());
        for w in writes {
            let row = if w.error.is_none() {
                let memory = w
                    .memory
                    .as_ref()
                    .map(|m| to_json("job memory", m))
                    .transpose()?;
                sqlx::query(
                    "UPDATE raas_jobs SET state = $3, status = $4, verdict = $5, \
                     shortfall_key = NULL, next_due_ms = $6, due_epoch = $7, failures = 0, \
                     last_error = NULL, checks = checks + 1, last_checked_ms = $8, \
                     updated_ms = $8, lease_owner = NULL, lease_until_ms = NULL, \
                     target = COALESCE($9, target), request_seq = COALESCE($10, request_seq), \
                     memory = COALESCE($11, memory) \
                     WHERE job_id = $1 AND lease_owner = $2 AND state = 'active' \
                     RETURNING checks, tenant",
                )
                .bind(&w.job_id)
                .bind(owner)
                .bind(w.state.as_str())
                .bind(w.status.as_str())
                .bind(w.verdict.as_ref().map(|v| v.to_string()))
                .bind(w.next_due_ms)
                .bind(w.due_epoch)
                .bind(now_ms)
                .bind(w.target.map(i64::from))
                .bind(w.new_request.as_ref().map(|r| r.seq))
                .bind(memory)
                .fetch_optional(&mut *tx)
                .await
            } else {
                sqlx::query(
                    "UPDATE raas_jobs SET state = $3, status = 'error', next_due_ms = $4, \
                     failures = $5, last_error = $6, checks = checks + 1, last_checked_ms = $7, \
                     updated_ms = $7, lease_owner = NULL, lease_until_ms = NULL \
                     WHERE job_id = $1 AND lease_owner = $2 AND state = 'active' \
                     RETURNING checks, tenant",
                )
                .bind(&w.job_id)
                .bind(owner)
                .bind(w.state.as_str())
                .bind(w.next_due_ms)
                .bind(w.failures)
                .bind(w.error.as_ref().map(|e| e.to_string()))
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await
            }
            .map_err(query_err("record_checks"))?;
            let Some(row) = row else {
                summary.outcomes.push(RecordOutcome::LeaseLost);
                continue;
            };
            let seq: i64 = col(&row, "checks")?;
            let tenant: Option<String> = col(&row, "tenant")?;
            let detail = match (&w.verdict, &w.error) {
                (_, Some(e)) => {
                    Some(serde_json::json!({ "error": e.to_string(), "code": e.code }).to_string())
                }
                (Some(v), None) => Some(v.to_string()),
                (None, None) => None,
            };
            checks.push((w.job_id.as_str(), seq, w.head, w.status.as_str(), detail));
            for u in &w.request_updates {
                self.update_request(&mut tx, u, now_ms).await?;
            }
            if let Some(data) = &w.event {
                events.push(NewEvent {
                    tenant: tenant.clone(),
                    job_id: w.job_id.clone(),
                    kind: "verdict",
                    data: data.clone(),
                });
            }
            let request_created = match &w.new_request {
                Some(r) => {
                    if !self.insert_request(&mut tx, r, now_ms).await? {
                        return Err(StoreError::Corrupt {
                            what: "deal request",
                            reason: format!("key {} exists already", r.idempotency_key),
                        });
                    }
                    events.push(NewEvent {
                        tenant,
                        job_id: w.job_id.clone(),
                        kind: "request",
                        data: serde_json::json!({
                            "key": r.idempotency_key, "jobId": r.job_id, "cid": r.cid,
                            "seq": r.seq, "state": "pending", "reason": r.reason.as_str(),
                            "copiesNeeded": r.copies_needed, "atMs": now_ms,
                        }),
                    });
                    true
                }
                None => false,
            };
            summary
                .outcomes
                .push(RecordOutcome::Recorded { request_created });
        }
        // The checks' history in a few statements, not one per job: every statement is a
        // round trip to the connection's thread, and the writer's time is the sweep's.
        for chunk in checks.chunks(CHECK_ROWS) {
            let sql = format!(
                "INSERT INTO raas_checks (job_id, seq, node_id, checked_ms, head, status, detail) \
                 VALUES {}",
                Marks::new(self.backend()).rows(chunk.len(), 7)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (job_id, seq, head, status, detail) in chunk {
                q = q
                    .bind(*job_id)
                    .bind(*seq)
                    .bind(node_id)
                    .bind(now_ms)
                    .bind(*head)
                    .bind(*status)
                    .bind(detail.as_deref());
            }
            q.execute(&mut *tx)
                .await
                .map_err(query_err("record_checks"))?;
        }
        self.append_events(&mut tx, &events, now_ms).await?;
        tx.commit().await.map_err(query_err("record_checks"))?;
        Ok(summary)
    }

    /// The last `limit` checks of a job, newest first.
    pub async fn job_history(
        &self,
        job_id: &str,
        limit: u32,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT job_id, seq, node_id, checked_ms, head, status, detail FROM raas_checks \
             WHERE job_id = $1 ORDER BY seq DESC {}",
            super::limit_sql(i64::from(limit.clamp(1, 1000)))
        )))
        .bind(job_id)
        .fetch_all(&self.reads)
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
                    status: CheckStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
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
        .fetch_all(&self.reads)
        .await
        .map_err(query_err("checks_since"))?;
        rows.iter()
            .map(|r| Ok((col(r, "job_id")?, col(r, "node_id")?)))
            .collect()
    }
}

/// Inserts the jobs of `binds` that are not stored yet; returns their ids.
///
/// On PostgreSQL, other nodes write too: `ON CONFLICT DO NOTHING RETURNING` says which rows
/// this statement wrote. On SQLite this connection is the only writer, so the ids already
/// stored are read first and only the others inserted: a `RETURNING` row per new job
/// cost the writer more (each row copied, sent and freed) than the read's index probes.
/// `OR IGNORE` rather than `ON CONFLICT`: a statement that can no longer abort keeps no
/// statement journal (copying each page it touched into one was a tenth of the writer's
/// time); no bound value is NULL and `job_id` is the one unique key, so nothing is ignored.
async fn insert_new<'a>(
    conn: &mut sqlx::AnyConnection,
    backend: super::Backend,
    binds: &[&'a Prepared],
    now_ms: i64,
) -> Result<std::collections::HashSet<&'a String>, StoreError> {
    let mut created = std::collections::HashSet::new();
    if binds.is_empty() {
        return Ok(created);
    }
    let fresh: Vec<&Prepared> = match backend {
        super::Backend::Postgres => binds.to_vec(),
        super::Backend::Sqlite => {
            let sql = format!(
                "SELECT job_id FROM raas_jobs WHERE job_id IN ({})",
                Marks::new(backend).list(binds.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for job in binds {
                q = q.bind(&job.id);
            }
            let mut stored = std::collections::HashSet::new();
            for r in q
                .fetch_all(&mut *conn)
                .await
                .map_err(query_err("register_job"))?
            {
                stored.insert(col::<String>(&r, "job_id")?);
            }
            binds
                .iter()
                .copied()
                .filter(|j| !stored.contains(&j.id))
                .collect()
        }
    };
    if fresh.is_empty() {
        return Ok(created);
    }
    let mut m = Marks::new(backend);
    let rows: Vec<String> = fresh
        .iter()
        .map(|_| {
            format!(
                "({}, {}, {}, {}, {}, 'active', {}, {}, {})",
                m.next(),
                m.next(),
                m.next(),
                m.next(),
                m.next(),
                m.next(),
                m.next(),
                m.next()
            )
        })
        .collect();
    let (verb, tail) = match backend {
        super::Backend::Sqlite => ("INSERT OR IGNORE", ""),
        super::Backend::Postgres => (
            "INSERT",
            " ON CONFLICT (job_id) DO NOTHING RETURNING job_id",
        ),
    };
    let sql = format!(
        "{verb} INTO raas_jobs (job_id, cid, cid_key, tenant, spec, state, created_ms, updated_ms, \
         next_due_ms) VALUES {}{tail}",
        rows.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for job in &fresh {
        q = q
            .bind(&job.id)
            .bind(job.spec.cid.as_str())
            .bind(job.cid_key)
            .bind(job.spec.tenant.as_deref())
            .bind(&job.json)
            .bind(now_ms)
            .bind(now_ms)
            .bind(now_ms);
    }
    match backend {
        super::Backend::Postgres => {
            let ids: std::collections::HashSet<String> = q
                .fetch_all(&mut *conn)
                .await
                .map_err(query_err("register_job"))?
                .iter()
                .map(|r| col::<String>(r, "job_id"))
                .collect::<Result<_, _>>()?;
            created.extend(fresh.iter().map(|j| &j.id).filter(|id| ids.contains(*id)));
        }
        super::Backend::Sqlite => {
            let wrote = q
                .execute(&mut *conn)
                .await
                .map_err(query_err("register_job"))?
                .rows_affected();
            if wrote != fresh.len() as u64 {
                // The one writer read these ids as absent: anything else is a broken store.
                return Err(StoreError::Query {
                    op: "register_job",
                    reason: format!("wrote {wrote} of {} new jobs", fresh.len()),
                });
            }
            created.extend(fresh.iter().map(|j| &j.id));
        }
    }
    Ok(created)
}

/// The statement listing the jobs of `filter`, and its binds (only the filters given: see
/// [`super::where_all`]). With a CID, the CID key's index alone serves the read (a CID has a
/// handful of jobs): the other filters are written so no index serves them (`|| ''`,
/// portable), else SQLite prefers the tenant index for the order it gives and scans every
/// job of the tenant.
pub(super) fn list_sql(filter: &JobFilter) -> (String, Vec<Bind<'_>>) {
    let limit = i64::from(filter.limit.unwrap_or(100).clamp(1, 1000));
    let by_cid = filter.cid.is_some();
    let mut conds = Vec::new();
    let mut binds = Vec::new();
    if let Some(cid) = filter.cid.as_deref() {
        binds.push(Bind::Int(super::cid_key::cid_key(cid)));
        conds.push(format!("cid_key = ${}", binds.len()));
        binds.push(Bind::Text(cid));
        conds.push(format!("cid = ${}", binds.len()));
    }
    for (col, v) in [
        ("state", filter.state.map(|s| s.as_str())),
        ("status", filter.status.map(|s| s.as_str())),
        ("tenant", filter.tenant.as_deref()),
    ] {
        if let Some(v) = v {
            binds.push(Bind::Text(v));
            let col = if by_cid {
                format!("{col} || ''")
            } else {
                col.to_string()
            };
            conds.push(format!("{col} = ${}", binds.len()));
        }
    }
    if let Some(a) = filter.after.as_deref() {
        binds.push(Bind::Text(a));
        conds.push(format!("job_id > ${}", binds.len()));
    }
    // The limit is written into the statement, not bound: see [`super::limit_sql`].
    let sql = format!(
        "SELECT {JOB_COLS} FROM raas_jobs{} ORDER BY job_id {}",
        super::where_all(&conds),
        super::limit_sql(limit)
    );
    (sql, binds)
}

/// A job ready to be written: its id, CID key and stored spec, worked out by the caller
/// before it queues for the writer (hashing and encoding then run beside other calls'
/// commits, not in the writer's turn).
#[derive(Debug)]
pub(super) struct Prepared {
    pub(super) id: String,
    pub(super) cid_key: i64,
    pub(super) spec: JobSpec,
    pub(super) json: String,
}

impl Prepared {
    /// Each spec with its id and stored form.
    pub(super) fn all(specs: Vec<JobSpec>) -> Result<Vec<Prepared>, StoreError> {
        specs
            .into_iter()
            .map(|spec| {
                Ok(Prepared {
                    id: spec.job_id(),
                    cid_key: super::cid_key::cid_key(&spec.cid),
                    json: to_json("job spec", &spec)?,
                    spec,
                })
            })
            .collect()
    }
}

/// Check rows per insert statement (7 values each).
const CHECK_ROWS: usize = 100;

/// Registers `specs` on `conn`, inside a transaction the caller commits (see
/// [`Store::register_jobs_within`]).
pub(super) async fn register_in(
    conn: &mut sqlx::AnyConnection,
    backend: super::Backend,
    jobs: &[Prepared],
    now_ms: i64,
    quota: Option<(&str, u64)>,
) -> Result<Vec<(JobRecord, bool)>, StoreError> {
    let mut out = Vec::with_capacity(jobs.len());
    // A few statements per chunk, not two or three per job: each statement is a round trip
    // to the database (on SQLite, to its worker thread).
    let mut seen = std::collections::HashSet::new();
    for chunk in jobs.chunks(REGISTER_CHUNK) {
        let ids: Vec<&String> = chunk.iter().map(|p| &p.id).collect();
        let mut binds: Vec<&Prepared> = Vec::with_capacity(chunk.len());
        for job in chunk {
            // A job twice in one call is written once.
            if seen.insert(&job.id) {
                binds.push(job);
            }
        }
        let mut created = insert_new(conn, backend, &binds, now_ms).await?;
        // The others existed: a cancelled or dead one is revived.
        let existing: Vec<&String> = binds
            .iter()
            .map(|b| &b.id)
            .filter(|id| !created.contains(*id))
            .collect();
        if !existing.is_empty() {
            let mut m = Marks::new(backend);
            let (due, updated) = (m.next(), m.next());
            let marks = m.list(existing.len());
            let sql = format!(
                "UPDATE raas_jobs SET target = CASE WHEN state = 'cancelled' THEN NULL \
                 ELSE target END, state = 'active', failures = 0, last_error = NULL, \
                 next_due_ms = {due}, updated_ms = {updated}, lease_owner = NULL, \
                 lease_until_ms = NULL WHERE state IN ('cancelled', 'dead') AND job_id IN ({marks})"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now_ms)
                .bind(now_ms);
            for id in &existing {
                q = q.bind(*id);
            }
            q.execute(&mut *conn)
                .await
                .map_err(query_err("register_job"))?;
        }
        // A job this statement created is what was just written: it is built here, not
        // read back (decoding a thousand rows and their specs again costs the writer).
        // Only the others are read.
        let mut by_id = std::collections::HashMap::new();
        for job in &binds {
            if created.contains(&job.id) {
                by_id.insert(job.id.clone(), new_job_record(&job.id, &job.spec, now_ms));
            }
        }
        // Jobs that existed, and jobs an earlier chunk of this call wrote.
        let read: Vec<&&String> = ids.iter().filter(|id| !created.contains(**id)).collect();
        if !read.is_empty() {
            let sql = format!(
                "SELECT {JOB_COLS} FROM raas_jobs WHERE job_id IN ({})",
                Marks::new(backend).list(read.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in read {
                q = q.bind(id);
            }
            for r in q
                .fetch_all(&mut *conn)
                .await
                .map_err(query_err("register_job"))?
            {
                let job = job_from_row(&r)?;
                by_id.insert(job.job_id.clone(), job);
            }
        }
        for id in ids {
            let job = by_id.get(id).cloned().ok_or_else(|| StoreError::Query {
                op: "register_job",
                reason: format!("job {id} not found after writing it"),
            })?;
            // Only the first of a job given twice is the one that created it.
            let new = created.remove(id);
            out.push((job, new));
        }
    }
    if let Some((tenant, max)) = quota {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM raas_jobs WHERE tenant = $1 AND state IN ('active', 'dead')",
        )
        .bind(tenant)
        .fetch_one(&mut *conn)
        .await
        .map_err(query_err("register_job"))
        .and_then(|r| col(&r, "n"))?;
        if u64::try_from(n).unwrap_or(0) > max {
            // Dropping the transaction rolls it back: nothing of this call is kept.
            return Err(StoreError::QuotaExceeded {
                max,
                would_have: u64::try_from(n).unwrap_or(0),
            });
        }
    }
    Ok(out)
}

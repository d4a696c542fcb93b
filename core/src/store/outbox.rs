//! The deal-request outbox: a request is written with the check that finds its shortfall,
//! delivered under a lease of its own (extended while the hook runs) until the hook
//! acknowledges it, then tracked until its copies appear or its fulfilment window passes.
//! Keys are unique per request (job + sequence number), so a later shortfall is never
//! mistaken for an earlier one.

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use super::jobs::{col, to_json as json_text};
use super::records::{NewRequest, OutboxRecord, RequestState, RequestUpdate};
use super::{query_err, Bind, Store, StoreError};
use crate::jobs::ShortfallReason;

const OUTBOX_COLS: &str = "idempotency_key, job_id, seq, cid, reason, copies_needed, replacing, \
    follows, state, created_ms, created_epoch, attempts, next_attempt_ms, last_error, \
    delivered_ms, delivered_by, receipt, fulfilled_by, fulfil_by_epoch, closed_ms, checkpoint, \
    known_deals, lease_owner, lease_until_ms";

fn corrupt(what: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        reason: reason.into(),
    }
}

fn json_value(
    r: &AnyRow,
    name: &str,
    what: &'static str,
) -> Result<Option<serde_json::Value>, StoreError> {
    col::<Option<String>>(r, name)?
        .map(|s| serde_json::from_str(&s).map_err(|e| corrupt(what, e.to_string())))
        .transpose()
}

fn ids(r: &AnyRow, name: &str, what: &'static str) -> Result<Vec<u64>, StoreError> {
    let text: String = col(r, name)?;
    serde_json::from_str(&text).map_err(|e| corrupt(what, e.to_string()))
}

fn request_from_row(r: &AnyRow) -> Result<OutboxRecord, StoreError> {
    let reason: String = col(r, "reason")?;
    let state: String = col(r, "state")?;
    let copies: i64 = col(r, "copies_needed")?;
    Ok(OutboxRecord {
        idempotency_key: col(r, "idempotency_key")?,
        job_id: col(r, "job_id")?,
        seq: col(r, "seq")?,
        cid: col(r, "cid")?,
        reason: ShortfallReason::parse(&reason)
            .ok_or_else(|| corrupt("request reason", reason.clone()))?,
        copies_needed: u32::try_from(copies)
            .map_err(|_| corrupt("copies needed", copies.to_string()))?,
        replacing: ids(r, "replacing", "replaced deals")?,
        follows: col(r, "follows")?,
        state: RequestState::parse(&state).ok_or_else(|| corrupt("request state", state))?,
        created_ms: col(r, "created_ms")?,
        created_epoch: col(r, "created_epoch")?,
        attempts: col(r, "attempts")?,
        next_attempt_ms: col(r, "next_attempt_ms")?,
        last_error: col(r, "last_error")?,
        delivered_ms: col(r, "delivered_ms")?,
        delivered_by: col(r, "delivered_by")?,
        receipt: json_value(r, "receipt", "receipt")?,
        fulfilled_by: ids(r, "fulfilled_by", "fulfilling deals")?,
        fulfil_by_epoch: col(r, "fulfil_by_epoch")?,
        closed_ms: col(r, "closed_ms")?,
        checkpoint: json_value(r, "checkpoint", "checkpoint")?,
        known_deals: ids(r, "known_deals", "known deals")?,
        lease_owner: col(r, "lease_owner")?,
        lease_until_ms: col(r, "lease_until_ms")?,
    })
}

impl Store {
    /// Runs a single-row update: whether it changed the row (false: the lease was lost, or
    /// the request is no longer in the state the update expects).
    async fn changed_one(
        &self,
        q: sqlx::query::Query<'_, Any, sqlx::any::AnyArguments>,
        op: &'static str,
    ) -> Result<bool, StoreError> {
        let done = q.execute(&self.pool).await.map_err(query_err(op))?;
        Ok(done.rows_affected() == 1)
    }

    /// [`Store::changed_one`] for a change of the request's state: the event telling of
    /// it is written in the same transaction.
    async fn changed_state(
        &self,
        q: sqlx::query::Query<'_, Any, sqlx::any::AnyArguments>,
        op: &'static str,
        key: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_err(op))?;
        let done = q.execute(&mut *tx).await.map_err(query_err(op))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        self.request_events(&mut tx, &[key.to_string()], state, now_ms)
            .await?;
        tx.commit().await.map_err(query_err(op))?;
        Ok(true)
    }

    /// Writes a new request. Its key is unique (job + sequence), so a conflict means the
    /// same check was recorded twice, which the job's lease rules out: it is an error.
    pub(super) async fn insert_request(
        &self,
        tx: &mut Transaction<'static, Any>,
        r: &NewRequest,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO raas_outbox (idempotency_key, job_id, seq, cid, reason, copies_needed, \
             replacing, known_deals, follows, created_epoch, state, created_ms, next_attempt_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $11) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&r.idempotency_key)
        .bind(&r.job_id)
        .bind(r.seq)
        .bind(&r.cid)
        .bind(r.reason.as_str())
        .bind(i64::from(r.copies_needed))
        .bind(json_text("replaced deals", &r.replacing)?)
        .bind(json_text("known deals", &r.known_deals)?)
        .bind(r.follows.as_deref())
        .bind(r.created_epoch)
        .bind(now_ms)
        .execute(&mut **tx)
        .await
        .map_err(query_err("insert_request"))?
        .rows_affected();
        Ok(n == 1)
    }

    /// Applies a check's changes to its job's open requests. A `cancelled` update (the
    /// shortfall healed) only applies to a request nobody is delivering.
    pub(super) async fn update_request(
        &self,
        tx: &mut Transaction<'static, Any>,
        u: &RequestUpdate,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let fulfilled = json_text("fulfilling deals", &u.fulfilled_by)?;
        let q = match u.state {
            None => sqlx::query(
                "UPDATE raas_outbox SET fulfilled_by = $2 WHERE idempotency_key = $1 \
                 AND state IN ('pending', 'delivered', 'dead')",
            )
            .bind(&u.idempotency_key)
            .bind(fulfilled),
            Some(RequestState::Cancelled) => sqlx::query(
                "UPDATE raas_outbox SET fulfilled_by = $2, state = 'cancelled', closed_ms = $3, \
                 last_error = $4, lease_owner = NULL, lease_until_ms = NULL \
                 WHERE idempotency_key = $1 AND state = 'pending' \
                 AND (lease_until_ms IS NULL OR lease_until_ms < $3)",
            )
            .bind(&u.idempotency_key)
            .bind(fulfilled)
            .bind(now_ms)
            .bind(u.note.as_deref()),
            Some(state) => sqlx::query(
                "UPDATE raas_outbox SET fulfilled_by = $2, state = $5, closed_ms = $3, \
                 last_error = COALESCE($4, last_error) \
                 WHERE idempotency_key = $1 AND state IN ('pending', 'delivered', 'dead')",
            )
            .bind(&u.idempotency_key)
            .bind(fulfilled)
            .bind(now_ms)
            .bind(u.note.as_deref())
            .bind(state.as_str()),
        };
        let changed = q
            .execute(&mut **tx)
            .await
            .map_err(query_err("update_request"))?
            .rows_affected();
        if let (Some(state), 1) = (u.state, changed) {
            self.request_events(
                tx,
                std::slice::from_ref(&u.idempotency_key),
                state.as_str(),
                now_ms,
            )
            .await?;
        }
        Ok(())
    }

    /// The open requests (pending, delivered, dead) of these jobs, by job then sequence.
    pub async fn open_requests(&self, job_ids: &[String]) -> Result<Vec<OutboxRecord>, StoreError> {
        let mut out = Vec::new();
        // Bounded IN lists: portable, and well under every backend's parameter limit.
        for chunk in job_ids.chunks(500) {
            let sql = format!(
                "SELECT {OUTBOX_COLS} FROM raas_outbox WHERE job_id IN ({}) \
                 AND state IN ('pending', 'delivered', 'dead') ORDER BY job_id, seq",
                super::Marks::new(self.backend()).list(chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id);
            }
            let rows = q
                .fetch_all(&self.reads)
                .await
                .map_err(query_err("open_requests"))?;
            for r in &rows {
                out.push(request_from_row(r)?);
            }
        }
        Ok(out)
    }

    /// Leases the pending request due first to `owner` until `now_ms + lease_ms`, skipping
    /// `busy` keys (deliveries still running in this process) and requests leased by
    /// anyone else. Each request has its own lease.
    pub async fn claim_request(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        busy: &[String],
    ) -> Result<Option<OutboxRecord>, StoreError> {
        let lock = self.claim_lock();
        let busy = &busy[..busy.len().min(200)];
        let mut m = super::Marks::new(self.backend());
        let (lease_owner, until, due, expired) = (m.next(), m.next(), m.next(), m.next());
        let skip = if busy.is_empty() {
            String::new()
        } else {
            format!(" AND idempotency_key NOT IN ({})", m.list(busy.len()))
        };
        let sql = format!(
            "UPDATE raas_outbox SET lease_owner = {lease_owner}, lease_until_ms = {until}, \
             attempts = attempts + 1 \
             WHERE idempotency_key IN (\
               SELECT idempotency_key FROM raas_outbox WHERE state = 'pending' \
               AND next_attempt_ms <= {due} AND (lease_until_ms IS NULL OR lease_until_ms < {expired}){skip} \
               ORDER BY next_attempt_ms, created_ms LIMIT 1 {lock}) \
             RETURNING {OUTBOX_COLS}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(now_ms.saturating_add(lease_ms))
            .bind(now_ms)
            .bind(now_ms);
        for k in busy {
            q = q.bind(k);
        }
        let row = q
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("claim_request"))?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Extends `owner`'s lease of a request being delivered. False if the lease was lost.
    pub async fn extend_request_lease(
        &self,
        key: &str,
        owner: &str,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let q = sqlx::query(
            "UPDATE raas_outbox SET lease_until_ms = $3 \
             WHERE idempotency_key = $1 AND lease_owner = $2 AND state = 'pending'",
        )
        .bind(key)
        .bind(owner)
        .bind(until_ms);
        self.changed_one(q, "extend_request_lease").await
    }

    /// Records a hook's progress on a request `owner` is delivering (kept for the next
    /// attempt). False if the lease was lost.
    pub async fn checkpoint_request(
        &self,
        key: &str,
        owner: &str,
        checkpoint: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let q = sqlx::query(
            "UPDATE raas_outbox SET checkpoint = $3 \
             WHERE idempotency_key = $1 AND lease_owner = $2 AND state = 'pending'",
        )
        .bind(key)
        .bind(owner)
        .bind(checkpoint.to_string());
        self.changed_one(q, "checkpoint_request").await
    }

    /// Marks a request leased by `owner` delivered, with the hook's receipt; its copies are
    /// due by `fulfil_by_epoch`. False if the lease was lost (another node may hold it now)
    /// or the request was withdrawn: a node that lost the lease never acknowledges. A request
    /// the check fulfilled while it was being delivered keeps the receipt (true).
    pub async fn ack_request(
        &self,
        key: &str,
        owner: &str,
        node_id: &str,
        receipt: &serde_json::Value,
        fulfil_by_epoch: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.ack_where(key, owner, node_id, receipt, fulfil_by_epoch, now_ms, false)
            .await
    }

    /// Acknowledges a delivery that finished after it had timed out, unless another node
    /// holds the request now.
    pub async fn ack_late(
        &self,
        key: &str,
        owner: &str,
        node_id: &str,
        receipt: &serde_json::Value,
        fulfil_by_epoch: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.ack_where(key, owner, node_id, receipt, fulfil_by_epoch, now_ms, true)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn ack_where(
        &self,
        key: &str,
        owner: &str,
        node_id: &str,
        receipt: &serde_json::Value,
        fulfil_by_epoch: Option<i64>,
        now_ms: i64,
        late: bool,
    ) -> Result<bool, StoreError> {
        let lease = if late {
            "(lease_owner = $2 OR lease_owner IS NULL OR lease_until_ms < $3)"
        } else {
            "lease_owner = $2"
        };
        let sql = format!(
            "UPDATE raas_outbox SET state = 'delivered', delivered_ms = $3, delivered_by = $6, \
             receipt = $4, fulfil_by_epoch = $5, last_error = NULL, lease_owner = NULL, \
             lease_until_ms = NULL WHERE idempotency_key = $1 AND {lease} AND state = 'pending'"
        );
        let q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(owner)
            .bind(now_ms)
            .bind(receipt.to_string())
            .bind(fulfil_by_epoch)
            .bind(node_id);
        if self
            .changed_state(q, "ack_request", key, "delivered", now_ms)
            .await?
        {
            return Ok(true);
        }
        // The check saw the copies (the hook made them before it returned) and fulfilled the
        // request while this delivery was still answering: keep the hook's receipt anyway.
        let sql = format!(
            "UPDATE raas_outbox SET receipt = $4, delivered_ms = $3, delivered_by = $5,              lease_owner = NULL, lease_until_ms = NULL              WHERE idempotency_key = $1 AND {lease} AND state = 'fulfilled' AND receipt IS NULL"
        );
        let q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(owner)
            .bind(now_ms)
            .bind(receipt.to_string())
            .bind(node_id);
        self.changed_one(q, "ack_request").await
    }

    /// Records a failed delivery by `owner`: retried at `next_attempt_ms`, or parked as
    /// dead. False if the lease was lost.
    pub async fn fail_request(
        &self,
        key: &str,
        owner: &str,
        error: &str,
        next_attempt_ms: i64,
        dead: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let state = if dead { "dead" } else { "pending" };
        let q = sqlx::query(
            "UPDATE raas_outbox SET state = $3, next_attempt_ms = $4, last_error = $5, \
             lease_owner = NULL, lease_until_ms = NULL \
             WHERE idempotency_key = $1 AND lease_owner = $2 AND state = 'pending'",
        )
        .bind(key)
        .bind(owner)
        .bind(state)
        .bind(next_attempt_ms)
        .bind(error);
        if dead {
            return self
                .changed_state(q, "fail_request", key, "dead", now_ms)
                .await;
        }
        self.changed_one(q, "fail_request").await
    }

    /// Puts a dead request back to pending (after the operator fixed the hook).
    pub async fn retry_request(&self, key: &str, now_ms: i64) -> Result<bool, StoreError> {
        let q = sqlx::query(
            "UPDATE raas_outbox SET state = 'pending', attempts = 0, next_attempt_ms = $2 \
             WHERE idempotency_key = $1 AND state = 'dead'",
        )
        .bind(key)
        .bind(now_ms);
        self.changed_state(q, "retry_request", key, "pending", now_ms)
            .await
    }

    /// The request with idempotency key `key`.
    pub async fn get_request(&self, key: &str) -> Result<Option<OutboxRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLS} FROM raas_outbox WHERE idempotency_key = $1"
        )))
        .bind(key)
        .fetch_optional(&self.reads)
        .await
        .map_err(query_err("get_request"))?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Requests, optionally of one job and/or in one state: a job's in the order it made
    /// them, otherwise oldest first (at most `limit`).
    pub async fn list_requests(
        &self,
        job_id: Option<&str>,
        state: Option<RequestState>,
        limit: u32,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        let (sql, binds) = requests_sql(job_id, state, limit);
        let rows = Bind::all(sqlx::query(sqlx::AssertSqlSafe(sql)), binds)
            .fetch_all(&self.reads)
            .await
            .map_err(query_err("list_requests"))?;
        rows.iter().map(request_from_row).collect()
    }
}

/// The statement listing requests of `job_id` and/or in `state`, and its binds (only the
/// filters given: see [`super::where_all`]; with `job_id IS NULL OR …` every job's request
/// history read the whole outbox).
pub(super) fn requests_sql(
    job_id: Option<&str>,
    state: Option<RequestState>,
    limit: u32,
) -> (String, Vec<Bind<'_>>) {
    let mut conds = Vec::new();
    let mut binds = Vec::new();
    for (col, v) in [("job_id", job_id), ("state", state.map(|s| s.as_str()))] {
        if let Some(v) = v {
            binds.push(Bind::Text(v));
            conds.push(format!("{col} = ${}", binds.len()));
        }
    }
    let sql = format!(
        "SELECT {OUTBOX_COLS} FROM raas_outbox{} ORDER BY created_ms, job_id, seq {}",
        super::where_all(&conds),
        super::limit_sql(i64::from(limit.clamp(1, 100_000)))
    );
    (sql, binds)
}

#[cfg(test)]
mod tests {
    use super::requests_sql;
    use crate::store::{query_plan, RequestState, Store};

    /// A job's requests are read through an index on the job id, with or without a state;
    /// a state alone goes through the state's index.
    #[tokio::test]
    async fn a_jobs_requests_are_read_through_its_index() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        for state in [None, Some(RequestState::Pending)] {
            let (sql, binds) = requests_sql(Some("job_1"), state, 100);
            let p = query_plan(&store, &sql, binds).await;
            assert!(p.contains("USING INDEX raas_outbox_job"), "{state:?}: {p}");
        }
        let (sql, binds) = requests_sql(None, Some(RequestState::Dead), 100);
        let p = query_plan(&store, &sql, binds).await;
        assert!(p.contains("USING INDEX raas_outbox_due (state=?)"), "{p}");
    }
}

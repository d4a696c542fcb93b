//! The deal-request outbox: written with the verdict that causes it, then delivered under a
//! lease until the hook acknowledges it. One row per idempotency key, so a shortfall seen by
//! many checks (or many nodes) is one request.

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use super::jobs::{col, to_json as json_text};
use super::records::{DealRequest, OutboxRecord, RequestState};
use super::{query_err, Store, StoreError};
use crate::jobs::ShortfallReason;

const OUTBOX_COLS: &str = "idempotency_key, job_id, cid, reason, copies_needed, replacing, state, \
    created_ms, attempts, next_attempt_ms, last_error, delivered_ms, delivered_by, receipt";

fn corrupt(what: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        reason: reason.into(),
    }
}

fn request_from_row(r: &AnyRow) -> Result<OutboxRecord, StoreError> {
    let reason: String = col(r, "reason")?;
    let state: String = col(r, "state")?;
    let replacing: String = col(r, "replacing")?;
    let copies: i64 = col(r, "copies_needed")?;
    let receipt: Option<String> = col(r, "receipt")?;
    Ok(OutboxRecord {
        request: DealRequest {
            job_id: col(r, "job_id")?,
            cid: col(r, "cid")?,
            reason: ShortfallReason::parse(&reason)
                .ok_or_else(|| corrupt("request reason", reason.clone()))?,
            copies_needed: u32::try_from(copies)
                .map_err(|_| corrupt("copies needed", copies.to_string()))?,
            replacing: serde_json::from_str(&replacing)
                .map_err(|e| corrupt("replaced deals", e.to_string()))?,
            idempotency_key: col(r, "idempotency_key")?,
        },
        state: RequestState::parse(&state).ok_or_else(|| corrupt("request state", state))?,
        created_ms: col(r, "created_ms")?,
        attempts: col(r, "attempts")?,
        next_attempt_ms: col(r, "next_attempt_ms")?,
        last_error: col(r, "last_error")?,
        delivered_ms: col(r, "delivered_ms")?,
        delivered_by: col(r, "delivered_by")?,
        receipt: receipt
            .map(|s| {
                serde_json::from_str::<serde_json::Value>(&s)
                    .map_err(|e| corrupt("receipt", e.to_string()))
            })
            .transpose()?,
    })
}

impl Store {
    /// Writes `r` unless a request with its key exists. Returns whether it was new.
    pub(super) async fn insert_request(
        &self,
        tx: &mut Transaction<'static, Any>,
        r: &DealRequest,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO raas_outbox (idempotency_key, job_id, cid, reason, copies_needed, \
             replacing, state, created_ms, next_attempt_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&r.idempotency_key)
        .bind(&r.job_id)
        .bind(&r.cid)
        .bind(r.reason.as_str())
        .bind(i64::from(r.copies_needed))
        .bind(json_text("replaced deals", &r.replacing)?)
        .bind(now_ms)
        .execute(&mut **tx)
        .await
        .map_err(query_err("insert_request"))?
        .rows_affected();
        Ok(n == 1)
    }

    /// Leases up to `limit` pending requests due for delivery to `node_id`, oldest first.
    pub async fn claim_requests(
        &self,
        node_id: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        let lock = self.claim_lock();
        let sql = format!(
            "UPDATE raas_outbox SET lease_owner = $1, lease_until_ms = $2, attempts = attempts + 1 \
             WHERE idempotency_key IN (\
               SELECT idempotency_key FROM raas_outbox WHERE state = 'pending' \
               AND next_attempt_ms <= $3 AND (lease_until_ms IS NULL OR lease_until_ms < $3) \
               ORDER BY next_attempt_ms, created_ms LIMIT $4 {lock}) \
             RETURNING {OUTBOX_COLS}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(node_id)
            .bind(now_ms + lease_ms)
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("claim_requests"))?;
        let mut out = rows
            .iter()
            .map(request_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|r| (r.next_attempt_ms, r.created_ms));
        Ok(out)
    }

    /// Marks a request leased by `node_id` delivered, with the hook's receipt. False if the
    /// lease was lost (another node now holds it) or the request was withdrawn.
    pub async fn ack_request(
        &self,
        key: &str,
        node_id: &str,
        receipt: &serde_json::Value,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE raas_outbox SET state = 'delivered', delivered_ms = $3, delivered_by = $2, \
             receipt = $4, last_error = NULL, lease_owner = NULL, lease_until_ms = NULL \
             WHERE idempotency_key = $1 AND lease_owner = $2 AND state = 'pending'",
        )
        .bind(key)
        .bind(node_id)
        .bind(now_ms)
        .bind(receipt.to_string())
        .execute(&self.pool)
        .await
        .map_err(query_err("ack_request"))?
        .rows_affected();
        Ok(n == 1)
    }

    /// Records a failed delivery: retried at `next_attempt_ms`, or parked as dead.
    pub async fn fail_request(
        &self,
        key: &str,
        node_id: &str,
        error: &str,
        next_attempt_ms: i64,
        dead: bool,
    ) -> Result<bool, StoreError> {
        let state = if dead { "dead" } else { "pending" };
        let n = sqlx::query(
            "UPDATE raas_outbox SET state = $3, next_attempt_ms = $4, last_error = $5, \
             lease_owner = NULL, lease_until_ms = NULL \
             WHERE idempotency_key = $1 AND lease_owner = $2 AND state = 'pending'",
        )
        .bind(key)
        .bind(node_id)
        .bind(state)
        .bind(next_attempt_ms)
        .bind(error)
        .execute(&self.pool)
        .await
        .map_err(query_err("fail_request"))?
        .rows_affected();
        Ok(n == 1)
    }

    /// Puts a dead request back to pending (after the operator fixed the hook).
    pub async fn retry_request(&self, key: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE raas_outbox SET state = 'pending', attempts = 0, next_attempt_ms = $2 \
             WHERE idempotency_key = $1 AND state = 'dead'",
        )
        .bind(key)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("retry_request"))?
        .rows_affected();
        Ok(n == 1)
    }

    /// The request with idempotency key `key`.
    pub async fn get_request(&self, key: &str) -> Result<Option<OutboxRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLS} FROM raas_outbox WHERE idempotency_key = $1"
        )))
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("get_request"))?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Requests, optionally of one job and/or in one state, oldest first (at most `limit`).
    pub async fn list_requests(
        &self,
        job_id: Option<&str>,
        state: Option<RequestState>,
        limit: u32,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLS} FROM raas_outbox WHERE ($1 IS NULL OR job_id = $1) \
             AND ($2 IS NULL OR state = $2) ORDER BY created_ms, idempotency_key LIMIT $3"
        )))
        .bind(job_id)
        .bind(state.map(|s| s.as_str()))
        .bind(i64::from(limit.clamp(1, 100_000)))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list_requests"))?;
        rows.iter().map(request_from_row).collect()
    }
}

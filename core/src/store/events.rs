//! The event log: verdict changes and deal-request state changes, numbered in commit
//! order, kept for replay (`GET /events` resumes from `Last-Event-ID`). Written in the
//! same transaction as the change it tells of, so an event is never lost or invented.

use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use super::jobs::col;
use super::{query_err, Store, StoreError};

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The job's tenant (absent for the operator's jobs).
    pub tenant: Option<String>,
    /// The job.
    pub job_id: String,
    /// `verdict` or `request`.
    pub kind: &'static str,
    /// What happened (camelCase JSON).
    pub data: serde_json::Value,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
pub struct EventRecord {
    /// Its number: increasing in commit order (the SSE `id`).
    pub seq: i64,
    /// The job's tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The job.
    pub job_id: String,
    /// `verdict` or `request`.
    pub kind: String,
    /// What happened.
    pub data: serde_json::Value,
    /// When (ms since the Unix epoch).
    pub created_ms: i64,
}

/// Events per insert statement (6 values each).
const EVENT_CHUNK: usize = 500;

impl Store {
    /// Appends events inside `tx`. Their numbers come from one counter row: updating it
    /// locks it until `tx` ends, so numbers are handed out in commit order on every backend.
    pub(super) async fn append_events(
        &self,
        tx: &mut Transaction<'static, Any>,
        events: &[NewEvent],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
        let row = sqlx::query(
            "UPDATE raas_cursors SET value = value + $1, updated_ms = $2 \
             WHERE name = 'raas.events.seq' RETURNING value",
        )
        .bind(n)
        .bind(now_ms)
        .fetch_one(&mut **tx)
        .await
        .map_err(query_err("append_events"))?;
        let last: i64 = col(&row, "value")?;
        let mut seq = last - n;
        for chunk in events.chunks(EVENT_CHUNK) {
            let sql = format!(
                "INSERT INTO raas_events (seq, tenant, job_id, kind, data, created_ms) VALUES {}",
                super::Marks::new(self.backend()).rows(chunk.len(), 6)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                seq += 1;
                q = q
                    .bind(seq)
                    .bind(e.tenant.as_deref())
                    .bind(e.job_id.as_str())
                    .bind(e.kind)
                    .bind(e.data.to_string())
                    .bind(now_ms);
            }
            q.execute(&mut **tx)
                .await
                .map_err(query_err("append_events"))?;
        }
        Ok(())
    }

    /// Appends a `request` event for each of `keys` now in `state`, with its job, CID and
    /// tenant read inside `tx`.
    pub(super) async fn request_events(
        &self,
        tx: &mut Transaction<'static, Any>,
        keys: &[String],
        state: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut events = Vec::with_capacity(keys.len());
        for key in keys {
            let row = sqlx::query(
                "SELECT o.job_id, o.cid, o.seq, j.tenant FROM raas_outbox o                  LEFT JOIN raas_jobs j ON j.job_id = o.job_id WHERE o.idempotency_key = $1",
            )
            .bind(key)
            .fetch_optional(&mut **tx)
            .await
            .map_err(query_err("request_events"))?;
            if let Some(r) = row {
                let job_id: String = col(&r, "job_id")?;
                let cid: String = col(&r, "cid")?;
                let seq: i64 = col(&r, "seq")?;
                events.push(NewEvent {
                    tenant: col(&r, "tenant")?,
                    data: serde_json::json!({
                        "key": key, "jobId": job_id, "cid": cid, "seq": seq, "state": state,
                        "atMs": now_ms,
                    }),
                    job_id,
                    kind: "request",
                });
            }
        }
        self.append_events(tx, &events, now_ms).await
    }

    /// Events after `after`, oldest first, at most `limit`; only `tenant`'s when given.
    pub async fn events_after(
        &self,
        after: i64,
        tenant: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT seq, tenant, job_id, kind, data, created_ms FROM raas_events \
             WHERE seq > $1 AND ($2 IS NULL OR tenant = $2) ORDER BY seq {}",
            super::limit_sql(i64::from(limit.clamp(1, 10_000)))
        )))
        .bind(after)
        .bind(tenant)
        .fetch_all(&self.reads)
        .await
        .map_err(query_err("events_after"))?;
        rows.iter()
            .map(|r| {
                let data: String = col(r, "data")?;
                Ok(EventRecord {
                    seq: col(r, "seq")?,
                    tenant: col(r, "tenant")?,
                    job_id: col(r, "job_id")?,
                    kind: col(r, "kind")?,
                    data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt {
                        what: "event",
                        reason: e.to_string(),
                    })?,
                    created_ms: col(r, "created_ms")?,
                })
            })
            .collect()
    }

    /// The number of the last event committed (0 before any).
    pub async fn last_event_seq(&self) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT value FROM raas_cursors WHERE name = 'raas.events.seq'")
            .fetch_optional(&self.reads)
            .await
            .map_err(query_err("last_event_seq"))?;
        match r {
            Some(r) => r
                .try_get::<i64, _>("value")
                .map_err(query_err("last_event_seq")),
            None => Ok(0),
        }
    }

    /// Deletes events older than `before_ms`.
    pub async fn prune_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM raas_events WHERE created_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map_err(query_err("prune_events"))?;
        Ok(r.rows_affected())
    }
}

//! What on-chain intake keeps: the events it skipped (malformed, out of range, over the
//! cap), so an operator can see them; and the lookup that tells the node's own
//! `submitRaaS` transactions from a client's.

use serde::Serialize;

use super::jobs::col;
use super::{query_err, Store, StoreError};

/// An intake event that was recorded and skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SkippedEvent {
    /// Transaction hash.
    pub tx_hash: String,
    /// Position of the log in its block.
    pub log_index: u64,
    /// Block.
    pub block: u64,
    /// Why it was skipped: `CODE: message` (`MALFORMED_EVENT`, `INVALID_CID`, `INVALID_JOB`,
    /// `QUOTA_EXCEEDED`).
    pub reason: String,
    /// What the event said, when it decoded.
    #[cfg_attr(feature = "ts", ts(type = "unknown | null"))]
    pub data: Option<serde_json::Value>,
    /// When it was recorded.
    pub created_ms: i64,
}

impl Store {
    /// Records a skipped event (once: seeing it again after a restart changes nothing).
    pub async fn record_skipped(&self, e: &SkippedEvent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO raas_intake_skipped (tx_hash, log_index, block, reason, data, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tx_hash, log_index) DO NOTHING",
        )
        .bind(&e.tx_hash)
        .bind(i64::try_from(e.log_index).unwrap_or(i64::MAX))
        .bind(i64::try_from(e.block).unwrap_or(i64::MAX))
        .bind(&e.reason)
        .bind(e.data.as_ref().map(|d| d.to_string()))
        .bind(e.created_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("record_skipped"))?;
        Ok(())
    }

    /// The skipped events, newest first.
    pub async fn skipped_events(&self, limit: u32) -> Result<Vec<SkippedEvent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT tx_hash, log_index, block, reason, data, created_ms FROM raas_intake_skipped \
             ORDER BY block DESC, log_index DESC {}",
            super::limit_sql(i64::from(limit.clamp(1, 1000)))
        )))
        .fetch_all(&self.reads)
        .await
        .map_err(query_err("skipped_events"))?;
        rows.iter()
            .map(|r| {
                Ok(SkippedEvent {
                    tx_hash: col(r, "tx_hash")?,
                    log_index: u64::try_from(col::<i64>(r, "log_index")?).unwrap_or(0),
                    block: u64::try_from(col::<i64>(r, "block")?).unwrap_or(0),
                    reason: col(r, "reason")?,
                    data: col::<Option<String>>(r, "data")?
                        .and_then(|d| serde_json::from_str(&d).ok()),
                    created_ms: col(r, "created_ms")?,
                })
            })
            .collect()
    }

    /// Whether a transaction is one this node's `submitRaaS` hook sent: its hash is in a
    /// deal request's checkpoint (written before the broadcast) or receipt.
    pub async fn is_own_transaction(&self, tx_hash: &str) -> Result<bool, StoreError> {
        // The hash is checked to be hex first: nothing in it can act as a LIKE pattern.
        let h = tx_hash.to_ascii_lowercase();
        if !(h.len() == 66 && h.starts_with("0x") && h[2..].bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Ok(false);
        }
        let pattern = format!("%\"txHash\":\"{h}\"%");
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM raas_outbox WHERE checkpoint LIKE $1 OR receipt LIKE $1",
        )
        .bind(pattern)
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("is_own_transaction"))?;
        Ok(col::<i64>(&row, "n")? > 0)
    }
}

//! The compact key jobs are found by CID through. A CID's text is about 60 bytes and
//! random (it ends in a hash), so the index on `(cid, job_id)` was the largest of the job
//! table's indexes, and every registration wrote one of its pages at random: most of a
//! batch registration's time. The index on `(cid_key, job_id)` holds an 8-byte key of the
//! CID instead, and is less than half the size. Reads match the key through the index,
//! then the CID itself, since the keys of two CIDs may collide. The job id stays in the
//! index because it gives a CID's jobs in page order without a sort: without it,
//! `GET /status/{cid}` lost a fifth of its rate.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{query_err, Store, StoreError};

/// The key of a normalised CID: the first 8 bytes of the SHA-256 of its text. Stored, so it
/// must never change.
pub(super) fn cid_key(cid: &str) -> i64 {
    let d = Sha256::digest(cid.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

/// Rows keyed per transaction by the backfill.
const BACKFILL_BATCH: i64 = 1000;

impl Store {
    /// Gives every job stored before the key existed (migration 5) its key. Runs when the
    /// store opens, before anything reads by CID; a no-op once done. A node of an older
    /// version cannot write keyless rows afterwards: its migrator refuses a store with a
    /// migration it does not know.
    pub(super) async fn backfill_cid_keys(&self) -> Result<(), StoreError> {
        loop {
            let mut tx = self
                .pool
                .begin()
                .await
                .map_err(query_err("backfill_cid_keys"))?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT job_id, cid FROM raas_jobs WHERE cid_key IS NULL {}",
                super::limit_sql(BACKFILL_BATCH)
            )))
            .fetch_all(&mut *tx)
            .await
            .map_err(query_err("backfill_cid_keys"))?;
            if rows.is_empty() {
                return Ok(());
            }
            for r in &rows {
                let (id, cid): (String, String) = (
                    r.try_get("job_id")
                        .map_err(query_err("backfill_cid_keys"))?,
                    r.try_get("cid").map_err(query_err("backfill_cid_keys"))?,
                );
                sqlx::query("UPDATE raas_jobs SET cid_key = $1 WHERE job_id = $2")
                    .bind(cid_key(&cid))
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("backfill_cid_keys"))?;
            }
            tx.commit().await.map_err(query_err("backfill_cid_keys"))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cid_key;
    use crate::store::jobs::list_sql;
    use crate::store::{query_plan, CheckStatus, JobFilter, JobLifecycle, Store};

    async fn plan(store: &Store, filter: &JobFilter) -> String {
        let (sql, binds) = list_sql(filter);
        query_plan(store, &sql, binds).await
    }

    /// A read by CID goes through the CID key's index whatever else is filtered on: with
    /// the tenant index (which also gives the order) SQLite would scan all of a tenant's
    /// jobs for each status read.
    #[tokio::test]
    async fn reads_by_cid_use_the_key_index_alone() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let cid = Some("bafkreia".to_string());
        let tenant = Some("t1".to_string());
        let after = Some("job_0".to_string());
        let filters = [
            JobFilter {
                cid: cid.clone(),
                ..Default::default()
            },
            JobFilter {
                cid: cid.clone(),
                tenant: tenant.clone(),
                ..Default::default()
            },
            JobFilter {
                cid: cid.clone(),
                tenant: tenant.clone(),
                after: after.clone(),
                ..Default::default()
            },
            JobFilter {
                cid: cid.clone(),
                state: Some(JobLifecycle::Active),
                status: Some(CheckStatus::Satisfied),
                tenant: tenant.clone(),
                after: after.clone(),
                limit: Some(5),
            },
        ];
        for f in &filters {
            let p = plan(&store, f).await;
            assert!(
                p.contains("USING INDEX raas_jobs_cid_key (cid_key=?")
                    && !p.contains("TEMP B-TREE"),
                "{f:?}: {p}"
            );
        }
        // Without a CID the tenant index still serves a tenant's listing.
        let p = plan(
            &store,
            &JobFilter {
                tenant,
                ..Default::default()
            },
        )
        .await;
        assert!(p.contains("raas_jobs_tenant"), "{p}");
    }

    /// Stored keys must match what later versions compute: pinned to one value.
    #[test]
    fn key_is_the_first_eight_bytes_of_the_sha256_of_the_text() {
        // sha256("abc") = ba7816bf8f01cfea…
        assert_eq!(
            cid_key("abc"),
            i64::from_be_bytes(*b"\xba\x78\x16\xbf\x8f\x01\xcf\xea")
        );
        assert_ne!(cid_key("bafkreia"), cid_key("bafkreib"));
    }
}

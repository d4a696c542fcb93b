#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store on both backends: the embedded SQLite file and a real PostgreSQL
//! (`RAAS_TEST_POSTGRES_URL`, started by `scripts/test-all.sh`; without it the PostgreSQL
//! half is skipped, unless `RAAS_REQUIRE_POSTGRES=1` as in CI).

mod common;

use raas_core::jobs::{JobLimits, JobSpec, ShortfallReason};
use raas_core::store::{
    CheckOutcome, CheckWrite, DealRequest, JobFilter, JobState, JobStatus, RequestState, Store,
};
use serde_json::json;

use common::stores::{each_store, temp_sqlite};

const CID_V0: &str = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n";

fn spec(cid: &str, target: u32) -> JobSpec {
    JobSpec::from_json(
        json!({"cid": cid, "replicationTarget": target}),
        &JobLimits::default(),
    )
    .unwrap()
}

fn cid(i: usize) -> String {
    raas_core::cid::compute_cids(format!("store test {i}").as_bytes())
        .cid
        .to_string()
}

fn satisfied(job_id: &str, next_due_ms: i64) -> CheckWrite {
    CheckWrite {
        job_id: job_id.into(),
        head: Some(100),
        status: JobStatus::Satisfied,
        state: JobState::Active,
        next_due_ms,
        due_epoch: Some(5_000),
        failures: 0,
        error: None,
        verdict: Some(json!({"head": 100, "healthy": [1, 2]})),
        shortfall_key: None,
        request: None,
    }
}

fn short(job_id: &str, cid: &str, key: &str, next_due_ms: i64) -> CheckWrite {
    CheckWrite {
        status: JobStatus::Short,
        shortfall_key: Some(key.into()),
        verdict: Some(json!({"head": 100, "healthy": [1]})),
        request: Some(DealRequest {
            job_id: job_id.into(),
            cid: cid.into(),
            reason: ShortfallReason::Replication,
            copies_needed: 1,
            replacing: vec![],
            idempotency_key: key.into(),
        }),
        ..satisfied(job_id, next_due_ms)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_is_idempotent_and_jobs_list_cancel_and_revive() {
    each_store(|store: Store| async move {
        let a = spec(CID_V0, 2);
        let (job, created) = store.register_job(&a, 1_000).await.unwrap();
        assert!(created);
        assert_eq!(job.state, JobState::Active);
        assert_eq!(job.next_due_ms, 1_000, "due at once");
        // The same job with the CID in another form: the same row.
        let b = spec(&a.cid, 2);
        let (again, created) = store.register_job(&b, 2_000).await.unwrap();
        assert!(!created);
        assert_eq!(again.job_id, job.job_id);
        assert_eq!(again.created_ms, 1_000);

        for i in 0..5 {
            store.register_job(&spec(&cid(i), 1), 1_000).await.unwrap();
        }
        let all = store.list_jobs(&JobFilter::default()).await.unwrap();
        assert_eq!(all.len(), 6);
        let page1 = store
            .list_jobs(&JobFilter {
                limit: Some(4),
                ..Default::default()
            })
            .await
            .unwrap();
        let page2 = store
            .list_jobs(&JobFilter {
                limit: Some(4),
                after: Some(page1.last().unwrap().job_id.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page1.len() + page2.len(), 6);
        assert!(page1
            .iter()
            .all(|j| page2.iter().all(|k| k.job_id > j.job_id)));
        let by_cid = store
            .list_jobs(&JobFilter {
                cid: Some(a.cid.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_cid.len(), 1);
        assert_eq!(by_cid[0].job_id, job.job_id);

        let cancelled = store.cancel_job(&job.job_id, 3_000).await.unwrap().unwrap();
        assert_eq!(cancelled.state, JobState::Cancelled);
        assert!(store.cancel_job("job_nope", 3_000).await.unwrap().is_none());
        let active = store
            .list_jobs(&JobFilter {
                state: Some(JobState::Active),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(active.len(), 5);
        assert!(store
            .claim_due_jobs("n1", 10_000, 60_000, 100)
            .await
            .unwrap()
            .iter()
            .all(|j| j.job_id != job.job_id));
        // Registering it again revives it, due now.
        let (revived, created) = store.register_job(&a, 20_000).await.unwrap();
        assert!(!created);
        assert_eq!(revived.state, JobState::Active);
        assert_eq!(revived.next_due_ms, 20_000);
        assert!(store.get_job("job_nope").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_give_each_due_job_to_one_node_and_expire() {
    each_store(|store: Store| async move {
        for i in 0..10 {
            store
                .register_job(&spec(&cid(i), 1), 1_000 + i as i64)
                .await
                .unwrap();
        }
        let a = store.claim_due_jobs("a", 5_000, 1_000, 4).await.unwrap();
        assert_eq!(a.len(), 4);
        // Earliest due first.
        let due: Vec<i64> = a.iter().map(|j| j.next_due_ms).collect();
        assert_eq!(due, vec![1_000, 1_001, 1_002, 1_003]);
        let b = store.claim_due_jobs("b", 5_000, 1_000, 100).await.unwrap();
        assert_eq!(b.len(), 6, "b gets the rest, none of a's");
        assert!(store
            .claim_due_jobs("c", 5_500, 1_000, 100)
            .await
            .unwrap()
            .is_empty());

        // a dies; after its lease ends, c takes its jobs over and a cannot record.
        let c = store.claim_due_jobs("c", 6_001, 1_000, 100).await.unwrap();
        assert_eq!(c.len(), 10, "every lease expired at 6000");
        let lost = store
            .record_checks("a", &[satisfied(&a[0].job_id, 99_000)], 6_100)
            .await
            .unwrap();
        assert_eq!(lost.outcomes, vec![CheckOutcome::LeaseLost]);
        let ok = store
            .record_checks("c", &[satisfied(&a[0].job_id, 99_000)], 6_100)
            .await
            .unwrap();
        assert_eq!(
            ok.outcomes,
            vec![CheckOutcome::Recorded {
                request_created: false
            }]
        );
        let job = store.get_job(&a[0].job_id).await.unwrap().unwrap();
        assert_eq!(job.status, Some(JobStatus::Satisfied));
        assert_eq!(job.checks, 1);
        assert_eq!(job.next_due_ms, 99_000);
        assert_eq!(job.lease_owner, None, "released");
        let history = store.job_history(&a[0].job_id, 10).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].node_id, "c");
        assert_eq!(
            store.checks_since(0).await.unwrap(),
            vec![(a[0].job_id.clone(), "c".to_string())]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shortfall_is_one_request_and_delivery_is_acknowledged_once() {
    each_store(|store: Store| async move {
        let c = cid(1);
        let (job, _) = store.register_job(&spec(&c, 2), 0).await.unwrap();
        let id = job.job_id.clone();
        store.claim_due_jobs("n", 0, 1_000, 10).await.unwrap();
        let r = store
            .record_checks("n", &[short(&id, &c, "k1", 100)], 10)
            .await
            .unwrap();
        assert_eq!(
            r.outcomes,
            vec![CheckOutcome::Recorded {
                request_created: true
            }]
        );
        // The same shortfall seen again: no second request.
        store.claim_due_jobs("n", 100, 1_000, 10).await.unwrap();
        let r = store
            .record_checks("n", &[short(&id, &c, "k1", 200)], 110)
            .await
            .unwrap();
        assert_eq!(
            r.outcomes,
            vec![CheckOutcome::Recorded {
                request_created: false
            }]
        );
        assert_eq!(store.list_requests(None, None, 100).await.unwrap().len(), 1);

        // A failed check keeps the verdict and counts failures.
        store.claim_due_jobs("n", 200, 1_000, 10).await.unwrap();
        let fail = CheckWrite {
            head: None,
            status: JobStatus::Error,
            failures: 1,
            error: Some("RPC_TIMEOUT: slow".into()),
            verdict: None,
            shortfall_key: None,
            request: None,
            ..satisfied(&id, 5_000)
        };
        store.record_checks("n", &[fail], 210).await.unwrap();
        let j = store.get_job(&id).await.unwrap().unwrap();
        assert_eq!(j.status, Some(JobStatus::Error));
        assert_eq!(j.failures, 1);
        assert_eq!(j.last_error.as_deref(), Some("RPC_TIMEOUT: slow"));
        assert_eq!(j.shortfall_key.as_deref(), Some("k1"), "verdict kept");
        assert_eq!(j.verdict.unwrap()["healthy"], json!([1]));
        assert_eq!(store.job_history(&id, 10).await.unwrap().len(), 3);

        // Delivery: claimed by one node, failed, retried, acknowledged once.
        let got = store.claim_requests("x", 1_000, 500, 10).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].request.copies_needed, 1);
        assert_eq!(got[0].attempts, 1);
        assert!(store
            .claim_requests("y", 1_100, 500, 10)
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .fail_request("k1", "x", "HOOK_FAILED: 503", 2_000, false)
            .await
            .unwrap());
        assert!(store
            .claim_requests("y", 1_900, 500, 10)
            .await
            .unwrap()
            .is_empty());
        let again = store.claim_requests("y", 2_000, 500, 10).await.unwrap();
        assert_eq!(again[0].attempts, 2);
        assert_eq!(again[0].last_error.as_deref(), Some("HOOK_FAILED: 503"));
        assert!(
            !store
                .ack_request("k1", "x", &json!({}), 2_100)
                .await
                .unwrap(),
            "x lost the lease"
        );
        assert!(store
            .ack_request("k1", "y", &json!({"requestId": 7}), 2_100)
            .await
            .unwrap());
        let done = store.get_request("k1").await.unwrap().unwrap();
        assert_eq!(done.state, RequestState::Delivered);
        assert_eq!(done.delivered_by.as_deref(), Some("y"));
        assert_eq!(done.receipt, Some(json!({"requestId": 7})));
        assert!(store
            .claim_requests("y", 99_999, 500, 10)
            .await
            .unwrap()
            .is_empty());

        // Dead letters, and the operator's retry.
        store.claim_due_jobs("n", 5_000, 1_000, 10).await.unwrap();
        store
            .record_checks("n", &[short(&id, &c, "k2", 9_000)], 5_010)
            .await
            .unwrap();
        store.claim_requests("x", 6_000, 500, 10).await.unwrap();
        store
            .fail_request("k2", "x", "gone", 0, true)
            .await
            .unwrap();
        let stats = store.stats().await.unwrap();
        assert_eq!((stats.requests_dead, stats.requests_delivered), (1, 1));
        assert!(store.retry_request("k2", 7_000).await.unwrap());
        // Cancelling the job withdraws what is undelivered.
        store.cancel_job(&id, 7_500).await.unwrap();
        assert_eq!(
            store.get_request("k2").await.unwrap().unwrap().state,
            RequestState::Cancelled
        );
        assert_eq!(
            store.get_request("k1").await.unwrap().unwrap().state,
            RequestState::Delivered
        );
        assert!(
            store
                .claim_due_jobs("n", 99_000, 1, 10)
                .await
                .unwrap()
                .is_empty(),
            "cancelled"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cursors_persist_and_pruning_keeps_verdicts() {
    each_store(|store: Store| async move {
        assert_eq!(store.cursor("events").await.unwrap(), None);
        store.set_cursor("events", 10, 1).await.unwrap();
        store.set_cursor("events", 42, 2).await.unwrap();
        assert_eq!(store.cursor("events").await.unwrap(), Some(42));
        let (job, _) = store.register_job(&spec(&cid(3), 1), 0).await.unwrap();
        store.claim_due_jobs("n", 0, 10, 1).await.unwrap();
        store
            .record_checks("n", &[satisfied(&job.job_id, 50)], 5)
            .await
            .unwrap();
        assert_eq!(store.prune_checks(6).await.unwrap(), 1);
        let j = store.get_job(&job.job_id).await.unwrap().unwrap();
        assert_eq!(j.status, Some(JobStatus::Satisfied));
        assert!(store.job_history(&job.job_id, 5).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sqlite_file_survives_reopening_and_bad_urls_are_typed() {
    let (url, _dir) = temp_sqlite();
    let store = Store::open(&url).await.unwrap();
    let (job, _) = store.register_job(&spec(CID_V0, 3), 0).await.unwrap();
    store.set_cursor("events", 9, 0).await.unwrap();
    store.close().await;
    let again = Store::open(&url).await.unwrap();
    assert_eq!(
        again.get_job(&job.job_id).await.unwrap().unwrap().spec,
        spec(CID_V0, 3)
    );
    assert_eq!(again.cursor("events").await.unwrap(), Some(9));

    use raas_core::ErrorCode;
    for bad in ["mysql://x", "sqlite:", ""] {
        assert_eq!(
            Store::open(bad).await.unwrap_err().code(),
            "INVALID_STORE_URL"
        );
    }
    let err = Store::open("postgres://raas:s3cret@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "STORE_UNAVAILABLE");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

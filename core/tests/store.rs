#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store on both backends: the embedded SQLite file and a real PostgreSQL
//! (`RAAS_TEST_POSTGRES_URL`, started by `scripts/test-all.sh`). Each case is two tests;
//! the PostgreSQL one is `#[ignore]`d, so without a database it is reported as skipped
//! (`scripts/test-all.sh` runs it with `--include-ignored`).

mod common;

use raas_core::jobs::{JobLimits, JobSpec, ShortfallReason};
use raas_core::store::{
    CheckFailure, CheckStatus as JobStatus, CheckWrite, JobFilter, JobLifecycle as JobState,
    NewRequest, RecordOutcome as CheckOutcome, RequestState, RequestUpdate, Store,
};
use serde_json::json;

use common::stores::{fresh_postgres, temp_sqlite};

/// A case on SQLite, and on PostgreSQL (ignored without one). The case is given the opened
/// store, or with `, url` the store's URL (to open it itself).
macro_rules! on_both {
    ($case:ident) => {
        on_both!($case, open);
    };
    ($case:ident, $given:ident) => {
        mod $case {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                let (url, _dir) = super::temp_sqlite();
                super::$case(super::$given(url).await).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            #[ignore = "needs PostgreSQL: RAAS_TEST_POSTGRES_URL (scripts/test-all.sh runs it)"]
            async fn postgres() {
                let url = super::fresh_postgres()
                    .await
                    .expect("RAAS_TEST_POSTGRES_URL");
                super::$case(super::$given(url).await).await;
            }
        }
    };
}

async fn open(url: String) -> Store {
    Store::open(&url).await.unwrap()
}

async fn url(url: String) -> String {
    url
}

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
        target: Some(2),
        memory: None,
        new_request: None,
        request_updates: vec![],
        event: None,
    }
}

fn short(job_id: &str, cid: &str, key: &str, seq: i64, next_due_ms: i64) -> CheckWrite {
    CheckWrite {
        status: JobStatus::Short,
        verdict: Some(json!({"head": 100, "healthy": [1]})),
        new_request: Some(NewRequest {
            idempotency_key: key.into(),
            job_id: job_id.into(),
            seq,
            cid: cid.into(),
            reason: ShortfallReason::Replication,
            copies_needed: 1,
            replacing: vec![],
            known_deals: vec![1],
            follows: None,
            created_epoch: 100,
        }),
        ..satisfied(job_id, next_due_ms)
    }
}

on_both!(registration_is_idempotent_and_jobs_list_cancel_and_revive);

async fn registration_is_idempotent_and_jobs_list_cancel_and_revive(store: Store) {
    {
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
            .claim_due_jobs("n1", 10_000, 10_000, 60_000, 100)
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
    }
}

on_both!(bulk_registration_spans_chunks_keeps_order_and_revives);

async fn bulk_registration_spans_chunks_keeps_order_and_revives(store: Store) {
    // Existing jobs: one active, one cancelled.
    let (active, _) = store.register_job(&spec(&cid(1), 1), 10).await.unwrap();
    let (cancelled, _) = store.register_job(&spec(&cid(2), 1), 10).await.unwrap();
    store.cancel_job(&cancelled.job_id, 20).await.unwrap();
    // 2 500 jobs over three statements' chunks, with repeats in one chunk and across.
    let mut specs: Vec<JobSpec> = (0..2_500).map(|i| spec(&cid(1_000 + i), 2)).collect();
    specs[5] = spec(&cid(1), 1);
    specs[6] = spec(&cid(2), 1);
    specs[7] = spec(&cid(1_000), 2);
    specs[2_100] = spec(&cid(1_001), 2);
    let out = store.register_jobs(&specs, 5_000).await.unwrap();
    assert_eq!(out.len(), specs.len(), "one answer per job given, in order");
    for (s, (job, _)) in specs.iter().zip(&out) {
        assert_eq!(job.job_id, s.job_id());
    }
    assert!(!out[5].1, "existed");
    assert_eq!(out[5].0.created_ms, active.created_ms);
    assert!(!out[6].1, "existed");
    assert_eq!(out[6].0.state, JobState::Active, "revived");
    assert_eq!(out[6].0.next_due_ms, 5_000, "due at once");
    assert!(
        out[0].1 && !out[7].1,
        "a job given twice is created by the first"
    );
    assert!(out[1].1 && !out[2_100].1, "also across chunks");
    let created = out.iter().filter(|o| o.1).count();
    assert_eq!(created, 2_500 - 4);
    assert_eq!(store.stats().await.unwrap().active, 2 + created as i64);
    // New jobs are answered without reading them back: each answer is what is stored.
    for (job, _) in &out {
        assert_eq!(
            Some(job),
            store.get_job(&job.job_id).await.unwrap().as_ref(),
            "registration answer = stored record"
        );
    }
}

on_both!(jobs_register_returns_stored);

async fn jobs_register_returns_stored(store: Store) {
    let mut tenanted = spec(&cid(7), 3);
    tenanted.tenant = Some("acme".into());
    let renew = JobSpec::from_json(
        json!({"cid": cid(8), "renewThresholdEpochs": 20_000, "repairThresholdEpochs": 2_880, "endEpoch": 9_000_000}),
        &JobLimits::default(),
    )
    .unwrap();
    let out = store
        .register_jobs(&[tenanted, renew, spec(CID_V0, 1)], 77)
        .await
        .unwrap();
    for (job, new) in &out {
        assert!(new);
        let stored = store.get_job(&job.job_id).await.unwrap().unwrap();
        assert_eq!(job, &stored);
        assert_eq!(
            serde_json::to_value(job).unwrap(),
            serde_json::to_value(&stored).unwrap()
        );
    }
}

on_both!(leases_give_each_due_job_to_one_node_and_expire);

async fn leases_give_each_due_job_to_one_node_and_expire(store: Store) {
    {
        for i in 0..10 {
            store
                .register_job(&spec(&cid(i), 1), 1_000 + i as i64)
                .await
                .unwrap();
        }
        let a = store
            .claim_due_jobs("a", 5_000, 5_000, 1_000, 4)
            .await
            .unwrap();
        assert_eq!(a.len(), 4);
        // Earliest due first.
        let due: Vec<i64> = a.iter().map(|j| j.next_due_ms).collect();
        assert_eq!(due, vec![1_000, 1_001, 1_002, 1_003]);
        let b = store
            .claim_due_jobs("b", 5_000, 5_000, 1_000, 100)
            .await
            .unwrap();
        assert_eq!(b.len(), 6, "b gets the rest, none of a's");
        assert!(store
            .claim_due_jobs("c", 5_500, 5_500, 1_000, 100)
            .await
            .unwrap()
            .is_empty());

        // a dies; after its lease ends, c takes its jobs over and a cannot record.
        let c = store
            .claim_due_jobs("c", 6_001, 6_001, 1_000, 100)
            .await
            .unwrap();
        assert_eq!(c.len(), 10, "every lease expired at 6000");
        let lost = store
            .record_checks("a", "a", &[satisfied(&a[0].job_id, 99_000)], 6_100)
            .await
            .unwrap();
        assert_eq!(lost.outcomes, vec![CheckOutcome::LeaseLost]);
        let ok = store
            .record_checks("c", "c", &[satisfied(&a[0].job_id, 99_000)], 6_100)
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
    }
}

on_both!(a_shortfall_is_one_request_and_delivery_is_acknowledged_once);

async fn a_shortfall_is_one_request_and_delivery_is_acknowledged_once(store: Store) {
    {
        let c = cid(1);
        let (job, _) = store.register_job(&spec(&c, 2), 0).await.unwrap();
        let id = job.job_id.clone();
        store.claim_due_jobs("n", 0, 0, 1_000, 10).await.unwrap();
        let r = store
            .record_checks("n", "n", &[short(&id, &c, "k1", 1, 100)], 10)
            .await
            .unwrap();
        assert_eq!(
            r.outcomes,
            vec![CheckOutcome::Recorded {
                request_created: true
            }]
        );
        let j = store.get_job(&id).await.unwrap().unwrap();
        assert_eq!((j.requests, j.target), (1, Some(2)));
        assert_eq!(
            store
                .open_requests(std::slice::from_ref(&id))
                .await
                .unwrap()
                .len(),
            1
        );
        // The same check recorded twice would reuse its key: refused, nothing written.
        store
            .claim_due_jobs("n", 100, 100, 1_000, 10)
            .await
            .unwrap();
        let e = store
            .record_checks("n", "n", &[short(&id, &c, "k1", 1, 200)], 110)
            .await
            .unwrap_err();
        assert_eq!(raas_core::ErrorCode::code(&e), "STORE_CORRUPT");
        assert_eq!(store.list_requests(None, None, 100).await.unwrap().len(), 1);

        // A failed check keeps the verdict and counts failures.
        let fail = CheckWrite {
            head: None,
            status: JobStatus::Error,
            failures: 1,
            error: Some(CheckFailure {
                code: "RPC_TIMEOUT",
                message: "slow".into(),
            }),
            verdict: None,
            target: None,
            ..satisfied(&id, 5_000)
        };
        store.record_checks("n", "n", &[fail], 210).await.unwrap();
        let j = store.get_job(&id).await.unwrap().unwrap();
        assert_eq!(j.status, Some(JobStatus::Error));
        assert_eq!(j.failures, 1);
        assert_eq!(j.last_error.as_deref(), Some("RPC_TIMEOUT: slow"));
        assert_eq!(j.verdict.unwrap()["healthy"], json!([1]), "verdict kept");
        assert_eq!(store.job_history(&id, 10).await.unwrap().len(), 2);

        // Delivery: claimed by one owner, failed, retried, acknowledged once.
        let got = store
            .claim_request("x", 1_000, 500, &[])
            .await
            .unwrap()
            .unwrap();
        assert_eq!((got.copies_needed, got.attempts, got.seq), (1, 1, 1));
        assert!(store
            .claim_request("y", 1_100, 500, &[])
            .await
            .unwrap()
            .is_none());
        // The owner renews its lease while its hook runs: still not y's at 1 600.
        assert!(store.extend_request_lease("k1", "x", 1_900).await.unwrap());
        assert!(store
            .claim_request("y", 1_600, 500, &[])
            .await
            .unwrap()
            .is_none());
        assert!(!store.extend_request_lease("k1", "y", 9_000).await.unwrap());
        assert!(store
            .checkpoint_request("k1", "x", &json!({"txHash": "0x1"}))
            .await
            .unwrap());
        assert!(store
            .fail_request("k1", "x", "HOOK_FAILED: 503", 2_000, false, 1_000)
            .await
            .unwrap());
        assert!(store
            .claim_request("y", 1_950, 500, &[])
            .await
            .unwrap()
            .is_none());
        // A key still running in this process is skipped.
        assert!(store
            .claim_request("y", 2_000, 500, &["k1".into()])
            .await
            .unwrap()
            .is_none());
        let again = store
            .claim_request("y", 2_000, 500, &[])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.attempts, 2);
        assert_eq!(again.last_error.as_deref(), Some("HOOK_FAILED: 503"));
        assert_eq!(again.checkpoint, Some(json!({"txHash": "0x1"})));
        assert!(
            !store
                .ack_request("k1", "x", "nx", &json!({}), Some(500), 2_100)
                .await
                .unwrap(),
            "x lost the lease"
        );
        assert!(store
            .ack_request("k1", "y", "ny", &json!({"requestId": 7}), Some(500), 2_100)
            .await
            .unwrap());
        let done = store.get_request("k1").await.unwrap().unwrap();
        assert_eq!(done.state, RequestState::Delivered);
        assert_eq!(done.delivered_by.as_deref(), Some("ny"));
        assert_eq!(done.fulfil_by_epoch, Some(500));
        assert_eq!(done.receipt, Some(json!({"requestId": 7})));
        assert!(store
            .claim_request("y", 99_999, 500, &[])
            .await
            .unwrap()
            .is_none());

        // Dead letters, and the operator's retry.
        store
            .claim_due_jobs("n", 5_000, 5_000, 1_000, 10)
            .await
            .unwrap();
        store
            .record_checks("n", "n", &[short(&id, &c, "k2", 2, 9_000)], 5_010)
            .await
            .unwrap();
        let k2 = store.claim_request("x", 6_000, 500, &[]).await.unwrap();
        assert_eq!(k2.map(|r| r.attempts), Some(1));
        // x stops without giving it back: the request is y's once x's lease has ended.
        assert!(store
            .claim_request("y", 6_400, 500, &[])
            .await
            .unwrap()
            .is_none());
        let taken = store.claim_request("y", 6_501, 500, &[]).await.unwrap();
        assert_eq!(
            taken.map(|r| (r.idempotency_key, r.attempts)),
            Some(("k2".into(), 2))
        );
        store
            .fail_request("k2", "y", "gone", 0, true, 0)
            .await
            .unwrap();
        let stats = store.stats().await.unwrap();
        assert_eq!((stats.requests_dead, stats.requests_delivered), (1, 1));
        assert!(store.retry_request("k2", 7_000).await.unwrap());
        // Cancelling the job closes its open requests (a new registration starts anew).
        store.cancel_job(&id, 7_500).await.unwrap();
        for k in ["k1", "k2"] {
            assert_eq!(
                store.get_request(k).await.unwrap().unwrap().state,
                RequestState::Cancelled
            );
        }
        assert!(
            store
                .claim_due_jobs("n", 99_000, 99_000, 1, 10)
                .await
                .unwrap()
                .is_empty(),
            "cancelled"
        );
        // Registered again: active, its target to be learnt anew, its sequence kept.
        let (again, created) = store.register_job(&spec(&c, 2), 8_000).await.unwrap();
        assert!(!created);
        assert_eq!((again.state, again.requests), (JobState::Active, 2));
    }
}

on_both!(cursors_persist_and_pruning_keeps_verdicts);

async fn cursors_persist_and_pruning_keeps_verdicts(store: Store) {
    {
        assert_eq!(store.cursor("events").await.unwrap(), None);
        store.set_cursor("events", 10, 1).await.unwrap();
        store.set_cursor("events", 42, 2).await.unwrap();
        assert_eq!(store.cursor("events").await.unwrap(), Some(42));
        let (job, _) = store.register_job(&spec(&cid(3), 1), 0).await.unwrap();
        store.claim_due_jobs("n", 0, 0, 10, 1).await.unwrap();
        store
            .record_checks("n", "n", &[satisfied(&job.job_id, 50)], 5)
            .await
            .unwrap();
        assert_eq!(store.prune_checks(6).await.unwrap(), 1);
        let j = store.get_job(&job.job_id).await.unwrap().unwrap();
        assert_eq!(j.status, Some(JobStatus::Satisfied));
        assert!(store.job_history(&job.job_id, 5).await.unwrap().is_empty());
    }
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

on_both!(tenants_quotas_and_the_event_log);

async fn tenants_quotas_and_the_event_log(store: Store) {
    let mut a = spec(&cid(900), 2);
    a.tenant = Some("alice".into());
    let mut b = a.clone();
    b.tenant = Some("bob".into());
    let (ja, _) = store.register_job(&a, 1_000).await.unwrap();
    let (jb, _) = store.register_job(&b, 1_000).await.unwrap();
    assert_ne!(
        ja.job_id, jb.job_id,
        "the same job of two tenants is two jobs"
    );
    let only = |t: &str| JobFilter {
        tenant: Some(t.into()),
        ..Default::default()
    };
    let l = store.list_jobs(&only("alice")).await.unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].job_id, ja.job_id);

    // Quota: counted in the transaction; over it, nothing of the call is kept.
    let more: Vec<JobSpec> = (901..904)
        .map(|i| {
            let mut s = spec(&cid(i), 1);
            s.tenant = Some("alice".into());
            s
        })
        .collect();
    let e = store
        .register_jobs_within(&more, 1_000, Some(("alice", 3)))
        .await
        .unwrap_err();
    assert_eq!(raas_core::ErrorCode::code(&e), "QUOTA_EXCEEDED");
    assert_eq!(store.list_jobs(&only("alice")).await.unwrap().len(), 1);
    store
        .register_jobs_within(&more[..2], 1_000, Some(("alice", 3)))
        .await
        .unwrap();

    // Events: numbered in order, with the job's tenant; a lost lease logs nothing.
    assert_eq!(store.last_event_seq().await.unwrap(), 0);
    store
        .claim_due_jobs("n", 5_000, 5_000, 60_000, 100)
        .await
        .unwrap();
    let mut wa = short(&ja.job_id, &a.cid, "ka", 1, 9_000);
    wa.event = Some(json!({"status": "short"}));
    let mut wb = satisfied(&jb.job_id, 9_000);
    wb.event = Some(json!({"status": "satisfied"}));
    let mut lost = satisfied("job_nope", 9_000);
    lost.event = Some(json!({"never": true}));
    store
        .record_checks("n", "n", &[wa, wb, lost], 5_000)
        .await
        .unwrap();
    let all = store.events_after(0, None, 100).await.unwrap();
    let got: Vec<(i64, &str, Option<&str>)> = all
        .iter()
        .map(|e| (e.seq, e.kind.as_str(), e.tenant.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "verdict", Some("alice")),
            (2, "request", Some("alice")),
            (3, "verdict", Some("bob")),
        ]
    );
    // Cancelling Alice's job closes her request: one more event, hers.
    store.cancel_job(&ja.job_id, 6_000).await.unwrap();
    let hers = store.events_after(1, Some("alice"), 100).await.unwrap();
    assert_eq!(hers.len(), 2);
    assert_eq!(hers[1].data["state"], "cancelled");
    assert_eq!(hers[1].seq, 4);
    assert_eq!(store.last_event_seq().await.unwrap(), 4);
    assert!(store.events_after(0, Some("bob"), 100).await.unwrap().len() == 1);
    assert_eq!(store.prune_events(6_000).await.unwrap(), 3);
}

on_both!(a_receipt_is_kept_when_the_check_fulfils_the_request_during_its_delivery);

/// The hook makes the copies, then returns; a check that sees them first fulfils the
/// request while the delivery still holds it. The hook's receipt is kept, by its lease
/// owner only.
async fn a_receipt_is_kept_when_the_check_fulfils_the_request_during_its_delivery(store: Store) {
    let c = cid(77);
    let (job, _) = store.register_job(&spec(&c, 1), 1_000).await.unwrap();
    let id = job.job_id;
    store
        .claim_due_jobs("n", 1_000, 1_000, 1_000, 10)
        .await
        .unwrap();
    store
        .record_checks("n", "n", &[short(&id, &c, "r1", 1, 2_000)], 1_010)
        .await
        .unwrap();
    store
        .claim_request("x", 1_100, 60_000, &[])
        .await
        .unwrap()
        .unwrap();
    store
        .claim_due_jobs("n", 2_000, 2_000, 1_000, 10)
        .await
        .unwrap();
    let fulfil = CheckWrite {
        request_updates: vec![RequestUpdate {
            idempotency_key: "r1".into(),
            fulfilled_by: vec![9],
            state: Some(RequestState::Fulfilled),
            note: None,
        }],
        ..satisfied(&id, 3_000)
    };
    store
        .record_checks("n", "n", &[fulfil], 2_010)
        .await
        .unwrap();
    assert_eq!(
        store.get_request("r1").await.unwrap().unwrap().state,
        RequestState::Fulfilled
    );
    assert!(
        !store
            .ack_request("r1", "y", "ny", &json!({"requestId": 1}), None, 2_100)
            .await
            .unwrap(),
        "not y's delivery"
    );
    assert!(store
        .ack_request("r1", "x", "nx", &json!({"requestId": 7}), None, 2_100)
        .await
        .unwrap());
    let r = store.get_request("r1").await.unwrap().unwrap();
    assert_eq!(r.state, RequestState::Fulfilled, "still fulfilled");
    assert_eq!(r.receipt, Some(json!({"requestId": 7})));
    assert_eq!(r.delivered_by.as_deref(), Some("nx"));
    assert_eq!(r.fulfilled_by, vec![9]);
    assert!(
        !store
            .ack_request("r1", "x", "nx", &json!({"requestId": 8}), None, 2_200)
            .await
            .unwrap(),
        "acknowledged once"
    );
}

on_both!(concurrent_registrations_commit_together_each_all_or_none);

/// Registrations that arrive together are committed together (one group commit), yet each
/// call stays all or none: a call over its tenant's quota fails alone, the others in its
/// group are kept. Seeded histories of concurrent calls over shared CIDs; after each, every
/// stored job came from a call that succeeded, exactly one success created it, quotas hold,
/// and calls without a quota never fail. `RAAS_GROUP_SEED=S` replays one seed.
async fn concurrent_registrations_commit_together_each_all_or_none(store: Store) {
    let seeds: Vec<u64> = match std::env::var("RAAS_GROUP_SEED") {
        Ok(s) => vec![s.parse().expect("RAAS_GROUP_SEED is a number")],
        Err(_) => (0..6).collect(),
    };
    for seed in seeds {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        let mut next = |n: u64| {
            // splitmix64
            rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % n
        };
        let tenants: [(Option<String>, Option<u64>); 3] = [
            (None, None),
            (Some(format!("roomy-{seed}")), Some(40)),
            (Some(format!("tight-{seed}")), Some(6)),
        ];
        let mut calls: Vec<(usize, Vec<JobSpec>)> = (0..40)
            .map(|_| {
                let t = next(3) as usize;
                let n = 1 + next(8) as usize;
                let specs = (0..n)
                    .map(|_| {
                        let mut s = spec(
                            &cid(10_000 + 100 * seed as usize + next(30) as usize),
                            1 + next(2) as u32,
                        );
                        s.tenant = tenants[t].0.clone();
                        s
                    })
                    .collect();
                (t, specs)
            })
            .collect();
        // One call over the tight quota by itself: it always fails, whatever its group.
        let over: Vec<JobSpec> = (0..7)
            .map(|i| {
                let mut s = spec(&cid(20_000 + 100 * seed as usize + i), 3);
                s.tenant = tenants[2].0.clone();
                s
            })
            .collect();
        let over_at = next(calls.len() as u64) as usize;
        calls.insert(over_at, (2, over));

        let handles: Vec<_> = calls
            .iter()
            .cloned()
            .map(|(t, specs)| {
                let store = store.clone();
                let quota = tenants[t].0.clone().zip(tenants[t].1);
                tokio::spawn(async move {
                    store
                        .register_jobs_within(
                            &specs,
                            1_000,
                            quota.as_ref().map(|(t, m)| (t.as_str(), *m)),
                        )
                        .await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for h in handles {
            outcomes.push(h.await.unwrap());
        }

        let ctx = format!("seed {seed} (replay: RAAS_GROUP_SEED={seed})");
        let mut created: std::collections::HashMap<String, usize> = Default::default();
        let mut kept: std::collections::HashSet<String> = Default::default();
        for (i, ((t, specs), outcome)) in calls.iter().zip(&outcomes).enumerate() {
            match outcome {
                Ok(regs) => {
                    assert_eq!(regs.len(), specs.len(), "{ctx}: call {i} answers per job");
                    for (s, (job, new)) in specs.iter().zip(regs) {
                        assert_eq!(job.job_id, s.job_id(), "{ctx}: call {i} keeps its order");
                        kept.insert(job.job_id.clone());
                        *created.entry(job.job_id.clone()).or_default() += usize::from(*new);
                    }
                }
                Err(e) => {
                    assert_eq!(
                        raas_core::ErrorCode::code(e),
                        "QUOTA_EXCEEDED",
                        "{ctx}: call {i}: {e}"
                    );
                    assert!(
                        tenants[*t].1.is_some(),
                        "{ctx}: call {i} has no quota yet failed"
                    );
                }
            }
        }
        assert!(
            outcomes[over_at].is_err(),
            "{ctx}: 7 jobs over a quota of 6 fail"
        );
        for (i, ((_, specs), outcome)) in calls.iter().zip(&outcomes).enumerate() {
            for s in specs {
                let id = s.job_id();
                let stored = store.get_job(&id).await.unwrap().is_some();
                assert_eq!(
                    stored,
                    kept.contains(&id),
                    "{ctx}: call {i}'s job {id} stored only if a call that succeeded had it"
                );
                if outcome.is_ok() {
                    assert_eq!(
                        created.get(&id),
                        Some(&1),
                        "{ctx}: job {id} created exactly once"
                    );
                }
            }
        }
        for (tenant, quota) in tenants.iter().filter_map(|(t, q)| t.as_ref().zip(*q)) {
            let live = store
                .list_jobs(&JobFilter {
                    tenant: Some(tenant.clone()),
                    limit: Some(1_000),
                    ..Default::default()
                })
                .await
                .unwrap()
                .len() as u64;
            assert!(
                live <= quota,
                "{ctx}: {tenant} has {live} jobs, quota {quota}"
            );
        }
    }
}

/// Turns a store back into what version 4 of the schema left: no CID key, the CID's text
/// indexed. As a node of the previous release would have left it.
async fn back_to_schema_4(url: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    for sql in [
        "DELETE FROM _sqlx_migrations WHERE version = 5",
        "DROP INDEX raas_jobs_cid_key",
        "ALTER TABLE raas_jobs DROP COLUMN cid_key",
        "CREATE INDEX raas_jobs_cid_id ON raas_jobs (cid, job_id)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

/// Jobs stored before reads by CID went through the CID key are found by CID once the
/// store is opened by this version (the migration adds the key, the open fills it in, in
/// batches: more jobs here than one batch).
async fn jobs_from_before_the_cid_key_are_found_by_cid(url: String) {
    let store = Store::open(&url).await.unwrap();
    let renewing = |c: usize, epochs: usize| {
        JobSpec::from_json(
            json!({"cid": cid(c), "replicationTarget": 1, "renewThresholdEpochs": 1000 + epochs}),
            &JobLimits::default(),
        )
        .unwrap()
    };
    let specs: Vec<JobSpec> = (0..2500).map(|i| renewing(i % 7, i)).collect();
    store.register_jobs(&specs, 0).await.unwrap();
    store.close().await;
    back_to_schema_4(&url).await;

    let store = Store::open(&url).await.unwrap();
    for c in 0..7 {
        let mut seen = 0;
        let mut after = None;
        loop {
            let page = store
                .list_jobs(&JobFilter {
                    cid: Some(cid(c)),
                    limit: Some(1000),
                    after: after.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.job_id.clone());
            assert!(page.iter().all(|j| j.spec.cid == cid(c)));
            seen += page.len();
        }
        assert_eq!(seen, (0..2500).filter(|i| i % 7 == c).count(), "cid {c}");
    }
    // A job registered now is found beside them.
    store.register_job(&renewing(0, 9999), 1).await.unwrap();
    let n = store
        .list_jobs(&JobFilter {
            cid: Some(cid(0)),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    assert_eq!(n, (0..2500).filter(|i| i % 7 == 0).count() + 1);
}

on_both!(jobs_from_before_the_cid_key_are_found_by_cid, url);

//! The engine against real parts: DealStatus on anvil, the Lotus test server, a SQLite or
//! PostgreSQL store. A job short of copies gives one deal request; the hook makes the deal
//! (submit + complete on the contract, the deal published and activated on the chain); the
//! next check is satisfied. Repair, failures, backoff and dead letters too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::stores::{fresh_postgres, temp_sqlite};
use common::{reference_proof, Devnet};
use raas_core::chain::evm::{DealStatusClient, DealStatusConfig};
use raas_core::engine::{DealRequest, FnHook, HookError, NodeEvent, RaasNode, VerdictEvent};
use raas_core::jobs::ShortfallReason;
use raas_core::store::{CheckStatus as JobStatus, JobLifecycle as JobState, RequestState};
use raas_core::ErrorCode;
use serde_json::{json, Value};

const CID: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

fn config(d: &Devnet, store: &str) -> Value {
    json!({
        "store": store,
        "nodeId": "test-node",
        "dealStatus": {"rpcUrl": d.evm(), "address": d.deal_status(), "privateKey": d.key(0)},
        "lotus": {"url": d.lotus()},
        "checkIntervalSecs": 1,
        "backoffBaseSecs": 1,
        "pollIntervalMs": 50,
    })
}

/// Records a deal for `cid` on the contract (request + complete) and on the chain.
async fn make_deal(d: &Devnet, owner: &DealStatusClient, cid: &str, id: u64, miner: u64) {
    let h = d.control("Devnet.Stats", json!([])).await["height"]
        .as_i64()
        .unwrap();
    d.add_deal(id, miner, id, h, h + 500_000).await;
    d.control("Devnet.Activate", json!([id])).await;
    let req = owner.submit(cid).await.unwrap().request_id;
    let (proof, verifier) = reference_proof();
    owner
        .complete(req, id, miner, &proof, &verifier)
        .await
        .unwrap();
}

/// The next verdict event (endpoint events skipped).
fn next_verdict(rx: &mut tokio::sync::broadcast::Receiver<NodeEvent>) -> Option<VerdictEvent> {
    loop {
        match rx.try_recv() {
            Ok(NodeEvent::Verdict(v)) => return Some(v),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

fn owner(d: &Devnet) -> DealStatusClient {
    DealStatusClient::with_signer(DealStatusConfig::new(d.evm(), d.deal_status()), &d.key(1))
        .unwrap()
}

async fn full_loop(d: &Devnet, store: &str) {
    // Account 1 makes deals (an allowed aggregator); the node's own key is account 0.
    let admin =
        DealStatusClient::with_signer(DealStatusConfig::new(d.evm(), d.deal_status()), &d.key(0))
            .unwrap();
    let agg = owner(d);
    admin
        .set_aggregator(&agg.signer_address().unwrap(), true)
        .await
        .unwrap();
    let node = RaasNode::open_json(config(d, store)).await.unwrap();
    let mut events = node.subscribe();
    let reg = node
        .register_job(json!({"cid": CID, "replicationTarget": 2, "repairThresholdEpochs": 200}))
        .await
        .unwrap();
    assert!(reg.created);
    let job_id = reg.job.job_id.clone();
    assert!(
        !node
            .register_job(json!({"cid": CID, "replicationTarget": 2, "repairThresholdEpochs": 200}))
            .await
            .unwrap()
            .created
    );
    make_deal(d, &agg, CID, 11, 1000).await;

    // Short one copy: one deal request.
    let r = node.run_cycle().await.unwrap();
    assert_eq!(
        (r.jobs_checked, r.short, r.requests_created),
        (1, 1, 1),
        "{r:?}"
    );
    let ev = next_verdict(&mut events).unwrap();
    assert_eq!((ev.previous, ev.status), (None, JobStatus::Short));
    let job = node.get_job(&job_id).await.unwrap();
    assert_eq!(job.status, Some(JobStatus::Short));
    assert_eq!(job.verdict.as_ref().unwrap()["healthy"], json!([11]));
    // Seen again before any deal is made: the same shortfall, no second request.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let r = node.run_cycle().await.unwrap();
    assert_eq!((r.jobs_checked, r.requests_created), (1, 0), "{r:?}");
    assert!(next_verdict(&mut events).is_none(), "no change, no event");

    // The hook makes the deal.
    let seen: Arc<Mutex<Vec<DealRequest>>> = Arc::default();
    let (seen2, agg2) = (seen.clone(), agg.clone());
    let lotus = d.lotus();
    node.set_hook(Arc::new(FnHook(move |req: DealRequest| {
        let seen = seen2.clone();
        let agg = agg2.clone();
        let lotus = lotus.clone();
        async move {
            seen.lock().unwrap().push(req.clone());
            let http = reqwest::Client::new();
            let ctl = |method: &str, params: Value| {
                http.post(&lotus)
                    .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
                    .send()
            };
            let h: Value = ctl("Devnet.Stats", json!([]))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let h = h["result"]["height"].as_i64().unwrap();
            let spec = json!({"id": 12, "provider": 1001, "sector": 12, "startEpoch": h,
                "endEpoch": h + 500_000, "pieceSize": 34359738368u64,
                "pieceCid": common::REFERENCE_AGGREGATE});
            ctl("Devnet.AddDeal", json!([spec])).await.unwrap();
            ctl("Devnet.Activate", json!([12])).await.unwrap();
            let submitted = agg
                .submit(&req.cid)
                .await
                .map_err(|e| HookError::retry(e.to_string()))?;
            let (proof, verifier) = reference_proof();
            agg.complete(submitted.request_id, 12, 1001, &proof, &verifier)
                .await
                .map_err(|e| HookError::retry(e.to_string()))?;
            Ok(json!({"requestId": submitted.request_id}))
        }
    })));
    let del = node.deliver().await.unwrap();
    assert_eq!(del.delivered, 1, "{del:?}");
    assert_eq!(node.deliver().await.unwrap().delivered, 0, "delivered once");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].job_id, job_id);
        assert_eq!(seen[0].copies_needed, 1);
        assert_eq!(seen[0].reason, ShortfallReason::Replication);
    }
    let reqs = node.list_requests(json!({"jobId": job_id})).await.unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].state,
        RequestState::Delivered,
        "awaiting fulfilment"
    );
    assert!(
        reqs[0].receipt.as_ref().unwrap()["requestId"]
            .as_u64()
            .unwrap()
            > 0
    );

    // The next check sees two healthy copies.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let r = node.run_cycle().await.unwrap();
    assert_eq!((r.satisfied, r.requests_created), (1, 0), "{r:?}");
    let ev: VerdictEvent = next_verdict(&mut events).unwrap();
    assert_eq!(
        (ev.previous, ev.status, ev.healthy.clone()),
        (Some(JobStatus::Short), JobStatus::Satisfied, vec![11, 12])
    );
    let reqs = node.list_requests(json!({"jobId": job_id})).await.unwrap();
    assert_eq!(reqs[0].state, RequestState::Fulfilled);
    assert_eq!(reqs[0].fulfilled_by, vec![12]);
    let status = node.deal_status(CID).await.unwrap();
    assert_eq!(status.active_deals, 2);
    assert_eq!(status.jobs.len(), 1);
    assert_eq!(
        status.deals[0].health.as_ref().unwrap().health,
        raas_core::chain::health::DealHealth::Active
    );

    // Deal 12's sector faults; past the repair threshold it is replaced.
    d.control("Devnet.Fault", json!([12])).await;
    d.control("Devnet.Advance", json!([300])).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let r = node.run_cycle().await.unwrap();
    assert_eq!((r.short, r.requests_created), (1, 1), "{r:?}");
    let job = node.get_job(&job_id).await.unwrap();
    let sf = &job.verdict.as_ref().unwrap()["shortfall"];
    assert_eq!(sf["reason"], json!("repair"));
    assert_eq!(sf["replacing"], json!([12]));
    let history = node.job_history(&job_id, 10).await.unwrap();
    assert_eq!(history.len(), 4);
    assert!(history.iter().all(|c| c.node_id == "test-node"));

    // Cancelled: never checked again, its pending request withdrawn.
    node.cancel_job(&job_id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(node.run_cycle().await.unwrap().jobs_checked, 0);
    let pending = node
        .list_requests(json!({"jobId": job_id, "state": "pending"}))
        .await
        .unwrap();
    assert!(pending.is_empty());
    assert_eq!(
        node.get_job("job_missing").await.unwrap_err().code(),
        "JOB_NOT_FOUND"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn full_loop_on_sqlite() {
    let d = Devnet::start();
    let (url, _dir) = temp_sqlite();
    full_loop(&d, &url).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL: RAAS_TEST_POSTGRES_URL (scripts/test-all.sh runs it)"]
async fn full_loop_on_postgres() {
    let url = fresh_postgres().await.expect("RAAS_TEST_POSTGRES_URL");
    let d = Devnet::start();
    full_loop(&d, &url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_checks_back_off_then_go_dead_and_bad_input_is_typed() {
    let d = Devnet::start();
    let (url, _dir) = temp_sqlite();
    let mut cfg = config(&d, &url);
    // Lotus unreachable: the head comes from Lotus, so the sweep pauses as a whole. An
    // outage, not the job's failure: nothing counted, nothing lost, visible in stats().
    cfg["lotus"] = json!({"url": "http://127.0.0.1:9/rpc/v1", "retries": 0, "timeoutMs": 500});
    cfg["maxFailures"] = json!(2);
    let node = RaasNode::open_json(cfg).await.unwrap();
    let mut events = node.subscribe();
    node.register_job(json!({"cid": CID, "replicationTarget": 1, "repairThresholdEpochs": 10}))
        .await
        .unwrap();
    let r = node.run_cycle().await.unwrap();
    assert!(r.outage.as_deref().unwrap().starts_with("NETWORK"), "{r:?}");
    assert_eq!(r.jobs_checked, 0);
    let stats = node.stats().await.unwrap();
    assert_eq!(stats.store.active, 1);
    let lotus = stats.endpoints.iter().find(|e| !e.up).unwrap();
    assert_eq!(lotus.endpoint, raas_core::engine::Endpoint::Lotus);
    assert!(lotus.down_since_ms.is_some());
    match events.try_recv().unwrap() {
        NodeEvent::Endpoint(e) => assert!(!e.up, "{e:?}"),
        other => panic!("{other:?}"),
    }
    let job = node.list_jobs(Value::Null).await.unwrap().remove(0);
    assert_eq!(
        (job.failures, job.status),
        (0, None),
        "not the job's failure"
    );

    // The contract unreachable: an outage again; however many sweeps, no job goes dead.
    let mut cfg = config(&d, &url);
    cfg["dealStatus"]["rpcUrl"] = json!("http://127.0.0.1:9");
    cfg["dealStatus"]["timeoutMs"] = json!(500);
    cfg["maxFailures"] = json!(2);
    cfg["backoffBaseSecs"] = json!(1);
    drop(node);
    let node = RaasNode::open_json(cfg).await.unwrap();
    for _ in 0..3 {
        let r = node.run_cycle().await.unwrap();
        assert_eq!(r.dead + r.failed, 0, "{r:?}");
        tokio::time::sleep(Duration::from_millis(1_300)).await;
    }
    let job = node.list_jobs(Value::Null).await.unwrap().remove(0);
    assert_eq!((job.failures, job.state), (0, JobState::Active), "{job:?}");

    // An answer about the job's own CID (no contract at the address): the job fails,
    // backs off, then dies.
    let mut cfg = config(&d, &url);
    cfg["dealStatus"]["address"] = json!("0x00000000000000000000000000000000000000aa");
    cfg["maxFailures"] = json!(2);
    drop(node);
    let node = RaasNode::open_json(cfg).await.unwrap();
    let r = node.run_cycle().await.unwrap();
    assert_eq!((r.failed, r.dead), (1, 0), "{r:?}");
    let job = node.list_jobs(Value::Null).await.unwrap().remove(0);
    assert_eq!(job.status, Some(JobStatus::Error));
    let wait = job.next_due_ms - raas_now();
    assert!((500..=1_500).contains(&wait), "backoff ~1 s, got {wait} ms");
    assert_eq!(
        node.run_cycle().await.unwrap().jobs_checked,
        0,
        "backing off"
    );
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let r = node.run_cycle().await.unwrap();
    assert_eq!(r.dead, 1, "{r:?}");
    let dead = node.list_jobs(json!({"state": "dead"})).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].state, JobState::Dead);
    assert!(dead[0].last_error.is_some());
    // Registering it again revives it.
    node.register_job(json!({"cid": CID, "replicationTarget": 1, "repairThresholdEpochs": 10}))
        .await
        .unwrap();
    assert_eq!(node.stats().await.unwrap().store.active, 1);

    for (bad, code, field) in [
        (
            json!({"cid": "nope", "replicationTarget": 1}),
            "INVALID_CID",
            "\"nope\"",
        ),
        (
            json!({"cid": CID, "replicationTarget": 0}),
            "INVALID_JOB",
            "replicationTarget",
        ),
        (
            json!({"cid": CID, "replicationTarget": 1, "colour": 1}),
            "INVALID_JOB",
            "colour",
        ),
        (
            json!({"cid": CID, "renewThresholdEpochs": -5}),
            "INVALID_JOB",
            "renewThresholdEpochs",
        ),
    ] {
        let e = node.register_job(bad).await.unwrap_err();
        assert_eq!(e.code(), code, "{e}");
        assert!(e.to_string().contains(field), "{e}");
    }
    let e = node
        .list_jobs(json!({"state": "sleepy"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT");
    assert!(e.to_string().contains("state"), "{e}");
    assert_eq!(node.stats().await.unwrap().store.active, 1, "nothing lost");

    // No Lotus: repair jobs are refused up front.
    let mut cfg = config(&d, &url);
    cfg.as_object_mut().unwrap().remove("lotus");
    drop(node);
    let node = RaasNode::open_json(cfg).await.unwrap();
    let e = node
        .register_job(json!({"cid": CID, "repairThresholdEpochs": 10}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("repairThresholdEpochs"), "{e}");
}

fn raas_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn started_node_checks_delivers_and_stops_gracefully() {
    let d = Devnet::start();
    let (url, _dir) = temp_sqlite();
    let node = RaasNode::open_json(config(&d, &url)).await.unwrap();
    let delivered: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = delivered.clone();
    node.set_hook(Arc::new(FnHook(move |req: DealRequest| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(req.idempotency_key);
            Ok(json!({}))
        }
    })));
    let mut events = node.subscribe();
    for i in 0..20 {
        let cid = raas_core::cid::compute_cids(format!("loop {i}").as_bytes())
            .cid
            .to_string();
        node.register_job(json!({"cid": cid, "replicationTarget": 1}))
            .await
            .unwrap();
    }
    node.start().unwrap();
    let mut shorts = 0;
    while shorts < 20 {
        let ev = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("a verdict event")
            .unwrap();
        let NodeEvent::Verdict(ev) = ev else { continue };
        assert_eq!(ev.status, JobStatus::Short);
        shorts += 1;
    }
    // Delivery follows on its own.
    for _ in 0..100 {
        if delivered.lock().unwrap().len() == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.stop().await;
    assert!(!node.is_running());
    let keys = delivered.lock().unwrap().clone();
    assert_eq!(keys.len(), 20, "every request delivered once");
    let stats = node.stats().await.unwrap();
    assert_eq!(
        (stats.store.requests_delivered, stats.store.requests_pending),
        (20, 0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_submit_raas_hook_makes_a_confirmed_request_on_chain() {
    let d = Devnet::start();
    let (url, _dir) = temp_sqlite();
    let mut cfg = config(&d, &url);
    cfg["hook"] = json!({"type": "submitRaaS"});
    let node = RaasNode::open_json(cfg).await.unwrap();
    node.register_job(json!({"cid": CID, "replicationTarget": 3}))
        .await
        .unwrap();
    let r = node.run_cycle().await.unwrap();
    assert_eq!(r.requests_created, 1);
    let del = node.deliver().await.unwrap();
    assert_eq!(del.delivered, 1, "{del:?}");
    let req = node.list_requests(Value::Null).await.unwrap().remove(0);
    let receipt = req.receipt.clone().unwrap();
    assert!(receipt["requestId"].as_u64().unwrap() >= 1, "{receipt}");
    assert!(receipt["txHash"].as_str().unwrap().starts_with("0x"));
    // The request is on the contract, with the copies asked for in its event.
    let reader = DealStatusClient::new(DealStatusConfig::new(d.evm(), d.deal_status())).unwrap();
    assert_eq!(reader.all_cids().await.unwrap(), vec![CID.to_string()]);
    let block = receipt["blockNumber"].as_u64().unwrap();
    let scan = reader
        .scan_requests(
            raas_core::chain::evm::EventCursor { next_block: block },
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!(scan.requests.len(), 1);
    assert_eq!(
        scan.requests[0].raas.as_ref().unwrap().replication_target,
        3
    );
    // The hash and the signed bytes were recorded before the broadcast.
    assert_eq!(
        req.checkpoint.as_ref().unwrap()["txHash"],
        receipt["txHash"],
        "{req:?}"
    );

    // The node dies after the broadcast, before its acknowledgement: the request is pending
    // again with its checkpoint. The next attempt looks the transaction up and finds it mined:
    // the same receipt, and no second request on chain.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&url)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE raas_outbox SET state = 'pending', delivered_ms = NULL, receipt = NULL, \
         next_attempt_ms = 0, lease_owner = NULL, lease_until_ms = NULL",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let del = node.deliver().await.unwrap();
    assert_eq!(del.delivered, 1, "{del:?}");
    let again = node.list_requests(Value::Null).await.unwrap().remove(0);
    assert_eq!(again.receipt.unwrap()["txHash"], receipt["txHash"]);
    assert_eq!(again.attempts, 2);
    let scan = reader
        .scan_requests(
            raas_core::chain::evm::EventCursor { next_block: block },
            0,
            100,
        )
        .await
        .unwrap();
    assert_eq!(scan.requests.len(), 1, "sent once");
}

/// Intake until caught up: the sums of the steps, and how many there were.
async fn intake_all(n: &RaasNode) -> (raas_core::engine::IntakeReport, usize) {
    let mut total = raas_core::engine::IntakeReport::default();
    let mut steps = 0;
    loop {
        let r = n.intake_once().await.unwrap();
        steps += 1;
        total.registered += r.registered;
        total.skipped += r.skipped;
        total.plain += r.plain;
        total.own += r.own;
        total.existing += r.existing;
        if r.caught_up {
            return (total, steps);
        }
    }
}

async fn onchain_jobs(n: &RaasNode) -> Vec<raas_core::store::JobRecord> {
    n.list_jobs(json!({"tenant": "onchain"})).await.unwrap()
}

/// Sends `submitRaaS` with any numbers (as anyone on chain may), from account `who`.
async fn raw_submit_raas(d: &Devnet, who: usize, key: Vec<u8>, nums: [alloy::primitives::U256; 3]) {
    use alloy::providers::{Provider, ProviderBuilder};
    let signer: alloy::signers::local::PrivateKeySigner = d.key(who).parse().unwrap();
    let p = ProviderBuilder::new()
        .wallet(signer)
        .connect_http(d.evm().parse().unwrap());
    let c = raas_core::chain::evm::IDealStatus::new(d.deal_status().parse().unwrap(), &p);
    let receipt = c
        .submitRaaS(key.into(), nums[0], nums[1], nums[2])
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let _ = p.get_block_number().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn on_chain_requests_become_jobs_across_restarts_poison_skipped_own_not_twice() {
    use alloy::primitives::U256;
    let d = Devnet::start();
    let (url, _dir) = temp_sqlite();
    let mut cfg = config(&d, &url);
    cfg["hook"] = json!({"type": "submitRaaS"});
    cfg["intake"] = json!({"confirmations": 0, "maxRangeBlocks": 3, "maxJobs": 3});

    let node = RaasNode::open_json(cfg.clone()).await.unwrap();
    // The first scan starts at the head: nothing before the node existed is taken.
    let client =
        DealStatusClient::with_signer(DealStatusConfig::new(d.evm(), d.deal_status()), &d.key(1))
            .unwrap();
    let cid = |i: usize| {
        raas_core::cid::compute_cids(format!("intake {i}").as_bytes())
            .cid
            .to_string()
    };
    client.submit_raas(&cid(0), 2, 0, 100).await.unwrap();
    let r = node.intake_once().await.unwrap();
    assert_eq!((r.registered, r.caught_up), (0, true), "{r:?}");

    // A client's request after start: a job of the on-chain tenant with its numbers.
    client.submit_raas(&cid(1), 2, 0, 100).await.unwrap();
    let r = node.intake_once().await.unwrap();
    assert_eq!(r.registered, 1, "{r:?}");
    let jobs = onchain_jobs(&node).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].spec.cid, cid(1));
    assert_eq!(
        (
            jobs[0].spec.replication_target,
            jobs[0].spec.renew_threshold_epochs
        ),
        (Some(2), Some(100))
    );
    assert_eq!(jobs[0].spec.tenant.as_deref(), Some("onchain"));

    // The node is down while requests come in, good and poisoned.
    drop(node);
    client.submit_raas(&cid(2), 1, 0, 0).await.unwrap();
    client.submit_raas(&cid(3), u64::MAX, 0, 0).await.unwrap(); // out of range
    raw_submit_raas(
        &d,
        1,
        b"not a cid".to_vec(),
        [U256::from(2), U256::ZERO, U256::ZERO],
    )
    .await;
    raw_submit_raas(&d, 1, b"x".to_vec(), [U256::MAX, U256::ZERO, U256::ZERO]).await; // malformed
                                                                                      // A fresh client: the raw sends moved the account's nonce past the old one's cache.
    let client =
        DealStatusClient::with_signer(DealStatusConfig::new(d.evm(), d.deal_status()), &d.key(1))
            .unwrap();
    for i in 4..9 {
        // Padding blocks: the backfill takes several bounded ranges.
        client.submit(&cid(100 + i)).await.unwrap();
    }
    client.submit_raas(&cid(4), 3, 0, 50).await.unwrap();
    let node = RaasNode::open_json(cfg.clone()).await.unwrap();
    let (total, steps) = intake_all(&node).await;
    assert!(steps > 2, "bounded ranges: {steps} steps");
    assert_eq!(
        (total.registered, total.skipped, total.plain),
        (2, 3, 5),
        "{total:?}"
    );
    let mut cids: Vec<String> = onchain_jobs(&node)
        .await
        .into_iter()
        .map(|j| j.spec.cid)
        .collect();
    cids.sort();
    let mut want = vec![cid(1), cid(2), cid(4)];
    want.sort();
    assert_eq!(cids, want);
    let skipped = node.skipped_events(10).await.unwrap();
    assert_eq!(skipped.len(), 3);
    let reasons: Vec<&str> = skipped
        .iter()
        .map(|s| s.reason.split(':').next().unwrap())
        .collect();
    assert!(
        reasons.contains(&"INVALID_JOB")
            && reasons.contains(&"INVALID_CID")
            && reasons.contains(&"MALFORMED_EVENT"),
        "{reasons:?}"
    );

    // Over the cap (3 live jobs from chain): recorded and skipped, the cursor moves on.
    client.submit_raas(&cid(5), 1, 0, 0).await.unwrap();
    let r = node.intake_once().await.unwrap();
    assert_eq!((r.registered, r.skipped), (0, 1), "{r:?}");
    assert!(node.skipped_events(1).await.unwrap()[0]
        .reason
        .starts_with("QUOTA_EXCEEDED"));

    // The node's own submitRaaS requests (for its job and the three from chain, all short
    // of copies) are not taken as new jobs.
    node.register_job(json!({"cid": cid(6), "replicationTarget": 1}))
        .await
        .unwrap();
    // (A job registered in the same millisecond as a sweep's start waits for the next one.)
    let (mut made, mut delivered) = (0, 0);
    for _ in 0..20 {
        made += node.run_cycle().await.unwrap().requests_created;
        delivered += node.deliver().await.unwrap().delivered;
        if made == 4 && delivered == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!((made, delivered), (4, 4));
    let (r, _) = intake_all(&node).await;
    assert_eq!((r.own, r.registered, r.skipped), (4, 0, 0), "{r:?}");
    assert_eq!(onchain_jobs(&node).await.len(), 3);
    // Scanning again after a restart takes nothing twice.
    drop(node);
    let node = RaasNode::open_json(cfg).await.unwrap();
    let (r, _) = intake_all(&node).await;
    assert_eq!((r.registered, r.skipped, r.own), (0, 0, 0), "{r:?}");
}

//! The Lotus client and the health check against a misbehaving Lotus: rate limits and
//! overloaded proxies (HTTP 429/503 with JSON bodies, `Retry-After`), state reads pinned to
//! one tipset, and single reads that fail inside a batch.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::Devnet;
use raas_core::chain::health::{check_deals, check_deals_at, DealHealth, HealthReport};
use raas_core::chain::lotus::types::{CidJson, TipSet};
use raas_core::chain::lotus::{LotusClient, LotusConfig, LotusError};
use raas_core::ErrorCode;
use serde_json::{json, Value};

fn lotus(d: &Devnet) -> LotusClient {
    LotusClient::new(LotusConfig::new(d.lotus())).unwrap()
}

async fn requests(d: &Devnet) -> u64 {
    d.control("Devnet.Stats", json!([])).await["requests"]
        .as_u64()
        .unwrap()
}

async fn behave(d: &Devnet, b: Value) {
    d.control("Devnet.SetBehaviour", json!([b])).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_statuses_are_retried_whatever_the_body_after_retry_after() {
    let d = Devnet::start();
    let h = d.start_epoch();
    d.add_deal(11, 1000, 1, h, h + 100_000).await;
    let lotus = lotus(&d);
    let now = lotus.chain_head().await.unwrap().height;

    // 429 with a JSON-RPC error body and `Retry-After: 1`, twice: retried, each retry
    // waiting the second asked for (the backoff alone would be ~0.1-0.4 s).
    d.control("Devnet.ResetStats", json!([])).await;
    behave(&d, json!({"rateLimitNext": 2, "retryAfter": 1})).await;
    let t = Instant::now();
    assert!(lotus.chain_head().await.unwrap().height >= now);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "Retry-After waited: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(
        requests(&d).await,
        3,
        "two rate-limited replies, one success"
    );

    // 503 with a JSON-RPC error body: transient, retried; the same for a batch.
    d.control("Devnet.ResetStats", json!([])).await;
    behave(&d, json!({"unavailableNext": 2})).await;
    assert!(lotus.chain_head().await.is_ok());
    assert_eq!(requests(&d).await, 3);
    behave(&d, json!({"unavailableNext": 1})).await;
    let deals = lotus.market_deals(&[11, 12], None).await.unwrap();
    assert!(deals[0].is_ok());
    assert_eq!(deals[1].as_ref().unwrap_err().code(), "DEAL_NOT_FOUND");

    // Retry-After as an HTTP date (measured against the reply's Date header).
    behave(&d, json!({"rateLimitNext": 1, "retryAfter": {"dateIn": 2}})).await;
    let t = Instant::now();
    assert!(lotus.chain_head().await.is_ok());
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "HTTP-date Retry-After: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");

    // A Retry-After longer than `retry_after_max` is capped.
    let capped = LotusClient::new(LotusConfig {
        retry_after_max: Duration::from_millis(300),
        ..LotusConfig::new(d.lotus())
    })
    .unwrap();
    behave(&d, json!({"rateLimitNext": 1, "retryAfter": 30})).await;
    let t = Instant::now();
    assert!(capped.chain_head().await.is_ok());
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // Out of retries: the error carries the status and what the server asked for.
    let impatient = LotusClient::new(LotusConfig {
        retries: 1,
        retry_after_max: Duration::from_millis(50),
        ..LotusConfig::new(d.lotus())
    })
    .unwrap();
    behave(&d, json!({"rateLimitNext": 5, "retryAfter": 7})).await;
    let err = impatient.chain_head().await.unwrap_err();
    assert_eq!(
        err,
        LotusError::Http {
            method: "Filecoin.ChainHead",
            status: 429,
            retry_after_ms: Some(7_000),
        }
    );
    assert_eq!(err.code(), "HTTP_ERROR");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(!err.to_string().contains("127.0.0.1"), "{err}");
    behave(&d, json!({"rateLimitNext": 0})).await;

    // Protocol errors (HTTP 500 with a JSON-RPC body) are still told by the body, not retried.
    d.control("Devnet.ResetStats", json!([])).await;
    let err = lotus
        .call::<Value>("Filecoin.StateMarketStorageDeal", json!([11]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("wrong param count"), "{err}");
    assert_eq!(requests(&d).await, 1);
}

/// Deals on miner 4000: 41 proven (sector 1), 42 faulty (sector 2).
async fn proven_and_faulty(d: &Devnet) {
    let h = d.start_epoch();
    d.add_deal(41, 4000, 1, h, h + 100_000).await;
    d.add_deal(42, 4000, 2, h, h + 100_000).await;
    for id in [41, 42] {
        d.control("Devnet.Activate", json!([id])).await;
    }
    d.control("Devnet.Advance", json!([100])).await;
    d.control("Devnet.Fault", json!([42])).await;
    d.control("Devnet.Advance", json!([10])).await;
}

fn healths(reports: &[Result<HealthReport, LotusError>]) -> Vec<DealHealth> {
    reports.iter().map(|r| r.as_ref().unwrap().health).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_read_of_a_check_is_pinned_to_its_tipset() {
    let d = Devnet::start();
    proven_and_faulty(&d).await;
    let lotus = lotus(&d);
    let head = lotus.chain_head().await.unwrap();
    let ends = [None, None];

    d.control("Devnet.ResetStats", json!([])).await;
    let before = check_deals_at(&lotus, &head, &[41, 42], &ends)
        .await
        .unwrap();
    let fault_start = match healths(&before)[..] {
        [DealHealth::Active, DealHealth::Faulty { since: Some(s) }] => s,
        ref other => panic!("{other:?}"),
    };
    let log = d.control("Devnet.RequestLog", json!([])).await;
    let key = json!(head.cids);
    let mut methods = BTreeSet::new();
    for call in log.as_array().unwrap() {
        let method = call["method"].as_str().unwrap();
        assert!(method.starts_with("Filecoin.State"), "{call}");
        assert_eq!(
            call["params"].as_array().unwrap().last(),
            Some(&key),
            "{method} not pinned: {call}"
        );
        methods.insert(method.to_string());
    }
    let expected: BTreeSet<String> = [
        "Filecoin.StateMarketStorageDeal",
        "Filecoin.StateSectorPartition",
        "Filecoin.StateMinerPartitions",
        "Filecoin.StateSectorExpiration",
        "Filecoin.StateMinerProvingDeadline",
    ]
    .iter()
    .map(|m| m.to_string())
    .collect();
    assert_eq!(methods, expected);

    // The chain moves on: 42 recovers and is proven again, 41's sector terminates. A check
    // pinned to the old head still sees the old state, read by read. (The test chain applies
    // an event at the head's height to that height's state: move past it first.)
    d.control("Devnet.Advance", json!([1])).await;
    d.control("Devnet.Recover", json!([42])).await;
    d.control("Devnet.Advance", json!([200])).await;
    d.control("Devnet.Terminate", json!([41])).await;
    let again = check_deals_at(&lotus, &head, &[41, 42], &ends)
        .await
        .unwrap();
    assert_eq!(again, before, "the same tipset, the same answers");
    let now = check_deals(&lotus, &[41, 42], &[Some(head.height + 100_000), None])
        .await
        .unwrap();
    assert_eq!(
        healths(&now),
        [DealHealth::Terminated, DealHealth::Active],
        "fault began at {fault_start}"
    );

    // A tipset key the node does not know: Lotus's error, in each deal's slot.
    let unknown = TipSet {
        cids: vec![CidJson {
            cid: "bafy2bzaceckwkokvwpkxv2ir2yknlmtk6jnmazpukzfyznpszf7qdeepifely".into(),
        }],
        height: head.height,
    };
    let r = check_deals_at(&lotus, &unknown, &[41, 42], &ends)
        .await
        .unwrap();
    for slot in r {
        let err = slot.unwrap_err();
        assert!(err.to_string().contains("loading tipset"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_failed_read_fails_only_the_deals_it_concerns() {
    let d = Devnet::start();
    let h = d.start_epoch();
    let end = h + 100_000;
    // (deal, miner, sector). Deadline = sector % 48: sectors 2 and 50 share deadline 2.
    let deals = [
        (51, 5000, 1),  // its sector's location read fails
        (52, 5000, 1),  // same sector
        (53, 5000, 2),  // its miner deadline's partitions read fails
        (54, 5000, 50), // same miner deadline, another sector
        (55, 5000, 3),  // fine
        (56, 5000, 4),  // faulty; its expiration read fails
        (57, 5001, 1),  // its miner's proving deadline read fails
        (58, 5002, 1),  // its location reply is garbage
        (59, 5002, 2),  // fine
        (60, 5002, 3),  // faulty, dated
    ];
    for (id, miner, sector) in deals {
        d.add_deal(id, miner, sector, h, end).await;
        d.control("Devnet.Activate", json!([id])).await;
    }
    d.control("Devnet.Advance", json!([100])).await;
    d.control("Devnet.Fault", json!([56])).await;
    d.control("Devnet.Fault", json!([60])).await;
    d.control("Devnet.Advance", json!([10])).await;
    let fail = |method: &str, params: Value| {
        json!({"method": method, "params": params,
            "error": {"code": 1, "message": format!("simulated failure of {method}")}})
    };
    behave(
        &d,
        json!({"failCalls": [
            fail("Filecoin.StateSectorPartition", json!(["f05000", 1])),
            fail("Filecoin.StateMinerPartitions", json!(["f05000", 2])),
            fail("Filecoin.StateSectorExpiration", json!(["f05000", 4])),
            fail("Filecoin.StateMinerProvingDeadline", json!(["f05001"])),
            {"method": "Filecoin.StateSectorPartition", "params": ["f05002", 1], "result": "garbage"},
        ]}),
    )
    .await;

    let lotus = lotus(&d);
    let mut ids: Vec<u64> = deals.iter().map(|x| x.0).collect();
    ids.push(61); // unknown to the market
    let ends: Vec<Option<i64>> = ids.iter().map(|_| None).collect();
    let r = check_deals(&lotus, &ids, &ends).await.unwrap();
    assert_eq!(r.len(), ids.len());
    let err = |i: usize| r[i].as_ref().unwrap_err().to_string();
    assert!(err(0).contains("StateSectorPartition"), "{}", err(0));
    assert_eq!(err(1), err(0), "same sector, same failure");
    assert!(err(2).contains("StateMinerPartitions"), "{}", err(2));
    assert_eq!(err(3), err(2), "same miner deadline, same failure");
    assert_eq!(r[4].as_ref().unwrap().health, DealHealth::Active);
    // A failed expiration read is a read error, not an undated fault to repair at once.
    assert!(err(5).contains("StateSectorExpiration"), "{:?}", r[5]);
    assert!(err(6).contains("StateMinerProvingDeadline"), "{}", err(6));
    assert_eq!(r[7].as_ref().unwrap_err().code(), "MALFORMED_REPLY");
    let fine = r[8].as_ref().unwrap();
    assert_eq!(fine.health, DealHealth::Active);
    assert!(fine.epochs_since_proven.is_some());
    assert!(matches!(
        r[9].as_ref().unwrap().health,
        DealHealth::Faulty { since: Some(_) }
    ));
    assert_eq!(r[10].as_ref().unwrap().health, DealHealth::Missing);

    // Once the reads work again, every deal has its verdict.
    behave(&d, json!({"failCalls": []})).await;
    let r = check_deals(&lotus, &ids, &ends).await.unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    assert!(matches!(
        r[5].as_ref().unwrap().health,
        DealHealth::Faulty { since: Some(_) }
    ));

    // The outer error is for an endpoint failing as a whole: the deals cannot be read.
    let head = lotus.chain_head().await.unwrap();
    let once = LotusClient::new(LotusConfig {
        retries: 0,
        ..LotusConfig::new(d.lotus())
    })
    .unwrap();
    behave(&d, json!({"unavailableNext": 1})).await;
    let err = check_deals_at(&once, &head, &ids, &ends).await.unwrap_err();
    assert!(
        matches!(err, LotusError::Http { status: 503, .. }),
        "{err:?}"
    );
}

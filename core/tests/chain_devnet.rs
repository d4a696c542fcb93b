//! The chain layer against real parts: our DealStatus contract on anvil (market actor
//! double at the FEVM precompile address, Multicall3 at its canonical address) and the
//! Lotus test server playing the same chain.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::time::Duration;

use alloy::sol_types::{SolCall, SolEvent};
use common::{reference_proof, repo, Devnet};
use raas_core::chain::evm::{
    CidKeyEncoding, Deal, DealRead, DealStatusClient, DealStatusConfig, EventCursor, IDealStatus,
};
use raas_core::chain::health::{check_deals, DealHealth, FaultCheck};
use raas_core::chain::lotus::{LotusClient, LotusConfig, LotusError};
use raas_core::ErrorCode;
use serde_json::{json, Value};

const CID_A: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
const CID_B: &str = "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

fn client(d: &Devnet, key: Option<String>) -> DealStatusClient {
    let cfg = DealStatusConfig::new(d.evm(), d.deal_status());
    match key {
        Some(k) => DealStatusClient::with_signer(cfg, &k).unwrap(),
        None => DealStatusClient::new(cfg).unwrap(),
    }
}

#[test]
fn selectors_and_topics_equal_the_reference_abi() {
    // From raas-starter-kit's DealStatus (reference notes §2.3-2.4).
    assert_eq!(
        alloy::hex::encode(IDealStatus::submitCall::SELECTOR),
        "ef7fa71b"
    );
    assert_eq!(
        alloy::hex::encode(IDealStatus::submitRaaSCall::SELECTOR),
        "de52f264"
    );
    assert_eq!(
        alloy::hex::encode(IDealStatus::completeCall::SELECTOR),
        "60b93184"
    );
    assert_eq!(
        alloy::hex::encode(IDealStatus::getAllDealsCall::SELECTOR),
        "496a9d21"
    );
    assert_eq!(
        alloy::hex::encode(IDealStatus::getAllCIDsCall::SELECTOR),
        "3410e7ce"
    );
    assert_eq!(
        alloy::hex::encode(IDealStatus::getActiveDealsCall::SELECTOR),
        "f5034301"
    );
    assert_eq!(
        alloy::hex::encode(IDealStatus::getExpiringDealsCall::SELECTOR),
        "81bcd88c"
    );
    assert_eq!(
        IDealStatus::SubmitAggregatorRequest::SIGNATURE_HASH.to_string(),
        "0x104e370246a6acb34978d26af9fb437cb9f46e15e94cc27f24f305528db420a1"
    );
    assert_eq!(
        IDealStatus::SubmitAggregatorRequestWithRaaS::SIGNATURE_HASH.to_string(),
        "0xc0e29b40de38cfd5b8266e5afb21298b2c180d25d2ad808406c21f3db0c3530a"
    );
    assert_eq!(
        IDealStatus::CompleteAggregatorRequest::SIGNATURE_HASH.to_string(),
        "0xfcfb278ce1c62d14ce854540f204ef9fc7d58f09adc7bd773da126dd906bb980"
    );
    // Our compiled contract exposes exactly these selectors for the seven functions.
    let artifacts: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("contracts/artifacts.json")).unwrap(),
    )
    .unwrap();
    let methods = &artifacts["DealStatus"]["methods"];
    for (sig, sel) in [
        ("submit(bytes)", "ef7fa71b"),
        ("submitRaaS(bytes,uint256,uint256,uint256)", "de52f264"),
        ("complete(uint256,uint64,uint64,((uint64,bytes32[]),(uint64,bytes32[])),(bytes,uint64))", "60b93184"),
        ("getAllDeals(bytes)", "496a9d21"),
        ("getAllCIDs()", "3410e7ce"),
        ("getActiveDeals(bytes)", "f5034301"),
        ("getExpiringDeals(bytes,uint64)", "81bcd88c"),
    ] {
        assert_eq!(methods[sig], sel, "{sig}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_completion_and_access_control_on_anvil() {
    let d = Devnet::start();
    let owner = client(&d, Some(d.key(0)));
    let stranger = client(&d, Some(d.key(1)));
    let reader = client(&d, None);

    let a = owner.submit(CID_A).await.unwrap();
    let b = owner.submit_raas(CID_B, 3, 2880, 86_400).await.unwrap();
    assert_eq!((a.request_id, b.request_id), (1, 2));

    // Event intake: everything once, behind the confirmation depth, resumable.
    let scan = reader
        .scan_requests(EventCursor::default(), 0, 1_000_000_000)
        .await
        .unwrap();
    assert!(scan.caught_up);
    assert_eq!(scan.requests.len(), 2);
    assert_eq!(scan.requests[0].cid.as_deref(), Some(CID_A));
    assert!(scan.requests[0].raas.is_none());
    let raas = scan.requests[1].raas.unwrap();
    assert_eq!(
        (
            raas.replication_target,
            raas.repair_threshold,
            raas.renew_threshold
        ),
        (3, 2880, 86_400)
    );
    let again = reader
        .scan_requests(scan.cursor, 0, 1_000_000)
        .await
        .unwrap();
    assert!(again.requests.is_empty());
    let deep = reader
        .scan_requests(EventCursor::default(), 1_000, 1_000_000)
        .await
        .unwrap();
    assert!(deep.requests.is_empty(), "unconfirmed blocks are not read");
    let small = reader
        .scan_requests(
            EventCursor {
                next_block: a.block_number,
            },
            0,
            1,
        )
        .await
        .unwrap();
    assert_eq!(small.requests.len(), 1);
    assert_eq!(small.cursor.next_block, a.block_number + 1);

    let (proof, verifier) = reference_proof();
    let h = d.start_epoch();
    d.add_deal(1234, 4321, 1, h, h + 600_000).await;
    d.add_deal(77, 1, 2, h, h + 600_000).await;
    let done = owner
        .complete(a.request_id, 1234, 4321, &proof, &verifier)
        .await
        .unwrap();
    assert!(done.recorded);
    assert_eq!(done.aux.size_pa, 0x8_0000_0000);
    let dup = owner
        .complete(a.request_id, 1234, 4321, &proof, &verifier)
        .await
        .unwrap();
    assert!(!dup.recorded, "a duplicate records and emits nothing");
    assert_eq!(
        reader.all_deals(CID_A).await.unwrap(),
        vec![Deal {
            deal_id: 1234,
            miner_id: 4321
        }]
    );

    let err = stranger
        .complete(a.request_id, 99, 4321, &proof, &verifier)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "TX_REVERTED");
    assert!(err.to_string().contains("NotAggregator"), "{err}");
    let err = owner
        .complete(0, 99, 4321, &proof, &verifier)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("InvalidRequestId(0)"), "{err}");
    let err = owner
        .complete(a.request_id, 0, 4321, &proof, &verifier)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("InvalidDealId"), "{err}");
    let mut bad = proof.clone();
    bad.proof_index.path[0][0] ^= 1;
    let err = owner
        .complete(a.request_id, 5, 4321, &bad, &verifier)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_PROOF");

    // The contract checks the deal itself: known to the market, holding the proof's
    // aggregate, of the named provider. A Lotus-backed client refuses the same before
    // sending; either way nothing is recorded.
    d.add_piece_deal(
        88,
        4321,
        3,
        (h, h + 600_000),
        "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq",
        1 << 35,
    )
    .await;
    d.add_deal(89, 4321, 4, h, h + 600_000).await;
    let checked = client(&d, Some(d.key(0)))
        .with_lotus(LotusClient::new(LotusConfig::new(d.lotus())).unwrap());
    for (who, c) in [("contract", &owner), ("lotus", &checked)] {
        let err = c
            .complete(a.request_id, 555, 4321, &proof, &verifier)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "DEAL_NOT_FOUND", "{who}: {err}");
        let err = c
            .complete(a.request_id, 88, 4321, &proof, &verifier)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "DEAL_MISMATCH", "{who}: {err}");
        assert!(
            err.to_string().contains("baga6ea4seaqao7s73"),
            "{who}: {err}"
        );
        let err = c
            .complete(a.request_id, 89, 4000, &proof, &verifier)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "DEAL_MISMATCH", "{who}: {err}");
        assert!(err.to_string().contains("f04321"), "{who}: {err}");
    }
    assert!(
        checked
            .complete(a.request_id, 88, 4321, &proof, &verifier)
            .await
            .unwrap_err()
            .to_string()
            .contains("pieceCid:"),
        "the Lotus check answers before the contract is asked"
    );
    let err = reader.submit(CID_A).await.unwrap_err();
    assert_eq!(err.code(), "NO_SIGNER");
    let err = reader.all_deals("not-a-cid").await.unwrap_err();
    assert_eq!(err.code(), "INVALID_CID");

    // The owner manages the allow-list.
    let me = stranger.signer_address().unwrap();
    owner.set_aggregator(&me, true).await.unwrap();
    assert!(
        stranger
            .complete(a.request_id, 77, 1, &proof, &verifier)
            .await
            .unwrap()
            .recorded
    );

    assert_eq!(
        reader.all_cids().await.unwrap(),
        vec![CID_A.to_string(), CID_B.to_string()]
    );
    assert_eq!(
        reader.max_replications().await.unwrap(),
        None,
        "not a Lighthouse contract"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn active_and_expiring_deals_follow_the_market() {
    let d = Devnet::start();
    let owner = client(&d, Some(d.key(0)));
    let h = d.start_epoch();
    let (proof, verifier) = reference_proof();
    let req = owner.submit(CID_A).await.unwrap().request_id;
    // 11: active long; 12: active, ends soon; 13: never activated; 14: terminated;
    // 15: ended but unsettled (still answers activation); 16 unknown to the market.
    d.add_deal(11, 1000, 1, h, h + 600_000).await;
    d.add_deal(12, 1000, 2, h, h + 5_000).await;
    d.add_deal(13, 1001, 3, h + 10, h + 600_000).await;
    d.add_deal(14, 1001, 4, h, h + 600_000).await;
    d.add_deal(15, 1002, 5, h - 1_000, h + 200).await;
    for id in [11, 12, 14, 15] {
        d.control("Devnet.Activate", json!([id])).await;
    }
    let before = {
        use alloy::providers::Provider;
        owner.provider().get_block_number().await.unwrap()
    };
    for (id, miner) in [(11, 1000), (12, 1000), (13, 1001), (14, 1001), (15, 1002)] {
        owner
            .complete(req, id, miner, &proof, &verifier)
            .await
            .unwrap();
    }
    // Publish 16, record it, then the market forgets it (cleaned up): it must read as gone.
    d.add_deal(16, 1003, 6, h, h + 600_000).await;
    owner
        .complete(req, 16, 1003, &proof, &verifier)
        .await
        .unwrap();
    market_remove(&d, &owner, 16).await;
    // Terminated after it was recorded: a terminated deal is cleaned up at once, and
    // `complete` refuses a deal the market no longer has.
    d.control("Devnet.Terminate", json!([14])).await;
    let err = owner
        .complete(req, 14, 1001, &proof, &verifier)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "DEAL_NOT_FOUND", "{err}");
    let ids = |v: Vec<Deal>| v.into_iter().map(|x| x.deal_id).collect::<Vec<_>>();
    let reader = client(&d, None);
    assert_eq!(
        ids(reader.all_deals(CID_A).await.unwrap()),
        vec![11, 12, 13, 14, 15, 16]
    );
    assert_eq!(
        ids(reader.active_deals(CID_A).await.unwrap()),
        vec![11, 12, 15]
    );
    assert_eq!(
        ids(reader.expiring_deals(CID_A, 10_000).await.unwrap()),
        vec![12, 15]
    );
    assert_eq!(
        ids(reader.expiring_deals(CID_A, 100).await.unwrap()),
        Vec::<u64>::new()
    );

    assert_eq!(
        reader.deal_expiry(12).await.unwrap(),
        Some((h, h + 5_000)),
        "end = start + duration"
    );
    assert_eq!(reader.deal_expiry(16).await.unwrap(), None);
    d.control("Devnet.Advance", json!([300])).await;
    assert_eq!(
        ids(reader.active_deals(CID_A).await.unwrap()),
        vec![11, 12],
        "15 ended, unsettled"
    );

    // Batched: the same answers through Multicall3, one entry per CID, in order.
    let many = reader
        .active_deals_many(&[CID_A.to_string(), CID_B.to_string(), CID_A.to_string()])
        .await
        .unwrap();
    assert_eq!(ids(many[0].as_ref().unwrap().clone()), vec![11, 12]);
    assert!(many[1].as_ref().unwrap().is_empty());
    assert_eq!(many[2].as_ref().unwrap(), many[0].as_ref().unwrap());

    // Pinned to a block: the state then, not now (a sweep's reads all see one block).
    let all = [(CID_A.to_string(), DealRead::All)];
    let then = reader.deals_many_at(&all, Some(before)).await.unwrap();
    assert!(
        then[0].as_ref().unwrap().is_empty(),
        "no deal was completed yet at block {before}"
    );
    let now = reader.deals_many_at(&all, None).await.unwrap();
    assert_eq!(ids(now[0].as_ref().unwrap().clone()).len(), 6);

    // Binary keys are a different key space.
    let binary = DealStatusClient::new(DealStatusConfig {
        key_encoding: CidKeyEncoding::Binary,
        ..DealStatusConfig::new(d.evm(), d.deal_status())
    })
    .unwrap();
    assert!(binary.all_deals(CID_A).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn lotus_client_shapes_errors_and_transport() {
    let d = Devnet::start();
    let h = d.start_epoch();
    d.add_deal(21, 2000, 9, h + 100, h + 10_000).await;
    let lotus = LotusClient::new(LotusConfig::new(d.lotus())).unwrap();

    let head = lotus.chain_head().await.unwrap();
    assert!(
        head.height > h,
        "the head follows anvil, which mined the deal's transaction"
    );
    assert_eq!(lotus.network_version().await.unwrap(), 28);
    assert_eq!(lotus.lookup_id("f02000").await.unwrap(), 2000);
    assert_eq!(
        lotus.sector_info(2000, 9).await.unwrap(),
        None,
        "not sealed yet"
    );
    d.control("Devnet.Activate", json!([21])).await;
    let info = lotus.sector_info(2000, 9).await.unwrap().unwrap();
    assert_eq!((info.sector_number, info.seal_proof), (9, 8));
    assert!(lotus.miner_faults(2000).await.unwrap().is_empty());
    d.control("Devnet.Fault", json!([21])).await;
    assert!(lotus.miner_faults(2000).await.unwrap().contains(9));
    let deal = lotus.market_deal(21, Some(&head.cids)).await.unwrap();
    assert_eq!(deal.proposal.provider, "f02000");
    assert!(deal.state.sector_start_epoch > 0);
    assert_eq!(
        lotus.market_deal(999, None).await.unwrap_err(),
        LotusError::DealNotFound { deal_id: 999 }
    );
    let err = lotus.sector_partition(2000, 10).await.unwrap_err();
    assert!(err.to_string().contains("not due at any deadline"), "{err}");
    let err = lotus.sector_partition(777, 1).await.unwrap_err();
    assert_eq!(err.code(), "ACTOR_NOT_FOUND");
    let err = lotus
        .call::<Value>("Filecoin.ClientQueryAsk", json!([]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "METHOD_NOT_AVAILABLE");
    let err = lotus
        .call::<Value>("Filecoin.StateMarketStorageDeal", json!([21]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("wrong param count"), "{err}");

    // Batches keep order and per-entry errors.
    let many = lotus.market_deals(&[21, 998, 21], None).await.unwrap();
    assert!(many[0].is_ok() && many[2].is_ok());
    assert_eq!(many[1].as_ref().unwrap_err().code(), "DEAL_NOT_FOUND");

    // Transient failures are retried; the rest are not.
    let now = lotus.chain_head().await.unwrap().height;
    d.control("Devnet.ResetStats", json!([])).await;
    d.control("Devnet.SetBehaviour", json!([{"failNext": 2}]))
        .await;
    assert_eq!(lotus.chain_head().await.unwrap().height, now);
    assert_eq!(
        d.control("Devnet.Stats", json!([])).await["requests"],
        3,
        "two failures, one success"
    );
    d.control("Devnet.SetBehaviour", json!([{"garbageNext": 1}]))
        .await;
    assert_eq!(
        lotus.chain_head().await.unwrap_err().code(),
        "MALFORMED_REPLY"
    );
    let impatient = LotusClient::new(LotusConfig {
        timeout: Duration::from_millis(100),
        retries: 1,
        ..LotusConfig::new(d.lotus())
    })
    .unwrap();
    d.control("Devnet.SetBehaviour", json!([{"delayMs": 400}]))
        .await;
    assert_eq!(
        impatient.chain_head().await.unwrap_err().code(),
        "RPC_TIMEOUT"
    );
    d.control(
        "Devnet.SetBehaviour",
        json!([{"delayMs": 0, "token": "s3cret"}]),
    )
    .await;
    let wrong = LotusClient::new(LotusConfig {
        token: Some("nope".into()),
        ..LotusConfig::new(d.lotus())
    })
    .unwrap();
    let err = wrong.chain_head().await.unwrap_err();
    assert_eq!(err.code(), "UNAUTHORIZED");
    assert!(
        !err.to_string().contains("nope"),
        "the token never appears in errors"
    );
    let right = LotusClient::new(LotusConfig {
        token: Some("s3cret".into()),
        ..LotusConfig::new(d.lotus())
    })
    .unwrap();
    assert!(right.chain_head().await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn deal_health_through_a_lifecycle() {
    let d = Devnet::start();
    let h = d.start_epoch();
    let lotus = LotusClient::new(LotusConfig::new(d.lotus())).unwrap();
    d.add_deal(31, 3000, 1, h + 50, h + 20_000).await; // activates
    d.add_deal(32, 3000, 2, h + 50, h + 20_000).await; // never activates
    d.add_deal(33, 3001, 3, h + 50, h + 5_000).await; // activates, then expires
    let ids = [31, 32, 33, 34];
    let ends = [Some(h + 20_000), None, Some(h + 5_000), Some(h + 9_000)];
    let health = |reports: Vec<Result<raas_core::chain::health::HealthReport, LotusError>>| {
        reports
            .into_iter()
            .map(|r| r.unwrap().health)
            .collect::<Vec<_>>()
    };

    let r = health(check_deals(&lotus, &ids, &ends).await.unwrap());
    assert_eq!(
        r,
        [
            DealHealth::NotActivated,
            DealHealth::NotActivated,
            DealHealth::NotActivated,
            DealHealth::Terminated
        ]
    );

    d.control("Devnet.Activate", json!([31])).await;
    d.control("Devnet.Activate", json!([33])).await;
    d.control("Devnet.Advance", json!([100])).await;
    let reports = check_deals(&lotus, &ids, &ends).await.unwrap();
    let first = reports[0].as_ref().unwrap();
    assert_eq!(first.health, DealHealth::Active);
    assert_eq!(first.fault_check, FaultCheck::Checked);
    assert!(first.epochs_since_proven.unwrap() <= 2880);
    assert_eq!(
        reports[1].as_ref().unwrap().health,
        DealHealth::Missing,
        "start passed unactivated"
    );

    // Scheduled: 31 faults in 10 epochs, recovers 500 later.
    let now = lotus.chain_head().await.unwrap().height;
    d.control("Devnet.Schedule", json!([now + 10, "fault", [31]]))
        .await;
    d.control("Devnet.Schedule", json!([now + 510, "recover", [31]]))
        .await;
    d.control("Devnet.Advance", json!([200])).await;
    let r = check_deals(&lotus, &[31], &[None])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(
        r.health,
        DealHealth::Faulty {
            since: Some(now + 10)
        }
    );
    assert_eq!(r.epochs_since_proven, Some(r.head - (now + 10)));
    assert!(r.epochs_since_proven.unwrap() >= 190);
    d.control("Devnet.Advance", json!([400])).await;
    assert_eq!(
        check_deals(&lotus, &[31], &[None]).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .health,
        DealHealth::Active
    );

    d.control("Devnet.Advance", json!([5_000])).await;
    assert_eq!(
        check_deals(&lotus, &[33], &[None]).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .health,
        DealHealth::Expired
    );

    d.control("Devnet.Terminate", json!([31])).await;
    let r = health(
        check_deals(&lotus, &[31, 31], &[Some(h + 20_000), None])
            .await
            .unwrap(),
    );
    assert_eq!(r, [DealHealth::Terminated, DealHealth::Missing]);

    // A gateway without the fault methods: the verdict says so instead of guessing.
    d.add_deal(35, 3002, 7, h, h + 90_000).await;
    d.control("Devnet.Activate", json!([35])).await;
    d.control("Devnet.SetBehaviour", json!([{"gateway": true}]))
        .await;
    let r = check_deals(&lotus, &[35], &[None])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(
        (r.health, r.fault_check, r.epochs_since_proven),
        (DealHealth::Active, FaultCheck::Unavailable, None)
    );
}

alloy::sol! {
    #[sol(rpc)]
    interface IPrecompileProbe {
        function viaDelegatecall(bytes input) external returns (bool ok, bytes out);
        function viaCall(bytes input) external returns (bool ok, bytes out);
        function viaStaticcall(bytes input) external view returns (bool ok, bytes out);
    }
}

fn words(ws: &[&str]) -> Vec<u8> {
    ws.iter()
        .flat_map(|w| alloy::hex::decode(format!("{w:0>64}")).unwrap())
        .collect()
}

/// The market double answers exactly as the FEVM precompile + market actor do
/// (fevm-actor-calls notes §1.2-§3.3), byte for byte.
#[tokio::test(flavor = "multi_thread")]
async fn market_double_answers_byte_for_byte() {
    use alloy::providers::ProviderBuilder;
    let d = Devnet::start();
    let provider = ProviderBuilder::new().connect_http(d.evm().parse().unwrap());
    let probe_address = d.info["precompileProbe"].as_str().unwrap().parse().unwrap();
    let probe = IPrecompileProbe::new(probe_address, provider);
    let h = d.start_epoch();
    d.add_deal(1234, 2000, 1, h + 10, h + 10 + 518_400).await;

    // §3.1: GetDealActivation(1234), 256 bytes, no selector.
    let activation = |method: &str, codec: &str, actor: &str, cbor: &str, len: &str| {
        words(&[
            method,
            "0",
            "1",
            codec,
            "c0",
            actor,
            len,
            &format!("{cbor:0<64}"),
        ])
    };
    let input = activation("9904f2ff", "51", "5", "1904d2", "3");
    assert_eq!(input.len(), 256);
    let call = |bytes: Vec<u8>| {
        let p = &probe;
        async move { p.viaDelegatecall(bytes.into()).call().await.unwrap() }
    };

    // Published, not activated: [-1, -1] = 82 20 20.
    let r = call(input.clone()).await;
    assert!(r.ok);
    assert_eq!(
        r.out.to_vec(),
        words(&["0", "51", "60", "3", &format!("{:0<64}", "822020")])
    );

    // Activated at epoch A: [A, -1] = 82 1a <A as u32> 20.
    d.control("Devnet.Activate", json!([1234])).await;
    let lotus = LotusClient::new(LotusConfig::new(d.lotus())).unwrap();
    let a = lotus
        .market_deal(1234, None)
        .await
        .unwrap()
        .state
        .sector_start_epoch;
    let r = call(input.clone()).await;
    let cbor = format!("821a{a:08x}20");
    assert_eq!(
        r.out.to_vec(),
        words(&["0", "51", "60", "7", &format!("{cbor:0<64}")])
    );

    // GetDealTerm: [start, duration] (the second field is the duration).
    let r = call(activation("09c30b20", "51", "5", "1904d2", "3")).await;
    let cbor = format!("821a{:08x}1a{:08x}", h + 10, 518_400);
    assert_eq!(
        r.out.to_vec(),
        words(&["0", "51", "60", "b", &format!("{cbor:0<64}")])
    );

    // §3.3: unknown deal (17) and terminated deal (32): 128 bytes, codec 0, no data.
    let r = call(activation("9904f2ff", "51", "5", "1904d3", "3")).await;
    assert_eq!(r.out.to_vec(), words(&["11", "0", "60", "0"]));
    d.control("Devnet.Terminate", json!([1234])).await;
    let r = call(input.clone()).await;
    assert_eq!(r.out.to_vec(), words(&["20", "0", "60", "0"]));

    // No actor with that id: exit -6.
    let r = call(activation("9904f2ff", "51", "6", "1904d2", "3")).await;
    assert_eq!(
        r.out.to_vec(),
        words(&[
            "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa",
            "0",
            "60",
            "0"
        ])
    );
    // Params that are not a bare CBOR uint: 21; no params: 16; unexported method: 22.
    let r = call(activation("9904f2ff", "51", "5", "811904d2", "4")).await;
    assert_eq!(r.out.to_vec()[..32], words(&["15"])[..]);
    let r = call(words(&["9904f2ff", "0", "1", "0", "c0", "5", "0"])).await;
    assert_eq!(r.out.to_vec()[..32], words(&["10"])[..]);
    let r = call(activation("12345678", "51", "5", "1904d2", "3")).await;
    assert_eq!(r.out.to_vec()[..32], words(&["16"])[..]);

    // Refused outright (call fails, no data): reserved method, DAG-CBOR codec, flags > 1,
    // and any call kind but DELEGATECALL.
    for bad in [
        activation("2", "51", "5", "1904d2", "3"),
        activation("9904f2ff", "71", "5", "1904d2", "3"),
        words(&[
            "9904f2ff",
            "0",
            "2",
            "51",
            "c0",
            "5",
            "3",
            &format!("{:0<64}", "1904d2"),
        ]),
    ] {
        let r = call(bad).await;
        assert!(!r.ok && r.out.is_empty());
    }
    let r = probe.viaCall(input.clone().into()).call().await.unwrap();
    assert!(!r.ok && r.out.is_empty());
    let r = probe.viaStaticcall(input.into()).call().await.unwrap();
    assert!(!r.ok && r.out.is_empty());
}

/// Makes the market double forget deal `id` (its getters answer 17, as for a deal cleaned
/// up), on anvil only.
async fn market_remove(d: &Devnet, signer: &DealStatusClient, id: u64) {
    alloy::sol! {
        #[sol(rpc)]
        interface IMarketState { function remove(uint64 id) external; }
    }
    let m = IMarketState::new(
        d.info["marketState"].as_str().unwrap().parse().unwrap(),
        signer.provider().clone(),
    );
    let r = m
        .remove(id)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
}

/// A small deterministic generator, so a failing aggregate is replayed by its seed.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test]
async fn aggregates_proofs_pass_complete_on_anvil_and_tampered_ones_revert_on_chain() {
    use alloy::network::TransactionBuilder;
    use alloy::providers::{Provider, ProviderBuilder};
    use raas_core::aggregate::{aggregate, verify_inclusion};
    use raas_core::cid::piece::PieceInfo;

    let d = Devnet::start();
    let owner = client(&d, Some(d.key(0)));
    let req = owner.submit(CID_A).await.unwrap().request_id;
    let provider = ProviderBuilder::new().connect_http(d.evm().parse().unwrap());
    let from = owner.signer_address().unwrap().parse().unwrap();
    let to = d.deal_status().parse().unwrap();
    let mut deal = 100u64;
    for seed in 1..=4u64 {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let deal_size = 1u64 << (14 + xorshift(&mut s) % 20); // 16 KiB to 8 GiB
        let count = 1 + xorshift(&mut s) % 4; // every aggregate indexes at least 4
        let pieces: Vec<PieceInfo> = (0..count)
            .map(|_| {
                let mut root = [0u8; 32];
                for b in &mut root {
                    *b = xorshift(&mut s) as u8;
                }
                root[31] &= 0x3f;
                let padded_size = 128u64 << (xorshift(&mut s) % 6);
                PieceInfo {
                    root,
                    padded_size,
                    payload_size: padded_size / 128 * 127,
                }
            })
            .collect();
        let a = aggregate(&pieces, deal_size).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let comm_p = a.piece.comm_p().to_string();
        let h = d.start_epoch();
        for proof in &a.proofs {
            verify_inclusion(proof, &comm_p, Some(deal_size)).unwrap();
            let (inclusion, verifier) = proof.to_typed().unwrap();
            deal += 1;
            // One deal per piece, each of the aggregate (as SPs seal one deal per copy).
            d.add_piece_deal(deal, 1000, deal, (h, h + 600_000), &comm_p, deal_size)
                .await;
            let r = owner
                .complete(req, deal, 1000, &inclusion, &verifier)
                .await
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert!(r.recorded);
            assert_eq!(r.aux.size_pa, deal_size, "seed {seed}");
            assert_eq!(r.aux.comm_pa[7..], a.piece.root, "seed {seed}");

            // The same proof with one node flipped, sent straight to the contract (past the
            // client's own check, which refuses it first): the contract reverts.
            let (mut bad, verifier) = proof.to_typed().unwrap();
            let at = (xorshift(&mut s) as usize) % bad.proof_index.path.len();
            bad.proof_index.path[at][0] ^= 1;
            let abi = |p: &raas_core::podsi::ProofData| IDealStatus::ProofData {
                index: p.index,
                path: p.path.iter().map(|h| h.into()).collect(),
            };
            let call = IDealStatus::completeCall {
                _id: alloy::primitives::U256::from(req),
                _dealId: deal + 10_000,
                _minerId: 1000,
                _proof: IDealStatus::InclusionProof {
                    proofSubtree: abi(&bad.proof_subtree),
                    proofIndex: abi(&bad.proof_index),
                },
                _verifierData: IDealStatus::InclusionVerifierData {
                    commPc: verifier.comm_pc.clone().into(),
                    sizePc: verifier.size_pc,
                },
            };
            let tx = alloy::rpc::types::TransactionRequest::default()
                .with_from(from)
                .with_to(to)
                .with_input(call.abi_encode());
            let err = provider.call(tx).await.unwrap_err();
            assert!(
                err.to_string().contains("data commitments"),
                "seed {seed}: {err}"
            );
            let off_chain = owner
                .complete(req, deal + 10_000, 1000, &bad, &verifier)
                .await
                .unwrap_err();
            assert_eq!(off_chain.code(), "INVALID_PROOF");
        }
    }
    let deals = client(&d, None).all_deals(CID_A).await.unwrap();
    assert_eq!(
        deals.len() as u64,
        deal - 100,
        "every proof recorded, no tampered one"
    );
}

/// Gas of one transaction, from its receipt.
async fn gas_of(d: &DealStatusClient, tx_hash: &str) -> u64 {
    use alloy::providers::Provider;
    d.provider()
        .get_transaction_receipt(tx_hash.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .gas_used
}

/// The README's gas table (between `<!-- gas:begin -->` and `<!-- gas:end -->`) is what
/// this run measured, within 5 %. `GAS_WRITE=1` rewrites it.
fn check_readme_gas(rows: &[(String, u64, String)]) {
    let mut table = String::from("| Function | Gas | Measured |\n|---|---:|---|\n");
    for (f, g, when) in rows {
        table.push_str(&format!("| `{f}` | {g} | {when} |\n"));
    }
    let dir = repo().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("gas.md"), &table).unwrap();
    println!("{table}");
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = ("<!-- gas:begin -->\n", "<!-- gas:end -->");
    let start = readme.find(begin).expect("README has a gas table") + begin.len();
    let stop = readme[start..].find(end).unwrap() + start;
    if std::env::var("GAS_WRITE").is_ok() {
        let text = format!("{}{table}{}", &readme[..start], &readme[stop..]);
        std::fs::write(&path, text).unwrap();
        return;
    }
    let documented: std::collections::HashMap<&str, u64> = readme[start..stop]
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            Some((cells.get(1)?.trim_matches('`'), cells.get(2)?.parse().ok()?))
        })
        .collect();
    for (f, g, _) in rows {
        let doc = *documented
            .get(f.as_str())
            .unwrap_or_else(|| panic!("README's gas table lacks {f}: run GAS_WRITE=1"));
        assert!(
            doc.abs_diff(*g) * 20 <= doc,
            "{f}: README says {doc} gas, measured {g}: run GAS_WRITE=1 cargo test -p raas-core --test chain_devnet gas"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gas_of_every_function_and_reads_bounded_after_100_renewals() {
    use alloy::primitives::{Bytes, U256};
    let d = Devnet::start();
    let owner = client(&d, Some(d.key(0)));
    let other = client(&d, Some(d.key(1)));
    let c = IDealStatus::new(d.deal_status().parse().unwrap(), owner.provider().clone());
    let key = || Bytes::from(CID_A.as_bytes().to_vec());
    let (proof, verifier) = reference_proof();
    let mut rows: Vec<(String, u64, String)> = vec![];
    let row = |rows: &mut Vec<(String, u64, String)>, f: &str, g: u64, when: &str| {
        rows.push((f.to_string(), g, when.to_string()))
    };

    let s = owner.submit(CID_A).await.unwrap();
    row(
        &mut rows,
        "submit",
        gas_of(&owner, &s.tx_hash).await,
        "a 59-byte CID key",
    );
    let r = owner.submit_raas(CID_A, 3, 2880, 86_400).await.unwrap();
    row(
        &mut rows,
        "submitRaaS",
        gas_of(&owner, &r.tx_hash).await,
        "a 59-byte CID key",
    );
    let req = s.request_id;

    // 100 renewals: each deal is made, recorded, and ends before the next is recorded.
    let mut active_after_1 = 0;
    for k in 0..=100u64 {
        let h = d.control("Devnet.Stats", json!([])).await["height"]
            .as_i64()
            .unwrap();
        let id = 1000 + k;
        // Short deals: anvil's cost per mined block grows with the blocks it holds.
        d.add_deal(id, 1000, id, h, h + 10).await;
        d.control("Devnet.Activate", json!([id])).await;
        let done = owner
            .complete(req, id, 1000, &proof, &verifier)
            .await
            .unwrap();
        assert!(done.recorded);
        let active = c.getActiveDeals(key()).estimate_gas().await.unwrap();
        assert_eq!(
            owner.active_deals(CID_A).await.unwrap().len(),
            1,
            "renewal {k}"
        );
        if k == 0 {
            active_after_1 = active;
            row(
                &mut rows,
                "complete",
                gas_of(&owner, &done.tx_hash).await,
                "the first deal of a CID",
            );
            row(&mut rows, "getActiveDeals", active, "1 deal");
            let exp = c.getExpiringDeals(key(), 10).estimate_gas().await.unwrap();
            row(&mut rows, "getExpiringDeals", exp, "1 deal");
        }
        if k == 100 {
            row(
                &mut rows,
                "complete (renewal)",
                gas_of(&owner, &done.tx_hash).await,
                "after 100 renewals: prunes the ended deal",
            );
            row(
                &mut rows,
                "getActiveDeals (renewed)",
                active,
                "after 100 renewals",
            );
            let exp = c.getExpiringDeals(key(), 10).estimate_gas().await.unwrap();
            row(
                &mut rows,
                "getExpiringDeals (renewed)",
                exp,
                "after 100 renewals",
            );
            assert!(
                active <= 2 * active_after_1,
                "getActiveDeals after 100 renewals costs {active} gas, after 1 {active_after_1}"
            );
            break;
        }
        d.control("Devnet.Advance", json!([10])).await;
        assert!(
            owner.active_deals(CID_A).await.unwrap().is_empty(),
            "renewal {k}: ended"
        );
    }
    assert_eq!(
        owner.all_deals(CID_A).await.unwrap().len(),
        101,
        "the history stays whole"
    );
    let all = c.getAllDeals(key()).estimate_gas().await.unwrap();
    row(
        &mut rows,
        "getAllDeals",
        all,
        "101 deals (the whole history)",
    );
    let prune = c.prune(key()).estimate_gas().await.unwrap();
    row(&mut rows, "prune", prune, "1 live deal");
    let expiry = c.getDealExpiry(1100).estimate_gas().await.unwrap();
    row(&mut rows, "getDealExpiry", expiry, "");

    // Pages of CIDs: 2 requests so far, then 3.
    owner.submit(CID_B).await.unwrap();
    let cids = c.getAllCIDs().estimate_gas().await.unwrap();
    row(&mut rows, "getAllCIDs", cids, "3 requests");
    let page = c
        .getCIDsPage(U256::ZERO, U256::from(2))
        .estimate_gas()
        .await
        .unwrap();
    row(&mut rows, "getCIDsPage", page, "a page of 2");
    let p1 = owner.cids_page(0, 2).await.unwrap();
    assert_eq!(
        (p1.cids.clone(), p1.total, p1.next),
        (vec![CID_A.to_string(), CID_A.to_string()], 3, Some(2))
    );
    let p2 = owner.cids_page(2, 2).await.unwrap();
    assert_eq!((p2.cids.clone(), p2.next), (vec![CID_B.to_string()], None));
    assert!(owner.cids_page(5, 2).await.unwrap().cids.is_empty());
    let err = c
        .getCIDsPage(U256::ZERO, U256::ZERO)
        .call()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("revert"), "{err}");

    // Ownership moves in two steps, never to zero.
    let me = other.signer_address().unwrap();
    let tx = owner.set_aggregator(&me, true).await.unwrap();
    row(&mut rows, "setAggregator", gas_of(&owner, &tx).await, "");
    let err = owner
        .transfer_ownership("0x0000000000000000000000000000000000000000")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ZeroAddress"), "{err}");
    let err = other.accept_ownership().await.unwrap_err();
    assert!(err.to_string().contains("NotPendingOwner"), "{err}");
    let tx = owner.transfer_ownership(&me).await.unwrap();
    row(
        &mut rows,
        "transferOwnership",
        gas_of(&owner, &tx).await,
        "",
    );
    let still: String = c.owner().call().await.unwrap().to_checksum(None);
    assert_eq!(
        still,
        owner.signer_address().unwrap(),
        "not moved before it is accepted"
    );
    let tx = other.accept_ownership().await.unwrap();
    row(&mut rows, "acceptOwnership", gas_of(&other, &tx).await, "");
    let moved: String = c.owner().call().await.unwrap().to_checksum(None);
    assert_eq!(moved, me);
    let err = owner.set_aggregator(&me, false).await.unwrap_err();
    assert!(err.to_string().contains("NotOwner"), "{err}");

    check_readme_gas(&rows);
}

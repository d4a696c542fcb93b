//! Replies from outside are read up to a ceiling: an oversized, endless or reset reply from
//! Lotus or the EVM RPC is cut with `REPLY_TOO_LARGE` (or retried, for a reset), and request
//! events too large to read never stall the scan.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::time::{Duration, Instant};

use alloy::primitives::Bytes;
use alloy::providers::ProviderBuilder;
use alloy::signers::local::PrivateKeySigner;
use common::Devnet;
use raas_core::chain::evm::{
    DealStatusClient, DealStatusConfig, EventCursor, IDealStatus, MAX_EVENT_CID_BYTES,
};
use raas_core::chain::lotus::{LotusClient, LotusConfig, LotusError};
use raas_core::ErrorCode;
use serde_json::{json, Value};

async fn requests(d: &Devnet) -> u64 {
    d.control("Devnet.Stats", json!([])).await["requests"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn lotus_replies_over_the_ceiling_are_cut_and_resets_retried() {
    let d = Devnet::start();
    let limited = LotusClient::new(LotusConfig {
        max_reply_bytes: 1 << 20,
        retry_base: Duration::from_millis(10),
        ..LotusConfig::new(d.lotus())
    })
    .unwrap();
    for (what, behaviour) in [
        ("announced", json!({"hugeNext": 1, "hugeBytes": 4 << 20})),
        (
            "chunked",
            json!({"hugeNext": 1, "hugeBytes": 4 << 20, "hugeChunked": true}),
        ),
        ("endless", json!({"endlessNext": 1})),
    ] {
        d.control("Devnet.ResetStats", json!([])).await;
        d.control("Devnet.SetBehaviour", json!([behaviour])).await;
        let t = Instant::now();
        let err = limited
            .call::<Value>("Filecoin.ChainHead", json!([]))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            LotusError::ReplyTooLarge {
                method: "Filecoin.ChainHead",
                limit: 1 << 20
            },
            "{what}"
        );
        assert_eq!(err.code(), "REPLY_TOO_LARGE");
        assert!(!err.is_retryable(), "as large again: not retried");
        assert_eq!(requests(&d).await, 1, "{what}: asked once");
        assert!(t.elapsed() < Duration::from_secs(10), "{what}: cut early");
    }

    // The same 4 MiB reply under the default ceiling (16 MiB) is read whole: the limit, not
    // the reply, is what cut it above.
    let default = LotusClient::new(LotusConfig::new(d.lotus())).unwrap();
    d.control(
        "Devnet.SetBehaviour",
        json!([{"hugeNext": 1, "hugeBytes": 4 << 20, "hugeChunked": false}]),
    )
    .await;
    let v = default
        .call::<Value>("Filecoin.ChainHead", json!([]))
        .await
        .unwrap();
    assert!(v.as_str().unwrap().len() > 4_000_000);

    // A connection reset mid-body is a transport failure: retried, then answered.
    d.control("Devnet.ResetStats", json!([])).await;
    d.control("Devnet.SetBehaviour", json!([{"resetNext": 1}]))
        .await;
    let tip = limited.chain_head().await.unwrap();
    assert!(tip.height > 0);
    assert_eq!(requests(&d).await, 2, "the reset reply, then the retry");
    // Out of retries, it is NETWORK (retryable by the caller), never a panic or a hang.
    let once = LotusClient::new(LotusConfig {
        retries: 0,
        ..LotusConfig::new(d.lotus())
    })
    .unwrap();
    d.control("Devnet.SetBehaviour", json!([{"resetNext": 1}]))
        .await;
    let err = once.chain_head().await.unwrap_err();
    assert_eq!(err.code(), "NETWORK", "{err}");
    assert!(err.is_retryable());
}

#[tokio::test(flavor = "multi_thread")]
async fn evm_replies_over_the_ceiling_are_cut() {
    let d = Devnet::start();
    // The Lotus test server answers any JSON-RPC path with its behaviours first: an EVM
    // client pointed at it meets the same huge and endless replies.
    let client = DealStatusClient::new(DealStatusConfig {
        max_reply_bytes: 1 << 20,
        ..DealStatusConfig::new(d.lotus(), d.deal_status())
    })
    .unwrap();
    for behaviour in [
        json!({"hugeNext": 1, "hugeBytes": 4 << 20, "hugeChunked": false}),
        json!({"hugeNext": 1, "hugeBytes": 4 << 20, "hugeChunked": true}),
        json!({"endlessNext": 1}),
    ] {
        d.control("Devnet.SetBehaviour", json!([behaviour.clone()]))
            .await;
        let err = client
            .active_deals("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "REPLY_TOO_LARGE", "{behaviour}: {err}");
        assert!(!err.is_retryable());
        assert!(
            !err.to_string().contains("127.0.0.1"),
            "no URL in the error: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_events_too_large_to_read_never_stall_the_scan() {
    let d = Devnet::start();
    let signer: PrivateKeySigner = d.key(1).parse().unwrap();
    let provider = ProviderBuilder::new()
        .wallet(signer)
        .connect_http(d.evm().parse().unwrap());
    let contract = IDealStatus::new(d.deal_status().parse().unwrap(), &provider);
    let submit = |cid: Vec<u8>| {
        let call = contract.submit(Bytes::from(cid));
        async move {
            call.send()
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap()
                .block_number
                .unwrap()
        }
    };
    // Twelve ordinary requests, one block each (anvil mines per transaction); one with a
    // 600-byte key (over MAX_EVENT_CID_BYTES); one whose log alone is over the ceiling.
    let cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    let first = submit(cid.as_bytes().to_vec()).await;
    for _ in 0..5 {
        submit(cid.as_bytes().to_vec()).await;
    }
    let long = submit(vec![b'b'; MAX_EVENT_CID_BYTES + 88]).await;
    let huge = submit(vec![b'c'; 8_000]).await;
    for _ in 0..6 {
        submit(cid.as_bytes().to_vec()).await;
    }

    // A ceiling of 6 KiB holds a few ordinary logs (~700 bytes of JSON each), not the huge
    // one (16 KiB of hex).
    let reader = DealStatusClient::new(DealStatusConfig {
        max_reply_bytes: 6 << 10,
        ..DealStatusConfig::new(d.evm(), d.deal_status())
    })
    .unwrap();
    let mut cursor = EventCursor { next_block: first };
    let (mut found, mut skipped) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let scan = reader.scan_requests(cursor, 0, 1_000).await.unwrap();
        assert!(
            scan.cursor.next_block > cursor.next_block,
            "always moves on"
        );
        found.extend(scan.requests);
        skipped.extend(scan.skipped);
        cursor = scan.cursor;
        if scan.caught_up {
            break;
        }
    }
    assert_eq!(found.len(), 12, "every ordinary request, once");
    let ids: Vec<u64> = found.iter().map(|r| r.request_id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 12, "no request twice: {ids:?}");
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    let long_skip = skipped.iter().find(|s| s.block_number == long).unwrap();
    assert!(
        long_skip.reason.contains("bytes, over the limit"),
        "{long_skip:?}"
    );
    let huge_skip = skipped.iter().find(|s| s.block_number == huge).unwrap();
    assert!(
        huge_skip.reason.starts_with("REPLY_TOO_LARGE"),
        "{huge_skip:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pin_service_reply_over_the_ceiling_is_not_kept_as_the_receipt() {
    use raas_core::engine::{DealRequest, DealRequestHook, PinHook};
    use raas_core::jobs::ShortfallReason;
    let d = Devnet::start();
    // The Lotus test server answers any POST with its behaviours first: here it plays a
    // pin service whose success reply is 4 MiB.
    let hook = PinHook::new(&d.lotus(), Some("t".into()), None).unwrap();
    let request = DealRequest {
        job_id: "j".into(),
        cid: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku".into(),
        reason: ShortfallReason::Replication,
        copies_needed: 1,
        replacing: vec![],
        idempotency_key: "k".into(),
        seq: 1,
        follows: None,
        attempt: 1,
        checkpoint: None,
    };
    for chunked in [false, true] {
        d.control(
            "Devnet.SetBehaviour",
            json!([{"hugeNext": 1, "hugeBytes": 4 << 20, "hugeChunked": chunked}]),
        )
        .await;
        let receipt = hook.deliver(&request).await.unwrap();
        assert_eq!(receipt["status"], 200, "delivered: the service said yes");
        assert_eq!(receipt["reply"]["error"]["code"], "REPLY_TOO_LARGE");
        assert!(receipt.to_string().len() < 1_000, "nothing of it is kept");
    }
}

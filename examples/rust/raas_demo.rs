//! The main job, locally on embedded defaults: a RaaS node on a SQLite file, against the
//! devnet (anvil with DealStatus, the Lotus test server). A job asks for 2 copies of FILE; the
//! node finds it short, asks the hook once, the hook "makes" the deals (publishes and
//! activates them on the chain, records them on the contract), and the next check finds the
//! job satisfied.
//!
//! `bash scripts/demo.sh [FILE]` (or `cargo run --release -p raas-core --example raas_demo --
//! FILE` with the devnet's npm dependencies installed).
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use raas_core::chain::evm::{DealStatusClient, DealStatusConfig};
use raas_core::cid::compute_cids_from_file;
use raas_core::engine::{DealRequest, NodeEvent};
use raas_core::engine::{FnHook, HookError, RaasNode};
use raas_core::podsi::PublishedProof;
use raas_core::store::CheckStatus;
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn control(
    http: &reqwest::Client,
    lotus: &str,
    method: &str,
    params: Value,
) -> Result<Value, Error> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let reply: Value = http.post(lotus).json(&body).send().await?.json().await?;
    Ok(reply["result"].clone())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let file = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "README.md".into());
    let repo = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .canonicalize()?
        .display()
        .to_string();
    let ids = compute_cids_from_file(&file)?;
    println!(
        "{file}: cid {} (piece {}, {} bytes padded)",
        ids.cid, ids.comm_p, ids.piece_size
    );

    // The devnet: anvil + DealStatus + the Lotus test server. It stops when we exit.
    let mut devnet = Command::new("node")
        .arg(format!("{repo}/tests/devnet/devnet.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(devnet.stdout.take().ok_or("no devnet output")?).read_line(&mut line)?;
    let info: Value = serde_json::from_str(&line)?;
    let (evm, lotus, address) = (
        info["evmRpc"].as_str().unwrap_or_default().to_string(),
        info["lotusRpc"].as_str().unwrap_or_default().to_string(),
        info["dealStatus"].as_str().unwrap_or_default().to_string(),
    );
    let key = info["accounts"][0]["privateKey"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    println!("devnet: anvil {evm}, Lotus test server {lotus}, DealStatus {address}");

    let dir = format!("{repo}/target/demo");
    std::fs::create_dir_all(&dir)?;
    let _ = std::fs::remove_file(format!("{dir}/raas.db"));
    let _ = std::fs::remove_dir_all(format!("{dir}/raas-blocks"));
    let node = RaasNode::open_json(json!({
        "store": format!("sqlite:{dir}/raas.db"),
        "dealStatus": {"rpcUrl": evm, "address": address},
        "lotus": {"url": lotus},
        "checkIntervalSecs": 2,
        "pollIntervalMs": 200,
    }))
    .await?;
    println!("node {} on sqlite:{dir}/raas.db", node.node_id());

    // The client uploads its file: the node keeps its blocks (beside the database) and
    // answers the same identifiers.
    let mut upload = node.upload().await;
    let mut reader = std::fs::File::open(&file)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        upload.write(&buf[..n]).await?;
    }
    let uploaded = upload.finish().await?;
    assert_eq!(
        uploaded, ids,
        "an upload gives the identifiers computeCids gives"
    );
    println!(
        "uploaded {file} to the node's block store ({dir}/raas-blocks): cid {}",
        uploaded.cid
    );
    let retriever = node.settings().retriever.clone();

    // The aggregator's side: make the deals asked for.
    let vectors: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(format!(
        "{repo}/core/tests/fixtures/podsi-vectors.json"
    ))?)?;
    let proof: PublishedProof = serde_json::from_value(vectors[0]["proof"].clone())?;
    let (proof, verifier) = proof.to_typed()?;
    let aggregator = DealStatusClient::with_signer(DealStatusConfig::new(&evm, &address), &key)?;
    let next_deal = Arc::new(std::sync::atomic::AtomicU64::new(100));
    let lotus_url = lotus.clone();
    node.set_hook(Arc::new(FnHook(move |req: DealRequest| {
        let (agg, proof, verifier, lotus, next) =
            (aggregator.clone(), proof.clone(), verifier.clone(), lotus_url.clone(), next_deal.clone());
        let retriever = retriever.clone();
        async move {
            println!("  hook: {:?} asks {} new deal(s) for {}", req.reason, req.copies_needed, req.cid);
            let fail = |e: &dyn std::fmt::Display| HookError::retry(e.to_string());
            // The data to re-deal, verified against its CID (from the node's own store).
            let mut data = retriever.retrieve(&req.cid).map_err(|e| fail(&e))?;
            while data.next_chunk().await.map_err(|e| fail(&e))?.is_some() {}
            println!("  hook: fetched {} verified bytes of {}", data.released(), req.cid);
            let http = reqwest::Client::new();
            let mut deals = vec![];
            for _ in 0..req.copies_needed {
                let id = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let h = control(&http, &lotus, "Devnet.Stats", json!([])).await.map_err(|e| fail(&e))?["height"]
                    .as_i64()
                    .unwrap_or_default();
                let spec = json!({"id": id, "provider": 1000 + id, "sector": id, "startEpoch": h,
                    "endEpoch": h + 518_400, "pieceSize": 34359738368u64,
                    "pieceCid": "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"});
                control(&http, &lotus, "Devnet.AddDeal", json!([spec])).await.map_err(|e| fail(&e))?;
                control(&http, &lotus, "Devnet.Activate", json!([id])).await.map_err(|e| fail(&e))?;
                let request = agg.submit(&req.cid).await.map_err(|e| fail(&e))?.request_id;
                agg.complete(request, id, 1000 + id, &proof, &verifier).await.map_err(|e| fail(&e))?;
                println!("  hook: deal {id} with f0{} published, activated, completed (request {request})", 1000 + id);
                deals.push(id);
            }
            Ok(json!({ "deals": deals }))
        }
    })));

    let mut events = node.subscribe();
    let reg = node
        .register_job(json!({"cid": ids.cid.to_string(), "replicationTarget": 2}))
        .await?;
    println!("registered {} (replicationTarget 2)", reg.job.job_id);
    node.start()?;
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(ev) = events.recv().await {
            let NodeEvent::Verdict(ev) = ev else { continue };
            println!(
                "verdict: {:?} -> {:?} at epoch {} (healthy deals {:?})",
                ev.previous,
                ev.status,
                ev.head.unwrap_or_default(),
                ev.healthy
            );
            if ev.status == CheckStatus::Satisfied {
                return true;
            }
        }
        false
    })
    .await;
    node.stop().await;
    let status = node.deal_status(&ids.cid.to_string()).await?;
    println!(
        "deal status: {}",
        serde_json::to_string_pretty(&json!({
            "cid": status.cid, "activeDeals": status.active_deals,
            "deals": status.deals.iter().map(|d| json!({"dealId": d.deal_id, "minerId": d.miner_id,
                "health": d.health.as_ref().map(|h| h.health)})).collect::<Vec<_>>(),
            "requests": node.list_requests(Value::Null).await?.len(),
        }))?
    );
    drop(devnet.stdin.take());
    let _ = devnet.wait();
    if outcome != Ok(true) {
        return Err("the job did not become satisfied".into());
    }
    println!("done: one shortfall, one deal request, job satisfied");
    Ok(())
}

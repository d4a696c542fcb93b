//! The main job, locally on embedded defaults: a RaaS node on a SQLite file against the
//! devnet (anvil with DealStatus, the Lotus test server), showing all three job kinds on one
//! chain timeline, then a verified retrieval:
//!
//! 1. replication: a job wants 2 copies of FILE and has none; the node asks its hook once;
//!    the hook (the aggregator) fetches the file verified by CID, aggregates its piece with
//!    other clients' pieces, "makes" the deals (publishes and activates them on the devnet,
//!    standing in for Boost/Curio) and calls `complete` with each piece's inclusion proof;
//! 2. renewal: the chain moves on until one deal is within the renewal window; it is renewed
//!    before it expires;
//! 3. repair: a provider stops proving the other deal's sector; past the repair threshold
//!    the deal is replaced.
//!
//! `bash scripts/demo.sh [FILE]` (or `cargo run --release -p raas-core --example raas_demo --
//! FILE` with the devnet's npm dependencies installed).
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raas_core::aggregate::aggregate;
use raas_core::chain::evm::{DealStatusClient, DealStatusConfig};
use raas_core::cid::compute_cids_from_file;
use raas_core::cid::piece::{PieceHasher, PieceInfo};
use raas_core::engine::{DealRequest, FnHook, HookError, NodeEvent, RaasNode};
use raas_core::store::CheckStatus;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Deal length of the first deal, short enough to reach its renewal window in the demo.
const SHORT_DEAL: i64 = 5_000;
/// Every later deal: 180 days.
const LONG_DEAL: i64 = 518_400;
const RENEW_WINDOW: i64 = 2_000;
const REPAIR_AFTER: i64 = 600;

/// One Devnet control call (test controls of the Lotus test server, not Lotus).
async fn control(
    http: &reqwest::Client,
    lotus: &str,
    method: &str,
    params: Value,
) -> Result<Value, Error> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let reply: Value = http.post(lotus).json(&body).send().await?.json().await?;
    if let Some(e) = reply.get("error") {
        return Err(format!("{method}: {e}").into());
    }
    Ok(reply["result"].clone())
}

async fn height(http: &reqwest::Client, lotus: &str) -> Result<i64, Error> {
    Ok(
        control(http, lotus, "Devnet.Stats", json!([])).await?["height"]
            .as_i64()
            .unwrap_or_default(),
    )
}

/// A stand-in for other clients' pieces that share the deal with ours.
fn other_client_piece(n: u64) -> PieceInfo {
    let mut h = PieceHasher::new();
    h.update(format!("another client's file #{n}").repeat(200).as_bytes());
    h.finish()
}

/// Prints verdicts as they come until `done` holds for one, or the time is up.
async fn watch(
    events: &mut broadcast::Receiver<NodeEvent>,
    started: Instant,
    secs: u64,
    done: impl Fn(&raas_core::engine::VerdictEvent) -> bool,
) -> Result<(), Error> {
    let found = tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            match events.recv().await {
                Ok(NodeEvent::Verdict(ev)) => {
                    let short = ev.shortfall.as_ref().map(|s| {
                        format!(
                            " — {} needs {} ({} asked)",
                            s.reason.as_str(),
                            s.copies_needed,
                            s.requested
                        )
                    });
                    println!(
                        "{:>6.1}s  epoch {:>7}  verdict {:>9} → {:<9} healthy deals {:?}{}",
                        started.elapsed().as_secs_f64(),
                        ev.head.unwrap_or_default(),
                        ev.previous.map(|p| p.as_str()).unwrap_or("new"),
                        ev.status.as_str(),
                        ev.healthy,
                        short.unwrap_or_default()
                    );
                    if done(&ev) {
                        return true;
                    }
                }
                Ok(NodeEvent::Endpoint(ev)) => println!("          endpoint {:?}", ev),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return false,
            }
        }
    })
    .await;
    match found {
        Ok(true) => Ok(()),
        _ => Err("the job did not reach the expected state in time".into()),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let started = Instant::now();
    let file = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "README.md".into());
    let repo = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .canonicalize()?
        .display()
        .to_string();
    let ids = compute_cids_from_file(&file)?;
    let cid = ids.cid.to_string();
    println!(
        "{file}: cid {cid} (piece {}, {} bytes padded)",
        ids.comm_p, ids.piece_size
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
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let (evm, lotus, address) = (
        text(&info["evmRpc"]),
        text(&info["lotusRpc"]),
        text(&info["dealStatus"]),
    );
    let key = text(&info["accounts"][0]["privateKey"]);
    println!("devnet: anvil {evm}, Lotus test server {lotus}, DealStatus {address}");

    let dir = format!("{repo}/target/demo");
    std::fs::create_dir_all(&dir)?;
    let _ = std::fs::remove_file(format!("{dir}/raas.db"));
    let _ = std::fs::remove_dir_all(format!("{dir}/raas-blocks"));
    let node = RaasNode::open_json(json!({
        "store": format!("sqlite:{dir}/raas.db"),
        "dealStatus": {"rpcUrl": evm, "address": address},
        "lotus": {"url": lotus},
        "checkIntervalSecs": 1,
        "pollIntervalMs": 200,
    }))
    .await?;
    println!("node {} on sqlite:{dir}/raas.db", node.node_id());

    // The client uploads its file; the node keeps its blocks and answers the same ids.
    let mut upload = node.upload().await;
    let mut reader = std::fs::File::open(&file)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
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
        "uploaded {file} to the node's block store: cid {}",
        uploaded.cid
    );
    let retriever = node.settings().retriever.clone();

    // The aggregator's side, as a hook: fetch the data verified, aggregate, make the deals,
    // prove each inclusion on chain.
    let aggregator = DealStatusClient::with_signer(DealStatusConfig::new(&evm, &address), &key)?;
    let next_deal = Arc::new(std::sync::atomic::AtomicU64::new(100));
    {
        let lotus = lotus.clone();
        node.set_hook(Arc::new(FnHook(move |req: DealRequest| {
            let (agg, lotus, next, retriever) =
                (aggregator.clone(), lotus.clone(), next_deal.clone(), retriever.clone());
            async move {
                let fail = |e: &dyn std::fmt::Display| HookError::retry(e.to_string());
                println!(
                    "          hook: {} request {} asks {} new deal(s){}",
                    req.reason.as_str(),
                    req.seq,
                    req.copies_needed,
                    if req.replacing.is_empty() { String::new() } else { format!(", replacing {:?}", req.replacing) }
                );
                // The data, verified against its CID, and its piece, from what was fetched.
                let mut data = retriever.retrieve(&req.cid).map_err(|e| fail(&e))?;
                let mut piece = PieceHasher::new();
                while let Some(chunk) = data.next_chunk().await.map_err(|e| fail(&e))? {
                    piece.update(&chunk);
                }
                let piece = piece.finish();
                let size = (piece.padded_size * 8).max(1 << 20);
                let others: Vec<PieceInfo> = (0..2).map(|i| other_client_piece(req.seq as u64 * 10 + i)).collect();
                let a = aggregate(&[vec![piece.clone()], others].concat(), size).map_err(|e| fail(&e))?;
                println!(
                    "          hook: fetched {} verified bytes; aggregated piece {} with 2 others into {} ({} bytes)",
                    data.released(),
                    piece.comm_p(),
                    a.piece.comm_p(),
                    size
                );
                let (proof, verifier) = a.proofs[0].to_typed().map_err(|e| fail(&e))?;
                let http = reqwest::Client::new();
                let mut deals = vec![];
                let h = height(&http, &lotus).await.map_err(|e| fail(&e))?;
                for _ in 0..req.copies_needed {
                    let id = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let length = if id == 100 { SHORT_DEAL } else { LONG_DEAL };
                    let spec = json!({"id": id, "provider": 1000 + id, "sector": id, "startEpoch": h,
                        "endEpoch": h + length, "pieceSize": size, "pieceCid": a.piece.comm_p().to_string()});
                    control(&http, &lotus, "Devnet.AddDeal", json!([spec])).await.map_err(|e| fail(&e))?;
                    control(&http, &lotus, "Devnet.Activate", json!([id])).await.map_err(|e| fail(&e))?;
                    let request = agg.submit(&req.cid).await.map_err(|e| fail(&e))?.request_id;
                    let r = agg.complete(request, id, 1000 + id, &proof, &verifier).await.map_err(|e| fail(&e))?;
                    println!(
                        "          hook: deal {id} with f0{} ends at epoch {}; inclusion proven on chain (tx {}…)",
                        1000 + id,
                        h + length,
                        &r.tx_hash[..10]
                    );
                    deals.push(id);
                }
                Ok(json!({ "deals": deals }))
            }
        })));
    }

    let http = reqwest::Client::new();
    let mut events = node.subscribe();
    let reg = node
        .register_job(json!({"cid": cid, "replicationTarget": 2,
            "renewThresholdEpochs": RENEW_WINDOW, "repairThresholdEpochs": REPAIR_AFTER}))
        .await?;
    println!(
        "registered {}: replicationTarget 2, renewThresholdEpochs {RENEW_WINDOW}, repairThresholdEpochs {REPAIR_AFTER}",
        reg.job.job_id
    );
    node.start()?;
    let satisfied = |ev: &raas_core::engine::VerdictEvent| ev.status == CheckStatus::Satisfied;

    println!("\n— replication: no copies yet");
    watch(&mut events, started, 40, satisfied).await?;

    println!("\n— renewal: the chain moves on until deal 100 ends within {RENEW_WINDOW} epochs");
    let to = SHORT_DEAL - RENEW_WINDOW + 100;
    let h = control(&http, &lotus, "Devnet.Advance", json!([to])).await?;
    println!("          chain: advanced {to} epochs to {h}");
    watch(&mut events, started, 40, satisfied).await?;

    println!("\n— repair: the provider of deal 101 stops proving its sector");
    control(&http, &lotus, "Devnet.Fault", json!([101])).await?;
    let to = REPAIR_AFTER + 120;
    let h = control(&http, &lotus, "Devnet.Advance", json!([to])).await?;
    println!("          chain: sector of deal 101 faulty; advanced {to} epochs to {h}");
    watch(&mut events, started, 40, satisfied).await?;
    node.stop().await;

    println!("\n— retrieval: the file by its CID, verified block by block");
    let mut data = node.settings().retriever.retrieve(&cid)?;
    let mut hash = Sha256::new();
    while let Some(chunk) = data.next_chunk().await? {
        hash.update(&chunk);
    }
    let got = hash.finalize();
    let want = Sha256::digest(std::fs::read(&file)?);
    println!(
        "          {} verified bytes, sha256 {} ({})",
        data.released(),
        alloy::hex::encode(&got[..8]),
        if got == want {
            "the file as uploaded"
        } else {
            "DIFFERENT"
        }
    );

    let status = node.deal_status(&cid).await?;
    let requests = node.list_requests(Value::Null).await?;
    println!(
        "\n{:<12} {:>8}  {:<34} {:<12} {:<12} {:<10}",
        "job kind", "epoch", "trigger", "replacing", "fulfilled by", "request"
    );
    for r in &requests {
        let trigger = match r.reason.as_str() {
            "replication" => format!("{} of 2 copies missing", r.copies_needed),
            "renewal" => format!("a deal ends within {RENEW_WINDOW} epochs"),
            _ => format!("a sector unproven > {REPAIR_AFTER} epochs"),
        };
        println!(
            "{:<12} {:>8}  {:<34} {:<12} {:<12} {:<10}",
            r.reason.as_str(),
            r.created_epoch.unwrap_or_default(),
            trigger,
            format!("{:?}", r.replacing),
            format!("{:?}", r.fulfilled_by),
            r.state.as_str()
        );
    }
    println!(
        "\ndeal status of {cid} at epoch {}: {} active of {} recorded; {} requests, one per shortfall",
        status.head,
        status.active_deals,
        status.deals.len(),
        requests.len()
    );
    drop(devnet.stdin.take());
    let _ = devnet.wait();
    let kinds: Vec<&str> = requests.iter().map(|r| r.reason.as_str()).collect();
    let fulfilled = requests.iter().all(|r| r.state.as_str() == "fulfilled");
    if kinds != ["replication", "renewal", "repair"] || !fulfilled || got != want {
        return Err(format!("expected replication, renewal and repair, saw {kinds:?}").into());
    }
    println!("done in {:.0}s: replication, renewal and repair, each asked once; the file retrieved verified", started.elapsed().as_secs_f64());
    Ok(())
}

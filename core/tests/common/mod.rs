//! The shared devnet (`tests/devnet/devnet.mjs`) driven from Rust tests: anvil with our
//! contracts and the market-actor double, plus the Lotus test server.
#![allow(
    dead_code,
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

pub mod pin;
pub mod stores;

pub struct Devnet {
    child: Child,
    pub info: Value,
    http: reqwest::Client,
}

/// Piece CID v1 of the aggregate [`reference_proof`] proves inclusion in (32 GiB).
pub const REFERENCE_AGGREGATE: &str =
    "baga6ea4seaqd6rv4mrnqpi7kfqcpazxzhho7pytj3v3woh46dzq2hi3zpztfcjy";

/// The first PoDSI vector of the fixtures: a proof `complete` accepts for a deal of
/// [`REFERENCE_AGGREGATE`].
pub fn reference_proof() -> (
    raas_core::podsi::InclusionProof,
    raas_core::podsi::VerifierData,
) {
    let v: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(repo().join("core/tests/fixtures/podsi-vectors.json")).unwrap(),
    )
    .unwrap();
    let p: raas_core::podsi::PublishedProof =
        serde_json::from_value(v[0]["proof"].clone()).unwrap();
    p.to_typed().unwrap()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Starts `node SCRIPT ARGS…` (a path under the repository) and reads the JSON line it
/// prints once it is ready. Its stdin stays open: the script exits when the test does.
pub fn spawn_node(script: &str, args: &[PathBuf]) -> (Child, Value) {
    let mut child = Command::new("node")
        .arg(repo().join(script))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node must be installed (scripts/setup.sh)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("{script} did not start ({e}): {line:?}"));
    (child, info)
}

impl Devnet {
    pub fn start() -> Devnet {
        Self::start_args(&[])
    }

    /// With the seeder contract (`DealStatusSeeder`): deals recorded by [`Devnet::seed`]
    /// without proofs, for deals that hold a plain piece rather than an aggregate.
    pub fn start_seeder() -> Devnet {
        Self::start_args(&[PathBuf::from("--contract=DealStatusSeeder")])
    }

    fn start_args(args: &[PathBuf]) -> Devnet {
        let (child, info) = spawn_node("tests/devnet/devnet.mjs", args);
        Devnet {
            child,
            info,
            // Node closes a connection idle for 5 s; one reused just then fails the call.
            http: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .unwrap(),
        }
    }

    pub fn evm(&self) -> String {
        self.info["evmRpc"].as_str().unwrap().to_string()
    }

    pub fn lotus(&self) -> String {
        self.info["lotusRpc"].as_str().unwrap().to_string()
    }

    pub fn deal_status(&self) -> String {
        self.info["dealStatus"].as_str().unwrap().to_string()
    }

    pub fn key(&self, i: usize) -> String {
        self.info["accounts"][i]["privateKey"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn start_epoch(&self) -> i64 {
        self.info["startEpoch"].as_i64().unwrap()
    }

    /// Calls a `Devnet.*` control method of the Lotus test server.
    pub async fn control(&self, method: &str, params: Value) -> Value {
        json_rpc(&self.http, &self.lotus(), method, params).await
    }

    /// Publishes a deal on both the market double (anvil) and the Lotus chain, holding the
    /// aggregate of [`reference_proof`] (so `complete` with that proof accepts it).
    pub async fn add_deal(&self, id: u64, provider: u64, sector: u64, start: i64, end: i64) {
        self.add_piece_deal(
            id,
            provider,
            sector,
            (start, end),
            REFERENCE_AGGREGATE,
            1 << 35,
        )
        .await;
    }

    /// Publishes a deal of piece `piece_cid` (v1) of padded size `piece_size`.
    pub async fn add_piece_deal(
        &self,
        id: u64,
        provider: u64,
        sector: u64,
        (start, end): (i64, i64),
        piece_cid: &str,
        piece_size: u64,
    ) {
        let spec = json!({"id": id, "provider": provider, "sector": sector, "startEpoch": start,
            "endEpoch": end, "pieceSize": piece_size, "pieceCid": piece_cid});
        self.control("Devnet.AddDeal", json!([spec])).await;
    }
}

alloy::sol! {
    #[sol(rpc)]
    interface IDealStatusSeeder {
        function seed(bytes[] cids, uint64 dealsPerCid, uint64 firstDealId, uint64 minerId) external;
    }
}

impl Devnet {
    /// Records deal `deal_id` of `miner_id` for `cid` (a new request) on the seeder
    /// contract, signed by `owner` (the contract's owner).
    pub async fn seed(
        &self,
        owner: &raas_core::chain::evm::DealStatusClient,
        cid: &str,
        deal_id: u64,
        miner_id: u64,
    ) {
        let seeder = IDealStatusSeeder::new(
            self.deal_status().parse().unwrap(),
            owner.provider().clone(),
        );
        let receipt = seeder
            .seed(vec![cid.as_bytes().to_vec().into()], 1, deal_id, miner_id)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status());
    }
}

/// One JSON-RPC call to `url`: its result (a reply with an error fails the test).
pub async fn json_rpc(http: &reqwest::Client, url: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let reply: Value = http
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(reply.get("error").is_none(), "{method}: {reply}");
    reply["result"].clone()
}

impl Drop for Devnet {
    fn drop(&mut self) {
        // Closing stdin stops the devnet cleanly (anvil with it); kill only if it hangs,
        // since killing it first would orphan anvil.
        drop(self.child.stdin.take());
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGTERM to process `pid` (a node drains and stops on it).
pub fn sigterm(pid: u32) {
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
}

/// Serves `node`'s API on a free loopback port.
pub async fn serve_local(
    node: std::sync::Arc<raas_core::engine::RaasNode>,
) -> raas_core::service::Server {
    raas_core::service::serve(
        node,
        raas_core::service::ServeOptions {
            host: None,
            port: Some(0),
        },
    )
    .await
    .unwrap()
}

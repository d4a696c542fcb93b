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

pub mod stores;

pub struct Devnet {
    child: Child,
    pub info: Value,
    http: reqwest::Client,
}

/// The first PoDSI vector of the fixtures: a proof `complete` accepts.
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
        let (child, info) = spawn_node("tests/devnet/devnet.mjs", &[]);
        Devnet {
            child,
            info,
            http: reqwest::Client::new(),
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
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let reply: Value = self
            .http
            .post(self.lotus())
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

    /// Publishes a deal on both the market double (anvil) and the Lotus chain.
    pub async fn add_deal(&self, id: u64, provider: u64, sector: u64, start: i64, end: i64) {
        let spec = json!({"id": id, "provider": provider, "sector": sector, "startEpoch": start,
            "endEpoch": end, "pieceSize": 34359738368u64,
            "pieceCid": "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"});
        self.control("Devnet.AddDeal", json!([spec])).await;
    }
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

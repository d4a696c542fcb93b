//! Node processes (`raas run`) against real parts: three nodes sharing thousands of jobs on
//! one PostgreSQL, and a node killed with SIGKILL in the middle of a cycle on its SQLite file.
//! Deal requests go to a pin endpoint over HTTP (the built-in Lighthouse-style hook), served
//! here and recorded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pin::pin_server;
use common::stores::{fresh_postgres, temp_sqlite};
use common::{sigterm, Devnet};
use raas_core::engine::RaasNode;
use raas_core::store::Store;
use serde_json::{json, Value};

const TOKEN: &str = "pin-token-s3cret";

fn node_config(d: &Devnet, store: &str, node_id: &str, pin: Option<&str>) -> Value {
    let mut c = json!({
        "store": store,
        "nodeId": node_id,
        "dealStatus": {"rpcUrl": d.evm(), "address": d.deal_status()},
        "lotus": {"url": d.lotus()},
        "batchSize": 100,
        "leaseSecs": 5,
        "pollIntervalMs": 100,
    });
    if let Some(url) = pin {
        c["hook"] = json!({"type": "pin", "endpoint": url, "token": TOKEN});
    }
    c
}

/// A `raas run` process; its output goes to a file (a pipe nobody reads would fill up and
/// stall it).
struct NodeProcess(
    Child,
    std::path::PathBuf,
    #[allow(dead_code)] common::stores::TempDir,
);

impl NodeProcess {
    fn spawn(config: &Value) -> NodeProcess {
        let dir = common::stores::temp_dir();
        let out = dir.0.join("stdout");
        let child = Command::new(env!("CARGO_BIN_EXE_raas"))
            .arg("run")
            .arg(config.to_string())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        NodeProcess(child, out, dir)
    }

    fn kill9(&mut self) {
        let _ = self.0.kill(); // SIGKILL
        let _ = self.0.wait();
    }

    /// SIGTERM, then everything it printed.
    fn terminate(mut self) -> String {
        sigterm(self.0.id());
        self.0.wait().unwrap();
        std::fs::read_to_string(&self.1).unwrap()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn register(store: &str, d: &Devnet, n: usize, tag: &str) -> Vec<String> {
    let node = RaasNode::open_json(node_config(d, store, "registrar", None))
        .await
        .unwrap();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let cid = raas_core::cid::compute_cids(format!("{tag} {i}").as_bytes())
            .cid
            .to_string();
        let r = node
            .register_job(json!({"cid": cid, "replicationTarget": 1 + (i % 3) as u32}))
            .await
            .unwrap();
        ids.push(r.job.job_id);
    }
    node.store().close().await;
    ids
}

/// Waits until every job has been checked since `since` and `n` requests are delivered.
async fn wait_done(store: &Store, since: i64, n: usize, limit: Duration) {
    let t = Instant::now();
    loop {
        let checked: HashSet<String> = store
            .checks_since(since)
            .await
            .unwrap()
            .into_iter()
            .map(|(j, _)| j)
            .collect();
        let stats = store.stats().await.unwrap();
        if checked.len() == n && stats.requests_delivered as usize == n {
            return;
        }
        assert!(
            t.elapsed() < limit,
            "not done after {limit:?}: {} checked, {stats:?}",
            checked.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL: RAAS_TEST_POSTGRES_URL (scripts/test-all.sh runs it)"]
async fn three_nodes_share_thousands_of_jobs_on_postgres() {
    let url = fresh_postgres().await.expect("RAAS_TEST_POSTGRES_URL");
    const N: usize = 3_000;
    let d = Devnet::start();
    let (pin_url, pins) = pin_server(0).await;
    let since = now_ms();
    let ids = register(&url, &d, N, "multi").await;
    let observer = Store::open(&url).await.unwrap();

    // Two nodes deliver; the third only checks, and is killed mid-cycle (its unrecorded
    // batch comes back to the others when its leases expire).
    let n1 = NodeProcess::spawn(&node_config(&d, &url, "n1", Some(&pin_url)));
    let n2 = NodeProcess::spawn(&node_config(&d, &url, "n2", Some(&pin_url)));
    let mut n3 = NodeProcess::spawn(&node_config(&d, &url, "n3", None));
    let t = Instant::now();
    loop {
        let by_n3 = observer
            .checks_since(since)
            .await
            .unwrap()
            .iter()
            .filter(|(_, n)| n == "n3")
            .count();
        if by_n3 >= 100 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "n3 never checked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    n3.kill9();
    wait_done(&observer, since, N, Duration::from_secs(120)).await;
    let out1 = n1.terminate();
    let out2 = n2.terminate();

    // Each job checked exactly once in this cycle, by some node; all three took part.
    let checks = observer.checks_since(since).await.unwrap();
    let mut per_job: HashMap<&str, usize> = HashMap::new();
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for (job, node) in &checks {
        *per_job.entry(job).or_default() += 1;
        *per_node.entry(node).or_default() += 1;
    }
    assert_eq!(per_job.len(), N);
    let twice: Vec<_> = per_job.iter().filter(|(_, &c)| c > 1).collect();
    assert!(twice.is_empty(), "checked twice: {twice:?}");
    assert!(ids.iter().all(|id| per_job.contains_key(id.as_str())));
    for n in ["n1", "n2", "n3"] {
        assert!(
            per_node.get(n).copied().unwrap_or(0) > 0,
            "{n} did no work: {per_node:?}"
        );
    }
    // Each shortfall became one deal request, delivered once, with the token.
    let pins = pins.lock().unwrap().clone();
    let keys: HashSet<&str> = pins.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(pins.len(), N, "one pin request per job");
    assert_eq!(keys.len(), N, "no request made twice");
    assert!(pins
        .iter()
        .all(|(_, auth)| auth == &format!("Bearer {TOKEN}")));
    let stats = observer.stats().await.unwrap();
    assert_eq!(
        (stats.requests_delivered, stats.requests_pending),
        (N as i64, 0)
    );
    // Graceful stop, and the token never printed.
    for out in [&out1, &out2] {
        assert!(out.contains("\"stopped\""), "{out}");
        assert!(!out.contains(TOKEN));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_mid_cycle_resumes_without_losing_or_duplicating() {
    const N: usize = 2_000;
    let d = Devnet::start();
    let (pin_url, pins) = pin_server(0).await;
    let (url, _dir) = temp_sqlite();
    let since = now_ms();
    let ids = register(&url, &d, N, "crash").await;
    let config = node_config(&d, &url, "solo", Some(&pin_url));

    let mut node = NodeProcess::spawn(&config);
    let observer = Store::open(&url).await.unwrap();
    let t = Instant::now();
    loop {
        let n = observer.checks_since(since).await.unwrap().len();
        if n >= 300 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no progress ({n} checks): {}",
            std::fs::read_to_string(&node.1).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.kill9();
    let at_kill = observer.checks_since(since).await.unwrap().len();
    assert!(at_kill < N, "killed after the cycle ended: make N larger");

    // Restarted under the same name: it takes its leases back and finishes the cycle.
    let node = NodeProcess::spawn(&config);
    wait_done(&observer, since, N, Duration::from_secs(120)).await;
    let out = node.terminate();
    assert!(out.contains("\"stopped\""), "{out}");

    let stats = observer.stats().await.unwrap();
    assert_eq!(stats.active as usize, N, "every job is there");
    let checks = observer.checks_since(since).await.unwrap();
    let jobs: HashSet<&str> = checks.iter().map(|(j, _)| j.as_str()).collect();
    assert_eq!(
        checks.len(),
        N,
        "each job checked once: the killed batch left nothing"
    );
    assert!(ids.iter().all(|id| jobs.contains(id.as_str())));
    let requests = observer.list_requests(None, None, 100_000).await.unwrap();
    assert_eq!(requests.len(), N, "one deal request per shortfall");
    let pins = pins.lock().unwrap().clone();
    let keys: HashSet<&str> = pins.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys.len(), N);
    // The deliveries in flight at the kill (at most deliveryConcurrency, 4) may be repeated,
    // with the same key, never more.
    assert!(
        pins.len() - N <= 4,
        "{} deliveries for {N} requests",
        pins.len()
    );
}

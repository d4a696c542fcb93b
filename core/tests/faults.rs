//! The fault matrix with real parts: the store's disk full (SQLite on a small tmpfs), the
//! PostgreSQL server stopped under three nodes mid-sweep, anvil stopped for a minute and
//! started again, an anvil reorg (`evm_revert` to a snapshot) under on-chain intake, and a
//! Lotus head that goes stale or goes back. For each: while it lasts the failure shows in
//! `stats()`, `/readyz` and `/metrics`; afterwards the node is back by itself, every job is
//! there and none is dead, and each shortfall made exactly one deal request.
//! Lotus slow, failing, rate-limiting and answering garbage is here as the node sees it;
//! the client's retries and bounds are in `lotus_faults.rs`, `bounded_replies.rs` and
//! `chain_devnet.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pin::{pin_server, Pins};
use common::stores::{temp_dir, temp_sqlite, TempDir};
use common::Devnet;
use raas_core::engine::{Endpoint, EndpointStatus, RaasNode};
use raas_core::service::{serve, ServeOptions, Server};
use raas_core::store::JobLifecycle;
use raas_core::ErrorCode;
use serde_json::{json, Value};

fn config(d: &Devnet, store: &str, node_id: &str, pin: &str) -> Value {
    json!({
        "store": store,
        "nodeId": node_id,
        "dealStatus": {"rpcUrl": d.evm(), "address": d.deal_status(), "timeoutMs": 2000},
        "lotus": {"url": d.lotus(), "timeoutMs": 2000, "retries": 1},
        "hook": {"type": "pin", "endpoint": pin, "token": "t"},
        "batchSize": 50,
        "leaseSecs": 5,
        "pollIntervalMs": 100,
        "checkIntervalSecs": 2,
        "backoffBaseSecs": 1,
        "backoffMaxSecs": 2,
    })
}

/// A node with its loops running and its API served.
struct Run {
    node: Arc<RaasNode>,
    server: Option<Server>,
    http: reqwest::Client,
}

impl Run {
    async fn start(cfg: Value) -> Run {
        let node = Arc::new(RaasNode::open_json(cfg).await.unwrap());
        node.start().unwrap();
        let server = serve(
            node.clone(),
            ServeOptions {
                port: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        Run {
            node,
            server: Some(server),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.as_ref().unwrap().url)
    }

    /// How `endpoint` shows in `stats()`, `/readyz` and `/metrics`: `Some(true)` down,
    /// `Some(false)` up; `stats()` failing with `STORE_UNAVAILABLE` counts as the store down.
    async fn seen(&self, endpoint: &str) -> [Option<bool>; 3] {
        let stats = match self.node.stats().await {
            Ok(s) => serde_json::to_value(&s).unwrap()["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["endpoint"] == endpoint)
                .map(|e| e["up"] == false),
            Err(e) if endpoint == "store" && e.code() == "STORE_UNAVAILABLE" => Some(true),
            Err(_) => None,
        };
        let readyz = match self.http.get(self.url("/readyz")).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                let listed = body["endpointsDown"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|e| e == endpoint));
                let store_out = endpoint == "store" && body["store"] == false;
                Some(status == 503 && (listed || store_out))
            }
            Err(_) => None,
        };
        let metrics = match self.http.get(self.url("/metrics")).send().await {
            Ok(r) if r.status() == 200 => {
                let text = r.text().await.unwrap();
                let line = format!("raas_endpoint_up{{endpoint=\"{endpoint}\"}} ");
                text.lines()
                    .find_map(|l| l.strip_prefix(&line))
                    .map(|v| v.trim() == "0")
            }
            Ok(r) => {
                eprintln!(
                    "/metrics: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
                None
            }
            Err(e) => {
                eprintln!("/metrics: {e}");
                None
            }
        };
        [stats, readyz, metrics]
    }

    /// Waits until all three views say `endpoint` is down (`true`) or up (`false`).
    async fn wait_seen(&self, endpoint: &str, down: bool, limit: Duration) {
        let t = Instant::now();
        loop {
            let seen = self.seen(endpoint).await;
            if seen.iter().all(|s| *s == Some(down)) {
                return;
            }
            assert!(
                t.elapsed() < limit,
                "{endpoint} not seen {} after {limit:?}: stats, readyz, metrics = {seen:?}",
                if down { "down" } else { "up" }
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `stats()` has counted a head of `endpoint` going back, and shows that
    /// `raas_head_regressions_total` counted it too; returns the endpoint's status.
    async fn wait_regressed(&self, endpoint: Endpoint) -> EndpointStatus {
        let t = Instant::now();
        let status = loop {
            let stats = self.node.stats().await.unwrap();
            let e = stats
                .endpoints
                .into_iter()
                .find(|e| e.endpoint == endpoint)
                .unwrap();
            if e.head_regressions > 0 {
                break e;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "{e:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let line = format!(
            "raas_head_regressions_total{{endpoint=\"{}\"}} ",
            endpoint.name()
        );
        assert!(text.contains(&line), "{text}");
        status
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.close().await.unwrap();
        }
        self.node.stop().await;
    }
}

fn cid(tag: &str, i: usize) -> String {
    raas_core::cid::compute_cids(format!("{tag} {i}").as_bytes())
        .cid
        .to_string()
}

fn jobs(tag: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"cid": cid(tag, i), "replicationTarget": 1}))
        .collect()
}

async fn register(node: &RaasNode, tag: &str, n: usize) -> Vec<String> {
    node.register_jobs(jobs(tag, n))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.job.job_id)
        .collect()
}

/// After a fault: every job is there and alive, each (one shortfall: no deal for its CID)
/// has exactly one deal request, every request reached the pin service, and no request
/// was delivered more often than a lost acknowledgement explains (`extra` at most).
async fn settled(node: &RaasNode, ids: &[String], pins: &Pins, extra: usize, limit: Duration) {
    let t = Instant::now();
    loop {
        let requests = node.store().list_requests(None, None, 100_000).await;
        let delivered: std::collections::HashSet<String> = pins
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        if let Ok(requests) = requests {
            let mut per_job: HashMap<&str, usize> = HashMap::new();
            for r in &requests {
                *per_job.entry(r.job_id.as_str()).or_default() += 1;
            }
            let doubled: Vec<_> = per_job.iter().filter(|(_, &n)| n > 1).collect();
            assert!(doubled.is_empty(), "requests doubled: {doubled:?}");
            if requests.len() == ids.len()
                && requests
                    .iter()
                    .all(|r| delivered.contains(&r.idempotency_key))
            {
                break;
            }
            assert!(
                t.elapsed() < limit,
                "not settled after {limit:?}: {} requests for {} jobs, {} delivered",
                requests.len(),
                ids.len(),
                delivered.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in ids {
        let job = node.get_job(id).await.unwrap();
        assert_eq!(job.state, JobLifecycle::Active, "{id}: {job:?}");
    }
    let stats = node.stats().await.unwrap();
    assert_eq!(stats.store.dead, 0, "no job dead from the outage");
    let pins = pins.lock().unwrap();
    assert!(
        pins.len() <= ids.len() + extra,
        "{} deliveries for {} requests",
        pins.len(),
        ids.len()
    );
}

/// A tmpfs of `mib` MiB, unmounted on drop.
struct Tmpfs(TempDir);

impl Tmpfs {
    fn mount(mib: u32) -> Tmpfs {
        let dir = temp_dir();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&dir.0)
            .output()
            .expect("mount(8)");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (CI and this machine run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0 .0)
            .status();
    }
}

/// Fills the file system of `dir` to the last byte.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 << 10];
    for size in [64 << 10, 4 << 10, 512, 1] {
        while f.write_all(&chunk[..size]).is_ok() {}
    }
    let _ = f.sync_all();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_disk_full_refuses_writes_typed_and_recovers_once_space_is_freed() {
    const N: usize = 300;
    let d = Devnet::start();
    let (pin_url, pins) = pin_server(0).await;
    let fs = Tmpfs::mount(16);
    let db = fs.0 .0.join("raas.db");
    let url = format!("sqlite:{}", db.display());
    let run = Run::start(config(&d, &url, "full", &pin_url)).await;
    let ids = register(&run.node, "full", N).await;
    // The disk fills while the node works. The write-ahead log is emptied into the
    // database first, so the next write needs new space.
    {
        use sqlx::{Connection, Row};
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let t = Instant::now();
        loop {
            let busy: i64 = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut c)
                .await
                .unwrap()
                .get(0);
            if busy == 0 {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "checkpoint busy");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c.close().await.unwrap();
    }
    let filler = fill(&fs.0 .0);

    // A registration is refused, typed, and stores nothing.
    let res = run
        .http
        .post(run.url("/register_jobs"))
        .json(&jobs("more", 200))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "STORE_FULL", "{body}");
    run.wait_seen("store", true, Duration::from_secs(30)).await;
    let stats = run.node.stats().await.unwrap();
    assert_eq!(
        stats.store.active as usize, N,
        "nothing stored, nothing lost"
    );
    let store = stats.endpoints.iter().find(|e| !e.up).unwrap();
    assert!(
        store
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("STORE_FULL"),
        "{store:?}"
    );
    // Reads still answer.
    let res = run
        .http
        .get(run.url(&format!("/jobs/{}", ids[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Space comes back: the node goes on by itself.
    std::fs::remove_file(filler).unwrap();
    run.wait_seen("store", false, Duration::from_secs(30)).await;
    settled(&run.node, &ids, &pins, 4, Duration::from_secs(60)).await;
    let res = run
        .http
        .post(run.url("/register_jobs"))
        .json(&jobs("more", 200))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        201,
        "the refused batch, whole, once there is room"
    );
    run.stop().await;
}

/// `scripts/postgres.sh` on its own port, so stopping it disturbs no other test.
fn pg(cmd: &str, port: &str) -> String {
    let out = std::process::Command::new("bash")
        .arg(common::repo().join("scripts/postgres.sh"))
        .arg(cmd)
        .env("RAAS_PG_PORT", port)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "postgres.sh {cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL: RAAS_TEST_POSTGRES_URL (scripts/test-all.sh runs it)"]
async fn postgres_restarted_then_stopped_mid_sweep_under_three_nodes() {
    assert!(
        common::stores::postgres_admin_url().is_some(),
        "RAAS_TEST_POSTGRES_URL"
    );
    const N: usize = 3_000;
    let port = std::env::var("RAAS_FAULT_PG_PORT").unwrap_or_else(|_| "55433".into());
    let admin = pg("start", &port);
    let db = format!("raas_fault_{}", std::process::id());
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db}")))
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&mut c)
            .await
            .unwrap();
    }
    let url = format!("{}/{db}", admin.rsplit_once('/').unwrap().0);
    let d = Devnet::start();
    let (pin_url, pins) = pin_server(0).await;
    let ids = {
        let node = RaasNode::open_json(config(&d, &url, "registrar", &pin_url))
            .await
            .unwrap();
        let ids = register(&node, "pg", N).await;
        node.store().close().await;
        ids
    };
    let mut runs = Vec::new();
    for n in ["n1", "n2", "n3"] {
        runs.push(Run::start(config(&d, &url, n, &pin_url)).await);
    }
    // Mid-sweep: some jobs checked, most not.
    let t = Instant::now();
    while pins.lock().unwrap().len() < 200 {
        assert!(t.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // `pg_ctl restart`: every connection of every node is cut mid-sweep.
    pg("restart", &port);
    let t = Instant::now();
    let at_restart = pins.lock().unwrap().len();
    while pins.lock().unwrap().len() < at_restart + 200 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no progress after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Then stopped long enough to be seen.
    pg("stop", &port);
    for r in &runs {
        r.wait_seen("store", true, Duration::from_secs(60)).await;
    }
    pg("start", &port);
    for r in &runs {
        r.wait_seen("store", false, Duration::from_secs(60)).await;
    }
    // Deliveries the pin service took while the server went away may be sent again, with
    // the same key: at most those in flight (deliveryConcurrency 4 on each of three nodes),
    // once for the restart and once for the stop.
    settled(
        &runs[0].node,
        &ids,
        &pins,
        2 * 3 * 4,
        Duration::from_secs(120),
    )
    .await;
    for r in runs {
        r.stop().await;
    }
    pg("stop", &port);
}

/// Waits until more than `n` checks are recorded.
async fn more_checks_than(node: &RaasNode, n: usize, what: &str) {
    let t = Instant::now();
    while node.store().checks_since(0).await.unwrap().len() <= n {
        assert!(t.elapsed() < Duration::from_secs(30), "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn rpc(url: &str, method: &str, params: Value) -> Value {
    common::json_rpc(&reqwest::Client::new(), url, method, params).await
}

#[tokio::test(flavor = "multi_thread")]
async fn anvil_stopped_for_a_minute_then_restarted() {
    const N: usize = 300;
    let outage = Duration::from_secs(
        std::env::var("RAAS_FAULT_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let d = Devnet::start();
    let (pin_url, pins) = pin_server(0).await;
    let (url, _dir) = temp_sqlite();
    let run = Run::start(config(&d, &url, "evm", &pin_url)).await;
    let ids = register(&run.node, "evm", N).await;
    let t = Instant::now();
    while pins.lock().unwrap().len() < 50 {
        assert!(t.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(d.control("Devnet.EvmStop", json!([])).await, true);
    run.wait_seen("dealStatus", true, Duration::from_secs(30))
        .await;
    let down_at = Instant::now();
    let checks_then = run.node.store().checks_since(0).await.unwrap().len();
    while down_at.elapsed() < outage {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            run.seen("dealStatus").await,
            [Some(true); 3],
            "down all along"
        );
    }
    // No job was judged on a chain it could not read.
    let checks_now = run.node.store().checks_since(0).await.unwrap().len();
    assert_eq!(
        checks_now, checks_then,
        "no check recorded while anvil was down"
    );
    for id in &ids {
        let job = run.node.get_job(id).await.unwrap();
        assert_eq!(job.failures, 0, "the outage counts against no job: {job:?}");
    }
    d.control("Devnet.EvmStart", json!([])).await;
    run.wait_seen("dealStatus", false, Duration::from_secs(30))
        .await;
    settled(&run.node, &ids, &pins, 4, Duration::from_secs(60)).await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn anvil_reorg_below_the_intake_cursor_rereads_the_chain_as_it_now_is() {
    use raas_core::chain::evm::{DealStatusClient, DealStatusConfig};
    let d = Devnet::start();
    let (pin_url, pins) = pin_server(0).await;
    let (url, _dir) = temp_sqlite();
    let mut cfg = config(&d, &url, "reorg", &pin_url);
    cfg["intake"] = json!({"confirmations": 2, "maxRangeBlocks": 100, "pollSecs": 1});
    let run = Run::start(cfg).await;
    let client =
        DealStatusClient::with_signer(DealStatusConfig::new(d.evm(), d.deal_status()), &d.key(1))
            .unwrap();
    let wait_jobs = |n: usize| {
        let node = run.node.clone();
        async move {
            let t = Instant::now();
            loop {
                let jobs = node.list_jobs(json!({"tenant": "onchain"})).await.unwrap();
                if jobs.len() >= n {
                    return jobs;
                }
                assert!(t.elapsed() < Duration::from_secs(30), "{} jobs", jobs.len());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // The first scan sets the cursor at the head; requests after it become jobs.
    while run
        .node
        .store()
        .cursor("raas.intake.next_block")
        .await
        .unwrap()
        .is_none()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let snapshot = rpc(&d.evm(), "evm_snapshot", json!([])).await;
    client.submit_raas(&cid("reorg", 0), 1, 0, 0).await.unwrap();
    d.control("Devnet.Advance", json!([6])).await;
    wait_jobs(1).await;
    let block =
        |v: Value| u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let before = block(rpc(&d.evm(), "eth_blockNumber", json!([])).await);

    // The chain goes back past the cursor; a different request lands in the blocks the
    // node had read already.
    assert_eq!(rpc(&d.evm(), "evm_revert", json!([snapshot])).await, true);
    let client =
        DealStatusClient::with_signer(DealStatusConfig::new(d.evm(), d.deal_status()), &d.key(1))
            .unwrap();
    client.submit_raas(&cid("reorg", 1), 1, 0, 0).await.unwrap();
    rpc(&d.evm(), "anvil_mine", json!(["0x3"])).await;
    let after = block(rpc(&d.evm(), "eth_blockNumber", json!([])).await);
    assert!(after < before, "the head went back: {before} -> {after}");
    let jobs = wait_jobs(2).await;
    let mut cids: Vec<&str> = jobs.iter().map(|j| j.spec.cid.as_str()).collect();
    cids.sort();
    let mut want = vec![cid("reorg", 0), cid("reorg", 1)];
    want.sort();
    assert_eq!(cids, want, "the request of the new chain is not missed");
    // The head that went back shows; a reorg is no outage.
    let evm = run.wait_regressed(Endpoint::DealStatus).await;
    assert!(evm.up, "{evm:?}");
    assert_eq!(run.seen("dealStatus").await, [Some(false); 3]);
    let ids: Vec<String> = jobs.into_iter().map(|j| j.job_id).collect();
    settled(&run.node, &ids, &pins, 4, Duration::from_secs(60)).await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lotus_stale_head_pauses_checks_visibly_and_they_resume_when_it_moves() {
    const N: usize = 100;
    let d = Devnet::start();
    let (pin_url, pins) = pin_server(0).await;
    let (url, _dir) = temp_sqlite();
    let run = Run::start(config(&d, &url, "stale", &pin_url)).await;
    let ids = register(&run.node, "stale", N).await;
    settled(&run.node, &ids, &pins, 0, Duration::from_secs(60)).await;

    let head = d.control("Devnet.Stats", json!([])).await["height"].clone();
    d.control("Devnet.SetBehaviour", json!([{"staleHeight": head}]))
        .await;
    d.control("Devnet.Advance", json!([40])).await;
    run.wait_seen("lotus", true, Duration::from_secs(30)).await;
    let stats = run.node.stats().await.unwrap();
    let lotus = stats.endpoints.iter().find(|e| !e.up).unwrap();
    assert!(
        lotus.last_error.as_deref().unwrap().contains("STALE_HEAD"),
        "{lotus:?}"
    );
    // No job is judged on the stale state meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = run.node.store().checks_since(0).await.unwrap().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        run.node.store().checks_since(0).await.unwrap().len(),
        during,
        "checks pause while Lotus is stale"
    );

    d.control("Devnet.SetBehaviour", json!([{"staleHeight": null}]))
        .await;
    run.wait_seen("lotus", false, Duration::from_secs(30)).await;
    more_checks_than(&run.node, during, "checks did not resume").await;
    settled(&run.node, &ids, &pins, 0, Duration::from_secs(30)).await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lotus_head_going_back_is_counted_and_checks_go_on() {
    const N: usize = 100;
    let d = Devnet::start();
    let (pin_url, pins) = pin_server(0).await;
    let (url, _dir) = temp_sqlite();
    let run = Run::start(config(&d, &url, "back", &pin_url)).await;
    let ids = register(&run.node, "back", N).await;
    d.control("Devnet.Advance", json!([10])).await;
    settled(&run.node, &ids, &pins, 0, Duration::from_secs(60)).await;

    d.control("Devnet.SetBehaviour", json!([{"headBack": 5}]))
        .await;
    let lotus = run.wait_regressed(Endpoint::Lotus).await;
    assert!(
        lotus.up,
        "five epochs back is a reorg, not an outage: {lotus:?}"
    );
    let before = run.node.store().checks_since(0).await.unwrap().len();
    more_checks_than(&run.node, before, "checks stopped").await;
    d.control("Devnet.SetBehaviour", json!([{"headBack": 0}]))
        .await;
    assert_eq!(run.seen("lotus").await, [Some(false); 3]);
    settled(&run.node, &ids, &pins, 0, Duration::from_secs(30)).await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lotus_slow_failing_rate_limiting_or_garbage_is_an_outage_of_lotus_not_of_jobs() {
    const N: usize = 100;
    let d = Devnet::start();
    let (pin_url, pins) = pin_server(0).await;
    let (url, _dir) = temp_sqlite();
    let run = Run::start(config(&d, &url, "lotusfaults", &pin_url)).await;
    let ids = register(&run.node, "lotusfaults", N).await;
    for (fault, clear) in [
        (json!({"delayMs": 3000}), json!({"delayMs": 0})),
        (json!({"failNext": 1_000_000}), json!({"failNext": 0})),
        (
            json!({"rateLimitNext": 1_000_000, "retryAfter": 1}),
            json!({"rateLimitNext": 0}),
        ),
        (json!({"garbageNext": 1_000_000}), json!({"garbageNext": 0})),
    ] {
        d.control("Devnet.SetBehaviour", json!([fault])).await;
        run.wait_seen("lotus", true, Duration::from_secs(60)).await;
        d.control("Devnet.SetBehaviour", json!([clear])).await;
        run.wait_seen("lotus", false, Duration::from_secs(60)).await;
    }
    settled(&run.node, &ids, &pins, 4, Duration::from_secs(60)).await;
    for id in &ids {
        let job = run.node.get_job(id).await.unwrap();
        assert_eq!(job.failures, 0, "no job counts Lotus's outage: {job:?}");
    }
    run.stop().await;
}

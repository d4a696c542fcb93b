//! Planted secrets never leak. Every place a secret can be given holds one (an RPC URL with a
//! key in its path and in its query, the Lotus token and URL, the pin endpoint's token, path
//! and query, the private key, the database password, API keys), and two `raas serve`
//! processes run at trace level through failures of every endpoint. Then every log line,
//! HTTP response (errors, lists, status, metrics, events, readiness), stored row and CLI
//! error is searched: none may contain any of them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pin::pin_server;
use common::stores::{fresh_postgres, temp_dir};
use common::Devnet;
use futures::StreamExt;
use raas_core::chain::evm::{DealStatusClient, DealStatusConfig};
use serde_json::{json, Value};

const CID_A: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
const CID_B: &str = "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

const EVM_QUERY: &str = "SECRETevmQueryKey1";
const EVM_PATH: &str = "SECRETevmPathKey2";
const LOTUS_TOKEN: &str = "SECRETlotusToken3";
const LOTUS_QUERY: &str = "SECRETlotusQuery4";
const PIN_TOKEN: &str = "SECRETpinToken6";
const PIN_PATH: &str = "SECRETpinPath7";
const PIN_QUERY: &str = "SECRETpinQuery8";
const DB_PASSWORD: &str = "SECRETdbPassword9";
const GATEWAY_KEY: &str = "SECRETgatewayKey10";
const WRONG_API_KEY: &str = "raas_SECRETwrongApiKey11";

/// A `raas serve` process at trace level; stdout and stderr go to files.
struct Served {
    child: Child,
    url: String,
    out: std::path::PathBuf,
    err: std::path::PathBuf,
}

impl Served {
    fn start(config: &Value, dir: &std::path::Path, name: &str) -> Served {
        let out = dir.join(format!("{name}.stdout"));
        let err = dir.join(format!("{name}.stderr"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_raas"))
            .arg("serve")
            .arg(config.to_string())
            .env("RAAS_LOG", "trace")
            .env("RAAS_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let url = serde_json::from_str::<Value>(&first).unwrap()["serving"]
            .as_str()
            .unwrap_or_else(|| panic!("did not serve: {first}"))
            .to_string();
        // The rest of stdout, gathered on a thread (a pipe nobody reads would stall it).
        let path = out.clone();
        std::fs::write(&path, &first).unwrap();
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
            let mut all = std::fs::read_to_string(&path).unwrap_or_default();
            all.push_str(&rest);
            let _ = std::fs::write(&path, all);
        });
        Served {
            child,
            url,
            out,
            err,
        }
    }

    /// SIGTERM, wait, and everything it wrote.
    fn stop(mut self) -> String {
        common::sigterm(self.child.id());
        self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(300)); // the stdout thread's last write
        let out = std::fs::read_to_string(&self.out).unwrap_or_default();
        let err = std::fs::read_to_string(&self.err).unwrap_or_default();
        format!("{out}\n{err}")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything an HTTP exchange shows a client: status, headers and body.
async fn exchange(req: reqwest::RequestBuilder) -> String {
    match req.send().await {
        Ok(r) => {
            let head = format!("{} {:?}", r.status(), r.headers());
            format!("{head}\n{}", r.text().await.unwrap_or_default())
        }
        Err(e) => format!("{e}"),
    }
}

/// Every row of every table of the store, as text (PostgreSQL), or the raw SQLite files.
async fn stored_rows(store: &str, dir: &std::path::Path) -> String {
    let mut all = String::new();
    if store.starts_with("postgres") {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(store)
            .await
            .unwrap();
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(tables.len() >= 4, "{tables:?}");
        for (t,) in tables {
            let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT row_to_json(t)::text FROM \"{t}\" t"
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            for (r,) in rows {
                all.push_str(&r);
                all.push('\n');
            }
        }
        pool.close().await;
    } else {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.file_name().unwrap().to_string_lossy().starts_with("n.db") {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
    }
    all
}

/// Inserts `password` as the user's password in a `postgres://user@…` URL.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, host) = rest.split_once('@').unwrap();
    format!("{scheme}://{user}:{password}@{host}")
}

#[tokio::test(flavor = "multi_thread")]
async fn planted_secrets_never_leak_through_a_run_full_of_failures() {
    let d = Devnet::start_seeder();
    let dir = temp_dir();
    let private_key = d.key(0);
    let key_hex = private_key.trim_start_matches("0x").to_string();
    let (pin_base, pins) = pin_server(3).await;

    // The store: PostgreSQL with a password in its URL (the test cluster trusts local
    // connections, so any password is accepted), else SQLite.
    let store = match fresh_postgres().await {
        Some(url) => with_password(&url, DB_PASSWORD),
        None => format!("sqlite:{}", dir.0.join("n.db").display()),
    };
    let mut secrets: Vec<String> = [
        EVM_QUERY,
        EVM_PATH,
        LOTUS_TOKEN,
        LOTUS_QUERY,
        PIN_TOKEN,
        PIN_PATH,
        PIN_QUERY,
        GATEWAY_KEY,
        WRONG_API_KEY,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    secrets.push(key_hex.clone());
    if store.starts_with("postgres") {
        secrets.push(DB_PASSWORD.into());
    }

    // Deals for the repair job's Lotus reads; Lotus wants the token from now on.
    let owner = DealStatusClient::with_signer(
        DealStatusConfig::new(d.evm(), d.deal_status()),
        &private_key,
    )
    .unwrap();
    let h = d.start_epoch();
    d.add_deal(501, 1000, 1, h, h + 100_000).await;
    d.seed(&owner, CID_B, 501, 1000).await;
    d.control("Devnet.Activate", json!([501])).await;
    d.control("Devnet.SetBehaviour", json!([{"token": LOTUS_TOKEN}]))
        .await;

    let config = |rpc_url: String| {
        json!({
            "store": store,
            "nodeId": "secrets",
            "dealStatus": {
                "rpcUrl": rpc_url,
                "address": d.deal_status(),
                "privateKey": private_key,
                "timeoutMs": 2000,
            },
            "lotus": {
                "url": format!("{}?token={LOTUS_QUERY}", d.lotus()),
                "token": LOTUS_TOKEN,
                "timeoutMs": 2000,
                "retries": 1,
            },
            "hook": {
                "type": "pin",
                "endpoint": format!("{pin_base}/{PIN_PATH}?key={PIN_QUERY}"),
                "token": PIN_TOKEN,
            },
            "gateways": [
                format!("http://127.0.0.1:1/{GATEWAY_KEY}/"),
                format!("http://user:{GATEWAY_KEY}@127.0.0.1:1/"),
            ],
            "http": {"port": 0},
            "pollIntervalMs": 50,
            "checkIntervalSecs": 1,
            "backoffBaseSecs": 1,
            "backoffMaxSecs": 2,
            "maxFailures": 1000,
            "leaseSecs": 5,
            "hookTimeoutSecs": 5,
        })
    };

    // API keys: an admin and a tenant's client key (their secrets are shown once, here).
    let key = |scope: &str, tenant: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_raas"));
        cmd.args(["keys", "create", "--name", scope, "--scope", scope]);
        if let Some(t) = tenant {
            cmd.args(["--tenant", t]);
        }
        let out = cmd.arg(config(d.evm()).to_string()).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["created"]["key"].as_str().unwrap().to_string()
    };
    let admin = key("admin", None);
    let client_key = key("client", Some("team-a"));
    secrets.push(admin.clone());
    secrets.push(client_key.clone());

    let mut seen = String::new();
    let c = reqwest::Client::new();

    // Phase 1: the endpoints work, with failures injected into Lotus and the pin service.
    let evm_ok = format!("{}/?apikey={EVM_QUERY}", d.evm());
    let served = Served::start(&config(evm_ok), &dir.0, "one");
    let u = |p: &str| format!("{}{p}", served.url);
    let reg = exchange(
        c.post(u("/register_jobs"))
            .bearer_auth(&client_key)
            .json(&json!([
                {"cid": CID_A, "replicationTarget": 2},
                {"cid": CID_B, "replicationTarget": 1, "repairThresholdEpochs": 100,
                 "renewThresholdEpochs": 1000},
            ])),
    )
    .await;
    assert!(reg.starts_with("201"), "{reg}");
    seen.push_str(&reg);
    for behaviour in [
        json!({"failNext": 3}),
        json!({"garbageNext": 2}),
        json!({"rateLimitNext": 2, "retryAfter": 1}),
        json!({"hugeNext": 1, "hugeBytes": 20 << 20}),
        json!({"resetNext": 2}),
        json!({"delayMs": 2500}),
        json!({"delayMs": 0, "token": "another-token"}),
        json!({"token": LOTUS_TOKEN}),
    ] {
        let wrong_token = behaviour["token"] == "another-token";
        d.control("Devnet.SetBehaviour", json!([behaviour])).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // The node may be backing off from the slow replies: hold the wrong token until
        // it has met it (on a slow machine that takes longer than the step).
        let t = Instant::now();
        while wrong_token
            && !std::fs::read_to_string(&served.err)
                .unwrap_or_default()
                .contains("UNAUTHORIZED")
        {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the wrong token never met"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let t = Instant::now();
    while pins.lock().unwrap().is_empty() && t.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !pins.lock().unwrap().is_empty(),
        "a pin got through the failures"
    );
    assert!(
        pins.lock().unwrap()[0].1.ends_with(PIN_TOKEN),
        "the token is sent where it belongs"
    );
    seen.push_str(&read_everything(&c, &served.url, &admin, &client_key).await);
    seen.push_str(&served.stop());

    // Phase 2: the EVM URL with a key in its path (anvil answers 404): every check fails
    // while the API is read.
    let evm_bad = format!("{}/v1/{EVM_PATH}?apikey={EVM_QUERY}", d.evm());
    let served = Served::start(&config(evm_bad), &dir.0, "two");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let failing = read_everything(&c, &served.url, &admin, &client_key).await;
    assert!(
        failing.contains("RPC_ERROR") && failing.contains("404"),
        "the failures show: {failing}"
    );
    seen.push_str(&failing);
    seen.push_str(&served.stop());

    // CLI errors with secrets in the config: a store that cannot be reached, a bad Lotus.
    let mut unreachable = config(d.evm());
    unreachable["store"] = json!(format!(
        "postgres://raas:{DB_PASSWORD}@127.0.0.1:1/raas?password={DB_PASSWORD}"
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_raas"))
        .args(["keys", "list"])
        .arg(unreachable.to_string())
        .env("RAAS_LOG", "trace")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let cli = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cli.contains("STORE_UNAVAILABLE"), "{cli}");
    seen.push_str(&cli);
    if !secrets.iter().any(|s| s == DB_PASSWORD) {
        secrets.push(DB_PASSWORD.into());
    }

    seen.push_str(&stored_rows(&store, &dir.0).await);

    if let Ok(path) = std::env::var("RAAS_SECRETS_DUMP") {
        std::fs::write(path, &seen).unwrap();
    }
    // The run said a lot, at trace level, and went through failures: the search means
    // something.
    assert!(seen.len() > 100_000, "only {} bytes seen", seen.len());
    assert!(seen.contains("TRACE"), "trace level was on");
    for code in ["HOOK_FAILED", "UNAUTHORIZED"] {
        assert!(seen.contains(code), "{code} was met");
    }
    let mut leaks = Vec::new();
    for s in &secrets {
        if let Some(i) = seen.find(s.as_str()) {
            let bytes = seen.as_bytes();
            let around = &bytes[i.saturating_sub(300)..(i + s.len() + 300).min(bytes.len())];
            leaks.push(format!("{s}: …{}…", String::from_utf8_lossy(around)));
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
}

/// Reads every route as the admin, the client and a caller with a wrong key.
async fn read_everything(c: &reqwest::Client, base: &str, admin: &str, client: &str) -> String {
    let u = |p: &str| format!("{base}{p}");
    let mut seen = String::new();
    let jobs: Value = c
        .get(u("/jobs"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<String> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jobId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{jobs}");
    let mut paths = vec![
        "/jobs".to_string(),
        "/requests".into(),
        format!("/status/{CID_A}?fresh=true"),
        format!("/status/{CID_B}?fresh=true"),
        format!("/api/deal_status?cid={CID_B}"),
        "/readyz".into(),
        "/healthz".into(),
        "/metrics".into(),
        format!("/retrieve/{CID_A}"),
        format!("/ipfs/{CID_A}?format=car"),
        "/pins".into(),
    ];
    for id in &ids {
        paths.push(format!("/jobs/{id}"));
        paths.push(format!("/jobs/{id}/history"));
        paths.push(format!("/jobs/{id}/requests"));
    }
    for p in &paths {
        for key in [admin, client] {
            seen.push_str(&exchange(c.get(u(p)).bearer_auth(key)).await);
        }
        seen.push_str(&exchange(c.get(u(p)).bearer_auth(WRONG_API_KEY)).await);
        seen.push_str(&exchange(c.get(u(p)).header("x-api-key", WRONG_API_KEY)).await);
    }
    seen.push_str(
        &exchange(
            c.post(u("/register_jobs"))
                .bearer_auth(client)
                .json(&json!({"cid": "not-a-cid", "replicationTarget": 99})),
        )
        .await,
    );
    // Live events for a second.
    if let Ok(r) = c.get(u("/events")).bearer_auth(admin).send().await {
        let mut body = r.bytes_stream();
        let until = Instant::now() + Duration::from_secs(1);
        while let Ok(Some(Ok(chunk))) =
            tokio::time::timeout(until.saturating_duration_since(Instant::now()), body.next()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    seen
}

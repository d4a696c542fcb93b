//! The HTTP API over real HTTP (reqwest against a served router): shapes, status codes,
//! error bodies naming the field, limits, paging, and nothing stored by a refused request.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;

use raas_core::engine::RaasNode;
use raas_core::service::{serve, ServeOptions};
use serde_json::{json, Value};

fn cid(i: usize) -> String {
    raas_core::cid::compute_cids(format!("service test {i}").as_bytes())
        .cid
        .to_string()
}

async fn node(http: Value) -> Arc<RaasNode> {
    Arc::new(
        RaasNode::open_json(json!({
            "store": "sqlite::memory:",
            "nodeId": "svc",
            "dealStatus": {"rpcUrl": "http://127.0.0.1:1", "address": "0x0000000000000000000000000000000000000001"},
            "http": http,
        }))
        .await
        .unwrap(),
    )
}

/// A suffix unique enough for a temporary directory of this process.
fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

async fn send(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, Value) {
    let mut r = c.request(method, url);
    if let Some((ct, b)) = body {
        r = r.header("content-type", ct).body(b);
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn json_body(v: Value) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", v.to_string().into_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_registers_lists_pages_cancels_and_refuses_bad_input() {
    let n = node(json!({"maxJobsPerRequest": 5, "bodyLimitBytes": 65_536})).await;
    let server = serve(
        n.clone(),
        ServeOptions {
            host: None,
            port: Some(0),
        },
    )
    .await
    .unwrap();
    let u = |p: &str| format!("{}{p}", server.url);
    let c = reqwest::Client::new();
    use reqwest::Method as M;

    // One job: 201; the same again: 200, the same id.
    let (s, one) = send(
        &c,
        M::POST,
        u("/register_jobs"),
        json_body(json!({"cid": cid(0), "replicationTarget": 2})),
    )
    .await;
    assert_eq!(s, 201, "{one}");
    assert_eq!(one["registrations"][0]["created"], true);
    let id = one["registrations"][0]["job"]["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, again) = send(
        &c,
        M::POST,
        u("/register_jobs"),
        json_body(json!({"cid": cid(0), "replicationTarget": 2})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(again["registrations"][0]["job"]["jobId"], id.as_str());
    assert_eq!(again["registrations"][0]["created"], false);

    // An array and {"jobs": [...]}; an invalid job anywhere stores none of them.
    let (s, arr) = send(
        &c,
        M::POST,
        u("/register_jobs"),
        json_body(json!([{"cid": cid(1), "replicationTarget": 1}, {"cid": cid(2), "replicationTarget": 1}])),
    )
    .await;
    assert_eq!(
        (s, arr["registrations"].as_array().unwrap().len()),
        (201, 2)
    );
    let (s, e) = send(
        &c,
        M::POST,
        u("/register_jobs"),
        json_body(json!({"jobs": [{"cid": cid(3), "replicationTarget": 1}, {"cid": cid(4), "replicationTarget": 0}]})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error"]["code"], "INVALID_JOB");
    assert_eq!(e["error"]["field"], "jobs[1].replicationTarget");
    let (s, e) = send(
        &c,
        M::POST,
        u("/register_jobs"),
        json_body(json!({"cid": "not-a-cid"})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str(), e["error"]["field"].as_str()),
        (400, Some("INVALID_CID"), Some("cid"))
    );
    let (s, e) = send(
        &c,
        M::POST,
        u("/register_jobs"),
        json_body(json!({"cid": cid(5), "replicationTarget": 1, "colour": "red"})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (400, Some("colour")),
        "{e}"
    );
    let (s, e) = send(
        &c,
        M::POST,
        u("/register_jobs"),
        json_body(json!((0..6)
            .map(|i| json!({"cid": cid(100 + i), "replicationTarget": 1}))
            .collect::<Vec<_>>())),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (413, Some("TOO_MANY_JOBS"))
    );
    let (s, e) = send(
        &c,
        M::POST,
        u("/register_jobs"),
        Some(("text/plain", b"{}".to_vec())),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (415, Some("UNSUPPORTED_MEDIA_TYPE"))
    );
    let (s, e) = send(
        &c,
        M::POST,
        u("/register_jobs"),
        Some(("application/json", b"{\"cid\": ".to_vec())),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("INVALID_JSON"))
    );
    let big = format!("{{\"cid\": \"{}\"}}", "a".repeat(100_000));
    let (s, e) = send(
        &c,
        M::POST,
        u("/register_jobs"),
        Some(("application/json", big.into_bytes())),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE"))
    );
    let (s, all) = send(&c, M::GET, u("/jobs"), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        all["jobs"].as_array().unwrap().len(),
        3,
        "refused requests stored nothing"
    );

    // Paging, filters, one job, history, requests, status.
    let (_, p1) = send(&c, M::GET, u("/jobs?limit=2"), None).await;
    assert_eq!(p1["jobs"].as_array().unwrap().len(), 2);
    let next = p1["next"].as_str().unwrap();
    let (_, p2) = send(&c, M::GET, u(&format!("/jobs?limit=2&after={next}")), None).await;
    assert_eq!(p2["jobs"].as_array().unwrap().len(), 1);
    assert!(p2.get("next").is_none(), "last page");
    let (s, e) = send(&c, M::GET, u("/jobs?state=asleep"), None).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("INVALID_ARGUMENT")),
        "{e}"
    );
    let (s, e) = send(&c, M::GET, u("/jobs?colour=red"), None).await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = send(&c, M::GET, u("/jobs?limit=0"), None).await;
    assert_eq!((s, e["error"]["field"].as_str()), (400, Some("limit")));
    let (s, j) = send(&c, M::GET, u(&format!("/jobs/{id}")), None).await;
    assert_eq!((s, j["spec"]["replicationTarget"].as_u64()), (200, Some(2)));
    let (s, e) = send(&c, M::GET, u("/jobs/job_nope"), None).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("JOB_NOT_FOUND"))
    );
    let (s, e) = send(
        &c,
        M::GET,
        u(&format!("/jobs/{id}/history?limit=5000")),
        None,
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (400, Some("limit")),
        "not clamped"
    );
    let (s, h) = send(&c, M::GET, u(&format!("/jobs/{id}/history")), None).await;
    assert_eq!((s, h["checks"].as_array().map(Vec::len)), (200, Some(0)));
    let (s, r) = send(&c, M::GET, u(&format!("/jobs/{id}/requests")), None).await;
    assert_eq!((s, r["requests"].as_array().map(Vec::len)), (200, Some(0)));
    let (s, r) = send(&c, M::GET, u("/jobs/job_nope/requests"), None).await;
    assert_eq!(s, 404, "{r}");
    let (s, st) = send(&c, M::GET, u(&format!("/status/{}", cid(0))), None).await;
    assert_eq!(
        (
            s,
            st["fresh"].as_bool(),
            st["jobs"].as_array().map(Vec::len)
        ),
        (200, Some(false), Some(1))
    );
    let (s, e) = send(&c, M::GET, u("/status/nope"), None).await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("INVALID_CID")));
    // The chain is unreachable here: a fresh read says so, 503.
    let (s, e) = send(
        &c,
        M::GET,
        u(&format!("/status/{}?fresh=true", cid(0))),
        None,
    )
    .await;
    assert_eq!(s, 503, "{e}");
    let (s, rq) = send(&c, M::GET, u("/requests?state=dead"), None).await;
    assert_eq!((s, rq["requests"].as_array().map(Vec::len)), (200, Some(0)));
    let (s, rt) = send(&c, M::POST, u("/requests/nope/retry"), None).await;
    assert_eq!((s, rt["retried"].as_bool()), (200, Some(false)));

    // Cancel.
    let (s, j) = send(&c, M::DELETE, u(&format!("/jobs/{id}")), None).await;
    assert_eq!((s, j["state"].as_str()), (200, Some("cancelled")));
    let (_, cancelled) = send(&c, M::GET, u("/jobs?state=cancelled"), None).await;
    assert_eq!(cancelled["jobs"].as_array().unwrap().len(), 1);

    // Ops, unknown routes and methods.
    assert_eq!(
        send(&c, M::GET, u("/healthz"), None).await,
        (200, json!({"ok": true}))
    );
    let (s, ready) = send(&c, M::GET, u("/readyz"), None).await;
    assert_eq!((s, ready["store"].as_bool()), (200, Some(true)));
    let (s, e) = send(&c, M::GET, u("/nothing/here"), None).await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("NOT_FOUND")));
    let (s, e) = send(&c, M::PUT, u("/healthz"), None).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (405, Some("METHOD_NOT_ALLOWED"))
    );

    // The document is generated from the handlers: every route is in it.
    let (s, doc) = send(&c, M::GET, u("/openapi.json"), None).await;
    assert_eq!(s, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for p in [
        "/register_jobs",
        "/jobs",
        "/jobs/{id}",
        "/jobs/{id}/history",
        "/jobs/{id}/requests",
        "/status/{cid}",
        "/requests",
        "/requests/{key}/retry",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            doc["paths"].get(p).is_some(),
            "{p} missing from the document"
        );
    }
    assert!(doc["paths"]["/jobs/{id}"].get("delete").is_some());
    assert!(doc["components"]["schemas"].get("JobRecord").is_some());
    server.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_api_is_served_on_loopback_only_unless_asked() {
    let n = node(json!({})).await;
    let e = serve(
        n.clone(),
        ServeOptions {
            host: Some("0.0.0.0".into()),
            port: Some(0),
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("not a loopback address"), "{e}");
    let n = node(json!({"auth": "none"})).await;
    let s = serve(
        n,
        ServeOptions {
            host: Some("0.0.0.0".into()),
            port: Some(0),
        },
    )
    .await
    .unwrap();
    s.close().await.unwrap();
    let e = RaasNode::open_json(json!({
        "dealStatus": {"rpcUrl": "http://127.0.0.1:1", "address": "0x0000000000000000000000000000000000000001"},
        "store": "sqlite::memory:",
        "http": {"auth": "open-sesame"},
    }))
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("http.auth"), "{e}");
}

/// A fresh directory and the config of a `raas serve` on a SQLite file in it, on a free
/// port, with an unreachable chain.
fn serve_config(tag: &str) -> (std::path::PathBuf, Value) {
    let dir = std::env::temp_dir().join(format!(
        "raas-{tag}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = json!({
        "store": format!("sqlite:{}", dir.join("n.db").display()),
        "nodeId": "served",
        "dealStatus": {"rpcUrl": "http://127.0.0.1:1", "address": "0x0000000000000000000000000000000000000001"},
        "http": {"port": 0},
        "pollIntervalMs": 50,
    });
    (dir, config)
}

/// A node whose stdout reader went away (`raas serve | head -1`) keeps serving and stops
/// cleanly: its JSON lines are dropped, never a panic (`println!` panics on a closed pipe).
#[tokio::test(flavor = "multi_thread")]
async fn raas_serve_outlives_a_closed_stdout() {
    use std::io::{BufRead, BufReader};
    let (dir, config) = serve_config("pipe");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_raas"))
        .arg("serve")
        .arg(config.to_string())
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let url = first["serving"].as_str().unwrap().to_string();
    drop(lines); // the reader goes away: the pipe is closed
    let r = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    common::sigterm(child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn raas_serve_answers_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let (dir, config) = serve_config("serve");
    let log = dir.join("stderr");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_raas"))
        .arg("serve")
        .arg(config.to_string())
        .env("RAAS_LOG_FORMAT", "json")
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let url = first["serving"]
        .as_str()
        .expect("prints where it serves")
        .to_string();
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{url}/register_jobs"))
        .json(&json!({"cid": cid(7), "replicationTarget": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let jobs: Value = c
        .get(format!("{url}/jobs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1);

    // `raas keys create` on the same store: from then on the API needs the key.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_raas"))
        .args([
            "keys", "create", "--name", "ci", "--scope", "client", "--tenant", "team-a",
        ])
        .arg(config.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["created"]["key"].as_str().unwrap().to_string();
    assert_eq!(created["created"]["tenant"], "team-a");
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_raas"))
        .args(["keys", "list"])
        .env("RAAS_CONFIG", config.to_string())
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("team-a") && !listed.contains(&key[22..]),
        "{listed}"
    );
    // The serving process sees the new key within the key cache's lifetime.
    tokio::time::sleep(raas_core::engine::KEY_CACHE_TTL + std::time::Duration::from_millis(200))
        .await;
    let r = c.get(format!("{url}/jobs")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r: Value = c
        .get(format!("{url}/jobs"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["jobs"].as_array().unwrap().len(),
        0,
        "the operator's job is not team-a's"
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_raas"))
        .args(["keys", "create", "--name", "x", "--scope", "root"])
        .arg(config.to_string())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stdout).contains("scope"),
        "{bad:?}"
    );
    common::sigterm(child.id());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(rest.iter().any(|l| l.contains("\"stopped\"")), "{rest:?}");
    assert!(
        c.get(format!("{url}/healthz")).send().await.is_err(),
        "no longer listening"
    );
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(!logs.contains(&key[22..]), "the secret is never logged");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = c.request(method, url);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_scope_every_route_to_a_tenant() {
    let n = node(json!({"rateLimitPerSecond": 1000, "rateLimitBurst": 1000})).await;
    let server = serve(
        n.clone(),
        ServeOptions {
            host: None,
            port: Some(0),
        },
    )
    .await
    .unwrap();
    let u = |p: &str| format!("{}{p}", server.url);
    let c = reqwest::Client::new();
    use reqwest::Method as M;

    // No key yet: open (the operator on loopback).
    let (s, _, _) = call(&c, M::GET, u("/jobs"), None, None).await;
    assert_eq!(s, 200);

    let alice = n
        .create_api_key(json!({"name": "alice", "scope": "client", "maxJobs": 3}))
        .await
        .unwrap();
    let bob = n
        .create_api_key(json!({"name": "bob", "scope": "client"}))
        .await
        .unwrap();
    let admin = n
        .create_api_key(json!({"name": "ops", "scope": "admin"}))
        .await
        .unwrap();
    assert!(alice.key.starts_with("raas_") && alice.key.len() > 80);
    // The secret is never stored or listed.
    let listed = serde_json::to_string(&n.list_api_keys().await.unwrap()).unwrap();
    assert!(!listed.contains(&alice.key[22..]), "{listed}");

    // Now every route but the probes needs a key.
    let (s, h, e) = call(&c, M::GET, u("/jobs"), None, None).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    assert!(h.get("www-authenticate").is_some());
    let (s, _, e) = call(
        &c,
        M::GET,
        u("/jobs"),
        Some("raas_0000000000000000_00"),
        None,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("INVALID_API_KEY"))
    );
    let forged = format!(
        "{}{}",
        &alice.key[..alice.key.len() - 1],
        if alice.key.ends_with('0') { "1" } else { "0" }
    );
    let (s, _, _) = call(&c, M::GET, u("/jobs"), Some(&forged), None).await;
    assert_eq!(s, 401, "a key with a wrong secret is refused");
    for open in ["/healthz", "/openapi.json"] {
        let (s, _, _) = call(&c, M::GET, u(open), None, None).await;
        assert_eq!(s, 200, "{open}");
    }
    // X-API-Key works as well as Bearer.
    let res = c
        .get(u("/jobs"))
        .header("x-api-key", &bob.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);

    // Alice registers; the same CID by Bob is another job.
    let (s, _, a) = call(
        &c,
        M::POST,
        u("/register_jobs"),
        Some(&alice.key),
        Some(json!({"cid": cid(50), "replicationTarget": 2})),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    let a_id = a["registrations"][0]["job"]["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        a["registrations"][0]["job"]["spec"]["tenant"],
        alice.tenant.as_str()
    );
    let (s, _, b) = call(
        &c,
        M::POST,
        u("/register_jobs"),
        Some(&bob.key),
        Some(json!({"cid": cid(50), "replicationTarget": 2})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let b_id = b["registrations"][0]["job"]["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(a_id, b_id, "two tenants, two jobs");
    // A client cannot name a tenant in the job.
    let (s, _, e) = call(
        &c,
        M::POST,
        u("/register_jobs"),
        Some(&bob.key),
        Some(json!({"cid": cid(51), "replicationTarget": 2, "tenant": alice.tenant})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (400, Some("tenant")),
        "{e}"
    );

    // Bob never sees Alice's job: 404 everywhere, absent from lists and status.
    for (m, p) in [
        (M::GET, format!("/jobs/{a_id}")),
        (M::GET, format!("/jobs/{a_id}/history")),
        (M::GET, format!("/jobs/{a_id}/requests")),
        (M::DELETE, format!("/jobs/{a_id}")),
    ] {
        let (s, _, e) = call(&c, m.clone(), u(&p), Some(&bob.key), None).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (404, Some("JOB_NOT_FOUND")),
            "{m} {p}"
        );
    }
    let (_, _, l) = call(&c, M::GET, u("/jobs"), Some(&bob.key), None).await;
    let ids: Vec<&str> = l["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jobId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![b_id.as_str()]);
    let (_, _, st) = call(
        &c,
        M::GET,
        u(&format!("/status/{}", cid(50))),
        Some(&bob.key),
        None,
    )
    .await;
    assert_eq!(st["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(st["jobs"][0]["jobId"], b_id.as_str());
    // Alice's job is still there and active (Bob's DELETE did nothing).
    let (s, _, j) = call(
        &c,
        M::GET,
        u(&format!("/jobs/{a_id}")),
        Some(&alice.key),
        None,
    )
    .await;
    assert_eq!((s, j["state"].as_str()), (200, Some("active")));
    // The admin sees both.
    let (_, _, l) = call(&c, M::GET, u("/jobs"), Some(&admin.key), None).await;
    assert_eq!(l["jobs"].as_array().unwrap().len(), 2);

    // Admin routes: 403 for a client key, 200 for the admin.
    let (s, _, e) = call(&c, M::GET, u("/requests"), Some(&alice.key), None).await;
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("FORBIDDEN")));
    let (s, _, _) = call(&c, M::POST, u("/requests/x/retry"), Some(&alice.key), None).await;
    assert_eq!(s, 403);
    let (s, _, _) = call(&c, M::GET, u("/requests"), Some(&admin.key), None).await;
    assert_eq!(s, 200);

    // Quota: Alice may have 3 live jobs; a batch that would make 4 stores nothing.
    let (s, _, e) = call(
        &c,
        M::POST,
        u("/register_jobs"),
        Some(&alice.key),
        Some(json!([
            {"cid": cid(52), "replicationTarget": 1},
            {"cid": cid(53), "replicationTarget": 1},
            {"cid": cid(54), "replicationTarget": 1},
        ])),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (429, Some("QUOTA_EXCEEDED")),
        "{e}"
    );
    let (_, _, l) = call(&c, M::GET, u("/jobs"), Some(&alice.key), None).await;
    assert_eq!(
        l["jobs"].as_array().unwrap().len(),
        1,
        "nothing of the refused batch stored"
    );
    let (s, _, _) = call(
        &c,
        M::POST,
        u("/register_jobs"),
        Some(&alice.key),
        Some(json!([
            {"cid": cid(52), "replicationTarget": 1},
            {"cid": cid(53), "replicationTarget": 1},
        ])),
    )
    .await;
    assert_eq!(s, 201, "up to the quota is fine");
    // Cancelling frees room.
    let (s, _, _) = call(
        &c,
        M::DELETE,
        u(&format!("/jobs/{a_id}")),
        Some(&alice.key),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, _) = call(
        &c,
        M::POST,
        u("/register_jobs"),
        Some(&alice.key),
        Some(json!({"cid": cid(54), "replicationTarget": 1})),
    )
    .await;
    assert_eq!(s, 201);

    // Revoked: refused at once.
    n.revoke_api_key(&bob.id).await.unwrap();
    let (s, _, e) = call(&c, M::GET, u("/jobs"), Some(&bob.key), None).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("INVALID_API_KEY"))
    );
    let e = n.revoke_api_key("key_nope").await.unwrap_err();
    assert_eq!(raas_core::ErrorCode::code(&e), "KEY_NOT_FOUND");
    server.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let n = node(json!({"rateLimitPerSecond": 2, "rateLimitBurst": 3})).await;
    let server = serve(
        n.clone(),
        ServeOptions {
            host: None,
            port: Some(0),
        },
    )
    .await
    .unwrap();
    let c = reqwest::Client::new();
    let k = n
        .create_api_key(json!({"name": "k", "scope": "client"}))
        .await
        .unwrap();
    let fast = n
        .create_api_key(json!({"name": "fast", "scope": "client", "ratePerSecond": 1000}))
        .await
        .unwrap();
    let mut statuses = vec![];
    let mut retry_after = None;
    for _ in 0..6 {
        let (s, h, e) = call(
            &c,
            reqwest::Method::GET,
            format!("{}/jobs", server.url),
            Some(&k.key),
            None,
        )
        .await;
        if s == 429 {
            assert_eq!(e["error"]["code"], "RATE_LIMITED");
            retry_after = h
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        }
        statuses.push(s);
    }
    assert_eq!(
        &statuses[..3],
        &[200, 200, 200],
        "the burst passes: {statuses:?}"
    );
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    assert!(matches!(retry_after, Some(1..=2)), "{retry_after:?}");
    // Buckets are per key: another key is not slowed.
    let (s, _, _) = call(
        &c,
        reqwest::Method::GET,
        format!("{}/jobs", server.url),
        Some(&fast.key),
        None,
    )
    .await;
    assert_eq!(s, 200);
    // After the wait, the key passes again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, _, _) = call(
        &c,
        reqwest::Method::GET,
        format!("{}/jobs", server.url),
        Some(&k.key),
        None,
    )
    .await;
    assert_eq!(s, 200);
    server.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_answers_only_listed_origins() {
    let n = node(json!({"corsOrigins": ["https://app.example.com"]})).await;
    let server = serve(
        n.clone(),
        ServeOptions {
            host: None,
            port: Some(0),
        },
    )
    .await
    .unwrap();
    let c = reqwest::Client::new();
    let pre = |origin: &'static str| {
        c.request(reqwest::Method::OPTIONS, format!("{}/jobs", server.url))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let ok = pre("https://app.example.com").await.unwrap();
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("https://app.example.com")
    );
    let other = pre("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // Without an allow-list, no CORS header at all.
    let closed = node(json!({})).await;
    let s2 = serve(
        closed,
        ServeOptions {
            host: None,
            port: Some(0),
        },
    )
    .await
    .unwrap();
    let r = c
        .get(format!("{}/jobs", s2.url))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // A bad origin in the configuration is refused, naming it.
    let e = RaasNode::open_json(json!({
        "store": "sqlite::memory:",
        "dealStatus": {"rpcUrl": "http://127.0.0.1:1", "address": "0x0000000000000000000000000000000000000001"},
        "http": {"corsOrigins": ["https://ok.example", "ftp://x/y"]},
    }))
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("http.corsOrigins[1]"), "{e}");
    server.close().await.unwrap();
    s2.close().await.unwrap();
}

/// A chain whose deals the test sets: one active deal per CID listed in `deals`.
struct TestChain {
    deals: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl raas_core::engine::ChainSource for TestChain {
    fn head(
        &self,
    ) -> raas_core::engine::SourceFuture<
        '_,
        Result<raas_core::engine::Head, raas_core::engine::SourceError>,
    > {
        Box::pin(async {
            Ok(raas_core::engine::Head {
                epoch: 1_000,
                block: None,
                tipset: None,
            })
        })
    }
    fn deal_sets<'a>(
        &'a self,
        reads: &'a [(String, raas_core::chain::evm::DealRead)],
        _head: &'a raas_core::engine::Head,
    ) -> raas_core::engine::SourceFuture<
        'a,
        raas_core::engine::Reads<Vec<raas_core::chain::evm::Deal>>,
    > {
        Box::pin(async move {
            let d = self.deals.lock().unwrap();
            Ok(reads
                .iter()
                .map(|(cid, _)| {
                    Ok((0..d.get(cid).copied().unwrap_or(0))
                        .map(|i| raas_core::chain::evm::Deal {
                            deal_id: 100 + i,
                            miner_id: 1000 + i,
                        })
                        .collect())
                })
                .collect())
        })
    }
    fn deal_health<'a>(
        &'a self,
        _head: &'a raas_core::engine::Head,
        _deals: &'a [(u64, Option<i64>)],
    ) -> raas_core::engine::SourceFuture<
        'a,
        raas_core::engine::Reads<raas_core::chain::health::HealthReport>,
    > {
        Box::pin(async { Ok(vec![]) })
    }
    fn has_lotus(&self) -> bool {
        false
    }
}

/// Reads SSE events from a response until `n` have come (or the time runs out).
async fn sse_events(mut res: reqwest::Response, n: usize) -> Vec<(i64, String, Value)> {
    let mut out = vec![];
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while out.len() < n {
        let chunk = match tokio::time::timeout_at(deadline, res.chunk()).await {
            Ok(Ok(Some(c))) => c,
            _ => break,
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (None, String::new(), String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if let Some(id) = id {
                out.push((id, kind, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn events_stream_a_tenants_changes_and_resume_from_last_event_id() {
    let config = raas_core::engine::NodeConfig::from_json(json!({
        "store": "sqlite::memory:",
        "nodeId": "sse",
        "dealStatus": {"rpcUrl": "http://127.0.0.1:1", "address": "0x0000000000000000000000000000000000000001"},
        "checkIntervalSecs": 1,
        "http": {"rateLimitPerSecond": 1000, "rateLimitBurst": 1000},
    }))
    .unwrap();
    let store = raas_core::store::Store::open("sqlite::memory:")
        .await
        .unwrap();
    let chain = Arc::new(TestChain {
        deals: Default::default(),
    });
    let n = Arc::new(RaasNode::open_with(
        store,
        config.settings,
        chain.clone(),
        Arc::new(raas_core::engine::SystemClock),
    ));
    let server = serve(
        n.clone(),
        ServeOptions {
            host: None,
            port: Some(0),
        },
    )
    .await
    .unwrap();
    let c = reqwest::Client::new();
    let alice = n
        .create_api_key(json!({"name": "a", "scope": "client"}))
        .await
        .unwrap();
    let bob = n
        .create_api_key(json!({"name": "b", "scope": "client"}))
        .await
        .unwrap();
    let reg = |key: String, i: usize| {
        let c = c.clone();
        let url = format!("{}/register_jobs", server.url);
        async move {
            let r: Value = c
                .post(url)
                .bearer_auth(key)
                .json(&json!({"cid": cid(i), "replicationTarget": 2}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["registrations"][0]["job"]["jobId"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let a_job = reg(alice.key.clone(), 70).await;
    let b_job = reg(bob.key.clone(), 71).await;
    chain.deals.lock().unwrap().insert(cid(70), 1);
    chain.deals.lock().unwrap().insert(cid(71), 1);

    // Alice listens, then a sweep runs: she sees her job go short and its request made.
    let live = c
        .get(format!("{}/events", server.url))
        .bearer_auth(&alice.key)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);
    assert!(live.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let report = n.run_cycle().await.unwrap();
    assert_eq!(report.jobs_checked, 2);
    let seen = sse_events(live, 2).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter().all(|(_, _, d)| d["jobId"] == a_job.as_str()),
        "only Alice's: {seen:?}"
    );
    assert_eq!(seen[0].1, "verdict");
    assert_eq!(seen[0].2["data"]["status"], "short");
    assert_eq!(seen[1].1, "request");
    assert_eq!(seen[1].2["data"]["state"], "pending");
    let last = seen[1].0;

    // While she is away: her deal count changes (satisfied, the request fulfilled), and she
    // cancels nothing. Reconnecting with Last-Event-ID gives exactly what she missed.
    chain.deals.lock().unwrap().insert(cid(70), 2);
    chain.deals.lock().unwrap().insert(cid(71), 2);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    n.run_cycle().await.unwrap();
    let back = c
        .get(format!("{}/events", server.url))
        .bearer_auth(&alice.key)
        .header("last-event-id", last.to_string())
        .send()
        .await
        .unwrap();
    let missed = sse_events(back, 2).await;
    assert_eq!(missed.len(), 2, "{missed:?}");
    assert!(missed
        .iter()
        .all(|(id, _, d)| *id > last && d["jobId"] == a_job.as_str()));
    let kinds: Vec<(&str, &str)> = missed
        .iter()
        .map(|(_, k, d)| {
            (
                k.as_str(),
                d["data"]["status"]
                    .as_str()
                    .or(d["data"]["state"].as_str())
                    .unwrap(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("verdict", "satisfied")) && kinds.contains(&("request", "fulfilled")),
        "{kinds:?}"
    );
    // Numbers increase and nothing repeats.
    let mut ids: Vec<i64> = seen.iter().chain(&missed).map(|e| e.0).collect();
    let sorted = {
        let mut s = ids.clone();
        s.sort();
        s.dedup();
        s
    };
    assert_eq!(ids, sorted);
    // Bob's stream from the start has only his job's events; the admin-less open caller
    // is refused now that keys exist.
    let bobs = sse_events(
        c.get(format!("{}/events?after=0", server.url))
            .bearer_auth(&bob.key)
            .send()
            .await
            .unwrap(),
        4,
    )
    .await;
    assert_eq!(bobs.len(), 4, "{bobs:?}");
    assert!(bobs.iter().all(|(_, _, d)| d["jobId"] == b_job.as_str()));
    let r = c
        .get(format!("{}/events", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .get(format!("{}/events", server.url))
        .bearer_auth(&bob.key)
        .header("last-event-id", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    ids.clear();
    // A client still listening does not hold the server's shutdown: its stream ends.
    let held = c
        .get(format!("{}/events", server.url))
        .bearer_auth(&alice.key)
        .send()
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), server.close())
        .await
        .expect("close() returns with a stream open")
        .unwrap();
    drop(held);
}

async fn test_node(chain: Arc<TestChain>, http: Value) -> Arc<RaasNode> {
    let config = raas_core::engine::NodeConfig::from_json(json!({
        "store": "sqlite::memory:",
        "nodeId": "t",
        "dealStatus": {"rpcUrl": "http://127.0.0.1:1", "address": "0x0000000000000000000000000000000000000001"},
        "checkIntervalSecs": 1,
        "http": http,
    }))
    .unwrap();
    let store = raas_core::store::Store::open("sqlite::memory:")
        .await
        .unwrap();
    Arc::new(RaasNode::open_with(
        store,
        config.settings,
        chain,
        Arc::new(raas_core::engine::SystemClock),
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_kit_routes_take_its_forms_and_answer_its_shapes() {
    let chain = Arc::new(TestChain {
        deals: Default::default(),
    });
    let n = test_node(chain.clone(), json!({})).await;
    let server = serve(
        n.clone(),
        ServeOptions {
            host: None,
            port: Some(0),
        },
    )
    .await
    .unwrap();
    let c = reqwest::Client::new();
    let u = |p: &str| format!("{}{p}", server.url);

    // The kit's frontend: a urlencoded form with its defaults (jobType all, target 2, epochs 4).
    let r = c
        .post(u("/api/register_job"))
        .form(&[("cid", cid(80).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Job registered successfully.");
    let job = n.get_job(body["jobId"].as_str().unwrap()).await.unwrap();
    assert_eq!(job.spec.replication_target, Some(2));
    assert_eq!(job.spec.renew_threshold_epochs, Some(4));
    assert_eq!(
        job.spec.repair_threshold_epochs, None,
        "no Lotus here: repair left out of `all`"
    );
    // endDate default: 30 days of epochs after the head (1000).
    assert_eq!(job.spec.end_epoch, Some(1_000 + 30 * 2_880));

    // Multipart (the kit's multer) and JSON (the README's example) work too.
    let form = reqwest::multipart::Form::new()
        .text("cid", cid(81))
        .text("jobType", "replication")
        .text("replicationTarget", "3")
        .text("aggregator", "lighthouse");
    let r = c
        .post(u("/api/register_job"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let j: Value = r.json().await.unwrap();
    let job = n.get_job(j["jobId"].as_str().unwrap()).await.unwrap();
    assert_eq!(
        (job.spec.replication_target, job.spec.renew_threshold_epochs),
        (Some(3), None)
    );
    let r = c
        .post(u("/api/register_job"))
        .json(&json!({"cid": cid(82), "jobType": "renew", "epochs": 100, "replicationTarget": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    // The kit's errors: `{error}` with a 400; our code and field beside it.
    for (form, field) in [
        (vec![("cid", "")], "cid"),
        (vec![("cid", "nope")], "cid"),
        (
            vec![("cid", cid(83).leak() as &str), ("jobType", "weekly")],
            "jobType",
        ),
        (
            vec![("cid", cid(83).leak() as &str), ("epochs", "four")],
            "epochs",
        ),
        (
            vec![("cid", cid(83).leak() as &str), ("colour", "red")],
            "colour",
        ),
    ] {
        let r = c
            .post(u("/api/register_job"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{form:?}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"].is_string(), "{e}");
        assert_eq!(e["field"], field, "{e}");
    }
    let r = c
        .post(u("/api/register_job"))
        .body("cid=x")
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(
        n.list_jobs(Value::Null).await.unwrap().len(),
        3,
        "no refused request stored anything"
    );

    // deal_status: no dealInfos while there are no deals (the kit's frontend keeps polling),
    // then the deals with their providers.
    let r = c
        .get(u(&format!("/api/deal_status?cid={}", cid(80))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let s: Value = r.json().await.unwrap();
    assert!(s.get("dealInfos").is_none(), "{s}");
    assert_eq!(
        (
            s["jobType"].as_str(),
            s["replicationTarget"].as_u64(),
            s["epochs"].as_i64()
        ),
        (Some("renew"), Some(2), Some(4))
    );
    assert_eq!(s["currentActiveDeals"], json!([]));
    chain.deals.lock().unwrap().insert(cid(80), 2);
    let s: Value = c
        .get(u(&format!("/api/deal_status?cid={}", cid(80))))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["dealInfos"][0]["storageProvider"], "f01000");
    assert_eq!(s["dealInfos"][1]["dealId"], 101);
    assert_eq!(s["currentActiveDeals"], json!([[100, 1000], [101, 1001]]));
    let r = c.get(u("/api/deal_status")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "CID must be of a valid deal");
    server.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_checks_chain_reads_and_requests_without_secrets() {
    let chain = Arc::new(TestChain {
        deals: Default::default(),
    });
    let n = test_node(
        chain.clone(),
        json!({"rateLimitPerSecond": 1000, "rateLimitBurst": 1000}),
    )
    .await;
    let server = serve(
        n.clone(),
        ServeOptions {
            host: None,
            port: Some(0),
        },
    )
    .await
    .unwrap();
    let c = reqwest::Client::new();
    let u = |p: &str| format!("{}{p}", server.url);
    n.register_job(json!({"cid": cid(90), "replicationTarget": 2}))
        .await
        .unwrap();
    n.register_job(json!({"cid": cid(91), "replicationTarget": 1}))
        .await
        .unwrap();
    chain.deals.lock().unwrap().insert(cid(91), 1);
    n.run_cycle().await.unwrap();
    let _ = c
        .get(u(&format!("/jobs/job_{}", "0".repeat(24))))
        .send()
        .await
        .unwrap();
    let r = c.get(u("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = r.text().await.unwrap();
    for want in [
        "raas_checks_total{outcome=\"short\"} 1",
        "raas_checks_total{outcome=\"satisfied\"} 1",
        "raas_deal_requests_created_total 1",
        "raas_jobs{state=\"active\",status=\"short\"} 1",
        "raas_deal_requests{state=\"pending\"} 1",
        "raas_chain_requests_total{endpoint=\"dealStatus\",method=\"deals\",outcome=\"ok\"}",
        "raas_http_requests_total{route=\"/jobs/{id}\",method=\"GET\",status=\"404\"} 1",
        "raas_sweeps_total 1",
        "raas_endpoint_up{endpoint=\"dealStatus\"} 1",
        "raas_sweep_seconds_bucket",
    ] {
        assert!(text.contains(want), "missing {want}:\n{text}");
    }
    assert!(!text.contains(&cid(90)), "no CID in labels");
    // Once keys exist, metrics are for admins; no key, token or URL ever appears.
    let k = n
        .create_api_key(json!({"name": "c", "scope": "client"}))
        .await
        .unwrap();
    let a = n
        .create_api_key(json!({"name": "a", "scope": "admin"}))
        .await
        .unwrap();
    assert_eq!(
        c.get(u("/metrics"))
            .bearer_auth(&k.key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    let text = c
        .get(u("/metrics"))
        .bearer_auth(&a.key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains(&a.key) && !text.contains(&k.key) && !text.contains("127.0.0.1:1"));
    assert!(text.contains("status=\"403\""), "{text}");
    server.close().await.unwrap();
}

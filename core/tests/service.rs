//! The HTTP API over real HTTP (reqwest against a served router): shapes, status codes,
//! error bodies naming the field, limits, paging, and nothing stored by a refused request.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

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

#[tokio::test(flavor = "multi_thread")]
async fn raas_serve_answers_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!(
        "raas-serve-{}-{}",
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
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(rest.iter().any(|l| l.contains("\"stopped\"")), "{rest:?}");
    assert!(
        c.get(format!("{url}/healthz")).send().await.is_err(),
        "no longer listening"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

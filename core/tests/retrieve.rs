//! Verified retrieval against a local trustless gateway (`tests/devnet/gateway.mjs`, built
//! from ipfs-unixfs-importer, @ipld/car and @ipld/dag-pb) and its hostile variants, over
//! files of edge sizes and a CAR made by `ipfs-car pack`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use raas_core::error::ErrorCode;
use raas_core::retrieve::{RetrieveError, RetrieveOptions, Retriever};

const CHUNK: usize = 262_144;

struct Gateway {
    child: Child,
    url: String,
    roots: HashMap<String, String>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_gateway(files: &[PathBuf]) -> Gateway {
    let (child, info) = common::spawn_node("tests/devnet/gateway.mjs", files);
    let roots = info["roots"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    Gateway {
        child,
        url: info["url"].as_str().unwrap().to_string(),
        roots,
    }
}

/// Deterministic bytes (xorshift), so a failure replays.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn options(gw: &Gateway, modes: &[&str]) -> RetrieveOptions {
    RetrieveOptions {
        gateways: modes.iter().map(|m| format!("{}/{m}", gw.url)).collect(),
        block_timeout: Duration::from_secs(2),
        max_unneeded_bytes: 4 << 20,
        ..Default::default()
    }
}

async fn fetch(r: &Retriever, cid: &str) -> Result<Vec<u8>, RetrieveError> {
    let mut s = Box::pin(r.retrieve(cid)?.into_stream());
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

struct Files {
    _dir: common::stores::TempDir,
    data: Vec<(PathBuf, Vec<u8>)>,
    car: PathBuf,
    car_data: Vec<u8>,
}

fn files() -> Files {
    let dir = common::stores::temp_dir();
    let mut data = Vec::new();
    for (i, len) in [
        0,
        1,
        CHUNK,
        CHUNK + 1,
        174 * CHUNK,
        174 * CHUNK + 1,
        175 * CHUNK,
    ]
    .into_iter()
    .enumerate()
    {
        let d = bytes(len, 7 + i as u64);
        data.push((write(&dir.0, &format!("f{i}.bin"), &d), d));
    }
    // A CAR packed by ipfs-car (its own layout: 1 MiB chunks, 1024 links per node).
    let car_data = bytes(3 * 1024 * 1024 + 17, 99);
    let src = write(&dir.0, "packed.bin", &car_data);
    let car = dir.0.join("packed.car");
    let status = Command::new(common::repo().join("node_modules/.bin/ipfs-car"))
        .args(["pack", "--no-wrap", "--output"])
        .arg(&car)
        .arg(&src)
        .stdout(Stdio::null())
        .status()
        .expect("ipfs-car (npm) must be installed");
    assert!(status.success());
    Files {
        _dir: dir,
        data,
        car,
        car_data,
    }
}

fn key(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_gateways_give_the_exact_bytes_and_hostile_ones_never_do() {
    let f = files();
    let mut paths: Vec<PathBuf> = f.data.iter().map(|(p, _)| p.clone()).collect();
    paths.push(f.car.clone());
    let gw = start_gateway(&paths);

    // Edge sizes, laid out as `ipfs add --cid-version=1`: our own CID computation agrees with
    // the importer, and every file comes back exact, through CARs and through single blocks.
    for (path, data) in &f.data {
        let root = &gw.roots[&key(path)];
        assert_eq!(
            raas_core::cid::compute_unixfs_cid(data).to_string(),
            *root,
            "{path:?}"
        );
        for mode in ["honest", "blocksonly", "extra"] {
            let r = Retriever::new(options(&gw, &[mode])).unwrap();
            let got = fetch(&r, root)
                .await
                .unwrap_or_else(|e| panic!("{mode} {path:?}: {e}"));
            assert!(
                got == *data,
                "{mode} {path:?}: {} bytes, want {}",
                got.len(),
                data.len()
            );
        }
    }
    // The CAR from ipfs-car.
    let r = Retriever::new(options(&gw, &["honest"])).unwrap();
    assert!(fetch(&r, &gw.roots[&key(&f.car)]).await.unwrap() == f.car_data);

    // A multi-block file: each hostile gateway alone gives its typed error.
    let (path, data) = &f.data[5];
    let root = &gw.roots[&key(path)];
    for (mode, code) in [
        ("flip", "INTEGRITY"),
        ("truncate", "INCOMPLETE"),
        ("wrongroot", "NOT_FOUND"),
        ("endless", "INCOMPLETE"),
        ("drip", "TIMEOUT"),
        ("error500", "HTTP_ERROR"),
        ("notfound", "NOT_FOUND"),
    ] {
        let r = Retriever::new(options(&gw, &[mode])).unwrap();
        let mut s = Box::pin(r.retrieve(root).unwrap().into_stream());
        let mut released = 0usize;
        let err = loop {
            match s.next().await {
                Some(Ok(chunk)) => {
                    // Whatever was released before the failure is a verified prefix.
                    assert!(
                        chunk[..] == data[released..released + chunk.len()],
                        "{mode}"
                    );
                    released += chunk.len();
                }
                Some(Err(e)) => break e,
                None => panic!("{mode}: a hostile gateway gave the whole file"),
            }
        };
        assert_eq!(err.code(), code, "{mode}: {err}");
        assert!(
            err.to_string().contains(&format!("/{mode}")),
            "{mode}: names the source: {err}"
        );
        // Each hostile source, first in line, falls through to the honest one.
        let r = Retriever::new(options(&gw, &[mode, "honest"])).unwrap();
        assert!(
            fetch(&r, root).await.unwrap() == *data,
            "{mode} then honest"
        );
    }

    // Every source failing: the most telling error, with what each said.
    let r = Retriever::new(options(&gw, &["notfound", "error500", "flip", "truncate"])).unwrap();
    let e = fetch(&r, root).await.unwrap_err();
    assert_eq!(e.code(), "INTEGRITY", "{e}");
    for m in ["notfound", "error500", "flip", "truncate"] {
        assert!(e.to_string().contains(&format!("/{m}")), "{m} in {e}");
    }
    let r = Retriever::new(options(&gw, &["notfound", "truncate", "error500"])).unwrap();
    assert_eq!(fetch(&r, root).await.unwrap_err().code(), "INCOMPLETE");

    // A source that sent a wrong block is tried last next time (the order of `tried`).
    let tried = |e: RetrieveError| {
        let s = e.to_string();
        s[s.find("sources tried:").unwrap()..].to_string()
    };
    let r = Retriever::new(options(&gw, &["flip", "notfound"])).unwrap();
    let first = tried(fetch(&r, root).await.unwrap_err());
    assert!(
        first.find("/flip").unwrap() < first.find("/notfound").unwrap(),
        "{first}"
    );
    let second = tried(fetch(&r, root).await.unwrap_err());
    assert!(
        second.find("/notfound").unwrap() < second.find("/flip").unwrap(),
        "{second}"
    );
    // A clone shares the list; a new retriever starts without it.
    let third = tried(fetch(&r.clone(), root).await.unwrap_err());
    assert!(
        third.find("/notfound").unwrap() < third.find("/flip").unwrap(),
        "{third}"
    );
    let fresh = Retriever::new(options(&gw, &["flip", "notfound"])).unwrap();
    let fourth = tried(fetch(&fresh, root).await.unwrap_err());
    assert!(
        fourth.find("/flip").unwrap() < fourth.find("/notfound").unwrap(),
        "{fourth}"
    );

    // Caps and inputs.
    let small = RetrieveOptions {
        max_bytes: 1000,
        ..options(&gw, &["honest"])
    };
    let e = fetch(&Retriever::new(small).unwrap(), root)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "TOO_LARGE");
    let r = Retriever::new(options(&gw, &["honest"])).unwrap();
    assert_eq!(r.retrieve("not a cid").unwrap_err().code(), "INVALID_CID");
    assert_eq!(
        Retriever::new(RetrieveOptions {
            gateways: vec!["ftp://x".into()],
            ..Default::default()
        })
        .unwrap_err()
        .code(),
        "INVALID_URL"
    );
    let none = Retriever::new(RetrieveOptions::default()).unwrap();
    assert_eq!(fetch(&none, root).await.unwrap_err().code(), "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_serves_verified_files_over_http_from_its_gateways() {
    use raas_core::engine::RaasNode;
    let dir = common::stores::temp_dir();
    let data = bytes(3 * CHUNK + 11, 5);
    let path = write(&dir.0, "served.bin", &data);
    let gw = start_gateway(std::slice::from_ref(&path));
    let root = gw.roots[&key(&path)].clone();

    // A bad gateway URL is refused at configuration, naming the entry.
    let bad = RaasNode::open_json(serde_json::json!({
        "store": "sqlite::memory:",
        "dealStatus": {"rpcUrl": "http://127.0.0.1:1", "address": "0x0000000000000000000000000000000000000001"},
        "gateways": ["http://ok.example", "ftp://nope"],
    }))
    .await
    .err()
    .expect("a bad gateway url is refused");
    assert!(bad.to_string().contains("gateways[1]"), "{bad}");

    let node = std::sync::Arc::new(
        RaasNode::open_json(serde_json::json!({
            "store": "sqlite::memory:",
            "nodeId": "data",
            "dealStatus": {"rpcUrl": "http://127.0.0.1:1", "address": "0x0000000000000000000000000000000000000001"},
            "gateways": [format!("{}/flip", gw.url), format!("{}/honest", gw.url)],
        }))
        .await
        .unwrap(),
    );
    let server = common::serve_local(node.clone()).await;
    let c = reqwest::Client::new();
    let res = c
        .get(format!("{}/retrieve/{root}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["etag"], format!("\"{root}\"").as_str());
    assert_eq!(
        res.headers()["content-length"],
        data.len().to_string().as_str()
    );
    assert!(res.bytes().await.unwrap() == data);

    // One range: 206 with exactly those bytes; a suffix range; outside the file: 416.
    let n = data.len();
    for (range, from, to) in [
        ("bytes=10-99".to_string(), 10, 100),
        (
            format!("bytes={}-{}", CHUNK - 3, CHUNK + 3),
            CHUNK - 3,
            CHUNK + 4,
        ),
        ("bytes=-5".to_string(), n - 5, n),
        (format!("bytes={}-", n - 1), n - 1, n),
    ] {
        let res = c
            .get(format!("{}/retrieve/{root}", server.url))
            .header("range", &range)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 206, "{range}");
        assert_eq!(
            res.headers()["content-range"],
            format!("bytes {from}-{}/{n}", to - 1).as_str()
        );
        assert!(res.bytes().await.unwrap() == data[from..to], "{range}");
    }
    let res = c
        .get(format!("{}/retrieve/{root}", server.url))
        .header("range", format!("bytes={n}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 416);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes */{n}").as_str()
    );

    // In the library too.
    let mut r = node.retrieve(&root).unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = r.next_chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert!(got == data);

    for (path, status, code) in [
        ("/retrieve/not-a-cid".to_string(), 400, "INVALID_CID"),
        (
            format!(
                "/retrieve/{}",
                raas_core::cid::compute_unixfs_cid(b"nobody has this")
            ),
            404,
            "NOT_FOUND",
        ),
    ] {
        let res = c.get(format!("{}{path}", server.url)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinning_keeps_a_verified_copy_that_outlives_the_gateway() {
    use raas_core::engine::RaasNode;
    let dir = common::stores::temp_dir();
    let data = bytes(5 * CHUNK + 3, 31);
    let path = write(&dir.0, "pinned.bin", &data);
    let gw = start_gateway(std::slice::from_ref(&path));
    let root = gw.roots[&key(&path)].clone();
    let node = RaasNode::open_json(serde_json::json!({
        "store": "sqlite::memory:",
        "blocks": dir.0.join("blocks").display().to_string(),
        "dealStatus": {"rpcUrl": "http://127.0.0.1:1", "address": "0x0000000000000000000000000000000000000001"},
        // A tampering gateway first: pinning stores only verified blocks.
        "gateways": [format!("{}/flip", gw.url), format!("{}/honest", gw.url)],
    }))
    .await
    .unwrap();
    let pinned = node.pin(&root).await.unwrap();
    assert_eq!(pinned.size, data.len() as u64);
    assert_eq!(pinned.cid, root);
    drop(gw);
    let mut r = node.retrieve(&root).unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = r.next_chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert!(got == data, "served from the node's own copy");
    let unpinned = node.unpin(&root).await.unwrap();
    assert!(unpinned.unpinned);
    assert_eq!(unpinned.deleted, 7, "6 leaves and the root");
    let e = node
        .retrieve(&root)
        .unwrap()
        .next_chunk()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "NETWORK", "{e}: only the dead gateway is left");
}

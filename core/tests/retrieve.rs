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
    let car = pack(&dir.0, "packed", &car_data);
    Files {
        _dir: dir,
        data,
        car,
        car_data,
    }
}

/// `ipfs-car pack --no-wrap` of `data`: the CAR's path (leaves before their parents).
fn pack(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let src = write(dir, &format!("{name}.bin"), data);
    let car = dir.join(format!("{name}.car"));
    let status = Command::new(common::repo().join("node_modules/.bin/ipfs-car"))
        .args(["pack", "--no-wrap", "--output"])
        .arg(&car)
        .arg(&src)
        .stdout(Stdio::null())
        .status()
        .expect("ipfs-car (npm) must be installed");
    assert!(status.success());
    car
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
            err.to_string().contains("gateway 1 http://127.0.0.1:"),
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
    for (i, m) in ["notfound", "error500", "flip", "truncate"]
        .iter()
        .enumerate()
    {
        let name = format!("gateway {} http", i + 1);
        assert!(e.to_string().contains(&name), "{m} in {e}");
    }
    let r = Retriever::new(options(&gw, &["notfound", "truncate", "error500"])).unwrap();
    assert_eq!(fetch(&r, root).await.unwrap_err().code(), "INCOMPLETE");

    // A source that sent a wrong block is tried last next time (the order of `tried`);
    // sources are named by their place in the list (`flip` is gateway 1).
    let tried = |e: RetrieveError| {
        let s = e.to_string();
        s[s.find("sources tried:").unwrap()..].to_string()
    };
    let r = Retriever::new(options(&gw, &["flip", "notfound"])).unwrap();
    let first = tried(fetch(&r, root).await.unwrap_err());
    assert!(
        first.find("gateway 1 ").unwrap() < first.find("gateway 2 ").unwrap(),
        "{first}"
    );
    let second = tried(fetch(&r, root).await.unwrap_err());
    assert!(
        second.find("gateway 2 ").unwrap() < second.find("gateway 1 ").unwrap(),
        "{second}"
    );
    // A clone shares the list; a new retriever starts without it.
    let third = tried(fetch(&r.clone(), root).await.unwrap_err());
    assert!(
        third.find("gateway 2 ").unwrap() < third.find("gateway 1 ").unwrap(),
        "{third}"
    );
    let fresh = Retriever::new(options(&gw, &["flip", "notfound"])).unwrap();
    let fourth = tried(fetch(&fresh, root).await.unwrap_err());
    assert!(
        fourth.find("gateway 1 ").unwrap() < fourth.find("gateway 2 ").unwrap(),
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

/// The piece `tests/devnet/gateway.mjs` serves for `root` (`{ pieceCid, pieceSize }`).
async fn piece_info(gw: &Gateway, root: &str) -> serde_json::Value {
    reqwest::get(format!("{}/pieceinfo/{root}", gw.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A deal of `piece` for `cid` at `miner`: published and activated on the chain, recorded
/// on DealStatus by the aggregator `agg`.
async fn piece_deal(
    d: &common::Devnet,
    agg: &raas_core::chain::evm::DealStatusClient,
    cid: &str,
    id: u64,
    miner: u64,
    piece: &serde_json::Value,
) {
    use serde_json::json;
    let h = d.control("Devnet.Stats", json!([])).await["height"]
        .as_i64()
        .unwrap();
    let spec = json!({"id": id, "provider": miner, "sector": id, "startEpoch": h,
        "endEpoch": h + 500_000, "pieceSize": piece["pieceSize"], "pieceCid": piece["pieceCid"]});
    d.control("Devnet.AddDeal", json!([spec])).await;
    d.control("Devnet.Activate", json!([id])).await;
    // The deal holds the CAR's own piece, not an aggregate: `complete` would refuse it, so
    // the seeder contract records it (reads are the production contract's).
    d.seed(agg, cid, id, miner).await;
}

/// Retrieval from storage providers, end to end: DealStatus names the CID's deals, Lotus
/// their providers and pieces and (StateMinerInfo) the providers' HTTP multiaddrs; each
/// provider's `/piece/` is verified by CommP before its CAR is read. A tampered piece is an
/// `INTEGRITY` failure that falls through to the next provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_providers_serve_verified_pieces_and_tampered_ones_fall_through() {
    use raas_core::chain::evm::{DealStatusClient, DealStatusConfig};
    use raas_core::engine::RaasNode;
    use serde_json::json;

    let dir = common::stores::temp_dir();
    let file = bytes(3 * CHUNK + 5, 41);
    let path = write(&dir.0, "held.bin", &file);
    let packed = bytes(2 * 1024 * 1024 + 3, 42);
    let car = pack(&dir.0, "packed", &packed);
    let gw = start_gateway(&[path.clone(), car.clone()]);
    let (a, b) = (gw.roots[&key(&path)].clone(), gw.roots[&key(&car)].clone());
    let d = common::Devnet::start_seeder();
    let admin =
        DealStatusClient::with_signer(DealStatusConfig::new(d.evm(), d.deal_status()), &d.key(0))
            .unwrap();
    let agg =
        DealStatusClient::with_signer(DealStatusConfig::new(d.evm(), d.deal_status()), &d.key(1))
            .unwrap();
    admin
        .set_aggregator(&agg.signer_address().unwrap(), true)
        .await
        .unwrap();
    let port = gw.url.rsplit(':').next().unwrap().to_string();
    let http = |mode: &str| format!("/ip4/127.0.0.1/tcp/{port}/http/http-path/{mode}");
    // 1001 tampers with its piece; 1002 lists garbage and a non-HTTP address before an honest
    // one; 1003 set no address; 1004 serves its piece without the zeros after the CAR.
    d.control("Devnet.SetMinerAddrs", json!([1001, [http("pieceflip")]]))
        .await;
    d.control(
        "Devnet.SetMinerAddrs",
        json!([1002, [{"base64": "//8A"}, "/ip4/127.0.0.1/tcp/24001", http("pieceonly")]]),
    )
    .await;
    d.control("Devnet.SetMinerAddrs", json!([1004, [http("piecetrim")]]))
        .await;
    let (pa, pb) = (piece_info(&gw, &a).await, piece_info(&gw, &b).await);
    piece_deal(&d, &admin, &a, 101, 1001, &pa).await;
    piece_deal(&d, &admin, &a, 102, 1002, &pa).await;
    piece_deal(&d, &admin, &a, 103, 1003, &pa).await;
    piece_deal(&d, &admin, &b, 201, 1001, &pb).await;

    let (store, _sqlite) = common::stores::temp_sqlite();
    let node = RaasNode::open_json(json!({
        "store": store,
        "dealStatus": {"rpcUrl": d.evm(), "address": d.deal_status()},
        "lotus": {"url": d.lotus()},
        "blocks": ":memory:",
    }))
    .await
    .unwrap();
    let fetch = |cid: String| {
        let r = node.retrieve(&cid);
        async move {
            let mut s = Box::pin(r?.into_stream());
            let mut out = Vec::new();
            while let Some(chunk) = s.next().await {
                out.extend_from_slice(&chunk?);
            }
            Ok::<_, RetrieveError>(out)
        }
    };
    // No gateway and an empty block store: only the providers can serve. 1001's piece fails
    // CommP; 1002's /ipfs/ answers 404 and its piece serves the file.
    let got = fetch(a.clone()).await.unwrap();
    assert!(got == file, "{} bytes, want {}", got.len(), file.len());

    // Only the tampering provider: INTEGRITY, naming it; never a byte.
    let e = fetch(b.clone()).await.unwrap_err();
    assert_eq!(e.code(), "INTEGRITY", "{e}");
    assert!(e.to_string().contains("provider f01001 piece"), "{e}");
    // Caught by CommP before any block was read, not by the walk.
    assert!(e.to_string().contains("not the deal's piece CID"), "{e}");
    // A second provider whose piece is trimmed (ipfs-car's leaves-first CAR): served.
    piece_deal(&d, &admin, &b, 202, 1004, &pb).await;
    assert!(fetch(b.clone()).await.unwrap() == packed);

    // A CID without deals is NOT_FOUND, saying why.
    let other = raas_core::cid::compute_unixfs_cid(b"no deals").to_string();
    let e = fetch(other).await.unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND", "{e}");
    assert!(e.to_string().contains("no active deal"), "{e}");
}

/// A file over 100 MiB streams through, verified, block by block: the bytes match (compared
/// by hash, so the test itself never holds the file twice) and no chunk is larger than a
/// block, so the retrieval never gathers the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_100_mib_streams_through_verified() {
    use sha2::{Digest, Sha256};
    let dir = common::stores::temp_dir();
    let data = bytes(100 * 1024 * 1024 + 12_345, 1234);
    let want = Sha256::digest(&data);
    let path = write(&dir.0, "large.bin", &data);
    drop(data);
    let gw = start_gateway(std::slice::from_ref(&path));
    let root = gw.roots[&key(&path)].clone();
    let r = Retriever::new(RetrieveOptions {
        block_timeout: Duration::from_secs(30),
        ..options(&gw, &["honest"])
    })
    .unwrap();
    let mut s = Box::pin(r.retrieve(&root).unwrap().into_stream());
    let (mut hash, mut total, mut largest) = (Sha256::new(), 0usize, 0usize);
    while let Some(chunk) = s.next().await {
        let chunk = chunk.unwrap();
        largest = largest.max(chunk.len());
        total += chunk.len();
        hash.update(&chunk);
    }
    assert_eq!(total, 100 * 1024 * 1024 + 12_345);
    assert_eq!(hash.finalize(), want);
    assert!(largest <= CHUNK, "a chunk of {largest} bytes");
}

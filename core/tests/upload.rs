//! Uploads into the node's block store and what the node serves from it: identifiers equal
//! to `compute_cids`, files retrieved back from the store alone, uploads that fail leaving
//! nothing behind, pins and garbage collection under a seeded simulation of many histories,
//! and the HTTP face (`POST /upload`, `POST /api/uploadFile`, `GET /ipfs/{cid}`, `/pins`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use raas_core::blocks::{BlockStore, Blocks, DirBlockStore, MemBlockStore};
use raas_core::cid::{compute_cids, Cid};
use raas_core::engine::RaasNode;
use raas_core::error::ErrorCode;

const CHUNK: usize = 262_144;

/// Deterministic bytes (xorshift), so a failure replays.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

async fn node(blocks: &str) -> Arc<RaasNode> {
    Arc::new(
        RaasNode::open_json(serde_json::json!({
            "store": "sqlite::memory:",
            "nodeId": "upload",
            "blocks": blocks,
            "maxUploadBytes": 40 * CHUNK,
            "dealStatus": {"rpcUrl": "http://127.0.0.1:1", "address": "0x0000000000000000000000000000000000000001"},
        }))
        .await
        .unwrap(),
    )
}

async fn read_back(
    node: &RaasNode,
    cid: &str,
) -> Result<Vec<u8>, raas_core::retrieve::RetrieveError> {
    let mut r = node.retrieve(cid)?;
    let mut out = Vec::new();
    while let Some(chunk) = r.next_chunk().await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_give_compute_cids_and_come_back_from_the_store_alone() {
    let dir = common::stores::temp_dir();
    let big = Arc::new(
        RaasNode::open_json(serde_json::json!({
            "store": "sqlite::memory:",
            "blocks": dir.0.join("blocks").display().to_string(),
            "dealStatus": {"rpcUrl": "http://127.0.0.1:1", "address": "0x0000000000000000000000000000000000000001"},
        }))
        .await
        .unwrap(),
    );
    // Edge sizes: empty, one byte, one chunk exactly, one more, 174 and 175 chunks (the
    // first two-level tree), and writes split at odd places.
    for (n, len) in [0, 1, CHUNK, CHUNK + 1, 174 * CHUNK, 175 * CHUNK + 7]
        .into_iter()
        .enumerate()
    {
        let data = bytes(len, n as u64);
        let mut up = big.upload().await;
        for piece in data.chunks(100_003) {
            up.write(piece).await.unwrap();
        }
        let ids = up.finish().await.unwrap();
        assert_eq!(ids, compute_cids(&data), "len {len}");
        assert!(big.blocks().is_pinned(&ids.cid).await.unwrap());
        // No gateways configured: the store is the only source.
        let back = read_back(&big, &ids.cid.to_string()).await.unwrap();
        assert!(back == data, "len {len}: bytes differ");
    }
    // Blocks are files under the directory, written whole.
    let stored = DirBlockStore::new(dir.0.join("blocks"))
        .list()
        .await
        .unwrap();
    assert!(stored.len() > 350, "{} blocks", stored.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_uploads_leave_nothing_behind() {
    let dir = common::stores::temp_dir();
    for where_ in [
        ":memory:".to_string(),
        dir.0.join("b").display().to_string(),
    ] {
        let node = node(&where_).await;
        let data = bytes(35 * CHUNK + 5, 9);
        let cut = 34 * CHUNK + 1;

        // Aborted part way, after blocks were written (an upload writes every 8 MiB).
        let mut up = node.upload().await;
        up.write(&data[..cut]).await.unwrap();
        // The batch is written in the background while the next is hashed.
        for _ in 0..200 {
            if !node.blocks().store().list().await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            !node.blocks().store().list().await.unwrap().is_empty(),
            "{where_}: written"
        );
        up.abort().await;
        assert!(
            node.blocks().store().list().await.unwrap().is_empty(),
            "{where_}: abort"
        );

        // Over the limit (40 chunks): TOO_LARGE, and undone.
        let mut up = node.upload().await;
        up.write(&bytes(34 * CHUNK, 1)).await.unwrap();
        let e = up.write(&bytes(6 * CHUNK + 1, 2)).await.unwrap_err();
        assert_eq!(e.code(), "TOO_LARGE");
        assert!(
            node.blocks().store().list().await.unwrap().is_empty(),
            "{where_}: limit"
        );

        // Dropped without a word (a client that went away): undone on the runtime.
        let mut up = node.upload().await;
        up.write(&bytes(34 * CHUNK, 3)).await.unwrap();
        for _ in 0..200 {
            if !node.blocks().store().list().await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        drop(up);
        for _ in 0..200 {
            if node.blocks().store().list().await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            node.blocks().store().list().await.unwrap().is_empty(),
            "{where_}: drop"
        );
        assert!(node.blocks().pins().await.unwrap().is_empty());

        // The same data uploaded twice at once, one of them aborted: the other is whole.
        let mut a = node.upload().await;
        let mut b = node.upload().await;
        a.write(&data).await.unwrap();
        b.write(&data).await.unwrap();
        let ids = b.finish().await.unwrap();
        a.abort().await;
        assert!(
            read_back(&node, &ids.cid.to_string()).await.unwrap() == data,
            "{where_}"
        );
        let e = read_back(&node, &compute_cids(&data[..cut]).cid.to_string())
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            "NOT_FOUND",
            "{where_}: a cut-off upload is not served"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_stored_block_is_never_served() {
    let dir = common::stores::temp_dir();
    let node = node(&dir.0.display().to_string()).await;
    let data = bytes(2 * CHUNK + 3, 4);
    let ids = node.upload_bytes(&data).await.unwrap();
    // Flip a byte in one leaf file on disk.
    let store = DirBlockStore::new(&dir.0);
    let leaf = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|c| *c != Cid::new_v1(0x55, *ids.cid.hash()))
        .unwrap();
    let shard_file = walkdir(&dir.0.join("blocks"))
        .into_iter()
        .find(|p| p.file_name().unwrap().to_str().unwrap() == leaf.to_string())
        .unwrap();
    let mut b = std::fs::read(&shard_file).unwrap();
    if b.is_empty() {
        return;
    }
    b[0] ^= 1;
    std::fs::write(&shard_file, b).unwrap();
    let e = read_back(&node, &ids.cid.to_string()).await.unwrap_err();
    assert!(
        ["INTEGRITY", "NOT_FOUND"].contains(&e.code()),
        "{}: {e}",
        e.code()
    );
    assert_eq!(e.code(), "INTEGRITY", "{e}");
}

fn walkdir(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A seeded random history of up to three uploads in flight at once (written piece by piece,
/// finished, aborted or dropped, often of the same data), unpins and collections, on both
/// store kinds. After every step: every pinned root reads back whole from the store alone;
/// after a collection with no upload in flight, no block is left that no pin reaches.
/// `RAAS_SIM_SEED=n` replays one history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_store_histories_keep_pins_whole_and_collect_the_rest() {
    let seeds: Vec<u64> = match std::env::var("RAAS_SIM_SEED") {
        Ok(s) => vec![s.parse().unwrap()],
        Err(_) => (1..=40).collect(),
    };
    let dir = common::stores::temp_dir();
    for seed in seeds {
        let kind = if seed % 2 == 0 { "dir" } else { "memory" };
        let store: Arc<dyn BlockStore> = if kind == "dir" {
            Arc::new(DirBlockStore::new(dir.0.join(format!("s{seed}"))))
        } else {
            Arc::new(MemBlockStore::new())
        };
        let blocks = Blocks::new(store.clone());
        let mut rng = seed;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        // A few contents, overlapping: the same first leaf appears in several files.
        let contents: Vec<Vec<u8>> = (0..5)
            .map(|i| {
                let mut d = bytes(CHUNK, 100 + i % 2);
                d.extend(bytes(
                    (next(3) as usize) * CHUNK + next(1000) as usize,
                    200 + i,
                ));
                d
            })
            .collect();
        let mut pinned: HashMap<Cid, usize> = HashMap::new();
        // Open uploads: (upload, content, bytes written).
        let mut open: Vec<(raas_core::blocks::Upload, usize, usize)> = Vec::new();
        for step in 0..60 {
            let what = next(12);
            let ctx = format!("seed {seed} ({kind}) step {step} op {what}");
            match what {
                0..=2 if open.len() < 3 => {
                    let mut up = blocks.upload(1 << 30).await;
                    // Small batches: blocks reach the store while the upload is in flight.
                    up.set_batch(64 << 10);
                    open.push((up, next(contents.len() as u64) as usize, 0));
                }
                0..=5 if !open.is_empty() => {
                    let k = next(open.len() as u64) as usize;
                    let (up, i, at) = &mut open[k];
                    let data = &contents[*i];
                    let n = (next(CHUNK as u64 / 2) as usize + 1).min(data.len() - *at);
                    up.write(&data[*at..*at + n]).await.unwrap();
                    *at += n;
                }
                6 | 7 if !open.is_empty() => {
                    let k = next(open.len() as u64) as usize;
                    let (mut up, i, at) = open.swap_remove(k);
                    let data = &contents[i];
                    up.write(&data[at..]).await.unwrap();
                    let ids = up.finish().await.unwrap();
                    assert_eq!(ids, compute_cids(data), "{ctx}");
                    pinned.insert(ids.cid, i);
                }
                8 if !open.is_empty() => {
                    let k = next(open.len() as u64) as usize;
                    let (up, _, _) = open.swap_remove(k);
                    if next(2) == 0 {
                        up.abort().await;
                    } else {
                        drop(up);
                        // The dropped upload's undo runs on the runtime.
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                }
                9 | 10 => {
                    if let Some(&root) =
                        pinned.keys().nth(next(pinned.len().max(1) as u64) as usize)
                    {
                        let (had, _) = blocks.unpin(&root).await.unwrap();
                        assert!(had, "{ctx}");
                        pinned.remove(&root);
                    }
                }
                11 if open.is_empty() => {
                    blocks.gc().await.unwrap();
                    let reached = reachable(&blocks, pinned.keys()).await;
                    let held: HashSet<Cid> = store.list().await.unwrap().into_iter().collect();
                    assert_eq!(
                        held, reached,
                        "{ctx}: after collection only reachable blocks stay"
                    );
                }
                _ => {}
            }
            for (root, &i) in &pinned {
                let back = read_store(&blocks, root).await;
                assert!(
                    back.as_deref() == Some(contents[i].as_slice()),
                    "{ctx}: pin {root} is not whole"
                );
            }
        }
        for (up, _, _) in open {
            up.abort().await;
        }
    }
}

/// Keys (raw CIDs) of every block reachable from `roots`.
async fn reachable<'a>(blocks: &Blocks, roots: impl Iterator<Item = &'a Cid>) -> HashSet<Cid> {
    let mut out = HashSet::new();
    let mut stack: Vec<Cid> = roots.copied().collect();
    while let Some(c) = stack.pop() {
        if !out.insert(Cid::new_v1(0x55, *c.hash())) {
            continue;
        }
        if c.codec() == 0x70 {
            let b = blocks.get(&c).await.unwrap().unwrap();
            stack.extend(links(&b));
        }
    }
    out
}

/// DAG-PB links, read with the retrieval walk's own decoder through a retrieval.
fn links(block: &[u8]) -> Vec<Cid> {
    // PBNode field 2 (links), each with field 1 (hash): parsed by hand to stay independent of
    // the code under test.
    let mut out = Vec::new();
    let mut i = 0;
    let varint = |b: &[u8], i: &mut usize| {
        let mut v = 0u64;
        let mut s = 0;
        loop {
            let x = b[*i];
            *i += 1;
            v |= u64::from(x & 0x7f) << s;
            if x < 0x80 {
                return v;
            }
            s += 7;
        }
    };
    while i < block.len() {
        let tag = varint(block, &mut i);
        let len = varint(block, &mut i) as usize;
        if tag == (2 << 3) | 2 {
            let link = &block[i..i + len];
            let mut j = 0;
            while j < link.len() {
                let t = varint(link, &mut j);
                let l = varint(link, &mut j) as usize;
                if t == (1 << 3) | 2 {
                    out.push(Cid::try_from(&link[j..j + l]).unwrap());
                }
                j += l;
            }
        }
        i += len;
    }
    out
}

/// The file at `root` read from the store alone, through a retriever with no gateways.
async fn read_store(blocks: &Blocks, root: &Cid) -> Option<Vec<u8>> {
    let r = raas_core::retrieve::Retriever::new(Default::default())
        .unwrap()
        .with_blocks(blocks.clone());
    let mut rr = r.retrieve(&root.to_string()).ok()?;
    let mut out = Vec::new();
    while let Some(c) = rr.next_chunk().await.ok()? {
        out.extend_from_slice(&c);
    }
    Some(out)
}

/// The CAR's blocks, read with iroh-car.
async fn car_blocks(body: &[u8]) -> (Vec<Cid>, Vec<(Cid, Vec<u8>)>) {
    let mut r = iroh_car::CarReader::new(body).await.unwrap();
    let roots = r.header().roots().to_vec();
    let mut out = Vec::new();
    while let Some(b) = r.next_block().await.unwrap() {
        out.push(b);
    }
    (roots, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_uploads_serves_a_trustless_gateway_and_pins() {
    let node = node(":memory:").await;
    let server = common::serve_local(node.clone()).await;
    let url = &server.url;
    let c = reqwest::Client::new();
    let data = bytes(3 * CHUNK + 17, 21);
    let ids = compute_cids(&data);

    // POST /upload, the body streamed in pieces.
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(70_001).map(|c| Ok(c.to_vec())).collect();
    let res = c
        .post(format!("{url}/upload"))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["cid"], ids.cid.to_string());
    assert_eq!(body["commP"], ids.comm_p.to_string());
    assert_eq!(body["pieceCid"], ids.piece_cid.to_string());
    assert_eq!(body["pieceSize"], ids.piece_size);
    assert_eq!(body["size"], data.len());

    // /retrieve serves it from the store (the node has no gateways).
    let got = c
        .get(format!("{url}/retrieve/{}", ids.cid))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert!(got.bytes().await.unwrap() == data);

    // The gateway: a CAR whose blocks all verify and rebuild the file, in DFS order.
    let res = c
        .get(format!("{url}/ipfs/{}?format=car", ids.cid))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/vnd.ipld.car; version=1; order=dfs"));
    let car = res.bytes().await.unwrap();
    let (roots, got) = car_blocks(&car).await;
    assert_eq!(roots, vec![ids.cid]);
    assert_eq!(got[0].0, ids.cid, "the root first");
    let file: Vec<u8> = got
        .iter()
        .filter(|(c, _)| c.codec() == 0x55)
        .flat_map(|(_, b)| b.clone())
        .collect();
    assert!(file == data, "the leaves in order are the file");
    for (cid, block) in &got {
        use sha2::Digest;
        assert_eq!(cid.hash().digest(), sha2::Sha256::digest(block).as_slice());
    }
    // Accept instead of ?format=, dag-scope=block: the root alone.
    let res = c
        .get(format!("{url}/ipfs/{}?dag-scope=block", ids.cid))
        .header("accept", "application/vnd.ipld.car; version=1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (_, only) = car_blocks(&res.bytes().await.unwrap()).await;
    assert_eq!(only.len(), 1);
    // A raw block, with its length; HEAD has the headers and no body.
    let leaf = got[1].0;
    let res = c
        .get(format!("{url}/ipfs/{leaf}"))
        .header("accept", "application/vnd.ipld.raw")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "application/vnd.ipld.raw");
    assert_eq!(res.headers()["content-length"], CHUNK.to_string().as_str());
    assert!(res.bytes().await.unwrap() == data[..CHUNK]);
    let res = c
        .head(format!("{url}/ipfs/{leaf}?format=raw"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-length"], CHUNK.to_string().as_str());
    assert!(res.bytes().await.unwrap().is_empty());
    // The probe every gateway answers: the empty identity CID.
    let res = c
        .get(format!("{url}/ipfs/bafkqaaa?format=raw"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.bytes().await.unwrap().is_empty());
    for (path, accept, status, code) in [
        (
            format!("/ipfs/{}?format=raw", compute_cids(b"nope").cid),
            "",
            404,
            "NOT_FOUND",
        ),
        (
            format!("/ipfs/{}", ids.cid),
            "text/html",
            406,
            "NOT_ACCEPTABLE",
        ),
        (
            "/ipfs/not-a-cid?format=raw".to_string(),
            "",
            400,
            "INVALID_CID",
        ),
        (
            format!("/ipfs/{}?format=zip", ids.cid),
            "",
            400,
            "INVALID_ARGUMENT",
        ),
    ] {
        let res = c
            .get(format!("{url}{path}"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path}");
    }

    // The kit's multipart upload.
    let other = bytes(CHUNK / 3, 22);
    let form = reqwest::multipart::Form::new()
        .text("note", "ignored")
        .part(
            "file",
            reqwest::multipart::Part::bytes(other.clone()).file_name("a.bin"),
        );
    let res = c
        .post(format!("{url}/api/uploadFile"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["cid"], compute_cids(&other).cid.to_string());
    assert!(body["message"].is_string());
    let form = reqwest::multipart::Form::new().text("cid", "x");
    let res = c
        .post(format!("{url}/api/uploadFile"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["field"], "file");

    // Over the node's upload limit (40 chunks): 413, and nothing of it stays.
    let before = node.blocks().store().list().await.unwrap().len();
    let res = c
        .post(format!("{url}/upload"))
        .body(bytes(41 * CHUNK, 23))
        .send()
        .await;
    if let Ok(res) = res {
        assert_eq!(res.status().as_u16(), 413);
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(node.blocks().store().list().await.unwrap().len(), before);

    // Pins: listed, unpinned (its blocks collected), and the CID then no longer served.
    let res = c.get(format!("{url}/pins")).send().await.unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["pins"].as_array().unwrap().len(), 2, "{body}");
    let res = c
        .delete(format!("{url}/pins/{}", ids.cid))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["unpinned"], true);
    assert_eq!(body["deleted"], 5, "{body}: 4 leaves and the root");
    let res = c
        .get(format!("{url}/retrieve/{}", ids.cid))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    // Pinning back what no source has is NOT_FOUND.
    let res = c
        .post(format!("{url}/pins/{}", ids.cid))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_needs_a_key_unless_it_is_public() {
    let c = reqwest::Client::new();
    for public in [false, true] {
        let node = Arc::new(
            RaasNode::open_json(serde_json::json!({
                "store": "sqlite::memory:",
                "http": {"publicGateway": public},
                "dealStatus": {"rpcUrl": "http://127.0.0.1:1", "address": "0x0000000000000000000000000000000000000001"},
            }))
            .await
            .unwrap(),
        );
        let key = node
            .create_api_key(serde_json::json!({"name": "c", "scope": "client"}))
            .await
            .unwrap();
        let ids = node.upload_bytes(b"public or not").await.unwrap();
        let server = common::serve_local(node.clone()).await;
        let url = format!("{}/ipfs/{}?format=raw", server.url, ids.cid);
        let anonymous = c.get(&url).send().await.unwrap().status().as_u16();
        assert_eq!(anonymous, if public { 200 } else { 401 }, "public {public}");
        let keyed = c
            .get(&url)
            .header("x-api-key", &key.key)
            .send()
            .await
            .unwrap();
        assert_eq!(keyed.status().as_u16(), 200);
        // Only the gateway is opened.
        let other = c.get(format!("{}/pins", server.url)).send().await.unwrap();
        assert_eq!(other.status().as_u16(), 401);
    }
}

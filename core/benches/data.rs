//! The data path's speed, natively: verified retrieval from a trustless gateway and upload
//! into a directory block store. Driven by `npm run bench:data` (scripts/bench-data.mjs),
//! which starts the gateway and passes, through the environment:
//!   RAAS_BENCH_GATEWAY  the gateway's base URL
//!   RAAS_BENCH_CID      the file's CID there
//!   RAAS_BENCH_FILE     the same file on disk (uploaded)
//!   RAAS_BENCH_MODE     `retrieve`, `piece` or `upload` (one per process, so peak memory is
//!                       its own), or `commp` (prints the piece CID of RAAS_BENCH_FILE)
//!   RAAS_BENCH_PIECE_CID, RAAS_BENCH_PIECE_SIZE  the piece `piece` fetches from
//!                       RAAS_BENCH_GATEWAY's `/piece/` (a storage provider's endpoint)
//! Prints one JSON line: bytes, seconds, MB/s and the process's peak resident memory.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use raas_core::blocks::{Blocks, DirBlockStore};
use raas_core::retrieve::providers::{FinderFuture, ProviderFinder, ProviderPiece};
use raas_core::retrieve::{RetrieveOptions, Retriever};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One provider known in advance (no chain to read here).
#[derive(Debug)]
struct Fixed(ProviderPiece);

impl ProviderFinder for Fixed {
    fn find<'a>(&'a self, _root: &'a cid::Cid) -> FinderFuture<'a> {
        let found = vec![self.0.clone()];
        Box::pin(async move { Ok(found) })
    }
}

fn main() {
    let Ok(mode) = std::env::var("RAAS_BENCH_MODE") else {
        eprintln!("run through `npm run bench:data`");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let (bytes, cleanup): (u64, Option<std::path::PathBuf>) = rt.block_on(async {
        match mode.as_str() {
            "retrieve" => {
                let r = Retriever::new(RetrieveOptions {
                    gateways: vec![std::env::var("RAAS_BENCH_GATEWAY").unwrap()],
                    ..Default::default()
                })
                .unwrap();
                let mut retrieval = r
                    .retrieve(&std::env::var("RAAS_BENCH_CID").unwrap())
                    .unwrap();
                let mut n = 0u64;
                while let Some(chunk) = retrieval.next_chunk().await.unwrap() {
                    n += chunk.len() as u64;
                }
                (n, None)
            }
            "upload" => {
                let dir =
                    std::env::temp_dir().join(format!("raas-bench-blocks-{}", std::process::id()));
                let blocks = Blocks::new(Arc::new(DirBlockStore::new(&dir)));
                let mut file =
                    std::fs::File::open(std::env::var("RAAS_BENCH_FILE").unwrap()).unwrap();
                let mut up = blocks.upload(u64::MAX).await;
                let mut buf = vec![0u8; 1 << 20];
                let mut n = 0u64;
                loop {
                    let got = file.read(&mut buf).unwrap();
                    if got == 0 {
                        break;
                    }
                    up.write(&buf[..got]).await.unwrap();
                    n += got as u64;
                }
                let ids = up.finish().await.unwrap();
                assert_eq!(ids.size, n);
                (n, Some(dir))
            }
            // CommP of a file (the bench's piece CID, before the piece can be served).
            "commp" => {
                let mut file =
                    std::fs::File::open(std::env::var("RAAS_BENCH_FILE").unwrap()).unwrap();
                let mut h = raas_core::cid::piece::PieceHasher::new();
                let mut buf = vec![0u8; 8 << 20];
                loop {
                    let got = file.read(&mut buf).unwrap();
                    if got == 0 {
                        break;
                    }
                    h.update(&buf[..got]);
                }
                let p = h.finish();
                println!(
                    "{}",
                    serde_json::json!({"pieceCid": p.comm_p().to_string(), "pieceSize": p.padded_size})
                );
                std::process::exit(0);
            }
            // Verified retrieval from a storage provider's /piece/: CommP over the whole
            // piece on disk, then the CAR read block by block.
            "piece" => {
                let piece = ProviderPiece {
                    provider: "f01000".into(),
                    urls: vec![std::env::var("RAAS_BENCH_GATEWAY").unwrap()],
                    piece_cid: std::env::var("RAAS_BENCH_PIECE_CID")
                        .unwrap()
                        .parse()
                        .unwrap(),
                    piece_size: std::env::var("RAAS_BENCH_PIECE_SIZE")
                        .unwrap()
                        .parse()
                        .unwrap(),
                };
                let r = Retriever::new(RetrieveOptions::default())
                    .unwrap()
                    .with_providers(Arc::new(Fixed(piece)));
                let mut retrieval = r
                    .retrieve(&std::env::var("RAAS_BENCH_CID").unwrap())
                    .unwrap();
                let mut n = 0u64;
                while let Some(chunk) = retrieval.next_chunk().await.unwrap() {
                    n += chunk.len() as u64;
                }
                (n, None)
            }
            other => panic!("unknown mode {other}"),
        }
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "mode": mode,
            "bytes": bytes,
            "seconds": secs,
            "mbPerSec": bytes as f64 / secs / 1e6,
            "peakMiB": peak_rss_mib(),
        })
    );
    if let Some(dir) = cleanup {
        let _ = std::fs::remove_dir_all(dir);
    }
}

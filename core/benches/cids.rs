//! Throughput of the identifier functions on one in-memory input (256 MiB by default, or
//! `RAAS_BENCH_MIB`). Prints a table, then one JSON line for `scripts/bench-cids.mjs`.

use std::time::Instant;

use raas_core::cid::{piece::PieceHasher, unixfs::UnixfsHasher, CidHasher};

fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Best of three runs, in MB/s (10^6 bytes per second).
fn measure(data: &[u8], f: impl Fn(&[u8])) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        f(data);
        best = best.min(start.elapsed().as_secs_f64());
    }
    data.len() as f64 / best / 1e6
}

fn main() {
    let mib: usize = std::env::var("RAAS_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let data = pseudo_random(mib << 20);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let feed = 8 << 20;

    let commp_1 = measure(&data, |d| {
        let mut h = PieceHasher::new().with_threads(1);
        d.chunks(feed).for_each(|c| h.update(c));
        std::hint::black_box(h.finish());
    });
    let commp_n = measure(&data, |d| {
        let mut h = PieceHasher::new();
        d.chunks(feed).for_each(|c| h.update(c));
        std::hint::black_box(h.finish());
    });
    let unixfs = measure(&data, |d| {
        let mut h = UnixfsHasher::new();
        d.chunks(feed).for_each(|c| h.update(c));
        std::hint::black_box(h.finish());
    });
    let all = measure(&data, |d| {
        let mut h = CidHasher::new();
        d.chunks(feed).for_each(|c| h.update(c));
        std::hint::black_box(h.finish());
    });
    println!("native core, {mib} MiB, {cores} cores (MB/s = 10^6 B/s, best of 3)");
    println!("  CommP, 1 thread          {commp_1:8.0} MB/s");
    println!("  CommP, {cores} threads         {commp_n:8.0} MB/s");
    println!("  UnixFS CID               {unixfs:8.0} MB/s");
    println!("  computeCids (both)       {all:8.0} MB/s");
    println!(
        "{{\"mib\":{mib},\"cores\":{cores},\"commp1\":{commp_1:.1},\"commpN\":{commp_n:.1},\"unixfs\":{unixfs:.1},\"all\":{all:.1}}}"
    );
}

//! Throughput of the identifier functions on one in-memory input (256 MiB by default, or
//! `RAAS_BENCH_MIB`). Prints a table, then one JSON line for `scripts/bench-cids.mjs`.

use std::time::Instant;

use std::io::Read;

use raas_core::cid::{
    compute_cids_from_reader, piece::PieceHasher, unixfs::UnixfsHasher, CidHasher,
};

/// Generates pseudo-random bytes on the fly: a stream of any length without holding it.
struct Generated {
    remaining: u64,
    state: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.remaining as usize);
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Peak resident memory of this process so far, in MiB (Linux).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

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
    // First, before anything big is allocated: memory while hashing a long stream.
    let stream_gib: u64 = std::env::var("RAAS_BENCH_STREAM_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let start = Instant::now();
    let streamed = compute_cids_from_reader(Generated {
        remaining: stream_gib << 30,
        state: 7,
    });
    let stream_secs = start.elapsed().as_secs_f64();
    let stream_peak = peak_rss_mib();
    std::hint::black_box(streamed.ok());

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
        "  {stream_gib} GiB stream (computeCids): {:.0} MB/s, peak RSS {stream_peak:.1} MiB",
        (stream_gib << 30) as f64 / stream_secs / 1e6
    );
    println!(
        "{{\"streamGib\":{stream_gib},\"streamPeakMib\":{stream_peak:.1},\"mib\":{mib},\"cores\":{cores},\"commp1\":{commp_1:.1},\"commpN\":{commp_n:.1},\"unixfs\":{unixfs:.1},\"all\":{all:.1}}}"
    );
}

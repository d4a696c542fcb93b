//! Prints the identifiers of a file: its UnixFS CID, CommP and piece CID.
//!
//! `cargo run --release -p raas-core --example identify -- FILE`

use std::process::ExitCode;

use raas_core::{cid::compute_cids_from_file, ErrorCode};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: identify FILE");
        return ExitCode::from(2);
    };
    let started = std::time::Instant::now();
    match compute_cids_from_file(&path) {
        Ok(ids) => {
            let secs = started.elapsed().as_secs_f64();
            println!("file       {path}");
            println!("size       {} bytes", ids.size);
            println!("cid        {}   (ipfs add --cid-version=1)", ids.cid);
            println!("commP      {}   (piece CID v1, for deals)", ids.comm_p);
            println!("pieceCid   {}   (FRC-0069 piece CID v2)", ids.piece_cid);
            println!("pieceSize  {} bytes (padded)", ids.piece_size);
            println!(
                "hashed in  {secs:.3} s ({:.0} MB/s)",
                ids.size as f64 / secs.max(1e-9) / 1e6
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            ExitCode::FAILURE
        }
    }
}

//! A payload over 100 MiB, hashed from a file and from a generated stream, must give the
//! identifiers the independent npm implementations give (`tests/helpers/reference.mjs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use raas_core::cid::{compute_cids_from_file, compute_cids_from_reader};

/// A reader that generates pseudo-random bytes without holding them: memory stays flat.
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

fn generated(len: u64) -> Generated {
    Generated {
        remaining: len,
        state: 0x2545f4914f6cdd1d,
    }
}

#[test]
fn over_100_mib_matches_the_npm_references() {
    let len = 100 * 1024 * 1024 + 12_345;
    let dir = std::env::temp_dir().join(format!("raas-cids-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("payload.bin");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        std::io::copy(&mut generated(len), &mut file).unwrap();
        file.flush().unwrap();
    }

    let from_file = compute_cids_from_file(&path).unwrap();
    let from_stream = compute_cids_from_reader(generated(len)).unwrap();
    assert_eq!(from_file, from_stream);
    assert_eq!(from_file.size, len);

    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("node")
        .arg(repo.join("tests/helpers/reference.mjs"))
        .arg(&path)
        .current_dir(&repo)
        .output()
        .expect("node must be installed (scripts/setup.sh installs the npm references)");
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(reference["cid"], from_file.cid.to_string());
    assert_eq!(reference["commP"], from_file.comm_p.to_string());
    assert_eq!(reference["pieceCid"], from_file.piece_cid.to_string());
    assert_eq!(reference["pieceSize"], from_file.piece_size);
    assert_eq!(reference["size"], from_file.size);
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    use raas_core::ErrorCode;
    let err = compute_cids_from_file("/nonexistent/raas/payload.bin").unwrap_err();
    assert_eq!(err.code(), "IO");
    assert!(err.to_string().contains("/nonexistent/raas/payload.bin"));
}

//! All identifiers of a payload in one pass: UnixFS root CID and piece commitment.

use std::io::Read;

use cid::Cid;

use super::{
    piece::{PieceHasher, PieceInfo},
    unixfs::UnixfsHasher,
};
use crate::error::ErrorCode;

/// Read size when hashing a stream: large enough for the parallel CommP path.
const READ_BUFFER: usize = 8 << 20;

/// The identifiers of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCids {
    /// UnixFS root CIDv1, as `ipfs add --cid-version=1` prints it.
    pub cid: Cid,
    /// FRC-0069 piece CID v2 (`bafkzcib…`).
    pub piece_cid: Cid,
    /// Legacy piece CID v1 (`baga6ea4seaq…`), the CommP that deals carry.
    pub comm_p: Cid,
    /// Padded piece size in bytes.
    pub piece_size: u64,
    /// Payload size in bytes.
    pub size: u64,
}

/// Reading the payload failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifyError {
    /// The payload could not be read (code `IO`).
    #[error("cannot read {what}: {source}")]
    Io {
        /// What was being read (a path, or "stream").
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ErrorCode for IdentifyError {
    fn code(&self) -> &'static str {
        match self {
            IdentifyError::Io { .. } => "IO",
        }
    }
}

/// Streaming hasher for all identifiers at once.
///
/// Feed it chunks of any size (for example while reading a file or a browser `Blob`);
/// memory use stays constant.
#[derive(Clone, Default)]
pub struct CidHasher {
    unixfs: UnixfsHasher,
    piece: PieceHasher,
}

impl CidHasher {
    /// A new, empty hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// A hasher that also keeps the UnixFS blocks it makes (see
    /// [`UnixfsHasher::with_blocks`]).
    pub fn with_blocks() -> Self {
        CidHasher {
            unixfs: UnixfsHasher::with_blocks(),
            piece: PieceHasher::new(),
        }
    }

    /// The UnixFS blocks made since the last call (only with
    /// [`with_blocks`](Self::with_blocks)).
    pub fn take_blocks(&mut self) -> Vec<(Cid, bytes::Bytes)> {
        self.unixfs.take_blocks()
    }

    /// Bytes hashed so far.
    pub fn bytes_hashed(&self) -> u64 {
        self.piece.bytes_hashed()
    }

    /// Feeds more payload bytes.
    pub fn update(&mut self, data: &[u8]) {
        #[cfg(not(target_family = "wasm"))]
        if data.len() >= 1 << 20 {
            // UnixFS hashing costs a quarter of CommP; overlap it with the CommP threads.
            let unixfs = &mut self.unixfs;
            std::thread::scope(|scope| {
                scope.spawn(|| unixfs.update(data));
                self.piece.update(data);
            });
            return;
        }
        self.unixfs.update(data);
        self.piece.update(data);
    }

    /// The identifiers of everything fed so far.
    pub fn finish(self) -> DataCids {
        self.finish_with_blocks().0
    }

    /// The identifiers and the last UnixFS blocks, the root last (empty without
    /// [`with_blocks`](Self::with_blocks)).
    pub fn finish_with_blocks(self) -> (DataCids, Vec<(Cid, bytes::Bytes)>) {
        let piece = self.piece.finish();
        let (cid, blocks) = self.unixfs.finish_with_blocks();
        let ids = DataCids {
            cid,
            piece_cid: piece.piece_cid_v2(),
            comm_p: piece.comm_p(),
            piece_size: piece.padded_size,
            size: piece.payload_size,
        };
        (ids, blocks)
    }
}

/// The identifiers of an in-memory payload.
pub fn compute_cids(data: &[u8]) -> DataCids {
    let mut hasher = CidHasher::new();
    hasher.update(data);
    hasher.finish()
}

/// The piece commitment of an in-memory payload (CommP only).
pub fn compute_piece(data: &[u8]) -> PieceInfo {
    let mut hasher = PieceHasher::new();
    hasher.update(data);
    hasher.finish()
}

/// The UnixFS root CID of an in-memory payload (no CommP).
pub fn compute_unixfs_cid(data: &[u8]) -> Cid {
    let mut hasher = UnixfsHasher::new();
    hasher.update(data);
    hasher.finish()
}

/// The identifiers of everything a reader yields, read in bounded chunks.
pub fn compute_cids_from_reader<R: Read>(mut reader: R) -> Result<DataCids, IdentifyError> {
    read_all(&mut reader, "stream")
}

fn read_all<R: Read>(reader: &mut R, what: &str) -> Result<DataCids, IdentifyError> {
    let mut hasher = CidHasher::new();
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        // Fill the buffer as far as the reader allows so the parallel path sees big blocks.
        let mut filled = 0;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(IdentifyError::Io {
                        what: what.to_string(),
                        source,
                    })
                }
            }
        }
        if filled == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..filled]);
    }
}

/// The identifiers of a file, streamed from disk.
#[cfg(not(target_family = "wasm"))]
pub fn compute_cids_from_file(
    path: impl AsRef<std::path::Path>,
) -> Result<DataCids, IdentifyError> {
    let path = path.as_ref();
    let what = path.display().to_string();
    let mut file = std::fs::File::open(path).map_err(|source| IdentifyError::Io {
        what: what.clone(),
        source,
    })?;
    read_all(&mut file, &what)
}

//! Content identifiers: parsing and normalising CIDs, the UnixFS root CID of a file (as
//! `ipfs add --cid-version=1` computes it) and Filecoin piece commitments (CommP).
//!
//! Everything here hashes a stream: memory use does not grow with the input size.

mod identify;
mod parse;
pub mod piece;
mod text;
pub mod unixfs;

pub use cid::Cid;
#[cfg(not(target_family = "wasm"))]
pub use identify::compute_cids_from_file;
pub use identify::{
    compute_cids, compute_cids_from_reader, compute_piece, compute_unixfs_cid, CidHasher, DataCids,
    IdentifyError,
};
pub use parse::{parse_cid, CidError, CidInfo};
pub use text::{cid_text, parse_cid_text, CidText, Shown};

/// Multicodec of raw bytes.
pub const RAW_CODEC: u64 = 0x55;
/// Multicodec of DAG-PB (UnixFS nodes).
pub const DAG_PB_CODEC: u64 = 0x70;
/// Multihash code of SHA2-256.
pub const SHA2_256: u64 = 0x12;
/// Multicodec `fil-commitment-unsealed`, the codec of a piece CID v1 (CommP).
pub const FIL_COMMITMENT_UNSEALED: u64 = 0xf101;
/// Multihash `sha2-256-trunc254-padded`, the hash of a piece CID v1.
pub const SHA2_256_TRUNC254_PADDED: u64 = 0x1012;
/// Multihash `fr32-sha256-trunc254-padbintree`, the hash of a piece CID v2 (FRC-0069).
pub const FR32_SHA256_TRUNC254_PADBINTREE: u64 = 0x1011;

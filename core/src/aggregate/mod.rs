//! The aggregator's half of the RaaS flow: client pieces packed into one deal as an
//! FRC-0058 aggregate (pieces aligned to their size, a data segment index at the end),
//! and the proof of each piece's inclusion that `DealStatus.complete` takes.
//!
//! Placement follows `go-data-segment` and `@web3-storage/data-segment` exactly (pieces in
//! the order given, each at the next offset aligned to its own size), so the same pieces
//! give the same aggregate piece CID and the same proofs in every implementation.

mod data;
mod tree;

pub use data::{AggregateWriter, WriteError};

use crate::cid::CidText;
use serde::{Deserialize, Serialize};

use crate::cid::piece::{parse_piece_cid, PieceInfo};
use crate::cid::CidError;
use crate::error::ErrorCode;
use crate::podsi::{
    self, index_area_start, index_entry, max_index_entries, InclusionProof, PodsiError,
    PublishedInclusion, PublishedPath, PublishedProof, PublishedVerifier, VerifierData,
    PIECE_CID_PREFIX,
};
use tree::SparseTree;

/// Largest aggregate: 64 GiB padded, the largest sector a deal can land in.
pub const MAX_DEAL_SIZE: u64 = 1 << 36;
/// Smallest aggregate that holds a piece (128 bytes) beside its index (256 bytes).
pub const MIN_DEAL_SIZE: u64 = 512;
const NODE: u64 = 32;
const ENTRY: u64 = 64;

/// Why pieces cannot be aggregated or a proof checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AggregateError {
    /// A piece CID or size that is not a piece (code `INVALID_PIECE`).
    #[error("invalid {field}: {source}")]
    Piece {
        /// Which input, e.g. `pieces[3].pieceCid`.
        field: String,
        /// What is wrong with it.
        source: CidError,
    },
    /// A deal size that cannot hold an aggregate (code `INVALID_ARGUMENT`).
    #[error("invalid size: {0}")]
    Size(String),
    /// The pieces do not fit the deal: too many for its index, or too large (code
    /// `AGGREGATE_FULL`). `piece` is the first that does not fit.
    #[error("pieces[{piece}] does not fit the aggregate: {reason}")]
    Full {
        /// Position of the first piece that does not fit.
        piece: usize,
        /// Why.
        reason: String,
    },
    /// The proof does not verify, or not for this aggregate (code `INVALID_PROOF`).
    #[error(transparent)]
    Proof(#[from] PodsiError),
}

impl ErrorCode for AggregateError {
    fn code(&self) -> &'static str {
        match self {
            AggregateError::Piece { .. } => "INVALID_PIECE",
            AggregateError::Size(_) => "INVALID_ARGUMENT",
            AggregateError::Full { .. } => "AGGREGATE_FULL",
            AggregateError::Proof(_) => "INVALID_PROOF",
        }
    }
}

/// A client piece as hosts pass it: a piece CID v1 with its padded size, or a v2 alone.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
pub struct PieceInput {
    /// Piece CID, v1 (`baga6ea4seaq…`) or v2 (`bafkzcib…`).
    pub piece_cid: String,
    /// Padded size; required with a v1 CID, checked against a v2.
    #[serde(default, deserialize_with = "crate::serde_num::opt_u64")]
    pub piece_size: Option<u64>,
}

/// Options of `aggregate` as hosts pass them: the deal's padded size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AggregateOptions {
    /// Padded size of the deal: a power of two, 512 B to 64 GiB.
    #[serde(deserialize_with = "crate::serde_num::u64")]
    pub size: u64,
}

/// The aggregate a proof must place its piece in, as hosts pass it to `verifyInclusion`
/// (`pieceSize` required with a v1 CID).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
pub struct AggregateRef {
    /// The aggregate's piece CID, v1 (with `pieceSize`) or v2.
    pub comm_p: String,
    /// Its padded size (required with a v1 CID).
    #[serde(default, deserialize_with = "crate::serde_num::opt_u64")]
    pub piece_size: Option<u64>,
}

/// Where a piece lies in an aggregate, in padded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "AggregateSegment"))]
pub struct Segment {
    /// Offset from the start of the deal.
    pub offset: u64,
    /// Padded size of the piece.
    pub size: u64,
}

/// An aggregate: its commitment, where each piece lies and each piece's proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// The deal's piece (its padded size is the deal size; no payload padding).
    pub piece: PieceInfo,
    /// The pieces, in the order given.
    pub pieces: Vec<PieceInfo>,
    /// `segments[i]` is where `pieces[i]` lies.
    pub segments: Vec<Segment>,
    /// `proofs[i]` proves `pieces[i]`, in the shape `DealStatus.complete` takes.
    pub proofs: Vec<PublishedProof>,
}

/// An FRC-0058 aggregate as hosts see it: `proofs[i]` and `segments[i]` are those of
/// `pieces[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "Aggregate"))]
pub struct AggregateView {
    /// Piece CID v1 of the aggregate: what the deal proposal carries.
    pub comm_p: String,
    /// Piece CID v2 of the aggregate.
    pub piece_cid: String,
    /// Padded size of the aggregate (the deal size).
    pub piece_size: u64,
    /// Each piece's inclusion proof, in input order, in the shape `complete` takes.
    pub proofs: Vec<PublishedProof>,
    /// Where each piece lies, in input order.
    pub segments: Vec<Segment>,
}

impl From<&Aggregate> for AggregateView {
    fn from(a: &Aggregate) -> Self {
        AggregateView {
            comm_p: a.piece.comm_p().text(),
            piece_cid: a.piece.piece_cid_v2().text(),
            piece_size: a.piece.padded_size,
            proofs: a.proofs.clone(),
            segments: a.segments.clone(),
        }
    }
}

/// Reads hosts' pieces (`pieces[i].pieceCid` / `.pieceSize` named in errors).
pub fn parse_pieces(pieces: &[PieceInput]) -> Result<Vec<PieceInfo>, AggregateError> {
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            parse_piece_cid(&p.piece_cid, p.piece_size).map_err(|source| AggregateError::Piece {
                field: format!("pieces[{i}]"),
                source,
            })
        })
        .collect()
}

/// Builds the aggregate of `pieces` (in this order) in a deal of padded size `deal_size`.
pub fn aggregate(pieces: &[PieceInfo], deal_size: u64) -> Result<Aggregate, AggregateError> {
    if !deal_size.is_power_of_two() || !(MIN_DEAL_SIZE..=MAX_DEAL_SIZE).contains(&deal_size) {
        return Err(AggregateError::Size(format!(
            "{deal_size} is not a power of two from {MIN_DEAL_SIZE} to {MAX_DEAL_SIZE}"
        )));
    }
    // Both are proven by the size check above (512 ≤ size ≤ 2^36).
    let index_start = index_area_start(deal_size).unwrap_or(deal_size);
    let limit = max_index_entries(u128::from(deal_size)) as u64;
    if pieces.len() as u64 > limit {
        return Err(AggregateError::Full {
            piece: limit as usize,
            reason: format!("a {deal_size}-byte aggregate indexes at most {limit} pieces"),
        });
    }
    // Pieces built by hand (the fields are public) are checked as parsed ones are.
    for (i, p) in pieces.iter().enumerate() {
        let why = if !p.padded_size.is_power_of_two() || p.padded_size < 128 {
            "padded size is not a power of two of at least 128"
        } else if p.root[31] & 0xc0 != 0 {
            "root has its top two bits set: no data hashes to it"
        } else {
            continue;
        };
        return Err(AggregateError::Piece {
            field: format!("pieces[{i}]"),
            source: CidError::invalid(&p.comm_p().text(), why),
        });
    }
    let height = (deal_size / NODE).trailing_zeros();
    let mut tree = SparseTree::new(height);
    let mut segments = Vec::with_capacity(pieces.len());
    let mut next = 0u64; // in nodes
    for (i, p) in pieces.iter().enumerate() {
        let nodes = p.padded_size / NODE;
        let index = next.div_ceil(nodes);
        let end = (index + 1).saturating_mul(nodes);
        if end.saturating_mul(NODE) > index_start {
            return Err(AggregateError::Full {
                piece: i,
                reason: format!(
                    "it would end at {} bytes, past the index at {index_start} of a \
                     {deal_size}-byte deal",
                    end.saturating_mul(NODE)
                ),
            });
        }
        tree.set(nodes.trailing_zeros(), index, p.root);
        segments.push(Segment {
            offset: index * p.padded_size,
            size: p.padded_size,
        });
        next = end;
    }
    let first_entry = index_start / NODE;
    for (n, (p, s)) in pieces.iter().zip(&segments).enumerate() {
        let [left, right] = index_entry(&p.root, s.offset, s.size);
        tree.set(0, first_entry + 2 * n as u64, left);
        tree.set(0, first_entry + 2 * n as u64 + 1, right);
    }
    tree.build();
    let proofs = pieces
        .iter()
        .zip(&segments)
        .enumerate()
        .map(|(n, (p, s))| {
            let level = (p.padded_size / NODE).trailing_zeros();
            let subtree = tree.proof(level, s.offset / p.padded_size);
            let index = tree.proof(1, index_start / ENTRY + n as u64);
            publish(
                p,
                &InclusionProof {
                    proof_subtree: subtree,
                    proof_index: index,
                },
            )
        })
        .collect();
    Ok(Aggregate {
        piece: PieceInfo {
            root: tree.root(),
            padded_size: deal_size,
            payload_size: deal_size / 128 * 127,
        },
        pieces: pieces.to_vec(),
        segments,
        proofs,
    })
}

fn publish(p: &PieceInfo, proof: &InclusionProof) -> PublishedProof {
    let mut comm_pc = PIECE_CID_PREFIX.to_vec();
    comm_pc.extend_from_slice(&p.root);
    let path = |d: &podsi::ProofData| PublishedPath {
        index: format!("{:x}", d.index),
        path: d.path.iter().map(podsi::hex).collect(),
    };
    PublishedProof {
        verifier_data: PublishedVerifier {
            comm_pc: podsi::hex(comm_pc),
            size_pc: format!("{:x}", p.padded_size),
        },
        inclusion_proof: PublishedInclusion {
            proof_subtree: path(&proof.proof_subtree),
            proof_index: path(&proof.proof_index),
        },
    }
}

/// [`parse_pieces`] then [`aggregate`], as the bindings call it.
pub fn aggregate_inputs(
    pieces: &[PieceInput],
    deal_size: u64,
) -> Result<AggregateView, AggregateError> {
    Ok(AggregateView::from(&aggregate(
        &parse_pieces(pieces)?,
        deal_size,
    )?))
}

/// The piece a verified proof includes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct IncludedPiece {
    /// Piece CID v1 of the included piece.
    pub piece_cid: String,
    /// Its padded size.
    pub piece_size: u64,
}

/// [`verify_inclusion`], answering which piece the proof includes.
pub fn verify_inclusion_view(
    proof: &PublishedProof,
    comm_p: &str,
    piece_size: Option<u64>,
) -> Result<IncludedPiece, AggregateError> {
    let v = verify_inclusion(proof, comm_p, piece_size)?;
    // `verify` checked the 39-byte piece CID v1 header, so this parses.
    let cid = cid::Cid::try_from(v.comm_pc.as_slice())
        .map_err(|_| PodsiError::Invalid("wrong content of CID header"))?;
    Ok(IncludedPiece {
        piece_cid: cid.text(),
        piece_size: v.size_pc,
    })
}

/// Checks a published proof as `complete` does, and that it places its piece in the
/// aggregate `comm_p` (piece CID v1 or v2) of padded size `piece_size`.
pub fn verify_inclusion(
    proof: &PublishedProof,
    comm_p: &str,
    piece_size: Option<u64>,
) -> Result<VerifierData, AggregateError> {
    let aggregate =
        parse_piece_cid(comm_p, piece_size).map_err(|source| AggregateError::Piece {
            field: "commP".into(),
            source,
        })?;
    let (inclusion, verifier) = proof.to_typed()?;
    let aux = podsi::verify(&inclusion, &verifier)?;
    if aux.comm_pa.get(7..) != Some(&aggregate.root[..]) {
        return Err(PodsiError::Invalid("the proof is for another aggregate").into());
    }
    if aux.size_pa != aggregate.padded_size {
        return Err(PodsiError::Invalid("the proof is for an aggregate of another size").into());
    }
    Ok(verifier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid::compute_piece;

    fn piece(seed: u8, len: usize) -> PieceInfo {
        compute_piece(&vec![seed; len])
    }

    #[test]
    fn every_proof_verifies_against_the_aggregate() {
        let pieces = [
            piece(1, 100),
            piece(2, 3000),
            piece(3, 127),
            piece(4, 1 << 14),
        ];
        let a = aggregate(&pieces, 1 << 20).unwrap();
        let cid = a.piece.comm_p().to_string();
        for (p, proof) in pieces.iter().zip(&a.proofs) {
            let v = verify_inclusion(proof, &cid, Some(1 << 20)).unwrap();
            assert_eq!(v.comm_pc[7..], p.root);
        }
        let v2 = a.piece.piece_cid_v2().to_string();
        verify_inclusion(&a.proofs[0], &v2, None).unwrap();
        // Aligned placement: 128 at 0, 4 KiB at 4 KiB, 128 at 8 KiB, 32 KiB at 32 KiB.
        let offsets: Vec<u64> = a.segments.iter().map(|s| s.offset).collect();
        assert_eq!(offsets, [0, 4096, 8192, 32768]);
    }

    #[test]
    fn a_proof_for_another_aggregate_or_tampered_is_refused() {
        let pieces = [piece(1, 100), piece(2, 300)];
        let a = aggregate(&pieces, 1 << 12).unwrap();
        let b = aggregate(&pieces[..1], 1 << 12).unwrap();
        let other = b.piece.comm_p().to_string();
        let e = verify_inclusion(&a.proofs[0], &other, Some(1 << 12)).unwrap_err();
        assert_eq!(e.code(), "INVALID_PROOF");
        let mine = a.piece.comm_p().to_string();
        let e = verify_inclusion(&a.proofs[0], &mine, Some(1 << 13)).unwrap_err();
        assert_eq!(e.code(), "INVALID_PROOF");
        let mut bad = a.proofs[1].clone();
        bad.inclusion_proof.proof_subtree.index = "0".into();
        assert_eq!(
            verify_inclusion(&bad, &mine, Some(1 << 12))
                .unwrap_err()
                .code(),
            "INVALID_PROOF"
        );
    }

    #[test]
    fn pieces_that_do_not_fit_are_named() {
        let big = piece(1, 3000);
        let e = aggregate(&[big.clone(), big.clone()], 1 << 13).unwrap_err();
        assert_eq!(e.code(), "AGGREGATE_FULL");
        assert!(e.to_string().starts_with("pieces[1]"), "{e}");
        let many = vec![piece(1, 10); 5];
        assert_eq!(
            aggregate(&many, 1 << 12).unwrap_err().code(),
            "AGGREGATE_FULL"
        );
        for size in [0, 256, 1000, 1 << 37] {
            assert_eq!(aggregate(&[], size).unwrap_err().code(), "INVALID_ARGUMENT");
        }
        let e = parse_pieces(&[
            PieceInput {
                piece_cid: piece(1, 10).comm_p().to_string(),
                piece_size: Some(128),
            },
            PieceInput {
                piece_cid: piece(1, 10).comm_p().to_string(),
                piece_size: None,
            },
        ])
        .unwrap_err();
        assert_eq!(e.code(), "INVALID_PIECE");
        assert!(e.to_string().contains("pieces[1]"), "{e}");
    }

    #[test]
    fn hand_built_pieces_are_checked() {
        let mut odd = piece(1, 10);
        odd.padded_size = 96;
        assert_eq!(
            aggregate(&[odd], 1 << 12).unwrap_err().code(),
            "INVALID_PIECE"
        );
        let mut tiny = piece(1, 10);
        tiny.padded_size = 0;
        assert_eq!(
            aggregate(&[tiny], 1 << 12).unwrap_err().code(),
            "INVALID_PIECE"
        );
        let mut high = piece(1, 10);
        high.root[31] |= 0x80;
        let e = aggregate(&[piece(2, 10), high.clone()], 1 << 12).unwrap_err();
        assert!(e.to_string().starts_with("invalid pieces[1]"), "{e}");
        let e = parse_piece_cid(&high.comm_p().to_string(), Some(128)).unwrap_err();
        assert!(e.to_string().contains("top two bits"), "{e}");
    }

    #[test]
    fn tiny_aggregates_do_not_underflow_the_index_check() {
        // A self-consistent proof of a 64-byte "aggregate": its one entry is its own tree,
        // so every check passes up to the index area, which such an aggregate cannot hold.
        let root = [0u8; 32];
        let [_, right] = index_entry(&root, 0, 32);
        let inclusion = InclusionProof {
            proof_subtree: podsi::ProofData {
                index: 0,
                path: vec![right],
            },
            proof_index: podsi::ProofData {
                index: 0,
                path: vec![],
            },
        };
        let verifier = VerifierData {
            comm_pc: [&PIECE_CID_PREFIX[..], &root[..]].concat(),
            size_pc: 32,
        };
        assert_eq!(
            podsi::verify(&inclusion, &verifier).unwrap_err(),
            PodsiError::Invalid("aggregate too small for an index")
        );
    }
}

//! Proof of data segment inclusion (FRC-0058), verified off-chain: the twin of the
//! DealStatus contract's check, run before `complete` is sent so a bad proof never costs gas.

use sha2::{Digest, Sha256};

use crate::cid::piece::hash_pair;
use crate::error::ErrorCode;

/// Binary prefix of a piece CID v1 with a 32-byte digest.
pub const PIECE_CID_PREFIX: [u8; 7] = [0x01, 0x81, 0xe2, 0x03, 0x92, 0x20, 0x20];
const ENTRY_SIZE: u128 = 64;

/// A Merkle path and the position of its leaf.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProofData {
    /// Leaf position; its bits choose the side at each level.
    pub index: u64,
    /// Sibling nodes from the leaf up.
    pub path: Vec<[u8; 32]>,
}

/// The two proofs of an inclusion: sub-piece in the aggregate tree, entry in its index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InclusionProof {
    /// Proof of the sub-piece's subtree.
    pub proof_subtree: ProofData,
    /// Proof of the sub-piece's index entry.
    pub proof_index: ProofData,
}

/// What the client knows: its piece CID (binary, 39 bytes) and padded size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierData {
    /// Binary piece CID v1 of the sub-piece.
    pub comm_pc: Vec<u8>,
    /// Padded size of the sub-piece.
    pub size_pc: u64,
}

/// What the proof yields: the aggregate's piece CID (binary) and padded size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuxData {
    /// Binary piece CID v1 of the aggregate.
    pub comm_pa: Vec<u8>,
    /// Padded size of the aggregate.
    pub size_pa: u64,
}

/// Why a proof does not verify (code `INVALID_PROOF`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PodsiError {
    /// The proof is inconsistent; the message says which check failed.
    #[error("invalid inclusion proof: {0}")]
    Invalid(&'static str),
}

impl ErrorCode for PodsiError {
    fn code(&self) -> &'static str {
        "INVALID_PROOF"
    }
}

fn fail<T>(why: &'static str) -> Result<T, PodsiError> {
    Err(PodsiError::Invalid(why))
}

/// Verifies an inclusion proof exactly as the contract does and returns the aggregate.
pub fn verify(proof: &InclusionProof, verifier: &VerifierData) -> Result<AuxData, PodsiError> {
    if !verifier.size_pc.is_power_of_two() {
        return fail("sub-piece size is not a power of two");
    }
    if verifier.comm_pc.len() != 39 {
        return fail("wrong length of CID");
    }
    if verifier.comm_pc[..7] != PIECE_CID_PREFIX {
        return fail("wrong content of CID header");
    }
    let mut comm_pc = [0u8; 32];
    comm_pc.copy_from_slice(&verifier.comm_pc[7..]);
    let comm_pa = compute_root(&proof.proof_subtree, comm_pc)?;
    let size_pa = u128::from(verifier.size_pc) << proof.proof_subtree.path.len();
    if size_pa > u128::from(u64::MAX) {
        return fail("aggregate size overflows");
    }
    let offset = u128::from(proof.proof_subtree.index) * u128::from(verifier.size_pc);
    let Ok(offset) = u64::try_from(offset) else {
        return fail("sub-piece offset overflows");
    };
    let entry = index_entry_node(&comm_pc, offset, verifier.size_pc);
    if compute_root(&proof.proof_index, entry)? != comm_pa {
        return fail("aggregator's data commitments don't match");
    }
    if (1u128 << proof.proof_index.path.len()) * ENTRY_SIZE != size_pa {
        return fail("aggregator's data size doesn't match");
    }
    // The aggregate must be large enough for an index; checked, as proof input is untrusted.
    let Some(index_start) = index_area_start(size_pa as u64) else {
        return fail("aggregate too small for an index");
    };
    if u128::from(proof.proof_index.index) * ENTRY_SIZE < u128::from(index_start) {
        return fail("entry outside the index area");
    }
    let mut cid = PIECE_CID_PREFIX.to_vec();
    cid.extend_from_slice(&comm_pa);
    Ok(AuxData {
        comm_pa: cid,
        size_pa: size_pa as u64,
    })
}

fn compute_root(d: &ProofData, leaf: [u8; 32]) -> Result<[u8; 32], PodsiError> {
    if d.path.len() >= 64 {
        return fail("proof too deep");
    }
    if d.index >> d.path.len() != 0 {
        return fail("index out of range");
    }
    let mut carry = leaf;
    let mut index = d.index;
    for sibling in &d.path {
        carry = if index & 1 == 1 {
            hash_pair(sibling, &carry)
        } else {
            hash_pair(&carry, sibling)
        };
        index >>= 1;
    }
    Ok(carry)
}

/// The 64-byte index entry of a segment (FRC-0058): its root, offset and size (little
/// endian) and a 16-byte checksum with the top two bits cleared, so both halves are tree
/// nodes.
pub(crate) fn index_entry(comm_ds: &[u8; 32], offset: u64, size: u64) -> [[u8; 32]; 2] {
    let mut entry = [0u8; 64];
    entry[..32].copy_from_slice(comm_ds);
    entry[32..40].copy_from_slice(&offset.to_le_bytes());
    entry[40..48].copy_from_slice(&size.to_le_bytes());
    let digest = Sha256::digest(entry);
    entry[48..64].copy_from_slice(&digest[..16]);
    entry[63] &= 0x3f;
    let mut left = [0u8; 32];
    let mut right = [0u8; 32];
    left.copy_from_slice(&entry[..32]);
    right.copy_from_slice(&entry[32..]);
    [left, right]
}

fn index_entry_node(comm_ds: &[u8; 32], offset: u64, size: u64) -> [u8; 32] {
    let [left, right] = index_entry(comm_ds, offset, size);
    hash_pair(&left, &right)
}

/// Where the data segment index of an aggregate of padded size `size_pa` starts (padded
/// bytes), or `None` for an aggregate too small to hold one.
pub(crate) fn index_area_start(size_pa: u64) -> Option<u64> {
    let entries = u64::try_from(max_index_entries(u128::from(size_pa))).ok()?;
    size_pa.checked_sub(entries.checked_mul(ENTRY_SIZE as u64)?)
}

/// Entries in the index of an aggregate: `max(4, 2^ceil(log2(size / 2048 / 64)))`.
pub(crate) fn max_index_entries(size_pa: u128) -> u128 {
    (size_pa / 2048 / ENTRY_SIZE).next_power_of_two().max(4)
}

/// An inclusion proof as aggregators publish it (Lighthouse `get_proof`: hex without `0x`,
/// indexes and sizes as hex strings). `0x` prefixes are accepted too.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PublishedProof {
    /// The sub-piece.
    pub verifier_data: PublishedVerifier,
    /// The two Merkle proofs.
    pub inclusion_proof: PublishedInclusion,
}

/// `verifierData` of a published proof.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PublishedVerifier {
    /// Binary piece CID, hex.
    pub comm_pc: String,
    /// Padded size, hex.
    pub size_pc: String,
}

/// `inclusionProof` of a published proof.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PublishedInclusion {
    /// Subtree proof.
    pub proof_subtree: PublishedPath,
    /// Index proof.
    pub proof_index: PublishedPath,
}

/// One Merkle path of a published proof.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PublishedPath {
    /// Leaf index, hex.
    pub index: String,
    /// Sibling nodes, 32-byte hex each.
    pub path: Vec<String>,
}

impl PublishedProof {
    /// Converts to typed proof data, rejecting malformed hex (`INVALID_PROOF`).
    pub fn to_typed(&self) -> Result<(InclusionProof, VerifierData), PodsiError> {
        let path = |p: &PublishedPath| -> Result<ProofData, PodsiError> {
            // Checked before decoding: a hostile proof's path costs nothing past the bound.
            if p.path.len() >= 64 {
                return Err(PodsiError::Invalid("proof too deep"));
            }
            Ok(ProofData {
                index: hex_u64(&p.index)?,
                path: p
                    .path
                    .iter()
                    .map(|h| {
                        unhex(h)
                            .and_then(|v| <[u8; 32]>::try_from(v).ok())
                            .ok_or(PodsiError::Invalid("path node is not 32 bytes of hex"))
                    })
                    .collect::<Result<_, _>>()?,
            })
        };
        let proof = InclusionProof {
            proof_subtree: path(&self.inclusion_proof.proof_subtree)?,
            proof_index: path(&self.inclusion_proof.proof_index)?,
        };
        let verifier = VerifierData {
            comm_pc: unhex(&self.verifier_data.comm_pc)
                .ok_or(PodsiError::Invalid("commPc is not hex"))?,
            size_pc: hex_u64(&self.verifier_data.size_pc)?,
        };
        Ok((proof, verifier))
    }
}

/// Lower-case hex of `bytes` (what published proofs carry).
pub(crate) fn hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(bytes.as_ref())
}

/// Bytes of hex in either case, with or without `0x`.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(digits).ok()
}

fn hex_u64(s: &str) -> Result<u64, PodsiError> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    if digits.starts_with('+') {
        return Err(PodsiError::Invalid("index or size is not hex"));
    }
    u64::from_str_radix(digits, 16).map_err(|_| PodsiError::Invalid("index or size is not hex"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference vectors: raas-starter-kit's contract test and a Lighthouse sample.
    pub(crate) fn vectors() -> Vec<(InclusionProof, VerifierData, serde_json::Value)> {
        let all: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../tests/fixtures/podsi-vectors.json")).unwrap();
        all.into_iter()
            .map(|v| {
                let published: PublishedProof = serde_json::from_value(v["proof"].clone()).unwrap();
                let (proof, verifier) = published.to_typed().unwrap();
                (proof, verifier, v)
            })
            .collect()
    }

    #[test]
    fn reference_vectors_verify() {
        let vs = vectors();
        let (proof, verifier, v) = &vs[0];
        let aux = verify(proof, verifier).unwrap();
        assert_eq!(hex(&aux.comm_pa), v["expected"]["commPa"].as_str().unwrap());
        assert_eq!(aux.size_pa, 0x8_0000_0000);

        let (proof, verifier, v) = &vs[1];
        let aux = verify(proof, verifier).unwrap();
        assert_eq!(aux.size_pa, 34_359_738_368);
        let aggregate = cid::Cid::try_from(aux.comm_pa.as_slice()).unwrap();
        assert_eq!(
            aggregate.to_string(),
            v["aggregatePieceCid"].as_str().unwrap()
        );
    }

    #[test]
    fn tampering_is_detected() {
        let (proof, verifier, _) = vectors().swap_remove(0);
        let mut swapped = proof.clone();
        std::mem::swap(&mut swapped.proof_subtree, &mut swapped.proof_index);
        assert!(
            verify(&swapped, &verifier).is_err(),
            "the v2 node's swapped order must fail"
        );
        let mut bad = proof.clone();
        bad.proof_index.path[3][0] ^= 1;
        assert_eq!(
            verify(&bad, &verifier).unwrap_err(),
            PodsiError::Invalid("aggregator's data commitments don't match")
        );
        let mut short = verifier.clone();
        short.comm_pc.pop();
        assert_eq!(
            verify(&proof, &short).unwrap_err(),
            PodsiError::Invalid("wrong length of CID")
        );
        let odd = VerifierData {
            size_pc: 3,
            ..verifier
        };
        assert_eq!(verify(&proof, &odd).unwrap_err().code(), "INVALID_PROOF");
    }

    #[test]
    fn malformed_published_proofs_are_rejected() {
        let bad = PublishedProof {
            verifier_data: PublishedVerifier {
                comm_pc: "zz".into(),
                size_pc: "20".into(),
            },
            inclusion_proof: PublishedInclusion {
                proof_subtree: PublishedPath {
                    index: "5".into(),
                    path: vec![],
                },
                proof_index: PublishedPath {
                    index: "x".into(),
                    path: vec![],
                },
            },
        };
        assert_eq!(bad.to_typed().unwrap_err().code(), "INVALID_PROOF");
    }
}

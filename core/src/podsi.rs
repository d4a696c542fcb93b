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
    let index_start = size_pa - max_index_entries(size_pa) * ENTRY_SIZE;
    if u128::from(proof.proof_index.index) * ENTRY_SIZE < index_start {
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

fn index_entry_node(comm_ds: &[u8; 32], offset: u64, size: u64) -> [u8; 32] {
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
    hash_pair(&left, &right)
}

fn max_index_entries(size_pa: u128) -> u128 {
    (size_pa / 2048 / ENTRY_SIZE).next_power_of_two().max(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h32(s: &str) -> [u8; 32] {
        let v = hex(s);
        v.try_into().unwrap()
    }

    fn hex(s: &str) -> Vec<u8> {
        let s = s.trim_start_matches("0x");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// raas-starter-kit's contract test: a 512 MiB sub-piece in a 32 GiB aggregate.
    pub(crate) fn reference_vector() -> (InclusionProof, VerifierData) {
        let subtree = [
            "0d0e0a0100020000000000000000000000000000000000000000000000000000",
            "0d0e0a0100040000000000000000000000000000000000000000000000000000",
            "b6a5c5d0cbaabd7e63de256c819d84623fde6f53d616120508667b12659f7c3e",
            "2df9cf74cb24e6349b809399b3a046640219dce8b97954eec43bf605dcc59b2d",
            "d8610218425ab5e95b1ca6239d29a2e420d706a96f373e2f9c9a91d759d19b01",
            "d628c4e101d5ca9aa4b341e4d0f028be8636fd7a0c3bf691cef16113b8d97932",
        ];
        let index = [
            "ca99a41370d2dd04f7d97b0fed8a9833031291a6f7c825d7245b428fef8b2734",
            "2bc4f6cafd6a8366d032dfc7fceefd0ff2fb34dd2ea910da454773057333dd2a",
            "578b81a6596624f326b1d31e2e3db91062545d2f819d605cc4afef3377151800",
            "0e067c9486c9d41ff6cfeaf2d4b330d432e6aefa18eacbb5ce072ca197760215",
            "1f7ac9595510e09ea41c460b176430bb322cd6fb412ec57cb17d989a4310372f",
            "fc7e928296e516faade986b28f92d44a4f24b935485223376a799027bc18f833",
            "08c47b38ee13bc43f41b915c0eed9911a26086b3ed62401bf9d58b8d19dff624",
            "b2e47bfb11facd941f62af5c750f3ea5cc4df517d5c4f16db2b4d77baec1a32f",
            "f9226160c8f927bfdcc418cdf203493146008eaefb7d02194d5e548189005108",
            "2c1a964bb90b59ebfe0f6da29ad65ae3e417724a8f7c11745a40cac1e5e74011",
            "fee378cef16404b199ede0b13e11b624ff9d784fbbed878d83297e795e024f02",
            "8e9e2403fa884cf6237f60df25f83ee40dca9ed879eb6f6352d15084f5ad0d3f",
            "752d9693fa167524395476e317a98580f00947afb7a30540d625a9291cc12a07",
            "7022f60f7ef6adfa17117a52619e30cea82c68075adf1c667786ec506eef2d19",
            "d99887b973573a96e11393645236c17b1f4c7034d723c7a99f709bb4da61162b",
            "d0b530dbb0b4f25c5d2f2a28dfee808b53412a02931f18c499f5a254086b1326",
            "84c0421ba0685a01bf795a2344064fe424bd52a9d24377b394ff4c4b4568e811",
            "65f29e5d98d246c38b388cfc06db1f6b021303c5a289000bdce832a9c3ec421c",
            "a2247508285850965b7e334b3127b0c042b1d046dc54402137627cd8799ce13a",
            "dafdab6da9364453c26d33726b9fefe343be8f81649ec009aad3faff50617508",
            "d941d5e0d6314a995c33ffbd4fbe69118d73d4e5fd2cd31f0f7c86ebdd14e706",
            "514c435c3d04d349a5365fbd59ffc713629111785991c1a3c53af22079741a2f",
            "ad06853969d37d34ff08e09f56930a4ad19a89def60cbfee7e1d3381c1e71c37",
            "39560e7b13a93b07a243fd2720ffa7cb3e1d2e505ab3629e79f46313512cda06",
            "ccc3c012f5b05e811a2bbfdd0f6833b84275b47bf229c0052a82484f3c1a5b3d",
            "7df29b69773199e8f2b40b77919d048509eed768e2c7297b1f1437034fc3c62c",
            "66ce05a3667552cf45c02bcc4e8392919bdeac35de2ff56271848e9f7b675107",
            "d8610218425ab5e95b1ca6239d29a2e420d706a96f373e2f9c9a91d759d19b01",
            "d0eef6d1bccabc5b5b9e3af2fea8ea9d184f08f43ac2071bdc635d44bbe35115",
        ];
        (
            InclusionProof {
                proof_subtree: ProofData { index: 5, path: subtree.iter().map(|s| h32(s)).collect() },
                proof_index: ProofData {
                    index: 0x1ffc0003,
                    path: index.iter().map(|s| h32(s)).collect(),
                },
            },
            VerifierData {
                comm_pc: hex("0181e2039220200d0e0a0100030000000000000000000000000000000000000000000000000000"),
                size_pc: 0x2000_0000,
            },
        )
    }

    #[test]
    fn reference_contract_vector_verifies() {
        let (proof, verifier) = reference_vector();
        let aux = verify(&proof, &verifier).unwrap();
        assert_eq!(
            aux.comm_pa,
            hex("0181e2039220203f46bc645b07a3ea2c04f066f939ddf7e269dd77671f9e1e61a3a3797e665127")
        );
        assert_eq!(aux.size_pa, 0x8_0000_0000);
    }

    #[test]
    fn tampering_is_detected() {
        let (proof, verifier) = reference_vector();
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
}

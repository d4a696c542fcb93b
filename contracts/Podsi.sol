// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.23;

import {ProofData, InclusionProof, InclusionVerifierData, InclusionAuxData} from "./IAggregatorOracle.sol";

/// Verification of a proof of data segment inclusion (FRC-0058): that a sub-piece with
/// commitment `commPc` sits in an aggregate, and that the aggregate's index lists it.
/// The same algorithm runs off-chain in raas-core (`podsi`) before `complete` is sent.
library Podsi {
    /// Binary CID prefix of a piece CID v1: CIDv1, fil-commitment-unsealed,
    /// sha2-256-trunc254-padded, 32-byte digest.
    bytes7 internal constant PIECE_CID_PREFIX = 0x0181e203922020;
    uint256 internal constant ENTRY_SIZE = 64;

    function computeExpectedAuxData(InclusionProof memory proof, InclusionVerifierData memory verifier)
        internal
        pure
        returns (InclusionAuxData memory)
    {
        require(isPow2(verifier.sizePc), "PoDSI: sub-piece size is not a power of two");
        bytes32 commPc = cidToDigest(verifier.commPc);
        bytes32 commPa = computeRoot(proof.proofSubtree, commPc);
        uint256 depth = proof.proofSubtree.path.length;
        uint256 sizePa = uint256(verifier.sizePc) << depth;
        require(sizePa <= type(uint64).max, "PoDSI: aggregate size overflows");

        bytes32 entryNode = indexEntryNode(commPc, uint256(proof.proofSubtree.index) * verifier.sizePc, verifier.sizePc);
        require(computeRoot(proof.proofIndex, entryNode) == commPa, "aggregator's data commitments don't match");
        require((uint256(1) << proof.proofIndex.path.length) * ENTRY_SIZE == sizePa, "aggregator's data size doesn't match");
        uint256 indexStart = sizePa - maxIndexEntries(sizePa) * ENTRY_SIZE;
        require(uint256(proof.proofIndex.index) * ENTRY_SIZE >= indexStart, "PoDSI: entry outside the index area");
        return InclusionAuxData(abi.encodePacked(PIECE_CID_PREFIX, commPa), uint64(sizePa));
    }

    /// Folds a Merkle path onto `leaf`; the index's bits choose the side at each level.
    function computeRoot(ProofData memory d, bytes32 leaf) internal pure returns (bytes32) {
        require(d.path.length < 64, "PoDSI: proof too deep");
        require(d.index >> d.path.length == 0, "PoDSI: index out of range");
        bytes32 carry = leaf;
        uint64 index = d.index;
        for (uint256 i = 0; i < d.path.length; i++) {
            carry = (index & 1) == 1 ? hashNode(d.path[i], carry) : hashNode(carry, d.path[i]);
            index >>= 1;
        }
        return carry;
    }

    /// SHA-256 truncated to 254 bits: the top two bits of the last byte are cleared.
    function hashNode(bytes32 left, bytes32 right) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(left, right)) & ~bytes32(uint256(0xc0));
    }

    /// Tree node of the index entry `commDs ‖ offset (u64 LE) ‖ size (u64 LE) ‖ checksum`.
    function indexEntryNode(bytes32 commDs, uint256 offset, uint256 size) internal pure returns (bytes32) {
        bytes memory entry = abi.encodePacked(commDs, le64(offset), le64(size), bytes16(0));
        bytes16 checksum = bytes16(sha256(entry)) & ~bytes16(uint128(0xc0));
        return sha256(abi.encodePacked(commDs, le64(offset), le64(size), checksum)) & ~bytes32(uint256(0xc0));
    }

    /// Entries the aggregate's index can hold: max(4, next power of two of size/2048/64).
    function maxIndexEntries(uint256 sizePa) internal pure returns (uint256) {
        uint256 n = sizePa / 2048 / ENTRY_SIZE;
        uint256 p = 1;
        while (p < n) p <<= 1;
        return p < 4 ? 4 : p;
    }

    function cidToDigest(bytes memory cid) internal pure returns (bytes32 digest) {
        require(cid.length == 39, "wrong length of CID");
        require(bytes7(readBytes32(cid, 0)) == PIECE_CID_PREFIX, "wrong content of CID header");
        return readBytes32(cid, 7);
    }

    function readBytes32(bytes memory b, uint256 offset) private pure returns (bytes32 out) {
        assembly {
            out := mload(add(add(b, 32), offset))
        }
    }

    function le64(uint256 v) internal pure returns (bytes8) {
        require(v <= type(uint64).max, "PoDSI: value overflows u64");
        uint64 x = uint64(v);
        uint64 r = 0;
        for (uint256 i = 0; i < 8; i++) {
            r = (r << 8) | (x & 0xff);
            x >>= 8;
        }
        return bytes8(r);
    }

    function isPow2(uint64 v) internal pure returns (bool) {
        return v != 0 && (v & (v - 1)) == 0;
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.23;

/// Proof of data segment inclusion (FRC-0058) types, laid out as the reference contract's.
struct ProofData {
    uint64 index;
    bytes32[] path;
}

/// Order matters for the ABI tuple: subtree proof first, then index proof.
struct InclusionProof {
    ProofData proofSubtree;
    ProofData proofIndex;
}

/// `commPc` is the binary piece CID v1 (39 bytes), `sizePc` the padded sub-piece size.
struct InclusionVerifierData {
    bytes commPc;
    uint64 sizePc;
}

/// What `complete` returns: the aggregate's piece CID bytes and padded size.
struct InclusionAuxData {
    bytes commPa;
    uint64 sizePa;
}

/// The reference `IAggregatorOracle` interface: same functions, struct and events, so
/// existing callers work unchanged.
interface IAggregatorOracle {
    struct Deal {
        uint64 dealId;
        uint64 minerId;
    }

    event SubmitAggregatorRequest(uint256 indexed id, bytes cid);
    event SubmitAggregatorRequestWithRaaS(
        uint256 indexed id,
        bytes cid,
        uint256 _replication_target,
        uint256 _repair_threshold,
        uint256 _renew_threshold
    );
    event CompleteAggregatorRequest(uint256 indexed id, uint64 indexed dealId);

    function submit(bytes memory _cid) external returns (uint256);

    function submitRaaS(
        bytes memory _cid,
        uint256 _replication_target,
        uint256 _repair_threshold,
        uint256 _renew_threshold
    ) external returns (uint256);

    function complete(
        uint256 _id,
        uint64 _dealId,
        uint64 _minerId,
        InclusionProof memory _proof,
        InclusionVerifierData memory _verifierData
    ) external returns (InclusionAuxData memory);

    function getAllDeals(bytes memory _cid) external view returns (Deal[] memory);

    function getAllCIDs() external view returns (bytes[] memory);

    function getActiveDeals(bytes memory _cid) external returns (Deal[] memory);

    function getExpiringDeals(bytes memory _cid, uint64 epochs) external returns (Deal[] memory);
}

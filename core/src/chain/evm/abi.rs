//! Solidity ABI of the contracts we talk to (generated bindings via `alloy::sol!`).
#![allow(missing_docs)]

/// The ABI with contract instances (`#[sol(rpc)]`, for writes through a provider) natively;
/// the calls, events and errors alone in the browser, which only reads.
macro_rules! contracts {
    ($($body:tt)*) => {
        #[cfg(not(target_family = "wasm"))]
        alloy::sol! { #![sol(rpc)] $($body)* }
        #[cfg(target_family = "wasm")]
        alloy::sol! { $($body)* }
    };
}

contracts! {
    /// The reference `IAggregatorOracle` (raas-starter-kit), our extensions and Lighthouse's.
    #[derive(Debug, PartialEq, Eq)]
    interface IDealStatus {
        struct Deal { uint64 dealId; uint64 minerId; }
        struct ProofData { uint64 index; bytes32[] path; }
        struct InclusionProof { ProofData proofSubtree; ProofData proofIndex; }
        struct InclusionVerifierData { bytes commPc; uint64 sizePc; }
        struct InclusionAuxData { bytes commPa; uint64 sizePa; }

        event SubmitAggregatorRequest(uint256 indexed id, bytes cid);
        event SubmitAggregatorRequestWithRaaS(uint256 indexed id, bytes cid, uint256 _replication_target, uint256 _repair_threshold, uint256 _renew_threshold);
        event CompleteAggregatorRequest(uint256 indexed id, uint64 indexed dealId);

        error NotOwner();
        error NotAggregator(address caller);
        error InvalidRequestId(uint256 id);
        error InvalidDealId();
        error DealNotFound(uint64 dealId);
        error DealPieceMismatch(uint64 dealId, bytes dealPiece, uint64 dealSize, bytes proofPiece, uint64 proofSize);
        error DealProviderMismatch(uint64 dealId, uint64 provider, uint64 minerId);
        error ZeroAddress();
        error NotPendingOwner();
        error InvalidPage(uint256 start, uint256 limit);

        function submit(bytes _cid) external returns (uint256);
        function submitRaaS(bytes _cid, uint256 _replication_target, uint256 _repair_threshold, uint256 _renew_threshold) external returns (uint256);
        function complete(uint256 _id, uint64 _dealId, uint64 _minerId, InclusionProof _proof, InclusionVerifierData _verifierData) external returns (InclusionAuxData);
        function getAllDeals(bytes _cid) external view returns (Deal[]);
        function getAllCIDs() external view returns (bytes[]);
        function getActiveDeals(bytes _cid) external returns (Deal[]);
        function getExpiringDeals(bytes _cid, uint64 epochs) external returns (Deal[]);

        // Our contract's administration.
        function owner() external view returns (address);
        function isAggregator(address account) external view returns (bool);
        function setAggregator(address aggregator, bool allowed) external;
        function pendingOwner() external view returns (address);
        function transferOwnership(address newOwner) external;
        function acceptOwnership() external;
        function getCIDsPage(uint256 start, uint256 limit) external view returns (bytes[] cids, uint256 total);
        function prune(bytes _cid) external returns (uint256);

        // Lighthouse's deployed variant.
        function getMaxReplications() external view returns (uint256);
        function getDealExpiry(uint64 dealID) external returns (int64 start, int64 end);
    }

    /// Multicall3 (the read subset we use).
    #[derive(Debug)]
    interface IMulticall3 {
        struct Call3 { address target; bool allowFailure; bytes callData; }
        struct Result { bool success; bytes returnData; }
        function aggregate3(Call3[] calls) external payable returns (Result[] returnData);
    }
}

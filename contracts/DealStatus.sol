// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.23;

import {IAggregatorOracle, InclusionProof, InclusionVerifierData, InclusionAuxData} from "./IAggregatorOracle.sol";
import {MarketReader} from "./MarketReader.sol";
import {Podsi} from "./Podsi.sol";

/// Registry of aggregation requests and the deals made for them, ABI-compatible with the
/// reference RaaS `DealStatus` (raas-starter-kit), with its defects fixed:
/// - inactive deals are left out of `getActiveDeals` / `getExpiringDeals`, not zeroed;
/// - a deal's end is start + duration (the actor's GetDealTerm returns a duration);
/// - one terminated, expired or unknown deal does not revert the whole call;
/// - deals whose end epoch has passed are not active even if never settled (post-nv22);
/// - `complete` is open only to allow-listed aggregators, rejects request and deal id 0,
///   and emits nothing for a deal already recorded; the PoDSI inclusion check stays.
contract DealStatus is IAggregatorOracle {
    uint256 internal transactionId;
    mapping(uint256 => bytes) internal txIdToCid;
    mapping(bytes => Deal[]) internal cidToDeals;
    mapping(bytes => mapping(uint64 => bool)) internal recorded;

    /// Who manages the aggregator allow-list.
    address public owner;
    /// Accounts allowed to call `complete`.
    mapping(address => bool) public isAggregator;

    event AggregatorChanged(address indexed aggregator, bool allowed);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error NotOwner();
    error NotAggregator(address caller);
    error InvalidRequestId(uint256 id);
    error InvalidDealId();

    constructor() {
        owner = msg.sender;
        isAggregator[msg.sender] = true;
        emit OwnershipTransferred(address(0), msg.sender);
        emit AggregatorChanged(msg.sender, true);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    function setAggregator(address aggregator, bool allowed) external onlyOwner {
        isAggregator[aggregator] = allowed;
        emit AggregatorChanged(aggregator, allowed);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function submit(bytes memory _cid) external returns (uint256) {
        uint256 id = ++transactionId;
        txIdToCid[id] = _cid;
        emit SubmitAggregatorRequest(id, _cid);
        return id;
    }

    function submitRaaS(
        bytes memory _cid,
        uint256 _replication_target,
        uint256 _repair_threshold,
        uint256 _renew_threshold
    ) external returns (uint256) {
        uint256 id = ++transactionId;
        txIdToCid[id] = _cid;
        emit SubmitAggregatorRequestWithRaaS(id, _cid, _replication_target, _repair_threshold, _renew_threshold);
        return id;
    }

    function complete(
        uint256 _id,
        uint64 _dealId,
        uint64 _minerId,
        InclusionProof memory _proof,
        InclusionVerifierData memory _verifierData
    ) external returns (InclusionAuxData memory) {
        if (!isAggregator[msg.sender]) revert NotAggregator(msg.sender);
        if (_id == 0 || _id > transactionId) revert InvalidRequestId(_id);
        if (_dealId == 0) revert InvalidDealId();
        InclusionAuxData memory aux = Podsi.computeExpectedAuxData(_proof, _verifierData);
        bytes storage cid = txIdToCid[_id];
        if (!recorded[cid][_dealId]) {
            recorded[cid][_dealId] = true;
            cidToDeals[cid].push(Deal(_dealId, _minerId));
            emit CompleteAggregatorRequest(_id, _dealId);
        }
        return aux;
    }

    function getAllDeals(bytes memory _cid) external view returns (Deal[] memory) {
        return cidToDeals[_cid];
    }

    function getAllCIDs() external view returns (bytes[] memory cids) {
        cids = new bytes[](transactionId);
        for (uint256 i = 0; i < transactionId; i++) {
            cids[i] = txIdToCid[i + 1];
        }
    }

    /// Deals of `_cid` that are active now: activated, not terminated, and
    /// `start <= block.number < start + duration`.
    function getActiveDeals(bytes memory _cid) external returns (Deal[] memory) {
        return filterDeals(_cid, false, 0);
    }

    /// Active deals of `_cid` whose end is at most `epochs` away.
    function getExpiringDeals(bytes memory _cid, uint64 epochs) external returns (Deal[] memory) {
        return filterDeals(_cid, true, epochs);
    }

    /// Start and end epoch of a deal (end = start + duration), as Lighthouse's extension.
    function getDealExpiry(uint64 dealId) external returns (int64 start, int64 end) {
        (bool ok, int64 s, int64 duration) = MarketReader.term(dealId);
        require(ok, "DealStatus: deal term unavailable");
        return (s, s + duration);
    }

    function filterDeals(bytes memory _cid, bool expiringOnly, uint64 epochs) private returns (Deal[] memory out) {
        Deal[] storage all = cidToDeals[_cid];
        out = new Deal[](all.length);
        uint256 n = 0;
        int256 now_ = int256(block.number);
        for (uint256 i = 0; i < all.length; i++) {
            (bool active, int256 end) = activeUntil(all[i].dealId, now_);
            if (!active) continue;
            if (expiringOnly && end - int256(uint256(epochs)) > now_) continue;
            out[n++] = all[i];
        }
        // Shrink the array in place to the deals kept.
        assembly {
            mstore(out, n)
        }
    }

    function activeUntil(uint64 dealId, int256 now_) private returns (bool active, int256 end) {
        (bool ok, int64 activated, int64 terminated) = MarketReader.activation(dealId);
        if (!ok || activated < 0 || terminated >= 0) return (false, 0);
        (bool termOk, int64 start, int64 duration) = MarketReader.term(dealId);
        if (!termOk) return (false, 0);
        end = int256(start) + int256(duration);
        active = now_ >= int256(start) && now_ < end;
    }
}

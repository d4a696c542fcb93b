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
///   and emits nothing for a deal already recorded; the PoDSI inclusion check stays;
/// - `complete` checks the deal itself through the market actor: its data commitment must be
///   the proof's aggregate (piece CID and padded size) and its provider `_minerId`;
/// - reads of active and expiring deals walk only the deals not known to have ended (the live
///   set, pruned on every `complete` and by `prune`), so their gas does not grow with years of
///   renewals; `getAllDeals` keeps the whole history;
/// - `getCIDsPage` reads the requests' CIDs a page at a time;
/// - ownership moves in two steps and never to the zero address.
contract DealStatus is IAggregatorOracle {
    uint256 internal transactionId;
    mapping(uint256 => bytes) internal txIdToCid;
    mapping(bytes => Deal[]) internal cidToDeals;
    mapping(bytes => mapping(uint64 => bool)) internal recorded;
    /// Deals of a CID not known to have ended, in the order they were recorded.
    mapping(bytes => Deal[]) internal liveDeals;

    /// Who manages the aggregator allow-list.
    address public owner;
    /// The account `transferOwnership` named, until it calls `acceptOwnership`.
    address public pendingOwner;
    /// Accounts allowed to call `complete`.
    mapping(address => bool) public isAggregator;

    event AggregatorChanged(address indexed aggregator, bool allowed);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);

    error NotOwner();
    error NotAggregator(address caller);
    error InvalidRequestId(uint256 id);
    error InvalidDealId();
    /// The market actor does not know the deal (never published, or ended and cleaned up).
    error DealNotFound(uint64 dealId);
    /// The deal's data commitment is not the proof's aggregate piece and size.
    error DealPieceMismatch(uint64 dealId, bytes dealPiece, uint64 dealSize, bytes proofPiece, uint64 proofSize);
    /// The deal's provider is not `_minerId`.
    error DealProviderMismatch(uint64 dealId, uint64 provider, uint64 minerId);
    error ZeroAddress();
    error NotPendingOwner();
    error InvalidPage(uint256 start, uint256 limit);

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

    /// First step of an ownership transfer: `newOwner` must then call `acceptOwnership`, so
    /// a mistyped address cannot lock the owner out. Naming the owner again cancels it.
    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        pendingOwner = newOwner == owner ? address(0) : newOwner;
        emit OwnershipTransferStarted(owner, newOwner);
    }

    function acceptOwnership() external {
        // pendingOwner is zero when no transfer is under way, and no sender is zero.
        if (msg.sender != pendingOwner) revert NotPendingOwner();
        emit OwnershipTransferred(owner, msg.sender);
        owner = msg.sender;
        pendingOwner = address(0);
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
        checkDeal(_dealId, _minerId, aux);
        bytes storage cid = txIdToCid[_id];
        if (!recorded[cid][_dealId]) {
            recorded[cid][_dealId] = true;
            cidToDeals[cid].push(Deal(_dealId, _minerId));
            pruneLive(cid);
            liveDeals[cid].push(Deal(_dealId, _minerId));
            emit CompleteAggregatorRequest(_id, _dealId);
        }
        return aux;
    }

    /// The deal holds the proof's aggregate and belongs to `minerId`.
    function checkDeal(uint64 dealId, uint64 minerId, InclusionAuxData memory aux) private {
        (bool ok, bytes memory piece, uint64 size) = MarketReader.dataCommitment(dealId);
        if (!ok) revert DealNotFound(dealId);
        if (size != aux.sizePa || keccak256(piece) != keccak256(aux.commPa)) {
            revert DealPieceMismatch(dealId, piece, size, aux.commPa, aux.sizePa);
        }
        uint64 provider;
        (ok, provider) = MarketReader.provider(dealId);
        if (!ok) revert DealNotFound(dealId);
        if (provider != minerId) revert DealProviderMismatch(dealId, provider, minerId);
    }

    /// Drops the deals of `_cid` known to have ended from the live set (anyone may call it:
    /// it only forgets what can never be active again). Returns how many are left.
    function prune(bytes memory _cid) external returns (uint256) {
        return pruneLive(_cid);
    }

    function pruneLive(bytes memory cid) private returns (uint256 kept) {
        Deal[] storage live = liveDeals[cid];
        int256 now_ = int256(block.number);
        uint256 n = live.length;
        for (uint256 i = 0; i < n; i++) {
            Deal memory d = live[i];
            if (ended(d.dealId, now_)) continue;
            // Compact in place, keeping the recorded order.
            if (kept != i) live[kept] = d;
            kept++;
        }
        for (uint256 i = kept; i < n; i++) {
            live.pop();
        }
    }

    /// Whether a deal can never be active again: unknown to the market (cleaned up),
    /// terminated, past its end, or never activated by its start.
    function ended(uint64 dealId, int256 now_) private returns (bool) {
        (bool ok, int64 activated, int64 terminated) = MarketReader.activation(dealId);
        if (!ok || terminated >= 0) return true;
        (bool termOk, int64 start, int64 duration) = MarketReader.term(dealId);
        if (!termOk) return true;
        if (activated < 0 && now_ >= int256(start)) return true;
        return now_ >= int256(start) + int256(duration);
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

    /// CIDs of requests `start + 1 ..= start + limit` (request ids count from 1), at most
    /// `limit` (1..=1000), and the number of requests.
    function getCIDsPage(uint256 start, uint256 limit) external view returns (bytes[] memory cids, uint256 total) {
        if (limit == 0 || limit > 1000) revert InvalidPage(start, limit);
        total = transactionId;
        uint256 n = start >= total ? 0 : total - start < limit ? total - start : limit;
        cids = new bytes[](n);
        for (uint256 i = 0; i < n; i++) {
            cids[i] = txIdToCid[start + i + 1];
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
        Deal[] storage all = liveDeals[_cid];
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

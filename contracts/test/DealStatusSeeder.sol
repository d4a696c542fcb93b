// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.23;

import {DealStatus} from "../DealStatus.sol";

/// DealStatus plus a bulk loader, for benchmarks: fills requests and deals without a PoDSI
/// proof per deal. Reads are the production code unchanged. Never deploy outside a devnet.
contract DealStatusSeeder is DealStatus {
    /// Adds one request per CID with `dealsPerCid` consecutive deal ids from `firstDealId`.
    function seed(bytes[] calldata cids, uint64 dealsPerCid, uint64 firstDealId, uint64 minerId) external {
        if (!isAggregator[msg.sender]) revert NotAggregator(msg.sender);
        uint64 next = firstDealId;
        for (uint256 i = 0; i < cids.length; i++) {
            uint256 id = ++transactionId;
            txIdToCid[id] = cids[i];
            for (uint64 j = 0; j < dealsPerCid; j++) {
                recorded[cids[i]][next] = true;
                cidToDeals[cids[i]].push(Deal(next, minerId));
                liveDeals[cids[i]].push(Deal(next, minerId));
                next++;
            }
        }
    }
}

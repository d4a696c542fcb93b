// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.23;

interface IMarketState {
    function answer(uint64 method, bytes calldata params) external view returns (int256, uint64, bytes memory);
}

/// Stand-in for the FEVM `call_actor_id` precompile (0xfe…05) on anvil: its runtime code is
/// copied there with `anvil_setCode`. It mirrors the precompile's rules: only DELEGATECALL,
/// failures as an empty revert, methods 1..1023 reserved, codec 0x51 only, flags ≤ 1, and
/// the output `abi.encode(int256 exit, uint64 codec, bytes data)`.
contract MarketActorShim {
    address private constant PRECOMPILE = 0xfe00000000000000000000000000000000000005;
    /// Baked into the runtime code, so it survives the copy to the precompile address.
    address private immutable state;

    constructor(address marketState) {
        state = marketState;
    }

    fallback(bytes calldata input) external payable returns (bytes memory) {
        // Run in our own context means a plain CALL or STATICCALL: the precompile refuses.
        if (address(this) == PRECOMPILE) fail();
        (uint64 method,, uint64 flags, uint64 codec, bytes memory params, uint64 actorId) =
            abi.decode(input, (uint64, uint256, uint64, uint64, bytes, uint64));
        if (method >= 1 && method <= 1023) fail();
        if (flags > 1) fail();
        if (codec != 0x51 && !(codec == 0 && params.length == 0)) fail();
        if (actorId != 5) return abi.encode(int256(-6), uint64(0), bytes(""));
        (int256 exitCode, uint64 retCodec, bytes memory data) = IMarketState(state).answer(method, params);
        return abi.encode(exitCode, retCodec, data);
    }

    function fail() private pure {
        assembly {
            revert(0, 0)
        }
    }
}

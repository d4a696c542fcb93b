// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.23;

/// Calls the actor-call precompile address the ways a contract can, and returns the raw
/// outcome, so tests can compare the double's bytes with the chain's.
contract PrecompileProbe {
    address private constant CALL_ACTOR_ID = 0xfe00000000000000000000000000000000000005;

    function viaDelegatecall(bytes calldata input) external returns (bool ok, bytes memory out) {
        (ok, out) = CALL_ACTOR_ID.delegatecall(input);
    }

    function viaCall(bytes calldata input) external returns (bool ok, bytes memory out) {
        (ok, out) = CALL_ACTOR_ID.call(input);
    }

    function viaStaticcall(bytes calldata input) external view returns (bool ok, bytes memory out) {
        (ok, out) = CALL_ACTOR_ID.staticcall(input);
    }
}

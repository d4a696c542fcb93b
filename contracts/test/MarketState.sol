// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.23;

/// Test double of the market actor's state: the answers a test sets per deal, returned byte
/// for byte as the actor would (CBOR payloads, exit codes) through `MarketActorShim`.
/// Not for production: anyone can set answers.
contract MarketState {
    uint64 internal constant GET_DEAL_ACTIVATION = 2567238399;
    uint64 internal constant GET_DEAL_TERM = 163777312;
    uint64 internal constant GET_DEAL_DATA_COMMITMENT = 1157985802;
    uint64 internal constant GET_DEAL_PROVIDER = 935081690;
    uint64 internal constant GET_DEAL_CLIENT = 128053329;

    int256 internal constant USR_ILLEGAL_ARGUMENT = 16;
    int256 internal constant USR_NOT_FOUND = 17;
    int256 internal constant USR_SERIALIZATION = 21;
    int256 internal constant USR_UNHANDLED_MESSAGE = 22;

    struct Deal {
        bool exists;
        int64 activated;
        int64 terminated;
        int64 start;
        int64 duration;
        uint64 provider;
        uint64 client;
        bytes pieceCid;
        uint64 pieceSize;
        /// Non-zero: every getter fails with this exit code (32 for terminated/settled).
        int256 exitCode;
    }

    mapping(uint64 => Deal) private deals;

    /// Publishes (or replaces) a deal. `activated` -1 = not yet activated.
    function setDeal(
        uint64 id,
        int64 activated,
        int64 start,
        int64 duration,
        uint64 provider,
        uint64 client,
        bytes calldata pieceCid,
        uint64 pieceSize
    ) external {
        deals[id] = Deal(true, activated, -1, start, duration, provider, client, pieceCid, pieceSize, 0);
    }

    /// Many deals at once (same shape as `setDeal`, without the piece).
    function setDeals(uint64[] calldata ids, int64[] calldata activated, int64[] calldata start, int64[] calldata duration, uint64 provider)
        external
    {
        for (uint256 i = 0; i < ids.length; i++) {
            deals[ids[i]] = Deal(true, activated[i], -1, start[i], duration[i], provider, 1000, "", 0, 0);
        }
    }

    /// Activates a published deal at `epoch`.
    function activate(uint64 id, int64 epoch) external {
        deals[id].activated = epoch;
    }

    /// Legacy (pre-nv22) termination mark: GetDealActivation returns `[activated, epoch]`.
    function markTerminated(uint64 id, int64 epoch) external {
        deals[id].terminated = epoch;
    }

    /// Makes every getter of a deal exit with `code` (32: terminated, settled or cleaned up).
    function setExitCode(uint64 id, int256 code) external {
        deals[id].exitCode = code;
    }

    /// Forgets a deal: getters answer 17 (never published).
    function remove(uint64 id) external {
        delete deals[id];
    }

    /// The actor's answer to `method` with CBOR `params`: (exit code, codec, return bytes).
    function answer(uint64 method, bytes calldata params) external view returns (int256, uint64, bytes memory) {
        if (params.length == 0) return (USR_ILLEGAL_ARGUMENT, 0, "");
        (bool ok, uint64 id) = readUint(params);
        if (!ok) return (USR_SERIALIZATION, 0, "");
        if (
            method != GET_DEAL_ACTIVATION && method != GET_DEAL_TERM && method != GET_DEAL_DATA_COMMITMENT
                && method != GET_DEAL_PROVIDER && method != GET_DEAL_CLIENT
        ) return (USR_UNHANDLED_MESSAGE, 0, "");
        Deal storage d = deals[id];
        if (!d.exists) return (USR_NOT_FOUND, 0, "");
        if (d.exitCode != 0) return (d.exitCode, 0, "");
        if (method == GET_DEAL_ACTIVATION) {
            return (0, 0x51, abi.encodePacked(uint8(0x82), cborInt(d.activated), cborInt(d.terminated)));
        }
        if (method == GET_DEAL_TERM) {
            return (0, 0x51, abi.encodePacked(uint8(0x82), cborInt(d.start), cborInt(d.duration)));
        }
        if (method == GET_DEAL_DATA_COMMITMENT) {
            // tag 42 + byte string (0x00 prefix + binary CID), then the padded size
            bytes memory cidBytes = abi.encodePacked(uint8(0), d.pieceCid);
            return (0, 0x51, abi.encodePacked(uint8(0x82), uint8(0xd8), uint8(0x2a), cborHead(2, cidBytes.length), cidBytes, cborHead(0, d.pieceSize)));
        }
        return (0, 0x51, cborHead(0, method == GET_DEAL_PROVIDER ? d.provider : d.client));
    }

    function cborInt(int64 v) internal pure returns (bytes memory) {
        return v >= 0 ? cborHead(0, uint64(v)) : cborHead(1, uint64(-1 - v));
    }

    function cborHead(uint8 major, uint256 v) internal pure returns (bytes memory) {
        uint8 m = major << 5;
        if (v < 24) return abi.encodePacked(uint8(m | uint8(v)));
        if (v <= type(uint8).max) return abi.encodePacked(uint8(m | 24), uint8(v));
        if (v <= type(uint16).max) return abi.encodePacked(uint8(m | 25), uint16(v));
        if (v <= type(uint32).max) return abi.encodePacked(uint8(m | 26), uint32(v));
        return abi.encodePacked(uint8(m | 27), uint64(v));
    }

    /// A bare CBOR unsigned integer and nothing after it (the actor rejects anything else).
    function readUint(bytes calldata b) internal pure returns (bool, uint64) {
        uint8 head = uint8(b[0]);
        if (head >> 5 != 0) return (false, 0);
        uint8 info = head & 0x1f;
        uint256 width = info < 24 ? 0 : info == 24 ? 1 : info == 25 ? 2 : info == 26 ? 4 : info == 27 ? 8 : 99;
        if (width == 99 || b.length != 1 + width) return (false, 0);
        uint256 v = info < 24 ? info : 0;
        for (uint256 i = 0; i < width; i++) {
            v = (v << 8) | uint8(b[1 + i]);
        }
        return (true, uint64(v));
    }
}

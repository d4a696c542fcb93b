// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.23;

/// Reads deal facts from the built-in market actor (f05) through the FEVM `call_actor_id`
/// precompile, with its own CBOR decoding: filecoin-solidity reads -1 as 0, and reverts the
/// whole call on an actor error; here every failure is a per-deal status instead.
library MarketReader {
    address internal constant CALL_ACTOR_ID = 0xfe00000000000000000000000000000000000005;
    uint64 internal constant MARKET_ACTOR = 5;
    uint64 internal constant GET_DEAL_ACTIVATION = 2567238399;
    uint64 internal constant GET_DEAL_TERM = 163777312;
    uint64 internal constant GET_DEAL_DATA_COMMITMENT = 1157985802;
    uint64 internal constant GET_DEAL_PROVIDER = 935081690;
    uint64 internal constant CBOR_CODEC = 0x51;
    uint64 internal constant READ_ONLY = 1;

    /// Activation epochs: `activated == -1` means not activated, `terminated` is -1 unless a
    /// legacy deal was marked terminated. `ok` is false when the actor call failed.
    function activation(uint64 dealId) internal returns (bool ok, int64 activated, int64 terminated) {
        bytes memory data;
        (ok, data) = callMarket(GET_DEAL_ACTIVATION, dealId);
        if (!ok) return (false, -1, -1);
        return decodeIntPair(data);
    }

    /// Deal term: the second field is the duration (end = start + duration).
    function term(uint64 dealId) internal returns (bool ok, int64 start, int64 duration) {
        bytes memory data;
        (ok, data) = callMarket(GET_DEAL_TERM, dealId);
        if (!ok) return (false, 0, 0);
        return decodeIntPair(data);
    }

    /// The deal's piece: the binary piece CID (without the CBOR tag-42 `00` prefix) and its
    /// padded size. `ok` is false when the actor call failed or the reply is malformed.
    function dataCommitment(uint64 dealId) internal returns (bool ok, bytes memory pieceCid, uint64 pieceSize) {
        bytes memory data;
        (ok, data) = callMarket(GET_DEAL_DATA_COMMITMENT, dealId);
        // [tag(42) bytes(00 ‖ cid), uint]
        if (!ok || data.length < 4 || uint8(data[0]) != 0x82 || uint8(data[1]) != 0xd8 || uint8(data[2]) != 0x2a) {
            return (false, "", 0);
        }
        (bool hok, uint8 major, uint64 len, uint256 pos) = readHead(data, 3);
        if (!hok || major != 2 || len == 0 || pos + len > data.length || uint8(data[pos]) != 0) return (false, "", 0);
        pieceCid = new bytes(len - 1);
        for (uint256 i = 0; i + 1 < len; i++) {
            pieceCid[i] = data[pos + 1 + i];
        }
        uint64 size;
        (hok, major, size, pos) = readHead(data, pos + len);
        if (!hok || major != 0 || pos != data.length) return (false, "", 0);
        return (true, pieceCid, size);
    }

    /// The deal's provider actor id.
    function provider(uint64 dealId) internal returns (bool ok, uint64 id) {
        bytes memory data;
        (ok, data) = callMarket(GET_DEAL_PROVIDER, dealId);
        if (!ok) return (false, 0);
        (bool hok, uint8 major, uint64 value, uint256 pos) = readHead(data, 0);
        if (!hok || major != 0 || pos != data.length) return (false, 0);
        return (true, value);
    }

    /// Calls a market getter. `ok` is false for a failed precompile call, a non-zero exit
    /// (17 unknown deal, 32 expired/terminated, ...) or an unexpected codec.
    function callMarket(uint64 method, uint64 dealId) internal returns (bool ok, bytes memory data) {
        bytes memory input = abi.encode(method, uint256(0), READ_ONLY, CBOR_CODEC, cborUint(dealId), MARKET_ACTOR);
        // The precompile only accepts DELEGATECALL; the actor send runs read-only.
        (bool success, bytes memory ret) = CALL_ACTOR_ID.delegatecall(input);
        if (!success || ret.length < 128) return (false, "");
        (int256 exitCode, uint64 codec, bytes memory out) = abi.decode(ret, (int256, uint64, bytes));
        if (exitCode != 0 || codec != CBOR_CODEC) return (false, "");
        return (true, out);
    }

    /// Minimal CBOR encoding of an unsigned integer (major type 0).
    function cborUint(uint64 v) internal pure returns (bytes memory) {
        if (v < 24) return abi.encodePacked(uint8(v));
        if (v <= type(uint8).max) return abi.encodePacked(uint8(0x18), uint8(v));
        if (v <= type(uint16).max) return abi.encodePacked(uint8(0x19), uint16(v));
        if (v <= type(uint32).max) return abi.encodePacked(uint8(0x1a), uint32(v));
        return abi.encodePacked(uint8(0x1b), v);
    }

    /// Decodes a CBOR array of two signed integers, `[a, b]`.
    function decodeIntPair(bytes memory data) internal pure returns (bool ok, int64 a, int64 b) {
        if (data.length < 3 || uint8(data[0]) != 0x82) return (false, 0, 0);
        uint256 pos = 1;
        (ok, a, pos) = readInt(data, pos);
        if (!ok) return (false, 0, 0);
        (ok, b, pos) = readInt(data, pos);
        if (!ok || pos != data.length) return (false, 0, 0);
    }

    /// Reads one CBOR integer (major type 0 or 1) that fits an int64.
    function readInt(bytes memory data, uint256 pos) internal pure returns (bool ok, int64 value, uint256 next) {
        (bool hok, uint8 major, uint64 raw, uint256 after_) = readHead(data, pos);
        if (!hok || major > 1 || raw > uint64(type(int64).max)) return (false, 0, pos);
        // Major type 1 encodes -1 - n: -1 is 0x20, not 0 as filecoin-solidity decodes it.
        value = major == 0 ? int64(raw) : -1 - int64(raw);
        return (true, value, after_);
    }

    /// Reads one CBOR head: major type and argument (up to 8 bytes), and where it ends.
    function readHead(bytes memory data, uint256 pos)
        internal
        pure
        returns (bool ok, uint8 major, uint64 value, uint256 next)
    {
        if (pos >= data.length) return (false, 0, 0, pos);
        uint8 head = uint8(data[pos]);
        major = head >> 5;
        uint8 info = head & 0x1f;
        uint256 width = info < 24 ? 0 : info == 24 ? 1 : info == 25 ? 2 : info == 26 ? 4 : info == 27 ? 8 : 99;
        if (width == 99 || pos + 1 + width > data.length) return (false, 0, 0, pos);
        uint256 raw = info < 24 ? info : 0;
        for (uint256 i = 0; i < width; i++) {
            raw = (raw << 8) | uint8(data[pos + 1 + i]);
        }
        return (true, major, uint64(raw), pos + 1 + width);
    }
}

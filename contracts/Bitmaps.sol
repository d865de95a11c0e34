// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title Bitmaps — the one bit count SecCL's contracts share
/// @notice A session's sets of participants (who posted an update, who voted) are one 256-bit word
///         each, bit i for participant i; their sizes are counted, not stored.
library Bitmaps {
    /// @notice How many bits of `bitmap` are set (0 to 256), in constant gas.
    /// @dev The classic parallel count: 2-, 4- and 8-bit partial sums, then 16-bit lanes (a byte
    ///      cannot hold 256), whose sum the multiplication gathers in the top lane.
    function count(uint256 bitmap) internal pure returns (uint256) {
        unchecked {
            uint256 x = bitmap - ((bitmap >> 1) & 0x5555555555555555555555555555555555555555555555555555555555555555);
            x = (x & 0x3333333333333333333333333333333333333333333333333333333333333333)
                + ((x >> 2) & 0x3333333333333333333333333333333333333333333333333333333333333333);
            x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f;
            x = (x + (x >> 8)) & 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff;
            return (x * 0x0001000100010001000100010001000100010001000100010001000100010001) >> 240;
        }
    }
}

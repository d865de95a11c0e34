// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

/// @title SecclSigning — the one signing rule shared by SecCL's two contracts
/// @notice Every SecCL signature (a participant's message, the server's model, its delivery
///         statements) is an EIP-191 `personal_sign` of the 32-byte hash
///         `keccak256(abi.encode(chainid, board, consensus, nonce, round, kind, digest))`.
///         Binding the chain, both contracts of the session and the session's random nonce makes
///         a signature useless in any other session, even one at the same addresses.
library SecclSigning {
    /// @notice The kind of a server statement that lists what it delivered to one recipient.
    uint8 internal constant DELIVERY = 3;

    /// @notice The 32-byte hash signed for `digest` of `kind` in `round` of the session
    ///         (`board`, `consensus`, `nonce`) on this chain.
    function signedHash(address board, address consensus, bytes32 nonce, uint64 round, uint8 kind, bytes32 digest)
        internal
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(block.chainid, board, consensus, nonce, round, kind, digest));
    }

    /// @notice The signer of `hash` under EIP-191, or the zero address when `signature` is malformed.
    function recoverSigner(bytes32 hash, bytes calldata signature) internal pure returns (address) {
        (address signer, ECDSA.RecoverError err,) =
            ECDSA.tryRecoverCalldata(MessageHashUtils.toEthSignedMessageHash(hash), signature);
        return err == ECDSA.RecoverError.NoError ? signer : address(0);
    }

    /// @notice The digest a delivery statement signs: the server handed `recipient` the `kind`
    ///         messages of `authors` whose digests are `digests` (same order).
    function deliveryDigest(uint8 kind, address recipient, address[] calldata authors, bytes32[] calldata digests)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(kind, recipient, authors, digests));
    }

    /// @notice The tie-break key of participant `index` in `round`: lower keys rank first.
    /// @dev A pseudorandom order per round, fixed by the round's tie seed (see the board), so ties
    ///      favour no position of the roster and every implementation breaks them alike.
    function tieKey(bytes32 tieSeed, uint64 round, uint256 index) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(tieSeed, round, index)));
    }
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

/// @title SecclSigning — the one signing rule shared by SecCL's two contracts
/// @notice An author signs, with EIP-191 `personal_sign`, the 32-byte hash
///         `keccak256(abi.encode(chainid, board, round, kind, digest))`. Binding the chain, the
///         bulletin board, the round and the message kind makes a signature useless anywhere else.
library SecclSigning {
    /// @notice The 32-byte hash an author signs for message `digest` of `kind` in `round` on `board`.
    function signedHash(address board, uint64 round, uint8 kind, bytes32 digest)
        internal
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(block.chainid, board, round, kind, digest));
    }

    /// @notice The signer of `hash` under EIP-191, or the zero address when `signature` is malformed.
    function recoverSigner(bytes32 hash, bytes calldata signature) internal pure returns (address) {
        (address signer, ECDSA.RecoverError err,) =
            ECDSA.tryRecoverCalldata(MessageHashUtils.toEthSignedMessageHash(hash), signature);
        return err == ECDSA.RecoverError.NoError ? signer : address(0);
    }
}

"""The signing rule both contracts check: EIP-191 over (chain id, board, round, kind, digest)."""

from __future__ import annotations

from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address


def signed_hash(chain_id: int, board: str, round_: int, kind: int, digest: bytes) -> bytes:
    """The 32-byte hash an author signs; equal to ``SecclSigning.signedHash`` in the contracts."""
    if len(digest) != 32:
        raise ValueError(f"a digest is 32 bytes, got {len(digest)}")
    return keccak(
        encode(
            ["uint256", "address", "uint64", "uint8", "bytes32"],
            [chain_id, to_checksum_address(board), round_, kind, digest],
        )
    )


def sign_hash(account: LocalAccount, hash_: bytes) -> bytes:
    """``account``'s 65-byte EIP-191 (``personal_sign``) signature of a 32-byte hash."""
    return bytes(account.sign_message(encode_defunct(primitive=hash_)).signature)


def recover_signer(hash_: bytes, signature: bytes) -> str | None:
    """The address that signed ``hash_`` under EIP-191, or None for a malformed signature."""
    try:
        return str(Account.recover_message(encode_defunct(primitive=hash_), signature=signature))
    except Exception:  # eth-account raises several types for malformed signatures
        return None

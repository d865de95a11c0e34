"""The signing rule both contracts check: EIP-191 over (chain id, board, consensus, nonce, round,
kind, digest), and the server's delivery statements built on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

DELIVERY_KIND = 3
"""The kind byte of a server's delivery statement (``SecclSigning.DELIVERY``)."""
RECEIPT_KIND = 4
"""The kind byte of a server's receipt (checked off-chain only: a receipt cites a Tx-ID)."""


@dataclass(frozen=True)
class SigningDomain:
    """Where a signature is valid: one chain, one session's two contracts and its nonce."""

    chain_id: int
    board: str
    consensus: str
    nonce: bytes

    def __post_init__(self) -> None:
        if len(self.nonce) != 32:
            raise ValueError(f"a session nonce is 32 bytes, got {len(self.nonce)}")
        object.__setattr__(self, "board", to_checksum_address(self.board))
        object.__setattr__(self, "consensus", to_checksum_address(self.consensus))

    def signed_hash(self, round_: int, kind: int, digest: bytes) -> bytes:
        """The 32-byte hash signed for ``digest``; equal to ``SecclSigning.signedHash``."""
        if len(digest) != 32:
            raise ValueError(f"a digest is 32 bytes, got {len(digest)}")
        return keccak(
            encode(
                ["uint256", "address", "address", "bytes32", "uint64", "uint8", "bytes32"],
                [self.chain_id, self.board, self.consensus, self.nonce, round_, kind, digest],
            )
        )

    def sign(self, account: LocalAccount, round_: int, kind: int, digest: bytes) -> bytes:
        """``account``'s signature of ``digest`` of ``kind`` in ``round_`` of this session."""
        return sign_hash(account, self.signed_hash(round_, kind, digest))

    def signer(self, round_: int, kind: int, digest: bytes, signature: bytes) -> str | None:
        """Who signed ``digest`` of ``kind`` in ``round_`` here, or None for a malformed signature."""
        return recover_signer(self.signed_hash(round_, kind, digest), signature)


def delivery_digest(kind: int, recipient: str, authors: Sequence[str], digests: Sequence[bytes]) -> bytes:
    """What a delivery statement signs; equal to ``SecclSigning.deliveryDigest``."""
    return keccak(
        encode(
            ["uint8", "address", "address[]", "bytes32[]"],
            [kind, to_checksum_address(recipient), [to_checksum_address(a) for a in authors], list(digests)],
        )
    )


def receipt_digest(kind: int, author: str, digest: bytes, tx_id: str) -> bytes:
    """What a server's receipt signs: it took ``author``'s ``digest`` and recorded it in ``tx_id``."""
    tx = bytes.fromhex(tx_id[2:]) if tx_id else b"\x00" * 32
    return keccak(
        encode(["uint8", "address", "bytes32", "bytes32"], [kind, to_checksum_address(author), digest, tx])
    )


def sign_hash(account: LocalAccount, hash_: bytes) -> bytes:
    """``account``'s 65-byte EIP-191 (``personal_sign``) signature of a 32-byte hash."""
    return bytes(account.sign_message(encode_defunct(primitive=hash_)).signature)


SECP256K1_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
"""The largest ``s`` a signature may carry: the contracts refuse the high-s twin of a signature
(EIP-2), so this side must too, or a statement signed high-s would convict off-chain and never on."""


def recover_signer(hash_: bytes, signature: bytes) -> str | None:
    """The address that signed ``hash_`` under EIP-191, or None for a signature the contracts
    would refuse: not 65 bytes, ``v`` other than 27 or 28, or a high ``s``."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    if int.from_bytes(signature[32:64], "big") > SECP256K1_HALF_ORDER:
        return None
    try:
        return str(Account.recover_message(encode_defunct(primitive=hash_), signature=signature))
    except Exception:  # eth-account raises several types for malformed signatures
        return None

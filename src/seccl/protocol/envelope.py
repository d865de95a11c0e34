"""A signed message as it travels: its canonical bytes and the author's signature of their digest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from seccl.chain.signing import recover_signer, sign_hash, signed_hash
from seccl.protocol.errors import InvalidSignatureError
from seccl.protocol.messages import DEFAULT_MAX_BYTES, Message, decode_message


@dataclass(frozen=True)
class SigningDomain:
    """Where a signature is valid: one chain and one bulletin board."""

    chain_id: int
    board: str


@dataclass(frozen=True)
class SignedMessage:
    """The bytes of a message and its author's signature of their SHA-256 digest.

    The same signature is what the bulletin board (and, for evaluations, the consensus
    contract) checks on-chain, so posting and verifying share one code path.
    """

    data: bytes
    signature: bytes

    def digest(self) -> bytes:
        return hashlib.sha256(self.data).digest()


def sign_message(message: Message, account: LocalAccount, domain: SigningDomain) -> SignedMessage:
    """``account`` signs ``message`` for ``domain``; it must be the message's author."""
    if account.address != message.author:
        raise ValueError(f"{account.address} cannot sign a message authored by {message.author}")
    data = message.to_bytes()
    hash_ = signed_hash(
        domain.chain_id,
        domain.board,
        message.round,
        int(message.kind),
        hashlib.sha256(data).digest(),
    )
    return SignedMessage(data, sign_hash(account, hash_))


def open_message(
    signed: SignedMessage,
    domain: SigningDomain,
    *,
    dimension: int | None = None,
    participants: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Message:
    """Decode ``signed`` and check that its author signed it, or raise a typed ProtocolError."""
    message = decode_message(signed.data, dimension=dimension, participants=participants, max_bytes=max_bytes)
    hash_ = signed_hash(domain.chain_id, domain.board, message.round, int(message.kind), signed.digest())
    signer = recover_signer(hash_, signed.signature)
    if signer != message.author:
        raise InvalidSignatureError(
            f"the signature of this {message.kind.name.lower()} message is not its author "
            f"{message.author}'s (it recovers to {signer})"
        )
    return message

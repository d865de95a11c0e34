"""A signed message as it travels: its canonical bytes and the author's signature of their digest."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from seccl.chain.signing import SigningDomain
from seccl.protocol.errors import InvalidSignatureError, MalformedFieldError, shown
from seccl.protocol.messages import DEFAULT_MAX_BYTES, Message, decode_message
from seccl.protocol.statements import SIGNATURE_BYTES

__all__ = ["SignedMessage", "SigningDomain", "open_message", "sign_message"]


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

    def to_dict(self) -> dict[str, str]:
        return {"data": self.data.hex(), "signature": self.signature.hex()}

    @classmethod
    def from_dict(cls, raw: Any) -> SignedMessage:
        """The signed message ``raw`` describes (hex, as :meth:`to_dict` writes it); a
        MalformedFieldError names a field that is missing, not hex, or a signature that is
        neither 65 bytes nor empty (a party's own unsigned copy of a model it recomputed)."""
        if not isinstance(raw, Mapping):
            raise MalformedFieldError(f"TypeError in SignedMessage: not an object but {type(raw).__name__}")
        try:
            data, signature = _hex(raw["data"], "data"), _hex(raw["signature"], "signature")
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedFieldError(f"{type(exc).__name__} in SignedMessage: {exc}") from None
        if len(signature) not in (0, SIGNATURE_BYTES):
            raise MalformedFieldError(
                f"ValueError in SignedMessage: signature: got {len(signature)} bytes; "
                f"allowed: {SIGNATURE_BYTES} (or none)"
            )
        return cls(data, signature)


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{what}: got {type(value).__name__}; allowed: a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{what}: got {shown(value)}; allowed: a hex string") from None


def sign_message(message: Message, account: LocalAccount, domain: SigningDomain) -> SignedMessage:
    """``account`` signs ``message`` for ``domain``; it must be the message's author."""
    if account.address != message.author:
        raise ValueError(f"{account.address} cannot sign a message authored by {message.author}")
    data = message.to_bytes()
    return SignedMessage(
        data, domain.sign(account, message.round, int(message.kind), hashlib.sha256(data).digest())
    )


def open_message(
    signed: SignedMessage,
    domain: SigningDomain,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    **bounds: Any,
) -> Message:
    """Decode ``signed`` within the session's ``bounds`` (see ``decode_message``) and check that
    its author signed it, or raise a typed ProtocolError."""
    message = decode_message(signed.data, max_bytes=max_bytes, **bounds)
    signer = domain.signer(message.round, int(message.kind), signed.digest(), signed.signature)
    if signer != message.author:
        raise InvalidSignatureError(
            f"the signature of this {message.kind.name.lower()} message is not its author "
            f"{message.author}'s (it recovers to {signer})"
        )
    return message

"""A signed message as it travels: its canonical bytes and the author's signature of their digest."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import is_checksum_address

from seccl.chain.signing import SigningDomain
from seccl.protocol.errors import InvalidSignatureError, MalformedFieldError, shown
from seccl.protocol.messages import DEFAULT_MAX_BYTES, Message, decode_message
from seccl.protocol.statements import SIGNATURE_BYTES

__all__ = ["Commitment", "SignedMessage", "SigningDomain", "open_message", "sign_message"]


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


@dataclass(frozen=True)
class Commitment:
    """An update as it travels before the reveal: the digest of its author's update message and
    the author's signature of it. The bytes stay with the author until the commitments have
    closed, so nobody (the server included) can copy an update before committing its own."""

    round: int
    author: str
    digest: bytes
    signature: bytes

    @classmethod
    def of(cls, signed: SignedMessage) -> Commitment:
        """The commitment to an update its author has signed (header read, not decoded)."""
        message = decode_message(signed.data)
        return cls(message.round, message.author, signed.digest(), signed.signature)

    def signer(self, domain: SigningDomain) -> str | None:
        """Who signed this digest as the update of this round (None for a malformed signature)."""
        return domain.signer(self.round, 0, self.digest, self.signature)

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "author": self.author,
            "digest": self.digest.hex(),
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Commitment:
        """The commitment ``raw`` describes, or a MalformedFieldError naming the faulty field."""
        if not isinstance(raw, Mapping):
            raise MalformedFieldError(f"TypeError in Commitment: not an object but {type(raw).__name__}")
        try:
            round_, author = raw["round"], raw["author"]
            if not isinstance(round_, int) or isinstance(round_, bool) or not 0 <= round_ < 2**64:
                raise ValueError(f"round: got {shown(round_)}; allowed: an integer in [0, 2^64)")
            if not isinstance(author, str) or not is_checksum_address(author):
                raise ValueError(f"author: got {shown(author)}; allowed: a checksummed address")
            digest, signature = _hex(raw["digest"], "digest"), _hex(raw["signature"], "signature")
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedFieldError(f"{type(exc).__name__} in Commitment: {exc}") from None
        if len(digest) != 32 or len(signature) != SIGNATURE_BYTES:
            raise MalformedFieldError(
                f"ValueError in Commitment: digest of {len(digest)} bytes and signature of "
                f"{len(signature)}; allowed: 32 and {SIGNATURE_BYTES}"
            )
        return cls(round_, author, digest, signature)

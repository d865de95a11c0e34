"""What the server signs: each delivery (the messages it hands one participant) and each receipt
(a message it took, and the Tx-ID it says records it). A participant that finds either false
holds the server's own signature on the lie, which anyone can check against the chain."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from seccl.chain.bulletin_board import MessageKind
from seccl.chain.signing import DELIVERY_KIND, RECEIPT_KIND, SigningDomain, delivery_digest, receipt_digest
from seccl.protocol.errors import MalformedFieldError, shown

ROUND_LIMIT = 2**64
"""Rounds are uint64 wherever they are signed (``SecclSigning.signedHash``)."""
DIGEST_BYTES = 32
SIGNATURE_BYTES = 65

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TX_ID = re.compile(r"0x[0-9a-fA-F]{64}")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")

T = TypeVar("T")


@dataclass(frozen=True)
class Delivery:
    """The server's signed statement: in ``round`` it handed ``recipient`` the ``kind`` messages
    of ``authors`` whose digests are ``digests`` (same order). The bulletin board checks it in
    ``accuseDelivery``."""

    round: int
    kind: MessageKind
    recipient: str
    authors: tuple[str, ...]
    digests: tuple[bytes, ...]
    signature: bytes = b""

    @classmethod
    def sign(
        cls,
        account: LocalAccount,
        domain: SigningDomain,
        round_: int,
        kind: MessageKind,
        recipient: str,
        authors: Sequence[str],
        digests: Sequence[bytes],
    ) -> Delivery:
        unsigned = cls(round_, kind, to_checksum_address(recipient), tuple(authors), tuple(digests))
        signature = domain.sign(account, round_, DELIVERY_KIND, unsigned.statement())
        return replace(unsigned, signature=signature)

    def statement(self) -> bytes:
        return delivery_digest(int(self.kind), self.recipient, self.authors, self.digests)

    def signer(self, domain: SigningDomain) -> str | None:
        """Who signed this delivery in ``domain``; None if nobody did or it is malformed (a field
        no signature can cover: a round beyond uint64, a digest that is not 32 bytes...)."""
        try:
            _round(self.round)
            _kind(self.kind)
            _address_text(self.recipient, "recipient")
            _list(self.authors, "authors", _address_text)
            _list(self.digests, "digests", _digest_bytes)
        except (TypeError, ValueError):
            return None
        return domain.signer(self.round, DELIVERY_KIND, self.statement(), self.signature)

    def digest_for(self, author: str) -> bytes | None:
        for a, d in zip(self.authors, self.digests, strict=True):
            if a == author:
                return d
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "kind": self.kind.name.lower(),
            "recipient": self.recipient,
            "authors": list(self.authors),
            "digests": ["0x" + d.hex() for d in self.digests],
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Delivery:
        """The delivery ``raw`` describes; a MalformedFieldError names any field that is missing,
        of the wrong type or out of its range, so :meth:`signer` never meets one."""

        def parse(raw: Mapping[str, Any]) -> Delivery:
            authors = _list(raw["authors"], "authors", _address)
            digests = _list(raw["digests"], "digests", lambda d, what: _hex(d, what, DIGEST_BYTES))
            if len(authors) != len(digests):
                raise ValueError(f"{len(authors)} authors but {len(digests)} digests")
            return cls(
                _round(raw["round"]),
                _kind_name(raw["kind"]),
                _address(raw["recipient"], "recipient"),
                authors,
                digests,
                _hex(raw["signature"], "signature", SIGNATURE_BYTES),
            )

        return _parsed(cls, raw, parse)


@dataclass(frozen=True)
class Receipt:
    """The server's signed receipt: it took ``author``'s ``kind`` message ``digest`` of ``round``
    and ``tx_id`` records it (a board post for an update, a counted ballot for an evaluation)."""

    round: int
    kind: MessageKind
    author: str
    digest: bytes
    tx_id: str
    signature: bytes = b""

    @classmethod
    def sign(
        cls,
        account: LocalAccount,
        domain: SigningDomain,
        round_: int,
        kind: MessageKind,
        author: str,
        digest: bytes,
        tx_id: str,
    ) -> Receipt:
        unsigned = cls(round_, kind, to_checksum_address(author), digest, tx_id)
        return replace(unsigned, signature=domain.sign(account, round_, RECEIPT_KIND, unsigned.statement()))

    def statement(self) -> bytes:
        return receipt_digest(int(self.kind), self.author, self.digest, self.tx_id)

    def signer(self, domain: SigningDomain) -> str | None:
        """Who signed this receipt in ``domain``; None if nobody did or it is malformed (a field
        no signature can cover: a round beyond uint64, a digest or Tx-ID that is not 32 bytes...)."""
        try:
            _round(self.round)
            _kind(self.kind)
            _address_text(self.author, "author")
            _digest_bytes(self.digest, "digest")
            _tx_id(self.tx_id)
        except (TypeError, ValueError):
            return None
        return domain.signer(self.round, RECEIPT_KIND, self.statement(), self.signature)

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "kind": self.kind.name.lower(),
            "author": self.author,
            "digest": "0x" + self.digest.hex(),
            "tx_id": self.tx_id,
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Receipt:
        """The receipt ``raw`` describes; a MalformedFieldError names any field that is missing,
        of the wrong type or out of its range, so :meth:`signer` never meets one."""

        def parse(raw: Mapping[str, Any]) -> Receipt:
            return cls(
                _round(raw["round"]),
                _kind_name(raw["kind"]),
                _address(raw["author"], "author"),
                _hex(raw["digest"], "digest", DIGEST_BYTES),
                _tx_id(raw["tx_id"]),
                _hex(raw["signature"], "signature", SIGNATURE_BYTES),
            )

        return _parsed(cls, raw, parse)


# ─────────────── field checks: a TypeError or ValueError that names the field ───────────────


def _parsed(cls: type, raw: Any, parse: Callable[[Mapping[str, Any]], T]) -> T:
    """``parse(raw)``, with any failure turned into one MalformedFieldError naming the field."""
    if not isinstance(raw, Mapping):
        raise MalformedFieldError(f"TypeError in {cls.__name__}: not an object but {type(raw).__name__}")
    try:
        return parse(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedFieldError(f"{type(exc).__name__} in {cls.__name__}: {exc}") from None


def _round(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"round: got {type(value).__name__}; allowed: an integer")
    if not 0 <= value < ROUND_LIMIT:
        raise ValueError(f"round: got {shown(value)}; allowed: 0 to 2^64 - 1")
    return value


def _kind(value: Any) -> MessageKind:
    if not isinstance(value, MessageKind):
        raise TypeError(f"kind: got {shown(value)}; allowed: a MessageKind")
    return value


def _kind_name(value: Any) -> MessageKind:
    if not isinstance(value, str) or value.upper() not in MessageKind.__members__:
        known = ", ".join(k.lower() for k in MessageKind.__members__)
        raise ValueError(f"kind: got {shown(value)}; allowed: {known}")
    return MessageKind[value.upper()]


def _address_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise ValueError(f"{what}: got {shown(value)}; allowed: an address (0x and 40 hex digits)")
    return value


def _address(value: Any, what: str) -> str:
    return str(to_checksum_address(_address_text(value, what)))


def _list(value: Any, what: str, item: Callable[[Any, str], T]) -> tuple[T, ...]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{what}: got {type(value).__name__}; allowed: a list")
    return tuple(item(v, f"{what}[{i}]") for i, v in enumerate(value))


def _hex(value: Any, what: str, size: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 + 2 * size or not _HEX.fullmatch(value):
        raise ValueError(f"{what}: got {shown(value)}; allowed: 0x and {size} bytes in hex")
    return bytes.fromhex(value[2:])


def _digest_bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != DIGEST_BYTES:
        raise ValueError(f"{what}: got {shown(value)}; allowed: {DIGEST_BYTES} bytes")
    return value


def _tx_id(value: Any) -> str:
    # "" is a receipt that cites no transaction (its relay failed): the server signs it as such.
    if not isinstance(value, str) or (value and not _TX_ID.fullmatch(value)):
        raise ValueError(f"tx_id: got {shown(value)}; allowed: '' or 0x and 32 bytes in hex")
    return value

"""What the server signs: each delivery (the messages it hands one participant) and each receipt
(a message it took, and the Tx-ID it says records it). A participant that finds either false
holds the server's own signature on the lie, which anyone can check against the chain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from seccl.chain.bulletin_board import MessageKind
from seccl.chain.signing import DELIVERY_KIND, RECEIPT_KIND, SigningDomain, delivery_digest, receipt_digest


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
    def from_dict(cls, raw: dict[str, Any]) -> Delivery:
        return cls(
            int(raw["round"]),
            MessageKind[str(raw["kind"]).upper()],
            to_checksum_address(raw["recipient"]),
            tuple(to_checksum_address(a) for a in raw["authors"]),
            tuple(bytes.fromhex(d[2:]) for d in raw["digests"]),
            bytes.fromhex(raw["signature"][2:]),
        )


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
    def from_dict(cls, raw: dict[str, Any]) -> Receipt:
        return cls(
            int(raw["round"]),
            MessageKind[str(raw["kind"]).upper()],
            to_checksum_address(raw["author"]),
            bytes.fromhex(raw["digest"][2:]),
            str(raw["tx_id"]),
            bytes.fromhex(raw["signature"][2:]),
        )

"""Evidence: what a participant found wrong, with the signed items and chain records that prove it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EvidenceKind(StrEnum):
    """What was found wrong. Each names the check that failed."""

    MODEL_MISMATCH = "model-mismatch"
    """The server delivered (and signed for) a model other than the one the board records."""
    MODEL_NOT_AGGREGATED = "model-not-aggregated"
    """The recorded model is not the aggregate of the elected candidates' updates."""
    MODEL_NOT_POSTED = "model-not-posted"
    """The server did not post the round's model by the deadline the contract fixes."""
    UPDATE_NOT_RECORDED = "update-not-recorded"
    """The server signed a receipt for an update under a Tx-ID that does not record it."""
    UPDATE_NOT_REVEALED = "update-not-revealed"
    """A participant committed an update but did not reveal its bytes by the reveal deadline: its
    own failure, which the chain alone shows (it is not eligible)."""
    BALLOT_NOT_COUNTED = "ballot-not-counted"
    """The server signed a receipt for a ballot under a Tx-ID that did not count it."""
    INVALID_MESSAGE = "invalid-message"
    """An update revealed on the board (its bytes hash to the commitment) breaks the session's
    rules; the finder proves it on chain, so it is not eligible."""
    SERVER_SILENT = "server-silent"
    """The server did not relay, ask or answer in time; the participant acted on the chain itself.
    Silence leaves no signature: this finding rests on the finder's word, and the chain shows
    what the finder did about it."""
    UNSIGNED_DELIVERY = "unsigned-delivery"
    """The server handed over bytes its own delivery statement does not cover (or did not sign).
    Nothing signed binds those bytes: this finding rests on the finder's word."""
    SAT_OUT = "sat-out"
    """The finder could not continue this round (no trustworthy model, or training diverged)."""


@dataclass(frozen=True)
class Evidence:
    """One finding: the round, the check, who found it, whose fault, and what proves it.

    ``expected_digest`` is what the finder computed from what it holds; ``recorded_digest`` is
    what the chain holds (None when it holds nothing). Digests are 0x-hex strings. ``proof``
    holds the signed items themselves (a delivery statement, a receipt, the messages a model
    should have been aggregated from), JSON-ready, for :func:`seccl.protocol.verification.verify_evidence`.
    """

    round: int
    kind: EvidenceKind
    finder: str
    subject: str
    tx_id: str | None
    expected_digest: str | None
    recorded_digest: str | None
    detail: str
    proof: dict[str, Any] = field(default_factory=dict)
    finder_index: int | None = None
    subject_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "kind": str(self.kind),
            "finder": self.finder,
            "finder_index": self.finder_index,
            "subject": self.subject,
            "subject_index": self.subject_index,
            "tx_id": self.tx_id,
            "expected_digest": self.expected_digest,
            "recorded_digest": self.recorded_digest,
            "detail": self.detail,
            "proof": self.proof,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Evidence:
        return cls(
            round=int(raw["round"]),
            kind=EvidenceKind(raw["kind"]),
            finder=str(raw["finder"]),
            subject=str(raw["subject"]),
            tx_id=raw.get("tx_id"),
            expected_digest=raw.get("expected_digest"),
            recorded_digest=raw.get("recorded_digest"),
            detail=str(raw.get("detail", "")),
            proof=dict(raw.get("proof") or {}),
            finder_index=raw.get("finder_index"),
            subject_index=raw.get("subject_index"),
        )

    def summary(self) -> str:
        who = f"participant {self.finder_index}" if self.finder_index is not None else self.finder[:10]
        return (
            f"round {self.round}: {self.kind} found by {who} about "
            f"{self.subject[:10]} (tx {self.tx_id or '-'}): {self.detail}"
        )


def hex_digest(digest: bytes | None) -> str | None:
    return None if digest is None else "0x" + digest.hex()

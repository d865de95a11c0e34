"""Evidence: what a participant found wrong, with the chain record that proves it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class EvidenceKind(StrEnum):
    """What was found wrong. Each names the check that failed."""

    MODEL_MISMATCH = "model-mismatch"
    """The model the server sent does not hash to the digest the board recorded for it."""
    MODEL_NOT_AGGREGATED = "model-not-aggregated"
    """The recorded model is not the aggregate of the elected candidates' updates."""
    UPDATE_NOT_RECORDED = "update-not-recorded"
    """The author's update has no record on the board under the Tx-ID it was given."""
    UPDATE_WITHHELD = "update-withheld"
    """The board records an update the server did not deliver."""
    DELIVERED_UPDATE_MISMATCH = "delivered-update-mismatch"
    """A delivered update does not hash to the digest the board recorded for its author."""
    EVALUATION_NOT_RECORDED = "evaluation-not-recorded"
    """The voter's evaluation has no record on the board under the Tx-ID it was given."""
    BALLOT_NOT_COUNTED = "ballot-not-counted"
    """The consensus contract holds no ballot (or another one) for the voter's evaluation."""
    INVALID_MESSAGE = "invalid-message"
    """A message delivered by the server failed to decode or was wrongly shaped."""


@dataclass(frozen=True)
class Evidence:
    """One finding: the round, the check, who found it, whose message, and the chain's record.

    ``expected_digest`` is what the finder computed from what it holds; ``recorded_digest`` is
    what the chain holds (None when it holds nothing). Digests are 0x-hex strings.
    """

    round: int
    kind: EvidenceKind
    finder: str
    subject: str
    tx_id: str | None
    expected_digest: str | None
    recorded_digest: str | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = str(self.kind)
        return out

    def summary(self) -> str:
        return (
            f"round {self.round}: {self.kind} found by {self.finder[:10]} about "
            f"{self.subject[:10]} (tx {self.tx_id or '-'}): {self.detail}"
        )


def hex_digest(digest: bytes | None) -> str | None:
    return None if digest is None else "0x" + digest.hex()

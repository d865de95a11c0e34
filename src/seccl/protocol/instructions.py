"""What the server asks of participants in each phase of a round, and what they answer.

These are the only things a transport carries, so the in-memory simulation and a networked
deployment drive the same participant code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from seccl.protocol.envelope import SignedMessage
from seccl.protocol.evidence import Evidence


@dataclass(frozen=True)
class TrainRequest:
    """Round ``round`` begins: here is the global model (posted in round ``round - 1``)."""

    round: int
    model: SignedMessage
    model_tx_id: str


@dataclass(frozen=True)
class DeliveredUpdate:
    """Another participant's update, relayed by the server with the Tx-ID of its record."""

    author: str
    signed: SignedMessage
    tx_id: str


@dataclass(frozen=True)
class EvaluateRequest:
    """Score the other participants' updates. ``own_tx_id`` is the record of your own update."""

    round: int
    own_tx_id: str | None
    updates: tuple[DeliveredUpdate, ...]


@dataclass(frozen=True)
class BallotReceipt:
    """Your evaluation was posted (``tx_id``) and relayed to the consensus contract
    (``consensus_tx_id``)."""

    round: int
    tx_id: str | None
    consensus_tx_id: str | None = None


@dataclass(frozen=True)
class FinalModelRequest:
    """The session is over: here is the final model, posted in round ``round``."""

    round: int
    model: SignedMessage
    model_tx_id: str


Request = TrainRequest | EvaluateRequest | BallotReceipt | FinalModelRequest


@dataclass(frozen=True)
class Reply:
    """A participant's answer: a signed message where the phase calls for one, and any
    evidence it found while checking what it received against the chain."""

    message: SignedMessage | None = None
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)

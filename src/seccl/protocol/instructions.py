"""What the server asks of participants in each phase of a round, and what they answer.

These are the only things a transport carries, so the in-memory simulation and a networked
deployment drive the same participant code. Everything the server hands over comes with its
signed :class:`Delivery` or :class:`Receipt`, so a participant can prove what it was given.
"""

from __future__ import annotations

from dataclasses import dataclass

from seccl.protocol.envelope import SignedMessage
from seccl.protocol.statements import Delivery, Receipt


@dataclass(frozen=True)
class TrainRequest:
    """Round ``round`` begins: here is the global model posted in round ``round - 1``."""

    round: int
    model: SignedMessage
    delivery: Delivery


@dataclass(frozen=True)
class EvaluateRequest:
    """Score the others' updates (``delivery`` lists their authors and digests, in this order).
    ``own_receipt`` is the server's receipt for your own update, if it took one."""

    round: int
    own_receipt: Receipt | None
    updates: tuple[SignedMessage, ...]
    delivery: Delivery


@dataclass(frozen=True)
class BallotReceipt:
    """Your evaluation was relayed to the consensus contract (``receipt.tx_id``), or refused."""

    round: int
    receipt: Receipt | None


@dataclass(frozen=True)
class FinalModelRequest:
    """The session is over: here is the final model, posted in round ``round``."""

    round: int
    model: SignedMessage
    delivery: Delivery


Request = TrainRequest | EvaluateRequest | BallotReceipt | FinalModelRequest


@dataclass(frozen=True)
class Reply:
    """A participant's answer: a signed message where the phase calls for one. Findings never
    travel here: they go to the run's records directly, not through the accused server."""

    message: SignedMessage | None = None

"""What the server asks of participants in each phase of a round, and what they answer.

These are the only things a transport carries, so the in-memory simulation and a networked
deployment drive the same participant code. Everything the server hands over comes with its
signed :class:`Delivery` or :class:`Receipt`, so a participant can prove what it was given.
Updates never travel here: a participant answers a train request with its commitment, reveals
the bytes on the bulletin board itself once the commitments have closed, and reads the others'
from the board over its own connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from seccl.protocol.envelope import Commitment, SignedMessage
from seccl.protocol.statements import Delivery, Receipt


@dataclass(frozen=True)
class TrainRequest:
    """Round ``round`` begins: here is the global model posted in round ``round - 1``."""

    round: int
    model: SignedMessage
    delivery: Delivery


@dataclass(frozen=True)
class RevealRequest:
    """The commitments of round ``round`` have closed: reveal your update on the board now (a
    prompt only: a participant reveals on its own once the commitments close, asked or not)."""

    round: int


@dataclass(frozen=True)
class EvaluateRequest:
    """The reveals have closed: score the others' updates, as the board reveals them.
    ``own_receipt`` is the server's receipt for your own commitment, if it took one."""

    round: int
    own_receipt: Receipt | None


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


Request = TrainRequest | RevealRequest | EvaluateRequest | BallotReceipt | FinalModelRequest


@dataclass(frozen=True)
class Reply:
    """A participant's answer: its update's commitment to a train request, its signed ballot to
    an evaluate request, nothing otherwise. Findings never travel here: they go to the run's
    records directly, not through the accused server."""

    message: SignedMessage | None = None
    commitment: Commitment | None = None

"""Malicious parameter servers: each breaks one rule of the protocol in the way DESIGN.md lists.

None of them can forge a participant's signature, so each attack leaves a trace that honest
participants find by checking what they receive against the chain.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from seccl.chain.transactions import TxReceipt
from seccl.learning.aggregation import aggregate
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.envelope import SignedMessage, sign_message
from seccl.protocol.instructions import DeliveredUpdate, EvaluateRequest
from seccl.protocol.messages import ModelMessage, UpdateMessage, decode_message
from seccl.protocol.store import StoredMessage
from seccl.roles.server import ParameterServer


def tampered(signed: SignedMessage, scale: float = -5.0) -> SignedMessage:
    """The same update with its values scaled, under the author's original signature."""
    message = decode_message(signed.data)
    assert isinstance(message, UpdateMessage)
    u = message.update
    changed = SparseUpdate(u.dimension, u.indices, (u.values * np.float32(scale)).astype(np.float32))
    return SignedMessage(replace(message, update=changed).to_bytes(), signed.signature)


class TargetedServer(ParameterServer):
    """A malicious server that singles out one participant, ``target`` (an index)."""

    def __init__(self, *args: Any, target: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.target = target


class TamperingServer(TargetedServer):
    """Alters the target's update before relaying it, to one receiver or to all."""

    def __init__(self, *args: Any, victims: str = "all", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.victims = victims  # "all", or "one": only the participant after the target

    def deliver_updates(self, i: int, updates: list[StoredMessage]) -> list[DeliveredUpdate]:
        delivered = super().deliver_updates(i, updates)
        victim = self.victims == "all" or i == (self.target + 1) % self.session.n
        author = self.session.participants[self.target]
        return [
            replace(d, signed=tampered(d.signed)) if victim and d.author == author else d for d in delivered
        ]


class EquivocatingServer(TargetedServer):
    """Shows the target's update as posted to even-indexed receivers and an altered version to
    odd-indexed ones."""

    def deliver_updates(self, i: int, updates: list[StoredMessage]) -> list[DeliveredUpdate]:
        delivered = super().deliver_updates(i, updates)
        author = self.session.participants[self.target]
        scale = -5.0 if i % 2 else 1.0
        return [
            replace(d, signed=tampered(d.signed, scale)) if d.author == author and scale != 1.0 else d
            for d in delivered
        ]


class DroppingServer(TargetedServer):
    """Drops the target's update: never posts it, never delivers it."""

    def relay_update(self, round_: int, author: str, signed: SignedMessage) -> TxReceipt | None:
        if author == self.session.participants[self.target]:
            return None
        return super().relay_update(round_, author, signed)


class WithholdingServer(TargetedServer):
    """Posts the target's update but withholds it from every other participant."""

    def deliver_updates(self, i: int, updates: list[StoredMessage]) -> list[DeliveredUpdate]:
        author = self.session.participants[self.target]
        return [d for d in super().deliver_updates(i, updates) if d.author != author]


class ForgedReceiptServer(TargetedServer):
    """Hands the target the Tx-ID of another participant's record instead of its own."""

    def evaluate_request(self, i: int, round_: int, updates: list[StoredMessage]) -> EvaluateRequest:
        request = super().evaluate_request(i, round_, updates)
        if i != self.target:
            return request
        other = next(u for u in updates if u.author != self.session.participants[i])
        return replace(request, own_tx_id=other.tx_id)


class MisreportingServer(TargetedServer):
    """Submits altered scores for the target voter: its lowest-scored peer gets the top score."""

    def relay_scores(self, round_: int, author: str, scores: tuple[int, ...], signature: bytes) -> TxReceipt:
        if author == self.session.participants[self.target]:
            others = [j for j in range(len(scores)) if j != self.target]
            worst = min(others, key=lambda j: scores[j])
            scores = tuple(1_000_000 if j == worst else s for j, s in enumerate(scores))
        return super().relay_scores(round_, author, scores, signature)


class NonCandidateAggregatingServer(ParameterServer):
    """Aggregates every participant's update, elected or not."""

    def aggregate_model(self, round_: int, candidates: tuple[int, ...]) -> np.ndarray:
        updates = [self.update_of(round_, i) for i in range(self.session.n)]
        return aggregate(self.params, [u for u in updates if u is not None], rule=self.settings.aggregation)


class UnaggregatedModelServer(ParameterServer):
    """Publishes (and posts) a model it did not aggregate: the aggregate plus noise."""

    def model_to_publish(self, round_: int, params: np.ndarray) -> np.ndarray:
        if round_ == 0:
            return params
        noise = np.random.default_rng(round_).normal(0, 0.05, size=params.shape).astype(np.float32)
        return (params + noise).astype(np.float32)


class WrongModelServer(TargetedServer):
    """Posts the right model's digest but sends the target a different model."""

    def deliver_model(self, i: int) -> tuple[SignedMessage, str]:
        signed, tx_id = super().deliver_model(i)
        if i != self.target:
            return signed, tx_id
        message = decode_message(signed.data)
        assert isinstance(message, ModelMessage)
        other = ModelMessage(message.round, message.author, np.zeros_like(message.params))
        return sign_message(other, self.account, self.session.domain), tx_id


SERVER_ATTACKS: dict[str, tuple[type[ParameterServer], dict[str, Any]]] = {
    "tamper-one": (TamperingServer, {"victims": "one"}),
    "tamper-all": (TamperingServer, {"victims": "all"}),
    "equivocate": (EquivocatingServer, {}),
    "drop": (DroppingServer, {}),
    "withhold": (WithholdingServer, {}),
    "forge-receipt": (ForgedReceiptServer, {}),
    "misreport-scores": (MisreportingServer, {}),
    "aggregate-non-candidates": (NonCandidateAggregatingServer, {}),
    "publish-unaggregated": (UnaggregatedModelServer, {}),
    "send-wrong-model": (WrongModelServer, {}),
}
"""Server attacks by name: the class and its fixed options (a :class:`TargetedServer` also takes
a ``target``)."""

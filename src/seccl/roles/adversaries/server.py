"""Malicious parameter servers: each deviates from the protocol in one way.

None of them can forge a participant's signature, and every delivery and receipt carries the
server's own signature, so each deviation is either refused by the contracts, undone by the
participants acting on the chain themselves, or caught with evidence anyone can check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seccl.chain.bulletin_board import MessageKind
from seccl.chain.consensus import ElectionRecord
from seccl.chain.errors import ContractRevert
from seccl.chain.transactions import TxReceipt
from seccl.learning.aggregation import aggregate
from seccl.protocol.envelope import Commitment, SignedMessage, sign_message
from seccl.protocol.messages import ModelMessage, decode_message
from seccl.protocol.statements import Delivery, Receipt
from seccl.roles.server import ParameterServer


def altered_model(signed: SignedMessage, scale: float = -5.0) -> ModelMessage:
    """The same model with its parameters scaled (the server's own message: it may sign it)."""
    message = decode_message(signed.data)
    assert isinstance(message, ModelMessage)
    return ModelMessage(
        message.round, message.author, (message.params * np.float32(scale)).astype(np.float32)
    )


class TargetedServer(ParameterServer):
    """A malicious server that singles out one participant, ``target`` (an index)."""

    def __init__(self, *args: Any, target: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.target = target

    @property
    def target_address(self) -> str:
        return self.session.participants[self.target]


class TamperingServer(TargetedServer):
    """Hands an altered model, signed for, to one receiver (the target) or to all, while the board
    records the model it posted. (Updates no longer pass through the server: they are revealed on
    the board, so the model is the one thing it still hands over.)"""

    def __init__(self, *args: Any, victims: str = "all", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.victims = victims  # "all", or "one": only the target

    def _alters_for(self, i: int) -> bool:
        return self.victims == "all" or i == self.target

    def deliver_model(self, i: int, model_round: int) -> tuple[SignedMessage, Delivery]:
        delivered = super().deliver_model(i, model_round)
        return _altered_delivery(self, i, model_round, delivered) if self._alters_for(i) else delivered


class EquivocatingServer(ParameterServer):
    """Shows the posted model to even-indexed receivers and an altered one, signed, to odd ones."""

    def deliver_model(self, i: int, model_round: int) -> tuple[SignedMessage, Delivery]:
        delivered = super().deliver_model(i, model_round)
        return _altered_delivery(self, i, model_round, delivered) if i % 2 == 1 else delivered


def _altered_delivery(
    server: ParameterServer, i: int, model_round: int, delivered: tuple[SignedMessage, Delivery]
) -> tuple[SignedMessage, Delivery]:
    """An altered model in place of ``delivered``, signed by ``server`` as delivered to ``i``."""
    other = sign_message(altered_model(delivered[0]), server.account, server.session.domain)
    return other, server._delivery(model_round, MessageKind.MODEL, i, [server.account.address], [other])


class QuietTamperingServer(TargetedServer):
    """Hands the target altered model bytes but signs the digest the board records: the statement
    does not cover the bytes, so it proves nothing, and the target continues from the model it
    computes itself from the board."""

    def deliver_model(self, i: int, model_round: int) -> tuple[SignedMessage, Delivery]:
        signed, delivery = super().deliver_model(i, model_round)
        if i != self.target:
            return signed, delivery
        return SignedMessage(altered_model(signed).to_bytes(), signed.signature), delivery


class DroppingServer(TargetedServer):
    """Drops the target's commitment: never posts it, and gives no receipt."""

    def relay_update(self, round_: int, author: str, commitment: Commitment) -> TxReceipt | None:
        if author == self.target_address:
            return None
        return super().relay_update(round_, author, commitment)


class ForgedReceiptServer(TargetedServer):
    """Hands the target a signed receipt citing another participant's record instead of its own."""

    def own_receipt(self, i: int, round_: int) -> Receipt | None:
        receipt = super().own_receipt(i, round_)
        if i != self.target or receipt is None:
            return receipt
        other = next(r for (rr, a), r in self.receipts.items() if rr == round_ and a != self.target_address)
        return Receipt.sign(
            self.account,
            self.session.domain,
            round_,
            receipt.kind,
            receipt.author,
            receipt.digest,
            other.tx_id,
        )


class MisreportingServer(TargetedServer):
    """Submits altered scores for the target voter (its lowest-scored peer gets the top score);
    the contract refuses them, and the server signs a receipt claiming the failed relay counted."""

    def relay_scores(self, round_, author, scores, signature, ranking):
        if author != self.target_address:
            return super().relay_scores(round_, author, scores, signature, ranking)
        others = [j for j in range(len(scores)) if j != self.target and scores[j] <= 1_000_000]
        worst = min(others, key=lambda j: scores[j])
        altered = tuple(1_000_000 if j == worst else s for j, s in enumerate(scores))
        try:
            return super().relay_scores(round_, author, altered, signature, None)
        except ContractRevert as exc:
            return TxReceipt(exc.tx_hash or "", 0, 0)


class NonCandidateAggregatingServer(ParameterServer):
    """Aggregates every participant's update, elected or not."""

    def aggregate_model(self, round_: int, candidates: tuple[int, ...]) -> np.ndarray:
        updates = [self.update_of(round_, i) for i in range(self.session.n)]
        return aggregate(self.params, [u for u in updates if u is not None], rule=self.settings.aggregation)


class UnaggregatedModelServer(ParameterServer):
    """Publishes (and posts) a model it did not aggregate: the aggregate plus noise."""

    def model_to_publish(self, round_: int, params: np.ndarray) -> np.ndarray:
        noise = np.random.default_rng(round_).normal(0, 0.05, size=params.shape).astype(np.float32)
        return (params + noise).astype(np.float32)


class SilentServer(TargetedServer):
    """Never contacts the target: no model, no request for its update or ballot, no receipt."""

    def contacts(self, i: int, round_: int, phase: str) -> bool:
        return i != self.target


class VoterStarvingServer(TargetedServer):
    """Asks the target voter alone to score, hoping it would pick the election by itself: every
    other voter reads the revealed updates from the board and votes on its own."""

    def contacts(self, i: int, round_: int, phase: str) -> bool:
        return phase != "evaluate" or i == self.target


class BallotSelectingServer(TargetedServer):
    """Reads every ballot, relays all but the target's, and sends the target no receipt."""

    def relay_scores(self, round_, author, scores, signature, ranking):
        if author == self.target_address:
            return None
        return super().relay_scores(round_, author, scores, signature, ranking)


class StallingServer(ParameterServer):
    """Never tallies: it hopes to hold the election open and publish what it likes."""

    def close_election(self, round_: int) -> ElectionRecord | None:
        return None


class ModelWithholdingServer(ParameterServer):
    """Never posts the model of a round (so the next round can never open)."""

    def post_model(self, round_: int, params: np.ndarray) -> bool:
        return False


SERVER_ATTACKS: dict[str, tuple[type[ParameterServer], dict[str, Any]]] = {
    "tamper-one": (TamperingServer, {"victims": "one"}),
    "tamper-all": (TamperingServer, {"victims": "all"}),
    "tamper-unsigned": (QuietTamperingServer, {}),
    "equivocate": (EquivocatingServer, {}),
    "drop": (DroppingServer, {}),
    "forge-receipt": (ForgedReceiptServer, {}),
    "misreport-scores": (MisreportingServer, {}),
    "aggregate-non-candidates": (NonCandidateAggregatingServer, {}),
    "publish-unaggregated": (UnaggregatedModelServer, {}),
    "silence": (SilentServer, {}),
    "select-ballots": (BallotSelectingServer, {}),
    "starve-voters": (VoterStarvingServer, {}),
    "never-tally": (StallingServer, {}),
    "withhold-model": (ModelWithholdingServer, {}),
}
"""Server attacks by name: the class and its fixed options (a :class:`TargetedServer` also takes
a ``target``)."""

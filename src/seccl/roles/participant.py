"""The participant: trains, commits to a sparse update and reveals it on the board, scores the
others' revealed updates, and checks everything it is handed, and the chain itself after every
phase, over its own connection."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from seccl.chain.bulletin_board import MessageKind
from seccl.election import ABSTAIN
from seccl.learning.sparse import SparseUpdate, apply_update, delta, select_top_fraction
from seccl.learning.training import train_local
from seccl.protocol.envelope import Commitment, SignedMessage
from seccl.protocol.evidence import EvidenceKind
from seccl.protocol.instructions import (
    BallotReceipt,
    EvaluateRequest,
    FinalModelRequest,
    Reply,
    Request,
    RevealRequest,
    TrainRequest,
)
from seccl.protocol.messages import EvaluationMessage, UpdateMessage, decode_message, score_to_ppm
from seccl.roles.participant_checks import ChainChecks

T = TypeVar("T")


@dataclass(frozen=True)
class Compute:
    """A heavy, pure computation of a participant: its method ``method`` (``local_model`` or
    ``score_updates``, which adversaries override) called with ``args``. The runtime runs it in
    this process or in a worker process holding a copy of the participant; the result is the
    same bit for bit."""

    method: str
    args: tuple[Any, ...]


Steps = Generator[Compute, Any, T]
"""A participant's answer as a generator: it yields :class:`Compute` jobs and returns a ``T``."""


class Participant(ChainChecks):
    """An honest participant. Adversaries override :meth:`local_model`, :meth:`make_update`
    or :meth:`score_updates`; the checks stay the same for everyone."""

    # ─────────────── dispatch ───────────────

    def handle(self, request: Request) -> Reply:
        """Answer one request of the server, computing everything in this process."""
        return self.run(self.handle_steps(request))

    def handle_steps(self, request: Request) -> Steps[Reply]:
        """Answer one request of the server, as steps: the generator yields each heavy, pure
        computation (:class:`Compute`) for the runtime to run here or in a worker process, and
        returns the reply. The checks and the signing stay in the participant."""
        if isinstance(request, TrainRequest):
            signed = yield from self._on_train(request)
            # Only the commitment leaves: the bytes wait for the reveal, after the commitments close.
            return Reply(commitment=None if signed is None else Commitment.of(signed))
        if isinstance(request, EvaluateRequest):
            return Reply((yield from self._on_evaluate(request)))
        if isinstance(request, RevealRequest):
            self.after_commitments(request.round)
        elif isinstance(request, BallotReceipt):
            self._on_ballot_receipt(request)
        elif isinstance(request, FinalModelRequest):
            self._check_delivered_model(request.round, request.model, request.delivery)
        else:  # pragma: no cover - the type union is closed
            raise TypeError(f"unknown request {type(request).__name__}")
        return Reply()

    def run(self, steps: Steps[T]) -> T:
        """Drive ``steps`` to its end, running each computation it asks for in this process."""
        try:
            job = next(steps)
            while True:
                job = steps.send(getattr(self, job.method)(*job.args))
        except StopIteration as done:
            return done.value

    # ─────────────── behaviour (overridden by adversaries) ───────────────

    def local_model(self, params: np.ndarray, round_: int) -> np.ndarray:
        """Train locally from ``params`` (plain SGD, the paper's settings)."""
        return train_local(
            params,
            self.data.train,
            epochs=self.settings.local_epochs,
            lr=self.settings.learning_rate,
            batch_size=self.settings.batch_size,
            seed=self._seed_for(round_),
            model=self._model,
        )

    def make_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> SparseUpdate:
        """The fraction ``s`` of Δ with the largest magnitudes."""
        return select_top_fraction(delta(local, params), self.settings.share_fraction)

    def score_updates(self, round_: int, params: np.ndarray, updates: dict[int, SparseUpdate]) -> list[float]:
        """Macro-F1 of ``params + Δ_j`` on the private validation set, for each verified update."""
        scores = [0.0] * self.session.n
        for j, update in updates.items():
            scores[j] = self.evaluator.macro_f1(apply_update(params, update))
        return scores

    # ─────────────── the round, as the server asks ───────────────

    def _on_train(self, request: TrainRequest) -> Steps[SignedMessage | None]:
        # The chain, not the server, says which round is open; asked twice, the answer is the one
        # update already signed (a second one would let the server choose between them). For a
        # round the chain has already closed, it only repeats what it signed then (after a crash).
        open_round = self.board.current_round()
        if request.round > open_round or (
            request.round < open_round and not self._signed_before(request.round)
        ):
            return None
        if request.round == self._round and self._trained:
            return self._own_update
        self._reset(request.round)
        params = self._check_delivered_model(request.round - 1, request.model, request.delivery)
        if params is not None:
            self._board_model = (request.round - 1, params, request.model)
            if self._params is None:
                self._params = params
        return (yield from self._train_steps(request.round))

    def _train(self, round_: int) -> SignedMessage | None:
        return self.run(self._train_steps(round_))

    def _train_steps(self, round_: int) -> Steps[SignedMessage | None]:
        self._trained = True
        earlier = self._recall(round_, MessageKind.UPDATE)
        if earlier is not None:
            message = decode_message(earlier.data)
            assert isinstance(message, UpdateMessage)
            self._own_update, self._own_sparse = earlier, message.update
            return earlier
        if self._params is None:
            self._report(
                EvidenceKind.SAT_OUT, self.address, None, None, None, "no model it can trust: sitting out"
            )
            return None
        local = yield Compute("local_model", (self._params, round_))
        if not np.isfinite(local).all():
            self._report(EvidenceKind.SAT_OUT, self.address, None, None, None, "local training diverged")
            return None
        update = self.make_update(self._params, local, round_)
        signed = self._sign(UpdateMessage(round_, self.address, update, self._salt(round_)))
        self._own_update, self._own_sparse = signed, update
        return signed

    def _on_evaluate(self, request: EvaluateRequest) -> Steps[SignedMessage | None]:
        round_ = request.round
        if round_ != self._round:
            return None  # not the round this participant is in: it signs nothing for it
        if request.own_receipt is not None and self._own_update is not None:
            self._check_receipt(request.own_receipt, MessageKind.UPDATE, self._own_update)
        return (yield from self._evaluation_steps(round_))

    def _evaluation(self, round_: int) -> SignedMessage | None:
        return self.run(self._evaluation_steps(round_))

    def _evaluation_steps(self, round_: int) -> Steps[SignedMessage | None]:
        if self._params is None or self._own_evaluation is not None:
            return self._own_evaluation
        earlier = self._recall(round_, MessageKind.EVALUATION)
        if earlier is not None:
            self._own_evaluation = earlier
            return earlier
        if not self.board.round_info(round_).reveals_closed(self.session.n, self._now()):
            # Asked to score before the reveals closed: an update revealed later would be
            # missing from what I score. Wait for the phase to close and vote on my own then.
            return None
        self._read_reveals(round_)
        verified = {j: u for j, (u, _) in self._verified.items()}
        scores = yield Compute("score_updates", (round_, self._params, verified))
        # Every revealed update gets a score (0 if it breaks the rules: it is proven invalid, so not
        # eligible anyway); an update nobody revealed is not eligible, and its entry abstains.
        ppm = tuple(
            score_to_ppm(scores[j]) if j in verified else 0 if j in self._invalid else ABSTAIN
            for j in range(self.session.n)
        )
        signed = self._sign(EvaluationMessage(round_, self.address, ppm))
        self._own_evaluation = signed
        return signed

    def _on_ballot_receipt(self, request: BallotReceipt) -> None:
        if request.receipt is not None and self._own_evaluation is not None:
            self._check_receipt(request.receipt, MessageKind.EVALUATION, self._own_evaluation)

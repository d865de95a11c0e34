"""The participant: trains, shares a sparse update, scores the others, and checks everything it
is handed, and the chain itself after every phase, over its own connection."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import numpy as np
from eth_account.signers.local import LocalAccount

from seccl.chain.accounts import signing_connection
from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from seccl.chain.consensus import ConsensusClient
from seccl.chain.errors import ContractRevert
from seccl.chain.session import verify_session
from seccl.election import ABSTAIN
from seccl.learning.aggregation import aggregate
from seccl.learning.data import ParticipantData
from seccl.learning.evaluation import Evaluator
from seccl.learning.model import build_model, get_flat_params
from seccl.learning.sparse import SparseUpdate, apply_update, delta, select_top_fraction
from seccl.learning.training import train_local
from seccl.protocol.envelope import SignedMessage, open_message, sign_message
from seccl.protocol.errors import MalformedMessageError, ProtocolError
from seccl.protocol.evidence import Evidence, EvidenceKind, hex_digest
from seccl.protocol.instructions import (
    BallotReceipt,
    EvaluateRequest,
    FinalModelRequest,
    Reply,
    Request,
    TrainRequest,
)
from seccl.protocol.messages import (
    EvaluationMessage,
    ModelMessage,
    UpdateMessage,
    decode_message,
    score_to_ppm,
)
from seccl.protocol.statements import Delivery, Receipt
from seccl.roles.settings import LearningSettings, SessionInfo


def initial_model_digest(seed: int, server: str) -> bytes:
    """The digest of θ_0 that the session's public seed and architecture define."""
    return ModelMessage(0, server, get_flat_params(build_model(seed))).digest()


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


class Journal(Protocol):
    """Where a participant keeps what it signed before the message leaves it (its write-ahead
    log), so that after a crash it sends the same message again instead of signing another."""

    def record(self, round_: int, kind: MessageKind, signed: SignedMessage) -> None: ...

    def recall(self, round_: int, kind: MessageKind, author: str) -> list[SignedMessage]: ...


class Participant:
    """An honest participant. Adversaries override :meth:`local_model`, :meth:`make_update`
    or :meth:`score_updates`; the checks stay the same for everyone."""

    def __init__(
        self,
        index: int,
        account: LocalAccount,
        data: ParticipantData,
        session: SessionInfo,
        settings: LearningSettings,
        backend: ChainBackend,
        *,
        seed: int,
    ):
        self.index = index
        self.account = account
        self.address = account.address
        self.data = data
        self.session = session
        self.settings = settings
        self.seed = seed
        # Its own connection and its own key: it never learns chain facts through the server,
        # and it posts its own messages when the server does not.
        w3 = signing_connection(backend, account)
        self.board = BulletinBoardClient(w3, session.board, sender=self.address)
        self.consensus = ConsensusClient(w3, session.consensus, sender=self.address)
        # Before taking part: the code, the pointers, the roster and θ_0 are what it agreed to.
        terms = replace(session.terms, initial_model=initial_model_digest(seed, session.server))
        verify_session(w3, session.board, session.consensus, terms)
        self._model = build_model(seed)
        self.evaluator = Evaluator(data.validation)
        self.evidence: list[Evidence] = []
        self._params: np.ndarray | None = get_flat_params(self._model)  # the trusted θ_{r-1}
        # The board's own θ (round, parameters, bytes hashing to the board's digest), the base of
        # a provable check of the server's aggregation; it can differ from the trusted θ once
        # the server has published a wrong model.
        self._board_model: tuple[int, np.ndarray, SignedMessage] | None = (
            0,
            self._params,
            SignedMessage(ModelMessage(0, session.server, self._params).to_bytes(), b""),
        )
        self._round = 0
        self.journal: Journal | None = None
        self._reset(0)

    def restore(
        self,
        round_: int,
        trusted: np.ndarray | None,
        board_model: tuple[int, np.ndarray] | None,
        evidence: list[Evidence],
    ) -> None:
        """Resume as this participant stood at the end of ``round_``: the θ it trusts, the board's
        θ it last verified (its bytes are recomputed: they hash to the board's digest) and what it
        has found so far."""
        self._params = None if trusted is None else np.asarray(trusted, dtype=np.float32).copy()
        self._board_model = None
        if board_model is not None:
            model_round, params = board_model
            params = np.asarray(params, dtype=np.float32).copy()
            message = ModelMessage(model_round, self.session.server, params)
            self._board_model = (model_round, params, SignedMessage(message.to_bytes(), b""))
        self.evidence = list(evidence)
        self._reset(round_)

    def state(self) -> tuple[np.ndarray | None, tuple[int, np.ndarray] | None]:
        """What :meth:`restore` needs besides the evidence: the trusted θ and the board's θ."""
        board = None if self._board_model is None else (self._board_model[0], self._board_model[1])
        return self._params, board

    def _reset(self, round_: int) -> None:
        self._round = round_
        self._own_update: SignedMessage | None = None
        self._own_sparse: SparseUpdate | None = None
        self._own_evaluation: SignedMessage | None = None
        self._verified: dict[int, tuple[SparseUpdate, SignedMessage]] = {}
        # Recorded updates whose author-signed bytes break the session's bounds: scored 0 (the
        # fault is provably the author's) and left out of the aggregate by every party alike.
        self._invalid: dict[int, SignedMessage] = {}
        self._trained = False

    # ─────────────── dispatch ───────────────

    def handle(self, request: Request) -> Reply:
        """Answer one request of the server, computing everything in this process."""
        return self.run(self.handle_steps(request))

    def handle_steps(self, request: Request) -> Steps[Reply]:
        """Answer one request of the server, as steps: the generator yields each heavy, pure
        computation (:class:`Compute`) for the runtime to run here or in a worker process, and
        returns the reply. The checks and the signing stay in the participant."""
        if isinstance(request, TrainRequest):
            return Reply((yield from self._on_train(request)))
        if isinstance(request, EvaluateRequest):
            return Reply((yield from self._on_evaluate(request)))
        if isinstance(request, BallotReceipt):
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
        signed = self._sign(UpdateMessage(round_, self.address, update))
        self._own_update, self._own_sparse = signed, update
        return signed

    def _on_evaluate(self, request: EvaluateRequest) -> Steps[SignedMessage | None]:
        round_ = request.round
        if round_ != self._round:
            return None  # not the round this participant is in: it signs nothing for it
        if request.own_receipt is not None and self._own_update is not None:
            self._check_receipt(request.own_receipt, MessageKind.UPDATE, self._own_update)
        info = self.board.round_info(round_)
        if info.updates < self.session.n and self._now() <= info.update_deadline:
            # Asked to score before the update phase closed: an update posted later would be
            # missing from what I score. Wait for the phase to close and vote on my own then.
            return None
        recorded = self.board.updates_of(round_)
        delivery = request.delivery
        signed_by_server = delivery.signer(self.session.domain) == self.session.server
        by_digest = {m.digest(): m for m in request.updates}
        for j, author in enumerate(self.session.participants):
            digest = recorded[j]
            if j == self.index or digest is None:
                continue
            if not signed_by_server or (delivery.recipient, delivery.round, delivery.kind) != (
                self.address,
                round_,
                MessageKind.UPDATE,
            ):
                self._report(
                    EvidenceKind.UNSIGNED_DELIVERY,
                    self.session.server,
                    None,
                    None,
                    hex_digest(digest),
                    "the server's delivery of this round's updates is not signed by it",
                )
                break
            position = delivery.authors.index(author) if author in delivery.authors else None
            if position is None:
                self._report(
                    EvidenceKind.UPDATE_WITHHELD,
                    author,
                    None,
                    None,
                    digest,
                    "the board records this update but the server's signed delivery leaves it out",
                    proof={"delivery": delivery.to_dict()},
                )
                continue
            claimed = delivery.digests[position]
            if claimed != digest:
                self._report(
                    EvidenceKind.DELIVERED_UPDATE_MISMATCH,
                    author,
                    self._accuse(delivery, position),
                    claimed,
                    digest,
                    "the server signed for an update other than the one its author signed on the board",
                    proof={"delivery": delivery.to_dict(), "position": position},
                )
                continue
            signed = by_digest.get(digest)
            if signed is None:
                self._report(
                    EvidenceKind.UNSIGNED_DELIVERY,
                    author,
                    None,
                    None,
                    digest,
                    "the bytes delivered for this update are not the ones the server's statement signs",
                )
                continue
            update = self._decode_update(round_, author, signed)
            if update is None:
                self._invalid[j] = signed
            else:
                self._verified[j] = (update, signed)
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
        verified = {j: u for j, (u, _) in self._verified.items()}
        scores = yield Compute("score_updates", (round_, self._params, verified))
        # Only what it could verify gets a score: any other entry abstains, which the election
        # treats as neutral, so a delivery the server spoiled cannot lower its author's standing.
        ppm = tuple(
            score_to_ppm(scores[j]) if j in verified else 0 if j in self._invalid else ABSTAIN
            for j in range(self.session.n)
        )
        signed = self._sign(EvaluationMessage(round_, self.address, ppm))
        self._own_evaluation = signed
        return signed

    # ─────────────── signing once, even across a crash ───────────────

    def _sign(self, message: UpdateMessage | EvaluationMessage) -> SignedMessage:
        """Sign ``message`` and write it to the journal before it leaves this participant."""
        signed = sign_message(message, self.account, self.session.domain)
        if self.journal is not None:
            self.journal.record(message.round, message.kind, signed)
        return signed

    def _recall(self, round_: int, kind: MessageKind) -> SignedMessage | None:
        """What this participant signed for ``round_`` and ``kind`` before (after a crash), if
        anything: only a message its own key signed counts, whoever else stored copies."""
        if self.journal is None:
            return None
        for signed in self.journal.recall(round_, kind, self.address):
            try:
                message = open_message(signed, self.session.domain, **self.session.bounds())
            except ProtocolError:
                continue
            if (message.author, message.round, message.kind) == (self.address, round_, kind):
                return signed
        return None

    def _signed_before(self, round_: int) -> bool:
        return self._recall(round_, MessageKind.UPDATE) is not None

    def _on_ballot_receipt(self, request: BallotReceipt) -> None:
        if request.receipt is not None and self._own_evaluation is not None:
            self._check_receipt(request.receipt, MessageKind.EVALUATION, self._own_evaluation)

    # ─────────────── the participant's own checks after each phase (the runtime calls them) ───────────────

    def after_updates(self, round_: int) -> SignedMessage | None:
        """Is my update on the board? If the server never asked for it or did not post it, post it
        myself while the phase is open. Returns an update I posted myself, for the server to deliver."""
        if self._round != round_:
            self._reset(round_)
        if not self._trained:
            if self.board.current_round() != round_:
                return None  # a round the chain has closed (replayed after a crash): nothing to sign
            self._train(round_)
            if self._own_update is not None:
                self._report(
                    EvidenceKind.SERVER_SILENT,
                    self.session.server,
                    None,
                    None,
                    None,
                    "the server never asked for this round's update; trained from the trusted model",
                )
        own = self._own_update
        if own is None or self.board.digest_of(round_, MessageKind.UPDATE, self.address) == own.digest():
            return None
        try:
            receipt = self.board.post_update(round_, self.address, own.digest(), own.signature)
        except ContractRevert as exc:
            self._report(
                EvidenceKind.SERVER_SILENT,
                self.session.server,
                exc.tx_hash,
                own.digest(),
                None,
                f"the update was not relayed and could not be posted directly: {exc}",
            )
            return None
        self._report(
            EvidenceKind.SERVER_SILENT,
            self.session.server,
            receipt.tx_hash,
            own.digest(),
            own.digest(),
            "the server did not post this update; the participant posted it itself",
        )
        return own

    def after_ballots(self, round_: int) -> None:
        """Was my ballot counted? If not (never asked, not relayed, altered), submit it myself."""
        if self._params is None or self.consensus.has_voted(round_, self.address):
            return
        asked = self._own_evaluation is not None
        own = self._evaluation(round_)
        if own is None:
            return
        message = decode_message(own.data)
        assert isinstance(message, EvaluationMessage)
        try:
            receipt = self.consensus.submit_scores(round_, self.address, message.scores, own.signature)
        except ContractRevert as exc:
            self._report(
                EvidenceKind.SERVER_SILENT,
                self.session.server,
                exc.tx_hash,
                own.digest(),
                None,
                f"the ballot was not counted and could not be submitted directly: {exc}",
            )
            return
        what = "relayed" if asked else "asked for"
        self._report(
            EvidenceKind.SERVER_SILENT,
            self.session.server,
            receipt.tx_hash,
            own.digest(),
            own.digest(),
            f"the server never {what} this ballot; the participant submitted it itself",
        )

    def after_election(self, round_: int) -> None:
        """Is the election tallied? Once every ballot is in or the ballot phase is over, anyone
        may tally, so a server that stalls cannot hold the election open: I tally myself."""
        election = self.consensus.election_of(round_)
        if election.tallied:
            return
        if election.ballots == self.session.n or self._now() > self.board.round_info(round_).ballot_deadline:
            with contextlib.suppress(ContractRevert):  # someone else tallied in between
                self.consensus.tally(round_, n=self.session.n)

    def after_model(self, round_: int) -> bool:
        """Is θ_r on the board, and is it the aggregate of the elected candidates? Returns whether
        it is posted; once its deadline has passed without it, accuse the server on-chain."""
        info = self.board.round_info(round_)
        if not info.model_posted:
            if info.opened_at and self._now() > info.model_deadline:
                tx: str | None
                try:
                    tx = self.board.accuse_missing_model(round_).tx_hash
                except ContractRevert as exc:
                    tx = exc.tx_hash
                self._report(
                    EvidenceKind.MODEL_NOT_POSTED,
                    self.session.server,
                    tx,
                    None,
                    None,
                    f"the model of round {round_} was not posted by its deadline {info.model_deadline}",
                )
            return False
        recorded = self.board.digest_of(round_, MessageKind.MODEL, self.session.server)
        updates = self._candidate_updates(round_)
        if self._params is None or updates is None:
            self._params = None  # wait for the delivered model, checked against the board
            return True
        expected = ModelMessage(
            round_, self.session.server, aggregate(self._params, updates, rule=self.settings.aggregation)
        )
        board = self._board_model
        if board is not None and board[0] == round_ - 1:
            # The provable check: the board's θ_{r-1} and the candidates' recorded updates must give
            # the board's θ_r (the same computation as above unless the server already cheated).
            same = np.array_equal(board[1], self._params)
            claimed = (
                expected
                if same
                else ModelMessage(
                    round_, self.session.server, aggregate(board[1], updates, rule=self.settings.aggregation)
                )
            )
            if claimed.digest() != recorded:
                own = {self.index: self._own_update} if self._own_update is not None else {}
                signed = {**self._invalid, **{j: s for j, (_, s) in self._verified.items()}, **own}
                self._report(
                    EvidenceKind.MODEL_NOT_AGGREGATED,
                    self.session.server,
                    None,
                    claimed.digest(),
                    recorded,
                    f"the model of round {round_} is not the aggregate of the candidates the consensus "
                    "contract elected",
                    proof={
                        "previous_model": board[2].to_dict(),
                        "updates": [signed[c].to_dict() for c in self.consensus.elected_of(round_)],
                    },
                )
        # Continue from the model SecCL's rules define, whatever the server did.
        self._params = expected.params
        if expected.digest() == recorded:
            self._board_model = (round_, expected.params, SignedMessage(expected.to_bytes(), b""))
        return True

    # ─────────────── checks against the chain ───────────────

    def _check_delivered_model(
        self, model_round: int, signed: SignedMessage, delivery: Delivery
    ) -> np.ndarray | None:
        """The delivered θ of ``model_round`` if it is the one the board records (else evidence)."""
        server = self.session.server
        recorded = self.board.digest_of(model_round, MessageKind.MODEL, server)
        signed_ok = delivery.signer(self.session.domain) == server and delivery.authors == (server,)
        if signed_ok and delivery.digests[0] != recorded and delivery.round == model_round:
            self._report(
                EvidenceKind.MODEL_MISMATCH,
                server,
                self._accuse(delivery, 0),
                delivery.digests[0],
                recorded,
                f"the server signed for a model of round {model_round} other than the one the board records",
                proof={"delivery": delivery.to_dict(), "position": 0},
            )
            return None
        if signed.digest() != recorded:
            if self._params is None:
                self._report(
                    EvidenceKind.UNSIGNED_DELIVERY,
                    server,
                    None,
                    signed.digest(),
                    recorded,
                    f"the model bytes of round {model_round} do not match the board",
                )
            return None
        try:
            message = decode_message(signed.data, dimension=self.session.dimension)
        except ProtocolError:
            return None
        return message.params if isinstance(message, ModelMessage) else None

    def _accuse(self, delivery: Delivery, position: int) -> str | None:
        """File the server's signed ``delivery`` as an on-chain accusation: the board compares it
        with its own record and, where they differ, records the server as caught. Returns the
        accusation's Tx-ID (None if the chain refused it, which the evidence then shows)."""
        try:
            return self.board.accuse_delivery(
                delivery.round,
                delivery.kind,
                delivery.recipient,
                delivery.authors,
                delivery.digests,
                position,
                delivery.signature,
            ).tx_hash
        except ContractRevert:
            return None

    def _check_receipt(self, receipt: Receipt, kind: MessageKind, own: SignedMessage) -> None:
        if receipt.signer(self.session.domain) != self.session.server or receipt.digest != own.digest():
            return  # not the server's word about this message: proves nothing either way
        if kind is MessageKind.UPDATE:
            record = self.board.record_in_transaction(receipt.tx_id) if receipt.tx_id else None
            holds = record is not None and (record.round, record.author, record.digest) == (
                receipt.round,
                self.address,
                own.digest(),
            )
            evidence = EvidenceKind.UPDATE_NOT_RECORDED
        else:
            ballot = self.consensus.ballot_in_transaction(receipt.tx_id) if receipt.tx_id else None
            holds = ballot is not None and (ballot.voter, ballot.digest) == (self.address, own.digest())
            evidence = EvidenceKind.BALLOT_NOT_COUNTED
        if not holds:
            self._report(
                evidence,
                self.address,
                receipt.tx_id,
                own.digest(),
                None,
                f"the server signed a receipt for this {kind.name.lower()} citing a transaction "
                "that does not record it",
                proof={"receipt": receipt.to_dict()},
            )

    def _decode_update(self, round_: int, author: str, signed: SignedMessage) -> SparseUpdate | None:
        """The update in ``author``'s recorded bytes, or None (with evidence against the author)."""
        try:
            message = decode_message(signed.data, **self.session.bounds())
            if not isinstance(message, UpdateMessage) or (message.round, message.author) != (round_, author):
                raise MalformedMessageError(f"the recorded bytes are not {author}'s update of round {round_}")
        except ProtocolError as exc:
            self._report(
                EvidenceKind.INVALID_MESSAGE,
                author,
                None,
                signed.digest(),
                signed.digest(),
                f"{type(exc).__name__}: {exc}",
                proof={"message": signed.to_dict()},
            )
            return None
        return message.update

    def _candidate_updates(self, model_round: int) -> list[SparseUpdate] | None:
        """The elected candidates' valid updates (the aggregate's inputs), or None if this
        participant does not hold them all (a withheld candidate, already reported)."""
        if model_round != self._round:
            return None
        candidates = self.consensus.elected_of(model_round)
        updates = {j: u for j, (u, _) in self._verified.items()}
        if self._own_sparse is not None:
            updates[self.index] = self._own_sparse
        valid = [c for c in candidates if c not in self._invalid]
        if any(c not in updates for c in valid):
            return None
        return [updates[c] for c in valid]

    def _report(
        self,
        kind: EvidenceKind,
        subject: str,
        tx_id: str | None,
        expected: bytes | None,
        recorded: bytes | str | None,
        detail: str,
        proof: dict | None = None,
    ) -> None:
        participants = self.session.participants
        self.evidence.append(
            Evidence(
                round=self._round,
                kind=kind,
                finder=self.address,
                subject=subject,
                tx_id=tx_id,
                expected_digest=hex_digest(expected),
                recorded_digest=recorded
                if isinstance(recorded, str) or recorded is None
                else hex_digest(recorded),
                detail=detail,
                proof=proof or {},
                finder_index=self.index,
                subject_index=participants.index(subject) if subject in participants else None,
            )
        )

    def _now(self) -> int:
        return int(self.board.w3.eth.get_block("latest")["timestamp"])

    def _seed_for(self, round_: int) -> int:
        material = f"{self.seed}/{self.index}/{round_}".encode()
        return int.from_bytes(hashlib.sha256(material).digest()[:4], "big")

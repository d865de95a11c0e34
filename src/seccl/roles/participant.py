"""The participant: trains, shares a sparse update, scores the others, and checks everything
the server hands it against the chain, over its own connection."""

from __future__ import annotations

import hashlib

import numpy as np
from eth_account.signers.local import LocalAccount

from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import BoardRecord, BulletinBoardClient, MessageKind
from seccl.chain.consensus import ConsensusClient
from seccl.chain.errors import ChainError
from seccl.learning.aggregation import aggregate
from seccl.learning.data import ParticipantData
from seccl.learning.evaluation import Evaluator
from seccl.learning.model import build_model
from seccl.learning.sparse import SparseUpdate, apply_update, delta, select_top_fraction
from seccl.learning.training import train_local
from seccl.protocol.envelope import SignedMessage, sign_message
from seccl.protocol.errors import ProtocolError
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
from seccl.roles.settings import LearningSettings, SessionInfo


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
        # Its own connection: a participant never learns chain facts through the server.
        w3 = backend.connect()
        self.board = BulletinBoardClient(w3, session.board)
        self.consensus = ConsensusClient(w3, session.consensus)
        self.evaluator = Evaluator(data.validation)
        self._model = build_model(seed)
        self.evidence: list[Evidence] = []
        self._params: np.ndarray | None = None  # the verified global model of this round
        self._verified: dict[int, SparseUpdate] = {}  # this round's updates that match the board
        self._own_update: SignedMessage | None = None
        self._own_sparse: SparseUpdate | None = None  # the update inside _own_update
        self._own_evaluation: SignedMessage | None = None
        self._round = 0

    # ─────────────── dispatch ───────────────

    def handle(self, request: Request) -> Reply:
        """Answer one request of the server (the transport calls this)."""
        before = len(self.evidence)
        message: SignedMessage | None = None
        if isinstance(request, TrainRequest):
            message = self._on_train(request)
        elif isinstance(request, EvaluateRequest):
            message = self._on_evaluate(request)
        elif isinstance(request, BallotReceipt):
            self._on_ballot_receipt(request)
        elif isinstance(request, FinalModelRequest):
            self._check_model(request.round, request.model, request.model_tx_id)
        else:  # pragma: no cover - the type union is closed
            raise TypeError(f"unknown request {type(request).__name__}")
        return Reply(message, tuple(self.evidence[before:]))

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
        """Macro-F1 of ``params + Δ_j`` on the private validation set, by participant index;
        0 for itself and for anyone whose update did not verify."""
        scores = [0.0] * self.session.n
        for j, update in updates.items():
            scores[j] = self.evaluator.macro_f1(apply_update(params, update))
        return scores

    # ─────────────── the round ───────────────

    def _on_train(self, request: TrainRequest) -> SignedMessage | None:
        params = self._check_model(request.round - 1, request.model, request.model_tx_id)
        self._round = request.round
        self._verified = {}
        self._own_update = self._own_evaluation = None
        self._own_sparse = None
        self._params = params
        if params is None:
            return None  # no model that matches the chain: sit this round out (the evidence says why)
        local = self.local_model(params, request.round)
        update = self.make_update(params, local, request.round)
        signed = sign_message(
            UpdateMessage(request.round, self.address, update), self.account, self.session.domain
        )
        self._own_update, self._own_sparse = signed, update
        return signed

    def _on_evaluate(self, request: EvaluateRequest) -> SignedMessage | None:
        round_ = request.round
        if self._own_update is None or self._params is None:
            return None  # sitting this round out
        self._check_own_record(round_, MessageKind.UPDATE, self._own_update, request.own_tx_id)
        delivered = {d.author: d for d in request.updates}
        for j, author in enumerate(self.session.participants):
            if j == self.index:
                continue
            item = delivered.get(author)
            if item is None:
                recorded = self.board.digest_of(round_, MessageKind.UPDATE, author)
                if recorded is not None:
                    self._report(
                        EvidenceKind.UPDATE_WITHHELD,
                        author,
                        None,
                        None,
                        recorded,
                        "the board records this update but the server did not deliver it",
                    )
                continue
            update = self._verify_delivered(round_, author, item.signed, item.tx_id)
            if update is not None:
                self._verified[j] = update
        scores = self.score_updates(round_, self._params, dict(self._verified))
        scores[self.index] = 0.0
        message = EvaluationMessage(round_, self.address, tuple(score_to_ppm(s) for s in scores))
        signed = sign_message(message, self.account, self.session.domain)
        self._own_evaluation = signed
        return signed

    def _on_ballot_receipt(self, receipt: BallotReceipt) -> None:
        if self._own_evaluation is None:
            return
        self._check_own_record(receipt.round, MessageKind.EVALUATION, self._own_evaluation, receipt.tx_id)
        # The contract counts a ballot only under the voter's own signature of its digest, so
        # "counted" (an O(1) view) proves the counted scores are exactly the signed ones; the
        # relay's receipt, when given, must show that same digest.
        own = self._own_evaluation.digest()
        counted = self.consensus.has_voted(receipt.round, self.address)
        ballot = (
            self.consensus.ballot_in_transaction(receipt.consensus_tx_id) if receipt.consensus_tx_id else None
        )
        shown = ballot.digest if ballot and ballot.voter == self.address else None
        if not counted or shown != own:
            self._report(
                EvidenceKind.BALLOT_NOT_COUNTED,
                self.address,
                receipt.consensus_tx_id,
                own,
                shown,
                "the consensus contract did not count this participant's signed scores",
            )

    # ─────────────── checks against the chain ───────────────

    def _check_model(self, model_round: int, signed: SignedMessage, tx_id: str) -> np.ndarray | None:
        """The global model of ``model_round`` to continue from, after checking it: it must hash
        to the board's record, and that record must be the aggregate of the elected candidates
        (recomputed here from the verified updates). None when no model can be trusted."""
        server = self.session.server
        recorded = self.board.digest_of(model_round, MessageKind.MODEL, server)
        by_tx = self._record_digest(tx_id, model_round, MessageKind.MODEL, server)
        expected = self._recompute_model(model_round)
        delivered: np.ndarray | None = None
        if signed.digest() != recorded or by_tx != recorded:
            self._report(
                EvidenceKind.MODEL_MISMATCH,
                server,
                tx_id,
                signed.digest(),
                recorded,
                f"the model of round {model_round} the server sent does not match the board",
            )
        else:
            delivered = self._decode_model(signed)
        if expected is not None:
            expected_digest = ModelMessage(model_round, server, expected).digest()
            if expected_digest != recorded:
                self._report(
                    EvidenceKind.MODEL_NOT_AGGREGATED,
                    server,
                    tx_id,
                    expected_digest,
                    recorded,
                    f"the model of round {model_round} is not the aggregate of the candidates "
                    "the consensus contract elected",
                )
            # Continue from the model SecCL's rules define, whatever the server did.
            return expected
        return delivered

    def _recompute_model(self, model_round: int) -> np.ndarray | None:
        """θ_r = aggregate(θ_{r-1}, candidates' updates), if this participant holds them all."""
        if model_round < 1 or self._params is None or model_round != self._round:
            return None
        try:
            candidates = self.consensus.elected_of(model_round)
        except ChainError:
            return None
        own = self._own_sparse
        updates = {**self._verified, self.index: own} if own is not None else dict(self._verified)
        if any(c not in updates for c in candidates):
            return None  # a withheld candidate: already reported, cannot recompute
        return aggregate(self._params, [updates[c] for c in candidates], rule=self.settings.aggregation)

    def _verify_delivered(
        self, round_: int, author: str, signed: SignedMessage, tx_id: str
    ) -> SparseUpdate | None:
        recorded = self._record_digest(tx_id, round_, MessageKind.UPDATE, author)
        if recorded is None:
            recorded = self.board.digest_of(round_, MessageKind.UPDATE, author)
        if signed.digest() != recorded:
            self._report(
                EvidenceKind.DELIVERED_UPDATE_MISMATCH,
                author,
                tx_id,
                signed.digest(),
                recorded,
                "the delivered update does not hash to the digest its author signed on the board",
            )
            return None
        problem = ""
        try:
            message = decode_message(signed.data, dimension=self.session.dimension)
        except ProtocolError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if not isinstance(message, UpdateMessage) or (message.round, message.author) != (round_, author):
                problem = "the delivered message is not this author's update of this round"
        if problem:
            self._report(EvidenceKind.INVALID_MESSAGE, author, tx_id, signed.digest(), recorded, problem)
            return None
        assert isinstance(message, UpdateMessage)
        return message.update

    def _check_own_record(
        self, round_: int, kind: MessageKind, own: SignedMessage, tx_id: str | None
    ) -> None:
        record = self.board.record_in_transaction(tx_id) if tx_id else None
        if record != BoardRecord(round_, kind, self.address, own.digest()):
            missing = (
                EvidenceKind.UPDATE_NOT_RECORDED
                if kind is MessageKind.UPDATE
                else EvidenceKind.EVALUATION_NOT_RECORDED
            )
            # Quote what the given Tx-ID really records (someone else's post, or nothing).
            recorded = record.digest if record else None
            self._report(
                missing,
                self.address,
                tx_id,
                own.digest(),
                recorded,
                f"this participant's {kind.name.lower()} is not on the board under the Tx-ID "
                "the server returned",
            )

    def _record_digest(self, tx_id: str | None, round_: int, kind: MessageKind, author: str) -> bytes | None:
        """The digest transaction ``tx_id`` recorded, if it recorded this round/kind/author."""
        if not tx_id:
            return None
        record = self.board.record_in_transaction(tx_id)
        if record is None or (record.round, record.kind, record.author) != (round_, kind, author):
            return None
        return record.digest

    def _decode_model(self, signed: SignedMessage) -> np.ndarray | None:
        try:
            message = decode_message(signed.data, dimension=self.session.dimension)
        except ProtocolError:
            return None
        return message.params if isinstance(message, ModelMessage) else None

    def _report(
        self,
        kind: EvidenceKind,
        subject: str,
        tx_id: str | None,
        expected: bytes | None,
        recorded: bytes | None,
        detail: str,
    ) -> None:
        self.evidence.append(
            Evidence(
                round=self._round,
                kind=kind,
                finder=self.address,
                subject=subject,
                tx_id=tx_id,
                expected_digest=hex_digest(expected),
                recorded_digest=hex_digest(recorded),
                detail=detail,
            )
        )

    def _seed_for(self, round_: int) -> int:
        material = f"{self.seed}/{self.index}/{round_}".encode()
        return int.from_bytes(hashlib.sha256(material).digest()[:4], "big")

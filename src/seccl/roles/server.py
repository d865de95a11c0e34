"""The parameter server: relays every message to the chain, hands back Tx-IDs, and aggregates
only the candidates the consensus contract elected."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from eth_account.signers.local import LocalAccount

from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from seccl.chain.consensus import ConsensusClient
from seccl.chain.errors import ConsensusElectionStillOpen, ContractRevert
from seccl.chain.transactions import TxReceipt
from seccl.election import voter_ranking
from seccl.learning.aggregation import aggregate
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.envelope import SignedMessage, open_message, sign_message
from seccl.protocol.errors import (
    MalformedMessageError,
    ProtocolError,
    UnknownParticipantError,
    WrongRoundError,
)
from seccl.protocol.evidence import Evidence
from seccl.protocol.instructions import (
    BallotReceipt,
    DeliveredUpdate,
    EvaluateRequest,
    FinalModelRequest,
    Reply,
    Request,
    TrainRequest,
)
from seccl.protocol.messages import EvaluationMessage, Message, ModelMessage, UpdateMessage
from seccl.protocol.store import MessageStore, StoredMessage
from seccl.roles.settings import LearningSettings, SessionInfo

SendAndReceive = Callable[[Mapping[int, Request]], dict[int, Reply]]


@dataclass(frozen=True)
class Rejection:
    """A message the server refused, and the typed error that says why."""

    round: int
    author: str
    error: str
    detail: str


@dataclass(frozen=True)
class TxEntry:
    """One transaction the server sent, for the run's records."""

    round: int
    action: str
    subject: str
    tx_id: str
    gas: int


@dataclass
class RoundOutcome:
    """What one round produced: the candidates, the new model, the chain cost, the findings."""

    round: int
    candidates: tuple[int, ...]
    params: np.ndarray
    gas: int
    transactions: int
    evidence: list[Evidence] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    ballots: int = 0


class ParameterServer:
    """An honest server. Adversarial servers override the ``deliver_*``, ``relay_*`` and
    :meth:`aggregate_model` hooks; the participants' checks catch them."""

    election_window = 3600  # seconds of chain time a round's election stays open

    def __init__(
        self,
        account: LocalAccount,
        board: BulletinBoardClient,
        consensus: ConsensusClient,
        session: SessionInfo,
        settings: LearningSettings,
        initial_params: np.ndarray,
    ):
        self.account = account
        self.board = board
        self.consensus = consensus
        self.session = session
        self.settings = settings
        self.params = np.asarray(initial_params, dtype=np.float32).copy()
        self.store = MessageStore()
        self.transactions: list[TxEntry] = []
        self.rejections: list[Rejection] = []
        self.model_signed: SignedMessage | None = None
        self.model_tx_id = ""
        self._round_gas = 0
        self._round_txs = 0
        self.wait_until: Callable[[int], None] = self._sleep_until

    def _sleep_until(self, timestamp: int) -> None:
        """Wait until the chain's clock reaches ``timestamp`` (a deployment's real wait)."""
        while int(self.board.w3.eth.get_block("latest")["timestamp"]) < timestamp:
            time.sleep(1.0)

    # ─────────────── the session ───────────────

    def publish_initial_model(self) -> None:
        """Post θ_0 in round 0, which the board opened at deployment."""
        self._publish_model(0, self.params)

    def run_round(self, round_: int, send_and_receive: SendAndReceive) -> RoundOutcome:
        """Carry out round ``round_`` of DESIGN.md, talking to participants through the transport."""
        self._round_gas = self._round_txs = 0
        evidence: list[Evidence] = []
        rejected_before = len(self.rejections)
        self._record(round_, "openRound", "server", self.board.open_round(round_))
        now = int(self.board.w3.eth.get_block("latest")["timestamp"])
        self._record(
            round_,
            "openElection",
            "server",
            self.consensus.open_election(round_, now + self.election_window),
        )
        everyone = range(self.session.n)

        # 1-3. Everyone trains from θ_{r-1}; each update is checked, stored and posted.
        replies = send_and_receive({i: self.train_request(i, round_) for i in everyone})
        evidence += _collect(replies)
        for i, reply in sorted(replies.items()):
            if reply.message is not None:
                self.accept(round_, i, reply.message, MessageKind.UPDATE)

        # 4-5. Everyone scores the others' updates and signs its scores.
        updates = self.store.of_round(round_, MessageKind.UPDATE)
        replies = send_and_receive({i: self.evaluate_request(i, round_, updates) for i in everyone})
        evidence += _collect(replies)
        receipts: dict[int, Request] = {}
        for i, reply in sorted(replies.items()):
            stored = self.accept(round_, i, reply.message, MessageKind.EVALUATION) if reply.message else None
            relayed = self._relay_to_consensus(round_, i, stored) if stored is not None else None
            receipts[i] = BallotReceipt(round_, stored.tx_id if stored else None, relayed)
        evidence += _collect(send_and_receive(receipts))

        # 6. The contract elects; 7. the server aggregates the candidates alone and posts θ_r.
        try:
            election = self.consensus.tally(round_, n=self.session.n)
        except ConsensusElectionStillOpen as missing:
            # A ballot is missing: the contract elects from those it has once the deadline passes.
            self.wait_until(int(missing.fields["deadline"]) + 1)
            election = self.consensus.tally(round_, n=self.session.n)
        assert election.receipt is not None  # this client sent the tally
        self._record(round_, "tally", "server", election.receipt)
        self.params = self.aggregate_model(round_, election.candidates)
        self._publish_model(round_, self.params)
        return RoundOutcome(
            round=round_,
            candidates=election.candidates,
            params=self.params.copy(),
            gas=self._round_gas,
            transactions=self._round_txs,
            evidence=evidence,
            rejections=self.rejections[rejected_before:],
            ballots=election.ballots,
        )

    def finish(self, round_: int, send_and_receive: SendAndReceive) -> list[Evidence]:
        """Hand everyone the final model so they can check it; returns what they found."""
        return _collect(
            send_and_receive(
                {i: FinalModelRequest(round_, *self.deliver_model(i)) for i in range(self.session.n)}
            )
        )

    # ─────────────── requests (hooks for adversarial servers) ───────────────

    def train_request(self, i: int, round_: int) -> TrainRequest:
        return TrainRequest(round_, *self.deliver_model(i))

    def deliver_model(self, i: int) -> tuple[SignedMessage, str]:
        """The current model (and its Tx-ID) as handed to participant ``i``."""
        assert self.model_signed is not None
        return self.model_signed, self.model_tx_id

    def evaluate_request(self, i: int, round_: int, updates: list[StoredMessage]) -> EvaluateRequest:
        own = self.store.get(round_, MessageKind.UPDATE, self.session.participants[i])
        return EvaluateRequest(round_, own.tx_id if own else None, tuple(self.deliver_updates(i, updates)))

    def deliver_updates(self, i: int, updates: list[StoredMessage]) -> list[DeliveredUpdate]:
        """The others' updates as handed to participant ``i``."""
        me = self.session.participants[i]
        return [DeliveredUpdate(u.author, u.signed, u.tx_id) for u in updates if u.author != me]

    def relay_update(self, round_: int, author: str, signed: SignedMessage) -> TxReceipt | None:
        """Post an accepted message's digest on the board; None means it was not posted."""
        kind = MessageKind.UPDATE
        return self.board.post(round_, kind, author, signed.digest(), signed.signature)

    def relay_scores(self, round_: int, author: str, scores: tuple[int, ...], signature: bytes) -> TxReceipt:
        """Submit a voter's signed scores, with its top-M ranking, to the consensus contract."""
        index = self.session.participants.index(author)
        ranking = voter_ranking(scores, index, self.session.candidates)
        return self.consensus.submit_scores(round_, author, scores, signature, ranking=ranking)

    def aggregate_model(self, round_: int, candidates: tuple[int, ...]) -> np.ndarray:
        """θ_r from θ_{r-1} and the candidates' updates alone (deterministic)."""
        updates = [self.update_of(round_, c) for c in candidates]
        return aggregate(self.params, [u for u in updates if u is not None], rule=self.settings.aggregation)

    def model_to_publish(self, round_: int, params: np.ndarray) -> np.ndarray:
        return params

    # ─────────────── internals ───────────────

    def accept(self, round_: int, i: int, signed: SignedMessage, kind: MessageKind) -> StoredMessage | None:
        """Check a participant's message; store and post it, or record why it was refused."""
        author = self.session.participants[i]
        try:
            message = open_message(
                signed,
                self.session.domain,
                dimension=self.session.dimension,
                participants=self.session.n,
            )
            self._validate(round_, author, kind, message)
            self.store.check_new(round_, kind, author)
        except ProtocolError as exc:
            self.rejections.append(Rejection(round_, author, type(exc).__name__, str(exc)))
            return None
        if kind is MessageKind.UPDATE:
            receipt = self.relay_update(round_, author, signed)
        else:
            receipt = self.board.post(round_, kind, author, signed.digest(), signed.signature)
        if receipt is None:
            return None
        self._record(round_, f"post {kind.name.lower()}", author, receipt)
        stored = StoredMessage(message, signed, receipt.tx_hash)
        self.store.add(stored)
        return stored

    def update_of(self, round_: int, index: int) -> SparseUpdate | None:
        stored = self.store.get(round_, MessageKind.UPDATE, self.session.participants[index])
        return stored.message.update if stored and isinstance(stored.message, UpdateMessage) else None

    def _relay_to_consensus(self, round_: int, i: int, stored: StoredMessage) -> str | None:
        message = stored.message
        assert isinstance(message, EvaluationMessage)
        try:
            receipt = self.relay_scores(round_, stored.author, message.scores, stored.signed.signature)
        except ContractRevert as exc:
            # The failed relay is itself on-chain; the voter will find its ballot missing.
            self.rejections.append(Rejection(round_, stored.author, type(exc).__name__, str(exc)))
            return None
        self._record(round_, "submitScores", stored.author, receipt)
        return receipt.tx_hash

    def _validate(self, round_: int, author: str, kind: MessageKind, message: Message) -> None:
        if message.author not in self.session.participants:
            raise UnknownParticipantError(f"{message.author} is not a participant of this session")
        if message.kind is not kind:
            raise MalformedMessageError(
                f"expected a {kind.name.lower()} message, got a {message.kind.name.lower()} message"
            )
        if message.author != author:
            raise UnknownParticipantError(f"participant {author} sent a message authored by {message.author}")
        if message.round != round_:
            raise WrongRoundError(f"message of round {message.round} received in round {round_}")

    def _publish_model(self, round_: int, params: np.ndarray) -> None:
        published = self.model_to_publish(round_, params)
        message = ModelMessage(round_, self.account.address, published)
        self.model_signed = sign_message(message, self.account, self.session.domain)
        receipt = self.board.post(
            round_,
            MessageKind.MODEL,
            self.account.address,
            self.model_signed.digest(),
            self.model_signed.signature,
        )
        self.model_tx_id = receipt.tx_hash
        self._record(round_, "post model", self.account.address, receipt)

    def _record(self, round_: int, action: str, subject: str, receipt: TxReceipt) -> None:
        self.transactions.append(TxEntry(round_, action, subject, receipt.tx_hash, receipt.gas_used))
        self._round_gas += receipt.gas_used
        self._round_txs += 1


def _collect(replies: Mapping[int, Reply]) -> list[Evidence]:
    return [e for _, reply in sorted(replies.items()) for e in reply.evidence]

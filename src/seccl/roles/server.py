"""The parameter server: relays commitments and ballots to the chain, signs what it delivers and
what it takes, and aggregates only the candidates the consensus contract elected, from the
updates the bulletin board revealed."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from eth_account.signers.local import LocalAccount

from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from seccl.chain.consensus import ElectionClient, ElectionRecord
from seccl.chain.errors import ConsensusElectionClosed, ContractRevert
from seccl.chain.transactions import TxReceipt
from seccl.election import ABSTAIN, voter_ranking
from seccl.election.gram_gate import DROPPED, REJECTED
from seccl.learning.aggregation import aggregate
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.eligible import eligible_updates
from seccl.protocol.envelope import Commitment, SignedMessage, open_message, sign_message
from seccl.protocol.errors import (
    InvalidSignatureError,
    MalformedMessageError,
    ProtocolError,
    UnknownParticipantError,
    WrongRoundError,
)
from seccl.protocol.instructions import (
    BallotReceipt,
    EvaluateRequest,
    FinalModelRequest,
    Reply,
    Request,
    RevealRequest,
    TrainRequest,
)
from seccl.protocol.messages import EvaluationMessage, Message, ModelMessage
from seccl.protocol.statements import Delivery, Receipt
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
    tx_id: str | None = None


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
    """What one round produced: the candidates, the new model, the chain cost, the refusals."""

    round: int
    candidates: tuple[int, ...]
    params: np.ndarray
    gas: int
    transactions: int
    rejections: list[Rejection] = field(default_factory=list)
    ballots: int = 0
    model_posted: bool = True


class ParameterServer:
    """An honest server. Adversarial servers override the ``contacts``, ``deliver_*``,
    ``relay_*``, ``aggregate_model`` and ``post_model`` hooks; the participants' own checks
    and the contracts stop or catch them."""

    def __init__(
        self,
        account: LocalAccount,
        board: BulletinBoardClient,
        consensus: ElectionClient,
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
        self.receipts: dict[tuple[int, str], Receipt] = {}
        self._revealed: tuple[int, dict[int, SparseUpdate]] = (-1, {})
        self.model_signed = sign_message(
            ModelMessage(0, account.address, self.params), account, session.domain
        )
        self.wait_until: Callable[[int], None] = self._sleep_until
        self.wait_while: Callable[[Callable[[], bool], int], None] = self._poll_while
        self._round_gas = self._round_txs = 0
        self._rejected_before = 0
        # What the chain already records for the round being run: empty in a normal round; after
        # a crash, the posts made before it, which the replayed round must not make again.
        self._on_board: dict[str, bytes] = {}
        self._voted: set[str] = set()

    def _sleep_until(self, timestamp: int) -> None:
        """Wait until the chain's clock passes ``timestamp`` (a deployment's real wait)."""
        while self._now() <= timestamp:
            time.sleep(1.0)

    def _poll_while(self, busy: Callable[[], bool], timestamp: int) -> None:
        """Wait while ``busy()`` holds, but not past the chain's ``timestamp`` (a deployment's real
        wait: the participants act on the chain meanwhile)."""
        while busy() and self._now() <= timestamp:
            time.sleep(1.0)

    def _now(self) -> int:
        return int(self.board.w3.eth.get_block("latest")["timestamp"])

    # ─────────────── the phases of a round (the runtime calls them in order) ───────────────

    def train_phase(self, round_: int, send_and_receive: SendAndReceive) -> None:
        """1-3. Hand out θ_{r-1}; check and post the commitment every participant sends back."""
        self._round_gas = self._round_txs = 0
        self._rejected_before = len(self.rejections)
        self._on_board = {}
        if self.board.round_info(round_).updates:
            recorded = self.board.updates_of(round_)
            self._on_board = {a: d for a, d in zip(self.session.participants, recorded, strict=True) if d}
        asked = [i for i in range(self.session.n) if self.contacts(i, round_, "train")]
        replies = send_and_receive(
            {i: TrainRequest(round_, *self.deliver_model(i, round_ - 1)) for i in asked}
        )
        for i, reply in sorted(replies.items()):
            if reply.commitment is not None:
                self.accept_commitment(round_, i, reply.commitment)

    def evaluate_phase(self, round_: int, send_and_receive: SendAndReceive) -> None:
        """4-5. Once the reveals have closed, ask everyone to score the revealed updates (each reads
        them from the board itself); relay the ballots."""
        n, info = self.session.n, self.board.round_info(round_)
        if not info.commitments_closed(n, self._now()):
            self.wait_until(info.update_deadline)
        # Each participant reveals its own update once the commitments close (prompted here, or on
        # its own): wait for the last reveal, or for the reveal deadline (an author that does not
        # reveal is not eligible).
        send_and_receive({i: RevealRequest(round_) for i in range(n) if self.contacts(i, round_, "reveal")})
        self.wait_while(
            lambda: not self.board.round_info(round_).reveals_closed(n, self._now()), info.reveal_deadline
        )
        requests: dict[int, Request] = {}
        for i in range(self.session.n):
            if self.contacts(i, round_, "evaluate"):
                requests[i] = EvaluateRequest(round_, self.own_receipt(i, round_))
        replies = send_and_receive(requests)
        self._voted = set()
        if self.consensus.election_of(round_).ballots:
            self._voted = {a for a in self.session.participants if self.consensus.has_voted(round_, a)}
        # Read after the replies: a voter may have proven an update invalid meanwhile.
        eligible = list(self.board.round_info(round_).eligible)
        receipts: dict[int, Request] = {}
        for i, reply in sorted(replies.items()):
            stored = self.accept(round_, i, reply.message, MessageKind.EVALUATION) if reply.message else None
            receipt = self._relay_ballot(round_, stored, eligible) if stored is not None else None
            if self.contacts(i, round_, "receipt"):
                receipts[i] = BallotReceipt(round_, receipt)
        send_and_receive(receipts)

    def close_election(self, round_: int) -> ElectionRecord | None:
        """6. Tally once every ballot is in or the ballot phase has ended; read the result when
        someone else tallied first."""
        if not self.consensus.is_tallied(round_):
            if self.consensus.election_of(round_).ballots < self.session.n:
                self.wait_until(self.board.round_info(round_).ballot_deadline)
            try:
                election = self.consensus.tally(round_, n=self.session.n)
                assert election.receipt is not None  # this client sent the tally
                self._record(round_, "tally", "server", election.receipt)
                return election
            except ConsensusElectionClosed:
                pass  # a participant tallied in between: read its result
        record = self.consensus.election_record(round_)
        assert record is not None
        return record

    def publish_phase(self, round_: int, election: ElectionRecord | None = None) -> RoundOutcome:
        """7. θ_r from the candidates' updates alone, signed and posted; opens round r+1."""
        election = election or self.consensus.election_record(round_)
        assert election is not None, "the runtime publishes only after the election is tallied"
        self.params = self.aggregate_model(round_, election.candidates)
        posted = self._model_on_board(round_, self.params) or self.post_model(round_, self.params)
        return RoundOutcome(
            round=round_,
            candidates=election.candidates,
            params=self.params.copy(),
            gas=self._round_gas,
            transactions=self._round_txs,
            rejections=self.rejections[self._rejected_before :],
            ballots=election.ballots,
            model_posted=posted,
        )

    def finish(self, round_: int, send_and_receive: SendAndReceive) -> None:
        """Hand everyone the final model so they can check it."""
        send_and_receive(
            {i: FinalModelRequest(round_, *self.deliver_model(i, round_)) for i in range(self.session.n)}
        )

    # ─────────────── hooks (adversarial servers override these) ───────────────

    def contacts(self, i: int, round_: int, phase: str) -> bool:
        """Whether the server talks to participant ``i`` in ``phase`` of ``round_``."""
        return True

    def own_receipt(self, i: int, round_: int) -> Receipt | None:
        """The signed receipt for participant ``i``'s own update of ``round_``, if it took one."""
        return self.receipts.get((round_, self.session.participants[i]))

    def deliver_model(self, i: int, model_round: int) -> tuple[SignedMessage, Delivery]:
        """The model of ``model_round`` as handed to participant ``i``, with the signed delivery."""
        signed = self.model_signed
        return signed, self._delivery(model_round, MessageKind.MODEL, i, [self.account.address], [signed])

    def relay_update(self, round_: int, author: str, commitment: Commitment) -> TxReceipt | None:
        """Post an accepted commitment on the board; None means it was not posted."""
        return self.board.post_update(round_, author, commitment.digest, commitment.signature)

    def relay_scores(
        self,
        round_: int,
        author: str,
        scores: tuple[int, ...],
        signature: bytes,
        ranking: tuple[int, ...] | None,
    ) -> TxReceipt | None:
        """Submit a voter's signed scores, with its top-M ranking, to the consensus contract."""
        return self.consensus.submit_scores(round_, author, scores, signature, ranking=ranking)

    def aggregate_model(self, round_: int, candidates: tuple[int, ...]) -> np.ndarray:
        """θ_r from θ_{r-1} and the candidates' revealed updates alone (deterministic)."""
        updates = [self.update_of(round_, c) for c in candidates]
        return aggregate(self.params, [u for u in updates if u is not None], rule=self.settings.aggregation)

    def model_to_publish(self, round_: int, params: np.ndarray) -> np.ndarray:
        return params

    def post_model(self, round_: int, params: np.ndarray) -> bool:
        """Sign and post θ_r; returns whether it is on the board."""
        message = ModelMessage(round_, self.account.address, self.model_to_publish(round_, params))
        self.model_signed = sign_message(message, self.account, self.session.domain)
        receipt = self.board.post_model(round_, self.model_signed.digest(), self.model_signed.signature)
        self._record(round_, "post model", self.account.address, receipt)
        return True

    # ─────────────── internals ───────────────

    def _model_on_board(self, round_: int, params: np.ndarray) -> bool:
        """Whether the board already records this θ_r (posted before a crash): then it is signed
        again (the same bytes give the same signature) but not posted twice."""
        if not self.board.round_info(round_).model_posted:
            return False
        message = ModelMessage(round_, self.account.address, self.model_to_publish(round_, params))
        signed = sign_message(message, self.account, self.session.domain)
        if self.board.digest_of(round_, MessageKind.MODEL, self.account.address) != signed.digest():
            return False
        self.model_signed = signed
        return True

    def _recorded_tx(self, round_: int, author: str, digest: bytes) -> str:
        """The Tx-ID that recorded ``author``'s update ``digest`` of ``round_`` (read from the
        board's events; only needed for a post made before a crash)."""
        for record, tx in self.board.records(round_=round_):
            if record.author == author and record.digest == digest and record.kind is MessageKind.UPDATE:
                return tx
        return ""

    def accept_commitment(self, round_: int, i: int, commitment: Commitment) -> None:
        """Check participant ``i``'s commitment (its round, its author, its signature), post it
        and sign a receipt, or record why it was refused."""
        author = self.session.participants[i]
        try:
            if (commitment.round, commitment.author) != (round_, author):
                raise WrongRoundError(
                    f"a commitment of round {commitment.round} by {commitment.author} answered the request "
                    f"of round {round_} to {author}"
                )
            signer = commitment.signer(self.session.domain)
            if signer != author:
                raise InvalidSignatureError(f"the commitment's signature recovers to {signer}, not {author}")
        except ProtocolError as exc:
            self.rejections.append(Rejection(round_, author, type(exc).__name__, str(exc)))
            return
        if self._on_board.get(author) == commitment.digest:
            # Posted before a crash (or by its author): take the record's Tx-ID instead of posting it twice.
            tx_id = self._recorded_tx(round_, author, commitment.digest)
        else:
            try:
                receipt = self.relay_update(round_, author, commitment)
            except ContractRevert as exc:
                self.rejections.append(Rejection(round_, author, type(exc).__name__, str(exc), exc.tx_hash))
                return
            if receipt is None:
                return
            self._record(round_, "post update", author, receipt)
            tx_id = receipt.tx_hash
        self.receipts[(round_, author)] = Receipt.sign(
            self.account, self.session.domain, round_, MessageKind.UPDATE, author, commitment.digest, tx_id
        )

    def accept(self, round_: int, i: int, signed: SignedMessage, kind: MessageKind) -> StoredMessage | None:
        """Check a participant's ballot; store it, or record why it was refused."""
        author = self.session.participants[i]
        try:
            message = open_message(signed, self.session.domain, **self.session.bounds())
            self._validate(round_, author, kind, message)
            self.store.check_new(round_, kind, author)
        except ProtocolError as exc:
            self.rejections.append(Rejection(round_, author, type(exc).__name__, str(exc)))
            return None
        stored = StoredMessage(message, signed, "")
        self.store.add(stored)
        return stored

    def update_of(self, round_: int, index: int) -> SparseUpdate | None:
        """Participant ``index``'s update of ``round_`` as the board revealed it, if it is valid."""
        if self._revealed[0] != round_:
            self._revealed = (round_, eligible_updates(self.session, self.board, round_))
        return self._revealed[1].get(index)

    def _relay_ballot(self, round_: int, stored: StoredMessage, eligible: list[int]) -> Receipt | None:
        message = stored.message
        assert isinstance(message, EvaluationMessage)
        index = self.session.participants.index(stored.author)
        ranking = None
        if self.session.election == "borda":  # gram-gate ballots carry no ranking
            ranking = voter_ranking(
                message.scores,
                index,
                self.session.candidates,
                tie_seed=self.board.tie_seed_of(round_),
                round_=round_,
                eligible=eligible,
            )
        if stored.author in self._voted:
            # Counted before a crash: its receipt cites the transaction that counted it.
            counted = self.consensus.ballot_of(round_, stored.author)
            if counted is None or counted.digest != stored.signed.digest():
                return None  # another ballot of this voter counts; the voter's own check says so
            return self._ballot_receipt(round_, stored, counted.tx_hash)
        try:
            receipt = self.relay_scores(
                round_, stored.author, message.scores, stored.signed.signature, ranking
            )
        except ContractRevert as exc:
            # The failed relay is itself on-chain; the voter finds its ballot missing and votes itself.
            self.rejections.append(
                Rejection(round_, stored.author, type(exc).__name__, str(exc), exc.tx_hash)
            )
            return None
        if receipt is None:
            return None
        self._record(round_, "submitScores", stored.author, receipt)
        return self._ballot_receipt(round_, stored, receipt.tx_hash)

    def _ballot_receipt(self, round_: int, stored: StoredMessage, tx_id: str) -> Receipt:
        """The server's signed word that ``stored`` was counted in transaction ``tx_id``."""
        return Receipt.sign(
            self.account,
            self.session.domain,
            round_,
            MessageKind.EVALUATION,
            stored.author,
            stored.signed.digest(),
            tx_id,
        )

    def _delivery(
        self, round_: int, kind: MessageKind, i: int, authors: list[str], signed: list[SignedMessage]
    ) -> Delivery:
        return Delivery.sign(
            self.account,
            self.session.domain,
            round_,
            kind,
            self.session.participants[i],
            authors,
            [s.digest() for s in signed],
        )

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
        own_marks = (ABSTAIN, DROPPED, REJECTED) if self.session.election == "gram-gate" else (ABSTAIN,)
        if (
            isinstance(message, EvaluationMessage)
            and message.scores[self.session.participants.index(author)] not in own_marks
        ):
            # The contract would refuse it (a self-score): refuse it here, before it is stored.
            raise MalformedMessageError(
                "an evaluation must abstain on its own author (its own entry is not ABSTAIN)"
            )

    def _record(self, round_: int, action: str, subject: str, receipt: TxReceipt) -> None:
        self.transactions.append(TxEntry(round_, action, subject, receipt.tx_hash, receipt.gas_used))
        self._round_gas += receipt.gas_used
        self._round_txs += 1

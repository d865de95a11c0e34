"""A participant's identity, connections and state: what it trusts, what it signed, what it found."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from typing import Protocol

import numpy as np
from eth_account.signers.local import LocalAccount

from seccl.chain.accounts import signing_connection
from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from seccl.chain.session import CONSENSUS_CLIENTS, verify_session
from seccl.election.gram_gate import GateView
from seccl.learning.data import ParticipantData
from seccl.learning.evaluation import Evaluator
from seccl.learning.model import build_model, get_flat_params
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.envelope import SignedMessage, open_message, sign_message
from seccl.protocol.errors import ProtocolError
from seccl.protocol.evidence import Evidence, EvidenceKind, hex_digest
from seccl.protocol.messages import EvaluationMessage, ModelMessage, UpdateMessage
from seccl.roles.settings import LearningSettings, SessionInfo


def initial_model_digest(seed: int, server: str) -> bytes:
    """The digest of θ_0 that the session's public seed and architecture define."""
    return ModelMessage(0, server, get_flat_params(build_model(seed))).digest()


class Journal(Protocol):
    """Where a participant keeps what it signed before the message leaves it (its write-ahead
    log), so that after a crash it sends the same message again instead of signing another."""

    def record(self, round_: int, kind: MessageKind, signed: SignedMessage) -> None: ...

    def recall(self, round_: int, kind: MessageKind, author: str) -> list[SignedMessage]: ...


class ParticipantState:
    """What every participant holds, honest or not: its key, its own connection to the chain,
    the model it trusts, its journal and its evidence. :class:`~seccl.roles.participant.Participant`
    builds the round on it."""

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
        salt_key: bytes | None = None,
    ):
        self.index = index
        self.account = account
        self.address = account.address
        self.data = data
        self.session = session
        self.settings = settings
        self.seed = seed
        # The key of its salts (its shares of each round's tie seed): by default derived from its
        # own private key, which nobody else knows, and this session's board, so no salt repeats
        # across sessions; a simulation, whose parties are all one process, gives a key from the
        # run's seed so that a run repeats bit for bit.
        if salt_key is None:
            context = b"seccl-salt/" + bytes.fromhex(session.board[2:])
            salt_key = hmac.new(bytes(account.key), context, hashlib.sha256).digest()
        self._salt_key = salt_key
        # Its own connection and its own key: it never learns chain facts through the server,
        # and it posts its own messages when the server does not.
        w3 = signing_connection(backend, account)
        self.board = BulletinBoardClient(w3, session.board, sender=self.address)
        self.consensus = CONSENSUS_CLIENTS[session.election](w3, session.consensus, sender=self.address)
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
        # Earlier rounds' eligible updates, for the gram-gate filter's coalition check.
        self._eligible_by_round: dict[int, dict[int, SparseUpdate]] = {}
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
        # The others' updates as the board revealed them (bytes that hash to the commitment; the
        # board checked the author's signature of it), valid ones decoded.
        self._verified: dict[int, tuple[SparseUpdate, SignedMessage]] = {}
        # Revealed updates whose bytes break the session's bounds: proven invalid on chain, so
        # no party may elect or aggregate them.
        self._invalid: dict[int, SignedMessage] = {}
        # My own update as the board revealed it (None until read, or if it was not revealed).
        self._own_revealed: SparseUpdate | None = None
        # The gram-gate filter's view of the round, once this participant computed it.
        self.last_view: GateView | None = None
        self._reveals_read = False
        self._trained = False

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

    # ─────────────── what it found, its clock and its seed ───────────────

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

    def _salt(self, round_: int) -> bytes:
        """This participant's secret salt of ``round_``: hidden by its commitment until the reveal,
        then XORed into the round's tie seed by the board (the same after a restart)."""
        return hmac.new(self._salt_key, round_.to_bytes(8, "big"), hashlib.sha256).digest()

    def _seed_for(self, round_: int) -> int:
        material = f"{self.seed}/{self.index}/{round_}".encode()
        return int.from_bytes(hashlib.sha256(material).digest()[:4], "big")

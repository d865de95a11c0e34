"""Test helpers: deploy a session, and sign and post updates, ballots and models, through the real clients."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from seccl.chain.accounts import fund, signing_connection
from seccl.chain.backends import ChainBackend, EmbeddedChain
from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind, Phases, UpdateFormat
from seccl.chain.consensus import ElectionClient, ElectionRecord
from seccl.chain.session import SessionTerms, deploy_session
from seccl.chain.signing import SigningDomain
from seccl.chain.transactions import TxReceipt
from seccl.election import ABSTAIN
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.messages import EvaluationMessage, UpdateMessage
from tests.conftest import make_accounts

PHASES = Phases(update=3_600, ballot=3_600, model=3_600, reveal=3_600)
"""An hour per phase: ample for a test on anvil's wall clock; tests jump over it with the clock."""

FORMAT = UpdateFormat(dimension=16, update_size=3, max_abs_value=10.0)
"""A tiny update format: the contracts check only sizes and entries, so small updates test them."""

# Test money: a session's deployments cost about 4M gas, so 1 ether lasts many sessions even at
# anvil's 1 gwei, and never drains the node's first account, which everyone funds from.
SERVER_WEI = 10**18
PARTICIPANT_WEI = 10**17


def digest(text: str) -> bytes:
    """A 32-byte stand-in for a message digest."""
    return hashlib.sha256(text.encode()).digest()


def ensure_funds(backend: ChainBackend, address: str, wei: int) -> None:
    """Fund ``address`` unless it already holds at least half of ``wei`` (keys repeat across tests)."""
    if backend.connect().eth.get_balance(Web3.to_checksum_address(address)) < wei // 2:
        fund(backend, address, wei)


def default_terms(
    server: LocalAccount,
    accounts: Sequence[LocalAccount],
    m: int,
    *,
    phases: Phases = PHASES,
    tag: str = "session",
) -> SessionTerms:
    return SessionTerms(
        server=server.address,
        participants=tuple(a.address for a in accounts),
        candidates=m,
        nonce=keccak(text=f"seccl-test-nonce-{tag}"),
        phases=phases,
        initial_model=digest(f"initial model {tag}"),
        update_format=FORMAT,
    )


@dataclass
class Session:
    """One deployed session; :attr:`board` and :attr:`consensus` write from the server's account."""

    backend: ChainBackend
    w3: Web3
    server: LocalAccount
    accounts: list[LocalAccount]
    terms: SessionTerms
    board: BulletinBoardClient
    consensus: ElectionClient
    """The Borda count's ``ConsensusClient``, or a ``GramGateConsensusClient`` for a gram-gate session."""
    deployment: list[TxReceipt]
    salts: dict[int, bytes] = field(default_factory=dict)
    _own: dict[str, BulletinBoardClient] = field(default_factory=dict, repr=False)
    """Salts by participant index, where a test chooses them (say, to fix the round's tie seed)."""

    @property
    def n(self) -> int:
        return len(self.accounts)

    @property
    def m(self) -> int:
        return self.terms.candidates

    @property
    def first_block(self) -> int:
        """The block of the board's deployment: log scans start here (the embedded EVM reads every
        block of a scan, and the test chain is long)."""
        return self.deployment[0].block_number

    def accusations(self) -> list:
        return self.board.accusations(from_block=self.first_block)

    @property
    def domain(self) -> SigningDomain:
        return SigningDomain(
            int(self.w3.eth.chain_id), self.board.address, self.consensus.address, self.terms.nonce
        )

    # ─────────────── signing ───────────────

    def sign(self, account: LocalAccount, round_: int, kind: int, digest_: bytes) -> bytes:
        return self.domain.sign(account, round_, kind, digest_)

    def update_message(self, round_: int, index: int) -> bytes:
        """Participant ``index``'s valid update of ``round_`` in the session's format, salted by
        its index and round."""
        f = self.terms.update_format
        indices = np.arange(f.update_size, dtype=np.uint32) * 2 + index % 2
        values = np.full(f.update_size, 0.5 + index, dtype=np.float32)
        salt = self.salts.get(index) or digest(f"{self.board.address} salt of {index} in {round_}")
        update = SparseUpdate(f.dimension, indices, np.minimum(values, f.max_abs_value))
        return UpdateMessage(round_, self.accounts[index].address, update, salt).to_bytes()

    def update_digest(self, round_: int, index: int) -> bytes:
        return hashlib.sha256(self.update_message(round_, index)).digest()

    def model_digest(self, round_: int) -> bytes:
        return digest(f"{self.board.address} model of round {round_}")

    def sign_scores(self, round_: int, voter: int, scores: Sequence[int]) -> tuple[bytes, bytes]:
        """The digest of participant ``voter``'s evaluation message and its signature of it."""
        account = self.accounts[voter]
        evaluation = EvaluationMessage(round_, account.address, tuple(scores)).digest()
        return evaluation, self.sign(account, round_, MessageKind.EVALUATION, evaluation)

    def scores(self, voter: int, value: int | Sequence[int]) -> list[int]:
        """A ballot for ``voter``: ``value`` for everyone (or by index), its own entry ABSTAIN."""
        values = [value] * self.n if isinstance(value, int) else list(value)
        values[voter] = ABSTAIN
        return values

    # ─────────────── posting (the server relays unless ``via`` says otherwise) ───────────────

    def post_update(
        self, round_: int, index: int, digest_: bytes | None = None, *, via: BulletinBoardClient | None = None
    ) -> TxReceipt:
        account = self.accounts[index]
        digest_ = self.update_digest(round_, index) if digest_ is None else digest_
        signature = self.sign(account, round_, MessageKind.UPDATE, digest_)
        return (via or self.board).post_update(round_, account.address, digest_, signature)

    def post_updates(self, round_: int, indices: Sequence[int] | None = None) -> None:
        """Commit the updates of ``indices`` (everyone by default); once all N are in, the
        commitments have closed, and each committed update is revealed at once."""
        for i in range(self.n) if indices is None else indices:
            self.post_update(round_, i)
        if self.board.round_info(round_).updates == self.n:
            self.reveal_updates(round_)

    def reveal(
        self, round_: int, index: int, message: bytes | None = None, *, via: BulletinBoardClient | None = None
    ) -> TxReceipt:
        message = self.update_message(round_, index) if message is None else message
        account = self.accounts[index]
        if via is None:  # only the author may reveal: over its own connection
            if account.address not in self._own:
                self._own[account.address] = self.own_clients(account)[0]
            via = self._own[account.address]
        return via.reveal_update(round_, account.address, message)

    def reveal_updates(self, round_: int) -> None:
        """Reveal every committed update of ``round_`` not revealed yet whose commitment is the
        default message (a test that committed other bytes reveals them itself)."""
        info = self.board.round_info(round_)
        committed = self.board.updates_of(round_)
        for i in range(self.n):
            if (
                info.has_update(i)
                and not info.has_revealed(i)
                and committed[i] == self.update_digest(round_, i)
            ):
                self.reveal(round_, i)

    def vote(
        self,
        round_: int,
        voter: int,
        scores: Sequence[int],
        *,
        ranking: Sequence[int] | None = None,
        via: ElectionClient | None = None,
    ) -> TxReceipt:
        _, signature = self.sign_scores(round_, voter, scores)
        client = via or self.consensus
        return client.submit_scores(round_, self.accounts[voter].address, scores, signature, ranking=ranking)

    def tally(self, round_: int) -> ElectionRecord:
        return self.consensus.tally(round_, n=self.n)

    def post_model(self, round_: int, digest_: bytes | None = None) -> TxReceipt:
        digest_ = self.model_digest(round_) if digest_ is None else digest_
        return self.board.post_model(
            round_, digest_, self.sign(self.server, round_, MessageKind.MODEL, digest_)
        )

    def run_round(self, round_: int, value: int = 500_000) -> ElectionRecord:
        """A whole round: every update, every ballot scoring ``value``, the tally and the model."""
        self.post_updates(round_)
        for voter in range(self.n):
            self.vote(round_, voter, self.scores(voter, value))
        record = self.tally(round_)
        self.post_model(round_)
        return record

    # ─────────────── the chain clock ───────────────

    def fix_tie_seed(self, seed: bytes, revealers: Sequence[int]) -> None:
        """Choose salts so that the round's tie seed is ``seed`` once exactly ``revealers`` reveal."""
        first, *others = revealers
        self.salts = {i: bytes(32) for i in others} | {first: seed}

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def pass_time_beyond(self, timestamp: int) -> None:
        """Move the chain's clock past ``timestamp``."""
        now = self.now()
        if now <= timestamp:
            self.backend.advance_time(timestamp - now + 1)

    def pass_update_phase(self, round_: int, *, reveal: bool = True) -> None:
        """Close the commitments of ``round_`` by the clock and (unless told not to) reveal every
        committed update, which opens the ballots."""
        self.pass_time_beyond(self.board.round_info(round_).update_deadline)
        if reveal:
            self.reveal_updates(round_)

    def pass_reveal_phase(self, round_: int) -> None:
        self.pass_time_beyond(self.board.round_info(round_).reveal_deadline)

    def pass_ballot_phase(self, round_: int) -> None:
        self.pass_time_beyond(self.board.round_info(round_).ballot_deadline)

    def pass_model_phase(self, round_: int) -> None:
        self.pass_time_beyond(self.board.round_info(round_).model_deadline)

    # ─────────────── other parties' own connections ───────────────

    def own_clients(self, account: LocalAccount) -> tuple[BulletinBoardClient, ElectionClient]:
        """The board and consensus contract over ``account``'s own funded, signing connection."""
        ensure_funds(self.backend, account.address, PARTICIPANT_WEI)
        w3 = signing_connection(self.backend, account)
        return (
            self.board.for_reader(w3, sender=account.address),
            self.consensus.for_reader(w3, sender=account.address),
        )

    def reader(self) -> tuple[BulletinBoardClient, ElectionClient]:
        """Read-only clients over a new connection (an outside auditor's)."""
        w3 = self.backend.connect()
        return self.board.for_reader(w3), self.consensus.for_reader(w3)


def server_account(tag: str = "server") -> LocalAccount:
    return make_accounts(1, tag)[0]


def deploy(
    backend: ChainBackend,
    n: int,
    m: int,
    *,
    phases: Phases = PHASES,
    tag: str = "participant",
    server: LocalAccount | None = None,
    terms: SessionTerms | None = None,
    **changes: object,
) -> Session:
    """Deploy a session of ``n`` deterministic participant keys electing ``m``, from a funded server
    key writing over its own signing connection. ``changes`` override fields of the terms."""
    server = server or server_account()
    accounts = make_accounts(n, tag)
    ensure_funds(backend, server.address, SERVER_WEI)
    w3 = signing_connection(backend, server)
    if terms is None:
        terms = default_terms(server, accounts, m, phases=phases, tag=f"{tag}-{n}-{m}")
    terms = replace(terms, **changes)  # type: ignore[arg-type]
    board, consensus, deployment = deploy_session(w3, terms)
    return Session(backend, w3, server, accounts, terms, board, consensus, deployment)


@contextmanager
def rewound(backend: ChainBackend) -> Iterator[None]:
    """Run the body, then rewind the chain to where it was before it: what the body deployed is
    gone, and the same sender deploys at the same addresses again (a fresh chain, as it were)."""
    revert = _snapshot(backend)
    try:
        yield
    finally:
        revert()


def _snapshot(backend: ChainBackend) -> Callable[[], None]:
    if isinstance(backend, EmbeddedChain):
        snapshot = backend.tester.take_snapshot()
        return lambda: backend.tester.revert_to_snapshot(snapshot)
    provider = backend.connect().provider
    snapshot = provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]

    def revert() -> None:
        if not provider.make_request("evm_revert", [snapshot])["result"]:  # type: ignore[arg-type]
            raise AssertionError(f"anvil did not revert to snapshot {snapshot}")

    return revert

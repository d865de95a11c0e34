"""Typed clients of the consensus contracts (the CSC): relay ballots, tally, read elections. The
shared part, and the Borda count's Consensus contract; the gram-gate rule's is in
:mod:`seccl.chain.gram_gate_consensus`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from eth_utils import to_checksum_address
from web3 import Web3
from web3.logs import DISCARD

from seccl.chain.artifacts import load_artifact
from seccl.chain.errors import ChainError
from seccl.chain.transactions import TxReceipt, call, event_in_transaction, transact
from seccl.election import voter_ranking

GAS_DEPLOY = 3_500_000
SCORE_BYTES = 4  # a score on chain: one big-endian uint32


def gas_for_ballot(n: int) -> int:
    """A gas limit for one ballot of ``n`` scores (calldata, signature, O(n) checks, M counters)."""
    return 250_000 + 14_000 * n


def gas_for_tally(n: int, m: int) -> int:
    """A gas limit for a tally of ``n`` participants electing ``m`` (O(n·m) selection)."""
    return 300_000 + 8_000 * n + 600 * n * m


@dataclass(frozen=True)
class Ballot:
    """A ballot as the contract counted it: scores by participant index, and the top-M ranking
    (the Borda count's; empty for the gram-gate rule, whose ballots carry ``view_digest``, the key
    of the view their entries state, instead)."""

    round: int
    voter: str
    digest: bytes
    scores: tuple[int, ...]
    ranking: tuple[int, ...]
    tx_hash: str
    view_digest: bytes | None = None


@dataclass(frozen=True)
class ElectionState:
    """One round's election so far: how many ballots it counted, and whether it was tallied."""

    ballots: int
    tallied: bool


@dataclass(frozen=True)
class ElectionRecord:
    """The candidates one election elected, best first, and from how many ballots.

    ``receipt`` is the tally's own receipt (with its gas) when this client sent the tally; a
    record read back from the chain's events has none. It takes no part in equality.
    """

    round: int
    candidates: tuple[int, ...]
    ballots: int
    tx_hash: str
    receipt: TxReceipt | None = field(default=None, compare=False)


class ElectionClient:
    """What the session's two consensus contracts (:class:`ConsensusClient` for the paper's Borda
    count, ``GramGateConsensusClient`` for the gram-gate rule) share: the same ballot and tally
    transactions, events and views, over one connection, writing (when it writes) from ``sender``.

    Anyone may relay a signed ballot and anyone may tally, so participants write through their
    own client as readily as the server does. Subclasses name their contract's artifact and rule.
    """

    artifact: ClassVar[str]
    """The contract's artifact (``seccl.chain.artifacts``)."""
    rule: ClassVar[str]
    """The election rule the contract counts by (one of ``seccl.election.ELECTION_RULES``)."""

    def __init__(self, w3: Web3, address: str, *, sender: str | None = None):
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.sender = sender
        self.contract = w3.eth.contract(address=self.address, abi=load_artifact(self.artifact).abi)
        # Facts fixed at deployment, cached so a ballot costs one transaction and few calls.
        self._candidates: int | None = None
        self._board: Any = None

    def for_reader(self, w3: Web3, sender: str | None = None) -> Self:
        """The same contract seen through another party's own connection."""
        return type(self)(w3, self.address, sender=sender)

    @classmethod
    def _deploy_contract(cls, w3: Web3, server: str, *constructor_args: Any) -> tuple[Self, TxReceipt]:
        """Deploy the contract of :attr:`artifact` from ``server`` with ``constructor_args`` (each
        contract's constructor takes its own), and a client of it writing from ``server``."""
        artifact = load_artifact(cls.artifact)
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        constructor = factory.constructor(*constructor_args)
        receipt, raw = transact(w3, constructor, sender=server, gas=GAS_DEPLOY)
        return cls(w3, str(raw["contractAddress"]), sender=server), receipt

    # ─────────────── writes (anyone) ───────────────

    def submit_scores(
        self,
        round_: int,
        voter: str,
        scores: Sequence[int],
        signature: bytes,
        *,
        ranking: Sequence[int] | None = None,
    ) -> TxReceipt:
        """Relay ``voter``'s signed scores (the contract's ``submitScores``)."""
        raise NotImplementedError

    def tally(self, round_: int, *, n: int) -> ElectionRecord:
        """Elect the round's candidates (once all have voted or the ballot phase has ended)."""
        sender = self.sender or self.w3.eth.accounts[0]
        function = self.contract.functions.tally(round_)
        receipt, raw = transact(self.w3, function, sender=sender, gas=self._gas_for_tally(n))
        # The gram-gate tally logs ViewAgreed too: only CandidatesElected is read here.
        event = self.contract.events.CandidatesElected().process_receipt(raw, errors=DISCARD)[0]["args"]
        return ElectionRecord(
            round_,
            tuple(int(c) for c in event["candidates"]),
            int(event["ballots"]),
            receipt.tx_hash,
            receipt,
        )

    # ─────────────── reads (anyone) ───────────────

    def board(self) -> str:
        return str(self._call(self.contract.functions.board()))

    def candidate_count(self) -> int:
        """M, fixed at deployment (cached: it cannot change)."""
        if self._candidates is None:
            self._candidates = int(self._call(self.contract.functions.candidateCount()))
        return self._candidates

    def participant_count(self) -> int:
        """N as this contract counts it (copied from the board at deployment)."""
        return int(self._call(self.contract.functions.participantCount()))

    def nonce(self) -> bytes:
        """The session nonce this contract checks ballot signatures with (copied from the board)."""
        return bytes(self._call(self.contract.functions.nonce()))

    def is_tallied(self, round_: int) -> bool:
        return bool(self._call(self.contract.functions.isTallied(round_)))

    def election_of(self, round_: int) -> ElectionState:
        ballots, tallied = self._call(self.contract.functions.electionOf(round_))
        return ElectionState(int(ballots), bool(tallied))

    def voted_bitmap(self, round_: int) -> int:
        return int(self._call(self.contract.functions.votedBitmap(round_)))

    def has_voted(self, round_: int, voter: str) -> bool:
        return bool(self._call(self.contract.functions.hasVoted(round_, to_checksum_address(voter))))

    def elected_of(self, round_: int) -> tuple[int, ...]:
        return tuple(int(c) for c in self._call(self.contract.functions.electedOf(round_)))

    def ballot_of(self, round_: int, voter: str) -> Ballot | None:
        """The ballot the contract counted for ``voter`` in ``round_``, from its event, or None."""
        logs = self.contract.events.ScoresSubmitted().get_logs(
            from_block=0,
            argument_filters={"round": round_, "voter": to_checksum_address(voter)},
        )
        if not logs:
            return None
        return ballot_from_event(logs[-1]["args"], "0x" + bytes(logs[-1]["transactionHash"]).hex())

    def ballots_of(self, round_: int) -> list[Ballot]:
        """Every ballot the contract counted in ``round_``, in chain order (for audits)."""
        logs = self.contract.events.ScoresSubmitted().get_logs(
            from_block=0, argument_filters={"round": round_}
        )
        return [ballot_from_event(log["args"], "0x" + bytes(log["transactionHash"]).hex()) for log in logs]

    def ballot_in_transaction(self, tx_hash: str) -> Ballot | None:
        """The ballot transaction ``tx_hash`` counted on this contract, or None (O(1): one receipt,
        where :meth:`ballot_of` scans the logs)."""
        args = event_in_transaction(self.w3, tx_hash, self.contract.events.ScoresSubmitted)
        return None if args is None else ballot_from_event(args, tx_hash)

    def election_record(self, round_: int) -> ElectionRecord | None:
        """The CandidatesElected record of ``round_``, from its event, or None if not tallied."""
        logs = self.contract.events.CandidatesElected().get_logs(
            from_block=0, argument_filters={"round": round_}
        )
        if not logs:
            return None
        args = logs[-1]["args"]
        return ElectionRecord(
            int(args["round"]),
            tuple(int(c) for c in args["candidates"]),
            int(args["ballots"]),
            "0x" + bytes(logs[-1]["transactionHash"]).hex(),
        )

    def _gas_for_tally(self, n: int) -> int:
        raise NotImplementedError

    def _board_contract(self) -> Any:
        if self._board is None:
            self._board = self.w3.eth.contract(
                address=to_checksum_address(self.board()), abi=load_artifact("BulletinBoard").abi
            )
        return self._board

    def _call(self, function: Any) -> Any:
        """A view, called from this client's sender when it has one (views do not depend on it)."""
        return call(function, sender=self.sender)

    def _sender(self) -> str:
        if self.sender is None:
            raise ChainError("this consensus client is read-only: it has no sender account")
        return self.sender


class ConsensusClient(ElectionClient):
    """A connection to one deployed Consensus contract (the paper's Borda count)."""

    artifact = "Consensus"
    rule = "borda"

    @classmethod
    def deploy(
        cls, w3: Web3, *, server: str, board: str, candidates: int
    ) -> tuple[ConsensusClient, TxReceipt]:
        """Deploy an election of ``candidates`` per round for the session of ``board``, which
        must already name the address this deployment gets."""
        return cls._deploy_contract(w3, server, to_checksum_address(board), candidates)

    def submit_scores(
        self,
        round_: int,
        voter: str,
        scores: Sequence[int],
        signature: bytes,
        *,
        ranking: Sequence[int] | None = None,
    ) -> TxReceipt:
        """Relay ``voter``'s signed scores; its top-M ranking is derived from them unless given.

        On chain the scores travel as their evaluation message's body (a big-endian u32 each) and
        the ranking as one byte per participant index."""
        voter = to_checksum_address(voter)
        if ranking is None:
            ranking = self.ranking_for(round_, voter, scores)
        function = self.contract.functions.submitScores(
            round_, voter, encode_scores(scores), bytes(ranking), signature
        )
        return transact(self.w3, function, sender=self._sender(), gas=gas_for_ballot(len(scores)))[0]

    def ranking_for(self, round_: int, voter: str, scores: Sequence[int]) -> tuple[int, ...]:
        """The top-M ranking the contract expects for ``voter``'s ``scores`` in ``round_``."""
        board = self._board_contract()
        registered, index = self._call(board.functions.participantIndex(to_checksum_address(voter)))
        info = self._call(board.functions.roundInfo(round_))
        revealed, invalid = int(info[8]), int(info[9])  # RoundInfo's revealBitmap and invalidBitmap
        eligible = [i for i in range(len(scores)) if (revealed & ~invalid) >> i & 1]
        tie_seed = bytes(self._call(board.functions.tieSeedOf(round_)))
        # An unknown voter gets index 0: the contract rejects it with its own typed error.
        return voter_ranking(
            scores,
            int(index) if registered else 0,
            self.candidate_count(),
            tie_seed=tie_seed,
            round_=round_,
            eligible=eligible,
        )

    def counter_bits(self) -> int:
        """The width of the contract's packed Borda counters (8 or 16 bits, fixed at deployment)."""
        return int(self._call(self.contract.functions.counterBits()))

    def totals_of(self, round_: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Every participant's Borda points and abstentions of ``round_`` so far, by index."""
        points, abstentions = self._call(self.contract.functions.totalsOf(round_))
        return tuple(int(p) for p in points), tuple(int(a) for a in abstentions)

    def _gas_for_tally(self, n: int) -> int:
        return gas_for_tally(n, self.candidate_count())


def encode_scores(scores: Sequence[int]) -> bytes:
    """Scores as ``submitScores`` takes them: one big-endian u32 each, by participant index."""
    return b"".join(int(s).to_bytes(SCORE_BYTES, "big") for s in scores)


def decode_scores(data: bytes) -> tuple[int, ...]:
    """The scores of a ``ScoresSubmitted`` record (the inverse of :func:`encode_scores`)."""
    if len(data) % SCORE_BYTES:
        raise ChainError(f"a ballot's scores of {len(data)} bytes are not whole 4-byte scores")
    return tuple(int.from_bytes(data[i : i + SCORE_BYTES], "big") for i in range(0, len(data), SCORE_BYTES))


def ballot_from_event(args: Any, tx_hash: str) -> Ballot:
    """A :class:`Ballot` from the arguments of either contract's ``ScoresSubmitted`` event (the
    Borda count's carries the ranking, the gram-gate rule's the ballot's view key)."""
    view = args.get("viewDigest")
    return Ballot(
        int(args["round"]),
        str(args["voter"]),
        bytes(args["digest"]),
        decode_scores(bytes(args["scores"])),
        tuple(bytes(args["ranking"])) if "ranking" in args else (),
        tx_hash,
        None if view is None else bytes(view),
    )

"""A session's two contracts: deploying them so they point at each other, and checking, as a
participant must before taking part, that announced addresses hold exactly that session."""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import to_checksum_address
from web3 import Web3
from web3.types import Nonce
from web3.utils.address import get_create_address

from seccl.chain.artifacts import load_artifact
from seccl.chain.bulletin_board import BulletinBoardClient, DeploySettings, MessageKind, Phases, UpdateFormat
from seccl.chain.consensus import ConsensusClient, ElectionClient
from seccl.chain.errors import ChainError, ChainUnavailableError
from seccl.chain.gram_gate_consensus import GramGateConsensusClient
from seccl.chain.transactions import TxReceipt
from seccl.election import ELECTION_RULES

CONSENSUS_CLIENTS: dict[str, type[ElectionClient]] = {
    ConsensusClient.rule: ConsensusClient,
    GramGateConsensusClient.rule: GramGateConsensusClient,
}
"""The consensus contract's client of each election rule (its ``artifact`` names the contract)."""


def session_contracts(board: str, consensus: str, election: str) -> dict[str, str]:
    """The session's two contracts by artifact name (what a :class:`~seccl.chain.ledger.Ledger`
    decodes calls with): the board, and the consensus contract of the session's election."""
    return {"BulletinBoard": board, CONSENSUS_CLIENTS[election].artifact: consensus}


@dataclass(frozen=True)
class SessionTerms:
    """What the participants agreed to before the session: the public facts they verify."""

    server: str
    participants: tuple[str, ...]
    candidates: int
    nonce: bytes
    phases: Phases
    initial_model: bytes
    update_format: UpdateFormat
    election: str = "borda"
    """The election rule (``seccl.election.ELECTION_RULES``): which consensus contract counts."""
    assumed_attackers: int = 0
    """f, the attackers the gram-gate rule's filter is sized for, in [0, N); the Borda count has
    no filter, so it must be 0 there (nothing on the chain would record another value)."""

    def __post_init__(self) -> None:
        if self.election not in ELECTION_RULES:
            raise ValueError(f"unknown election rule {self.election!r}; known: {', '.join(ELECTION_RULES)}")
        n = len(self.participants)
        if self.election == "gram-gate" and not 0 <= self.assumed_attackers < n:
            raise ValueError(
                f"the gram-gate filter's assumed attackers must be in [0, {n}), got {self.assumed_attackers}"
            )
        if self.election != "gram-gate" and self.assumed_attackers != 0:
            raise ValueError(
                f"assumed attackers ({self.assumed_attackers}) size the gram-gate filter only: "
                f"the {self.election} election takes 0"
            )

    @property
    def consensus_contract(self) -> str:
        """The name of the consensus contract this session's election deploys."""
        return CONSENSUS_CLIENTS[self.election].artifact


def deploy_session(
    w3: Web3, terms: SessionTerms
) -> tuple[BulletinBoardClient, ElectionClient, list[TxReceipt]]:
    """Deploy the board and the consensus contract of ``terms`` from ``terms.server``: the Borda
    count's ``Consensus``, or ``GramGateConsensus`` for the gram-gate rule.

    The board is told the address the consensus contract will get (the server's next nonce), and
    the consensus contract refuses to deploy unless the board names it: the two point at each other.
    """
    server = to_checksum_address(terms.server)
    nonce = w3.eth.get_transaction_count(server)
    predicted = get_create_address(server, Nonce(nonce + 1))
    settings = DeploySettings(predicted, terms.nonce, terms.phases, terms.initial_model, terms.update_format)
    board, board_receipt = BulletinBoardClient.deploy(
        w3, server=server, participants=terms.participants, settings=settings
    )
    consensus: ElectionClient
    if terms.election == GramGateConsensusClient.rule:
        consensus, consensus_receipt = GramGateConsensusClient.deploy(
            w3,
            server=server,
            board=board.address,
            candidates=terms.candidates,
            assumed_attackers=terms.assumed_attackers,
        )
    else:
        consensus, consensus_receipt = ConsensusClient.deploy(
            w3, server=server, board=board.address, candidates=terms.candidates
        )
    if consensus.address != to_checksum_address(predicted):
        raise ChainError(f"the consensus contract landed at {consensus.address}, not at {predicted}")
    return board, consensus, [board_receipt, consensus_receipt]


class SessionMismatchError(ChainError):
    """The contracts at the announced addresses are not the session the participant agreed to."""


class EvmTooOldError(ChainError):
    """The node's EVM predates Cancun: the contracts (compiled for Cancun) cannot run on it."""


CANCUN_PROBE = "0x" + "600160006000" + "5e" + "6000" + "5c" + "50" + "6000" + "49" + "50" + "00"
"""Creation code that runs one opcode of each Cancun EIP and stops: MCOPY (EIP-5656, which solc
emits for memory copies under evmVersion cancun), TLOAD (EIP-1153) and BLOBHASH (EIP-4844).
An EVM of Cancun or later runs it and returns nothing; an older one stops at the first of them."""


def check_cancun(w3: Web3, where: str) -> None:
    """Raise :class:`EvmTooOldError` unless the node behind ``w3`` runs Cancun opcodes.

    Asked with an ``eth_call`` of :data:`CANCUN_PROBE` as creation code: nothing is mined and
    nothing is paid, so it is asked before anything is deployed (an older EVM, ganache's, or a
    node started with an older hardfork, would otherwise fail the first deployment with an
    "invalid opcode"). ``where`` names the node in the message.
    """
    from requests.exceptions import RequestException
    from web3.exceptions import Web3Exception

    try:
        w3.eth.call({"data": CANCUN_PROBE})  # type: ignore[typeddict-item]
    except RequestException as exc:  # not an answer at all
        raise ChainUnavailableError(
            f"{where} did not answer an eth_call ({type(exc).__name__}: {exc})"
        ) from None
    except (Web3Exception, ValueError) as exc:  # the node refused the code
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise EvmTooOldError(
            f"{where} cannot run the Cancun opcodes MCOPY, TLOAD and BLOBHASH (it answered: {reason}), "
            "and SecCL's contracts are compiled for Cancun; allowed: a node whose EVM is Cancun or "
            "later (ganache's is not; anvil, which --chain anvil starts, is)"
        ) from None


def counter_bits(candidates: int, participants: int) -> int:
    """The width the consensus contract must give its Borda counters: 8 bits when no total can
    reach 256 (M·(N−1) < 256), else 16. Narrower would let one participant's total spill into
    its neighbour's."""
    return 8 if candidates * (participants - 1) < 256 else 16


def code_matches(w3: Web3, address: str, name: str) -> bool:
    """Whether ``address`` runs exactly the committed runtime code of contract ``name``.

    The constructor writes immutables into the code; those byte ranges (listed by the compiler)
    are masked, and the values behind them are checked through the contract's views instead
    (:func:`verify_session` reads every one: each immutable of both contracts has a view).
    """
    artifact = load_artifact(name)
    expected = bytearray(bytes.fromhex(artifact.deployed_bytecode[2:]))
    actual = bytearray(bytes(w3.eth.get_code(to_checksum_address(address))))
    if len(actual) != len(expected):
        return False
    for start, length in artifact.immutable_ranges:
        actual[start : start + length] = expected[start : start + length] = b"\x00" * length
    return actual == expected


def consensus_rule_at(w3: Web3, address: str) -> str | None:
    """The election rule of the consensus contract at ``address``, recognised by its code (the
    committed runtime code of ``Consensus`` or ``GramGateConsensus``, immutables masked), or None
    when it runs neither."""
    for rule, client in CONSENSUS_CLIENTS.items():
        if code_matches(w3, address, client.artifact):
            return rule
    return None


def consensus_client_at(w3: Web3, address: str, *, sender: str | None = None) -> ElectionClient:
    """The client of whichever consensus contract runs at ``address`` (recognised by its code);
    raises :class:`SessionMismatchError` if it runs neither."""
    rule = consensus_rule_at(w3, address)
    if rule is None:
        names = " nor ".join(c.artifact for c in CONSENSUS_CLIENTS.values())
        raise SessionMismatchError(f"the code at {address} is neither the committed {names} contract")
    return CONSENSUS_CLIENTS[rule](w3, address, sender=sender)


def terms_from_chain(
    w3: Web3, board_address: str
) -> tuple[SessionTerms, BulletinBoardClient, ElectionClient]:
    """The terms of the session whose board is at ``board_address``, as the chain records them
    (the election rule from the consensus contract's code, f from its view), with read-only
    clients of both contracts. Raises :class:`SessionMismatchError` unless the board and the
    consensus contract it names run committed code, name each other and agree (the consensus
    contract's own copies of N and the nonce, and its counter width: :func:`verify_session` of
    the terms read)."""
    if not code_matches(w3, board_address, "BulletinBoard"):
        raise SessionMismatchError(f"the code at {board_address} is not the committed BulletinBoard contract")
    board = BulletinBoardClient(w3, board_address)
    consensus = consensus_client_at(w3, board.consensus())
    if consensus.board() != board.address:
        raise SessionMismatchError(
            f"the consensus contract {consensus.address} answers to the board {consensus.board()}, "
            f"not to {board.address}"
        )
    server = board.server()
    terms = SessionTerms(
        server=server,
        participants=tuple(board.participants()),
        candidates=consensus.candidate_count(),
        nonce=board.nonce(),
        phases=board.phases(),
        initial_model=board.digest_of(0, MessageKind.MODEL, server) or b"\x00" * 32,
        update_format=board.update_format(),
        election=consensus.rule,
        assumed_attackers=(
            consensus.assumed_attackers() if isinstance(consensus, GramGateConsensusClient) else 0
        ),
    )
    verify_session(w3, board.address, consensus.address, terms)
    return terms, board, consensus


def verify_session(w3: Web3, board_address: str, consensus_address: str, terms: SessionTerms) -> None:
    """Raise :class:`SessionMismatchError` naming the first fact that differs from ``terms``.

    Checked over the caller's own connection: both addresses run the committed code (the
    consensus contract the agreed election deploys); they point at each other; the board
    registers exactly the agreed server and roster, in order, with the agreed nonce, phases,
    update format and initial model; the consensus contract elects the agreed M (and, for the
    gram-gate rule, records the agreed f). (There is no tie seed to agree: each round's comes from
    its revealed updates.)
    """
    expected = terms.consensus_contract
    if not code_matches(w3, board_address, "BulletinBoard"):
        raise SessionMismatchError(f"the code at {board_address} is not the committed BulletinBoard contract")
    if not code_matches(w3, consensus_address, expected):
        other = consensus_rule_at(w3, consensus_address)
        runs = f" (it runs the {other} election, not the agreed {terms.election})" if other else ""
        raise SessionMismatchError(
            f"the code at {consensus_address} is not the committed {expected} contract{runs}"
        )
    board = BulletinBoardClient(w3, board_address)
    consensus = CONSENSUS_CLIENTS[terms.election](w3, consensus_address)
    facts: list[tuple[str, object, object]] = [
        ("the board's consensus contract", board.consensus(), to_checksum_address(consensus_address)),
        ("the consensus contract's board", consensus.board(), to_checksum_address(board_address)),
        ("the server", board.server(), to_checksum_address(terms.server)),
        (
            "the roster",
            tuple(board.participants()),
            tuple(to_checksum_address(p) for p in terms.participants),
        ),
        ("the session nonce", board.nonce(), terms.nonce),
        ("the phases", board.phases(), terms.phases),
        ("the update format", board.update_format(), terms.update_format),
        ("the candidates per round", consensus.candidate_count(), terms.candidates),
        # The consensus contract's own copies (immutables the code comparison masks).
        (
            "the consensus contract's participant count",
            consensus.participant_count(),
            len(terms.participants),
        ),
        ("the consensus contract's nonce", consensus.nonce(), terms.nonce),
    ]
    if isinstance(consensus, ConsensusClient):
        facts.append(
            (
                "the consensus contract's counter width",
                consensus.counter_bits(),
                counter_bits(terms.candidates, len(terms.participants)),
            )
        )
    if isinstance(consensus, GramGateConsensusClient):
        facts.append(
            (
                "the consensus contract's assumed attackers",
                consensus.assumed_attackers(),
                terms.assumed_attackers,
            )
        )
    facts.append(
        ("the initial model", board.digest_of(0, MessageKind.MODEL, terms.server), terms.initial_model)
    )
    for what, found, agreed in facts:
        if found != agreed:
            raise SessionMismatchError(
                f"{what} on the chain is {_show(found)}, not the agreed {_show(agreed)}"
            )


def _show(value: object) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else repr(value)

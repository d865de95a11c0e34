"""A session's two contracts are deployed pointing at each other, and a participant's check of the
announced addresses refuses look-alike code, crossed pointers and terms it did not agree to."""

from __future__ import annotations

from dataclasses import replace

import pytest
from web3 import Web3
from web3.utils.address import get_create_address

from seccl.chain.artifacts import load_artifact
from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import BulletinBoardClient, DeploySettings, MessageKind, Phases
from seccl.chain.consensus import ConsensusClient
from seccl.chain.gram_gate_consensus import GramGateConsensusClient
from seccl.chain.session import (
    SessionMismatchError,
    code_matches,
    consensus_client_at,
    consensus_rule_at,
    terms_from_chain,
    verify_session,
)
from tests.chain.helpers import PHASES, Session, deploy, digest
from tests.conftest import make_accounts


@pytest.fixture
def session(backend: ChainBackend) -> Session:
    return deploy(backend, n=4, m=2, tag="verify")


def _verify(
    session: Session, board: str | None = None, consensus: str | None = None, **changes: object
) -> None:
    """Verify over a participant's own new connection, as it would before taking part."""
    verify_session(
        session.backend.connect(),
        board or session.board.address,
        consensus or session.consensus.address,
        replace(session.terms, **changes),  # type: ignore[arg-type]
    )


def _deploy_runtime_code(session: Session, runtime: bytes) -> str:
    """Deploy ``runtime`` as it is: creation code that copies it to memory and returns it."""
    size = len(runtime).to_bytes(2, "big")
    # PUSH2 size, DUP1, PUSH1 14 (offset of the runtime), PUSH1 0, CODECOPY, PUSH1 0, RETURN
    init = b"\x61" + size + b"\x80\x60\x0e\x60\x00\x39\x60\x00\xf3" + b"\x00" * 2 + runtime
    assert init.index(runtime) == 14
    sent = session.w3.eth.send_transaction(
        {"from": session.server.address, "data": Web3.to_hex(init), "gas": 3_000_000}
    )
    receipt = session.w3.eth.wait_for_transaction_receipt(sent, poll_latency=0.005)
    assert receipt["status"] == 1
    return str(receipt["contractAddress"])


def test_a_deployed_session_points_both_ways_and_verifies(session: Session) -> None:
    assert session.board.consensus() == session.consensus.address
    assert session.consensus.board() == session.board.address
    assert session.consensus.candidate_count() == 2
    assert session.consensus.participant_count() == len(session.board.participants()) == 4
    assert session.consensus.nonce() == session.board.nonce() == session.terms.nonce
    assert session.board.update_format() == session.terms.update_format
    assert [r.block_number for r in session.deployment] == sorted(r.block_number for r in session.deployment)

    _verify(session)  # no exception: exactly the agreed session


@pytest.mark.parametrize("which", ["board", "consensus"])
def test_an_address_holding_the_other_contract_is_refused(session: Session, which: str) -> None:
    swapped = {"board": session.consensus.address, "consensus": session.board.address}[which]

    with pytest.raises(SessionMismatchError, match="is not the committed"):
        _verify(session, **{which: swapped})


def test_an_account_without_code_is_refused(session: Session) -> None:
    with pytest.raises(SessionMismatchError, match="is not the committed BulletinBoard contract"):
        _verify(session, board=session.accounts[0].address)


def test_look_alike_code_that_differs_by_one_byte_is_refused(session: Session) -> None:
    runtime = bytearray(session.w3.eth.get_code(session.board.address))  # type: ignore[arg-type]
    covered = {
        i
        for start, length in load_artifact("BulletinBoard").immutable_ranges
        for i in range(start, start + length)
    }
    position = next(i for i in range(len(runtime) - 1, 0, -1) if i not in covered)
    runtime[position] ^= 0x01
    look_alike = _deploy_runtime_code(session, bytes(runtime))

    with pytest.raises(
        SessionMismatchError, match=f"the code at {look_alike} is not the committed BulletinBoard"
    ):
        _verify(session, board=look_alike)


def test_a_consensus_contract_of_another_session_is_refused(session: Session, backend: ChainBackend) -> None:
    other = deploy(backend, n=4, m=2, tag="verify")  # the same terms, other addresses

    with pytest.raises(SessionMismatchError, match="the board's consensus contract"):
        _verify(session, consensus=other.consensus.address)
    with pytest.raises(SessionMismatchError, match="the board's consensus contract"):
        _verify(session, board=other.board.address)


def test_a_board_that_names_another_sessions_consensus_contract_is_refused(session: Session) -> None:
    # Committed code and the agreed terms, but its consensus contract answers to another board.
    terms = session.terms
    settings = DeploySettings(
        session.consensus.address, terms.nonce, terms.phases, terms.initial_model, terms.update_format
    )
    impostor, _ = BulletinBoardClient.deploy(
        session.w3, server=session.server.address, participants=terms.participants, settings=settings
    )
    assert impostor.consensus() == session.consensus.address

    with pytest.raises(SessionMismatchError, match="the consensus contract's board"):
        _verify(session, board=impostor.address)


@pytest.mark.parametrize(
    ("change", "fact"),
    [
        ("reordered", "the roster"),
        ("replaced", "the roster"),
        ("shorter", "the roster"),
        ("initial_model", "the initial model"),
        ("nonce", "the session nonce"),
        ("update_format", "the update format"),
        ("phases", "the phases"),
        ("candidates", "the candidates per round"),
        ("server", "the server"),
    ],
)
def test_terms_other_than_the_agreed_ones_are_refused(session: Session, change: str, fact: str) -> None:
    roster = session.terms.participants
    changes: dict[str, object] = {
        "reordered": {"participants": (roster[1], roster[0], *roster[2:])},
        "replaced": {"participants": (*roster[:3], make_accounts(1, "outsider")[0].address)},
        "shorter": {"participants": roster[:3]},
        "initial_model": {"initial_model": digest("a rigged initial model")},
        "nonce": {"nonce": digest("another nonce")},
        "update_format": {"update_format": replace(session.terms.update_format, update_size=4)},
        "phases": {"phases": Phases(PHASES.update, PHASES.ballot, PHASES.model + 1, PHASES.reveal)},
        "candidates": {"candidates": 3},
        "server": {"server": make_accounts(1, "another-server")[0].address},
    }[change]  # type: ignore[assignment]

    with pytest.raises(SessionMismatchError, match=fact):
        _verify(session, **changes)  # type: ignore[arg-type]


def test_the_initial_model_is_on_the_board_as_the_servers_round_zero_model(session: Session) -> None:
    recorded = session.board.digest_of(0, MessageKind.MODEL, session.server.address)

    assert recorded == session.terms.initial_model
    assert session.board.round_info(0).model_posted


def _word(value: bytes | str | int) -> bytes:
    """``value`` as the 32-byte word an immutable holds."""
    if isinstance(value, int):
        return value.to_bytes(32, "big")
    if isinstance(value, str):
        return bytes.fromhex(value[2:]).rjust(32, b"\x00")
    return value


@pytest.mark.parametrize("immutable", ["nonce", "participant count", "counter width"])
def test_a_consensus_contract_with_committed_code_but_other_hidden_settings_is_refused(
    session: Session, immutable: str
) -> None:
    """The server writes its own values into the consensus contract's immutables (the code is
    the committed one where the masked comparison looks), behind a genuine board naming it."""
    terms = session.terms
    w3 = session.w3
    consensus_address = get_create_address(
        session.server.address, w3.eth.get_transaction_count(session.server.address) + 1
    )
    settings = DeploySettings(
        consensus_address, terms.nonce, terms.phases, terms.initial_model, terms.update_format
    )
    board, _ = BulletinBoardClient.deploy(
        w3, server=session.server.address, participants=terms.participants, settings=settings
    )
    runtime = bytearray(w3.eth.get_code(session.consensus.address))  # type: ignore[arg-type]
    swaps = {
        _word(session.board.address): _word(board.address),
        {
            "nonce": terms.nonce,
            "participant count": _word(len(terms.participants)),
            "counter width": _word(8),  # M·(N-1) = 6 < 256: 8-bit counters
        }[immutable]: {
            "nonce": digest("the server's own nonce"),
            "participant count": _word(len(terms.participants) - 1),
            "counter width": _word(2),  # two bits: totals above 3 would spill into a neighbour
        }[immutable],
    }
    replaced = 0
    for start, length in load_artifact("Consensus").immutable_ranges:
        word = bytes(runtime[start : start + length])
        if word in swaps:
            runtime[start : start + length] = swaps[word]
            replaced += 1
    assert replaced >= 2
    look_alike = _deploy_runtime_code(session, bytes(runtime))
    assert look_alike == consensus_address
    assert code_matches(w3, look_alike, "Consensus")  # the masked comparison cannot see it

    with pytest.raises(SessionMismatchError, match=f"the consensus contract's {immutable}"):
        _verify(session, board=board.address, consensus=look_alike)


# ─────────────────────────── the gram-gate election ───────────────────────────


@pytest.fixture
def gram_gate(backend: ChainBackend) -> Session:
    return deploy(backend, n=4, m=2, tag="verify-gram-gate", election="gram-gate", assumed_attackers=1)


def test_a_gram_gate_session_deploys_its_own_consensus_contract_and_verifies(gram_gate: Session) -> None:
    consensus = gram_gate.consensus

    assert isinstance(consensus, GramGateConsensusClient) and consensus.rule == "gram-gate"
    assert gram_gate.board.consensus() == consensus.address and consensus.board() == gram_gate.board.address
    assert consensus.assumed_attackers() == 1 and consensus.candidate_count() == 2
    assert code_matches(gram_gate.w3, consensus.address, "GramGateConsensus")
    assert not code_matches(gram_gate.w3, consensus.address, "Consensus")
    _verify(gram_gate)  # no exception: exactly the agreed session


def test_the_terms_and_the_right_client_are_read_back_from_the_chain(
    session: Session, gram_gate: Session
) -> None:
    for deployed, client in ((session, ConsensusClient), (gram_gate, GramGateConsensusClient)):
        w3 = deployed.backend.connect()

        terms, board, consensus = terms_from_chain(w3, deployed.board.address)

        assert terms == deployed.terms
        assert type(consensus) is client and consensus.address == deployed.consensus.address
        assert board.address == deployed.board.address
        assert consensus_rule_at(w3, deployed.consensus.address) == deployed.terms.election
        assert type(consensus_client_at(w3, deployed.consensus.address)) is client
    assert gram_gate.terms.election == "gram-gate" and gram_gate.terms.assumed_attackers == 1
    assert session.terms.election == "borda" and session.terms.assumed_attackers == 0


def test_an_address_running_neither_consensus_contract_is_not_read_as_one(session: Session) -> None:
    w3 = session.backend.connect()

    assert consensus_rule_at(w3, session.board.address) is None
    neither = "is neither the committed Consensus nor GramGateConsensus"
    with pytest.raises(SessionMismatchError, match=neither):
        consensus_client_at(w3, session.board.address)
    with pytest.raises(SessionMismatchError, match="is not the committed BulletinBoard"):
        terms_from_chain(w3, session.consensus.address)


@pytest.mark.parametrize(
    ("deployed_rule", "agreed", "message"),
    [
        ("gram-gate", {"election": "borda", "assumed_attackers": 0}, "it runs the gram-gate election, not"),
        ("borda", {"election": "gram-gate", "assumed_attackers": 1}, "it runs the borda election, not"),
        ("gram-gate", {"assumed_attackers": 2}, "the consensus contract's assumed attackers on the chain"),
    ],
    ids=["gram-gate-for-borda", "borda-for-gram-gate", "other-f"],
)
def test_an_election_other_than_the_agreed_one_is_refused(
    session: Session, gram_gate: Session, deployed_rule: str, agreed: dict[str, object], message: str
) -> None:
    deployed = gram_gate if deployed_rule == "gram-gate" else session

    with pytest.raises(SessionMismatchError, match=message):
        _verify(deployed, **agreed)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"election": "plurality"}, "unknown election rule 'plurality'"),
        ({"election": "gram-gate", "assumed_attackers": 4}, r"must be in \[0, 4\), got 4"),
        ({"election": "gram-gate", "assumed_attackers": -1}, r"must be in \[0, 4\), got -1"),
        ({"assumed_attackers": 1}, "the borda election takes 0"),
    ],
    ids=["unknown-rule", "f-of-n", "negative-f", "f-for-borda"],
)
def test_terms_with_an_unknown_rule_or_an_impossible_f_are_refused(
    session: Session, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        replace(session.terms, **changes)  # type: ignore[arg-type]

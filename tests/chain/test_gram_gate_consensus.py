"""The gram-gate consensus contract counts each signed ballot once, in its phase, checks every entry
against the round's eligible participants, counts the view each ballot states, and elects by the
upper median of the ballots that share the view of a strict majority of the roster (none without
one); anyone may tally in time. Every revert path on both EVMs."""

from __future__ import annotations

import hashlib
import struct

import pytest
from web3.utils.address import get_create_address

from seccl.chain import errors
from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import BulletinBoardClient, DeploySettings, MessageKind
from seccl.chain.consensus import ElectionState
from seccl.chain.gram_gate_consensus import GramGateConsensusClient
from seccl.election import ABSTAIN, tie_key
from seccl.election.gram_gate import (
    DROPPED,
    MAX_SCORE,
    REJECTED,
    ballot_error,
    gram_gate_tally,
    view_digest,
    view_of_ballot,
)
from seccl.protocol.messages import EvaluationMessage
from tests.chain.helpers import FORMAT, Session, deploy
from tests.conftest import make_accounts


@pytest.fixture(scope="module")
def backend(own_backend: ChainBackend) -> ChainBackend:
    """This module's contract tests run on a chain of their own (``own_backend``)."""
    return own_backend


N, M = 6, 2
A, D, R = ABSTAIN, DROPPED, REJECTED
# The round's view, shared by every ballot: 0-3 kept, 4 rejected (its author still counts), 5
# dropped (its author's ballot counts towards the majority, not in the medians). The upper medians
# are 650k (0), 850k (1), 650k (2) and 300k (3): 1 is elected, then 0 or 2 by their tie keys.
PROFILE = [
    [A, 800_000, 600_000, 300_000, R, D],
    [700_000, A, 650_000, 200_000, R, D],
    [650_000, 900_000, A, 250_000, R, D],
    [500_000, 850_000, 700_000, A, R, D],
    [600_000, 750_000, 550_000, 350_000, R, D],
    [0, 0, 1_000_000, 1_000_000, R, D],
]
KEPT, DROPPED_MASK = 0b001111, 0b100000


def _expected(session: Session, ballots: dict[int, list[int]], eligible: int | None = None, round_: int = 1):
    eligible = 2**session.n - 1 if eligible is None else eligible
    seed = session.board.tie_seed_of(round_)
    return gram_gate_tally(ballots, session.n, session.m, eligible=eligible, tie_seed=seed, round_=round_)


@pytest.fixture
def fresh(backend: ChainBackend) -> Session:
    """A gram-gate session in round 1's update phase: no update posted yet."""
    return deploy(backend, n=N, m=M, tag="gram-gate", election="gram-gate", assumed_attackers=1)


@pytest.fixture
def session(fresh: Session) -> Session:
    """A gram-gate session in round 1's ballot phase: every update is on the board."""
    fresh.post_updates(1)
    return fresh


def _vote_all(session: Session, ballots: list[list[int]] | dict[int, list[int]]) -> None:
    for voter, entries in ballots.items() if isinstance(ballots, dict) else enumerate(ballots):
        session.vote(1, voter, entries)


# ─────────────────────────── counting and electing ───────────────────────────


def test_elects_what_the_reference_elects_and_records_every_ballot_and_the_agreed_view(
    session: Session,
) -> None:
    consensus = session.consensus
    assert isinstance(consensus, GramGateConsensusClient)
    receipts = [session.vote(1, voter, entries) for voter, entries in enumerate(PROFILE)]

    result = session.tally(1)

    expected = _expected(session, dict(enumerate(PROFILE)))
    assert result.candidates == expected.candidates and result.candidates[0] == 1
    assert result.ballots == N
    assert expected.medians == {0: 650_000, 1: 850_000, 2: 650_000, 3: 300_000}
    keys = {j: tie_key(session.board.tie_seed_of(1), 1, j) for j in (0, 2)}
    assert result.candidates[1] == min(keys, key=keys.__getitem__)  # equal medians: the tie key
    assert consensus.elected_of(1) == result.candidates
    assert consensus.election_of(1) == ElectionState(ballots=N, tallied=True) and consensus.is_tallied(1)
    assert consensus.voted_bitmap(1) == 2**N - 1
    assert consensus.agreed_view_of(1) == (KEPT, DROPPED_MASK, N) == (*expected.agreed, expected.votes)
    key = view_digest(KEPT, DROPPED_MASK)
    assert consensus.view_agreed_record(1, from_block=session.first_block) == (key, KEPT, DROPPED_MASK, N)
    assert consensus.view_votes(1, key) == N and consensus.view_votes(1, bytes(32)) == 0
    ballot = consensus.ballot_in_transaction(receipts[4].tx_hash)
    assert ballot is not None and ballot.scores == tuple(PROFILE[4]) and ballot.ranking == ()
    assert ballot.view_digest == key
    assert ballot.digest == EvaluationMessage(1, session.accounts[4].address, tuple(PROFILE[4])).digest()
    assert consensus.ballot_of(1, session.accounts[5].address) == consensus.ballots_of(1)[5]
    assert consensus.election_record(1) == result


def test_the_contract_names_its_rule_and_its_settings(session: Session) -> None:
    consensus = session.consensus
    assert isinstance(consensus, GramGateConsensusClient)

    assert consensus.rule == consensus.rule_name() == "gram-gate"
    assert consensus.assumed_attackers() == 1
    assert consensus.candidate_count() == M and consensus.participant_count() == N
    assert consensus.nonce() == session.terms.nonce and consensus.board() == session.board.address
    for name, value in (("ABSTAIN", A), ("DROPPED", D), ("REJECTED", R), ("MAX_SCORE", MAX_SCORE)):
        assert getattr(consensus.contract.functions, name)().call() == value


def test_the_ballots_of_dropped_voters_share_the_view_but_not_the_medians(backend: ChainBackend) -> None:
    # 3 and 4 are dropped (a coalition), vote with the honest view and push 1 over 0: were their
    # ballots counted, 1's upper median would be 1,000k and 0's 600k, and 1 would rank first.
    # 2 (100k) is under the bar: the medians' lower median 500k minus 3 MADs of 100k.
    session = deploy(backend, n=5, m=1, tag="gram-gate-dropped", election="gram-gate")
    session.post_updates(1)
    ballots = {
        0: [A, 500_000, 100_000, D, D],
        1: [600_000, A, 100_000, D, D],
        2: [600_000, 500_000, A, D, D],
        3: [0, 1_000_000, 0, D, D],
        4: [0, 1_000_000, 0, D, D],
    }
    _vote_all(session, ballots)

    result = session.tally(1)

    assert result.candidates == (0, 1) == _expected(session, ballots).candidates
    assert session.consensus.agreed_view_of(1) == (0b00111, 0b11000, 5)  # type: ignore[attr-defined]


def test_a_voter_without_an_update_votes_abstaining_on_itself_and_is_never_elected(fresh: Session) -> None:
    eligible = [0, 1, 2, 3, 4]  # 5 posts nothing
    fresh.post_updates(1, eligible)
    fresh.pass_update_phase(1)
    ballots = {v: [*PROFILE[v][:5], A] for v in range(N)}
    ballots[5] = [100_000, 100_000, 1_000_000, 100_000, R, A]  # its own entry: ABSTAIN, not eligible

    _vote_all(fresh, ballots)
    result = fresh.tally(1)

    assert result.candidates == _expected(fresh, ballots, eligible=0b011111).candidates
    assert fresh.consensus.agreed_view_of(1) == (KEPT, 0, N)  # type: ignore[attr-defined]
    assert 5 not in result.candidates


def test_without_a_strict_majority_of_the_roster_nobody_is_elected(session: Session) -> None:
    # Three ballots reject 4 and drop 5, three drop 4 and reject 5: half the roster each.
    ballots = {
        0: PROFILE[0],
        1: PROFILE[1],
        2: PROFILE[2],
        3: [500_000, 850_000, 700_000, A, D, R],
        4: [600_000, 750_000, 550_000, 350_000, D, R],
        5: [0, 0, 1_000_000, 1_000_000, D, R],
    }
    assert all(ballot_error(e, v, 2**N - 1) is None for v, e in ballots.items())
    _vote_all(session, ballots)

    result = session.tally(1)

    consensus = session.consensus
    assert isinstance(consensus, GramGateConsensusClient)
    assert result.candidates == () == _expected(session, ballots).candidates
    assert consensus.elected_of(1) == () and consensus.is_tallied(1)
    assert consensus.agreed_view_of(1) is None
    assert consensus.view_agreed_record(1, from_block=session.first_block) is None
    views = {view_digest(*view_of_ballot(e, v)) for v, e in ballots.items()}
    assert len(views) == 2 and all(consensus.view_votes(1, key) == 3 for key in views)
    session.post_model(1)  # an empty election still lets the round end
    assert session.board.current_round() == 2


def test_a_view_that_overtakes_the_first_one_becomes_the_rounds(backend: ChainBackend) -> None:
    session = deploy(backend, n=7, m=2, tag="gram-gate-lead", election="gram-gate")
    session.post_updates(1)
    early = {v: [D if j == 6 else (A if j == v else 500_000 + j) for j in range(7)] for v in (0, 1)}
    late = {v: [A if j == v else 400_000 + 1000 * j for j in range(7)] for v in (2, 3, 4, 5)}
    early_then_late = early | late

    _vote_all(session, early_then_late)
    session.pass_ballot_phase(1)  # voter 6 stays away
    result = session.tally(1)

    # The late view's medians (400k + 1000·j) all clear the bar: all seven, 6 (dropped in the
    # early view) first.
    assert result.candidates == _expected(session, early_then_late).candidates == (6, 5, 4, 3, 2, 1, 0)
    assert session.consensus.agreed_view_of(1) == (0b1111111, 0, 4)  # type: ignore[attr-defined]


def test_a_participant_proven_invalid_after_the_ballots_is_not_elected(fresh: Session) -> None:
    bad = bytearray(fresh.update_message(1, 1))
    struct.pack_into(">f", bad, 74 + 4 * FORMAT.update_size, float("nan"))  # entry 0's value: NaN
    fresh.post_update(1, 1, hashlib.sha256(bad).digest())
    fresh.post_updates(1, [0, 2, 3, 4, 5])
    fresh.reveal(1, 1, bytes(bad))
    _vote_all(fresh, PROFILE)  # every ballot kept 1, and its median is the best

    fresh.board.prove_invalid(1, fresh.accounts[1].address, bytes(bad), 0)
    result = fresh.tally(1)

    # The agreed view still says 1 was kept, but only the eligible are elected: 0 and 2 (600k each).
    keys = {j: tie_key(fresh.board.tie_seed_of(1), 1, j) for j in (0, 2)}
    assert result.candidates == tuple(sorted(keys, key=keys.__getitem__))
    assert fresh.consensus.agreed_view_of(1) == (KEPT, DROPPED_MASK, N)  # type: ignore[attr-defined]


def test_anyone_may_tally_once_every_ballot_is_in_or_after_the_deadline(session: Session) -> None:
    for voter in (0, 1, 2, 3):
        session.vote(1, voter, PROFILE[voter])
    deadline = session.board.round_info(1).ballot_deadline
    with pytest.raises(errors.ConsensusElectionStillOpen) as caught:
        session.tally(1)
    assert caught.value.fields == {"round": 1, "ballots": 4, "expected": N, "deadline": deadline}
    for read in (session.consensus.elected_of, session.consensus.agreed_view_of):  # type: ignore[attr-defined]
        with pytest.raises(errors.ConsensusNotTallied) as not_tallied:
            read(1)
        assert not_tallied.value.fields == {"round": 1}
    session.pass_ballot_phase(1)
    _, stranger = session.own_clients(make_accounts(1, "tallier")[0])

    result = stranger.tally(1, n=N)

    assert result.ballots == 4
    assert result.candidates == _expected(session, {v: PROFILE[v] for v in range(4)}).candidates


def test_elects_nobody_without_ballots(session: Session) -> None:
    session.pass_ballot_phase(1)

    assert session.tally(1).candidates == ()
    assert session.consensus.agreed_view_of(1) is None  # type: ignore[attr-defined]


def test_scores_at_the_bounds_and_every_own_entry_the_rule_allows_are_accepted(session: Session) -> None:
    ballots = {
        0: [A, 0, MAX_SCORE, 0, R, D],
        1: [MAX_SCORE, D, 0, MAX_SCORE, R, D],  # its filter dropped itself
        2: [0, MAX_SCORE, R, 1, R, D],  # its filter rejected itself
    }

    _vote_all(session, ballots)

    assert session.consensus.election_of(1).ballots == 3
    assert [b.scores for b in session.consensus.ballots_of(1)] == [tuple(e) for e in ballots.values()]


# ─────────────────────────── refused ballots ───────────────────────────


def _changed(voter: int, change: dict[int, int]) -> list[int]:
    entries = list(PROFILE[voter])
    for j, value in change.items():
        entries[j] = value
    assert ballot_error(entries, voter, 2**N - 1) is not None  # the reference refuses it too
    return entries


@pytest.mark.parametrize(
    ("voter", "entry"),
    [(0, 500_000), (0, 0), (0, 2**32 - 4), (2, MAX_SCORE + 1)],
    ids=["scores-itself", "scores-itself-zero", "unknown-code", "above-max"],
)
def test_an_own_entry_other_than_abstain_dropped_or_rejected_is_refused(
    session: Session, voter: int, entry: int
) -> None:
    entries = _changed(voter, {voter: entry})

    with pytest.raises(errors.GramGateInvalidOwnEntry) as caught:
        session.vote(1, voter, entries)

    assert caught.value.fields == {"position": voter, "entry": entry}
    assert not session.consensus.has_voted(1, session.accounts[voter].address)


@pytest.mark.parametrize(
    ("voter", "change", "position"),
    [
        (0, {1: A}, 1),  # abstains on an eligible participant
        (0, {3: MAX_SCORE + 1, 4: A}, 3),  # the first wrong one
        (1, {4: 2**32 - 4}, 4),
    ],
    ids=["abstain-on-eligible", "above-max", "unknown-code"],
)
def test_an_entry_for_another_eligible_participant_must_be_a_score_dropped_or_rejected(
    session: Session, voter: int, change: dict[int, int], position: int
) -> None:
    entries = _changed(voter, change)

    with pytest.raises(errors.GramGateInvalidEntry) as caught:
        session.vote(1, voter, entries)

    assert caught.value.fields == {"position": position, "entry": entries[position]}
    assert not session.consensus.has_voted(1, session.accounts[voter].address)


@pytest.mark.parametrize(
    ("voter", "entries", "position"),
    [
        (0, [A, 800_000, 600_000, 300_000, R, 0], 5),  # scores one without an update
        (0, [A, 800_000, 600_000, 300_000, R, D], 5),  # drops it
        (5, [700_000, 800_000, 600_000, 300_000, R, D], 5),  # not eligible: its own must abstain
        (5, [700_000, 800_000, 600_000, 300_000, R, R], 5),
    ],
    ids=["scored", "dropped", "own-dropped", "own-rejected"],
)
def test_an_entry_for_a_participant_that_is_not_eligible_must_abstain(
    fresh: Session, voter: int, entries: list[int], position: int
) -> None:
    fresh.post_updates(1, [0, 1, 2, 3, 4])
    fresh.pass_update_phase(1)
    assert ballot_error(entries, voter, 0b011111) is not None

    with pytest.raises(errors.GramGateIneligibleEntry) as caught:
        fresh.vote(1, voter, entries)

    assert caught.value.fields == {"position": position, "entry": entries[position]}


@pytest.mark.parametrize(
    ("entries", "fields"),
    [
        (PROFILE[0][:5], {"expected": 4 * N, "actual": 4 * 5}),  # 4 bytes an entry
        ([*PROFILE[0], 0], {"expected": 4 * N, "actual": 4 * 7}),
        ([], {"expected": 4 * N, "actual": 0}),
    ],
    ids=["short", "long", "empty"],
)
def test_a_ballot_of_the_wrong_length_is_refused(session: Session, entries: list[int], fields: dict) -> None:
    with pytest.raises(errors.ConsensusWrongLength) as caught:
        session.vote(1, 0, entries)

    assert caught.value.fields == fields


def test_a_second_ballot_of_the_same_voter_is_refused(session: Session) -> None:
    session.vote(1, 0, PROFILE[0])

    with pytest.raises(errors.ConsensusAlreadyVoted) as caught:
        session.vote(1, 0, PROFILE[1][:1] + PROFILE[0][1:])

    assert caught.value.fields == {"round": 1, "voter": session.accounts[0].address}
    assert session.consensus.election_of(1).ballots == 1


def test_a_ballot_altered_by_the_relay_or_signed_by_someone_else_is_refused(session: Session) -> None:
    voter, forger = session.accounts[0], session.accounts[1]
    _, signature = session.sign_scores(1, 0, PROFILE[0])
    altered = [A, 100_000, 600_000, 300_000, R, D]
    with pytest.raises(errors.ConsensusInvalidSignature):
        session.consensus.submit_scores(1, voter.address, altered, signature)
    digest = EvaluationMessage(1, voter.address, tuple(PROFILE[0])).digest()
    forged = session.sign(forger, 1, MessageKind.EVALUATION, digest)

    with pytest.raises(errors.ConsensusInvalidSignature) as caught:
        session.consensus.submit_scores(1, voter.address, PROFILE[0], forged)

    assert caught.value.fields == {"voter": voter.address, "signer": forger.address}
    assert session.consensus.voted_bitmap(1) == 0


def test_a_ballot_signed_for_the_borda_contract_of_another_session_is_refused(
    session: Session, backend: ChainBackend
) -> None:
    borda = deploy(backend, n=N, m=M, tag="gram-gate")  # the same roster and nonce, Borda's contract
    _, signature = borda.sign_scores(1, 0, PROFILE[0])

    with pytest.raises(errors.ConsensusInvalidSignature):
        session.consensus.submit_scores(1, session.accounts[0].address, PROFILE[0], signature)


def test_a_ballot_of_someone_outside_the_roster_is_refused(session: Session) -> None:
    stranger = make_accounts(1, tag="stranger")[0]
    digest = EvaluationMessage(1, stranger.address, tuple(PROFILE[0])).digest()

    with pytest.raises(errors.ConsensusUnknownVoter) as caught:
        session.consensus.submit_scores(
            1, stranger.address, PROFILE[0], session.sign(stranger, 1, MessageKind.EVALUATION, digest)
        )

    assert caught.value.fields == {"voter": stranger.address}


def test_ballots_open_only_once_the_reveals_have_closed_and_close_at_the_deadline(fresh: Session) -> None:
    fresh.post_updates(1, [0, 1, 2])
    reveal_deadline = fresh.board.round_info(1).reveal_deadline
    with pytest.raises(errors.ConsensusBallotPhaseNotOpen) as caught:
        fresh.vote(1, 0, PROFILE[0])
    assert caught.value.fields == {"round": 1, "revealDeadline": reveal_deadline}
    with pytest.raises(errors.ConsensusRoundNotOpen) as not_open:
        fresh.vote(2, 0, PROFILE[0])
    assert not_open.value.fields == {"round": 2}
    with pytest.raises(errors.ConsensusRoundNotOpen):
        fresh.tally(2)
    fresh.pass_update_phase(1)
    entries = [A, 800_000, 600_000, A, A, A]  # 3, 4 and 5 posted nothing
    fresh.vote(1, 0, entries)
    deadline = fresh.board.round_info(1).ballot_deadline
    fresh.pass_ballot_phase(1)

    with pytest.raises(errors.ConsensusBallotPhaseOver) as over:
        fresh.vote(1, 1, [700_000, A, 650_000, A, A, A])

    assert over.value.fields == {"round": 1, "deadline": deadline}
    assert fresh.consensus.voted_bitmap(1) == 0b1


def test_ballots_and_tallies_after_the_tally_are_refused(session: Session) -> None:
    _vote_all(session, PROFILE)
    session.tally(1)

    with pytest.raises(errors.ConsensusElectionClosed) as caught:
        session.tally(1)
    assert caught.value.fields == {"round": 1}
    with pytest.raises(errors.ConsensusAlreadyVoted):
        session.vote(1, 0, PROFILE[0])


# ─────────────────────────── deployment ───────────────────────────


def _board_naming_the_next_deployment(session: Session) -> BulletinBoardClient:
    """A board of ``session``'s terms naming the address the server's next deployment but one gets."""
    terms = session.terms
    server = session.server.address
    predicted = get_create_address(server, session.w3.eth.get_transaction_count(server) + 1)
    settings = DeploySettings(predicted, terms.nonce, terms.phases, terms.initial_model, terms.update_format)
    board, _ = BulletinBoardClient.deploy(
        session.w3, server=server, participants=terms.participants, settings=settings
    )
    return board


@pytest.mark.parametrize("f", [N, N + 1, 2**256 - 1])
def test_assumed_attackers_not_below_the_participants_are_refused(session: Session, f: int) -> None:
    board = _board_naming_the_next_deployment(session)

    with pytest.raises(errors.GramGateInvalidAssumedAttackers) as caught:
        GramGateConsensusClient.deploy(
            session.w3, server=session.server.address, board=board.address, candidates=M, assumed_attackers=f
        )

    assert caught.value.fields == {"assumedAttackers": f, "participants": N}


@pytest.mark.parametrize("m", [0, N])
def test_a_candidate_count_outside_one_to_n_minus_one_is_refused(session: Session, m: int) -> None:
    board = _board_naming_the_next_deployment(session)

    with pytest.raises(errors.ConsensusInvalidCandidateCount) as caught:
        GramGateConsensusClient.deploy(
            session.w3, server=session.server.address, board=board.address, candidates=m, assumed_attackers=0
        )

    assert caught.value.fields == {"candidates": m, "participants": N}


def test_a_contract_for_a_board_that_names_another_is_refused(session: Session) -> None:
    with pytest.raises(errors.ConsensusBoardMismatch) as caught:
        GramGateConsensusClient.deploy(
            session.w3,
            server=session.server.address,
            board=session.board.address,
            candidates=M,
            assumed_attackers=0,
        )

    assert caught.value.fields == {"board": session.board.address, "named": session.consensus.address}

"""The consensus contract counts each signed ballot once, verifies rankings, and elects by Borda."""

from __future__ import annotations

import pytest

from seccl.chain import errors
from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import MessageKind
from seccl.chain.consensus import ConsensusClient
from seccl.election import borda_tally, voter_ranking
from seccl.protocol.messages import EvaluationMessage
from tests.chain.helpers import FAR_FUTURE, Session, deploy_session
from tests.conftest import make_accounts

N, M = 5, 2
# Voter i's scores for everybody (own entry zero), in parts per million.
PROFILE = [
    [0, 900_000, 800_000, 100_000, 100_000],
    [700_000, 0, 900_000, 200_000, 100_000],
    [600_000, 950_000, 0, 100_000, 300_000],
    [500_000, 900_000, 800_000, 0, 100_000],
    [400_000, 900_000, 800_000, 100_000, 0],
]


@pytest.fixture
def session(backend: ChainBackend) -> Session:
    s = deploy_session(backend, n=N, m=M)
    s.consensus.open_election(1, FAR_FUTURE)
    return s


def test_elects_what_the_reference_elects_and_records_every_ballot(session: Session) -> None:
    for voter, scores in zip(session.accounts, PROFILE, strict=True):
        session.vote(1, voter, scores)

    result = session.consensus.tally(1, n=N)

    expected = borda_tally(dict(enumerate(PROFILE)), N, M)
    assert result.candidates == expected.candidates == (1, 2)
    assert session.consensus.totals_of(1) == expected.totals
    assert session.consensus.elected_of(1) == expected.candidates
    assert session.consensus.election_record(1) == result
    ballot = session.consensus.ballot_of(1, session.accounts[3].address)
    assert ballot is not None and ballot.scores == tuple(PROFILE[3])
    assert ballot.ranking == voter_ranking(PROFILE[3], 3, M)


def test_a_voter_verifies_its_ballot_digest_over_its_own_connection(
    session: Session, backend: ChainBackend
) -> None:
    voter = session.accounts[0]
    digest, signature = session.sign_scores(1, voter, PROFILE[0])
    session.consensus.submit_scores(1, voter.address, PROFILE[0], signature)

    reader = session.consensus.for_reader(backend.connect())
    ballot = reader.ballot_of(1, voter.address)

    assert ballot is not None and ballot.digest == digest
    assert reader.has_voted(1, voter.address)
    assert not reader.has_voted(1, session.accounts[1].address)


def test_rejects_a_double_vote(session: Session) -> None:
    voter = session.accounts[0]
    session.vote(1, voter, PROFILE[0])

    with pytest.raises(errors.ConsensusAlreadyVoted):
        session.vote(1, voter, PROFILE[0])

    assert session.consensus.election_of(1).ballots == 1


def test_rejects_scores_altered_by_the_relay(session: Session) -> None:
    voter = session.accounts[0]
    _, signature = session.sign_scores(1, voter, PROFILE[0])
    altered = [0, 100_000, 800_000, 900_000, 100_000]

    with pytest.raises(errors.ConsensusInvalidSignature):
        session.consensus.submit_scores(1, voter.address, altered, signature)

    assert not session.consensus.has_voted(1, voter.address)


def test_rejects_a_forged_ballot_signature(session: Session) -> None:
    victim, forger = session.accounts[0], session.accounts[1]
    victims_digest = EvaluationMessage(1, victim.address, tuple(PROFILE[0])).digest()
    forged = session.board.sign(forger, 1, MessageKind.EVALUATION, victims_digest)

    with pytest.raises(errors.ConsensusInvalidSignature) as caught:
        session.consensus.submit_scores(1, victim.address, PROFILE[0], forged)
    assert caught.value.fields["signer"] == forger.address


def test_rejects_a_self_score(session: Session) -> None:
    voter = session.accounts[0]
    with pytest.raises(errors.ConsensusSelfScore):
        session.vote(1, voter, [1_000_000, *PROFILE[0][1:]])


def test_rejects_a_ranking_that_puts_the_voter_first(session: Session) -> None:
    voter = session.accounts[0]
    with pytest.raises(errors.ConsensusSelfScore):
        session.vote(1, voter, PROFILE[0], ranking=[0, 1])


@pytest.mark.parametrize(
    "ranking, position",
    [
        ([2, 1], 1),  # wrong order: 1 scored higher than 2
        ([1, 1], 1),  # repeated
        ([1, 9], 1),  # out of range
        ([1, 3], 1),  # 3 is ranked above 2 although 2 scored higher
        ([1, 2, 3], None),  # wrong length
    ],
)
def test_rejects_a_ranking_that_is_not_the_voters_top_m(
    session: Session, ranking: list[int], position: int | None
) -> None:
    voter = session.accounts[0]
    expected = errors.ConsensusWrongLength if position is None else errors.ConsensusInvalidRanking
    with pytest.raises(expected):
        session.vote(1, voter, PROFILE[0], ranking=ranking)


def test_breaks_score_ties_in_a_ranking_by_lower_index(session: Session) -> None:
    voter = session.accounts[0]
    tied = [0, 500_000, 500_000, 500_000, 100_000]
    with pytest.raises(errors.ConsensusInvalidRanking):
        session.vote(1, voter, tied, ranking=[2, 1])
    session.vote(1, voter, tied, ranking=[1, 2])
    assert session.consensus.totals_of(1) == (0, 2, 1, 0, 0)


def test_rejects_wrong_score_lengths(session: Session) -> None:
    with pytest.raises(errors.ConsensusWrongLength) as caught:
        session.vote(1, session.accounts[0], PROFILE[0][:4], ranking=[1, 2])
    assert caught.value.fields == {"expected": N, "actual": 4}


def test_rejects_an_unknown_voter(session: Session) -> None:
    stranger = make_accounts(1, tag="stranger")[0]
    with pytest.raises(errors.ConsensusUnknownVoter):
        session.vote(1, stranger, PROFILE[0], ranking=[1, 2])


def test_rejects_ballots_for_a_wrong_round(session: Session) -> None:
    with pytest.raises(errors.ConsensusElectionNotOpen):
        session.vote(2, session.accounts[0], PROFILE[0])
    with pytest.raises(errors.ConsensusInvalidRound):
        session.consensus.open_election(3, FAR_FUTURE)


def test_rejects_ballots_after_the_tally(session: Session) -> None:
    for voter, scores in zip(session.accounts, PROFILE, strict=True):
        session.vote(1, voter, scores)
    session.consensus.tally(1, n=N)

    with pytest.raises(errors.ConsensusElectionClosed):
        session.consensus.tally(1, n=N)
    with pytest.raises(errors.ConsensusElectionClosed):
        session.vote(1, session.accounts[0], PROFILE[0])


def test_waits_for_every_ballot_until_the_deadline(backend: ChainBackend) -> None:
    s = deploy_session(backend, n=N, m=M)
    now = int(s.w3.eth.get_block("latest")["timestamp"])
    s.consensus.open_election(1, now + 600)
    for voter, scores in list(zip(s.accounts, PROFILE, strict=True))[:3]:
        s.vote(1, voter, scores)

    with pytest.raises(errors.ConsensusElectionStillOpen) as caught:
        s.consensus.tally(1, n=N)
    assert caught.value.fields["ballots"] == 3
    with pytest.raises(errors.ConsensusNotTallied):
        s.consensus.elected_of(1)

    backend.advance_time(3600)
    with pytest.raises(errors.ConsensusDeadlinePassed):
        s.vote(1, s.accounts[3], PROFILE[3])
    result = s.consensus.tally(1, n=N)
    assert result.ballots == 3
    assert result.candidates == borda_tally(dict(enumerate(PROFILE[:3])), N, M).candidates


def test_elects_nobody_without_ballots(backend: ChainBackend) -> None:
    s = deploy_session(backend, n=N, m=M)
    now = int(s.w3.eth.get_block("latest")["timestamp"])
    s.consensus.open_election(1, now + 1)
    backend.advance_time(60)

    assert s.consensus.tally(1, n=N).candidates == ()


def test_anyone_may_tally_but_only_the_server_relays(session: Session) -> None:
    intruder = session.w3.eth.accounts[2]
    hijacked = ConsensusClient(session.w3, session.consensus.address, sender=intruder)
    _, signature = session.sign_scores(1, session.accounts[0], PROFILE[0])

    with pytest.raises(errors.ConsensusUnauthorizedRelay):
        hijacked.submit_scores(1, session.accounts[0].address, PROFILE[0], signature)
    with pytest.raises(errors.ConsensusUnauthorizedRelay):
        hijacked.open_election(2, FAR_FUTURE)
    for voter, scores in zip(session.accounts, PROFILE, strict=True):
        session.vote(1, voter, scores)
    assert hijacked.tally(1, n=N).candidates == (1, 2)


@pytest.mark.parametrize("m", [0, N])
def test_rejects_a_candidate_count_outside_one_to_n_minus_one(
    backend: ChainBackend, m: int
) -> None:
    s = deploy_session(backend, n=N, m=1)
    with pytest.raises(errors.ConsensusInvalidCandidateCount):
        ConsensusClient.deploy(s.w3, server=s.server, board=s.board.address, candidates=m)

"""The consensus contract counts each signed ballot once, in its phase, verifies rankings, and
elects the eligible participants with the best mean Borda points; anyone may tally in time."""

from __future__ import annotations

import pytest

from seccl.chain import errors
from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import MessageKind
from seccl.chain.consensus import ConsensusClient, ElectionState
from seccl.chain.signing import SigningDomain
from seccl.election import ABSTAIN, borda_tally, tie_key, voter_ranking
from seccl.protocol.messages import EvaluationMessage
from tests.chain.helpers import Session, deploy
from tests.conftest import make_accounts

N, M = 5, 2
A = ABSTAIN
# Voter i's scores for everybody in parts per million: its own entry ABSTAIN, and voter 4 could
# not assess participant 0.
PROFILE = [
    [A, 900_000, 800_000, 100_000, 200_000],
    [700_000, A, 900_000, 200_000, 100_000],
    [600_000, 950_000, A, 100_000, 300_000],
    [500_000, 900_000, 800_000, A, 100_000],
    [A, 900_000, 800_000, 100_000, A],
]


def _expected(session: Session, ballots: dict[int, list[int]], round_: int = 1, eligible=None):
    return borda_tally(
        ballots, N, M, tie_seed=session.board.tie_seed_of(round_), round_=round_, eligible=eligible
    )


@pytest.fixture
def fresh(backend: ChainBackend) -> Session:
    """A session in round 1's update phase: no update posted yet."""
    return deploy(backend, n=N, m=M, tag="consensus")


@pytest.fixture
def session(fresh: Session) -> Session:
    """A session in round 1's ballot phase: every update is on the board."""
    fresh.post_updates(1)
    return fresh


# ─────────────────────────── counting and electing ───────────────────────────


def test_elects_what_the_reference_elects_and_records_every_ballot(session: Session) -> None:
    receipts = [session.vote(1, voter, scores) for voter, scores in enumerate(PROFILE)]

    result = session.tally(1)

    expected = _expected(session, dict(enumerate(PROFILE)))
    assert result.candidates == expected.candidates == (1, 2)
    assert result.ballots == N
    points, abstentions = session.consensus.totals_of(1)
    assert points == expected.totals
    assert abstentions == (1, 0, 0, 0, 0)
    assert tuple(N - 1 - a for a in abstentions) == expected.assessors
    assert session.consensus.elected_of(1) == expected.candidates
    assert session.consensus.election_of(1).tallied and session.consensus.is_tallied(1)
    assert session.consensus.voted_bitmap(1) == 2**N - 1
    ballot = session.consensus.ballot_in_transaction(receipts[3].tx_hash)
    assert ballot is not None and ballot.scores == tuple(PROFILE[3])
    assert ballot.digest == EvaluationMessage(1, session.accounts[3].address, tuple(PROFILE[3])).digest()
    tie_seed = session.board.tie_seed_of(1)
    assert ballot.ranking == voter_ranking(PROFILE[3], 3, M, tie_seed=tie_seed, round_=1)


def test_the_tally_event_is_the_election_record(session: Session) -> None:
    for voter, scores in enumerate(PROFILE):
        session.vote(1, voter, scores)

    result = session.tally(1)

    args = session.consensus.contract.events.CandidatesElected().process_receipt(
        session.w3.eth.get_transaction_receipt(result.tx_hash)  # type: ignore[arg-type]
    )[0]["args"]
    assert (int(args["round"]), tuple(args["candidates"]), int(args["ballots"])) == (1, (1, 2), N)
    assert result.receipt is not None and result.receipt.gas_used > 0


def test_a_voter_submits_its_own_ballot_and_checks_it_over_its_own_connection(session: Session) -> None:
    voter = session.accounts[0]
    _, own_consensus = session.own_clients(voter)
    digest, _ = session.sign_scores(1, 0, PROFILE[0])

    receipt = session.vote(1, 0, PROFILE[0], via=own_consensus)

    sent = session.w3.eth.get_transaction(receipt.tx_hash)  # type: ignore[arg-type]
    assert sent["from"] == voter.address
    _, reader = session.reader()
    ballot = reader.ballot_in_transaction(receipt.tx_hash)
    assert ballot is not None and ballot.digest == digest and ballot.voter == voter.address
    assert reader.has_voted(1, voter.address)
    assert not reader.has_voted(1, session.accounts[1].address)
    assert not reader.has_voted(1, make_accounts(1, "stranger")[0].address)


def test_anyone_may_tally_once_every_ballot_is_in(session: Session) -> None:
    for voter, scores in enumerate(PROFILE):
        session.vote(1, voter, scores)
    _, stranger_consensus = session.own_clients(make_accounts(1, "tallier")[0])

    result = stranger_consensus.tally(1, n=N)

    assert result.candidates == (1, 2)
    assert session.board.round_info(1).ballot_deadline > session.now()  # before the deadline


def test_anyone_may_tally_after_the_ballot_deadline_with_the_ballots_cast(session: Session) -> None:
    for voter in (0, 2, 3):
        session.vote(1, voter, PROFILE[voter])
    with pytest.raises(errors.ConsensusElectionStillOpen) as caught:
        session.tally(1)
    deadline = session.board.round_info(1).ballot_deadline
    assert caught.value.fields == {"round": 1, "ballots": 3, "expected": N, "deadline": deadline}
    with pytest.raises(errors.ConsensusNotTallied) as not_tallied:
        session.consensus.elected_of(1)
    assert not_tallied.value.fields == {"round": 1}
    session.pass_ballot_phase(1)
    _, stranger_consensus = session.own_clients(make_accounts(1, "tallier")[0])

    result = stranger_consensus.tally(1, n=N)

    assert result.ballots == 3
    assert result.candidates == _expected(session, {v: PROFILE[v] for v in (0, 2, 3)}).candidates
    assert session.consensus.elected_of(1) == result.candidates


def test_elects_nobody_without_ballots(session: Session) -> None:
    session.pass_ballot_phase(1)

    assert session.tally(1).candidates == ()
    assert session.consensus.elected_of(1) == ()
    session.post_model(1)  # an empty election still lets the round end
    assert session.board.current_round() == 2


def test_ballots_open_when_every_update_is_revealed_or_at_the_reveal_deadline(fresh: Session) -> None:
    fresh.post_updates(1, [0, 1, 2])
    deadline = fresh.board.round_info(1).reveal_deadline

    with pytest.raises(errors.ConsensusBallotPhaseNotOpen) as caught:
        fresh.vote(1, 0, PROFILE[0])
    assert caught.value.fields == {"round": 1, "revealDeadline": deadline}
    with pytest.raises(errors.ConsensusElectionStillOpen):
        fresh.tally(1)
    fresh.pass_update_phase(1)
    fresh.vote(1, 0, PROFILE[0])

    assert fresh.consensus.has_voted(1, fresh.accounts[0].address)


def test_a_participant_without_an_update_is_never_elected_even_when_every_score_ties(fresh: Session) -> None:
    # The participant who would win every tie this round posts nothing.
    seed = bytes(range(32))
    keys = [tie_key(seed, 1, i) for i in range(N)]
    absent = keys.index(min(keys))
    eligible = [i for i in range(N) if i != absent]
    fresh.fix_tie_seed(seed, eligible)
    fresh.post_updates(1, eligible)
    fresh.pass_update_phase(1)
    ballots = {voter: fresh.scores(voter, 500_000) for voter in range(N)}  # the absent one votes too

    for voter, scores in ballots.items():
        fresh.vote(1, voter, scores)
    result = fresh.tally(1)

    assert absent not in result.candidates and len(result.candidates) == M
    assert result.candidates == _expected(fresh, ballots, eligible=eligible).candidates
    assert fresh.consensus.totals_of(1)[0][absent] == 0
    # The others are elected in the order of their tie keys: every ballot follows them.
    assert list(result.candidates) == sorted(eligible, key=keys.__getitem__)[:M]


def test_only_eligible_participants_are_elected_even_when_fewer_than_m(backend: ChainBackend) -> None:
    s = deploy(backend, n=N, m=3, tag="consensus-few")
    s.post_updates(1, [4])
    s.pass_update_phase(1)
    for voter in range(N):
        s.vote(1, voter, s.scores(voter, 1_000_000))

    assert s.tally(1).candidates == (4,)


def test_an_abstention_neither_rewards_nor_punishes(session: Session) -> None:
    # Participant 1 wins every first place it is assessed for, but one voter abstains on it:
    # its mean stays the best.
    ballots = {
        0: [A, 900_000, 100_000, 200_000, 300_000],
        2: [300_000, A, A, 200_000, 900_000],
        3: [300_000, 800_000, 100_000, A, 200_000],
        4: [200_000, 900_000, 300_000, 100_000, A],
    }
    for voter, scores in ballots.items():
        session.vote(1, voter, scores)
    session.pass_ballot_phase(1)

    result = session.tally(1)

    expected = _expected(session, ballots)
    assert result.candidates == expected.candidates
    assert result.candidates[0] == 1
    assert session.consensus.totals_of(1) == (expected.totals, (0, 1, 0, 0, 0))


def test_a_participant_assessed_by_half_of_the_others_or_fewer_is_not_electable(session: Session) -> None:
    # Voters 2 and 3 never saw participant 1's update (the server kept it from them, silently);
    # voter 0 colludes and ranks it first. Half of its assessors missing: it cannot be elected.
    ballots = {
        0: [A, 1_000_000, 100_000, 200_000, 300_000],
        2: [300_000, A, A, 200_000, 900_000],
        3: [300_000, A, 100_000, A, 200_000],
        4: [200_000, 900_000, 300_000, 100_000, A],
    }
    for voter, scores in ballots.items():
        session.vote(1, voter, scores)
    session.pass_ballot_phase(1)

    result = session.tally(1)

    assert result.candidates == _expected(session, ballots).candidates
    assert 1 not in result.candidates


def test_when_every_voter_abstains_nobody_is_elected(session: Session) -> None:
    for voter in range(N):
        session.vote(1, voter, [A] * N)

    result = session.tally(1)

    assert result.candidates == () and result.ballots == N


# ─────────────────────────── refused ballots ───────────────────────────


def test_a_second_ballot_of_the_same_voter_is_refused(session: Session) -> None:
    session.vote(1, 0, PROFILE[0])

    with pytest.raises(errors.ConsensusAlreadyVoted) as caught:
        session.vote(1, 0, PROFILE[0])

    assert caught.value.fields == {"round": 1, "voter": session.accounts[0].address}
    assert session.consensus.election_of(1).ballots == 1


def test_scores_altered_by_the_relay_are_refused(session: Session) -> None:
    _, signature = session.sign_scores(1, 0, PROFILE[0])
    altered = [A, 100_000, 800_000, 900_000, 100_000]

    with pytest.raises(errors.ConsensusInvalidSignature):
        session.consensus.submit_scores(1, session.accounts[0].address, altered, signature)

    assert not session.consensus.has_voted(1, session.accounts[0].address)


def test_a_ballot_signed_by_someone_else_is_refused(session: Session) -> None:
    victim, forger = session.accounts[0], session.accounts[1]
    victims_digest = EvaluationMessage(1, victim.address, tuple(PROFILE[0])).digest()
    forged = session.sign(forger, 1, MessageKind.EVALUATION, victims_digest)

    with pytest.raises(errors.ConsensusInvalidSignature) as caught:
        session.consensus.submit_scores(1, victim.address, PROFILE[0], forged)

    assert caught.value.fields == {"voter": victim.address, "signer": forger.address}


def test_a_ballot_signed_for_another_consensus_contract_is_refused(
    session: Session, backend: ChainBackend
) -> None:
    other = deploy(backend, n=N, m=M, tag="consensus")
    voter = session.accounts[0]
    evaluation = EvaluationMessage(1, voter.address, tuple(PROFILE[0])).digest()
    d = session.domain
    foreign = SigningDomain(d.chain_id, d.board, other.consensus.address, d.nonce)

    with pytest.raises(errors.ConsensusInvalidSignature):
        session.consensus.submit_scores(
            1, voter.address, PROFILE[0], foreign.sign(voter, 1, MessageKind.EVALUATION, evaluation)
        )
    with pytest.raises(errors.ConsensusInvalidSignature):  # the other session's own signature
        session.consensus.submit_scores(1, voter.address, PROFILE[0], other.sign_scores(1, 0, PROFILE[0])[1])


def test_a_ballot_signed_for_another_round_or_as_another_kind_is_refused(session: Session) -> None:
    voter = session.accounts[0]
    evaluation = EvaluationMessage(1, voter.address, tuple(PROFILE[0])).digest()

    for round_, kind in ((2, MessageKind.EVALUATION), (1, MessageKind.UPDATE)):
        with pytest.raises(errors.ConsensusInvalidSignature):
            session.consensus.submit_scores(
                1, voter.address, PROFILE[0], session.sign(voter, round_, kind, evaluation)
            )


def test_a_voter_scoring_itself_is_refused(session: Session) -> None:
    with pytest.raises(errors.ConsensusSelfScore) as caught:
        session.vote(1, 0, [1_000_000, *PROFILE[0][1:]], ranking=[1, 2])

    assert caught.value.fields == {"round": 1, "voter": session.accounts[0].address}


def test_a_ranking_that_puts_the_voter_first_is_refused(session: Session) -> None:
    with pytest.raises(errors.ConsensusSelfScore):
        session.vote(1, 0, PROFILE[0], ranking=[0, 1])


@pytest.mark.parametrize(("position", "score"), [(1, 1_000_001), (3, 2**32 - 2)])
def test_a_score_neither_in_ppm_nor_abstain_is_refused(session: Session, position: int, score: int) -> None:
    scores = list(PROFILE[0])
    scores[position] = score

    with pytest.raises(errors.ConsensusInvalidScore) as caught:
        session.vote(1, 0, scores)

    assert caught.value.fields == {"position": position, "score": score}


@pytest.mark.parametrize(
    ("ranking", "position"),
    [
        ([2, 1], 1),  # wrong order: 1 scored higher than 2
        ([1, 1], 1),  # repeated
        ([1, 9], 1),  # out of range
        ([1, 3], 2),  # 3 ranked although 2 scored higher and is left out
        ([4, 3], 2),  # both in order, but both below the unranked 1 and 2
    ],
    ids=["order", "repeated", "range", "skips-a-better-one", "not-the-top"],
)
def test_a_ranking_that_is_not_the_voters_top_m_is_refused(
    session: Session, ranking: list[int], position: int
) -> None:
    with pytest.raises(errors.ConsensusInvalidRanking) as caught:
        session.vote(1, 0, PROFILE[0], ranking=ranking)

    assert caught.value.fields == {"position": position}


def test_a_ranking_that_names_an_abstained_participant_is_refused(session: Session) -> None:
    scores = [A, A, 800_000, 100_000, 200_000]  # voter 0 could not assess 1

    with pytest.raises(errors.ConsensusInvalidRanking):
        session.vote(1, 0, scores, ranking=[1, 2])
    session.vote(1, 0, scores)  # the client's ranking leaves 1 out

    assert session.consensus.totals_of(1) == ((0, 0, 2, 0, 1), (0, 1, 0, 0, 0))


def test_a_ranking_that_names_a_participant_without_an_update_is_refused(fresh: Session) -> None:
    fresh.post_updates(1, [0, 2, 3, 4])  # participant 1 posts nothing
    fresh.pass_update_phase(1)

    with pytest.raises(errors.ConsensusInvalidRanking) as caught:
        fresh.vote(1, 0, PROFILE[0], ranking=[1, 2])
    assert caught.value.fields == {"position": 0}
    receipt = fresh.vote(1, 0, PROFILE[0])

    assert fresh.consensus.ballot_in_transaction(receipt.tx_hash).ranking == (2, 4)  # type: ignore[union-attr]


def test_equal_scores_rank_by_the_rounds_tie_keys(session: Session) -> None:
    tied = [A, 500_000, 500_000, 500_000, 100_000]
    order = sorted((1, 2, 3), key=lambda i: tie_key(session.board.tie_seed_of(1), 1, i))

    with pytest.raises(errors.ConsensusInvalidRanking):
        session.vote(1, 0, tied, ranking=[order[1], order[0]])
    with pytest.raises(errors.ConsensusInvalidRanking):  # the tie's last one is not its top
        session.vote(1, 0, tied, ranking=[order[0], order[2]])
    session.vote(1, 0, tied)

    points = [0] * N
    points[order[0]], points[order[1]] = 2, 1
    assert session.consensus.totals_of(1)[0] == tuple(points)


@pytest.mark.parametrize(
    ("scores", "ranking", "fields"),
    [
        (PROFILE[0][:4], [1, 2], {"expected": 4 * N, "actual": 4 * 4}),  # scores: 4 bytes each
        ([*PROFILE[0], 0], [1, 2], {"expected": 4 * N, "actual": 4 * 6}),
        (PROFILE[0], [1, 2, 4], {"expected": M, "actual": 3}),
        (PROFILE[0], [1], {"expected": M, "actual": 1}),
        (PROFILE[0], [], {"expected": M, "actual": 0}),
        ([A, A, A, A, 5], [], {"expected": 1, "actual": 0}),  # one assessed: a ranking of one
    ],
    ids=["few-scores", "many-scores", "long-ranking", "short-ranking", "empty-ranking", "one-rankable"],
)
def test_scores_or_rankings_of_the_wrong_length_are_refused(
    session: Session, scores: list[int], ranking: list[int], fields: dict[str, int]
) -> None:
    with pytest.raises(errors.ConsensusWrongLength) as caught:
        session.vote(1, 0, scores, ranking=ranking)

    assert caught.value.fields == fields


def test_a_ballot_of_someone_outside_the_roster_is_refused(session: Session) -> None:
    stranger = make_accounts(1, tag="stranger")[0]
    evaluation = EvaluationMessage(1, stranger.address, tuple(PROFILE[0])).digest()

    with pytest.raises(errors.ConsensusUnknownVoter) as caught:
        session.consensus.submit_scores(
            1,
            stranger.address,
            PROFILE[0],
            session.sign(stranger, 1, MessageKind.EVALUATION, evaluation),
            ranking=[1, 2],
        )

    assert caught.value.fields == {"voter": stranger.address}


def test_ballots_and_tallies_for_a_round_not_open_are_refused(session: Session) -> None:
    with pytest.raises(errors.ConsensusRoundNotOpen) as caught:
        session.vote(2, 0, PROFILE[0], ranking=[1, 2])
    assert caught.value.fields == {"round": 2}
    with pytest.raises(errors.ConsensusRoundNotOpen):
        session.tally(2)


def test_a_ballot_after_the_ballot_deadline_is_refused(session: Session) -> None:
    session.vote(1, 0, PROFILE[0])
    deadline = session.board.round_info(1).ballot_deadline
    session.pass_ballot_phase(1)

    with pytest.raises(errors.ConsensusBallotPhaseOver) as caught:
        session.vote(1, 1, PROFILE[1])

    assert caught.value.fields == {"round": 1, "deadline": deadline}


def test_ballots_and_tallies_after_the_tally_are_refused(session: Session) -> None:
    for voter, scores in enumerate(PROFILE):
        session.vote(1, voter, scores)
    session.tally(1)

    with pytest.raises(errors.ConsensusElectionClosed) as caught:
        session.tally(1)
    assert caught.value.fields == {"round": 1}
    # Tallied early because every ballot was in: any further ballot is a second one.
    with pytest.raises(errors.ConsensusAlreadyVoted):
        session.vote(1, 0, PROFILE[0])


def test_a_ballot_after_a_tally_at_the_deadline_is_refused_as_late(session: Session) -> None:
    session.vote(1, 0, PROFILE[0])
    session.pass_ballot_phase(1)
    session.tally(1)

    with pytest.raises(errors.ConsensusBallotPhaseOver):
        session.vote(1, 1, PROFILE[1])
    assert session.consensus.election_of(1) == ElectionState(ballots=1, tallied=True)


def test_an_election_of_an_earlier_round_stays_closed(session: Session) -> None:
    for voter, scores in enumerate(PROFILE):
        session.vote(1, voter, scores)
    session.tally(1)
    session.post_model(1)
    session.post_updates(2)

    with pytest.raises(errors.ConsensusElectionClosed):
        session.tally(1)
    session.vote(2, 0, PROFILE[0])  # round 2 takes ballots
    assert session.consensus.election_of(2).ballots == 1


# ─────────────────────────── deployment ───────────────────────────


@pytest.mark.parametrize("m", [0, N])
def test_a_candidate_count_outside_one_to_n_minus_one_is_refused(backend: ChainBackend, m: int) -> None:
    with pytest.raises(errors.ConsensusInvalidCandidateCount) as caught:
        deploy(backend, n=N, m=m, tag="consensus-m")

    assert caught.value.fields == {"candidates": m, "participants": N}


def test_a_consensus_contract_for_a_board_that_names_another_is_refused(session: Session) -> None:
    with pytest.raises(errors.ConsensusBoardMismatch) as caught:
        ConsensusClient.deploy(
            session.w3, server=session.server.address, board=session.board.address, candidates=M
        )

    assert caught.value.fields == {"board": session.board.address, "named": session.consensus.address}

"""The Borda reference elects what hand-computed profiles say, with the documented tie rules."""

from __future__ import annotations

import math

import pytest

from seccl.election import (
    ElectionOutcome,
    borda_tally,
    borda_totals,
    candidate_count,
    voter_ranking,
)

# n = 4, m = 2, worked by hand:
#   voter 0 ranks 2 (30) > 3 (20) > 1 (10)           -> 2 gets 2, 3 gets 1
#   voter 1 ranks 3 (9) > 0 (5) = 2 (5), 0 before 2  -> 3 gets 2, 0 gets 1
#   voter 2 ranks 1 (8) > 0 (7) > 3 (1)              -> 1 gets 2, 0 gets 1
#   voter 3 scores everyone 1: index order 0, 1, 2   -> 0 gets 2, 1 gets 1
# totals (4, 3, 2, 3): 0 first, then 1 and 3 tie at 3 and the lower index 1 wins.
PROFILE = {
    0: [0, 10, 30, 20],
    1: [5, 0, 5, 9],
    2: [7, 8, 0, 1],
    3: [1, 1, 1, 0],
}


def test_the_hand_worked_profile_elects_0_then_1_with_totals_4_3_2_3() -> None:
    outcome = borda_tally(PROFILE, n=4, m=2)

    assert outcome == ElectionOutcome(candidates=(0, 1), totals=(4, 3, 2, 3))


def test_each_voter_ranks_the_others_as_worked_by_hand() -> None:
    rankings = [voter_ranking(PROFILE[v], v, 2) for v in range(4)]

    assert rankings == [(2, 3), (3, 0), (1, 0), (0, 1)]


def test_the_top_m_get_positional_points_m_down_to_1_and_the_rest_get_nothing() -> None:
    scores = [0, 1, 4, 3, 2]  # voter 0 ranks 2 > 3 > 4 > 1

    totals = borda_totals({0: scores}, n=5, m=3)

    assert totals == (0, 0, 3, 2, 1)


def test_points_from_several_voters_add_up() -> None:
    ballots = {0: [0, 9, 1], 1: [9, 0, 1], 2: [1, 9, 0]}  # m = 1: each gives 1 point

    assert borda_totals(ballots, n=3, m=1) == (1, 2, 0)


def test_equal_scores_rank_the_lower_participant_index_first() -> None:
    assert voter_ranking([0, 7, 7, 7, 7], voter=0, m=4) == (1, 2, 3, 4)
    assert voter_ranking([7, 5, 0, 7, 5], voter=2, m=4) == (0, 3, 1, 4)


def test_a_higher_score_beats_a_lower_index() -> None:
    assert voter_ranking([0, 1, 2, 3], voter=0, m=3) == (3, 2, 1)


def test_equal_totals_elect_the_lower_participant_index_first() -> None:
    # m = 1: voter 0 gives its point to 2, voter 2 gives its point to 1: totals (0, 1, 1).
    outcome = borda_tally({0: [0, 1, 5], 2: [1, 5, 0]}, n=3, m=1)

    assert outcome.totals == (0, 1, 1)
    assert outcome.candidates == (1,)


def test_candidates_are_listed_best_total_first_not_by_index() -> None:
    # m = 2 of 3: voters 0 and 1 put 2 first (2 points), voter 2 puts 0 first.
    outcome = borda_tally({0: [0, 1, 2], 1: [1, 0, 2], 2: [2, 1, 0]}, n=3, m=2)

    assert outcome.totals == (3, 2, 4)
    assert outcome.candidates == (2, 0)


def test_a_voter_never_ranks_itself_even_with_its_own_highest_score() -> None:
    assert voter_ranking([1_000_000, 2, 1], voter=0, m=2) == (1, 2)
    assert borda_totals({0: [1_000_000, 2, 1]}, n=3, m=2) == (0, 2, 1)


def test_a_participant_earns_no_points_from_its_own_ballot() -> None:
    # Everybody scores itself highest; only the others' ballots count.
    ballots = {i: [100 if j == i else j for j in range(4)] for i in range(4)}

    totals = borda_totals(ballots, n=4, m=1)

    # Voters 0, 1, 2 give their point to 3; voter 3 gives it to 2.
    assert totals == (0, 0, 1, 3)


def test_no_ballots_elect_nobody_and_give_every_total_zero() -> None:
    assert borda_tally({}, n=5, m=2) == ElectionOutcome(candidates=(), totals=(0, 0, 0, 0, 0))


def test_a_partial_profile_counts_only_the_ballots_cast() -> None:
    outcome = borda_tally({1: PROFILE[1], 3: PROFILE[3]}, n=4, m=2)

    assert outcome.totals == (3, 1, 0, 2)
    assert outcome.candidates == (0, 3)


def test_the_tally_is_independent_of_ballot_insertion_order() -> None:
    reordered = {v: PROFILE[v] for v in (3, 1, 0, 2)}

    assert borda_tally(reordered, n=4, m=2) == borda_tally(PROFILE, n=4, m=2)


@pytest.mark.parametrize(
    ("fraction", "n", "expected"),
    [
        (0.2, 10, 2),
        (0.2, 20, 4),
        (0.2, 30, 6),
        (0.2, 100, 20),
        (0.2, 11, 3),  # 2.2 rounds up
        (0.2, 6, 2),  # 1.2 rounds up
        (0.5, 7, 4),
    ],
)
def test_candidate_count_is_the_ceiling_of_l_times_n(
    fraction: float, n: int, expected: int
) -> None:
    assert candidate_count(fraction, n) == expected


@pytest.mark.parametrize(
    ("fraction", "n", "expected"),
    [(0.07, 100, 7), (0.14, 50, 7), (0.55, 100, 55), (0.28, 75, 21)],
)
def test_candidate_count_does_not_round_up_floating_point_noise_above_an_integer(
    fraction: float, n: int, expected: int
) -> None:
    assert fraction * n > expected  # the float product overshoots: a bare ceil would say + 1
    assert math.ceil(fraction * n) == expected + 1

    assert candidate_count(fraction, n) == expected


def test_candidate_count_of_one_fifth_of_twenty_is_exactly_four() -> None:
    assert candidate_count(0.2, 20) == 4


@pytest.mark.parametrize(
    ("fraction", "n", "expected"),
    [(1.0, 10, 9), (0.95, 10, 9), (1.0, 2, 1), (1e-12, 10, 1), (0.01, 10, 1)],
)
def test_candidate_count_is_clamped_to_between_1_and_n_minus_1(
    fraction: float, n: int, expected: int
) -> None:
    assert candidate_count(fraction, n) == expected


@pytest.mark.parametrize("fraction", [0.0, -0.2, 1.01, 2.0, math.nan])
def test_candidate_count_rejects_a_fraction_outside_0_exclusive_to_1(fraction: float) -> None:
    with pytest.raises(ValueError, match="candidate fraction"):
        candidate_count(fraction, 10)


@pytest.mark.parametrize("m", [0, -1, 4, 5])
def test_a_tally_rejects_m_outside_1_to_n_minus_1(m: int) -> None:
    with pytest.raises(ValueError, match="m must be between 1 and"):
        borda_tally(PROFILE, n=4, m=m)


@pytest.mark.parametrize("m", [0, 4])
def test_a_ranking_rejects_m_outside_1_to_n_minus_1(m: int) -> None:
    with pytest.raises(ValueError, match="m must be between 1 and 3"):
        voter_ranking([0, 1, 2, 3], voter=0, m=m)


@pytest.mark.parametrize("scores", [[0, 1, 2], [0, 1, 2, 3, 4], []])
def test_a_ballot_that_does_not_score_every_participant_is_rejected(scores: list[int]) -> None:
    with pytest.raises(ValueError, match=f"voter 1 scored {len(scores)} participants, expected 4"):
        borda_tally({0: [0, 1, 2, 3], 1: scores}, n=4, m=2)


@pytest.mark.parametrize("voter", [-1, 4, 10])
def test_a_voter_outside_the_participants_is_rejected(voter: int) -> None:
    with pytest.raises(ValueError, match=f"voter {voter} is not one of the 4 participants"):
        voter_ranking([0, 1, 2, 3], voter=voter, m=2)
    with pytest.raises(ValueError, match=f"voter {voter} is not one of the 4 participants"):
        borda_tally({voter: [0, 1, 2, 3]}, n=4, m=2)

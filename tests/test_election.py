"""The Borda reference elects what hand-computed profiles say: abstention is neutral, only eligible
participants are ranked and elected, and ties follow per-round pseudorandom tie keys."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import pytest
from eth_abi import encode
from eth_utils import keccak

from seccl.election import (
    ABSTAIN,
    MAX_SCORE,
    ElectionOutcome,
    borda_tally,
    candidate_count,
    tie_key,
    voter_ranking,
)

A = ABSTAIN
SEED = keccak(text="seccl-test-election")

# n = 4, m = 2, worked by hand (no voter gives two participants the same score):
#   voter 0 ranks 2 (30) > 3 (20) > 1 (10)   -> 2 gets 2, 3 gets 1
#   voter 1 ranks 3 (9) > 2 (7) > 0 (5)      -> 3 gets 2, 2 gets 1
#   voter 2 ranks 1 (8) > 0 (7) > 3 (1)      -> 1 gets 2, 0 gets 1
#   voter 3 ranks 0 (6) > 2 (2) > 1 (1)      -> 0 gets 2, 2 gets 1
# totals (3, 2, 4, 3), three assessors each: means 1, 2/3, 4/3, 1. Participant 2 first; 0 and 3
# tie at 1, and the lower tie key of the round takes the second place.
PROFILE = {
    0: [A, 10, 30, 20],
    1: [5, A, 7, 9],
    2: [7, 8, A, 1],
    3: [6, 1, 2, A],
}


def tally(ballots, n=4, m=2, *, seed=SEED, round_=1, eligible=None) -> ElectionOutcome:
    return borda_tally(ballots, n, m, tie_seed=seed, round_=round_, eligible=eligible)


def ranking(scores, voter, m, *, seed=SEED, round_=1, eligible=None) -> tuple[int, ...]:
    return voter_ranking(scores, voter, m, tie_seed=seed, round_=round_, eligible=eligible)


def seed_where(first: int, second: int, round_: int = 1) -> bytes:
    """A tie seed under which ``first`` has a lower tie key than ``second`` in ``round_``."""
    for i in range(100):
        seed = keccak(text=f"seccl-test-seed-{i}")
        if tie_key(seed, round_, first) < tie_key(seed, round_, second):
            return seed
    raise AssertionError("no such seed among the first 100")


# ─────────────────────────── tie keys ───────────────────────────


def test_a_tie_key_is_keccak_of_the_abi_encoded_seed_round_and_index() -> None:
    expected = keccak(encode(["bytes32", "uint64", "uint256"], [SEED, 7, 3]))

    assert tie_key(SEED, 7, 3) == int.from_bytes(expected, "big")


def test_tie_keys_change_with_the_round_the_seed_and_the_index() -> None:
    keys = {tie_key(SEED, r, i) for r in range(1, 6) for i in range(5)}
    other_seed = {tie_key(keccak(text="another seed"), 1, i) for i in range(5)}

    assert len(keys) == 25
    assert other_seed.isdisjoint(keys)


def test_the_tie_order_is_a_fresh_permutation_each_round() -> None:
    orders = [tuple(sorted(range(5), key=lambda i, r=r: tie_key(SEED, r, i))) for r in range(1, 21)]

    assert len(set(orders)) > 15  # 120 permutations: repeats are rare


def test_ties_favour_no_place_in_the_roster() -> None:
    n, rounds = 5, 2_000
    first = Counter(min(range(n), key=lambda i, r=r: tie_key(SEED, r, i)) for r in range(1, rounds + 1))

    # Each place wins the round's ties about a fifth of the time (400 ± 4 standard deviations).
    assert set(first) == set(range(n))
    assert all(abs(count - rounds / n) < 4 * math.sqrt(rounds * 0.2 * 0.8) for count in first.values())


# ─────────────────────────── a voter's ranking ───────────────────────────


def test_each_voter_ranks_the_others_as_worked_by_hand() -> None:
    rankings = [ranking(PROFILE[v], v, 2) for v in range(4)]

    assert rankings == [(2, 3), (3, 2), (1, 0), (0, 2)]


def test_a_higher_score_beats_any_tie_key() -> None:
    assert ranking([A, 1, 2, 3], 0, 3) == (3, 2, 1)
    assert ranking([A, 1, 2, 3], 0, 3, seed=seed_where(1, 3)) == (3, 2, 1)


def test_equal_scores_rank_by_the_rounds_tie_keys_not_by_index() -> None:
    def order(round_: int) -> tuple[int, ...]:
        return tuple(sorted((1, 2, 3, 4), key=lambda i: tie_key(SEED, round_, i)))

    assert ranking([A, 7, 7, 7, 7], 0, 4) == order(1)
    assert ranking([A, 7, 7, 7, 7], 0, 4, round_=2) == order(2)
    assert len({order(r) for r in range(1, 6)}) > 1
    assert ranking([A, 7, 7, 5, 5], 0, 4, seed=seed_where(2, 1))[:2] == (2, 1)
    assert ranking([A, 7, 7, 5, 5], 0, 4, seed=seed_where(1, 2))[:2] == (1, 2)


def test_a_voter_never_ranks_itself_even_with_its_own_highest_score() -> None:
    assert ranking([MAX_SCORE, 2, 1], 0, 2) == (1, 2)


def test_abstentions_are_never_ranked_and_can_shorten_the_ranking() -> None:
    assert ranking([A, A, 5, 9, A], 0, 3) == (3, 2)
    assert ranking([A, A, A, A], 0, 2) == ()


def test_only_eligible_participants_are_ranked() -> None:
    assert ranking([A, 9, 5, 7], 0, 2, eligible=[0, 2, 3]) == (3, 2)
    assert ranking([A, 9, 5, 7], 0, 2, eligible=[]) == ()
    assert ranking([A, 9, 5, 7], 0, 2, eligible=None) == (1, 3)  # everyone, by default


@pytest.mark.parametrize("m", [0, 4])
def test_a_ranking_rejects_m_outside_1_to_n_minus_1(m: int) -> None:
    with pytest.raises(ValueError, match="m must be between 1 and 3"):
        ranking([A, 1, 2, 3], 0, m)


@pytest.mark.parametrize("voter", [-1, 4, 10])
def test_a_voter_outside_the_participants_is_rejected(voter: int) -> None:
    with pytest.raises(ValueError, match=f"voter {voter} is not one of the 4 participants"):
        ranking([A, 1, 2, 3], voter, 2)
    with pytest.raises(ValueError, match=f"voter {voter} is not one of the 4 participants"):
        tally({voter: [A, 1, 2, 3]})


# ─────────────────────────── the tally ───────────────────────────


def test_the_hand_worked_profile_elects_2_then_the_tie_key_winner_of_0_and_3() -> None:
    outcome = tally(PROFILE)

    assert outcome.totals == (3, 2, 4, 3)
    assert outcome.assessors == (3, 3, 3, 3)
    second = min((0, 3), key=lambda i: tie_key(SEED, 1, i))
    assert outcome.candidates == (2, second)
    assert tally(PROFILE, seed=seed_where(3, 0)).candidates == (2, 3)
    assert tally(PROFILE, seed=seed_where(0, 3)).candidates == (2, 0)


def test_the_top_m_get_positional_points_m_down_to_1_and_the_rest_get_nothing() -> None:
    outcome = tally({0: [A, 1, 4, 3, 2]}, n=5, m=3)  # voter 0 ranks 2 > 3 > 4 > 1

    assert outcome.totals == (0, 0, 3, 2, 1)
    assert outcome.assessors == (0, 1, 1, 1, 1)


def test_candidates_are_the_highest_mean_points_best_first() -> None:
    # m = 2 of 3: voters 0 and 1 put 2 first; voter 2 puts 0 first.
    outcome = tally({0: [A, 1, 2], 1: [1, A, 2], 2: [2, 1, A]}, n=3, m=2)

    assert outcome.totals == (3, 2, 4)
    assert outcome.candidates == (2, 0)


def test_an_abstention_counts_as_no_assessment_not_as_a_low_score() -> None:
    # Voter 3 cannot assess participant 1, which every other assessor puts first.
    ballots = {0: [A, 9, 5, 1], 1: [5, A, 9, 1], 2: [5, 9, A, 1], 3: [5, A, 9, A]}
    scored_zero = {**ballots, 3: [5, 0, 9, A]}

    abstained, punished = tally(ballots, m=1), tally(scored_zero, m=1)

    assert abstained.totals[1] == punished.totals[1] == 2
    assert (abstained.assessors[1], punished.assessors[1]) == (2, 3)
    assert abstained.candidates == (1,)  # mean 2/2 beats participant 2's 2/3
    assert Fraction(punished.totals[1], punished.assessors[1]) == Fraction(2, 3)  # a tie with 2


def test_a_ballot_that_abstains_on_everyone_changes_nothing() -> None:
    without = {v: PROFILE[v] for v in (0, 1, 2)}
    with_blank = {**without, 3: [A, A, A, A]}

    assert tally(with_blank) == tally(without)


def test_no_assessor_means_a_mean_of_zero() -> None:
    # Nobody assesses 3; 1 and 2 earn points.
    outcome = tally({0: [A, 2, 1, A]}, m=2)

    assert outcome.assessors[3] == 0 and outcome.totals[3] == 0
    assert outcome.candidates == (1, 2)


def test_a_participant_without_an_update_is_never_elected_even_with_the_best_scores() -> None:
    ballots = {v: [A if j == v else (MAX_SCORE if j == 0 else 1) for j in range(4)] for v in range(4)}

    outcome = tally(ballots, eligible=[1, 2, 3])

    assert 0 not in outcome.candidates and len(outcome.candidates) == 2
    assert outcome.totals[0] == 0 and outcome.assessors[0] == 0
    assert tally(ballots).candidates[0] == 0  # eligible, it would win


def test_fewer_eligible_than_m_elects_only_the_eligible() -> None:
    assert tally(PROFILE, m=3, eligible=[1]).candidates == (1,)
    assert tally(PROFILE, m=3, eligible=[]).candidates == ()


def test_an_ineligible_voter_still_votes() -> None:
    outcome = tally({3: PROFILE[3]}, eligible=[0, 1, 2])

    assert outcome.totals == (2, 0, 1, 0)
    assert outcome.candidates == (0, 2)


def test_no_ballots_elect_nobody_and_give_every_total_zero() -> None:
    assert tally({}, n=5) == ElectionOutcome(candidates=(), totals=(0,) * 5, assessors=(0,) * 5)


def test_the_tally_is_independent_of_ballot_insertion_order() -> None:
    reordered = {v: PROFILE[v] for v in (3, 1, 0, 2)}

    assert tally(reordered) == tally(PROFILE)


@pytest.mark.parametrize("m", [0, -1, 4, 5])
def test_a_tally_rejects_m_outside_1_to_n_minus_1(m: int) -> None:
    with pytest.raises(ValueError, match="m must be between 1 and"):
        tally(PROFILE, m=m)


@pytest.mark.parametrize("scores", [[A, 1, 2], [A, 1, 2, 3, 4], []])
def test_a_ballot_that_does_not_score_every_participant_is_rejected(scores: list[int]) -> None:
    with pytest.raises(ValueError, match=f"voter 1 scored {len(scores)} participants, expected 4"):
        tally({0: [A, 1, 2, 3], 1: scores})


# ─────────────────────────── M = ⌈l·N⌉ ───────────────────────────


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
def test_candidate_count_is_the_ceiling_of_l_times_n(fraction: float, n: int, expected: int) -> None:
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

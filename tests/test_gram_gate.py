"""The gram-gate reference on random data: the exact Gram matrix, a deterministic filter that
collapses duplicates and catches a coalition's shared residual, ballots that state the view, a
count that only a strict majority's view drives, and medians a minority cannot move."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seccl.election import ABSTAIN, MAX_SCORE
from seccl.election.gram_gate import (
    COALITION_FLOOR_PPB,
    COALITION_MADS,
    DROPPED,
    ELECTION_FLOOR_PPM,
    ELECTION_MADS,
    ONE,
    REJECTED,
    SCALE,
    GateView,
    accumulated_residual_cosines,
    assumed_attackers,
    ballot_entries,
    ballot_error,
    coalition_bar,
    cosine_ppb,
    election_bar,
    filter_updates,
    gram_gate_tally,
    gram_matrix,
    max_residual_cosines,
    summed_residual_cosines,
    view_of_ballot,
)

SEED = b"\x01" * 32
D, K, N = 2_000, 200, 20


def random_updates(rng: np.random.Generator, n: int = N, d: int = D, k: int = K) -> dict[int, tuple]:
    out = {}
    for i in range(n):
        idx = np.sort(rng.choice(d, size=k, replace=False)).astype(np.uint32)
        out[i] = (idx, rng.uniform(-10, 10, size=k).astype(np.float32))
    return out


def merge_dot(a: tuple, b: tuple) -> int:
    """An independent reference: a dictionary join over the indices, in Python integers."""
    qa = {int(i): round(float(v) * SCALE) for i, v in zip(*a, strict=True)}
    return sum(qa[int(i)] * round(float(v) * SCALE) for i, v in zip(*b, strict=True) if int(i) in qa)


def test_the_gram_matrix_is_exact() -> None:
    ups = random_updates(np.random.default_rng(1), n=6)
    g = gram_matrix(ups)
    assert all(g[(i, j)] == merge_dot(ups[i], ups[j]) for i in ups for j in ups if i <= j)


def test_the_gram_matrix_stays_exact_beyond_int64() -> None:
    # Values near float32's top: products overflow int64, so the reference must switch to Python ints.
    big = (np.array([0, 1], dtype=np.uint32), np.array([3.0e30, -2.5e30], dtype=np.float32))
    g = gram_matrix({0: big, 1: big})
    assert g[(0, 1)] == merge_dot(big, big) > 2**63


def test_integer_cosines_match_floating_point() -> None:
    ups = random_updates(np.random.default_rng(6), n=5)
    g = gram_matrix(ups)
    for i in ups:
        for j in ups:
            x = np.zeros(D)
            y = np.zeros(D)
            x[ups[i][0]] = ups[i][1]
            y[ups[j][0]] = ups[j][1]
            cos = x @ y / math.sqrt((x @ x) * (y @ y))
            assert abs(cosine_ppb(g, i, j) / ONE - cos) < 1e-6


def test_the_filter_is_deterministic_and_independent_of_order() -> None:
    ups = random_updates(np.random.default_rng(2))
    f = assumed_attackers(N)
    a = filter_updates(ups, N, f, tie_seed=SEED, round_=3)
    b = filter_updates(dict(reversed(list(ups.items()))), N, f, tie_seed=SEED, round_=3)
    assert a == b
    assert len(a.kept) == N - f == 14
    assert set(a.kept) | set(a.dropped) | set(a.rejected) == set(range(N))


def test_near_duplicates_are_all_dropped() -> None:
    ups = random_updates(np.random.default_rng(3))
    group = (2, 3, 7, 11)
    for i in group[1:]:
        idx, values = ups[2]
        ups[i] = (idx, values * np.float32(1.001 + i / 1000))  # the same direction, scaled
    view = filter_updates(ups, N, 6, tie_seed=SEED, round_=1)
    assert set(view.duplicates) == set(group)
    assert not set(view.kept) & set(group)


def test_a_coalition_sharing_a_residual_is_dropped_and_honest_updates_are_not() -> None:
    rng = np.random.default_rng(4)
    d = 4_000
    common, push = rng.normal(size=d), rng.normal(size=d)
    ups = {}
    for i in range(N):
        v = common + rng.normal(size=d) + (1.5 * push if i < 6 else 0)
        top = np.sort(np.argsort(-np.abs(v), kind="stable")[: d // 10]).astype(np.uint32)
        ups[i] = (top, (v[top] / 10).astype(np.float32))
    view = filter_updates(ups, N, 6, tie_seed=SEED, round_=1)
    assert set(view.coalition) == set(range(6))
    assert set(view.kept) == set(range(6, N))  # the 14 honest ones


def test_the_clip_bound_is_the_lower_median_of_the_kept_norms() -> None:
    ups = random_updates(np.random.default_rng(7), n=7)
    view = filter_updates(ups, 7, 2, tie_seed=SEED, round_=2)
    norms = sorted(view.norms_sq[j] for j in view.kept)
    assert view.clip_sq == norms[(len(norms) - 1) // 2]
    assert all(view.clip_factor(j) == 1.0 for j in view.kept if view.norms_sq[j] <= view.clip_sq)
    for j in view.kept:
        if view.norms_sq[j] > view.clip_sq:
            assert view.clip_factor(j) == pytest.approx(math.sqrt(view.clip_sq / view.norms_sq[j]))


def _view(kept: tuple[int, ...], dropped: tuple[int, ...] = (), rejected: tuple[int, ...] = ()) -> GateView:
    return GateView(kept, dropped, (), rejected, 0, {})


def test_a_ballot_states_its_voters_view_and_the_contract_rules_accept_it() -> None:
    view = _view(kept=(0, 2, 3), dropped=(1,), rejected=(4,))
    eligible = 0b11111
    for voter in range(6):
        entries = ballot_entries(view, {j: 10 * j for j in (0, 2, 3) if j != voter}, voter, 6)
        assert ballot_error(entries, voter, eligible) is None
        kept, dropped = view_of_ballot(entries, voter)
        assert (kept & eligible, dropped) == (0b01101, 0b00010)
    assert ballot_entries(view, {0: 5, 2: 7}, 3, 6) == (5, DROPPED, 7, ABSTAIN, REJECTED, ABSTAIN)


@pytest.mark.parametrize(
    ("entries", "voter"),
    [
        ((0, 5, ABSTAIN), 0),  # own entry a score
        ((ABSTAIN, ABSTAIN, 5), 0),  # an eligible participant abstained on
        ((ABSTAIN, 5, 7), 0),  # an ineligible participant (2) scored
        ((ABSTAIN, 5, DROPPED), 0),  # ...or marked
        ((ABSTAIN, 2**32 - 4, ABSTAIN), 0),  # neither a score nor a mark
    ],
)
def test_ballots_the_contract_refuses(entries: tuple[int, ...], voter: int) -> None:
    assert ballot_error(entries, voter, eligible=0b011) is not None


def test_an_ineligible_voters_own_entry_must_abstain() -> None:
    assert ballot_error((REJECTED, 5, 5), 0, eligible=0b110) is not None
    assert ballot_error((ABSTAIN, 5, 5), 0, eligible=0b110) is None


def _honest_ballots(n: int, kept: tuple[int, ...], rnd: random.Random) -> dict[int, list[int]]:
    view = _view(kept, rejected=tuple(j for j in range(n) if j not in kept))
    return {
        v: list(ballot_entries(view, {j: rnd.randint(0, MAX_SCORE) for j in kept}, v, n)) for v in range(n)
    }


def test_only_a_strict_majority_of_the_roster_makes_a_view_the_rounds() -> None:
    rnd = random.Random(1)
    n, kept = 8, (0, 1, 2, 3, 4, 5)
    ballots = _honest_ballots(n, kept, rnd)
    everyone = (1 << n) - 1
    outcome = gram_gate_tally(ballots, n, 2, eligible=everyone, tie_seed=SEED, round_=1)
    assert outcome.agreed == (sum(1 << j for j in kept), 0) and outcome.votes == n
    assert len(outcome.candidates) >= 2 and set(outcome.candidates) <= set(kept)
    # Four of eight keep the view: half is not a majority, so nobody is elected.
    half = {v: ballots[v] for v in range(4)}
    outcome = gram_gate_tally(half, n, 2, eligible=everyone, tie_seed=SEED, round_=1)
    assert outcome.agreed is None and outcome.candidates == () and outcome.votes == 4


def test_ballots_with_another_view_or_from_dropped_authors_do_not_count() -> None:
    n = 7
    view = _view(kept=(0, 1, 2, 3), dropped=(6,), rejected=(4, 5))
    ballots = {v: list(ballot_entries(view, {j: 500_000 for j in view.kept}, v, n)) for v in range(5)}
    # Voter 6 was dropped: its maximal scores for 3 must not count. Voter 5 claims 3 is its fellow
    # in another view (3 kept, 0-2 rejected) and scores it top: a minority view, not counted.
    ballots[6] = list(ballot_entries(view, {j: MAX_SCORE if j == 3 else 0 for j in view.kept}, 6, n))
    other = _view(kept=(3, 5), rejected=(0, 1, 2, 4, 6))
    ballots[5] = list(ballot_entries(other, {3: MAX_SCORE}, 5, n))
    outcome = gram_gate_tally(ballots, n, 1, eligible=(1 << n) - 1, tie_seed=SEED, round_=4)
    assert outcome.agreed == (0b0001111, 0b1000000) and outcome.votes == 6
    assert outcome.medians == {j: 500_000 for j in (0, 1, 2, 3)}


def test_a_minority_cannot_move_a_median_outside_the_honest_scores() -> None:
    """Colluders fewer than half of the counted voters other than the candidate, voting anything
    a valid ballot allows, leave its median inside the range of the honest counted scores for it
    (at exactly half, the upper median may be theirs when they raise it: the bound is strict)."""
    rnd = random.Random(5)
    checked = 0
    for _ in range(300):
        n = rnd.randint(5, 30)
        kept = tuple(range(n))
        coalition = set(rnd.sample(range(n), rnd.randint(0, n // 2)))
        view = _view(kept)
        ballots = {
            v: list(ballot_entries(view, {j: rnd.randint(0, MAX_SCORE) for j in kept}, v, n))
            for v in range(n)
        }
        for v in coalition:
            ballots[v] = list(ballot_entries(view, {j: rnd.choice([0, MAX_SCORE]) for j in kept}, v, n))
        outcome = gram_gate_tally(ballots, n, 1, eligible=(1 << n) - 1, tie_seed=SEED, round_=1)
        for j, median in outcome.medians.items():
            if 2 * len(coalition - {j}) < n - 1:
                honest = [ballots[v][j] for v in range(n) if v not in coalition and v != j]
                assert min(honest) <= median <= max(honest)
                checked += 1
    assert checked > 1_000


def test_with_one_round_the_summed_residuals_are_the_rounds_own() -> None:
    ups = random_updates(np.random.default_rng(8), n=9)
    assert accumulated_residual_cosines([ups]) == max_residual_cosines(gram_matrix(ups), sorted(ups))


def _round_with_carriers(rng: np.random.Generator, push: np.ndarray, carriers: range, weight: float) -> dict:
    """Twenty updates around a common direction with independent noise; the carriers add a small
    shared push, and noise of their own, so that no single round shows them as a coalition."""
    d = push.size
    common = rng.normal(size=d)
    out = {}
    for i in range(N):
        v = common + 1.5 * rng.normal(size=d) + (weight * push if i in carriers else 0)
        top = np.sort(np.argsort(-np.abs(v), kind="stable")[: d // 10]).astype(np.uint32)
        out[i] = (top, (v[top] / 10).astype(np.float32))
    return out


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_push_too_small_to_see_in_one_round_is_caught_summed_over_three(seed: int) -> None:
    rng = np.random.default_rng(seed)
    push = rng.normal(size=4_000)
    carriers = range(6)
    rounds = [_round_with_carriers(rng, push, carriers, 0.6) for _ in range(3)]
    alone = filter_updates(rounds[-1], N, 6, tie_seed=SEED, round_=3)
    summed = filter_updates(rounds[-1], N, 6, tie_seed=SEED, round_=3, history=rounds[:-1])
    assert not alone.coalition  # one round: they pass
    assert set(summed.coalition) == set(carriers)  # three rounds: caught, and nobody else


@pytest.mark.parametrize("seed", [9, 10, 11])
def test_the_bar_follows_the_spread_so_a_push_under_a_fixed_margin_is_caught(seed: int) -> None:
    """A push blended to stay under a fixed margin (the rule's first bar: median + 0.2) is caught
    in one round by the statistical bar, and nobody else is."""
    rng = np.random.default_rng(seed)
    ups = _round_with_carriers(rng, rng.normal(size=4_000), range(6), 1.2)
    maxima = accumulated_residual_cosines([ups])
    assert max(maxima[i] for i in range(6)) < sorted(maxima.values())[(N - 1) // 2] + 200_000_000
    assert set(filter_updates(ups, N, 6, tie_seed=SEED, round_=3).coalition) == set(range(6))


def test_the_coalition_bar_is_the_median_plus_three_deviations_or_the_floor() -> None:
    assert coalition_bar([0, 10, 20, 30, 1000]) == 20 + COALITION_FLOOR_PPB  # a tight spread: the floor
    spread = [0, 100_000_000, 200_000_000, 300_000_000, 900_000_000]
    # median 2e8, absolute deviations 2e8, 1e8, 0, 1e8, 7e8 -> their lower median 1e8
    assert coalition_bar(spread) == 200_000_000 + COALITION_MADS * 100_000_000
    assert coalition_bar(list(reversed(spread))) == coalition_bar(spread)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    honest=st.lists(st.integers(-ONE, ONE), min_size=1, max_size=14),
    others=st.lists(st.integers(-ONE, ONE), max_size=13),
)
def test_members_below_half_cannot_raise_the_coalition_bar_above_the_honest_band(
    honest: list[int], others: list[int]
) -> None:
    # The coalition check's mirror image of the election's decoys: members who want the bar high
    # enough to pass it. While the honest are more than half, the bar is at most the largest honest
    # maximum plus max(3 x the honest range, the floor), whatever the others' maxima are.
    others = others[: len(honest) - 1]
    spread = max(honest) - min(honest)

    assert coalition_bar(honest + others) <= max(honest) + max(COALITION_MADS * spread, COALITION_FLOOR_PPB)


def test_the_summed_residual_cosines_are_symmetric_and_their_row_maxima_are_the_checks() -> None:
    rng = np.random.default_rng(12)
    rounds = [random_updates(rng, n=9) for _ in range(3)]
    del rounds[0][4]  # one participant missed a round of the window
    pairs = summed_residual_cosines(rounds)
    assert all(pairs[(i, j)] == pairs[(j, i)] for i, j in pairs)
    assert all(-ONE - 1 <= c <= ONE for c in pairs.values())
    maxima = accumulated_residual_cosines(rounds)
    assert maxima == {i: max(c for (a, _), c in pairs.items() if a == i) for i in rounds[-1]}


def _ballots_for_medians(n: int, kept: tuple[int, ...], score: dict[int, int]) -> dict[int, list[int]]:
    """Every voter scores each kept candidate ``score[j]`` (so that is its median)."""
    view = _view(kept, rejected=tuple(j for j in range(n) if j not in kept))
    return {v: list(ballot_entries(view, score, v, n)) for v in range(n)}


def test_every_candidate_over_the_bar_is_elected_and_one_far_below_the_others_is_not() -> None:
    n, kept = 12, tuple(range(10))
    score = {j: 900_000 + 2_000 * j for j in kept} | {7: 600_000}  # 7: poor on clean data
    ballots = _ballots_for_medians(n, kept, score)

    outcome = gram_gate_tally(ballots, n, 4, eligible=2**n - 1, tie_seed=SEED, round_=1)

    # The medians' lower median is 906k and their MAD 4k: the bar is 906k - 50k (the floor).
    assert election_bar(list(outcome.medians.values())) == 856_000
    assert outcome.candidates == (9, 8, 6, 5, 4, 3, 2, 1, 0)


def test_at_least_m_are_elected_whatever_the_bar() -> None:
    n, kept = 4, (0, 1, 2)
    ballots = _ballots_for_medians(n, kept, {0: 900_000, 1: 900_000, 2: 100_000})

    def elected(m: int) -> tuple[int, ...]:
        return gram_gate_tally(ballots, n, m, eligible=2**n - 1, tie_seed=SEED, round_=1).candidates

    assert set(elected(1)) == set(elected(2)) == {0, 1}  # 2 is under the bar (850k)
    assert elected(3)[2] == 2 and set(elected(3)) == {0, 1, 2}


@pytest.mark.parametrize(
    ("medians", "bar"),
    [
        ([500_000], 450_000),  # one median: no spread, the floor
        ([0, 10_000], 0),  # never below zero
        ([600_000, 500_000, 100_000], 200_000),  # lower median 500k, MAD 100k: 3 MADs
        ([1_000_000] * 5 + [0] * 4, 950_000),  # a minority far below moves neither median nor MAD
    ],
)
def test_the_election_bar(medians: list[int], bar: int) -> None:
    assert election_bar(medians) == bar


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    honest=st.lists(st.integers(0, MAX_SCORE), min_size=1, max_size=14),
    decoys=st.lists(st.integers(0, MAX_SCORE), max_size=13),
)
def test_decoy_candidates_below_half_cannot_lower_the_bar_beneath_the_honest_band(
    honest: list[int], decoys: list[int]
) -> None:
    # The attack on the bar: colluders whose updates the filter keeps but which score poorly (or
    # absurdly well), to drag the medians' median down and widen their MAD so that a poor fellow
    # clears a lowered bar. While the honest candidates are more than half of the scored, the
    # lower median lies within the honest medians' range and more than half of the deviations are
    # at most that range, so the bar is at least the worst honest median minus
    # max(3 x the honest range, the floor): what the coalition's decoys add cannot lower it.
    decoys = decoys[: len(honest) - 1]
    spread = max(honest) - min(honest)
    bound = max(0, min(honest) - max(ELECTION_MADS * spread, ELECTION_FLOOR_PPM))

    assert election_bar(honest + decoys) >= bound


@settings(max_examples=200, deadline=None, derandomize=True)
@given(data=st.data(), n=st.integers(3, 15), base=st.integers(0, MAX_SCORE - 49_999))
def test_a_coalition_below_half_cannot_push_an_honest_candidate_under_the_bar(
    data: st.DataObject, n: int, base: int
) -> None:
    # Honest voters score honest candidates within a band narrower than the bar's floor (0.05);
    # the colluders (at most half of any candidate's other voters) cast whatever scores they like.
    # Each honest median stays within the honest scores for it (the upper median: the lower one
    # fails this), and the honest candidates are more than half of the scored, so the medians'
    # lower median stays within the band and the bar, at least 0.05 below it, under all of them.
    colluders = set(data.draw(st.sets(st.integers(0, n - 1), max_size=(n - 1) // 2)))
    everyone = tuple(range(n))
    view = _view(everyone)
    band = st.integers(base, base + 49_999)
    ballots = {}
    for v in everyone:
        if v in colluders:
            scores = {j: data.draw(st.integers(0, MAX_SCORE)) for j in everyone}
        else:
            scores = {j: data.draw(st.integers(0, MAX_SCORE) if j in colluders else band) for j in everyone}
        ballots[v] = list(ballot_entries(view, scores, v, n))

    outcome = gram_gate_tally(ballots, n, 1, eligible=2**n - 1, tie_seed=SEED, round_=1)

    assert set(everyone) - colluders <= set(outcome.candidates)

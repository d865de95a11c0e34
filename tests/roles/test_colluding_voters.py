"""Colluding voters: what collusion alone can buy in the Borda election, and a run showing the
honest majority still decides.

The bound. Each of ``k`` colluders ranks its ``k − 1`` fellows first (they score 1.0, everyone
else 0.0, its own entry ABSTAIN). With ``k − 1 ≤ M`` they take positions 1 … k−1 of its top-``M``
ballot, worth ``M, M−1, …, M−k+2`` points, so collusion hands the colluders exactly
``k · Σ_{p=M−k+2}^{M} p`` points in all, and any one colluder at most ``(k − 1) · M``.
The ``n − k`` honest voters hand out ``(n − k) · M(M+1)/2`` points. If no honest voter ranks a
colluder in its top ``M`` (their updates are bad), all those points go to honest participants,
so the best of them has at least ``M(M+1)/2``. The election compares mean points per assessor;
when every voter scores everyone but itself (nobody abstains), every participant has the same
``n − 1`` assessors, so means order as points do: whenever ``(k − 1) · M < M(M+1)/2``, i.e.
``k < (M + 3)/2``, at least one elected candidate is honest. For ``M = 2`` that is ``k ≤ 2``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from seccl.election import ABSTAIN, borda_tally, voter_ranking
from seccl.protocol.messages import score_to_ppm
from seccl.roles.adversaries.registry import choose_adversaries
from seccl.runtime.simulation import RunResult, Simulation
from tests.roles.adversary_helpers import check_reference_election, recorded_ballots, run_attack

COLLUDERS = choose_adversaries(10, 0.2, seed=0)  # k = 2 of 10: {5, 9}
TIE_SEED = bytes(range(32))  # the synthetic elections' public tie seed


def borda_points(ballots: Mapping[int, Sequence[int]], n: int, m: int, round_: int = 1) -> tuple[int, ...]:
    """Every participant's Borda points from ``ballots`` alone (everyone eligible)."""
    return borda_tally(ballots, n, m, tie_seed=TIE_SEED, round_=round_).totals


def collusion_points(m: int, k: int) -> int:
    """Borda points k colluders give each other: k · (M + (M−1) + … + (M−k+2))."""
    return k * sum(range(m - k + 2, m + 1))


def colluder_ballot(n: int, voter: int, colluders: set[int]) -> tuple[int, ...]:
    return tuple(ABSTAIN if j == voter else score_to_ppm(1.0 if j in colluders else 0.0) for j in range(n))


@pytest.mark.parametrize(("m", "k"), [(m, k) for m in range(1, 5) for k in range(2, m + 2)])
def test_collusion_alone_buys_at_most_the_bound_and_an_honest_candidate_is_elected(m: int, k: int) -> None:
    n = 10
    rng = np.random.default_rng([m, k])
    for round_ in range(1, 21):
        colluders = {int(c) for c in rng.choice(n, size=k, replace=False)}
        ballots = {v: colluder_ballot(n, v, colluders) for v in colluders}
        from_collusion = borda_points(ballots, n, m, round_)
        assert sum(from_collusion[c] for c in colluders) == collusion_points(m, k)
        assert max(from_collusion[c] for c in colluders) <= (k - 1) * m
        # Honest voters who rank every colluder below every honest participant.
        for v in set(range(n)) - colluders:
            ballots[v] = tuple(
                ABSTAIN if j == v else 0 if j in colluders else int(rng.integers(1, 10**6)) for j in range(n)
            )
        outcome = borda_tally(ballots, n, m, tie_seed=TIE_SEED, round_=round_)
        assert outcome.assessors == (n - 1,) * n  # nobody abstains on anyone but itself
        if (k - 1) * m < m * (m + 1) / 2:
            assert set(outcome.candidates) - colluders


def check_collusion_rounds(sim: Simulation, result: RunResult, colluders: set[int]) -> list[tuple[int, ...]]:
    n, m = sim.session.n, sim.session.candidates
    k = len(colluders)
    check_reference_election(sim, result)
    for record in result.rounds:
        eligible = sim.board_reader.round_info(record.round).eligible
        counted = recorded_ballots(sim, record.round)
        ballots = {v: b.scores for v, b in counted.items()}
        for c in colluders:
            assert ballots[c] == colluder_ballot(n, c, colluders)
            assert set(counted[c].ranking[: k - 1]) == colluders - {c}  # fellows first
            assert counted[c].ranking == voter_ranking(
                ballots[c],
                c,
                m,
                tie_seed=sim.board_reader.tie_seed_of(record.round),
                round_=record.round,
                eligible=eligible,
            )
        from_collusion = borda_points({c: ballots[c] for c in colluders}, n, m, record.round)
        assert sum(from_collusion[c] for c in colluders) == collusion_points(m, k)
        assert set(record.candidates) - colluders, "the honest majority decides"
    return [r.candidates for r in result.rounds]


def test_honestly_training_colluders_do_not_take_over() -> None:
    """k = 2 colluders that train honestly: their updates are as good as anyone's, so honest
    voters may well elect one of them on merit; collusion adds only 2 points each.
    Observed (seed 0): elected (4, 5) then (4, 9); colluders' (5, 9) points 6, 2 and 2, 10."""
    assert len(COLLUDERS) == 2
    sim, result = run_attack("collude-votes", COLLUDERS)
    assert result.evidence == [] and result.rejections == []
    check_collusion_rounds(sim, result, COLLUDERS)


def test_colluding_label_flippers_get_only_their_own_votes() -> None:
    """The paper's Figure 5 adversaries: fake labels, and votes for each other. Honest voters
    give them nothing, so each has exactly its fellow's M = 2 points and the bound above
    guarantees an honest candidate; observed: neither colluder is ever elected."""
    sim, result = run_attack("label-flip+collude-votes", COLLUDERS)
    check_collusion_rounds(sim, result, COLLUDERS)
    for record in result.rounds:
        points, _ = sim.consensus_reader.totals_of(record.round)
        assert [points[c] for c in sorted(COLLUDERS)] == [2, 2]
        assert not set(record.candidates) & COLLUDERS

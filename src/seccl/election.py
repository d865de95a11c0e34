"""The multi-winner Borda election: the plain-Python reference the consensus contract must equal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ElectionOutcome:
    """The result of one round's election.

    Attributes
    ----------
    candidates:
        The elected participant indices, best first.
    totals:
        Every participant's Borda total, by index.
    """

    candidates: tuple[int, ...]
    totals: tuple[int, ...]


def voter_ranking(scores: Sequence[int], voter: int, m: int) -> tuple[int, ...]:
    """The voter's top-``m`` ranking of the other participants.

    Higher score first; equal scores put the lower participant index first (the contract's rule).
    """
    if not 0 <= voter < len(scores):
        raise ValueError(f"voter {voter} is not one of the {len(scores)} participants")
    if not 1 <= m < len(scores):
        raise ValueError(f"m must be between 1 and {len(scores) - 1}, got {m}")
    others = [j for j in range(len(scores)) if j != voter]
    others.sort(key=lambda j: (-scores[j], j))
    return tuple(others[:m])


def borda_totals(ballots: Mapping[int, Sequence[int]], n: int, m: int) -> tuple[int, ...]:
    """Every participant's Borda total: the positional points ``m, m-1, ..., 1`` that the
    other voters' top-``m`` rankings gave it."""
    totals = [0] * n
    for voter, scores in ballots.items():
        if len(scores) != n:
            raise ValueError(f"voter {voter} scored {len(scores)} participants, expected {n}")
        for position, candidate in enumerate(voter_ranking(scores, voter, m)):
            totals[candidate] += m - position
    return tuple(totals)


def borda_tally(ballots: Mapping[int, Sequence[int]], n: int, m: int) -> ElectionOutcome:
    """Elect ``m`` of ``n`` participants from ``ballots`` (voter index -> scores by index).

    The candidates are the ``m`` highest totals; equal totals elect the lower index first.
    With no ballot at all nobody has earned a point, and nobody is elected.
    """
    if not 1 <= m < n:
        raise ValueError(f"m must be between 1 and n - 1 = {n - 1}, got {m}")
    totals = borda_totals(ballots, n, m)
    if not ballots:
        return ElectionOutcome(candidates=(), totals=totals)
    order = sorted(range(n), key=lambda i: (-totals[i], i))
    return ElectionOutcome(candidates=tuple(order[:m]), totals=totals)


def candidate_count(fraction: float, n: int) -> int:
    """``M = ⌈l·N⌉`` candidates, clamped to ``[1, N-1]`` so an election always has a loser."""
    import math

    if not 0 < fraction <= 1:
        raise ValueError(f"the candidate fraction l must be in (0, 1], got {fraction}")
    # Round first: 0.2 * 20 is 4.000000000000001 in floating point, and must elect 4, not 5.
    return min(max(math.ceil(round(fraction * n, 9)), 1), n - 1)

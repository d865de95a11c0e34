"""The multi-winner Borda election: the plain-Python reference the consensus contract must equal.

The rule (the contract's NatSpec states the same):

- A score is in parts per million of macro-F1, or :data:`ABSTAIN`: the voter could not assess
  that participant (it never received a verifiable update, or it is the voter itself). Only
  *eligible* participants (those whose update of the round was revealed on the board and not
  proven invalid) can be ranked or elected; entries for the others count as abstentions.
- Each voter ranks the eligible participants it scored, higher score first; equal scores rank
  the lower tie key first. Its top ``m`` (all of them if fewer) get ``m, m-1, ...`` points.
- A participant's assessors are the other voters that did not abstain on it; its mean is its
  points over its assessors. Abstaining is neutral: it neither rewards nor punishes.
- *Electable* are the eligible participants assessed by more than half of the other voters'
  ballots, so a few colluders' votes alone never elect anybody.
- The candidates are the ``min(m, electable)`` electable participants with the highest means;
  equal means elect the lower tie key first. With no ballot at all nobody is elected.

Tie keys are ``keccak256(abi.encode(tie_seed, round, index))``: a fresh pseudorandom order every
round, fixed by the round's tie seed (the XOR of the salts its revealed updates carry, so no
single party chooses it), and ties favour no place in the roster.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

from eth_abi import encode
from eth_utils import keccak

ABSTAIN = 2**32 - 1
"""The score entry of a participant the voter does not assess (``type(uint32).max``)."""
MAX_SCORE = 1_000_000
"""The largest score: macro-F1 of 1 in parts per million."""


@dataclass(frozen=True)
class ElectionOutcome:
    """The result of one round's election.

    Attributes
    ----------
    candidates:
        The elected participant indices, best first.
    totals:
        Every participant's Borda points, by index.
    assessors:
        How many other voters assessed (did not abstain on) each participant.
    """

    candidates: tuple[int, ...]
    totals: tuple[int, ...]
    assessors: tuple[int, ...]


@cache
def tie_key(tie_seed: bytes, round_: int, index: int) -> int:
    """Participant ``index``'s tie-break key in ``round_``: lower keys rank first."""
    return int.from_bytes(keccak(encode(["bytes32", "uint64", "uint256"], [tie_seed, round_, index])), "big")


def voter_ranking(
    scores: Sequence[int],
    voter: int,
    m: int,
    *,
    tie_seed: bytes,
    round_: int,
    eligible: Collection[int] | None = None,
) -> tuple[int, ...]:
    """The voter's top-``m`` ranking of the eligible participants it scored (the contract's rule).

    ``eligible`` defaults to everyone; the voter itself and abstentions are never ranked.
    """
    n = len(scores)
    if not 0 <= voter < n:
        raise ValueError(f"voter {voter} is not one of the {n} participants")
    if not 1 <= m < n:
        raise ValueError(f"m must be between 1 and {n - 1}, got {m}")
    allowed = range(n) if eligible is None else eligible
    rankable = [j for j in allowed if j != voter and scores[j] != ABSTAIN]
    rankable.sort(key=lambda j: (-scores[j], tie_key(tie_seed, round_, j)))
    return tuple(rankable[:m])


def borda_tally(
    ballots: Mapping[int, Sequence[int]],
    n: int,
    m: int,
    *,
    tie_seed: bytes,
    round_: int,
    eligible: Collection[int] | None = None,
) -> ElectionOutcome:
    """Elect up to ``m`` of ``n`` participants from ``ballots`` (voter index -> scores by index)."""
    if not 1 <= m < n:
        raise ValueError(f"m must be between 1 and n - 1 = {n - 1}, got {m}")
    allowed = sorted(range(n) if eligible is None else eligible)
    points = [0] * n
    assessors = [0] * n
    for voter, scores in ballots.items():
        if len(scores) != n:
            raise ValueError(f"voter {voter} scored {len(scores)} participants, expected {n}")
        for position, candidate in enumerate(
            voter_ranking(scores, voter, m, tie_seed=tie_seed, round_=round_, eligible=allowed)
        ):
            points[candidate] += m - position
        for j in allowed:
            if j != voter and scores[j] != ABSTAIN:
                assessors[j] += 1
    if not ballots:
        return ElectionOutcome((), tuple(points), tuple(assessors))

    def others(i: int) -> int:
        return len(ballots) - (i in ballots)

    electable = [i for i in allowed if 2 * assessors[i] > others(i)]
    order = sorted(
        electable, key=lambda i: (-Fraction(points[i], assessors[i]), tie_key(tie_seed, round_, i))
    )
    return ElectionOutcome(tuple(order[:m]), tuple(points), tuple(assessors))


def candidate_count(fraction: float, n: int) -> int:
    """``M = ⌈l·N⌉`` candidates, clamped to ``[1, N-1]`` so an election always has a loser."""
    if not 0 < fraction <= 1:
        raise ValueError(f"the candidate fraction l must be in (0, 1], got {fraction}")
    # Round first: 0.2 * 20 is 4.000000000000001 in floating point, and must elect 4, not 5.
    return min(max(math.ceil(round(fraction * n, 9)), 1), n - 1)

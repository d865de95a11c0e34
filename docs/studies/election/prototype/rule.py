"""A candidate hardened election for SecCL (issue 23): "gram-gate".

Pure functions, no chain. Geometry excludes, ballots order, the aggregation dilutes. Each part is
a function of public data only (the round's revealed sparse updates, the ballots, the session's
tie seed), except the voters' own F1 scores:

(a) ``geometric_filter``: a deterministic pre-filter over the round's revealed sparse updates.
    Every value is quantised to a fixed-point integer (``SCALE``), so the Gram matrix of the
    updates is an exact integer matrix that any party (Python, an EVM contract, an auditor on
    another CPU) computes bit for bit. From it, in integer arithmetic only:
      1. cosine distances ``dist_ij = 10^9 - floor(10^9 * G_ij / isqrt(G_ii * G_jj))``;
      2. duplicates: in tie-key order, an update within ``dup_ppb`` of one already kept is dropped
         (the omniscient colluders of ALIE, IPM, the colluding sign flip, Min-Max/Min-Sum all
         send one vector);
      3. coalition check (FoolsGold's signal, one round): residual cosines of the unit directions
         around their mean; an update whose largest residual cosine exceeds the median of those
         maxima by ``COALITION_PPB`` is dropped;
      4. trimmed Krum on cosine distances (skip each update's f - 1 nearest and f farthest): the
         ``min(N - f, r)`` lowest scores are kept;
      5. the clip bound: the lower median of ``G_ii`` over the kept updates.

(b) ``count_ballots``: only kept updates are candidates; only voters not dropped in 2-3 count. A
    candidate's score is the lower median of the counted scores for it (own entry and abstentions
    excluded), electable when more than half of the other counted voters assessed it; the ``m``
    best are elected, ties by tie key. (``count_ballots_borda``: the paper's Borda on the same
    sets, for comparison; ``elect_veto_centre``: a rejected variant that elects by centrality.)

(c) ``robust_aggregate``: each elected update scaled by ``min(1, sqrt(clip / G_jj))``, then each
    coordinate moves by ``total_c / max(shared_c, q)`` (``q = 2``): a coordinate only one elected
    update carries moves by half. Canonical order and float64 as ``seccl.learning.aggregation``.

Parameters for N = 20, l = 0.2 (M = 4): f = floor(0.3 N) = 6, keep 14, DUP_PPB = 2e7 (cos >= 0.98),
COALITION_PPB = 2e8, q = 2, SCALE = 2^20 (values are bounded by 10, so |q| < 2^24, a product
< 2^48 and a Gram entry over k = 4,697 coordinates < 2^61: int64, and uint256 on chain, are exact).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from seccl.election import ABSTAIN, borda_tally, tie_key
from seccl.learning.aggregation import _canonical_key
from seccl.learning.sparse import SparseUpdate

SCALE = 2**20
"""Fixed-point scale of the geometric check: q = round_half_even(v * 2^20) (exact: v is float32)."""
ONE = 10**9
"""Cosine distances are in parts per billion."""
DUP_PPB = 20_000_000
"""Near-duplicate threshold: cosine distance <= 0.02 (cos >= 0.98)."""
ASSUMED_F = 0.3
"""The attacker fraction the filter is sized for (as the baselines' Multi-Krum)."""


@dataclass(frozen=True)
class FilterResult:
    kept: tuple[int, ...]          # participant indices kept, ascending
    duplicates: tuple[int, ...]    # dropped as near-duplicates of a kept-earlier update
    coalition: tuple[int, ...]     # dropped by the coalition check (correlated residuals)
    krum_rejected: tuple[int, ...] # dropped by the Multi-Krum score
    clip_sq: int                   # the clip bound: lower median of G_ii over the kept (fixed point^2)
    scores: dict[int, int]         # Krum scores (ppb sums) of the non-duplicates
    gram: dict[tuple[int, int], int]


def quantise(update: SparseUpdate) -> tuple[np.ndarray, np.ndarray]:
    """The update's indices and its fixed-point values ``rint(v * SCALE)`` (int64, exact)."""
    q = np.rint(update.values.astype(np.float64) * SCALE).astype(np.int64)
    return update.indices.astype(np.int64), q


def gram_matrix(updates: Mapping[int, SparseUpdate]) -> dict[tuple[int, int], int]:
    """Exact integer inner products of the quantised updates, ``(i, j)`` with i <= j."""
    order = sorted(updates)
    if not order:
        return {}
    d = next(iter(updates.values())).dimension
    dense = np.zeros((len(order), d), dtype=np.int64)
    for row, i in enumerate(order):
        idx, q = quantise(updates[i])
        dense[row, idx] = q
    support = np.flatnonzero(dense.any(axis=0))
    sub = dense[:, support]
    g = sub @ sub.T  # int64, exact under the bounds in the module docstring
    return {(a, b): int(g[x, y]) for x, a in enumerate(order) for y, b in enumerate(order) if a <= b}


def _g(gram: Mapping[tuple[int, int], int], i: int, j: int) -> int:
    return gram[(i, j)] if i <= j else gram[(j, i)]


def cosine_distance_ppb(gram: Mapping[tuple[int, int], int], i: int, j: int) -> int:
    """``10^9 - floor(10^9 * G_ij / isqrt(G_ii * G_jj))``: integer-only, as a contract computes it."""
    gii, gjj = _g(gram, i, i), _g(gram, j, j)
    if gii == 0 or gjj == 0:
        return ONE  # a zero update has no direction: orthogonal to everything
    return ONE - (_g(gram, i, j) * ONE) // math.isqrt(gii * gjj)


COALITION_PPB = 200_000_000
"""The coalition check's margin: 0.2 of residual cosine above the median of the maxima."""


def max_residual_cosines(gram: Mapping[tuple[int, int], int], members: Sequence[int]) -> dict[int, int]:
    """For each member, the largest cosine (ppb) between its residual and another member's, the
    residuals being the unit directions minus their mean. Integer-only: with C the cosine matrix
    in ppb (C_ii = 10^9), S_i = sum_k C_ik and T = sum_i S_i, the residual Gram matrix times r^2
    is R_ij = r^2 C_ij - r S_i - r S_j + T."""
    r = len(members)
    c = {(i, j): (ONE if i == j else ONE - cosine_distance_ppb(gram, i, j)) for i in members for j in members}
    s = {i: sum(c[(i, k)] for k in members) for i in members}
    t = sum(s.values())

    def res(i: int, j: int) -> int:
        return r * r * c[(i, j)] - r * s[i] - r * s[j] + t

    out = {}
    for i in members:
        rii = res(i, i)
        best = -ONE
        for j in members:
            if j == i:
                continue
            rjj = res(j, j)
            if rii <= 0 or rjj <= 0:
                continue
            best = max(best, (res(i, j) * ONE) // math.isqrt(rii * rjj))
        out[i] = best
    return out


def assumed_attackers(n: int, fraction: float = ASSUMED_F) -> int:
    return math.floor(round(fraction * n, 9))


def geometric_filter(
    updates: Mapping[int, SparseUpdate],
    n: int,
    *,
    tie_seed: bytes,
    round_: int,
    f: int | None = None,
    dup_ppb: int = DUP_PPB,
    gram: Mapping[tuple[int, int], int] | None = None,
    trimmed: bool = True,
    coalition_ppb: int | None = COALITION_PPB,
) -> FilterResult:
    """Part (a): which revealed updates stay candidates, and the clip bound."""
    f = assumed_attackers(n) if f is None else f
    g = gram_matrix(updates) if gram is None else gram
    present = sorted(updates, key=lambda i: tie_key(tie_seed, round_, i))
    # 2. sybil collapse, in tie-key order
    reps: list[int] = []
    dups: list[int] = []
    for i in present:
        if any(cosine_distance_ppb(g, i, j) <= dup_ppb for j in reps):
            dups.append(i)
        else:
            reps.append(i)
    # 3. Coalition check (FoolsGold's idea on one round, from the Gram matrix only): residual
    #    cosines of the directions around their mean; an update whose largest residual cosine
    #    exceeds the median of those maxima by coalition_ppb is dropped. Honest residuals are
    #    nearly independent; a coalition pushing one objective (a backdoor, flipped labels)
    #    shares its residual, however it blends or scales it.
    flagged: list[int] = []
    if coalition_ppb is not None and len(reps) >= 3:
        mx = max_residual_cosines(g, reps)
        ranked_mx = sorted(mx.values())
        bar = ranked_mx[(len(ranked_mx) - 1) // 2] + coalition_ppb
        flagged = [i for i in reps if mx[i] > bar]
        reps = [i for i in reps if i not in flagged]
    r = len(reps)
    # 4. Trimmed Krum on cosine distances: skip the f - 1 nearest (possible fellows of a
    #    coalition of f, who would vouch for each other) and the f farthest (possible attackers
    #    far from an honest update); sum the rest. Plain Multi-Krum sums the r - f - 2 nearest,
    #    which a coalition's members make small for each other.
    scores: dict[int, int] = {}
    for i in reps:
        dist = sorted(cosine_distance_ppb(g, i, j) for j in reps if j != i)
        lo = min(f - 1, max(0, len(dist) - 1)) if trimmed else 0
        hi = max(lo + 1, len(dist) - f) if trimmed else max(1, r - f - 2)
        scores[i] = sum(dist[lo:hi])
    keep = min(n - f, r)
    ranked = sorted(reps, key=lambda i: (scores[i], tie_key(tie_seed, round_, i)))
    kept = tuple(sorted(ranked[:keep]))
    rejected = tuple(sorted(ranked[keep:]))
    norms = sorted(_g(g, i, i) for i in kept)
    clip_sq = norms[(len(norms) - 1) // 2] if norms else 0
    return FilterResult(kept, tuple(sorted(dups)), tuple(sorted(flagged)), rejected, clip_sq, scores, dict(g))


def clip_factor(result: FilterResult, j: int) -> float:
    """``min(1, sqrt(clip / G_jj))`` in float64 (IEEE division and sqrt: correctly rounded)."""
    gjj = result.gram[(j, j)]
    if gjj <= result.clip_sq or gjj == 0:
        return 1.0
    return math.sqrt(result.clip_sq / gjj)


def clipped(update: SparseUpdate, factor: float) -> SparseUpdate:
    if factor == 1.0:
        return update
    return SparseUpdate(update.dimension, update.indices, update.values.astype(np.float64) * factor)


def count_ballots(
    ballots: Mapping[int, Sequence[int]],
    kept: Sequence[int],
    m: int,
    *,
    voters: Sequence[int],
    tie_seed: bytes,
    round_: int,
) -> tuple[tuple[int, ...], dict[int, int]]:
    """Part (b), the proposed count: only the kept updates are candidates; only the ballots of
    ``voters`` (everyone but the authors the filter dropped as duplicates or as a coalition)
    count. A candidate's score is the lower median of the counted scores for it (its own entry
    and abstentions excluded), electable when more than half of the other counted voters assessed
    it. The ``m`` best scores are elected, ties by tie key."""
    medians = candidate_medians(ballots, kept, voters)
    order = sorted(medians, key=lambda j: (-medians[j], tie_key(tie_seed, round_, j)))
    return tuple(order[:m]), medians


def counted_voters(result: FilterResult, n: int) -> list[int]:
    """Everyone whose update was not dropped as a duplicate or as part of a coalition (a
    participant that revealed nothing still votes: it may have been censored)."""
    out = set(result.duplicates) | set(result.coalition)
    return [v for v in range(n) if v not in out]


def count_ballots_borda(
    ballots: Mapping[int, Sequence[int]],
    kept: Sequence[int],
    m: int,
    n: int,
    *,
    tie_seed: bytes,
    round_: int,
) -> tuple[int, ...]:
    """The paper's Borda count restricted to the kept candidates and the kept voters' ballots."""
    kept_set = set(kept)
    counted = {v: s for v, s in ballots.items() if v in kept_set}
    return borda_tally(counted, n, m, tie_seed=tie_seed, round_=round_, eligible=kept).candidates


def robust_aggregate(
    params: np.ndarray, elected: Sequence[SparseUpdate], factors: Sequence[float], *, q: int = 2
) -> np.ndarray:
    """Part (c): clipped updates, each coordinate divided by ``max(sharers, q)``."""
    p = np.asarray(params)
    if not elected:
        return p.astype(np.float32, copy=True)
    items = sorted(zip(elected, factors, strict=True), key=lambda t: _canonical_key(t[0]))
    total = np.zeros(p.shape[0], dtype=np.float64)
    shared = np.zeros(p.shape[0], dtype=np.int64)
    for u, c in items:
        total[u.indices] += u.values.astype(np.float64) * c
        shared[u.indices] += 1
    step = total / np.maximum(shared, q)
    return (p.astype(np.float64) + step).astype(np.float32)


def krum_gate_round(
    params: np.ndarray,
    updates: Mapping[int, SparseUpdate],
    ballots: Mapping[int, Sequence[int]],
    n: int,
    m: int,
    *,
    tie_seed: bytes,
    round_: int,
    q: int = 2,
    filter_result: FilterResult | None = None,
) -> tuple[np.ndarray, tuple[int, ...], FilterResult]:
    """The whole rule for one round: the next model, the elected and the filter's result."""
    fr = filter_result or geometric_filter(updates, n, tie_seed=tie_seed, round_=round_)
    elected, _ = count_ballots(ballots, fr.kept, m, voters=counted_voters(fr, n), tie_seed=tie_seed, round_=round_)
    new = robust_aggregate(params, [updates[j] for j in elected], [clip_factor(fr, j) for j in elected], q=q)
    return new, elected, fr


MARGIN_PPM = 50_000
"""The ballot veto's margin: a candidate is approved when its median score is within 0.05
macro-F1 of the best candidate's median."""


def candidate_medians(
    ballots: Mapping[int, Sequence[int]], candidates: Sequence[int], voters: Sequence[int]
) -> dict[int, int]:
    """Lower median of the counted voters' scores for each candidate assessed by more than half
    of the other counted voters (own entry and abstentions excluded)."""
    counted = [v for v in sorted(voters) if v in ballots]
    out: dict[int, int] = {}
    for j in candidates:
        others = [v for v in counted if v != j]
        entries = sorted(ballots[v][j] for v in others if ballots[v][j] != ABSTAIN)
        if entries and 2 * len(entries) > len(others):
            out[j] = entries[(len(entries) - 1) // 2]
    return out


def elect_veto_centre(
    ballots: Mapping[int, Sequence[int]],
    result: FilterResult,
    m: int,
    *,
    voters: Sequence[int],
    tie_seed: bytes,
    round_: int,
    margin_ppm: int = MARGIN_PPM,
) -> tuple[tuple[int, ...], dict[int, int], tuple[int, ...]]:
    """Part (b), the proposed count: ballots veto, geometry elects.

    Candidates are the filter's kept updates. Every voter not dropped as a duplicate counts. A
    candidate is *approved* when its median score is at least the best median minus
    ``margin_ppm``; if fewer than ``m`` are approved, the best medians fill up to ``m``. The ``m``
    approved candidates with the lowest (trimmed-Krum) filter scores are elected, ties by tie key.
    A coalition's ballots can push a member over the bar (its median is bounded by the honest
    voters' scores for it), never up the order: the order is the geometry's."""
    medians = candidate_medians(ballots, result.kept, voters)
    if not medians:
        return (), medians, ()
    best = max(medians.values())
    approved = [j for j in medians if medians[j] >= best - margin_ppm]
    if len(approved) < m:
        approved = sorted(medians, key=lambda j: (-medians[j], tie_key(tie_seed, round_, j)))[:m]
    order = sorted(approved, key=lambda j: (result.scores[j], tie_key(tie_seed, round_, j)))
    return tuple(order[:m]), medians, tuple(sorted(approved))

"""The ``gram-gate`` election: the plain-Python reference of the hardened rule (issue 23), which
every party computes and the GramGateConsensus contract must equal.

Geometry excludes, ballots exclude the poor, the aggregation dilutes (docs/PROTOCOL.md §5, and the design
study in docs/studies/election/):

(a) **The filter** (:func:`filter_updates`), computed by every party from the round's eligible
    updates (revealed on the board, not proven invalid). Values are quantised to fixed point
    (``rint(v · 2^20)``, exact for float32), so the Gram matrix is an exact integer matrix and
    every step below is integer arithmetic: every honest party gets the same result on any CPU.
      1. near-duplicates (cosine distance ≤ 0.02 to another update) are all dropped;
      2. the coalition check: residual directions (the unit directions minus their round's mean)
         summed over this round and the two before; an update whose summed residual's largest
         cosine with another's exceeds the median of those maxima by 3 median absolute deviations
         (at least 0.05) is dropped (FoolsGold's signal: a coalition's shared push persists across
         rounds, noise does not);
      3. trimmed Krum on cosine distances (skip each one's f − 1 nearest and f farthest) keeps the
         ``min(N − f, r)`` most central of the rest;
      4. the clip bound: the lower median of the kept updates' squared norms.
    *Dropped* are the duplicates and the coalition: their authors' ballots do not count either.
    *Rejected* are those trimmed Krum left out: their authors still vote.

(b) **The ballot** carries the voter's view of the filter in its scores: a score (ppm of macro-F1
    of the model plus the *clipped* update) for every kept participant but itself, ``DROPPED`` or
    ``REJECTED`` for the others that are eligible, ``ABSTAIN`` for the ineligible; its own entry
    is ``ABSTAIN`` when it was kept, else ``DROPPED`` or ``REJECTED``.

(c) **The count** (:func:`gram_gate_tally`): the view a strict majority of the roster's ballots
    share is the round's (honest voters compute the same one, so a coalition below half can
    neither make its own win nor block the honest one; with no majority nobody is elected). Only
    ballots with that view count, minus those of dropped authors. A kept participant's score is
    the upper median of the counted scores for it (its own entry excluded). Elected is every
    scored participant whose median clears the round's bar (:func:`election_bar`: the lower median
    of the medians minus 3 median absolute deviations, at least 0.05 of F1), and at least the
    ``M`` best, best first, equal medians by tie key. A coalition below half of the counted voters
    cannot lower an honest candidate's median below the honest scores for it, nor raise its own
    members' above them. The ballots exclude the poor instead of choosing a few best: an update
    that scores well on clean data and carries a backdoor (a blend toward the honest mean, which
    F1 prefers) then weighs in the aggregate as one of the many kept, as under Multi-Krum, instead
    of taking one of M = 4 places (the study's addendum measured both).

(d) **The aggregation** (``seccl.learning.aggregation``, rule ``clipped-shared-mean``): each
    elected update is scaled to at most the lower median of the *elected* updates' norms, and
    every coordinate moves by its sum over ``max(sharers, 2)``, so no single elected update owns a
    coordinate. (The bound is the elected set's, not the kept set's, so that the model stays a
    function of the elected updates alone: the evidence and the audit need nothing more. Voters
    score each kept update clipped to the kept set's median norm, ``GateView.clip_sq``.)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from eth_abi import encode
from eth_utils import keccak

from seccl.election.borda import ABSTAIN, MAX_SCORE, tie_key

DROPPED = 2**32 - 2
"""A ballot's entry for a participant whose update the filter dropped (duplicate or coalition)."""
REJECTED = 2**32 - 3
"""A ballot's entry for a participant whose update trimmed Krum left out (its author still votes)."""
SCALE = 2**20
"""Fixed-point scale of the geometry: ``q = rint(v · 2^20)``, exact for a float32 ``v``."""
ONE = 10**9
"""Cosines and cosine distances are in parts per billion."""
DUPLICATE_PPB = 20_000_000
"""Near-duplicates: cosine distance at most 0.02 (cosine at least 0.98)."""
COALITION_MADS = 3
"""The coalition check's bar is this many median absolute deviations of the maxima above their
median (about two standard deviations of a normal spread): a fixed margin let a blended backdoor
tuned to stay just under it through (the study's addendum)."""
COALITION_FLOOR_PPB = 50_000_000
"""The least margin of the coalition check (0.05 of residual cosine), so that a round whose
maxima happen to agree closely does not drop the ordinary ones."""
ELECTION_MADS = 3
"""The election's bar is this many median absolute deviations of the medians below their median."""
ELECTION_FLOOR_PPM = 50_000
"""The least margin of the election's bar (0.05 of macro-F1), so that a round whose medians
happen to agree closely elects every ordinary update: honest medians differ by about 0.01."""
HISTORY_ROUNDS = 3
"""The coalition check sums each participant's residuals over this many rounds (this one and the
ones before it): a coalition's shared direction persists from round to round, honest noise and a
colluder's own noise do not."""
MIN_SHARERS = 2
"""The aggregation divides each coordinate's sum by at least this many sharers."""
ASSUMED_FRACTION = 0.3
"""The default attacker fraction the filter is sized for (as the baselines' Multi-Krum)."""

Update = tuple[np.ndarray, np.ndarray]
"""A sparse update as the filter reads it: its indices (ascending, unique) and float32 values."""


@dataclass(frozen=True)
class GateView:
    """The filter's result for one round: which eligible participants it kept, dropped (as a
    duplicate or a coalition member) or rejected (trimmed Krum), and the clip bound."""

    kept: tuple[int, ...]
    duplicates: tuple[int, ...]
    coalition: tuple[int, ...]
    rejected: tuple[int, ...]
    clip_sq: int
    norms_sq: Mapping[int, int]

    @property
    def dropped(self) -> tuple[int, ...]:
        """The authors whose ballots do not count: duplicates and coalition members."""
        return tuple(sorted(self.duplicates + self.coalition))

    def masks(self) -> tuple[int, int]:
        """The view as the contract records it: (kept bitmap, dropped bitmap)."""
        return _mask(self.kept), _mask(self.dropped)

    def clip_factor(self, j: int) -> float:
        """``min(1, sqrt(clip / G_jj))`` in float64 (IEEE division and sqrt round correctly)."""
        g = self.norms_sq[j]
        if g <= self.clip_sq or g == 0:
            return 1.0
        return math.sqrt(self.clip_sq / g)


@dataclass(frozen=True)
class GateOutcome:
    """One round's gram-gate election: the elected (best first), each kept participant's median
    score, the agreed view (None without a majority) and how many ballots carried it."""

    candidates: tuple[int, ...]
    medians: Mapping[int, int]
    agreed: tuple[int, int] | None
    votes: int


def assumed_attackers(n: int, fraction: float = ASSUMED_FRACTION) -> int:
    """``f = ⌊fraction · N⌋``, the attackers the filter's trimmed Krum is sized for."""
    if not 0 <= fraction < 0.5:
        raise ValueError(f"the assumed attacker fraction must be in [0, 0.5), got {fraction}")
    return math.floor(round(fraction * n, 9))


def _mask(indices: Sequence[int]) -> int:
    out = 0
    for i in indices:
        out |= 1 << i
    return out


def quantise(values: np.ndarray) -> np.ndarray:
    """Fixed-point values ``rint(v · 2^20)``: int64, or Python integers (an object array) when a
    value is too large for int64 (exact either way: a float32 times a power of two is exact in
    float64, and so is its rounding to an integer)."""
    scaled = np.rint(np.asarray(values, dtype=np.float64) * SCALE)
    if scaled.size and np.abs(scaled).max() >= 2.0**62:
        return np.array([int(v) for v in scaled.tolist()], dtype=object)
    return scaled.astype(np.int64)


def _largest(q: np.ndarray) -> int:
    """The largest magnitude in ``q`` (int64 or, for huge values, Python integers)."""
    return int(np.abs(q).max()) if q.dtype != object else max(abs(int(v)) for v in q.tolist())


def gram_matrix(updates: Mapping[int, Update]) -> dict[tuple[int, int], int]:
    """Exact integer inner products of the quantised updates, keyed ``(i, j)`` with ``i ≤ j``."""
    order = sorted(updates)
    if not order:
        return {}
    quantised = {i: (np.asarray(updates[i][0], dtype=np.int64), quantise(updates[i][1])) for i in order}
    support = np.unique(np.concatenate([idx for idx, _ in quantised.values()]))
    columns = {i: np.searchsorted(support, idx) for i, (idx, _) in quantised.items()}
    largest = max((_largest(q) for _, q in quantised.values() if q.size), default=0)
    longest = max(1, max(q.size for _, q in quantised.values()))
    # Split every value into a high and a low part of `half` bits, q = hi·2^half + lo: then each
    # of the four float64 products (BLAS, fast) sums at most `longest` terms below 2^(2·half),
    # exact while that stays below 2^53; the integer result recombines them. Beyond that (values
    # far above any session's bound), Python integers: slower, just as exact.
    half = max(1, (largest.bit_length() + 1) // 2)
    if longest * 2 ** (2 * half) < 2**53:
        high = np.zeros((len(order), support.size))
        low = np.zeros((len(order), support.size))
        for row, i in enumerate(order):
            q = quantised[i][1].astype(np.int64)
            high[row, columns[i]] = np.floor_divide(q, 2**half)
            low[row, columns[i]] = q - np.floor_divide(q, 2**half) * 2**half
        hh, hl, ll = high @ high.T, high @ low.T, low @ low.T
        product = [
            [
                (int(hh[x, y]) << (2 * half)) + ((int(hl[x, y]) + int(hl[y, x])) << half) + int(ll[x, y])
                for y in range(len(order))
            ]
            for x in range(len(order))
        ]
    else:
        dense = np.zeros((len(order), support.size), dtype=object)
        for row, i in enumerate(order):
            dense[row, columns[i]] = [int(v) for v in quantised[i][1].tolist()]
        g = dense @ dense.T
        product = [[int(g[x, y]) for y in range(len(order))] for x in range(len(order))]
    return {(a, b): product[x][y] for x, a in enumerate(order) for y, b in enumerate(order) if a <= b}


def _g(gram: Mapping[tuple[int, int], int], i: int, j: int) -> int:
    return gram[(i, j)] if i <= j else gram[(j, i)]


def cosine_ppb(gram: Mapping[tuple[int, int], int], i: int, j: int) -> int:
    """``⌊10^9 · G_ij / isqrt(G_ii · G_jj)⌋`` (floor toward −∞); 0 when either update is zero."""
    gii, gjj = _g(gram, i, i), _g(gram, j, j)
    if gii == 0 or gjj == 0:
        return 0
    return (_g(gram, i, j) * ONE) // math.isqrt(gii * gjj)


def max_residual_cosines(gram: Mapping[tuple[int, int], int], members: Sequence[int]) -> dict[int, int]:
    """Each member's largest cosine (ppb) between its residual and another member's, residuals
    being the unit directions minus their mean. With ``C`` the cosines in ppb (``C_ii = 10^9``),
    ``S_i = Σ_k C_ik`` and ``T = Σ_i S_i``, ``r² ⟨y_i − ȳ, y_j − ȳ⟩ = r² C_ij − r S_i − r S_j + T``."""
    r = len(members)
    c = {(i, j): ONE if i == j else cosine_ppb(gram, i, j) for i in members for j in members}
    s = {i: sum(c[(i, k)] for k in members) for i in members}
    t = sum(s.values())

    def residual(i: int, j: int) -> int:
        return r * r * c[(i, j)] - r * s[i] - r * s[j] + t

    out = {}
    for i in members:
        rii = residual(i, i)
        best = -ONE
        for j in members:
            rjj = residual(j, j)
            if j != i and rii > 0 and rjj > 0:
                best = max(best, (residual(i, j) * ONE) // math.isqrt(rii * rjj))
        out[i] = best
    return out


def accumulated_residual_cosines(rounds: Sequence[Mapping[int, Update]]) -> dict[int, int]:
    """Each participant of the last round's largest cosine (ppb) between its residual direction
    summed over ``rounds`` and another's (−10^9 if it has none): the maxima of
    :func:`summed_residual_cosines`."""
    pairs = summed_residual_cosines(rounds)
    current = sorted(rounds[-1]) if rounds else []
    return {i: max([-ONE, *(pairs[(i, j)] for j in current if (i, j) in pairs)]) for i in current}


def summed_residual_cosines(rounds: Sequence[Mapping[int, Update]]) -> dict[tuple[int, int], int]:
    """The cosine (ppb) between each two participants of the last round's residual directions
    summed over ``rounds`` (oldest first; in each, the residuals are the unit directions minus that
    round's mean), for every ordered pair whose summed residuals are both non-zero. Exact
    integers: with ``C`` the cosines in ppb over every pair of updates of the window, round ``t``
    of ``r_t`` updates and ``S_t(b) = Σ_{k in t} C(k, b)``, the scaled residuals ``r_t·res_i^t``
    have inner products ``r_t r_s C(i_t, j_s) − r_t S_s(i_t) − r_s S_t(j_s) + Σ_{k in t, l in s}
    C(k, l)``, summed over the rounds each participant took part in. With one round, their maxima
    are :func:`max_residual_cosines`."""
    keyed = {(t, i): u for t, members in enumerate(rounds) for i, u in members.items()}
    order = sorted(keyed)
    number = {key: k for k, key in enumerate(order)}
    gram = gram_matrix({number[key]: keyed[key] for key in order})
    c = {
        (a, b): ONE if a == b else cosine_ppb(gram, a, b)
        for a in range(len(order))
        for b in range(len(order))
    }
    by_round = [[number[(t, i)] for i in sorted(members)] for t, members in enumerate(rounds)]
    size = [len(members) for members in by_round]
    sums = [{b: sum(c[(k, b)] for k in members) for b in range(len(order))} for members in by_round]
    cross = [[sum(sums[s][k] for k in by_round[t]) for s in range(len(rounds))] for t in range(len(rounds))]

    def scaled(a: int, b: int) -> int:
        t, s = order[a][0], order[b][0]
        return size[t] * size[s] * c[(a, b)] - size[t] * sums[s][a] - size[s] * sums[t][b] + cross[t][s]

    current = sorted(rounds[-1]) if rounds else []
    appearances = {i: [number[(t, i)] for t in range(len(rounds)) if i in rounds[t]] for i in current}
    dot = {
        (i, j): sum(scaled(a, b) for a in appearances[i] for b in appearances[j])
        for i in current
        for j in current
    }
    return {
        (i, j): (dot[(i, j)] * ONE) // math.isqrt(dot[(i, i)] * dot[(j, j)])
        for i in current
        for j in current
        if j != i and dot[(i, i)] > 0 and dot[(j, j)] > 0
    }


def _near_duplicates(updates: Mapping[int, Update], gram: Mapping[tuple[int, int], int]) -> list[int]:
    return [
        i for i in updates if any(j != i and ONE - cosine_ppb(gram, i, j) <= DUPLICATE_PPB for j in updates)
    ]


def _without_duplicates(updates: Mapping[int, Update]) -> dict[int, Update]:
    """An earlier round's eligible updates less its near-duplicates (as its own filter dropped them)."""
    dropped = set(_near_duplicates(updates, gram_matrix(updates)))
    return {i: u for i, u in updates.items() if i not in dropped}


def filter_updates(
    updates: Mapping[int, Update],
    n: int,
    f: int,
    *,
    tie_seed: bytes,
    round_: int,
    history: Sequence[Mapping[int, Update]] = (),
) -> GateView:
    """Part (a): the filter over the round's eligible updates (``index -> (indices, values)``);
    ``history`` holds the eligible updates of the rounds before (oldest first, at most
    :data:`HISTORY_ROUNDS` − 1 are used) for the coalition check.

    A pure function of its arguments, remembered for the last few inputs: in a simulation every
    participant computes the same filter from the same bytes, and computes it once."""
    window = list(history)[-(HISTORY_ROUNDS - 1) :]
    key = hashlib.sha256(repr((n, f, tie_seed, round_)).encode())
    for members in (*window, updates):
        key.update(b"round")
        for i in sorted(members):
            indices, values = members[i]
            key.update(i.to_bytes(4, "big"))
            key.update(np.asarray(indices, dtype="<u4").tobytes())
            key.update(np.asarray(values, dtype="<f4").tobytes())
    digest = key.digest()
    if digest not in _FILTERED:
        _FILTERED[digest] = _filter(updates, n, f, tie_seed=tie_seed, round_=round_, history=window)
        while len(_FILTERED) > 8:
            _FILTERED.pop(next(iter(_FILTERED)))
    return _FILTERED[digest]


_FILTERED: dict[bytes, GateView] = {}


def _filter(
    updates: Mapping[int, Update],
    n: int,
    f: int,
    *,
    tie_seed: bytes,
    round_: int,
    history: Sequence[Mapping[int, Update]] = (),
) -> GateView:
    if not 0 <= f < n:
        raise ValueError(f"the assumed attackers f must be in [0, {n}), got {f}")
    gram = gram_matrix(updates)
    # Near-duplicates are all dropped, not collapsed to one: honest updates of one round are never
    # that close, and nobody can copy another's update of the round (the commitments close before
    # any reveal), so only a coalition sending one vector (ALIE, IPM, −μ, Min-Max, Min-Sum) is.
    duplicates = _near_duplicates(updates, gram)
    representatives = sorted(
        (i for i in updates if i not in duplicates), key=lambda i: tie_key(tie_seed, round_, i)
    )
    # Honest residuals are nearly independent; a coalition pushing one objective (a backdoor,
    # flipped labels) shares its residual, however it blends or scales it, and across rounds.
    coalition: list[int] = []
    if len(representatives) >= 3:
        window = [_without_duplicates(earlier) for earlier in list(history)[-(HISTORY_ROUNDS - 1) :]]
        window.append({i: updates[i] for i in representatives})
        largest = accumulated_residual_cosines(window)
        bar = coalition_bar(list(largest.values()))
        coalition = [i for i in representatives if largest[i] > bar]
        representatives = [i for i in representatives if i not in coalition]
    # Trimmed Krum: skip the f − 1 nearest (a coalition's members vouch for each other) and the
    # f farthest (an attacker far from an honest update); plain Multi-Krum's sum of the nearest
    # is what a coalition makes small for itself.
    scores = {}
    for i in representatives:
        distances = sorted(ONE - cosine_ppb(gram, i, j) for j in representatives if j != i)
        low = min(max(f - 1, 0), max(0, len(distances) - 1))
        high = max(low + 1, len(distances) - f)
        scores[i] = sum(distances[low:high])
    ranked_central = sorted(representatives, key=lambda i: (scores[i], tie_key(tie_seed, round_, i)))
    keep = min(n - f, len(ranked_central))
    kept = tuple(sorted(ranked_central[:keep]))
    norms = {i: _g(gram, i, i) for i in updates}
    kept_norms = sorted(norms[i] for i in kept)
    return GateView(
        kept=kept,
        duplicates=tuple(sorted(duplicates)),
        coalition=tuple(sorted(coalition)),
        rejected=tuple(sorted(ranked_central[keep:])),
        clip_sq=kept_norms[(len(kept_norms) - 1) // 2] if kept_norms else 0,
        norms_sq=norms,
    )


def _median_and_mad(values: Sequence[int]) -> tuple[int, int]:
    """The lower median of ``values`` (at least one) and the lower median of the absolute
    deviations from it (integers, so every party gets the same)."""
    ranked = sorted(values)
    middle = ranked[(len(ranked) - 1) // 2]
    deviations = sorted(abs(v - middle) for v in ranked)
    return middle, deviations[(len(deviations) - 1) // 2]


def coalition_bar(maxima: Sequence[int]) -> int:
    """The coalition check's bar over the summed residuals' largest cosines (ppb): their lower
    median plus ``max(COALITION_MADS × MAD, COALITION_FLOOR_PPB)``."""
    middle, spread = _median_and_mad(maxima)
    return middle + max(COALITION_MADS * spread, COALITION_FLOOR_PPB)


def election_bar(medians: Sequence[int]) -> int:
    """The election's bar over the scored candidates' medians (ppm): their lower median minus
    ``max(ELECTION_MADS × MAD, ELECTION_FLOOR_PPM)``, at least zero."""
    middle, spread = _median_and_mad(medians)
    return max(0, middle - max(ELECTION_MADS * spread, ELECTION_FLOOR_PPM))


def ballot_entries(view: GateView, scores: Mapping[int, int], voter: int, n: int) -> tuple[int, ...]:
    """Part (b): a ballot's entries from the voter's ``view`` and its ``scores`` (ppm) of every
    kept participant but itself."""
    dropped, rejected, kept = set(view.dropped), set(view.rejected), set(view.kept)
    entries = []
    for j in range(n):
        if j in dropped:
            entries.append(DROPPED)
        elif j in rejected:
            entries.append(REJECTED)
        elif j in kept and j != voter:
            entries.append(scores[j])
        else:
            entries.append(ABSTAIN)
    return tuple(entries)


def ballot_error(entries: Sequence[int], voter: int, eligible: int) -> str | None:
    """Why the contract refuses these ballot entries (None if it accepts them): the voter's own
    entry is ABSTAIN, DROPPED or REJECTED (ABSTAIN when it is not eligible); an ineligible
    participant's is ABSTAIN; an eligible one's is a score up to MAX_SCORE, DROPPED or REJECTED."""
    for j, entry in enumerate(entries):
        if not eligible >> j & 1:
            if entry != ABSTAIN:
                return f"entry {j}: an ineligible participant's entry must abstain"
        elif j == voter:
            if entry not in (ABSTAIN, DROPPED, REJECTED):
                return f"entry {j}: the voter's own entry must be ABSTAIN, DROPPED or REJECTED"
        elif entry > MAX_SCORE and entry not in (DROPPED, REJECTED):
            return f"entry {j}: an eligible participant's entry must be a score, DROPPED or REJECTED"
    return None


def view_of_ballot(entries: Sequence[int], voter: int) -> tuple[int, int]:
    """The (kept, dropped) bitmaps a valid ballot's entries state (its own ABSTAIN: kept)."""
    kept = dropped = 0
    for j, entry in enumerate(entries):
        if entry <= MAX_SCORE or (j == voter and entry == ABSTAIN):
            kept |= 1 << j
        elif entry == DROPPED:
            dropped |= 1 << j
    return kept, dropped


def view_digest(kept: int, dropped: int) -> bytes:
    """The contract's key for a view: ``keccak256(abi.encode(kept, dropped))``."""
    return keccak(encode(["uint256", "uint256"], [kept, dropped]))


def gram_gate_tally(
    ballots: Mapping[int, Sequence[int]],
    n: int,
    m: int,
    *,
    eligible: int,
    tie_seed: bytes,
    round_: int,
) -> GateOutcome:
    """Part (c): elect every candidate whose median clears :func:`election_bar`, and at least the
    ``m`` best, from valid ``ballots`` (voter index -> entries by index), exactly as the contract
    counts them. ``eligible`` is the round's bitmap of eligible
    participants (the voter's own ABSTAIN reads as kept only where it is eligible)."""
    if not 1 <= m < n:
        raise ValueError(f"m must be between 1 and n - 1 = {n - 1}, got {m}")
    votes: dict[tuple[int, int], list[int]] = {}
    for voter in sorted(ballots):
        entries = ballots[voter]
        if len(entries) != n:
            raise ValueError(f"voter {voter} has {len(entries)} entries, expected {n}")
        reason = ballot_error(entries, voter, eligible)
        if reason is not None:
            raise ValueError(f"voter {voter}'s ballot is invalid: {reason}")
        kept, dropped = view_of_ballot(entries, voter)
        votes.setdefault((kept & eligible, dropped), []).append(voter)
    # Only a strict majority of the roster makes a view the round's; at most one view has one.
    count = max((len(voters) for voters in votes.values()), default=0)
    leader = next((view for view, voters in votes.items() if 2 * len(voters) > n), None)
    if leader is None:
        return GateOutcome((), {}, None, count)
    kept, dropped = leader
    counted = [v for v in votes[leader] if not dropped >> v & 1]
    medians = {}
    for j in range(n):
        if kept >> j & 1:
            entries = sorted(ballots[v][j] for v in counted if v != j)
            if entries:
                # The upper median: colluders holding exactly half of an honest participant's
                # entries (k of 2k+1 counted voters, its own ballot excluded) can only raise it.
                medians[j] = entries[len(entries) // 2]
    order = sorted(medians, key=lambda j: (-medians[j], tie_key(tie_seed, round_, j)))
    bar = election_bar(list(medians.values())) if medians else 0
    cleared = sum(medians[j] >= bar for j in order)  # a prefix of the order
    return GateOutcome(tuple(order[: max(m, cleared)]), medians, leader, count)

"""Property checks of rule.py on random data (no training, a few seconds).

Run: PYTHONPATH=src .venv/bin/python -m pytest -q test_rule.py
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rule as R  # noqa: E402
from seccl.election import ABSTAIN  # noqa: E402
from seccl.learning.sparse import SparseUpdate  # noqa: E402

SEED = b"\x01" * 32
D, K, N = 2_000, 200, 20


def random_updates(rng: np.random.Generator, n: int = N, d: int = D, k: int = K) -> dict[int, SparseUpdate]:
    out = {}
    for i in range(n):
        idx = np.sort(rng.choice(d, size=k, replace=False))
        out[i] = SparseUpdate(d, idx, rng.uniform(-10, 10, size=k).astype(np.float32))
    return out


def merge_dot(a: SparseUpdate, b: SparseUpdate) -> int:
    """Independent reference: a two-pointer merge over the sorted indices, Python ints."""
    qa = {int(i): int(v) for i, v in zip(a.indices, np.rint(a.values.astype(np.float64) * R.SCALE))}
    return sum(qa[int(i)] * int(v) for i, v in zip(b.indices, np.rint(b.values.astype(np.float64) * R.SCALE)) if int(i) in qa)


def test_gram_is_exact() -> None:
    rng = np.random.default_rng(1)
    ups = random_updates(rng, n=6)
    g = R.gram_matrix(ups)
    for i in ups:
        for j in ups:
            if i <= j:
                assert g[(i, j)] == merge_dot(ups[i], ups[j])


def test_filter_independent_of_order_and_deterministic() -> None:
    rng = np.random.default_rng(2)
    ups = random_updates(rng)
    a = R.geometric_filter(ups, N, tie_seed=SEED, round_=3)
    b = R.geometric_filter(dict(reversed(list(ups.items()))), N, tie_seed=SEED, round_=3)
    assert (a.kept, a.duplicates, a.coalition, a.clip_sq) == (b.kept, b.duplicates, b.coalition, b.clip_sq)
    assert len(a.kept) == N - R.assumed_attackers(N)


def test_duplicates_collapse_to_one() -> None:
    rng = np.random.default_rng(3)
    ups = random_updates(rng)
    for i in (3, 7, 11):
        ups[i] = ups[2]
    fr = R.geometric_filter(ups, N, tie_seed=SEED, round_=1)
    group = {2, 3, 7, 11}
    assert len(group & set(fr.duplicates)) == 3


def test_coalition_with_shared_residual_is_flagged() -> None:
    rng = np.random.default_rng(4)
    d = 4_000
    common = rng.normal(size=d)
    push = rng.normal(size=d)
    ups = {}
    for i in range(N):
        v = common + rng.normal(size=d) * 1.0 + (1.5 * push if i < 6 else 0)
        top = np.sort(np.argsort(-np.abs(v), kind="stable")[: d // 10])
        ups[i] = SparseUpdate(d, top, (v[top] / 10).astype(np.float32))
    fr = R.geometric_filter(ups, N, tie_seed=SEED, round_=1)
    assert set(fr.coalition) == set(range(6))


def test_minority_cannot_lift_above_honest_scores() -> None:
    """A coalition of fewer than half the counted voters cannot push a candidate's median above
    the largest score an honest counted voter gave it, nor below the smallest."""
    rnd = random.Random(5)
    for _ in range(300):
        n = rnd.randint(5, 30)
        voters = list(range(n))
        c = rnd.randint(0, (n - 2) // 2)
        coal = set(rnd.sample(voters, c))
        ballots = {v: [rnd.randint(0, 10**6) if rnd.random() > 0.1 else ABSTAIN for _ in range(n)] for v in voters}
        for v in voters:
            ballots[v][v] = ABSTAIN
        for v in coal:
            ballots[v] = [10**6 if rnd.random() < 0.5 else 0 for _ in range(n)]
            ballots[v][v] = ABSTAIN
        med = R.candidate_medians(ballots, voters, voters)
        for j, m in med.items():
            honest = [ballots[v][j] for v in voters if v not in coal and v != j and ballots[v][j] != ABSTAIN]
            others = [v for v in voters if v != j]
            counted = [v for v in others if ballots[v][j] != ABSTAIN]
            if 2 * len([v for v in counted if v in coal]) < len(counted):
                assert min(honest) <= m <= max(honest)


def test_aggregate_single_owner_moves_by_half_and_clip() -> None:
    d = 10
    a = SparseUpdate(d, np.array([0, 1]), np.array([2.0, 4.0], dtype=np.float32))
    b = SparseUpdate(d, np.array([1, 2]), np.array([2.0, 6.0], dtype=np.float32))
    out = R.robust_aggregate(np.zeros(d, np.float32), [a, b], [1.0, 0.5], q=2)
    assert out[0] == 1.0 and out[1] == 2.5 and out[2] == 1.5 and not out[3:].any()


def test_cosine_matches_float() -> None:
    rng = np.random.default_rng(6)
    ups = random_updates(rng, n=5)
    g = R.gram_matrix(ups)
    for i in ups:
        for j in ups:
            x, y = ups[i].to_dense().astype(np.float64), ups[j].to_dense().astype(np.float64)
            cos = x @ y / math.sqrt((x @ x) * (y @ y))
            assert abs((R.ONE - R.cosine_distance_ppb(g, i, j)) / R.ONE - cos) < 1e-6

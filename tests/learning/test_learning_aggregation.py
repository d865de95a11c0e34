"""Aggregation rules on hand-made updates, determinism and order independence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from seccl.learning.aggregation import AGGREGATION_RULES, aggregate, clip_factors, norm_sq
from seccl.learning.sparse import SparseUpdate


def _u(dim: int, idx: list[int], vals: list[float]) -> SparseUpdate:
    return SparseUpdate(dim, np.array(idx, np.uint32), np.array(vals, np.float32))


BASE = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0], np.float32)
U1 = _u(6, [0, 2], [1.0, 3.0])
U2 = _u(6, [2, 4], [5.0, -2.0])
U3 = _u(6, [2, 5], [-2.0, 0.5])


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # coordinate 2 is shared by all three (3 + 5 − 2 = 6); 0, 4, 5 by one each.
        ("shared-mean", [2.0, 1.0, 3.0, 1.0, -1.0, 1.5]),
        ("mean", [1 + 1 / 3, 1.0, 3.0, 1.0, 1 - 2 / 3, 1 + 0.5 / 3]),
        ("sum", [2.0, 1.0, 7.0, 1.0, -1.0, 1.5]),
    ],
)
def test_each_rule_aggregates_hand_made_updates_as_specified(rule: str, expected: list[float]) -> None:
    out = aggregate(BASE, [U1, U2, U3], rule=rule)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.array(expected, np.float32), rtol=0, atol=1e-7)


def test_clipped_shared_mean_clips_to_the_median_norm_and_halves_a_lone_coordinate() -> None:
    # Squared norms 10, 29 and 4.25: the lower median is 10, so only U2 is scaled, by sqrt(10/29);
    # every coordinate divides by max(sharers, 2): those of one update move by half.
    a = (10 / 29) ** 0.5
    out = aggregate(BASE, [U1, U2, U3], rule="clipped-shared-mean")
    expected = [1 + 1 / 2, 1.0, 1 + (3 + 5 * a - 2) / 3, 1.0, 1 - 2 * a / 2, 1 + 0.5 / 2]
    np.testing.assert_allclose(out, np.array(expected, np.float32), rtol=0, atol=1e-6)
    assert clip_factors([U1, U2, U3]) == [1.0, a, 1.0]


def test_norm_sq_is_exact_in_the_filters_fixed_point() -> None:
    assert norm_sq(U1) == (1 * 2**20) ** 2 + (3 * 2**20) ** 2


def test_shared_mean_averages_each_coordinate_over_the_updates_sharing_it() -> None:
    out = aggregate(np.zeros(6, np.float32), [U1, U2])
    np.testing.assert_array_equal(out, [1.0, 0.0, 4.0, 0.0, -2.0, 0.0])


def test_the_default_rule_is_shared_mean_and_a_single_update_applies_exactly() -> None:
    assert AGGREGATION_RULES == ("shared-mean", "mean", "sum", "clipped-shared-mean")
    np.testing.assert_array_equal(aggregate(BASE, [U1, U2]), aggregate(BASE, [U1, U2], rule="shared-mean"))
    for rule in ("shared-mean", "sum"):
        np.testing.assert_array_equal(aggregate(BASE, [U2], rule=rule), [1, 1, 6, 1, -1, 1])


def test_no_updates_return_a_copy_of_the_params() -> None:
    out = aggregate(BASE, [])
    np.testing.assert_array_equal(out, BASE)
    assert out is not BASE and not np.shares_memory(out, BASE)


def test_aggregation_leaves_the_params_unmodified() -> None:
    base = BASE.copy()
    aggregate(base, [U1, U2, U3], rule="sum")
    np.testing.assert_array_equal(base, BASE)


@pytest.mark.parametrize("rule", AGGREGATION_RULES)
def test_aggregation_is_independent_of_update_order_bit_for_bit(rule: str) -> None:
    rng = np.random.default_rng(0)
    dim = 2000
    params = rng.standard_normal(dim).astype(np.float32)
    updates = []
    for k in range(5):
        idx = np.sort(rng.choice(dim, 400, replace=False))
        # Values over many magnitudes, so float summation order would change the bits.
        vals = (rng.standard_normal(400) * 10.0 ** rng.integers(-8, 3, 400)).astype(np.float32)
        updates.append(SparseUpdate(dim, idx, vals * (k + 1)))
    results = {aggregate(params, list(p), rule=rule).tobytes() for p in itertools.permutations(updates)}
    assert len(results) == 1
    # And it is the float64 reference, rounded once.
    total = np.zeros(dim)
    count = np.zeros(dim)
    factors = clip_factors(updates) if rule == "clipped-shared-mean" else [1.0] * len(updates)
    for u, factor in zip(updates, factors, strict=True):
        np.add.at(total, u.indices.astype(np.int64), u.values.astype(np.float64) * factor)
        np.add.at(count, u.indices.astype(np.int64), 1)
    step = {
        "sum": total,
        "mean": total / 5,
        "shared-mean": total / np.maximum(count, 1),
        "clipped-shared-mean": total / np.maximum(count, 2),
    }[rule]
    np.testing.assert_allclose(
        aggregate(params, updates, rule=rule),
        (params + step).astype(np.float32),
        rtol=1e-6,
        atol=1e-12,
    )


def test_aggregation_refuses_a_dimension_mismatch_and_an_unknown_rule() -> None:
    with pytest.raises(ValueError, match="dimension 7 for 6 parameters"):
        aggregate(BASE, [U1, _u(7, [0], [1.0])])
    with pytest.raises(ValueError, match="known: shared-mean, mean, sum"):
        aggregate(BASE, [U1], rule="median")
    with pytest.raises(ValueError, match="1-D"):
        aggregate(BASE.reshape(2, 3), [U1])

"""Sparse updates: top-|Δ| selection, applying, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seccl.learning.sparse import SparseUpdate, apply_update, delta, select_top_fraction, update_size

# |Δ| ranks: 3 (7), then a tie 2 (1) / 2 (3), then a tie 1 (2) / 1 (5), then 0.5 (0) / 0.5 (6).
D = np.array([0.5, -2.0, 1.0, 2.0, 0.0, -1.0, 0.5, 3.0], dtype=np.float32)


@pytest.mark.parametrize(
    ("fraction", "indices"),
    [
        (0.125, [7]),
        (0.25, [1, 7]),  # tie at |2|: the lower index 1 wins over 3
        (0.375, [1, 3, 7]),
        (0.5, [1, 2, 3, 7]),  # tie at |1|: 2 wins over 5
        (0.625, [1, 2, 3, 5, 7]),
        (0.75, [0, 1, 2, 3, 5, 7]),  # tie at 0.5: 0 wins over 6
        (1.0, list(range(8))),
    ],
)
def test_top_fraction_keeps_the_largest_magnitudes_lower_index_first_on_ties(
    fraction: float, indices: list[int]
) -> None:
    u = select_top_fraction(D, fraction)
    assert u.dimension == 8
    assert u.indices.tolist() == indices
    assert u.indices.dtype == np.uint32 and u.values.dtype == np.float32
    np.testing.assert_array_equal(u.values, D[indices])


@pytest.mark.parametrize(
    ("d", "fraction", "k"),
    [
        (10, 0.1, 1),
        (10, 0.11, 2),  # ceil(1.1)
        (10, 0.3, 3),  # 0.3·10 = 3.0000000000000004 in floats: still 3
        (470, 0.1, 47),
        (46_970, 0.1, 4_697),
        (46_970, 0.07, 3_288),  # ceil(3287.9)
        (10, 1e-9, 1),  # never empty
        (7, 1.0, 7),
    ],
)
def test_top_fraction_keeps_ceil_of_s_times_d_coordinates(d: int, fraction: float, k: int) -> None:
    vec = np.random.default_rng(d).standard_normal(d).astype(np.float32)
    assert len(select_top_fraction(vec, fraction)) == k
    assert update_size(fraction, d) == k  # the size every session agrees on


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.2, 0.3, 0.5, 1.0])
def test_the_agreed_update_size_is_what_the_top_fraction_selection_keeps(fraction: float) -> None:
    d = 46_970
    vec = np.random.default_rng(3).standard_normal(d).astype(np.float32)
    assert len(select_top_fraction(vec, fraction)) == update_size(fraction, d)
    assert update_size(fraction, d) == math.ceil(round(fraction * d, 6))


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.01, float("nan")])
def test_the_update_size_refuses_a_fraction_outside_the_unit_interval(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        update_size(fraction, 100)


def test_top_fraction_matches_a_brute_force_ranking() -> None:
    rng = np.random.default_rng(1)
    # Many exact ties (values on a coarse grid) to exercise the tie-break.
    vec = (rng.integers(-20, 21, 5000) / 4).astype(np.float32)
    u = select_top_fraction(vec, 0.1)
    ranked = sorted(range(len(vec)), key=lambda i: (-abs(float(vec[i])), i))
    assert u.indices.tolist() == sorted(ranked[:500])
    assert np.all(np.diff(u.indices.astype(np.int64)) > 0)


def test_top_fraction_refuses_bad_fractions_and_non_finite_or_non_flat_deltas() -> None:
    for bad in (0.0, -0.1, 1.01):
        with pytest.raises(ValueError, match="fraction"):
            select_top_fraction(D, bad)
    with pytest.raises(ValueError, match="non-finite"):
        select_top_fraction(np.array([1.0, np.nan], np.float32), 0.5)
    with pytest.raises(ValueError, match="1-D"):
        select_top_fraction(np.zeros((2, 2), np.float32), 0.5)


def test_applying_the_full_delta_gives_back_the_local_model() -> None:
    rng = np.random.default_rng(2)
    theta = rng.standard_normal(100).astype(np.float32)
    local = theta + rng.standard_normal(100).astype(np.float32)
    d = delta(local, theta)
    assert d.dtype == np.float32
    np.testing.assert_array_equal(d, local - theta)
    full = apply_update(theta, select_top_fraction(d, 1.0))
    np.testing.assert_allclose(full, local, atol=1e-6)
    with pytest.raises(ValueError, match="same length"):
        delta(local, theta[:-1])


def test_applying_an_update_returns_a_new_array() -> None:
    params = np.arange(5, dtype=np.float32)
    u = SparseUpdate(5, np.array([1, 4]), np.array([10.0, -1.0]))
    out = apply_update(params, u)
    np.testing.assert_array_equal(out, [0, 11, 2, 3, 3])
    np.testing.assert_array_equal(params, np.arange(5))  # untouched
    np.testing.assert_array_equal(u.to_dense(), [0, 10, 0, 0, -1])
    with pytest.raises(ValueError, match="dimension 5"):
        apply_update(np.zeros(6, np.float32), u)


@pytest.mark.parametrize(
    ("dimension", "indices", "values", "match"),
    [
        (5, [0, 1], [1.0], "lengths differ"),
        (5, [1, 0], [1.0, 2.0], "strictly increasing"),
        (5, [2, 2], [1.0, 2.0], "strictly increasing"),
        (5, [1, 5], [1.0, 2.0], r"\[0, 5\)"),
        (5, [-1, 2], [1.0, 2.0], r"\[0, 5\)"),
        (5, [1, 2], [1.0, np.nan], "finite"),
        (5, [1, 2], [np.inf, 0.0], "finite"),
        (5, [1, 2], [1e39, 0.0], "finite"),  # overflows float32
        (5, [0.5, 2], [1.0, 0.0], "integers"),
        (0, [], [], "dimension"),
    ],
)
def test_a_sparse_update_refuses_invalid_fields(
    dimension: int, indices: list[float], values: list[float], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        SparseUpdate(dimension, np.array(indices), np.array(values))


def test_a_sparse_update_is_immutable_and_compares_by_value() -> None:
    idx = np.array([0, 3], dtype=np.int64)
    u = SparseUpdate(4, idx, np.array([1.0, 2.0]))
    idx[0] = 2  # the update owns a copy
    assert u.indices.tolist() == [0, 3]
    with pytest.raises(ValueError, match="read-only"):
        u.values[0] = 5.0
    assert u == SparseUpdate(4, np.array([0, 3], np.uint32), np.array([1, 2], np.float32))
    assert u != SparseUpdate(4, np.array([0, 3]), np.array([1.0, 2.5]))
    assert u != SparseUpdate(5, np.array([0, 3]), np.array([1.0, 2.0]))
    assert len(SparseUpdate(3, np.array([], np.uint32), np.array([], np.float32))) == 0


def test_the_top_fraction_is_the_set_a_stable_sort_on_minus_magnitude_keeps() -> None:
    # Many ties (small integers): the selection must keep the lower index among equals, exactly
    # as the documented definition, a stable argsort of −|Δ|, does.
    rng = np.random.default_rng(0)
    for _ in range(300):
        d = rng.integers(-5, 6, size=int(rng.integers(1, 400))).astype(np.float32)
        fraction = float(rng.uniform(0.01, 1.0))
        update = select_top_fraction(d, fraction)
        expected = np.sort(np.argsort(-np.abs(d), kind="stable")[: len(update.indices)])
        assert np.array_equal(update.indices, expected.astype(np.uint32))

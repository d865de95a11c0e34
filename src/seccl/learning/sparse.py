"""Sparse updates: Δ = θ_local − θ_global, its top-|Δ| fraction, and applying one to a model."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SparseUpdate", "apply_update", "delta", "select_top_fraction", "update_size"]

_MAX_DIMENSION = 2**32 - 1  # the dimension and indices travel as uint32


@dataclass(frozen=True, eq=False)
class SparseUpdate:
    """The coordinates of Δ a participant shares: ``values[k]`` is Δ at ``indices[k]``.

    Attributes
    ----------
    dimension
        Length of the full parameter vector.
    indices
        uint32, strictly increasing, each ``< dimension``.
    values
        float32, finite, same length as ``indices``.

    The arrays are converted (losslessly) to uint32/float32 copies and made read-only, so
    an update cannot change after it was validated, signed or hashed. Two updates are equal
    when dimension, indices and values are equal.
    """

    dimension: int
    indices: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        if not 0 < self.dimension <= _MAX_DIMENSION:
            raise ValueError(f"dimension must be in [1, 2**32 - 1], got {self.dimension}")
        idx_in = np.asarray(self.indices)
        val_in = np.asarray(self.values)
        if idx_in.ndim != 1 or val_in.ndim != 1:
            raise ValueError("indices and values must be 1-D arrays")
        if len(idx_in) != len(val_in):
            raise ValueError(f"{len(idx_in)} indices but {len(val_in)} values: lengths differ")
        if len(idx_in) and not np.issubdtype(idx_in.dtype, np.integer):
            raise ValueError(f"indices must be integers, got {idx_in.dtype}")
        if len(idx_in) and (idx_in.min() < 0 or idx_in.max() >= self.dimension):
            raise ValueError(f"indices must lie in [0, {self.dimension}) (dimension)")
        idx = idx_in.astype(np.uint32)  # lossless after the range check
        if len(idx) > 1 and not (np.diff(idx.astype(np.int64)) > 0).all():
            raise ValueError("indices must be strictly increasing (sorted, no duplicates)")
        with np.errstate(over="ignore"):  # an overflow becomes inf, rejected just below
            val = val_in.astype(np.float32)
        if not np.isfinite(val).all():
            raise ValueError("values must be finite (no NaN or inf, also after the float32 cast)")
        idx.flags.writeable = False
        val.flags.writeable = False
        object.__setattr__(self, "indices", idx)
        object.__setattr__(self, "values", val)

    def __len__(self) -> int:
        return len(self.indices)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SparseUpdate):
            return NotImplemented
        return (
            self.dimension == other.dimension
            and np.array_equal(self.indices, other.indices)
            and np.array_equal(self.values, other.values)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-looking arrays: not hashable

    def scaled(self, factor: float) -> SparseUpdate:
        """The same coordinates with every value times ``factor`` (itself when ``factor`` is 1)."""
        if factor == 1.0:
            return self
        return SparseUpdate(self.dimension, self.indices, self.values.astype(np.float64) * factor)

    def to_dense(self) -> np.ndarray:
        """The full-length float32 Δ, zero off the shared coordinates."""
        out = np.zeros(self.dimension, dtype=np.float32)
        out[self.indices] = self.values
        return out


def delta(local: np.ndarray, global_: np.ndarray) -> np.ndarray:
    """Δ = ``local − global_`` as float32 (the change local training made)."""
    a, b = np.asarray(local), np.asarray(global_)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two 1-D vectors of the same length, got {a.shape} and {b.shape}")
    return (a.astype(np.float32) - b.astype(np.float32)).astype(np.float32)


def select_top_fraction(delta: np.ndarray, fraction: float) -> SparseUpdate:
    """Keep the ``ceil(fraction·d)`` coordinates of ``delta`` with the largest ``|Δ|``.

    Ties in ``|Δ|`` go to the lower index (a stable sort on ``−|Δ|``), so every
    implementation selects the same set; the result's indices are sorted ascending.
    ``fraction`` in ``(0, 1]``.
    """
    d = np.asarray(delta, dtype=np.float32)
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"delta must be a non-empty 1-D vector, got shape {d.shape}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if not np.isfinite(d).all():
        raise ValueError("delta holds non-finite values")
    k = update_size(fraction, d.size)
    magnitude = np.abs(d)
    if k == d.size:
        keep = np.arange(d.size)
    else:
        # The set a stable sort on −|Δ| keeps, in O(d) rather than a full sort: every coordinate
        # above the k-th largest |Δ|, then the lowest-indexed ones equal to it.
        threshold = np.partition(magnitude, d.size - k)[d.size - k]
        above = np.flatnonzero(magnitude > threshold)
        tied = np.flatnonzero(magnitude == threshold)[: k - above.size]
        keep = np.sort(np.concatenate([above, tied]))
    return SparseUpdate(d.size, keep.astype(np.uint32), d[keep])


def update_size(fraction: float, dimension: int) -> int:
    """``ceil(fraction·dimension)``, at least 1: how many coordinates every update shares."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    # ceil of a product that should be an integer (0.1·470 = 47.00000000000001) must not
    # round up: snap to the nearest integer when within float error of it.
    raw = fraction * dimension
    k = round(raw) if math.isclose(raw, round(raw), rel_tol=1e-9, abs_tol=1e-9) else math.ceil(raw)
    return max(1, min(dimension, k))


def apply_update(params: np.ndarray, update: SparseUpdate) -> np.ndarray:
    """A new float32 vector: ``params`` with ``update``'s values added at its indices."""
    p = np.asarray(params)
    if p.ndim != 1 or p.shape[0] != update.dimension:
        raise ValueError(f"update has dimension {update.dimension}, params shape {p.shape}")
    out = p.astype(np.float32, copy=True)
    out[update.indices] += update.values
    return out

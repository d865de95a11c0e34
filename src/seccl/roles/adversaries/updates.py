"""Forged updates: adversaries that upload noise, transformed values or an update they never trained."""

from __future__ import annotations

from typing import Any

import numpy as np

from seccl.learning.sparse import SparseUpdate, delta, select_top_fraction
from seccl.roles.adversaries.base import Adversary

__all__ = ["FreeRider", "NoiseParticipant", "ScalingParticipant", "SignFlippingParticipant"]


class NoiseParticipant(Adversary):
    """Uploads Gaussian noise instead of its Δ, with an honest update's structure: the agreed
    number of coordinates (as the top-``s`` selection), but random ones, with values ``N(0, σ²)``.

    ``sigma`` fixed: no training at all. ``sigma=None`` (default): it trains and takes
    ``σ = relative × std(Δ)`` of its real dense Δ, so the noise has a plausible scale."""

    def __init__(self, *args: Any, sigma: float | None = None, relative: float = 10.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if sigma is not None and not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.sigma = sigma
        self.relative = relative
        self.last_sigma: float | None = None

    def local_model(self, params: np.ndarray, round_: int) -> np.ndarray:
        if self.attacking(round_) and self.sigma is not None:
            return params.copy()
        return super().local_model(params, round_)

    def make_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> SparseUpdate:
        if not self.attacking(round_):
            return super().make_update(params, local, round_)
        sigma = self.sigma
        if sigma is None:
            sigma = self.relative * float(np.std(delta(local, params), dtype=np.float64))
        self.last_sigma = sigma
        rng = self._rng(round_, 0x20)
        k = self.share_count
        indices = self._random_support(rng, k)
        values = rng.normal(0.0, sigma, size=k).astype(np.float32)
        return SparseUpdate(len(params), indices, values)

    def dense_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> np.ndarray:
        # The same forged noise, zero elsewhere: noise on every coordinate would be another attack.
        if not self.attacking(round_):
            return super().dense_update(params, local, round_)
        return self.make_update(params, local, round_).to_dense()


class _ValueTransform(Adversary):
    """Uploads its honest top-``s`` update with the values transformed, same coordinates."""

    def transform(self, values: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def make_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> SparseUpdate:
        update = super().make_update(params, local, round_)
        if not self.attacking(round_):
            return update
        values = self.transform(update.values.astype(np.float64)).astype(np.float32)
        return SparseUpdate(update.dimension, update.indices, values)

    def dense_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> np.ndarray:
        full = super().dense_update(params, local, round_)
        if not self.attacking(round_):
            return full
        return self.transform(full.astype(np.float64)).astype(np.float32)


class SignFlippingParticipant(_ValueTransform):
    """Uploads ``−scale × Δ`` on the honest coordinates (``scale`` 1 by default)."""

    def __init__(self, *args: Any, scale: float = 1.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.scale = scale

    def transform(self, values: np.ndarray) -> np.ndarray:
        return -self.scale * values


class ScalingParticipant(_ValueTransform):
    """Boosting: uploads ``scale × Δ`` on the honest coordinates (``scale`` 10 by default)."""

    def __init__(self, *args: Any, scale: float = 10.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.scale = scale

    def transform(self, values: np.ndarray) -> np.ndarray:
        return self.scale * values


class FreeRider(Adversary):
    """Uploads without training (it never calls local training from ``start_round`` on).

    ``mode="random"``: ``N(0, sigma²)`` values (small: ``sigma`` 1e-3) on random coordinates.
    ``mode="stale"``: replays the last aggregate step it saw, ``θ_{r−1} − θ_{r−2}`` (the
    global model it receives now minus the one it received last round), times
    ``stale_scale``, plus Gaussian noise of ``noise`` × that step's std over the coordinates
    it moved; its top-``s`` coordinates form the update. With no earlier model to compare
    (its first round) it falls back to ``"random"``. Copying others' past progress costs no
    training: the paper's open problem of training verification.
    """

    MODES = ("random", "stale")

    def __init__(
        self,
        *args: Any,
        mode: str = "random",
        sigma: float = 1e-3,
        stale_scale: float = 1.0,
        noise: float = 0.1,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.sigma = sigma
        self.stale_scale = stale_scale
        self.noise = noise
        self._previous: np.ndarray | None = None  # the global model it received last round

    def local_model(self, params: np.ndarray, round_: int) -> np.ndarray:
        if self.attacking(round_):
            return params.copy()
        return super().local_model(params, round_)

    def make_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> SparseUpdate:
        previous, self._previous = self._previous, params.copy()
        if not self.attacking(round_):
            return super().make_update(params, local, round_)
        rng = self._rng(round_, 0x30)
        step = None if previous is None else delta(params, previous)
        if self.mode == "random" or step is None or not step.any():
            k = self.share_count
            values = rng.normal(0.0, self.sigma, size=k).astype(np.float32)
            return SparseUpdate(len(params), self._random_support(rng, k), values)
        moved = step != 0
        spread = float(np.std(step[moved], dtype=np.float64))
        forged = self.stale_scale * step.astype(np.float64)
        forged[moved] += rng.normal(0.0, self.noise * spread, size=int(moved.sum()))
        return select_top_fraction(forged.astype(np.float32), self.settings.share_fraction)

    def dense_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> np.ndarray:
        # make_update keeps the last model it saw: call one of the two per round, never both.
        if not self.attacking(round_):
            self._previous = params.copy()
            return super().dense_update(params, local, round_)
        return self.make_update(params, local, round_).to_dense()

"""The maths of the colluding attacks from the robust-aggregation literature, on plain vectors.

Each function takes the updates the honest participants send in a round, stacked as rows of a
``[k, d]`` array, and returns the one vector every colluder sends instead. Written by hand from
the papers (not taken from a library: byzfl, the usual one, needs a CUDA build of torch):

- "a little is enough" (ALIE): G. Baruch, M. Baruch, Y. Goldberg, *A Little Is Enough:
  Circumventing Defenses For Distributed Learning*, NeurIPS 2019.
- inner-product manipulation (IPM): C. Xie, O. Koyejo, I. Gupta, *Fall of Empires: Breaking
  Byzantine-tolerant SGD by Inner Product Manipulation*, UAI 2019 (PMLR 115, 2020).
- the scale search of the adaptive backdoor follows the "constrain-and-scale" idea of
  E. Bagdasaryan et al., *How To Backdoor Federated Learning*, AISTATS 2020: boost a poisoned
  update as far as the defence's own acceptance test allows.

Both ALIE and IPM assume an *omniscient* coalition that knows the honest updates of the round
before it sends its own (see ``seccl.roles.adversaries.coalition.Coalition`` for how a
simulation grants that knowledge, and why it is more than SecCL's one-phase upload allows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np

__all__ = ["IPM_EPSILON", "alie", "alie_z", "ipm", "largest_passing_scale"]

IPM_EPSILON = 0.1
"""Xie et al.'s ε against Krum-like rules (their Figure 2): small enough that the colluders'
shared vector stays close to the honest ones, so distance- and rank-based rules keep it."""


def alie_z(n: int, m: int) -> float:
    """Baruch et al.'s ``z_max`` for ``n`` workers of which ``m`` collude (their Algorithm 3).

    ``s = ⌊n/2 + 1⌋ − m`` honest workers must be "won over" for the colluders to form a
    majority; ``z = Φ⁻¹((n − s)/n)`` is the largest shift (in standard deviations) that still
    leaves the colluders' value closer to the mean than ``s`` of the honest ones, so that
    median- and distance-based rules keep it. N = 20: m = 2, 4, 6 give z ≈ 0.126, 0.385, 0.674.
    """
    if not 0 < m < n:
        raise ValueError(f"need 0 < m < n colluders, got m = {m} of n = {n}")
    s = math.floor(n / 2 + 1) - m
    # With a colluding majority (s ≤ 0) the paper's quantile leaves (0, 1): clip to the largest
    # shift that is still a finite quantile; the attack is then unconstrained anyway.
    p = min((n - s) / n, 1 - 1e-6)
    return NormalDist().inv_cdf(p)


def _stack(honest: np.ndarray) -> np.ndarray:
    h = np.asarray(honest, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] < 1:
        raise ValueError(f"honest updates must be a non-empty [k, d] array, got shape {h.shape}")
    return h


def alie(honest: np.ndarray, z: float) -> np.ndarray:
    """ALIE's vector: ``μ − z·σ`` coordinate-wise, with ``μ`` and ``σ`` the mean and the
    (population, ``ddof = 0``) standard deviation of the honest updates. float64, length d."""
    h = _stack(honest)
    result: np.ndarray = h.mean(axis=0) - z * h.std(axis=0)
    return result


def ipm(honest: np.ndarray, epsilon: float = IPM_EPSILON) -> np.ndarray:
    """IPM's vector: ``−ε·μ``, the honest mean reversed and shrunk, so the inner product of the
    aggregate with the true gradient turns negative once enough of it gets in. float64."""
    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive, got {epsilon}")
    result: np.ndarray = -epsilon * _stack(honest).mean(axis=0)
    return result


def largest_passing_scale(
    passes: Callable[[float], bool], *, low: float = 1.0, high: float = 10.0, steps: int = 8
) -> float:
    """The largest scale λ in ``[low, high]`` for which ``passes(λ)`` holds, by bisection.

    ``high`` is tried first (no search when the largest boost already passes); otherwise the
    search keeps an interval whose lower end passes (``low``, assumed to: the unboosted
    update) and whose upper end fails, halving it ``steps`` times. It assumes ``passes`` flips
    once from true to false as λ grows, as a poisoned update's score does once boosting makes
    it overshoot; when it does not, the answer is still a λ that passed (or ``low``).
    """
    if not 0 < low <= high:
        raise ValueError(f"need 0 < low <= high, got {low} and {high}")
    if passes(high):
        return high
    good, bad = low, high
    for _ in range(steps):
        middle = (good + bad) / 2
        if passes(middle):
            good = middle
        else:
            bad = middle
    return good

"""The maths of the colluding attacks from the robust-aggregation literature, on plain vectors.

Each function takes the updates the honest participants send in a round, stacked as rows of a
``[k, d]`` array, and returns the one vector every colluder sends instead. Written by hand from
the papers and their released code, and checked against byzfl (EPFL's library of Byzantine
attacks and robust rules, github.com/LPD-EPFL/byzfl) in ``tests/learning/test_attacks_reference.py``:

- "a little is enough" (ALIE): G. Baruch, M. Baruch, Y. Goldberg, *A Little Is Enough:
  Circumventing Defenses For Distributed Learning*, NeurIPS 2019.
- inner-product manipulation (IPM): C. Xie, O. Koyejo, I. Gupta, *Fall of Empires: Breaking
  Byzantine-tolerant SGD by Inner Product Manipulation*, UAI 2019 (PMLR 115, 2020).
- the colluding sign flip ``−μ``: byzfl's ``SignFlipping``, after Z. Allen-Zhu, F. Ebrahimian,
  J. Li, D. Alistarh, *Byzantine-Resilient Non-Convex Stochastic Gradient Descent*, ICLR 2021.
- Min-Max and Min-Sum: V. Shejwalkar, A. Houmansadr, *Manipulating the Byzantine: Optimizing
  Model Poisoning Attacks and Defenses for Federated Learning*, NDSS 2021 (their Algorithm 1 and
  the code they released with it, github.com/vrt1shjwlkr/NDSS21-Model-Poisoning).
- the scale search of the adaptive backdoor follows the "constrain-and-scale" idea of
  E. Bagdasaryan et al., *How To Backdoor Federated Learning*, AISTATS 2020: boost a poisoned
  update as far as the defence's own acceptance test allows.

All of them assume an *omniscient* coalition that knows the honest updates of the round before
it sends its own (see ``seccl.roles.adversaries.coalition.Coalition`` for how a simulation grants
that knowledge, and why it is more than SecCL's one-phase upload allows). All are deterministic:
the same honest rows give the same vector, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np

__all__ = [
    "ALIE_REFERENCE_Z",
    "IPM_EPSILON",
    "IPM_LARGE_EPSILON",
    "PERTURBATIONS",
    "SHEJWALKAR_GAMMA_INIT",
    "SHEJWALKAR_TAU",
    "alie",
    "alie_z",
    "ipm",
    "largest_passing_scale",
    "min_max",
    "min_sum",
    "perturbation",
    "sign_flip_mean",
]

IPM_EPSILON = 0.1
"""Xie et al.'s ε against Krum-like rules (their Figure 2): small enough that the colluders'
shared vector stays close to the honest ones, so distance- and rank-based rules keep it."""

IPM_LARGE_EPSILON = 2.0
"""A large ε, byzfl's default (``InnerProductManipulation(tau=2.0)``): the colluders send twice
the honest mean, reversed. With ``q`` of ``n`` colluding, the plain mean moves by
``(n − q − ε·q)/n · μ``: ε = 2 cuts the honest step to (n − 3q)/n of it (a tenth at 6 of 20) and
reverses it once q > n/3, where ε = 0.1 only ever shrinks it by a few percent."""

ALIE_REFERENCE_Z = 1.5
"""The z of ALIE's reference implementations, a fixed shift of 1.5 standard deviations: the
default of Baruch et al.'s own released code (``--num_std``, default 1.5, in
github.com/moranant/attacking_distributed_learning) and of byzfl's ``ALittleIsEnough``
(``tau=1.5``). Their paper's formula (:func:`alie_z`) gives far less for N = 20: 0.126 / 0.385 /
0.674 for 2 / 4 / 6 colluders, the largest shift that keeps them inside the honest majority."""

SHEJWALKAR_GAMMA_INIT = 10.0
"""γ_init of Min-Max and Min-Sum, the value of Shejwalkar & Houmansadr's released code
(``lamda = 10.0`` in ``our_attack_dist`` and ``our_attack_score``)."""

SHEJWALKAR_TAU = 1e-5
"""τ of their γ search: it stops once the step is this small (``threshold_diff = 1e-5``)."""

PERTURBATIONS = ("unit-vector", "std", "sign")
"""Shejwalkar & Houmansadr's perturbation vectors ∇p, an input of their Algorithm 1: "inverse
unit vector", "inverse standard deviation" and "inverse sign"; see :func:`perturbation`."""


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


def _spread(h: np.ndarray, ddof: int) -> np.ndarray:
    # The sample deviation (ddof = 1) of one row is 0/0: refuse it rather than send NaN.
    if not 0 <= ddof < h.shape[0]:
        raise ValueError(f"a standard deviation with ddof = {ddof} needs more than {ddof} honest rows")
    result: np.ndarray = h.std(axis=0, ddof=ddof)
    return result


def alie(honest: np.ndarray, z: float, *, ddof: int = 0) -> np.ndarray:
    """ALIE's vector (Baruch et al., NeurIPS 2019): ``μ − z·σ`` coordinate-wise, with ``μ`` the
    mean of the honest updates and ``σ`` their standard deviation, the population one
    (``ddof = 0``, this project's ``alie`` since the comparison began) unless ``ddof = 1``: the
    sample deviation of the reference codes (``torch.std`` in Shejwalkar & Houmansadr's LIE,
    ``var(ddof=1)`` in byzfl's ``ALittleIsEnough``, which computes ``μ + τ·σ``: ours with
    ``τ = −z``; the sign is the colluders' free choice). float64, length d."""
    h = _stack(honest)
    if ddof == 0:
        # The very expression of the first version (h.std's default ddof), so alie's bits stay.
        result: np.ndarray = h.mean(axis=0) - z * h.std(axis=0)
        return result
    result = h.mean(axis=0) - z * _spread(h, ddof)
    return result


def ipm(honest: np.ndarray, epsilon: float = IPM_EPSILON) -> np.ndarray:
    """IPM's vector: ``−ε·μ``, the honest mean reversed and shrunk, so the inner product of the
    aggregate with the true gradient turns negative once enough of it gets in. float64."""
    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive, got {epsilon}")
    result: np.ndarray = -epsilon * _stack(honest).mean(axis=0)
    return result


def sign_flip_mean(honest: np.ndarray) -> np.ndarray:
    """The colluding sign flip: ``−μ``, the honest mean reversed, byzfl's ``SignFlipping`` (after
    Allen-Zhu et al., ICLR 2021); IPM with ε = 1. Every colluder sends the same vector, unlike
    the plain sign flip, where each sends ``−Δ`` of its own training. float64."""
    result: np.ndarray = -_stack(honest).mean(axis=0)
    return result


def perturbation(honest: np.ndarray, kind: str = "unit-vector") -> np.ndarray:
    """Shejwalkar & Houmansadr's perturbation vector ∇p (NDSS 2021), with ``∇b = μ`` the honest
    mean:

    - ``"unit-vector"``, the inverse unit vector: ``∇p = −∇b/‖∇b‖₂`` (zero when ``∇b`` is);
    - ``"std"``, the inverse standard deviation: ``∇p = −σ``, coordinate-wise, the sample
      deviation of the honest rows (``torch.std`` of their code: ddof = 1);
    - ``"sign"``, the inverse sign: ``∇p = −sign(∇b)``.

    Their code writes the malicious update as ``∇b − γ·dev`` with ``dev`` the same vectors
    unnegated; ``−x`` is exact in floating point, so ``∇b + γ·∇p`` gives the same bits."""
    h = _stack(honest)
    mean = h.mean(axis=0)
    if kind == "unit-vector":
        norm = float(np.linalg.norm(mean))
        # A zero mean has no direction to invert: no perturbation, the attack sends the mean.
        result: np.ndarray = -mean / norm if norm > 0 else np.zeros_like(mean)
    elif kind == "std":
        result = -_spread(h, 1)
    elif kind == "sign":
        result = -np.sign(mean)
    else:
        raise ValueError(f"unknown perturbation {kind!r}; known: {', '.join(PERTURBATIONS)}")
    return result


def _squared_distances(rows: np.ndarray, point: np.ndarray) -> np.ndarray:
    """``‖rows_i − point‖²`` for each row, from the differences (not the Gram identity, which
    cancels digits when the rows are close): the quantities their oracles compare."""
    diff = rows - point
    result: np.ndarray = np.einsum("ij,ij->i", diff, diff)
    return result


def _gamma_search(passes: Callable[[float], bool], gamma_init: float, tau: float) -> float:
    """Shejwalkar & Houmansadr's search for the largest γ with ``passes(γ)`` (their Algorithm 1,
    as their code runs it): try γ = γ_init; on success remember it and step up by half
    the step, on failure step down by half; halve the step; stop once ``|γ_succ − γ| ≤ τ``. Since
    ``γ − γ_succ`` equals the step at every turn (it starts at γ_init − 0), that is "stop when the
    step is at most τ": ⌈log₂(γ_init/τ)⌉ tries, 20 for their γ_init = 10, τ = 1e-5. It returns
    γ_succ, 0 when nothing passed; never more than 2·γ_init (the steps sum to it)."""
    if not gamma_init > 0 or not tau > 0:
        raise ValueError(f"need gamma_init > 0 and tau > 0, got {gamma_init} and {tau}")
    gamma, step, succeeded = gamma_init, gamma_init, 0.0
    while abs(succeeded - gamma) > tau:
        if passes(gamma):
            succeeded = gamma
            gamma = gamma + step / 2
        else:
            gamma = gamma - step / 2
        step = step / 2
    return succeeded


def min_max(
    honest: np.ndarray,
    kind: str = "unit-vector",
    *,
    gamma_init: float = SHEJWALKAR_GAMMA_INIT,
    tau: float = SHEJWALKAR_TAU,
) -> np.ndarray:
    """Min-Max (Shejwalkar & Houmansadr, NDSS 2021, their aggregation-agnostic attack: Algorithm 1
    with the Min-Max oracle): ``∇m = ∇b + γ·∇p`` with ``∇b = μ``, ``∇p`` the :func:`perturbation` of
    ``kind``, and the largest γ (:func:`_gamma_search`) for which

        ``max_i ‖∇m − ∇_i‖² ≤ max_{i,j} ‖∇_i − ∇_j‖²``:

    the malicious update is no farther from any honest one than the two farthest honest updates
    are from each other, so a distance-based rule cannot tell it from an honest outlier. Squared
    distances, as in their code (the same order as the plain ones). float64."""
    h = _stack(honest)
    mean = h.mean(axis=0)
    push = perturbation(h, kind)
    bound = max(float(_squared_distances(h, row).max()) for row in h)

    def passes(gamma: float) -> bool:
        return float(_squared_distances(h, mean + gamma * push).max()) <= bound

    result: np.ndarray = mean + _gamma_search(passes, gamma_init, tau) * push
    return result


def min_sum(
    honest: np.ndarray,
    kind: str = "unit-vector",
    *,
    gamma_init: float = SHEJWALKAR_GAMMA_INIT,
    tau: float = SHEJWALKAR_TAU,
) -> np.ndarray:
    """Min-Sum (Shejwalkar & Houmansadr, NDSS 2021, their aggregation-agnostic attack: Algorithm 1
    with the Min-Sum oracle): ``∇m = ∇b + γ·∇p`` as :func:`min_max`, the largest γ for which

        ``Σ_i ‖∇m − ∇_i‖² ≤ min_i Σ_j ‖∇_i − ∇_j‖²``:

    the malicious update's summed squared distance to the honest updates is no more than that of
    the most central honest update (the ``min`` of their code's ``min_score``): by the summed
    distances that Krum-like rules score with, it looks at least as central as every honest
    update. float64."""
    h = _stack(honest)
    mean = h.mean(axis=0)
    push = perturbation(h, kind)
    bound = min(float(_squared_distances(h, row).sum()) for row in h)

    def passes(gamma: float) -> bool:
        return float(_squared_distances(h, mean + gamma * push).sum()) <= bound

    result: np.ndarray = mean + _gamma_search(passes, gamma_init, tau) * push
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

"""Our attacks and robust rules against a reference: byzfl (github.com/LPD-EPFL/byzfl), the library
of Byzantine attacks and aggregators of EPFL's distributed computing lab.

byzfl is installed by the Makefile with ``pip install --no-deps byzfl==0.0.11``: its declared
dependencies would pull a CUDA build of torch, and its top-level ``__init__`` imports its own
benchmark, which needs torchvision. ``byzfl.attacks`` and ``byzfl.aggregators`` themselves need
only numpy, scipy and torch, which the project has: :func:`byzfl_module` loads them without
running that ``__init__``.

Each check runs both on the same seeded random rows (a shared drift plus noise, as updates are).
Where a definition differs on purpose, the test says so and checks the part that must agree:

- ALIE: byzfl sends ``μ + τ·σ`` with the sample deviation (ddof = 1); ours ``μ − z·σ``, with the
  population deviation for the formula's z (``alie``, unchanged since the comparison began) and
  the sample one for the reference z = 1.5 (``alie-z1.5``).
- Multi-Krum and Krum: Blanchard et al. (and Flower, whose selection ours is) score each update by
  its n − f − 2 nearest neighbours; byzfl takes n − f − 1. byzfl's rule with f + 1 is ours with f.
- Min-Max and Min-Sum: byzfl 0.0.11 has neither, so they are checked against a transcription of
  Shejwalkar & Houmansadr's Algorithm 1 below, written in torch as their released code runs it.
- SecCL's colluders upload the top-s coordinates of the vector (the structure every SecCL update
  must have): byzfl has no sparse updates, so the dense vector is what is compared here; the
  top-s selection of it is checked in tests/experiments/test_attacks_and_rules.py.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

import numpy as np
import pytest
import torch

from seccl.experiments.baselines import ASSUMED_ATTACK_FRACTION, fedavg, median, multikrum, trimmed_mean
from seccl.learning.attacks import (
    ALIE_REFERENCE_Z,
    IPM_EPSILON,
    IPM_LARGE_EPSILON,
    PERTURBATIONS,
    SHEJWALKAR_GAMMA_INIT,
    SHEJWALKAR_TAU,
    alie,
    alie_z,
    ipm,
    min_max,
    min_sum,
    perturbation,
    sign_flip_mean,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("byzfl") is None,
    reason="byzfl is not installed: `make` installs it (pip install --no-deps byzfl==0.0.11)",
)

N, COLLUDERS = 20, 6  # the comparison's hardest case: 6 of 20
HONEST = N - COLLUDERS
F = round(ASSUMED_ATTACK_FRACTION * N)  # the f Multi-Krum and the trimmed mean are set for


def byzfl_module(name: str) -> Any:
    """``byzfl.<name>`` without running ``byzfl/__init__.py``, which imports byzfl's benchmark
    and with it torchvision (not installed: it would pull a CUDA torch). An empty module object
    stands for the package, with the package's ``__path__`` (found by ``find_spec``, which does
    not import it), so that the submodule and the siblings it imports load from byzfl's
    directory as usual. A byzfl already imported (whole or by this helper) is reused."""
    if "byzfl" not in sys.modules:
        spec = importlib.util.find_spec("byzfl")
        assert spec is not None and spec.submodule_search_locations is not None
        package = types.ModuleType("byzfl")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["byzfl"] = package
    return importlib.import_module(f"byzfl.{name}")


def rows(seed: int, k: int = HONEST, d: int = 400) -> np.ndarray:
    """``k`` update-like rows: a common drift, a per-coordinate scale and noise; float64."""
    rng = np.random.default_rng([seed, 23])
    drift = rng.normal(0.0, 0.05, size=d)
    scale = rng.uniform(0.01, 0.1, size=d)
    return drift + scale * rng.standard_normal((k, d))


SEEDS = [0, 1, 2]

# To rounding: the two sides sum in different orders (numpy's pairwise sums, torch's, a mean over
# rows taken in another order), ~1e-17 on values of ~1e-2; a formula apart would be off by ~1e-3.
ROUNDING: dict[str, float] = {"rtol": 1e-12, "atol": 1e-15}


# ─────────────── attacks ───────────────


@pytest.mark.parametrize("seed", SEEDS)
def test_alie_is_byzfls_a_little_is_enough_with_tau_minus_z(seed: int) -> None:
    attacks = byzfl_module("attacks")
    h = rows(seed)
    k = len(h)
    # The reference z: our alie-z1.5 (z = 1.5, sample σ) is byzfl's default with the sign turned.
    assert attacks.ALittleIsEnough().tau == ALIE_REFERENCE_Z
    # Bit for bit: the same numpy mean and sample deviation, and μ + (−z)·σ is μ − z·σ exactly.
    np.testing.assert_array_equal(
        alie(h, ALIE_REFERENCE_Z, ddof=1), attacks.ALittleIsEnough(tau=-ALIE_REFERENCE_Z)(h)
    )
    for m in (2, 4, 6):
        z = alie_z(N, m)
        np.testing.assert_array_equal(alie(h, z, ddof=1), attacks.ALittleIsEnough(tau=-z)(h))
        # Our alie of the comparison's records uses the population σ = √((k−1)/k)·(sample σ):
        # the same vector to rounding (the factor is applied to σ or to τ).
        tau = -z * float(np.sqrt((k - 1) / k))
        np.testing.assert_allclose(alie(h, z), attacks.ALittleIsEnough(tau=tau)(h), **ROUNDING)


@pytest.mark.parametrize("seed", SEEDS)
def test_ipm_and_the_colluding_sign_flip_are_byzfls(seed: int) -> None:
    attacks = byzfl_module("attacks")
    h = rows(seed)
    assert attacks.InnerProductManipulation().tau == IPM_LARGE_EPSILON  # ipm-large: byzfl's default
    for epsilon in (IPM_EPSILON, IPM_LARGE_EPSILON, 10.0):
        np.testing.assert_array_equal(ipm(h, epsilon), attacks.InnerProductManipulation(tau=epsilon)(h))
    np.testing.assert_array_equal(sign_flip_mean(h), attacks.SignFlipping()(h))


# Shejwalkar & Houmansadr's Algorithm 1, transcribed as their released code runs it (torch,
# squared distances, γ_init = 10, τ = 1e-5, the malicious update written ∇b − γ·dev): the
# reference for min_max and min_sum, which byzfl lacks. Independent of ours: torch, not numpy,
# and the oracles computed from the distance matrix, as the paper states them.
_CODE_DEVIATION = {"unit-vector": "unit_vec", "std": "std", "sign": "sign"}


def paper_algorithm_1(honest: np.ndarray, kind: str, oracle: str) -> np.ndarray:
    benign = torch.from_numpy(honest)  # float64
    mean = benign.mean(dim=0)  # ∇b: FedAvg of the benign updates
    dev_type = _CODE_DEVIATION[kind]
    if dev_type == "unit_vec":
        deviation = mean / torch.linalg.vector_norm(mean)
    elif dev_type == "std":
        deviation = benign.std(dim=0)  # torch's default: the sample deviation
    else:
        deviation = torch.sign(mean)
    pairwise = torch.stack([torch.linalg.vector_norm(benign - row, dim=1) ** 2 for row in benign])
    # Min-Max: no farther from any benign update than the two farthest benign ones are apart.
    # Min-Sum: summed distance no more than the smallest summed distance of a benign update.
    bound = pairwise.max() if oracle == "min-max" else pairwise.sum(dim=1).min()

    def succeeds(gamma: float) -> bool:
        distance = torch.linalg.vector_norm(benign - (mean - gamma * deviation), dim=1) ** 2
        value = distance.max() if oracle == "min-max" else distance.sum()
        return bool(value <= bound)

    gamma, step, gamma_succ = SHEJWALKAR_GAMMA_INIT, SHEJWALKAR_GAMMA_INIT, 0.0
    while abs(gamma_succ - gamma) > SHEJWALKAR_TAU:
        if succeeds(gamma):
            gamma_succ, gamma = gamma, gamma + step / 2
        else:
            gamma = gamma - step / 2
        step /= 2
    return (mean - gamma_succ * deviation).numpy()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_min_max_and_min_sum_are_the_papers_algorithm_1(seed: int, kind: str) -> None:
    attacks = byzfl_module("attacks")
    # byzfl 0.0.11 has no Min-Max or Min-Sum; a later one that adds them should be compared here.
    assert not {"MinMax", "MinSum", "Min_Max", "Min_Sum"} & set(dir(attacks))
    # A spread large enough against the mean that the search stops inside (0, 2·γ_init).
    h = rows(seed, d=40)
    mean = h.mean(axis=0)
    for name, ours in (("min-max", min_max(h, kind)), ("min-sum", min_sum(h, kind))):
        reference = paper_algorithm_1(h, kind, name)
        np.testing.assert_allclose(ours, reference, **ROUNDING)
        # The search found a real γ: the update moved, along the perturbation, and passes the oracle.
        push = perturbation(h, kind)
        gamma = float((ours - mean) @ push / (push @ push))
        assert 0 < gamma < 2 * SHEJWALKAR_GAMMA_INIT
        np.testing.assert_allclose(ours, mean + gamma * push, rtol=1e-9, atol=1e-12)
        distances = ((h - ours) ** 2).sum(axis=1)
        pairwise = np.array([((h - r) ** 2).sum(axis=1) for r in h])
        if name == "min-max":
            assert distances.max() <= pairwise.max()
            # ... and a γ a little larger (τ = 1e-5 of resolution, so 1e-3 is well past it) fails.
            assert (((h - (mean + (gamma + 1e-3) * push)) ** 2).sum(axis=1)).max() > pairwise.max()
        else:
            assert distances.sum() <= pairwise.sum(axis=1).min()
            assert (((h - (mean + (gamma + 1e-3) * push)) ** 2).sum()) > pairwise.sum(axis=1).min()


# ─────────────── robust rules ───────────────


def attacked(seed: int) -> np.ndarray:
    """The 14 honest rows of ``seed`` and 6 colluders' copies of one forged vector (ALIE's, at
    the reference z): what the comparison's rules aggregate at e = 0.3."""
    h = rows(seed)
    return np.vstack([h, np.repeat(alie(h, ALIE_REFERENCE_Z, ddof=1)[None], COLLUDERS, axis=0)])


@pytest.mark.parametrize("seed", SEEDS)
def test_the_mean_median_and_trimmed_mean_are_byzfls(seed: int) -> None:
    aggregators = byzfl_module("aggregators")
    for updates in (rows(seed, k=N), attacked(seed)):
        np.testing.assert_array_equal(fedavg(updates), aggregators.Average()(updates))
        np.testing.assert_array_equal(median(updates), aggregators.Median()(updates))  # both numpy's
        # The trimmed mean's β = 0.3 of 20 cuts ⌊0.3·20⌋ = 6 at each end: byzfl's TrMean(f = 6).
        cut = int(ASSUMED_ATTACK_FRACTION * len(updates))
        np.testing.assert_allclose(
            trimmed_mean(updates, ASSUMED_ATTACK_FRACTION), aggregators.TrMean(f=cut)(updates), **ROUNDING
        )


@pytest.mark.parametrize("seed", SEEDS)
def test_krum_and_multikrum_are_byzfls_counting_one_neighbour_fewer(seed: int) -> None:
    aggregators = byzfl_module("aggregators")
    for updates in (rows(seed, k=N), attacked(seed)):
        n = len(updates)
        # Krum: the one update with the best score over its n − f − 2 nearest (ours, Blanchard's);
        # byzfl's Krum(f) scores over n − f − 1, so byzfl with f + 1 is the same rule.
        krum, (chosen,) = multikrum(updates, F, keep=1)
        np.testing.assert_array_equal(krum, aggregators.Krum(f=F + 1)(updates))
        np.testing.assert_array_equal(krum, updates[chosen])
        # Multi-Krum: the mean of the best-scored; byzfl's MultiKrum(f) keeps n − f, so with f + 1
        # it keeps one fewer than ours with f: compare at that size.
        np.testing.assert_allclose(
            multikrum(updates, F, keep=n - F - 1)[0], aggregators.MultiKrum(f=F + 1)(updates), **ROUNDING
        )
        # The comparison's own setting (keep n − f = 14 with f = 6): here the extra neighbour byzfl
        # counts does not change which 14 come out best, so the two rules agree outright.
        np.testing.assert_allclose(multikrum(updates, F)[0], aggregators.MultiKrum(f=F)(updates), **ROUNDING)

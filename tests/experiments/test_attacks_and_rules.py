"""The comparison's maths on small vectors (ALIE, IPM, the colluding sign flip, Min-Max, Min-Sum, the
scale search, Multi-Krum, median, trimmed mean, FLTrust), and the omniscient colluders on real
participants of a tiny session. The same attacks and rules against byzfl's:
tests/learning/test_attacks_reference.py."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from seccl.experiments.baselines import (
    _participants,
    fedavg,
    fltrust,
    fltrust_trust,
    median,
    multikrum,
    trimmed_mean,
)
from seccl.learning.attacks import (
    PERTURBATIONS,
    SHEJWALKAR_TAU,
    alie,
    alie_z,
    ipm,
    largest_passing_scale,
    min_max,
    min_sum,
    perturbation,
    sign_flip_mean,
)
from seccl.learning.model import build_model, get_flat_params
from seccl.learning.sparse import apply_update, delta, select_top_fraction
from seccl.roles.adversaries.base import dense_update
from seccl.roles.adversaries.coalition import (
    AdaptiveBackdoorParticipant,
    ALIEParticipant,
    IPMParticipant,
    LargeIPMParticipant,
    MeanSignFlipParticipant,
    MinMaxParticipant,
    MinMaxStdParticipant,
    MinSumParticipant,
    MinSumStdParticipant,
    ObservedParticipant,
    OmniscientColluder,
    ReferenceALIEParticipant,
)
from seccl.roles.adversaries.registry import SIMULATION_ATTACKS, attack_class, choose_adversaries
from seccl.runs.config import config_from
from seccl.runs.launch import participant_data

HONEST = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, 0.5], [2.0, -1.0, 2.0]])


def test_alie_is_the_mean_minus_z_standard_deviations_with_the_papers_z() -> None:
    mean = np.array([2.0, -1.0, 1.0])
    std = np.sqrt(((HONEST - mean) ** 2).mean(axis=0))  # population std: [0.816, 0.816, 0.707]

    np.testing.assert_allclose(alie(HONEST, 0.5), mean - 0.5 * std)
    # Baruch et al.: s = ⌊n/2 + 1⌋ − m, z = Φ⁻¹((n − s)/n); N = 20 with 2, 4, 6 colluders.
    assert [round(alie_z(20, m), 4) for m in (2, 4, 6)] == [0.1257, 0.3853, 0.6745]
    with pytest.raises(ValueError):
        alie_z(20, 0)


def test_ipm_is_minus_epsilon_times_the_honest_mean() -> None:
    np.testing.assert_allclose(ipm(HONEST, 0.1), [-0.2, 0.1, -0.1])
    np.testing.assert_allclose(ipm(HONEST, 2.0), [-4.0, 2.0, -2.0])


def test_alie_with_the_sample_deviation_and_the_colluding_sign_flip() -> None:
    mean = np.array([2.0, -1.0, 1.0])
    sample = np.sqrt(((HONEST - mean) ** 2).sum(axis=0) / 2)  # k − 1 = 2: [1.0, 1.0, 0.866]

    np.testing.assert_allclose(alie(HONEST, 1.5, ddof=1), mean - 1.5 * sample)
    np.testing.assert_array_equal(alie(HONEST, 0.5), alie(HONEST, 0.5, ddof=0))  # the default: population σ
    np.testing.assert_allclose(sign_flip_mean(HONEST), [-2.0, 1.0, -1.0])  # −μ, every colluder the same
    with pytest.raises(ValueError):
        alie(HONEST[:1], 1.5, ddof=1)  # one row has no sample deviation


def test_the_perturbation_vectors_point_against_the_honest_mean() -> None:
    mean = HONEST.mean(axis=0)

    np.testing.assert_allclose(perturbation(HONEST, "unit-vector"), -mean / np.linalg.norm(mean))
    np.testing.assert_allclose(perturbation(HONEST, "std"), -HONEST.std(axis=0, ddof=1))
    np.testing.assert_allclose(perturbation(HONEST, "sign"), [-1.0, 1.0, -1.0])
    balanced = np.array([[1.0, -1.0], [-1.0, 1.0]])  # a zero mean: no direction to invert
    assert not perturbation(balanced, "unit-vector").any()
    np.testing.assert_array_equal(min_max(balanced), [0.0, 0.0])
    with pytest.raises(ValueError):
        perturbation(HONEST, "gradient")
    with pytest.raises(ValueError):
        min_sum(HONEST, gamma_init=0.0)


def test_min_max_and_min_sum_find_the_largest_gamma_their_oracle_passes() -> None:
    rng = np.random.default_rng(5)
    h = 0.3 + rng.standard_normal((6, 8))
    mean = h.mean(axis=0)
    a = mean - h  # ∇b − ∇_i, which sum to zero
    pairwise = np.array([((h - row) ** 2).sum(axis=1) for row in h])
    for kind in PERTURBATIONS:
        p = perturbation(h, kind)
        pp = float(p @ p)
        # Min-Max: ‖a_i + γp‖² ≤ max pairwise distance², a quadratic in γ for each i; the largest
        # γ passing all of them is the smallest of their positive roots.
        bound = pairwise.max()
        roots = [(-(ai @ p) + math.sqrt((ai @ p) ** 2 - pp * (ai @ ai - bound))) / pp for ai in a]
        found = float((min_max(h, kind) - mean) @ p) / pp
        assert min(roots) - 2 * SHEJWALKAR_TAU <= found <= min(roots) + 1e-12 < 20
        # Min-Sum: Σ_i ‖a_i + γp‖² = Σ‖a_i‖² + k·γ²‖p‖² (the cross term vanishes) ≤ min_i Σ_j.
        best = math.sqrt((pairwise.sum(axis=1).min() - (a * a).sum()) / (len(h) * pp))
        found = float((min_sum(h, kind) - mean) @ p) / pp
        assert best - 2 * SHEJWALKAR_TAU <= found <= best + 1e-12 < 20


def test_the_scale_search_finds_the_largest_passing_scale() -> None:
    tried: list[float] = []

    def below(limit: float) -> Callable[[float], bool]:
        def passes(s: float) -> bool:
            tried.append(s)
            return s <= limit

        return passes

    found = largest_passing_scale(below(3.3), low=1.0, high=10.0, steps=12)
    assert 3.3 - 9 / 2**12 <= found <= 3.3 and tried[0] == 10.0 and len(tried) == 13
    assert largest_passing_scale(below(50.0), high=10.0) == 10.0  # the largest boost passes at once
    assert largest_passing_scale(below(0.5), high=10.0) == 1.0  # nothing passes: the unboosted update


def test_fltrust_trusts_nothing_opposite_and_rescales_to_the_servers_norm() -> None:
    g0 = np.array([1.0, 1.0, 0.0])
    rows = np.array([[-2.0, -2.0, 0.0], [3.0, 3.0, 0.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])

    trust = fltrust_trust(rows, g0)

    np.testing.assert_allclose(trust, [0.0, 1.0, 0.0, np.sqrt(0.5)])  # opposite and orthogonal: 0
    step, _ = fltrust(rows, g0)
    # Each trusted update rescaled to ‖g0‖ = √2: [1, 1, 0] and [√2, 0, 0], weighted 1 and √½.
    expected = (1.0 * np.array([1.0, 1.0, 0.0]) + np.sqrt(0.5) * np.array([np.sqrt(2), 0, 0])) / (
        1 + np.sqrt(0.5)
    )
    np.testing.assert_allclose(step, expected)
    assert not fltrust(-rows[1:2], g0)[0].any()  # nobody trusted: no step


def test_multikrum_median_and_trimmed_mean_drop_an_outlier_fedavg_does_not() -> None:
    rng = np.random.default_rng(0)
    rows = np.vstack([1.0 + 0.01 * rng.standard_normal((5, 4)), np.full((1, 4), 100.0)])

    step, kept = multikrum(rows, f=1)

    assert kept == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(step, rows[:5].mean(axis=0))
    assert np.abs(median(rows) - 1.0).max() < 0.05
    assert np.abs(trimmed_mean(rows, 0.2) - 1.0).max() < 0.05  # ⌊0.2·6⌋ = 1 cut at each end
    assert fedavg(rows).min() > 15  # the mean follows the outlier


def test_omniscient_colluders_forge_from_the_honest_updates_of_the_round() -> None:
    base = {"participants": 4, "rounds": 1, "local_epochs": 1, "per_participant": 60, "attack_fraction": 0.25}
    for attack, cls in (
        ("alie+collude-votes", ALIEParticipant),
        ("ipm", IPMParticipant),
        ("adaptive-backdoor", AdaptiveBackdoorParticipant),
    ):
        config = config_from({**base, "attack": attack})
        parts, test = participant_data(config)
        adversaries = choose_adversaries(4, 0.25, 0)
        people = _participants(config, parts, test, adversaries)
        (bad,) = [p for p in people if p.index in adversaries]
        assert isinstance(bad, cls) and all(
            isinstance(p, ObservedParticipant) for p in people if p is not bad
        )
        params = get_flat_params(build_model(0))  # θ_0 of seed 0
        locals_ = {p.index: p.local_model(params, 1) for p in people}
        honest = np.stack([delta(locals_[p.index], params) for p in people if p is not bad]).astype(
            np.float64
        )

        sent = dense_update(bad, params, locals_[bad.index], 1)
        sparse = bad.make_update(params, locals_[bad.index], 1)

        if cls is ALIEParticipant:
            assert bad.z == alie_z(4, 1)
            np.testing.assert_allclose(sent, alie(honest, bad.z).astype(np.float32))
        elif cls is IPMParticipant:
            np.testing.assert_allclose(sent, ipm(honest, 0.1).astype(np.float32))
        if cls is not AdaptiveBackdoorParticipant:
            assert sparse == select_top_fraction(sent, config.share_fraction)  # its top-s: the same vector
            assert bad.trainings == 0  # it trained nothing of its own
        else:
            assert isinstance(bad, AdaptiveBackdoorParticipant)
            assert bad.last_scale is not None and 0.05 <= bad.last_scale <= 10.0
            assert bad.last_target is not None
            scored = bad.evaluator.macro_f1(apply_update(params, sparse))
            # Scaled only as far as it still scores in the elected range; or, hiding nowhere, λ = 1.
            assert scored >= bad.last_target or bad.last_scale == 1.0
            own = delta(locals_[bad.index], params)
            np.testing.assert_allclose(
                sparse.values, bad.last_scale * select_top_fraction(own, 0.1).values, rtol=1e-6
            )


STRONGER: dict[str, tuple[type[OmniscientColluder], Callable[[np.ndarray], np.ndarray]]] = {
    "alie-z1.5": (ReferenceALIEParticipant, lambda h: alie(h, 1.5, ddof=1)),
    "ipm-large": (LargeIPMParticipant, lambda h: ipm(h, 2.0)),
    "sign-flip-mean+collude-votes": (MeanSignFlipParticipant, sign_flip_mean),
    "min-max": (MinMaxParticipant, lambda h: min_max(h, "unit-vector")),
    "min-sum": (MinSumParticipant, lambda h: min_sum(h, "unit-vector")),
    "min-max-std+collude-votes": (MinMaxStdParticipant, lambda h: min_max(h, "std")),
    "min-sum-std": (MinSumStdParticipant, lambda h: min_sum(h, "std")),
}


def test_the_stronger_attacks_are_registered_beside_the_unchanged_ones() -> None:
    assert {n.split("+")[0] for n in STRONGER} <= set(SIMULATION_ATTACKS)
    # The comparison's attacks keep their classes (its records were made with them; their defaults are
    # checked above).
    assert SIMULATION_ATTACKS["alie"] is ALIEParticipant and SIMULATION_ATTACKS["ipm"] is IPMParticipant
    assert attack_class("sign-flip").__name__ == "SignFlippingParticipant"


@pytest.mark.parametrize("attack", list(STRONGER))
def test_the_stronger_colluders_forge_from_the_honest_updates_of_the_round(attack: str) -> None:
    cls, forged = STRONGER[attack]
    base = {"participants": 4, "rounds": 1, "local_epochs": 1, "per_participant": 60, "attack_fraction": 0.25}
    config = config_from({**base, "attack": attack})
    parts, test = participant_data(config)
    adversaries = choose_adversaries(4, 0.25, 0)
    people = _participants(config, parts, test, adversaries)
    (bad,) = [p for p in people if p.index in adversaries]
    assert isinstance(bad, cls) and all(isinstance(p, ObservedParticipant) for p in people if p is not bad)
    params = get_flat_params(build_model(0))
    locals_ = {p.index: p.local_model(params, 1) for p in people}
    honest = np.stack([delta(locals_[p.index], params) for p in people if p is not bad]).astype(np.float64)

    sent = dense_update(bad, params, locals_[bad.index], 1)
    sparse = bad.make_update(params, locals_[bad.index], 1)

    np.testing.assert_array_equal(sent, forged(honest).astype(np.float32))  # the whole vector, to a rule
    assert sparse == select_top_fraction(sent, config.share_fraction)  # its top-s, to SecCL and DSSGD
    assert bad.trainings == 0  # it trained nothing of its own
    assert np.abs(sent - honest.mean(axis=0)).max() > 0  # and moved away from the honest mean

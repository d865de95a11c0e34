"""Omniscient colluders (ALIE, IPM, the colluding sign flip, Min-Max, Min-Sum, the adaptive
backdoor): they forge from the round's honest updates."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import numpy as np

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
    largest_passing_scale,
    min_max,
    min_sum,
    sign_flip_mean,
)
from seccl.learning.sparse import SparseUpdate, apply_update, delta, select_top_fraction
from seccl.roles.adversaries.base import Adversary
from seccl.roles.adversaries.poisoning import BackdoorParticipant
from seccl.roles.participant import Participant

__all__ = [
    "ALIEParticipant",
    "AdaptiveBackdoorParticipant",
    "Coalition",
    "IPMParticipant",
    "LargeIPMParticipant",
    "MeanSignFlipParticipant",
    "MinMaxParticipant",
    "MinMaxStdParticipant",
    "MinSumParticipant",
    "MinSumStdParticipant",
    "ObservedParticipant",
    "OmniscientColluder",
    "ReferenceALIEParticipant",
]


class Coalition:
    """What omniscient colluders know: every honest participant's local model of the round.

    ALIE, IPM, the colluding sign flip, Min-Max and Min-Sum (:mod:`seccl.learning.attacks`) forge
    their update from the honest updates of the same round, and the papers grant the attacker
    that knowledge. SecCL does not: every update is posted in one phase (the board records each
    digest before anyone scores), so a colluder would have to guess, or to post last after
    reading the others off the server.
    The simulation grants it anyway, the strongest case for the attacker: every participant of
    the run is a member (:func:`attack_factory` enrols them), honest ones record the local
    model they train (:class:`ObservedParticipant`), and a colluder reads them before it
    signs. The in-process transport computes every participant's local model of a request
    before any of them builds its update, so the records are there in time. A record that is
    missing (training ran in a worker process, whose copy of the coalition is not this one) is
    recomputed here from the honest participant's own data and seed: the same bits, later.
    """

    def __init__(self, adversaries: Collection[int]):
        self.adversaries = frozenset(int(a) for a in adversaries)
        self.members: dict[int, Participant] = {}
        self._trained: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}  # index: round, θ, local
        self._clean: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}  # the same, on clean data

    def join(self, participant: Participant) -> None:
        self.members[participant.index] = participant

    def record(self, index: int, round_: int, params: np.ndarray, local: np.ndarray) -> None:
        self._trained[index] = (round_, np.array(params, copy=True), np.array(local, copy=True))

    @property
    def honest(self) -> list[int]:
        return sorted(set(self.members) - self.adversaries)

    def local_model(self, index: int, params: np.ndarray, round_: int) -> np.ndarray:
        """Honest participant ``index``'s local model of ``round_`` from ``params``."""
        kept = self._trained.get(index)
        if kept is not None and kept[0] == round_ and np.array_equal(kept[1], params):
            return kept[2]
        local = self.members[index].local_model(params, round_)
        self.record(index, round_, params, local)
        return local

    def clean_model(self, index: int, params: np.ndarray, round_: int) -> np.ndarray:
        """Member ``index``'s local model of ``round_`` trained honestly on its own clean data (for
        a colluder: what it would send if it followed the protocol), computed once per round."""
        kept = self._clean.get(index)
        if kept is not None and kept[0] == round_ and np.array_equal(kept[1], params):
            return kept[2]
        local = Participant.local_model(self.members[index], params, round_)
        self._clean[index] = (round_, np.array(params, copy=True), np.array(local, copy=True))
        return local

    def honest_deltas(self, params: np.ndarray, round_: int) -> np.ndarray:
        """The honest participants' whole Δ of the round, one row each (float64 ``[k, d]``)."""
        rows = [delta(self.local_model(i, params, round_), params) for i in self.honest]
        if not rows:
            raise ValueError("a coalition with no honest participant has nobody to learn from")
        return np.stack(rows).astype(np.float64)

    def honest_updates(self, params: np.ndarray, round_: int) -> list[SparseUpdate]:
        """The sparse updates the honest participants upload in the round (their own top-``s``)."""
        return [
            self.members[i].make_update(params, self.local_model(i, params, round_), round_)
            for i in self.honest
        ]


class ObservedParticipant(Participant):
    """An honest participant whose every local model the :class:`Coalition` sees: it behaves
    exactly as :class:`Participant` (the same training, update and scores, bit for bit)."""

    def __init__(self, *args: Any, coalition: Coalition, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.coalition = coalition

    def local_model(self, params: np.ndarray, round_: int) -> np.ndarray:
        local = super().local_model(params, round_)
        self.coalition.record(self.index, round_, params, local)
        return local


class OmniscientColluder(Adversary):
    """A colluder that forges its update from the honest updates of the round, read off the
    :class:`Coalition`: every colluder sends the same vector, :meth:`forge` of the honest Δs.
    A rule that takes whole updates gets the vector itself (:meth:`dense_update`); SecCL and
    DSSGD get its top-``s`` coordinates, the structure every update must have."""

    def __init__(self, *args: Any, coalition: Coalition | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if coalition is None:
            raise ValueError(f"{type(self).__name__} needs the coalition's knowledge (coalition=…)")
        self.coalition = coalition

    def forge(self, honest: np.ndarray) -> np.ndarray:
        """The vector to send, from the honest Δs (rows)."""
        raise NotImplementedError

    def local_model(self, params: np.ndarray, round_: int) -> np.ndarray:
        # A forged vector needs no Δ of its own: skip the training (the adaptive backdoor trains).
        if self.attacking(round_):
            return params.copy()
        return super().local_model(params, round_)

    def make_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> SparseUpdate:
        if not self.attacking(round_):
            return super().make_update(params, local, round_)
        forged = self.forge(self.coalition.honest_deltas(params, round_)).astype(np.float32)
        return select_top_fraction(forged, self.settings.share_fraction)

    def dense_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> np.ndarray:
        if not self.attacking(round_):
            return super().dense_update(params, local, round_)
        return self.forge(self.coalition.honest_deltas(params, round_)).astype(np.float32)


class ALIEParticipant(OmniscientColluder):
    """ALIE, "a little is enough" (Baruch et al., NeurIPS 2019): sends ``μ − z·σ`` of the honest Δs,
    coordinate-wise, with ``z`` from the paper's formula for ``n`` participants and the
    coalition's size (:func:`seccl.learning.attacks.alie_z`) unless ``z`` is given, and ``σ`` the
    population deviation (``ddof`` 0) unless ``ddof`` is given."""

    def __init__(self, *args: Any, z: float | None = None, ddof: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.z = alie_z(self.session.n, len(self.coalition.adversaries)) if z is None else z
        self.ddof = ddof

    def forge(self, honest: np.ndarray) -> np.ndarray:
        return alie(honest, self.z, ddof=self.ddof)


class ReferenceALIEParticipant(ALIEParticipant):
    """ALIE as its reference implementations run it (Baruch et al., NeurIPS 2019): ``μ − z·σ`` of
    the honest Δs with the fixed ``z = 1.5`` (:data:`~seccl.learning.attacks.ALIE_REFERENCE_Z`,
    the default of the authors' code and of byzfl) and their sample deviation (``ddof = 1``), not
    the paper's formula's z (0.126-0.674 for N = 20): a shift 2-12 times as large."""

    def __init__(self, *args: Any, z: float | None = ALIE_REFERENCE_Z, ddof: int = 1, **kwargs: Any):
        super().__init__(*args, z=z, ddof=ddof, **kwargs)


class IPMParticipant(OmniscientColluder):
    """Inner-product manipulation (Xie et al., UAI 2019): sends ``−ε·μ`` of the honest Δs
    (``epsilon`` 0.1 by default, the paper's value against Krum)."""

    def __init__(self, *args: Any, epsilon: float = IPM_EPSILON, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.epsilon = epsilon

    def forge(self, honest: np.ndarray) -> np.ndarray:
        return ipm(honest, self.epsilon)


class LargeIPMParticipant(IPMParticipant):
    """Inner-product manipulation with a large ε (Xie et al., UAI 2019): sends ``−ε·μ`` of the
    honest Δs with ``ε = 2`` (:data:`~seccl.learning.attacks.IPM_LARGE_EPSILON`, byzfl's default):
    against the plain mean it cuts the honest step to ``(n − 3q)/n`` of it for ``q`` colluders and
    reverses it beyond a third, where ε = 0.1 only trims it."""

    def __init__(self, *args: Any, epsilon: float = IPM_LARGE_EPSILON, **kwargs: Any):
        super().__init__(*args, epsilon=epsilon, **kwargs)


class MeanSignFlipParticipant(OmniscientColluder):
    """The colluding sign flip (byzfl's ``SignFlipping``, after Allen-Zhu et al., ICLR 2021): every
    colluder sends ``−μ``, the honest Δs' mean reversed
    (:func:`~seccl.learning.attacks.sign_flip_mean`). The plain ``sign-flip`` sends each attacker's
    own ``−Δ`` instead, one vector each, from its own training; this one trains nothing."""

    def forge(self, honest: np.ndarray) -> np.ndarray:
        return sign_flip_mean(honest)


class _ShejwalkarColluder(OmniscientColluder):
    """Shejwalkar & Houmansadr's aggregation-agnostic attacks (NDSS 2021): ``μ + γ·∇p`` with the
    perturbation ``∇p`` of ``perturbation`` (one of
    :data:`~seccl.learning.attacks.PERTURBATIONS`) and the largest γ their oracle passes, searched
    from ``gamma_init`` down to steps of ``tau`` (their code's 10 and 1e-5)."""

    DEFAULT_PERTURBATION = "unit-vector"  # their code's default dev_type, "unit_vec"

    def __init__(
        self,
        *args: Any,
        perturbation: str | None = None,
        gamma_init: float = SHEJWALKAR_GAMMA_INIT,
        tau: float = SHEJWALKAR_TAU,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        chosen = self.DEFAULT_PERTURBATION if perturbation is None else perturbation
        if chosen not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {chosen!r}; known: {', '.join(PERTURBATIONS)}")
        self.perturbation = chosen
        self.gamma_init = gamma_init
        self.tau = tau


class MinMaxParticipant(_ShejwalkarColluder):
    """Min-Max (Shejwalkar & Houmansadr, NDSS 2021; :func:`~seccl.learning.attacks.min_max`): sends
    ``μ + γ·∇p`` with the largest γ that keeps it no farther from any honest Δ than the two
    farthest honest Δs are from each other; ∇p the inverse unit vector ``−μ/‖μ‖`` by default."""

    def forge(self, honest: np.ndarray) -> np.ndarray:
        return min_max(honest, self.perturbation, gamma_init=self.gamma_init, tau=self.tau)


class MinSumParticipant(_ShejwalkarColluder):
    """Min-Sum (Shejwalkar & Houmansadr, NDSS 2021; :func:`~seccl.learning.attacks.min_sum`): sends
    ``μ + γ·∇p`` with the largest γ that keeps its summed squared distance to the honest Δs no
    more than the most central honest Δ's; ∇p the inverse unit vector ``−μ/‖μ‖`` by default."""

    def forge(self, honest: np.ndarray) -> np.ndarray:
        return min_sum(honest, self.perturbation, gamma_init=self.gamma_init, tau=self.tau)


class MinMaxStdParticipant(MinMaxParticipant):
    """Min-Max with the inverse standard deviation ``∇p = −σ`` (ddof = 1, as their code's
    ``torch.std``): it pushes every coordinate by its own spread, as ALIE does."""

    DEFAULT_PERTURBATION = "std"


class MinSumStdParticipant(MinSumParticipant):
    """Min-Sum with the inverse standard deviation ``∇p = −σ`` (ddof = 1, as their code's
    ``torch.std``)."""

    DEFAULT_PERTURBATION = "std"


class AdaptiveBackdoorParticipant(BackdoorParticipant):
    """An adaptive attack on SecCL's election: a backdoored update boosted as far as it can go
    while its macro-F1 on the attacker's own clean validation set stays in the elected range.

    It trains on its half-poisoned data (:class:`BackdoorParticipant`), then scales its Δ by the
    largest ``λ`` in ``[min_scale, max_scale]`` (bisection,
    :func:`~seccl.learning.attacks.largest_passing_scale`) for which ``F1(θ + λ·Δ)`` on its
    validation set is at least the ``M``-th best score of the honest updates on the same set:
    what an update needs to make the top ``M`` of a voter who sees what it sees. Above 1 it boosts
    the backdoor (Bagdasaryan et al.'s "constrain and scale": what lets a backdoor survive being
    averaged); below 1 it scales it down until it hides among the honest updates (a half-poisoned
    update scores far below them; a small step from a good global model scores almost as the
    model does). The honest updates come from the :class:`Coalition` (omniscient, as ALIE's).
    When even ``min_scale`` scores below the target it sends ``λ = 1``: the plain backdoor.
    Combine it with ``collude-votes`` for colluders that also rank each other first.
    """

    def __init__(
        self,
        *args: Any,
        coalition: Coalition | None = None,
        min_scale: float = 0.05,
        max_scale: float = 10.0,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        if coalition is None:
            raise ValueError("AdaptiveBackdoorParticipant needs the coalition's knowledge (coalition=…)")
        if not 0 < min_scale <= 1 <= max_scale:
            raise ValueError(f"need 0 < min_scale <= 1 <= max_scale, got {min_scale} and {max_scale}")
        self.coalition = coalition
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.last_scale: float | None = None  # the λ it sent last
        self.last_target: float | None = None  # and the score it had to keep

    def _scale(self, score: Callable[[float], float], honest_scores: list[float]) -> float:
        ranked = sorted(honest_scores, reverse=True)
        target = ranked[min(self.session.candidates, len(ranked)) - 1]
        self.last_target = target

        def passes(s: float) -> bool:
            return score(s) >= target

        if not passes(self.min_scale):  # it cannot hide at any scale: the plain backdoor
            self.last_scale = 1.0
        else:
            self.last_scale = largest_passing_scale(passes, low=self.min_scale, high=self.max_scale, steps=10)
        return self.last_scale

    def make_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> SparseUpdate:
        update = super().make_update(params, local, round_)
        if not self.attacking(round_):
            return update
        honest = [
            self.evaluator.macro_f1(apply_update(params, u))
            for u in self.coalition.honest_updates(params, round_)
        ]

        def scaled(s: float) -> SparseUpdate:
            return SparseUpdate(update.dimension, update.indices, (s * update.values.astype(np.float64)))

        scale = self._scale(lambda s: self.evaluator.macro_f1(apply_update(params, scaled(s))), honest)
        return scaled(scale)

    def dense_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> np.ndarray:
        full = super().dense_update(params, local, round_)
        if not self.attacking(round_):
            return full
        base = params.astype(np.float64)

        def score(step: np.ndarray) -> float:
            return self.evaluator.macro_f1((base + step).astype(np.float32))

        honest = [score(h) for h in self.coalition.honest_deltas(params, round_)]
        scale = self._scale(lambda s: score(s * full.astype(np.float64)), honest)
        return (scale * full.astype(np.float64)).astype(np.float32)

"""Malicious participants: each breaks the learning rules in one of the ways docs/ARCHITECTURE.md lists.

They follow the message protocol like everyone else (they sign, post and check the chain
exactly as an honest :class:`Participant` does); only what they train on, what they upload
or how they score differs. SecCL cannot stop them, it throttles them: honest voters score
their updates low and the consensus contract keeps them out of the candidates.

Every class takes ``start_round`` (default 1): before that round it behaves honestly (the
paper's Figure 5 adversaries turn malicious at round 5). Attack options are keyword
arguments after Participant's own; the classes cooperate through ``super()``, so a
combination such as ``class C(CollusionVoter, LabelFlippingParticipant)`` works, and
:func:`attack_class` builds one from a name like ``"label-flip+collude-votes"``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np

from seccl.learning.attacks import IPM_EPSILON, alie, alie_z, ipm, largest_passing_scale
from seccl.learning.backdoor import poison_dataset
from seccl.learning.data import Dataset
from seccl.learning.sparse import SparseUpdate, apply_update, delta, select_top_fraction
from seccl.learning.training import train_local
from seccl.roles.participant import Participant

__all__ = [
    "PARTICIPANT_ATTACKS",
    "SIMULATION_ATTACKS",
    "ALIEParticipant",
    "AdaptiveBackdoorParticipant",
    "Adversary",
    "BackdoorParticipant",
    "Coalition",
    "CollusionVoter",
    "FreeRider",
    "IPMParticipant",
    "LabelFlippingParticipant",
    "LowQualityParticipant",
    "NoiseParticipant",
    "ObservedParticipant",
    "OmniscientColluder",
    "ParticipantFactory",
    "ScalingParticipant",
    "SignFlippingParticipant",
    "adversary_count",
    "attack_class",
    "attack_factory",
    "choose_adversaries",
    "dense_update",
]

ParticipantFactory = Callable[..., Participant]  # the same alias as seccl.runtime.simulation's


# ─────────────── the common base ───────────────


class Adversary(Participant):
    """A participant that behaves honestly before ``start_round`` and attacks from it on."""

    def __init__(self, *args: Any, start_round: int = 1, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if start_round < 1:
            raise ValueError(f"start_round must be at least 1, got {start_round}")
        self.start_round = start_round
        self.trainings = 0  # calls of local training (a free rider keeps this at 0)

    def attacking(self, round_: int) -> bool:
        return round_ >= self.start_round

    def training_data(self, round_: int) -> Dataset:
        """The data :meth:`local_model` trains on in ``round_`` (poisoners override it)."""
        return self.data.train

    def local_model(self, params: np.ndarray, round_: int) -> np.ndarray:
        self.trainings += 1
        data = self.training_data(round_)
        if data is self.data.train:
            return super().local_model(params, round_)  # exactly the honest training
        return train_local(
            params,
            data,
            epochs=self.settings.local_epochs,
            lr=self.settings.learning_rate,
            batch_size=self.settings.batch_size,
            seed=self._seed_for(round_),
            model=self._model,
        )

    def dense_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> np.ndarray:
        """What it sends to a rule that takes whole updates (FedAvg, Krum, median…; see
        ``seccl.experiments.baselines``) instead of :meth:`make_update`'s top-``s``: its whole Δ.
        Attacks that forge their values override it, so that one behaviour serves both."""
        return delta(local, params)

    def _rng(self, round_: int, tag: int) -> np.random.Generator:
        """A generator private to this participant, round and purpose."""
        return np.random.default_rng([self.seed, self.index, round_, tag])

    def _random_support(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """``k`` distinct random coordinates, sorted, as a sparse update's indices."""
        return np.sort(rng.choice(self.session.dimension, size=k, replace=False)).astype(np.uint32)

    @property
    def share_count(self) -> int:
        """How many coordinates every update carries: the session's agreed ⌈s·d⌉. A forged update
        keeps exactly that many, or the server refuses it at decoding before anyone scores it."""
        return self.session.update_size


# ─────────────── poisoned training data ───────────────


class _DataPoisoner(Adversary):
    """Trains honestly, but on a corrupted copy of its train set from ``start_round`` on."""

    poisoned: Dataset

    def training_data(self, round_: int) -> Dataset:
        return self.poisoned if self.attacking(round_) else self.data.train


class LowQualityParticipant(_DataPoisoner):
    """Passive: follows the protocol but holds poor data. Keeps a seeded ``keep`` of its train
    samples (all by default) and replaces a seeded ``label_noise`` fraction of their labels by
    uniformly random ones (which may by chance equal the true label)."""

    def __init__(self, *args: Any, label_noise: float = 0.8, keep: int | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not 0.0 <= label_noise <= 1.0:
            raise ValueError(f"label_noise must be in [0, 1], got {label_noise}")
        train = self.data.train
        if keep is not None and not 1 <= keep <= len(train):
            raise ValueError(f"keep must be in [1, {len(train)}], got {keep}")
        rng = np.random.default_rng([self.seed, self.index, 0x10])
        order = rng.permutation(len(train))
        kept = train.subset(np.sort(order[:keep]) if keep is not None else order)
        labels = kept.labels.copy()
        noisy = rng.choice(len(labels), size=round(label_noise * len(labels)), replace=False)
        labels[noisy] = rng.integers(0, train.num_classes, size=len(noisy))
        self.label_noise = label_noise
        self.noisy_indices = np.sort(noisy)
        self.poisoned = Dataset(kept.images, labels, train.num_classes)


class LabelFlippingParticipant(_DataPoisoner):
    """Fake labels (the paper's Figure 5 attack): trains on labels mapped ``y -> mapping[y]``,
    by default ``y -> num_classes − 1 − y`` (9 − y on MNIST)."""

    def __init__(self, *args: Any, mapping: Sequence[int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        train = self.data.train
        k = train.num_classes
        table = np.arange(k - 1, -1, -1) if mapping is None else np.asarray(mapping, dtype=np.int64)
        if table.shape != (k,) or table.min() < 0 or table.max() >= k:
            raise ValueError(f"mapping must give a label in [0, {k}) for each of the {k} classes")
        self.mapping = table.astype(np.int64)
        self.poisoned = Dataset(train.images, self.mapping[train.labels], k)


class BackdoorParticipant(_DataPoisoner):
    """Stamps the trigger of :mod:`seccl.learning.backdoor` on a seeded ``poison_fraction`` of
    its train images and relabels them ``target_label``; the other samples stay clean, so the
    update still looks useful on clean validation data."""

    def __init__(self, *args: Any, poison_fraction: float = 0.5, target_label: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.target_label = target_label
        self.poisoned, self.poisoned_indices = poison_dataset(
            self.data.train,
            fraction=poison_fraction,
            target_label=target_label,
            seed=self.seed * 1_000_003 + self.index,
        )


# ─────────────── forged updates ───────────────


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


# ─────────────── colluding voters ───────────────


class CollusionVoter(Adversary):
    """Trains honestly, but from ``start_round`` on scores every fellow colluder (the indices
    in ``colluders`` other than its own) 1.0 and everyone else 0.0, so its top-``M`` ballot
    ranks the fellows first (among equals the lower tie key first, the contract's rule).

    Its own entry travels as ABSTAIN like everyone's, and so does any update it could not
    verify (see ``Participant``). Scoring the others 0.0 rather than abstaining is the harsher
    choice: an abstention is neutral in the election, a 0.0 counts as an assessment worth no
    points and so lowers the others' mean."""

    def __init__(self, *args: Any, colluders: Collection[int] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.colluders = frozenset(int(c) for c in colluders)
        bad = [c for c in self.colluders if not 0 <= c < self.session.n]
        if bad:
            raise ValueError(f"colluders {sorted(bad)} are not participant indices")

    @property
    def fellows(self) -> frozenset[int]:
        return self.colluders - {self.index}

    def score_updates(self, round_: int, params: np.ndarray, updates: dict[int, SparseUpdate]) -> list[float]:
        if not self.attacking(round_):
            return super().score_updates(round_, params, updates)
        return [1.0 if j in self.fellows else 0.0 for j in range(self.session.n)]


# ─────────────── omniscient colluders (ALIE, IPM, the adaptive backdoor) ───────────────


class Coalition:
    """What omniscient colluders know: every honest participant's local model of the round.

    ALIE and IPM (:mod:`seccl.learning.attacks`) forge their update from the honest updates of
    the same round, and the papers grant the attacker that knowledge. SecCL does not: every
    update is posted in one phase (the board records each digest before anyone scores), so a
    colluder would have to guess, or to post last after reading the others off the server.
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
        # ALIE and IPM need no Δ of their own: skip the training (the adaptive backdoor trains).
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
    coalition's size (:func:`seccl.learning.attacks.alie_z`) unless ``z`` is given."""

    def __init__(self, *args: Any, z: float | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.z = alie_z(self.session.n, len(self.coalition.adversaries)) if z is None else z

    def forge(self, honest: np.ndarray) -> np.ndarray:
        return alie(honest, self.z)


class IPMParticipant(OmniscientColluder):
    """Inner-product manipulation (Xie et al., UAI 2019): sends ``−ε·μ`` of the honest Δs
    (``epsilon`` 0.1 by default, the paper's value against Krum)."""

    def __init__(self, *args: Any, epsilon: float = IPM_EPSILON, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.epsilon = epsilon

    def forge(self, honest: np.ndarray) -> np.ndarray:
        return ipm(honest, self.epsilon)


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


# ─────────────── registry ───────────────

PARTICIPANT_ATTACKS: dict[str, type[Participant]] = {
    "low-quality": LowQualityParticipant,
    "label-flip": LabelFlippingParticipant,
    "backdoor": BackdoorParticipant,
    "noise": NoiseParticipant,
    "sign-flip": SignFlippingParticipant,
    "scale": ScalingParticipant,
    "free-rider": FreeRider,
    "collude-votes": CollusionVoter,
}

SIMULATION_ATTACKS: dict[str, type[Participant]] = {
    "alie": ALIEParticipant,
    "ipm": IPMParticipant,
    "adaptive-backdoor": AdaptiveBackdoorParticipant,
}
"""Attacks of an omniscient coalition (see :class:`Coalition`): they read the honest participants'
local models in the same process, so they exist in the simulation and the chain-free baselines
only, never in a deployment, where each participant is a process of its own."""


def _known() -> dict[str, type[Participant]]:
    return {**PARTICIPANT_ATTACKS, **SIMULATION_ATTACKS}


def attack_class(name: str) -> type[Participant]:
    """The class of attack ``name``: a key of :data:`PARTICIPANT_ATTACKS`, or several joined
    by ``+`` (e.g. ``"label-flip+collude-votes"``: colluders that also flip labels), combined
    in the order given (the first one's overrides come first in the MRO)."""
    parts = [p.strip() for p in name.split("+")]
    unknown = [p for p in parts if p not in _known()]
    if unknown or len(set(parts)) != len(parts):
        known = ", ".join(_known())
        raise ValueError(f"unknown or repeated participant attack in {name!r}; known: {known}")
    if len(parts) == 1:
        return _known()[parts[0]]
    return _combined(tuple(parts))


@functools.cache
def _combined(parts: tuple[str, ...]) -> type[Participant]:
    """One class per combination, so the same name always gives the same class."""
    bases = tuple(_known()[p] for p in parts)
    title = "".join(b.__name__ for b in bases)
    return type(title, bases, {"__doc__": f"The combined attack {'+'.join(parts)!r}."})


def attack_factory(
    name: str,
    adversaries: Collection[int],
    *,
    start_round: int = 1,
    options: dict[str, Any] | None = None,
) -> ParticipantFactory:
    """A ``participant_factory`` for ``Simulation``: participants whose index is in
    ``adversaries`` run attack ``name`` (see :func:`attack_class`) from ``start_round`` with
    the keyword ``options``; colluding voters get ``colluders=adversaries``. Everyone else is
    an honest :class:`Participant`; when the attack needs the honest updates of the round
    (ALIE, IPM, the adaptive backdoor), everyone joins one :class:`Coalition` and the honest
    participants are honest ObservedParticipant objects (their local models seen)."""
    cls = attack_class(name)
    chosen = frozenset(int(a) for a in adversaries)
    extra: dict[str, Any] = {**(options or {}), "start_round": start_round}
    if issubclass(cls, CollusionVoter):
        extra.setdefault("colluders", chosen)
    coalition = None
    if issubclass(cls, OmniscientColluder | AdaptiveBackdoorParticipant):
        coalition = extra.setdefault("coalition", Coalition(chosen))

    def make(*, index: int, **kwargs: Any) -> Participant:
        participant: Participant
        if index in chosen:
            participant = cls(index=index, **kwargs, **extra)
        elif coalition is not None:
            participant = ObservedParticipant(index=index, coalition=coalition, **kwargs)
        else:
            return Participant(index=index, **kwargs)
        if coalition is not None:
            coalition.join(participant)
        return participant

    return make


def dense_update(participant: Participant, params: np.ndarray, local: np.ndarray, round_: int) -> np.ndarray:
    """What ``participant`` sends to a rule that takes whole updates: an honest participant its
    whole Δ, an adversary what its :meth:`Adversary.dense_update` forges."""
    if isinstance(participant, Adversary):
        return participant.dense_update(params, local, round_)
    return delta(local, params)


def adversary_count(n: int, fraction: float) -> int:
    """``round(e·N)`` adversaries, halves rounded up (e = 0.2 of 20 → 4, e = 0.25 of 10 → 3)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"the adversary fraction e must be in [0, 1], got {fraction}")
    # Snap away float error first: 0.1 * 30 is 3.0000000000000004.
    return min(n, math.floor(round(fraction * n, 9) + 0.5))


def choose_adversaries(n: int, fraction: float, seed: int) -> set[int]:
    """Which :func:`adversary_count` of the ``n`` participants are malicious: a seeded random
    choice, the same for the same ``(n, fraction, seed)``."""
    if n < 1:
        raise ValueError(f"need at least one participant, got {n}")
    k = adversary_count(n, fraction)
    rng = np.random.default_rng([seed, 0xE])
    return {int(i) for i in rng.choice(n, size=k, replace=False)}

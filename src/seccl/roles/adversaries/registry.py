"""The participant attacks by name, the factory that seats them, and how many and which attack."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection
from typing import Any

import numpy as np

from seccl.roles.adversaries.coalition import (
    AdaptiveBackdoorParticipant,
    ALIEParticipant,
    Coalition,
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
from seccl.roles.adversaries.gate_aware import (
    BlindGateBackdoor,
    GateBlendBackdoor,
    LoneCarrierBackdoor,
    PlausibleVoter,
)
from seccl.roles.adversaries.poisoning import (
    BackdoorParticipant,
    LabelFlippingParticipant,
    LowQualityParticipant,
)
from seccl.roles.adversaries.updates import (
    FreeRider,
    NoiseParticipant,
    ScalingParticipant,
    SignFlippingParticipant,
)
from seccl.roles.adversaries.voting import CollusionVoter
from seccl.roles.participant import Participant

__all__ = [
    "PARTICIPANT_ATTACKS",
    "SIMULATION_ATTACKS",
    "ParticipantFactory",
    "adversary_count",
    "attack_class",
    "attack_factory",
    "choose_adversaries",
]

ParticipantFactory = Callable[..., Participant]  # the same alias as seccl.runtime.simulation's


PARTICIPANT_ATTACKS: dict[str, type[Participant]] = {
    "low-quality": LowQualityParticipant,
    "label-flip": LabelFlippingParticipant,
    "backdoor": BackdoorParticipant,
    "noise": NoiseParticipant,
    "sign-flip": SignFlippingParticipant,
    "scale": ScalingParticipant,
    "free-rider": FreeRider,
    "collude-votes": CollusionVoter,
    "collude-plausible": PlausibleVoter,  # fellows just above the best outsider: inside the honest range
}

SIMULATION_ATTACKS: dict[str, type[Participant]] = {
    "alie": ALIEParticipant,
    "ipm": IPMParticipant,
    "adaptive-backdoor": AdaptiveBackdoorParticipant,
    # The stronger settings of the literature's reference codes (issue 23), beside the ones above,
    # which stay as they were (the comparison's records were made with them):
    "alie-z1.5": ReferenceALIEParticipant,  # z = 1.5, sample σ: Baruch et al.'s code, byzfl
    "ipm-large": LargeIPMParticipant,  # ε = 2, byzfl's default, beside Xie et al.'s 0.1
    "sign-flip-mean": MeanSignFlipParticipant,  # −μ of the honest Δs, byzfl's SignFlipping
    "min-max": MinMaxParticipant,  # Shejwalkar & Houmansadr 2021, inverse unit vector
    "min-sum": MinSumParticipant,
    "min-max-std": MinMaxStdParticipant,  # the same, inverse standard deviation
    "min-sum-std": MinSumStdParticipant,
    # Attacks that know the gram-gate election (issue 23):
    "backdoor-gate": GateBlendBackdoor,  # every colluder blends toward μ until the filter keeps it
    "backdoor-lone": LoneCarrierBackdoor,  # one carrier does; the others train honestly
    "backdoor-gate-blind": BlindGateBackdoor,  # backdoor-gate knowing only the coalition's own updates
}
"""Attacks of an omniscient coalition (see :class:`Coalition`): they read the honest participants'
local models in the same process, so they exist in the simulation and the chain-free baselines
only, never in a deployment, where each participant is a process of its own. The formulas are in
:mod:`seccl.learning.attacks`; a name takes no parameters: the options of :func:`attack_factory`
(e.g. ``{"z": 1.0}``, ``{"epsilon": 5.0}``, ``{"perturbation": "sign"}``) set other values."""


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
    (:data:`SIMULATION_ATTACKS`), everyone joins one :class:`Coalition` and the honest
    participants are honest ObservedParticipant objects (their local models seen)."""
    cls = attack_class(name)
    chosen = frozenset(int(a) for a in adversaries)
    extra: dict[str, Any] = {**(options or {}), "start_round": start_round}
    if issubclass(cls, CollusionVoter):
        extra.setdefault("colluders", chosen)
    coalition = None
    if issubclass(cls, OmniscientColluder | AdaptiveBackdoorParticipant | GateBlendBackdoor):
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

"""Small whole sessions for the tests of the runtime and of run directories: four participants'
real MNIST digits (the ``data`` fixture of ``tests/conftest.py``), and one session runner on the
embedded EVM."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seccl.chain.backends import ChainBackend, EmbeddedChain
from seccl.learning.data import Dataset, ParticipantData
from seccl.learning.splits import load_participant_data
from seccl.roles.settings import LearningSettings
from seccl.runs.launch import server_factory
from seccl.runtime.simulation import RunResult, Simulation

N = 4
TARGET = 1

Data = tuple[list[ParticipantData], Dataset]


def four_participants() -> Data:
    """Four participants' MNIST parts (100 digits each) and the test set."""
    return load_participant_data(
        dataset="mnist",
        data_root=None,
        participants=N,
        split="iid",
        alpha=0.5,
        per_participant=100,
        validation_fraction=0.2,
        seed=0,
    )


def simulate(
    data: Data,
    server: Callable | None = None,
    *,
    rounds: int = 2,
    seed: int = 0,
    participant_factory: Callable | None = None,
    backend: ChainBackend | None = None,
    **options: Any,
) -> tuple[Simulation, RunResult]:
    """A 4-participant session (M = 2, one local epoch) and its result."""
    parts, test = data
    sim = Simulation(
        backend=backend or EmbeddedChain(),
        parts=parts,
        test=test,
        rounds=rounds,
        candidate_fraction=0.5,
        settings=LearningSettings(local_epochs=1),
        seed=seed,
        server_factory=server,
        participant_factory=participant_factory,
        **options,
    )
    return sim, sim.run()


def attack(name: str) -> Callable:
    """The malicious server ``name``, aimed at participant :data:`TARGET`."""
    return server_factory(name, TARGET)

"""Shared set-up of the end-to-end tests: four participants' real MNIST digits, and one small
session runner on the embedded EVM."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from seccl.chain.backends import ChainBackend, EmbeddedChain
from seccl.experiments.session import server_factory
from seccl.learning.data import Dataset, ParticipantData
from seccl.roles.settings import LearningSettings
from seccl.runtime.simulation import RunResult, Simulation, load_participant_data

N = 4
TARGET = 1

Data = tuple[list[ParticipantData], Dataset]


@pytest.fixture(scope="session")
def data() -> Data:
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

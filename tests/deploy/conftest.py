"""Shared set-up of the deployment tests: a small consortium's files (keys, private data, the
session deployed on a real anvil) and the simulation of the same session, to compare with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from seccl.chain.accounts import load_keystore
from seccl.chain.backends import EmbeddedChain
from seccl.deploy.local import LocalDeployment
from seccl.learning.splits import load_participant_data
from seccl.roles.settings import LearningSettings
from seccl.runs.evaluate import model_params, read_state_dict
from seccl.runtime.results import RunResult
from seccl.runtime.simulation import Simulation

N, ROUNDS, PER_PARTICIPANT = 3, 2, 100
SETTINGS = LearningSettings(local_epochs=1)
GATE_SETTINGS = LearningSettings(local_epochs=1, election="gram-gate", aggregation="clipped-shared-mean")


def account(directory: Path):
    return load_keystore(directory / "key.json", (directory / "passphrase").read_text().strip())


def saved_model(path: Path) -> np.ndarray:
    """The parameters of a model file a run or a deployment saved (a ``state_dict``)."""
    return model_params(read_state_dict(path), path, num_classes=10)


def simulated_model(
    root: Path, n: int = N, rounds: int = ROUNDS, settings: LearningSettings = SETTINGS
) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """θ_R and the elected candidates of the simulation of the consortium under ``root``: the
    same keys, the same private data, the same seed, on the embedded EVM."""
    params, result = simulated_run(root, n, rounds, settings)
    return params, [r.candidates for r in result.rounds]


def simulated_run(
    root: Path, n: int = N, rounds: int = ROUNDS, settings: LearningSettings = SETTINGS
) -> tuple[np.ndarray, RunResult]:
    """θ_R and the whole result of the simulation of the consortium under ``root`` (see
    :func:`simulated_model`)."""
    parts, test = load_participant_data(
        dataset="mnist",
        data_root=None,
        participants=n,
        split="iid",
        alpha=0.5,
        per_participant=PER_PARTICIPANT,
        validation_fraction=0.2,
        seed=0,
    )
    sim = Simulation(
        backend=EmbeddedChain(),
        parts=parts,
        test=test,
        rounds=rounds,
        candidate_fraction=0.2,
        settings=settings,
        seed=0,
        accounts=[account(root / f"participant-{i:04d}") for i in range(n)],
        server_account=account(root / "server"),
        seeded_salts=False,  # each participant's salts from its own key, as deployed
    )
    result = sim.run()
    return sim.server.params, result


@pytest.fixture
def consortium(tmp_path: Path) -> Iterator[LocalDeployment]:
    """Keys, data and a deployed session for N participants, on an anvil of its own (no Flower)."""
    deployment = LocalDeployment(
        tmp_path / "consortium",
        participants=N,
        rounds=ROUNDS,
        per_participant=PER_PARTICIPANT,
        settings=SETTINGS,
    )
    with deployment:
        deployment.start_chain()
        deployment.prepare()
        deployment.open_session()
        yield deployment

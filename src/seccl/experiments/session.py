"""Runs a RunConfig: opens its chain, builds the simulation, and returns the result."""

from __future__ import annotations

from collections.abc import Callable

from seccl.experiments.config import RunConfig
from seccl.roles.settings import LearningSettings
from seccl.runtime.simulation import RunResult, Simulation, load_participant_data, open_backend


def learning_settings(config: RunConfig) -> LearningSettings:
    return LearningSettings(
        local_epochs=config.local_epochs,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        share_fraction=config.share_fraction,
        aggregation=config.aggregation,
    )


def run_config(
    config: RunConfig, *, progress: bool = False, log: Callable[[str], None] | None = None
) -> RunResult:
    """Run the session ``config`` describes, on its chain backend."""
    parts, test = load_participant_data(
        dataset=config.dataset,
        data_root=config.data_root,
        participants=config.participants,
        split=config.split,
        alpha=config.alpha,
        per_participant=config.per_participant,
        validation_fraction=config.validation_fraction,
        seed=config.seed,
    )
    with open_backend(config.chain, config.run_dir) as backend:
        simulation = Simulation(
            backend=backend,
            parts=parts,
            test=test,
            rounds=config.rounds,
            candidate_fraction=config.candidate_fraction,
            settings=learning_settings(config),
            seed=config.seed,
            progress=progress,
            log=log,
        )
        return simulation.run()

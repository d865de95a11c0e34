"""Runs a RunConfig: opens its chain, casts its adversaries, builds the simulation, runs it."""

from __future__ import annotations

import functools
from collections.abc import Callable

from seccl.experiments.config import RunConfig
from seccl.learning.backdoor import BackdoorProbe
from seccl.learning.data import Dataset, ParticipantData
from seccl.roles.malicious_participant import attack_factory, choose_adversaries
from seccl.roles.malicious_server import SERVER_ATTACKS, TargetedServer
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


def participant_data(config: RunConfig) -> tuple[list[ParticipantData], Dataset]:
    """The participants' private parts and the held-out test set that ``config`` names."""
    return load_participant_data(
        dataset=config.dataset,
        data_root=config.data_root,
        participants=config.participants,
        split=config.split,
        alpha=config.alpha,
        per_participant=config.per_participant,
        validation_fraction=config.validation_fraction,
        seed=config.seed,
    )


def server_factory(name: str, target: int) -> functools.partial:
    """A ``server_factory`` for the malicious server ``name``, aimed at participant ``target``."""
    cls, options = SERVER_ATTACKS[name]
    if issubclass(cls, TargetedServer):
        options = {**options, "target": target}
    return functools.partial(cls, **options)


def run_config(
    config: RunConfig, *, progress: bool = False, log: Callable[[str], None] | None = None
) -> RunResult:
    """Run the session ``config`` describes, on its chain backend."""
    say = log or (lambda _line: None)
    parts, test = participant_data(config)
    participants = None
    adversaries: set[int] = set()
    round_metrics = None
    if config.attack:
        adversaries = choose_adversaries(config.participants, config.attack_fraction, config.seed)
        participants = attack_factory(config.attack, adversaries, start_round=config.attack_start_round)
        if "backdoor" in config.attack.split("+"):
            round_metrics = BackdoorProbe(test, target_label=0).metrics
        say(
            f"adversaries: participants {sorted(adversaries)} run {config.attack!r} "
            f"from round {config.attack_start_round}"
        )
    server = None
    if config.server_attack:
        server = server_factory(config.server_attack, config.attack_target)
        say(f"malicious server: {config.server_attack!r} ({server.func.__name__}, {server.keywords})")
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
            participant_factory=participants,
            server_factory=server,
            round_metrics=round_metrics,
            adversaries=adversaries,
        )
        return simulation.run()

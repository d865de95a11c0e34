"""Throttling, end to end: one adversary among 10 participants (e = 0.1), M = 2 candidates
(l = 0.2), IID real MNIST, 2 rounds on the embedded EVM. docs/ARCHITECTURE.md requires the label flipper
and the noise uploader to stay out of the candidates at e = 0.1; the sign flipper, the scaled
update, the low-quality holder and the backdoor poisoner too. They all follow the protocol (their
uploads pass decoding: exactly ⌈s·d⌉ coordinates, values within the bound), so it is the honest
voters' scores and the Borda election that keep them out.

What each run showed (seed 0, adversary 6; identical honest training in every run, so the
elected sets coincide): round 1 elects (4, 5), round 2 (4, 9); accuracy 0.064 → 0.44 → 0.67;
the adversary receives no Borda point in either round, for each of the six attacks, and on
seeds 1-3 too. Earlier measurements (seed 4, round 2) once saw one honest voter put the noise
update second: its 40 validation digits happened to score the noise (on random coordinates,
close to leaving the model as it was) above the honest single updates, which after round 1 do
not always help every small validation set. Hence the tests assert the adversary is never
elected and that honest voters score it below honest updates on average, not that it gets no
point at all.
"""

from __future__ import annotations

import numpy as np
import pytest

from seccl.election import ABSTAIN
from seccl.learning.data import Dataset, ParticipantData
from seccl.roles.adversaries.registry import attack_factory, choose_adversaries
from seccl.roles.adversaries.updates import FreeRider
from seccl.runtime.simulation import RunResult, Simulation
from tests.roles.adversary_helpers import (
    PER_PARTICIPANT,
    N,
    check_reference_election,
    mnist_parts,
    run_attack,
    simulate,
)

ADVERSARIES = choose_adversaries(10, 0.1, seed=0)  # e = 0.1 of 10: one adversary


def assert_throttled(sim: Simulation, result: RunResult, adversary: int) -> None:
    assert result.evidence == [] and result.rejections == []  # it follows the protocol
    recorded = check_reference_election(sim, result)
    honest = [i for i in range(sim.session.n) if i != adversary]
    for record in result.rounds:
        assert adversary not in record.candidates, f"round {record.round}: {record.candidates}"
        ballots = recorded[record.round]
        to_adversary = [ballots[v][adversary] for v in honest]
        to_honest = [ballots[v][j] for v in honest for j in honest if j != v]
        assert ABSTAIN not in to_adversary + to_honest  # every honest voter assessed every update
        assert np.mean(to_adversary) < np.mean(to_honest)
        assert record.extra["adversaries_elected"] == 0
    # Honest updates are clearly useful: the candidates' aggregate improves the model.
    assert result.rounds[0].accuracy > result.initial_accuracy + 0.2
    assert result.rounds[1].accuracy > result.rounds[0].accuracy


@pytest.mark.parametrize("attack", ["label-flip", "noise", "sign-flip", "scale", "low-quality", "backdoor"])
def test_a_single_adversary_is_never_elected(attack: str) -> None:
    assert len(ADVERSARIES) == 1
    (adversary,) = ADVERSARIES
    sim, result = run_attack(attack, ADVERSARIES)
    assert_throttled(sim, result, adversary)


def test_a_free_rider_takes_part_without_training_and_is_not_elected_for_noise() -> None:
    """A stale free rider with no train data at all: it cannot train (train_local would refuse
    an empty data set), yet it takes part in every round. In round 1 (nothing to replay) its
    small random update is not elected. Round 2's replay of the last aggregate step is only
    measured: copying others' progress is the paper's open problem of training verification
    (seed 0: elected (4, 5) then (4, 9), the free rider never, with no Borda point either round)."""
    (rider,) = ADVERSARIES
    parts = list(mnist_parts(N, PER_PARTICIPANT, 0)[0])
    empty = Dataset(np.zeros((0, 1, 28, 28), np.float32), np.zeros(0, np.int64))
    parts[rider] = ParticipantData(empty, parts[rider].validation)
    factory = attack_factory("free-rider", ADVERSARIES, options={"mode": "stale"})
    sim, result = simulate(factory, parts=parts)
    p = sim.participants[rider]
    assert isinstance(p, FreeRider) and p.trainings == 0
    assert result.evidence == [] and result.rejections == []
    check_reference_election(sim, result)
    assert rider not in result.rounds[0].candidates

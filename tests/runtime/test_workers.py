"""Worker processes change how fast a round runs, never what it computes: the same seed gives the
same models, ballots and elections bit for bit with the participants' training and scoring in
the main process or in two workers, an adversary's own training included."""

from __future__ import annotations

import numpy as np

from seccl.roles.adversaries.registry import attack_factory
from tests.sessions import simulate


def outcome(sim, result) -> tuple:
    return (
        sim.server.params.tobytes(),
        [(r.candidates, r.scores, r.borda_points, r.training_losses) for r in result.rounds],
        [e.kind for e in result.evidence],
    )


def test_two_workers_give_the_same_run_bit_for_bit(data) -> None:
    here = outcome(*simulate(data, workers=0))
    in_workers = outcome(*simulate(data, workers=2))

    assert in_workers == here
    assert all(loss is not None for r in here[1] for loss in r[3])  # the workers' losses came back


def test_an_adversarys_own_training_runs_in_the_workers_unchanged(data) -> None:
    flippers = attack_factory("label-flip", {0, 2}, start_round=1)

    here_sim, here = simulate(data, participant_factory=flippers, workers=0)
    there_sim, there = simulate(data, participant_factory=flippers, workers=2)

    assert np.array_equal(here_sim.server.params, there_sim.server.params)
    assert [r.scores for r in here.rounds] == [r.scores for r in there.rounds]

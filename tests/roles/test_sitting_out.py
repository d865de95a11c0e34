"""A participant whose local training diverges (a non-finite local model) sits the round out: it
uploads nothing, records SAT_OUT evidence, still votes, and the session carries on without it;
the next round it takes part again."""

from __future__ import annotations

import numpy as np
import pytest

from seccl.chain.backends import EmbeddedChain
from seccl.chain.bulletin_board import MessageKind
from seccl.election import ABSTAIN
from seccl.learning.training import train_local
from seccl.protocol.evidence import EvidenceKind
from seccl.protocol.verification import Status
from seccl.roles.participant import Participant
from seccl.roles.settings import LearningSettings
from seccl.runtime.simulation import RunResult, Simulation
from tests.roles.adversary_helpers import ballots_of, check_reference_election, mnist_parts

DIVERGER = 2
DIVERGING_ROUND = 1
SETTINGS = LearningSettings(local_epochs=1, learning_rate=0.1)


class DivergingParticipant(Participant):
    """Trains in round 1 at an absurd learning rate: SGD blows up to NaN (measured: every one of
    the 46,970 parameters). Honest afterwards."""

    def local_model(self, params: np.ndarray, round_: int) -> np.ndarray:
        if round_ != DIVERGING_ROUND:
            return super().local_model(params, round_)
        return train_local(
            params, self.data.train, epochs=1, lr=1e12, seed=self._seed_for(round_), model=self._model
        )


def factory(*, index: int, **kwargs) -> Participant:
    return (DivergingParticipant if index == DIVERGER else Participant)(index=index, **kwargs)


@pytest.fixture(scope="module")
def run() -> tuple[Simulation, RunResult]:
    parts, test = mnist_parts(4, 100, 0)
    sim = Simulation(
        backend=EmbeddedChain(),
        parts=list(parts),
        test=test,
        rounds=2,
        candidate_fraction=0.5,
        settings=SETTINGS,
        seed=0,
        participant_factory=factory,
    )
    return sim, sim.run()


def test_a_diverging_participant_reports_that_it_sat_the_round_out(run: tuple[Simulation, RunResult]) -> None:
    sim, result = run
    me = sim.session.participants[DIVERGER]

    assert len(result.evidence) == 1, [e.summary() for e in result.evidence]
    (evidence,) = result.evidence
    assert evidence.kind is EvidenceKind.SAT_OUT
    assert (evidence.round, evidence.finder, evidence.finder_index) == (DIVERGING_ROUND, me, DIVERGER)
    assert (evidence.subject, evidence.subject_index) == (me, DIVERGER)  # nobody else's fault
    assert "diverged" in evidence.detail
    assert result.verdicts[0].status is Status.UNPROVABLE
    assert sim.board_reader.caught_count() == 0


def test_the_diverged_model_never_leaves_the_participant(run: tuple[Simulation, RunResult]) -> None:
    sim, result = run
    me = sim.session.participants[DIVERGER]

    assert result.rejections == []  # it sent nothing the server had to refuse
    assert sim.server.store.get(DIVERGING_ROUND, MessageKind.UPDATE, me) is None
    assert sim.board_reader.digest_of(DIVERGING_ROUND, MessageKind.UPDATE, me) is None
    assert DIVERGER not in sim.board_reader.round_info(DIVERGING_ROUND).eligible
    assert DIVERGER not in result.rounds[0].candidates


def test_the_session_continues_and_the_participant_still_votes(run: tuple[Simulation, RunResult]) -> None:
    sim, result = run
    n = sim.session.n

    assert [r.round for r in result.rounds] == [1, 2]
    assert all(np.isfinite(r.accuracy) for r in result.rounds)
    assert result.rounds[0].accuracy > result.initial_accuracy
    check_reference_election(sim, result)
    ballots = ballots_of(sim, DIVERGING_ROUND)
    assert sorted(ballots) == list(range(n))  # its ballot too
    assert all(ballots[DIVERGER][j] != ABSTAIN for j in range(n) if j != DIVERGER)  # it scored the others
    assert all(ballots[v][DIVERGER] == ABSTAIN for v in range(n))  # nothing of it to score


def test_the_participant_takes_part_again_the_next_round(run: tuple[Simulation, RunResult]) -> None:
    sim, _ = run
    me = sim.session.participants[DIVERGER]

    revealed = sim.board_reader.revealed_updates(2, sim.first_block).get(me)
    assert revealed is not None
    assert sim.board_reader.digest_of(2, MessageKind.UPDATE, me) == revealed.digest
    assert sim.board_reader.round_info(2).eligible == tuple(range(sim.session.n))
    assert all(b[DIVERGER] != ABSTAIN for v, b in ballots_of(sim, 2).items() if v != DIVERGER)

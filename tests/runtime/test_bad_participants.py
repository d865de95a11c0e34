"""A participant's own deviations reach the board at most as author-signed bytes that everyone
scores 0 and leaves out alike: they never crash the session nor cast blame on the server."""

from __future__ import annotations

import numpy as np
import pytest

from seccl.chain.bulletin_board import MessageKind
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.evidence import EvidenceKind
from seccl.protocol.verification import Status
from seccl.roles.participant import Participant
from tests.sessions import N, simulate

CHEAT = 2


class HugeValueParticipant(Participant):
    """Shares a finite 1e30 that would turn the next round's training into NaN."""

    def make_update(self, params, local, round_):  # type: ignore[no-untyped-def]
        update = super().make_update(params, local, round_)
        if self.index != CHEAT:
            return update
        values = update.values.copy()
        values[0] = np.float32(1e30)
        return SparseUpdate(update.dimension, update.indices, values)


class DenseParticipant(Participant):
    """Shares every coordinate of Δ instead of the agreed fraction s."""

    def make_update(self, params, local, round_):  # type: ignore[no-untyped-def]
        if self.index != CHEAT:
            return super().make_update(params, local, round_)
        dense = (local - params).astype(np.float32)
        return SparseUpdate(len(dense), np.arange(len(dense), dtype=np.uint32), dense)


class DivergingParticipant(Participant):
    """Its local training yields a non-finite model: it can only sit the round out."""

    def local_model(self, params, round_):  # type: ignore[no-untyped-def]
        if self.index != CHEAT:
            return super().local_model(params, round_)
        return np.full_like(params, np.nan)


@pytest.mark.parametrize(
    "factory, error",
    [(HugeValueParticipant, "ValueOutOfBoundsError"), (DenseParticipant, "OversizedMessageError")],
    ids=["value-beyond-bound", "dense-update"],
)
def test_an_update_outside_the_agreed_bounds_is_refused_scored_zero_and_never_aggregated(
    data, factory, error: str
) -> None:
    sim, result = simulate(data, participant_factory=factory)

    assert len(result.rounds) == 2  # nobody crashed
    assert {r.error for r in result.rejections} == {error}
    assert {r.author for r in result.rejections} == {sim.session.participants[CHEAT]}
    invalid = [e for e in result.evidence if e.kind is EvidenceKind.INVALID_MESSAGE]
    assert {e.finder_index for e in invalid} == set(range(N)) - {CHEAT}
    assert {e.subject_index for e in invalid} == {CHEAT}
    assert {v.status for e, v in zip(result.evidence, result.verdicts, strict=True) if e in invalid} == {
        Status.CONFIRMED
    }
    # The author posted it itself, so the fault on record is the author's, not the server's.
    assert not any(e.kind is EvidenceKind.UPDATE_WITHHELD for e in result.evidence)
    for record in result.rounds:
        for i, voter in enumerate(sim.session.participants):
            if i != CHEAT:
                assert sim.consensus_reader.ballot_of(record.round, voter).scores[CHEAT] == 0
        assert CHEAT not in record.candidates
    assert np.isfinite(sim.server.params).all()
    assert not any(e.kind is EvidenceKind.MODEL_NOT_AGGREGATED for e in result.evidence)


def test_a_participant_whose_training_diverges_sits_out_and_is_never_elected(data) -> None:
    sim, result = simulate(data, participant_factory=DivergingParticipant)

    assert len(result.rounds) == 2
    sat_out = [e for e in result.evidence if e.kind is EvidenceKind.SAT_OUT]
    assert {e.finder_index for e in sat_out} == {CHEAT} and {e.round for e in sat_out} == {1, 2}
    cheat = sim.session.participants[CHEAT]
    for record in result.rounds:
        assert sim.board_reader.digest_of(record.round, MessageKind.UPDATE, cheat) is None
        assert CHEAT not in record.candidates
        assert not sim.board_reader.round_info(record.round).has_update(CHEAT)

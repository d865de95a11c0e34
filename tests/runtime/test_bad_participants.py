"""A participant's own deviations reach the board at most as author-committed bytes that anyone
proves invalid, or a commitment it cannot reveal: either way it is not eligible, the session goes
on, and no finding against the server can be confirmed."""

from __future__ import annotations

import numpy as np

from seccl.chain.bulletin_board import MessageKind
from seccl.election import ABSTAIN
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


def test_a_revealed_update_beyond_the_bound_is_proven_invalid_on_chain_and_never_elected(data) -> None:
    sim, result = simulate(data, participant_factory=HugeValueParticipant)
    cheat = sim.session.participants[CHEAT]

    assert len(result.rounds) == 2  # nobody crashed
    invalid = [e for e in result.evidence if e.kind is EvidenceKind.INVALID_MESSAGE]
    assert {e.finder_index for e in invalid} == set(range(N)) - {CHEAT}
    assert {e.subject_index for e in invalid} == {CHEAT}
    assert _statuses(result, invalid) == {Status.CONFIRMED}
    proofs = sim.board_reader.invalidity_proofs(sim.first_block)
    assert [(r, author) for r, author, *_ in proofs] == [(1, cheat), (2, cheat)]  # one proof a round
    assert {prover for *_, prover, _ in proofs} <= set(sim.session.participants) - {cheat}
    for record in result.rounds:
        assert sim.board_reader.round_info(record.round).is_invalid(CHEAT)
        for i, voter in enumerate(sim.session.participants):
            if i != CHEAT:
                assert sim.consensus_reader.ballot_of(record.round, voter).scores[CHEAT] == 0
        assert CHEAT not in record.candidates
    assert np.isfinite(sim.server.params).all()
    _nothing_against_the_server(result)


def test_a_committed_update_that_cannot_be_revealed_leaves_its_author_out_and_the_server_blameless(
    data,
) -> None:
    # A dense update: its commitment is accepted (nobody sees the bytes yet), but the board refuses
    # bytes of any other size than ⌈s·d⌉ at the reveal, so the author is never eligible.
    sim, result = simulate(data, participant_factory=DenseParticipant)

    assert len(result.rounds) == 2
    missing = [e for e in result.evidence if e.kind is EvidenceKind.UPDATE_NOT_REVEALED]
    assert {e.finder_index for e in missing} == set(range(N)) - {CHEAT}
    assert {e.subject_index for e in missing} == {CHEAT}
    assert _statuses(result, missing) == {Status.CONFIRMED}
    own = [e for e in result.evidence if e.finder_index == CHEAT]
    assert {e.kind for e in own} == {EvidenceKind.SAT_OUT} and "session's format" in own[0].detail
    for record in result.rounds:
        info = sim.board_reader.round_info(record.round)
        assert info.has_update(CHEAT) and not info.has_revealed(CHEAT)
        assert CHEAT not in record.candidates
        for i, voter in enumerate(sim.session.participants):
            if i != CHEAT:
                assert sim.consensus_reader.ballot_of(record.round, voter).scores[CHEAT] == ABSTAIN
    _nothing_against_the_server(result)


def _statuses(result, found) -> set[Status]:  # type: ignore[no-untyped-def]
    return {v.status for e, v in zip(result.evidence, result.verdicts, strict=True) if e in found}


def _nothing_against_the_server(result) -> None:  # type: ignore[no-untyped-def]
    """No confirmed finding names the server: each fault on record is its author's."""
    for e, verdict in zip(result.evidence, result.verdicts, strict=True):
        if verdict.status is Status.CONFIRMED:
            assert e.kind in (EvidenceKind.INVALID_MESSAGE, EvidenceKind.UPDATE_NOT_REVEALED), e
            assert e.subject_index == CHEAT


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

"""Whole gram-gate sessions on the embedded EVM: every honest voter computes the same filter view
from the chain, the contract counts only that view's ballots, the model is the clipped aggregate
every participant recomputes, the audit agrees; colluders sending one vector are collapsed and
lose their ballots; a voter that lies about the view is not counted."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from seccl.chain.backends import EmbeddedChain
from seccl.election.gram_gate import DUPLICATE_PPB, ONE, REJECTED, cosine_ppb, filter_updates, gram_matrix
from seccl.learning.aggregation import aggregate
from seccl.learning.model import build_model, get_flat_params
from seccl.learning.sparse import SparseUpdate, select_top_fraction
from seccl.learning.splits import load_participant_data
from seccl.roles.adversaries.gate_aware import BLENDS
from seccl.roles.adversaries.registry import attack_factory
from seccl.roles.participant import Participant
from seccl.roles.settings import LearningSettings
from seccl.runs.audit_rounds import audit_elections
from seccl.runtime.simulation import RunResult, Simulation

N = 8
GATE = LearningSettings(local_epochs=1, election="gram-gate", aggregation="clipped-shared-mean")


@pytest.fixture(scope="module")
def data() -> Any:
    return load_participant_data(
        dataset="mnist",
        data_root=None,
        participants=N,
        split="iid",
        alpha=0.5,
        per_participant=60,
        validation_fraction=0.25,
        seed=0,
    )


def run(data: Any, *, rounds: int = 2, participant_factory: Any = None) -> tuple[Simulation, RunResult]:
    parts, test = data
    sim = Simulation(
        backend=EmbeddedChain(),
        parts=parts,
        test=test,
        rounds=rounds,
        candidate_fraction=0.25,  # M = 2
        settings=GATE,
        seed=0,
        participant_factory=participant_factory,
    )
    return sim, sim.run()


def test_an_honest_gram_gate_session_agrees_on_one_view_and_aggregates_the_clipped_elected(data: Any) -> None:
    sim, result = run(data)
    assert sim.session.election == "gram-gate" and sim.session.assumed_attackers == 2
    assert not result.evidence
    consensus, board = sim.consensus_reader, sim.board_reader
    for record in result.rounds:
        r = record.round
        agreed = consensus.agreed_view_of(r)
        assert agreed is not None
        kept, dropped, votes = agreed
        assert votes == N and bin(kept).count("1") == N - 2
        assert record.extra["kept"] == N - 2 and record.extra["honest_kept_out"] == 2
        # Every participant computed that view from the chain alone, bit for bit.
        views = {p.last_view.masks() for p in sim.participants if p.last_view is not None}
        assert views == {(kept, dropped)}
        assert len(record.candidates) >= 2 and all(kept >> c & 1 for c in record.candidates)
    # The audit replays the count with the reference and finds nothing.
    audits = audit_elections(sim.session, board, consensus)
    assert [a.problems for a in audits] == [[], []]
    # ...including the agreed view, recomputed from the revealed bytes (and round 1's, for round 2).
    assert [a.checked.get("filter views") for a in audits] == [1, 1]
    assert result.rounds[-1].accuracy > result.initial_accuracy


def test_colluders_sending_one_vector_are_collapsed_never_elected_and_their_ballots_do_not_count(
    data: Any,
) -> None:
    colluders = {1, 5}
    sim, result = run(data, participant_factory=attack_factory("sign-flip-mean+collude-votes", colluders))
    for record in result.rounds:
        kept, dropped, _ = sim.consensus_reader.agreed_view_of(record.round)
        # The two send the same −μ: one is a duplicate of the other, and the coalition check or
        # Krum leaves the other out too.
        assert not set(record.candidates) & colluders
        assert bin(dropped & sum(1 << c for c in colluders)).count("1") >= 1
        assert not any(kept >> c & 1 for c in colluders)
    assert not result.evidence


class ViewLiar(Participant):
    """Marks every other participant REJECTED but its fellow (index 0), which it scores top."""

    def _gated_ballot(self, round_: int, verified: dict[int, SparseUpdate]) -> Any:
        view = self.gate_view(round_, verified)
        self.last_view = view
        yield from ()
        return tuple(
            1_000_000 if j == 0 else REJECTED if j != self.index else 2**32 - 1 for j in range(self.session.n)
        )


def test_a_voter_that_misstates_the_view_is_not_counted(data: Any) -> None:
    def make(*, index: int, **kwargs: Any) -> Participant:
        return (ViewLiar if index in (6, 7) else Participant)(index=index, **kwargs)

    sim, _ = run(data, rounds=1, participant_factory=make)
    kept, dropped, votes = sim.consensus_reader.agreed_view_of(1)
    assert votes == N - 2  # the six honest voters agree; the two liars' view has two votes
    honest_view = sim.participants[2].last_view
    assert honest_view is not None and honest_view.masks() == (kept, dropped)
    ballots = {sim.session.participants.index(b.voter): b.scores for b in sim.consensus_reader.ballots_of(1)}
    assert len(ballots) == N


def test_the_filter_over_the_revealed_updates_is_what_the_model_was_aggregated_from(data: Any) -> None:
    sim, result = run(data, rounds=1)
    board = sim.board_reader
    updates = {i: sim.server.update_of(1, i) for i in range(N)}
    assert all(u is not None for u in updates.values())
    view = filter_updates(
        {i: (u.indices, u.values) for i, u in updates.items() if u is not None},
        N,
        2,
        tie_seed=board.tie_seed_of(1),
        round_=1,
    )
    assert view.masks()[0] == sim.consensus_reader.agreed_view_of(1)[0]
    elected = [updates[c] for c in result.rounds[0].candidates]
    theta0 = get_flat_params(build_model(0))
    expected = aggregate(theta0, [u for u in elected if u is not None], rule="clipped-shared-mean")
    assert np.array_equal(expected, sim.server.params)


def test_plausible_colluders_lift_their_fellows_just_above_the_best_outsider_and_stay_in_range(
    data: Any,
) -> None:
    colluders = {2, 6}
    sim, result = run(data, rounds=1, participant_factory=attack_factory("collude-plausible", colluders))
    ballots = {sim.session.participants.index(b.voter): b.scores for b in sim.consensus_reader.ballots_of(1)}
    kept, _, _ = sim.consensus_reader.agreed_view_of(1)
    for v in colluders:
        fellow = (colluders - {v}).pop()
        outsiders = [ballots[v][j] for j in range(N) if kept >> j & 1 and j not in colluders]
        assert len(set(outsiders)) == 1  # every outsider at the lowest score it gave any
        if kept >> fellow & 1:  # the fellow just above the best it gave an outsider (>= 1000 ppm up)
            assert ballots[v][fellow] >= outsiders[0] + 1_000
    # No colluder's entry lies outside the range of the honest voters' scores by more than the step.
    honest_entries = [s for v, row in ballots.items() if v not in colluders for s in row if s <= 1_000_000]
    assert all(s <= max(honest_entries) + 1_000 for v in colluders for s in ballots[v] if s <= 1_000_000)
    assert result.rounds


def test_gate_aware_carriers_blend_until_the_filter_keeps_them_or_send_the_plain_backdoor(data: Any) -> None:
    colluders = {3, 4}
    sim, _ = run(
        data, rounds=1, participant_factory=attack_factory("backdoor-gate+collude-plausible", colluders)
    )
    blends = {p.index: p.last_blend for p in sim.participants if p.index in colluders}
    assert all(b in BLENDS for b in blends.values())
    # Each carrier's own noise keeps the blends apart: they are never near-duplicates of each other.
    first, second = (sim.server.update_of(1, c) for c in sorted(colluders))
    assert first is not None and second is not None
    gram = gram_matrix({0: (first.indices, first.values), 1: (second.indices, second.values)})
    assert ONE - cosine_ppb(gram, 0, 1) > DUPLICATE_PPB


def test_blind_carriers_blend_toward_their_own_clean_updates_never_the_honest_ones(data: Any) -> None:
    colluders = {3, 4}
    sim, _ = run(
        data, rounds=1, participant_factory=attack_factory("backdoor-gate-blind+collude-plausible", colluders)
    )
    carrier = next(p for p in sim.participants if p.index == 3)
    assert carrier.last_blend in BLENDS
    theta0 = get_flat_params(build_model(0))
    rows, updates = carrier.reference(theta0, 1)
    # Its reference is the coalition's own clean training, one row per colluder, and nothing of
    # the honest participants': what commit-then-reveal leaves a real coalition.
    clean = [Participant.local_model(p, theta0, 1) for p in sim.participants if p.index in colluders]
    assert rows.shape[0] == len(colluders)
    assert all(np.array_equal(r, (c - theta0).astype(np.float64)) for r, c in zip(rows, clean, strict=True))
    honest = [
        p.make_update(theta0, p.local_model(theta0, 1), 1)
        for p in sim.participants
        if p.index not in colluders
    ]
    assert not any(
        np.array_equal(u.values, h.values) and np.array_equal(u.indices, h.indices)
        for u in updates.values()
        for h in honest
    )
    # Its stand-ins for the honest participants: one per honest index, its own clean updates first.
    assert sorted(updates) == [i for i in range(N) if i not in colluders]
    own = [
        Participant.make_update(p, theta0, Participant.local_model(p, theta0, 1), 1)
        for p in sim.participants
        if p.index in colluders
    ]
    assert [updates[i].indices.tolist() for i in sorted(updates)[: len(own)]] == [
        u.indices.tolist() for u in own
    ]


def test_a_rule_taking_whole_updates_gets_the_same_blend_the_session_gets_its_top_s_of(data: Any) -> None:
    colluders = {3, 4}
    sim, _ = run(data, rounds=1, participant_factory=attack_factory("backdoor-gate", colluders))
    carrier = next(p for p in sim.participants if p.index == 3)
    theta0 = get_flat_params(build_model(0))
    local = carrier.local_model(theta0, 1)
    sparse = carrier.make_update(theta0, local, 1)
    whole = carrier.dense_update(theta0, local, 1)
    assert carrier.last_blend in BLENDS
    # In round 1 (no history) both are the one blend the filter keeps: the session sends its top s.
    again = select_top_fraction(whole, GATE.share_fraction)
    assert np.array_equal(again.indices, sparse.indices) and np.array_equal(again.values, sparse.values)
    assert np.count_nonzero(whole) > len(sparse.indices)  # the whole blend, not a top-s of it

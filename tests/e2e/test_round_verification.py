"""End to end: every verification step catches the server attack it guards against, with
evidence that cites the chain, and an honest run yields no evidence at all."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from seccl.chain.backends import EmbeddedChain
from seccl.chain.bulletin_board import MessageKind
from seccl.election import borda_tally
from seccl.experiments.session import server_factory
from seccl.learning.data import Dataset, ParticipantData
from seccl.protocol.evidence import EvidenceKind
from seccl.roles.settings import LearningSettings
from seccl.runtime.simulation import RunResult, Simulation, load_participant_data

N = 4
TARGET = 1


@pytest.fixture(scope="module")
def data() -> tuple[list[ParticipantData], Dataset]:
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
    data: tuple[list[ParticipantData], Dataset],
    server_factory: Callable | None = None,
    rounds: int = 2,
    seed: int = 0,
) -> tuple[Simulation, RunResult]:
    parts, test = data
    sim = Simulation(
        backend=EmbeddedChain(),
        parts=parts,
        test=test,
        rounds=rounds,
        candidate_fraction=0.5,
        settings=LearningSettings(local_epochs=1),
        seed=seed,
        server_factory=server_factory,
    )
    return sim, sim.run()


def attack(name: str) -> Callable:
    return server_factory(name, TARGET)


def test_an_honest_run_yields_no_evidence_and_a_fully_audited_chain(data) -> None:
    sim, result = simulate(data)

    assert result.evidence == []
    assert result.rejections == []
    board, consensus = sim.server.board, sim.server.consensus
    for record in result.rounds:
        r = record.round
        ballots = {}
        for i, address in enumerate(sim.session.participants):
            assert board.digest_of(r, MessageKind.UPDATE, address) is not None
            assert board.digest_of(r, MessageKind.EVALUATION, address) is not None
            ballot = consensus.ballot_of(r, address)
            assert ballot is not None
            ballots[i] = ballot.scores
        # The contract's election is the reference election of the ballots it recorded.
        assert record.candidates == borda_tally(ballots, N, sim.session.candidates).candidates
        assert record.ballots == N
    final_digest = board.digest_of(len(result.rounds), MessageKind.MODEL, sim.session.server)
    assert final_digest == sim.server.model_signed.digest()


def test_the_same_seed_gives_the_same_run(data) -> None:
    first_sim, first = simulate(data, rounds=1)
    second_sim, second = simulate(data, rounds=1)

    assert [r.candidates for r in first.rounds] == [r.candidates for r in second.rounds]
    assert [r.accuracy for r in first.rounds] == [r.accuracy for r in second.rounds]
    assert first_sim.server.model_signed.digest() == second_sim.server.model_signed.digest()


# (attack, evidence kind, who must find it: "target", "others", "odd", "one", "all")
DETECTIONS = [
    ("tamper-one", EvidenceKind.DELIVERED_UPDATE_MISMATCH, "one"),
    ("tamper-all", EvidenceKind.DELIVERED_UPDATE_MISMATCH, "others"),
    ("equivocate", EvidenceKind.DELIVERED_UPDATE_MISMATCH, "odd"),
    ("drop", EvidenceKind.UPDATE_NOT_RECORDED, "target"),
    ("withhold", EvidenceKind.UPDATE_WITHHELD, "others"),
    ("forge-receipt", EvidenceKind.UPDATE_NOT_RECORDED, "target"),
    ("misreport-scores", EvidenceKind.BALLOT_NOT_COUNTED, "target"),
    ("aggregate-non-candidates", EvidenceKind.MODEL_NOT_AGGREGATED, "all"),
    ("publish-unaggregated", EvidenceKind.MODEL_NOT_AGGREGATED, "all"),
    ("send-wrong-model", EvidenceKind.MODEL_MISMATCH, "target"),
]


@pytest.mark.parametrize("name, kind, finders", DETECTIONS, ids=[d[0] for d in DETECTIONS])
def test_each_server_attack_is_detected_with_evidence_citing_the_chain(
    data, name: str, kind: EvidenceKind, finders: str
) -> None:
    sim, result = simulate(data, server_factory=attack(name))
    participants = sim.session.participants

    found = [e for e in result.evidence if e.kind is kind]
    assert found, f"{name} went undetected; evidence: {result.evidence}"
    expected_finders = {
        "target": {TARGET},
        "one": {(TARGET + 1) % N},
        "others": set(range(N)) - {TARGET},
        "odd": {i for i in range(N) if i % 2 and i != TARGET},
        "all": set(range(N)),
    }[finders]
    assert {participants.index(e.finder) for e in found} == expected_finders
    assert all(e.kind is kind for e in result.evidence), "an attack yields only its own kind"
    board = sim.server.board
    for e in found:
        if kind is EvidenceKind.UPDATE_WITHHELD:
            assert e.expected_digest is None  # the finder never received it: nothing to hash
        else:
            assert e.expected_digest is not None and e.expected_digest != e.recorded_digest
        if kind in (EvidenceKind.DELIVERED_UPDATE_MISMATCH, EvidenceKind.UPDATE_WITHHELD):
            # The evidence quotes exactly what the board holds for that author.
            onchain = board.digest_of(e.round, MessageKind.UPDATE, e.subject)
            assert e.recorded_digest == "0x" + onchain.hex()
        if kind is EvidenceKind.MODEL_NOT_AGGREGATED:
            onchain = board.digest_of(e.round, MessageKind.MODEL, sim.session.server)
            assert e.recorded_digest == "0x" + onchain.hex()
            assert board.record_in_transaction(e.tx_id).digest == onchain

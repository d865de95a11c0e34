"""End to end: each server deviation is either undone on the chain by the participants themselves
or caught with evidence an outsider confirms, and an honest run yields no evidence at all."""

from __future__ import annotations

import pytest

from seccl.chain.bulletin_board import MessageKind
from seccl.election import ABSTAIN, borda_tally
from seccl.protocol.evidence import EvidenceKind
from seccl.protocol.instructions import EvaluateRequest, TrainRequest
from seccl.protocol.verification import Status
from seccl.roles.server import ParameterServer
from seccl.runtime.simulation import RunResult, Simulation
from seccl.runtime.transport import InMemoryTransport
from tests.sessions import TARGET, N, attack, simulate


def sender_of(sim: Simulation, tx_id: str) -> str:
    return str(sim.board_reader.w3.eth.get_transaction(tx_id)["from"])  # type: ignore[arg-type]


def verdicts(result: RunResult, kind: EvidenceKind) -> set[Status]:
    return {v.status for e, v in zip(result.evidence, result.verdicts, strict=True) if e.kind is kind}


def test_an_honest_run_yields_no_evidence_and_a_fully_audited_chain(data) -> None:
    sim, result = simulate(data)

    assert result.evidence == []
    assert result.rejections == []
    assert result.chain["accusations_upheld"] == 0
    board, consensus = sim.board_reader, sim.consensus_reader
    for record in result.rounds:
        r = record.round
        ballots = {}
        for i, address in enumerate(sim.session.participants):
            assert board.digest_of(r, MessageKind.UPDATE, address) is not None
            ballot = consensus.ballot_of(r, address)
            assert ballot is not None and ballot.scores[i] == ABSTAIN
            ballots[i] = ballot.scores
        # The contract's election is the reference election of the ballots it recorded.
        reference = borda_tally(
            ballots, N, sim.session.candidates, tie_seed=sim.board_reader.tie_seed_of(r), round_=r
        )
        assert record.candidates == reference.candidates
        assert record.ballots == N
    final_digest = board.digest_of(len(result.rounds), MessageKind.MODEL, sim.session.server)
    assert final_digest == sim.server.model_signed.digest()


def test_the_same_seed_gives_the_same_model_under_fresh_random_keys(data) -> None:
    first_sim, first = simulate(data, rounds=1)
    second_sim, second = simulate(data, rounds=1)

    # Keys are random: nothing secret comes from the public seed...
    assert set(first_sim.session.participants).isdisjoint(second_sim.session.participants)
    assert first_sim.session.server != second_sim.session.server
    assert first_sim.session.nonce != second_sim.session.nonce
    # ...while the seed still fixes the learning and the tie order.
    assert [r.candidates for r in first.rounds] == [r.candidates for r in second.rounds]
    assert (first_sim.server.params == second_sim.server.params).all()


# Caught: (attack, evidence kind, who must find it). Every finding is confirmed by an outsider.
CAUGHT = [
    ("tamper-one", EvidenceKind.MODEL_MISMATCH, {TARGET}),
    ("tamper-all", EvidenceKind.MODEL_MISMATCH, set(range(N))),
    ("equivocate", EvidenceKind.MODEL_MISMATCH, {i for i in range(N) if i % 2}),
    ("forge-receipt", EvidenceKind.UPDATE_NOT_RECORDED, {TARGET}),
    ("misreport-scores", EvidenceKind.BALLOT_NOT_COUNTED, {TARGET}),
    ("aggregate-non-candidates", EvidenceKind.MODEL_NOT_AGGREGATED, set(range(N))),
    ("publish-unaggregated", EvidenceKind.MODEL_NOT_AGGREGATED, set(range(N))),
    ("withhold-model", EvidenceKind.MODEL_NOT_POSTED, set(range(N))),
]


@pytest.mark.parametrize("name, kind, finders", CAUGHT, ids=[c[0] for c in CAUGHT])
def test_each_provable_deviation_is_caught_with_evidence_an_outsider_confirms(
    data, name: str, kind: EvidenceKind, finders: set[int]
) -> None:
    sim, result = simulate(data, attack(name))

    found = [e for e in result.evidence if e.kind is kind]
    assert found, f"{name} went undetected; evidence: {result.evidence}"
    assert {e.finder_index for e in found} == finders
    assert verdicts(result, kind) == {Status.CONFIRMED}
    assert not any(v.status is Status.REFUTED for v in result.verdicts)
    board = sim.board_reader
    for e in found:
        if kind is EvidenceKind.MODEL_MISMATCH:
            # The evidence quotes exactly what the board holds for the model it was handed.
            model = board.digest_of(e.round - 1, MessageKind.MODEL, sim.session.server)
            final = board.digest_of(e.round, MessageKind.MODEL, sim.session.server)
            assert e.recorded_digest in {"0x" + model.hex(), "0x" + final.hex()}
        if kind is EvidenceKind.MODEL_NOT_AGGREGATED:
            onchain = board.digest_of(e.round, MessageKind.MODEL, sim.session.server)
            assert e.recorded_digest == "0x" + onchain.hex() != e.expected_digest


@pytest.mark.parametrize("name", ["tamper-one", "equivocate", "withhold-model"])
def test_a_finding_the_chain_can_check_is_filed_on_chain_and_upheld(data, name: str) -> None:
    sim, result = simulate(data, attack(name))

    accusations = sim.board_reader.accusations()
    assert accusations, "no accusation was upheld on-chain"
    accusers = {sim.session.participants.index(accuser) for _, accuser, _, _ in accusations}
    assert accusers == {e.finder_index for e in result.evidence if e.tx_id in {a[3] for a in accusations}}
    assert result.chain["accusations_upheld"] == len(accusations)


def test_a_server_that_withholds_the_model_stops_the_session_with_the_deadline_on_record(data) -> None:
    sim, result = simulate(data, attack("withhold-model"))

    assert result.rounds == []  # round 1 never produced a model, so round 2 never opened
    assert sim.board_reader.current_round() == 1
    assert all(e.round == 1 for e in result.evidence)


def test_a_dropped_update_is_posted_by_its_author_from_its_own_account(data) -> None:
    sim, result = simulate(data, attack("drop"))
    target = sim.session.participants[TARGET]

    for record in result.rounds:
        assert sim.board_reader.digest_of(record.round, MessageKind.UPDATE, target) is not None
    self_posts = [e for e in result.evidence if e.kind is EvidenceKind.SERVER_SILENT]
    assert {e.finder_index for e in self_posts} == {TARGET}
    assert all(sender_of(sim, e.tx_id) == target for e in self_posts)
    # Because the target's update reached the board, every other voter could score it.
    for record in result.rounds:
        for i, voter in enumerate(sim.session.participants):
            if i != TARGET:
                assert sim.consensus_reader.ballot_of(record.round, voter).scores[TARGET] != ABSTAIN


def test_a_participant_the_server_never_contacts_takes_part_through_the_chain(data) -> None:
    sim, result = simulate(data, attack("silence"), rounds=1)
    target = sim.session.participants[TARGET]

    record = result.rounds[0]
    assert record.ballots == N
    update_tx = next(tx for rec, tx in sim.board_reader.records() if rec.author == target)
    assert sender_of(sim, update_tx) == target
    assert sender_of(sim, sim.consensus_reader.ballot_of(1, target).tx_hash) == target
    assert {e.kind for e in result.evidence if e.finder_index == TARGET} == {EvidenceKind.SERVER_SILENT}


def test_a_ballot_the_server_holds_back_is_submitted_by_its_voter(data) -> None:
    sim, result = simulate(data, attack("select-ballots"))
    target = sim.session.participants[TARGET]

    for record in result.rounds:
        assert record.ballots == N
        ballot = sim.consensus_reader.ballot_of(record.round, target)
        assert ballot is not None and sender_of(sim, ballot.tx_hash) == target


def test_a_server_that_never_tallies_cannot_hold_the_election_open(data) -> None:
    sim, result = simulate(data, attack("never-tally"))

    assert len(result.rounds) == 2
    for record in result.rounds:
        election = sim.consensus_reader.election_record(record.round)
        assert election is not None and election.candidates == record.candidates
        assert sender_of(sim, election.tx_hash) in sim.session.participants
    assert result.evidence == []  # nothing went wrong that a participant had to prove


def test_a_server_that_asks_one_voter_to_score_cannot_keep_the_others_from_voting(data) -> None:
    # The server no longer decides who assesses whom: every voter reads every revealed update from
    # the board itself, and votes on its own when the server does not ask.
    sim, result = simulate(data, attack("starve-voters"))
    honest_sim, honest = simulate(data)

    for record, same in zip(result.rounds, honest.rounds, strict=True):
        assert record.ballots == N and record.candidates == same.candidates
        _, abstentions = sim.consensus_reader.totals_of(record.round)
        assert not any(abstentions)
    assert (sim.server.params == honest_sim.server.params).all()
    starved = {e.finder_index for e in result.evidence if e.kind is EvidenceKind.SERVER_SILENT}
    assert starved == set(range(N)) - {TARGET}


def test_a_misreported_ballot_is_replaced_by_the_voters_own(data) -> None:
    sim, result = simulate(data, attack("misreport-scores"))
    target = sim.session.participants[TARGET]

    for record in result.rounds:
        ballot = sim.consensus_reader.ballot_of(record.round, target)
        assert sender_of(sim, ballot.tx_hash) == target
        own = sim.participants[TARGET]._own_evaluation if record.round == 2 else None
        if own is not None:
            assert ballot.digest == own.digest()


def test_model_bytes_the_servers_statement_does_not_cover_are_not_used(data) -> None:
    # The target is handed altered model bytes under a statement that signs the board's digest: it
    # ignores them and trains from the model it computed itself from the board; nothing changes.
    sim, result = simulate(data, attack("tamper-unsigned"))
    honest_sim, honest = simulate(data)

    assert result.evidence == []
    assert [r.candidates for r in result.rounds] == [r.candidates for r in honest.rounds]
    assert (sim.server.params == honest_sim.server.params).all()


def test_a_participant_that_tallies_first_does_not_crash_the_honest_server(data) -> None:
    sim, _ = simulate(data, rounds=0)
    server, send = sim.server, InMemoryTransport(sim.participants).send_and_receive
    server.train_phase(1, send)
    for p in sim.participants:
        p.after_commitments(1)  # each reveals its own update on the board
    server.evaluate_phase(1, send)
    early = sim.participants[0].consensus.tally(1, n=N)

    election = server.close_election(1)

    assert election is not None and election.candidates == early.candidates
    outcome = server.publish_phase(1, election)
    assert outcome.candidates == early.candidates
    assert all(p.after_model(1) for p in sim.participants)
    assert all(p.evidence == [] for p in sim.participants)


class RepeatingServer(ParameterServer):
    """After collecting the ballots, asks for the round's update again and then for a second
    ballot, hoping to hold two signed updates or ballots to choose from."""

    def evaluate_phase(self, round_, send_and_receive):  # type: ignore[no-untyped-def]
        def twice(requests):  # type: ignore[no-untyped-def]
            first = send_and_receive(requests)
            if requests and all(isinstance(r, EvaluateRequest) for r in requests.values()):
                retrain = {i: TrainRequest(round_, *self.deliver_model(i, round_ - 1)) for i in requests}
                self.updates = {i: reply.commitment for i, reply in send_and_receive(retrain).items()}
                second = send_and_receive(requests)
                self.ballots = {i: (first[i].message, second[i].message) for i in first}
            return first

        super().evaluate_phase(round_, twice)


def test_a_participant_asked_twice_signs_one_update_and_one_ballot_per_round(data) -> None:
    sim, _ = simulate(data, RepeatingServer, rounds=1)

    assert all(first == again for first, again in sim.server.ballots.values())  # the same signed ballot
    for i, commitment in sim.server.updates.items():
        author = sim.session.participants[i]
        assert commitment.digest == sim.board_reader.digest_of(1, MessageKind.UPDATE, author)

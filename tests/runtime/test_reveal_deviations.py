"""Issue 22's deviations, each mounted in a whole session: nothing that decides an election passes
only through the server, and no party can get another convicted for its own failure."""

from __future__ import annotations

from seccl.chain.bulletin_board import MessageKind
from seccl.election import ABSTAIN
from seccl.protocol.evidence import EvidenceKind
from seccl.protocol.verification import Status
from seccl.roles.participant import Participant
from seccl.runs.audit_report import FindingCheck
from tests.sessions import TARGET, N, attack, simulate

CHEAT = 2


class EarlyPoster(Participant):
    """Posts its own commitment before it answers the server, hoping the server's relay fails and
    the server gets blamed for what follows."""

    def _train_steps(self, round_):  # type: ignore[no-untyped-def]
        signed = yield from super()._train_steps(round_)
        if self.index == CHEAT and signed is not None:
            self.board.post_update(round_, self.address, signed.digest(), signed.signature)
        return signed


class Concealer(Participant):
    """Commits its update and never reveals it, hoping the others find it withheld by the server."""

    def after_commitments(self, round_: int) -> None:
        if self.index != CHEAT:
            super().after_commitments(round_)


def _confirmed_against(result) -> list[str]:  # type: ignore[no-untyped-def]
    """Whom each confirmed finding of ``result`` is against, as the audit states it."""
    return [
        FindingCheck(e, v, v.status.value).against
        for e, v in zip(result.evidence, result.verdicts, strict=True)
        if v.status is Status.CONFIRMED
    ]


def test_a_participant_posting_its_own_commitment_first_cannot_get_the_server_convicted(data) -> None:
    sim, result = simulate(data, participant_factory=EarlyPoster)
    honest_sim, honest = simulate(data)

    assert _confirmed_against(result) == []
    cheat = sim.session.participants[CHEAT]
    for record, same in zip(result.rounds, honest.rounds, strict=True):
        info = sim.board_reader.round_info(record.round)
        assert info.has_revealed(CHEAT) and CHEAT in info.eligible  # it takes part as usual
        assert record.candidates == same.candidates
    early = [r for r in result.rejections if r.author == cheat]
    assert {r.error for r in early} <= {"BulletinAlreadyPosted"}  # the relay failed: no receipt either
    assert (sim.server.params == honest_sim.server.params).all()


def test_a_commitment_never_revealed_is_its_authors_failure_on_the_chain_alone(data) -> None:
    sim, result = simulate(data, participant_factory=Concealer)

    assert len(result.rounds) == 2
    missing = [e for e in result.evidence if e.kind is EvidenceKind.UPDATE_NOT_REVEALED]
    assert {e.finder_index for e in missing} == set(range(N)) - {CHEAT}
    assert set(_confirmed_against(result)) == {f"participant {CHEAT}"}  # never the server
    cheat = sim.session.participants[CHEAT]
    for record in result.rounds:
        info = sim.board_reader.round_info(record.round)
        assert info.has_update(CHEAT) and not info.has_revealed(CHEAT)
        assert CHEAT not in info.eligible and CHEAT not in record.candidates
        assert record.ballots == N  # the ballots opened at the reveal deadline; everyone voted
        assert cheat not in sim.board_reader.revealed_updates(record.round, sim.first_block)


def test_a_participant_the_server_never_contacts_reads_everything_from_the_chain_every_round(data) -> None:
    sim, result = simulate(data, attack("silence"), rounds=3)
    target = sim.session.participants[TARGET]

    assert len(result.rounds) == 3
    for record in result.rounds:
        r = record.round
        info = sim.board_reader.round_info(r)
        assert TARGET in info.eligible  # committed and revealed by itself
        assert record.ballots == N
        ballot = sim.consensus_reader.ballot_of(r, target)
        # It scored every other update, read from the chain, not abstained.
        assert all(ballot.scores[j] != ABSTAIN for j in range(N) if j != TARGET)
        revealed = sim.board_reader.revealed_updates(r, sim.first_block)[target]
        assert sim.board_reader.digest_of(r, MessageKind.UPDATE, target) == revealed.digest
    assert _confirmed_against(result) == []


def test_an_honest_run_has_every_update_revealed_and_a_tie_seed_from_every_salt(data) -> None:
    sim, result = simulate(data)

    assert result.evidence == []
    for record in result.rounds:
        revealed = sim.board_reader.revealed_updates(record.round, sim.first_block)
        assert len(revealed) == N
        seed = bytes(32)
        for found in revealed.values():
            seed = bytes(a ^ b for a, b in zip(seed, found.message[34:66], strict=True))
        assert sim.board_reader.tie_seed_of(record.round) == seed

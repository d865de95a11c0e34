"""`seccl audit`: re-verifies a run from the chain and its stored messages alone.

Neither the server's records nor the participants' are trusted: every stored message must hash
to the digest its author signed on the chain, every counted ballot must be a stored signed
evaluation, every election must equal the reference Borda tally of the counted ballots, and
every model must be exactly the aggregate of the elected candidates' stored updates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from seccl.chain.consensus import ConsensusClient
from seccl.election import borda_tally
from seccl.learning.aggregation import aggregate
from seccl.protocol.errors import ProtocolError
from seccl.protocol.messages import ModelMessage, UpdateMessage, decode_message
from seccl.protocol.session import SessionInfo
from seccl.runtime.archive import RunArchive


@dataclass
class RoundAudit:
    """What one round's audit checked, and every discrepancy it found."""

    round: int
    checked: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def count(self, what: str) -> None:
        self.checked[what] = self.checked.get(what, 0) + 1

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        figures = ", ".join(f"{n} {what}" for what, n in self.checked.items())
        if self.ok:
            return f"round {self.round}: ok ({figures})"
        return f"round {self.round}: {len(self.problems)} problem(s) ({figures})\n" + "\n".join(
            f"  - {p}" for p in self.problems
        )


def audit_session(
    session: SessionInfo,
    board: BulletinBoardClient,
    consensus: ConsensusClient,
    archive: RunArchive,
    *,
    aggregation: str,
) -> list[RoundAudit]:
    """Audit every round of the session, from round 0 (θ_0) to the last model on the board."""
    last = board.current_round() - 1  # every round before the open one has its model posted
    audits = [_audit_initial_model(session, board, archive)]
    for r in range(1, last + 1):
        audits.append(_audit_round(r, session, board, consensus, archive, aggregation))
    return audits


def _audit_initial_model(session: SessionInfo, board: BulletinBoardClient, archive: RunArchive) -> RoundAudit:
    audit = RoundAudit(0)
    recorded = board.digest_of(0, MessageKind.MODEL, session.server)
    stored = archive.get(recorded) if recorded else None
    if stored is None:
        audit.problems.append("θ_0, recorded on the board, is missing from the store")
    else:
        audit.count("models")
    return audit


def _audit_round(
    r: int,
    session: SessionInfo,
    board: BulletinBoardClient,
    consensus: ConsensusClient,
    archive: RunArchive,
    aggregation: str,
) -> RoundAudit:
    audit = RoundAudit(r)
    domain = session.domain
    # 1. Every record of the round on the chain is a stored message under its author's signature.
    updates: dict[int, bytes] = {}
    for i, digest in enumerate(board.updates_of(r)):
        if digest is None:
            continue
        stored = archive.get(digest)
        author = session.participants[i]
        if stored is None:
            audit.problems.append(
                f"participant {i}'s update {_hex(digest)} is on the board but not in the store"
            )
            continue
        if domain.signer(r, int(MessageKind.UPDATE), digest, stored.signed.signature) != author:
            audit.problems.append(f"participant {i}'s stored update is not signed by its author {author}")
            continue
        updates[i] = stored.signed.data
        audit.count("updates")
    ballots = {}
    for ballot in consensus.ballots_of(r):
        index = session.participants.index(ballot.voter)
        stored = archive.get(ballot.digest)
        if stored is None or stored.kind is not MessageKind.EVALUATION:
            audit.problems.append(
                f"participant {index}'s counted ballot {_hex(ballot.digest)} is not in the store"
            )
        elif (
            domain.signer(r, int(MessageKind.EVALUATION), ballot.digest, stored.signed.signature)
            != ballot.voter
        ):
            audit.problems.append(f"participant {index}'s stored evaluation is not signed by it")
        else:
            audit.count("ballots")
        ballots[index] = ballot.scores
    # 2. The election is the reference Borda tally of the counted ballots.
    elected = consensus.elected_of(r)
    eligible = board.round_info(r).eligible
    reference = borda_tally(
        ballots, session.n, session.candidates, tie_seed=session.tie_seed, round_=r, eligible=eligible
    ).candidates
    if tuple(reference) != tuple(elected):
        audit.problems.append(
            f"the contract elected {list(elected)}; the reference tally elects {list(reference)}"
        )
    else:
        audit.count("elections")
    # 3. θ_r is exactly the aggregate of θ_{r-1} and the elected candidates' stored updates.
    previous_digest = board.digest_of(r - 1, MessageKind.MODEL, session.server)
    recorded = board.digest_of(r, MessageKind.MODEL, session.server)
    previous = archive.get(previous_digest) if previous_digest else None
    model = archive.get(recorded) if recorded else None
    if previous is None or model is None:
        missing = "θ_{r-1}" if previous is None else "θ_r"
        audit.problems.append(f"{missing}, recorded on the board, is missing from the store")
        return audit
    if domain.signer(r, int(MessageKind.MODEL), recorded, model.signed.signature) != session.server:  # type: ignore[arg-type]
        audit.problems.append("the stored model of the round is not signed by the server")
    before = decode_message(previous.signed.data, dimension=session.dimension)
    assert isinstance(before, ModelMessage)
    chosen = []
    for c in elected:
        if c not in updates:
            audit.problems.append(f"elected candidate {c} has no stored update")
            continue
        try:
            message = decode_message(updates[c], **session.bounds())
        except ProtocolError:
            continue  # an invalid recorded update is left out of the aggregate by every party
        if isinstance(message, UpdateMessage):
            chosen.append(message.update)
    expected = ModelMessage(r, session.server, aggregate(before.params, chosen, rule=aggregation))
    if expected.digest() != recorded:
        audit.problems.append(
            f"θ_{r} on the board ({_hex(recorded)}) is not the aggregate of the elected candidates' "
            f"stored updates ({_hex(expected.digest())})"
        )
    else:
        audit.count("models")
    return audit


def _hex(digest: bytes | None) -> str:
    return "none" if digest is None else "0x" + digest.hex()[:16] + "…"

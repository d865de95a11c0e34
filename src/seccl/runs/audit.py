"""`seccl audit`: re-verifies a run from the chain and its stored messages alone.

Neither the server's records nor the participants' are trusted: every stored message must hash
to the digest its author signed on the chain, every counted ballot must be a stored signed
evaluation, every election must equal the reference Borda tally of the counted ballots, and
every model must be exactly the aggregate of the elected candidates' stored updates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from seccl.chain.consensus import ConsensusClient
from seccl.election import borda_tally
from seccl.learning.aggregation import aggregate
from seccl.protocol.archive import ArchivedMessage, RunArchive
from seccl.protocol.errors import ProtocolError
from seccl.protocol.evidence import Evidence
from seccl.protocol.messages import ModelMessage, UpdateMessage, decode_message
from seccl.protocol.session import SessionInfo
from seccl.protocol.verification import Status, Verdict


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


def _fetch(archive: RunArchive, digest: bytes | None, audit: RoundAudit, what: str) -> ArchivedMessage | None:
    """The stored message the chain records as ``digest``, if its bytes hash to it; else None,
    with the discrepancy named (missing, or altered since it was stored)."""
    if digest is None:
        audit.problems.append(f"{what} is not on the board")
        return None
    stored = archive.get(digest)
    if stored is None:
        audit.problems.append(f"{what} {_hex(digest)} is on the chain but missing from the store")
        return None
    if stored.signed.digest() != digest:
        audit.problems.append(
            f"{what}: the stored bytes hash to {_hex(stored.signed.digest())}, "
            f"not to the chain's {_hex(digest)}"
        )
        return None
    return stored


def _audit_initial_model(session: SessionInfo, board: BulletinBoardClient, archive: RunArchive) -> RoundAudit:
    audit = RoundAudit(0)
    recorded = board.digest_of(0, MessageKind.MODEL, session.server)
    if _fetch(archive, recorded, audit, "θ_0") is not None:
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
    # 1. Every record of the round on the chain is a stored message under its author's signature,
    # stored with the Tx-ID that recorded it.
    recorded_in = {record.digest: tx for record, tx in board.records(round_=r)}
    recorded_in.update({b.digest: b.tx_hash for b in consensus.ballots_of(r)})

    def check_tx(stored: ArchivedMessage, what: str) -> None:
        chain_tx = recorded_in.get(stored.signed.digest())
        if chain_tx is not None and (stored.tx_id or "").lower() != chain_tx.lower():
            audit.problems.append(
                f"{what} is stored with Tx-ID {stored.tx_id}, but the chain recorded it in {chain_tx}"
            )

    updates: dict[int, bytes] = {}
    for i, digest in enumerate(board.updates_of(r)):
        if digest is None:
            continue
        author = session.participants[i]
        stored = _fetch(archive, digest, audit, f"participant {i}'s update")
        if stored is None:
            continue
        if domain.signer(r, int(MessageKind.UPDATE), digest, stored.signed.signature) != author:
            audit.problems.append(f"participant {i}'s stored update is not signed by its author {author}")
            continue
        updates[i] = stored.signed.data
        check_tx(stored, f"participant {i}'s update")
        audit.count("updates")
    ballots = {}
    for ballot in consensus.ballots_of(r):
        index = session.participants.index(ballot.voter)
        stored = _fetch(archive, ballot.digest, audit, f"participant {index}'s counted ballot")
        if stored is None:
            pass
        elif (
            domain.signer(r, int(MessageKind.EVALUATION), ballot.digest, stored.signed.signature)
            != ballot.voter
        ):
            audit.problems.append(f"participant {index}'s stored evaluation is not signed by it")
        else:
            check_tx(stored, f"participant {index}'s counted ballot")
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
    previous = _fetch(archive, previous_digest, audit, f"θ_{r - 1}")
    model = _fetch(archive, recorded, audit, f"θ_{r}")
    if previous is None or model is None or recorded is None:
        return audit
    if domain.signer(r, int(MessageKind.MODEL), recorded, model.signed.signature) != session.server:
        audit.problems.append("the stored model of the round is not signed by the server")
    check_tx(model, f"θ_{r}")
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


@dataclass
class AuditReport:
    """A whole run's audit: each round's checks, and the verdict on each finding."""

    rounds: list[RoundAudit]
    findings: list[tuple[Evidence, Verdict]]

    @property
    def ok(self) -> bool:
        refuted = any(v.status is Status.REFUTED for _, v in self.findings)
        return all(r.ok for r in self.rounds) and not refuted

    def lines(self) -> list[str]:
        out = [r.summary() for r in self.rounds]
        for evidence, verdict in self.findings:
            out.append(f"finding {verdict.status.upper()}: {evidence.summary()} ({verdict.reason})")
        problems = sum(len(r.problems) for r in self.rounds)
        refuted = sum(v.status is Status.REFUTED for _, v in self.findings)
        if self.ok:
            out.append(
                f"AUDIT PASSED: {len(self.rounds) - 1} rounds, every stored message, ballot, election "
                f"and model matches the chain; {len(self.findings)} findings checked"
            )
        else:
            out.append(f"AUDIT FAILED: {problems} discrepancies, {refuted} refuted findings")
        return out


def audit_run(path: Path, *, url: str | None = None) -> AuditReport:
    """Audit the run directory ``path`` from its chain and its archive alone."""
    from seccl.runs.launch import ARCHIVE_NAME
    from seccl.runs.verify import RunFiles, VerifyError, check_findings, load_findings, open_session

    files = RunFiles.locate(path)
    store = files.chain.parent / ARCHIVE_NAME
    if not store.is_file():
        raise VerifyError(f"{store} does not exist: the run stored no messages to audit")
    findings = load_findings(files.evidence)
    with open_session(files, url) as chain, RunArchive(store) as archive:
        rounds = audit_session(
            chain.session, chain.board, chain.consensus, archive, aggregation=chain.aggregation
        )
        audit_model_files(files.chain.parent / "models", chain.session, chain.board, rounds)
        return AuditReport(rounds, check_findings(findings, chain))


def audit_model_files(
    models: Path, session: SessionInfo, board: BulletinBoardClient, rounds: list[RoundAudit]
) -> None:
    """The ``state_dict`` files users load must hold the models the board records: each
    ``round-NNNN.pt`` that round's θ, and ``final.pt`` the last one."""
    import torch

    from seccl.learning.model import build_model, get_flat_params

    last = rounds[-1].round if rounds else 0
    named = [(a, models / f"round-{a.round:04d}.pt") for a in rounds]
    if rounds and last > 0:
        named.append((rounds[-1], models / "final.pt"))
    for audit, path in named:
        recorded = board.digest_of(audit.round, MessageKind.MODEL, session.server)
        if not path.is_file():
            audit.problems.append(f"{path.name} is missing from {models}")
            continue
        try:
            net = build_model(0)
            net.load_state_dict(torch.load(path, weights_only=True))
            params = get_flat_params(net)
        except Exception as exc:  # not a state_dict of the model: say so, whatever it is
            audit.problems.append(f"{path.name} is not a state_dict of the session's model ({exc})")
            continue
        held = ModelMessage(audit.round, session.server, params).digest()
        if held != recorded:
            audit.problems.append(
                f"{path.name} holds a model hashing to {_hex(held)}, not θ_{audit.round} on the board "
                f"({_hex(recorded)})"
            )
        else:
            audit.count("model files")

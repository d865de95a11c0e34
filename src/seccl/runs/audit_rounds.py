"""The round-by-round half of `seccl audit`: every stored message against the chain.

Neither the server's records nor the participants' are trusted: every stored message must hash
to the digest its author signed on the chain, every counted ballot must be a stored signed
evaluation, every election must equal the reference Borda tally of the counted ballots, and
every model must be exactly the aggregate of the elected candidates' stored updates.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from seccl.chain.consensus import ElectionClient
from seccl.chain.gram_gate_consensus import GramGateConsensusClient
from seccl.election import borda_tally
from seccl.election.gram_gate import HISTORY_ROUNDS, filter_updates, gram_gate_tally
from seccl.learning.aggregation import aggregate
from seccl.protocol.archive import ArchivedMessage, RunArchive
from seccl.protocol.eligible import eligible_updates
from seccl.protocol.envelope import SignedMessage
from seccl.protocol.errors import ProtocolError
from seccl.protocol.evidence import EvidenceKind
from seccl.protocol.messages import ModelMessage, UpdateMessage, decode_message
from seccl.protocol.session import SessionInfo


@dataclass
class RoundAudit:
    """What one round's audit checked, and every discrepancy it found.

    ``explainable`` pairs a problem with the kind of finding that, confirmed, shows it to be the
    server's deviation faithfully recorded (a model that is not the aggregate, caught by the
    participants) rather than a record that was altered afterwards.
    """

    round: int
    checked: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    explainable: list[tuple[str, EvidenceKind]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, what: str, n: int = 1) -> None:
        self.checked[what] = self.checked.get(what, 0) + n

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, explained: dict[str, str] | None = None) -> str:
        """The round in lines; ``explained``: problems a confirmed finding records (the server's
        deviation, caught), shown as such rather than as discrepancies."""
        explained = explained or {}
        figures = ", ".join(f"{n} {what}" for what, n in self.checked.items())
        open_problems = [p for p in self.problems if p not in explained]
        lines = [f"  - {p}" for p in open_problems]
        lines += [f"  - caught (a confirmed {kind} finding records it): {p}" for p, kind in explained.items()]
        lines += [f"  - note: {n}" for n in self.notes]
        head = (
            f"round {self.round}: ok ({figures})"
            if not open_problems
            else (f"round {self.round}: {len(open_problems)} problem(s) ({figures})")
        )
        return "\n".join([head, *lines])


class ReadOnlyArchive(RunArchive):
    """A run's ``messages.sqlite`` (or a participant's journal) opened for reading only: an audit
    never writes to what it audits. Without a write-ahead log beside it (a run that ended) the
    file is opened immutable, so not even SQLite's lock files appear next to it."""

    def __init__(self, path: Path):  # no super().__init__: that one creates and writes
        self.path = Path(path)
        wal = self.path.with_name(self.path.name + "-wal")
        mode = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
        self._db = sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?{mode}", uri=True)
        self._db.execute("SELECT digest, round, kind, author, data, signature, tx_id FROM messages LIMIT 1")

    def rows(self) -> list[tuple[bytes, ArchivedMessage]]:
        """Every stored message with the digest it is stored under, by round and kind."""
        query = (
            "SELECT digest, round, kind, author, data, signature, tx_id FROM messages ORDER BY round, kind"
        )
        return [
            (
                bytes(digest),
                ArchivedMessage(
                    int(round_), MessageKind(kind), str(author), SignedMessage(bytes(data), bytes(sig)), tx_id
                ),
            )
            for digest, round_, kind, author, data, sig, tx_id in self._db.execute(query)
        ]


def audit_session(
    session: SessionInfo,
    board: BulletinBoardClient,
    consensus: ElectionClient,
    archive: RunArchive,
    *,
    aggregation: str,
    initial_params: np.ndarray | None = None,
    require_tx_ids: bool = True,
) -> list[RoundAudit]:
    """Audit every round of the session, from round 0 (θ_0) to the last model on the board.

    ``initial_params``: θ_0 as the session's public seed defines it, for records that do not store
    θ_0 (a deployment's server); it must hash to the θ_0 the board records. ``require_tx_ids``:
    every stored message the chain records must carry its Tx-ID (a run directory's store does;
    a deployment's server notes only those of the messages it posted itself)."""
    last = board.current_round() - 1  # every round before the open one has its model posted
    context = _Context(session, board, archive, initial_params, require_tx_ids)
    audits = [_audit_initial_model(context)]
    for r in range(1, last + 1):
        audits.append(_audit_round(r, context, consensus, aggregation))
    return audits


def audit_elections(
    session: SessionInfo, board: BulletinBoardClient, consensus: ElectionClient
) -> list[RoundAudit]:
    """Each finished round's election against the reference tally (Borda or gram-gate) of the ballots the
    contract counted: what can be checked from the chain alone (a participant's records hold
    only its own messages)."""
    audits = []
    for r in range(1, board.current_round()):
        audit = RoundAudit(r)
        ballots = {session.participants.index(b.voter): b.scores for b in consensus.ballots_of(r)}
        _check_election(r, session, board, consensus, ballots, audit)
        audits.append(audit)
    return audits


@dataclass(frozen=True)
class _Context:
    session: SessionInfo
    board: BulletinBoardClient
    archive: RunArchive
    initial_params: np.ndarray | None
    require_tx_ids: bool


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


def _model_params(context: _Context, r: int, audit: RoundAudit) -> np.ndarray | None:
    """θ_r's parameters: the stored model the board records, or (θ_0 only, when not stored) the
    one the session's seed defines, if it hashes to the board's θ_0."""
    session, board = context.session, context.board
    recorded = board.digest_of(r, MessageKind.MODEL, session.server)
    derive = r == 0 and context.initial_params is not None and recorded is not None
    if derive and recorded is not None and context.archive.get(recorded) is None:
        assert context.initial_params is not None
        derived = ModelMessage(0, session.server, context.initial_params)
        if derived.digest() != recorded:
            audit.problems.append(
                f"θ_0 derived from the session's seed hashes to {_hex(derived.digest())}, "
                f"not to the board's {_hex(recorded)}"
            )
            return None
        return np.asarray(context.initial_params, dtype=np.float32)
    stored = _fetch(context.archive, recorded, audit, f"θ_{r}")
    if stored is None:
        return None
    try:
        decoded = decode_message(stored.signed.data, dimension=session.dimension)
    except ProtocolError as exc:
        audit.problems.append(f"θ_{r} on the board does not decode as a model ({type(exc).__name__})")
        return None
    if not isinstance(decoded, ModelMessage):
        audit.problems.append(f"θ_{r} on the board is not a model message")
        return None
    return decoded.params


def _audit_initial_model(context: _Context) -> RoundAudit:
    audit = RoundAudit(0)
    if _model_params(context, 0, audit) is not None:
        audit.count("models")
    return audit


def _audit_round(r: int, context: _Context, consensus: ElectionClient, aggregation: str) -> RoundAudit:
    session, board, archive = context.session, context.board, context.archive
    audit = RoundAudit(r)
    domain = session.domain
    # 1. Every record of the round on the chain is a stored message under its author's signature,
    # stored with the Tx-ID that recorded it.
    recorded_in = {record.digest: tx for record, tx in board.records(round_=r)}
    counted = consensus.ballots_of(r)
    recorded_in.update({b.digest: b.tx_hash for b in counted})
    unknown_tx = 0

    def check_tx(stored: ArchivedMessage, what: str) -> None:
        nonlocal unknown_tx
        chain_tx = recorded_in.get(stored.signed.digest())
        if chain_tx is None:
            return
        if not stored.tx_id:
            if context.require_tx_ids:
                audit.problems.append(
                    f"{what} is stored without its Tx-ID (the chain recorded it in {chain_tx})"
                )
            else:
                unknown_tx += 1
        elif stored.tx_id.lower() != chain_tx.lower():
            audit.problems.append(
                f"{what} is stored with Tx-ID {stored.tx_id}, but the chain recorded it in {chain_tx}"
            )

    updates: dict[int, bytes] = {}
    revealed = board.round_info(r).reveal_bitmap
    for i, digest in enumerate(board.updates_of(r)):
        if digest is None or not revealed >> i & 1:
            continue  # a commitment never revealed: its bytes exist nowhere (its author's failure)
        # The board checked the author's signature of the digest at the commitment, and that the
        # revealed bytes hash to it: stored bytes with that digest are the author's update.
        stored = _fetch(archive, digest, audit, f"participant {i}'s update")
        if stored is None:
            continue
        updates[i] = stored.signed.data
        check_tx(stored, f"participant {i}'s update")
        audit.count("updates")
    ballots = {}
    for ballot in counted:
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
    elected = _check_election(r, session, board, consensus, ballots, audit)
    # 3. θ_r is exactly the aggregate of θ_{r-1} and the elected candidates' stored updates.
    before = _model_params(context, r - 1, audit)
    recorded = board.digest_of(r, MessageKind.MODEL, session.server)
    model = _fetch(archive, recorded, audit, f"θ_{r}")
    if unknown_tx:
        audit.notes.append(f"{unknown_tx} stored message(s) carry no Tx-ID (the chain's events give them)")
    if before is None or model is None or recorded is None:
        return audit
    if domain.signer(r, int(MessageKind.MODEL), recorded, model.signed.signature) != session.server:
        audit.problems.append("the stored model of the round is not signed by the server")
    check_tx(model, f"θ_{r}")
    missing = [c for c in elected if c not in updates]
    if missing:
        audit.problems += [f"elected candidate {c} has no stored update" for c in missing]
        audit.notes.append(f"θ_{r} not recomputed: the store lacks an elected candidate's update")
        return audit
    chosen = []
    for c in elected:
        try:
            message = decode_message(updates[c], **session.bounds())
        except ProtocolError:
            continue  # an invalid recorded update is left out of the aggregate by every party
        if isinstance(message, UpdateMessage):
            chosen.append(message.update)
    expected = ModelMessage(r, session.server, aggregate(before, chosen, rule=aggregation))
    if expected.digest() != recorded:
        problem = (
            f"θ_{r} on the board ({_hex(recorded)}) is not the aggregate of the elected candidates' "
            f"stored updates ({_hex(expected.digest())})"
        )
        audit.problems.append(problem)
        audit.explainable.append((problem, EvidenceKind.MODEL_NOT_AGGREGATED))
    else:
        audit.count("models")
    return audit


def _check_election(
    r: int,
    session: SessionInfo,
    board: BulletinBoardClient,
    consensus: ElectionClient,
    ballots: dict[int, tuple[int, ...]],
    audit: RoundAudit,
) -> tuple[int, ...]:
    elected = consensus.elected_of(r)
    eligible = board.round_info(r).eligible
    seed = board.tie_seed_of(r)
    if isinstance(consensus, GramGateConsensusClient):
        mask = sum(1 << i for i in eligible)
        reference = gram_gate_tally(
            ballots, session.n, session.candidates, eligible=mask, tie_seed=seed, round_=r
        ).candidates
        _check_view(r, session, board, consensus, audit)
    else:
        reference = borda_tally(
            ballots, session.n, session.candidates, tie_seed=seed, round_=r, eligible=eligible
        ).candidates
    if tuple(reference) != tuple(elected):
        audit.problems.append(
            f"the contract elected {list(elected)}; the reference tally elects {list(reference)}"
        )
    else:
        audit.count("elections")
    return tuple(elected)


def _check_view(
    r: int,
    session: SessionInfo,
    board: BulletinBoardClient,
    consensus: GramGateConsensusClient,
    audit: RoundAudit,
) -> None:
    """The round's agreed view must be the gram-gate filter of the updates revealed on the board
    (this round's and the two before, for the coalition check): exact integers, so the audit
    recomputes it bit for bit on any machine."""
    agreed = consensus.agreed_view_of(r)
    if agreed is None:
        audit.notes.append(f"round {r}: no view had a majority of the roster, so nobody was elected")
        return
    rounds = range(max(1, r - HISTORY_ROUNDS + 1), r + 1)
    updates = [
        {j: (u.indices, u.values) for j, u in eligible_updates(session, board, t).items()} for t in rounds
    ]
    view = filter_updates(
        updates[-1],
        session.n,
        session.assumed_attackers,
        tie_seed=board.tie_seed_of(r),
        round_=r,
        history=updates[:-1],
    )
    if view.masks() != agreed[:2]:
        audit.problems.append(
            f"the agreed filter view (kept {agreed[0]:#x}, dropped {agreed[1]:#x}) is not the filter of "
            f"the revealed updates (kept {view.masks()[0]:#x}, dropped {view.masks()[1]:#x})"
        )
    else:
        audit.count("filter views")


def _hex(digest: bytes | None) -> str:
    return "none" if digest is None else "0x" + digest.hex()[:16] + "…"


def audit_model_files(
    models: Path,
    session: SessionInfo,
    board: BulletinBoardClient,
    rounds: list[RoundAudit],
    *,
    initial_file: bool = True,
) -> dict[int, np.ndarray]:
    """The ``state_dict`` files users load must hold the models the board records: each
    ``round-NNNN.pt`` that round's θ, and ``final.pt`` the last one (``initial_file``: the
    records keep θ_0 as ``round-0000.pt`` too). Returns each round's parameters from the files
    that hold the board's model, for the accuracy to be recomputed from."""
    import torch

    from seccl.learning.model import build_model, get_flat_params

    last = rounds[-1].round if rounds else 0
    named = [(a, models / f"round-{a.round:04d}.pt") for a in rounds if a.round or initial_file]
    if rounds and last > 0:
        named.append((rounds[-1], models / "final.pt"))
    held_models: dict[int, np.ndarray] = {}
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
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            audit.problems.append(f"{path.name} is not a state_dict of the session's model ({reason})")
            continue
        held = ModelMessage(audit.round, session.server, params).digest()
        if held != recorded:
            audit.problems.append(
                f"{path.name} holds a model hashing to {_hex(held)}, not θ_{audit.round} on the board "
                f"({_hex(recorded)})"
            )
        else:
            audit.count("model files")
            if path.name != "final.pt":
                held_models[audit.round] = params
    return held_models

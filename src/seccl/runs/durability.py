"""A run's durable record, written as its rounds end: every signed message with its Tx-ID, the
models, and the checkpoint a killed run resumes from (see :mod:`seccl.runs.checkpoint`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from seccl.chain.bulletin_board import MessageKind
from seccl.chain.transactions import TxReceipt
from seccl.protocol.archive import RunArchive
from seccl.protocol.envelope import SignedMessage
from seccl.protocol.evidence import Evidence
from seccl.protocol.session import session_from_dict, session_to_dict
from seccl.roles.server import Rejection, TxEntry
from seccl.runs.checkpoint import array_key, write_checkpoint
from seccl.runtime.establish import OpenSession
from seccl.runtime.results import round_record_from_dict, write_model_files
from seccl.runtime.simulation import Simulation


class RunRecorder:
    """The :class:`~seccl.runtime.simulation.RoundRecorder` of a run directory: the messages go
    to ``archive`` (also every participant's journal), the models to ``model_dir``, the
    checkpoints to ``checkpoint_dir``; whichever is None is not kept."""

    def __init__(
        self,
        archive: RunArchive | None = None,
        *,
        model_dir: Path | None = None,
        checkpoint_dir: Path | None = None,
    ):
        self.archive = archive
        self.model_dir = model_dir
        self.checkpoint_dir = checkpoint_dir

    @property
    def journal(self) -> RunArchive | None:
        return self.archive

    def archive_round(self, sim: Simulation, r: int) -> None:
        """Store every signed message of round ``r`` that any party holds, each with the Tx-ID
        the chain recorded it in, and the round's model as a ``state_dict`` file.

        Each party contributes what it signed or was handed (participants their own update and
        ballot, the server what it accepted and its model), so the record does not depend on any
        one party's honesty; ``seccl audit`` checks every stored message against the chain.
        """
        if self.archive is None:
            return
        board = sim.board_reader
        tx_of = {record.digest: tx for record, tx in board.records(round_=r)}
        tx_of.update({b.digest: b.tx_hash for b in sim.consensus_reader.ballots_of(r)} if r else {})
        held: list[tuple[MessageKind, SignedMessage | None]] = []
        for p in sim.participants:
            if p._round == r:
                held += [(MessageKind.UPDATE, p._own_update), (MessageKind.EVALUATION, p._own_evaluation)]
        # Every update the board revealed, as its transaction carried it (the commitment signed it).
        held += [
            (MessageKind.UPDATE, SignedMessage(u.message, b"")) for u in board.revealed_updates(r).values()
        ]
        model = sim.server.model_signed
        if board.digest_of(r, MessageKind.MODEL, sim.session.server) == model.digest():
            held.append((MessageKind.MODEL, model))
            if self.model_dir is not None:
                write_model_files(self.model_dir, r, model, sim.session.dimension)
        for kind, signed in held:
            if signed is not None:
                tx = tx_of.get(signed.digest())
                self.archive.put(r, kind, signed, tx)
                if tx is not None:
                    self.archive.correct_tx(signed.digest(), tx)  # the chain's word, after a crash

    def checkpoint(self, sim: Simulation, r: int) -> None:
        """Make round ``r`` survive a crash: save the chain first (so it is never behind the
        checkpoint), then commit every party's state (see :mod:`seccl.runs.checkpoint`)."""
        persist = getattr(sim.backend, "persist", None)
        if persist is not None:
            persist()
        if self.checkpoint_dir is None:
            return
        arrays: dict[str, np.ndarray] = {}

        def keep(array: np.ndarray | None) -> str | None:
            if array is None:
                return None
            key = array_key(array)
            arrays[key] = np.asarray(array, dtype=np.float32)
            return key

        participants = []
        for p in sim.participants:
            trusted, board = p.state()
            participants.append(
                {
                    "trusted": keep(trusted),
                    "board_round": None if board is None else board[0],
                    "board": None if board is None else keep(board[1]),
                    "evidence": [e.to_dict() for e in p.evidence],
                }
            )
        model = sim.server.model_signed
        arrays["server_model_data"] = np.frombuffer(model.data, dtype=np.uint8)
        arrays["server_model_signature"] = np.frombuffer(model.signature, dtype=np.uint8)
        state = {
            "session": session_to_dict(sim.session),
            "first_block": sim.first_block,
            "deployment": [asdict(t) for t in sim.deployment],
            "funding": [asdict(t) for t in sim.funding],
            "server": {"params": keep(sim.server.params)},
            "participants": participants,
            "records": [asdict(record) for record in sim.records],
            "evidence": [e.to_dict() for e in sim.evidence],
            "rejections": [asdict(x) for x in sim.server.rejections],
            "transactions": [asdict(x) for x in sim.server.transactions],
            "initial_accuracy": sim.initial_accuracy,
            "stopped": sim.stopped,
        }
        write_checkpoint(self.checkpoint_dir, r, state, arrays)


def checkpointed_session(document: dict[str, Any]) -> OpenSession:
    """The session a checkpoint's run opened, for the simulation that takes it over."""
    return OpenSession(
        session=session_from_dict(document["session"]),
        first_block=int(document["first_block"]),
        deployment=[TxReceipt(**r) for r in document["deployment"]],
        funding=[TxReceipt(**r) for r in document["funding"]],
    )


def restore(sim: Simulation, document: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Every party as it stood at the checkpoint's round; the next round replays from there."""
    r = int(document["round"])

    def array(key: str | None) -> np.ndarray | None:
        return None if key is None else arrays[key]

    for p, state in zip(sim.participants, document["participants"], strict=True):
        board = None if state["board"] is None else (int(state["board_round"]), arrays[state["board"]])
        p.restore(r, array(state["trusted"]), board, [Evidence.from_dict(e) for e in state["evidence"]])
    server = sim.server
    server.params = np.asarray(arrays[document["server"]["params"]], dtype=np.float32).copy()
    server.model_signed = SignedMessage(
        arrays["server_model_data"].tobytes(), arrays["server_model_signature"].tobytes()
    )
    server.rejections = [Rejection(**x) for x in document["rejections"]]
    server.transactions = [TxEntry(**x) for x in document["transactions"]]
    sim.records = [round_record_from_dict(x) for x in document["records"]]
    sim.evidence = [Evidence.from_dict(e) for e in document["evidence"]]
    sim.initial_accuracy = document["initial_accuracy"]
    sim.stopped = bool(document["stopped"])
    sim.start_round = r + 1

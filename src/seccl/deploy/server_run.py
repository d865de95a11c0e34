"""The parameter server of a deployment: the same :class:`ParameterServer` (or a malicious one)
as in the simulation, driving its phases through a :class:`FlowerTransport`, with its records kept
in its own directory as it goes: every message it holds (``messages.sqlite``), each round's model
from θ_0 on (``models/round-NNNN.pt``, ``final.pt``), its own account of the rounds and the
dropouts (``run.json``, ``dropouts.json``, ``server.log``). A :class:`ServerRecorder` adds more;
the Flower ServerApp (:mod:`seccl.runs.deployment`) gives it the records a simulated run writes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from seccl.chain.accounts import load_keystore, signing_connection
from seccl.chain.backends import RpcChain
from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind, RoundInfo
from seccl.chain.session import CONSENSUS_CLIENTS, verify_session
from seccl.deploy.data_files import read_dataset_file
from seccl.deploy.flower_transport import Dropout, FlowerTransport
from seccl.deploy.session_file import SessionFile
from seccl.files import atomic_write_bytes
from seccl.learning.data import Dataset
from seccl.learning.evaluation import TEST_BATCH, Evaluator
from seccl.learning.model import build_model, get_flat_params
from seccl.protocol.archive import RunArchive
from seccl.protocol.envelope import SignedMessage
from seccl.roles.adversaries.server import SERVER_ATTACKS, TargetedServer
from seccl.roles.server import ParameterServer, RoundOutcome
from seccl.runtime.results import write_model_files

Scores = tuple[float, float]  # a model's (accuracy, macro-F1) on the test set


class ServerRecorder(Protocol):
    """What a deployment's server records beyond its own, told of each step as it happens: the
    start (round 0: θ_0 with its scores, when there is a test set), each round (its outcome, its
    time, its scores) and the end; :class:`seccl.runs.deployment.DeploymentRecords` implements it."""

    def start(self, server: DeployedServer) -> None: ...

    def round_done(
        self, server: DeployedServer, outcome: RoundOutcome, seconds: float, scores: Scores | None
    ) -> None: ...

    def finish(self, server: DeployedServer) -> None: ...


class ServerConfigError(ValueError):
    """The ServerApp's run config does not name what the server needs, or names it wrongly."""


@dataclass(frozen=True)
class ServerConfig:
    """The ServerApp's run config (``flwr run … --run-config``)."""

    session_file: Path
    key_file: Path
    passphrase_file: Path
    chain_url: str
    out_dir: Path
    # The least a participant is waited for before it is skipped for the phase (more while the
    # chain still takes its message, or when earlier answers were slow: seccl.deploy.patience).
    phase_timeout: float = 120.0
    join_timeout: float = 120.0  # how long to wait for every participant before round 1
    test_data: Path | None = None  # a held-out set to report accuracy on (trials only)
    server_attack: str | None = None  # a malicious server, for trials of the participants' checks
    attack_target: int = 0
    # What a ServerRecorder's records may say of the consortium's data and l (the chain fixes N, M
    # and the seed, not these): the data set the test set comes from, each participant's share, l.
    dataset: str = "mnist"
    per_participant: int | None = None
    candidate_fraction: float | None = None  # None: M/N, the fraction that gives the chain's M

    @classmethod
    def from_run_config(cls, raw: Mapping[str, Any]) -> ServerConfig:
        required = ("session", "server-key", "passphrase-file", "chain-url", "out-dir")
        missing = [k for k in required if not str(raw.get(k, "")).strip()]
        if missing:
            raise ServerConfigError(
                f"the run config lacks {', '.join(missing)} (needs {', '.join(required)})"
            )
        attack = str(raw.get("server-attack", "")).strip() or None
        if attack is not None and attack not in SERVER_ATTACKS:
            raise ServerConfigError(f"server-attack: got {attack!r}; allowed: {', '.join(SERVER_ATTACKS)}")
        test = str(raw.get("test-data", "")).strip()
        per_participant = int(raw.get("per-participant", 0))
        fraction = float(raw.get("candidate-fraction", 0.0))
        return cls(
            session_file=Path(str(raw["session"])),
            key_file=Path(str(raw["server-key"])),
            passphrase_file=Path(str(raw["passphrase-file"])),
            chain_url=str(raw["chain-url"]),
            out_dir=Path(str(raw["out-dir"])),
            phase_timeout=float(raw.get("phase-timeout", 120.0)),
            join_timeout=float(raw.get("join-timeout", 120.0)),
            test_data=Path(test) if test else None,
            server_attack=attack,
            attack_target=int(raw.get("attack-target", 0)),
            dataset=str(raw.get("dataset", "")).strip() or "mnist",
            per_participant=per_participant if per_participant > 0 else None,
            candidate_fraction=fraction if fraction > 0 else None,
        )


class DeployedServer:
    """Runs a session's rounds over Flower from the server's side, and records them."""

    def __init__(
        self,
        config: ServerConfig,
        grid: Any = None,
        *,
        transport: Any = None,
        log: Callable[[str], None] | None = None,
        recorder: ServerRecorder | None = None,
    ):
        """Over Flower's ``grid``, or over ``transport`` (anything with FlowerTransport's
        ``discover``, ``send_and_receive``, ``nodes`` and ``dropouts``: a test's stand-in);
        ``recorder`` keeps more records (see :class:`ServerRecorder`)."""
        self.config = config
        self.out = Path(config.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self._print = log or print
        self.agreed = SessionFile.read(config.session_file)
        session = self.session = self.agreed.session
        try:
            account = load_keystore(config.key_file, config.passphrase_file.read_text().strip())
        except (OSError, ValueError) as exc:
            raise ServerConfigError(f"server-key {config.key_file}: cannot be opened: {exc}") from None
        if account.address != session.server:
            raise ServerConfigError(
                f"server-key {config.key_file} is {account.address}, not the session's server"
            )
        w3 = signing_connection(RpcChain(config.chain_url), account)
        verify_session(w3, session.board, session.consensus, session.terms)
        board = BulletinBoardClient(w3, session.board, sender=account.address)
        consensus = CONSENSUS_CLIENTS[session.election](w3, session.consensus, sender=account.address)
        make: Any = ParameterServer
        kwargs: dict[str, Any] = {}
        if config.server_attack is not None:
            make, options = SERVER_ATTACKS[config.server_attack]
            kwargs = dict(options)
            if issubclass(make, TargetedServer):
                kwargs["target"] = config.attack_target
        self.server: ParameterServer = make(
            account=account,
            board=board,
            consensus=consensus,
            session=session,
            settings=self.agreed.settings,
            initial_params=get_flat_params(build_model(self.agreed.seed)),
            **kwargs,
        )
        self.transport = transport or FlowerTransport(
            grid,
            session,
            timeout=config.phase_timeout,
            schedule=self._schedule,
            log=self.log,
            on_dropout=self._on_dropout,
        )
        # The test set, scored as the simulation scores it (one torch thread, in batches of
        # TEST_BATCH), so that a round's accuracy is the simulated round's.
        torch.set_num_threads(1)
        self.test_set: Dataset | None = read_dataset_file(config.test_data) if config.test_data else None
        self.evaluator = None if self.test_set is None else Evaluator(self.test_set, batch_size=TEST_BATCH)
        self.initial_scores: Scores | None = (
            None if self.evaluator is None else self.evaluator.evaluate(self.server.params)
        )
        self.rounds: list[dict[str, Any]] = []
        self.recorder = recorder
        self.started = time.perf_counter()

    def log(self, line: str) -> None:
        self._print(f"[seccl server] {line}")
        with open(self.out / "server.log", "a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")

    def _schedule(self, round_: int) -> tuple[RoundInfo, int]:
        """Round ``round_``'s schedule on the board and the chain's time: the transport waits for a
        reply while the chain still takes its message."""
        board = self.server.board
        return board.round_info(round_), int(board.w3.eth.get_block("latest")["timestamp"])

    def _on_dropout(self, dropout: Dropout) -> None:
        dropouts = [d.to_dict() for d in self.transport.dropouts]
        atomic_write_bytes(self.out / "dropouts.json", (json.dumps(dropouts, indent=2) + "\n").encode())

    def run(self) -> list[dict[str, Any]]:
        n, rounds = self.session.n, self.agreed.rounds
        self._write_run(complete=False)
        self._record_start()
        self.transport.discover(wait_for=n, within=self.config.join_timeout)
        self.log(f"{len(self.transport.nodes)} of {n} participants connected; {rounds} rounds")
        send = self.transport.send_and_receive
        for r in range(1, rounds + 1):
            started = time.perf_counter()
            self.transport.discover()  # a participant whose SuperNode came back rejoins here
            self.server.train_phase(r, send)
            self.server.evaluate_phase(r, send)  # waits for the participants' reveals to close
            election = self.server.close_election(r)
            outcome = self.server.publish_phase(r, election)
            self._record_round(outcome, time.perf_counter() - started)
            if not outcome.model_posted:
                self.log(f"round {r}: the model was not posted; the session stops here")
                break
        else:
            self.server.finish(rounds, send)
        if self.recorder is not None:
            self.recorder.finish(self)
        self._write_run(complete=True)
        return self.rounds

    def _record_start(self) -> None:
        """Round 0: θ_0, as the board registers it, in the archive and in models/round-0000.pt."""
        with RunArchive(self.out / "messages.sqlite") as archive:
            self._archive_model(archive, 0, {r.digest: tx for r, tx in self.server.board.records(round_=0)})
        if self.recorder is not None:
            self.recorder.start(self)

    def _archive_model(self, archive: RunArchive, r: int, tx_of: dict[bytes, str]) -> bool:
        """The model the server signed for round ``r``, if it is the one the board records, into
        the archive (with its Tx-ID, ``tx_of`` its digest) and the model files, as a simulated run
        keeps its models."""
        model = self.server.model_signed
        if self.server.board.digest_of(r, MessageKind.MODEL, self.session.server) != model.digest():
            return False
        archive.put(r, MessageKind.MODEL, model, tx_of.get(model.digest()))
        write_model_files(self.out / "models", r, model, self.session.dimension)
        return True

    def _record_round(self, outcome: RoundOutcome, seconds: float) -> None:
        r = outcome.round
        with RunArchive(self.out / "messages.sqlite") as archive:
            # Each revealed update's bytes, with the Tx-ID of its commitment (where the board checked
            # its author's signature); the reveal's own transaction carried these very bytes.
            committed_in = {record.digest: tx for record, tx in self.server.board.records(round_=r)}
            for revealed in self.server.board.revealed_updates(r).values():
                signed = SignedMessage(revealed.message, b"")
                archive.put(r, MessageKind.UPDATE, signed, committed_in.get(revealed.digest, ""))
            for stored in self.server.store.of_round(r, MessageKind.EVALUATION):
                archive.put(r, stored.kind, stored.signed, stored.tx_id)
            self._archive_model(archive, r, committed_in)
        scores = self.evaluator.evaluate(outcome.params) if self.evaluator is not None else None
        accuracy, macro_f1 = scores if scores is not None else (None, None)
        dropouts = [d.to_dict() for d in self.transport.dropouts if d.round == r]
        record = {
            "round": r,
            "candidates": list(outcome.candidates),
            "ballots": outcome.ballots,
            "accuracy": accuracy,
            "macro_f1": macro_f1,
            "seconds": round(seconds, 3),
            "gas": outcome.gas,
            "transactions": outcome.transactions,
            "rejections": len(outcome.rejections),
            "dropouts": dropouts,
        }
        self.rounds.append(record)
        shown = f"accuracy {accuracy:.4f}, macro-F1 {macro_f1:.4f}, " if scores is not None else ""
        self.log(
            f"round {r}/{self.agreed.rounds}: {shown}candidates {list(outcome.candidates)}, "
            f"{seconds:.1f} s, {len(dropouts)} dropouts"
        )
        for rejection in outcome.rejections:
            who = rejection.author[:10]
            self.log(f"round {r}: rejected {who}'s message: {rejection.error}: {rejection.detail}")
        if self.recorder is not None:
            self.recorder.round_done(self, outcome, seconds, scores)
        self._write_run(complete=False)

    def _write_run(self, *, complete: bool) -> None:
        document = {
            "complete": complete,
            "session": str(self.config.session_file),
            "server": self.session.server,
            "rounds": self.rounds,
            "dropouts": [d.to_dict() for d in self.transport.dropouts],
        }
        atomic_write_bytes(self.out / "run.json", (json.dumps(document, indent=2) + "\n").encode())

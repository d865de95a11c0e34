"""The parameter server of a deployment: the same :class:`ParameterServer` (or a malicious one)
as in the simulation, driving its phases through a :class:`FlowerTransport`, with its records
(every message it holds, each round's model, the dropouts) kept in its own directory as it goes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seccl.chain.accounts import load_keystore, signing_connection
from seccl.chain.backends import RpcChain
from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from seccl.chain.session import CONSENSUS_CLIENTS, verify_session
from seccl.deploy.data_files import read_dataset_file
from seccl.deploy.flower_transport import Dropout, FlowerTransport
from seccl.deploy.session_file import SessionFile
from seccl.files import atomic_write_bytes
from seccl.learning.evaluation import Evaluator
from seccl.learning.model import build_model, get_flat_params, save_state_dict, set_flat_params
from seccl.protocol.archive import RunArchive
from seccl.protocol.envelope import SignedMessage
from seccl.roles.adversaries.server import SERVER_ATTACKS, TargetedServer
from seccl.roles.server import ParameterServer, RoundOutcome


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
    phase_timeout: float = 120.0  # a participant silent this long is skipped for the phase
    join_timeout: float = 120.0  # how long to wait for every participant before round 1
    test_data: Path | None = None  # a held-out set to report accuracy on (trials only)
    server_attack: str | None = None  # a malicious server, for trials of the participants' checks
    attack_target: int = 0

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
    ):
        """Over Flower's ``grid``, or over ``transport`` (anything with FlowerTransport's
        ``discover``, ``send_and_receive``, ``nodes`` and ``dropouts``: a test's stand-in)."""
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
            grid, session, timeout=config.phase_timeout, log=self.log, on_dropout=self._on_dropout
        )
        self.evaluator = Evaluator(read_dataset_file(config.test_data)) if config.test_data else None
        self.rounds: list[dict[str, Any]] = []

    def log(self, line: str) -> None:
        self._print(f"[seccl server] {line}")
        with open(self.out / "server.log", "a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")

    def _on_dropout(self, dropout: Dropout) -> None:
        dropouts = [d.to_dict() for d in self.transport.dropouts]
        atomic_write_bytes(self.out / "dropouts.json", (json.dumps(dropouts, indent=2) + "\n").encode())

    def run(self) -> list[dict[str, Any]]:
        n, rounds = self.session.n, self.agreed.rounds
        self._write_run(complete=False)
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
        self._write_run(complete=True)
        return self.rounds

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
            archive.put(r, MessageKind.MODEL, self.server.model_signed)
        net = build_model(0)
        set_flat_params(net, outcome.params)
        models = self.out / "models"
        save_state_dict(net, models / f"round-{r:04d}.pt")
        save_state_dict(net, models / "final.pt")
        np.save(models / "final.npy", outcome.params)
        accuracy = self.evaluator.evaluate(outcome.params)[0] if self.evaluator is not None else None
        dropouts = [d.to_dict() for d in self.transport.dropouts if d.round == r]
        record = {
            "round": r,
            "candidates": list(outcome.candidates),
            "ballots": outcome.ballots,
            "accuracy": accuracy,
            "seconds": round(seconds, 3),
            "gas": outcome.gas,
            "transactions": outcome.transactions,
            "rejections": len(outcome.rejections),
            "dropouts": dropouts,
        }
        self.rounds.append(record)
        shown = f"accuracy {accuracy:.4f}, " if accuracy is not None else ""
        self.log(
            f"round {r}/{self.agreed.rounds}: {shown}candidates {list(outcome.candidates)}, "
            f"{seconds:.1f} s, {len(dropouts)} dropouts"
        )
        for rejection in outcome.rejections:
            who = rejection.author[:10]
            self.log(f"round {r}: rejected {who}'s message: {rejection.error}: {rejection.detail}")
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

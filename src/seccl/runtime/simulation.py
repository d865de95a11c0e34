"""The in-process simulation: a whole SecCL session on one machine, every message on a real EVM."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from seccl.chain.accounts import derive_account, fund, signing_connection
from seccl.chain.anvil import AnvilNode
from seccl.chain.backends import ChainBackend, EmbeddedChain, RpcChain
from seccl.chain.bulletin_board import BulletinBoardClient
from seccl.chain.consensus import ConsensusClient
from seccl.election import candidate_count
from seccl.learning.data import Dataset, ParticipantData, load_dataset, split_participants
from seccl.learning.evaluation import Evaluator
from seccl.learning.model import build_model, get_flat_params
from seccl.protocol.evidence import Evidence
from seccl.roles.participant import Participant
from seccl.roles.server import ParameterServer, Rejection, TxEntry
from seccl.roles.settings import LearningSettings, SessionInfo
from seccl.runtime.transport import InMemoryTransport

ParticipantFactory = Callable[..., Participant]
ServerFactory = Callable[..., ParameterServer]


@dataclass(frozen=True)
class RoundRecord:
    """One round's figures, as written to metrics.csv."""

    round: int
    accuracy: float
    macro_f1: float
    candidates: tuple[int, ...]
    seconds: float
    gas: int
    transactions: int
    ballots: int
    evidence: int
    rejections: int
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class RunResult:
    """Everything a run produced."""

    rounds: list[RoundRecord]
    evidence: list[Evidence]
    rejections: list[Rejection]
    transactions: list[TxEntry]
    chain: dict[str, Any]
    initial_accuracy: float

    @property
    def final_accuracy(self) -> float:
        return self.rounds[-1].accuracy if self.rounds else self.initial_accuracy


@contextlib.contextmanager
def open_backend(chain: str, state_dir: Path) -> Iterator[ChainBackend]:
    """The chain a run uses: ``embedded``, ``anvil`` (started and stopped here), or a URL."""
    if chain == "embedded":
        yield EmbeddedChain()
    elif chain == "anvil":
        with AnvilNode(state_dir / "anvil-state.json") as node:
            yield node.backend()
    elif chain.startswith(("http://", "https://")):
        yield RpcChain(chain)
    else:
        raise ValueError(f"chain must be 'embedded', 'anvil' or an http(s) JSON-RPC URL, got {chain!r}")


def load_participant_data(
    *,
    dataset: str,
    data_root: str | None,
    participants: int,
    split: str,
    alpha: float,
    per_participant: int | None,
    validation_fraction: float,
    seed: int,
) -> tuple[list[ParticipantData], Dataset]:
    """The participants' private (train, validation) parts and the held-out test set."""
    train, test = load_dataset(dataset, root=Path(data_root) if data_root else None, seed=seed)
    parts = split_participants(
        train,
        participants,
        scheme=split,
        alpha=alpha,
        validation_fraction=validation_fraction,
        per_participant=per_participant,
        seed=seed,
    )
    return parts, test


class Simulation:
    """Builds one session (contracts, server, participants) on ``backend`` and runs its rounds."""

    def __init__(
        self,
        *,
        backend: ChainBackend,
        parts: list[ParticipantData],
        test: Dataset,
        rounds: int,
        candidate_fraction: float,
        settings: LearningSettings,
        seed: int,
        participant_factory: ParticipantFactory | None = None,
        server_factory: ServerFactory | None = None,
        progress: bool = False,
        log: Callable[[str], None] | None = None,
        round_metrics: Callable[[int, np.ndarray], dict[str, float]] | None = None,
        adversaries: set[int] | None = None,
    ):
        # One thread: bit-exact training for a seed, and no stalls on a shared 2-core machine.
        torch.set_num_threads(1)
        self.backend = backend
        self.rounds = rounds
        self.progress = progress
        self.log = log or (lambda _line: None)
        self.round_metrics = round_metrics
        self.adversaries = set(adversaries or ())
        self.test_evaluator = Evaluator(test)
        n = len(parts)
        accounts = [derive_account(seed, f"participant-{i}") for i in range(n)]
        server_account = derive_account(seed, "server")
        fund(backend, server_account.address)
        w3 = signing_connection(backend, server_account)
        board, _ = BulletinBoardClient.deploy(
            w3, server=server_account.address, participants=[a.address for a in accounts]
        )
        m = candidate_count(candidate_fraction, n)
        consensus, _ = ConsensusClient.deploy(
            w3, server=server_account.address, board=board.address, candidates=m
        )
        initial = get_flat_params(build_model(seed))
        self.session = SessionInfo(
            chain_id=board.chain_id,
            board=board.address,
            consensus=consensus.address,
            server=server_account.address,
            participants=tuple(a.address for a in accounts),
            dimension=len(initial),
            candidates=m,
        )
        make_participant = participant_factory or Participant
        self.participants = [
            make_participant(
                index=i,
                account=accounts[i],
                data=parts[i],
                session=self.session,
                settings=settings,
                backend=backend,
                seed=seed,
            )
            for i in range(n)
        ]
        make_server = server_factory or ParameterServer
        self.server = make_server(
            account=server_account,
            board=board,
            consensus=consensus,
            session=self.session,
            settings=settings,
            initial_params=initial,
        )
        # Simulated time: a missed ballot's deadline passes at once instead of in an hour.
        self.server.wait_until = self._advance_chain_to
        self.server.publish_initial_model()

    def _advance_chain_to(self, timestamp: int) -> None:
        latest = int(self.server.board.w3.eth.get_block("latest")["timestamp"])
        self.backend.advance_time(max(timestamp - latest, 0) + 1)

    def run(self) -> RunResult:
        n = self.session.n
        bar = tqdm(total=3 * n, disable=not self.progress, leave=False, unit="step")
        transport = InMemoryTransport(self.participants, on_reply=lambda _i, _r: bar.update(1))
        initial_accuracy, _ = self.test_evaluator.evaluate(self.server.params)
        records: list[RoundRecord] = []
        evidence: list[Evidence] = []
        for r in range(1, self.rounds + 1):
            bar.reset(total=3 * n)
            bar.set_description(f"round {r}/{self.rounds}")
            started = time.perf_counter()
            outcome = self.server.run_round(r, transport.send_and_receive)
            seconds = time.perf_counter() - started
            accuracy, f1 = self.test_evaluator.evaluate(outcome.params)
            extra = self.round_metrics(r, outcome.params) if self.round_metrics else {}
            if self.adversaries:
                extra["adversaries_elected"] = float(len(self.adversaries & set(outcome.candidates)))
            evidence += outcome.evidence
            record = RoundRecord(
                round=r,
                accuracy=accuracy,
                macro_f1=f1,
                candidates=outcome.candidates,
                seconds=seconds,
                gas=outcome.gas,
                transactions=outcome.transactions,
                ballots=outcome.ballots,
                evidence=len(outcome.evidence),
                rejections=len(outcome.rejections),
                extra=extra,
            )
            records.append(record)
            bar.clear()
            self.log(format_round(record, self.rounds))
            for item in outcome.evidence:
                self.log(f"  evidence: {item.summary()}")
            for rejection in outcome.rejections:
                self.log(
                    f"  rejected: round {rejection.round} {rejection.author[:10]} "
                    f"{rejection.error}: {rejection.detail}"
                )
        bar.close()
        final = self.server.finish(self.rounds, transport.send_and_receive)
        for item in final:
            self.log(f"  evidence: {item.summary()}")
        evidence += final
        return RunResult(
            rounds=records,
            evidence=evidence,
            rejections=self.server.rejections,
            transactions=self.server.transactions,
            chain=self.chain_facts(),
            initial_accuracy=initial_accuracy,
        )

    def chain_facts(self) -> dict[str, Any]:
        return {
            "backend": self.backend.name,
            "chain_id": self.session.chain_id,
            "bulletin_board": self.session.board,
            "consensus": self.session.consensus,
            "server": self.session.server,
            "participants": list(self.session.participants),
            "candidates_per_round": self.session.candidates,
        }


def format_round(record: RoundRecord, rounds: int) -> str:
    extra = "".join(
        f"  {k} {int(v)}" if k == "adversaries_elected" else f"  {k} {v:.3f}"
        for k, v in record.extra.items()
    )
    return (
        f"round {record.round:>2}/{rounds}  accuracy {record.accuracy:.4f}  macro-F1 "
        f"{record.macro_f1:.4f}  elected {list(record.candidates)}  {record.seconds:5.1f} s  "
        f"gas {record.gas:,}  evidence {record.evidence}{extra}"
    )

"""The in-process simulation: a whole SecCL session on one machine, every message on a real EVM."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from eth_account.signers.local import LocalAccount
from tqdm import tqdm

from seccl.chain.accounts import fund, new_account, signing_connection
from seccl.chain.anvil import AnvilNode
from seccl.chain.backends import ChainBackend, EmbeddedChain, RpcChain
from seccl.chain.bulletin_board import Phases
from seccl.chain.session import SessionTerms, deploy_session
from seccl.election import candidate_count
from seccl.learning.data import Dataset, ParticipantData, load_dataset, split_participants
from seccl.learning.evaluation import Evaluator
from seccl.learning.model import build_model, get_flat_params
from seccl.learning.sparse import update_size
from seccl.protocol.evidence import Evidence
from seccl.protocol.verification import Verdict, verify_evidence
from seccl.roles.participant import Participant, initial_model_digest
from seccl.roles.server import ParameterServer, Rejection, RoundOutcome, SendAndReceive, TxEntry
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
    verdicts: list[Verdict]
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


@dataclass(frozen=True)
class SessionOptions:
    """Public session parameters the participants agree to, beyond the learning settings.

    ``max_abs_value`` bounds every shared Δ coordinate. Honest top-s deltas of this model stay
    far below it (measured: at most 0.21 after 10 local epochs at lr 0.02 on 320 digits, the
    largest step of a session, from θ_0), so the bound leaves a 50-fold margin and refuses only
    absurd values: a 1e30 that would make the next round's training non-finite. Phases are
    generous because a simulated round may take minutes at large N; the simulation moves the
    chain's clock forward whenever a deadline must pass.
    """

    max_abs_value: float = 10.0
    phases: Phases = field(default_factory=lambda: Phases(update=3600, ballot=3600, model=3600))


class Simulation:
    """Builds one session (contracts, server, participants) on ``backend`` and runs its rounds.

    The runtime, not the server, drives the participants' own checks after every phase, and
    their findings go straight into the run's records.
    """

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
        accounts: list[LocalAccount] | None = None,
        server_account: LocalAccount | None = None,
        options: SessionOptions | None = None,
    ):
        # One thread: bit-exact training for a seed, and no stalls on a shared 2-core machine.
        torch.set_num_threads(1)
        self.backend = backend
        self.rounds = rounds
        self.progress = progress
        self.log = log or (lambda _line: None)
        self.round_metrics = round_metrics
        self.adversaries = set(adversaries or ())
        self.settings = settings
        self.test_evaluator = Evaluator(test)
        options = options or SessionOptions()
        n = len(parts)
        # Every party's own random key (or the keys given): nothing secret comes from the seed.
        accounts = accounts or [new_account() for _ in range(n)]
        server_account = server_account or new_account()
        for account in (server_account, *accounts):
            fund(backend, account.address)
        w3 = signing_connection(backend, server_account)
        initial = get_flat_params(build_model(seed))
        m = candidate_count(candidate_fraction, n)
        terms = SessionTerms(
            server=server_account.address,
            participants=tuple(a.address for a in accounts),
            candidates=m,
            nonce=secrets.token_bytes(32),
            # Public and agreed: the same seed breaks ties alike, so the same seed gives the same run.
            tie_seed=hashlib.sha256(f"seccl-ties/{seed}".encode()).digest(),
            phases=options.phases,
            initial_model=initial_model_digest(seed, server_account.address),
        )
        board, consensus, self.deployment = deploy_session(w3, terms)
        self.session = SessionInfo(
            chain_id=int(w3.eth.chain_id),
            board=board.address,
            consensus=consensus.address,
            server=server_account.address,
            participants=terms.participants,
            dimension=len(initial),
            candidates=m,
            nonce=terms.nonce,
            tie_seed=terms.tie_seed,
            phases=terms.phases,
            update_size=update_size(settings.share_fraction, len(initial)),
            max_abs_value=options.max_abs_value,
            initial_model=terms.initial_model,
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
        # Simulated time: a deadline passes at once instead of in an hour.
        self.server.wait_until = self.pass_time
        # A neutral reader (an outside auditor's own connection) for the chain facts of the run.
        reader = backend.connect()
        self.board_reader = board.for_reader(reader)
        self.consensus_reader = consensus.for_reader(reader)

    def pass_time(self, timestamp: int) -> None:
        """Move the chain's clock past ``timestamp`` (simulated waiting)."""
        latest = int(self.board_reader.w3.eth.get_block("latest")["timestamp"])
        if latest <= timestamp:
            self.backend.advance_time(timestamp - latest + 1)

    def _new_evidence(self, seen: list[int]) -> list[Evidence]:
        found: list[Evidence] = []
        for i, p in enumerate(self.participants):
            found += p.evidence[seen[i] :]
            seen[i] = len(p.evidence)
        return found

    def run_round(self, r: int, send: SendAndReceive) -> RoundOutcome | None:
        """One round: the server's phases, each followed by every participant's own checks.
        Returns None when the round's model never reached the board (the session cannot go on)."""
        server, everyone = self.server, self.participants
        server.train_phase(r, send)
        for p in everyone:
            late = p.after_updates(r)
            if late is not None:
                server.receive(r, p.index, late)
        info = self.board_reader.round_info(r)
        if info.updates < self.session.n:
            self.pass_time(info.update_deadline)  # the chain's deadline closes the update phase
        server.evaluate_phase(r, send)
        for p in everyone:
            p.after_ballots(r)
        election = server.close_election(r)
        for p in everyone:
            p.after_election(r)
        if not self.consensus_reader.is_tallied(r):
            # Nobody may tally before the ballot deadline unless every ballot is in; then anyone may.
            self.pass_time(self.board_reader.round_info(r).ballot_deadline)
            for p in everyone:
                p.after_election(r)
        outcome = server.publish_phase(r, election)
        posted = [p.after_model(r) for p in everyone]
        if not any(posted):
            self.pass_time(self.board_reader.round_info(r).model_deadline)
            for p in everyone:
                p.after_model(r)
            return None
        return outcome

    def run(self) -> RunResult:
        n = self.session.n
        bar = tqdm(total=3 * n, disable=not self.progress, leave=False, unit="step")
        transport = InMemoryTransport(self.participants, on_reply=lambda _i, _r: bar.update(1))
        initial_accuracy, _ = self.test_evaluator.evaluate(self.server.params)
        records: list[RoundRecord] = []
        evidence: list[Evidence] = []
        seen = [0] * n
        for r in range(1, self.rounds + 1):
            bar.reset(total=3 * n)
            bar.set_description(f"round {r}/{self.rounds}")
            started = time.perf_counter()
            outcome = self.run_round(r, transport.send_and_receive)
            seconds = time.perf_counter() - started
            found = self._new_evidence(seen)
            evidence += found
            bar.clear()
            for item in found:
                self.log(f"  evidence: {item.summary()}")
            if outcome is None:
                self.log(f"round {r}: the server did not post the model; the session stops here")
                break
            accuracy, f1 = self.test_evaluator.evaluate(outcome.params)
            extra = self.round_metrics(r, outcome.params) if self.round_metrics else {}
            if self.adversaries:
                extra["adversaries_elected"] = float(len(self.adversaries & set(outcome.candidates)))
            record = RoundRecord(
                round=r,
                accuracy=accuracy,
                macro_f1=f1,
                candidates=outcome.candidates,
                seconds=seconds,
                gas=outcome.gas,
                transactions=outcome.transactions,
                ballots=outcome.ballots,
                evidence=len(found),
                rejections=len(outcome.rejections),
                extra=extra,
            )
            records.append(record)
            self.log(format_round(record, self.rounds))
            for rejection in outcome.rejections:
                self.log(
                    f"  rejected: round {rejection.round} {rejection.author[:10]} "
                    f"{rejection.error}: {rejection.detail}"
                )
        bar.close()
        if records and len(records) == self.rounds:
            self.server.finish(self.rounds, transport.send_and_receive)
            final = self._new_evidence(seen)
            for item in final:
                self.log(f"  evidence: {item.summary()}")
            evidence += final
        return RunResult(
            rounds=records,
            evidence=evidence,
            verdicts=[self.verify(e) for e in evidence],
            rejections=self.server.rejections,
            transactions=self.server.transactions,
            chain=self.chain_facts(),
            initial_accuracy=initial_accuracy,
        )

    def verify(self, evidence: Evidence) -> Verdict:
        """The verdict of an outsider who trusts neither side (see ``seccl.protocol.verification``)."""
        return verify_evidence(
            evidence,
            self.session,
            self.board_reader,
            self.consensus_reader,
            aggregation=self.settings.aggregation,
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
            "nonce": "0x" + self.session.nonce.hex(),
            "tie_seed": "0x" + self.session.tie_seed.hex(),
            "phases": asdict(self.session.phases),
            "url": getattr(self.backend, "url", None),
            "dimension": self.session.dimension,
            "initial_model": "0x" + self.session.initial_model.hex(),
            "aggregation": self.settings.aggregation,
            "update_size": self.session.update_size,
            "max_abs_value": self.session.max_abs_value,
            "deployment": [r.tx_hash for r in self.deployment],
            "accusations_upheld": self.board_reader.caught_count(),
        }


def format_round(record: RoundRecord, rounds: int) -> str:
    extra = "".join(
        f"  {k} {int(v)}" if k == "adversaries_elected" else f"  {k} {v:.3f}" for k, v in record.extra.items()
    )
    return (
        f"round {record.round:>2}/{rounds}  accuracy {record.accuracy:.4f}  macro-F1 "
        f"{record.macro_f1:.4f}  elected {list(record.candidates)}  {record.seconds:5.1f} s  "
        f"gas {record.gas:,}  evidence {record.evidence}{extra}"
    )

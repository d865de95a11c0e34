"""The in-process simulation: a whole SecCL session on one machine, every message on a real EVM."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from eth_account.signers.local import LocalAccount
from tqdm import tqdm
from web3 import Web3

from seccl.chain.accounts import fund, new_account, signing_connection
from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind, Phases
from seccl.chain.consensus import ConsensusClient
from seccl.chain.ledger import Ledger, LedgerEntry
from seccl.chain.transactions import TxReceipt
from seccl.election import ABSTAIN
from seccl.learning.data import Dataset, ParticipantData
from seccl.learning.evaluation import Evaluator
from seccl.learning.model import build_model, get_flat_params, save_state_dict, set_flat_params
from seccl.learning.training import recording_losses
from seccl.protocol.archive import RunArchive
from seccl.protocol.envelope import SignedMessage
from seccl.protocol.evidence import Evidence
from seccl.protocol.instructions import EvaluateRequest, Request, TrainRequest
from seccl.protocol.messages import ModelMessage, decode_message
from seccl.protocol.session import session_from_dict, session_to_dict
from seccl.protocol.verification import Verdict, verify_evidence
from seccl.roles.participant import Compute, Participant
from seccl.roles.server import ParameterServer, Rejection, RoundOutcome, SendAndReceive, TxEntry
from seccl.roles.settings import LearningSettings
from seccl.runs.checkpoint import array_key, write_checkpoint
from seccl.runtime.establish import establish_session
from seccl.runtime.faults import ENVIRONMENT as KILL_ENVIRONMENT
from seccl.runtime.faults import maybe_kill
from seccl.runtime.transport import InMemoryTransport
from seccl.runtime.workers import WorkerPool

ParticipantFactory = Callable[..., Participant]
ServerFactory = Callable[..., ParameterServer]


TIME_PARTS = ("training", "evaluation", "chain")
"""The parts a round's time is split into (the rest is ``other``: encoding, hashing, signing,
aggregation, the participants' checks)."""


@dataclass(frozen=True)
class RoundRecord:
    """One round's figures, as written to metrics.csv and metrics.json.

    ``scores`` is the score matrix the consensus contract counted: row ``i`` is voter ``i``'s
    ballot in parts per million of macro-F1 (None for an abstention), or None when no ballot of
    ``i`` was counted. ``borda_points`` and ``abstentions`` are the contract's totals by
    participant. ``times`` splits ``seconds`` into :data:`TIME_PARTS` and ``other``.
    ``training_losses`` is each participant's mean training loss over its last local epoch
    (None when it did not train), ``training_loss`` their mean.
    """

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
    scores: tuple[tuple[int | None, ...] | None, ...] = ()
    borda_points: tuple[int, ...] = ()
    abstentions: tuple[int, ...] = ()
    adversaries: tuple[int, ...] = ()
    times: dict[str, float] = field(default_factory=dict)
    training_loss: float | None = None
    training_losses: tuple[float | None, ...] = ()


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
    participants: list[dict[str, Any]] = field(default_factory=list)
    """Per participant: index, address, adversary or not, train and validation sizes and class
    counts."""
    ledger: list[LedgerEntry] = field(default_factory=list)
    """Every transaction of the session on the chain (funding, deployment, reverted ones too)."""

    @property
    def final_accuracy(self) -> float:
        return self.rounds[-1].accuracy if self.rounds else self.initial_accuracy


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


class Stopwatch:
    """Exclusive wall time per part of a round: the innermost part running gets the time, so a
    chain request made inside another (the signing middleware's own reads) counts once."""

    def __init__(self) -> None:
        self.totals = dict.fromkeys(TIME_PARTS, 0.0)
        self._stack: list[str] = []
        self._mark = 0.0

    def reset(self) -> None:
        self.totals = dict.fromkeys(TIME_PARTS, 0.0)

    def enter(self, part: str) -> None:
        now = time.perf_counter()
        if self._stack:
            self.totals[self._stack[-1]] += now - self._mark
        self._stack.append(part)
        self._mark = now

    def exit(self) -> None:
        now = time.perf_counter()
        self.totals[self._stack.pop()] += now - self._mark
        self._mark = now

    def timed(self, part: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.enter(part)
            try:
                return func(*args, **kwargs)
            finally:
                self.exit()

        return wrapper


class TimedBackend:
    """``backend``, with every JSON-RPC request of every connection it opens timed as chain time
    (measurement only: requests and answers pass through unchanged)."""

    def __init__(self, backend: ChainBackend, watch: Stopwatch):
        self._backend = backend
        self._watch = watch

    @property
    def name(self) -> str:
        return self._backend.name

    def connect(self) -> Web3:
        w3 = self._backend.connect()
        w3.manager.request_blocking = self._watch.timed(  # type: ignore[method-assign]
            "chain", w3.manager.request_blocking
        )
        return w3

    def server_account(self) -> str:
        return str(self._watch.timed("chain", self._backend.server_account)())

    def advance_time(self, seconds: int) -> None:
        self._watch.timed("chain", self._backend.advance_time)(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


ESTIMATE_FROM = 64
"""From this many participants on, a run prints an estimate of its round time in round 1."""


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
        progress_log: Callable[[str], None] | None = None,
        archive: RunArchive | None = None,
        model_dir: Path | None = None,
        on_round: Callable[[RunResult], None] | None = None,
        checkpoint_dir: Path | None = None,
        resume: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None,
        workers: int = 0,
    ):
        # One thread: bit-exact training for a seed, and no stalls on a shared 2-core machine.
        torch.set_num_threads(1)
        self.backend = backend
        # Measurement only: every connection's requests, and each participant's training and
        # scoring, are timed; nothing they send or compute changes.
        self.watch = Stopwatch()
        timed_backend = TimedBackend(backend, self.watch)
        backend = timed_backend  # type: ignore[assignment]
        self.progress_log = progress_log
        self.rounds = rounds
        self.progress = progress
        self.log = log or (lambda _line: None)
        self.round_metrics = round_metrics
        self.adversaries = set(adversaries or ())
        self.settings = settings
        self.test_set = test
        # Test-set batches of 250 digits: one batch of 2,000 held some 130 MB of activations at
        # once, the largest single allocation of a run.
        self.test_evaluator = Evaluator(test, batch_size=250)
        options = options or SessionOptions()
        n = len(parts)
        initial = get_flat_params(build_model(seed))
        self.funding: list[TxReceipt] = []
        if resume is None:
            # Every party's own random key (or the keys given): nothing secret comes from the seed.
            accounts = accounts or [new_account() for _ in range(n)]
            server_account = server_account or new_account()
            reader = backend.connect()
            self.first_block = int(reader.eth.block_number) + 1
            self.funding = [fund(backend, account.address) for account in (server_account, *accounts)]
            w3 = signing_connection(backend, server_account)
            self.session, board, consensus, self.deployment = establish_session(
                w3,
                server_account,
                [a.address for a in accounts],
                seed=seed,
                candidate_fraction=candidate_fraction,
                settings=settings,
                phases=options.phases,
                max_abs_value=options.max_abs_value,
            )
        else:
            # Resuming: the same keys, and the session the chain already holds.
            if accounts is None or server_account is None:
                raise ValueError("resuming needs the run's own keys (accounts and server_account)")
            document = resume[0]
            self.session = session_from_dict(document["session"])
            if (self.session.server, self.session.participants) != (
                server_account.address,
                tuple(a.address for a in accounts),
            ):
                raise ValueError("the keys given are not the ones of the session being resumed")
            self.first_block = int(document["first_block"])
            self.deployment = [TxReceipt(**r) for r in document["deployment"]]
            self.funding = [TxReceipt(**r) for r in document["funding"]]
            w3 = signing_connection(backend, server_account)
            board = BulletinBoardClient(w3, self.session.board, sender=server_account.address)
            consensus = ConsensusClient(w3, self.session.consensus, sender=server_account.address)
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
        # The run's durable record, written as each round ends (see :meth:`archive_round`); each
        # participant's journal is the archive, written before a message leaves the participant.
        self.archive = archive
        self.model_dir = model_dir
        self.checkpoint_dir = checkpoint_dir
        self.on_round = on_round
        self.ledger = Ledger(
            reader,
            first_block=self.first_block,
            server=self.session.server,
            participants=self.session.participants,
            contracts={"BulletinBoard": self.session.board, "Consensus": self.session.consensus},
        )
        self.losses: list[float | None] = [None] * n
        for p in self.participants:
            self._instrument(p)
            p.journal = archive
        if os.environ.get(KILL_ENVIRONMENT):
            self._instrument_server()
        # Worker processes for the participants' training and scoring (0: all in this process).
        self.workers = workers
        self.records: list[RoundRecord] = []
        self.evidence: list[Evidence] = []
        self.stopped = False
        self.initial_accuracy: float | None = None
        self.start_round = 1
        if resume is None:
            self.archive_round(0)
            self.checkpoint(0)
        else:
            self._restore(*resume)
        self._round_started = time.perf_counter()
        self._phase_started = self._round_started
        self._phase_seconds: dict[str, float] = {}
        self._replies = 0

    def _instrument(self, p: Participant) -> None:
        """Time ``p``'s local training and scoring, and keep its last epoch's training loss.
        The wrappers look the methods up on each call, so they call exactly what ``p`` would."""
        watch, losses = self.watch, self.losses

        def local_model(params: np.ndarray, round_: int) -> np.ndarray:
            with recording_losses() as calls:
                watch.enter("training")
                try:
                    trained: np.ndarray = type(p).local_model(p, params, round_)
                finally:
                    watch.exit()
            losses[p.index] = calls[-1][-1] if calls and calls[-1] else None
            maybe_kill(round_, "training")
            return trained

        def score_updates(round_: int, params: np.ndarray, updates: dict[int, Any]) -> list[float]:
            watch.enter("evaluation")
            try:
                return type(p).score_updates(p, round_, params, updates)
            finally:
                watch.exit()

        setattr(p, "local_model", local_model)  # noqa: B010 - an instance attribute, on purpose
        setattr(p, "score_updates", score_updates)  # noqa: B010

    def _instrument_server(self) -> None:
        """The crash points inside the server's phases (see :mod:`seccl.runtime.faults`)."""
        server = self.server
        relay_update, post_model = server.relay_update, server.post_model

        def relayed(round_: int, author: str, signed: SignedMessage) -> Any:
            receipt = relay_update(round_, author, signed)
            maybe_kill(round_, "relay")
            return receipt

        def posted(round_: int, params: np.ndarray) -> bool:
            done = post_model(round_, params)
            maybe_kill(round_, "model")
            return done

        setattr(server, "relay_update", relayed)  # noqa: B010
        setattr(server, "post_model", posted)  # noqa: B010

    def _phase(self, r: int, what: str) -> None:
        """A progress line at the end of a phase (when progress lines are on)."""
        now = time.perf_counter()
        self._phase_seconds[what] = now - self._phase_started
        self._phase_started = now
        if self.progress_log is not None:
            self.progress_log(f"round {r}/{self.rounds}: {what} after {now - self._round_started:.1f} s")

    def _on_reply(self, index: int, request: Request) -> None:
        """Per-reply progress at large N: a line every eighth of the training and evaluation
        phases, and, after round 1's first evaluator, an estimate of the round time."""
        n = self.session.n
        if self.progress_log is None or n < ESTIMATE_FROM:
            return
        if not isinstance(request, (TrainRequest, EvaluateRequest)):
            return
        self._replies += 1
        done = "trained" if isinstance(request, TrainRequest) else "evaluated"
        if self._replies % max(1, n // 8) == 0 and self._replies < n:
            self.progress_log(f"round {request.round}/{self.rounds}: {self._replies}/{n} participants {done}")
        if isinstance(request, EvaluateRequest) and request.round == 1 and self._replies == 1:
            first = time.perf_counter() - self._phase_started
            updates = self._phase_seconds.get("updates on the board", 0.0)
            estimate = updates + n * first
            self.progress_log(
                f"estimate: about {_duration(estimate)} a round at N = {n} ({_duration(updates)} to train "
                f"and post the updates, about {_duration(n * first)} for {n} evaluators at "
                f"{_duration(first)} each); about {_duration(estimate * self.rounds)} for "
                f"{self.rounds} rounds"
            )

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
        self._round_started = self._phase_started = time.perf_counter()
        self._replies = 0
        server.train_phase(r, send)
        for p in everyone:
            late = p.after_updates(r)
            if late is not None:
                server.receive(r, p.index, late)
        info = self.board_reader.round_info(r)
        if info.updates < self.session.n:
            self.pass_time(info.update_deadline)  # the chain's deadline closes the update phase
        self._phase(r, "updates on the board")
        self._replies = 0
        server.evaluate_phase(r, send)
        for p in everyone:
            p.after_ballots(r)
        self._phase(r, "ballots counted")
        election = server.close_election(r)
        maybe_kill(r, "tally")
        for p in everyone:
            p.after_election(r)
        if not self.consensus_reader.is_tallied(r):
            # Nobody may tally before the ballot deadline unless every ballot is in; then anyone may.
            self.pass_time(self.board_reader.round_info(r).ballot_deadline)
            for p in everyone:
                p.after_election(r)
        self._phase(r, "election tallied")
        outcome = server.publish_phase(r, election)
        posted = [p.after_model(r) for p in everyone]
        self._phase(r, "model posted and checked")
        if not any(posted):
            self.pass_time(self.board_reader.round_info(r).model_deadline)
            for p in everyone:
                p.after_model(r)
            return None
        return outcome

    def run(self) -> RunResult:
        """Run the rounds from :attr:`start_round` (1, or the one after a resumed checkpoint)."""
        n = self.session.n
        bar = tqdm(total=3 * n, disable=not self.progress, leave=False, unit="step")

        def on_reply(index: int, request: Request) -> None:
            bar.update(1)
            self._on_reply(index, request)

        pool = WorkerPool(self.participants, self.workers) if self.workers else None
        try:
            return self._run(bar, on_reply, pool)
        finally:
            if pool is not None:
                pool.close()

    def _compute_in(self, pool: WorkerPool) -> Callable[[Sequence[tuple[int, Compute]]], list[Any]]:
        """Runs a batch of the participants' computations in ``pool``, timed as training or
        evaluation, keeping each trainer's last-epoch loss."""

        def compute(jobs: Sequence[tuple[int, Compute]]) -> list[Any]:
            self.watch.enter("training" if jobs[0][1].method == "local_model" else "evaluation")
            try:
                results = pool.run(jobs)
            finally:
                self.watch.exit()
            for (index, job), (_, loss) in zip(jobs, results, strict=True):
                if job.method == "local_model":
                    self.losses[index] = loss
                    maybe_kill(job.args[1], "training")
            return [result for result, _ in results]

        return compute

    def _run(self, bar: Any, on_reply: Callable[[int, Request], None], pool: WorkerPool | None) -> RunResult:
        n = self.session.n
        compute = self._compute_in(pool) if pool is not None else None
        transport = InMemoryTransport(self.participants, on_reply=on_reply, compute=compute)
        if self.initial_accuracy is None:
            self.initial_accuracy, _ = self.test_evaluator.evaluate(self.server.params)
        initial_accuracy = self.initial_accuracy
        records, evidence = self.records, self.evidence
        seen = [len(p.evidence) for p in self.participants]
        for r in range(self.start_round, self.rounds + 1):
            if self.stopped:
                break
            bar.reset(total=3 * n)
            bar.set_description(f"round {r}/{self.rounds}")
            self.watch.reset()
            self.losses[:] = [None] * n
            started = time.perf_counter()
            outcome = self.run_round(r, transport.send_and_receive)
            seconds = time.perf_counter() - started
            times = {part: round(t, 3) for part, t in self.watch.totals.items()}
            times["other"] = round(max(0.0, seconds - sum(self.watch.totals.values())), 3)
            self.archive_round(r)
            maybe_kill(r, "archived")
            losses = tuple(self.losses)
            found = self._new_evidence(seen)
            evidence += found
            bar.clear()
            for item in found:
                self.log(f"  evidence: {item.summary()}")
            if outcome is None:
                self.log(f"round {r}: the server did not post the model; the session stops here")
                self.stopped = True
                self.checkpoint(r)
                break
            accuracy, f1 = self.test_evaluator.evaluate(outcome.params)
            extra = self.round_metrics(r, outcome.params) if self.round_metrics else {}
            if self.adversaries:
                extra["adversaries_elected"] = float(len(self.adversaries & set(outcome.candidates)))
            scores, points, abstentions = self.election_facts(r)
            trained = [loss for loss in losses if loss is not None]
            # The round's cost as the chain records it: every party's transactions, including
            # those mined before a crash that a resumed round did not send again.
            spent = [e for e in self.ledger.update() if e.round == r]
            record = RoundRecord(
                round=r,
                accuracy=accuracy,
                macro_f1=f1,
                candidates=outcome.candidates,
                seconds=seconds,
                gas=sum(e.gas for e in spent),
                transactions=len(spent),
                ballots=outcome.ballots,
                evidence=len(found),
                rejections=len(outcome.rejections),
                extra=extra,
                scores=scores,
                borda_points=points,
                abstentions=abstentions,
                adversaries=tuple(sorted(self.adversaries)),
                times=times,
                training_loss=sum(trained) / len(trained) if trained else None,
                training_losses=losses,
            )
            records.append(record)
            self.checkpoint(r)
            if self.on_round is not None:
                self.on_round(self._result(records, evidence, initial_accuracy))
            self.log(format_round(record, self.rounds))
            for rejection in outcome.rejections:
                self.log(
                    f"  rejected: round {rejection.round} {rejection.author[:10]} "
                    f"{rejection.error}: {rejection.detail}"
                )
        bar.close()
        if records and len(records) == self.rounds and not self.stopped:
            self.server.finish(self.rounds, transport.send_and_receive)
            final = self._new_evidence(seen)
            for item in final:
                self.log(f"  evidence: {item.summary()}")
            evidence += final
        return self._result(records, evidence, initial_accuracy)

    # ─────────────── durability: the chain, then the checkpoint, at every round's end ───────────────

    def checkpoint(self, r: int) -> None:
        """Make round ``r`` survive a crash: save the chain first (so it is never behind the
        checkpoint), then commit every party's state (see :mod:`seccl.runs.checkpoint`)."""
        persist = getattr(self.backend, "persist", None)
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
        for p in self.participants:
            trusted, board = p.state()
            participants.append(
                {
                    "trusted": keep(trusted),
                    "board_round": None if board is None else board[0],
                    "board": None if board is None else keep(board[1]),
                    "evidence": [e.to_dict() for e in p.evidence],
                }
            )
        model = self.server.model_signed
        arrays["server_model_data"] = np.frombuffer(model.data, dtype=np.uint8)
        arrays["server_model_signature"] = np.frombuffer(model.signature, dtype=np.uint8)
        state = {
            "session": session_to_dict(self.session),
            "first_block": self.first_block,
            "deployment": [asdict(t) for t in self.deployment],
            "funding": [asdict(t) for t in self.funding],
            "server": {"params": keep(self.server.params)},
            "participants": participants,
            "records": [asdict(record) for record in self.records],
            "evidence": [e.to_dict() for e in self.evidence],
            "rejections": [asdict(x) for x in self.server.rejections],
            "transactions": [asdict(x) for x in self.server.transactions],
            "initial_accuracy": self.initial_accuracy,
            "stopped": self.stopped,
        }
        write_checkpoint(self.checkpoint_dir, r, state, arrays)

    def _restore(self, document: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Every party as it stood at the checkpoint's round; the next round replays from there."""
        r = int(document["round"])

        def array(key: str | None) -> np.ndarray | None:
            return None if key is None else arrays[key]

        for p, state in zip(self.participants, document["participants"], strict=True):
            board = None if state["board"] is None else (int(state["board_round"]), arrays[state["board"]])
            p.restore(r, array(state["trusted"]), board, [Evidence.from_dict(e) for e in state["evidence"]])
        server = self.server
        server.params = np.asarray(arrays[document["server"]["params"]], dtype=np.float32).copy()
        server.model_signed = SignedMessage(
            arrays["server_model_data"].tobytes(), arrays["server_model_signature"].tobytes()
        )
        server.rejections = [Rejection(**x) for x in document["rejections"]]
        server.transactions = [TxEntry(**x) for x in document["transactions"]]
        self.records = [round_record_from_dict(x) for x in document["records"]]
        self.evidence = [Evidence.from_dict(e) for e in document["evidence"]]
        self.initial_accuracy = document["initial_accuracy"]
        self.stopped = bool(document["stopped"])
        self.start_round = r + 1

    def _result(
        self, records: list[RoundRecord], evidence: list[Evidence], initial_accuracy: float
    ) -> RunResult:
        """What the run has produced so far (all of it, once the last round is done)."""
        return RunResult(
            rounds=list(records),
            evidence=list(evidence),
            verdicts=[self.verify(e) for e in evidence],
            rejections=list(self.server.rejections),
            transactions=list(self.server.transactions),
            chain=self.chain_facts(),
            initial_accuracy=initial_accuracy,
            participants=self.participant_facts(),
            ledger=self.ledger.update(),
        )

    def archive_round(self, r: int) -> None:
        """Store every signed message of round ``r`` that any party holds, each with the Tx-ID
        the chain recorded it in, and the round's model as a ``state_dict`` file.

        Each party contributes what it signed or was handed (participants their own update and
        ballot, the server what it accepted and its model), so the record does not depend on any
        one party's honesty; ``seccl audit`` checks every stored message against the chain.
        """
        if self.archive is None:
            return
        board = self.board_reader
        tx_of = {record.digest: tx for record, tx in board.records(round_=r)}
        tx_of.update({b.digest: b.tx_hash for b in self.consensus_reader.ballots_of(r)} if r else {})
        held: list[tuple[MessageKind, SignedMessage | None]] = []
        for p in self.participants:
            if p._round == r:
                held += [(MessageKind.UPDATE, p._own_update), (MessageKind.EVALUATION, p._own_evaluation)]
        held += [(s.kind, s.signed) for s in self.server.store.of_round(r, MessageKind.UPDATE)]
        held += [(MessageKind.UPDATE, s) for (rr, _), s in self.server.invalid_recorded.items() if rr == r]
        model = self.server.model_signed
        if board.digest_of(r, MessageKind.MODEL, self.session.server) == model.digest():
            held.append((MessageKind.MODEL, model))
            if self.model_dir is not None:
                decoded = decode_message(model.data, dimension=self.session.dimension)
                assert isinstance(decoded, ModelMessage)
                net = build_model(0)
                set_flat_params(net, decoded.params)
                save_state_dict(net, self.model_dir / f"round-{r:04d}.pt")
                if r:
                    save_state_dict(net, self.model_dir / "final.pt")
        for kind, signed in held:
            if signed is not None:
                tx = tx_of.get(signed.digest())
                self.archive.put(r, kind, signed, tx)
                if tx is not None:
                    self.archive.correct_tx(signed.digest(), tx)  # the chain's word, after a crash

    def election_facts(
        self, r: int
    ) -> tuple[tuple[tuple[int | None, ...] | None, ...], tuple[int, ...], tuple[int, ...]]:
        """Round ``r``'s counted ballots as a score matrix (row = voter; None = abstained, or no
        ballot counted), and the contract's Borda points and abstentions, read from the chain."""
        index = {a.lower(): i for i, a in enumerate(self.session.participants)}
        rows: list[tuple[int | None, ...] | None] = [None] * self.session.n
        for ballot in self.consensus_reader.ballots_of(r):
            rows[index[ballot.voter.lower()]] = tuple(None if s == ABSTAIN else s for s in ballot.scores)
        points, abstentions = self.consensus_reader.totals_of(r)
        return tuple(rows), points, abstentions

    def participant_facts(self) -> list[dict[str, Any]]:
        """Who is who: each participant's address, whether it is an adversary, its data."""
        return [
            {
                "index": p.index,
                "address": p.address,
                "adversary": p.index in self.adversaries,
                "train_samples": len(p.data.train),
                "validation_samples": len(p.data.validation),
                "train_class_counts": [int(c) for c in p.data.train.class_counts()],
                "validation_class_counts": [int(c) for c in p.data.validation.class_counts()],
                "train_sha256": p.data.train.sha256(),
                "validation_sha256": p.data.validation.sha256(),
            }
            for p in self.participants
        ]

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
        w3 = self.board_reader.w3
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
            "funding": [r.tx_hash for r in self.funding],
            "accusations_upheld": self.board_reader.caught_count(),
            # What pins this chain instance: contracts land at the same addresses, with the same
            # chain id, in every session with the same server key; the block hashes do not repeat.
            "genesis_hash": self._block_hash(0),
            "deployment_blocks": [r.block_number for r in self.deployment],
            "last_block": {"number": int(w3.eth.block_number), "hash": self._block_hash("latest")},
            "test_set_sha256": self.test_set.sha256(),
        }

    def _block_hash(self, block: int | str) -> str:
        return "0x" + bytes(self.board_reader.w3.eth.get_block(block)["hash"]).hex()  # type: ignore[arg-type]


def round_record_from_dict(raw: dict[str, Any]) -> RoundRecord:
    """A :class:`RoundRecord` back from ``dataclasses.asdict`` (lists become tuples again)."""
    fields = dict(raw)
    for key in ("candidates", "borda_points", "abstentions", "adversaries", "training_losses"):
        fields[key] = tuple(fields[key])
    fields["scores"] = tuple(None if row is None else tuple(row) for row in fields["scores"])
    return RoundRecord(**fields)


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def format_round(record: RoundRecord, rounds: int) -> str:
    extra = "".join(
        f"  {k} {int(v)}" if k == "adversaries_elected" else f"  {k} {v:.3f}" for k, v in record.extra.items()
    )
    split = ""
    if record.times:
        split = " (" + ", ".join(f"{part} {record.times[part]:.1f}" for part in TIME_PARTS) + ")"
    loss = f"  loss {record.training_loss:.3f}" if record.training_loss is not None else ""
    return (
        f"round {record.round:>2}/{rounds}  accuracy {record.accuracy:.4f}  macro-F1 "
        f"{record.macro_f1:.4f}  elected {list(record.candidates)}  {record.seconds:5.1f} s{split}{loss}  "
        f"gas {record.gas:,}  evidence {record.evidence}{extra}"
    )

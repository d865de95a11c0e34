"""The in-process simulation: a whole SecCL session on one machine, every message on a real EVM."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import torch
from eth_account.signers.local import LocalAccount
from tqdm import tqdm

from seccl.chain.accounts import new_account
from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import Phases
from seccl.chain.gram_gate_consensus import GramGateConsensusClient
from seccl.chain.ledger import Ledger
from seccl.chain.session import session_contracts
from seccl.learning.data import Dataset, ParticipantData
from seccl.learning.evaluation import TEST_BATCH, Evaluator
from seccl.learning.model import build_model, get_flat_params
from seccl.protocol.evidence import Evidence
from seccl.protocol.instructions import EvaluateRequest, Request, TrainRequest
from seccl.protocol.verification import Verdict, verify_evidence
from seccl.roles.participant import Participant
from seccl.roles.participant_state import Journal
from seccl.roles.server import ParameterServer, RoundOutcome, SendAndReceive
from seccl.roles.settings import LearningSettings
from seccl.runtime.establish import OpenSession, open_session, rejoin_session
from seccl.runtime.facts import chain_facts, election_facts, participant_facts
from seccl.runtime.faults import arm_server, maybe_kill
from seccl.runtime.results import RoundRecord, RunResult, duration, format_round, refresh_costs
from seccl.runtime.timing import Stopwatch, TimedBackend, instrument, timed_compute
from seccl.runtime.transport import InMemoryTransport
from seccl.runtime.workers import WorkerPool

ParticipantFactory = Callable[..., Participant]
ServerFactory = Callable[..., ParameterServer]


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
    phases: Phases = field(default_factory=lambda: Phases(update=3600, ballot=3600, model=3600, reveal=3600))


class RoundRecorder(Protocol):
    """What makes a run durable; :class:`Simulation` calls it, the ``runs`` room implements it.

    :meth:`archive_round` stores what round ``r`` produced (round 0: the session's set-up), right
    after the round; :meth:`checkpoint` commits every party's state at the end of round ``r``.
    ``journal`` is where each participant writes a message before the message leaves it.
    """

    @property
    def journal(self) -> Journal | None: ...

    def archive_round(self, sim: Simulation, r: int) -> None: ...

    def checkpoint(self, sim: Simulation, r: int) -> None: ...


class NoRecord:
    """A run that keeps nothing: no journal, no archive, no checkpoint."""

    journal = None

    def archive_round(self, sim: Simulation, r: int) -> None:
        pass

    def checkpoint(self, sim: Simulation, r: int) -> None:
        pass


ESTIMATE_FROM = 64
"""From this many participants on, a run prints an estimate of its round time in round 1."""


class Simulation:
    """Builds one session (contracts, server, participants) on ``backend`` and runs its rounds.

    The runtime, not the server, drives the participants' own checks after every phase, and
    their findings go straight into the run's records. ``recorder`` makes the run durable (see
    :class:`RoundRecorder`); ``adopt`` resumes a session already on the chain, with its own keys,
    whose parties' state the caller restores before :meth:`run`.
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
        on_round: Callable[[RunResult], None] | None = None,
        recorder: RoundRecorder | None = None,
        adopt: OpenSession | None = None,
        workers: int = 0,
        seeded_salts: bool = True,
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
        self.test_evaluator = Evaluator(test, batch_size=TEST_BATCH)
        options = options or SessionOptions()
        n = len(parts)
        initial = get_flat_params(build_model(seed))
        opened = adopt
        if opened is None:
            # Every party's own random key (or the keys given): nothing secret comes from the seed.
            accounts = accounts or [new_account() for _ in range(n)]
            server_account = server_account or new_account()
            opened, board, consensus = open_session(
                backend,
                server_account,
                accounts,
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
            board, consensus = rejoin_session(backend, server_account, accounts, opened)
        self.session, self.first_block = opened.session, opened.first_block
        self.deployment, self.funding = list(opened.deployment), list(opened.funding)
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
                # All parties are this one process: salts from the run's seed make a run repeat
                # bit for bit under fresh keys. A deployed participant's come from its own secret
                # key (``seeded_salts=False`` does the same here, to replay a deployment).
                salt_key=hashlib.sha256(f"seccl-salts/{seed}/{i}".encode()).digest()
                if seeded_salts
                else None,
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
        # Simulated time: a deadline passes at once instead of in an hour (the participants have
        # acted by then: nothing waited for can still change).
        self.server.wait_until = self.pass_time
        self.server.wait_while = lambda busy, deadline: self.pass_time(deadline) if busy() else None
        # A neutral reader (an outside auditor's own connection) for the chain facts of the run.
        reader = backend.connect()
        self.board_reader = board.for_reader(reader)
        self.consensus_reader = consensus.for_reader(reader)
        # The run's durable record, written as each round ends; each participant's journal is the
        # recorder's, written before a message leaves the participant.
        self.recorder: RoundRecorder = recorder or NoRecord()
        self.on_round = on_round
        self.ledger = Ledger(
            reader,
            first_block=self.first_block,
            server=self.session.server,
            participants=self.session.participants,
            contracts=session_contracts(self.session.board, self.session.consensus, self.session.election),
        )
        self.losses: list[float | None] = [None] * n
        for p in self.participants:
            instrument(p, self.watch, self.losses)
            p.journal = self.recorder.journal
        arm_server(self.server)
        # Worker processes for the participants' training and scoring (0: all in this process).
        self.workers = workers
        self.records: list[RoundRecord] = []
        self.evidence: list[Evidence] = []
        self.stopped = False
        self.initial_accuracy: float | None = None
        self.initial_macro_f1: float | None = None  # None after a resume: metrics.json keeps it
        self.start_round = 1
        if adopt is None:  # a new session: its set-up is round 0 of the run's record
            self.recorder.archive_round(self, 0)
            self.recorder.checkpoint(self, 0)
        self._round_started = time.perf_counter()
        self._phase_started = self._round_started
        self._phase_seconds: dict[str, float] = {}
        self._replies = 0

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
            updates = self._phase_seconds.get("updates committed", 0.0) + self._phase_seconds.get(
                "updates revealed", 0.0
            )
            estimate = updates + n * first
            self.progress_log(
                f"estimate: about {duration(estimate)} a round at N = {n} ({duration(updates)} to train "
                f"and post the updates, about {duration(n * first)} for {n} evaluators at "
                f"{duration(first)} each); about {duration(estimate * self.rounds)} for "
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
            p.after_updates(r)
        info = self.board_reader.round_info(r)
        if info.updates < self.session.n:
            self.pass_time(info.update_deadline)  # the chain's deadline closes the commitments
        self._phase(r, "updates committed")
        for p in everyone:
            p.after_commitments(r)
        info = self.board_reader.round_info(r)
        if info.reveal_bitmap != info.update_bitmap:
            self.pass_time(info.reveal_deadline)  # a missing reveal: the deadline closes the reveals
        self._phase(r, "updates revealed")
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

    def _run(self, bar: Any, on_reply: Callable[[int, Request], None], pool: WorkerPool | None) -> RunResult:
        n = self.session.n
        compute = timed_compute(pool, self.watch, self.losses) if pool is not None else None
        transport = InMemoryTransport(self.participants, on_reply=on_reply, compute=compute)
        if self.initial_accuracy is None:
            self.initial_accuracy, self.initial_macro_f1 = self.test_evaluator.evaluate(self.server.params)
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
            self.recorder.archive_round(self, r)
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
                self.recorder.checkpoint(self, r)
                break
            accuracy, f1 = self.test_evaluator.evaluate(outcome.params)
            extra = self.round_metrics(r, outcome.params) if self.round_metrics else {}
            if self.adversaries:
                extra["adversaries_elected"] = float(len(self.adversaries & set(outcome.candidates)))
            extra.update(self._filter_metrics(r))
            scores, points, abstentions = election_facts(self.session, self.consensus_reader, r)
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
            self._refresh_costs(records)
            self.recorder.checkpoint(self, r)
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
            if final:
                # Findings on the final model belong to the last round: its record counts them.
                records[-1] = replace(records[-1], evidence=records[-1].evidence + len(final))
            if self._refresh_costs(records) or final:
                self.recorder.checkpoint(self, records[-1].round)
                if self.on_round is not None:
                    self.on_round(self._result(records, evidence, initial_accuracy))
        return self._result(records, evidence, initial_accuracy)

    def _filter_metrics(self, r: int) -> dict[str, float]:
        """Under gram-gate, what the round's agreed filter view kept: how many updates, how many
        eligible honest ones it kept out, and how many adversaries it kept (none without a view)."""
        if not isinstance(self.consensus_reader, GramGateConsensusClient):
            return {}
        agreed = self.consensus_reader.agreed_view_of(r)
        if agreed is None:
            return {"view_agreed": 0.0}
        kept, dropped, _ = agreed
        eligible = set(self.board_reader.round_info(r).eligible)
        kept_set = {i for i in eligible if kept >> i & 1}
        return {
            "view_agreed": 1.0,
            "kept": float(len(kept_set)),
            "dropped": float(bin(dropped).count("1")),
            "honest_kept_out": float(len(eligible - kept_set - self.adversaries)),
            "adversaries_kept": float(len(kept_set & self.adversaries)),
        }

    def _refresh_costs(self, records: list[RoundRecord]) -> bool:
        """Bring each record's gas and transactions up to what the chain now attributes to its
        round: an accusation of round r's model is mined later (when the model is handed over in
        round r + 1, or at the end), but the chain counts it in round r. Returns whether any changed."""
        return refresh_costs(records, self.ledger.update())

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
            chain=chain_facts(
                backend=self.backend,
                session=self.session,
                board=self.board_reader,
                aggregation=self.settings.aggregation,
                deployment=self.deployment,
                funding=self.funding,
                test_set=self.test_set,
            ),
            initial_accuracy=initial_accuracy,
            initial_macro_f1=self.initial_macro_f1,
            participants=participant_facts(self.participants, self.adversaries),
            ledger=self.ledger.update(),
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

"""Where a round's time goes: training, evaluation and chain requests, each timed exclusively."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from web3 import Web3

from seccl.chain.backends import ChainBackend
from seccl.learning.training import recording_losses
from seccl.roles.participant import Compute, Participant
from seccl.runtime.faults import maybe_kill
from seccl.runtime.workers import WorkerPool

TIME_PARTS = ("training", "evaluation", "chain")
"""The parts a round's time is split into (the rest is ``other``: encoding, hashing, signing,
aggregation, the participants' checks)."""

Losses = list[float | None]
"""Each participant's mean training loss over its last local epoch (None: it did not train)."""


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


def instrument(p: Participant, watch: Stopwatch, losses: Losses) -> None:
    """Time ``p``'s local training and scoring, and keep its last epoch's training loss.
    The wrappers look the methods up on each call, so they call exactly what ``p`` would."""

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


def timed_compute(
    pool: WorkerPool, watch: Stopwatch, losses: Losses
) -> Callable[[Sequence[tuple[int, Compute]]], list[Any]]:
    """Runs a batch of the participants' computations in ``pool``, timed as training or
    evaluation, keeping each trainer's last-epoch loss."""

    def compute(jobs: Sequence[tuple[int, Compute]]) -> list[Any]:
        watch.enter("training" if jobs[0][1].method == "local_model" else "evaluation")
        try:
            results = pool.run(jobs)
        finally:
            watch.exit()
        for (index, job), (_, loss) in zip(jobs, results, strict=True):
            if job.method == "local_model":
                losses[index] = loss
                maybe_kill(job.args[1], "training")
        return [result for result, _ in results]

    return compute

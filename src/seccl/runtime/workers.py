"""Runs the participants' heavy computations (local training, scoring) in worker processes, so a
simulated round uses every core. Each worker is a fork of the simulation after the participants
were built: it holds a copy of every participant (its data, its class, so an adversary's own
training) and computes exactly what the participant would, bit for bit (one torch thread each,
as in the main process). The checks, the signing and the chain stay in the main process."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import signal
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from seccl.learning.training import recording_losses
from seccl.roles.participant import Compute, Participant

_PARTICIPANTS: Sequence[Participant] = ()
"""The participants, as the workers inherit them when they are forked."""


def _start_worker() -> None:
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    with contextlib.suppress(OSError, AttributeError):  # die with the simulation, even if SIGKILLed
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _compute(index: int, method: str, args: tuple[Any, ...]) -> tuple[Any, float | None]:
    """Run participant ``index``'s own ``method`` on ``args``; with its last epoch's loss."""
    participant = _PARTICIPANTS[index]
    with recording_losses() as calls:
        result = getattr(type(participant), method)(participant, *args)
    return result, (calls[-1][-1] if calls and calls[-1] else None)


class WorkerPool:
    """``workers`` forked processes that run :class:`Compute` jobs of ``participants``."""

    def __init__(self, participants: Sequence[Participant], workers: int):
        global _PARTICIPANTS
        _PARTICIPANTS = participants
        self._executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker
        )

    def run(self, jobs: Sequence[tuple[int, Compute]]) -> list[tuple[Any, float | None]]:
        """Each job's result and training loss, in the order of ``jobs``."""
        futures = [self._executor.submit(_compute, i, job.method, job.args) for i, job in jobs]
        return [future.result() for future in futures]

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

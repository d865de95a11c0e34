"""An experiment's helper workers: more processes that run its runs beside this one, claiming them by lock."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from seccl.chain.anvil import die_with_parent


def worker_log(index: int) -> str:
    """The name of helper worker ``index``'s log (1 is the first helper) in the work directory."""
    return f"worker-{index}.log"


@contextlib.contextmanager
def helper_workers(
    argv: Sequence[str], directory: Path, count: int
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` processes of the command line ``argv`` (one that joins this experiment), each
    logging to ``worker-I.log`` in ``directory``; stopped (SIGTERM, so their runs stop where they
    can resume) if this one is interrupted or fails, and killed with it if it is killed
    (PR_SET_PDEATHSIG)."""
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(1, count + 1):
            with open(directory / worker_log(i), "ab") as log:
                workers.append(
                    subprocess.Popen(
                        list(argv),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        preexec_fn=die_with_parent,
                    )
                )
        yield workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            worker.wait()


def failed_logs(workers: Sequence[subprocess.Popen[bytes]]) -> list[str]:
    """The logs of the helper workers that failed, once every one has ended."""
    return [worker_log(i) for i, worker in enumerate(workers, 1) if worker.wait() != 0]

"""Every process a run starts (its anvil, its worker processes) is stopped however the run ends:
SIGINT, SIGTERM, or SIGKILL of the run itself (they then die with their parent)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import alive, anvil_children, children, wait_for

pytestmark = pytest.mark.anvil


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["int", "term", "kill"])
def test_a_run_stopped_by_a_signal_leaves_no_process_running(tmp_path: Path, how: signal.Signals) -> None:
    run = tmp_path / "run"
    argv = [
        sys.executable,
        "-m",
        "seccl.cli.main",
        "run",
        "-n",
        "4",
        "-r",
        "50",
        "-l",
        "0.5",
        "--local-epochs",
        "1",
        "--per-participant",
        "100",
        "--chain",
        "anvil",
        "--out",
        str(run),
        "--no-progress",
        "--allow-evidence",
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    anvils: list[int] = []
    started: set[int] = set()

    def training() -> bool:
        # anvil, and the two worker processes, which fork when the first round's training starts
        anvils[:] = anvil_children(process.pid)
        started.update(children(process.pid))
        return bool(anvils) and len(started - set(anvils)) >= 2

    try:
        assert wait_for(training), f"anvil and two workers never started: {sorted(started)}"
        time.sleep(1.0)  # inside the session, not at start-up
        process.send_signal(how)
        process.wait(timeout=60)
        assert wait_for(lambda: not any(alive(pid) for pid in started), timeout=20), (
            f"a process the run started outlived it ({how.name}): {[pid for pid in started if alive(pid)]}"
        )
        if how is not signal.SIGKILL:
            assert process.returncode == 130
            printed = process.stderr.read().decode()
            assert "Traceback" not in printed
            assert f"seccl run --resume {run}" in printed  # it says how to go on
    finally:
        if process.poll() is None:
            process.kill()
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

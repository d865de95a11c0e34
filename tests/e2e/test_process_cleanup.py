"""Every process a run starts is stopped however the run ends: SIGINT, SIGTERM, or SIGKILL of
the run itself (anvil then dies with its parent)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.anvil


def anvils_using(state: Path) -> list[int]:
    """The pids of anvil processes whose command line names ``state``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"anvil") and str(state).encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def wait_for(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["int", "term", "kill"])
def test_a_run_stopped_by_a_signal_leaves_no_anvil_running(tmp_path: Path, how: signal.Signals) -> None:
    run = tmp_path / "run"
    state = run / "anvil-state.json"
    argv = [
        sys.executable,
        "-m",
        "seccl.experiments.cli",
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
    try:
        assert wait_for(lambda: bool(anvils_using(state))), "anvil never started"
        time.sleep(1.0)  # inside the session, not at start-up
        process.send_signal(how)
        process.wait(timeout=60)
        assert wait_for(lambda: not anvils_using(state), timeout=20), f"anvil outlived the run ({how.name})"
        if how is not signal.SIGKILL:
            assert process.returncode == 130
            assert "Traceback" not in process.stderr.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
        for pid in anvils_using(state):
            os.kill(pid, signal.SIGKILL)

"""However `seccl deploy local` ends (Ctrl-C, SIGTERM, or SIGKILL of the command itself), no
process it started outlives it: not anvil, the SuperLink, a SuperNode, their SuperExecs and apps,
nor a participant's watcher."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.processes import MARKER, marked, new_marker
from tests.processes import wait_for

SECCL = str(Path(sys.executable).parent / "seccl")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_no_process_outlives_the_deployment(tmp_path: Path, sig: signal.Signals) -> None:
    root = tmp_path / "deployment"
    marker = new_marker()
    command = [SECCL, "deploy", "local", "-n", "2", "-r", "2", "--out", str(root)]
    command += ["--per-participant", "60", "--local-epochs", "1"]
    process = subprocess.Popen(
        command, env={**os.environ, MARKER: marker}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        # Everything is up once a participant's ClientApp has answered the server's hello.
        started = wait_for(lambda: (root / "participant-0000" / "state" / "node.log").is_file(), timeout=180)
        assert started, "the deployment did not get as far as a hello"
        assert len(marked(marker)) >= 6  # anvil, SuperLink, 2 SuperNodes and their watchers, flwr run
        process.send_signal(sig)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    if sig == signal.SIGINT:
        assert code == 130
    else:
        assert code == -signal.SIGKILL
    assert wait_for(lambda: not marked(marker), timeout=30), f"left running: {marked(marker)}"

"""`seccl deploy local`: an anvil, a SuperLink and three SuperNodes as separate processes on
127.0.0.1, a gram-gate session through `flwr run`, and nothing left running. The deployed
session's model is bit-identical to the simulation's for the same keys, data and seed (the other
deployment tests run the paper's Borda)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.deploy.conftest import GATE_SETTINGS, PER_PARTICIPANT, ROUNDS, N, saved_model, simulated_model
from tests.deploy.processes import MARKER, marked, new_marker
from tests.processes import wait_for

SECCL = str(Path(sys.executable).parent / "seccl")


@pytest.mark.long
def test_deploy_local_runs_the_simulations_session_over_flower(tmp_path: Path) -> None:
    root = tmp_path / "deployment"
    marker = new_marker()
    command = [SECCL, "deploy", "local", "-n", str(N), "-r", str(ROUNDS), "--out", str(root)]
    command += ["--per-participant", str(PER_PARTICIPANT), "--local-epochs", "1"]
    command += ["--phase-seconds", "300", "--phase-timeout", "120", "--election", "gram-gate"]
    done = subprocess.run(
        command, env={**os.environ, MARKER: marker}, capture_output=True, text=True, timeout=900
    )

    assert done.returncode == 0, done.stdout + done.stderr
    for i in range(N):
        state = root / f"participant-{i:04d}" / "state"
        assert f"participant {i}: {state} (evidence.json: 0 findings" in done.stdout
        assert json.loads((state / "evidence.json").read_text()) == []
    assert f"server: {root / 'server' / 'records'}" in done.stdout
    expected, candidates = simulated_model(root, settings=GATE_SETTINGS)
    assert np.array_equal(saved_model(root / "server" / "records" / "models" / "final.pt"), expected)
    record = json.loads((root / "server" / "records" / "run.json").read_text())
    assert record["complete"]
    assert [tuple(r["candidates"]) for r in record["rounds"]] == candidates
    assert record["dropouts"] == []
    assert all(r["ballots"] == N for r in record["rounds"])
    assert wait_for(lambda: not marked(marker), timeout=15), f"left running: {marked(marker)}"
    # `seccl audit` re-checks the server's records and a participant's own against the session
    # file and the chain the deployment saved (root/session.json, root/chain/anvil-state.json).
    # The server's records include a simulated run's (metrics.json, chain.json, …): checked too.
    for records in (root / "server" / "records", root / "participant-0001" / "state"):
        audited = subprocess.run([SECCL, "audit", str(records)], capture_output=True, text=True, timeout=300)
        assert audited.returncode == 0, audited.stdout + audited.stderr
        assert audited.stdout.splitlines()[-1] == "clean", audited.stdout
        if records.name == "records":
            assert "metrics.json: ok" in audited.stdout and "chain.json: ok" in audited.stdout
            # The gram-gate rule's view, recomputed from the revealed bytes, in every round.
            assert audited.stdout.count("1 filter views") == ROUNDS, audited.stdout

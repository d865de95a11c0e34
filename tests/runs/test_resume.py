"""A real `seccl run`, SIGKILLed at several points and resumed with `seccl run --resume`, ends with
the uninterrupted run's model bit for bit, every message on the chain exactly once, and an audit
that passes: on its own anvil (whose saved chain rolls back to the last finished round) and on a
node of its own (which keeps everything mined before the kill)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from seccl.chain.anvil import AnvilNode
from tests.processes import alive, anvil_children, wait_for

pytestmark = pytest.mark.anvil

SETTINGS = ["-n", "4", "-r", "3", "--local-epochs", "1", "--per-participant", "100", "--no-progress"]
KILLED = -9


def seccl(*args: str, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SECCL_KILL_AT"}
    if kill_at is not None:
        env["SECCL_KILL_AT"] = kill_at
    argv = [sys.executable, "-m", "seccl.cli.main", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same session, never interrupted."""
    run = tmp_path_factory.mktemp("reference") / "run"
    done = seccl("run", *SETTINGS, "--out", str(run))
    assert done.returncode == 0, done.stderr
    return run


def same_model(a: Path, b: Path) -> bool:
    left, right = torch.load(a / "models" / "final.pt"), torch.load(b / "models" / "final.pt")
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def posts_per_message(run: Path) -> Counter[tuple[str, int, int | None, str]]:
    """How often each message (action, round, author or voter) was sent to the chain, reverted
    attempts included; the sender is the server or the author, as in the uninterrupted run."""
    ledger = json.loads((run / "chain.json").read_text())["transactions"]
    index = {a: i for i, a in enumerate(json.loads((run / "chain.json").read_text())["participants"])}
    return Counter(
        (t["action"], t["round"], index.get(t["subject"]), t["role"])
        for t in ledger
        if t["round"] is not None
    )


def assert_resumed_like_the_reference(
    run: Path, reference: Path, killed: subprocess.CompletedProcess[str]
) -> None:
    assert killed.returncode == KILLED, killed.stderr
    assert json.loads((run / "run.json").read_text())["complete"] is False

    resumed = seccl("run", "--resume", str(run), "--no-progress")

    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after round 1 of 3" in resumed.stdout
    assert json.loads((run / "run.json").read_text())["complete"] is True
    assert same_model(run, reference)
    posts = posts_per_message(run)
    assert set(posts.values()) == {1}, f"sent twice: {[k for k, v in posts.items() if v > 1]}"
    assert posts == posts_per_message(reference)  # the same transactions as the uninterrupted run
    ledger = json.loads((run / "chain.json").read_text())["transactions"]
    assert all(t["status"] == "succeeded" for t in ledger)


@pytest.mark.parametrize("point", ["training", "relay", "tally", "model", "archived"])
def test_a_run_killed_on_its_own_anvil_resumes_to_the_same_model(
    tmp_path: Path, reference: Path, point: str
) -> None:
    run = tmp_path / "run"

    killed = seccl("run", *SETTINGS, "--out", str(run), kill_at=f"2:{point}")

    assert_resumed_like_the_reference(run, reference, killed)
    audit = seccl("audit", str(run))
    assert audit.returncode == 0 and "AUDIT PASSED" in audit.stdout, audit.stdout + audit.stderr


@pytest.mark.parametrize("point", ["relay", "model"])
def test_a_run_killed_on_a_node_that_keeps_its_posts_reconciles_without_posting_twice(
    tmp_path: Path, reference: Path, point: str
) -> None:
    # The node keeps what was mined before the kill: after "relay", one update is on the chain and
    # three only in the participants' journals; after "model", the whole round is on the chain
    # but in none of the run's records.
    with AnvilNode(None) as node:
        run = tmp_path / "run"
        killed = seccl("run", *SETTINGS, "--chain", node.url, "--out", str(run), kill_at=f"2:{point}")

        assert_resumed_like_the_reference(run, reference, killed)
        audit = seccl("audit", str(run), "--chain", node.url)
        assert audit.returncode == 0 and "AUDIT PASSED" in audit.stdout, audit.stdout + audit.stderr


def test_a_killed_run_leaves_no_anvil_running(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "seccl.cli.main", "run", *SETTINGS, "--out", str(tmp_path / "run")]
    env = {**os.environ, "SECCL_KILL_AT": "2:tally"}
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    anvils: set[int] = set()
    while process.poll() is None:
        anvils.update(anvil_children(process.pid))
        time.sleep(0.05)  # the anvil lives for seconds; a busy scan would take a core from the other tests
    assert process.returncode == KILLED and anvils
    assert wait_for(lambda: not any(alive(pid) for pid in anvils), timeout=20)


def test_resume_refuses_new_settings_and_an_embedded_run(tmp_path: Path, reference: Path) -> None:
    changed = seccl("run", "--resume", str(reference), "-r", "5")
    assert changed.returncode == 2 and "a resumed run keeps the settings" in changed.stderr

    done = seccl("run", "--resume", str(reference), "--no-progress")
    assert done.returncode == 0 and "is complete: nothing to resume" in done.stdout

    embedded = tmp_path / "embedded"
    killed = seccl("run", *SETTINGS, "--chain", "embedded", "--out", str(embedded), kill_at="2:tally")
    assert killed.returncode == KILLED
    refused = seccl("run", "--resume", str(embedded))
    assert refused.returncode == 2 and "cannot be resumed" in refused.stderr


def test_resume_refuses_a_chain_whose_contract_this_seccl_does_not_commit(tmp_path: Path) -> None:
    # As after an upgrade between the kill and the resume: the saved chain's consensus contract
    # differs from the committed one in its last byte (the compiler's metadata hash, the part a
    # rebuilt contract changes first). The resume is refused in one line and the run's records
    # stay as the kill left them, so the seccl that began it can still resume it.
    run = tmp_path / "run"
    killed = seccl("run", *SETTINGS, "--out", str(run), kill_at="2:tally")
    assert killed.returncode == KILLED
    state_file = run / "anvil-state.json"
    state = json.loads(state_file.read_text())
    consensus = json.loads((run / "chain.json").read_text())["consensus"].lower()
    account = next(a for k, a in state["accounts"].items() if k.lower() == consensus)
    account["code"] = account["code"][:-2] + ("00" if account["code"][-2:] != "00" else "01")
    state_file.write_text(json.dumps(state))
    before = (run / "run.json").read_text()

    refused = seccl("run", "--resume", str(run), "--no-progress")

    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not the committed Consensus contract" in lines[0]
    assert "resume it with the seccl version that began it" in lines[0]
    assert (run / "run.json").read_text() == before

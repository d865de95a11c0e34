"""The README's steps for several machines, followed literally: every ``bash`` block marked
``<!-- readme-steps: NAME -->`` in README.md is run as written with bash, each "machine" a folder
of its own (its own HOME, so nothing lands in ``~/.flwr``) and its own processes, with only the
variables set at a block's top given this host's values (free ports, N = 3, one round, tiny data).
Between blocks the test carries the files the README says to carry, and nothing else. The
session must finish, and the server's records and every participant's findings and records must
pass ``seccl audit`` and ``seccl node verify``: so the README cannot drift from the code."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from seccl.chain.anvil import find_anvil, free_port
from tests.deploy.processes import MARKER, marked, new_marker
from tests.processes import wait_for

README = Path(__file__).resolve().parents[2] / "README.md"
N = 3
BLOCK = re.compile(r"<!-- readme-steps: (\S+) -->\s*```bash\n(.*?)```", re.DOTALL)
SETTING = re.compile(r"^([A-Z_]+)=(\S*)$")


def readme_blocks() -> dict[str, str]:
    return {name: body for name, body in BLOCK.findall(README.read_text())}


def substitute(block: str, values: dict[str, str]) -> str:
    """``block`` with the variables set on its top lines (``NAME=value``) given ``values``'
    values; the rest of the block as written."""
    lines = block.splitlines()
    for k, line in enumerate(lines):
        match = SETTING.match(line)
        if not match:
            break
        if match.group(1) in values:
            lines[k] = f"{match.group(1)}={values[match.group(1)]}"
    return "\n".join(lines) + "\n"


class Machines:
    """Each block runs as ``bash -e`` in its machine's folder, in a process group of its own that
    also holds what it left running in the background; :meth:`stop` ends those groups, and then
    anything else that carries this test's marker (a SuperExec Flower starts in a session of its
    own), by pid."""

    def __init__(self, root: Path, values: dict[str, str]) -> None:
        self.root = root
        self.values = values
        self.marker = new_marker()
        self.groups: list[int] = []
        bin_dirs = [str(find_anvil().parent), str(Path(sys.executable).parent)]
        self.base_env = {
            **os.environ,
            "PATH": os.pathsep.join([*bin_dirs, os.environ.get("PATH", "")]),
            "FLWR_TELEMETRY_ENABLED": "0",
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            MARKER: self.marker,
        }
        self.base_env.pop("FLWR_HOME", None)

    def dir(self, machine: str) -> Path:
        path = self.root / machine
        path.mkdir(parents=True, exist_ok=True)
        return path

    def run(self, machine: str, block: str, timeout: float = 300.0, **values: str) -> str:
        here = self.dir(machine)
        script = substitute(block, {**self.values, **values})
        log = here / f"steps-{len(self.groups):02d}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                ["bash", "-e", "-c", script],
                cwd=here,
                env={**self.base_env, "HOME": str(here)},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.groups.append(process.pid)
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                code = None
        output = log.read_text()
        assert code == 0, f"{machine}: exit {code}\n$ {script}\n{output}\n{self.logs()}"
        return output

    def logs(self) -> str:
        """The tails of every log the machines' processes wrote, for a failure's message."""
        tails = []
        for path in sorted(self.root.glob("*/*.log")):
            tails.append(
                f"--- {path.relative_to(self.root)}\n" + "\n".join(path.read_text().splitlines()[-15:])
            )
        return "\n".join(tails)

    def stop(self) -> None:
        for pgid in self.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
        if not wait_for(lambda: not marked(self.marker), timeout=15):
            for pid in marked(self.marker):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def carry(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[Machines]:
    chain_port = free_port()
    values = {
        "CHAIN_PORT": str(chain_port),
        "CHAIN": f"http://127.0.0.1:{chain_port}",
        "LINK": "127.0.0.1",
        "SAN": "IP:127.0.0.1",
        "LINK_PORT": str(free_port()),
        "N": str(N),
        "TRIAL_SIZE": "100",
        "ROUNDS": "1",
        "LOCAL_EPOCHS": "1",
        "PHASE_SECONDS": "300",
    }
    group = Machines(tmp_path, values)
    try:
        yield group
    finally:
        group.stop()
    assert not marked(group.marker), f"left running: {marked(group.marker)}"


@pytest.mark.long
def test_the_readmes_steps_for_several_machines_run_a_session(machines: Machines) -> None:
    blocks = readme_blocks()
    assert list(blocks) == [
        "chain",
        "participant-keys",
        "server-setup",
        "participant-start",
        "server-session",
        "server-run",
        "participant-verify",
    ]
    root = machines.root
    server = machines.dir("server")
    participants = [f"participant-{p}" for p in range(N)]

    # 0. the chain node
    machines.run("chain", blocks["chain"])
    chain_port = int(machines.values["CHAIN_PORT"])
    assert wait_for(lambda: listening(chain_port), timeout=60), machines.logs()

    # 1. every participant's keys; its address and SuperNode public key go to the server
    roster = []
    for p, name in enumerate(participants):
        machines.run(name, blocks["participant-keys"])
        roster.append((root / name / "address.txt").read_text().strip())
        carry(root / name / "keys" / "flwr-node.pub", server / f"flwr-node-{p}.pub")
    assert all(re.fullmatch(r"0x[0-9a-fA-F]{40}", address) for address in roster)
    (server / "roster.txt").write_text("".join(f"{address}\n" for address in roster))

    # 2. the server's set-up and SuperLink; ca.crt and each trial data file go to the participants
    output = machines.run("server", blocks["server-setup"])
    for p, name in enumerate(participants):
        carry(server / "ca.crt", root / name / "ca.crt")
        carry(server / "data" / f"participant-{p:04d}.npz", root / name / f"participant-{p}.npz")
    assert (server / "data" / "test.npz").is_file()

    # 3. every participant's SuperNode and watcher, before the session opens
    for p, name in enumerate(participants):
        machines.run(name, blocks["participant-start"], P=str(p), NODE_PORT=str(free_port()))

    # 4. the session; session.json goes to every participant
    machines.run("server", blocks["server-session"])
    for name in participants:
        carry(server / "session.json", root / name / "session.json")

    # 5. the run, and the server's records audited
    output = machines.run("server", blocks["server-run"], timeout=900)
    assert output.splitlines()[-1] == "clean", output
    assert "metrics.json: ok" in output and "chain.json: ok" in output
    record = json.loads((server / "records" / "run.json").read_text())
    assert record["complete"], record
    assert len(record["rounds"]) == 1 and record["dropouts"] == []
    assert record["rounds"][0]["ballots"] == N
    assert record["rounds"][0]["accuracy"] is not None  # the test set is where the README says

    # 6. every participant's findings verified and records audited
    for name in participants:
        output = machines.run(name, blocks["participant-verify"])
        assert output.splitlines()[-1] == "clean", output
        assert json.loads((root / name / "seccl-state" / "evidence.json").read_text()) == []

"""Finding the processes a run started, for the tests that check none outlives it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def anvil_children(parent: int) -> list[int]:
    """The pids of the live anvil processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            status = _status(int(entry.name))
            if status.get("Name") == "anvil" and status.get("PPid") == str(parent) and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def children(parent: int) -> list[int]:
    """The pids of the live processes whose parent is ``parent`` (anvil, worker processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if (
            entry.name.isdigit()
            and _status(int(entry.name)).get("PPid") == str(parent)
            and alive(int(entry.name))
        ):
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    state = _status(pid).get("State", "")
    return bool(state) and not state.startswith("Z")


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False

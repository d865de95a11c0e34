"""Crash injection for the kill-and-resume tests: ``SECCL_KILL_AT=ROUND:POINT`` makes the process
kill itself with SIGKILL (no clean-up, as a power cut would) when the run reaches that point."""

from __future__ import annotations

import os
import signal

KILL_POINTS = ("training", "relay", "tally", "model", "archived")
"""Where a run can be killed: after the first participant of the round has trained; after the
server has posted the round's first update but not the others (some updates on the chain, the
rest only stored); right after the tally; right after the model was mined, before the round's
records were stored; after they were stored with their Tx-IDs, before the chain was saved (a
chain that then loses the round's transactions)."""

ENVIRONMENT = "SECCL_KILL_AT"


def maybe_kill(round_: int, point: str) -> None:
    """SIGKILL this process if ``SECCL_KILL_AT`` names ``round_`` and ``point`` (else nothing)."""
    if os.environ.get(ENVIRONMENT) == f"{round_}:{point}":
        os.kill(os.getpid(), signal.SIGKILL)


NODE_ENVIRONMENT = "SECCL_KILL_NODE_AT"
"""A deployment's crash injection: ``ROUND:train`` makes a participant's ClientApp SIGKILL its
whole SuperNode (its process group: the SuperNode, its SuperExec and the ClientApp itself) on the
training request of ``ROUND``, as if the participant's machine died in the middle of that round."""


def maybe_kill_node(round_: int, point: str) -> None:
    """SIGKILL this process's group if ``SECCL_KILL_NODE_AT`` names ``round_`` and ``point``."""
    if os.environ.get(NODE_ENVIRONMENT) == f"{round_}:{point}":
        os.killpg(os.getpgid(0), signal.SIGKILL)

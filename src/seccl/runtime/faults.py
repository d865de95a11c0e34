"""Crash injection for the kill-and-resume tests: ``SECCL_KILL_AT=ROUND:POINT`` makes the process
kill itself with SIGKILL (no clean-up, as a power cut would) when the run reaches that point."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # keep this module light to import
    import numpy as np

    from seccl.protocol.envelope import Commitment
    from seccl.roles.server import ParameterServer

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


def arm_server(server: ParameterServer) -> None:
    """The crash points inside the server's phases, when ``SECCL_KILL_AT`` is set (otherwise the
    server keeps its own methods)."""
    if not os.environ.get(ENVIRONMENT):
        return
    relay_update, post_model = server.relay_update, server.post_model

    def relayed(round_: int, author: str, commitment: Commitment) -> Any:
        receipt = relay_update(round_, author, commitment)
        maybe_kill(round_, "relay")
        return receipt

    def posted(round_: int, params: np.ndarray) -> bool:
        done = post_model(round_, params)
        maybe_kill(round_, "model")
        return done

    setattr(server, "relay_update", relayed)  # noqa: B010
    setattr(server, "post_model", posted)  # noqa: B010


NODE_ENVIRONMENT = "SECCL_KILL_NODE_AT"
"""A deployment's crash injection: ``ROUND:train`` makes a participant's own process (``seccl node
watch``) SIGKILL its whole process group (its SuperNode, the SuperExec and ClientApp, and itself)
on the training request of ``ROUND``, as if the participant's machine died in the middle of that
round."""


def maybe_kill_node(round_: int, point: str) -> None:
    """SIGKILL this process's group if ``SECCL_KILL_NODE_AT`` names ``round_`` and ``point``."""
    if os.environ.get(NODE_ENVIRONMENT) == f"{round_}:{point}":
        os.killpg(os.getpgid(0), signal.SIGKILL)

"""How long a deployment's server waits for a participant's reply before it records a dropout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seccl.chain.bulletin_board import Phases, RoundInfo
from seccl.protocol.instructions import EvaluateRequest, Request, RevealRequest, TrainRequest

FOLLOW = 3.0
"""The timeout follows the measured answers: ``FOLLOW`` × the slowest answer of the same kind so
far, never below the configured phase-timeout, and never above ``FOLLOW`` × it, so a participant
that answers slowly on purpose cannot make the server's patience grow round after round."""

RELAYED_SHARE = 0.5
"""The part of a commitment or ballot phase, before its deadline, that the server does not spend
waiting: its last third is the participant's own (its watcher posts its message itself when the
chain lacks it, and records the server as silent), and the sixth before that is the server's, to
relay what it holds before the watcher looks."""

ON_CHAIN = (TrainRequest, RevealRequest, EvaluateRequest)
"""The requests whose reply is (or follows) a message the chain takes in a phase of its own."""


@dataclass(frozen=True)
class ChainWindow:
    """The on-chain phase a reply serves: ``seconds`` until the chain closes it (its deadline, by
    the chain's clock), of which the last ``kept`` are not spent waiting."""

    phase: str  # what the chain takes in it: "commitment", "reveal", "ballot"
    seconds: float
    kept: float


@dataclass(frozen=True)
class Wait:
    """How long to wait for a reply, and why (said in a dropout's reason). ``cut_short``: the
    chain's deadline ended the wait before the participant had its measured time, so its silence
    says nothing about it (it is not counted as down for the rest of the round)."""

    seconds: float
    why: str
    cut_short: bool = False


def chain_window(request: Request, info: RoundInfo, now: int, phases: Phases) -> ChainWindow | None:
    """The phase of round ``info`` whose message ``request``'s reply is, at chain time ``now``: a
    train request's reply is a commitment the server relays, an evaluate request's a ballot the
    server relays, a reveal prompt's answer comes once the participant revealed on its own (nothing
    to relay); the other requests' replies carry nothing the chain takes (None)."""
    if info.opened_at == 0:
        return None  # a round the chain has not opened: no schedule to follow
    if isinstance(request, TrainRequest):
        return ChainWindow("commitment", info.update_deadline - now, phases.update * RELAYED_SHARE)
    if isinstance(request, RevealRequest):
        return ChainWindow("reveal", info.reveal_deadline - now, 0.0)
    if isinstance(request, EvaluateRequest):
        return ChainWindow("ballot", info.ballot_deadline - now, phases.ballot * RELAYED_SHARE)
    return None


def reply_wait(
    answered: Sequence[float], configured: float, window: ChainWindow | None = None, kind: str = "request"
) -> Wait:
    """Seconds to wait for a reply to a ``kind`` request: the later of (a) the timeout that
    follows the ``answered`` durations (seconds) of earlier replies of that kind (see
    :data:`FOLLOW`; at least ``configured``, the phase-timeout) and (b) the time the chain still
    takes the reply's message (``window``, less its kept part), but never past the chain's
    deadline: after it the contract has closed the phase anyway."""
    slowest = max(answered, default=0.0)
    followed = min(max(configured, FOLLOW * slowest), FOLLOW * configured)
    if followed == configured:
        why = "the phase-timeout"
    else:
        why = f"{FOLLOW:g}× the slowest {kind} answered so far ({slowest:.1f} s)"
        if followed < FOLLOW * slowest:
            why += f", at most {FOLLOW:g}× the phase-timeout"
    if window is None:
        return Wait(followed, why)
    deadline = max(window.seconds, 0.0)
    open_for = window.seconds - window.kept
    if open_for >= followed:
        if window.kept == 0:
            return Wait(
                open_for, f"while the chain takes its {window.phase}: until the {window.phase} deadline"
            )
        return Wait(
            open_for,
            f"while the chain takes its {window.phase}, less the last {window.kept:.0f} s before its "
            "deadline, kept for the server's relays and the participant's own post",
        )
    if followed <= deadline:
        return Wait(followed, why)
    return Wait(
        deadline,
        f"until the {window.phase} deadline, after which the chain takes none; {why} would have "
        f"been {followed:.0f} s: not counted as down",
        cut_short=True,
    )

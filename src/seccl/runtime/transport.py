"""The one interface between the server's round loop and the participants, and its in-memory form.

The server calls ``send_and_receive`` with one request per participant and gets one reply each;
a Flower deployment implements the same call over the network (as Flower's ``Grid`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from seccl.protocol.instructions import Reply, Request
from seccl.roles.participant import Compute, Participant, Steps

ComputeRunner = Callable[[Sequence[tuple[int, Compute]]], list[Any]]
"""Runs a batch of participants' computations (in this process or in workers); results in order."""


class ParticipantEndpoint(Protocol):
    """Anything that answers the server's requests (a participant, or a proxy to one)."""

    def handle(self, request: Request) -> Reply: ...


class Transport(Protocol):
    """Delivers one request to each addressed participant and collects their replies."""

    def send_and_receive(self, requests: Mapping[int, Request]) -> dict[int, Reply]: ...


class InMemoryTransport:
    """Calls participants in-process and collects their replies in index order (deterministic).

    A participant answers in steps (``Participant.handle_steps``): every addressed participant
    runs its checks up to its heavy computation, then ``compute`` runs all those computations
    as one batch (in worker processes, if it uses them), then each finishes its reply. Nothing
    a participant does depends on another's answer in the same request, so the replies are the
    same as when each answers in turn. ``on_reply`` is called after each reply.
    """

    def __init__(
        self,
        participants: Sequence[ParticipantEndpoint],
        on_reply: Callable[[int, Request], None] | None = None,
        compute: ComputeRunner | None = None,
    ):
        self._participants = list(participants)
        self._on_reply = on_reply
        self._compute = compute or self._compute_here

    def _compute_here(self, jobs: Sequence[tuple[int, Compute]]) -> list[Any]:
        return [getattr(self._participants[i], job.method)(*job.args) for i, job in jobs]

    def send_and_receive(self, requests: Mapping[int, Request]) -> dict[int, Reply]:
        replies: dict[int, Reply] = {}
        running: dict[int, Steps[Reply]] = {}
        jobs: dict[int, Compute] = {}

        def advance(index: int, value: Any) -> None:
            try:
                jobs[index] = running[index].send(value)
            except StopIteration as done:
                replies[index] = done.value
                if self._on_reply is not None:
                    self._on_reply(index, requests[index])

        for index in sorted(requests):
            endpoint = self._participants[index]
            if type(endpoint).handle is Participant.handle:
                running[index] = endpoint.handle_steps(requests[index])  # type: ignore[attr-defined]
                advance(index, None)
            else:  # an endpoint that answers in one call (a test's wrapper, a network proxy)
                replies[index] = endpoint.handle(requests[index])
                if self._on_reply is not None:
                    self._on_reply(index, requests[index])
        while jobs:
            batch = sorted(jobs.items())
            jobs.clear()
            for (index, _), result in zip(batch, self._compute(batch), strict=True):
                advance(index, result)
        return dict(sorted(replies.items()))

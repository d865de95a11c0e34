"""The one interface between the server's round loop and the participants, and its in-memory form.

The server calls ``send_and_receive`` with one request per participant and gets one reply each;
a Flower deployment implements the same call over the network (as Flower's ``Grid`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from seccl.protocol.instructions import Reply, Request


class ParticipantEndpoint(Protocol):
    """Anything that answers the server's requests (a participant, or a proxy to one)."""

    def handle(self, request: Request) -> Reply: ...


class Transport(Protocol):
    """Delivers one request to each addressed participant and collects their replies."""

    def send_and_receive(self, requests: Mapping[int, Request]) -> dict[int, Reply]: ...


class InMemoryTransport:
    """Calls participants in-process, one after another, in index order (deterministic).

    ``on_reply`` is called after each reply (the simulation drives its progress bar with it).
    """

    def __init__(
        self,
        participants: Sequence[ParticipantEndpoint],
        on_reply: Callable[[int, Request], None] | None = None,
    ):
        self._participants = list(participants)
        self._on_reply = on_reply

    def send_and_receive(self, requests: Mapping[int, Request]) -> dict[int, Reply]:
        replies: dict[int, Reply] = {}
        for index in sorted(requests):
            replies[index] = self._participants[index].handle(requests[index])
            if self._on_reply is not None:
                self._on_reply(index, requests[index])
        return replies

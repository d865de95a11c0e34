"""The :class:`~seccl.runtime.transport.Transport` of a deployment: each request goes to the
participant's own SuperNode through Flower's ``Grid.push_messages``, its reply collected with
``Grid.pull_messages`` every :data:`POLL_INTERVAL` seconds, and a participant that
does not answer while it still could (:mod:`seccl.deploy.patience`), or answers something
malformed, is skipped for that phase, and recorded."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from flwr.app import Message
from flwr.serverapp import Grid

from seccl.chain.bulletin_board import RoundInfo
from seccl.chain.errors import ChainError
from seccl.deploy.client_app import payload, payload_bytes, payload_record, quoted
from seccl.deploy.node import hello_signer
from seccl.deploy.patience import ON_CHAIN, Wait, chain_window, reply_wait
from seccl.deploy.wire import decode_reply, encode_request
from seccl.protocol.errors import MalformedMessageError, ProtocolError, shown
from seccl.protocol.instructions import Reply, Request
from seccl.roles.settings import SessionInfo

HELLO_SIGNATURE_BYTES = 65  # an EIP-191 signature: r, s and v

POLL_INTERVAL = 0.1
"""Seconds between two pulls of the replies a phase waits for. ``Grid.send_and_receive`` sleeps
3 s between pulls, which added up to 3 s to every round trip; a pull is one local request to the
SuperLink, so a short interval costs little."""


@dataclass(frozen=True)
class Dropout:
    """Participant ``index`` gave no usable answer to a ``phase`` request of ``round``."""

    round: int
    phase: str
    index: int
    address: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FlowerTransport:
    """Delivers requests to the participants' SuperNodes and collects their replies.

    Which Flower node a participant answers on is learnt from its signed hello (bound to the
    session and the node), never from the order nodes connected; a participant whose SuperNode
    restarts on a new node says hello again and is reached there from the next round.
    """

    def __init__(
        self,
        grid: Grid,
        session: SessionInfo,
        *,
        timeout: float,
        schedule: Callable[[int], tuple[RoundInfo, int]] | None = None,
        log: Callable[[str], None] = lambda _line: None,
        on_dropout: Callable[[Dropout], None] | None = None,
    ):
        """``timeout`` is the configured phase-timeout, the least a participant is waited for;
        ``schedule(r)`` reads round ``r``'s schedule and the chain's time (without it, no wait
        follows the chain's deadlines)."""
        self.grid = grid
        self.session = session
        self.timeout = timeout
        self.schedule = schedule
        self.log = log
        self.on_dropout = on_dropout
        self.nodes: dict[int, int] = {}  # participant index -> Flower node id
        self._greeted: set[int] = set()
        self.dropouts: list[Dropout] = []
        # Who gave no answer at all in a round: not waited for again in that round's later phases
        # (its machine is likely down); asked again from the next round, where a new hello counts.
        self._silent: dict[int, int] = {}
        # How long each answered request took, by its kind: the timeout follows them.
        self.durations: dict[str, list[float]] = {}

    def discover(self, wait_for: int = 0, within: float = 0.0) -> None:
        """Greet every node not greeted yet; with ``wait_for``, keep at it until that many
        participants are known or ``within`` seconds have passed."""
        deadline = time.monotonic() + within
        while True:
            fresh = [n for n in self.grid.get_node_ids() if n not in self._greeted]
            if fresh:
                self._greet(fresh)
            if len(self.nodes) >= wait_for or time.monotonic() >= deadline:
                return
            time.sleep(1.0)

    def _greet(self, node_ids: list[int]) -> None:
        """Learn which participant answers on each of ``node_ids`` from its signed hello. A node
        whose hello is malformed or unsigned is ignored (and not asked again): its participant,
        if any, is then recorded as a dropout of every phase, "not connected". A node that
        refuses (its participant's own process is not up yet) is asked again at the next
        discovery."""
        messages = [Message(payload(b""), dst_node_id=node, message_type="query.hello") for node in node_ids]
        for reply in exchange(self.grid, messages, self.timeout):
            node = reply.metadata.src_node_id
            self._greeted.add(node)
            if reply.has_error():
                self.log(f"node {node} failed to say hello: {quoted(reply.error.reason)}")
                continue
            try:
                refusal = payload_record(reply).get("error")
                if refusal is not None:
                    self.log(f"node {node} refused to say hello (asked again later): {quoted(refusal)}")
                    self._greeted.discard(node)
                    continue
                address, signature = _hello(reply)
            except ProtocolError as exc:
                self.log(f"node {node} said a malformed hello: {exc}")
                continue
            if address not in self.session.participants:
                self.log(f"node {node} claims {shown(address)}, not a participant of this session: ignored")
                continue
            if hello_signer(self.session.nonce, node, signature) != address:
                self.log(f"node {node} claims {address} without its signature: ignored")
                continue
            index = self.session.participants.index(address)
            if self.nodes.get(index) not in (None, node):
                self.log(f"participant {index} ({address[:10]}) moved to node {node}")
            self.nodes[index] = node

    def send_and_receive(self, requests: Mapping[int, Request]) -> dict[int, Reply]:
        by_node: dict[int, int] = {}
        messages = []
        for index, request in sorted(requests.items()):
            node = self.nodes.get(index)
            if node is None:
                self._dropped(request, index, "not connected (no SuperNode has said hello for it)")
                continue
            if self._silent.get(index) == request.round:
                self._dropped(request, index, "silent earlier in this round: not waited for again")
                continue
            by_node[node] = index
            content = payload(encode_request(request))
            messages.append(Message(content, dst_node_id=node, message_type="query.request"))
        replies: dict[int, Reply] = {}
        answered: set[int] = set()
        wait = self._wait([requests[i] for i in by_node.values()])
        for reply, seconds in timed_exchange(self.grid, messages, wait.seconds) if messages else ():
            index = by_node.get(reply.metadata.src_node_id, -1)
            if index not in requests or index in answered:
                continue  # a reply nobody asked for, or a second one
            answered.add(index)
            if reply.has_error():
                self._dropped(requests[index], index, f"its ClientApp failed: {quoted(reply.error.reason)}")
                continue
            try:
                record = payload_record(reply)
                if "error" in record:
                    reason = quoted(record["error"])
                    self._dropped(requests[index], index, f"it refused the request: {reason}")
                    continue
                replies[index] = decode_reply(payload_bytes(record))
                self.durations.setdefault(type(requests[index]).__name__, []).append(seconds)
            except ProtocolError as exc:
                self._dropped(requests[index], index, f"its reply is malformed: {exc}")
        for index in sorted(set(by_node.values()) - answered):
            if not wait.cut_short:  # it had its time: likely down, not waited for again this round
                self._silent[index] = requests[index].round
            self._dropped(requests[index], index, f"no answer within {wait.seconds:.0f} s: waited {wait.why}")
        return dict(sorted(replies.items()))

    def _wait(self, requests: list[Request]) -> Wait:
        """How long to wait for the replies to ``requests`` (in practice all of one kind and
        round): the longest :func:`~seccl.deploy.patience.reply_wait` of any of them."""
        waits = []
        schedules: dict[int, tuple[RoundInfo, int] | None] = {}
        for request in requests:
            kind = type(request).__name__
            window = None
            if self.schedule is not None and isinstance(request, ON_CHAIN):
                if request.round not in schedules:
                    schedules[request.round] = None
                    try:
                        schedules[request.round] = self.schedule(request.round)
                    except (ChainError, OSError) as exc:
                        # Only the patience depends on it: without the chain's word, the timeout.
                        self.log(f"round {request.round}: the chain's schedule is unreadable: {exc}")
                schedule = schedules[request.round]
                if schedule is not None:
                    window = chain_window(request, *schedule, self.session.phases)
            waits.append(reply_wait(self.durations.get(kind, ()), self.timeout, window, kind))
        return max(waits, key=lambda w: w.seconds, default=Wait(self.timeout, "the phase-timeout"))

    def _dropped(self, request: Request, index: int, reason: str) -> None:
        dropout = Dropout(
            request.round, type(request).__name__, index, self.session.participants[index], reason
        )
        self.dropouts.append(dropout)
        self.log(f"round {dropout.round}: participant {index} skipped for {dropout.phase}: {reason}")
        if self.on_dropout is not None:
            self.on_dropout(dropout)


def exchange(grid: Grid, messages: list[Message], timeout: float) -> list[Message]:
    """``grid.send_and_receive(messages, timeout=timeout)`` without its fixed 3 s between pulls:
    push every message, then pull their replies every :data:`POLL_INTERVAL` seconds until each
    has one or ``timeout`` seconds have passed."""
    return [reply for reply, _ in timed_exchange(grid, messages, timeout)]


def timed_exchange(grid: Grid, messages: list[Message], timeout: float) -> list[tuple[Message, float]]:
    """:func:`exchange`, each reply with the seconds from the push to the pull that brought it."""
    started = time.monotonic()
    pending = {i for i in grid.push_messages(messages) if i}  # None: a message it could not push
    replies: list[tuple[Message, float]] = []
    deadline = started + timeout
    while pending:
        pulled = list(grid.pull_messages(pending))
        replies.extend((m, time.monotonic() - started) for m in pulled)
        pending.difference_update(m.metadata.reply_to_message_id for m in pulled)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(POLL_INTERVAL)
    return replies


def _hello(reply: Message) -> tuple[str, bytes]:
    """The address a hello claims and its signature, or MalformedMessageError naming what is wrong."""
    record = payload_record(reply)
    address = record.get("address")
    if not isinstance(address, str):
        raise MalformedMessageError(f"address: got {type(address).__name__}; allowed: a string")
    signature = payload_bytes(record)
    if len(signature) != HELLO_SIGNATURE_BYTES:
        raise MalformedMessageError(
            f"data: got {len(signature)} bytes; allowed: a {HELLO_SIGNATURE_BYTES}-byte signature"
        )
    return address, signature

"""The participant's Flower ClientApp: each message from the ServerApp is one SecCL request
(:mod:`seccl.deploy.wire`), answered by the :class:`ParticipantNode` its SuperNode's node config
describes. A request it cannot decode or refuses gets an empty reply that says why; it never
reaches the participant's state."""

from __future__ import annotations

import os
import time

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from seccl.deploy.node import NodeConfig, ParticipantNode
from seccl.deploy.wire import decode_request, encode_reply
from seccl.protocol.errors import MalformedMessageError, ProtocolError, shown
from seccl.protocol.instructions import TrainRequest
from seccl.runtime.faults import maybe_kill_node

app = ClientApp()

PAYLOAD = "seccl"
"""The RecordDict key of a SecCL message: one ConfigRecord holding its bytes (``data``)."""


MAX_REASON = 1000
"""The longest refusal or failure reason quoted from a peer (it ends up in logs and run records)."""


def payload(data: bytes, **extra: str | int) -> RecordDict:
    return RecordDict({PAYLOAD: ConfigRecord({"data": data, **extra})})


def payload_record(message: Message) -> ConfigRecord:
    """The SecCL record of a message from the other side, or MalformedMessageError if it has none."""
    if not message.has_content():
        raise MalformedMessageError(f"the message carries no content, so no {PAYLOAD!r} record")
    record = message.content.get(PAYLOAD)
    if not isinstance(record, ConfigRecord):
        raise MalformedMessageError(f"the message carries no {PAYLOAD!r} ConfigRecord")
    return record


def payload_bytes(record: ConfigRecord, field: str = "data") -> bytes:
    """``record[field]``, which must be bytes (a peer may send any ConfigRecord value instead:
    an int such as -1 or 10**12 would make ``bytes()`` fail or allocate that much)."""
    value = record.get(field)
    if not isinstance(value, bytes):
        raise MalformedMessageError(f"{field}: got {type(value).__name__}; allowed: bytes")
    return value


def quoted(reason: object) -> str:
    """A peer's free-text reason, cut to :data:`MAX_REASON` characters."""
    text = reason if isinstance(reason, str) else shown(reason)
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + f"… ({len(text)} characters)"


def _node(context: Context) -> ParticipantNode:
    return ParticipantNode(NodeConfig.from_node_config(context.node_config))


@app.query("hello")
def hello(msg: Message, context: Context) -> Message:
    """Which participant answers on this node: its address, signed for this session and node."""
    node = _node(context)
    node.log(f"said hello on Flower node {context.node_id}")
    content = payload(node.hello(context.node_id), address=node.address)
    return Message(content, reply_to=msg)


@app.query("request")
def request(msg: Message, context: Context) -> Message:
    """One SecCL request of the server, answered by the participant's own code and checks."""
    entered = time.time()  # the wall clock, comparable with this process's start
    node = _node(context)
    rebuilt = time.time()
    try:
        decoded = decode_request(payload_bytes(payload_record(msg)))
    except ProtocolError as exc:
        node.log(f"refused a message: {type(exc).__name__}: {exc}")
        return Message(payload(b"", error=f"{type(exc).__name__}: {exc}"), reply_to=msg)
    if isinstance(decoded, TrainRequest):
        maybe_kill_node(decoded.round, "train")
    reply = node.handle(decoded)
    # Where a deployed round's time goes: this process's start-up (Flower starts one per
    # message, which imports torch and web3), rebuilding the participant (its session checked
    # against the chain again), its own work; the rest of a round trip is Flower's.
    node.log(
        f"round {decoded.round}: {type(decoded).__name__} answered in {time.time() - rebuilt:.2f} s, "
        f"participant rebuilt in {rebuilt - entered:.2f} s, "
        f"process started {entered - _process_started():.2f} s before"
    )
    return Message(payload(encode_reply(reply)), reply_to=msg)


def _process_started() -> float:
    """When this process started (wall clock), from the kernel's record of it."""
    return os.stat(f"/proc/{os.getpid()}").st_ctime

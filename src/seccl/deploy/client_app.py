"""The participant's Flower ClientApp, thin: Flower starts one process for every message, so this
module imports Flower and the standard library only (no torch, no web3). It forwards the bytes
each message carries to the participant's long-lived process (``seccl node watch``, which holds
its key, data and :class:`~seccl.deploy.node.ParticipantNode`) over the local channel of
:mod:`seccl.deploy.relay`, and returns the bytes that process answers. It never decodes a request:
the long-lived process does, and refuses what it cannot decode.

A message it cannot forward (the long-lived process is not running, does not answer within
:data:`~seccl.deploy.relay.REPLY_WAIT`, or the node config names no state directory) gets an empty
reply that says why (``error``), as a refused request does; it never waits without bound."""

from __future__ import annotations

import os
import sys
import time

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from seccl.deploy import relay
from seccl.protocol.errors import MalformedMessageError, shown

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


@app.query("hello")
def hello(msg: Message, context: Context) -> Message:
    """Which participant answers on this node: its address, signed for this session and node."""
    return _forwarded("hello", msg, context, b"")


@app.query("request")
def request(msg: Message, context: Context) -> Message:
    """One SecCL request of the server, answered by the participant's long-lived process."""
    try:
        data = payload_bytes(payload_record(msg))
    except MalformedMessageError as exc:
        return Message(payload(b"", error=f"{type(exc).__name__}: {exc}"), reply_to=msg)
    return _forwarded("request", msg, context, data)


def _refused(kind: str, msg: Message, reason: str) -> Message:
    # Also in the SuperNode's output (Flower passes this process's stderr on), for its operator.
    print(f"SecCL ClientApp: refused a {kind} message: {reason}", file=sys.stderr, flush=True)
    return Message(payload(b"", error=reason), reply_to=msg)


def _forwarded(kind: str, msg: Message, context: Context, data: bytes) -> Message:
    state_dir = context.node_config.get("state-dir")
    if not isinstance(state_dir, str) or not state_dir.strip():
        error = f"the SuperNode's node config names no state-dir (got {shown(state_dir)})"
        return _refused(kind, msg, f"RelayError: {error}")
    # Where a deployed round's time goes: this process's start-up (Flower starts one per
    # message), logged by the long-lived process beside its own work.
    extra = {"process-age": round(time.time() - _process_started(), 3)}
    try:
        fields, reply = relay.forward(state_dir, kind, int(context.node_id), data, extra=extra)
    except relay.RelayError as exc:
        return _refused(kind, msg, f"RelayError: {exc}")
    # relay.RelayFailure (the participant's own code failed) propagates: Flower answers with an
    # error reply naming it, as it did when the participant ran in this process.
    return Message(payload(reply, **fields), reply_to=msg)


def _process_started() -> float:
    """When this process started (wall clock), from the kernel's record of it."""
    return os.stat(f"/proc/{os.getpid()}").st_ctime

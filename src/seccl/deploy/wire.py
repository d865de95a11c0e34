"""The bytes a deployment carries between the server and a participant: each request and reply
of :mod:`seccl.protocol.instructions` as one JSON document, decoded strictly (a typed error names
what is wrong) so that a malformed message from the network never reaches the roles."""

from __future__ import annotations

import json
from typing import Any

from seccl.protocol.envelope import Commitment, SignedMessage
from seccl.protocol.errors import MalformedMessageError, OversizedMessageError, ProtocolError, shown
from seccl.protocol.instructions import (
    BallotReceipt,
    EvaluateRequest,
    FinalModelRequest,
    Reply,
    Request,
    RevealRequest,
    TrainRequest,
)
from seccl.protocol.json_input import parse_json
from seccl.protocol.statements import Delivery, Receipt

MAX_WIRE_BYTES = 256 * 1024 * 1024
"""The largest request or reply accepted. The largest honest one carries a model (updates are
revealed on the board, not sent here): 256 MB holds a hex-encoded model of 32 M parameters, far
beyond what the simulation runs, while a peer cannot make the other side parse an unbounded
document."""

MAX_WIRE_DEPTH = 8
"""The deepest nesting of arrays and objects accepted. An honest document nests 3 levels (a
request, its delivery, the delivery's authors); Python's JSON parser recurses once per level
and, with the recursion limit py_ecc raises to 100,000, a deep enough document overflows the C
stack and kills the process, so depth is checked before anything is parsed."""


def encode_request(request: Request) -> bytes:
    body: dict[str, Any] = {"round": request.round}
    if isinstance(request, (TrainRequest, FinalModelRequest)):
        body |= {"model": request.model.to_dict(), "delivery": request.delivery.to_dict()}
    elif isinstance(request, EvaluateRequest):
        body |= {"own_receipt": None if request.own_receipt is None else request.own_receipt.to_dict()}
    elif isinstance(request, BallotReceipt):
        body |= {"receipt": None if request.receipt is None else request.receipt.to_dict()}
    elif not isinstance(request, RevealRequest):  # pragma: no cover - the union is closed
        raise TypeError(f"not a request: {type(request).__name__}")
    return _dump({"type": _TYPES[type(request)], **body})


def decode_request(data: bytes) -> Request:
    """The request ``data`` encodes, or a typed :class:`ProtocolError` naming what is wrong."""
    raw = _load(data, "request")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in _TYPES.values():
        raise MalformedMessageError(
            f"unknown request type {shown(kind)} (known: {', '.join(_TYPES.values())})"
        )
    try:
        round_ = _round(raw)
        if kind == "train":
            return TrainRequest(round_, _signed(raw["model"]), Delivery.from_dict(raw["delivery"]))
        if kind == "final":
            return FinalModelRequest(round_, _signed(raw["model"]), Delivery.from_dict(raw["delivery"]))
        if kind == "reveal":
            return RevealRequest(round_)
        if kind == "evaluate":
            own = raw["own_receipt"]
            return EvaluateRequest(round_, None if own is None else Receipt.from_dict(own))
        receipt = raw["receipt"]  # "ballot-receipt", the one type left
        return BallotReceipt(round_, None if receipt is None else Receipt.from_dict(receipt))
    except ProtocolError as exc:  # a statement or envelope that names its own faulty field
        raise MalformedMessageError(f"malformed {kind} request: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessageError(f"malformed {kind} request: {type(exc).__name__}: {exc}") from None


def encode_reply(reply: Reply) -> bytes:
    return _dump(
        {
            "type": "reply",
            "message": None if reply.message is None else reply.message.to_dict(),
            "commitment": None if reply.commitment is None else reply.commitment.to_dict(),
        }
    )


def decode_reply(data: bytes) -> Reply:
    """The reply ``data`` encodes, or a typed :class:`ProtocolError` naming what is wrong."""
    raw = _load(data, "reply")
    if raw.get("type") != "reply":
        raise MalformedMessageError(f"not a reply (type {shown(raw.get('type'))})")
    try:
        message, commitment = raw["message"], raw["commitment"]
        return Reply(
            None if message is None else _signed(message),
            None if commitment is None else Commitment.from_dict(commitment),
        )
    except ProtocolError as exc:
        raise MalformedMessageError(f"malformed reply: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessageError(f"malformed reply: {type(exc).__name__}: {exc}") from None


_TYPES: dict[type, str] = {
    TrainRequest: "train",
    RevealRequest: "reveal",
    EvaluateRequest: "evaluate",
    BallotReceipt: "ballot-receipt",
    FinalModelRequest: "final",
}


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _load(data: bytes, what: str) -> dict[str, Any]:
    if not isinstance(data, (bytes, bytearray)):
        raise MalformedMessageError(f"a {what} must be bytes, got {type(data).__name__}")
    if len(data) > MAX_WIRE_BYTES:
        raise OversizedMessageError(f"a {what} of {len(data)} bytes; at most {MAX_WIRE_BYTES} accepted")
    try:
        raw = parse_json(bytes(data), max_depth=MAX_WIRE_DEPTH)
    except ValueError as exc:
        raise MalformedMessageError(f"a {what} that is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MalformedMessageError(f"a {what} must be a JSON object, got {type(raw).__name__}")
    return raw


def _round(raw: dict[str, Any]) -> int:
    value = raw["round"]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**64:
        raise ValueError(f"round must be a non-negative integer below 2^64, got {shown(value)}")
    return value


def _signed(raw: Any) -> SignedMessage:
    if not isinstance(raw, dict):
        raise TypeError(f"a signed message must be an object, got {type(raw).__name__}")
    return SignedMessage.from_dict(raw)

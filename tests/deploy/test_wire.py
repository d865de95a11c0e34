"""The deployment's wire format: every request and reply survives a round trip unchanged, and
whatever else arrives from the network is refused with a typed error naming what is wrong."""

from __future__ import annotations

import json

import pytest

from seccl.chain.bulletin_board import MessageKind
from seccl.deploy import wire
from seccl.protocol.envelope import SignedMessage
from seccl.protocol.errors import MalformedMessageError, OversizedMessageError
from seccl.protocol.instructions import BallotReceipt, EvaluateRequest, FinalModelRequest, Reply, TrainRequest
from seccl.protocol.statements import Delivery, Receipt

ADDRESS = "0x" + "11" * 20
SIGNED = SignedMessage(b"\x01\x02payload", b"\x05" * 65)
DELIVERY = Delivery(3, MessageKind.UPDATE, ADDRESS, (ADDRESS,), (b"\x07" * 32,), b"\x09" * 65)
RECEIPT = Receipt(3, MessageKind.UPDATE, ADDRESS, b"\x08" * 32, "0x" + "ab" * 32, b"\x0a" * 65)

REQUESTS = [
    TrainRequest(3, SIGNED, DELIVERY),
    EvaluateRequest(3, RECEIPT, (SIGNED, SignedMessage(b"other", b"\x06" * 65)), DELIVERY),
    EvaluateRequest(3, None, (), DELIVERY),
    BallotReceipt(3, RECEIPT),
    BallotReceipt(3, None),
    FinalModelRequest(3, SIGNED, DELIVERY),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_every_request_survives_the_wire_unchanged(request_) -> None:
    assert wire.decode_request(wire.encode_request(request_)) == request_


@pytest.mark.parametrize("reply", [Reply(SIGNED), Reply()])
def test_every_reply_survives_the_wire_unchanged(reply) -> None:
    assert wire.decode_reply(wire.encode_reply(reply)) == reply


def _tampered(**changes) -> bytes:
    raw = json.loads(wire.encode_request(REQUESTS[0]))
    raw.update(changes)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (_tampered(type="steal-keys"), "unknown request type 'steal-keys'"),
        (_tampered(round=-1), "non-negative integer"),
        (_tampered(round=True), "non-negative integer"),
        (_tampered(round="3"), "non-negative integer"),
        (_tampered(model="zz"), "signed message must be an object"),
        (_tampered(model={"data": "not hex", "signature": ""}), "malformed train request"),
        (_tampered(delivery={"round": 1}), "malformed train request: KeyError"),
        (
            json.dumps({"type": "evaluate", "round": 1, "own_receipt": None, "updates": 5}).encode(),
            "not a list",
        ),
    ],
)
def test_a_malformed_request_is_refused_with_what_is_wrong(data: bytes, says: str) -> None:
    with pytest.raises(MalformedMessageError, match=says):
        wire.decode_request(data)


def test_an_oversized_request_is_refused_before_it_is_parsed(monkeypatch) -> None:
    monkeypatch.setattr(wire, "MAX_WIRE_BYTES", 100)
    with pytest.raises(OversizedMessageError, match="at most 100"):
        wire.decode_request(wire.encode_request(REQUESTS[1]))


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (wire.encode_request(REQUESTS[0]), "not a reply"),
        (b'{"type": "reply"}', "malformed reply"),
        (b'{"type": "reply", "message": {"data": "00"}}', "malformed reply"),
    ],
)
def test_a_malformed_reply_is_refused(data: bytes, says: str) -> None:
    with pytest.raises(MalformedMessageError, match=says):
        wire.decode_reply(data)

"""The deployment's wire format: every request and reply survives a round trip unchanged, and
whatever else arrives from the network is refused with a typed error naming what is wrong."""

from __future__ import annotations

import json

import pytest

from seccl.chain.bulletin_board import MessageKind
from seccl.deploy import wire
from seccl.protocol.envelope import Commitment, SignedMessage
from seccl.protocol.errors import MalformedMessageError, OversizedMessageError
from seccl.protocol.instructions import (
    BallotReceipt,
    EvaluateRequest,
    FinalModelRequest,
    Reply,
    RevealRequest,
    TrainRequest,
)
from seccl.protocol.json_input import parse_json
from seccl.protocol.statements import Delivery, Receipt

ADDRESS = "0x" + "11" * 20
SIGNED = SignedMessage(b"\x01\x02payload", b"\x05" * 65)
DELIVERY = Delivery(3, MessageKind.UPDATE, ADDRESS, (ADDRESS,), (b"\x07" * 32,), b"\x09" * 65)
RECEIPT = Receipt(3, MessageKind.UPDATE, ADDRESS, b"\x08" * 32, "0x" + "ab" * 32, b"\x0a" * 65)

REQUESTS = [
    TrainRequest(3, SIGNED, DELIVERY),
    RevealRequest(3),
    EvaluateRequest(3, RECEIPT),
    EvaluateRequest(3, None),
    BallotReceipt(3, RECEIPT),
    BallotReceipt(3, None),
    FinalModelRequest(3, SIGNED, DELIVERY),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_every_request_survives_the_wire_unchanged(request_) -> None:
    assert wire.decode_request(wire.encode_request(request_)) == request_


COMMITMENT = Commitment(3, "0x" + "11" * 20, b"\x07" * 32, b"\x05" * 65)


@pytest.mark.parametrize("reply", [Reply(SIGNED), Reply(commitment=COMMITMENT), Reply()])
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
            json.dumps({"type": "evaluate", "round": 1, "own_receipt": 5}).encode(),
            "malformed evaluate request",
        ),
    ],
)
def test_a_malformed_request_is_refused_with_what_is_wrong(data: bytes, says: str) -> None:
    with pytest.raises(MalformedMessageError, match=says):
        wire.decode_request(data)


def test_an_oversized_request_is_refused_before_it_is_parsed(monkeypatch) -> None:
    monkeypatch.setattr(wire, "MAX_WIRE_BYTES", 100)
    with pytest.raises(OversizedMessageError, match="at most 100"):
        wire.decode_request(wire.encode_request(REQUESTS[0]))


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


# ─────────────── what crashed the decoders before they were hardened ───────────────

DEEP = b"[" * 50_000


@pytest.mark.parametrize(
    "data",
    [
        DEEP,
        DEEP + b"]" * 50_000,
        b'{"type": "train", "round": 1, "model": ' + b"[" * 200_000 + b"1" + b"]" * 200_000 + b"}",
        b'{"type": "reply", "message": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"}",
    ],
    ids=["50000-open", "50000-closed", "200000-in-a-request", "100000-objects-in-a-reply"],
)
def test_deep_nesting_is_refused_before_the_parser_recurses(data: bytes) -> None:
    """Regression: 50,000 nested ``[`` raised RecursionError (and, past the 100,000 levels
    py_ecc lets Python recurse, the parser overflowed the C stack and killed the process)."""
    for decode in (wire.decode_request, wire.decode_reply):
        with pytest.raises(MalformedMessageError, match="nested deeper than 8 levels"):
            decode(data)


@pytest.mark.parametrize("digits", [81, 4_300, 5_000, 100_000])
def test_a_huge_integer_is_refused_with_a_typed_error(digits: int) -> None:
    """Regression: a 5,000-digit integer raised ValueError (Python's int-string conversion limit)."""
    number = b"1" * digits
    for data in (
        b'{"type": "train", "round": ' + number + b"}",
        b'{"type": "reply", "message": ' + number + b"}",
    ):
        for decode in (wire.decode_request, wire.decode_reply):
            with pytest.raises(MalformedMessageError, match=f"an integer of {digits} digits"):
                decode(data)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (_tampered(round=2**64), "non-negative integer below 2\\^64"),
        (_tampered(round=2**64 - 1, delivery=DELIVERY.to_dict() | {"round": 2**64}), "round: got 1844"),
        (_tampered(delivery=DELIVERY.to_dict() | {"round": -1}), "ValueError in Delivery: round: got -1"),
        (_tampered(delivery=DELIVERY.to_dict() | {"digests": ["0x" + "07" * 33]}), "digests\\[0\\]"),
        (_tampered(delivery=DELIVERY.to_dict() | {"signature": "0x" + "09" * 64}), "signature: got"),
        (_tampered(delivery=DELIVERY.to_dict() | {"authors": []}), "0 authors but 1 digests"),
        (_tampered(model={"data": "00", "signature": "ab" * 64}), "signature: got 64 bytes"),
        (b'{"type": "train", "round": NaN}', "NaN is not a JSON number"),
        (b'{"type": "train", "round": 1, "x": "\\ud800' + b"\xff" + b'"}', "not UTF-8"),
        (b'{"type": ["train"], "round": 1}', "unknown request type \\['train'\\]"),
        (b'{"type": "' + b"x" * 1_000_000 + b'"}', "unknown request type 'xxxxx"),
    ],
    ids=[
        "round-2^64",
        "delivery-round-2^64",
        "delivery-round-negative",
        "digest-33-bytes",
        "signature-64-bytes",
        "authors-and-digests-differ",
        "model-signature-64-bytes",
        "nan",
        "not-utf8",
        "type-a-list",
        "type-a-megabyte",
    ],
)
def test_a_field_out_of_its_range_is_refused_at_decoding(data: bytes, says: str) -> None:
    with pytest.raises(MalformedMessageError, match=says) as refused:
        wire.decode_request(data)
    assert len(str(refused.value)) < 500  # a peer's megabyte is not quoted back in full


def test_a_receipt_with_an_over_long_tx_id_is_refused_at_decoding() -> None:
    data = wire.encode_request(BallotReceipt(3, RECEIPT)).replace(b"ab" * 32, b"ab" * 33)
    with pytest.raises(MalformedMessageError, match="tx_id: got"):
        wire.decode_request(data)


def test_escaped_quotes_and_brackets_in_strings_do_not_count_as_nesting() -> None:
    text = '[[{]}\\"\\\\' * 1_000
    data = json.dumps({"type": "reply", "message": None, "commitment": None, "note": text}).encode()
    assert wire.decode_reply(data) == Reply()
    assert parse_json(json.dumps([[[text]]]).encode(), max_depth=3) == [[[text]]]
    with pytest.raises(ValueError, match="nested deeper than 2"):
        parse_json(json.dumps([[[text]]]).encode(), max_depth=2)

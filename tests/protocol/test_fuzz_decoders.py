"""Property: the protocol's decoders answer anything another party sends with a value or a typed error."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seccl.chain.accounts import new_account
from seccl.chain.bulletin_board import MessageKind
from seccl.chain.signing import SigningDomain
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.envelope import SignedMessage, open_message, sign_message
from seccl.protocol.errors import MalformedFieldError, ProtocolError
from seccl.protocol.messages import EvaluationMessage, ModelMessage, UpdateMessage, decode_message
from seccl.protocol.statements import Delivery, Receipt

SERVER, ALICE, BOB, CAROL = (new_account() for _ in range(4))
DOMAIN = SigningDomain(31337, "0x" + "ab" * 20, "0x" + "ef" * 20, b"\x05" * 32)
D1, D2 = (hashlib.sha256(tag).digest() for tag in (b"one", b"two"))

# Fast and reproducible: a fixed seed per test, no example database, no wall-clock deadline
# (the machine is shared; a slow example is not a failure).
FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ─────────────── what a hostile peer sends ───────────────

EDGE_INTEGERS = [-1, 0, 1, 2**8, 2**32, 2**63, 2**64 - 1, 2**64, -(2**64), 2**256, 10**80, 10**4000]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(EDGE_INTEGERS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.binary(max_size=70).map(lambda b: "0x" + b.hex()),  # hex of every length, 32 and 65 among them
    st.binary(min_size=19, max_size=21).map(lambda b: "0x" + b.hex()),  # addresses, and one byte off
    st.sampled_from(["update", "UPDATE", "model", "evaluation", "train", "reply", "0x", "", "0x0g"]),
)
"""JSON scalars of every type, edge and huge integers, and strings that nearly fit a field."""

json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def deep_documents(draw: st.DrawFn) -> bytes:
    """Arrays and objects nested up to 200,000 levels (past the depth that overflows the C stack
    once py_ecc has raised the recursion limit to 100,000), closed or not."""
    depth = draw(st.integers(0, 40) | st.sampled_from([50, 1_000, 50_000, 200_000]))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'[{"round":', b"}]")]))
    closed = draw(st.booleans())
    return opener * depth + b"1" + (closer * depth if closed else b"")


@st.composite
def huge_integers(draw: st.DrawFn) -> bytes:
    """A JSON document whose integer is longer than Python converts (4,300 digits) or close to it."""
    digits = draw(st.sampled_from([20, 21, 81, 4_300, 4_301, 5_000, 50_000]))
    field = draw(st.sampled_from(["round", "type", "message", "data"]))
    return b'{"type": "reply", "' + field.encode() + b'": -' + b"9" * digits + b"}"


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` after one to four random edits: flipped bytes, insertions, deletions, cuts, repeats."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "repeat"]))
        if edit == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif edit == "truncate":
            del data[at:]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


def _slots(document: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) of a JSON document, nested ones included."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield document, key
            yield from _slots(value)
    elif isinstance(document, list):
        for i, value in enumerate(document):
            yield document, i
            yield from _slots(value)


@st.composite
def tampered(draw: st.DrawFn, valid: dict) -> dict:
    """``valid`` with one to three fields, at any depth, replaced by anything or removed."""
    document = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, 3))):
        slots = list(_slots(document))
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        if draw(st.integers(0, 4)) == 0 and isinstance(container, dict):
            del container[key]
        else:
            container[key] = draw(json_values)
    return document


def through_json(document: Any) -> Any:
    """``document`` as the other side reads it: JSON text parsed back (tuples become lists)."""
    return json.loads(json.dumps(document))


# ─────────────── messages and their envelope ───────────────

UPDATE = UpdateMessage(3, ALICE.address, SparseUpdate(8, [1, 5], [0.25, -1.5]))
EVALUATION = EvaluationMessage(3, ALICE.address, (0, 700_000, 1_000_000))
MODEL = ModelMessage(2, SERVER.address, np.arange(8, dtype=np.float32))
VALID_MESSAGES = [m.to_bytes() for m in (UPDATE, EVALUATION, MODEL)]

bounds = st.fixed_dictionaries(
    {},
    optional={
        "dimension": st.integers(0, 2**32),
        "participants": st.integers(0, 10),
        "update_size": st.integers(0, 10),
        "max_abs_value": st.floats(allow_nan=False, min_value=0),
        "max_bytes": st.integers(0, 10_000),
    },
)


@FUZZ
@given(data=st.binary(max_size=400) | st.sampled_from(VALID_MESSAGES).flatmap(mutated), given_bounds=bounds)
def test_decode_message_answers_any_bytes_with_a_message_or_a_typed_error(
    data: bytes, given_bounds: dict
) -> None:
    try:
        message = decode_message(data, **given_bounds)
    except ProtocolError:
        return
    assert message.to_bytes() == data  # what decodes is exactly one canonical encoding


@FUZZ
@given(
    data=st.sampled_from(VALID_MESSAGES).flatmap(mutated) | st.binary(max_size=200),
    signature=st.binary(max_size=70) | st.sampled_from([b"", b"\x00" * 65, b"\xff" * 65]),
)
def test_open_message_answers_any_envelope_with_a_message_or_a_typed_error(
    data: bytes, signature: bytes
) -> None:
    try:
        open_message(SignedMessage(data, signature), DOMAIN)
    except ProtocolError:
        return


SIGNED = sign_message(UPDATE, ALICE, DOMAIN)


@FUZZ
@given(raw=json_values | tampered(SIGNED.to_dict()))
def test_a_signed_message_is_parsed_from_any_document_or_refused_with_a_typed_error(raw: Any) -> None:
    try:
        signed = SignedMessage.from_dict(raw)
    except MalformedFieldError:
        return
    assert len(signed.signature) in (0, 65)
    assert SignedMessage.from_dict(through_json(signed.to_dict())) == signed


# ─────────────── the server's signed statements ───────────────

DELIVERY = Delivery.sign(
    SERVER, DOMAIN, 2, MessageKind.UPDATE, CAROL.address, [ALICE.address, BOB.address], [D1, D2]
)
RECEIPT = Receipt.sign(SERVER, DOMAIN, 2, MessageKind.UPDATE, ALICE.address, D1, "0x" + "12" * 32)


@FUZZ
@given(raw=json_values | tampered(DELIVERY.to_dict()))
def test_a_delivery_is_parsed_from_any_document_or_refused_and_its_signer_never_raises(raw: Any) -> None:
    try:
        delivery = Delivery.from_dict(raw)
    except MalformedFieldError:
        return
    signer = delivery.signer(DOMAIN)
    assert signer is None or isinstance(signer, str)
    assert len(delivery.authors) == len(delivery.digests)
    assert delivery.digest_for(ALICE.address) in (None, *delivery.digests)
    assert Delivery.from_dict(through_json(delivery.to_dict())) == delivery


@FUZZ
@given(raw=json_values | tampered(RECEIPT.to_dict()))
def test_a_receipt_is_parsed_from_any_document_or_refused_and_its_signer_never_raises(raw: Any) -> None:
    try:
        receipt = Receipt.from_dict(raw)
    except MalformedFieldError:
        return
    signer = receipt.signer(DOMAIN)
    assert signer is None or isinstance(signer, str)
    assert Receipt.from_dict(through_json(receipt.to_dict())) == receipt


anything = st.one_of(scalars, st.binary(max_size=70), st.lists(scalars | st.binary(max_size=40), max_size=3))


@FUZZ
@given(
    round_=anything | st.sampled_from(EDGE_INTEGERS),
    kind=st.sampled_from(list(MessageKind)) | anything,
    address=st.sampled_from([ALICE.address, "0x" + "11" * 20]) | anything,
    digests=st.lists(st.binary(min_size=30, max_size=34), max_size=3) | anything,
    digest=st.binary(min_size=30, max_size=34) | anything,
    tx_id=st.sampled_from(["", "0x" + "ab" * 32, "0x" + "ab" * 33, "0x" + "ab" * 31]) | anything,
    signature=st.binary(max_size=70) | anything,
)
def test_signer_returns_an_address_or_none_for_any_field_values(
    round_: Any, kind: Any, address: Any, digests: Any, digest: Any, tx_id: Any, signature: Any
) -> None:
    """A statement built in memory, not decoded: ``signer`` still never raises."""
    authors = [address] * len(digests) if isinstance(digests, list) else address
    delivery = Delivery(round_, kind, address, authors, digests, signature)
    receipt = Receipt(round_, kind, address, digest, tx_id, signature)

    for statement in (delivery, receipt):
        signer = statement.signer(DOMAIN)
        assert signer is None or isinstance(signer, str)

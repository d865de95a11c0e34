"""The server's store is append-only (a second message per round, kind and author is a replay), and
evidence serialises to plain JSON."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from seccl.chain.bulletin_board import MessageKind
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.envelope import SignedMessage
from seccl.protocol.errors import ProtocolError, ReplayError
from seccl.protocol.evidence import Evidence, EvidenceKind, hex_digest
from seccl.protocol.messages import EvaluationMessage, Message, UpdateMessage
from seccl.protocol.store import MessageStore, StoredMessage
from tests.conftest import make_accounts

ALICE, BOB = (a.address for a in make_accounts(2))


def stored(round_: int, kind: MessageKind, author: str, tag: str) -> StoredMessage:
    message: Message
    if kind is MessageKind.UPDATE:
        message = UpdateMessage(round_, author, SparseUpdate(1, np.array([0]), np.array([float(len(tag))])))
    else:
        message = EvaluationMessage(round_, author, (len(tag),))
    signed = SignedMessage(tag.encode(), b"\x01" * 65)
    return StoredMessage(message, signed, "0x" + hashlib.sha256(tag.encode()).hexdigest())


def test_the_store_rejects_a_replay_and_keeps_the_first_message() -> None:
    store = MessageStore()
    first = stored(1, MessageKind.UPDATE, ALICE, "first")
    store.add(first)

    with pytest.raises(ReplayError, match=f"{ALICE} already sent its update message of round 1"):
        store.add(stored(1, MessageKind.UPDATE, ALICE, "second"))
    with pytest.raises(ReplayError):
        store.check_new(1, MessageKind.UPDATE, ALICE)

    assert store.get(1, MessageKind.UPDATE, ALICE) is first
    assert len(store) == 1
    assert issubclass(ReplayError, ProtocolError)


def test_the_same_author_may_send_another_kind_or_round() -> None:
    store = MessageStore()
    store.add(stored(1, MessageKind.UPDATE, ALICE, "u1"))

    store.check_new(1, MessageKind.EVALUATION, ALICE)
    store.check_new(2, MessageKind.UPDATE, ALICE)
    store.add(stored(1, MessageKind.EVALUATION, ALICE, "e1"))
    store.add(stored(2, MessageKind.UPDATE, ALICE, "u2"))

    assert len(store) == 3
    assert store.get(3, MessageKind.UPDATE, ALICE) is None


def test_of_round_returns_only_that_round_and_kind_in_arrival_order() -> None:
    store = MessageStore()
    bob_u1 = stored(1, MessageKind.UPDATE, BOB, "bob-u1")
    alice_u1 = stored(1, MessageKind.UPDATE, ALICE, "alice-u1")
    for message in (
        bob_u1,
        stored(1, MessageKind.EVALUATION, ALICE, "alice-e1"),
        stored(2, MessageKind.UPDATE, ALICE, "alice-u2"),
        alice_u1,
    ):
        store.add(message)

    assert store.of_round(1, MessageKind.UPDATE) == [bob_u1, alice_u1]
    assert [m.signed.data for m in store.of_round(1, MessageKind.EVALUATION)] == [b"alice-e1"]
    assert store.of_round(3, MessageKind.UPDATE) == []


def test_evidence_to_dict_is_json_serialisable_with_the_kind_as_its_string_value() -> None:
    digest = hashlib.sha256(b"model").digest()
    evidence = Evidence(
        round=2,
        kind=EvidenceKind.MODEL_MISMATCH,
        finder=ALICE,
        subject=BOB,
        tx_id="0x" + "12" * 32,
        expected_digest=hex_digest(digest),
        recorded_digest=hex_digest(None),
        detail="the model does not hash to the recorded digest",
    )

    as_dict = evidence.to_dict()
    decoded = json.loads(json.dumps(as_dict))

    assert decoded == as_dict
    assert decoded["kind"] == "model-mismatch"
    assert type(as_dict["kind"]) is str
    assert decoded["expected_digest"] == "0x" + digest.hex()
    assert decoded["recorded_digest"] is None
    assert set(decoded) == {
        "round",
        "kind",
        "finder",
        "subject",
        "tx_id",
        "expected_digest",
        "recorded_digest",
        "detail",
    }


def test_evidence_summary_names_the_round_kind_and_transaction() -> None:
    evidence = Evidence(1, EvidenceKind.UPDATE_WITHHELD, ALICE, BOB, None, None, None, "withheld")

    summary = evidence.summary()

    assert summary.startswith("round 1: update-withheld found by " + ALICE[:10])
    assert "(tx -): withheld" in summary

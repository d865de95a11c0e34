"""The server's store is append-only (a second message per round, kind and author is a replay), and
evidence serialises to plain JSON and back without losing a field."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from seccl.chain.accounts import new_account
from seccl.chain.bulletin_board import MessageKind
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.envelope import SignedMessage
from seccl.protocol.errors import ProtocolError, ReplayError
from seccl.protocol.evidence import Evidence, EvidenceKind, hex_digest
from seccl.protocol.messages import EvaluationMessage, Message, UpdateMessage
from seccl.protocol.store import MessageStore, StoredMessage

ALICE, BOB = (new_account().address for _ in range(2))


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
        "finder_index",
        "subject",
        "subject_index",
        "tx_id",
        "expected_digest",
        "recorded_digest",
        "detail",
        "proof",
    }
    assert decoded["proof"] == {} and decoded["finder_index"] is None


def full_evidence(kind: EvidenceKind) -> Evidence:
    return Evidence(
        round=3,
        kind=kind,
        finder=ALICE,
        subject=BOB,
        tx_id="0x" + "ab" * 32,
        expected_digest=hex_digest(hashlib.sha256(b"expected").digest()),
        recorded_digest=hex_digest(hashlib.sha256(b"recorded").digest()),
        detail=f"a finding of kind {kind}",
        proof={
            "delivery": {"round": 3, "authors": [BOB], "digests": ["0x" + "cd" * 32], "signature": "0x00"},
            "position": 0,
        },
        finder_index=0,
        subject_index=1,
    )


@pytest.mark.parametrize("kind", list(EvidenceKind), ids=str)
def test_evidence_survives_a_json_round_trip_through_to_dict_and_from_dict(kind: EvidenceKind) -> None:
    evidence = full_evidence(kind)

    back = Evidence.from_dict(json.loads(json.dumps(evidence.to_dict())))

    assert back == evidence
    assert back.kind is kind and back.proof == evidence.proof
    assert (back.finder_index, back.subject_index) == (0, 1)


def test_evidence_from_dict_fills_in_the_optional_fields() -> None:
    minimal = {"round": 1, "kind": "sat-out", "finder": ALICE, "subject": ALICE}

    evidence = Evidence.from_dict(minimal)

    assert evidence == Evidence(1, EvidenceKind.SAT_OUT, ALICE, ALICE, None, None, None, "")
    assert evidence.proof == {} and evidence.finder_index is None and evidence.subject_index is None


def test_evidence_from_dict_refuses_an_unknown_kind() -> None:
    raw = full_evidence(EvidenceKind.SAT_OUT).to_dict() | {"kind": "server-was-rude"}

    with pytest.raises(ValueError, match="server-was-rude"):
        Evidence.from_dict(raw)


def test_evidence_kinds_are_distinct_strings() -> None:
    values = [str(k) for k in EvidenceKind]
    assert len(set(values)) == len(values)
    assert {"sat-out", "update-not-revealed", "model-mismatch", "invalid-message"} <= set(values)
    assert not {"update-withheld", "delivered-update-mismatch"} & set(values)  # no update deliveries


def test_evidence_summary_names_the_round_kind_and_transaction() -> None:
    evidence = Evidence(1, EvidenceKind.UPDATE_NOT_REVEALED, ALICE, BOB, None, None, None, "never revealed")

    summary = evidence.summary()

    assert summary.startswith("round 1: update-not-revealed found by " + ALICE[:10])
    assert "(tx -): never revealed" in summary


def test_evidence_summary_names_the_finder_by_index_when_known() -> None:
    summary = full_evidence(EvidenceKind.SAT_OUT).summary()

    assert summary.startswith("round 3: sat-out found by participant 0 about " + BOB[:10])
    assert "(tx 0x" + "ab" * 32 + ")" in summary

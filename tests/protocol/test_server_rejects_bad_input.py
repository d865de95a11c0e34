"""The parameter server refuses every bad message with the typed error that names the fault, and
a refused message leaves no trace in its store or on the bulletin board.

Participants 0-2 only ever send bad messages here; participant 3 sends the one good update.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
from eth_account.signers.local import LocalAccount

from seccl.chain.backends import EmbeddedChain
from seccl.chain.bulletin_board import MessageKind
from seccl.chain.signing import sign_hash, signed_hash
from seccl.learning.sparse import select_top_fraction
from seccl.protocol import errors
from seccl.protocol.envelope import SignedMessage, sign_message
from seccl.protocol.messages import EvaluationMessage, UpdateMessage
from seccl.roles.server import Rejection
from seccl.roles.settings import LearningSettings
from seccl.runtime.simulation import Simulation, load_participant_data
from tests.conftest import make_accounts

ROUND = 1
GOOD = 3  # the only participant whose update is accepted
PROTOCOL_ERRORS = {cls.__name__ for cls in errors.ProtocolError.__subclasses__()}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulation]:
    parts, test = load_participant_data(
        dataset="mnist",
        data_root=None,
        participants=4,
        split="iid",
        alpha=0.5,
        per_participant=60,
        validation_fraction=0.2,
        seed=0,
    )
    simulation = Simulation(
        backend=EmbeddedChain(),
        parts=parts,
        test=test,
        rounds=1,
        candidate_fraction=0.5,
        settings=LearningSettings(local_epochs=1),
        seed=0,
    )
    simulation.server.board.open_round(ROUND)
    yield simulation


def account(sim: Simulation, i: int) -> LocalAccount:
    return sim.participants[i].account


def update(sim: Simulation, author: str, *, round_: int = ROUND, dim: int | None = None, seed: int = 0):
    delta = np.random.default_rng(seed).normal(size=dim or sim.session.dimension).astype(np.float32)
    return UpdateMessage(round_, author, select_top_fraction(delta, 0.1))


def sign_raw(sim: Simulation, data: bytes, signer: LocalAccount, *, round_: int = ROUND) -> SignedMessage:
    """Sign arbitrary bytes as an UPDATE of ``round_`` (for messages ``sign_message`` won't build)."""
    domain = sim.session.domain
    hash_ = signed_hash(
        domain.chain_id, domain.board, round_, int(MessageKind.UPDATE), hashlib.sha256(data).digest()
    )
    return SignedMessage(data, sign_hash(signer, hash_))


def assert_rejected(sim: Simulation, i: int, signed: SignedMessage, error: str | None) -> Rejection:
    """``accept`` refuses ``signed`` from participant ``i`` with ``error`` (None: any typed
    protocol error) and records nothing."""
    server = sim.server
    stored_before, rejected_before = len(server.store), len(server.rejections)
    posts_before = len(server.board.records())
    record_before = server.board.record_of(signed.digest())  # set only for a replay's first copy

    assert server.accept(ROUND, i, signed, MessageKind.UPDATE) is None

    assert len(server.rejections) == rejected_before + 1
    rejection = server.rejections[-1]
    if error is None:
        assert rejection.error in PROTOCOL_ERRORS, rejection
    else:
        assert rejection.error == error, rejection.detail
    assert (rejection.round, rejection.author) == (ROUND, sim.session.participants[i])
    assert rejection.detail
    assert len(server.store) == stored_before
    assert len(server.board.records()) == posts_before
    assert server.board.record_of(signed.digest()) == record_before
    return rejection


def assert_no_update_recorded(sim: Simulation, *indices: int) -> None:
    for i in indices:
        author = sim.session.participants[i]
        assert sim.server.board.digest_of(ROUND, MessageKind.UPDATE, author) is None
        assert sim.server.store.get(ROUND, MessageKind.UPDATE, author) is None


def test_an_update_signed_with_another_participants_key_is_an_invalid_signature(sim: Simulation) -> None:
    message = update(sim, sim.session.participants[0])

    rejection = assert_rejected(
        sim, 0, sign_raw(sim, message.to_bytes(), account(sim, 1)), "InvalidSignatureError"
    )

    assert account(sim, 1).address in rejection.detail
    assert_no_update_recorded(sim, 0, 1)


def test_an_update_with_bytes_changed_after_signing_is_an_invalid_signature(sim: Simulation) -> None:
    signed = sign_message(update(sim, sim.session.participants[0]), account(sim, 0), sim.session.domain)
    data = bytearray(signed.data)
    data[-1] ^= 0x01

    tampered = replace(signed, data=bytes(data))
    assert_rejected(sim, 0, tampered, "InvalidSignatureError")
    assert sim.server.board.record_of(tampered.digest()) is None
    assert_no_update_recorded(sim, 0)


def test_an_update_of_round_two_is_the_wrong_round(sim: Simulation) -> None:
    message = update(sim, sim.session.participants[1], round_=2)

    rejection = assert_rejected(
        sim, 1, sign_message(message, account(sim, 1), sim.session.domain), "WrongRoundError"
    )

    assert "round 2 received in round 1" in rejection.detail
    assert_no_update_recorded(sim, 1)


def test_an_update_authored_by_a_stranger_is_from_an_unknown_participant(sim: Simulation) -> None:
    stranger = make_accounts(1, tag="stranger")[0]
    assert stranger.address not in sim.session.participants

    rejection = assert_rejected(
        sim,
        0,
        sign_message(update(sim, stranger.address), stranger, sim.session.domain),
        "UnknownParticipantError",
    )

    assert f"{stranger.address} is not a participant" in rejection.detail
    assert sim.server.board.digest_of(ROUND, MessageKind.UPDATE, stranger.address) is None
    assert_no_update_recorded(sim, 0)


def test_another_participants_update_sent_as_ones_own_is_from_an_unknown_participant(sim: Simulation) -> None:
    j_message = update(sim, sim.session.participants[2])

    rejection = assert_rejected(
        sim, 1, sign_message(j_message, account(sim, 2), sim.session.domain), "UnknownParticipantError"
    )

    assert f"authored by {sim.session.participants[2]}" in rejection.detail
    assert_no_update_recorded(sim, 1, 2)


def test_an_evaluation_sent_in_place_of_an_update_is_refused(sim: Simulation) -> None:
    evaluation = EvaluationMessage(ROUND, sim.session.participants[2], (0,) * sim.session.n)
    signed = sign_message(evaluation, account(sim, 2), sim.session.domain)

    # Today this is labelled UnknownParticipantError; any typed protocol error is right here.
    assert_rejected(sim, 2, signed, None)

    assert sim.server.board.digest_of(ROUND, MessageKind.EVALUATION, evaluation.author) is None
    assert_no_update_recorded(sim, 2)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 33, b"garbage! " * 12, b"SCCL" + bytes([9, 0]) + b"\x00" * 28],
    ids=["empty", "short", "garbage", "bad-version"],
)
def test_garbage_bytes_are_a_malformed_message(sim: Simulation, data: bytes) -> None:
    signed = SignedMessage(data, b"\x00" * 65)
    assert_rejected(sim, 2, signed, "MalformedMessageError")
    assert sim.server.board.record_of(signed.digest()) is None
    assert_no_update_recorded(sim, 2)


def test_an_update_of_the_wrong_dimension_is_the_wrong_shape(sim: Simulation) -> None:
    dim = sim.session.dimension
    message = update(sim, sim.session.participants[0], dim=dim - 1)

    rejection = assert_rejected(
        sim, 0, sign_message(message, account(sim, 0), sim.session.domain), "WrongShapeError"
    )

    assert f"{dim - 1} parameters, expected {dim}" in rejection.detail
    assert_no_update_recorded(sim, 0)


def test_an_update_with_nan_values_is_non_finite(sim: Simulation) -> None:
    author = sim.session.participants[1]
    good = update(sim, author).to_bytes()
    count = struct.unpack_from(">I", good, 34 + 4)[0]
    values_at = 34 + 8 + 4 * count
    data = good[:values_at] + struct.pack(">f", float("nan")) + good[values_at + 4 :]

    rejection = assert_rejected(sim, 1, sign_raw(sim, data, account(sim, 1)), "NonFiniteValueError")

    assert "NaN/Inf" in rejection.detail
    assert_no_update_recorded(sim, 1)


def test_the_second_copy_of_an_accepted_update_is_a_replay(sim: Simulation) -> None:
    server, author = sim.server, sim.session.participants[GOOD]
    signed = sign_message(update(sim, author), account(sim, GOOD), sim.session.domain)
    stored_before = len(server.store)

    stored = server.accept(ROUND, GOOD, signed, MessageKind.UPDATE)

    assert stored is not None
    assert (stored.round, stored.kind, stored.author, stored.signed) == (
        ROUND,
        MessageKind.UPDATE,
        author,
        signed,
    )
    assert len(server.store) == stored_before + 1
    assert server.board.digest_of(ROUND, MessageKind.UPDATE, author) == signed.digest()
    assert server.board.record_in_transaction(stored.tx_id).digest == signed.digest()  # type: ignore[union-attr]

    rejection = assert_rejected(sim, GOOD, signed, "ReplayError")
    assert "already sent its update message of round 1" in rejection.detail

    another = sign_message(update(sim, author, seed=1), account(sim, GOOD), sim.session.domain)
    assert_rejected(sim, GOOD, another, "ReplayError")

    assert server.board.digest_of(ROUND, MessageKind.UPDATE, author) == signed.digest()
    assert server.store.get(ROUND, MessageKind.UPDATE, author) is stored
    assert len(server.store) == stored_before + 1


def test_every_rejection_was_recorded_and_only_the_good_update_was_posted(sim: Simulation) -> None:
    server = sim.server
    assert all(r.round == ROUND for r in server.rejections)
    assert_no_update_recorded(sim, 0, 1, 2)
    updates = server.store.of_round(ROUND, MessageKind.UPDATE)
    assert [m.author for m in updates] == [sim.session.participants[GOOD]] * len(updates)
    assert len(server.store) == len(updates) <= 1

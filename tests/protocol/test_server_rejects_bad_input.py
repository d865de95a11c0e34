"""The parameter server refuses every bad message with a Rejection naming the typed error, and a
refused message leaves no trace in its store or on the bulletin board.

The first part calls ``ParameterServer.accept`` directly on the server of a real session (embedded
EVM, round 1 open); participants 0-2 only ever send bad updates there, participant 3 sends the one
good update. The second part runs whole sessions in which one participant's upload is bad: the
Rejection is in the run's records, the round completes and everyone else's messages count.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from eth_account.signers.local import LocalAccount

from seccl.chain.accounts import new_account
from seccl.chain.backends import EmbeddedChain
from seccl.chain.bulletin_board import MessageKind
from seccl.election import ABSTAIN, MAX_SCORE
from seccl.learning.sparse import SparseUpdate, select_top_fraction
from seccl.learning.splits import load_participant_data
from seccl.protocol import errors
from seccl.protocol.envelope import SignedMessage, SigningDomain, sign_message
from seccl.protocol.evidence import EvidenceKind
from seccl.protocol.instructions import Reply, Request, TrainRequest
from seccl.protocol.messages import (
    DEFAULT_MAX_BYTES,
    HEADER_SIZE,
    EvaluationMessage,
    UpdateMessage,
    decode_message,
)
from seccl.protocol.verification import Status
from seccl.roles.participant import Participant
from seccl.roles.server import Rejection
from seccl.roles.settings import LearningSettings
from seccl.runtime.simulation import RunResult, Simulation

ROUND = 1
GOOD = 3  # the only participant whose update the direct tests accept
PROTOCOL_ERRORS = {cls.__name__ for cls in errors.ProtocolError.__subclasses__()}
SETTINGS = LearningSettings(local_epochs=1)


def new_simulation(
    participant_factory: Callable[..., Participant] | None = None, rounds: int = 1
) -> Simulation:
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
    return Simulation(
        backend=EmbeddedChain(),
        parts=parts,
        test=test,
        rounds=rounds,
        candidate_fraction=0.5,
        settings=SETTINGS,
        seed=0,
        participant_factory=participant_factory,
    )


@pytest.fixture(scope="module")
def sim() -> Simulation:
    simulation = new_simulation()
    assert simulation.server.board.current_round() == ROUND  # the deployment opens round 1
    return simulation


def account(sim: Simulation, i: int) -> LocalAccount:
    return sim.participants[i].account


def author(sim: Simulation, i: int) -> str:
    return sim.session.participants[i]


def update(sim: Simulation, author: str, *, round_: int = ROUND, dim: int | None = None, seed: int = 0):
    """A well-formed update of exactly the session's ⌈s·d⌉ coordinates (for ``dim`` None)."""
    delta = np.random.default_rng(seed).normal(scale=0.01, size=dim or sim.session.dimension)
    return UpdateMessage(
        round_, author, select_top_fraction(delta.astype(np.float32), SETTINGS.share_fraction)
    )


def with_values(sim: Simulation, i: int, values: np.ndarray) -> UpdateMessage:
    """Participant ``i``'s update on the agreed number of coordinates, carrying ``values``."""
    indices = np.arange(sim.session.update_size)
    return UpdateMessage(ROUND, author(sim, i), SparseUpdate(sim.session.dimension, indices, values))


def sign_raw(
    sim: Simulation,
    data: bytes,
    signer: LocalAccount,
    *,
    round_: int = ROUND,
    kind: MessageKind = MessageKind.UPDATE,
    domain: SigningDomain | None = None,
) -> SignedMessage:
    """Sign arbitrary bytes as a ``kind`` message of ``round_`` (for bytes ``sign_message`` won't build)."""
    domain = domain or sim.session.domain
    return SignedMessage(data, domain.sign(signer, round_, int(kind), hashlib.sha256(data).digest()))


def board_digests(sim: Simulation) -> list[bytes]:
    return [record.digest for record, _ in sim.server.board.records()]


def assert_rejected(
    sim: Simulation, i: int, signed: SignedMessage, error: str, kind: MessageKind = MessageKind.UPDATE
) -> Rejection:
    """``accept`` refuses ``signed`` from participant ``i`` with ``error`` and records nothing."""
    server = sim.server
    stored_before, rejected_before = len(server.store), len(server.rejections)
    posted_before = board_digests(sim)
    transactions_before = len(server.transactions)

    assert server.accept(ROUND, i, signed, kind) is None

    assert error in PROTOCOL_ERRORS
    assert len(server.rejections) == rejected_before + 1
    rejection = server.rejections[-1]
    assert rejection.error == error, rejection.detail
    assert (rejection.round, rejection.author, rejection.tx_id) == (ROUND, author(sim, i), None)
    assert rejection.detail
    assert len(server.store) == stored_before
    assert len(server.transactions) == transactions_before  # nothing sent to the chain
    assert board_digests(sim) == posted_before
    return rejection


def assert_no_update_recorded(sim: Simulation, *indices: int) -> None:
    for i in indices:
        assert sim.server.board.digest_of(ROUND, MessageKind.UPDATE, author(sim, i)) is None
        assert sim.server.store.get(ROUND, MessageKind.UPDATE, author(sim, i)) is None
        assert (ROUND, author(sim, i)) not in sim.server.receipts


# ─────────────── signatures and domains ───────────────


def test_an_update_signed_with_another_participants_key_is_an_invalid_signature(sim: Simulation) -> None:
    message = update(sim, author(sim, 0))

    rejection = assert_rejected(
        sim, 0, sign_raw(sim, message.to_bytes(), account(sim, 1)), "InvalidSignatureError"
    )

    assert account(sim, 1).address in rejection.detail
    assert_no_update_recorded(sim, 0, 1)


def test_an_update_with_bytes_changed_after_signing_is_an_invalid_signature(sim: Simulation) -> None:
    signed = sign_message(update(sim, author(sim, 0)), account(sim, 0), sim.session.domain)
    data = bytearray(signed.data)
    data[-1] ^= 0x01

    tampered = replace(signed, data=bytes(data))
    assert_rejected(sim, 0, tampered, "InvalidSignatureError")
    assert tampered.digest() not in board_digests(sim)
    assert_no_update_recorded(sim, 0)


@pytest.mark.parametrize(
    "change",
    [
        {"nonce": b"\x00" * 32},
        {"consensus": "0x" + "cd" * 20},
        {"board": "0x" + "cd" * 20},
        {"chain_id": 1},
    ],
    ids=["other-nonce", "other-consensus", "other-board", "other-chain"],
)
def test_an_update_signed_for_another_sessions_domain_is_an_invalid_signature(
    sim: Simulation, change: dict[str, Any]
) -> None:
    other = replace(sim.session.domain, **change)
    signed = sign_message(update(sim, author(sim, 1)), account(sim, 1), other)

    rejection = assert_rejected(sim, 1, signed, "InvalidSignatureError")

    assert f"not its author {author(sim, 1)}'s" in rejection.detail
    assert_no_update_recorded(sim, 1)


# ─────────────── who, when and what ───────────────


def test_an_update_of_round_two_is_the_wrong_round(sim: Simulation) -> None:
    message = update(sim, author(sim, 1), round_=2)

    rejection = assert_rejected(
        sim, 1, sign_message(message, account(sim, 1), sim.session.domain), "WrongRoundError"
    )

    assert "round 2 received in round 1" in rejection.detail
    assert_no_update_recorded(sim, 1)


def test_an_update_authored_by_a_stranger_is_from_an_unknown_participant(sim: Simulation) -> None:
    stranger = new_account()
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
    j_message = update(sim, author(sim, 2))

    rejection = assert_rejected(
        sim, 1, sign_message(j_message, account(sim, 2), sim.session.domain), "UnknownParticipantError"
    )

    assert f"authored by {author(sim, 2)}" in rejection.detail
    assert_no_update_recorded(sim, 1, 2)


def test_an_evaluation_sent_in_place_of_an_update_is_the_wrong_kind(sim: Simulation) -> None:
    scores = tuple(ABSTAIN if j == 2 else 0 for j in range(sim.session.n))
    evaluation = EvaluationMessage(ROUND, author(sim, 2), scores)
    signed = sign_message(evaluation, account(sim, 2), sim.session.domain)

    rejection = assert_rejected(sim, 2, signed, "MalformedMessageError")

    assert "expected a update message, got a evaluation message" in rejection.detail
    assert sim.server.store.get(ROUND, MessageKind.EVALUATION, evaluation.author) is None
    assert_no_update_recorded(sim, 2)


def test_an_update_sent_in_place_of_an_evaluation_is_the_wrong_kind(sim: Simulation) -> None:
    signed = sign_message(update(sim, author(sim, 2)), account(sim, 2), sim.session.domain)

    rejection = assert_rejected(sim, 2, signed, "MalformedMessageError", MessageKind.EVALUATION)

    assert "expected a evaluation message, got a update message" in rejection.detail
    assert_no_update_recorded(sim, 2)


# ─────────────── malformed and oversized bytes ───────────────


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 33,
        b"garbage! " * 12,
        b"SCCL" + bytes([9, 0]) + b"\x00" * 28,
        b"SCCL" + bytes([2, 7]) + b"\x00" * 28,
    ],
    ids=["empty", "short", "garbage", "bad-version", "bad-kind"],
)
def test_garbage_bytes_are_a_malformed_message(sim: Simulation, data: bytes) -> None:
    signed = SignedMessage(data, b"\x00" * 65)
    assert_rejected(sim, 2, signed, "MalformedMessageError")
    assert_no_update_recorded(sim, 2)


def test_a_truncated_update_is_a_malformed_message(sim: Simulation) -> None:
    data = update(sim, author(sim, 2)).to_bytes()[:-3]

    rejection = assert_rejected(sim, 2, sign_raw(sim, data, account(sim, 2)), "MalformedMessageError")

    assert "does not hold" in rejection.detail
    assert_no_update_recorded(sim, 2)


def test_a_message_over_the_sessions_size_limit_is_oversized(sim: Simulation) -> None:
    # The limit is the largest message the session can produce (a model), not a generic 64 MiB.
    limit = sim.session.max_message_bytes
    assert limit < DEFAULT_MAX_BYTES
    data = update(sim, author(sim, 2)).to_bytes()
    huge = data + b"\x00" * (limit + 1 - len(data))

    rejection = assert_rejected(sim, 2, SignedMessage(huge, b"\x00" * 65), "OversizedMessageError")

    assert f"exceeds the limit of {limit}" in rejection.detail
    assert_no_update_recorded(sim, 2)


# ─────────────── shapes and values outside the session's bounds ───────────────


def test_an_update_of_the_wrong_dimension_is_the_wrong_shape(sim: Simulation) -> None:
    dim = sim.session.dimension
    message = update(sim, author(sim, 0), dim=dim - 1)

    rejection = assert_rejected(
        sim, 0, sign_message(message, account(sim, 0), sim.session.domain), "WrongShapeError"
    )

    assert f"{dim - 1} parameters, expected {dim}" in rejection.detail
    assert_no_update_recorded(sim, 0)


def test_an_update_denser_than_agreed_is_the_wrong_shape(sim: Simulation) -> None:
    dim, k = sim.session.dimension, sim.session.update_size
    values = np.random.default_rng(3).normal(scale=0.01, size=2 * k).astype(np.float32)
    denser = UpdateMessage(ROUND, author(sim, 0), SparseUpdate(dim, np.arange(2 * k), values))

    rejection = assert_rejected(
        sim, 0, sign_message(denser, account(sim, 0), sim.session.domain), "WrongShapeError"
    )

    assert f"shares {2 * k} coordinates, the session agreed on exactly {k}" in rejection.detail
    assert_no_update_recorded(sim, 0)


def test_a_fully_dense_update_is_refused_by_its_size_before_it_is_parsed(sim: Simulation) -> None:
    dim = sim.session.dimension
    values = np.random.default_rng(3).normal(scale=0.01, size=dim).astype(np.float32)
    dense = UpdateMessage(ROUND, author(sim, 0), SparseUpdate(dim, np.arange(dim), values))

    rejection = assert_rejected(
        sim, 0, sign_message(dense, account(sim, 0), sim.session.domain), "OversizedMessageError"
    )

    assert f"exceeds the limit of {sim.session.max_message_bytes}" in rejection.detail
    assert_no_update_recorded(sim, 0)


@pytest.mark.parametrize("fewer", [1, 100])
def test_an_update_with_fewer_coordinates_than_agreed_is_the_wrong_shape(sim: Simulation, fewer: int) -> None:
    k = sim.session.update_size
    short = UpdateMessage(
        ROUND, author(sim, 0), SparseUpdate(sim.session.dimension, np.arange(k - fewer), np.zeros(k - fewer))
    )

    rejection = assert_rejected(
        sim, 0, sign_message(short, account(sim, 0), sim.session.domain), "WrongShapeError"
    )

    assert f"shares {k - fewer} coordinates, the session agreed on exactly {k}" in rejection.detail
    assert_no_update_recorded(sim, 0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "minus-inf"])
def test_an_update_with_a_non_finite_value_is_non_finite(sim: Simulation, bad: float) -> None:
    good = update(sim, author(sim, 1)).to_bytes()
    count = struct.unpack_from(">I", good, HEADER_SIZE + 4)[0]
    values_at = HEADER_SIZE + 8 + 4 * count
    data = good[:values_at] + struct.pack(">f", bad) + good[values_at + 4 :]

    rejection = assert_rejected(sim, 1, sign_raw(sim, data, account(sim, 1)), "NonFiniteValueError")

    assert "NaN/Inf" in rejection.detail
    assert_no_update_recorded(sim, 1)


@pytest.mark.parametrize("big", [1e30, -1e30])
def test_a_finite_update_value_beyond_the_bound_is_out_of_bounds(sim: Simulation, big: float) -> None:
    values = np.full(sim.session.update_size, 0.01, dtype=np.float32)
    values[7] = big
    message = with_values(sim, 1, values)

    rejection = assert_rejected(
        sim, 1, sign_message(message, account(sim, 1), sim.session.domain), "ValueOutOfBoundsError"
    )

    assert f"exceeds the session's bound {sim.session.max_abs_value:g}" in rejection.detail
    assert_no_update_recorded(sim, 1)


def test_an_evaluation_that_does_not_score_everyone_is_the_wrong_shape(sim: Simulation) -> None:
    evaluation = EvaluationMessage(ROUND, author(sim, 1), (ABSTAIN, 5, 5))  # 3 of 4

    rejection = assert_rejected(
        sim,
        1,
        sign_message(evaluation, account(sim, 1), sim.session.domain),
        "WrongShapeError",
        MessageKind.EVALUATION,
    )

    assert f"scores 3 participants, expected {sim.session.n}" in rejection.detail


def test_an_evaluation_with_a_score_above_the_maximum_is_malformed(sim: Simulation) -> None:
    evaluation = EvaluationMessage(ROUND, author(sim, 1), (5, ABSTAIN, MAX_SCORE + 1, 5))

    rejection = assert_rejected(
        sim,
        1,
        sign_message(evaluation, account(sim, 1), sim.session.domain),
        "MalformedMessageError",
        MessageKind.EVALUATION,
    )

    assert "is not ABSTAIN" in rejection.detail


def test_an_evaluation_that_scores_its_own_author_is_malformed_before_it_is_stored(sim: Simulation) -> None:
    evaluation = EvaluationMessage(ROUND, author(sim, 1), (5, 900_000, 5, 5))
    transactions = len(sim.server.transactions)

    rejection = assert_rejected(
        sim,
        1,
        sign_message(evaluation, account(sim, 1), sim.session.domain),
        "MalformedMessageError",
        MessageKind.EVALUATION,
    )

    assert "abstain on its own author" in rejection.detail
    assert sim.server.store.get(ROUND, MessageKind.EVALUATION, author(sim, 1)) is None
    assert len(sim.server.transactions) == transactions  # nothing spent on a relay the chain refuses


# ─────────────── replays ───────────────


def test_the_second_copy_of_an_accepted_update_is_a_replay(sim: Simulation) -> None:
    server, good = sim.server, author(sim, GOOD)
    signed = sign_message(update(sim, good), account(sim, GOOD), sim.session.domain)
    stored_before = len(server.store)

    stored = server.accept(ROUND, GOOD, signed, MessageKind.UPDATE)

    assert stored is not None
    assert (stored.round, stored.kind, stored.author, stored.signed) == (
        ROUND,
        MessageKind.UPDATE,
        good,
        signed,
    )
    assert len(server.store) == stored_before + 1
    assert server.board.digest_of(ROUND, MessageKind.UPDATE, good) == signed.digest()
    assert server.board.record_in_transaction(stored.tx_id).digest == signed.digest()  # type: ignore[union-attr]
    receipt = server.receipts[(ROUND, good)]
    assert receipt.signer(sim.session.domain) == sim.session.server
    assert (receipt.author, receipt.digest, receipt.tx_id) == (good, signed.digest(), stored.tx_id)

    rejection = assert_rejected(sim, GOOD, signed, "ReplayError")
    assert "already sent its update message of round 1" in rejection.detail

    another = sign_message(update(sim, good, seed=1), account(sim, GOOD), sim.session.domain)
    assert_rejected(sim, GOOD, another, "ReplayError")

    assert server.board.digest_of(ROUND, MessageKind.UPDATE, good) == signed.digest()
    assert server.store.get(ROUND, MessageKind.UPDATE, good) is stored
    assert len(server.store) == stored_before + 1


def test_the_second_evaluation_of_a_round_is_a_replay(sim: Simulation) -> None:
    voter = 0
    scores = tuple(ABSTAIN if j == voter else 500_000 for j in range(sim.session.n))
    first = sign_message(
        EvaluationMessage(ROUND, author(sim, voter), scores), account(sim, voter), sim.session.domain
    )
    other_scores = tuple(ABSTAIN if j == voter else 1 for j in range(sim.session.n))
    second = sign_message(
        EvaluationMessage(ROUND, author(sim, voter), other_scores), account(sim, voter), sim.session.domain
    )

    stored = sim.server.accept(ROUND, voter, first, MessageKind.EVALUATION)
    assert stored is not None and stored.tx_id == ""  # evaluations are relayed later, not posted

    rejection = assert_rejected(sim, voter, second, "ReplayError", MessageKind.EVALUATION)
    assert "already sent its evaluation message of round 1" in rejection.detail
    assert sim.server.store.get(ROUND, MessageKind.EVALUATION, author(sim, voter)) is stored


def test_every_rejection_was_recorded_and_only_the_good_update_was_posted(sim: Simulation) -> None:
    server = sim.server
    assert server.rejections
    assert all(r.round == ROUND and r.error in PROTOCOL_ERRORS for r in server.rejections)
    assert_no_update_recorded(sim, 0, 1, 2)
    updates = server.store.of_round(ROUND, MessageKind.UPDATE)
    assert [m.author for m in updates] == [author(sim, GOOD)] * len(updates)
    assert len(updates) <= 1
    assert [r.author for r, _ in server.board.records() if r.kind is MessageKind.UPDATE] == [
        m.author for m in updates
    ]


def test_honest_updates_are_still_accepted_after_refusals_from_the_same_participants() -> None:
    """A refusal costs a participant nothing but the bad message: its good update still counts."""
    fresh = new_simulation()
    server, domain = fresh.server, fresh.session.domain
    bad = [
        sign_raw(fresh, update(fresh, author(fresh, 0)).to_bytes(), account(fresh, 1)),
        sign_message(update(fresh, author(fresh, 1), round_=2), account(fresh, 1), domain),
        sign_message(
            with_values(fresh, 2, np.full(fresh.session.update_size, 1e30)), account(fresh, 2), domain
        ),
        sign_message(update(fresh, author(fresh, 3)), account(fresh, 3), replace(domain, nonce=b"\x01" * 32)),
    ]
    for i, signed in enumerate(bad):
        assert server.accept(ROUND, i, signed, MessageKind.UPDATE) is None
    assert [r.error for r in server.rejections] == [
        "InvalidSignatureError",
        "WrongRoundError",
        "ValueOutOfBoundsError",
        "InvalidSignatureError",
    ]
    assert len(server.store) == 0 and board_digests(fresh) == [fresh.session.initial_model]

    good = [
        sign_message(update(fresh, author(fresh, i), seed=i), account(fresh, i), domain) for i in range(4)
    ]
    for i, signed in enumerate(good):
        assert server.accept(ROUND, i, signed, MessageKind.UPDATE) is not None

    assert len(server.rejections) == len(bad)
    assert fresh.board_reader.updates_of(ROUND) == [s.digest() for s in good]
    assert [server.store.get(ROUND, MessageKind.UPDATE, author(fresh, i)).signed for i in range(4)] == good  # type: ignore[union-attr]


# ─────────────── whole sessions with one bad uploader ───────────────

BAD = 0  # the participant whose upload is bad in the sessions below


class ShapeBreaker(Participant):
    """Signs and posts, like everyone, an update outside the session's bounds (``breach``)."""

    breach: str = "dense"

    def make_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> SparseUpdate:
        honest = super().make_update(params, local, round_)
        d = honest.dimension
        if self.breach == "dense":
            return SparseUpdate(d, np.arange(d), (local - params).astype(np.float32))
        if self.breach == "fewer":
            return SparseUpdate(d, honest.indices[:-1], honest.values[:-1])
        values = honest.values.copy()
        values[0] = 1e30
        return SparseUpdate(d, honest.indices, values)

    def handle(self, request: Request) -> Reply:
        reply = super().handle(request)
        if isinstance(request, TrainRequest):
            self.uploaded = reply.message
        return reply


class WireCorrupter(Participant):
    """Hands the server a bad envelope (``corrupt``) in place of its update; on the chain it
    keeps its honest update, which it posts itself when the server does not."""

    corrupt: str = "nan"

    def handle(self, request: Request) -> Reply:
        reply = super().handle(request)
        if not isinstance(request, TrainRequest) or reply.message is None:
            return reply
        self.honest = signed = reply.message
        domain = self.session.domain
        update = decode_message(signed.data)
        assert isinstance(update, UpdateMessage)
        if self.corrupt == "other-nonce":
            moved = sign_message(update, self.account, replace(domain, nonce=b"\x02" * 32))
        elif self.corrupt == "wrong-round":
            moved = sign_message(replace(update, round=request.round + 1), self.account, domain)
        else:
            count = struct.unpack_from(">I", signed.data, HEADER_SIZE + 4)[0]
            at = HEADER_SIZE + 8 + 4 * count
            data = signed.data[:at] + struct.pack(">f", float("nan")) + signed.data[at + 4 :]
            digest = hashlib.sha256(data).digest()
            moved = SignedMessage(
                data, domain.sign(self.account, request.round, int(MessageKind.UPDATE), digest)
            )
        return Reply(moved)


def one_bad(cls: type[Participant], **attributes: str) -> Callable[..., Participant]:
    bad_cls = type(cls.__name__, (cls,), attributes)

    def make(*, index: int, **kwargs: Any) -> Participant:
        return (bad_cls if index == BAD else Participant)(index=index, **kwargs)

    return make


def assert_session_intact(sim: Simulation, result: RunResult, error: str) -> None:
    """The run's records: Rejections naming ``error`` for BAD's upload and nobody else's, every
    other participant's update and ballot counted, and the round completed without BAD."""
    bad_author = author(sim, BAD)
    assert result.rejections
    assert {(r.author, r.error) for r in result.rejections} == {(bad_author, error)}
    assert len(result.rounds) == 1
    record = result.rounds[0]
    assert BAD not in record.candidates and len(record.candidates) == sim.session.candidates
    assert record.ballots == sim.session.n
    for i in range(sim.session.n):
        if i != BAD:
            stored = sim.server.store.get(ROUND, MessageKind.UPDATE, author(sim, i))
            assert stored is not None
            assert (
                sim.board_reader.digest_of(ROUND, MessageKind.UPDATE, author(sim, i))
                == stored.signed.digest()
            )
    assert sim.board_reader.round_info(ROUND).model_posted
    # Nothing the bad uploader did is held against the honest server.
    for evidence, verdict in zip(result.evidence, result.verdicts, strict=True):
        if evidence.subject == sim.session.server:
            assert verdict.status is not Status.CONFIRMED, (evidence.summary(), verdict)
    assert sim.board_reader.caught_count() == 0


@pytest.mark.parametrize(
    ("breach", "error"),
    [("dense", "OversizedMessageError"), ("fewer", "WrongShapeError"), ("huge", "ValueOutOfBoundsError")],
)
def test_a_session_refuses_an_update_outside_the_bounds_and_carries_on(breach: str, error: str) -> None:
    sim = new_simulation(one_bad(ShapeBreaker, breach=breach))

    result = sim.run()

    assert_session_intact(sim, result, error)
    bad_author = author(sim, BAD)
    assert sim.server.store.get(ROUND, MessageKind.UPDATE, bad_author) is None
    # Its author signed it on the board itself; every other participant proves it invalid.
    uploaded = sim.participants[BAD].uploaded  # type: ignore[attr-defined]
    assert sim.board_reader.digest_of(ROUND, MessageKind.UPDATE, bad_author) == uploaded.digest()
    invalid = [e for e in result.evidence if e.kind is EvidenceKind.INVALID_MESSAGE]
    assert sorted(e.finder_index for e in invalid) == [i for i in range(sim.session.n) if i != BAD]
    for evidence in invalid:
        assert evidence.subject == bad_author and error in evidence.detail
        assert sim.verify(evidence).status is Status.CONFIRMED


@pytest.mark.parametrize(
    ("corrupt", "error"),
    [
        ("nan", "NonFiniteValueError"),
        ("other-nonce", "InvalidSignatureError"),
        ("wrong-round", "WrongRoundError"),
    ],
)
def test_a_session_refuses_a_bad_envelope_and_takes_the_authors_own_posting(corrupt: str, error: str) -> None:
    sim = new_simulation(one_bad(WireCorrupter, corrupt=corrupt))

    result = sim.run()

    assert_session_intact(sim, result, error)
    assert [r.error for r in result.rejections] == [error]
    # The author's honest update, which it posted itself, is delivered and counted like any other.
    bad_author = author(sim, BAD)
    honest = sim.participants[BAD].honest  # type: ignore[attr-defined]
    stored = sim.server.store.get(ROUND, MessageKind.UPDATE, bad_author)
    assert stored is not None and stored.signed == honest
    assert sim.board_reader.digest_of(ROUND, MessageKind.UPDATE, bad_author) == honest.digest()
    assert not [e for e in result.evidence if e.kind is EvidenceKind.INVALID_MESSAGE]

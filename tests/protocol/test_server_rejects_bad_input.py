"""The parameter server refuses every bad ballot and every bad commitment with a Rejection naming
the typed error, and a refused one leaves no trace in its store or on the chain. (Update bytes no
longer reach the server: they are revealed on the board, and their decoding is tested with the
messages and the participants' proofs of invalidity.)

The first part calls ``ParameterServer.accept`` (ballots) and ``accept_commitment`` directly on the
server of a real session (embedded EVM, round 1 open). The second part runs whole sessions in
which one participant hands the server a bad commitment: the Rejection is in the run's records,
the participant posts its own commitment, and the round completes with everyone counted.
"""

from __future__ import annotations

import hashlib
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
from seccl.learning.sparse import select_top_fraction
from seccl.learning.splits import load_participant_data
from seccl.protocol import errors
from seccl.protocol.envelope import Commitment, SignedMessage, SigningDomain, sign_message
from seccl.protocol.instructions import Reply, Request, TrainRequest
from seccl.protocol.messages import (
    DEFAULT_MAX_BYTES,
    EvaluationMessage,
    UpdateMessage,
)
from seccl.protocol.verification import Status
from seccl.roles.participant import Participant
from seccl.roles.server import Rejection
from seccl.roles.settings import LearningSettings
from seccl.runtime.simulation import Simulation

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


def update(sim: Simulation, author: str, *, round_: int = ROUND, seed: int = 0) -> UpdateMessage:
    """A well-formed update of exactly the session's ⌈s·d⌉ coordinates."""
    delta = np.random.default_rng(seed).normal(scale=0.01, size=sim.session.dimension)
    return UpdateMessage(
        round_, author, select_top_fraction(delta.astype(np.float32), SETTINGS.share_fraction)
    )


def evaluation(sim: Simulation, i: int, *, round_: int = ROUND, value: int = 500_000) -> EvaluationMessage:
    """Participant ``i``'s well-formed ballot: ``value`` for everyone, abstaining on itself."""
    scores = tuple(ABSTAIN if j == i else value for j in range(sim.session.n))
    return EvaluationMessage(round_, author(sim, i), scores)


def commitment(sim: Simulation, i: int, *, signer: int | None = None, **change: Any) -> Commitment:
    """Participant ``i``'s commitment to an update, signed by ``signer`` (``i``), with ``change``."""
    signed = sign_message(update(sim, author(sim, i), seed=i), account(sim, i), sim.session.domain)
    made = Commitment.of(signed)
    if signer is not None:
        made = replace(made, signature=sim.session.domain.sign(account(sim, signer), ROUND, 0, made.digest))
    return replace(made, **change)


def sign_raw(
    sim: Simulation,
    data: bytes,
    signer: LocalAccount,
    *,
    round_: int = ROUND,
    kind: MessageKind = MessageKind.EVALUATION,
    domain: SigningDomain | None = None,
) -> SignedMessage:
    """Sign arbitrary bytes as a ``kind`` message of ``round_`` (for bytes ``sign_message`` won't build)."""
    domain = domain or sim.session.domain
    return SignedMessage(data, domain.sign(signer, round_, int(kind), hashlib.sha256(data).digest()))


def board_digests(sim: Simulation) -> list[bytes]:
    return [record.digest for record, _ in sim.server.board.records()]


def assert_rejected(
    sim: Simulation, i: int, signed: SignedMessage, error: str, kind: MessageKind = MessageKind.EVALUATION
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


def assert_no_ballot_stored(sim: Simulation, *indices: int) -> None:
    for i in indices:
        assert sim.server.store.get(ROUND, MessageKind.EVALUATION, author(sim, i)) is None


def assert_commitment_refused(sim: Simulation, i: int, made: Commitment, error: str) -> Rejection:
    """``accept_commitment`` refuses ``made`` from participant ``i`` with ``error``: nothing posted."""
    server = sim.server
    rejected_before, transactions_before = len(server.rejections), len(server.transactions)

    server.accept_commitment(ROUND, i, made)

    assert len(server.rejections) == rejected_before + 1
    rejection = server.rejections[-1]
    assert (rejection.round, rejection.author, rejection.error) == (ROUND, author(sim, i), error)
    assert len(server.transactions) == transactions_before
    assert server.board.digest_of(ROUND, MessageKind.UPDATE, author(sim, i)) is None
    assert (ROUND, author(sim, i)) not in server.receipts
    return rejection


# ─────────────── ballots: signatures, domains, who and when ───────────────


def test_a_ballot_signed_with_another_participants_key_is_an_invalid_signature(sim: Simulation) -> None:
    message = evaluation(sim, 0)

    rejection = assert_rejected(
        sim, 0, sign_raw(sim, message.to_bytes(), account(sim, 1)), "InvalidSignatureError"
    )

    assert account(sim, 1).address in rejection.detail
    assert_no_ballot_stored(sim, 0, 1)


def test_a_ballot_with_bytes_changed_after_signing_is_an_invalid_signature(sim: Simulation) -> None:
    signed = sign_message(evaluation(sim, 0), account(sim, 0), sim.session.domain)
    data = bytearray(signed.data)
    data[-1] ^= 0x01

    assert_rejected(sim, 0, replace(signed, data=bytes(data)), "InvalidSignatureError")
    assert_no_ballot_stored(sim, 0)


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
def test_a_ballot_signed_for_another_sessions_domain_is_an_invalid_signature(
    sim: Simulation, change: dict[str, Any]
) -> None:
    other = replace(sim.session.domain, **change)
    signed = sign_message(evaluation(sim, 1), account(sim, 1), other)

    rejection = assert_rejected(sim, 1, signed, "InvalidSignatureError")

    assert f"not its author {author(sim, 1)}'s" in rejection.detail
    assert_no_ballot_stored(sim, 1)


def test_a_ballot_of_round_two_is_the_wrong_round(sim: Simulation) -> None:
    signed = sign_message(evaluation(sim, 1, round_=2), account(sim, 1), sim.session.domain)

    rejection = assert_rejected(sim, 1, signed, "WrongRoundError")

    assert "round 2 received in round 1" in rejection.detail
    assert_no_ballot_stored(sim, 1)


def test_a_ballot_authored_by_a_stranger_is_from_an_unknown_participant(sim: Simulation) -> None:
    stranger = new_account()
    scores = tuple(500_000 for _ in range(sim.session.n))
    signed = sign_message(EvaluationMessage(ROUND, stranger.address, scores), stranger, sim.session.domain)

    rejection = assert_rejected(sim, 0, signed, "UnknownParticipantError")

    assert f"{stranger.address} is not a participant" in rejection.detail
    assert_no_ballot_stored(sim, 0)


def test_another_participants_ballot_sent_as_ones_own_is_from_an_unknown_participant(sim: Simulation) -> None:
    signed = sign_message(evaluation(sim, 2), account(sim, 2), sim.session.domain)

    rejection = assert_rejected(sim, 1, signed, "UnknownParticipantError")

    assert f"authored by {author(sim, 2)}" in rejection.detail
    assert_no_ballot_stored(sim, 1, 2)


def test_an_update_sent_in_place_of_a_ballot_is_the_wrong_kind(sim: Simulation) -> None:
    signed = sign_message(update(sim, author(sim, 2)), account(sim, 2), sim.session.domain)

    rejection = assert_rejected(sim, 2, signed, "MalformedMessageError")

    assert "expected a evaluation message, got a update message" in rejection.detail
    assert_no_ballot_stored(sim, 2)


# ─────────────── malformed and oversized bytes ───────────────


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 33,
        b"garbage! " * 12,
        b"SCCL" + bytes([9, 1]) + b"\x00" * 28,
        b"SCCL" + bytes([4, 7]) + b"\x00" * 28,
    ],
    ids=["empty", "short", "garbage", "bad-version", "bad-kind"],
)
def test_garbage_bytes_are_a_malformed_message(sim: Simulation, data: bytes) -> None:
    assert_rejected(sim, 2, SignedMessage(data, b"\x00" * 65), "MalformedMessageError")
    assert_no_ballot_stored(sim, 2)


def test_a_truncated_ballot_is_a_malformed_message(sim: Simulation) -> None:
    data = evaluation(sim, 2).to_bytes()[:-3]

    rejection = assert_rejected(sim, 2, sign_raw(sim, data, account(sim, 2)), "MalformedMessageError")

    assert "whole 4-byte scores" in rejection.detail
    assert_no_ballot_stored(sim, 2)


def test_a_message_over_the_sessions_size_limit_is_oversized(sim: Simulation) -> None:
    # The limit is the largest message the session can produce (a model), not a generic 64 MiB.
    limit = sim.session.max_message_bytes
    assert limit < DEFAULT_MAX_BYTES
    data = evaluation(sim, 2).to_bytes()
    huge = data + b"\x00" * (limit + 1 - len(data))

    rejection = assert_rejected(sim, 2, SignedMessage(huge, b"\x00" * 65), "OversizedMessageError")

    assert f"exceeds the limit of {limit}" in rejection.detail
    assert_no_ballot_stored(sim, 2)


# ─────────────── ballots outside the session's bounds ───────────────


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


# ─────────────── replays ───────────────


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


# ─────────────── commitments ───────────────


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"signer": 1}, "InvalidSignatureError"),
        ({"round": 2}, "WrongRoundError"),
        ({"author": "0x" + "11" * 20}, "WrongRoundError"),
        ({"signature": b"\x00" * 65}, "InvalidSignatureError"),
    ],
    ids=["other-signer", "wrong-round", "other-author", "malformed-signature"],
)
def test_a_bad_commitment_is_refused_and_nothing_is_posted(sim: Simulation, change: dict, error: str) -> None:
    signer = change.pop("signer", None)
    made = commitment(sim, 0, signer=signer, **change)

    assert_commitment_refused(sim, 0, made, error)


def test_a_commitment_is_posted_once_with_a_receipt_and_its_copy_is_refused_by_the_board() -> None:
    fresh = new_simulation()
    server = fresh.server
    made = commitment(fresh, GOOD)

    server.accept_commitment(ROUND, GOOD, made)

    assert server.board.digest_of(ROUND, MessageKind.UPDATE, author(fresh, GOOD)) == made.digest
    receipt = server.receipts[(ROUND, author(fresh, GOOD))]
    assert receipt.signer(fresh.session.domain) == fresh.session.server
    assert server.board.record_in_transaction(receipt.tx_id).digest == made.digest  # type: ignore[union-attr]
    # Sent again (a replay, or another commitment): the board refuses it, the first one stands.
    server.accept_commitment(ROUND, GOOD, commitment(fresh, GOOD, signer=None))
    assert server.rejections[-1].error == "BulletinAlreadyPosted"
    assert server.board.digest_of(ROUND, MessageKind.UPDATE, author(fresh, GOOD)) == made.digest


# ─────────────── whole sessions with one bad commitment ───────────────

BAD = 0  # the participant whose commitment to the server is bad in the sessions below


class CommitmentCorrupter(Participant):
    """Hands the server a bad commitment (``corrupt``); on the chain it keeps its honest one, which
    it posts itself when the server does not, and it reveals its update as usual."""

    corrupt: str = "other-nonce"

    def handle(self, request: Request) -> Reply:
        reply = super().handle(request)
        if not isinstance(request, TrainRequest) or reply.commitment is None:
            return reply
        honest = self.honest = reply.commitment
        if self.corrupt == "other-nonce":
            domain = replace(self.session.domain, nonce=b"\x02" * 32)
            return Reply(
                commitment=replace(
                    honest, signature=domain.sign(self.account, honest.round, 0, honest.digest)
                )
            )
        return Reply(commitment=replace(honest, round=request.round + 1))


def one_bad(cls: type[Participant], **attributes: str) -> Callable[..., Participant]:
    bad_cls = type(cls.__name__, (cls,), attributes)

    def make(*, index: int, **kwargs: Any) -> Participant:
        return (bad_cls if index == BAD else Participant)(index=index, **kwargs)

    return make


@pytest.mark.parametrize(
    ("corrupt", "error"), [("other-nonce", "InvalidSignatureError"), ("wrong-round", "WrongRoundError")]
)
def test_a_session_refuses_a_bad_commitment_and_takes_the_authors_own_posting(
    corrupt: str, error: str
) -> None:
    sim = new_simulation(one_bad(CommitmentCorrupter, corrupt=corrupt))

    result = sim.run()

    bad_author = author(sim, BAD)
    assert [(r.author, r.error) for r in result.rejections] == [(bad_author, error)]
    assert len(result.rounds) == 1 and result.rounds[0].ballots == sim.session.n
    honest = sim.participants[BAD].honest  # type: ignore[attr-defined]
    assert sim.board_reader.digest_of(ROUND, MessageKind.UPDATE, bad_author) == honest.digest
    assert BAD in sim.board_reader.round_info(ROUND).eligible  # revealed and counted like any other
    # Nothing the bad uploader did is held against the honest server.
    for evidence, verdict in zip(result.evidence, result.verdicts, strict=True):
        if evidence.subject == sim.session.server:
            assert verdict.status is not Status.CONFIRMED, (evidence.summary(), verdict)
    assert sim.board_reader.caught_count() == 0

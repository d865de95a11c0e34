"""Signatures bind a message to its author, its bytes and its domain (chain and board), and the
hash signed off-chain is the one the deployed bulletin board computes and checks."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest

from seccl.chain import errors
from seccl.chain.backends import EmbeddedChain
from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from seccl.chain.signing import sign_hash, signed_hash
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.envelope import SignedMessage, SigningDomain, open_message, sign_message
from seccl.protocol.errors import InvalidSignatureError, WrongShapeError
from seccl.protocol.messages import EvaluationMessage, ModelMessage, UpdateMessage
from tests.conftest import make_accounts

ALICE, BOB, CAROL = make_accounts(3)
DOMAIN = SigningDomain(chain_id=31337, board="0x" + "ab" * 20)


def update_of(author: str, round_: int = 1) -> UpdateMessage:
    return UpdateMessage(round_, author, SparseUpdate(8, [1, 5], [0.25, -1.5]))


@pytest.mark.parametrize(
    "message",
    [
        update_of(ALICE.address),
        EvaluationMessage(2, ALICE.address, (0, 700_000, 1_000_000)),
        ModelMessage(0, ALICE.address, np.arange(8, dtype=np.float32)),
    ],
    ids=["update", "evaluation", "model"],
)
def test_a_message_signed_by_its_author_opens_to_the_same_message(message) -> None:
    signed = sign_message(message, ALICE, DOMAIN)

    opened = open_message(signed, DOMAIN, dimension=8, participants=3)

    assert type(opened) is type(message)
    assert opened.author == ALICE.address
    assert opened.to_bytes() == message.to_bytes() == signed.data
    assert signed.digest() == hashlib.sha256(signed.data).digest() == message.digest()
    assert len(signed.signature) == 65


def test_signing_is_deterministic() -> None:
    assert sign_message(update_of(ALICE.address), ALICE, DOMAIN) == sign_message(
        update_of(ALICE.address), ALICE, DOMAIN
    )


def test_a_signature_by_another_account_is_rejected() -> None:
    message = update_of(ALICE.address)
    data = message.to_bytes()
    forged = SignedMessage(
        data,
        sign_hash(BOB, signed_hash(DOMAIN.chain_id, DOMAIN.board, 1, int(message.kind), message.digest())),
    )

    with pytest.raises(InvalidSignatureError, match=f"not its author {ALICE.address}'s") as info:
        open_message(forged, DOMAIN)
    assert BOB.address in str(info.value)


def test_bytes_changed_after_signing_are_rejected() -> None:
    signed = sign_message(update_of(ALICE.address), ALICE, DOMAIN)
    data = bytearray(signed.data)
    data[-1] ^= 0x01  # flip one bit of the last value

    with pytest.raises(InvalidSignatureError, match="not its author"):
        open_message(replace(signed, data=bytes(data)), DOMAIN)


def test_a_round_changed_after_signing_is_rejected() -> None:
    signed = sign_message(update_of(ALICE.address, round_=1), ALICE, DOMAIN)
    moved = SignedMessage(update_of(ALICE.address, round_=2).to_bytes(), signed.signature)

    with pytest.raises(InvalidSignatureError, match="not its author"):
        open_message(moved, DOMAIN)


def test_a_message_re_authored_after_signing_is_rejected() -> None:
    signed = sign_message(update_of(ALICE.address), ALICE, DOMAIN)
    stolen = SignedMessage(update_of(BOB.address).to_bytes(), signed.signature)

    with pytest.raises(InvalidSignatureError, match=f"not its author {BOB.address}'s"):
        open_message(stolen, DOMAIN)


@pytest.mark.parametrize("signature", [b"", b"\x00" * 65, b"\xff" * 64], ids=["empty", "zeros", "short"])
def test_a_malformed_signature_is_rejected(signature: bytes) -> None:
    signed = SignedMessage(update_of(ALICE.address).to_bytes(), signature)

    with pytest.raises(InvalidSignatureError, match="not its author"):
        open_message(signed, DOMAIN)


@pytest.mark.parametrize(
    "other",
    [
        SigningDomain(DOMAIN.chain_id, "0x" + "cd" * 20),
        SigningDomain(DOMAIN.chain_id + 1, DOMAIN.board),
    ],
    ids=["other-board", "other-chain"],
)
def test_a_signature_for_another_domain_is_rejected(other: SigningDomain) -> None:
    signed = sign_message(update_of(ALICE.address), ALICE, other)

    assert open_message(signed, other).author == ALICE.address
    with pytest.raises(InvalidSignatureError, match="not its author"):
        open_message(signed, DOMAIN)


def test_an_account_cannot_sign_a_message_authored_by_someone_else() -> None:
    with pytest.raises(ValueError, match=f"cannot sign a message authored by {ALICE.address}"):
        sign_message(update_of(ALICE.address), BOB, DOMAIN)


def test_the_shape_is_checked_when_opening() -> None:
    signed = sign_message(update_of(ALICE.address), ALICE, DOMAIN)

    with pytest.raises(WrongShapeError):
        open_message(signed, DOMAIN, dimension=9)


# ─────────────── the same hash on the embedded EVM ───────────────


@pytest.fixture(scope="module")
def board() -> BulletinBoardClient:
    backend = EmbeddedChain()
    deployed, _ = BulletinBoardClient.deploy(
        backend.connect(),
        server=backend.server_account(),
        participants=[a.address for a in (ALICE, BOB, CAROL)],
    )
    return deployed


@pytest.mark.parametrize("kind", list(MessageKind), ids=lambda k: k.name.lower())
def test_the_signed_hash_equals_the_deployed_boards_signed_hash_view(
    board: BulletinBoardClient, kind: MessageKind
) -> None:
    signed = sign_message(
        update_of(ALICE.address, round_=5), ALICE, SigningDomain(board.chain_id, board.address)
    )
    digest = signed.digest()

    on_chain = bytes(board.contract.functions.signedHash(5, int(kind), digest).call())

    assert on_chain == board.signed_hash(5, kind, digest)
    assert on_chain == signed_hash(board.chain_id, board.address, 5, int(kind), digest)
    assert on_chain != signed_hash(board.chain_id + 1, board.address, 5, int(kind), digest)


def test_the_board_accepts_the_envelope_signature_and_records_its_digest(board: BulletinBoardClient) -> None:
    domain = SigningDomain(board.chain_id, board.address)
    signed = sign_message(UpdateMessage(0, CAROL.address, SparseUpdate(3, [2], [1.0])), CAROL, domain)

    receipt = board.post(0, MessageKind.UPDATE, CAROL.address, signed.digest(), signed.signature)

    assert board.digest_of(0, MessageKind.UPDATE, CAROL.address) == signed.digest()
    record = board.record_in_transaction(receipt.tx_hash)
    assert record is not None and record.author == CAROL.address


def test_the_board_refuses_a_signature_made_for_another_board(board: BulletinBoardClient) -> None:
    other = SigningDomain(board.chain_id, "0x" + "cd" * 20)
    signed = sign_message(UpdateMessage(0, BOB.address, SparseUpdate(3, [0], [1.0])), BOB, other)

    with pytest.raises(errors.BulletinInvalidSignature):
        board.post(0, MessageKind.UPDATE, BOB.address, signed.digest(), signed.signature)
    assert board.digest_of(0, MessageKind.UPDATE, BOB.address) is None

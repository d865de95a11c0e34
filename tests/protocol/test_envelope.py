"""Signatures bind a message to its author, its bytes and its session's domain (the chain id, both
contracts and the session nonce), and the hash signed off-chain is the one the deployed bulletin
board computes and checks."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest

from seccl.chain import errors
from seccl.chain.accounts import new_account
from seccl.chain.backends import EmbeddedChain
from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from seccl.chain.signing import DELIVERY_KIND, RECEIPT_KIND, recover_signer, sign_hash
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.envelope import SignedMessage, SigningDomain, open_message, sign_message
from seccl.protocol.errors import (
    InvalidSignatureError,
    MalformedFieldError,
    MalformedMessageError,
    OversizedMessageError,
    ValueOutOfBoundsError,
    WrongShapeError,
)
from seccl.protocol.messages import EvaluationMessage, ModelMessage, UpdateMessage
from tests.protocol.helpers import deploy_session

ALICE, BOB, CAROL = (new_account() for _ in range(3))
DOMAIN = SigningDomain(chain_id=31337, board="0x" + "ab" * 20, consensus="0x" + "ef" * 20, nonce=b"\x07" * 32)


def update_of(author: str, round_: int = 1) -> UpdateMessage:
    return UpdateMessage(round_, author, SparseUpdate(8, [1, 5], [0.25, -1.5]))


@pytest.mark.parametrize(
    "message",
    [
        update_of(ALICE.address),
        EvaluationMessage(2, ALICE.address, (2**32 - 1, 700_000, 1_000_000)),
        ModelMessage(0, ALICE.address, np.arange(8, dtype=np.float32)),
    ],
    ids=["update", "evaluation", "model"],
)
def test_a_message_signed_by_its_author_opens_to_the_same_message(message) -> None:
    signed = sign_message(message, ALICE, DOMAIN)

    opened = open_message(signed, DOMAIN, dimension=8, participants=3, update_size=2, max_abs_value=2.0)

    assert type(opened) is type(message)
    assert opened.author == ALICE.address
    assert opened.to_bytes() == message.to_bytes() == signed.data
    assert signed.digest() == hashlib.sha256(signed.data).digest() == message.digest()
    assert len(signed.signature) == 65


def test_signing_the_same_message_twice_gives_the_same_signature() -> None:
    assert sign_message(update_of(ALICE.address), ALICE, DOMAIN) == sign_message(
        update_of(ALICE.address), ALICE, DOMAIN
    )


def test_a_signed_message_round_trips_through_to_dict() -> None:
    signed = sign_message(update_of(ALICE.address), ALICE, DOMAIN)

    assert SignedMessage.from_dict(signed.to_dict()) == signed


def test_an_unsigned_copy_round_trips_through_to_dict() -> None:
    """A party's own recomputed model travels in evidence proofs with no signature at all."""
    unsigned = SignedMessage(update_of(ALICE.address).to_bytes(), b"")

    assert SignedMessage.from_dict(unsigned.to_dict()) == unsigned


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (None, "not an object but NoneType"),
        ([], "not an object but list"),
        ({"data": "00"}, "KeyError in SignedMessage: 'signature'"),
        ({"data": 5, "signature": ""}, "data: got int"),
        ({"data": "0g", "signature": ""}, "data: got '0g'"),
        ({"data": "00", "signature": "ab" * 64}, "signature: got 64 bytes"),
        ({"data": "00", "signature": "ab" * 66}, "signature: got 66 bytes"),
        ({"data": "00", "signature": ["ab"]}, "signature: got list"),
    ],
    ids=["none", "list", "no-signature", "data-int", "data-not-hex", "short", "long", "signature-list"],
)
def test_a_malformed_signed_message_is_refused_with_a_typed_error(raw, says: str) -> None:
    with pytest.raises(MalformedFieldError, match=says):
        SignedMessage.from_dict(raw)


def test_a_signature_by_another_account_is_rejected() -> None:
    message = update_of(ALICE.address)
    forged = SignedMessage(message.to_bytes(), DOMAIN.sign(BOB, 1, int(message.kind), message.digest()))

    with pytest.raises(InvalidSignatureError, match=f"not its author {ALICE.address}'s") as info:
        open_message(forged, DOMAIN)
    assert BOB.address in str(info.value)


def test_a_signature_of_another_kind_is_rejected() -> None:
    message = update_of(ALICE.address)
    as_model = SignedMessage(
        message.to_bytes(), DOMAIN.sign(ALICE, 1, int(MessageKind.MODEL), message.digest())
    )

    with pytest.raises(InvalidSignatureError, match="not its author"):
        open_message(as_model, DOMAIN)


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


@pytest.mark.parametrize(
    "signature", [b"", b"\x00" * 65, b"\xff" * 64, b"\x01" * 66], ids=["empty", "zeros", "short", "long"]
)
def test_a_malformed_signature_is_rejected(signature: bytes) -> None:
    signed = SignedMessage(update_of(ALICE.address).to_bytes(), signature)

    with pytest.raises(InvalidSignatureError, match="not its author"):
        open_message(signed, DOMAIN)


@pytest.mark.parametrize(
    "other",
    [
        replace(DOMAIN, nonce=b"\x08" * 32),
        replace(DOMAIN, consensus="0x" + "cd" * 20),
        replace(DOMAIN, board="0x" + "cd" * 20),
        replace(DOMAIN, chain_id=DOMAIN.chain_id + 1),
    ],
    ids=["other-nonce", "other-consensus", "other-board", "other-chain"],
)
def test_a_message_signed_for_another_sessions_domain_is_rejected(other: SigningDomain) -> None:
    signed = sign_message(update_of(ALICE.address), ALICE, other)

    assert other != DOMAIN
    assert open_message(signed, other).author == ALICE.address  # valid where it was signed
    with pytest.raises(InvalidSignatureError, match="not its author"):
        open_message(signed, DOMAIN)


def test_each_field_of_the_domain_changes_the_signed_hash() -> None:
    digest = update_of(ALICE.address).digest()
    base = DOMAIN.signed_hash(1, 0, digest)
    variants = [
        replace(DOMAIN, nonce=b"\x08" * 32).signed_hash(1, 0, digest),
        replace(DOMAIN, consensus="0x" + "cd" * 20).signed_hash(1, 0, digest),
        replace(DOMAIN, board="0x" + "cd" * 20).signed_hash(1, 0, digest),
        replace(DOMAIN, chain_id=1).signed_hash(1, 0, digest),
        DOMAIN.signed_hash(2, 0, digest),
        DOMAIN.signed_hash(1, 1, digest),
        DOMAIN.signed_hash(1, 0, hashlib.sha256(b"other").digest()),
    ]

    assert len({base, *variants}) == len(variants) + 1


def test_the_domain_refuses_a_nonce_or_digest_that_is_not_32_bytes() -> None:
    with pytest.raises(ValueError, match="nonce is 32 bytes"):
        SigningDomain(1, DOMAIN.board, DOMAIN.consensus, b"\x00" * 31)
    with pytest.raises(ValueError, match="digest is 32 bytes"):
        DOMAIN.signed_hash(1, 0, b"\x00" * 31)


def test_the_domain_signer_recovers_the_account_and_none_for_garbage() -> None:
    digest = update_of(ALICE.address).digest()
    signature = DOMAIN.sign(ALICE, 1, 0, digest)

    assert DOMAIN.signer(1, 0, digest, signature) == ALICE.address
    assert recover_signer(DOMAIN.signed_hash(1, 0, digest), signature) == ALICE.address
    assert sign_hash(ALICE, DOMAIN.signed_hash(1, 0, digest)) == signature
    assert DOMAIN.signer(1, 0, digest, b"\x00" * 65) is None
    assert DOMAIN.signer(1, 0, digest, b"") is None


def test_server_statement_kinds_are_distinct_from_message_kinds() -> None:
    assert {DELIVERY_KIND, RECEIPT_KIND}.isdisjoint(int(k) for k in MessageKind)
    assert DELIVERY_KIND != RECEIPT_KIND


def test_an_account_cannot_sign_a_message_authored_by_someone_else() -> None:
    with pytest.raises(ValueError, match=f"cannot sign a message authored by {ALICE.address}"):
        sign_message(update_of(ALICE.address), BOB, DOMAIN)


def test_the_session_bounds_are_checked_when_opening() -> None:
    signed = sign_message(update_of(ALICE.address), ALICE, DOMAIN)

    with pytest.raises(WrongShapeError):
        open_message(signed, DOMAIN, dimension=9)
    with pytest.raises(WrongShapeError, match="agreed on exactly 1"):
        open_message(signed, DOMAIN, dimension=8, update_size=1)
    with pytest.raises(ValueOutOfBoundsError):
        open_message(signed, DOMAIN, dimension=8, update_size=2, max_abs_value=1.0)


def test_bad_bytes_are_refused_before_the_signature_is_checked() -> None:
    signed = sign_message(update_of(ALICE.address), ALICE, DOMAIN)

    with pytest.raises(OversizedMessageError):
        open_message(signed, DOMAIN, max_bytes=len(signed.data) - 1)
    with pytest.raises(MalformedMessageError):
        open_message(SignedMessage(b"garbage", signed.signature), DOMAIN)


# ─────────────── the same hash on the embedded EVM ───────────────


@pytest.fixture(scope="module")
def board() -> BulletinBoardClient:
    return deploy_session(EmbeddedChain(), [ALICE, BOB, CAROL]).board


def domain_of(board: BulletinBoardClient) -> SigningDomain:
    return SigningDomain(int(board.w3.eth.chain_id), board.address, board.consensus(), board.nonce())


@pytest.mark.parametrize(
    "kind",
    [*list(MessageKind), DELIVERY_KIND, RECEIPT_KIND],
    ids=[*(k.name.lower() for k in MessageKind), "delivery", "receipt"],
)
def test_the_signed_hash_equals_the_deployed_boards_signed_hash_view(
    board: BulletinBoardClient, kind: int
) -> None:
    domain = domain_of(board)
    digest = update_of(ALICE.address, round_=5).digest()

    on_chain = bytes(board.contract.functions.signedHash(5, int(kind), digest).call())

    assert on_chain == domain.signed_hash(5, int(kind), digest)
    assert on_chain != replace(domain, nonce=b"\x00" * 32).signed_hash(5, int(kind), digest)
    assert on_chain != replace(domain, chain_id=domain.chain_id + 1).signed_hash(5, int(kind), digest)


def test_the_board_accepts_the_envelope_signature_and_records_its_digest(board: BulletinBoardClient) -> None:
    message = UpdateMessage(1, CAROL.address, SparseUpdate(3, [2], [1.0]))
    signed = sign_message(message, CAROL, domain_of(board))

    receipt = board.post_update(1, CAROL.address, signed.digest(), signed.signature)

    assert board.digest_of(1, MessageKind.UPDATE, CAROL.address) == signed.digest()
    record = board.record_in_transaction(receipt.tx_hash)
    assert record is not None and (record.round, record.author, record.digest) == (
        1,
        CAROL.address,
        signed.digest(),
    )


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
def test_the_board_refuses_a_signature_made_for_another_sessions_domain(
    board: BulletinBoardClient, change: dict
) -> None:
    other = replace(domain_of(board), **change)
    signed = sign_message(UpdateMessage(1, BOB.address, SparseUpdate(3, [0], [1.0])), BOB, other)

    with pytest.raises(errors.BulletinInvalidSignature):
        board.post_update(1, BOB.address, signed.digest(), signed.signature)
    assert board.digest_of(1, MessageKind.UPDATE, BOB.address) is None


def _high_s_twin(signature: bytes) -> bytes:
    """The other valid ECDSA signature of the same hash by the same key: (r, n − s, v flipped)."""
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (n - s).to_bytes(32, "big") + bytes([55 - signature[64]])


@pytest.mark.parametrize(
    "variant",
    [_high_s_twin, lambda sig: sig[:64] + bytes([sig[64] - 27])],
    ids=["high-s-twin", "v-0-or-1"],
)
def test_a_signature_form_the_board_refuses_recovers_to_nobody_off_chain(
    board: BulletinBoardClient, variant
) -> None:
    """Off-chain and on-chain checks agree on which signatures count: a statement signed in a form
    the contracts refuse must not convict anyone off-chain that the chain would then clear."""
    domain = domain_of(board)
    message = UpdateMessage(1, BOB.address, SparseUpdate(3, [1], [0.5]))
    signed = sign_message(message, BOB, domain)
    other = variant(signed.signature)
    hash_ = domain.signed_hash(1, int(MessageKind.UPDATE), signed.digest())
    # The twin is a real signature by BOB to a lax recoverer (eth-keys), which is why it matters.
    assert other != signed.signature

    assert recover_signer(hash_, other) is None
    with pytest.raises(errors.BulletinInvalidSignature):
        board.post_update(1, BOB.address, signed.digest(), other)

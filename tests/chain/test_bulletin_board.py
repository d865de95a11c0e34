"""The bulletin board records signed digests and rejects every bad post with a typed error."""

from __future__ import annotations

import hashlib

import pytest

from seccl.chain import errors
from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from tests.chain.helpers import Session, deploy_session
from tests.conftest import make_accounts


def digest_of(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


@pytest.fixture
def session(backend: ChainBackend) -> Session:
    return deploy_session(backend, n=4, m=2)


def test_records_a_signed_post_and_finds_it_by_digest_author_and_tx_id(session: Session) -> None:
    author = session.accounts[1]
    digest = digest_of("update of participant 1")
    signature = session.board.sign(author, 0, MessageKind.UPDATE, digest)

    receipt = session.board.post(0, MessageKind.UPDATE, author.address, digest, signature)

    record = session.board.record_of(digest)
    assert record is not None
    assert (record.round, record.kind, record.author) == (0, MessageKind.UPDATE, author.address)
    assert session.board.digest_of(0, MessageKind.UPDATE, author.address) == digest
    assert session.board.record_in_transaction(receipt.tx_hash) == record
    assert receipt.tx_hash.startswith("0x") and len(receipt.tx_hash) == 66
    assert session.board.records()[-1] == (record, receipt.tx_hash)


def test_a_participant_verifies_a_record_over_its_own_connection(
    session: Session, backend: ChainBackend
) -> None:
    author = session.accounts[0]
    digest = digest_of("verified independently")
    receipt = session.board.post(
        0,
        MessageKind.UPDATE,
        author.address,
        digest,
        session.board.sign(author, 0, MessageKind.UPDATE, digest),
    )

    reader = session.board.for_reader(backend.connect())

    assert reader.sender is None
    assert reader.record_in_transaction(receipt.tx_hash).digest == digest  # type: ignore[union-attr]
    with pytest.raises(errors.ChainError, match="read-only"):
        reader.open_round(1)


def test_python_signed_hash_equals_the_contracts(session: Session) -> None:
    digest = digest_of("hash rule")
    onchain = session.board.contract.functions.signedHash(7, 1, digest).call()
    assert bytes(onchain) == session.board.signed_hash(7, MessageKind.EVALUATION, digest)


def test_rejects_a_forged_signature(session: Session) -> None:
    victim, forger = session.accounts[0], session.accounts[1]
    digest = digest_of("forged")
    forged = session.board.sign(forger, 0, MessageKind.UPDATE, digest)

    with pytest.raises(errors.BulletinInvalidSignature) as caught:
        session.board.post(0, MessageKind.UPDATE, victim.address, digest, forged)

    assert caught.value.fields["signer"] == forger.address
    assert session.board.record_of(digest) is None


def test_rejects_a_tampered_digest_under_the_authors_signature(session: Session) -> None:
    author = session.accounts[2]
    signed_digest = digest_of("what the author sent")
    signature = session.board.sign(author, 0, MessageKind.UPDATE, signed_digest)
    tampered = digest_of("what the server changed it to")

    with pytest.raises(errors.BulletinInvalidSignature):
        session.board.post(0, MessageKind.UPDATE, author.address, tampered, signature)

    assert session.board.record_of(tampered) is None
    assert session.board.digest_of(0, MessageKind.UPDATE, author.address) is None


def test_rejects_a_signature_for_another_round_or_kind(session: Session) -> None:
    author = session.accounts[0]
    digest = digest_of("replayed")
    other_kind = session.board.sign(author, 0, MessageKind.EVALUATION, digest)

    with pytest.raises(errors.BulletinInvalidSignature):
        session.board.post(0, MessageKind.UPDATE, author.address, digest, other_kind)


def test_rejects_malformed_signature_bytes(session: Session) -> None:
    with pytest.raises(errors.BulletinInvalidSignature):
        session.board.post(
            0, MessageKind.UPDATE, session.accounts[0].address, digest_of("x"), b"\x01" * 10
        )


def test_rejects_a_duplicate_post_by_the_same_author(session: Session) -> None:
    author = session.accounts[0]
    first, second = digest_of("first"), digest_of("second")
    session.board.post(
        0,
        MessageKind.UPDATE,
        author.address,
        first,
        session.board.sign(author, 0, MessageKind.UPDATE, first),
    )

    with pytest.raises(errors.BulletinAlreadyPosted):
        session.board.post(
            0,
            MessageKind.UPDATE,
            author.address,
            second,
            session.board.sign(author, 0, MessageKind.UPDATE, second),
        )

    assert session.board.digest_of(0, MessageKind.UPDATE, author.address) == first


def test_rejects_a_digest_already_on_the_board(session: Session) -> None:
    a, b = session.accounts[0], session.accounts[1]
    digest = digest_of("same bytes")
    session.board.post(
        0,
        MessageKind.UPDATE,
        a.address,
        digest,
        session.board.sign(a, 0, MessageKind.UPDATE, digest),
    )

    with pytest.raises(errors.BulletinDuplicateDigest):
        session.board.post(
            0,
            MessageKind.UPDATE,
            b.address,
            digest,
            session.board.sign(b, 0, MessageKind.UPDATE, digest),
        )


def test_rejects_posts_for_closed_and_future_rounds(session: Session) -> None:
    author = session.accounts[0]
    session.board.open_round(1)
    digest = digest_of("late")

    with pytest.raises(errors.BulletinRoundClosed):
        session.board.post(
            0,
            MessageKind.UPDATE,
            author.address,
            digest,
            session.board.sign(author, 0, MessageKind.UPDATE, digest),
        )
    with pytest.raises(errors.BulletinRoundNotOpen):
        session.board.post(
            2,
            MessageKind.UPDATE,
            author.address,
            digest,
            session.board.sign(author, 2, MessageKind.UPDATE, digest),
        )
    assert session.board.current_round() == 1


def test_opens_rounds_only_in_sequence(session: Session) -> None:
    with pytest.raises(errors.BulletinInvalidRound) as caught:
        session.board.open_round(2)
    assert caught.value.fields == {"requested": 2, "expected": 1}


def test_rejects_an_unknown_author(session: Session) -> None:
    stranger = make_accounts(1, tag="stranger")[0]
    digest = digest_of("stranger")

    with pytest.raises(errors.BulletinUnknownAuthor):
        session.board.post(
            0,
            MessageKind.UPDATE,
            stranger.address,
            digest,
            session.board.sign(stranger, 0, MessageKind.UPDATE, digest),
        )


def test_only_the_server_posts_models_and_only_participants_post_updates(
    session: Session,
) -> None:
    participant = session.accounts[0]
    digest = digest_of("model by a participant")

    with pytest.raises(errors.BulletinUnknownAuthor):
        session.board.post(
            0,
            MessageKind.MODEL,
            participant.address,
            digest,
            session.board.sign(participant, 0, MessageKind.MODEL, digest),
        )


def test_rejects_relays_from_anyone_but_the_server(session: Session) -> None:
    author = session.accounts[0]
    digest = digest_of("relay")
    intruder = session.w3.eth.accounts[1]
    hijacked = BulletinBoardClient(session.w3, session.board.address, sender=intruder)

    with pytest.raises(errors.BulletinUnauthorizedRelay) as caught:
        hijacked.post(
            0,
            MessageKind.UPDATE,
            author.address,
            digest,
            session.board.sign(author, 0, MessageKind.UPDATE, digest),
        )
    assert caught.value.fields["caller"] == intruder
    with pytest.raises(errors.BulletinUnauthorizedRelay):
        hijacked.open_round(1)


@pytest.mark.parametrize("problem", ["empty", "duplicate", "server", "zero"])
def test_rejects_an_invalid_participant_list(backend: ChainBackend, problem: str) -> None:
    w3, server = backend.connect(), backend.server_account()
    a, b = (acct.address for acct in make_accounts(2))
    participants = {
        "empty": [],
        "duplicate": [a, b, a],
        "server": [a, server],
        "zero": [a, "0x" + "00" * 20],
    }[problem]

    with pytest.raises(errors.BulletinInvalidParticipants):
        BulletinBoardClient.deploy(w3, server=server, participants=participants)

"""The server's signed statements: a Delivery (what it handed a participant) and a Receipt (what it
took and where it recorded it) survive serialisation, recover to the server, stop verifying as soon
as any field changes, and the board upholds a signed delivery that contradicts its record."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from seccl.chain import errors
from seccl.chain.accounts import new_account
from seccl.chain.backends import EmbeddedChain
from seccl.chain.bulletin_board import MessageKind, Offence
from seccl.chain.signing import SigningDomain
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.envelope import sign_message
from seccl.protocol.errors import MalformedFieldError, MalformedMessageError
from seccl.protocol.messages import UpdateMessage
from seccl.protocol.statements import Delivery, Receipt
from tests.protocol.helpers import BareSession, deploy_session

SERVER, ALICE, BOB, CAROL = (new_account() for _ in range(4))
DOMAIN = SigningDomain(31337, "0x" + "ab" * 20, "0x" + "ef" * 20, b"\x05" * 32)
D1, D2, D3 = (hashlib.sha256(tag).digest() for tag in (b"one", b"two", b"three"))
TX = "0x" + "12" * 32


def delivery(**change: object) -> Delivery:
    signed = Delivery.sign(
        SERVER, DOMAIN, 2, MessageKind.UPDATE, CAROL.address, [ALICE.address, BOB.address], [D1, D2]
    )
    return replace(signed, **change)


def receipt(**change: object) -> Receipt:
    return replace(Receipt.sign(SERVER, DOMAIN, 2, MessageKind.UPDATE, ALICE.address, D1, TX), **change)


# ─────────────── deliveries ───────────────


def test_a_delivery_round_trips_through_json() -> None:
    original = delivery()

    back = Delivery.from_dict(json.loads(json.dumps(original.to_dict())))

    assert back == original
    assert back.signer(DOMAIN) == SERVER.address
    assert original.to_dict()["kind"] == "update"


def test_a_delivery_recovers_to_the_server_that_signed_it() -> None:
    signed = delivery()

    assert signed.signer(DOMAIN) == SERVER.address
    assert len(signed.signature) == 65
    assert signed.digest_for(BOB.address) == D2
    assert signed.digest_for(CAROL.address) is None


@pytest.mark.parametrize(
    "change",
    [
        {"round": 3},
        {"kind": MessageKind.MODEL},
        {"recipient": BOB.address},
        {"authors": (BOB.address, ALICE.address)},
        {"authors": (ALICE.address, CAROL.address)},
        {"digests": (D1, D3)},
        {"digests": (D2, D1)},
        {"authors": (ALICE.address,), "digests": (D1,)},
    ],
    ids=[
        "round",
        "kind",
        "recipient",
        "authors-swapped",
        "author-replaced",
        "digest",
        "digests-swapped",
        "dropped",
    ],
)
def test_a_delivery_with_an_altered_field_no_longer_verifies(change: dict) -> None:
    altered = delivery(**change)

    assert altered.signer(DOMAIN) not in (SERVER.address, None)  # recovers someone else
    assert Delivery.from_dict(altered.to_dict()).signer(DOMAIN) != SERVER.address


def test_a_delivery_signed_for_another_session_does_not_verify_in_this_one() -> None:
    other = replace(DOMAIN, nonce=b"\x06" * 32)
    elsewhere = Delivery.sign(SERVER, other, 2, MessageKind.UPDATE, CAROL.address, [ALICE.address], [D1])

    assert elsewhere.signer(other) == SERVER.address
    assert elsewhere.signer(DOMAIN) != SERVER.address


def test_a_delivery_with_a_garbage_signature_recovers_to_nobody() -> None:
    assert delivery(signature=b"\x00" * 65).signer(DOMAIN) is None
    assert delivery(signature=b"").signer(DOMAIN) is None


def test_a_delivery_signed_by_someone_else_does_not_recover_to_the_server() -> None:
    forged = Delivery.sign(ALICE, DOMAIN, 2, MessageKind.UPDATE, CAROL.address, [ALICE.address], [D1])

    assert forged.signer(DOMAIN) == ALICE.address != SERVER.address


# ─────────────── receipts ───────────────


def test_a_receipt_round_trips_through_json() -> None:
    original = receipt()

    back = Receipt.from_dict(json.loads(json.dumps(original.to_dict())))

    assert back == original
    assert back.signer(DOMAIN) == SERVER.address
    assert original.to_dict()["tx_id"] == TX


def test_a_receipt_recovers_to_the_server_that_signed_it() -> None:
    assert receipt().signer(DOMAIN) == SERVER.address
    no_tx = Receipt.sign(SERVER, DOMAIN, 2, MessageKind.EVALUATION, ALICE.address, D1, "")
    assert no_tx.signer(DOMAIN) == SERVER.address
    assert Receipt.from_dict(no_tx.to_dict()) == no_tx


@pytest.mark.parametrize(
    "change",
    [
        {"round": 1},
        {"kind": MessageKind.EVALUATION},
        {"author": BOB.address},
        {"digest": D2},
        {"tx_id": "0x" + "13" * 32},
        {"tx_id": ""},
    ],
    ids=["round", "kind", "author", "digest", "tx-id", "no-tx-id"],
)
def test_a_receipt_with_an_altered_field_no_longer_verifies(change: dict) -> None:
    altered = receipt(**change)

    assert altered.signer(DOMAIN) not in (SERVER.address, None)
    assert Receipt.from_dict(altered.to_dict()).signer(DOMAIN) != SERVER.address


def test_a_receipt_is_not_a_delivery_and_the_other_way_round() -> None:
    """The two statements are signed with different kind bytes, so neither passes for the other."""
    taken = receipt()
    as_delivery = Delivery(2, MessageKind.UPDATE, ALICE.address, (ALICE.address,), (D1,), taken.signature)

    assert as_delivery.signer(DOMAIN) != SERVER.address
    assert receipt(signature=delivery().signature).signer(DOMAIN) != SERVER.address


def test_a_receipt_signed_for_another_chain_does_not_verify_here() -> None:
    other = replace(DOMAIN, chain_id=1)
    elsewhere = Receipt.sign(SERVER, other, 2, MessageKind.UPDATE, ALICE.address, D1, TX)

    assert elsewhere.signer(other) == SERVER.address
    assert elsewhere.signer(DOMAIN) != SERVER.address


# ─────────────── fields no signature can cover ───────────────


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"round": 2**64}, "round"),
        ({"round": -1}, "round"),
        ({"digests": (D1 + b"\x00", D2)}, "digests\\[0\\]"),
        ({"digests": (D1, D2[:31])}, "digests\\[1\\]"),
        ({"recipient": "0x1234"}, "recipient"),
        ({"authors": (ALICE.address, "not an address")}, "authors\\[1\\]"),
    ],
    ids=["round-2^64", "round-negative", "digest-33-bytes", "digest-31-bytes", "short-recipient", "author"],
)
def test_a_delivery_no_signature_can_cover_recovers_to_nobody_and_is_refused_at_decoding(
    change: dict, field: str
) -> None:
    """Regression: ``signer`` raised eth_abi's ValueOutOfBounds for a round of 2^64 or -1 and for a
    33-byte digest; now it answers None, and decoding refuses the field by name."""
    malformed = delivery(**change)

    assert malformed.signer(DOMAIN) is None
    with pytest.raises(MalformedFieldError, match=f"in Delivery: {field}"):
        Delivery.from_dict(json.loads(json.dumps(malformed.to_dict())))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"round": 2**64}, "round"),
        ({"round": -1}, "round"),
        ({"digest": D1 + b"\x00"}, "digest"),
        ({"tx_id": "0x" + "12" * 33}, "tx_id"),
        ({"tx_id": "0x" + "12" * 4_000}, "tx_id"),
        ({"tx_id": "12" * 32}, "tx_id"),
    ],
    ids=[
        "round-2^64",
        "round-negative",
        "digest-33-bytes",
        "tx-id-33-bytes",
        "tx-id-4000-bytes",
        "tx-id-no-0x",
    ],
)
def test_a_receipt_no_signature_can_cover_recovers_to_nobody_and_is_refused_at_decoding(
    change: dict, field: str
) -> None:
    """Regression: ``signer`` raised ValueOutOfBounds for an out-of-range round, a 33-byte digest
    or an over-long Tx-ID."""
    malformed = receipt(**change)

    assert malformed.signer(DOMAIN) is None
    with pytest.raises(MalformedFieldError, match=f"in Receipt: {field}"):
        Receipt.from_dict(json.loads(json.dumps(malformed.to_dict())))


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [1, 2],
        {},
        {**delivery().to_dict(), "round": "2"},
        {**delivery().to_dict(), "round": 2.0},
        {**delivery().to_dict(), "round": True},
        {**delivery().to_dict(), "kind": "steal"},
        {**delivery().to_dict(), "kind": 0},
        {**delivery().to_dict(), "authors": "0x" + "11" * 20},
        {**delivery().to_dict(), "digests": [1]},
        {**delivery().to_dict(), "signature": "0x" + "zz" * 65},
        {**delivery().to_dict(), "signature": "0x" + "00" * 66},
    ],
    # Fixed ids: the documents hold random addresses, and every xdist worker must collect the same names.
    ids=[
        "none",
        "a-list",
        "empty",
        "round-text",
        "round-float",
        "round-bool",
        "kind-unknown",
        "kind-number",
        "authors-not-a-list",
        "digest-not-text",
        "signature-not-hex",
        "signature-66-bytes",
    ],
)
def test_a_malformed_delivery_document_is_refused_with_a_typed_error_that_is_also_a_value_error(raw) -> None:
    with pytest.raises(MalformedFieldError) as refused:
        Delivery.from_dict(raw)
    # Both: the protocol's family, and a ValueError for callers that refuse a malformed proof as one.
    assert isinstance(refused.value, MalformedMessageError) and isinstance(refused.value, ValueError)


# ─────────────── the board checks a signed delivery itself ───────────────


@pytest.fixture(scope="module")
def session() -> BareSession:
    chain = EmbeddedChain()
    session = deploy_session(chain, [ALICE, BOB, CAROL])
    update = UpdateMessage(1, ALICE.address, SparseUpdate(4, [1], [0.5]))
    signed = sign_message(update, ALICE, session.domain)
    session.board.post_update(1, ALICE.address, signed.digest(), signed.signature)
    return session


def alice_recorded(session: BareSession) -> bytes:
    recorded = session.board.digest_of(1, MessageKind.UPDATE, ALICE.address)
    assert recorded is not None
    return recorded


def server_delivers(session: BareSession, digest: bytes) -> Delivery:
    """The server's signed statement that it handed CAROL ``digest`` as ALICE's update of round 1."""
    return Delivery.sign(
        session.server, session.domain, 1, MessageKind.UPDATE, CAROL.address, [ALICE.address], [digest]
    )


def accuse(session: BareSession, statement: Delivery):
    return session.board.accuse_delivery(
        statement.round,
        statement.kind,
        statement.recipient,
        statement.authors,
        statement.digests,
        0,
        statement.signature,
    )


def test_the_board_refutes_a_delivery_that_matches_its_record(session: BareSession) -> None:
    honest = server_delivers(session, alice_recorded(session))
    assert honest.signer(session.domain) == session.server.address
    before = session.board.caught_count()

    with pytest.raises(errors.BulletinAccusationRefuted):
        accuse(session, honest)
    assert session.board.caught_count() == before


def test_the_board_refuses_a_delivery_with_an_altered_field(session: BareSession) -> None:
    altered = replace(server_delivers(session, D3), recipient=BOB.address)
    before = session.board.caught_count()

    with pytest.raises(errors.BulletinInvalidSignature):
        accuse(session, altered)
    assert session.board.caught_count() == before


def test_the_board_never_upholds_an_update_delivery_updates_are_revealed_on_it(session: BareSession) -> None:
    # A server-signed statement that contradicts the board about an update proves nothing: the
    # server hands out no updates (every party reads them from the board). Model deliveries are
    # upheld (tests/chain/test_bulletin_board.py).
    lie = server_delivers(session, D3)
    assert alice_recorded(session) != D3
    before = session.board.caught_count()

    with pytest.raises(errors.BulletinAccusationRefuted) as caught:
        accuse(session, lie)

    assert caught.value.fields["offence"] == int(Offence.DELIVERY_MISMATCH)
    assert session.board.caught_count() == before
